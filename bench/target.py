# SPDX-License-Identifier: MIT
"""Benchmark target for bench/list_bench.py (runs under the Python measured).

  target.py --threads N --mix sleep|busy|stacks [--busy K] [--depth D]
            [--py-heartbeat] --hb-lib PATH

Starts N worker threads (and with --py-heartbeat a Python heartbeat thread),
loads the native heartbeat (bench/heartbeat.c) and talks to the harness over its stdin/stdout
pipes, one line each way:

  target -> harness  "ready <python threads> <busy tids,...>" once every worker
                     has reached its steady state (the harness then checks
                     /proc that the sleepers are blocked before measuring)
  harness -> target  "begin"  -> "ok"            open a window
  harness -> target  "end"    -> "gap NATIVE PY" close it: largest gap of the
                     native / Python heartbeat in ns (-1: it did not tick;
                     PY is "-" without --py-heartbeat)
  harness -> target  "quit", or end of file on stdin -> exit at once

Mixes (workers):
  sleep   all blocked: even workers in time.sleep(3600) in a loop, odd
          workers in recv() on a socket pair nobody writes to;
  busy    K (default 2) workers in `while True: f()`, the rest as in sleep;
  stacks  like busy, but every worker first recurses D (default 50) Python
          frames deep and sleeps / spins at the bottom.

The native heartbeat never takes the GIL and is not a Python thread (pykill
lists it under native threads): its gap is only stops and CPU starvation.
The Python heartbeat is a Python thread looping on time.sleep(0.001): its
gap also contains the time it waited for the GIL, so it shows what a frozen
GIL holder costs every Python thread of the process. It is off by default:
a Python thread that wakes 1000 times a second is itself a workload (pykill
--freeze=auto sees it run while reading and reads again with it stopped).
"""
import ctypes
import os
import socket
import sys
import threading
import time


def parse_args(argv):
    opts = {"threads": 8, "mix": "sleep", "busy": 2, "depth": 50, "hb_lib": None,
            "py_heartbeat": False}
    i = 0
    while i < len(argv):
        key = argv[i]
        if key == "--py-heartbeat":
            opts["py_heartbeat"] = True
            i += 1
            continue
        if key in ("--threads", "--busy", "--depth") and i + 1 < len(argv):
            opts[key[2:]] = int(argv[i + 1])
        elif key == "--mix" and i + 1 < len(argv):
            opts["mix"] = argv[i + 1]
        elif key == "--hb-lib" and i + 1 < len(argv):
            opts["hb_lib"] = argv[i + 1]
        else:
            sys.stderr.write("target.py: bad argument %r\n" % key)
            sys.exit(2)
        i += 2
    if opts["mix"] not in ("sleep", "busy", "stacks") or opts["hb_lib"] is None:
        sys.stderr.write("target.py: --mix sleep|busy|stacks and --hb-lib are required\n")
        sys.exit(2)
    if opts["mix"] == "sleep":
        opts["busy"] = 0
    opts["busy"] = min(opts["busy"], opts["threads"])
    return opts


def f():
    return 1


def spin():
    while True:
        f()


def make_sleeper(kind, peer):
    def sleeper():
        if kind == "recv":
            while True:
                peer.recv(1)
        while True:
            time.sleep(3600)

    return sleeper


def deep(n, fn):
    # One Python frame per level: the bottom is `n` frames below the thread's
    # run() (the threading bootstrap frames come on top of these).
    if n > 1:
        return deep(n - 1, fn)
    return fn()


class Started(object):
    def __init__(self, n):
        self.n = n
        self.count = 0
        self.busy_tids = []
        self.cond = threading.Condition()

    def arrive(self, busy):
        with self.cond:
            self.count += 1
            if busy and hasattr(threading, "get_native_id"):
                self.busy_tids.append(threading.get_native_id())
            self.cond.notify_all()

    def wait(self):
        with self.cond:
            while self.count < self.n:
                self.cond.wait()


py_hb = {"max": 0, "ticks": 0}


def py_heartbeat():
    prev = time.monotonic_ns() if hasattr(time, "monotonic_ns") else int(time.monotonic() * 1e9)
    clock = time.monotonic_ns if hasattr(time, "monotonic_ns") else (lambda: int(time.monotonic() * 1e9))
    while True:
        time.sleep(0.001)
        now = clock()
        gap = now - prev - 1000000
        prev = now
        if gap > py_hb["max"]:
            py_hb["max"] = gap
        py_hb["ticks"] += 1


def py_end():
    t0 = py_hb["ticks"]
    deadline = time.monotonic() + 2.0
    while py_hb["ticks"] < t0 + 2:
        if time.monotonic() > deadline:
            return -1
        time.sleep(0.0002)
    return py_hb["max"]


def main():
    opts = parse_args(sys.argv[1:])
    hb = ctypes.CDLL(opts["hb_lib"])
    hb.hb_end.restype = ctypes.c_longlong
    rc = hb.hb_start()
    if rc != 0:
        sys.stderr.write("target.py: hb_start: %s\n" % os.strerror(rc))
        sys.exit(1)

    started = Started(opts["threads"])
    keep = []  # socket pairs stay open for the life of the process
    # Busy workers last: once they run, every further thread start waits
    # for the GIL they hold (5 ms switch interval each time).
    for i in range(opts["threads"] - 1, -1, -1):
        busy = i < opts["busy"]
        if busy:
            body = spin
        elif i % 2:
            a, b = socket.socketpair()
            keep.append((a, b))
            body = make_sleeper("recv", a)
        else:
            body = make_sleeper("sleep", None)

        def run(body=body, busy=busy):
            def bottom():
                started.arrive(busy)
                body()

            if opts["mix"] == "stacks":
                deep(opts["depth"], bottom)
            else:
                bottom()

        threading.Thread(target=run, name="worker-%d" % i, daemon=True).start()
    started.wait()
    if opts["py_heartbeat"]:
        threading.Thread(target=py_heartbeat, name="py-heartbeat", daemon=True).start()

    out = os.fdopen(1, "w", 1)
    inp = os.fdopen(0, "r", 1)
    out.write("ready %d %s\n" % (threading.active_count(),
                                 ",".join(str(t) for t in started.busy_tids) or "-"))
    out.flush()
    try:
        for line in inp:
            cmd = line.strip()
            if cmd == "begin":
                hb.hb_begin()
                py_hb["max"] = 0
                out.write("ok\n")
            elif cmd == "end":
                native = hb.hb_end()
                py = str(py_end()) if opts["py_heartbeat"] else "-"
                out.write("gap %d %s\n" % (native, py))
            elif cmd == "quit":
                break
            else:
                out.write("error unknown command %r\n" % cmd)
            out.flush()
    except OSError:
        pass  # the harness is gone (broken pipe): leave as on end of file
    # Daemon threads blocked forever: leave without joining them.
    os._exit(0)


if __name__ == "__main__":
    main()
