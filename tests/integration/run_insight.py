#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration test of what `pykill list` says about blocked threads: how long
each has been blocked, and what its file descriptor leads to.

  run_insight.py PYKILL PYTHON [netns | gil]

Starts insight_target.py under PYTHON (in its own network namespace with
`netns`: unshare --net) and makes it block threads on peers this driver
knows: time.sleep, a loopback TCP connection, a unix socketpair, a pipe whose
write end this driver holds, flock on a file this driver has locked. Each
wait for a thread to block polls /proc for the system call. Checks the JSON
(blocked_s against this driver's clock, with bounds taken around the run of
pykill, never pykill's speed; addresses, ports, TCP state; the peer socket;
the pipe's other end; the file and its offset), the human text, --sort=blocked,
--stuck and their usage errors. With `gil`: a thread waiting for the GIL
names the thread that holds it (blocked in C code that keeps it). Exits 0 ok, 1 on failure, 77 (skip) naming
what is missing.
"""
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import pktest  # noqa: E402
from pktest import resolve_python  # noqa: E402

TOL = 0.05  # s: the scheduler clock's lag behind pykill's reading, and rounding
SYSCALLS = {"clock_nanosleep": 230, "nanosleep": 35, "select": 23, "pselect6": 270, "read": 0,
            "recvfrom": 45, "recvmsg": 47, "flock": 73, "futex": 202}
EXPECT = {"sleeper": ("clock_nanosleep", "nanosleep", "select", "pselect6"),
          "gil-holder": ("clock_nanosleep", "nanosleep"),
          "tcp-recv": ("recvfrom", "recvmsg", "read"), "unix-recv": ("recvfrom", "recvmsg", "read"),
          "pipe-read": ("read",), "flock-wait": ("flock",), "rlock-holder": ("clock_nanosleep", "nanosleep", "select", "pselect6"),
          "rlock-waiter": ("futex",), "lock-waiter": ("futex",)}


fail = pktest.fail


class Target(pktest.Target):
    """insight_target.py (in its own network namespace with netns), with a
    pipe of the driver's whose read end only the target holds."""

    expect_timeout = 30  # s

    def __init__(self, python, netns):
        self.pipe_r, self.pipe_w = os.pipe()
        pktest.Target.__init__(self, python, os.path.join(HERE, "insight_target.py"),
                               args=["--lo-up"] if netns else [], prefix=["unshare", "--net"] if netns else [],
                               env=dict(os.environ), pass_fds=(self.pipe_r,), on_line=self.error_line)
        if int(self.ready_text.split()[0]) != self.proc.pid:
            fail("target pid %s is not the process started (%d)" % (self.ready_text, self.proc.pid))
        os.close(self.pipe_r)  # only the target reads; this driver holds the write end

    @staticmethod
    def error_line(line):
        if line.startswith("error"):
            fail("target: " + line)

    def block(self, command, name):
        """Send a command, wait for its thread to block in its system call.
        Returns (info, sent, seen): the thread blocked after `sent` and before `seen`."""
        sent = time.monotonic()
        self.send(command)
        info = json.loads(self.expect("started %s " % name).split(" ", 2)[2])
        pktest.wait_blocked(self.pid, info["tid"], "thread " + name, syscall=[SYSCALLS[n] for n in EXPECT[name]],
                            sleeping=True, limit=30)
        return info, sent, time.monotonic()

    def close(self, quit=True):
        """Ask it to quit (killed after 10 s), or with quit=False kill it."""
        if quit and self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        pktest.Target.close(self)


def run(pykill, *args):
    return subprocess.run([pykill, "list"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def timed_json(pykill, pid, *extra):
    before = time.monotonic()
    res = run(pykill, "--json", str(pid), *extra)
    after = time.monotonic()
    if res.returncode != 0:
        fail("pykill list %s exited %d: %s" % (" ".join(extra), res.returncode, res.stderr.decode(errors="replace")))
    return json.loads(res.stdout.decode()), before, after


def fd_entry(t, fd):
    if not t["syscall"]:
        fail("%s: no system call: %r" % (t["name"], t))
    for e in t["syscall"]["fds"]:
        if e["fd"] == fd:
            return e
    fail("%s: fd %d not among the system call's fds: %r" % (t["name"], fd, t["syscall"]))


def host_has_socket(inode):
    for name in ("tcp", "tcp6"):
        with open("/proc/self/net/%s" % name) as f:
            for line in f.readlines()[1:]:
                if line.split()[9] == str(inode):
                    return True
    return False


def check_threads(got, blocked, before, after, netns):
    by_name = {t["name"]: t for t in got["threads"]}
    problems = []
    for name, (info, sent, seen) in sorted(blocked.items()):
        t = by_name.get(name)
        if t is None:
            problems.append("%s missing" % name)
            continue
        lo, hi = before - seen - TOL, after - sent + TOL
        if t.get("blocked_s") is None or not lo <= t.get("blocked_s") <= hi:
            problems.append("%s: blocked_s %r, this driver's clock says between %.3f and %.3f" % (
                name, t.get("blocked_s"), lo, hi))
    for t in got["threads"]:
        if t["state"] == "running" and t.get("blocked_s") is not None:
            problems.append("%s runs, yet blocked_s is %r" % (t["name"], t.get("blocked_s")))

    info = blocked["tcp-recv"][0]
    e = fd_entry(by_name["tcp-recv"], info["fd"])
    want = {"kind": "inet", "proto": "tcp", "local": info["local"], "remote": info["remote"], "state": "ESTABLISHED"}
    if any(e.get(k) != v for k, v in want.items()):
        problems.append("tcp-recv fd: %r, want %r" % (e, want))
    if netns and (e.get("target") or "").startswith("socket:[") and host_has_socket(int(e.get("target")[8:-1])):
        problems.append("netns: the target's TCP socket is in this driver's namespace too: the test proves nothing")

    info = blocked["unix-recv"][0]
    e = fd_entry(by_name["unix-recv"], info["fd"])
    if e.get("kind") != "unix" or e.get("proto") != "unix" or e.get("state") != "CONNECTED":
        problems.append("unix-recv fd: %r" % e)
    elif e.get("peer_inode") is None:
        print("note: no unix socket peer (the kernel has no unix_diag): holders not checked")
    elif [(h["pid"], h["fd"]) for h in e.get("holders", [])] != [(got["pid"], info["peer_fd"])]:
        problems.append("unix-recv: peer held by %r, want pid %d fd %d" % (e.get("holders"), got["pid"], info["peer_fd"]))

    info = blocked["pipe-read"][0]
    e = fd_entry(by_name["pipe-read"], info["fd"])
    holders = [(h["pid"], h["mode"]) for h in e.get("holders", [])]
    if e.get("kind") != "pipe" or (os.getpid(), "w") not in holders or any(p != os.getpid() for p, _ in holders):
        problems.append("pipe-read: %r, want the other end held by this driver (pid %d)" % (e, os.getpid()))

    info = blocked["flock-wait"][0]
    e = fd_entry(by_name["flock-wait"], info["fd"])
    if e.get("kind") != "file" or e.get("path") != blocked["flock-wait"][0]["path"] or e.get("pos") != 5:
        problems.append("flock-wait fd: %r, want the file at pos 5" % e)
    return problems


def check_human(pykill, pid, blocked):
    res = run(pykill, str(pid))
    out = res.stdout.decode(errors="replace")
    info = blocked["tcp-recv"][0]
    wants = ["BLOCKED", "tcp %s -> %s ESTABLISHED" % (info["local"], info["remote"]),
             "other end held by %d (" % os.getpid(), "pos 5"]
    missing = [w for w in wants if w not in out]
    if res.returncode != 0 or missing:
        return ["human output lacks %r (exit %d):\n%s%s" % (missing, res.returncode, out, res.stderr.decode())]
    return []


def check_sort_stuck(pykill, pid, blocked):
    problems = []
    before = time.monotonic()
    res = run(pykill, "--json", str(pid), "--sort=blocked", "--stuck=1s")
    after = time.monotonic()
    if res.returncode != 0:
        return ["--sort=blocked --stuck=1s: exit %d: %s" % (res.returncode, res.stderr.decode(errors="replace"))]
    got = json.loads(res.stdout.decode())
    shown = [t["name"] for t in got["threads"]]
    if got.get("threads_hidden", 0) + len(shown) != len(blocked) + 1:  # + the main thread
        problems.append("--stuck: %d shown + %d hidden, the target has %d threads" % (
            len(shown), got.get("threads_hidden", 0), len(blocked) + 1))
    for name, (_, sent, seen) in blocked.items():
        if before - seen - TOL >= 1.0 and name not in shown:
            problems.append("--stuck=1s: %s blocked for at least %.2f s, not shown" % (name, before - seen))
        if after - sent + TOL < 1.0 and name in shown:
            problems.append("--stuck=1s: %s blocked for at most %.2f s, shown" % (name, after - sent))
    if any(t.get("blocked_s") is None or t.get("blocked_s") < 1.0 for t in got["threads"]):
        problems.append("--stuck=1s shows %r" % [(t["name"], t.get("blocked_s")) for t in got["threads"]])
    if not shown or shown[0] != "sleeper":
        problems.append("--sort=blocked: the sleeper (blocked longest) is not first: %r" % shown)
    values = [t.get("blocked_s") for t in got["threads"]]
    if values != sorted(values, reverse=True):
        problems.append("--sort=blocked: not longest first: %r" % values)
    res = run(pykill, "--sort=blocked", "--stuck=1s", str(pid))
    if res.returncode != 0 or b"not shown" not in res.stdout or not res.stdout.decode().split("\n")[2].split()[2:3] == ["sleeper"]:
        problems.append("human --sort/--stuck (exit %d):\n%s" % (res.returncode, res.stdout.decode(errors="replace")))
    # The footer says the duration with its unit, whatever was typed.
    res = run(pykill, "--stuck=1", str(pid))
    if res.returncode != 0 or b"not blocked for 1s or longer" not in res.stdout:
        problems.append("--stuck=1 footer (exit %d):\n%s" % (res.returncode, res.stdout.decode(errors="replace")))
    for bad in (["--stuck=abc"], ["--stuck=0"], ["--stuck=5x"], ["--stuck="], ["--sort=name"], ["--stuck=400d"]):
        res = run(pykill, *(bad + [str(pid)]))
        if res.returncode != 2:
            problems.append("%s: exit %d, want 2 (usage)" % (bad[0], res.returncode))
    return problems


def check_gil(pykill, python):
    """A thread spins, another holds the GIL in C (libc sleep through
    ctypes.PyDLL): the spinner waits for the GIL, its holder is known."""
    t = Target(python, False)
    try:
        t.block("gil", "gil-holder")
        waiter = json.loads(t.expect("started gil-waiter ").split(" ", 2)[2])
        holder_tid = None
        for _ in range(50):  # the waiter wakes every switch interval: catch it in its wait
            got, _, _ = timed_json(pykill, t.pid)
            by_name = {x["name"]: x for x in got["threads"]}
            w, h = by_name["gil-waiter"], by_name["gil-holder"]
            holder_tid = h["tid"]
            if w["gil_state"] == "waits":
                break
            if got["python"]["version"].endswith("t") and w["gil_state"] == "absent":
                break  # free-threaded: no GIL to wait for (checked below)
        else:
            pktest.skip("pykill never saw the spinning thread wait for the GIL on Python %s (gil_state %r)" % (
                got["python"]["version"], w["gil_state"]))
        if w["gil_state"] == "absent":
            # A free-threaded build without its GIL: the spinner runs beside
            # the thread sleeping in C; no one holds or waits for a GIL.
            if h["gil"] is not None or w["gil"] is not None or h["gil_state"] != "absent" or w.get("gil_holder"):
                fail("no GIL on %s, yet gil-holder %r/%r, gil-waiter %r/%r" % (
                    got["python"]["version"], h["gil"], h["gil_state"], w["gil"], w.get("gil_holder")))
            if w["state"] != "running":
                fail("gil-waiter is %s beside a thread sleeping in C on %s: with no GIL it runs" % (
                    w["state"], got["python"]["version"]))
            return
        if not h["gil"] or w.get("gil_holder") != {"tid": holder_tid, "ident": h["ident"], "name": "gil-holder"}:
            fail("gil-waiter: gil_holder %r, the holder is %r" % (w.get("gil_holder"), h))
        for x in got["threads"]:
            if x is not w and x.get("gil_holder") not in (None, w.get("gil_holder")):
                fail("%s: gil_holder %r" % (x["name"], x["gil_holder"]))
        if by_name["gil-holder"].get("gil_holder") is not None:
            fail("the GIL holder names a GIL holder: %r" % by_name["gil-holder"])
        for _ in range(50):
            out = run(pykill, str(t.pid)).stdout.decode(errors="replace")
            line = [x for x in out.split("\n") if "gil-waiter" in x][0]
            if " -w " in line:
                if "[GIL held by %d (gil-holder)]" % holder_tid not in line:
                    fail("human output does not name the GIL holder:\n%s" % out)
                break
        print("ok: %s, gil-waiter waits for the GIL held by %r" % (got["python"]["version"], w["gil_holder"]))
    finally:
        t.close(quit=False)


def check_rlock(pykill, python):
    """A thread waits for an RLock another named thread holds (twice): its
    holder is named, with the count. A thread waiting for a plain Lock: its
    holder is not recorded, so nothing is said; nor on 2.7 (no C RLock)."""
    t = Target(python, False)
    try:
        holder = t.block("rlock", "rlock-holder")[0]
        for name in ("rlock-waiter", "lock-waiter"):
            info = json.loads(t.expect("started %s " % name).split(" ", 2)[2])
            wait_syscall(t.pid, info["tid"], SYSCALLS["futex"], name)
        got, _, _ = timed_json(pykill, t.pid)
        by_name = {x["name"]: x for x in got["threads"]}
        w = by_name["rlock-waiter"]
        want = {"tid": holder["tid"], "ident": holder["ident"], "name": "rlock-holder", "count": 2}
        old_python = got["python"]["version"].startswith("2.")
        if w.get("rlock_holder") != (None if old_python else want):
            fail("rlock-waiter: rlock_holder %r, want %r" % (w.get("rlock_holder"), None if old_python else want))
        for x in got["threads"]:
            if x is not w and x.get("rlock_holder") is not None:
                fail("%s names an RLock holder: %r" % (x["name"], x["rlock_holder"]))
        out = run(pykill, str(t.pid)).stdout.decode(errors="replace")
        line = [x for x in out.split("\n") if "rlock-waiter" in x][0]
        said = "[RLock held by %d (rlock-holder)]" % holder["tid"]
        if (said in line) == old_python or out.count("RLock held") != (0 if old_python else 1):
            fail("human output and the RLock holder (%s):\n%s" % (said, out))
        print("ok: %s, rlock-waiter waits for an RLock held by %r" % (got["python"]["version"], w.get("rlock_holder")))
    finally:
        t.close(quit=False)


def wait_syscall(pid, tid, nr, name):
    """Until the thread sleeps in system call nr."""
    pktest.wait_blocked(pid, tid, "thread " + name, syscall=nr, sleeping=True, limit=30)


def main():
    pykill, python = sys.argv[1], resolve_python(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == "rlock":
        check_rlock(pykill, python)
        return
    if len(sys.argv) > 3 and sys.argv[3] == "gil":
        check_gil(pykill, python)
        return
    netns = len(sys.argv) > 3 and sys.argv[3] == "netns"
    if netns:
        if shutil.which("unshare") is None:
            pktest.skip("no unshare(1) to start a target in its own network namespace")
        probe = subprocess.run(["unshare", "--net", "true"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if probe.returncode != 0:
            pktest.skip("unshare --net fails here: %s" % probe.stdout.decode(errors="replace").strip())
    tmp = tempfile.mkdtemp(prefix="pykill-insight-")
    locked = os.path.join(tmp, "locked")
    with open(locked, "wb") as f:
        f.write(b"0123456789")
    lock = open(locked, "rb")
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
    t = Target(python, netns)
    try:
        blocked = {"sleeper": t.block("sleep", "sleeper")}
        # Time for the sleeper to be blocked long enough for --stuck=1s, and
        # longer than the threads blocked next: the quantity measured, not a
        # synchronisation (the sleeper is blocked already).
        time.sleep(1.5)
        blocked["tcp-recv"] = t.block("tcp", "tcp-recv")
        blocked["unix-recv"] = t.block("unix", "unix-recv")
        blocked["pipe-read"] = t.block("pipe %d" % t.pipe_r, "pipe-read")
        blocked["flock-wait"] = t.block("flock %s" % locked, "flock-wait")
        blocked["flock-wait"][0]["path"] = locked
        got, before, after = timed_json(pykill, t.pid)
        problems = check_threads(got, blocked, before, after, netns)
        problems += check_human(pykill, t.pid, blocked)
        problems += check_sort_stuck(pykill, t.pid, blocked)
        if problems:
            fail("\n  ".join(["pykill list disagrees with the target:"] + problems))
    finally:
        t.close()
        lock.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok: %s%s, blocked_s %s" % (got["python"]["version"], " in its own network namespace" if netns else "",
                                     {t["name"]: t.get("blocked_s") for t in got["threads"]}))


if __name__ == "__main__":
    main()
