"""Cluster spec files: the TOML that names a local cluster's nodes.

A spec (``cluster/local-3.toml``) looks like::

    name = "local-3"
    data_root = "data/local-3"     # relative to the current directory
    [raft]                         # optional: [raft]/[limits] keys of the node config
    tick_ms = 50
    [[node]]
    id = 1
    address = "127.0.0.1:7101"     # one gRPC port per node (KV, Admin, Raft, health)
    metrics = "127.0.0.1:9101"     # optional Prometheus listener

``kvraft serve --cluster SPEC --id N`` runs node N of it with data dir
``<data_root>/n<N>``; the launcher starts one such process per node.
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TomlScalar = str | int | float | bool


class SpecError(ValueError):
    """A cluster spec file is missing, unreadable or malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    id: int  # positive, unique within the spec
    address: str  # "host:port" the node's gRPC server listens on and peers dial
    metrics: str | None = None  # "host:port" of the Prometheus listener, if any


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    name: str  # a label for messages and logs
    data_root: Path  # absolute; node N keeps its state in data_root / f"n{N}"
    nodes: tuple[NodeSpec, ...]  # at least one, sorted by id, ids and addresses unique
    path: Path | None = None  # the file this spec was read from (absolute), if any
    raft: Mapping[str, TomlScalar] = field(default_factory=dict)  # passed through to nodes
    limits: Mapping[str, TomlScalar] = field(default_factory=dict)  # passed through to nodes

    def node(self, node_id: int) -> NodeSpec:
        """The node with this id; ``KeyError`` naming the known ids if there is none."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        known = ", ".join(str(n.id) for n in self.nodes)
        raise KeyError(f"node {node_id} is not in cluster {self.name!r} (nodes: {known})")

    @property
    def ids(self) -> list[int]:
        return [n.id for n in self.nodes]

    def endpoints(self) -> list[str]:
        """Every node's client address, in id order."""
        return [n.address for n in self.nodes]

    def data_dir(self, node_id: int) -> Path:
        return self.data_root / f"n{node_id}"

    def log_path(self, node_id: int) -> Path:
        return self.data_root / "logs" / f"n{node_id}.log"

    @property
    def pid_file(self) -> Path:
        return self.data_root / "pids.json"


def split_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:7101"`` -> ``("127.0.0.1", 7101)``; ``ValueError`` if malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _nodes_from(raw: Any, where: str) -> tuple[NodeSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"{where}: needs at least one [[node]] table")
    nodes: list[NodeSpec] = []
    for i, entry in enumerate(raw, 1):
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: [[node]] #{i} is not a table")
        node_id, address, metrics = entry.get("id"), entry.get("address"), entry.get("metrics")
        if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id <= 0:
            raise SpecError(f"{where}: [[node]] #{i} needs a positive integer id")
        if not isinstance(address, str):
            raise SpecError(f"{where}: node {node_id} needs address = \"host:port\"")
        for label, value in (("address", address), ("metrics", metrics)):
            if value is None:
                continue
            if not isinstance(value, str):
                raise SpecError(f"{where}: node {node_id} {label} must be a string")
            try:
                split_address(value)
            except ValueError as e:
                raise SpecError(f"{where}: node {node_id}: {e}") from None
        nodes.append(NodeSpec(node_id, address, metrics))
    ids = [n.id for n in nodes]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{where}: node ids must be unique (got {ids})")
    addresses = [n.address for n in nodes] + [n.metrics for n in nodes if n.metrics]
    if len(set(addresses)) != len(addresses):
        raise SpecError(f"{where}: every address and metrics address must be distinct")
    return tuple(sorted(nodes, key=lambda n: n.id))


def _scalars(raw: Any, table: str, where: str) -> dict[str, TomlScalar]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(v, str | int | float | bool) for v in raw.values()
    ):
        raise SpecError(f"{where}: [{table}] must hold only plain key = value settings")
    return dict(raw)


def parse_spec(data: Mapping[str, Any], *, base: Path, path: Path | None = None) -> ClusterSpec:
    """Build a spec from parsed TOML; relative ``data_root`` is taken relative to ``base``."""
    where = str(path) if path else "cluster spec"
    name = data.get("name", path.stem if path else "cluster")
    data_root = data.get("data_root")
    if not isinstance(name, str):
        raise SpecError(f"{where}: name must be a string")
    if not isinstance(data_root, str) or not data_root:
        raise SpecError(f'{where}: needs data_root = "DIR" (where node data and logs go)')
    root = Path(data_root)
    return ClusterSpec(
        name=name,
        data_root=(root if root.is_absolute() else base / root).resolve(),
        nodes=_nodes_from(data.get("node"), where),
        path=path,
        raft=_scalars(data.get("raft"), "raft", where),
        limits=_scalars(data.get("limits"), "limits", where),
    )


def load_spec(path: str | Path, *, cwd: Path | None = None) -> ClusterSpec:
    """Read a spec file. A relative ``data_root`` is relative to ``cwd`` (default: the
    current directory), as the shared config conventions say. Raises ``SpecError``."""
    p = Path(path).resolve()
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SpecError(f"cluster spec {path} does not exist") from None
    except OSError as e:
        raise SpecError(f"cannot read cluster spec {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"cluster spec {path} is not valid TOML: {e}") from None
    return parse_spec(data, base=cwd or Path.cwd(), path=p)


def _toml_value(v: TomlScalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_spec(spec: ClusterSpec) -> str:
    """The spec as TOML text that :func:`load_spec` reads back to an equal spec
    (``data_root`` is written absolute)."""
    lines = [f"name = {_toml_value(spec.name)}", f"data_root = {_toml_value(str(spec.data_root))}"]
    for table, values in (("raft", spec.raft), ("limits", spec.limits)):
        if values:
            lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    for n in spec.nodes:
        lines += ["", "[[node]]", f"id = {n.id}", f"address = {_toml_value(n.address)}"]
        if n.metrics:
            lines.append(f"metrics = {_toml_value(n.metrics)}")
    return "\n".join(lines) + "\n"


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the OS reports free right now (they may be taken later)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def ephemeral_spec(
    size: int,
    directory: Path,
    *,
    name: str | None = None,
    raft: Mapping[str, TomlScalar] | None = None,
    limits: Mapping[str, TomlScalar] | None = None,
    metrics: bool = False,
    ids: Sequence[int] | None = None,
) -> ClusterSpec:
    """A spec of ``size`` nodes on free loopback ports with ``data_root = directory``,
    written to ``directory / "cluster.toml"`` (so ``kvraft serve --cluster`` can read it).
    Used by tests and the fault-injection harness."""
    node_ids = list(ids) if ids is not None else list(range(1, size + 1))
    ports = free_ports(len(node_ids) * (2 if metrics else 1))
    nodes = tuple(
        NodeSpec(
            node_id,
            f"127.0.0.1:{ports[i]}",
            f"127.0.0.1:{ports[len(node_ids) + i]}" if metrics else None,
        )
        for i, node_id in enumerate(node_ids)
    )
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "cluster.toml"
    spec = ClusterSpec(
        name=name or f"test-{size}",
        data_root=directory,
        nodes=nodes,
        path=path,
        raft=dict(raft or {}),
        limits=dict(limits or {}),
    )
    path.write_text(render_spec(spec))
    return spec
