"""The deployment assets in cluster/ stay valid and agree with the code: the example node
config loads with the real config loader, the systemd unit and the container entry point
produce `kvraft serve` command lines the real CLI accepts, the Kubernetes manifest is
well-formed YAML whose peers, ports and names fit together, and cluster/README.md
describes every file."""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from kvraft.cli import serve
from kvraft.server.config import Limits, NodeConfig, RaftSettings, build_config, parse_peers

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
DEFAULTS = RaftSettings()
# what a SIGTERM costs at most with the default timing: the hand-over wait (two election
# timeouts, kvraft/server/node.py) plus the gRPC server's drain grace (1 s)
STOP_SECONDS = 2 * DEFAULTS.election_ticks * DEFAULTS.tick_ms / 1000 + 1.0


def serve_config(argv: list[str]) -> NodeConfig:
    """Parse ``kvraft serve ARGV`` with the real parser and build its NodeConfig."""
    parser = argparse.ArgumentParser(prog="kvraft")
    serve.register(parser.add_subparsers())
    args = parser.parse_args(["serve", *argv])
    raft = {k: getattr(args, k) for k in ("tick_ms", "election_ticks", "snapshot_entries")
            if getattr(args, k) is not None}
    return build_config(
        cluster=args.cluster, config=args.config, node_id=args.node_id, listen=args.listen,
        peers=args.peers, data_dir=args.data_dir, cluster_id=args.cluster_id, join=args.join,
        metrics=args.metrics, raft=raft, log_format=args.log_format, log_file=args.log_file,
    )


# ---------------------------------------------------------------------- node config
def test_node_example_loads_with_the_real_loader() -> None:
    path = CLUSTER / "node.example.toml"
    cfg = serve_config(["--config", str(path)])
    assert cfg.node_id == 1
    assert cfg.address == "10.0.0.11:7101"
    assert cfg.metrics == "10.0.0.11:9101"
    assert cfg.data_dir == Path("/var/lib/kvraft/node1")
    assert cfg.cluster_id == "prod"
    assert cfg.peers == {1: "10.0.0.11:7101", 2: "10.0.0.12:7101", 3: "10.0.0.13:7101"}
    # it documents the defaults, and every key there is
    assert cfg.raft == RaftSettings() and cfg.limits == Limits()
    data = tomllib.loads(path.read_text())
    assert set(data["raft"]) == {f.name for f in dataclasses.fields(RaftSettings)}
    assert set(data["limits"]) == {f.name for f in dataclasses.fields(Limits)}


# ---------------------------------------------------------------------- systemd
def read_unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string((CLUSTER / "kvraft@.service").read_text())
    return unit


def seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+)(s|min)?", value)
    assert m, f"unexpected time span {value!r}"
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def test_systemd_unit() -> None:
    svc = read_unit()["Service"]
    assert svc["Restart"] == "on-failure"
    assert svc["RestartPreventExitStatus"] == "2"  # kvraft serve: 2 = configuration mistake
    assert int(svc["LimitNOFILE"]) >= 65536
    assert seconds(svc["TimeoutStopSec"]) > 5 * STOP_SECONDS
    assert svc["KillSignal"] == "SIGTERM"
    assert svc["ProtectSystem"] == "strict" and svc["NoNewPrivileges"] == "yes"
    argv = shlex.split(svc["ExecStart"])
    assert Path(argv[0]).name == "kvraft"
    assert argv[1:4] == ["serve", "--config", "/etc/kvraft/%i.toml"]
    # the example, installed as /etc/kvraft/node1.toml, runs as kvraft@node1 in the
    # state directory systemd creates for that instance
    cfg = serve_config(["--config", str(CLUSTER / "node.example.toml"), *argv[4:]])
    assert cfg.log_format == "json"
    assert svc["StateDirectory"] == "kvraft/%i"
    assert cfg.data_dir == Path("/var/lib") / svc["StateDirectory"].replace("%i", "node1")
    assert read_unit()["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    kvraft = str(Path(sys.executable).parent / "kvraft")
    text = (CLUSTER / "kvraft@.service").read_text().replace("/usr/local/bin/kvraft", kvraft)
    unit = tmp_path / "kvraft@node1.service"
    unit.write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stderr


# ---------------------------------------------------------------------- container
def entry(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run cluster/entrypoint.sh with a stand-in `kvraft` that prints its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "kvraft"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    return subprocess.run(
        ["sh", str(CLUSTER / "entrypoint.sh"), *args], capture_output=True, text=True,
        timeout=30, env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env},
    )


def test_entrypoint_derives_the_node_from_the_pod_ordinal(tmp_path: Path) -> None:
    peers = "1=kvraft-0.kvraft:7101,2=kvraft-1.kvraft:7101,3=kvraft-2.kvraft:7101"
    out = entry(tmp_path, "--tick-ms", "20", HOSTNAME="kvraft-2", KVRAFT_PEERS=peers,
                KVRAFT_LISTEN="10.1.2.3:7101")
    assert out.returncode == 0, out.stderr
    argv = out.stdout.splitlines()
    assert argv[0] == "serve"
    cfg = serve_config(argv[1:])
    assert cfg.node_id == 3 and cfg.address == "10.1.2.3:7101"
    assert cfg.peers == parse_peers(peers)
    assert cfg.metrics == "0.0.0.0:9101" and cfg.data_dir == Path("/var/lib/kvraft/data")
    assert cfg.raft.tick_ms == 20 and cfg.log_format == "json" and not cfg.join
    # ids that share a prefix are told apart ("1=" is not "11=")
    out = entry(tmp_path, KVRAFT_ID="1", KVRAFT_PEERS="11=a:7101,1=b:7101")
    assert "--join" not in out.stdout.splitlines()


def test_entrypoint_options_and_errors(tmp_path: Path) -> None:
    out = entry(tmp_path, KVRAFT_ID="4", KVRAFT_METRICS="", KVRAFT_JOIN="1",
                KVRAFT_PEERS="1=a:7101,4=d:7101")
    cfg = serve_config(out.stdout.splitlines()[1:])
    assert (cfg.node_id, cfg.address, cfg.metrics, cfg.join) == (4, "d:7101", None, True)
    # a replica beyond the initial voters joins instead of bootstrapping on its own
    late = entry(tmp_path, HOSTNAME="kvraft-3", KVRAFT_PEERS="1=a:7101,2=b:7101,3=c:7101",
                 KVRAFT_LISTEN="10.1.2.4:7101")
    cfg = serve_config(late.stdout.splitlines()[1:])
    assert (cfg.node_id, cfg.join, cfg.address) == (4, True, "10.1.2.4:7101")
    bad = entry(tmp_path, HOSTNAME="box")
    assert bad.returncode == 2 and "set KVRAFT_ID" in bad.stderr
    cmd = entry(tmp_path, "echo", "hello")  # a command runs as given
    assert (cmd.returncode, cmd.stdout) == (0, "hello\n")


def test_dockerfile_agrees_with_the_entrypoint_and_ports() -> None:
    text = (CLUSTER / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    copied = re.search(r"^COPY --chmod=0755 (\S+) (\S+)$", text, re.M)
    assert copied is not None and entrypoint == [copied.group(2)]
    assert (CLUSTER.parent / copied.group(1)) == CLUSTER / "entrypoint.sh"
    assert re.search(r"^EXPOSE 7101 9101$", text, re.M)
    assert re.search(r"^USER kvraft$", text, re.M)


# ---------------------------------------------------------------------- Kubernetes
def manifests() -> dict[tuple[str, str], Any]:
    docs = list(yaml.safe_load_all((CLUSTER / "kubernetes.yaml").read_text()))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


def test_kubernetes_statefulset_and_headless_service_fit_together() -> None:
    m = manifests()
    assert {kind for kind, _ in m} == {"Service", "StatefulSet", "PodDisruptionBudget"}
    sts = m[("StatefulSet", "kvraft")]["spec"]
    headless = m[("Service", sts["serviceName"])]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert sts["podManagementPolicy"] == "Parallel"  # OrderedReady would never elect
    replicas = sts["replicas"]
    assert replicas == 3
    labels = sts["template"]["metadata"]["labels"]
    assert sts["selector"]["matchLabels"] == labels == headless["selector"]
    pod = sts["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 5 * STOP_SECONDS
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 7101, "metrics": 9101}
    for svc in (headless, m[("Service", "kvraft-client")]["spec"]):
        assert {p["targetPort"] for p in svc["ports"]} <= set(ports)
    assert container["readinessProbe"]["grpc"]["port"] == ports["grpc"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KVRAFT_METRICS"].endswith(f":{ports['metrics']}")
    # peers: node i+1 is pod <statefulset>-i under the headless service, on the gRPC port
    peers = parse_peers(env["KVRAFT_PEERS"].replace("$(POD_NAMESPACE)", "default"))
    assert peers == {
        i + 1: f"kvraft-{i}.{sts['serviceName']}.default.svc.cluster.local:{ports['grpc']}"
        for i in range(replicas)
    }
    mount = {v["name"]: v["mountPath"] for v in container["volumeMounts"]}
    claim = sts["volumeClaimTemplates"][0]["metadata"]["name"]
    assert env["KVRAFT_DATA_DIR"].startswith(mount[claim] + "/")
    pdb = m[("PodDisruptionBudget", "kvraft")]["spec"]
    assert replicas - pdb["maxUnavailable"] > replicas // 2  # a quorum survives disruptions


# ---------------------------------------------------------------------- docs
def test_cluster_readme_describes_every_file() -> None:
    readme = (CLUSTER / "README.md").read_text()
    for f in sorted(CLUSTER.iterdir()):
        if f.name != "README.md":
            assert f"`{f.name}`" in readme, f"cluster/README.md does not describe {f.name}"
