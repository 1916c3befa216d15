#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What a change costs: two pykill binaries, the same commands, interleaved.

  ab_bench.py OLD_PYKILL NEW_PYKILL [--python PY] [--threads N] [--runs R]

Starts one target under PY (default pyenv 3.12.1) with N threads waiting on a
queue (Condition waits: futex on a Lock), N/8 threads waiting for RLocks held
by N/8 others, and N/8 threads sleeping in read() on a pipe; then runs, for
each of `ps PID` and `list --json PID`, OLD and NEW alternately R times
(default 21) and prints the medians, p90s and the ratio NEW/OLD measured in
the same run. Used for the cost of ps's STUCK column and of list's RLock
holders (bench/README.md): OLD is a build of the commit before the change
(git worktree add /tmp/old COMMIT^ && cmake -S /tmp/old -B /tmp/old/b &&
cmake --build /tmp/old/b --target pykill).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

TARGET = r"""
import os, queue, sys, threading
n = int(sys.argv[1])
q = queue.Queue()
r, w = os.pipe()
for i in range(n):
    threading.Thread(target=q.get, daemon=True).start()
held = []
for i in range(max(1, n // 8)):
    rl, got = threading.RLock(), threading.Event()
    def hold(rl=rl, got=got):
        rl.acquire(); got.set(); os.read(r, 1)
    threading.Thread(target=hold, daemon=True).start()
    got.wait()
    threading.Thread(target=rl.acquire, daemon=True).start()
for i in range(max(1, n // 8)):
    threading.Thread(target=os.read, args=(r, 1), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--python", default=os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python3"))
    ap.add_argument("--threads", type=int, default=256)
    ap.add_argument("--runs", type=int, default=21)
    a = ap.parse_args()
    p = subprocess.Popen([a.python, "-c", TARGET, str(a.threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if p.stdout.readline().strip() != b"ready":
            sys.exit("the target did not start")
        time.sleep(1)  # every thread settled in its wait: what is measured is the steady state
        pid = str(p.pid)
        with open("/proc/loadavg") as f:
            print("target: %s, %d queue waiters + RLock pairs + readers; load %s" % (
                a.python, a.threads, f.read().split()[0]))
        for cmd in (["ps", pid], ["list", "--json", pid]):
            t = {a.old: [], a.new: []}
            for _ in range(a.runs):
                for b in (a.old, a.new):
                    t0 = time.perf_counter()
                    subprocess.run([b] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                    t[b].append((time.perf_counter() - t0) * 1e3)
            med = {b: statistics.median(v) for b, v in t.items()}
            p90 = {b: sorted(v)[int(0.9 * (len(v) - 1))] for b, v in t.items()}
            print("%-18s old %7.1f ms (p90 %7.1f)  new %7.1f ms (p90 %7.1f)  ratio %.2f" % (
                " ".join(cmd[:-1]), med[a.old], p90[a.old], med[a.new], p90[a.new], med[a.new] / med[a.old]))
    finally:
        p.kill()
        p.wait()


if __name__ == "__main__":
    main()
