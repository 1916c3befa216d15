# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""A CPython process with named threads parked in known states.

Runs on every interpreter of the suite (2.7 and 3.6+). Protocol:
  target.py READY_FD CMD_FD TRUTH_PATH
Once every thread is parked, it writes the ground truth (its own view:
sys._current_frames(), thread names, idents and kernel TIDs) as JSON to
TRUTH_PATH and "ready <pid>" to READY_FD. It then waits for a command line on
CMD_FD ("quit"), checks that every thread is still alive and working, and
exits 0 printing "target ok", or 1 with what went wrong.
"""
from __future__ import print_function

import json
import os
import socket
import sys
import threading
import time

PY3 = sys.version_info[0] >= 3
sys.setrecursionlimit(10000)
READY_FD, CMD_FD, TRUTH = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
EXTRA = sys.argv[4:] if len(sys.argv) > 4 else []

try:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
except Exception:  # some minimal interpreters have no ctypes
    _libc = None


def gettid():
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    return _libc.syscall(186)  # SYS_gettid on x86_64


tids = {}
stop = threading.Event()
progress = {"busy": 0, "sleeps": 0}
errors = []


if PY3:
    from threading import get_ident
else:
    from thread import get_ident


def register():
    tids[get_ident()] = gettid()


def work(n):
    return n + 1


def busy():
    register()
    x = 0
    while not stop.is_set():
        x = work(x)
        progress["busy"] += 1


def sleeper():
    register()
    while not stop.is_set():
        t0 = time.time()
        time.sleep(0.2)
        took = time.time() - t0
        if took < 0.19:
            errors.append("sleep(0.2) returned after %.3f s" % took)
        progress["sleeps"] += 1


def long_sleeper():
    register()
    time.sleep(3600)


a, b = socket.socketpair()


def receiver():
    register()
    data = a.recv(16)
    if data != b"bye":
        errors.append("recv got %r" % (data,))


held = threading.Lock()
held.acquire()


def lock_waiter():
    register()
    held.acquire()
    held.release()


def idle():
    register()
    stop.wait()


def recurse(n):
    if n == 0:
        time.sleep(3600)
        return 0
    return recurse(n - 1) + 1


def deep():
    register()
    recurse(int(os.environ.get("PYKILL_TEST_DEPTH", "1000")))


def gen():
    time.sleep(3600)
    yield 1


def generator_user():
    register()
    for _ in gen():
        pass


def renamed():
    register()
    threading.current_thread().name = "renamed-later"
    time.sleep(3600)


def raw_thread():
    register()
    time.sleep(3600)


CORO_SRC = '''
async def coro_sleep():
    time.sleep(3600)

def coroutine_user():
    register()
    c = coro_sleep()
    try:
        c.send(None)
    except StopIteration:
        pass
'''

UNICODE_SRC = u'''# -*- coding: utf-8 -*-
import time
def función_ñ(register):
    register()
    time.sleep(3600)
'''

targets = [
    ("busy", busy, True),
    ("sleeper", sleeper, True),
    ("long-sleeper", long_sleeper, True),
    ("receiver", receiver, True),
    ("lock-waiter", lock_waiter, True),
    ("idle", idle, True),
    ("deep", deep, True),
    ("generator", generator_user, True),
    ("renamed", renamed, True),
    # Longer than list's NAME column at its widest (32): cut there, the
    # columns after it still aligned.
    ("a-thread-named-well-past-sixteen-columns-and-then-more", long_sleeper, True),
]

if PY3 and sys.version_info >= (3, 5):
    ns = {"time": time, "register": register}
    exec(CORO_SRC, ns)
    targets.append(("coroutine", ns["coroutine_user"], True))

if PY3:
    import tempfile
    moddir = tempfile.mkdtemp(prefix="pykill-ü-")
    modpath = os.path.join(moddir, u"módulo_ü.py")
    with open(modpath, "w", encoding="utf-8") as f:
        f.write(UNICODE_SRC)
    sys.path.insert(0, moddir)
    mod = __import__(u"módulo_ü")
    targets.append((u"unicodé-thread", lambda: getattr(mod, u"función_ñ")(register), True))

threads = []
for name, fn, daemon in targets:
    t = threading.Thread(target=fn, name=name)
    t.daemon = daemon
    threads.append(t)
    t.start()

if PY3:
    import _thread
    _thread.start_new_thread(raw_thread, ())
else:
    import thread
    thread.start_new_thread(raw_thread, ())

# Parked: every thread but busy and sleeper is blocked in a system call for
# good. Wait until /proc says so (a condition, not a guess).
def parked(tid):
    try:
        with open("/proc/self/task/%d/syscall" % tid) as f:
            s = f.read().split()
        with open("/proc/self/task/%d/stat" % tid) as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
    except (IOError, OSError):
        return False
    return st in ("S", "D") and s[0] not in ("running", "-1")


expected = len(targets) + 1  # + raw thread
deadline = time.time() + 60
while True:
    ready = len(tids) >= expected and all(
        parked(tid) for ident, tid in tids.items() if ident not in (threads[0].ident, threads[1].ident))
    if ready:
        break
    if time.time() > deadline:
        print("target: threads did not park: %r" % (tids,), file=sys.stderr)
        sys.exit(2)
    time.sleep(0.005)


def frames_of(frame):
    out = []
    while frame is not None:
        code = frame.f_code
        name = getattr(code, "co_qualname", code.co_name)
        fn = code.co_filename
        if not PY3 and isinstance(fn, bytes):
            fn = fn.decode("utf-8", "replace")
        out.append({"function": name, "file": fn, "line": frame.f_lineno})
        frame = frame.f_back
    return out


# The main thread's own frame is written for the place where it will park:
# the os.read() below, whose line we know from this frame's code.
truth = {"pid": os.getpid(), "version": list(sys.version_info[:3]), "threads": [],
         # A free-threaded build (3.13t+) running without its GIL.
         "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)()}
current = sys._current_frames()
names = dict((t.ident, t.name) for t in threading.enumerate())
me = threading.current_thread().ident
tids[me] = gettid()
for ident, frame in current.items():
    if ident == me:
        continue
    truth["threads"].append({
        "ident": ident,
        "tid": tids.get(ident),
        "name": names.get(ident),
        "parked": ident not in (threads[0].ident, threads[1].ident),
        "frames": frames_of(frame),
    })
main_frames = frames_of(sys._getframe())
with open(__file__) as f:
    PARK_LINE = [i + 1 for i, l in enumerate(f.read().splitlines()) if l.startswith("cmd = os.read(")][0]
main_frames[0]["line"] = PARK_LINE
truth["threads"].append({"ident": me, "tid": tids[me], "name": threading.current_thread().name,
                         "parked": True, "frames": main_frames, "main": True})
with open(TRUTH, "w") as f:
    json.dump(truth, f)
busy_before = progress["busy"]
os.write(READY_FD, ("ready %d\n" % os.getpid()).encode())
cmd = os.read(CMD_FD, 100)  # the main thread parks here: PARK_LINE

# pykill has run: everything must still be alive and working.
time.sleep(0.5)
alive = dict((t.name, t.is_alive()) for t in threads)
if not all(alive.values()):
    errors.append("threads died: %r" % alive)
if progress["busy"] <= busy_before:
    errors.append("busy thread stopped working")
b.sendall(b"bye")
held.release()
stop.set()
for t in threads[:2] + threads[3:6]:
    t.join(5)
if errors:
    print("target: FAILED: %s" % "; ".join(errors))
    sys.exit(1)
print("target ok")
sys.exit(0)
