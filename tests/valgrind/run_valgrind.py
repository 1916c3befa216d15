#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pykill under valgrind against a real CPython process.

  run_valgrind.py VALGRIND PYKILL PYTHON

Starts tests/integration/raise_target.py, then runs under memcheck
  pykill list --json PID
  pykill list --stacks PID
  pykill raise --via write --json PID TID   (a busy thread: delivered)
and fails on any memcheck error or leak (definite, indirect, possible), on a
wrong exit status, or if the target was harmed. Exits 0/1, 77 to skip.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from pktest import fail, resolve_python  # noqa: E402
from run_raise import Target  # noqa: E402

MEMCHECK = ["--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect,possible", "--track-origins=yes", "--num-callers=30", "-q"]


def under_valgrind(valgrind, binary, *args):
    cmd = [valgrind] + MEMCHECK + [binary] + list(args)
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    out, err = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
    # -q: memcheck says nothing unless it found something.
    if res.returncode == 99 or re.search(r"^==\d+==", err, re.M):
        fail("valgrind found errors in `pykill %s` (exit %d):\n%s" % (" ".join(args), res.returncode, err))
    return res.returncode, out, err


def main():
    valgrind, binary, python = sys.argv[1], sys.argv[2], resolve_python(sys.argv[3])
    t = Target(python)
    pid = t.proc.pid
    try:
        rc, out, err = under_valgrind(valgrind, binary, "list", "--json", str(pid))
        if rc != 0:
            fail("list --json exited %d: %s" % (rc, err))
        listing = json.loads(out)
        tids = set()
        for th in listing.get("threads", []):
            tids.add(th.get("tid"))
        if t.tid("busy-write") not in tids:
            fail("list --json does not show thread busy-write (%d): %s" % (t.tid("busy-write"), out[:2000]))

        rc, out, err = under_valgrind(valgrind, binary, "list", "--stacks", str(pid))
        if rc != 0 or "raise_target.py" not in out:
            fail("list --stacks exited %d: %s %s" % (rc, out[:2000], err))

        rc, out, err = under_valgrind(valgrind, binary, "raise", "--via", "write", "--json", str(pid),
                                      str(t.tid("busy-write")))
        if rc != 0:
            fail("raise --via write exited %d: %s %s" % (rc, out, err))
        r = json.loads(out)
        if r["via"] != "write" or r["verdict"] != "delivered":
            fail("raise --via write: %r" % r)
        t.expect("finally busy-write SystemExit", 30)

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
    print("ok: pykill list and raise --via write under valgrind on %s" % python)


if __name__ == "__main__":
    main()
