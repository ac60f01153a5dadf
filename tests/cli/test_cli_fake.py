"""The `kvraft` client subcommands against fake nodes: output formats, exit codes and
one-line errors (no tracebacks). The same commands run against a real cluster in
test_cli_cluster.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kvraft.cli.kv import parse_compare, parse_op
from kvraft.cli.main import main
from kvraft.cluster_launcher.spec import free_ports
from tests.client.fakes import FakeCluster, fake_cluster_in_thread

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with fake_cluster_in_thread() as fake:
        yield fake


def kvraft(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(cluster: FakeCluster, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("KVRAFT_ENDPOINTS", ",".join(cluster.endpoints))
    return lambda *argv: kvraft(capsys, *argv)  # (exit code, stdout, stderr)


def test_put_get_formats(cli: Cli, cluster: FakeCluster) -> None:
    assert cli("put", "greeting", "hello") == (0, "OK\n", "")
    assert cli("get", "greeting") == (0, "greeting\nhello\n", "")
    assert cli("get", "greeting", "--print-value-only") == (0, "hello\n", "")
    code, out, _ = cli("get", "greeting", "-w", "json")
    doc = json.loads(out)
    assert code == 0 and doc["kvs"] == [{"key": "greeting", "value": "hello", "version": 1,
                                         "create_revision": 1, "mod_revision": 1}]
    assert doc["header"]["leader_id"] == 1 and doc["count"] == 1
    code, out, _ = cli("get", "greeting", "-w", "table")
    lines = out.splitlines()
    assert code == 0 and lines[1].split("|")[1].strip() == "KEY"
    assert "| greeting | hello |" in out
    code, out, _ = cli("put", "greeting", "hi", "--prev-kv")
    assert (code, out) == (0, "OK\ngreeting\nhello\n")


def test_missing_key_and_ranges(cli: Cli, cluster: FakeCluster) -> None:
    code, out, err = cli("get", "nope")
    assert (code, out) == (1, "") and err == "error: get nope: key not found\n"
    for k in ("a/1", "a/2", "b/1"):
        cli("put", k, "v" + k)
    assert cli("get", "a/", "--prefix", "--print-value-only")[1] == "va/1\nva/2\n"
    assert cli("get", "a/", "--prefix", "--limit", "1", "-w", "json")[1].count('"key"') == 1
    assert cli("get", "a/2", "\\0", "--keys-only", "--print-value-only")[1] == "\n\n"
    assert cli("get", "zzz", "--prefix") == (0, "", "")
    assert cli("scan", "--keys-only")[1] == "a/1\na/2\nb/1\n"
    assert cli("scan", "a/", "--prefix", "--page-size", "1")[1] == "a/1\nva/1\na/2\nva/2\n"
    assert json.loads(cli("scan", "a/2", "-w", "json")[1])["count"] == 2
    assert cli("get", "b/1", "--consistency", "stale", "--print-value-only")[1] == "vb/1\n"
    assert cli("del", "a/", "--prefix") == (0, "2\n", "")
    assert json.loads(cli("del", "b/1", "--prev-kv", "-w", "json")[1])["deleted"] == 1


def test_txn(cli: Cli, cluster: FakeCluster) -> None:
    code, out, _ = cli("txn", "--if", "version(lock) == 0", "--then", "put lock me",
                       "--then", "get lock", "--else", "get lock")
    assert (code, out) == (0, "SUCCESS\nOK\nlock\nme\n")
    code, out, _ = cli("txn", "--if", "value(lock) == 'you'", "--then", "del lock",
                       "--else", "get lock", "-w", "json")
    doc = json.loads(out)
    assert code == 0 and doc["succeeded"] is False
    assert doc["responses"][0]["range"]["kvs"][0]["value"] == "me"


def test_txn_parsing_errors_name_the_problem() -> None:
    c = parse_compare('value("a b") != "x y"')
    assert (c.key, c.target, c.op, c.operand) == (b"a b", "value", "!=", b"x y")
    assert parse_compare("mod(k) < 10").operand == 10
    assert parse_op("get a c").pb.range.range_end == b"c"
    from kvraft.cli.common import CliError

    for bad, msg in [("version(k) >= 1", "OP one of"), ("size(k) == 1", r"value\(KEY\)"),
                     ("version(k) == x", "integer")]:
        with pytest.raises(CliError, match=msg):
            parse_compare(bad)
    with pytest.raises(CliError, match="put KEY VALUE"):
        parse_op("put onlykey")


def test_errors_are_one_line_with_exit_codes(cli: Cli, cluster: FakeCluster,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli("put", "", "x")
    assert code == 2 and err.startswith("error: put : key is empty") and err.count("\n") == 1
    dead = ",".join(f"127.0.0.1:{p}" for p in free_ports(3))
    code, out, err = cli("get", "k", "--endpoints", dead, "--timeout", "0.3")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "no node could serve it" in err and "kvraft status" in err
    code, _, err = cli("get", "k", "--endpoints", "nocolon")
    assert code == 2 and "not host:port" in err
    cluster.node(1).behaviour.refuse_outcome = 10**6
    code, _, err = cli("put", "k", "v", "--timeout", "0.3")
    assert code == 3 and "outcome unknown" in err
    code, _, err = cli("get", "k", "--consistency", "stale", "--max-staleness", "-1")
    assert code != 0 and "Traceback" not in err


def test_status_and_members(cli: Cli, cluster: FakeCluster) -> None:
    code, out, _ = cli("status")
    assert code == 0
    lines = out.splitlines()
    head = [h.strip() for h in lines[1].strip("|").split("|")]
    assert head == ["ID", "ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LOG",
                    "SNAPSHOT", "DB SIZE", "HEALTH"]
    assert [ln.split("|")[3].strip() for ln in lines[3:6]] == ["leader", "follower",
                                                               "follower"]
    rows = json.loads(cli("status", "-w", "json")[1])
    assert [r["id"] for r in rows] == [1, 2, 3] and rows[0]["role"] == "leader"
    cluster.leader = 0
    code, _, err = cli("status")
    assert code == 1 and "no leader" in err
    cluster.leader = 1
    code, out, _ = cli("member", "list", "-w", "json")
    assert [m["id"] for m in json.loads(out)["members"]] == [1, 2, 3]
    code, out, _ = cli("member", "add", "4", "127.0.0.1:9", "--learner")
    assert code == 0 and out.startswith("added node 4 (127.0.0.1:9) as a learner")
    assert cli("member", "promote", "4")[1].startswith("promoted node 4 to voter")
    code, out, _ = cli("member", "remove", "4")
    assert code == 0 and out.startswith(
        "removed node 4; every remaining member applied it: node 4 can be stopped")
    # a remaining member that does not answer: the removed node must keep running
    assert cli("member", "add", "5", "127.0.0.1:9", "--learner")[0] == 0
    assert cli("member", "add", "6", "127.0.0.1:9", "--learner")[0] == 0
    code, out, _ = cli("member", "remove", "6", "--wait", "0.3")
    assert code == 0 and out.startswith(
        "removed node 6; node(s) 5 have not applied it yet: keep node 6 running")
    assert cli("member", "remove", "5")[0] == 0
    code, _, err = cli("member", "add", "2", "127.0.0.1:9")
    assert code == 2 and "already a member" in err
    assert cli("leader", "transfer", "--to", "2") == (0, "leadership transferred to node 2\n",
                                                      "")


def test_snapshot_save_and_bad_file(cli: Cli, cluster: FakeCluster,
                                    tmp_path: Path) -> None:
    code, out, _ = cli("snapshot", "save", str(tmp_path / "s.snap"))
    assert code == 0 and out.startswith("saved snapshot at index 7 (term 2")
    assert (tmp_path / "s.snap").read_bytes() == cluster.node(1).snapshot_file
    code, _, err = cli("snapshot", "status", str(tmp_path / "s.snap"))
    assert code == 1 and err.startswith("error: snapshot status: ") and err.count("\n") == 1
    code, _, err = cli("snapshot", "status", str(tmp_path / "missing.snap"))
    assert code == 1 and "does not exist" in err
