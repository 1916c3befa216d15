# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""Target for tests/integration/raise_harm.py (2.7 and 3.6+): programs that
broke pykill's promise never to harm the target (issue #10).

  raise_harm_target.py EVENT_FD CMD_FD MODE

CMD_FD (the command pipe pktest.Target gives every target) is not read.

MODE:
  seccomp    a seccomp filter (all threads) that kills the process on
             getpid(), the call path's marker; a thread in time.sleep
  pipes      thread "reader" blocks in os.read of a pipe, thread "writer" in
             os.write of 1 MiB into a full pipe; the test feeds and drains
             them through /proc/PID/fd ("read N", "wrote N")
  smallstack thread "small" runs time.sleep on a 16 KiB stack (256 KiB on
             3.14+) carved from a malloc'ed buffer, 64 KiB of canary below it
  plain      only the busy thread
  sleepmain  no other thread: the main thread sleeps for an hour, reporting
             an exception it gets ("exc main <type>") before it exits
Every mode but sleepmain has thread "busy": it runs bytecode, catches every
exception and says "exc busy <type>", then goes on, and says "health <json>"
(counters of the threads, canary intact) every 2**18 loops. The main thread
waits on an Event (a futex) for ever: no thread but the mode's own sleeps or
reads, so the call path can only borrow those. "ready <json>" gives the TIDs.
The test ends the process.
"""
from __future__ import print_function

import ctypes
import json
import os
import struct
import sys
import threading
import time

EVENT_FD, MODE = int(sys.argv[1]), sys.argv[3]
libc = ctypes.CDLL(None, use_errno=True)
lock = threading.Lock()
tids = {}
counts = {}


def emit(line):
    with lock:
        os.write(EVENT_FD, (line + "\n").encode())


def gettid():
    return libc.syscall(186)  # SYS_gettid, x86_64


def count(name):
    counts[name] = counts.get(name, 0) + 1


def step(n):
    n += 1
    if n & 0x3ffff == 0:
        emit("health " + json.dumps({"counts": counts, "canary": canary["check"]() if "check" in canary else None}))
    return n


def busy():
    tids["busy"] = gettid()
    n = 0
    while True:
        # The loop body is a call: CPython 3.14.10 lets an asynchronous
        # exception taken at the backward jump that follows an if-block
        # escape the enclosing try (its own SetAsyncExc does the same).
        try:
            while True:
                n = step(n)
        except BaseException as e:
            emit("exc busy %s" % type(e).__name__)


def sleeper(name):
    def body():
        tids[name] = gettid()
        try:
            time.sleep(3600)
        except BaseException as e:
            emit("exc %s %s" % (name, type(e).__name__))
    return body


def start(name, fn):
    t = threading.Thread(target=fn, name=name)
    t.daemon = True
    t.start()
    while name not in tids:
        time.sleep(0.001)


canary = {}

if MODE == "sleepmain":
    emit("ready " + json.dumps({"main": gettid(), "version": list(sys.version_info[:3])}))
    try:
        time.sleep(3600)
    except BaseException as e:
        emit("exc main %s" % type(e).__name__)
    sys.exit(0)

if MODE == "seccomp":
    # BPF: load the syscall number; getpid (39) -> SECCOMP_RET_KILL_PROCESS,
    # anything else -> SECCOMP_RET_ALLOW. Every thread (TSYNC).
    insns = [(0x20, 0, 0, 0), (0x15, 0, 1, 39), (0x06, 0, 0, 0x80000000), (0x06, 0, 0, 0x7fff0000)]
    prog = b"".join(struct.pack("HBBI", *i) for i in insns)
    fbuf = ctypes.create_string_buffer(prog, len(prog))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fprog = SockFprog(len(insns), ctypes.addressof(fbuf))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    start("sleeper", sleeper("sleeper"))
    start("busy", busy)
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)
    if libc.syscall(317, 1, 1, ctypes.byref(fprog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp")
elif MODE == "pipes":
    # "reader" blocks in os.read of a pipe nobody writes to (until the test
    # does); "writer" blocks in os.write of 1 MiB into a pipe nobody reads
    # (until the test does). Neither may be borrowed by the call path, nor
    # disturbed by a stop: a stopped write returns short, a stopped read
    # may see EINTR.
    ar, aw = os.pipe()
    br, bw = os.pipe()
    pipes = {"reader_w": aw, "writer_r": br}

    def reader():
        tids["reader"] = gettid()
        data = os.read(ar, 1 << 20)
        emit("read %d" % len(data))

    def writer():
        tids["writer"] = gettid()
        n = os.write(bw, b"x" * (1 << 20))
        emit("wrote %d" % n)
    start("reader", reader)
    start("writer", writer)
    start("busy", busy)
elif MODE == "smallstack":
    # 3.14+ checks its own stack bounds and needs more than 16 KiB.
    SIZE, BELOW = (16384 if sys.version_info < (3, 14) else 262144), 65536
    buf = ctypes.create_string_buffer(BELOW + SIZE + 4096)
    base = (ctypes.addressof(buf) + 4095) & ~4095
    ctypes.memset(base, 0xA5, BELOW)
    attr = ctypes.create_string_buffer(128)
    libc.pthread_attr_init(attr)
    if libc.pthread_attr_setstack(attr, ctypes.c_void_p(base + BELOW), ctypes.c_size_t(SIZE)) != 0:
        raise OSError("pthread_attr_setstack")
    CB = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)

    def small(arg):
        sleeper("small")()
        return None
    cb = CB(small)
    th = ctypes.c_ulong()
    if libc.pthread_create(ctypes.byref(th), attr, cb, None) != 0:
        raise OSError("pthread_create")
    while "small" not in tids:
        time.sleep(0.001)
    canary["check"] = lambda: ctypes.string_at(base, BELOW) == b"\xa5" * BELOW
    start("busy", busy)
elif MODE == "plain":
    start("busy", busy)
else:
    raise SystemExit("unknown mode " + MODE)

emit("ready " + json.dumps({"main": gettid(), "threads": tids, "version": list(sys.version_info[:3]),
                            "pipes": pipes if MODE == "pipes" else {}}))
threading.Event().wait()
