# SPDX-License-Identifier: MIT
"""A small CPython process for the error-case tests: one busy thread.

  target.py READY_FD CMD_FD

Starts a thread that runs Python code without ever blocking (so a
`pykill list` with --freeze=auto has a thread it must stop), and once that
thread has made progress writes "ready <pid> <busy tid>" to READY_FD. The
main thread then blocks reading lines from CMD_FD: "ping" answers
"pong <busy iterations>" on READY_FD, "quit" (or end of file) exits 0.
"""
import os
import sys
import threading

READY_FD, CMD_FD = int(sys.argv[1]), int(sys.argv[2])
progress = [0]
started = threading.Event()
tid = [0]


def work(n):
    return n + 1


def busy():
    tid[0] = threading.get_native_id()
    started.set()
    x = 0
    while True:
        x = work(x)
        progress[0] += 1


t = threading.Thread(target=busy, name="busy", daemon=True)
t.start()
started.wait()
os.write(READY_FD, ("ready %d %d\n" % (os.getpid(), tid[0])).encode())

buf = b""
while True:
    data = os.read(CMD_FD, 100)
    if not data:
        sys.exit(0)
    buf += data
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        if line == b"ping":
            alive = "alive" if t.is_alive() else "dead"
            os.write(READY_FD, ("pong %d %s\n" % (progress[0], alive)).encode())
        elif line == b"quit":
            sys.exit(0)
