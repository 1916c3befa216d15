#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration test of `pykill raise` against a real CPython process.

  run_raise.py PYKILL PYTHON

Each case raises SystemExit into one named thread of tests/integration/
raise_target.py and checks, in the target, that the thread raised it, that
its finally block ran, and that the rest of the process goes on; and checks
pykill's exit status, verdict, path and reason. Exits 0/1, 77 to skip.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import pktest  # noqa: E402
from pktest import fail, resolve_python  # noqa: E402


class Target(pktest.Target):
    """raise_target.py: its ready line names its threads (name -> [ident, TID])."""

    def __init__(self, python):
        pktest.Target.__init__(self, python, os.path.join(HERE, "raise_target.py"))
        self.info = json.loads(self.ready_text)

    def tid(self, name):
        return self.info["threads"][name][1]

    def status(self):
        self.send("status")
        return json.loads(self.expect("status ", 10)[len("status "):])


def raise_json(binary, pid, tid, *extra):
    rc, out, err = pktest.run_pykill(binary, "raise", "--json", *(list(extra) + [str(pid), str(tid)]))
    if rc not in (0, 3, 7, 8):
        fail("pykill raise %s exited %d: %s" % (tid, rc, err))
    return rc, json.loads(out)


def main():
    binary, python = sys.argv[1], resolve_python(sys.argv[2])
    t = Target(python)
    pid = t.proc.pid
    try:
        # Busy thread: delivered at once, finally runs.
        rc, r = raise_json(binary, pid, t.tid("busy"))
        # "ended": the thread took it and ended between two looks of pykill
        # (a loaded machine); the target's own log below is the proof.
        if rc != 0 or r["verdict"] not in ("delivered", "ended") or r["exception"] != "SystemExit" \
                or r["tid"] != t.tid("busy"):
            fail("busy: exit %d %r" % (rc, r))
        t.expect("finally busy SystemExit", 10)
        # The same through the write path.
        rc, r = raise_json(binary, pid, t.tid("busy-write"), "--via", "write")
        if rc != 0 or r["via"] != "write" or r["verdict"] not in ("delivered", "ended"):
            fail("busy-write: exit %d %r" % (rc, r))
        t.expect("finally busy-write SystemExit", 10)
        # Short sleeps: delivered when a sleep ends.
        rc, r = raise_json(binary, pid, t.tid("short-sleep"))
        if rc != 0:
            fail("short-sleep: exit %d %r" % (rc, r))
        t.expect("finally short-sleep SystemExit", 10)
        # Long sleep: pending, and says why.
        pktest.wait_blocked(pid, t.tid("long-sleep"), limit=10)
        rc, r = raise_json(binary, pid, t.tid("long-sleep"), "--wait", "0.3")
        if rc != 3 or r["verdict"] != "pending" or not r["syscall"] or \
                r["syscall"]["name"] not in ("clock_nanosleep", "select", "pselect6", "nanosleep"):
            fail("long-sleep: exit %d %r" % (rc, r))
        # Socket receive: pending in recvfrom; fires when the call returns.
        pktest.wait_blocked(pid, t.tid("receiver"), limit=10)
        rc, r = raise_json(binary, pid, t.tid("receiver"), "--wait", "0.3")
        if rc != 3 or not r["syscall"] or r["syscall"]["name"] not in ("recvfrom", "recvmsg", "read") \
                or "socket:" not in json.dumps(r["syscall"]["fds"]):
            fail("receiver: exit %d %r" % (rc, r))
        if "blocked in system call" not in r["reason"] or "fires when the call returns" not in r["reason"]:
            fail("receiver: the pending reason %r" % r["reason"])
        # list shows it queued: flag X in the row, async_exc_pending in JSON.
        rc, out, err = pktest.run_pykill(binary, "list", str(pid))
        row = [l for l in out.splitlines() if l.split()[:1] == [str(t.tid("receiver"))]]
        if rc != 0 or len(row) != 1 or not any(f.endswith("X") and len(f) == 3 for f in row[0].split()):
            fail("list does not flag the queued exception (X): exit %d %s %s" % (rc, out, err))
        # A pending exception is never replaced (issue #10.6): a second raise
        # is refused, exit 7, and nothing changes.
        rc, out, err = pktest.run_pykill(binary, "raise", str(pid), str(t.tid("receiver")), "KeyError")
        if rc != 7 or "already queued" not in err or "SystemExit" not in err:
            fail("second raise into a pending thread: exit %d %s %s" % (rc, out, err))
        # With --json, a refusal found before any verdict is one JSON object
        # too: a runbook branches on it (it printed nothing before).
        rc, out, err = pktest.run_pykill(binary, "raise", "--json", str(pid), str(t.tid("receiver")), "KeyError")
        r = json.loads(out or "{}")
        if rc != 7 or r.get("verdict") != "refused" or r.get("exit") != 7 or "already queued" not in r.get("error", "") \
                or r.get("thread") != str(t.tid("receiver")) or r.get("pid") != pid:
            fail("second raise --json into a pending thread: exit %d %r" % (rc, r))
        # withdraw takes it back, and says what it was (issue #11.6).
        rc, out, err = pktest.run_pykill(binary, "withdraw", "--json", str(pid), str(t.tid("receiver")))
        if rc != 0 or json.loads(out)["withdrawn"] != "SystemExit":
            fail("withdraw: exit %d %s %s" % (rc, out, err))
        rc, out, err = pktest.run_pykill(binary, "withdraw", "--json", str(pid), str(t.tid("receiver")))
        if rc != 0 or json.loads(out)["withdrawn"] is not None:
            fail("withdraw of nothing: exit %d %s %s" % (rc, out, err))
        # Now or never: still pending at the end of --wait, so taken back.
        rc, r = raise_json(binary, pid, t.tid("receiver"), "--wait", "0.2", "--withdraw-if-pending")
        if rc != 8 or r["verdict"] != "withdrawn":
            fail("receiver --withdraw-if-pending: exit %d %r" % (rc, r))
        # Said in words: why it did not fire, never that it "stays queued".
        rc, out, err = pktest.run_pykill(binary, "raise", "--wait", "0.2", "--withdraw-if-pending", str(pid), str(t.tid("receiver")))
        if rc != 8 or "withdrawn (it will not fire): blocked in system call" not in out or "queued and fires" in out:
            fail("receiver --withdraw-if-pending in words: exit %d %s %s" % (rc, out, err))
        # --interrupt: the call returns EINTR. 3.15+ raises on that path at
        # once; older versions retry the call, and pykill must say so.
        rc, r = raise_json(binary, pid, t.tid("receiver"), "--wait", "0.5", "--interrupt")
        if not r["interrupt"] or r["interrupt"]["syscall"] not in ("recvfrom", "recvmsg", "read"):
            fail("receiver --interrupt: exit %d %r" % (rc, r))
        ver = tuple(t.info["version"])
        if ver >= (3, 15) or ver < (3, 5):
            # 3.15+: the EINTR path raises the queued exception. Before PEP 475
            # (2.7) recv() does not retry: it raises EINTR, and the queued
            # exception fires at the next check in whatever handles that.
            if rc != 0 or r["verdict"] != "delivered":
                fail("receiver --interrupt on %s: exit %d %r" % (ver, rc, r))
            if ver >= (3, 15):
                t.expect("finally receiver SystemExit", 10)
            else:
                # 2.7: recv raised EINTR and the queued SystemExit fired inside the
                # handler of that: the thread ends either way.
                pktest.wait_until(lambda: not t.status()["alive"]["receiver"],
                                  "receiver --interrupt on 2.7: the thread ending", 10, interval=0.01)
        else:
            if rc != 3 or "retried" not in r["reason"]:
                fail("receiver --interrupt on %s: exit %d %r" % (ver, rc, r))
            t.send("send")
            t.expect("finally receiver SystemExit", 10)
        # Lock wait: pending in futex; fires when the lock is released.
        pktest.wait_blocked(pid, t.tid("lock-waiter"), limit=10)
        rc, r = raise_json(binary, pid, t.tid("lock-waiter"), "--wait", "0.3")
        if rc != 3 or not r["syscall"] or r["syscall"]["name"] != "futex":
            fail("lock-waiter: exit %d %r" % (rc, r))
        t.send("release")
        t.expect("finally lock-waiter SystemExit", 10)
        # By Python ident in hex, with another exception class.
        t.send("spawn")
        fresh = json.loads(t.expect("spawned ", 10)[len("spawned "):])
        rc, out, err = pktest.run_pykill(binary, "raise", str(pid), hex(fresh["ident"]), "KeyboardInterrupt")
        if rc != 0 or "delivered" not in out:
            fail("by ident: exit %d %s %s" % (rc, out, err))
        t.expect("finally %s KeyboardInterrupt" % fresh["name"], 10)
        # An ident that just ended: no such thread.
        t.send("join")
        t.expect("joined ", 10)
        rc, out, err = pktest.run_pykill(binary, "raise", str(pid), str(fresh["ident"]))
        if rc != 4:
            fail("ended ident: exit %d %s %s" % (rc, out, err))
        # Unknown exception: usage error with close matches.
        rc, out, err = pktest.run_pykill(binary, "raise", str(pid), str(t.tid("survivor")), "SystemExitt")
        if rc != 2 or "SystemExit" not in err:
            fail("unknown exception: exit %d %s" % (rc, err))
        st = t.status()
        dead = sorted(n for n, a in st["alive"].items() if not a)
        want_dead = sorted(["busy", "busy-write", "short-sleep", "receiver", "lock-waiter", fresh["name"]])
        if dead != want_dead:
            fail("threads ended %r, expected %r" % (dead, want_dead))
        with open("/proc/%d/status" % pid) as f:
            s = f.read()
        if "TracerPid:\t0" not in s or "State:\tT" in s:
            fail("target left traced or stopped: %s" % s)
        t.send("quit")
        out = t.proc.communicate(timeout=30)[0].decode(errors="replace")
        if t.proc.returncode != 0 or "target ok" not in out:
            fail("target harmed (exit %s): %s" % (t.proc.returncode, out))
    finally:
        t.close()
    print("ok: raise on %s" % python)


if __name__ == "__main__":
    main()
