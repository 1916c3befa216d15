#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pykill raise must never harm the target, whatever the target does
(issue #10: seccomp filters, tiny stacks, threads that depend on each
other) and must say the truth about what it did.

  raise_harm.py PYKILL PYTHON SCENARIO

Scenarios, each against tests/integration/raise_harm_target.py:
  seccomp     a filter that kills the process on getpid (the call path's
              marker): --via call is refused naming seccomp, the default
              delivers; the process lives
  pipes       threads blocked in a pipe read and a pipe write: --via call
              refuses to borrow them (a GIL holder may wait on either), five
              raises by default leave them undisturbed (the write whole, the
              read exact)
  smallstack  a thread sleeping on a 16 KiB stack carved from a malloc'ed
              buffer: --via call refuses it (its bounds are unknown), the
              canary below it intact; the default delivers
  ctorargs    exceptions whose constructor needs arguments are refused
              (exit 7) and the thread gets nothing (no TypeError)
  stopped     a process stopped by SIGSTOP: pending (exit 3), the reason says
              it is stopped; after SIGCONT the exception fires
  interrupt   a one-thread program in time.sleep(3600): raise --interrupt
              into the main thread, 6 times: the note always says the sleep
              was made to return EINTR (issue #11.3)
Exits 0 on success, 1 on failure, 77 when the interpreter is absent.
"""
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import pktest  # noqa: E402
from pktest import check, resolve_python  # noqa: E402

PYKILL = None
SYSCALLS = {"clock_nanosleep": 230, "nanosleep": 35, "select": 23, "pselect6": 270, "read": 0, "write": 1}
SLEEPS = ("clock_nanosleep", "select", "pselect6", "nanosleep")

Fail = pktest.Fail
throw = pktest.throw


class Target(pktest.Target):
    """raise_harm_target.py in one mode; its ready line carries the threads' TIDs."""

    expect_timeout = 20  # s

    def __init__(self, python, mode):
        pktest.Target.__init__(self, python, os.path.join(HERE, "raise_harm_target.py"), args=[mode],
                               ready="ready ", ready_timeout=60, error=throw,
                               details=lambda: threads_state(self.pid))
        self.info = json.loads(self.ready_text)

    def health(self):
        """The next health line from the busy thread, after everything said
        before it (a barrier: anything the thread raised is said first)."""
        self.events = [e for e in self.events if not e.startswith("health ")]
        return json.loads(self.expect("health ")[len("health "):])

    def exceptions(self):
        return [e for e in self.events if e.startswith("exc ")]

    def tid(self, name):
        return self.info["threads"][name]


def threads_state(pid):
    out = []
    try:
        for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
            with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                sc = f.read().split()[0]
            out.append("%s %s %s" % (tid, pktest.stat_fields(pid, int(tid))[0], sc))
    except OSError as e:
        out.append(str(e))
    return "; ".join(out)


def wait_syscall(pid, tid, names, limit=20):
    pktest.wait_blocked(pid, tid, syscall=[SYSCALLS[n] for n in names], limit=limit, error=throw,
                        what="thread %d (%s)" % (tid, "/".join(names)), details=lambda: threads_state(pid))


def proc_state(pid):
    return pktest.stat_fields(pid)[0]


def pykill(*args, timeout=60):
    return pktest.run_pykill(PYKILL, *args, timeout=timeout, error=throw)


def untouched(t):
    """Nothing left stopped or traced."""
    bad = pktest.stopped_or_traced(t.pid)
    check(not bad, "left stopped or traced: %s" % "; ".join(bad))


def raise_busy(t, exc, *extra):
    rc, out, err = pykill("raise", "--json", *(list(extra) + [str(t.pid), str(t.tid("busy")), exc]))
    check(rc == 0, "raise %s %s into busy: exit %d: %s %s" % (exc, " ".join(extra), rc, out, err.strip()))
    r = json.loads(out)
    check(r["verdict"] == "delivered", "raise %s into busy: %r" % (exc, r))
    t.expect("exc busy %s" % exc)
    return r


def sc_seccomp(python):
    t = Target(python, "seccomp")
    try:
        wait_syscall(t.pid, t.tid("sleeper"), ("clock_nanosleep", "select", "pselect6", "nanosleep"))
        rc, out, err = pykill("raise", "--via", "call", str(t.pid), str(t.tid("busy")), "RuntimeError")
        check(rc == 7 and "seccomp" in err, "--via call under a seccomp filter: exit %d: %s %s" % (rc, out, err))
        check(t.proc.poll() is None, "target died: %s" % t.proc.returncode)
        r = raise_busy(t, "RuntimeError")
        check(r["via"] == "write", "default path: %r" % r)
        t.health()
        check(t.proc.poll() is None, "target died after the raise: %s" % t.proc.returncode)
        check(not t.exceptions(), "unexpected exceptions in the target: %r" % t.exceptions())
        untouched(t)
    finally:
        t.close()


def sc_pipes(python):
    t = Target(python, "pipes")
    try:
        wait_syscall(t.pid, t.tid("reader"), ("read",))
        wait_syscall(t.pid, t.tid("writer"), ("write",))
        # The call path never borrows a thread whose system call others may
        # wait on (a deadlock when a GIL holder waits on it).
        rc, out, err = pykill("raise", "--via", "call", str(t.pid), str(t.tid("busy")), "RuntimeError")
        check(rc == 7 and "not in a pure sleep" in err, "--via call with only a reader and a writer to borrow: exit "
              "%d: %s %s" % (rc, out, err))
        for i in range(5):
            raise_busy(t, "RuntimeError")
        # Neither was disturbed: the write is whole (a stopped write returns
        # short), the read gets exactly what is sent.
        fd = os.open("/proc/%d/fd/%d" % (t.pid, t.info["pipes"]["writer_r"]), os.O_RDONLY)
        got = 0
        while got < 1 << 20:
            chunk = os.read(fd, 1 << 20)
            check(chunk, "the writer's pipe closed")
            got += len(chunk)
        os.close(fd)
        wrote = int(t.expect("wrote ").split()[1])
        check(wrote == 1 << 20, "os.write of 1 MiB returned %d: the blocked write was disturbed" % wrote)
        fd = os.open("/proc/%d/fd/%d" % (t.pid, t.info["pipes"]["reader_w"]), os.O_WRONLY)
        os.write(fd, b"hello")
        os.close(fd)
        check(t.expect("read ") == "read 5", "the reader got something else")
        check(not t.exceptions(), "unexpected exceptions in the target: %r" % t.exceptions())
        untouched(t)
    finally:
        t.close()


def sc_smallstack(python):
    t = Target(python, "smallstack")
    try:
        wait_syscall(t.pid, t.tid("small"), ("clock_nanosleep", "select", "pselect6", "nanosleep"))
        rc, out, err = pykill("raise", "--via", "call", str(t.pid), str(t.tid("busy")), "RuntimeError")
        # 16 KiB: too little room below the thread's sp, refused. On 3.14+ the
        # carved stack is 256 KiB (Python needs that): its bounds come from the
        # thread's descriptor, so the call may use it, within them.
        big = tuple(t.info["version"]) >= (3, 14)
        check((rc == 7 and "stack" in err) or (big and rc == 0),
              "--via call with only a thread on a carved stack to borrow: exit %d: %s %s" % (rc, out, err))
        if rc == 0:
            t.expect("exc busy RuntimeError")
        check(t.health()["canary"] is True, "memory below the carved stack was written")
        raise_busy(t, "RuntimeError")
        check(t.health()["canary"] is True, "memory below the carved stack was written")
        check(os.path.exists("/proc/%d/task/%d" % (t.pid, t.tid("small"))), "the small-stack thread is gone")
        check(not t.exceptions(), "unexpected exceptions in the target: %r" % t.exceptions())
        untouched(t)
    finally:
        t.close()


def sc_ctorargs(python):
    t = Target(python, "plain")
    try:
        names = ["UnicodeDecodeError", "UnicodeEncodeError", "UnicodeTranslateError"]
        if tuple(t.info["version"]) >= (3, 11):
            names += ["BaseExceptionGroup", "ExceptionGroup"]
        for name in names:
            rc, out, err = pykill("raise", str(t.pid), str(t.tid("busy")), name)
            check(rc == 7 and "argument" in err, "raise %s: exit %d: %s %s" % (name, rc, out, err))
            t.health()
            check(not t.exceptions(), "raise %s: the thread got %r" % (name, t.exceptions()))
        raise_busy(t, "RuntimeError")
        untouched(t)
    finally:
        t.close()


def sc_stopped(python):
    t = Target(python, "plain")
    try:
        t.health()
        os.kill(t.pid, signal.SIGSTOP)
        deadline = time.time() + 10
        while proc_state(t.pid) != "T":
            check(time.time() < deadline, "target never stopped")
            time.sleep(0.001)
        rc, out, err = pykill("raise", "--json", "--wait", "0.3", str(t.pid), str(t.tid("busy")), "RuntimeError")
        check(rc == 3, "raise into a stopped process: exit %d: %s %s" % (rc, out, err))
        r = json.loads(out)
        check(r["verdict"] == "pending" and "stopped" in r["reason"], "stopped: %r" % r)
        check(proc_state(t.pid) == "T", "the process was continued by pykill")
        os.kill(t.pid, signal.SIGCONT)
        t.expect("exc busy RuntimeError")
        untouched(t)
    finally:
        t.close()


def sc_interrupt(python):
    notes = []
    for i in range(6):
        t = Target(python, "sleepmain")
        try:
            main = t.info["main"]
            wait_syscall(t.pid, main, ("clock_nanosleep", "select", "pselect6", "nanosleep"))
            # SystemExit into the main thread ends the program: confirmed with --force.
            rc, out, err = pykill("raise", "--json", "--force", "--interrupt", "--wait", "0.5", str(t.pid), str(main))
            check(rc in (0, 3), "raise --interrupt %d: exit %d: %s %s" % (i, rc, out, err))
            r = json.loads(out)
            notes.append(r["interrupt"]["note"] if r["interrupt"] else None)
            check(r["interrupt"] and r["interrupt"]["note"].startswith("made ") and "EINTR" in r["interrupt"]["note"],
                  "raise --interrupt %d into the sleeping main thread: %r" % (i, r))
            if rc == 0:
                t.expect("exc main SystemExit")
            else:
                check("retried" in r["reason"], "pending without saying the call was retried: %r" % r)
            untouched(t)
        finally:
            t.close()
    print("  interrupt: %r" % notes)


SCENARIOS = {"seccomp": sc_seccomp, "pipes": sc_pipes, "smallstack": sc_smallstack, "ctorargs": sc_ctorargs,
             "stopped": sc_stopped, "interrupt": sc_interrupt}


def main():
    global PYKILL
    PYKILL, python, name = sys.argv[1], resolve_python(sys.argv[2]), sys.argv[3]
    t0 = time.time()
    try:
        SCENARIOS[name](python)
    except Fail as e:
        pktest.fail("%s on %s: %s" % (name, python, e))
    print("ok: %s on %s (%.1f s)" % (name, python, time.time() - t0))


if __name__ == "__main__":
    main()
