#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pykill against a target in its own PID and mount namespaces (a container
as the kernel sees one), from the host.

  run_container.py CASE PYKILL PYTHON

namespaces: the target runs under `unshare --pid --mount --fork --mount-proc`
  and reports its own os.getpid() and native thread ids (1, 2, ...) through a
  pipe. `pykill list --json HOSTPID` must give ns_pid and every thread's
  ns_tid as the target sees them and tid as the host does (checked against
  /proc NSpid); `pykill ps` must show the namespace PID; `pykill raise` into
  a thread must be delivered by both paths (the thread ends, the others run).
no-cap-sys-ptrace: as root with only CAP_SYS_PTRACE dropped (setpriv
  --inh-caps=-sys_ptrace --bounding-set=-sys_ptrace), as in a container
  started without --cap-add SYS_PTRACE: list and raise of the namespaced
  target must fail with exit 5, one message saying permission denied and a
  hint naming CAP_SYS_PTRACE; ps must not list it, count it as skipped and, as it
  was named, say so (exit 5);
  the target must be untouched.
Exits 0 on success, 1 on failure, 77 naming what is missing.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opslib import Target, check_untouched, cleanup, fail, run, show, skip, status_field  # noqa: E402

EXIT_OK, EXIT_PERMISSION = 0, 5
CAP_SYS_PTRACE = 19


def start_in_namespaces(python, sleepers):
    unshare = shutil.which("unshare")
    if unshare is None:
        skip("unshare (util-linux) is not installed")
    probe = run([unshare, "--pid", "--mount", "--fork", "--mount-proc", "true"])
    if probe.returncode != 0:
        skip("cannot create PID and mount namespaces here: %s" % probe.err.strip())
    t = Target(python, sleepers=sleepers, prefix=[unshare, "--pid", "--mount", "--fork", "--mount-proc"])
    with open("/proc/%d/task/%d/children" % (t.proc.pid, t.proc.pid)) as f:
        kids = [int(x) for x in f.read().split()]
    if len(kids) != 1:
        fail("unshare %d has children %r, want the one target" % (t.proc.pid, kids))
    t.host_pid = kids[0]
    if t.ns_pid == t.host_pid:
        fail("the target sees itself as %d, as the host does: no new PID namespace" % t.ns_pid)
    # Host TID of each thread, from the kernel's NSpid (outermost first).
    t.host_tids = {}
    for name in os.listdir("/proc/%d/task" % t.host_pid):
        ids = [int(x) for x in status_field(t.host_pid, int(name), "NSpid").split()]
        t.host_tids[ids[-1]] = ids[0]
    if sorted(t.host_tids) != sorted(t.ns_tids.values()):
        fail("the target's own TIDs %r are not the kernel's %r" % (t.ns_tids, t.host_tids))
    return t


def case_namespaces(pykill, python):
    if os.geteuid() != 0:
        skip("creating namespaces needs root; running as uid %d" % os.geteuid())
    t = start_in_namespaces(python, 2)
    argv = [pykill, "list", "--json", str(t.host_pid)]
    res = run(argv)
    if res.returncode != EXIT_OK:
        fail(show(argv, res))
    got = json.loads(res.out)
    if got["pid"] != t.host_pid or got["ns_pid"] != t.ns_pid or got["ns_pid"] == got["pid"]:
        fail("list: pid %r ns_pid %r, want %d and %d" % (got["pid"], got["ns_pid"], t.host_pid, t.ns_pid))
    by_name = dict((th["name"], th) for th in got["threads"])
    if sorted(by_name) != sorted(t.ns_tids):
        fail("list: threads %r, the target has %r" % (sorted(by_name), sorted(t.ns_tids)))
    for name, ns_tid in t.ns_tids.items():
        th = by_name[name]
        if th["ns_tid"] != ns_tid or th["tid"] != t.host_tids[ns_tid] or th["tid"] == th["ns_tid"]:
            fail("list: thread %s has tid %r ns_tid %r; the target sees %d, the host %d" %
                 (name, th["tid"], th["ns_tid"], ns_tid, t.host_tids[ns_tid]))
    if not by_name["MainThread"]["main"]:
        fail("list: MainThread (PID 1 of its namespace) is not flagged main: %r" % by_name["MainThread"])

    argv = [pykill, "ps", "--json", str(t.host_pid)]
    res = run(argv)
    ps = json.loads(res.out) if res.returncode == 0 else fail(show(argv, res))
    if len(ps["processes"]) != 1 or ps["processes"][0]["pid"] != t.host_pid or \
            ps["processes"][0]["ns_pid"] != t.ns_pid or ps["processes"][0]["threads"] != len(t.ns_tids):
        fail("ps of the namespaced target: %s" % show(argv, res))

    for via, name in (("call", "sleeper-0"), ("write", "sleeper-1")):
        tid = t.host_tids[t.ns_tids[name]]
        argv = [pykill, "raise", "--json", "--via=" + via, str(t.host_pid), str(tid), "SystemExit"]
        # The call path borrows only a thread asleep at that instant (here
        # the other sleeper, awake every 50 ms, and on a loaded machine
        # often runnable): its documented refusal queued nothing; ask again.
        for _ in range(20):
            res = run(argv)
            if not (res.returncode == 7 and "the call path is not safe now" in res.err):
                break
        if res.returncode != EXIT_OK:
            fail(show(argv, res))
        verdict = json.loads(res.out)
        if verdict["verdict"] != "delivered" or verdict["tid"] != tid or verdict["ns_tid"] != t.ns_tids[name]:
            fail("raise --via=%s: %s" % (via, show(argv, res)))
        alive = t.alive()
        if name in alive:
            fail("raise --via=%s: %s still runs: %r" % (via, name, alive))
        for other in ("MainThread", "reader"):
            if alive.get(other) != t.ns_tids[other]:
                fail("raise --via=%s harmed %s: %r" % (via, other, alive))
    check_untouched(t.host_pid)
    t.quit()
    print("ok: pid %d is %d in its namespace; list, ps and raise (call, write) agree with the target" %
          (t.host_pid, t.ns_pid))


def has_cap_sys_ptrace():
    return (int(status_field(os.getpid(), os.getpid(), "CapEff"), 16) >> CAP_SYS_PTRACE) & 1


def check_denied(argv, res):
    what = show(argv, res)
    if res.returncode != EXIT_PERMISSION:
        fail("expected exit %d: %s" % (EXIT_PERMISSION, what))
    if res.out:
        fail("a failure printed on stdout: %s" % what)
    lines = res.err.splitlines()
    msgs = [l for l in lines if not l.startswith("pykill: hint: ")]
    hints = [l for l in lines if l.startswith("pykill: hint: ")]
    if len(msgs) != 1 or "permission denied" not in msgs[0].lower():
        fail("expected one message saying permission denied: %s" % what)
    if len(hints) != 1 or "CAP_SYS_PTRACE" not in hints[0]:
        fail("expected one hint naming CAP_SYS_PTRACE: %s" % what)


def case_no_cap_sys_ptrace(pykill, python):
    if os.geteuid() != 0:
        skip("needs root (dropping only CAP_SYS_PTRACE); running as uid %d" % os.geteuid())
    if not has_cap_sys_ptrace():
        skip("this test already runs without CAP_SYS_PTRACE")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        skip("setpriv (util-linux) is not installed")
    drop = [setpriv, "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"]
    probe = run(drop + ["grep", "^CapEff", "/proc/self/status"])
    if probe.returncode != 0:
        skip("setpriv cannot drop CAP_SYS_PTRACE here: %s" % probe.err.strip())
    if (int(probe.out.split()[1], 16) >> CAP_SYS_PTRACE) & 1:
        fail("setpriv did not drop CAP_SYS_PTRACE: %s" % probe.out)
    t = start_in_namespaces(python, 1)
    tid = t.host_tids[t.ns_tids["sleeper-0"]]
    for args in (["list", str(t.host_pid)], ["list", "--json", str(t.host_pid)],
                 ["raise", str(t.host_pid), str(tid)]):
        argv = drop + [pykill] + args
        check_denied(argv, run(argv))
    argv = drop + [pykill, "ps", "--json", str(t.host_pid)]
    res = run(argv)
    # Named, and not readable: said, and the status tells it (5).
    if res.returncode != 5 or "permission denied" not in res.err or "CAP_SYS_PTRACE" not in res.err:
        fail(show(argv, res))
    ps = json.loads(res.out)
    if ps["processes"] or ps["skipped"] != 1:
        fail("ps without CAP_SYS_PTRACE must skip the target and say so: %s" % show(argv, res))
    check_untouched(t.host_pid)
    if t.alive() != t.ns_tids:
        fail("the target changed: %r, was %r" % (t.alive(), t.ns_tids))
    t.quit()
    print("ok: without CAP_SYS_PTRACE, exit 5 with a hint naming it; ps skips and counts the target")


def main():
    case, pykill, python = sys.argv[1], sys.argv[2], sys.argv[3]
    if not os.path.exists(python):
        skip("%s is not installed" % python)
    try:
        {"namespaces": case_namespaces, "no-cap-sys-ptrace": case_no_cap_sys_ptrace}[case](pykill, python)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
