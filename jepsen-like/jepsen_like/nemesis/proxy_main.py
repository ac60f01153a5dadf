#!/usr/bin/env python3
"""Per-link TCP proxy process: the partition fallback where namespaces are unavailable.

    proxy_main.py CONFIG_JSON

CONFIG_JSON: ``{"links": [{"src": 1, "dst": 2, "target": "127.0.0.1:7102"}, ...]}``.
For every link the proxy listens on 127.0.0.1 (a free port) and forwards each accepted
connection to ``target``. Node ``src`` is configured to reach node ``dst`` through that
port, so the link carries exactly the connections ``src`` opens to ``dst``.

Protocol on stdio (one JSON object per line):

- at start the proxy prints ``{"ports": {"1-2": 40123, ...}}``;
- the controller writes ``{"cut": [[1, 2], [2, 1], ...]}`` and the proxy answers
  ``{"ok": true}`` once applied. A cut ``(a, b)`` stalls every byte travelling from node
  ``a`` to node ``b``: the forward direction of link a->b and the reply direction of link
  b->a. Stalled bytes wait (TCP back-pressure fills the buffers, like a network dropping
  and retransmitting); on heal they flow again unless an endpoint gave up on the
  connection meanwhile;
- end of input (the controller went away) stops the proxy.

Stdlib only; runs as a plain script. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

HOST = "127.0.0.1"
CHUNK = 65536


class Proxy:
    def __init__(self, links: list[dict[str, object]]) -> None:
        self.links = links  # from the config
        nodes = {int(str(x)) for link in links for x in (link["src"], link["dst"])}
        # (a, b) -> set while bytes from a to b may flow
        self.gates: dict[tuple[int, int], asyncio.Event] = {}
        for a in nodes:
            for b in nodes:
                gate = asyncio.Event()
                gate.set()
                self.gates[(a, b)] = gate
        self.conns: set[asyncio.StreamWriter] = set()  # every open socket, for shutdown

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   gate: asyncio.Event) -> None:
        try:
            while data := await reader.read(CHUNK):
                await gate.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(self, src: int, dst: int, target: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        host, port = target.rsplit(":", 1)
        try:
            t_reader, t_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        self.conns.update((writer, t_writer))
        try:
            await asyncio.gather(self.pump(reader, t_writer, self.gates[(src, dst)]),
                                 self.pump(t_reader, writer, self.gates[(dst, src)]))
        finally:
            self.conns.discard(writer)
            self.conns.discard(t_writer)

    async def serve(self) -> None:
        ports: dict[str, int] = {}
        servers = []
        for link in self.links:
            src, dst, target = int(str(link["src"])), int(str(link["dst"])), str(link["target"])

            async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, src: int = src,
                              dst: int = dst, target: str = target) -> None:
                await self.handle(src, dst, target, r, w)

            server = await asyncio.start_server(on_conn, HOST, 0)
            servers.append(server)
            ports[f"{src}-{dst}"] = server.sockets[0].getsockname()[1]
        print(json.dumps({"ports": ports}), flush=True)
        loop = asyncio.get_running_loop()
        stdin = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
        while line := await stdin.readline():
            try:
                cmd = json.loads(line)
                cut = {(int(a), int(b)) for a, b in cmd.get("cut", [])}
            except (ValueError, TypeError) as exc:
                print(json.dumps({"ok": False, "error": str(exc)}), flush=True)
                continue
            for pair, gate in self.gates.items():
                if pair in cut:
                    gate.clear()
                else:
                    gate.set()
            print(json.dumps({"ok": True, "cut": len(cut)}), flush=True)
        for server in servers:
            server.close()
        for w in list(self.conns):
            with contextlib.suppress(Exception):
                w.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    config = json.loads(argv[0])
    asyncio.run(Proxy(config["links"]).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
