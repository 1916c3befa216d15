#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Start-up and `list --json` of several pykill binaries, interleaved.

  startup_bench.py PYKILL [PYKILL...] [--runs R] [--threads N] [--python PY]

For each round, runs in turn /bin/true, then `PYKILL --version` and
`PYKILL list --json PID` for every binary given, so that every binary sees
the same machine (other people's builds come and go on a 2-core machine):
medians and p90s over R rounds (default 51) and the ratios to the first
binary, measured in the same run. Timing as list_bench.py: posix_spawn to
waitpid (the harness's own cost is the /bin/true row). PID is a target
started here under PY (default pyenv 3.12.1) with N threads (default 64)
asleep in time.sleep, plus its main thread; every list must show N + 1
threads. "others' CPU" is the machine's busy time not spent by this
harness, its children or the target, as a share of all CPUs, over the run.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import list_bench  # noqa: E402  (statistics, CPU accounting, timed spawns)

TARGET = r"""
import sys, threading, time
n = int(sys.argv[1])
for i in range(n):
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def settled(pid, want):
    """Every task of pid asleep (S), and want of them."""
    tasks = os.listdir("/proc/%d/task" % pid)
    if len(tasks) != want:
        return False
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                st = f.read()
        except OSError:
            return False
        if st[st.rindex(")") + 2] != "S":
            return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pykill", nargs="+")
    ap.add_argument("--runs", type=int, default=51)
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--python", default=os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python3"))
    ap.add_argument("--no-list", action="store_true", help="only /bin/true and --version")
    a = ap.parse_args()
    bins = [os.path.abspath(b) for b in a.pykill]
    tmpdir = "/tmp/startup-bench.%d" % os.getpid()
    os.mkdir(tmpdir)
    p = subprocess.Popen([a.python, "-c", TARGET, str(a.threads)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, start_new_session=True)
    try:
        if p.stdout.readline().strip() != b"ready":
            sys.exit("the target did not start")
        deadline = time.monotonic() + 30
        while not settled(p.pid, a.threads + 1):  # bounded wait on a condition
            if time.monotonic() > deadline:
                sys.exit("the target's threads did not all fall asleep")
            time.sleep(0.05)
        rows = [("/bin/true", ["/bin/true"], None)]
        for b in bins:
            rows.append(("%s --version" % b, [b, "--version"], None))
            if not a.no_list:
                rows.append(("%s list --json" % b, [b, "list", "--json", str(p.pid)], a.threads + 1))
        times = {r[0]: [] for r in rows}
        c0 = list_bench.cpu_snapshot(p.pid)
        for _ in range(a.runs):
            for name, argv, want in rows:
                ms, out, _ = list_bench.timed_run(argv, tmpdir)
                if want is not None and len(json.loads(out)["threads"]) != want:
                    sys.exit("%s: listed the wrong number of threads" % name)
                times[name].append(ms)
        others = list_bench.foreign_load(c0, list_bench.cpu_snapshot(p.pid))
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        print("%d rounds, target %s with %d sleeping threads, others' CPU %.0f%%, load %s" % (
            a.runs, a.python, a.threads, others, " ".join(load)))
        print("| command | ms median / p90 | ratio to the first binary's |")
        print("|---|---|---:|")
        first = {}
        for name, _, _ in rows:
            med = list_bench.median(times[name])
            p90 = list_bench.percentile(times[name], 90)
            kind = name.split(" ", 1)[1] if " " in name else name
            first.setdefault(kind, med)
            print("| `%s` | %.2f / %.2f | %.2f |" % (name, med, p90, med / first[kind]))
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        for f in os.listdir(tmpdir):
            os.unlink(os.path.join(tmpdir, f))
        os.rmdir(tmpdir)


if __name__ == "__main__":
    main()
