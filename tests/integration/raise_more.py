#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""More integration tests of `pykill raise` (issue #4) on a real CPython.

  raise_more.py PYKILL PYTHON [SCENARIO]...

Scenarios (all when none is named), each against a fresh
tests/integration/raise_more_target.py, each checking the outcome in the
target:
  refcount    200 raises into fresh busy threads, half via the call path, half
              via --via write: every one delivered, the thread's finally ran,
              sys.getrefcount(SystemExit) back where it started
  concurrent  two pykills at once (raise + raise into two busy threads, list +
              raise): both end with 0, or 5 saying "already traced by pid N"
              (N the other pykill); the target unharmed
  samethread  two pykills raise KeyError and ValueError into one thread at once,
              50 times: nothing replaced, every "delivered" caught in the target
  sigint      SIGINT to pykill at 50 ms and at seeded random instants 0-30 ms
              while it raises into a thread in a long sleep: pykill ends, the
              target is unharmed and no sleep is cut short
  sigkill     SIGKILL of pykill at seeded random instants of raise (call and
              write paths), then health checks of the target after each; then
              kills while the thread the call path borrowed (from a relative
              nanosleep) sits in a ptrace stop at a futex
  lock        a thread busy inside `with lock:` gets SystemExit, the lock is
              released (call and write paths)
  join        the main thread in t.join() (futex) while the worker is busy,
              also in a timed join whose futex a stop turned into
              restart_syscall: the raise works, never through the main
              thread, and the JSON says which path and why
"Unharmed" means: no thread stopped (t/T) or traced, the background threads
alive and working, no sleep cut short or doubled, no thread saw an exception
it was not sent, and the target answers over its pipe.
PYKILL_TEST_SEED sets the seed of the random instants (printed on failure).
Exits 0 on success, 1 on failure, 77 when the interpreter is absent.
"""
import collections
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import pktest  # noqa: E402
from pktest import check, resolve_python  # noqa: E402

SEED = int(os.environ.get("PYKILL_TEST_SEED", "4"))
SYSCALLS = {"x86_64": {"read": 0, "futex": 202, "restart_syscall": 219, "clock_nanosleep": 230},
            "aarch64": {"read": 63, "futex": 98, "restart_syscall": 128, "clock_nanosleep": 115}}[platform.machine()]


Fail = pktest.Fail
throw = pktest.throw


class Refused(Fail):
    pass


class Late(Fail):
    """--via call not finished within pykill's budget (a starved machine):
    pykill detached and said the thread completes the call on its own."""


class Target(pktest.Target):
    """raise_more_target.py with the background threads named (comma-separated)."""

    def __init__(self, python, background=""):
        self.raised = {}  # thread name -> exception class names it reported
        self.background = [b for b in background.split(",") if b]
        pktest.Target.__init__(self, python, os.path.join(HERE, "raise_more_target.py"), args=[background],
                               ready_timeout=60, error=throw, on_line=self.saw,
                               details=lambda: threads_now(self.pid))
        self.info = json.loads(self.ready_text)
        self.main_tid = self.info["main_tid"]

    def saw(self, line):
        if line.startswith("exc "):
            _, name, exc = line.split()
            self.raised.setdefault(name, []).append(exc)

    def tid(self, name):
        return self.info["threads"][name][1]


def threads_now(pid):
    """Every thread's state, system call and wait channel, for messages."""
    out = []
    try:
        tids = sorted(int(x) for x in os.listdir("/proc/%d/task" % pid))
    except OSError:
        return "(process gone)"
    for tid in tids:
        try:
            with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open("/proc/%d/task/%d/syscall" % (pid, tid)) as f:
                sc = f.read().split()[0]
            with open("/proc/%d/task/%d/wchan" % (pid, tid)) as f:
                wchan = f.read()
            with open("/proc/%d/task/%d/comm" % (pid, tid)) as f:
                comm = f.read().strip()
        except (IOError, OSError):
            continue
        out.append("%d %s %s syscall %s %s" % (tid, comm, state, sc, wchan))
    return "; ".join(out)


def wait_in_syscall(pid, tid, nr=None, limit=10, not_nr=None):
    """Until thread tid is blocked in a system call (nr, if given; not
    not_nr, if given)."""
    pktest.wait_blocked(pid, tid, syscall=nr, not_syscall=not_nr, limit=limit, error=throw, interval=0.0005)


def proc_health(pid, what):
    """No thread of pid stopped or traced."""
    bad = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        except (IOError, OSError):
            continue  # it just ended
        if st["State"][0] in "tT" or st["TracerPid"] != "0":
            bad.append("thread %s: State %s, TracerPid %s" % (tid, st["State"], st["TracerPid"]))
    check(not bad, "%s: target harmed: %s" % (what, "; ".join(bad)))


def target_health(t, what, alive_fresh=()):
    """Background threads (and alive_fresh) alive and working, no sleep
    anomaly, and the target answers over its pipe."""
    t.send("health")
    h = t.expect_json("health", 20)
    dead = [n for n in t.background + list(alive_fresh) if not h["alive"].get(n)]
    check(not dead, "%s: threads that should live have ended: %r" % (what, dead))
    check(not h["stuck"], "%s: threads made no progress: %r" % (what, h["stuck"]))
    check(not h["anomalies"], "%s: sleeps cut short or doubled: %r" % (what, h["anomalies"]))
    return h


def check_raised(t, allowed, what):
    """Every exception any thread saw was sent to it: allowed maps a thread
    name to the exception class it was sent."""
    t.drain()
    wrong = dict((n, e) for n, e in t.raised.items() if n not in allowed or any(x != allowed[n] for x in e) or len(e) > 1)
    check(not wrong, "%s: threads saw exceptions they were not sent: %r" % (what, wrong))


def health(t, what, allowed, alive_fresh=()):
    proc_health(t.pid, what)
    check_raised(t, allowed, what)
    target_health(t, what, alive_fresh)
    proc_health(t.pid, what)


def thread_stat(pid, tid):
    """State and CPU time (clock ticks) of a thread, for failure messages."""
    try:
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            s = f.read().rsplit(")", 1)[1].split()
        return "state %s utime+stime %d" % (s[0], int(s[11]) + int(s[12]))
    except (IOError, OSError):
        return "gone"


def steal_ticks():
    with open("/proc/stat") as f:
        return int(f.readline().split()[8])


def raise_json(binary, t, tid, *extra, **kw):
    args = ["raise", "--json"] + list(extra) + [str(t.pid), str(tid)]
    name = kw.get("name")
    if name:
        t.send("progress %s" % name)
        before = t.expect("progress %s " % name)
    st0, steal0, t0 = thread_stat(t.pid, tid), steal_ticks(), time.time()
    rc, out, err = pktest.run_pykill(binary, *args, error=throw)
    if "--via" in extra and extra[extra.index("--via") + 1] == "call" and refused(rc, err):
        raise Refused(err.strip())
    if "--via" in extra and extra[extra.index("--via") + 1] == "call" and rc == 1 and \
            "not finished after" in err and "completes it on its own" in err:
        raise Late(err.strip())
    if rc != 0:
        # What the thread did meanwhile: did it run at all?
        diag = "thread before: %s, after: %s; %.2f s, host steal %d ticks" % (
            st0, thread_stat(t.pid, tid), time.time() - t0, steal_ticks() - steal0)
        if name:
            t.send("progress %s" % name)
            diag += "; in the target: %s -> %s" % (before, t.expect("progress %s " % name))
        raise Fail("pykill %s: exit %d, expected 0 (delivered): %s %s\n    %s" %
                   (" ".join(args), rc, out, err.strip(), diag))
    r = json.loads(out)
    check(r["verdict"] == "delivered" and r["tid"] == tid and r["exception"] == "SystemExit",
          "pykill %s: %r" % (" ".join(args), r))
    return r


def refused(rc, err):
    """--via call refused as documented: no thread at a safe point, or the GIL
    holder judged stuck (on a loaded machine a busy holder that did not get
    a CPU for a while looks so)."""
    return rc == 7 and "refused: the call path is not safe now" in err


def raise_call(binary, t, tid, name, refusals, *extra):
    """raise --via call, again after a documented refusal (nothing was
    queued then)."""
    for _ in range(5):
        try:
            return raise_json(binary, t, tid, "--via", "call", name=name, *extra)
        except Refused as e:
            refusals.append(str(e))
        except Late as e:
            # The documented outcome of a starved call: the caller then
            # checks pykill's word, that the exception still fires (its
            # expect of the thread's end), and the refcount after.
            print("  note: %s" % e)
            return {"via": "call", "via_reason": "not finished within the budget; completed on its own",
                    "verdict": "late"}
    raise Refused("pykill raise --via call refused 5 times in a row: %s" % refusals[-1])


def spawn(t, n=1):
    t.send("spawn %d" % n)
    return t.expect_json("spawned")


# ------------------------------------------------------------------ scenarios

def sc_refcount(binary, python):
    """200 raises in a row into fresh threads; SystemExit's refcount kept."""
    # Only a parked thread besides the main one: the call path always has a
    # hijack point and the GIL holder is the busy thread itself.
    t = Target(python, "parked")
    try:
        t.send("refcnt")
        before = int(t.expect("refcnt ").split()[1])
        counts = {}
        paths = {}
        refusals = []
        # The call path on request, then the default, which is the write path.
        for via, extra in (("call", ["--via", "call"]), ("write", [])):
            for i in range(100):
                fresh = spawn(t)[0]
                # The main thread back in read(), not holding the GIL.
                wait_in_syscall(t.pid, t.main_tid, SYSCALLS["read"])
                if via == "call":
                    r = raise_call(binary, t, fresh["tid"], fresh["name"], refusals, "--wait", "2")
                else:
                    r = raise_json(binary, t, fresh["tid"], "--wait", "2", name=fresh["name"])
                check(r["via"] == via and r["via_reason"],
                      "%s raise %d: went via %s (%s), expected %s" % (via, i, r["via"], r["via_reason"], via))
                paths[via, r["via"]] = paths.get((via, r["via"]), 0) + 1
                late = r.get("verdict") == "late"
                t.expect("exc %s SystemExit" % fresh["name"], 60 if late else 10)
                t.expect("end %s raised" % fresh["name"], 60 if late else 10)
            t.send("refcnt")
            counts[via] = int(t.expect("refcnt ").split()[1])
        health(t, "refcount", dict(("fresh-%d" % i, "SystemExit") for i in range(1, 201)))
        check(counts["call"] == before and counts["write"] == before,
              "sys.getrefcount(SystemExit): %d before, %d after 100 raises by default (%d via call), %d after 100 "
              "more via write (on %s)" % (before, counts["call"], paths.get(("call", "call"), 0), counts["write"],
                                          t.info["version"]))
    finally:
        t.close()
    print("  refcount: SystemExit refcount %d, paths (asked, used): %r; --via call refused %d times%s" % (
        before, paths, len(refusals), "".join("\n    refused: " + w for w in refusals[:3])))


def traced_by(err, other):
    m = re.search(r"already traced by pid (\d+)", err)
    return m is not None and int(m.group(1)) == other


def sc_concurrent(binary, python):
    """Two pykills at once on one target."""
    t = Target(python, "ticker,sleeper,nsleeper,cruncher")
    allowed = {}
    stats = {}
    wrong = []
    try:
        for rnd in range(20):
            both_raise = rnd % 2 == 0
            a, b = spawn(t, 2)
            wait_in_syscall(t.pid, t.main_tid, SYSCALLS["read"])
            cmds = [["raise", "--json", "--wait", "2", str(t.pid), str(a["tid"])]]
            if both_raise:
                cmds.append(["raise", "--json", "--wait", "2", str(t.pid), str(b["tid"])])
            else:
                cmds.append(["list", "--json", str(t.pid)])
            procs = [subprocess.Popen([binary] + c, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in cmds]
            res = []
            for p in procs:
                try:
                    out, err = p.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    for q in procs:
                        if q.poll() is None:
                            q.kill()
                            q.wait()
                    raise Fail("round %d: pykill %s hung" % (rnd, " ".join(p.args[1:])))
                res.append((p.returncode, out.decode(errors="replace"), err.decode(errors="replace")))
            what = "round %d (%s)" % (rnd, "raise+raise" if both_raise else "raise+list")
            for i, (rc, out, err) in enumerate(res):
                other = procs[1 - i].pid
                key = "%s %s" % (cmds[i][0], rc)
                stats[key] = stats.get(key, 0) + 1
                # Recorded, not fatal at once: the target's health after every
                # round says more about what a wrong status did.
                if not (rc == 0 or (rc == 5 and traced_by(err, other))):
                    wrong.append("%s: pykill %s: exit %d, expected 0, or 5 with 'already traced by pid %d': %s" %
                                 (what, " ".join(cmds[i]), rc, other, err.strip().replace("\n", " | ")))
                if rc == 0:
                    json.loads(out)
            # In the target: a queued raise ended its thread; a refused one
            # left it untouched and working.
            try:
                queued = [c[0] == "raise" and rc in (0, 3) for (rc, _, _), c in zip(res, cmds)]
                for fresh, ok in zip((a, b), queued):
                    if ok:
                        allowed[fresh["name"]] = "SystemExit"
                for fresh, ok in zip((a, b), queued):
                    if ok:
                        t.expect("end %s raised" % fresh["name"])
                    else:
                        health(t, what, allowed, alive_fresh=[fresh["name"]])
                        t.send("stop %s" % fresh["name"])
                        t.expect("end %s returned" % fresh["name"])
                health(t, what, allowed)
            except Fail as e:
                raise Fail("%s\n    the two pykills: %s" % (e, "\n    ".join(
                    "%s -> exit %d: %s %s" % (" ".join(c), rc, out.strip(), err.strip())
                    for c, (rc, out, err) in zip(cmds, res))))
    finally:
        t.close()
    print("  concurrent: exit statuses %r" % stats)
    check(not wrong, "%d of 40 pykill runs ended with an undocumented status or message:\n    %s" %
          (len(wrong), "\n    ".join(wrong)))


def expect_caught(t, name, exc, credit, timeout=10):
    """The catcher caught exc: its own line ("caught NAME EXC"), or, where
    the next exception fired inside exc's handler before it could say so,
    the line of that one, naming exc in its ctx. A line taken credits every
    class it names (credit: a Counter per round), so that each exception's
    check finds it whichever of the two said so."""
    deadline = time.time() + timeout
    while True:
        if credit[exc] > 0:
            credit[exc] -= 1
            return
        for i, e in enumerate(t.events):
            words = e.split(" ", 3)
            if len(words) < 3 or words[0] != "caught" or words[1] != name:
                continue
            ctx = words[3][len("ctx="):].split(",") if len(words) == 4 and words[3].startswith("ctx=") else []
            if words[2] == exc or exc in ctx:
                t.events.pop(i)
                credit.update([words[2]] + ctx)
                break
        else:
            left = deadline - time.time()
            if left <= 0:
                raise Fail("target never said it caught %s in %s; events: %r; its threads: %s" %
                           (exc, name, t.events[-20:], threads_now(t.pid)))
            t.lines(left)


def caught_lines(t, name, n, timeout=3):
    """The classes of up to n "caught NAME CLASS" lines, taken, waiting at
    most timeout for the n-th once the first came (10 s for the first)."""
    got, deadline = [], time.time() + 10
    while len(got) < n:
        for i, e in enumerate(t.events):
            words = e.split(" ", 3)
            if len(words) >= 3 and words[0] == "caught" and words[1] == name:
                t.events.pop(i)
                got.append(words[2])
                if len(got) == 1:
                    deadline = time.time() + timeout
                break
        else:
            left = deadline - time.time()
            if left <= 0:
                break
            t.lines(left)
    return got


def sc_samethread(binary, python):
    """Two pykills raise KeyError and ValueError into one thread at once, 50
    times (issue #10.6): an exception already queued is never replaced, and
    every "delivered" is an exception the thread really caught, of the class
    that pykill raised; every other status left nothing behind."""
    t = Target(python, "")
    counts = collections.Counter()
    py2 = tuple(t.info["version"])[:1] == (2,)
    try:
        t.send("catcher ct")
        ct = t.expect_json("catching")
        for rnd in range(50):
            wait_in_syscall(t.pid, t.main_tid, SYSCALLS["read"])
            credit = collections.Counter()
            cmds = [["raise", "--json", "--wait", "2", str(t.pid), str(ct["tid"]), exc]
                    for exc in ("KeyError", "ValueError")]
            procs = [subprocess.Popen([binary] + c, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in cmds]
            outs = []
            for c, p in zip(cmds, procs):
                try:
                    outs.append(p.communicate(timeout=30))
                except subprocess.TimeoutExpired:
                    p.kill()
                    raise Fail("round %d: pykill %s hung" % (rnd, " ".join(c)))
            if py2 and all(p.returncode == 0 for p in procs):
                # Both delivered. Python 2.7 keeps no __context__: the second
                # may fire inside the first's handler before that one says
                # so, and then only the second is said. At least one line,
                # and only of these two classes.
                for c, (out, _) in zip(cmds, outs):
                    counts[c[-1], 0] += 1
                    check(json.loads(out)["verdict"] == "delivered", "round %d: %s: %s" % (rnd, c[-1], out))
                said = caught_lines(t, "ct", 2)
                check(said and set(said) <= set(c[-1] for c in cmds),
                      "round %d: both delivered, the catcher said %r" % (rnd, said))
                continue
            for c, p, (out, err) in zip(cmds, procs, outs):
                err = err.decode(errors="replace")
                exc = c[-1]
                counts[exc, p.returncode] += 1
                if p.returncode == 0:
                    r = json.loads(out)
                    check(r["verdict"] == "delivered", "round %d: %s: %r" % (rnd, exc, r))
                    expect_caught(t, "ct", exc, credit)
                elif p.returncode == 7:
                    check("already queued" in err, "round %d: %s refused: %s" % (rnd, exc, err.strip()))
                elif p.returncode == 5:
                    check("already traced" in err, "round %d: %s: exit 5: %s" % (rnd, exc, err.strip()))
                else:
                    raise Fail("round %d: pykill %s: exit %d: %s" % (rnd, " ".join(c), p.returncode, err.strip()))
            # A line taken for a delivered exception that names one no
            # pykill delivered this round: that one fired unreported.
            undelivered = [cls for cls, n in credit.items()
                           if n > 0 and (cls, 0) not in [(c[-1], p.returncode) for c, p in zip(cmds, procs)]]
            check(not undelivered, "round %d: caught %r, which no pykill reported delivered" % (rnd, undelivered))
        # Nothing fired that no pykill reported as delivered.
        t.send("progress ct")
        t.expect("progress ct ")
        extra = [e for e in t.events if e.startswith("caught ")]
        check(not extra, "exceptions caught that no pykill reported delivered: %r (statuses %r)" %
              (extra, dict(counts)))
        check(counts["KeyError", 0] + counts["ValueError", 0] >= 50,
              "fewer than one delivery per round: %r" % dict(counts))
        t.send("stop ct")
        t.expect("end ct ")
    finally:
        t.close()
    print("  samethread: (exception, exit status) counts %r" % dict(counts))


def interruptible(argv):
    """pykill started with SIGINT's default action, as from a terminal, even
    if this test runs with it ignored."""
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_queued(binary, pid, tid, what):
    """Until list says an exception is queued for tid (its X flag)."""
    pktest.wait_until(lambda: any(r["tid"] == tid and r.get("async_exc_pending")
                                  for r in (pktest.pykill_json(binary, "list", "--json", str(pid))[1] or
                                            {"threads": []})["threads"]),
                      what, limit=10, error=throw)


def sc_sigint(binary, python):
    """Ctrl-C of pykill while it raises into a thread in a long sleep."""
    rng = random.Random(SEED)
    delays = [0.050] + [rng.uniform(0, 0.030) for _ in range(20)]
    # Long enough that a pykill that ignored SIGINT would still be waiting
    # when told to stop: it must have ended well before the sleep does.
    length = 5.0
    t = Target(python, "ticker,sleeper,nsleeper")
    stats = {}
    queued = {}  # sleep -> did pykill say it left an exception queued
    try:
        started = []
        for i, delay in enumerate(delays):
            name = "sl-%d" % i
            t.send("sleep %s %s" % (name, length))
            sl = t.expect_json("sleeping")
            wait_in_syscall(t.pid, sl["tid"])
            wait_in_syscall(t.pid, t.main_tid, SYSCALLS["read"])
            p = interruptible([binary, "raise", "--wait", "5", str(t.pid), str(sl["tid"])])
            time.sleep(delay)
            p.send_signal(signal.SIGINT)
            try:
                out, err = p.communicate(timeout=3.5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                raise Fail("SIGINT %.1f ms after start: pykill raise --wait 5 %d %d did not end within 3.5 s "
                           "(seed %d)" % (delay * 1e3, t.pid, sl["tid"], SEED))
            err = err.decode(errors="replace")
            out = out.decode(errors="replace")
            stats[p.returncode] = stats.get(p.returncode, 0) + 1
            check(len(err.splitlines()) <= 4, "SIGINT %.1f ms: pykill said too much on stderr: %s" % (delay * 1e3, err))
            # It says which: nothing done (130), or queued and the watch
            # stopped (3, pending: the sleep outlasts any watch). Killed by
            # it: it came before pykill caught it, before anything was read.
            if p.returncode == -signal.SIGINT:
                queued[name] = False
            elif p.returncode == 130:
                check("before anything was queued; nothing done" in err and not out,
                      "SIGINT %.1f ms: exit 130 without saying nothing was done: %r %r" % (delay * 1e3, out, err))
                queued[name] = False
            elif p.returncode == 3:
                check("SIGINT stopped the watch" in out and "stays queued" in out and
                      "pykill withdraw %d %d" % (t.pid, sl["tid"]) in out,
                      "SIGINT %.1f ms: pending without saying the watch was stopped: %r" % (delay * 1e3, out))
                queued[name] = True
            else:
                raise Fail("SIGINT %.1f ms after start: pykill exit %d (want 130: nothing done, or 3: queued): "
                           "%r %r" % (delay * 1e3, p.returncode, out, err))
            started.append(name)
            proc_health(t.pid, "after SIGINT at %.1f ms" % (delay * 1e3))
            target_health(t, "after SIGINT at %.1f ms" % (delay * 1e3))
        # Waiting for another pykill's claim on the thread (it holds it for
        # its whole --wait): SIGINT ends the wait at once, nothing done.
        name = "sl-claim"
        t.send("sleep %s %s" % (name, length))
        sl = t.expect_json("sleeping")
        wait_in_syscall(t.pid, sl["tid"])
        wait_in_syscall(t.pid, t.main_tid, SYSCALLS["read"])
        holder = interruptible([binary, "raise", "--wait", "8", str(t.pid), str(sl["tid"])])
        # The holder has queued once the thread's state says so (list's X flag).
        wait_queued(binary, t.pid, sl["tid"], "the first pykill queued its exception")
        waiter = interruptible([binary, "raise", "--wait", "8", str(t.pid), str(sl["tid"]), "KeyError"])
        # Waiting on the claim: asleep between its tries to bind it.
        pktest.wait_blocked(waiter.pid, waiter.pid, syscall=SYSCALLS["clock_nanosleep"], limit=10, error=throw)
        t0 = time.time()
        waiter.send_signal(signal.SIGINT)
        out, err = waiter.communicate(timeout=5)
        check(waiter.returncode == 130 and b"nothing done" in err and time.time() - t0 < 2,
              "SIGINT while waiting for another pykill's claim: exit %d after %.1f s: %r" % (
                  waiter.returncode, time.time() - t0, err))
        holder.send_signal(signal.SIGINT)
        out, err = holder.communicate(timeout=5)
        check(holder.returncode == 3 and b"SIGINT stopped the watch" in out,
              "the claim's holder, SIGINT in its watch: exit %d %r %r" % (holder.returncode, out, err))
        queued[name] = True
        started.append(name)
        # --withdraw-if-pending: Ctrl-C in the watch is "now or never" too:
        # taken back (8), said in the JSON, and nothing fires later.
        name = "sl-withdraw"
        t.send("sleep %s %s" % (name, length))
        sl = t.expect_json("sleeping")
        wait_in_syscall(t.pid, sl["tid"])
        wait_in_syscall(t.pid, t.main_tid, SYSCALLS["read"])
        p = interruptible([binary, "raise", "--json", "--wait", "8", "--withdraw-if-pending", str(t.pid),
                           str(sl["tid"])])
        wait_queued(binary, t.pid, sl["tid"], "--withdraw-if-pending's exception queued")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=5)
        r = json.loads(out.decode()) if out.strip() else {}
        check(p.returncode == 8 and r.get("verdict") == "withdrawn" and r.get("stopped_by") == "SIGINT",
              "SIGINT in --withdraw-if-pending's watch: exit %d %r %r" % (p.returncode, out, err))
        queued[name] = False
        started.append(name)
        # Each sleep ran its full length; an exception queued in it fired after.
        allowed = {}
        for name in started:
            _, _, secs, exc = t.expect("slept %s " % name, length + 30).split()
            check(float(secs) >= length - 50e-6, "%s: time.sleep(%s) lasted only %s s (seed %d)" %
                  (name, length, secs, SEED))
            check(float(secs) < 2 * length, "%s: time.sleep(%s) lasted %s s" % (name, length, secs))
            if exc != "-":
                allowed[name] = exc
            # What pykill said is what happened.
            check((exc != "-") == queued[name], "%s: pykill said %s, and after the sleep %s fired" % (
                name, "queued" if queued[name] else "nothing done", exc))
            t.expect("end %s" % name)
        for name in started:
            allowed.setdefault(name, "SystemExit")
        health(t, "after the SIGINTs", allowed)
    finally:
        t.close()
    print("  sigint: pykill exit statuses %r; %d of %d sleeps then raised the exception queued before the SIGINT" %
          (stats, len([n for n in started if n in t.raised]), len(started)))


def sc_sigkill(binary, python):
    """SIGKILL of pykill at random instants of raise."""
    rng = random.Random(SEED)
    t = Target(python, "ticker,sleeper,nsleeper")
    allowed = {}
    stats = {"finished": 0, "killed": 0}
    try:
        # How long a whole raise takes here, per path: the kills fall in it.
        span = {}
        refusals = []
        for via in ("call", "write"):
            walls = []
            for _ in range(3):
                fresh = spawn(t)[0]
                wait_in_syscall(t.pid, t.main_tid, SYSCALLS["read"])
                t0 = time.time()
                if via == "call":
                    try:
                        raise_call(binary, t, fresh["tid"], fresh["name"], refusals)
                    except Refused as e:
                        # No thread safe to borrow here (e.g. every sleep
                        # resumes through restart_syscall): refused, nothing
                        # queued; the kills below still run on the refusals.
                        print("  sigkill: the call path is refused on this interpreter: %s" % e)
                        t.send("stop %s" % fresh["name"])
                        t.expect("end %s " % fresh["name"])
                        break
                else:
                    raise_json(binary, t, fresh["tid"], "--via", via, name=fresh["name"])
                walls.append(time.time() - t0)
                allowed[fresh["name"]] = "SystemExit"
                t.expect("end %s raised" % fresh["name"])
            if walls:
                span[via] = min(walls)
        span.setdefault("call", span["write"])
        # At least 25 kills per path (a pykill may end before its kill).
        kills = {"call": 0, "write": 0}
        for i in range(400):
            if min(kills.values()) >= 25:
                break
            via = ("call", "write")[i % 2]
            if kills[via] >= 25:
                continue
            # Every third call-path kill with the main thread waiting on a
            # futex: the hijack then takes a sleeper (or the ticker).
            hold = via == "call" and i % 6 == 0
            fresh = spawn(t)[0]
            if hold:
                t.send("hold 0.3")
                wait_in_syscall(t.pid, t.main_tid, not_nr=SYSCALLS["read"])
            else:
                wait_in_syscall(t.pid, t.main_tid, SYSCALLS["read"])
            delay = rng.uniform(0, span[via])
            what = "SIGKILL %d, %.2f ms into pykill raise --via %s%s (seed %d)" % (
                i, delay * 1e3, via, " (main thread busy)" if hold else "", SEED)
            # -v: what it did before the kill goes into a failure message.
            p = subprocess.Popen([binary, "-v", "raise", "--via", via, "--wait", "2", str(t.pid), str(fresh["tid"])],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(delay)
            p.kill()
            try:
                err = p.communicate(timeout=10)[1].decode(errors="replace")
            except subprocess.TimeoutExpired:
                raise Fail("%s: pykill did not die" % what)
            stats["killed" if p.returncode == -signal.SIGKILL else "finished"] += 1
            if p.returncode == -signal.SIGKILL:
                kills[via] += 1
            if via == "call" and refused(p.returncode, err):
                refusals.append(err.strip().splitlines()[-1])
            else:
                check(p.returncode in (0, -signal.SIGKILL),
                      "%s: pykill exited %d before the kill: %s" % (what, p.returncode, err.strip()))
            allowed[fresh["name"]] = "SystemExit"
            try:
                if hold:
                    t.expect("held", 10)
                health(t, what, allowed)
            except Fail as e:
                raise Fail("%s: %s\n    pykill -v said before the kill:\n      %s" %
                           (what, e, "\n      ".join(err.strip().splitlines())))
            t.send("stop %s" % fresh["name"])
            t.expect("end %s " % fresh["name"])
        health(t, "after the SIGKILLs", allowed)
        check(min(kills.values()) >= 25, "only %r kills landed while pykill ran" % kills)
    finally:
        t.close()
    targeted = sigkill_in_call(binary, python)
    print("  sigkill: %r; raise wall time per path %r ms; --via call refused %d times%s" % (
        stats, dict((k, round(v * 1e3, 1)) for k, v in span.items()), len(refusals),
        "".join("\n    " + r for r in refusals[:3])))
    print("  sigkill: %d of %d kills while the borrowed thread sat in a ptrace stop at a timed futex" % targeted)


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (IOError, OSError):
        return "X"


def stopped_at_timed_futex(pid, tid):
    """Is thread tid in a ptrace stop at a futex wait with a timeout (one that
    the kernel restarts through restart_syscall when interrupted)?"""
    try:
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/%d/task/%d/syscall" % (pid, tid)) as f:
            sc = f.read().split()
    except (IOError, OSError):
        return False
    if state != "t" or len(sc) < 5 or sc[0] != str(SYSCALLS["futex"]):
        return False
    op = int(sc[2], 16) & 0x7f
    return op in (0, 9) and int(sc[4], 16) != 0  # FUTEX_WAIT(_BITSET) with a timeout


def sigkill_in_call(binary, python):
    """SIGKILL of pykill at the worst instant of the call path: the borrowed
    thread, taken from a relative nanosleep (restarted through
    restart_syscall), sits in a ptrace stop at a timed futex of
    PyGILState_Ensure (waiting for the GIL a busy thread holds). pykill is
    stopped there (SIGSTOP) and killed; the sleep must neither end early nor
    fail."""
    t = Target(python, "nsleeper")
    ns = t.tid("nsleeper")
    allowed = {}
    hits = tries = 0
    try:
        for i in range(12):
            if hits >= 6:
                break
            tries += 1
            fresh = spawn(t)[0]
            # The main thread busy on a futex: the call path borrows the sleeper.
            t.send("hold 0.3")
            wait_in_syscall(t.pid, t.main_tid, not_nr=SYSCALLS["read"])
            p = subprocess.Popen([binary, "raise", "--via", "call", str(t.pid), str(fresh["tid"])],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            # Sample with pykill stopped: a ptrace stop of the thread then
            # lasts until pykill goes on, so the sample cannot race it.
            deadline = time.time() + 5
            while p.poll() is None and time.time() < deadline:
                p.send_signal(signal.SIGSTOP)
                while p.poll() is None and proc_state(p.pid) not in "Tt":
                    pass
                if stopped_at_timed_futex(t.pid, ns):
                    p.kill()
                    hits += 1
                    break
                p.send_signal(signal.SIGCONT)
                time.sleep(0.0002)
            try:
                err = p.communicate(timeout=10)[1].decode(errors="replace")
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                raise Fail("pykill raise --via call %d %d hung" % (t.pid, fresh["tid"]))
            check(p.returncode in (0, -signal.SIGKILL) or refused(p.returncode, err),
                  "pykill raise --via call %d %d: exit %d: %s" % (t.pid, fresh["tid"], p.returncode, err.strip()))
            t.expect("held", 10)
            allowed[fresh["name"]] = "SystemExit"
            health(t, "SIGKILL %d while the borrowed thread (nsleeper, %d) sat in a ptrace stop at a timed futex" %
                   (i, ns), allowed)
            t.send("stop %s" % fresh["name"])
            t.expect("end %s " % fresh["name"])
    finally:
        t.close()
    return hits, tries


def sc_lock(binary, python):
    """SystemExit inside `with lock:` releases the lock."""
    t = Target(python, "ticker,parked")
    allowed = {}
    refusals = []
    try:
        for via in ("call", "write"):
            name = "lk-" + via
            t.send("locker %s" % name)
            lk = t.expect_json("locked")
            t.send("lockheld")
            check(t.expect("lockheld ") == "lockheld true", "%s: the lock is not held inside the with block" % name)
            wait_in_syscall(t.pid, t.main_tid, SYSCALLS["read"])
            if via == "call":
                r = raise_call(binary, t, lk["tid"], name, refusals)
            else:
                r = raise_json(binary, t, lk["tid"], "--via", via, name=name)
            check(r["via"] == via, "%s: went via %s" % (name, r["via"]))
            allowed[name] = "SystemExit"
            t.expect("end %s raised" % name, 60 if r.get("verdict") == "late" else 10)
            t.send("checklock")
            check(t.expect("lock ") == "lock true", "%s: the lock was not released after SystemExit in `with lock:`" % name)
            health(t, name, allowed)
    finally:
        t.close()
    if refusals:
        print("  lock: --via call refused %d times: %s" % (len(refusals), refusals[0]))


def sc_join(binary, python):
    """The main thread in t.join() (futex): never the hijacked thread."""
    for background, want, timed in (("parked", "call", False), ("", "write", False), ("parked", "call", True)):
        t = Target(python, background)
        try:
            if timed and t.info["version"][0] == 2:
                print("  join: no timed-join case on 2.7 (its join(timeout) polls with short sleeps)")
                continue
            name = "worker-" + want + ("-timed" if timed else "")
            t.send("joinwork %s%s" % (name, " 3600" if timed else ""))
            w = t.expect_json("worker")
            how = "join()"
            if timed:
                # A timed futex that a ptrace stop interrupted goes on as
                # restart_syscall: still a futex, not a safe point.
                wait_in_syscall(t.pid, t.main_tid, SYSCALLS["futex"])
                rc, out, err = pktest.run_pykill(binary, "list", "--freeze=all", t.pid, error=throw)
                check(rc == 0, "pykill list --freeze=all %d: exit %d: %s" % (t.pid, rc, err.strip()))
                try:
                    wait_in_syscall(t.pid, t.main_tid, SYSCALLS["restart_syscall"], limit=5)
                except Fail:
                    # An absolute-timeout futex (sem_timedwait) is simply
                    # re-executed after a stop: no restart_syscall to test.
                    print("  join: %s: the interrupted futex did not go on as restart_syscall; "
                          "timed case not applicable" % name)
                    continue
                how = "join(3600), its futex interrupted by a stop so that it shows as restart_syscall"
            else:
                wait_in_syscall(t.pid, t.main_tid, SYSCALLS["futex"])
            # No name: the main thread, in join(), cannot answer "progress".
            # The call path on request (it must borrow the parked thread, never
            # the main thread in its futex); the write path by default.
            extra = ["--via", "call"] if want == "call" else []
            refusals = []
            for _ in range(5):
                try:
                    r = raise_json(binary, t, w["tid"], *extra)
                    break
                except Refused as e:
                    # The busy worker holds the GIL; on a loaded machine it
                    # may look stuck: a documented refusal, nothing queued.
                    refusals.append(str(e))
            else:
                raise Fail("join: --via call refused 5 times: %s" % refusals[-1])
            what = "raise into %s with the main thread (%d) in %s%s" % (
                name, t.main_tid, how, " and a parked thread (%d)" % t.tid("parked") if background else "")
            check(r["via"] == want and r["via_reason"], "%s: went via %s (%s), expected %s" %
                  (what, r["via"], r["via_reason"], want))
            if want == "call":
                m = re.match(r"thread (\d+) ", r["via_reason"])
                check(m is not None and int(m.group(1)) == t.tid("parked"),
                      "%s: via_reason %r does not name the parked thread" % (what, r["via_reason"]))
            check(str(t.main_tid) not in r["via_reason"], "%s: via_reason %r names the main thread" %
                  (what, r["via_reason"]))
            t.expect("end %s raised" % name)
            t.expect("joined %s" % name)
            health(t, what, {name: "SystemExit"})
        finally:
            t.close()


SCENARIOS = [("refcount", sc_refcount), ("concurrent", sc_concurrent), ("samethread", sc_samethread),
             ("sigint", sc_sigint),
             ("sigkill", sc_sigkill), ("lock", sc_lock), ("join", sc_join)]


def main():
    binary, python = sys.argv[1], resolve_python(sys.argv[2])
    names = sys.argv[3:] or [n for n, _ in SCENARIOS]
    unknown = [n for n in names if n not in dict(SCENARIOS)]
    if unknown:
        print("usage: raise_more.py PYKILL PYTHON [%s]..." % "|".join(n for n, _ in SCENARIOS))
        sys.exit(2)
    failed = []
    for name, fn in SCENARIOS:
        if name not in names:
            continue
        t0 = time.time()
        try:
            fn(binary, python)
        except Fail as e:
            print("FAIL: %s on %s: %s" % (name, python, e))
            failed.append(name)
            continue
        print("ok: %s on %s (%.1f s)" % (name, python, time.time() - t0))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
