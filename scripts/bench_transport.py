#!/usr/bin/env python3
"""Throughput of the peer transport: Raft messages per second over one stream.

Starts a receiving node (RaftService on a grpc.aio server, 127.0.0.1, ephemeral port) in
a child process, then pushes messages through one PeerTransport stream from this process
and reports messages/s and frames. Also measures the codec alone (encode + serialize,
parse + decode). Bounded: --count messages, --timeout seconds.

    .venv/bin/python scripts/bench_transport.py [--count 200000] [--entry-bytes 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kvraft._pb.kvraft.v1 import raft_pb2
from kvraft.core.types import AppendEntries, Entry, Heartbeat, Message
from kvraft.transport import codec
from kvraft.transport.peer import PeerTransport

CLUSTER = "bench"


def make_messages(n: int, entry_bytes: int) -> list[Message]:
    """Heartbeats, or AppendEntries with one entry of ``entry_bytes`` if that is > 0."""
    if entry_bytes <= 0:
        return [Heartbeat(1, 2, 5, commit=i) for i in range(n)]
    data = b"v" * entry_bytes
    return [AppendEntries(1, 2, 5, i, 5, (Entry(5, i + 1, data=data),), i) for i in range(n)]


def bench_codec(msgs: list[Message]) -> None:
    frames = [msgs[i : i + 512] for i in range(0, len(msgs), 512)]
    t0 = time.perf_counter()
    wire = [codec.encode_batch(f).SerializeToString() for f in frames]
    t1 = time.perf_counter()
    n = sum(len(codec.decode_batch(raft_pb2.MessageBatch.FromString(b))) for b in wire)
    t2 = time.perf_counter()
    assert n == len(msgs)
    print(f"codec encode+serialize: {len(msgs) / (t1 - t0):12,.0f} msgs/s")
    print(f"codec parse+decode:     {len(msgs) / (t2 - t1):12,.0f} msgs/s")


async def serve(port_out: Path) -> None:
    """Child process: a node 2 that prints a line each time it has seen every 10,000th."""
    import grpc

    from kvraft.transport import wire
    from kvraft.transport.service import RaftService

    received = 0

    def on_messages(msgs: list[Message]) -> None:
        nonlocal received
        before = received
        received += len(msgs)
        if received // 10_000 != before // 10_000:
            print(received, flush=True)

    svc = RaftService(
        node_id=2,
        cluster_id=CLUSTER,
        on_messages=on_messages,
        on_snapshot=lambda m, p: None,
        snapshot_dir=Path(tempfile.gettempdir()),
    )
    server = grpc.aio.server(options=list(wire.SERVER_OPTIONS))
    svc.add_to_server(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_out.write_text(str(port))
    print("ready", flush=True)
    await server.wait_for_termination()


async def push(port: int, msgs: list[Message], proc: subprocess.Popen[str], timeout: float) -> None:
    t = PeerTransport(1, {2: f"127.0.0.1:{port}"}, cluster_id=CLUSTER)
    loop = asyncio.get_running_loop()
    assert proc.stdout is not None
    stdout = proc.stdout
    target = len(msgs) - len(msgs) % 10_000

    def wait_all() -> None:
        for line in stdout:
            if int(line) >= target:
                return

    done = loop.run_in_executor(None, wait_all)
    t0 = time.perf_counter()
    deadline = t0 + timeout
    i = 0
    while i < len(msgs):
        if t.queued(2) < 2048:
            t.send(msgs[i : i + 256])
            i += 256
        await asyncio.sleep(0)
        if time.perf_counter() > deadline:
            raise SystemExit("timed out while sending")
    await asyncio.wait_for(done, max(1.0, deadline - time.perf_counter()))
    elapsed = time.perf_counter() - t0
    st = t.stats()[2]
    print(
        f"one stream: {target:,} msgs in {elapsed:.2f} s = {target / elapsed:,.0f} msgs/s "
        f"({st.frames} frames, {st.sent / max(st.frames, 1):.0f} msgs/frame, "
        f"{st.dropped} dropped)"
    )
    await t.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200_000)
    ap.add_argument("--entry-bytes", type=int, default=0, help="0 = heartbeats")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--uvloop", action="store_true", help="run both sides on uvloop")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    runner = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    if args.serve:
        runner(serve(args.serve))
        return
    msgs = make_messages(args.count, args.entry_bytes)
    bench_codec(msgs)
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        cmd = [sys.executable, __file__, "--serve", str(port_file)]
        if args.uvloop:
            cmd.append("--uvloop")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("receiver failed to start")
            runner(push(int(port_file.read_text()), msgs, proc, args.timeout))
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
