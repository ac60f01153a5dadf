#!/usr/bin/env python3
"""The floor under every kvraft hop: one grpc.aio bidi stream, one message each way.

Starts an echo server (grpc.aio on uvloop, 127.0.0.1, ephemeral port) in a child
process, then sends --count messages of --size bytes one at a time over one stream and
prints the round trip's p50/p99 and this process's CPU per round trip. kvraft's client
and peer streams use the same machinery, so a put at 1 in flight (four hops) cannot be
faster than about twice this round trip plus its disk writes. Optional channel
arguments (--option name=value, repeatable) are given to both sides.

    .venv/bin/python scripts/bench_grpc_pingpong.py [--count 3000] [--size 200]
    .venv/bin/python scripts/bench_grpc_pingpong.py --option grpc.http2.bdp_probe=0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import uvloop
from grpc import aio

_METHOD = "/kvraft.bench.Echo/Echo"


def _raw(b: bytes) -> bytes:
    return b


def _options(pairs: list[str]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for p in pairs:
        name, _, value = p.partition("=")
        out.append((name, int(value) if value.lstrip("-").isdigit() else value))
    return out


async def _serve(options: list[tuple[str, Any]]) -> None:
    server = aio.server(options=options)

    async def echo(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for m in requests:
            yield m

    handler = grpc.method_handlers_generic_handler(
        "kvraft.bench.Echo",
        {"Echo": grpc.stream_stream_rpc_method_handler(
            echo, request_deserializer=_raw, response_serializer=_raw)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


async def _client(port: int, options: list[tuple[str, Any]], count: int, size: int) -> None:
    async with aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        call = channel.stream_stream(_METHOD, request_serializer=_raw,
                                     response_deserializer=_raw)()
        msg = b"x" * size
        for _ in range(min(200, count)):  # warm-up
            await call.write(msg)
            await call.read()
        times = []
        cpu0 = time.process_time()
        for _ in range(count):
            t = time.perf_counter()
            await call.write(msg)
            await call.read()
            times.append(time.perf_counter() - t)
        cpu = (time.process_time() - cpu0) / count
        await call.done_writing()
    times.sort()
    print(f"{count} round trips of {size} bytes: p50 {statistics.median(times) * 1e6:.0f} us, "
          f"p99 {times[int(len(times) * 0.99)] * 1e6:.0f} us, "
          f"client CPU {cpu * 1e6:.0f} us per round trip")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=3000, help="round trips measured")
    ap.add_argument("--size", type=int, default=200, help="bytes per message")
    ap.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                    help="a gRPC channel/server argument for both sides")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    options = _options(args.option)
    if args.serve:
        uvloop.run(_serve(options))
        return 0
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", *(f"--option={o}" for o in args.option)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        uvloop.run(asyncio.wait_for(_client(port, options, args.count, args.size), 120))
    finally:
        os.kill(child.pid, signal.SIGTERM)
        child.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
