"""OS-process bookkeeping for the launcher: the PID file and "is this still our node?".

The PID file (``<data_root>/pids.json``) records, per node, the PID, the process start
time (so a PID recycled by the OS for an unrelated program is never signalled) and the
log path. ``kvraft cluster down`` and ``status`` read it; a PID is signalled only after
:func:`is_node_process` confirms it is still the ``kvraft serve`` process we started.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class NodeRecord:
    node_id: int  # the node's Raft id
    pid: int  # OS process id when recorded
    start_time: int | None  # /proc/<pid>/stat starttime (clock ticks since boot); None if unknown
    address: str  # the node's gRPC address
    log: str  # path of the node's stdout/stderr log


@dataclass(frozen=True, slots=True)
class PidFile:
    cluster: str  # the spec's name
    spec: str | None  # path of the spec file the nodes were started from
    launcher_pid: int  # the `kvraft cluster up` process (or test process) that started them
    nodes: tuple[NodeRecord, ...]  # one record per started node, by id

    def dump(self, path: Path) -> None:
        """Write atomically (temp file + rename)."""
        data = {
            "cluster": self.cluster,
            "spec": self.spec,
            "launcher_pid": self.launcher_pid,
            "nodes": [asdict(n) for n in self.nodes],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path) -> PidFile | None:
        """The recorded file, or None if absent or unreadable (treated as stale)."""
        try:
            data = json.loads(path.read_text())
            return PidFile(
                cluster=str(data["cluster"]),
                spec=data.get("spec"),
                launcher_pid=int(data["launcher_pid"]),
                nodes=tuple(
                    NodeRecord(
                        node_id=int(n["node_id"]),
                        pid=int(n["pid"]),
                        start_time=n.get("start_time"),
                        address=str(n["address"]),
                        log=str(n["log"]),
                    )
                    for n in data["nodes"]
                ),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def process_start_time(pid: int) -> int | None:
    """The process's start time from /proc (Linux), or None if unknown or not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after its closing paren.
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited; its PID is not a live node
        return None
    return int(fields[19])


def process_cmdline(pid: int) -> list[str] | None:
    """The argv of a running process, or None if it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        raw = b""
    if raw:
        return raw.rstrip(b"\0").decode(errors="replace").split("\0")
    if Path("/proc/self").exists():
        return None  # Linux: empty cmdline means a zombie or kernel thread
    try:  # other Unixes: ask ps
        out = subprocess.run(
            ["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return None
    return out.split() if out else None


def looks_like_node(argv: list[str], node_id: int) -> bool:
    """True if ``argv`` is a ``kvraft ... serve ... --id <node_id>`` command line."""
    if "serve" not in argv or not any("kvraft" in a for a in argv):
        return False
    for i, arg in enumerate(argv):
        if arg == "--id" and i + 1 < len(argv) and argv[i + 1] == str(node_id):
            return True
        if arg == f"--id={node_id}":
            return True
    return False


def is_node_process(record: NodeRecord) -> bool:
    """True only if the recorded PID is alive, was started when recorded, and still runs
    ``kvraft serve`` for that node: never signal a PID the OS has handed to someone else."""
    argv = process_cmdline(record.pid)
    if argv is None or not looks_like_node(argv, record.node_id):
        return False
    if record.start_time is not None:
        return process_start_time(record.pid) == record.start_time
    return True


def pid_alive(pid: int) -> bool:
    """True if a (non-zombie) process with this PID exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return process_cmdline(pid) is not None
