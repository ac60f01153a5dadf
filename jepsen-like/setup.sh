#!/usr/bin/env bash
# Install what the namespace partition mechanism needs (iproute2, nftables), only when
# missing, and check that namespaces work here. Without root, say what is missing: the
# harness then falls back to the per-link TCP proxy on 127.0.0.1 (no privileges needed).
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)

if [ "$(id -u)" -ne 0 ]; then
    echo "jepsen-like setup: not root." >&2
    if [ ${#missing[@]} -gt 0 ]; then
        echo "  missing packages: ${missing[*]} (install as root: apt-get install -y ${missing[*]})" >&2
    fi
    echo "  network namespaces and nftables need root (CAP_NET_ADMIN);" >&2
    echo "  campaigns will use the TCP proxy fallback (--net proxy)." >&2
    exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "jepsen-like setup: installing ${missing[*]}" >&2
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "  no apt-get here: install ${missing[*]} with your package manager" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null; }
fi

probe="jl-setup-$$"
if ip netns add "$probe" 2>/dev/null; then
    if ip netns exec "$probe" nft list tables >/dev/null 2>&1; then
        echo "jepsen-like setup: ok (network namespaces + nftables usable)"
        ip netns del "$probe"
        exit 0
    fi
    ip netns del "$probe"
    echo "jepsen-like setup: nftables does not work inside a namespace (kernel without nf_tables?);" >&2
else
    echo "jepsen-like setup: cannot create a network namespace (container without CAP_SYS_ADMIN?);" >&2
fi
echo "  campaigns will use the TCP proxy fallback (--net proxy)." >&2
exit 1
