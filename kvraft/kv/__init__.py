"""kvraft.kv: the KV state machine (commands, revisions, sessions, snapshots).

Public API: :class:`KvStateMachine` (apply / range / snapshots), request validation
(:class:`Limits`, :class:`InvalidRequest`, ``validate_*``), and command encoding
(:func:`encode_command`).
"""

from kvraft.kv.command import encode_command
from kvraft.kv.machine import KvStateMachine
from kvraft.kv.validate import (
    InvalidRequest,
    Limits,
    validate_command,
    validate_delete_range,
    validate_put,
    validate_range,
    validate_txn,
)

__all__ = [
    "InvalidRequest",
    "KvStateMachine",
    "Limits",
    "encode_command",
    "validate_command",
    "validate_delete_range",
    "validate_put",
    "validate_range",
    "validate_txn",
]
