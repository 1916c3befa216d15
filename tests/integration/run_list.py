#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration test of `pykill list` against a real CPython process.

  run_list.py PYKILL PYTHON

Starts tests/integration/target.py under PYTHON, waits for its ready
handshake (a pipe), runs `pykill list --json`, and checks every thread the
target reports about itself: ident, TID, main flag, name, system call, and
for parked threads the exact stack (function, file, line per frame). Then
checks the human output and that the target lives on unharmed. Exits 0 on
success, 1 on failure, 77 (ctest's skip code) when the interpreter is absent.
"""
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import pktest  # noqa: E402
from pktest import fail, resolve_python  # noqa: E402


EXPECT_SYSCALL = {
    "long-sleeper": ("clock_nanosleep", "select", "pselect6", "nanosleep"),
    "receiver": ("recvfrom", "recvmsg", "read"),
    "lock-waiter": ("futex",),
    "idle": ("futex",),
    "MainThread": ("read",),
}


def main():
    pykill, python = sys.argv[1], resolve_python(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix="pykill-it-")
    truth_path = os.path.join(tmp, "truth.json")
    t = pktest.Target(python, os.path.join(HERE, "target.py"), args=[truth_path])
    proc = t.proc
    try:
        with open(truth_path) as f:
            truth = json.load(f)
        # The target says "ready" just before its main thread calls read():
        # wait until the kernel shows it blocked there.
        pktest.wait_blocked(proc.pid, proc.pid, "target's main thread in read()", syscall=0, sleeping=True)
        rc, out, err = pktest.run_pykill(pykill, "list", "--json", proc.pid)
        if rc != 0:
            fail("pykill list exited %d: %s" % (rc, err))
        got = json.loads(out)
        check(truth, got, proc.pid)
        rc, out, err = pktest.run_pykill(pykill, "list", "--stacks", proc.pid)
        if rc != 0 or "MainThread" not in out or "long-sleeper" not in out:
            fail("human output (exit %d): %s %s" % (rc, out, err))
        check_columns(out)
        with open("/proc/%d/status" % proc.pid) as f:
            status = f.read()
        if "TracerPid:\t0" not in status:
            fail("target still traced after pykill: %s" % status)
        t.send("quit")
        out = proc.communicate(timeout=30)[0].decode(errors="replace")
        if proc.returncode != 0 or "target ok" not in out:
            fail("target harmed (exit %s): %s" % (proc.returncode, out))
    finally:
        t.close()
    print("ok: %s, %d threads, freeze %d us" % (got["python"]["version"], len(got["threads"]), got["freeze_us"]))


def check_columns(text):
    """Every row's SHAPE, GIL and STATE start under their headers, whatever
    the names (a 54-character name, an accented one), and the long name is
    cut with "..."."""
    lines = text.splitlines()
    header = [l for l in lines if l.startswith("TID ")]
    if len(header) != 1:
        fail("human output: %d header lines:\n%s" % (len(header), text))
    cols = [header[0].index(h) for h in (" SHAPE ", " GIL ", " STATE ")]
    rows = [l for l in lines if l[:1].isdigit()]
    for row in rows:
        if len(row) <= max(cols) + 1 or any(row[c] != " " or row[c + 1] == " " for c in cols):
            fail("human output: a row out of its columns:\n%s\n%s" % (header[0], row))
    if not any("a-thread-named-well-past-sixt... " in r for r in rows):
        fail("human output: the long name is not cut at 32 columns:\n%s" % text)


def check(truth, got, pid):
    if got.get("schema") != 1 or got.get("pid") != pid:
        fail("bad header: %r" % {k: got.get(k) for k in ("schema", "pid")})
    want_ver = ".".join(str(x) for x in truth["version"])
    if not got["python"]["version"].startswith(want_ver):
        fail("version %s, target says %s" % (got["python"]["version"], want_ver))
    no_gil = not truth.get("gil_enabled", True)
    if no_gil and not got["python"]["version"].endswith("t"):
        fail("version %s: a free-threaded build is listed as 3.X.Yt" % got["python"]["version"])
    by_ident = {t["ident"]: t for t in got["threads"]}
    if len(got["threads"]) != len(truth["threads"]):
        fail("%d threads listed, target has %d: %r" % (len(got["threads"]), len(truth["threads"]),
                                                      sorted(t["name"] or "-" for t in got["threads"])))
    problems = []
    for want in truth["threads"]:
        label = want["name"] or "raw-%x" % want["ident"]
        t = by_ident.get(want["ident"])
        if t is None:
            problems.append("%s: ident %#x missing" % (label, want["ident"]))
            continue
        if want["tid"] is not None and t["tid"] != want["tid"]:
            problems.append("%s: tid %s, target says %s" % (label, t["tid"], want["tid"]))
        if t["main"] != bool(want.get("main")):
            problems.append("%s: main=%s" % (label, t["main"]))
        # Threads threading knows have its name; raw _thread threads have none.
        if t["name"] != want["name"] and not (want["name"] is None and t["name"] is None):
            problems.append("%s: name %r, target says %r" % (label, t["name"], want["name"]))
        exp = EXPECT_SYSCALL.get(want["name"] or "")
        if exp is not None:
            sc = t["syscall"]["name"] if t["syscall"] else None
            if sc not in exp:
                problems.append("%s: syscall %s, expected one of %s" % (label, sc, exp))
        if want["name"] == "busy" and not any(f["function"] in ("work", "busy") for f in t["frames"][:2]):
            problems.append("busy: innermost frames %r" % t["frames"][:2])
        if want["parked"]:
            wf = [(f["function"], f["file"], f["line"]) for f in want["frames"]]
            gf = [(f["function"], f["file"], f["line"]) for f in t["frames"]]
            if wf != gf:
                diff = next((i for i in range(min(len(wf), len(gf))) if wf[i] != gf[i]), min(len(wf), len(gf)))
                problems.append("%s: stack differs at frame %d of %d/%d: got %r, target says %r" % (
                    label, diff, len(gf), len(wf), gf[diff] if diff < len(gf) else None,
                    wf[diff] if diff < len(wf) else None))
            if t["frames_truncated"] or t["frames_error"]:
                problems.append("%s: truncated=%s error=%s" % (label, t["frames_truncated"], t["frames_error"]))
        if want["name"] == "long-sleeper" and t["gil"]:
            problems.append("long-sleeper claims to hold the GIL")
        # No GIL (free-threaded, not enabled): null and "absent", documented in pykill(1).
        if no_gil and (t["gil"] is not None or t["gil_state"] != "absent"):
            problems.append("%s: gil %r, gil_state %r on an interpreter without a GIL" % (
                label, t["gil"], t["gil_state"]))
        if not no_gil and (t["gil"] not in (True, False) or t["gil_state"] == "absent"):
            problems.append("%s: gil %r, gil_state %r on an interpreter with a GIL" % (
                label, t["gil"], t["gil_state"]))
    if problems:
        fail("\n  ".join(["pykill list disagrees with the target:"] + problems))


if __name__ == "__main__":
    main()
