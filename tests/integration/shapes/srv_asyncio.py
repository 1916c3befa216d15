# SPDX-License-Identifier: MIT
"""An asyncio HTTP/1.0 server on the listening socket whose fd is argv[1]:
the routes of shapes_app, each request a task of one event loop (the main
thread's). A handler that raises an Exception answers 500."""
import asyncio
import socket
import sys

from shapes_app import event, handle_hang, native_tid

_rounds = {}


async def together(round_id, n, timeout):
    r = _rounds.setdefault(round_id, {"count": 0, "event": asyncio.Event()})
    r["count"] += 1
    if r["count"] >= n:
        r["event"].set()
    try:
        await asyncio.wait_for(r["event"].wait(), timeout)
        return True
    except asyncio.TimeoutError:
        return False


async def handle(reader, writer):
    try:
        line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        parts = (line.split()[1].decode() if len(line.split()) > 1 else "/").strip("/").split("/")
        try:
            if parts[0] == "hang":
                handle_hang(parts[1])
            if parts[0] == "together":
                ok = await together(parts[1], int(parts[2]), 5)
                status, body = ("200 OK", b"together\n") if ok else ("503 Service Unavailable", b"alone\n")
            else:
                status, body = "200 OK", ("ok %d\n" % native_tid()).encode()
        except Exception as e:
            status, body = "500 Internal Server Error", ("%s\n" % type(e).__name__).encode()
        writer.write(("HTTP/1.0 %s\r\nContent-Length: %d\r\n\r\n" % (status, len(body))).encode() + body)
        await writer.drain()
    finally:
        writer.close()


async def main():
    sock = socket.socket(fileno=int(sys.argv[1]))
    server = await asyncio.start_server(handle, sock=sock)
    async with server:
        await server.start_serving()
        event("ready %d" % native_tid())
        await server.serve_forever()


asyncio.run(main())
