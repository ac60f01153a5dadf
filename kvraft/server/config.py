"""The node's configuration: what ``kvraft serve`` reads from TOML files and flags.

Sources, lowest precedence first (flags override files):

- a cluster spec (``--cluster cluster/local-3.toml --id 1``): the node is that entry, the
  peers are all entries, the data dir is ``<data_root>/n<id>``, [raft]/[limits] apply;
- a node config file (``--config node.toml``) with [node], [cluster], [raft], [limits];
- flags (``--id``, ``--listen``, ``--peers``, ``--data-dir``, ``--tick-ms``, ...).

Every mistake raises ConfigError with one line that says which file/key/flag and why.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration is missing something or malformed; the message says what."""


@dataclass(frozen=True, slots=True)
class RaftSettings:
    tick_ms: int = 50  # wall-clock ms per core tick; >= 1
    election_ticks: int = 10  # election timeout in [election_ticks, 2*election_ticks) ticks
    heartbeat_ticks: int = 1  # < election_ticks
    # applied entries between snapshots (0 = only on demand); etcd's default
    snapshot_entries: int = 100_000
    snapshots_kept: int = 2  # snapshot files kept on disk; >= 1
    pre_vote: bool = True
    check_quorum: bool = True
    lease_reads: bool = True  # LEASE reads use the leader lease (needs check_quorum)
    # a new commit index reaches followers with the next AppendEntries, or at the latest
    # after this many ms; 0: at once in a message of its own (etcd's way)
    commit_flush_ms: int = 5
    # at low load a follower applies committed entries in batches, holding them up to
    # this many ms (its STALE readers see writes that much later); a leader holds the
    # applies of writes it already answered, up to its next log write; 0: at once
    follower_apply_ms: int = 50
    # a leader sends AppendEntries at once to the followers that make a quorum with it
    # fastest, and to the others in batches every this many ms (they are that much
    # behind; held appends also go out before every heartbeat); 0: to every follower
    # at once (etcd's way)
    quorum_first_ms: int = 50


@dataclass(frozen=True, slots=True)
class Limits:
    max_key_bytes: int = 4096
    max_value_bytes: int = 1 << 20
    max_request_bytes: int = 2 << 20  # serialized request; also the gRPC receive limit
    max_txn_ops: int = 128  # compares + success ops + failure ops of one txn
    max_inflight_proposals: int = 4096
    max_inflight_bytes: int = 64 << 20
    max_pending_reads: int = 16384  # linearizable/lease reads waiting for their read index


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: int  # > 0
    address: str  # host:port this node listens on (KV, Admin, Raft, health, reflection)
    data_dir: Path  # holds the LMDB environment and the snapshot directory
    peers: Mapping[int, str]  # initial voters id -> address (bootstrap only); has node_id
    cluster_id: str = "kvraft"  # peers refuse streams from another cluster id
    metrics: str | None = None  # host:port of a Prometheus listener, if any
    join: bool = False  # start empty and wait to be added (no bootstrap membership)
    raft: RaftSettings = field(default_factory=RaftSettings)
    limits: Limits = field(default_factory=Limits)
    log_format: str | None = None  # "json" | "console"; None: console on a TTY, else json
    log_file: str | None = None  # log destination instead of stderr

    @property
    def lmdb_dir(self) -> Path:
        return self.data_dir / "db"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
          "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def parse_size(value: object, where: str) -> int:
    """An int, or a string like "64 MiB"; ConfigError otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a size, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            return int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    raise ConfigError(f"{where}: expected a size such as 1048576 or \"64 MiB\", got {value!r}")


def check_address(address: str, where: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: expected host:port, got {address!r}")
    return address


def parse_peers(text: str, where: str = "--peers") -> dict[int, str]:
    """``"1=127.0.0.1:7101,2=127.0.0.1:7102"`` -> {1: ..., 2: ...}."""
    peers: dict[int, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        ident, sep, addr = part.partition("=")
        if not sep or not ident.strip().isdigit() or int(ident) <= 0:
            raise ConfigError(f"{where}: expected id=host:port, got {part!r}")
        peers[int(ident)] = check_address(addr.strip(), where)
    return peers


def _section(data: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return dict(value)


def _apply_table(obj: Any, table: Mapping[str, Any], where: str) -> Any:
    """Return ``obj`` (a dataclass) with the keys of ``table`` replaced, type-checked."""
    known = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        default = getattr(obj, key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.{key}: expected true or false, got {value!r}")
        elif isinstance(default, int):
            value = parse_size(value, f"{where}.{key}")
            if value < 0:
                raise ConfigError(f"{where}.{key}: must be >= 0, got {value}")
        changes[key] = value
    return dataclasses.replace(obj, **changes)


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read TOML: {exc}") from exc


@dataclass(slots=True)
class _Draft:
    """Values gathered so far; turned into a NodeConfig by ``finish``."""

    node_id: int | None = None
    address: str | None = None
    data_dir: Path | None = None
    peers: dict[int, str] = field(default_factory=dict)
    cluster_id: str = "kvraft"
    metrics: str | None = None
    join: bool = False
    raft: RaftSettings = field(default_factory=RaftSettings)
    limits: Limits = field(default_factory=Limits)
    log_format: str | None = None
    log_file: str | None = None


def _from_cluster_spec(draft: _Draft, path: Path, node_id: int | None) -> None:
    data = load_toml(path)
    where = str(path)
    nodes = data.get("node")
    if not isinstance(nodes, list) or not nodes:
        raise ConfigError(f"{where}: needs at least one [[node]] with id and address")
    if node_id is None:
        raise ConfigError(f"--cluster {path} needs --id (one of the [[node]] ids)")
    for i, n in enumerate(nodes):
        if not isinstance(n, dict) or not isinstance(n.get("id"), int) or "address" not in n:
            raise ConfigError(f"{where}: [[node]] #{i + 1} needs an integer id and an address")
        draft.peers[n["id"]] = check_address(str(n["address"]), f"{where}: node {n['id']}")
        if n["id"] == node_id:
            draft.address = str(n["address"])
            draft.metrics = n.get("metrics")
    if node_id not in draft.peers:
        known = ", ".join(str(k) for k in sorted(draft.peers))
        raise ConfigError(f"{where}: no [[node]] with id {node_id} (ids: {known})")
    draft.node_id = node_id
    draft.cluster_id = str(data.get("name", draft.cluster_id))
    root = Path(str(data.get("data_root", "data")))
    draft.data_dir = root / f"n{node_id}"
    draft.raft = _apply_table(draft.raft, _section(data, "raft", where), f"{where} [raft]")
    draft.limits = _apply_table(draft.limits, _section(data, "limits", where), f"{where} [limits]")


def _from_node_file(draft: _Draft, path: Path) -> None:
    data = load_toml(path)
    where = str(path)
    node = _section(data, "node", where)
    for key in node:
        if key not in ("id", "address", "data_dir", "metrics"):
            raise ConfigError(f"{where} [node]: unknown key {key!r}")
    if "id" in node:
        if not isinstance(node["id"], int) or node["id"] <= 0:
            raise ConfigError(f"{where} [node].id: expected a positive integer")
        draft.node_id = node["id"]
    if "address" in node:
        draft.address = check_address(str(node["address"]), f"{where} [node].address")
    if "data_dir" in node:
        draft.data_dir = Path(str(node["data_dir"]))
    if "metrics" in node:
        draft.metrics = str(node["metrics"])
    cluster = _section(data, "cluster", where)
    peers = cluster.get("peers", {})
    if not isinstance(peers, dict):
        raise ConfigError(f"{where} [cluster].peers: expected a table of \"id\" = \"host:port\"")
    for k, v in peers.items():
        if not str(k).isdigit() or int(k) <= 0:
            raise ConfigError(f"{where} [cluster].peers: node id {k!r} is not a positive integer")
        draft.peers[int(k)] = check_address(str(v), f"{where} [cluster].peers.{k}")
    if "name" in cluster:
        draft.cluster_id = str(cluster["name"])
    draft.raft = _apply_table(draft.raft, _section(data, "raft", where), f"{where} [raft]")
    draft.limits = _apply_table(draft.limits, _section(data, "limits", where), f"{where} [limits]")


def build_config(
    *,
    cluster: str | None = None,
    config: str | None = None,
    node_id: int | None = None,
    listen: str | None = None,
    peers: str | None = None,
    data_dir: str | None = None,
    cluster_id: str | None = None,
    join: bool = False,
    metrics: str | None = None,
    raft: Mapping[str, Any] | None = None,
    log_format: str | None = None,
    log_file: str | None = None,
) -> NodeConfig:
    """Combine a cluster spec / node file with flag values (flags win)."""
    draft = _Draft()
    if cluster is not None:
        _from_cluster_spec(draft, Path(cluster), node_id)
    if config is not None:
        _from_node_file(draft, Path(config))
    if node_id is not None:
        draft.node_id = node_id
    if listen is not None:
        draft.address = check_address(listen, "--listen")
    if peers is not None:
        draft.peers = parse_peers(peers)
    if data_dir is not None:
        draft.data_dir = Path(data_dir)
    if cluster_id is not None:
        draft.cluster_id = cluster_id
    if metrics is not None:
        draft.metrics = metrics
    draft.join = draft.join or join
    if raft:
        draft.raft = _apply_table(draft.raft, raft, "flags")
    draft.log_format = log_format or draft.log_format
    draft.log_file = log_file or draft.log_file
    return finish(draft)


def finish(d: _Draft) -> NodeConfig:
    if d.node_id is None or d.node_id <= 0:
        raise ConfigError("no node id: pass --id N (or [node].id in --config)")
    if d.address is None:
        if d.node_id in d.peers:
            d.address = d.peers[d.node_id]
        else:
            raise ConfigError("no listen address: pass --listen host:port")
    if d.data_dir is None:
        raise ConfigError("no data dir: pass --data-dir DIR (or [node].data_dir)")
    if not d.join:
        if not d.peers:
            d.peers = {d.node_id: d.address}
        if d.node_id not in d.peers:
            raise ConfigError(
                f"node {d.node_id} is not in the peers list; list it, or pass --join to "
                "start as a new member that waits to be added"
            )
    elif d.node_id not in d.peers:
        d.peers[d.node_id] = d.address
    r = d.raft
    if r.tick_ms < 1 or r.election_ticks < 2 or not 0 < r.heartbeat_ticks < r.election_ticks:
        raise ConfigError(
            "raft timing: need tick_ms >= 1, election_ticks >= 2 and "
            f"0 < heartbeat_ticks < election_ticks (got {r.tick_ms}, {r.election_ticks}, "
            f"{r.heartbeat_ticks})"
        )
    if r.snapshots_kept < 1:
        raise ConfigError("raft.snapshots_kept must be >= 1")
    if r.lease_reads and not r.check_quorum:
        raise ConfigError("raft.lease_reads needs raft.check_quorum = true")
    lim = d.limits
    for name in ("max_key_bytes", "max_value_bytes", "max_request_bytes", "max_txn_ops",
                 "max_inflight_proposals", "max_inflight_bytes", "max_pending_reads"):
        if getattr(lim, name) < 1:
            raise ConfigError(f"limits.{name} must be >= 1")
    if d.metrics is not None:
        check_address(d.metrics, "metrics address")
    if d.log_format not in (None, "json", "console"):
        raise ConfigError(f"--log-format: expected json or console, got {d.log_format!r}")
    return NodeConfig(
        node_id=d.node_id,
        address=d.address,
        data_dir=d.data_dir,
        peers=dict(d.peers),
        cluster_id=d.cluster_id,
        metrics=d.metrics,
        join=d.join,
        raft=r,
        limits=lim,
        log_format=d.log_format,
        log_file=d.log_file,
    )
