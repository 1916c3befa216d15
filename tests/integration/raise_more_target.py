# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""Target for tests/integration/raise_more.py (2.7 and 3.6+).

  raise_more_target.py EVENT_FD CMD_FD [BACKGROUND]

BACKGROUND is a comma-separated list of long-lived threads to start:
  parked   - sleeps for an hour (a call-path hijack point that never wakes)
  sleeper  - loops on time.sleep(SLEEP_S), measuring each sleep in the target:
             an anomaly if cut short, or if it took twice its length while
             the rest of the process did not stall as long
  nsleeper - the same with usleep() through ctypes (a relative nanosleep)
  ticker   - loops on time.sleep(0.005), counting (shows it is still working)
             and keeping the time of each tick (shows process-wide stalls)
  cruncher - runs bytecode all the time, counting (the GIL holder)
Every thread reports any exception it sees ("exc <name> <type>") and its end
("end <name> <how>") on EVENT_FD, then "ready <json>" with every thread's
ident and TID. Commands on CMD_FD, one per line:
  spawn N              - N fresh busy threads: "spawned <json list>"
  stop NAME            - ask a fresh busy thread to return
  progress NAME        - "progress <name> <count> <alive> <ns waited for a CPU>"
  sleep NAME SECS      - a fresh thread that sleeps SECS once, then reports
                         "slept <name> <seconds> <exception or ->"
  locker NAME          - a fresh thread busy inside `with lock:`, "locked <json>"
                         once inside
  catcher NAME         - a fresh busy thread that catches every exception and
                         says "caught <name> <type>", then goes on
  lockheld             - "lockheld <true|false>": is the lock held now
  checklock            - "lock <true|false>": could the lock be acquired
                         within 1 s (then released)
  joinwork NAME [SECS] - a fresh busy thread, "worker <json>", then the main
                         thread blocks in its join() (join(SECS)) and says
                         "joined <name>"
  hold SECS            - the main thread waits SECS on an Event (a futex, or
                         short sleeps on 2.7), then says "held"
  health               - "health <json>": threads alive, which background
                         threads made no progress within 5 s, sleep anomalies
  refcnt               - join ended fresh threads, "refcnt <n>" of SystemExit
  quit                 - exit 0
"""
from __future__ import print_function

import collections
import gc
import json
import os
import sys
import threading
import time

EVENT_FD, CMD_FD = int(sys.argv[1]), int(sys.argv[2])
BACKGROUND = [b for b in (sys.argv[3] if len(sys.argv) > 3 else "").split(",") if b]
PY3 = sys.version_info[0] >= 3
SLEEP_S = 0.5
# A sleep may end up to a few microseconds early in total: select() on
# 2.7-3.10 takes microseconds (2.7 truncates), and the kernel writes back a
# truncated remainder at each restart. An EINTR cuts far more.
SLEEP_SLACK = 50e-6

import ctypes  # noqa: E402
_libc = ctypes.CDLL(None, use_errno=True)
if PY3:
    from threading import get_ident
    monotonic = time.monotonic
else:
    from thread import get_ident

    class _timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    def monotonic():
        ts = _timespec()
        _libc.clock_gettime(1, ctypes.byref(ts))  # CLOCK_MONOTONIC
        return ts.tv_sec + ts.tv_nsec * 1e-9

emit_lock = threading.Lock()


def emit(line):
    data = (line + "\n").encode()
    with emit_lock:
        os.write(EVENT_FD, data)


def gettid():
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    return _libc.syscall(186)  # SYS_gettid on x86_64


ids = {}
progress = {}
stop = {}
threads = {}
anomalies = []
long_sleeps = []
ended = set()


def guarded(name, body):
    def run():
        ids[name] = (get_ident(), gettid())
        try:
            body(name)
        except BaseException as e:
            emit("exc %s %s" % (name, type(e).__name__))
            ended.add(name)
            emit("end %s raised" % name)
            return
        ended.add(name)
        emit("end %s returned" % name)
    return run


def start(name, body):
    t = threading.Thread(target=guarded(name, body), name=name)
    t.daemon = True
    threads[name] = t
    t.start()
    while name not in ids:
        time.sleep(0.0005)
    return t


def f(x):
    return x + 1


def busy(name):
    x = 0
    while not stop.get(name):
        x = f(x)
        progress[name] = x


def parked(name):
    time.sleep(3600)


def catcher(name):
    """Busy, and survives every exception: says which one it caught. Every
    bytecode it runs, the loop test included, is inside the try."""
    x = 0
    while True:
        # Two handlers deep: the next pykill may raise while the first
        # handler still runs (it waits only for the previous one to fire).
        try:
            try:
                while True:
                    if stop.get(name):
                        return
                    x = f(x)
                    progress[name] = x
            except BaseException as e:
                emit(caught_line(name, e))
        except BaseException as e:
            emit(caught_line(name, e))


def caught_line(name, e):
    """"caught NAME CLASS", plus " ctx=C1,C2" on Python 3 when e fired
    inside the handler of other exceptions: an exception pykill delivered
    may be cut off by the next before its own handler could say so."""
    chain = []
    c = getattr(e, "__context__", None)
    while c is not None and len(chain) < 5:
        chain.append(type(c).__name__)
        c = getattr(c, "__context__", None)
    return "caught %s %s%s" % (name, type(e).__name__, " ctx=" + ",".join(chain) if chain else "")


def run_delay(tid):
    """Nanoseconds thread tid has waited for a CPU, from schedstat."""
    try:
        with open("/proc/self/task/%d/schedstat" % tid) as fh:
            return int(fh.read().split()[1])
    except (IOError, OSError, IndexError, ValueError):
        return 0


def measured_sleeps(name, sleep):
    """Sleep SLEEP_S again and again, recording a sleep cut short, or one
    that took twice its length (less the time the thread waited for a CPU:
    the machine may be loaded)."""
    tid = ids[name][1]
    while True:
        d0 = run_delay(tid)
        t0 = monotonic()
        note = sleep(SLEEP_S)
        dt = monotonic() - t0
        queued = (run_delay(tid) - d0) * 1e-9
        if dt < SLEEP_S - SLEEP_SLACK:
            anomalies.append("%s: sleep(%s) cut short: %.6f s%s" % (name, SLEEP_S, dt, note or ""))
        elif dt - queued >= 2 * SLEEP_S:
            long_sleeps.append((name, t0, dt, queued, note))
        progress[name] = progress.get(name, 0) + 1


def sleeper(name):
    # time.sleep: clock_nanosleep(TIMER_ABSTIME) on 3.11+, select() before.
    measured_sleeps(name, time.sleep)


def nsleeper(name):
    # A relative nanosleep (ctypes drops the GIL around it): interrupted, it
    # goes on through restart_syscall.
    usleep = _libc.usleep

    def sleep(secs):
        ctypes.set_errno(0)
        if usleep(int(secs * 1e6)) != 0:
            return ", usleep() failed: %s" % os.strerror(ctypes.get_errno())
    measured_sleeps(name, sleep)


ticks = collections.deque(maxlen=4000)


def ticker(name):
    while True:
        time.sleep(0.005)
        ticks.append(monotonic())
        progress[name] = progress.get(name, 0) + 1


def ticker_stall(t0, t1):
    """The longest gap between two ticks around [t0, t1], or 0 without a
    ticker."""
    ts = [t for t in list(ticks) if t0 - 0.1 <= t <= t1 + 0.5]
    return max([b - a for a, b in zip(ts, ts[1:])] + [0.0])


def judge_long_sleeps():
    """A sleep that took twice its length is an anomaly unless the whole
    process stalled as long meanwhile (the GIL holder off the CPU on a
    loaded machine delays the ticker as much): judged later, once the
    ticker has ticked past the sleep's end."""
    if long_sleeps:
        time.sleep(max(0, long_sleeps[-1][1] + long_sleeps[-1][2] + 0.55 - monotonic()))
    while long_sleeps:
        name, t0, dt, queued, note = long_sleeps.pop(0)
        stall = ticker_stall(t0, t0 + dt)
        if dt - SLEEP_S > stall + 0.05:
            anomalies.append("%s: sleep(%s) took %.6f s (%.6f s of it waiting for a CPU, the process stalled %.6f s "
                             "meanwhile)%s" % (name, SLEEP_S, dt, queued, stall, note or ""))


def cruncher(name):
    x = 0
    while True:
        x = f(x)
        progress[name] = x


def one_sleep(secs):
    def body(name):
        t0 = monotonic()
        t1 = None
        exc = "-"
        try:
            try:
                time.sleep(secs)
                t1 = monotonic()
                # An exception queued during the sleep fires here at the latest.
                for _ in range(1000):
                    f(0)
            except BaseException as e:
                # It may fire at any bytecode after the sleep, even before t1 is
                # set: then the sleep is measured here, a little later.
                if t1 is None:
                    t1 = monotonic()
                exc = type(e).__name__
                raise
        finally:
            emit("slept %s %.6f %s" % (name, t1 - t0, exc))
    return body


the_lock = threading.Lock()


def locker(name):
    with the_lock:
        emit("locked " + json.dumps({"name": name, "ident": ids[name][0], "tid": ids[name][1]}))
        x = 0
        while True:
            x = f(x)


def try_lock():
    if PY3:
        ok = the_lock.acquire(True, 1)
    else:
        deadline = monotonic() + 1
        ok = the_lock.acquire(False)
        while not ok and monotonic() < deadline:
            time.sleep(0.001)
            ok = the_lock.acquire(False)
    if ok:
        the_lock.release()
    return ok


BODIES = {"parked": parked, "sleeper": sleeper, "nsleeper": nsleeper, "ticker": ticker, "cruncher": cruncher}
for bg in BACKGROUND:
    start(bg, BODIES[bg])
emit("ready " + json.dumps({"pid": os.getpid(), "main_tid": gettid(), "version": list(sys.version_info[:3]),
                            "threads": dict((k, list(v)) for k, v in ids.items())}))


def describe(name):
    return {"name": name, "ident": ids[name][0], "tid": ids[name][1]}


spawned = [0]
buf = b""
while True:
    # Between commands the main thread waits here, parked in read().
    chunk = os.read(CMD_FD, 256)
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        args = line.decode().split()
        cmd = args[0]
        if cmd == "spawn":
            # Fresh threads that said they ended are joined first, so that
            # they are gone before the next pykill looks at the process.
            for n in [n for n in list(ended) if n.startswith("fresh-")]:
                threads[n].join(5)
                ended.discard(n)
            out = []
            for _ in range(int(args[1])):
                spawned[0] += 1
                name = "fresh-%d" % spawned[0]
                start(name, busy)
                out.append(describe(name))
            emit("spawned " + json.dumps(out))
        elif cmd == "progress":
            n = args[1]
            emit("progress %s %s %s %s" % (n, progress.get(n, 0), json.dumps(n in threads and threads[n].is_alive()),
                                           json.dumps(n in ids and run_delay(ids[n][1]))))
        elif cmd == "stop":
            stop[args[1]] = True
        elif cmd == "sleep":
            start(args[1], one_sleep(float(args[2])))
            emit("sleeping " + json.dumps(describe(args[1])))
        elif cmd == "locker":
            start(args[1], locker)
        elif cmd == "catcher":
            start(args[1], catcher)
            emit("catching " + json.dumps(describe(args[1])))
        elif cmd == "lockheld":
            emit("lockheld %s" % json.dumps(the_lock.locked()))
        elif cmd == "checklock":
            emit("lock %s" % json.dumps(try_lock()))
        elif cmd == "joinwork":
            t = start(args[1], busy)
            emit("worker " + json.dumps(describe(args[1])))
            if len(args) > 2:
                t.join(float(args[2]))
            else:
                t.join()
            emit("joined %s" % args[1])
        elif cmd == "hold":
            threading.Event().wait(float(args[1]))
            emit("held")
        elif cmd == "health":
            judge_long_sleeps()
            # Working: counting on. Given seconds, not milliseconds: the
            # machine may be loaded.
            before = dict((n, progress.get(n, 0)) for n in BACKGROUND)
            deadline = monotonic() + 5
            stuck = [n for n in BACKGROUND if n not in ("parked", "sleeper", "nsleeper")]
            while stuck and monotonic() < deadline:
                time.sleep(0.002)
                stuck = [n for n in stuck if progress.get(n, 0) == before[n]]
            emit("health " + json.dumps({"alive": dict((n, t.is_alive()) for n, t in threads.items()),
                                         "stuck": stuck, "anomalies": anomalies,
                                         "sleeps": progress.get("sleeper", 0)}))
        elif cmd == "refcnt":
            # Every fresh thread has been told to end: wait for the ends.
            for n, t in list(threads.items()):
                if n.startswith("fresh-"):
                    t.join(5)
            gc.collect()
            emit("refcnt %d" % sys.getrefcount(SystemExit))
        elif cmd == "quit":
            sys.exit(0)
