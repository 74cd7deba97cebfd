"""The frame codec spoken between the host and a zygote (both directions).

A frame: 8-byte header (JSON length, blob bytes; big-endian u32), the JSON object, then the
blobs back to back; ``meta["blobs"]`` lists their lengths. Binary data (sources, stdin, output,
compiled artifacts) never goes through JSON.
"""

from __future__ import annotations

import json
import os
import struct

HEADER = struct.Struct(">II")
MAX_PART = 1 << 31


def encode_frame(meta: dict, blobs=()) -> bytes:
    """One frame: header + JSON (with blob lengths) + blobs."""
    meta = dict(meta, blobs=[len(b) for b in blobs])
    body = json.dumps(meta, separators=(",", ":")).encode()
    return HEADER.pack(len(body), sum(len(b) for b in blobs)) + body + b"".join(blobs)


def decode_frame(read_exact) -> tuple:
    """Read one frame with ``read_exact(n) -> bytes``; (meta, blobs), or (None, []) at a clean EOF."""
    head = read_exact(HEADER.size)
    if not head:
        return None, []
    jlen, blen = HEADER.unpack(head)
    if jlen > MAX_PART or blen > MAX_PART:
        raise ValueError("frame too large")
    meta = json.loads(read_exact(jlen))
    data = read_exact(blen) if blen else b""
    blobs, pos = [], 0
    for n in meta.get("blobs", []):
        blobs.append(data[pos:pos + n])
        pos += n
    return meta, blobs


def fd_reader(fd: int):
    """A blocking ``read_exact`` over a file descriptor (b"" only for EOF before a frame starts)."""
    def read_exact(n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                if got == 0 and n == HEADER.size:
                    return b""
                raise EOFError("input ended inside a frame")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)
    return read_exact


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to a blocking fd."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
