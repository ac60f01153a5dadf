"""kvraft serve's configuration: cluster spec, node file, flags (flags win), clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvraft.server.config import ConfigError, build_config, parse_size

SPEC = """
name = "local-3"
data_root = "data/local-3"
[raft]
tick_ms = 20
snapshot_entries = 500
[limits]
max_value_bytes = "2 MiB"
[[node]]
id = 1
address = "127.0.0.1:7101"
metrics = "127.0.0.1:9101"
[[node]]
id = 2
address = "127.0.0.1:7102"
"""

NODE = """
[node]
id = 2
address = "127.0.0.1:8002"
data_dir = "/var/lib/kvraft"
[cluster]
name = "prod"
peers = { "1" = "127.0.0.1:8001", "2" = "127.0.0.1:8002" }
[raft]
election_ticks = 20
lease_reads = false
[limits]
max_inflight_bytes = "64 MiB"
"""


def _write(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text)
    return str(p)


def test_cluster_spec_gives_node_peers_data_dir_and_settings(tmp_path: Path) -> None:
    cfg = build_config(cluster=_write(tmp_path, "c.toml", SPEC), node_id=2)
    assert cfg.node_id == 2 and cfg.address == "127.0.0.1:7102"
    assert dict(cfg.peers) == {1: "127.0.0.1:7101", 2: "127.0.0.1:7102"}
    assert cfg.data_dir == Path("data/local-3/n2")
    assert cfg.cluster_id == "local-3"
    assert (cfg.raft.tick_ms, cfg.raft.snapshot_entries) == (20, 500)
    assert cfg.limits.max_value_bytes == 2 << 20


def test_flags_override_files(tmp_path: Path) -> None:
    cfg = build_config(
        cluster=_write(tmp_path, "c.toml", SPEC), node_id=1, data_dir="/x",
        raft={"tick_ms": 7}, listen="127.0.0.1:9999",
    )
    assert cfg.data_dir == Path("/x") and cfg.raft.tick_ms == 7
    assert cfg.address == "127.0.0.1:9999" and cfg.metrics == "127.0.0.1:9101"


def test_node_config_file(tmp_path: Path) -> None:
    cfg = build_config(config=_write(tmp_path, "n.toml", NODE))
    assert (cfg.node_id, cfg.address, cfg.cluster_id) == (2, "127.0.0.1:8002", "prod")
    assert cfg.data_dir == Path("/var/lib/kvraft")
    assert cfg.raft.election_ticks == 20 and not cfg.raft.lease_reads
    assert cfg.limits.max_inflight_bytes == 64 << 20
    assert cfg.lmdb_dir == Path("/var/lib/kvraft/db")


def test_flags_only_single_node_bootstraps_itself() -> None:
    cfg = build_config(node_id=1, listen="127.0.0.1:7000", data_dir="d")
    assert dict(cfg.peers) == {1: "127.0.0.1:7000"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"listen": "127.0.0.1:7000", "data_dir": "d"}, "no node id"),
        ({"node_id": 1, "data_dir": "d"}, "no listen address"),
        ({"node_id": 1, "listen": "127.0.0.1:7000"}, "no data dir"),
        ({"node_id": 3, "listen": "h:1", "data_dir": "d", "peers": "1=h:1,2=h:2"},
         "not in the peers list"),
        ({"node_id": 1, "listen": "nowhere", "data_dir": "d"}, "--listen: expected host:port"),
        ({"node_id": 1, "listen": "h:1", "data_dir": "d", "peers": "x=h:1"},
         "--peers: expected id=host:port"),
        ({"node_id": 1, "listen": "h:1", "data_dir": "d", "raft": {"tick_ms": 0}},
         "raft timing"),
        ({"node_id": 1, "listen": "h:1", "data_dir": "d", "raft": {"bogus": 1}},
         "unknown key 'bogus'"),
        ({"node_id": 1, "listen": "h:1", "data_dir": "d", "raft": {"check_quorum": False}},
         "lease_reads needs raft.check_quorum"),
    ],
)
def test_config_errors_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(**kwargs)  # type: ignore[arg-type]


def test_join_adds_itself_without_being_a_peer() -> None:
    cfg = build_config(node_id=4, listen="h:4", data_dir="d", peers="1=h:1", join=True)
    assert cfg.join and dict(cfg.peers) == {1: "h:1", 4: "h:4"}


def test_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        build_config(cluster=str(tmp_path / "missing.toml"), node_id=1)
    with pytest.raises(ConfigError, match="needs --id"):
        build_config(cluster=_write(tmp_path, "c.toml", SPEC))
    with pytest.raises(ConfigError, match=r"no \[\[node\]\] with id 9"):
        build_config(cluster=_write(tmp_path, "c.toml", SPEC), node_id=9)
    with pytest.raises(ConfigError, match="cannot read TOML"):
        build_config(cluster=_write(tmp_path, "bad.toml", "x = ["), node_id=1)


def test_sizes() -> None:
    assert parse_size("64 MiB", "x") == 64 << 20
    assert parse_size(4096, "x") == 4096
    assert parse_size("1kb", "x") == 1000
    with pytest.raises(ConfigError, match="expected a size"):
        parse_size("lots", "limits.max_value_bytes")
