# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""A CPython process that watches itself while pykill is done to it.

Runs on every interpreter of the suite (2.7 and 3.6+). Protocol:
  stress_target.py READY_FD CMD_FD REPLY_FD MODE [ARG]

MODE picks the threads (each one records its own progress and any exception
it sees):
  basic   busy, short-sleep (0.05 s sleeps, each measured), long-sleep,
          recv, lock-wait, heartbeat
  churn   basic + a thread that starts short-lived threads without pause
  itimer  basic; SIGALRM and SIGUSR1 go to the main thread only (the others
          block them), with counting Python handlers; SIGUSR1's handler
          writes one byte to ARG (a file descriptor): an acknowledgement
  gil     basic + regex (runs a catastrophic regular expression on
          request: the GIL is held by C code for seconds), busy-victim and
          sleep-victim (catch BufferError, the exception the test raises)
  scale   ARG sleeping threads (64 KiB stacks) and 2 busy threads
  exec    basic + execer, blocked in a read of ARG (a file descriptor):
          a byte there makes execer exec this script again (in basic
          mode, same pid, same command and reply pipes, ready line on the
          reply pipe); the command "exec" makes the main thread do it.
          The main thread catches BufferError (the test raises it there)
          and counts it; in the program after the exec that is an error:
          nobody sent it one

Once the threads are started and those meant to block are blocked in their
system calls (as /proc shows), one line "ready <json>" goes to READY_FD:
pid, version, and name -> {tid, ident} of every thread. Then the main
thread serves one-line commands on CMD_FD, each answered by one line of JSON
on REPLY_FD:
  check       every thread alive, none saw an exception, every one makes
              progress (recv answers a ping, lock-wait takes the lock
              once more, the sleepers finish sleeps, busy counts), no
              sleep was cut short; every sleep since the last check is
              listed ("sleeps": start, length, this process's waits for a
              CPU meanwhile) for the test to weigh against pykill's runs
  quit        check, then exit 0
  exit        os._exit(0) at once;  sysexit: sys.exit(0) (finalisation)
  exec        the main thread execs this script again (exec mode only)
  regex N     start re.match(r'(a+)+$', 'a'*N+'b') in the regex thread
  itimer on|off   a 1 ms ITIMER_REAL
  count       handler counts and the monotonic clock
  victims     what busy-victim and sleep-victim caught
"""
from __future__ import print_function

import json
import os
import re
import signal
import socket
import sys
import threading
import time

PY3 = sys.version_info[0] >= 3
READY_FD, CMD_FD, REPLY_FD = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
MODE = sys.argv[4]
EXECED = os.environ.get("PYKILL_STRESS_EXECED") == "1"  # the program after an exec
ARG = sys.argv[5] if len(sys.argv) > 5 else None
SHORT = 0.05
CHECK_LIMIT = float(os.environ.get("PYKILL_STRESS_CHECK_S", "10"))
if hasattr(sys, "setswitchinterval") and MODE != "gil":
    # A thread back from a sleep waits for the GIL up to one interval per
    # thread ahead of it: keep that small beside the 50 ms slack. (Not in
    # the gil mode: there the waiters must look as they do by default.)
    sys.setswitchinterval(float(os.environ.get("PYKILL_STRESS_SWITCH_S", "0.001")))

try:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
except Exception:  # some minimal interpreters have no ctypes
    _libc = None

if PY3:
    from threading import get_ident
else:
    from thread import get_ident

if hasattr(time, "monotonic"):
    monotonic = time.monotonic
else:
    class _timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    def monotonic():
        ts = _timespec()
        if _libc.clock_gettime(1, ctypes.byref(ts)) != 0:  # CLOCK_MONOTONIC
            raise OSError(ctypes.get_errno(), "clock_gettime")
        return ts.tv_sec + ts.tv_nsec * 1e-9


def gettid():
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    return _libc.syscall(186)  # SYS_gettid on x86_64


def eintr_retry(fn, *args):
    """2.7 has no PEP 475: a signal handler makes system calls fail with
    EINTR (only in the itimer mode, where the test sends the signals)."""
    while True:
        try:
            return fn(*args)
        except (OSError, IOError, socket.error) as e:
            if getattr(e, "errno", None) != 4:
                raise


def block_test_signals():
    """itimer mode: only the main thread takes SIGALRM and SIGUSR1."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM, signal.SIGUSR1])
        return
    sigset = ctypes.create_string_buffer(128)
    _libc.sigemptyset(sigset)
    _libc.sigaddset(sigset, signal.SIGALRM)
    _libc.sigaddset(sigset, signal.SIGUSR1)
    if _libc.pthread_sigmask(0, sigset, None) != 0:  # SIG_BLOCK
        raise OSError(ctypes.get_errno(), "pthread_sigmask")


errors = []
threads = {}  # name -> info


def spawn(name, fn, *args):
    info = {"name": name, "progress": 0, "tid": None, "ident": None, "done": False}

    def run():
        if MODE == "itimer":
            block_test_signals()
        info["tid"] = gettid()
        info["ident"] = get_ident()
        try:
            fn(info, *args)
        except BaseException as e:
            errors.append("thread %s: %s: %r" % (name, type(e).__name__, e))
        finally:
            info["done"] = True

    t = threading.Thread(target=run, name=name)
    t.daemon = True
    info["thread"] = t
    threads[name] = info
    t.start()
    return info


# ------------------------------------------------------------------ threads

def busy(info):
    while True:
        info["progress"] += 1


sleep_stats = {"n": 0, "min": None, "max": None}


def regex_during(t0, t1):
    """gil mode: a sleep that overlaps the regex waits for the GIL after it."""
    s, e = regex_state["start"], regex_state["end"]
    return s is not None and s < t1 and (e is None or e > t0 or e < s)


def run_delay():
    """Seconds every thread of this process has waited on a run queue
    (schedstat), by thread."""
    out = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/self/task/%s/schedstat" % tid) as f:
                out[tid] = int(f.read().split()[1]) / 1e9
        except (IOError, OSError, ValueError, IndexError):
            pass
    return out


sleep_log = []


def short_sleep(info):
    """Sleeps of 0.05 s, each measured. Cut short: an error. How long each
    one took, and how long this process's threads waited for a CPU
    meanwhile (this one, the one holding the GIL it needs to return, one
    that pykill waits for to stop), goes to the test, which knows when
    pykill ran: a sleep is weighed against the others, not against a
    fixed bound that a loaded machine or a greedy GIL would break."""
    while True:
        r0 = run_delay()
        t0 = monotonic()
        time.sleep(SHORT)
        took = monotonic() - t0
        r1 = run_delay()
        load = sum(r1[k] - r0[k] for k in r1 if k in r0)
        if took < SHORT - 0.0005:
            errors.append("sleep(%.2f) cut short: %.4f s (at %.4f)" % (SHORT, took, t0))
        if not regex_during(t0, t0 + took):
            sleep_log.append((t0, took, load))
        n = sleep_stats["n"] = sleep_stats["n"] + 1
        if n == 1 or took < sleep_stats["min"]:
            sleep_stats["min"] = took
        if n == 1 or took > sleep_stats["max"]:
            sleep_stats["max"] = took
        info["progress"] += 1


def long_sleep(info):
    t0 = monotonic()
    time.sleep(3600)
    errors.append("sleep(3600) returned after %.3f s" % (monotonic() - t0))


sock_a, sock_b = socket.socketpair()


def recv(info):
    while True:
        data = sock_a.recv(16)
        if data != b"ping":
            errors.append("recv got %r" % (data,))
            return
        sock_a.sendall(b"pong")
        info["progress"] += 1


gate = threading.Lock()
gate.acquire()


def lock_wait(info):
    while True:
        gate.acquire()  # released once per check by the main thread
        info["progress"] += 1


def heartbeat(info):
    while True:
        time.sleep(0.01)
        info["progress"] += 1


def churner(info):
    live = []

    def short_lived():
        x = 0
        for i in range(50):
            x += i
        return x

    while True:
        t = threading.Thread(target=short_lived)
        t.daemon = True
        t.start()
        live.append(t)
        if len(live) >= 8:
            live.pop(0).join()
        info["progress"] += 1


regex_go = threading.Event()
regex_state = {"n": 0, "start": None, "end": None}
CATASTROPHIC = re.compile(r'(a+)+$')


def regex(info):
    while True:
        regex_go.wait()
        regex_go.clear()
        regex_state["start"] = monotonic()
        CATASTROPHIC.match('a' * regex_state["n"] + 'b')
        regex_state["end"] = monotonic()
        info["progress"] += 1


victims = {"busy-victim": [], "sleep-victim": []}


def busy_victim(info):
    while True:
        try:
            while True:
                info["progress"] += 1
        except BufferError:
            victims["busy-victim"].append(monotonic())


def sleep_victim(info):
    while True:
        try:
            while True:
                time.sleep(0.2)
                info["progress"] += 1
        except BufferError:
            victims["sleep-victim"].append(monotonic())


def exec_again():
    """Become a new program in the same process: this script, basic mode,
    same command and reply pipes (inheritable since the test passed them),
    its ready line on the reply pipe."""
    os.environ["PYKILL_STRESS_EXECED"] = "1"
    os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), str(REPLY_FD), str(CMD_FD),
                              str(REPLY_FD), "basic"])


def execer(info):
    if not eintr_retry(os.read, EXEC_FD, 1):
        return
    exec_again()


scale_stop = threading.Event()


def scale_sleeper(info):
    scale_stop.wait()


# ------------------------------------------------------------------ setup

counts = {"alrm": 0, "usr1": 0}
if MODE == "itimer":
    ACK_FD = int(ARG)

    def on_alrm(sig, frame):
        counts["alrm"] += 1

    def on_usr1(sig, frame):
        counts["usr1"] += 1
        eintr_retry(os.write, ACK_FD, b"u")

    signal.signal(signal.SIGALRM, on_alrm)
    signal.signal(signal.SIGUSR1, on_usr1)

BLOCKED = ("long-sleep", "recv", "lock-wait")  # blocked for good: wait until /proc says so

if MODE == "scale":
    n_scale = int(ARG)
    threading.stack_size(64 * 1024)
    for i in range(n_scale):
        spawn("s%d" % i, scale_sleeper)
    BLOCKED = tuple("s%d" % i for i in range(n_scale))
else:
    spawn("short-sleep", short_sleep)
    spawn("long-sleep", long_sleep)
    spawn("recv", recv)
    spawn("lock-wait", lock_wait)
    spawn("heartbeat", heartbeat)
    if MODE == "churn":
        spawn("churn", churner)
    if MODE == "gil":
        # How long the regex runs: it doubles with each 'a'; measured here.
        best = None
        for _ in range(3):
            t0 = monotonic()
            CATASTROPHIC.match('a' * 20 + 'b')
            took = monotonic() - t0
            best = took if best is None else min(best, took)
        want = float(os.environ.get("PYKILL_STRESS_REGEX_S", "7"))
        n = 20
        while n < 28 and best * 2 ** (n - 20) < want:
            n += 1
        regex_state["n"] = n
        regex_state["estimate"] = best * 2 ** (n - 20)
        spawn("regex", regex)
        spawn("sleep-victim", sleep_victim)
        spawn("busy-victim", busy_victim)
    if MODE == "exec":
        EXEC_FD = int(ARG)
        spawn("execer", execer)
        BLOCKED = BLOCKED + ("execer",)
spawn("busy", busy)
if MODE == "scale":
    spawn("busy2", busy)


def blocked(tid):
    try:
        with open("/proc/self/task/%d/syscall" % tid) as f:
            s = f.read().split()
        with open("/proc/self/task/%d/stat" % tid) as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
    except (IOError, OSError):
        return False
    return st in ("S", "D") and s[0] not in ("running", "-1")


# Free-threaded 3.13t starts thousands of threads far more slowly here than
# default builds (5000 in 56 s on a loaded 2-core machine, 3.12: a few s).
deadline = monotonic() + (240 if MODE == "scale" else 60)
pending = list(BLOCKED)
while pending or any(i["tid"] is None for i in threads.values()):
    pending = [n for n in pending if threads[n]["tid"] is None or not blocked(threads[n]["tid"])]
    if monotonic() > deadline:
        print("target: threads did not block: %r" % pending[:10], file=sys.stderr)
        sys.exit(2)
    time.sleep(0.002)


def write_all(fd, data):
    while data:
        n = eintr_retry(os.write, fd, data)
        data = data[n:]


main_info = {"tid": gettid(), "ident": get_ident()}
ready = {"pid": os.getpid(), "version": list(sys.version_info[:3]),
         "threads": dict((n, {"tid": i["tid"], "ident": i["ident"]}) for n, i in threads.items())}
ready["threads"]["MainThread"] = main_info
if MODE == "gil":
    ready["regex_n"] = regex_state["n"]
    ready["regex_estimate"] = regex_state["estimate"]
write_all(READY_FD, ("ready %s\n" % json.dumps(ready)).encode())
if READY_FD != REPLY_FD:  # after an exec the ready line goes to the reply pipe
    os.close(READY_FD)


# ------------------------------------------------------------------ commands

def check():
    """Is every thread alive, unharmed and making progress?"""
    problems = []
    dead = sorted(n for n, i in threads.items() if i["done"] or not i["thread"].is_alive())
    if dead:
        problems.append("threads ended: %s" % ", ".join(dead[:10]))
    if MODE == "scale":
        watch = ("busy", "busy2")
    else:
        watch = ("busy", "short-sleep", "heartbeat", "lock-wait", "recv") + \
            (("churn",) if MODE == "churn" else ()) + \
            (("busy-victim", "sleep-victim") if MODE == "gil" else ())
    before = dict((n, threads[n]["progress"]) for n in watch)
    need = {"short-sleep": 2, "heartbeat": 2}
    if MODE != "scale":
        eintr_retry(sock_b.sendall, b"ping")
        gate.release()
    limit = monotonic() + CHECK_LIMIT
    stalled = list(watch)
    while stalled and monotonic() < limit:
        stalled = [n for n in watch if threads[n]["progress"] - before[n] < need.get(n, 1)]
        if stalled:
            eintr_retry(time.sleep, 0.002)
    if stalled:
        problems.append("no progress in %.0f s: %s" % (CHECK_LIMIT, ", ".join(stalled)))
    if MODE != "scale" and "recv" not in stalled:
        sock_b.settimeout(CHECK_LIMIT)
        try:
            got = eintr_retry(sock_b.recv, 4)
            if got != b"pong":
                problems.append("recv answered %r" % (got,))
        except socket.timeout:
            problems.append("recv did not answer")
        sock_b.settimeout(None)
    problems.extend(errors)
    if EXECED and main_caught:
        problems.append("the program after the exec got %d exception(s) in its main thread: %s"
                        % (len(main_caught), ", ".join(main_caught[:3])))
    log = sleep_log[:]
    del sleep_log[:len(log)]
    return {"ok": not problems, "problems": problems, "sleeps": sleep_stats, "sleep_log": log,
            "progress": dict((n, threads[n]["progress"]) for n in watch),
            "threads": threading.active_count()}


main_caught = []


def serve():
    """Commands until told to end. A BufferError the test raises into the
    main thread is counted (in the program after an exec: an error), and
    the serving goes on; a command it interrupted is lost."""
    while True:
        try:
            serve_commands()
        except BufferError as e:
            main_caught.append("%s: %r" % (type(e).__name__, e))


def serve_commands():
    buf = b""
    while True:
        while b"\n" not in buf:
            data = eintr_retry(os.read, CMD_FD, 4096)
            if not data:
                os._exit(0)  # the test went away
            buf += data
        line, buf = buf.split(b"\n", 1)
        words = line.decode().split()
        cmd, args = words[0], words[1:]
        reply = {"ok": True}
        if cmd == "check":
            reply = check()
        elif cmd == "quit":
            reply = check()
            write_all(REPLY_FD, (json.dumps(reply) + "\n").encode())
            os._exit(0 if reply["ok"] else 1)
        elif cmd == "exit":
            os._exit(0)
        elif cmd == "sysexit":
            sys.exit(0)
        elif cmd == "exec":
            exec_again()
        elif cmd == "main-caught":
            reply = {"caught": main_caught}
        elif cmd == "regex":
            regex_state["n"] = int(args[0])
            regex_go.set()
        elif cmd == "regex-state":
            reply = dict(regex_state)
        elif cmd == "itimer":
            if args[0] == "on":
                signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
            else:
                signal.setitimer(signal.ITIMER_REAL, 0, 0)
            reply = {"ok": True, "t": monotonic()}
        elif cmd == "count":
            reply = {"alrm": counts["alrm"], "usr1": counts["usr1"], "t": monotonic()}
        elif cmd == "victims":
            reply = {"victims": victims, "errors": list(errors)}
        else:
            reply = {"ok": False, "problems": ["unknown command %r" % cmd]}
        write_all(REPLY_FD, (json.dumps(reply) + "\n").encode())


serve()
