# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""Target for the raise tests (2.7 and 3.6+).

  raise_target.py EVENT_FD CMD_FD
Starts named threads in known states, each in try/finally reporting
"finally <name> <exception>" on EVENT_FD, then "ready <json>" with every
thread's ident and TID. Commands on CMD_FD, one per line:
  send         - unblock the receiver        release - release the lock
  status       - "status <json>": which threads are alive, refcount of SystemExit
  spawn        - start a fresh busy thread, "spawned <json>"
  quit         - check the survivors still work, exit 0 ("target ok") or 1
"""
from __future__ import print_function

import json
import os
import socket
import sys
import threading
import time

EVENT_FD, CMD_FD = int(sys.argv[1]), int(sys.argv[2])
PY3 = sys.version_info[0] >= 3
try:
    import ctypes
    _libc = ctypes.CDLL(None)
except Exception:
    _libc = None
if PY3:
    from threading import get_ident
else:
    from thread import get_ident

lock = threading.Lock()


def emit(line):
    data = (line + "\n").encode()
    with lock:
        os.write(EVENT_FD, data)


def gettid():
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    return _libc.syscall(186)


ids = {}
progress = {}


def guarded(name, body):
    def run():
        ids[name] = (get_ident(), gettid())
        try:
            body(name)
        except BaseException as e:
            emit("finally %s %s" % (name, type(e).__name__))
            raise
        emit("finally %s returned" % name)
    return run


def f(x):
    return x + 1


def busy(name):
    x = 0
    while True:
        x = f(x)
        progress[name] = x


def short_sleep(name):
    while True:
        time.sleep(0.01)
        progress[name] = progress.get(name, 0) + 1


def long_sleep(name):
    time.sleep(3600)


a, b = socket.socketpair()


def receiver(name):
    a.recv(16)
    while True:  # only an exception ends this thread
        time.sleep(0.01)


held = threading.Lock()
held.acquire()


def lock_waiter(name):
    held.acquire()
    while True:
        time.sleep(0.01)


def survivor(name):
    while True:
        time.sleep(0.005)
        progress[name] = progress.get(name, 0) + 1


specs = [("busy", busy), ("busy-write", busy), ("short-sleep", short_sleep), ("long-sleep", long_sleep),
         ("receiver", receiver), ("lock-waiter", lock_waiter), ("survivor", survivor)]
threads = {}
for name, fn in specs:
    t = threading.Thread(target=guarded(name, fn), name=name)
    t.daemon = True
    threads[name] = t
    t.start()
while len(ids) < len(specs):
    time.sleep(0.001)
spawned = [0]
emit("ready " + json.dumps({"pid": os.getpid(), "version": list(sys.version_info[:2]),
                            "threads": dict((k, list(v)) for k, v in ids.items())}))

buf = b""
while True:
    # The main thread waits here, parked in read(): a safe hijack point.
    chunk = os.read(CMD_FD, 256)
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        cmd = line.decode().strip()
        if cmd == "send":
            b.sendall(b"x")
        elif cmd == "release":
            held.release()
        elif cmd == "status":
            alive = dict((n, t.is_alive()) for n, t in threads.items())
            emit("status " + json.dumps({"alive": alive, "refcnt": sys.getrefcount(SystemExit),
                                         "progress": progress.get("survivor", 0)}))
        elif cmd == "spawn":
            spawned[0] += 1
            name = "fresh-%d" % spawned[0]
            t = threading.Thread(target=guarded(name, busy), name=name)
            t.daemon = True
            threads[name] = t
            t.start()
            while name not in ids:
                time.sleep(0.0005)
            emit("spawned " + json.dumps({"name": name, "ident": ids[name][0], "tid": ids[name][1]}))
        elif cmd == "join":
            name = "fresh-%d" % spawned[0]
            threads[name].join(10)
            emit("joined %s %s" % (name, threads[name].is_alive()))
        elif cmd == "quit":
            before = progress.get("survivor", 0)
            time.sleep(0.1)
            if progress.get("survivor", 0) <= before or not threads["survivor"].is_alive():
                print("target: survivor stopped working")
                sys.exit(1)
            print("target ok")
            sys.exit(0)
