#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark of `pykill raise`: time to the verdict, the freeze pykill
reports and the freeze the target saw, for --via call and --via write, beside
gdb making the same C-API calls (`gdb -p PID -batch -ex 'call ...'`).

  raise-bench.sh [--pykill PATH] [--python PATH ...] [--runs N] [--warmup N]
                 [--vias call,write] [--wait S]
                 [--gdb PATH | --install-gdb | --no-gdb] [--gdb-python PATH]
                 [--quiet PCT] [--json FILE] [--markdown FILE] [--label TEXT]

For every interpreter one target process (bench/raise_target.py) is started:
a native heartbeat thread (bench/heartbeat.c, 1 ms clock_nanosleep), the main
thread parked in read() on its command pipe (where gdb calls), a thread parked
in time.sleep (the one the call path may borrow), and per run a fresh busy thread
(`while True: f()` in try/finally) whose finally reports on an event pipe,
with a CLOCK_MONOTONIC timestamp, the moment the exception reached it.

One run: "spawn" a busy thread (answer: its TID and ident); wait until /proc
shows the main thread in read() on fd 0; a baseline heartbeat window as long
as the previous run, in which only `pykill --version` is spawned; wait for
read() again; a measured window around the tool:
  pykill:  `pykill -v raise --json --via VIA --wait S PID TID` (must exit 0,
           verdict "delivered", via VIA);
  gdb:     `gdb -p PID -batch -nx -ex 'call (int)PyGILState_Ensure()'
           -ex 'call (int)PyThreadState_SetAsyncExc((unsigned long)IDENT,
           (PyObject*)PyExc_SystemExit)' -ex 'call (void)PyGILState_Release($1)'`
           (must exit 0 and print 1 as SetAsyncExc's result);
then the finally line must arrive on the event pipe within 10 s. A run that
pykill refuses (exit 7, "refused": it judged the call path unsafe) is counted
in the "refused" column, left out of the figures, and its busy thread is
ended by the write path so that the next run starts from the same state.
Figures per row (median and p90 over --runs):
  verdict   command start to the tool's exit (pykill: its verdict);
  delivered command start to the finally's timestamp in the target;
  freeze    pykill's reported freeze_us;
  target-seen extra latency = statistic(measured heartbeat gaps) -
            statistic(baseline gaps).

Only processes the harness started are ever signalled, by PID. The target
exits on end of file of its command pipe (also if the harness is killed); a
target that does not (a tool left it wedged) gets SIGKILL after 5 s.
Exit status: 0 done, 1 a run failed, 2 usage, 130 interrupted.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import list_bench as lb
from list_bench import BenchError, stats, fmt, cpu_snapshot, foreign_load

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_PYTHONS = [os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python3"), "/usr/bin/python3.11"]
DEFAULT_GDB_PYTHON = "/usr/bin/python3.11"
CACHE = os.environ.get("PYKILL_BENCH_CACHE", os.path.expanduser("~/.cache/pykill-bench"))

# Brief targets (ms): command start to verdict, freeze.
TARGET_VERDICT_MS = 50.0
TARGET_FREEZE_MS = 2.0

DELIVERY_TIMEOUT = 10.0


def log(msg):
    sys.stderr.write("raise-bench: %s\n" % msg)
    sys.stderr.flush()


class RaiseTarget(lb.BenchTarget):
    def __init__(self, python, hb_lib):
        self.python = python
        ev_r, ev_w = os.pipe()
        try:
            lb.BenchTarget.__init__(self, python, os.path.join(HERE, "raise_target.py"),
                                    ["--hb-lib", hb_lib, "--event-fd", ev_w], 60.0, pass_fds=[ev_w])
        finally:
            os.close(ev_w)
        self.event_pipe = lb.pktest.LineReader(ev_r)
        line = self.ready_line
        if line.split()[:1] != ["ready"]:
            raise BenchError("target %d: expected 'ready', got %r" % (self.pid, line))

    def spawn_busy(self):
        ans = self.command("spawn").split()
        if len(ans) != 3 or ans[0] != "busy":
            raise BenchError("target %d: spawn -> %r" % (self.pid, ans))
        return int(ans[1]), int(ans[2])

    def main_syscall(self):
        try:
            with open("/proc/%d/task/%d/syscall" % (self.pid, self.pid)) as f:
                return f.read().split()
        except OSError:
            return []

    def wait_parked(self):
        """The main thread answered and goes back to read(); it may first
        wait for the GIL (up to the 5 ms switch interval, the busy thread
        holds it). Poll /proc (bounded) until it is in read(0, ...): the
        state every run starts from, and the call path's hijack point."""
        deadline = time.monotonic() + 10.0
        while True:
            sc = self.main_syscall()
            if len(sc) >= 2 and sc[0] == "0" and int(sc[1], 16) == 0:
                return
            if time.monotonic() > deadline:
                raise BenchError("target %d: main thread not back in read() after 10 s (%s)"
                                 % (self.pid, " ".join(sc[:3])))
            # Polling a condition, not synchronising on a delay.
            time.sleep(0.0005)

    def window_begin(self):
        ans = self.command("begin")
        if ans != "ok":
            raise BenchError("target %d: begin -> %r" % (self.pid, ans))

    def window_end(self):
        ans = self.command("end").split()
        if len(ans) != 2 or ans[0] != "gap":
            raise BenchError("target %d: end -> %r" % (self.pid, ans))
        if int(ans[1]) < 0:
            raise BenchError("target %d: the heartbeat stopped ticking" % self.pid)
        return int(ans[1]) / 1e6

    def wait_finally(self, tid, timeout):
        """The busy thread's "finally TID NS EXC" line: (ns, exception)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.event_pipe.readline(deadline - time.monotonic())
            if line is None:
                return None, None
            parts = line.split()
            if len(parts) == 4 and parts[0] == "finally" and int(parts[1]) == tid:
                return int(parts[2]), parts[3]
            log("target %d: unexpected event %r" % (self.pid, line))

    def close(self):
        os.close(self.event_pipe.fd)
        if not self.quit(5):
            # Still our unreaped child (quit() saw it run): the PID is ours.
            log("target %d did not exit on quit (wedged), sending SIGKILL" % self.pid)
            self.p.kill()
            self.p.wait()
        lb.reap(self.p)


def timed_spawn(argv, tmpdir, env=None):
    """posix_spawn argv with stdout/stderr to files; returns (t0 monotonic ns,
    t1 monotonic ns, exit status, stdout, stderr). The clock is the one of
    the target's finally timestamps."""
    out_path = os.path.join(tmpdir, "out")
    err_path = os.path.join(tmpdir, "err")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, out_path, flags, 0o600),
               (os.POSIX_SPAWN_OPEN, 2, err_path, flags, 0o600)]
    signal.alarm(120)
    try:
        t0 = time.monotonic_ns()
        pid = os.posix_spawn(argv[0], argv, env or os.environ, file_actions=actions, setsid=True)
        lb.spawned.add(pid)
        _, status = os.waitpid(pid, 0)
        t1 = time.monotonic_ns()
        lb.spawned.discard(pid)
    finally:
        signal.alarm(0)
    with open(out_path, "rb") as f:
        stdout = f.read().decode("utf-8", "replace")
    with open(err_path, "rb") as f:
        stderr = f.read().decode("utf-8", "replace")
    return t0, t1, os.waitstatus_to_exitcode(status), stdout, stderr


VERBOSE_CALL = re.compile(r"call path: thread \d+ parked in \S+ ran the call: stopped ([0-9.]+) ms, "
                          r"(\d+) stop\(s\), ([0-9.]+) ms wall")


def tool_argv(args, tool, target, tid, ident):
    if tool[0] == "pykill":
        return [args.pykill, "-v", "raise", "--json", "--via", tool[1], "--wait", str(args.wait),
                str(target.pid), str(tid)]
    return [args.gdb, "-p", str(target.pid), "-batch", "-nx",
            "-iex", "set debuginfod enabled off",
            "-ex", "call (int)PyGILState_Ensure()",
            "-ex", "call (int)PyThreadState_SetAsyncExc((unsigned long)%d, (PyObject*)PyExc_SystemExit)"
            % ident,
            "-ex", "call (void)PyGILState_Release($1)"]


def check_output(tool, rc, out, err, rec):
    if tool[0] == "pykill":
        if rc != 0:
            raise BenchError("pykill raise exited %d: %s" % (rc, err.strip()[-500:]))
        doc = json.loads(out)
        if doc.get("verdict") != "delivered" or doc.get("via") != tool[1]:
            raise BenchError("pykill raise: verdict %r via %r (wanted delivered via %s): %s"
                             % (doc.get("verdict"), doc.get("via"), tool[1], doc.get("via_reason")))
        rec["freeze_ms"] = doc["freeze_us"] / 1000.0
        rec["waited_ms"] = doc["waited_ms"]
        m = VERBOSE_CALL.search(err)
        if m:
            rec["rcall_stops"] = int(m.group(2))
            rec["rcall_wall_ms"] = float(m.group(3))
        return
    # gdb prints the value history: $1 (Ensure's state), $2 = SetAsyncExc's count.
    text = out + err
    if rc != 0 or not re.search(r"^\$2 = 1$", text, re.M):
        raise BenchError("gdb exited %d without '$2 = 1' (threads modified by SetAsyncExc): %s"
                         % (rc, text.strip()[-800:]))


def one_run(args, target, tool, tmpdir, base_len_s):
    tid, ident = target.spawn_busy()
    target.wait_parked()
    # Baseline window: the same busy thread spinning, as long as a run, with
    # a process spawned in it too, so that only the tool's effect remains
    # after subtraction.
    target.window_begin()
    t0 = time.monotonic()
    s0, s1, _, _, _ = timed_spawn([args.pykill, "--version"], tmpdir)
    left = base_len_s - (time.monotonic() - t0)
    if left > 0:
        time.sleep(left)
    base = {"gap_ms": target.window_end(), "spawn_ms": (s1 - s0) / 1e6}

    target.wait_parked()
    target.window_begin()
    target.wait_parked()
    t0, t1, rc, out, err = timed_spawn(tool_argv(args, tool, target, tid, ident), tmpdir, tool_env(tool))
    if tool[0] == "pykill" and rc == 7 and "refused" in err:
        # pykill judged the call path unsafe (a real outcome, counted and
        # reported): queue the exception by the write path so that the next
        # run starts from the same state, and leave this run out of the figures.
        reason = err.strip().splitlines()[-1] if err.strip() else ""
        target.window_end()
        _, _, rc2, _, err2 = timed_spawn([args.pykill, "raise", "--via", "write", str(target.pid), str(tid)],
                                         tmpdir)
        if rc2 != 0 or target.wait_finally(tid, DELIVERY_TIMEOUT)[0] is None:
            raise BenchError("busy thread %d: could not be ended after a refusal: %s" % (tid, err2.strip()))
        return {"refused": reason}, base
    fin_ns, exc = target.wait_finally(tid, DELIVERY_TIMEOUT)
    if fin_ns is None:
        raise BenchError("%s: the busy thread %d did not report its finally within %.0f s "
                         "(exit %d): %s" % (tool[0], tid, DELIVERY_TIMEOUT, rc, (out + err).strip()[-800:]))
    if exc != "SystemExit":
        raise BenchError("busy thread %d left with %s, not SystemExit" % (tid, exc))
    rec = {"wall_ms": (t1 - t0) / 1e6, "delivered_ms": (fin_ns - t0) / 1e6}
    check_output(tool, rc, out, err, rec)
    rec["gap_ms"] = target.window_end()
    return rec, base


def tool_env(tool):
    if tool[0] == "gdb":
        # gdb's own terminal handling must not matter: no TTY, fixed width.
        return dict(os.environ, TERM="dumb")
    return None


def wait_quiet(target, limit, max_wait=600.0):
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
    """--warmup + --runs runs of tool. With --quiet, every run waits for a
    quiet machine first, and a run during which other processes used more
    than the limit (measured from that wait to the end of the run) is
    discarded and measured again, up to --runs times per row."""
    if args.quiet is not None:
        wait_quiet(target, args.quiet)
    snap0 = cpu_snapshot(target.pid)
    base_len = 0.0
    for _ in range(args.warmup):
        rec, _ = one_run(args, target, tool, tmpdir, base_len)
        base_len = rec.get("wall_ms", base_len * 1000.0) / 1000.0
    runs, base, redone, refused = [], [], 0, []
    while len(runs) < args.runs:
        if args.quiet is not None:
            a = cpu_snapshot(target.pid)
            time.sleep(0.5)
            if foreign_load(a, cpu_snapshot(target.pid)) >= args.quiet:
                wait_quiet(target, args.quiet)
                a = cpu_snapshot(target.pid)
                time.sleep(0.5)
        rec, b = one_run(args, target, tool, tmpdir, base_len)
        if "refused" in rec:
            refused.append(rec["refused"])
            log("  refused: %s" % rec["refused"])
            if len(refused) > args.runs:
                raise BenchError("%s refused more often than --runs (%d) times" % (row_name(
                    {"tool": tool[0], "via": tool[1]}), args.runs))
            continue
        base_len = rec["wall_ms"] / 1000.0
        if args.quiet is not None:
            rec["foreign_load_pct"] = foreign_load(a, cpu_snapshot(target.pid))
            if rec["foreign_load_pct"] >= args.quiet and redone < args.runs:
                redone += 1
                log("  run disturbed (others used %.0f%% of the CPUs): measured again"
                    % rec["foreign_load_pct"])
                continue
        runs.append(rec)
        base.append(b)
    res = {"tool": tool[0], "via": tool[1], "runs": runs, "baseline": base, "redone": redone,
           "refused": refused,
           "foreign_load_pct": foreign_load(snap0, cpu_snapshot(target.pid))}
    if args.quiet is not None:
        # The row's span includes the waits for a quiet machine: the runs kept say more.
        res["foreign_load_pct"] = sum(r["foreign_load_pct"] for r in runs) / len(runs)
    for key in ("wall_ms", "delivered_ms", "freeze_ms", "waited_ms", "rcall_stops", "rcall_wall_ms",
                "gap_ms"):
        vals = [r[key] for r in runs if r.get(key) is not None]
        if vals:
            res[key] = stats(vals)
    res["base_gap_ms"] = stats([b["gap_ms"] for b in base])
    res["spawn_floor_ms"] = stats([b["spawn_ms"] for b in base])
    res["extra_gap_ms"] = {"median": res["gap_ms"]["median"] - res["base_gap_ms"]["median"],
                           "p90": res["gap_ms"]["p90"] - res["base_gap_ms"]["p90"]}
    return res


def gdb_version(path):
    try:
        out = subprocess.run([path, "-nx", "-batch", "-ex", "show version"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    m = re.search(r"GNU gdb .*?(\d+)\.(\d+)", out)
    if not m:
        return None, None
    return out.splitlines()[0].strip(), (int(m.group(1)), int(m.group(2)))


def cpu_has_amx():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


def find_gdb(args):
    """A gdb that can make inferior calls here, or None (rows skipped)."""
    if args.no_gdb:
        return None
    if args.install_gdb:
        missing = [p for p, f in (("gdb", "/usr/bin/gdb"), ("python3.11-dbg", "/usr/bin/python3.11d"))
                   if not os.path.exists(f)]
        if missing:
            log("apt-get install -y %s" % " ".join(missing))
            subprocess.call(["apt-get", "install", "-y", "-q"] + missing,
                            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    candidates = [args.gdb] if args.gdb else [os.path.join(CACHE, "gdb", "gdb"), shutil.which("gdb")]
    amx = cpu_has_amx()
    for c in candidates:
        if not c or not os.access(c, os.X_OK):
            continue
        banner, ver = gdb_version(c)
        if ver is None:
            continue
        # gdb 13 cannot write the registers back after an inferior call
        # on CPUs with AMX ("Couldn't write extended state status: Bad
        # address") and leaves the target holding the GIL: never use it
        # (see fetch-gdb.sh).
        if amx and ver < (14, 0):
            log("%s is %s: with AMX on this CPU its inferior calls fail and wedge the target; "
                "not used (bench/fetch-gdb.sh or --install-gdb fetches sid's)" % (c, banner))
            continue
        if amx and ver < (18, 0):
            log("%s is %s: not tried on a CPU with AMX (13.1 fails, 18.1 works); a run that "
                "wedges the target fails the benchmark" % (c, banner))
        return c, banner
    if args.install_gdb and not args.gdb:
        log("fetching Debian sid's gdb with bench/fetch-gdb.sh")
        if subprocess.call(["sh", os.path.join(HERE, "fetch-gdb.sh")]) == 0:
            c = os.path.join(CACHE, "gdb", "gdb")
            banner, ver = gdb_version(c)
            if ver is not None:
                return c, banner
    log("no usable gdb; gdb rows skipped (--install-gdb)")
    return None


def gdb_has_symbols(gdb, python):
    """gdb must see PyObject and PyExc_SystemExit in python (debug information,
    e.g. python3.11-dbg for Debian's /usr/bin/python3.11)."""
    out = subprocess.run([gdb, "-nx", "-batch", "-iex", "set debuginfod enabled off", "-ex",
                          "ptype PyObject", "-ex", "info address PyExc_SystemExit", python],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                         timeout=120).stdout
    return "ob_refcnt" in out and "is static storage" in out, out


def python_version(python):
    return subprocess.check_output([python, "-c", "import sys; print(sys.version.split()[0])"],
                                   universal_newlines=True).strip()


def row_name(r):
    return "gdb -p -batch (3 calls)" if r["tool"] == "gdb" else "pykill --via %s" % r["via"]


def mp(s, digits=2):
    return "%s / %s" % (fmt(s["median"], digits), fmt(s["p90"], digits)) if s else "-"


def markdown(meta, blocks):
    lines = []
    lines.append("pykill %s, %d runs per row (+%d warm-up), %s, kernel %s, %d CPUs%s."
                 % (meta["pykill_version"], meta["runs"], meta["warmup"], meta["date"], meta["kernel"],
                    meta["cpus"], ", --quiet %g" % meta["quiet"] if meta.get("quiet") is not None else ""))
    if meta.get("gdb"):
        lines.append("gdb: %s (%s)." % (meta["gdb_banner"], meta["gdb"]))
    if meta.get("label"):
        lines.append(meta["label"])
    for blk in blocks:
        lines.append("")
        lines.append("Python %s (%s):" % (blk["python_version"], blk["python"]))
        lines.append("")
        lines.append("| tool | verdict ms med / p90 | delivered ms med / p90 | freeze ms (reported) med / p90 "
                     "| target-seen extra ms med / p90 | call-path stops | refused | spawn floor ms | others' CPU (redone) "
                     "| brief: verdict < %.0f ms, freeze < %.0f ms |" % (TARGET_VERDICT_MS, TARGET_FREEZE_MS))
        lines.append("|---|---|---|---|---|---:|---:|---:|---:|---|")
        for r in blk["results"]:
            verdict = ""
            if r["tool"] == "pykill":
                w = r["wall_ms"]["median"]
                fz = r["freeze_ms"]["median"]
                verdict = "verdict %.2fx %s, freeze %.2fx %s" % (
                    w / TARGET_VERDICT_MS, "ok" if w < TARGET_VERDICT_MS else "MISSED",
                    fz / TARGET_FREEZE_MS, "ok" if fz < TARGET_FREEZE_MS else "MISSED")
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %.0f%% (%d) | %s |" % (
                row_name(r), mp(r["wall_ms"]), mp(r["delivered_ms"]), mp(r.get("freeze_ms")),
                mp(r["extra_gap_ms"]), fmt(r["rcall_stops"]["median"], 0) if "rcall_stops" in r else "-",
                len(r.get("refused", [])) if r["tool"] == "pykill" else "-",
                fmt(r["spawn_floor_ms"]["median"]), r["foreign_load_pct"], r["redone"], verdict))
        g = [r for r in blk["results"] if r["tool"] == "gdb"]
        if g:
            g = g[0]
            lines.append("")
            lines.append("Ratio pykill / gdb (medians): wall = pykill verdict / gdb delivered; "
                         "freeze = target-seen extra latency (reported freeze for pykill in brackets).")
            lines.append("")
            lines.append("| tool | wall ratio | delivered ratio | freeze ratio (target-seen) | [reported / gdb seen] |")
            lines.append("|---|---:|---:|---:|---:|")
            gd = g["delivered_ms"]["median"]
            gs = g["extra_gap_ms"]["median"]
            for r in blk["results"]:
                if r["tool"] != "pykill":
                    continue
                lines.append("| %s | %.4f | %.4f | %.4f | [%.4f] |" % (
                    row_name(r), r["wall_ms"]["median"] / gd, r["delivered_ms"]["median"] / gd,
                    r["extra_gap_ms"]["median"] / gs if gs > 0 else float("nan"),
                    r["freeze_ms"]["median"] / gs if gs > 0 else float("nan")))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(
        prog="raise-bench.sh", description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pykill", metavar="PATH",
                    default=os.environ.get("PYKILL", os.path.join(REPO, "build", "cli", "pykill")),
                    help="pykill binary (default: $PYKILL, else build/cli/pykill)")
    ap.add_argument("--python", metavar="PATH", action="append",
                    help="interpreter of a target; repeat for several (default: %s)"
                         % " and ".join(DEFAULT_PYTHONS))
    ap.add_argument("--runs", type=int, default=21, metavar="N",
                    help="measured runs per row (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, metavar="N",
                    help="unmeasured runs before them (default: %(default)s)")
    ap.add_argument("--vias", default="call,write", metavar="VIA,...",
                    help="pykill --via values: call, write, auto (default: %(default)s)")
    ap.add_argument("--wait", type=float, default=2.0, metavar="S",
                    help="pykill raise --wait (default: %(default)s)")
    ap.add_argument("--gdb", metavar="PATH",
                    help="gdb binary (default: the bench cache's sid gdb, then PATH; "
                         "gdb < 14 is refused on CPUs with AMX)")
    ap.add_argument("--install-gdb", action="store_true",
                    help="apt-get install gdb python3.11-dbg if missing; if the gdb cannot make calls "
                         "on this CPU, fetch sid's privately (bench/fetch-gdb.sh)")
    ap.add_argument("--no-gdb", action="store_true", help="skip the gdb rows")
    ap.add_argument("--gdb-python", metavar="PATH", default=DEFAULT_GDB_PYTHON,
                    help="the interpreter the gdb rows run on; it needs debug information "
                         "(default: %(default)s, with python3.11-dbg)")
    ap.add_argument("--quiet", type=float, metavar="PCT",
                    help="before each row, wait (up to 10 min) until other processes use "
                         "less than PCT%% of the CPUs")
    ap.add_argument("--label", default="", metavar="TEXT", help="a note for the table header")
    ap.add_argument("--json", metavar="FILE", help="write every run and statistic here")
    ap.add_argument("--markdown", metavar="FILE", help="write the tables here too")
    ap.add_argument("--from-json", metavar="FILE",
                    help="measure nothing: print the tables of a run saved with --json")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            doc = json.load(f)
        for blk in doc["blocks"]:
            for r in blk["results"]:
                if doc["meta"].get("quiet") is not None and all("foreign_load_pct" in x for x in r["runs"]):
                    r["foreign_load_pct"] = sum(x["foreign_load_pct"] for x in r["runs"]) / len(r["runs"])
        sys.stdout.write(markdown(doc["meta"], doc["blocks"]))
        return 0
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be >= 1, --warmup >= 0")
    vias = [v for v in args.vias.split(",") if v]
    for v in vias:
        if v not in ("call", "write", "auto"):
            ap.error("unknown via %r" % v)
    pythons = args.python or DEFAULT_PYTHONS
    if not os.access(args.pykill, os.X_OK):
        ap.error("no pykill at %s (build it, then --pykill PATH or PYKILL=PATH)" % args.pykill)
    for p in pythons:
        if not os.access(p, os.X_OK):
            ap.error("no Python at %s (--python PATH)" % p)
    args.pykill = os.path.abspath(args.pykill)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lb.on_signal)
    signal.signal(signal.SIGALRM, lb.on_alarm)
    tmpdir = tempfile.mkdtemp(prefix="pykill-raise-bench.")
    blocks = []
    status = 0
    try:
        hb_lib = lb.build_heartbeat(tmpdir)
        gdb = find_gdb(args)
        args.gdb, gdb_banner = gdb if gdb else (None, None)
        gdb_python = os.path.realpath(args.gdb_python)
        if args.gdb and any(os.path.realpath(p) == gdb_python for p in pythons):
            ok, out = gdb_has_symbols(args.gdb, args.gdb_python)
            if not ok:
                log("gdb sees no PyObject / PyExc_SystemExit in %s (python3.11-dbg not installed? "
                    "--install-gdb): gdb rows skipped\n%s" % (args.gdb_python, out.strip()[-400:]))
                args.gdb = None
        meta = {
            "date": time.strftime("%Y-%m-%d"), "kernel": platform.release(), "cpus": os.cpu_count(),
            "pykill": args.pykill,
            "pykill_version": timed_spawn([args.pykill, "--version"], tmpdir)[3].split()[-1],
            "gdb": args.gdb, "gdb_banner": gdb_banner, "runs": args.runs, "warmup": args.warmup,
            "wait_s": args.wait, "quiet": args.quiet, "label": args.label,
            "loadavg_start": open("/proc/loadavg").read().split()[:3],
        }
        for python in pythons:
            ver = python_version(python)
            tools = [("pykill", v) for v in vias]
            if args.gdb and os.path.realpath(python) == gdb_python:
                tools.append(("gdb", None))
            log("Python %s (%s): %s" % (ver, python, ", ".join(row_name({"tool": t, "via": v})
                                                                for t, v in tools)))
            blk = {"python": python, "python_version": ver, "results": []}
            blocks.append(blk)
            target = RaiseTarget(python, hb_lib)
            try:
                for tool in tools:
                    r = measure(args, target, tool, tmpdir)
                    blk["results"].append(r)
                    log("  %-24s verdict %8.2f ms  delivered %8.2f ms  freeze %s ms  target-seen %+.2f ms  "
                        "others' CPU %3.0f%%"
                        % (row_name(r), r["wall_ms"]["median"], r["delivered_ms"]["median"],
                           fmt(r["freeze_ms"]["median"]) if "freeze_ms" in r else "-",
                           r["extra_gap_ms"]["median"], r["foreign_load_pct"]))
            finally:
                target.close()
        meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        table = markdown(meta, blocks)
        sys.stdout.write(table)
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(table)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": meta, "blocks": blocks}, f, indent=1)
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except (BenchError, subprocess.CalledProcessError, OSError, ValueError) as e:
        log("failed: %s" % e)
        status = 1
    finally:
        lb.cleanup()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
