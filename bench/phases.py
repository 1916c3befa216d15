#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where the time of one `pykill list` goes, phase by phase, from uprobes.

  phases.py [--pykill PATH] [--runs N] PID [pykill list options...]

Puts uprobes (perf probe, group "pkbench") on the entry and return of a few
functions of the pykill binary, which must have its debug information
(RelWithDebInfo), records N runs of `pykill list --json [options] PID` with
perf record, removes the probes, and prints the median of each phase in ms:

  open      pk_py_open: find the interpreter, symbols, layout
  scan      pk_py_snapshot up to the first stop or read: /proc of every thread
  stop      pk_freeze_add, all calls: PTRACE_SEIZE + INTERRUPT + wait
  read      read_all, all rounds: the interpreter's memory
  check     what runs between reads and the release (CPU-time check of the
            threads left running, thread mapping)
  release   pk_freeze_end: PTRACE_DETACH
  output    snapshot return to the end of main: resolve, format, print
  freeze    first stop to the end of the release (pykill's own freeze_us)

Needs root and perf; PID is any running Python process (e.g. started by
bench/target.py). Only probes of the group pkbench are added and deleted.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FUNCS = ["main", "pk_py_open", "pk_py_snapshot", "pk_freeze_add", "read_all", "pk_freeze_end"]
GROUP = "pkbench"


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def add_probes(binary):
    for f in FUNCS:
        for spec in ("%s:%s=%s" % (GROUP, f, f), "%s:%s_ret=%s%%return" % (GROUP, f, f)):
            r = run(["perf", "probe", "-q", "-x", binary, "-a", spec])
            if r.returncode != 0:
                raise RuntimeError("perf probe %s: %s" % (spec, r.stderr.strip()))


def del_probes():
    run(["perf", "probe", "-q", "-d", GROUP + ":*"])


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def phases_of(events):
    """events: [(t_ms, name)] of one run, in time order."""
    t = dict(open=0.0, scan=0.0, stop=0.0, read=0.0, check=0.0, release=0.0,
             output=0.0, freeze=0.0)
    first = {}
    last_read_end = None
    open_at = stop_at = read_at = rel_at = None
    first_stop = None
    for ts, name in events:
        first.setdefault(name, ts)
        if name == "pk_py_open":
            open_at = ts
        elif name == "pk_py_open_ret" and open_at is not None:
            t["open"] += ts - open_at
        elif name == "pk_freeze_add":
            stop_at = ts
            if first_stop is None:
                first_stop = ts
            if last_read_end is not None:
                t["check"] += ts - last_read_end
                last_read_end = None
        elif name == "pk_freeze_add_ret" and stop_at is not None:
            t["stop"] += ts - stop_at
        elif name == "read_all":
            read_at = ts
        elif name == "read_all_ret" and read_at is not None:
            t["read"] += ts - read_at
            last_read_end = ts
        elif name == "pk_freeze_end":
            rel_at = ts
            if last_read_end is not None:
                t["check"] += ts - last_read_end
                last_read_end = None
        elif name == "pk_freeze_end_ret" and rel_at is not None:
            t["release"] += ts - rel_at
            if first_stop is not None:
                t["freeze"] = ts - first_stop
    if "pk_py_snapshot" in first:
        nxt = min(first.get("pk_freeze_add", 1e18), first.get("read_all", 1e18))
        t["scan"] = nxt - first["pk_py_snapshot"]
    if "pk_py_snapshot_ret" in first and "main_ret" in first:
        t["output"] = first["main_ret"] - first["pk_py_snapshot_ret"]
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pykill", default=os.environ.get("PYKILL", os.path.join(REPO, "build", "cli", "pykill")))
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("pid", type=int)
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="more `pykill list` options")
    args = ap.parse_args()
    if not shutil.which("perf"):
        ap.error("perf is not installed")
    binary = os.path.abspath(args.pykill)
    tmp = tempfile.mkdtemp(prefix="pykill-phases.")
    data = os.path.join(tmp, "perf.data")
    cmd = " ".join(["'%s'" % binary, "list", "--json"] + ["'%s'" % o for o in args.opts] + [str(args.pid)])
    try:
        del_probes()
        add_probes(binary)
        r = run(["perf", "record", "-q", "-e", GROUP + ":*", "-o", data, "--", "sh", "-c",
                 "for i in $(seq %d); do %s >/dev/null || exit 1; done" % (args.runs, cmd)])
        if r.returncode != 0:
            raise RuntimeError("perf record / pykill failed: %s" % r.stderr.strip()[-400:])
        # perf script: "<comm> <pid> [cpu] <time>: pkbench:<event>: ..."
        r = run(["perf", "script", "-i", data, "-F", "pid,time,event"])
        if r.returncode != 0:
            raise RuntimeError("perf script: %s" % r.stderr.strip())
    except RuntimeError as e:
        sys.stderr.write("phases: %s\n" % e)
        return 1
    finally:
        del_probes()
        shutil.rmtree(tmp, ignore_errors=True)
    per_pid = {}
    pat = re.compile(r"^\s*(\d+)\s+([0-9.]+):\s+%s:(\w+?)(?:__return)?:" % GROUP)
    for line in r.stdout.splitlines():
        m = pat.match(line)
        if m:
            per_pid.setdefault(int(m.group(1)), []).append((float(m.group(2)) * 1000.0, m.group(3)))
    runs = []
    for pid, ev in per_pid.items():
        ev.sort()
        if not any(n == "main_ret" for _, n in ev):
            continue
        runs.append(phases_of(ev))
    if not runs:
        sys.stderr.write("phases: no complete run recorded\n")
        return 1
    keys = ["open", "scan", "stop", "read", "check", "release", "output", "freeze"]
    print("pykill list --json %s %d: median of %d runs, ms" % (" ".join(args.opts), args.pid, len(runs)))
    for k in keys:
        vals = [p[k] for p in runs]
        print("  %-8s %8.3f   (min %.3f, max %.3f)" % (k, median(vals), min(vals), max(vals)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
