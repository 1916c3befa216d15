#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of pykill's failures: exit status and message.

  run_errors.py CASE PYKILL [PYTHON...] [--tracer=TRACER]

CASE is one of the functions named case_* below. PYTHON is the interpreter
of the Python targets (the first one that exists, and for the cases run as
an unprivileged user the first one that user may execute). Every failure
must be one line "pykill: <what> <object>: <reason>" on stderr, plus one
"pykill: hint: ..." line for permission errors, nothing on stdout, and the
exit status of cli/pk_exit.h. Exits 0 on success, 1 on failure, 77 (ctest's
skip code) naming what is missing.

Targets are started by this script, synchronised by a ready pipe (or by the
kernel's view of them in /proc, polled), and killed on every path.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
import pktest  # noqa: E402
from pktest import fail, run, show, skip, stat_fields, started, wait_progress  # noqa: E402

NOBODY = 65534
TRY_HELP = "Try 'pykill --help' for more information."
EXIT_OK, EXIT_USAGE, EXIT_NO_PROCESS, EXIT_PERMISSION, EXIT_NOT_PYTHON = 0, 2, 4, 5, 6
PF_KTHREAD = 0x00200000


def check_failure(argv, res, status, contains=(), hint=None):
    """One message line naming what failed, a hint line only for permission
    errors (then required), nothing on stdout."""
    what = show(argv, res)
    if res.returncode != status:
        fail("expected exit %d: %s" % (status, what))
    if res.out:
        fail("a failure printed on stdout: %s" % what)
    lines = res.err.splitlines()
    if not res.err.endswith("\n"):
        fail("stderr does not end with a newline: %s" % what)
    msgs = [l for l in lines if not l.startswith("pykill: hint: ")]
    hints = [l for l in lines if l.startswith("pykill: hint: ")]
    if len(msgs) != 1 or not msgs[0].startswith("pykill: ") or len(msgs[0]) <= len("pykill: "):
        fail("expected exactly one line 'pykill: ...' (besides hints): %s" % what)
    if lines[0] != msgs[0]:
        fail("the hint comes before the message: %s" % what)
    low = msgs[0].lower()
    for word in contains:
        if word.lower() not in low:
            fail("message does not say %r: %s" % (word, what))
    if status == EXIT_PERMISSION:
        if len(hints) != 1:
            fail("a permission error needs exactly one hint line: %s" % what)
    elif hints:
        fail("unexpected hint line: %s" % what)
    if hint is not None:
        text = hints[0].lower() if hints else ""
        if not any(h.lower() in text for h in hint):
            fail("hint does not mention any of %r: %s" % (hint, what))
    return msgs[0], hints[0] if hints else None


# --- processes ------------------------------------------------------------

def pick_python(pythons, runnable_by=None):
    for p in pythons:
        if not os.path.exists(p):
            continue
        if runnable_by is None:
            return p
        probe = run(as_user(runnable_by) + [p, "-c", "import threading; threading.get_native_id"])
        if probe.returncode == 0:
            return p
    if runnable_by is None:
        skip("no Python interpreter for the target: none of %s exists" % ", ".join(pythons))
    skip("no Python interpreter that uid %d may run: %s (a 0700 home directory?)" % (runnable_by, ", ".join(pythons)))


def as_user(uid):
    return pktest.as_user(uid, "needed to run pykill as an unprivileged user")


class Target(pktest.Target):
    """target.py under python, optionally through a prefix (setpriv).
    other_user: the prefix runs it as another user, who reads a copy."""

    def __init__(self, python, prefix=(), other_user=False):
        script = os.path.join(HERE, "target.py")
        if other_user:
            script = pktest.world_copy(script)
        pktest.Target.__init__(self, python, script, prefix=prefix, cwd="/")
        if not self.ready_text.startswith("%d " % self.pid):
            fail("target did not get ready: %r %s" % (self.ready_text, self.output()))
        self.busy_tid = int(self.ready_text.split()[1])
        wait_blocked(self.pid, self.pid, "main thread of the target in read()", want_syscall=0)

    def ping(self):
        """The busy thread must be making progress and the main thread answering."""
        counts = []
        for _ in range(2):
            line = self.ask("ping")
            parts = (line or "").split()
            if len(parts) != 3 or parts[0] != "pong" or parts[2] != "alive":
                fail("target does not answer properly: %r %s" % (line, self.output()))
            counts.append(int(parts[1]))
            if len(counts) == 1:
                wait_progress(self.pid, self.busy_tid)
        if counts[1] <= counts[0]:
            fail("target's busy thread made no progress: %r" % counts)


def wait_blocked(pid, tid, what, want_syscall=None, limit=20.0):
    """Poll /proc until the thread sleeps in a system call (in want_syscall
    if given): a condition the kernel reports, not a guess at a delay."""
    pktest.wait_blocked(pid, tid, what, syscall=want_syscall, sleeping=True, limit=limit)


def check_untouched(pid):
    """No thread of pid left stopped or traced by pykill."""
    for name in os.listdir("/proc/%d/task" % pid):
        tid = int(name)
        state = stat_fields(pid, tid)[0]
        if state in ("t", "T"):
            fail("thread %d of %d left stopped (state %s)" % (tid, pid, state))


def tracer_pid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    fail("no TracerPid in /proc/%d/status" % pid)


def pykill_for_nobody(pykill):
    """The build tree may sit under a 0700 directory: a copy nobody can run."""
    d = tempfile.mkdtemp(prefix="pykill-err-")
    os.chmod(d, 0o755)
    copy = os.path.join(d, "pykill")
    try:
        shutil.copy(pykill, copy)
        os.chmod(copy, 0o755)
    except (IOError, OSError) as e:
        shutil.rmtree(d)
        fail("copy %s for uid %d: %s" % (pykill, NOBODY, e))
    return d, copy


def need_root(what):
    if os.geteuid() != 0:
        skip("%s needs root (to start processes as another user); running as uid %d" % (what, os.geteuid()))


# --- cases ----------------------------------------------------------------

def case_usage(pykill, args):
    me = str(os.getpid())
    bad = [
        ([], "missing command"),
        (["bogus"], "bogus"),
        (["--bogus"], "--bogus"),
        (["list", "--bogus", me], "--bogus"),
        (["list"], "PID"),
        (["list", "abc"], "abc"),
        (["list", "0"], "'0'"),
        (["list", "-5"], "-5"),
        (["list", "--", "-5"], "-5"),
        (["list", "99999999999"], "99999999999"),
        (["list", "4294967297"], "4294967297"),  # 1 if truncated to 32 bits
        (["list", "12x"], "12x"),
        (["list", ""], "''"),
        (["list", me, "2"], "'2'"),
        (["list", "--freeze=bogus", me], "bogus"),
        (["list", "--freeze=", me], "--freeze"),
        (["list", "--max-frames=0", me], "--max-frames"),
        (["list", "--max-frames=-1", me], "--max-frames"),
        (["list", "--max-frames=abc", me], "--max-frames"),
        (["raise"], "PID"),
        (["raise", me], "THREAD"),
        (["raise", "abc", "1"], "abc"),
        (["raise", me, "1", "SystemExit", "extra"], "extra"),
        (["raise", me, "-3"], "-3"),
        (["raise", me, "0xzz"], "0xzz"),
        (["raise", me, "12x"], "12x"),
        (["raise", "--wait=-1", me, "1"], "--wait"),
        (["raise", "--wait=abc", me, "1"], "--wait"),
        (["raise", "--via=bogus", me, "1"], "bogus"),
        (["raise", "--bogus", me, "1"], "--bogus"),
        (["ps", "--bogus"], "--bogus"),
        # Issue #10.10: one strict parser for every number (digits only; no
        # sign, blank or exponent; overflow refused), and all exit 2.
        (["list", " " + me], "' %s'" % me),
        (["list", me + " "], "'%s '" % me),
        (["list", "+" + me], "'+%s'" % me),
        (["list", "1e3"], "'1e3'"),
        (["list", "18446744073709551617"], "18446744073709551617"),  # 1 if wrapped to 64 bits
        (["list", "--max-frames= 5", me], "--max-frames"),
        (["list", "--max-frames=+5", me], "--max-frames"),
        (["list", "--max-frames=5 ", me], "--max-frames"),
        (["list", "--max-frames=0x10", me], "--max-frames"),
        (["raise", " " + me, "1"], "' %s'" % me),
        (["raise", me + " ", "1"], "'%s '" % me),
        (["raise", me, " 17652"], "' 17652'"),
        (["raise", me, "17652 "], "'17652 '"),
        (["raise", me, "+17652"], "'+17652'"),
        (["raise", me, "1e3"], "'1e3'"),
        (["raise", me, "0"], "'0'"),
        (["raise", me, "18446744073709551616"], "18446744073709551616"),
        (["raise", me, "0x10000000000000000"], "0x10000000000000000"),
        (["raise", "--wait=1e3", me, "1"], "--wait"),
        (["raise", "--wait=0x10", me, "1"], "--wait"),
        (["raise", "--wait= 1", me, "1"], "--wait"),
        (["raise", "--wait=+1", me, "1"], "--wait"),
        (["raise", "--wait=1.", me, "1"], "--wait"),
        (["raise", "--wait=0.0005", me, "1"], "--wait"),
        (["raise", "--wait=inf", me, "1"], "--wait"),
        (["withdraw", " " + me, "1"], "' %s'" % me),
        (["withdraw", me, " 1"], "' 1'"),
        (["withdraw", me, "18446744073709551616"], "18446744073709551616"),
        (["ps", " " + me], "' %s'" % me),
        (["ps", me, "99999999999"], "99999999999"),
        # Issue #10.10: what is echoed is bounded; an exception name longer than
        # any class name is refused before anything is attached, naming the limit.
        (["raise", me, "1", "A" * 5000], "at most 100"),
        (["raise", me, "1", "Runtime" * 20], "at most 100"),
        (["list", "9" * 5000], "not a process id"),
        (["list", "--freeze=" + "x" * 5000, me], "--freeze"),
        (["raise", me, "x" * 5000], "not a thread id"),
        (["bogus" * 1000], "unknown command"),
    ]
    for argv, word in bad:
        cmd = [pykill] + argv
        res = run(cmd)
        what = show(cmd, res)
        if res.returncode != EXIT_USAGE:
            fail("expected exit %d (usage): %s" % (EXIT_USAGE, what))
        if res.out:
            fail("usage error printed on stdout: %s" % what)
        lines = res.err.splitlines()
        if len(lines) != 2 or not lines[0].startswith("pykill: ") or lines[1] != TRY_HELP \
                or not res.err.endswith("\n"):
            fail("expected 'pykill: <message>' then %r on stderr: %s" % (TRY_HELP, what))
        if word.lower() not in lines[0].lower():
            fail("message does not name %r: %s" % (word, what))
        if len(lines[0]) > 300:
            fail("usage error of %d characters: what is echoed must be bounded: %s" % (len(lines[0]), what[:600]))
    # Asked for after a command as well (`pykill raise --help`): it is help,
    # not a usage error, whatever else is on the line.
    for argv in ([], ["ps"], ["list"], ["raise"], ["withdraw"], ["list", "1"], ["raise", "1", "2"]):
        for opt in ("--help", "-h"):
            res = run([pykill] + argv + [opt])
            if res.returncode != EXIT_OK or res.err or not res.out.startswith("Usage: pykill") \
                    or "list PID" not in res.out:
                fail("help: %s" % show([pykill] + argv + [opt], res))
    for opt in ("--version", "-V"):
        res = run([pykill, opt])
        out = res.out.splitlines()
        if res.returncode != EXIT_OK or res.err or len(out) != 1 or not out[0].startswith("pykill ") \
                or not out[0].split()[1][:1].isdigit():
            fail("version: %s" % show([pykill, opt], res))
    print("ok: %d usage errors, --help, --version" % len(bad))


def case_dead_pid(pykill, args):
    # A PID the kernel may hand out again at any time: check before and after
    # that no process holds it, otherwise the answer is about someone else.
    for attempt in range(5):
        p = subprocess.Popen(["true"])
        p.wait()
        pid = p.pid
        if os.path.exists("/proc/%d" % pid):
            continue
        cmd = [pykill, "list", str(pid)]
        res = run(cmd)
        if os.path.exists("/proc/%d" % pid):
            continue
        check_failure(cmd, res, EXIT_NO_PROCESS, contains=(str(pid),))
        print("ok: dead pid %d: %s" % (pid, res.err.strip()))
        return
    fail("the PID of a reaped process was reused 5 times in a row")


def case_zombie(pykill, args):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        # Blocks until the child has exited, and leaves it unreaped: a zombie.
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        state = stat_fields(pid, pid)[0]
        if state != "Z":
            fail("child %d is not a zombie (state %s)" % (pid, state))
        cmd = [pykill, "list", str(pid)]
        res = run(cmd)
        check_failure(cmd, res, EXIT_NO_PROCESS, contains=(str(pid),))
        if stat_fields(pid, pid)[0] != "Z":
            fail("zombie %d changed state under pykill" % pid)
    finally:
        os.waitpid(pid, 0)
    print("ok: zombie %d: %s" % (pid, res.err.strip()))


def case_not_python(pykill, args):
    sleep = shutil.which("sleep")
    if sleep is None:
        skip("no sleep program in PATH")
    p = subprocess.Popen([sleep, "60"])
    started.append(p)
    # Once it sleeps in its system call, exec is long finished: its maps are final.
    wait_blocked(p.pid, p.pid, "sleep 60")
    cmd = [pykill, "list", str(p.pid)]
    res = run(cmd)
    check_failure(cmd, res, EXIT_NOT_PYTHON, contains=(str(p.pid), "not a python process"))
    if p.poll() is not None:
        fail("sleep died under pykill: %s" % p.returncode)
    check_untouched(p.pid)
    print("ok: sleep %d: %s" % (p.pid, res.err.strip()))


def is_kernel_thread(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
        flags = int(stat_fields(pid, pid)[6])
    except (IOError, OSError):
        return False, "/proc/%d does not exist" % pid
    fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
    kthread = fields.get("Kthread", "").strip()
    if kthread == "1" or (kthread == "" and flags & PF_KTHREAD):
        return True, fields.get("Name", "?").strip()
    return False, "PID %d is %s (Kthread: %s, flags %#x)" % (pid, fields.get("Name", "?").strip(),
                                                           kthread or "absent", flags)


def case_kernel_thread(pykill, args):
    ok, name = is_kernel_thread(2)
    if not ok:
        skip("PID 2 is not a kernel thread in this PID namespace: %s" % name)
    cmd = [pykill, "list", "2"]
    res = run(cmd)
    check_failure(cmd, res, EXIT_NOT_PYTHON, contains=("2", "kernel thread"))
    print("ok: kernel thread 2 (%s): %s" % (name, res.err.strip()))


def case_pid1(pykill, args):
    cmd = [pykill, "list", "1"]
    res = run(cmd)
    if res.returncode == EXIT_OK:
        if res.err or "PID" not in res.out and "TID" not in res.out:
            fail("PID 1 listed, but: %s" % show(cmd, res))
    elif res.returncode in (EXIT_NO_PROCESS, EXIT_PERMISSION, EXIT_NOT_PYTHON):
        check_failure(cmd, res, res.returncode, contains=("1",))
    else:
        fail("exit status not in {0,4,5,6}: %s" % show(cmd, res))
    print("ok: pid 1 -> exit %d: %s" % (res.returncode, res.err.strip().replace("\n", " | ")))


def case_other_user(pykill, pythons):
    need_root("tracing another user's process")
    as_nobody = as_user(NOBODY)
    python = pick_python(pythons)
    t = Target(python)
    d, copy = pykill_for_nobody(pykill)
    try:
        cmd = as_nobody + [copy, "list", str(t.pid)]
        res = run(cmd)
        check_failure(cmd, res, EXIT_PERMISSION, contains=(str(t.pid),),
                      hint=("another user", "CAP_SYS_PTRACE"))
        check_untouched(t.pid)
        if tracer_pid(t.pid) != 0:
            fail("target traced after pykill failed")
        t.ping()
        t.quit()
    finally:
        shutil.rmtree(d)
    print("ok: uid %d vs root's pid %d: %s" % (NOBODY, t.pid, res.err.strip().replace("\n", " | ")))


def case_ptrace_only(pykill, pythons):
    """Root with CAP_SYS_PTRACE but without the file-permission capabilities
    (a setcap'ed pykill, or a container so configured) against another
    user's process: /proc/PID/mem cannot be opened, ptrace and
    process_vm_readv/writev still work. list and a write-path raise must
    work; nothing is left stopped."""
    need_root("dropping the file-permission capabilities")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        skip("setpriv (util-linux) is not installed")
    caps = "-dac_override,-dac_read_search,-fowner"
    drop = [setpriv, "--inh-caps=" + caps, "--bounding-set=" + caps]
    python = pick_python(pythons, runnable_by=NOBODY)
    t = Target(python, prefix=as_user(NOBODY), other_user=True)
    probe = run(drop + ["head", "-c", "1", "/proc/%d/mem" % t.pid])
    if "denied" not in probe.err.lower():
        skip("dropping %s did not take /proc/%d/mem away: %s" % (caps, t.pid, probe.err.strip()))
    cmd = drop + [pykill, "list", "--json", str(t.pid)]
    res = run(cmd)
    if res.returncode != EXIT_OK or res.err:
        fail("list without /proc/PID/mem: %s" % show(cmd, res))
    names = [th["name"] for th in json.loads(res.out)["threads"]]
    if "busy" not in names:
        fail("list without /proc/PID/mem misses the busy thread: %s" % show(cmd, res))
    check_untouched(t.pid)
    t.ping()
    cmd = drop + [pykill, "raise", "--via=write", "--json", str(t.pid), str(t.busy_tid)]
    res = run(cmd)
    if res.returncode != EXIT_OK or json.loads(res.out)["verdict"] != "delivered":
        fail("raise --via=write without /proc/PID/mem: %s" % show(cmd, res))
    deadline = time.monotonic() + 20
    while os.path.exists("/proc/%d/task/%d" % (t.pid, t.busy_tid)):
        if time.monotonic() > deadline:
            fail("the busy thread did not end after SystemExit was delivered")
        time.sleep(0.01)
    check_untouched(t.pid)
    t.quit()
    print("ok: without /proc/PID/mem (%s): list and raise --via=write work" % caps)


def case_already_traced(pykill, pythons, tracer):
    if not tracer or not os.access(tracer, os.X_OK):
        skip("the tracer helper %s was not built" % tracer)
    python = pick_python(pythons)
    t = Target(python)
    tr = subprocess.Popen([tracer, str(t.pid)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    started.append(tr)
    line = tr.stdout.readline().decode()
    if not line.startswith("ok "):
        tr.stdin.close()
        fail("tracer could not seize %d: %r (exit %s)" % (t.pid, line, tr.wait()))
    if tracer_pid(t.pid) != tr.pid:
        fail("tracer %d holds %d but TracerPid says %d" % (tr.pid, t.pid, tracer_pid(t.pid)))
    # auto stops the busy thread; all stops everything: both must meet the
    # tracer, and the hint must say what still works (issue #10.10).
    for freeze in ([], ["--freeze=all"]):
        cmd = [pykill, "list"] + freeze + [str(t.pid)]
        res = run(cmd)
        _, hint = check_failure(cmd, res, EXIT_PERMISSION, contains=(str(t.pid),),
                                hint=("already traced by pid %d" % tr.pid,))
        if "pykill list --freeze=none %d" % t.pid not in hint:
            fail("the hint does not say that --freeze=none still works: %s" % show(cmd, res))
        check_untouched(t.pid)
        if tracer_pid(t.pid) != tr.pid:
            fail("pykill changed who traces %d: TracerPid %d" % (t.pid, tracer_pid(t.pid)))
    msg = res.err.strip().replace("\n", " | ")
    # What the hint promises: reading without stopping anything works.
    cmd = [pykill, "list", "--freeze=none", "--json", str(t.pid)]
    res = run(cmd)
    if res.returncode != EXIT_OK or '"busy"' not in res.out:
        fail("list --freeze=none must work while another tracer holds the process: %s" % show(cmd, res))
    # raise and withdraw must stop threads: the hint says to detach the tracer.
    for sub in (["raise"], ["withdraw"]):
        cmd = [pykill] + sub + [str(t.pid), str(t.busy_tid)]
        res = run(cmd)
        _, hint = check_failure(cmd, res, EXIT_PERMISSION, contains=(str(t.pid),),
                                hint=("already traced by pid %d" % tr.pid,))
        if "detach that tracer" not in hint or "--freeze=none" not in hint:
            fail("the hint of %s does not say what to do about the tracer: %s" % (sub[0], show(cmd, res)))
        check_untouched(t.pid)
        if tracer_pid(t.pid) != tr.pid:
            fail("pykill changed who traces %d: TracerPid %d" % (t.pid, tracer_pid(t.pid)))
    t.ping()  # still running while traced
    tr.stdin.close()
    rc = tr.wait(timeout=20)
    out = tr.stdout.read().decode()
    if rc != 0:
        fail("tracer exited %d: %s" % (rc, out))
    if tracer_pid(t.pid) != 0:
        fail("target still traced after the tracer exited")
    cmd = [pykill, "list", "--json", str(t.pid)]
    res = run(cmd)
    if res.returncode != EXIT_OK or '"busy"' not in res.out:
        fail("after the tracer left, pykill list should work: %s" % show(cmd, res))
    check_untouched(t.pid)
    t.ping()
    t.quit()
    print("ok: traced by %d: %s; then listed" % (tr.pid, msg))


def case_yama(pykill, pythons):
    scope_path = "/proc/sys/kernel/yama/ptrace_scope"
    if not os.path.exists(scope_path):
        skip("%s does not exist (no Yama LSM in this kernel)" % scope_path)
    need_root("the Yama test")
    with open(scope_path) as f:
        scope = int(f.read().strip())
    as_nobody = as_user(NOBODY)
    python = pick_python(pythons, runnable_by=NOBODY)
    # Started by this script, not by pykill: pykill is not its ancestor.
    t = Target(python, prefix=as_nobody, other_user=True)
    d, copy = pykill_for_nobody(pykill)
    try:
        cmd = as_nobody + [copy, "list", str(t.pid)]
        res = run(cmd)
        if scope == 0:
            # The same user may trace its own process: the control case.
            if res.returncode != EXIT_OK or "busy" not in res.out:
                fail("ptrace_scope is 0: uid %d should list its own process: %s" % (NOBODY, show(cmd, res)))
            msg = "listed (scope 0)"
        else:
            check_failure(cmd, res, EXIT_PERMISSION, contains=(str(t.pid),), hint=("ptrace_scope",))
            msg = res.err.strip().replace("\n", " | ")
        check_untouched(t.pid)
        t.ping()
        t.quit()
    finally:
        shutil.rmtree(d)
    print("ok: yama ptrace_scope %d, uid %d vs its own pid %d: %s" % (scope, NOBODY, t.pid, msg))


CASES = {
    "usage": case_usage,
    "dead-pid": case_dead_pid,
    "zombie": case_zombie,
    "not-python": case_not_python,
    "kernel-thread": case_kernel_thread,
    "pid1": case_pid1,
    "other-user": case_other_user,
    "already-traced": case_already_traced,
    "ptrace-only": case_ptrace_only,
    "yama": case_yama,
}


def main():
    argv = sys.argv[1:]
    tracer = None
    for a in list(argv):
        if a.startswith("--tracer="):
            tracer = a[len("--tracer="):]
            argv.remove(a)
    if len(argv) < 2 or argv[0] not in CASES:
        print("usage: run_errors.py {%s} PYKILL [PYTHON...] [--tracer=PATH]" % ",".join(sorted(CASES)))
        sys.exit(2)
    case, pykill, pythons = argv[0], argv[1], argv[2:]
    if not os.access(pykill, os.X_OK):
        fail("%s is not an executable: build the pykill target first" % pykill)
    if case == "already-traced":
        CASES[case](pykill, pythons, tracer)
    else:
        CASES[case](pykill, pythons)


if __name__ == "__main__":
    try:
        main()
    finally:
        pktest.cleanup()
