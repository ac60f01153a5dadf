"""The generated protobuf code imports as part of the package and mirrors the core types."""

from __future__ import annotations

import dataclasses

from kvraft._pb.kvraft.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    kv_pb2,
    kv_pb2_grpc,
    raft_pb2,
    raft_pb2_grpc,
)
from kvraft.core import types

CORE_MESSAGES = {
    "AppendEntries": types.AppendEntries,
    "AppendResponse": types.AppendResponse,
    "RequestVote": types.RequestVote,
    "VoteResponse": types.VoteResponse,
    "Heartbeat": types.Heartbeat,
    "HeartbeatResponse": types.HeartbeatResponse,
    "InstallSnapshot": types.InstallSnapshot,
    "TimeoutNow": types.TimeoutNow,
}


def test_every_core_message_has_a_proto_twin_with_the_same_fields() -> None:
    oneof = raft_pb2.RaftMessage.DESCRIPTOR.oneofs_by_name["msg"]
    kinds = {f.message_type.name for f in oneof.fields}
    assert kinds == set(CORE_MESSAGES)
    for name, cls in CORE_MESSAGES.items():
        proto_fields = set(raft_pb2.DESCRIPTOR.message_types_by_name[name].fields_by_name)
        assert proto_fields == {f.name for f in dataclasses.fields(cls)}, name


def test_entry_and_role_enums_match_the_core() -> None:
    assert {v.name: v.number for v in raft_pb2.Entry.Type.DESCRIPTOR.values} == {
        t.name: t.value for t in types.EntryType
    }
    assert {v.name: v.number for v in admin_pb2.Role.DESCRIPTOR.values} == {
        r.name: r.value for r in types.Role
    }


def test_command_round_trips_through_bytes() -> None:
    cmd = kv_pb2.Command(
        session=kv_pb2.Session(client_id=7, seq=3),
        time_ms=1_700_000_000_000,
        txn=kv_pb2.TxnRequest(
            compare=[kv_pb2.Compare(key=b"k", target=kv_pb2.Compare.VERSION, version=0)],
            success=[kv_pb2.RequestOp(put=kv_pb2.PutRequest(key=b"k", value=b"v"))],
        ),
    )
    back = kv_pb2.Command.FromString(cmd.SerializeToString())
    assert back == cmd
    assert back.WhichOneof("op") == "txn"
    assert back.txn.compare[0].WhichOneof("target_union") == "version"


def test_services_are_generated() -> None:
    assert hasattr(kv_pb2_grpc, "KVStub") and hasattr(kv_pb2_grpc, "KVServicer")
    assert hasattr(raft_pb2_grpc, "RaftStub") and hasattr(raft_pb2_grpc, "RaftServicer")
    assert hasattr(admin_pb2_grpc, "AdminStub") and hasattr(admin_pb2_grpc, "AdminServicer")
    methods = {m.name for m in kv_pb2.DESCRIPTOR.services_by_name["KV"].methods}
    assert methods == {"Range", "Put", "DeleteRange", "Txn", "Batch"}
