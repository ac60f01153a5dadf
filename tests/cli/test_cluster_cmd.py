"""`kvraft cluster up|down|status` and the README's quick start, run as a user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kvraft.cluster_launcher import ephemeral_spec, load_spec
from kvraft.cluster_launcher.local import port_free
from kvraft.cluster_launcher.procs import PidFile, is_node_process, pid_alive
from tests.cli.test_cli_cluster import kvraft
from tests.client.realcluster import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


class Lines:
    """Collects a child's stdout lines in a thread, so the test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, marker: str, timeout: float) -> str:
        found = wait_for(lambda: next((ln for ln in self.lines if marker in ln), None)
                         or (self._proc.poll() is not None and "EXITED") or None,
                         timeout, f"a line with {marker!r}")
        assert found != "EXITED", f"exited with {self._proc.returncode}: {self.lines}"
        return found


def test_up_detach_status_down_and_the_clear_messages(tmp_path: Path) -> None:
    spec = ephemeral_spec(3, tmp_path)
    path = str(spec.path)
    r = kvraft("cluster", "up", path, "--detach")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"endpoints: {','.join(spec.endpoints())}\n"
    assert "(leader)" in r.stderr and "cluster down" in r.stderr
    pids = PidFile.load(spec.pid_file)
    assert pids is not None and all(is_node_process(n) for n in pids.nodes)
    try:
        r = kvraft("cluster", "up", path, "--detach")
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert r.returncode == 1 and len(errors) == 1 and "already running" in errors[0]
        assert errors[0].endswith(f"stop it first with `kvraft cluster down {path}`")
        rows = json.loads(kvraft("cluster", "status", path, "-w", "json").stdout)
        assert [row["process"] for row in rows] == ["running"] * 3
        assert sorted(row["role"] for row in rows) == ["follower", "follower", "leader"]
        env = {"KVRAFT_ENDPOINTS": ",".join(spec.endpoints())}
        assert kvraft("put", "k", "v", env=env).returncode == 0
    finally:
        r = kvraft("cluster", "down", path)
    assert r.returncode == 0 and "stopped" in r.stderr
    assert not any(pid_alive(n.pid) for n in pids.nodes)
    assert not spec.pid_file.exists()
    r = kvraft("cluster", "down", path)
    assert r.returncode == 0 and "not running" in r.stderr
    # a PID file whose processes are gone is reported and replaced
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = pids.nodes[0].__class__(1, int(dead.stdout), None, spec.endpoints()[0], "x")
    PidFile(spec.name, path, 1, (stale,)).dump(spec.pid_file)
    r = kvraft("cluster", "status", path)
    assert r.returncode == 1 and "stale pid" in r.stdout
    with socket.socket() as blocker:  # a port in use is named, nothing is left running
        host, port = spec.nodes[1].address.rsplit(":", 1)
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        blocker.bind((host, int(port)))
        blocker.listen()
        r = kvraft("cluster", "up", path, "--detach")
    assert "removing stale PID file" in r.stderr
    assert r.returncode == 1 and f"{spec.nodes[1].address} is already in use" in r.stderr
    assert not spec.pid_file.exists()


def test_up_in_the_foreground_stops_the_nodes_on_ctrl_c(tmp_path: Path) -> None:
    spec = ephemeral_spec(3, tmp_path)
    with (tmp_path / "stderr").open("w+") as err, subprocess.Popen(
            [sys.executable, "-m", "kvraft.cli.main", "cluster", "up", str(spec.path)],
            stdout=subprocess.PIPE, stderr=err, text=True) as proc:
        try:
            Lines(proc).wait_for("endpoints:", 60)
            pids = PidFile.load(spec.pid_file)
            assert pids is not None and len(pids.nodes) == 3
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        err.seek(0)
        assert "stopped" in err.read()
    assert not any(pid_alive(n.pid) for n in pids.nodes)


def test_readme_quick_start(tmp_path: Path) -> None:
    """`./scripts/up` as the README says, in a copy of the repository's entry points that
    shares this virtualenv; then the tour's first commands from a "second terminal"."""
    spec = load_spec(REPO / "cluster" / "local-3.toml", cwd=REPO)
    busy = [a for n in spec.nodes for a in (n.address, n.metrics) if a and not port_free(a)]
    if busy:
        pytest.skip(f"the local-3 ports are in use ({', '.join(busy)})")
    venv = Path(sys.executable).parent.parent
    stamp = venv / ".kvraft-installed"
    if not stamp.exists():
        pytest.skip("the virtualenv was not set up by scripts/_venv.sh")
    root = tmp_path / "repo"
    for rel in ("scripts/_venv.sh", "scripts/up", "cluster/local-3.toml", "pyproject.toml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    # never let _venv.sh re-install this virtualenv from the copy
    before = stamp.stat().st_mtime - 60
    os.utime(root / "pyproject.toml", (before, before))
    env = {**os.environ, "KVRAFT_VENV": str(venv)}
    env.pop("KVRAFT_ENDPOINTS", None)
    with (tmp_path / "stderr").open("w") as err, subprocess.Popen(
            ["./scripts/up"], cwd=root, env=env, stdout=subprocess.PIPE, stderr=err,
            text=True) as up:
        quick_start_tour(root, up)


def quick_start_tour(root: Path, up: subprocess.Popen[str]) -> None:
    try:
        line = Lines(up).wait_for("endpoints:", 90)
        assert line == "endpoints: 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
        second = {"KVRAFT_ENDPOINTS": ""}  # the defaults are the local cluster's
        assert kvraft("put", "greeting", "hello", env=second).stdout == "OK\n"
        assert kvraft("get", "greeting", env=second).stdout == "greeting\nhello\n"
        r = kvraft("status", env=second)
        assert r.returncode == 0 and r.stdout.count("healthy") == 3
        assert (root / "data" / "local-3" / "n1").is_dir()
        pids = PidFile.load(root / "data" / "local-3" / "pids.json")
        assert pids is not None
        up.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.wait(30) == 0
        wait_for(lambda: not any(pid_alive(n.pid) for n in pids.nodes) or None, 10,
                 "the nodes to exit")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
            kvraft("cluster", "down", cwd=root)  # the nodes outlive a SIGKILLed launcher
