# SPDX-License-Identifier: MIT
"""Python target for test_inject_python: the main thread sleeps in
time.sleep() (clock_nanosleep, a safe hijack point) and reports how long
each sleep lasted; a worker loops calling a function (a loop shape that
keeps try/finally working on every version) and reports when its finally
block runs.

    python py_target.py FD [SLEEPS]
"""
import os
import sys
import threading
import time

fd = int(sys.argv[1])
sleeps = int(sys.argv[2]) if len(sys.argv) > 2 else 20


def say(s):
    os.write(fd, (s + "\n").encode())


started = threading.Event()


def f():
    return 1


def worker():
    try:
        started.set()
        while True:
            f()
    finally:
        say("FINALLY ran in %d" % threading.get_ident())


t = threading.Thread(target=worker, name="worker")
t.start()
started.wait()
say("READY pid=%d main_tid=%d worker_ident=%d worker_tid=%d version=%s" % (
    os.getpid(), threading.get_native_id(), t.ident, t.native_id, sys.version.split()[0]))
for i in range(sleeps):
    t0 = time.monotonic()
    time.sleep(1.0)
    el = time.monotonic() - t0
    say("SLEEP i=%d elapsed=%.4f worker_alive=%d" % (i, el, t.is_alive()))
    if not t.is_alive():
        break
t.join()
say("EXIT")
