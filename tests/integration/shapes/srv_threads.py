# SPDX-License-Identifier: MIT
"""A threaded HTTP/1.0 server on the listening socket whose fd is argv[2],
with argv[3] workers, of one of two kinds (argv[1]):

  thread  plain threading.Thread workers ("worker-K"), each looping over a
          queue of connections; an Exception in a request answers 500 and
          the worker takes the next connection
  pool    a concurrent.futures.ThreadPoolExecutor: the main thread accepts
          and submits each connection; a done-callback reports the job's
          failure (future.result() in try/except Exception), as many
          programs do

The main thread accepts. Routes as in shapes_app."""
import concurrent.futures
import queue
import socket
import sys
import threading

from shapes_app import barrier_wait, event, handle_hang, native_tid


def serve(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        parts = data.split(b" ", 2)[1].decode().strip("/").split("/")
        try:
            if parts[0] == "hang":
                handle_hang(parts[1])
            if parts[0] == "together":
                ok = barrier_wait(parts[1], int(parts[2]))
                status, body = ("200 OK", b"together\n") if ok else ("503 Service Unavailable", b"alone\n")
            else:
                status, body = "200 OK", ("ok %d\n" % native_tid()).encode()
        except Exception as e:
            status, body = "500 Internal Server Error", ("%s\n" % type(e).__name__).encode()
        conn.sendall(("HTTP/1.0 %s\r\nContent-Length: %d\r\n\r\n" % (status, len(body))).encode() + body)


def worker_loop(conns):
    while True:
        conn = conns.get()
        serve(conn)


def report(fut):
    try:
        fut.result()
    except Exception as e:
        event("job-failed %s" % type(e).__name__)


def main():
    kind, lsock, n = sys.argv[1], socket.socket(fileno=int(sys.argv[2])), int(sys.argv[3])
    if kind == "thread":
        conns = queue.Queue()
        for k in range(n):
            threading.Thread(target=worker_loop, args=(conns,), name="worker-%d" % k, daemon=True).start()
        submit = conns.put
    else:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=n)

        def submit(conn):
            pool.submit(serve, conn).add_done_callback(report)
    event("ready %d" % native_tid())
    while True:
        conn, _ = lsock.accept()
        submit(conn)


main()
