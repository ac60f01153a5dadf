#!/bin/sh
# Container entry point for kvraft (cluster/Dockerfile, cluster/kubernetes.yaml).
#
# With no arguments, or only flags, it runs `kvraft serve` configured from the environment
# (the flags are appended, so they can add or override anything):
#   KVRAFT_ID          node id; default: the StatefulSet ordinal N of $HOSTNAME (name-N) + 1
#   KVRAFT_PEERS       initial voters "1=host:port,2=host:port,..." (bootstrap of an empty
#                      data dir only; a data dir with state keeps its own membership)
#   KVRAFT_LISTEN      host:port to listen on; default: this node's address in KVRAFT_PEERS
#   KVRAFT_DATA_DIR    default /var/lib/kvraft/data (a directory inside the volume)
#   KVRAFT_METRICS     Prometheus listener, default 0.0.0.0:9101 ("" for none)
#   KVRAFT_CLUSTER_ID  default kvraft (peers of another cluster id are refused)
#   KVRAFT_JOIN        "1": start as a new member that waits for `kvraft member add`;
#                      implied when KVRAFT_PEERS does not list this node (a replica added
#                      after the bootstrap must never bootstrap a membership of its own)
# With a command (first argument not starting with "-"), it runs that command instead.
set -eu

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

id="${KVRAFT_ID:-}"
if [ -z "$id" ]; then
    host="${HOSTNAME:-$(hostname)}"
    ordinal="${host##*-}"
    case "$ordinal" in
        '' | *[!0-9]*)
            echo "kvraft-entrypoint: set KVRAFT_ID (hostname '$host' does not end in -N)" >&2
            exit 2
            ;;
    esac
    id=$((ordinal + 1))
fi

set -- --id "$id" --data-dir "${KVRAFT_DATA_DIR:-/var/lib/kvraft/data}" \
    --cluster-id "${KVRAFT_CLUSTER_ID:-kvraft}" --log-format json "$@"
if [ -n "${KVRAFT_PEERS:-}" ]; then set -- --peers "$KVRAFT_PEERS" "$@"; fi
if [ -n "${KVRAFT_LISTEN:-}" ]; then set -- --listen "$KVRAFT_LISTEN" "$@"; fi
metrics="${KVRAFT_METRICS-0.0.0.0:9101}"
if [ -n "$metrics" ]; then set -- --metrics "$metrics" "$@"; fi
join="${KVRAFT_JOIN:-}"
case ",${KVRAFT_PEERS:-}," in
    *",$id="*) ;;
    ,,) ;;
    *) join=1 ;;
esac
if [ "$join" = "1" ]; then set -- --join "$@"; fi
exec kvraft serve "$@"
