# SPDX-License-Identifier: MIT
"""Benchmark target for bench/raise_bench.py (runs under the Python measured).

  raise_target.py --hb-lib PATH --event-fd N

Loads the native heartbeat (bench/heartbeat.c) and talks to the harness over
its stdin/stdout pipes, one line each way. The main thread reads its commands
with os.read() on stdin, so between commands it is parked in read() on a
pipe: the thread gdb runs its calls in. A "parked" thread sleeps in
time.sleep(3600): the one thread `pykill raise --via call` may borrow (it
borrows only a thread in a pure sleep, never one in read(): someone may be
waiting for what that read does).

  harness -> target  "spawn"  -> "busy <tid> <ident>"  start a busy thread
                     (`while True: f()` in try/finally) and answer once it
                     is in its loop
  harness -> target  "begin"  -> "ok"                  open a heartbeat window
  harness -> target  "end"    -> "gap NS"              close it: largest extra
                     gap of the heartbeat in ns (-1: it did not tick)
  harness -> target  "quit", or end of file on stdin -> exit at once

When a busy thread leaves its loop (the raised exception), its finally
writes "finally <tid> <monotonic ns> <exception>" on the event pipe
(--event-fd): the harness times delivery with that clock (CLOCK_MONOTONIC,
the one time.monotonic_ns() of the harness reads).
"""
import ctypes
import os
import sys
import threading
import time


def parse_args(argv):
    opts = {"hb_lib": None, "event_fd": None}
    i = 0
    while i + 1 < len(argv):
        if argv[i] == "--hb-lib":
            opts["hb_lib"] = argv[i + 1]
        elif argv[i] == "--event-fd":
            opts["event_fd"] = int(argv[i + 1])
        else:
            break
        i += 2
    if i != len(argv) or opts["hb_lib"] is None or opts["event_fd"] is None:
        sys.stderr.write("usage: raise_target.py --hb-lib PATH --event-fd N\n")
        sys.exit(2)
    return opts


def f():
    return 1


def make_busy(event_fd, started):
    def busy():
        tid = threading.get_native_id()
        what = "returned"
        try:
            started.append((tid, threading.get_ident()))
            started_ev.set()
            while True:
                f()
        except BaseException as e:
            what = type(e).__name__
            raise
        finally:
            # Written first thing: the timestamp is the delivery instant.
            os.write(event_fd, ("finally %d %d %s\n" % (tid, time.monotonic_ns(), what)).encode())

    return busy


started_ev = threading.Event()


def parked():
    while True:
        time.sleep(3600)


def read_lines(fd):
    """Lines from fd with plain os.read(): the main thread blocks in read()."""
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = os.read(fd, 4096)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        yield line.decode().strip()


def main():
    opts = parse_args(sys.argv[1:])
    hb = ctypes.CDLL(opts["hb_lib"])
    hb.hb_end.restype = ctypes.c_longlong
    rc = hb.hb_start()
    if rc != 0:
        sys.stderr.write("raise_target.py: hb_start: %s\n" % os.strerror(rc))
        sys.exit(1)

    def answer(s):
        os.write(1, (s + "\n").encode())

    threading.Thread(target=parked, name="parked", daemon=True).start()
    answer("ready %d" % os.getpid())
    try:
        for cmd in read_lines(0):
            if cmd == "spawn":
                started = []
                started_ev.clear()
                threading.Thread(target=make_busy(opts["event_fd"], started), name="busy",
                                 daemon=True).start()
                started_ev.wait()
                answer("busy %d %d" % started[0])
            elif cmd == "begin":
                hb.hb_begin()
                answer("ok")
            elif cmd == "end":
                answer("gap %d" % hb.hb_end())
            elif cmd == "quit":
                break
            else:
                answer("error unknown command %r" % cmd)
    except OSError:
        pass  # the harness is gone (broken pipe): leave as on end of file
    # Busy threads may still spin: leave without joining them.
    os._exit(0)


if __name__ == "__main__":
    main()
