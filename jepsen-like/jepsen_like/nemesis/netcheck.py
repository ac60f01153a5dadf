#!/usr/bin/env python3
"""A tiny standalone network probe, used to prove that partitions cut real traffic.

    netcheck.py serve HOST PORT LOGFILE   TCP echo server + UDP receiver on HOST:PORT;
                                          every UDP datagram is appended to LOGFILE
    netcheck.py tcp HOST PORT TIMEOUT     exit 0 if a TCP echo round trip completes
    netcheck.py udp HOST PORT MESSAGE     send one UDP datagram (fire and forget)

Stdlib only, so it runs as a plain script inside a network namespace.
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def serve(host: str, port: int, logfile: str) -> None:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((host, port))
    tcp.listen(64)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, port))

    def udp_loop() -> None:
        while True:
            data, _ = udp.recvfrom(65536)
            with open(logfile, "ab") as fh:
                fh.write(data + b"\n")
                fh.flush()
                os.fsync(fh.fileno())

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    threading.Thread(target=udp_loop, daemon=True).start()
    print(f"serving {host}:{port}", flush=True)
    while True:
        conn, _ = tcp.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def tcp_probe(host: str, port: int, timeout: float) -> int:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"ping")
            return 0 if s.recv(4) == b"ping" else 1
    except OSError:
        return 1


def udp_send(host: str, port: int, message: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), (host, port))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "serve":
        serve(argv[1], int(argv[2]), argv[3])
        return 0
    if len(argv) == 4 and argv[0] == "tcp":
        return tcp_probe(argv[1], int(argv[2]), float(argv[3]))
    if len(argv) == 4 and argv[0] == "udp":
        return udp_send(argv[1], int(argv[2]), argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
