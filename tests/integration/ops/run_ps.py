#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration test of `pykill ps`.

  run_ps.py PYKILL PYTHON [OTHER_PYTHON...] [--unsupported=FAKEPY]

Starts target.py under PYTHON (required; skip 77 if absent) and each
OTHER_PYTHON that exists, two renamed copies of Debian's static
/usr/bin/python3.11 (an interpreter in a program whose name does not say
python), a non-Python process, and as root one target run as nobody. Then
checks `pykill ps` in every form: JSON fields against what the targets say
about themselves, the PID filter, --pids, the table, the (dev, inode) cache
(-v), what nobody sees (and the skipped count), usage errors; and that no
thread of any target was woken, stopped or traced by it.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opslib import (NOBODY, Target, as_user, check_untouched, cleanup, fail, run, show, skip, started,  # noqa: E402
                    status_field, wait_blocked, world_copy)

STATIC_PY = "/usr/bin/python3.11"
KEYS = {"pid", "ns_pid", "user", "uid", "version", "path", "threads", "thread_states", "stuck", "stuck_longest_s",
        "cmdline", "error"}


def version_of(python, prefix=()):
    res = run(list(prefix) + [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    if res.returncode != 0:
        return None
    return res.out.strip()


def ps_json(argv, status=0, says=()):
    res = run(argv)
    if res.returncode != status or any(s not in res.err for s in says):
        fail(show(argv, res))
    try:
        got = json.loads(res.out)
    except ValueError as e:
        fail("not JSON (%s): %s" % (e, show(argv, res)))
    if got.get("schema") != 1 or not isinstance(got.get("processes"), list) or \
            not isinstance(got.get("skipped"), int):
        fail("bad ps --json header: %s" % show(argv, res))
    for p in got["processes"]:
        if set(p) != KEYS:
            fail("ps --json entry keys %s, want %s" % (sorted(p), sorted(KEYS)))
    pids = [p["pid"] for p in got["processes"]]
    if pids != sorted(pids) or len(set(pids)) != len(pids):
        fail("ps --json PIDs not ascending and unique: %r" % pids)
    return got


def check_entry(got, t, what):
    e = [p for p in got["processes"] if p["pid"] == t.proc.pid]
    if len(e) != 1:
        fail("%s (pid %d) is not listed once by ps: %r" % (what, t.proc.pid, [p["pid"] for p in got["processes"]]))
    e = e[0]
    # One thread state per OS thread in these targets: as many states as threads.
    want = {"ns_pid": t.proc.pid, "uid": t.uid, "user": t.user, "threads": t.nthreads, "thread_states": t.nthreads,
            "cmdline": t.cmdline, "error": None}
    for k, v in want.items():
        if e[k] != v:
            fail("%s: %s is %r, want %r (entry %r)" % (what, k, e[k], v, e))
    if e["version"] != t.version:
        fail("%s: version %r, the target says %r" % (what, e["version"], t.version))
    if not e["path"] or not e["path"].endswith(t.path_suffix):
        fail("%s: path %r does not end with %r" % (what, e["path"], t.path_suffix))


def start(python, sleepers, prefix=(), uid=0, user="root", path_suffix=None):
    t = Target(python, sleepers=sleepers, prefix=prefix, other_user=uid != os.geteuid())
    t.uid, t.user = uid, user
    t.version = version_of(python, prefix)
    t.cmdline = " ".join([python, t.script] + t.proc.args[-3:])
    t.path_suffix = path_suffix or ""
    wait_blocked(t.proc.pid, t.ns_reader, "reader thread of %s" % python, want_syscall=0)
    t.switches = status_field(t.proc.pid, t.ns_reader, "voluntary_ctxt_switches")
    return t


STUCK_SRC = r"""
import concurrent.futures, os, sys, threading, time
r, w = os.pipe()
def reader():
    os.read(r, 1)
def sleeper():
    while True:
        time.sleep(0.05)
pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
pool.submit(lambda: None).result()          # its worker now waits for work: idle
for f in (reader, sleeper):
    threading.Thread(target=f, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()                            # the main thread blocks too
"""


def check_stuck(pykill, python):
    """A reader blocked in read() and the main thread in read(): stuck; an
    idle pool worker blocked as long: not counted; a sleeper waking every
    50 ms: not counted. Polled until both are blocked 0.3 s (pykill's
    reading), then the count must be exactly 2, also in the table."""
    import time
    p = subprocess.Popen([python, "-c", STUCK_SRC], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    started.append(p)
    try:
        if p.stdout.readline().strip() != b"ready":
            fail("the stuck target did not start")
        argv = [pykill, "ps", "--json", "--stuck=0.3s", str(p.pid)]
        deadline = time.time() + 20
        while True:
            got = ps_json(argv)
            e = got["processes"][0] if got["processes"] else {}
            if e.get("stuck", 0) >= 2 or time.time() > deadline:
                break
        if got.get("stuck_s") != 0.3 or e.get("threads") != 4 or e.get("stuck") != 2 or \
                not 0.3 <= e.get("stuck_longest_s", 0) < 60:
            fail("ps --stuck=0.3s: want 2 stuck of 4 (the idle pool worker and the sleeper not): %r" % got)
        res = run([pykill, "ps", "--stuck=0.3s", str(p.pid)])
        row = [l.split() for l in res.out.splitlines() if l.split()[:1] == [str(p.pid)]]
        if res.returncode != 0 or len(row) != 1 or row[0][4] != "2" or not row[0][5].endswith("s") or \
                "blocked 0.3s or longer" not in res.out:
            fail("ps --stuck table: %s" % show([pykill, "ps", "--stuck=0.3s", str(p.pid)], res))
        got = ps_json([pykill, "ps", "--json", "--stuck=1h", str(p.pid)])
        if got["processes"][0]["stuck"] != 0:
            fail("ps --stuck=1h counts %r" % got["processes"][0])
    finally:
        p.stdin.close()
        p.wait(timeout=20)


def main():
    pykill, python = sys.argv[1], sys.argv[2]
    others = [a for a in sys.argv[3:] if not a.startswith("--unsupported=")]
    fakes = [a.split("=", 1)[1] for a in sys.argv[3:] if a.startswith("--unsupported=")]
    if not os.path.exists(python):
        skip("%s is not installed" % python)
    targets = [("main", start(python, 3))]
    for p in others:
        if os.path.exists(p):
            targets.append((p, start(p, 1)))
    if os.path.exists(STATIC_PY):
        worker = world_copy(STATIC_PY, "worker")
        for i in range(2):
            targets.append(("renamed static %d" % i, start(worker, 1, path_suffix=worker)))
    else:
        print("note: %s absent, the renamed-interpreter case is not run" % STATIC_PY)
    sleeper = subprocess.Popen(["sleep", "600"])
    started.append(sleeper)
    fake = None
    if fakes:
        fake = subprocess.Popen([fakes[0]], stdin=subprocess.PIPE)
        started.append(fake)
    nobody = None
    if os.geteuid() == 0 and os.path.exists("/usr/bin/python3") and \
            version_of("/usr/bin/python3", as_user(NOBODY)) is not None:
        nobody = start("/usr/bin/python3", 1, prefix=as_user(NOBODY), uid=NOBODY, user="nobody")
    else:
        print("note: not root or nobody cannot run /usr/bin/python3: the other-user case is not run")

    try:
        # Everything, as JSON.
        got = ps_json([pykill, "ps", "--json"])
        for what, t in targets:
            check_entry(got, t, what)
        if nobody is not None:
            check_entry(got, nobody, "target of nobody")
        if any(p["pid"] == sleeper.pid for p in got["processes"]):
            fail("the non-Python process %d is listed: %r" % (sleeper.pid, got))
        if fake is not None:
            e = [p for p in got["processes"] if p["pid"] == fake.pid]
            if len(e) != 1 or e[0]["version"] is not None or e[0]["threads"] is not None or \
                    e[0]["thread_states"] is not None or \
                    "3.99" not in (e[0]["error"] or "") or e[0]["cmdline"] != fakes[0]:
                fail("the unsupported Python %d must be listed with version and thread counts null and why: %r" %
                     (fake.pid, e))

        # A PID filter: a Python PID, a non-Python PID, a TID of a Python process.
        main = targets[0][1]
        other_tid = main.ns_tids["sleeper-0"]
        # The two it leaves out are said (6: not Python).
        got = ps_json([pykill, "ps", "--json", str(sleeper.pid), str(main.proc.pid), str(other_tid)], status=6,
                      says=["process %d: not a Python process" % p for p in (sleeper.pid, other_tid)])
        if [p["pid"] for p in got["processes"]] != [main.proc.pid]:
            fail("ps --json %d %d %d listed %r, want only %d" % (sleeper.pid, main.proc.pid, other_tid,
                                                               got["processes"], main.proc.pid))
        check_entry(got, main, "main (filtered)")

        # --pids: the short form for completion.
        res = run([pykill, "ps", "--pids"])
        if res.returncode != 0 or res.err:
            fail(show([pykill, "ps", "--pids"], res))
        listed = [int(x) for x in res.out.split()]
        for what, t in targets:
            if t.proc.pid not in listed:
                fail("ps --pids does not list %s (%d): %r" % (what, t.proc.pid, listed))
        if sleeper.pid in listed:
            fail("ps --pids lists the non-Python process %d" % sleeper.pid)

        # The table.
        res = run([pykill, "ps"])
        if res.returncode != 0 or res.err:
            fail(show([pykill, "ps"], res))
        lines = res.out.splitlines()
        if not lines or lines[0].split() != ["PID", "USER", "PYTHON", "THREADS", "STUCK", "LONGEST", "COMMAND"]:
            fail("ps table header: %s" % show([pykill, "ps"], res))
        if fake is not None:
            rows = [l.split() for l in lines[1:] if l.split()[:1] == [str(fake.pid)]]
            why = [l for l in lines if l.startswith("%d: " % fake.pid) and "3.99" in l]
            if len(rows) != 1 or rows[0][1:7] != ["root", "?", "?", "?", "?", fakes[0]] or len(why) != 1:
                fail("the unsupported Python in the table (a row with '?' and a line saying why):\n%s" % res.out)
        for what, t in targets:
            rows = [l.split() for l in lines[1:] if l.split()[:1] == [str(t.proc.pid)]]
            if len(rows) != 1 or rows[0][1:4] != [t.user, t.version, str(t.nthreads)] or \
                    " ".join(rows[0][6:]) != t.cmdline:
                fail("ps table row of %s: %r\n%s" % (what, rows, res.out))

        # The (dev, inode) cache: two processes of one renamed interpreter, one open.
        renamed = [t for what, t in targets if what.startswith("renamed")]
        if renamed:
            argv = [pykill, "-v", "ps", "--pids"] + [str(t.proc.pid) for t in renamed]
            res = run(argv)
            if res.returncode != 0 or "1 executables opened, 1 answers from the (dev, inode) cache" not in res.err:
                fail("the second renamed interpreter was not answered from the cache: %s" % show(argv, res))

        # What nobody sees: its own target, none of root's, and how many it skipped.
        if nobody is not None:
            copy = world_copy(pykill)
            argv = as_user(NOBODY) + [copy, "ps", "--json"]
            got = ps_json(argv)
            check_entry(got, nobody, "nobody's target seen by nobody")
            seen = set(p["pid"] for p in got["processes"])
            for what, t in targets:
                if t.proc.pid in seen:
                    fail("nobody sees root's %s (%d)" % (what, t.proc.pid))
            if got["skipped"] < len(targets):
                fail("nobody skipped %d processes, fewer than root's %d targets" % (got["skipped"], len(targets)))
            res = run(as_user(NOBODY) + [copy, "ps"])
            if res.returncode != 0 or "not readable: permission denied)" not in res.out.splitlines()[-1]:
                fail("the table does not end with the skipped count: %s" % show(argv, res))

        # STUCK: threads blocked at least --stuck, workers waiting for work
        # left out.
        if version_of(python) >= "3":
            check_stuck(pykill, python)

        # Named PIDs it leaves out are said, with a status to branch on:
        # 4 for one that names no process (a child that has been reaped),
        # 6 for one that is not Python; those it lists are still listed.
        gone = subprocess.Popen(["true"])
        gone.wait()
        other = subprocess.Popen(["sleep", "600"])
        try:
            py = targets[0][1].proc.pid
            for named, status, says in (([gone.pid], 4, "no process %d" % gone.pid),
                                        ([other.pid], 6, "process %d: not a Python process" % other.pid),
                                        ([py, other.pid, gone.pid], 4, "no process %d" % gone.pid)):
                for fmt in ([], ["--json"]):
                    argv = [pykill, "ps"] + fmt + [str(p) for p in named]
                    res = run(argv)
                    listed = [int(l.split()[0]) for l in res.out.splitlines()[1:] if l.split()[:1] != []
                              and l.split()[0].isdigit()] if not fmt else \
                        [p["pid"] for p in json.loads(res.out)["processes"]]
                    if res.returncode != status or says not in res.err or listed != [p for p in named if p == py]:
                        fail("ps with a PID it leaves out: %s" % show(argv, res))
        finally:
            other.kill()
            other.wait()

        # Usage errors.
        for bad in (["--json", "--pids"], ["abc"], ["--frobnicate"], ["0"], ["--stuck=0"], ["--stuck=x"]):
            res = run([pykill, "ps"] + bad)
            if res.returncode != 2 or res.out or "Try 'pykill --help'" not in res.err:
                fail("usage error expected: %s" % show([pykill, "ps"] + bad, res))

        # Nothing was stopped, traced, or even woken.
        everyone = [t for _, t in targets] + ([nobody] if nobody else [])
        for t in everyone:
            check_untouched(t.proc.pid)
            now = status_field(t.proc.pid, t.ns_reader, "voluntary_ctxt_switches")
            if now != t.switches:
                fail("the reader thread of %d blocked in read() was woken (%s -> %s context switches)" %
                     (t.proc.pid, t.switches, now))
        for t in everyone:
            t.quit()
        if fake is not None:
            fake.stdin.close()
            if fake.wait(timeout=20) != 0:
                fail("the fake Python exited %d" % fake.returncode)
    finally:
        cleanup()
    print("ok: ps on %d targets%s" % (len(targets), " and nobody's" if nobody else ""))


if __name__ == "__main__":
    main()
