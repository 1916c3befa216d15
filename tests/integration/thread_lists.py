#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pykill on processes whose thread list is not a normal program's (issue
#10): it must read what is there, stop nothing it must not, and say what
it could not do.

  thread_lists.py PYKILL PYTHON SCENARIO

Scenarios, each against tests/integration/thread_lists_target.py:
  mainexit  the main thread called pthread_exit: the process lives (its
            leader a zombie). list, list through another thread's TID, ps
            and raise work; only the exited main thread is flagged main
            (3.7+: 2.7 and 3.6 cannot tell which state is the main
            thread's, and flag none); a raise into it is refused (exit 4,
            "has exited") and nothing is queued; the call path borrows the
            sleeping thread, never the dead one
  chain     99000 fake thread states appended to the thread list (a forged
            list that ends): list, in every freeze mode, reads the real
            threads, stops at the bound, says the list was cut; a raise
            into the running thread is delivered. How long the running
            thread stayed stopped is printed, not asserted
  cycle     the same with the fakes' end pointing back into them (a list
            that never ends, its loop too long to be seen within the bound)
Exits 0 on success, 1 on failure, 77 when the interpreter is absent.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import pktest  # noqa: E402
from pktest import check, resolve_python, stat_fields  # noqa: E402

PYKILL = None

Fail = pktest.Fail
throw = pktest.throw


class Target(pktest.Target):
    """thread_lists_target.py in one mode; its ready line carries the threads' TIDs."""

    expect_timeout = 20  # s

    def __init__(self, python, mode, *args):
        pktest.Target.__init__(self, python, os.path.join(HERE, "thread_lists_target.py"), args=[mode] + list(args),
                               ready="ready ", ready_timeout=120, error=throw,
                               details=lambda: threads_state(self.pid))
        self.info = json.loads(self.ready_text)
        self.version = tuple(self.info["version"])

    def tid(self, name):
        return self.info["threads"][name]


def threads_state(pid):
    out = []
    try:
        for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
            out.append("%s %s" % (tid, stat_fields(pid, int(tid))[0]))
    except OSError as e:
        out.append(str(e))
    return "; ".join(out)


def wait_until(cond, what, limit=20):
    pktest.wait_until(cond, what, limit, error=throw)


def wait_blocked(pid, tid, limit=20):
    pktest.wait_blocked(pid, tid, what="thread %d blocking in a system call" % tid, limit=limit, error=throw)


def pykill(*args, timeout=120):
    return pktest.run_pykill(PYKILL, *args, timeout=timeout, error=throw)


def list_json(t, *extra, pid=None):
    rc, out, err = pykill("list", "--json", *(list(extra) + [pid or t.pid]))
    check(rc == 0 and not err, "list --json %s: exit %d: %s %s" % (" ".join(extra), rc, out[-2000:], err))
    return json.loads(out)


def untouched(t):
    """Nothing left stopped or traced."""
    bad = pktest.stopped_or_traced(t.pid)
    check(not bad, "left stopped or traced: %s" % "; ".join(bad))


def by_name(listing):
    return dict((th["name"], th) for th in listing["threads"] if th["name"])


# ------------------------------------------------------------------ mainexit

def main_thread_checks(t, listing, what):
    """The live threads are listed with their TIDs, none flagged main; the
    exited main thread is, where the version tells which it is."""
    check(listing["pid"] == t.pid, "%s: pid %r, want %d" % (what, listing["pid"], t.pid))
    threads = by_name(listing)
    for name in ("busy", "sleeper"):
        check(name in threads and threads[name]["tid"] == t.tid(name),
              "%s: thread %s (%d) missing: %r" % (what, name, t.tid(name), listing["threads"]))
    flagged = [th for th in listing["threads"] if th["main"]]
    for th in flagged:
        check(th["tid"] == t.pid and th["state"] == "zombie",
              "%s: a thread other than the exited main thread is flagged main: %r" % (what, th))
    main = threads.get("MainThread")
    check(main is not None, "%s: the main thread's state is not listed: %r" % (what, listing["threads"]))
    check(main["state"] in ("zombie", "dead"), "%s: the exited main thread is %r" % (what, main))
    if t.version >= (3, 7):
        check(main["tid"] == t.pid and main["main"], "%s: the exited main thread is not flagged main: %r" %
              (what, main))
    return main


def sc_mainexit(python):
    t = Target(python, "mainexit")
    try:
        wait_until(lambda: stat_fields(t.pid)[0] == "Z", "the main thread's exit")
        wait_blocked(t.pid, t.tid("sleeper"))
        for freeze in ("auto", "all", "none"):
            main = main_thread_checks(t, list_json(t, "--freeze=" + freeze), "list --freeze=" + freeze)
        main_thread_checks(t, list_json(t, pid=t.tid("sleeper")), "list through the sleeper's TID")
        rc, out, err = pykill("list", t.pid)
        check(rc == 0, "list: exit %d: %s %s" % (rc, out, err))
        for line in out.splitlines()[2:]:
            cols = line.split()
            if len(cols) > 3 and cols[3].startswith("M"):
                check(cols[0] == str(t.pid), "list flags another thread main: %r" % line)
        rc, out, err = pykill("ps", "--json", t.pid)
        procs = json.loads(out)["processes"] if rc == 0 else []
        # threads counts OS threads with a thread state, thread_states every
        # state: before 3.7 the exited main thread's state is on none.
        check(len(procs) == 1 and procs[0]["pid"] == t.pid and procs[0]["thread_states"] >= 3 and
              procs[0]["threads"] >= (3 if t.version >= (3, 7) else 2) and
              "thread_lists_target.py" in procs[0]["cmdline"], "ps %d: exit %d: %s %s" % (t.pid, rc, out, err))

        # Into the exited main thread: refused, nothing queued.
        targets = [main["ident_hex"]] + ([t.pid] if t.version >= (3, 7) else [])
        for which in targets:
            rc, out, err = pykill("raise", "--wait", "0.2", t.pid, which, "RuntimeError")
            check(rc == 4 and not out and "has exited" in err and "pending" not in err,
                  "raise into the exited main thread (%s): exit %d: %s %s" % (which, rc, out, err))
        main = by_name(list_json(t))["MainThread"]
        check(not main["async_exc_pending"], "an exception was queued for the exited main thread: %r" % main)

        rc, out, err = pykill("raise", "--json", t.pid, t.tid("busy"), "RuntimeError")
        check(rc == 0 and json.loads(out)["verdict"] == "delivered", "raise into busy: exit %d: %s %s" %
              (rc, out, err))
        t.expect("exc busy RuntimeError")
        rc, out, err = pykill("raise", "--json", "--via", "call", t.pid, t.tid("busy"), "RuntimeError")
        check(rc == 0, "raise --via call into busy: exit %d: %s %s" % (rc, out, err))
        r = json.loads(out)
        check(r["via"] == "call" and "thread %d " % t.tid("sleeper") in r["via_reason"],
              "the call path did not borrow the sleeper: %r" % r)
        t.expect("exc busy RuntimeError")
        check(stat_fields(t.pid)[0] == "Z", "the zombie leader changed state")
        check(not [e for e in t.events if e.startswith("exc ")], "unexpected exceptions: %r" % t.events)
        untouched(t)
    finally:
        t.close()


# ------------------------------------------------------------ chain, cycle

CHAIN = 99000


def wait_running(t, name, limit=20):
    """Until the thread has run on a CPU again (utime+stime grew)."""
    pktest.wait_progress(t.pid, t.tid(name), limit, error=throw)


def sc_chain(python, mode="chain"):
    t = Target(python, mode, CHAIN)
    try:
        wait_blocked(t.pid, t.tid("sleeper"))
        wait_running(t, "busy")
        stopped = []
        for freeze in ("auto", "all", "none"):
            what = "list --freeze=%s of a %s of %d fake thread states" % (freeze, mode, CHAIN)
            listing = list_json(t, "--freeze=" + freeze)
            cut = listing.get("threads_cut")
            check(cut and "cut after" in cut and "forged or cyclic" in cut, "%s: not cut short: %r" %
                  (what, cut))
            check(len(listing["threads"]) < CHAIN, "%s: %d threads listed" % (what, len(listing["threads"])))
            threads = by_name(listing)
            for name in ("busy", "sleeper", "MainThread"):
                check(name in threads, "%s: thread %s missing" % (what, name))
            check(threads["busy"]["tid"] == t.tid("busy") and threads["busy"]["frames"],
                  "%s: busy thread misread: %r" % (what, threads["busy"]))
            stopped.append("%s %d us (%d stopped)" % (freeze, listing["freeze_us"], listing["threads_stopped"]))
        rc, out, err = pykill("list", t.pid)
        check(rc == 0 and "cut short: the thread list was cut after" in out, "list: exit %d: %s %s" %
              (rc, out[:2000], err))
        rc, out, err = pykill("raise", "--json", t.pid, t.tid("busy"), "RuntimeError")
        check(rc == 0 and json.loads(out)["verdict"] == "delivered", "raise into busy: exit %d: %s %s" %
              (rc, out, err))
        t.expect("exc busy RuntimeError")
        untouched(t)
        print("  %s of %d: threads stopped for %s" % (mode, CHAIN, ", ".join(stopped)))
    finally:
        t.close()


def sc_cycle(python):
    sc_chain(python, "cycle")


SCENARIOS = {"mainexit": sc_mainexit, "chain": sc_chain, "cycle": sc_cycle}


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
