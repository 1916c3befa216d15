# SPDX-License-Identifier: MIT
"""A small Python worker for the ops tests (2.7 and 3.x).

  target.py READY_FD CMD_FD SLEEPERS

Starts a thread blocked in os.read() on a pipe nobody writes ("reader") and
SLEEPERS threads looping on time.sleep(0.05) ("sleeper-N"), then writes one
line to READY_FD:

  ready PID READER_TID NAME=TID ...

where PID is os.getpid() and the TIDs are the native ids as the target sees
them (in its own PID namespace), main thread included. Then it answers
commands read from CMD_FD, one a line:
  alive  -> "alive NAME=TID ..." for the threads still running
  quit   -> exits 0
"""
import os
import sys
import threading
import time


def native_id():
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    try:
        import ctypes
        return ctypes.CDLL(None).syscall(186)  # gettid on x86_64
    except Exception:
        return 0


ready_fd, cmd_fd, nsleepers = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tids = {}
started = threading.Event()
block_r, block_w = os.pipe()


def reader():
    tids["reader"] = native_id()
    started.set()
    os.read(block_r, 1)


def sleeper(name):
    tids[name] = native_id()
    started.set()
    try:
        while True:
            time.sleep(0.05)
    finally:
        del tids[name]


tids["MainThread"] = native_id()
threads = [threading.Thread(target=reader, name="reader")]
threads += [threading.Thread(target=sleeper, name="sleeper-%d" % i, args=("sleeper-%d" % i,))
            for i in range(nsleepers)]
for t in threads:
    t.daemon = True
    started.clear()
    t.start()
    started.wait()


def report(head):
    return ("%s %s\n" % (head, " ".join("%s=%d" % kv for kv in sorted(tids.items())))).encode()


os.write(ready_fd, report("ready %d %d" % (os.getpid(), tids["reader"])))
cmds = os.fdopen(cmd_fd, "rb", 0)
while True:
    line = cmds.readline().decode().strip()
    if line == "alive":
        os.write(ready_fd, report("alive"))
    elif line in ("quit", ""):
        sys.exit(0)
