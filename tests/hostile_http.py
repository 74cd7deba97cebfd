"""Raw HTTP servers on 127.0.0.1 that misbehave on purpose, for the tests of rlvr's bounded HTTP clients.

A real socket server (no HTTP library in between, so nothing tidies the misbehaviour up): it
reads each request whole and hands it to a handler, which writes whatever bytes it likes. The
hostile handlers are what a broken or malicious server does to a client that trusts it: drip
the body or the headers one byte per second (a per-read timeout never fires), or stream a body
that never ends (memory grows until something caps it).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    """One request as the server read it."""

    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


#: ``handler(conn, stop, request)`` answers one request; returning True keeps the connection for
#: the next one (keep-alive), anything else closes it. ``stop`` is set when the server shuts down.
Handler = Callable[[socket.socket, threading.Event, Request], "bool | None"]


@contextmanager
def raw_server(handler: Handler) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port; yields ``http://127.0.0.1:PORT``."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=_handle, args=(conn, handler, stop), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join(2)
        srv.close()


def _handle(conn: socket.socket, handler: Handler, stop: threading.Event) -> None:
    try:
        conn.settimeout(5)
        while not stop.is_set():
            data = b""
            while b"\r\n\r\n" not in data:
                got = conn.recv(65536)
                if not got:
                    return
                data += got
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)
            while len(rest) < length:
                rest += conn.recv(65536)
            method, path = (head.split(b"\r\n", 1)[0].split(b" ") + [b"", b""])[:2]
            if handler(conn, stop, Request(method.decode(), path.decode(), rest)) is not True:
                return
    except OSError:
        pass
    finally:
        conn.close()


def send_json(conn: socket.socket, data: bytes) -> None:
    """A well-formed 200 answer with a JSON body."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))


def drip_body(conn: socket.socket, stop: threading.Event, request: Request) -> None:
    """200 with a 1000-byte body announced, then one space a second."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b" ")
        time.sleep(1.0)


def drip_headers(conn: socket.socket, stop: threading.Event, request: Request) -> None:
    """A status line and then a 10,000-byte header, one byte a second."""
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
        if stop.is_set():
            return
        conn.sendall(bytes([byte]))
        time.sleep(1.0)


def endless_body(conn: socket.socket, stop: threading.Event, request: Request) -> None:
    """200 with a chunked body that never ends (64 KiB chunks as fast as the client reads)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    while not stop.is_set():
        conn.sendall(frame)
