"""Ask one node for its Admin Status, synchronously, with a short timeout.

The launcher uses this to wait for a leader and to show ``kvraft cluster status``; it is
deliberately independent of the client library (no retries, no redirects).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from kvraft._pb.kvraft.v1 import admin_pb2, admin_pb2_grpc

ROLE_NAMES = {0: "follower", 1: "pre-candidate", 2: "candidate", 3: "leader", 4: "learner"}


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The parts of a node's Admin Status the launcher needs."""

    node_id: int  # the answering node
    role: str  # "leader", "follower", ... (see ROLE_NAMES)
    term: int  # its current term
    leader_id: int  # the leader it knows of, 0 if none
    applied_index: int  # last index applied to its state machine
    healthy: bool  # knows a leader and its storage is sound

    @property
    def is_leader(self) -> bool:
        return self.role == "leader"

    def describe(self) -> str:
        leader = f"leader {self.leader_id}" if self.leader_id else "no leader"
        return f"{self.role} term {self.term}, {leader}"


def probe_status(address: str, timeout: float = 1.0) -> NodeStatus | None:
    """The node's status, or None if it does not answer within ``timeout`` seconds."""
    options = [("grpc.enable_retries", 0), ("grpc.initial_reconnect_backoff_ms", 100)]
    with grpc.insecure_channel(address, options=options) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        try:
            r = stub.Status(admin_pb2.StatusRequest(), timeout=timeout)
        except grpc.RpcError:
            return None
    return NodeStatus(
        node_id=r.id,
        role=ROLE_NAMES.get(r.role, str(r.role)),
        term=r.term,
        leader_id=r.leader_id,
        applied_index=r.applied_index,
        healthy=r.healthy,
    )
