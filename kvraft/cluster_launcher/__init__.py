"""Local cluster launcher: spec files, node processes, PID file.

Used by ``kvraft cluster up|down|status``, the integration tests and ``jepsen-like/``::

    from kvraft.cluster_launcher import LocalCluster, ephemeral_spec

    spec = ephemeral_spec(3, tmp_path)          # free loopback ports, data under tmp_path
    with LocalCluster(spec) as cluster:         # stops every node on exit
        leader = cluster.start()                # starts all, waits for a leader
        cluster.kill_node(leader)               # SIGKILL; also pause_node/resume_node
        cluster.wait_for_leader(exclude=[leader])
        cluster.start_node(leader)              # restart with its data dir
"""

from __future__ import annotations

from kvraft.cluster_launcher.local import (
    AlreadyRunning,
    LauncherError,
    LocalCluster,
    NodeExited,
    NodeProcess,
    PortInUse,
)
from kvraft.cluster_launcher.probe import NodeStatus, probe_status
from kvraft.cluster_launcher.spec import (
    ClusterSpec,
    NodeSpec,
    SpecError,
    ephemeral_spec,
    load_spec,
    render_spec,
)

__all__ = [
    "AlreadyRunning",
    "ClusterSpec",
    "LauncherError",
    "LocalCluster",
    "NodeExited",
    "NodeProcess",
    "NodeSpec",
    "NodeStatus",
    "PortInUse",
    "SpecError",
    "ephemeral_spec",
    "load_spec",
    "probe_status",
    "render_spec",
]
