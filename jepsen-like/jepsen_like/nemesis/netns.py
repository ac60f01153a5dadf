"""Partitions with Linux network namespaces, veth pairs, a bridge and nftables.

Layout, for a network tagged ``T`` on subnet ``10.77.K.0/24``::

    root namespace: bridge jlbrT, address 10.77.K.1 (the harness's clients live here)
      |-- veth jlThN <-> jlTnN (in namespace jl-T-nN, address 10.77.K.(10+N))

Node ``N``'s process runs inside namespace ``jl-T-nN`` (``ip netns exec``), binds
10.77.K.(10+N) and reaches its peers over the bridge. To cut link ``(a, b)``, namespace
``b`` gets an nftables rule dropping every packet with source address ``a`` on input.
Rules are replaced atomically per namespace (``nft -f``), so a new cut never leaves a
moment with both or neither rule sets. The harness (root namespace) is never cut.

Needs root (CAP_NET_ADMIN), ``ip`` (iproute2) and ``nft`` (nftables);
``jepsen-like/setup.sh`` installs the tools (``availability(install=True)`` runs it when
they are missing). :func:`availability` says what is missing.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .base import Cut

SUBNET_PREFIX = "10.77"
LOCK = "/tmp/jepsen-like-netns.lock"  # serializes subnet choice between harnesses
TABLE = "jepsen"


class NetnsError(RuntimeError):
    """A namespace/bridge/nftables command failed (the message has its stderr)."""


def _run(*argv: str, input: str | None = None) -> str:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise NetnsError(f"`{' '.join(argv)}` failed ({proc.returncode}): "
                         f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


SETUP = Path(__file__).resolve().parents[2] / "setup.sh"


def _missing_tools() -> list[str]:
    return [tool for tool in ("ip", "nft") if shutil.which(tool) is None]


def availability(*, install: bool = False) -> tuple[bool, str]:
    """(usable, reason): whether namespaces can be used here, and if not, what is missing.

    ``install``: as root, run ``jepsen-like/setup.sh`` first if ip or nft is missing
    (it apt-get installs them; bounded to 5 minutes).
    """
    if os.geteuid() != 0:
        return False, "not root: network namespaces and nftables need root (CAP_NET_ADMIN)"
    if install and _missing_tools() and SETUP.exists():
        subprocess.run(["bash", str(SETUP)], capture_output=True, timeout=300)
    missing = _missing_tools()
    if missing:
        return False, (f"missing {' and '.join(missing)}: run jepsen-like/setup.sh "
                       f"(apt-get install iproute2 nftables)")
    probe = f"jl-probe-{secrets.token_hex(3)}"
    try:
        _run("ip", "netns", "add", probe)
        try:
            _run("ip", "netns", "exec", probe, "nft", "list", "tables")
        finally:
            _run("ip", "netns", "del", probe)
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return False, f"cannot create a network namespace with nftables here: {exc}"
    return True, "root, ip and nft available"


def _free_subnet() -> int:
    used = set(re.findall(rf"{re.escape(SUBNET_PREFIX)}\.(\d+)\.", _run("ip", "-4", "-o",
                                                                        "addr", "show")))
    for k in range(256):
        if str(k) not in used:
            return k
    raise NetnsError(f"no free {SUBNET_PREFIX}.K.0/24 subnet")


class NetnsNetwork:
    """One namespace per node on a private bridge; nftables input-drop rules for cuts.

    Construct, then ``await setup()`` (a few hundred ms), then start the nodes with
    ``wrap``; ``close()`` removes the namespaces, veths and bridge.
    """

    kind = "netns"

    def __init__(self, ports: dict[int, int], *, tag: str | None = None) -> None:
        self.ports = dict(ports)  # node id -> the port it binds (node ids 1..245)
        self.tag = tag or secrets.token_hex(2)  # names every object this network creates
        if not re.fullmatch(r"[0-9a-f]{4}", self.tag):
            raise ValueError("tag must be 4 lowercase hex digits")
        self.subnet = -1  # K of 10.77.K.0/24; chosen by setup()
        self._up = False  # setup() finished and close() not yet called
        self._cut: Cut = frozenset()  # links currently dropped
        if any(not 1 <= n <= 245 for n in ports):
            raise ValueError("node ids must be in 1..245 to get an address")

    # ------------------------------------------------------------------ naming
    def namespace(self, node: int) -> str:
        return f"jl-{self.tag}-n{node}"

    @property
    def bridge(self) -> str:
        return f"jlbr{self.tag}"

    def ip(self, node: int) -> str:
        return f"{SUBNET_PREFIX}.{self.subnet}.{10 + node}"

    @property
    def host_ip(self) -> str:
        return f"{SUBNET_PREFIX}.{self.subnet}.1"

    # ------------------------------------------------------------------ Network
    def listen_address(self, node: int) -> str:
        return f"{self.ip(node)}:{self.ports[node]}"

    def peer_addresses(self, node: int) -> dict[int, str]:
        return {n: self.listen_address(n) for n in self.ports}

    def client_address(self, node: int) -> str:
        return self.listen_address(node)

    def wrap(self, node: int, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(node), *argv]

    # ------------------------------------------------------------------ lifecycle
    async def setup(self) -> None:
        """Create bridge, namespaces, veths, addresses and empty rule tables. Raises
        NetnsError (saying what is missing) if namespaces are unavailable."""
        await asyncio.to_thread(self._setup)

    def _setup(self) -> None:
        ok, why = availability()
        if not ok:
            raise NetnsError(why)
        try:
            br = self.bridge
            # two harnesses setting up at once must not pick the same subnet
            with open(LOCK, "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self.subnet = _free_subnet()
                _run("ip", "link", "add", br, "type", "bridge")
                self._up = True
                _run("ip", "addr", "add", f"{self.host_ip}/24", "dev", br)
            _run("ip", "link", "set", br, "up")
            for node in self.ports:
                ns, host_if, ns_if = self.namespace(node), f"jl{self.tag}h{node}", \
                    f"jl{self.tag}n{node}"
                _run("ip", "netns", "add", ns)
                _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
                _run("ip", "link", "set", ns_if, "netns", ns)
                _run("ip", "link", "set", host_if, "master", br)
                _run("ip", "link", "set", host_if, "up")
                _run("ip", "-n", ns, "addr", "add", f"{self.ip(node)}/24", "dev", ns_if)
                _run("ip", "-n", ns, "link", "set", ns_if, "up")
                _run("ip", "-n", ns, "link", "set", "lo", "up")
                self._apply(node, [])
        except Exception:
            self._teardown()
            raise

    def _apply(self, node: int, drop_from: list[int]) -> None:
        """Replace namespace ``node``'s rules: drop input from these nodes' addresses."""
        rule = ""
        if drop_from:
            addrs = ", ".join(self.ip(n) for n in sorted(drop_from))
            rule = f"        ip saddr {{ {addrs} }} drop\n"
        script = (
            f"table inet {TABLE}\n"
            f"delete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n"
            f"    chain input {{\n"
            f"        type filter hook input priority 0; policy accept;\n"
            f"{rule}"
            f"    }}\n"
            f"}}\n"
        )
        _run("ip", "netns", "exec", self.namespace(node), "nft", "-f", "-", input=script)

    def _set(self, links: Cut) -> None:
        for node in self.ports:
            self._apply(node, [src for src, dst in links if dst == node and src in self.ports])
        self._cut = links

    async def cut(self, links: Cut) -> None:
        await asyncio.to_thread(self._set, frozenset(links))

    async def heal(self) -> None:
        await self.cut(frozenset())

    @property
    def current(self) -> Cut:
        return self._cut

    def _teardown(self) -> None:
        for node in self.ports:
            subprocess.run(["ip", "netns", "del", self.namespace(node)], capture_output=True,
                           timeout=30)
            subprocess.run(["ip", "link", "del", f"jl{self.tag}h{node}"], capture_output=True,
                           timeout=30)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)
        self._up = False

    async def close(self) -> None:
        """Remove namespaces, veths and the bridge. Processes still inside a namespace keep
        it alive until they exit: stop the nodes first."""
        await asyncio.to_thread(self._teardown)


def cleanup_leftovers() -> list[str]:
    """Delete every jl-* namespace and jl* bridge/veth left by a crashed run. Returns
    what was removed. Only objects with this harness's prefixes are touched."""
    removed = []
    for line in _run("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith("jl-"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
            removed.append(f"netns {name}")
    for line in _run("ip", "-o", "link", "show").splitlines():
        m = re.match(r"\d+: (jl[0-9a-f]{4}h\d+|jlbr[0-9a-f]{4})[@:]", line)
        if m:
            subprocess.run(["ip", "link", "del", m.group(1)], capture_output=True, timeout=30)
            removed.append(f"link {m.group(1)}")
    return removed
