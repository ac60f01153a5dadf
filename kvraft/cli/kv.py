"""``kvraft put|get|del|scan|txn``: key-value operations from the shell.

    kvraft put greeting hello
    kvraft get greeting                       # prints the key, then the value
    kvraft get user/ --prefix -w table        # every key under user/
    kvraft get greeting --consistency stale   # any node may answer, possibly behind
    kvraft scan user/ --prefix --limit 100    # pages through large ranges
    kvraft del user/ --prefix
    kvraft txn --if 'version(lock) == 0' --then 'put lock me' --else 'get lock'

A single-key ``get`` of a missing key prints an error and exits 1; a range that matches
nothing prints nothing and exits 0.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from kvraft.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_client_options,
    with_client,
)
from kvraft.cli.output import emit, text
from kvraft.client import Client, Consistency, Op
from kvraft.client.txn import Compare
from kvraft.client.types import DeleteResult, Header, KeyValue, PutResult, RangeResult

KV_COLUMNS = ("key", "value", "version", "create_revision", "mod_revision")


def kv_row(kv: KeyValue) -> dict[str, Any]:
    return {"key": kv.key, "value": kv.value, "version": kv.version,
            "create_revision": kv.create_revision, "mod_revision": kv.mod_revision}


def header_json(h: Header) -> dict[str, int]:
    return {"revision": h.revision, "node_id": h.node_id, "term": h.term,
            "leader_id": h.leader_id}


def print_kvs(kvs: list[KeyValue], fmt: str, *, value_only: bool = False,
              extra: dict[str, Any] | None = None) -> None:
    rows = [kv_row(kv) for kv in kvs]
    if value_only:
        simple = [text(kv.value) for kv in kvs]
    else:
        simple = [line for kv in kvs for line in (text(kv.key), text(kv.value))]
    emit(rows, KV_COLUMNS, fmt, json_value={**(extra or {}), "kvs": rows}, simple=simple)


def range_end(end: str | None) -> bytes:
    """A range end from the command line; the two characters \\0 mean "to the end"."""
    if end is None:
        return b""
    return b"\0" if end in ("\\0", "\0") else end.encode()


def _consistency(args: argparse.Namespace) -> Consistency:
    try:
        return Consistency.parse(args.consistency)
    except ValueError as e:
        raise CliError(str(e), EXIT_USAGE) from None


def _add_read_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--consistency", default="linearizable",
                   choices=["linearizable", "lease", "stale"],
                   help="linearizable (default, leader confirms), lease (leader, no round "
                        "trip) or stale (any node, may be behind)")
    p.add_argument("--max-staleness", type=float, metavar="SECONDS",
                   help="with --consistency stale: only nodes that know they are at most "
                        "this far behind may answer")
    p.add_argument("--keys-only", action="store_true", help="print keys without values")


# ---------------------------------------------------------------------------- put
async def _put(c: Client, args: argparse.Namespace) -> int:
    value = args.value if args.value is not None else sys.stdin.buffer.read()
    r: PutResult = await c.put(args.key, value, prev_kv=args.prev_kv)
    out: dict[str, Any] = {"revision": r.header.revision}
    if r.prev_kv is not None:
        out["prev_kv"] = kv_row(r.prev_kv)
    simple = ["OK"] + ([text(r.prev_kv.key), text(r.prev_kv.value)] if r.prev_kv else [])
    emit([out], ["revision"], args.write_out, json_value={"header": header_json(r.header),
                                                           **out}, simple=simple)
    return EXIT_OK


# ---------------------------------------------------------------------------- get
async def _get(c: Client, args: argparse.Namespace) -> int:
    level = _consistency(args)
    ranged = args.prefix or args.end is not None
    r: RangeResult = await c.range(args.key, range_end(args.end), prefix=args.prefix,
                                   limit=args.limit, keys_only=args.keys_only,
                                   consistency=level, max_staleness=args.max_staleness)
    if not ranged and not r.kvs:
        raise CliError(f"get {args.key}: key not found", EXIT_FAILED)
    print_kvs(r.kvs, args.write_out, value_only=args.print_value_only,
              extra={"header": header_json(r.header), "count": r.count, "more": r.more})
    return EXIT_OK


def _scan_end(end: str | None) -> bytes | None:
    return None if end is None else range_end(end)


async def _scan(c: Client, args: argparse.Namespace) -> int:
    pages = c.scan(args.start, _scan_end(args.end), prefix=args.start if args.prefix else None,
                   limit=args.limit, page_size=args.page_size, keys_only=args.keys_only,
                   consistency=_consistency(args), max_staleness=args.max_staleness)
    if args.write_out == "simple":  # stream: print each page as it arrives
        async for kv in pages:
            print(text(kv.key))
            if not args.keys_only:
                print(text(kv.value))
        return EXIT_OK
    kvs = [kv async for kv in pages]
    print_kvs(kvs, args.write_out, extra={"count": len(kvs)})
    return EXIT_OK


# ---------------------------------------------------------------------------- del
async def _del(c: Client, args: argparse.Namespace) -> int:
    r: DeleteResult = await c.delete_range(args.key, range_end(args.end), prefix=args.prefix,
                                           prev_kv=args.prev_kv)
    rows = [kv_row(kv) for kv in r.prev_kvs]
    simple = [str(r.deleted)] + [ln for kv in r.prev_kvs for ln in (text(kv.key),
                                                                    text(kv.value))]
    emit([{"deleted": r.deleted, "revision": r.header.revision}], ["deleted", "revision"],
         args.write_out, simple=simple,
         json_value={"header": header_json(r.header), "deleted": r.deleted, "prev_kvs": rows})
    return EXIT_OK


# ---------------------------------------------------------------------------- txn
_OPS = ("==", "!=", ">", "<")


def parse_compare(expr: str) -> Compare:
    """``value(KEY) == VALUE``, ``version(KEY) > 2``, ``create(KEY) == 0``,
    ``mod(KEY) < 10``; the key may be quoted: ``value("a b") == 'x y'``."""
    for op in _OPS:
        left, sep, right = expr.partition(f" {op} ")
        if sep:
            break
    else:
        raise CliError(f"cannot parse condition {expr!r}: expected TARGET(KEY) OP OPERAND "
                       f"with OP one of {' '.join(_OPS)} (spaces around it)", EXIT_USAGE)
    left = left.strip()
    target, paren, rest = left.partition("(")
    if not paren or not rest.endswith(")") or target not in ("value", "version", "create",
                                                            "mod"):
        raise CliError(f"cannot parse {left!r}: expected value(KEY), version(KEY), "
                       f"create(KEY) or mod(KEY)", EXIT_USAGE)
    key = _unquote(rest[:-1])
    operand_text = _unquote(right.strip())
    operand: bytes | int
    if target == "value":
        operand = operand_text.encode()
    else:
        try:
            operand = int(operand_text)
        except ValueError:
            raise CliError(f"{target}({key}) compares with an integer, not {operand_text!r}",
                           EXIT_USAGE) from None
    return Compare(key.encode(), target, op, operand)


def _unquote(s: str) -> str:
    parts = shlex.split(s) if s else [""]
    return " ".join(parts)


def parse_op(expr: str) -> Op:
    """``put KEY VALUE``, ``get KEY [END]``, ``del KEY [END]`` (shell-style quoting)."""
    try:
        words = shlex.split(expr)
    except ValueError as e:
        raise CliError(f"cannot parse operation {expr!r}: {e}", EXIT_USAGE) from None
    if len(words) == 3 and words[0] == "put":
        return Op.put(words[1], words[2])
    if len(words) in (2, 3) and words[0] == "get":
        return Op.get(*words[1:])
    if len(words) in (2, 3) and words[0] in ("del", "delete"):
        return Op.delete(*words[1:])
    raise CliError(f"cannot parse operation {expr!r}: expected 'put KEY VALUE', "
                   f"'get KEY [END]' or 'del KEY [END]'", EXIT_USAGE)


def _op_lines(r: RangeResult | PutResult | DeleteResult) -> list[str]:
    if isinstance(r, RangeResult):
        return [ln for kv in r.kvs for ln in (text(kv.key), text(kv.value))]
    if isinstance(r, PutResult):
        return ["OK"]
    return [str(r.deleted)]


def _op_json(r: RangeResult | PutResult | DeleteResult) -> dict[str, Any]:
    if isinstance(r, RangeResult):
        return {"range": {"kvs": [kv_row(kv) for kv in r.kvs], "count": r.count,
                          "more": r.more}}
    if isinstance(r, PutResult):
        return {"put": {"prev_kv": kv_row(r.prev_kv) if r.prev_kv else None}}
    return {"delete": {"deleted": r.deleted}}


async def _txn(c: Client, args: argparse.Namespace) -> int:
    t = c.txn().if_(*(parse_compare(e) for e in args.if_ or ()))
    t.then(*(parse_op(e) for e in args.then or ())).else_(*(parse_op(e) for e in args.else_
                                                             or ()))
    r = await t.commit()
    verdict = "SUCCESS" if r.succeeded else "FAILURE"
    rows = [{"op": i, "result": " ".join(_op_lines(x)) or "(none)"}
            for i, x in enumerate(r.responses)]
    emit(rows, ["op", "result"], args.write_out,
         simple=[verdict] + [ln for x in r.responses for ln in _op_lines(x)],
         json_value={"header": header_json(r.header), "succeeded": r.succeeded,
                     "responses": [_op_json(x) for x in r.responses]})
    return EXIT_OK


# ---------------------------------------------------------------------------- parsers
def register(subparsers: Any) -> None:
    p = subparsers.add_parser("put", help="write a key", description="Write KEY = VALUE "
                              "(exactly once, even if retried). VALUE omitted: read stdin.")
    p.add_argument("key")
    p.add_argument("value", nargs="?")
    p.add_argument("--prev-kv", action="store_true", help="also print the previous value")
    add_client_options(p)
    p.set_defaults(func=lambda a: with_client(a, lambda c: _put(c, a)))

    p = subparsers.add_parser("get", help="read a key, a prefix or a range",
                              description="Read KEY, every key starting with KEY "
                              "(--prefix), or the range [KEY, END).")
    p.add_argument("key")
    p.add_argument("end", nargs="?", help="range end (exclusive); '\\0' means to the end")
    p.add_argument("--prefix", action="store_true", help="every key starting with KEY")
    p.add_argument("--limit", type=int, default=0, help="at most this many keys (0: all)")
    p.add_argument("--print-value-only", action="store_true",
                   help="simple output: values only")
    _add_read_options(p)
    add_client_options(p)
    p.set_defaults(func=lambda a: with_client(a, lambda c: _get(c, a)))

    p = subparsers.add_parser("scan", help="iterate a large range page by page",
                              description="Print keys in [START, END) (or starting with "
                              "START, with --prefix), fetching --page-size keys at a time.")
    p.add_argument("start", nargs="?", default="")
    p.add_argument("end", nargs="?")
    p.add_argument("--prefix", action="store_true", help="every key starting with START")
    p.add_argument("--limit", type=int, default=0, help="stop after this many keys")
    p.add_argument("--page-size", type=int, default=1000)
    _add_read_options(p)
    add_client_options(p)
    p.set_defaults(func=lambda a: with_client(a, lambda c: _scan(c, a)))

    p = subparsers.add_parser("del", help="delete a key, a prefix or a range",
                              description="Delete KEY, every key starting with KEY "
                              "(--prefix), or [KEY, END). Prints how many were deleted.")
    p.add_argument("key")
    p.add_argument("end", nargs="?")
    p.add_argument("--prefix", action="store_true")
    p.add_argument("--prev-kv", action="store_true", help="also print the deleted pairs")
    add_client_options(p)
    p.set_defaults(func=lambda a: with_client(a, lambda c: _del(c, a)))

    p = subparsers.add_parser(
        "txn", help="compare-and-set transaction",
        description="If every --if holds, run the --then operations, else the --else ones, "
        "atomically. Conditions: value(KEY) == V, version(KEY) > N, create(KEY) == 0, "
        "mod(KEY) < REV (OP: == != > <). Operations: 'put K V', 'get K [END]', "
        "'del K [END]'. Prints SUCCESS or FAILURE, then each result.")
    p.add_argument("--if", dest="if_", action="append", metavar="COND")
    p.add_argument("--then", action="append", metavar="OP")
    p.add_argument("--else", dest="else_", action="append", metavar="OP")
    add_client_options(p)
    p.set_defaults(func=lambda a: with_client(a, lambda c: _txn(c, a)))
