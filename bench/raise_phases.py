#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where the time of one `pykill raise` goes, phase by phase, from uprobes.

  raise_phases.py [--pykill PATH] [--python PATH] [--runs N] [--via VIA] [--no-probes]

Starts bench/raise_target.py under --python (a busy thread per run, the main
thread parked in read()), puts uprobes (perf probe, group "pkraise") on a
few functions of the pykill binary, which must have its debug information
(RelWithDebInfo), and records, with `perf record -a -k CLOCK_MONOTONIC`
(started disabled and enabled through its --control pipe: a handshake, no
sleep), N runs of `pykill raise --json --via VIA PID TID`. The clock is the
one of the harness's spawn timestamp and of the target's finally line, so
the phases line up from the harness's posix_spawn to the delivery. Prints
the median and p90 of each phase in ms:

  spawn     posix_spawn in the harness to the exec of pykill
  startup   exec to main (dynamic linking, relocations, constructors)
  open      pk_py_open: find the interpreter, symbols, layout
  snapshot  pk_py_snapshot: /proc scan, freeze (auto), read
   .freeze  its first stop to the end of its release (not in freeze_us)
  progress  holder_makes_progress: watching the GIL holder for bytecode
            progress (call path only; >= 1 ms by construction)
  check     pk_rcall_check_thread on the hijack candidates (call path)
  inject    pk_rcall_run (call path) or the write path's stop-write-release
  verdict   from the injection to pk_py_raise's return: watching async_exc
  output    pk_py_raise's return to the end of main (JSON, pk_py_close)
  exit      end of main to the process's exit (atexit, unmapping)
  reap      process exit to waitpid's return in the harness
  total     posix_spawn to waitpid's return (the bench's "verdict")
  delivered posix_spawn to the busy thread's finally (the target's clock)
  freeze_us what pykill reported
  busy stop / main stop / other stop
            what the kernel saw: time the busy thread, the main thread and
            (the largest of) the other target threads spent in a ptrace stop
            within the run, from sched:sched_switch (switched out in state t
            until switched in again)

With --no-probes only the kernel's events are recorded (exec, exit, the
switches): no uprobe cost, only total, delivered and the stop figures. A run
pykill refuses is left out (and its busy thread ended by the write path).

Needs root and perf. Only probes of the group pkraise are added and deleted;
only processes this script started are signalled, by PID.
"""
import argparse
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile

import list_bench as lb
from list_bench import BenchError, stats
import raise_bench as rb

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GROUP = "pkraise"
# (event name, probe spec); %return probes need a real (not inlined) function.
PROBES = [("main", "main"), ("main_ret", "main%return"),
          ("open", "pk_py_open"), ("open_ret", "pk_py_open%return"),
          ("snap", "pk_py_snapshot"), ("snap_ret", "pk_py_snapshot%return"),
          ("fadd", "pk_freeze_add"), ("fend", "pk_freeze_end"), ("fend_ret", "pk_freeze_end%return"),
          ("progress", "holder_makes_progress"),
          ("check", "pk_rcall_check_thread"), ("check_ret", "pk_rcall_check_thread%return"),
          ("rcall", "pk_rcall_run"), ("rcall_ret", "pk_rcall_run%return"),
          ("raise_ret", "pk_py_raise%return")]


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def add_probes(binary):
    for name, spec in PROBES:
        r = run(["perf", "probe", "-q", "-x", binary, "-a", "%s:%s=%s" % (GROUP, name, spec)])
        if r.returncode != 0:
            raise BenchError("perf probe %s: %s" % (spec, r.stderr.strip()))


def del_probes():
    run(["perf", "probe", "-q", "-d", GROUP + ":*"])


class Perf(object):
    """perf record -a, started disabled; enable/disable acknowledged on a pipe."""

    def __init__(self, data, probes=True):
        self.ctl_r, self.ctl_w = os.pipe()
        self.ack_r, self.ack_w = os.pipe()
        events = ["sched:sched_process_exec", "sched:sched_process_exit", "sched:sched_switch"]
        if probes:
            events.append(GROUP + ":*")
        argv = ["perf", "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-D", "-1",
                "--control", "fd:%d,%d" % (self.ctl_r, self.ack_w), "-o", data]
        for e in events:
            argv += ["-e", e]
        self.p = lb.spawn(argv,
                          pass_fds=[self.ctl_r, self.ack_w], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, universal_newlines=True)
        os.close(self.ctl_r)
        os.close(self.ack_w)

    def control(self, cmd):
        os.write(self.ctl_w, (cmd + "\n").encode())
        r, _, _ = select.select([self.ack_r], [], [], 30)
        if not r or not os.read(self.ack_r, 64).startswith(b"ack"):
            raise BenchError("perf record did not acknowledge %r: %s" % (cmd, self.p.stderr.read()
                                                                         if self.p.poll() is not None else ""))

    def stop(self):
        # perf leaves without finishing perf.data when its control pipe
        # closes first: signal, wait, then close.
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)  # our unreaped child: writes perf.data and exits
            self.p.wait(timeout=60)
        lb.reap(self.p)
        os.close(self.ctl_w)
        os.close(self.ack_r)


def target_tids(pid):
    return [int(t) for t in os.listdir("/proc/%d/task" % pid)]


SWITCH = re.compile(r"prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=.* next_pid=(\d+)")


def stopped_ms(switches, tid, t0, t1):
    """Time tid spent in a ptrace stop between t0 and t1, from sched_switch:
    switched out with prev_state t (traced) until switched in again."""
    total, out_at = 0, None
    for t, prev, state, nxt in switches:
        if t > t1 and out_at is None:
            break
        if prev == tid and "t" in state and out_at is None:
            out_at = t
        elif nxt == tid and out_at is not None:
            a, b = max(out_at, t0), min(t, t1)
            if b > a:
                total += b - a
            out_at = None
    if out_at is not None and t1 > max(out_at, t0):
        total += t1 - max(out_at, t0)
    return total / 1e6


def phases(ev, t0, t1, fin):
    """ev: [(t ns, name)] of one pykill process, in time order."""
    first, last = {}, {}
    for t, n in ev:
        first.setdefault(n, t)
        last[n] = t
    ph = {}

    def span(a, b, key):
        if a is not None and b is not None:
            ph[key] = (b - a) / 1e6

    span(t0, first.get("exec"), "spawn")
    span(first.get("exec"), first.get("main"), "startup")
    span(first.get("open"), first.get("open_ret"), "open")
    span(first.get("snap"), first.get("snap_ret"), "snapshot")
    # The snapshot's own freeze: its first stop to the end of its release.
    fadd = [t for t, n in ev if n == "fadd" and first.get("snap", 0) <= t <= first.get("snap_ret", 0)]
    fend = [t for t, n in ev if n == "fend_ret" and first.get("snap", 0) <= t <= first.get("snap_ret", 0)]
    if fadd and fend:
        ph[".freeze"] = (fend[-1] - fadd[0]) / 1e6
    else:
        ph[".freeze"] = 0.0
    after_snap = [(t, n) for t, n in ev if t > first.get("snap_ret", 0)]
    nxt = [t for t, n in after_snap if n in ("check", "fadd")]
    if "progress" in first and nxt:
        ph["progress"] = (nxt[0] - first["progress"]) / 1e6
    checks = [t for t, n in after_snap if n == "check"]
    if checks and "rcall" in first:
        ph["check"] = (first["rcall"] - checks[0]) / 1e6
    inj_end = None
    if "rcall" in first and "rcall_ret" in last:
        ph["inject"] = (last["rcall_ret"] - first["rcall"]) / 1e6
        inj_end = last["rcall_ret"]
    else:
        wa = [t for t, n in after_snap if n == "fadd"]
        we = [t for t, n in after_snap if n == "fend_ret"]
        if wa and we:
            ph["inject"] = (we[-1] - wa[0]) / 1e6
            inj_end = we[-1]
    span(inj_end, first.get("raise_ret"), "verdict")
    span(first.get("raise_ret"), first.get("main_ret"), "output")
    span(first.get("main_ret"), first.get("exit"), "exit")
    span(first.get("exit"), t1, "reap")
    ph["total"] = (t1 - t0) / 1e6
    ph["delivered"] = (fin - t0) / 1e6
    return ph


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pykill", default=os.environ.get("PYKILL", os.path.join(REPO, "build", "cli", "pykill")))
    ap.add_argument("--python", default=rb.DEFAULT_PYTHONS[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--via", default="call", choices=("call", "write", "auto"))
    ap.add_argument("--wait", type=float, default=2.0)
    ap.add_argument("--no-probes", action="store_true",
                    help="no uprobes (they cost a few us per hit): only the kernel's view "
                         "(exec, exit, the target threads' ptrace stops) and the harness's clock")
    args = ap.parse_args()
    if not shutil.which("perf"):
        ap.error("perf is not installed")
    binary = os.path.abspath(args.pykill)
    args.pykill = binary
    tmp = tempfile.mkdtemp(prefix="pykill-raise-phases.")
    data = os.path.join(tmp, "perf.data")
    signal.signal(signal.SIGTERM, lb.on_signal)
    signal.signal(signal.SIGALRM, lb.on_alarm)
    runs = []
    target = perf = None
    target_pid = 0
    try:
        hb_lib = lb.build_heartbeat(tmp)
        target = rb.RaiseTarget(args.python, hb_lib)
        target_pid = target.pid
        del_probes()
        if not args.no_probes:
            add_probes(binary)
        perf = Perf(data, not args.no_probes)
        perf.control("enable")
        for _ in range(args.runs):
            tid, ident = target.spawn_busy()
            target.wait_parked()
            t0, t1, rc, out, err = rb.timed_spawn(rb.tool_argv(args, ("pykill", args.via), target, tid, ident),
                                                  tmp)
            if rc == 1 and "refused" in err:
                sys.stderr.write("raise_phases: run left out: %s\n" % err.strip().splitlines()[-1])
                rb.timed_spawn([binary, "raise", "--via", "write", str(target.pid), str(tid)], tmp)
                if target.wait_finally(tid, rb.DELIVERY_TIMEOUT)[0] is None:
                    raise BenchError("busy thread %d could not be ended after a refusal" % tid)
                continue
            fin, exc = target.wait_finally(tid, rb.DELIVERY_TIMEOUT)
            if rc != 0 or fin is None:
                raise BenchError("pykill raise exited %d, finally %s: %s" % (rc, fin, err.strip()[-400:]))
            m = re.search(r'"freeze_us":(\d+)', out)
            runs.append((t0, t1, fin, tid, target_tids(target.pid), int(m.group(1)) if m else 0))
        perf.control("disable")
        perf.stop()
        perf = None
        r = run(["perf", "script", "-i", data, "--ns", "-F", "pid,time,event,trace"])
        if r.returncode != 0:
            raise BenchError("perf script: %s" % r.stderr.strip()[-400:])
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        sys.stderr.write("raise_phases: %s\n" % e)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if perf is not None:
            try:
                perf.stop()
            except Exception:
                pass
        del_probes()
        if target is not None:
            target.close()
        lb.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    # "  PID  SECONDS.NS:  GROUP:NAME: ..." or sched:sched_process_exec: filename=... pid=N
    pat = re.compile(r"^\s*(\d+)\s+(\d+)\.(\d+):\s+(\S+):(\S+?):")
    per_pid = {}
    switches = []
    for line in r.stdout.splitlines():
        m = pat.match(line)
        if not m:
            continue
        pid, t = int(m.group(1)), int(m.group(2)) * 1000000000 + int(m.group(3).ljust(9, "0")[:9])
        grp, name = m.group(4), m.group(5)
        if grp == GROUP:
            name = name.replace("__return", "")
        elif name == "sched_process_exec":
            if "/pykill" not in line:
                continue
            name = "exec"
        elif name == "sched_process_exit":
            name = "exit"
        elif name == "sched_switch":
            w = SWITCH.search(line)
            if w:
                switches.append((t, int(w.group(1)), w.group(2), int(w.group(3))))
            continue
        else:
            continue
        per_pid.setdefault(pid, []).append((t, name))
    table = []
    switches.sort()
    for t0, t1, fin, busy, tids, freeze_us in runs:
        # The pykill process of this run: exec'ed between t0 and t1.
        for pid, ev in per_pid.items():
            if any(n == "exec" and t0 <= t <= t1 for t, n in ev) and (args.no_probes or
                                                                      any(n == "main" for _, n in ev)):
                ev.sort()
                ph = phases(ev, t0, t1, fin)
                # What the kernel saw: each target thread's time in a ptrace stop.
                ph["busy stop"] = stopped_ms(switches, busy, t0, t1)
                ph["main stop"] = stopped_ms(switches, target_pid, t0, t1)
                ph["other stop"] = max([stopped_ms(switches, t, t0, t1) for t in tids
                                        if t not in (busy, target_pid)] or [0.0])
                ph["freeze_us"] = freeze_us / 1000.0
                table.append(ph)
                break
    if not table:
        sys.stderr.write("raise_phases: no complete run recorded\n")
        return 1
    keys = ["spawn", "startup", "open", "snapshot", ".freeze", "progress", "check", "inject", "verdict",
            "output", "exit", "reap", "total", "delivered", "freeze_us", "busy stop", "main stop", "other stop"]
    print("pykill raise --via %s, Python %s: %d runs, ms" % (args.via, rb.python_version(args.python), len(table)))
    print("  %-10s %8s %8s %8s %8s" % ("phase", "median", "p90", "min", "max"))
    for k in keys:
        vals = [p[k] for p in table if k in p]
        if vals:
            s = stats(vals)
            print("  %-10s %8.3f %8.3f %8.3f %8.3f" % (k, s["median"], s["p90"], s["min"], s["max"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
