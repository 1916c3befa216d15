#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark of `pykill list`: wall time, reported freeze, and the latency the
target itself sees, for several thread counts, thread mixes and freeze modes,
beside austin's where mode (-w) when it is available.

  list-bench.sh [--pykill PATH] [--python PATH] [--runs N] [--warmup N]
                [--sizes 8,64,1000] [--mixes sleep,busy,stacks]
                [--modes auto,all] [--stack-threads 64] [--depth 50]
                [--austin PATH | --install-austin | --no-austin]
                [--py-heartbeat] [--quiet PCT] [--json FILE] [--markdown FILE]

For every (mix, thread count) one target process (bench/target.py under
--python) is started; the harness waits for its "ready" line on a pipe, checks
in /proc that the sleeping workers are blocked, then for each freeze mode runs
--warmup unmeasured and --runs measured `pykill -v list --json
--freeze=MODE PID` (with --stacks in the stacks mix). Around every run it opens
and closes a window in the target (pipe commands "begin"/"end"), and the
target answers with the largest extra gap of its heartbeat(s) in that
window (see target.py). Every measured window is followed by a baseline window
of the same length in which only `pykill --version` runs; target-seen extra
latency = statistic(measured gaps) - statistic(baseline gaps).

Only the processes the harness started are ever signalled, by PID: targets
exit on their own when their stdin pipe closes (also if the harness is killed),
pykill gets SIGTERM (it blocks it while any thread of the target is stopped).
Exit status: 0 done, 1 a run failed, 2 usage, 130 interrupted.
"""
import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import pktest  # noqa: E402
REPO = os.path.dirname(HERE)
DEFAULT_PYTHON = os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python3")

# Brief targets: (mix, threads) -> (wall ms, freeze ms); None = no target.
TARGETS = {
    ("sleep", 64): (10.0, 2.0), ("busy", 64): (10.0, 2.0),
    ("sleep", 1000): (100.0, 10.0), ("busy", 1000): (100.0, 10.0),
    ("stacks", 64): (None, 5.0),
}

children = []  # Popen objects (targets) this harness started and has not reaped
spawned = set()  # PIDs of posix_spawn'ed runs (pykill, austin) not reaped yet


class BenchError(Exception):
    pass


class Timeout(BenchError):
    pass


def log(msg):
    sys.stderr.write("list-bench: %s\n" % msg)
    sys.stderr.flush()


def on_signal(signum, frame):
    raise KeyboardInterrupt()


def on_alarm(signum, frame):
    raise Timeout("a run took longer than 120 s")


def spawn(argv, **kw):
    # Own session: a Ctrl-C on the terminal reaches only the harness, which
    # then ends its children itself, in a known order.
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    children.append(p)
    return p


def reap(p):
    if p in children:
        children.remove(p)


def cleanup():
    for pid in list(spawned):
        # pykill blocks SIGTERM while it keeps threads of the target stopped
        # and acts on it once they run again.
        # Only a child of ours that is not reaped yet: if it was reaped
        # (the signal came between waitpid and the bookkeeping) the PID may
        # belong to someone else now, and waitpid says ECHILD.
        try:
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        spawned.discard(pid)
    for p in list(children):
        if p.poll() is None:
            # A target leaves on EOF of its command pipe.
            try:
                p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log("target %d did not exit on EOF, sending SIGKILL" % p.pid)
                p.kill()
                p.wait()
        reap(p)


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(1, int(math.ceil(q / 100.0 * len(s))))
    return s[k - 1]


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def stats(values):
    if not values:
        return None
    return {"median": median(values), "p90": percentile(values, 90),
            "min": min(values), "max": max(values), "n": len(values)}


def bench_error(msg):
    raise BenchError(msg)


class BenchTarget(pktest.Target):
    """A bench target: commands on its stdin, one answer line each on its
    stdout; in a session of its own (spawn), ended by cleanup()."""

    def __init__(self, python, script, args, ready_timeout, pass_fds=()):
        pktest.Target.__init__(self, python, script, args=args, stdio=True, ready=None, error=bench_error,
                               env=dict(os.environ), pass_fds=pass_fds, start_new_session=True)
        self.p = self.proc
        children.append(self.p)
        self.ready_line = self.readline(ready_timeout)

    def readline(self, timeout):
        line = pktest.Target.readline(self, timeout)
        if line is None and self.reader.eof:
            raise BenchError("target %d exited (status %s)" % (self.pid, self.p.wait()))
        if line is None:
            raise BenchError("target %d: no answer in %.0f s (wedged?)" % (self.pid, timeout))
        return line.strip()

    def command(self, cmd, timeout=10.0):
        self.send(cmd)
        return self.readline(timeout)

    def quit(self, timeout):
        """Ask it to quit; True once it exited, False if it did not within timeout."""
        if self.p.poll() is None:
            try:
                self.send("quit")
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
        return True


class Target(BenchTarget):
    def __init__(self, python, hb_lib, threads, mix, depth, py_heartbeat):
        self.threads = threads
        self.mix = mix
        args = ["--threads", threads, "--mix", mix, "--depth", depth, "--hb-lib", hb_lib]
        if py_heartbeat:
            args.append("--py-heartbeat")
        BenchTarget.__init__(self, python, os.path.join(HERE, "target.py"), args, 120.0)
        line = self.ready_line
        parts = line.split()
        if len(parts) != 3 or parts[0] != "ready":
            raise BenchError("target %d: expected 'ready', got %r" % (self.pid, line))
        self.py_threads = int(parts[1])
        self.busy_tids = set() if parts[2] == "-" else set(int(t) for t in parts[2].split(","))
        self.wait_blocked()

    def task_states(self):
        states = {}
        base = "/proc/%d/task" % self.pid
        for tid in os.listdir(base):
            try:
                with open("%s/%s/stat" % (base, tid)) as f:
                    data = f.read()
            except OSError:
                continue
            states[int(tid)] = data[data.rindex(")") + 2]
        return states

    def wait_blocked(self):
        """The pipe said every worker reached its loop; wait (bounded) until
        /proc agrees that all but the busy workers and the two heartbeats are
        asleep three polls in a row, so that `auto` sees its steady state."""
        deadline = time.monotonic() + 30.0
        good = 0
        while good < 3:
            st = self.task_states()
            running = [t for t, s in st.items() if s not in "SD" and t not in self.busy_tids]
            good = good + 1 if len(running) <= 2 else 0
            if time.monotonic() > deadline:
                raise BenchError("target %d: %d threads still running after 30 s: %s"
                                 % (self.pid, len(running), running[:10]))
            # Polling a condition, not synchronising on a delay.
            time.sleep(0.002)

    def window_begin(self):
        ans = self.command("begin")
        if ans != "ok":
            raise BenchError("target %d: begin -> %r" % (self.pid, ans))

    def window_end(self):
        ans = self.command("end").split()
        if len(ans) != 3 or ans[0] != "gap":
            raise BenchError("target %d: end -> %r" % (self.pid, ans))
        native = int(ans[1])
        py = None if ans[2] == "-" else int(ans[2])
        if native < 0 or (py is not None and py < 0):
            raise BenchError("target %d: a heartbeat stopped ticking (%s)" % (self.pid, " ".join(ans)))
        return native / 1e6, (None if py is None else py / 1e6)

    def close(self):
        if not self.quit(10):
            raise BenchError("target %d did not exit on quit" % self.pid)
        reap(self.p)


VERBOSE_FOUND = re.compile(r"found Python .* in ([0-9.]+) ms")
VERBOSE_READ = re.compile(r"read (\d+) Python thread\(s\) in \d+ interpreter\(s\) in (\d+) round\(s\); "
                          r"(\d+) thread\(s\) stopped for ([0-9.]+) ms; total ([0-9.]+) ms")


def timed_run(argv, tmpdir, expect_ok=True):
    """Run argv with stdout/stderr to files; returns (wall ms, stdout, stderr).
    posix_spawn (vfork-like in glibc) keeps the harness's own cost in the
    wall time small; it is measured as the spawn floor and reported."""
    out_path = os.path.join(tmpdir, "out")
    err_path = os.path.join(tmpdir, "err")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, out_path, flags, 0o600),
               (os.POSIX_SPAWN_OPEN, 2, err_path, flags, 0o600)]
    signal.alarm(120)
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsid=True)
        spawned.add(pid)
        _, status = os.waitpid(pid, 0)
        t1 = time.perf_counter()
        spawned.discard(pid)
    finally:
        signal.alarm(0)
    with open(out_path, "rb") as f:
        stdout = f.read().decode("utf-8", "replace")
    with open(err_path, "rb") as f:
        stderr = f.read().decode("utf-8", "replace")
    rc = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    if expect_ok and rc != 0:
        raise BenchError("%s exited %d: %s" % (" ".join(argv), rc, stderr.strip()[-500:]))
    return (t1 - t0) * 1000.0, stdout, stderr


def run_pykill(args, target, mode, tmpdir):
    argv = [args.pykill, "-v", "list", "--json", "--freeze=" + mode]
    if target.mix == "stacks":
        argv.append("--stacks")
    argv.append(str(target.pid))
    wall, out, err = timed_run(argv, tmpdir)
    doc = json.loads(out)
    n = len(doc.get("threads", []))
    if n != target.py_threads:
        raise BenchError("pykill listed %d Python threads, the target has %d" % (n, target.py_threads))
    if target.mix == "stacks":
        depth = max(len(t.get("frames", [])) for t in doc["threads"])
        if depth < args.depth:
            raise BenchError("deepest stack listed has %d frames, expected >= %d" % (depth, args.depth))
    rec = {"wall_ms": wall, "freeze_ms": doc["freeze_us"] / 1000.0,
           "threads_stopped": doc["threads_stopped"]}
    m = VERBOSE_FOUND.search(err)
    if m:
        rec["find_ms"] = float(m.group(1))
    m = VERBOSE_READ.search(err)
    if m:
        rec["rounds"] = int(m.group(2))
        rec["total_ms"] = float(m.group(5))
    return rec


HZ = os.sysconf("SC_CLK_TCK")


def cpu_snapshot(target_pid):
    """(time, busy CPU s of the machine, CPU s of this harness and its reaped
    children, CPU s of the target)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    busy = (sum(v) - v[3] - v[4]) / float(HZ)  # all but idle and iowait
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    with open("/proc/%d/stat" % target_pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    tgt = (int(fields[11]) + int(fields[12])) / float(HZ)  # utime, stime
    return time.monotonic(), busy, own, tgt


def foreign_load(a, b):
    """Percent of the machine's CPUs used between snapshots a and b by
    processes other than this harness, its children and the target: other
    people's work, which disturbs every figure."""
    dt = b[0] - a[0]
    if dt <= 0:
        return 0.0
    other = (b[1] - a[1]) - (b[2] - a[2]) - (b[3] - a[3])
    return max(0.0, 100.0 * other / (dt * (os.cpu_count() or 1)))


def wait_quiet(target, limit, max_wait=600.0):
    """Wait (bounded) until other processes use less than limit percent of
    the CPUs over a half-second sample."""
    deadline = time.monotonic() + max_wait
    while True:
        a = cpu_snapshot(target.pid)
        time.sleep(0.5)
        load = foreign_load(a, cpu_snapshot(target.pid))
        if load < limit:
            return load
        if time.monotonic() > deadline:
            log("  machine still busy (%.0f%% of the CPUs used by others), measuring anyway" % load)
            return load


def measure(args, target, tool, tmpdir):
    """tool: ("pykill", mode) or ("austin", None). Returns a result dict."""
    def one():
        if tool[0] == "pykill":
            return run_pykill(args, target, tool[1], tmpdir)
        wall, _, _ = timed_run([args.austin, "-w", str(target.pid)], tmpdir)
        return {"wall_ms": wall}

    if args.quiet is not None:
        wait_quiet(target, args.quiet)
    snap0 = cpu_snapshot(target.pid)
    for _ in range(args.warmup):
        target.window_begin()
        one()
        target.window_end()
    runs, base = [], []
    for _ in range(args.runs):
        target.window_begin()
        rec = one()
        rec["gap_native_ms"], rec["gap_py_ms"] = target.window_end()
        runs.append(rec)
        # Baseline window: as long as the run, with a process spawned in it
        # too, so that only pykill's own effect remains after subtraction.
        target.window_begin()
        t0 = time.perf_counter()
        timed_run([args.pykill, "--version"], tmpdir)
        left = rec["wall_ms"] / 1000.0 - (time.perf_counter() - t0)
        if left > 0:
            time.sleep(left)
        b = {}
        b["gap_native_ms"], b["gap_py_ms"] = target.window_end()
        base.append(b)
    res = {"tool": tool[0], "mode": tool[1], "mix": target.mix, "threads": target.threads,
           "py_threads": target.py_threads, "runs": runs, "baseline": base,
           "foreign_load_pct": foreign_load(snap0, cpu_snapshot(target.pid))}
    for key in ("wall_ms", "freeze_ms", "threads_stopped", "find_ms", "total_ms", "rounds",
                "gap_native_ms", "gap_py_ms"):
        vals = [r[key] for r in runs if r.get(key) is not None]
        if vals:
            res[key] = stats(vals)
    for key in ("gap_native_ms", "gap_py_ms"):
        if key not in res:
            continue
        res["base_" + key] = stats([b[key] for b in base])
        res["extra_" + key] = {
            "median": res[key]["median"] - res["base_" + key]["median"],
            "p90": res[key]["p90"] - res["base_" + key]["p90"]}
    return res


def build_heartbeat(tmpdir):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BenchError("no C compiler (cc) to build bench/heartbeat.c")
    lib = os.path.join(tmpdir, "heartbeat.so")
    subprocess.check_call([cc, "-O2", "-std=c11", "-shared", "-fPIC", "-pthread",
                           os.path.join(HERE, "heartbeat.c"), "-o", lib])
    return lib


def austin_has_where(path):
    try:
        out = subprocess.run([path, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--where" in out


def find_austin(args):
    if args.no_austin:
        return None
    if args.install_austin and not args.austin and not shutil.which("austin"):
        log("apt-get install -y austin")
        subprocess.call(["apt-get", "install", "-y", "-q", "austin"],
                        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    candidates = [args.austin] if args.austin else []
    if not args.austin:
        if shutil.which("austin"):
            candidates.append(shutil.which("austin"))
        cache = os.environ.get("PYKILL_BENCH_CACHE", os.path.expanduser("~/.cache/pykill-bench"))
        candidates.append(os.path.join(cache, "austin", "austin"))
    for c in candidates:
        if os.path.exists(c) and austin_has_where(c):
            return c
    if args.install_austin and not args.austin:
        # Debian 12 ships austin 1.0.1, which predates -w (austin 3.0); sid's
        # is recent. fetch-austin.sh unpacks it privately, installs nothing.
        log("the installed austin has no -w (where) mode; fetching Debian sid's with bench/fetch-austin.sh")
        if subprocess.call(["sh", os.path.join(HERE, "fetch-austin.sh")]) == 0:
            c = candidates[-1]
            if os.path.exists(c) and austin_has_where(c):
                return c
    found = [c for c in candidates if os.path.exists(c)]
    if found:
        log("austin at %s has no -w (where) mode; austin column skipped" % found[0])
    else:
        log("austin not installed; austin column skipped (--install-austin fetches it)")
    return None


def python_version(python):
    return subprocess.check_output([python, "-c", "import sys; print(sys.version.split()[0])"],
                                   universal_newlines=True).strip()


def fmt(x, digits=2):
    return "-" if x is None else ("%.*f" % (digits, x))


def verdict(res):
    tgt = TARGETS.get((res["mix"], res["threads"]))
    if res["tool"] != "pykill" or not tgt:
        return ""
    parts = []
    wall_t, freeze_t = tgt
    if wall_t is not None:
        r = res["wall_ms"]["median"] / wall_t
        parts.append("wall %.2fx %s" % (r, "ok" if r < 1 else "MISSED"))
    r = res["freeze_ms"]["median"] / freeze_t
    parts.append("freeze %.2fx %s" % (r, "ok" if r < 1 else "MISSED"))
    return ", ".join(parts)


def markdown(meta, results):
    py_hb = any("extra_gap_py_ms" in r for r in results)
    lines = []
    lines.append("Python %s (%s), pykill %s, %d runs per row (+%d warm-up), %s, kernel %s, %d CPUs%s."
                 % (meta["python_version"], meta["python"], meta["pykill_version"], meta["runs"],
                    meta["warmup"], meta["date"], meta["kernel"], meta["cpus"],
                    ", Python heartbeat on" if py_hb else ""))
    if meta.get("label"):
        lines.append(meta["label"])
    lines.append("Spawn floor (wall time of `pykill --version` from this harness): median %.2f ms."
                 % meta["spawn_floor_ms"])
    lines.append("")
    head = ["mix", "threads", "tool", "wall ms med / p90", "freeze ms (pykill) med / p90",
            "stopped med", "reads", "target-seen extra ms med / p90"]
    align = ["---", "---:", "---", "---", "---", "---:", "---:", "---"]
    if py_hb:
        head.append("Python-heartbeat extra ms med / p90")
        align.append("---")
    head += ["others' CPU", "brief target: median / target"]
    align += ["---:", "---"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(align) + "|")
    for r in results:
        fr = r.get("freeze_ms")
        row = [r["mix"], str(r["threads"]),
               "austin -w" if r["tool"] == "austin" else "pykill " + r["mode"],
               "%s / %s" % (fmt(r["wall_ms"]["median"]), fmt(r["wall_ms"]["p90"])),
               ("%s / %s" % (fmt(fr["median"]), fmt(fr["p90"]))) if fr else "-",
               fmt(r["threads_stopped"]["median"], 0) if "threads_stopped" in r else "-",
               fmt(r["rounds"]["median"], 0) if "rounds" in r else "-",
               "%s / %s" % (fmt(r["extra_gap_native_ms"]["median"]), fmt(r["extra_gap_native_ms"]["p90"]))]
        if py_hb:
            e = r.get("extra_gap_py_ms")
            row.append("%s / %s" % (fmt(e["median"]), fmt(e["p90"])) if e else "-")
        row += ["%.0f%%" % r["foreign_load_pct"], verdict(r)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(
        prog="list-bench.sh", description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pykill", metavar="PATH",
                    default=os.environ.get("PYKILL", os.path.join(REPO, "build", "cli", "pykill")),
                    help="pykill binary (default: $PYKILL, else build/cli/pykill)")
    ap.add_argument("--python", metavar="PATH", default=DEFAULT_PYTHON,
                    help="interpreter of the target (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=21, metavar="N",
                    help="measured runs per row (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, metavar="N",
                    help="unmeasured runs before them (default: %(default)s)")
    ap.add_argument("--sizes", default="8,64,1000", metavar="N,N,...",
                    help="worker thread counts of the sleep and busy mixes (default: %(default)s)")
    ap.add_argument("--mixes", default="sleep,busy,stacks", metavar="MIX,...",
                    help="sleep, busy, stacks (default: %(default)s)")
    ap.add_argument("--modes", default="auto,all", metavar="MODE,...",
                    help="pykill --freeze modes: auto, all, none (default: %(default)s)")
    ap.add_argument("--stack-threads", type=int, default=64, metavar="N",
                    help="worker threads of the stacks mix (default: %(default)s)")
    ap.add_argument("--depth", type=int, default=50, metavar="D",
                    help="Python frames per worker in the stacks mix (default: %(default)s)")
    ap.add_argument("--austin", metavar="PATH",
                    help="austin binary with -w (default: PATH, then the bench cache)")
    ap.add_argument("--install-austin", action="store_true",
                    help="apt-get install austin; if it lacks -w, fetch Debian sid's privately "
                         "(bench/fetch-austin.sh)")
    ap.add_argument("--no-austin", action="store_true", help="skip the austin rows")
    ap.add_argument("--austin-threads", type=int, default=64, metavar="N",
                    help="thread count of the rows that austin -w runs on too (default: %(default)s)")
    ap.add_argument("--py-heartbeat", action="store_true",
                    help="also run a Python heartbeat thread (1 ms time.sleep loop) in the target")
    ap.add_argument("--quiet", type=float, metavar="PCT",
                    help="before each row, wait (up to 10 min) until other processes use "
                         "less than PCT%% of the CPUs")
    ap.add_argument("--label", default="", metavar="TEXT",
                    help="a note for the table header (e.g. the commit pykill was built from)")
    ap.add_argument("--json", metavar="FILE", help="write every run and statistic here")
    ap.add_argument("--markdown", metavar="FILE", help="write the table here too")
    args = ap.parse_args()
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be >= 1, --warmup >= 0")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    mixes = [m for m in args.mixes.split(",") if m]
    modes = [m for m in args.modes.split(",") if m]
    for m in mixes:
        if m not in ("sleep", "busy", "stacks"):
            ap.error("unknown mix %r" % m)
    for m in modes:
        if m not in ("auto", "all", "none"):
            ap.error("unknown mode %r" % m)
    if not os.access(args.pykill, os.X_OK):
        ap.error("no pykill at %s (build it, then --pykill PATH or PYKILL=PATH)" % args.pykill)
    if not os.access(args.python, os.X_OK):
        ap.error("no Python at %s (--python PATH)" % args.python)
    args.pykill = os.path.abspath(args.pykill)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    tmpdir = tempfile.mkdtemp(prefix="pykill-bench.")
    results = []
    status = 0
    try:
        hb_lib = build_heartbeat(tmpdir)
        austin = args.austin = find_austin(args)
        floor = [timed_run([args.pykill, "--version"], tmpdir)[0] for _ in range(args.runs)]
        meta = {
            "date": time.strftime("%Y-%m-%d"), "kernel": platform.release(),
            "cpus": os.cpu_count(), "python": args.python,
            "python_version": python_version(args.python),
            "pykill": args.pykill,
            "pykill_version": timed_run([args.pykill, "--version"], tmpdir)[1].split()[-1],
            "austin": austin, "runs": args.runs, "warmup": args.warmup,
            "spawn_floor_ms": median(floor), "label": args.label,
            "loadavg_start": open("/proc/loadavg").read().split()[:3],
        }
        plan = []
        for mix in mixes:
            for n in ([args.stack_threads] if mix == "stacks" else sizes):
                plan.append((mix, n))
        for mix, n in plan:
            log("%s: %d threads, %s, Python %s" % (mix, n, "/".join(modes), meta["python_version"]))
            target = Target(args.python, hb_lib, n, mix, args.depth, args.py_heartbeat)
            try:
                for mode in modes:
                    r = measure(args, target, ("pykill", mode), tmpdir)
                    results.append(r)
                    log("  pykill %-4s wall %6.2f ms  freeze %6.2f ms  stopped %4d  target-seen "
                        "%+.2f ms  others' CPU %3.0f%%"
                        % (mode, r["wall_ms"]["median"], r["freeze_ms"]["median"],
                           r["threads_stopped"]["median"], r["extra_gap_native_ms"]["median"],
                           r["foreign_load_pct"]))
                if austin and n == args.austin_threads:
                    r = measure(args, target, ("austin", None), tmpdir)
                    results.append(r)
                    log("  austin -w   wall %6.2f ms                            target-seen "
                        "%+.2f ms  others' CPU %3.0f%%"
                        % (r["wall_ms"]["median"], r["extra_gap_native_ms"]["median"],
                           r["foreign_load_pct"]))
            finally:
                target.close()
        table = markdown(meta, results)
        sys.stdout.write(table)
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(table)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": meta, "results": results}, f, indent=1)
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except (BenchError, subprocess.CalledProcessError, OSError, ValueError) as e:
        log("failed: %s" % e)
        status = 1
    finally:
        cleanup()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
