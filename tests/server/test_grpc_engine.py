"""kvraft serve picks gRPC's polling socket layer unless the operator chose one."""

from __future__ import annotations

from kvraft.server.grpc_engine import POLLING, VARIABLE, describe, prefer_polling


def test_polling_is_chosen_when_nobody_chose_and_grpc_is_not_loaded() -> None:
    env: dict[str, str] = {"PATH": "/bin"}
    assert prefer_polling(env, {}) is True
    assert env == {"PATH": "/bin", VARIABLE: POLLING}
    assert describe(env) == "polling"


def test_the_operators_own_setting_wins_even_an_empty_one() -> None:
    for value in ("", "-event_engine_client", "tcp_rcv_lowat"):
        env = {VARIABLE: value}
        assert prefer_polling(env, {}) is False
        assert env == {VARIABLE: value}
        assert describe(env) == f"{VARIABLE}={value!r}"


def test_nothing_changes_once_grpc_is_imported() -> None:
    env: dict[str, str] = {}
    assert prefer_polling(env, {"grpc": object()}) is False
    assert env == {}
    assert describe(env) == "event_engine"
