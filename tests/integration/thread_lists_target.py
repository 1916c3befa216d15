# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""Target for tests/integration/thread_lists.py (2.7 and 3.6+): processes
whose thread list is not what a normal program has (issue #10).

  thread_lists_target.py EVENT_FD CMD_FD MODE [N]

CMD_FD (the command pipe pktest.Target gives every target) is not read.

Every mode has thread "busy", which runs bytecode, catches every exception
and says "exc busy <type>", and thread "sleeper", which sleeps in
time.sleep and says "exc sleeper <type>" for an exception it gets.
"ready <json>" gives the main thread's TID and the threads' TIDs. The test
ends the process (SIGKILL).

MODE:
  mainexit  then the main thread calls pthread_exit (through ctypes): the
            process lives on with a zombie leader whose Python thread state
            is still listed
  chain     then the main thread appends N fake thread states (zeroed but
            for their next pointer) to the end of the interpreter's thread
            list, in its own memory, and waits on an Event for ever
  cycle     the same, but the last fake state points back to the middle of
            the fakes: the list never ends
While the list is forged, nothing may walk it in the target: no thread
starts or ends, and the cyclic garbage collector is off (3.14's walks the
thread states).
"""
from __future__ import print_function

import ctypes
import gc
import json
import os
import sys
import threading
import time

EVENT_FD, MODE = int(sys.argv[1]), sys.argv[3]
N = int(sys.argv[4]) if len(sys.argv) > 4 else 0
libc = ctypes.CDLL(None, use_errno=True)
lock = threading.Lock()
tids = {}


def emit(line):
    with lock:
        os.write(EVENT_FD, (line + "\n").encode())


def gettid():
    return libc.syscall(186)  # SYS_gettid, x86_64


def busy():
    tids["busy"] = gettid()
    n = 0
    while True:
        try:
            while True:
                n = step(n)
        except BaseException as e:
            emit("exc busy %s" % type(e).__name__)


def step(n):
    return n + 1


def sleeper():
    tids["sleeper"] = gettid()
    while True:
        try:
            time.sleep(3600)
        except BaseException as e:
            emit("exc sleeper %s" % type(e).__name__)


def start(name, fn):
    t = threading.Thread(target=fn, name=name)
    t.daemon = True
    t.start()
    while name not in tids:
        time.sleep(0.001)


# The fake states: STRIDE bytes each, more than the last field pykill reads
# of a thread state in any version (0xc0), all zero but next.
STRIDE = 256
NEXT = 0 if sys.version_info[0] == 2 else 8  # offsetof(PyThreadState, next)
fakes = None


def u64(addr):
    return ctypes.c_uint64.from_address(addr)


def forge(n, cyclic):
    global fakes
    ctypes.pythonapi.PyThreadState_Get.restype = ctypes.c_void_p
    tail = ctypes.pythonapi.PyThreadState_Get()
    guard = 0
    while u64(tail + NEXT).value != 0:
        tail = u64(tail + NEXT).value
        guard += 1
        if guard > 10000:
            raise SystemExit("the thread list does not end")
    fakes = (ctypes.c_uint64 * (n * STRIDE // 8))()  # zeroed
    base = ctypes.addressof(fakes)
    step, at = STRIDE // 8, NEXT // 8
    links = list(range(base + STRIDE, base + n * STRIDE, STRIDE))
    links.append(base + (n // 2) * STRIDE if cyclic else 0)
    fakes[at::step] = links
    gc.disable()
    u64(tail + NEXT).value = base  # one aligned store: the list is whole at every moment
    return base


start("sleeper", sleeper)
start("busy", busy)
info = {"main": gettid(), "threads": tids, "version": list(sys.version_info[:3])}
if MODE == "mainexit":
    emit("ready " + json.dumps(info))
    libc.pthread_exit(None)  # ctypes released the GIL: the other threads run on
    raise SystemExit("pthread_exit returned")
if MODE in ("chain", "cycle"):
    info["first_fake"] = forge(N, MODE == "cycle")
    emit("ready " + json.dumps(info))
    threading.Event().wait()
raise SystemExit("unknown mode " + MODE)
