# SPDX-License-Identifier: MIT
"""Shared helpers of the ops tests: targets, /proc polling, failing and skipping."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
import pktest  # noqa: E402
from pktest import (SKIP, as_user, cleanup, fail, run as _run, show, skip, stat_fields, started,  # noqa: E402,F401
                    world_copy)

NOBODY = 65534


def run(argv, **kw):
    return _run(argv, timeout=120, **kw)


def parse_tids(fields):
    return dict((k, int(v)) for k, v in (f.split("=", 1) for f in fields))


class Target(pktest.Target):
    """target.py under python (through prefix, e.g. setpriv or unshare).
    other_user: the prefix runs it as another user, who may not read the
    checkout (a clone under a 0700 home): it runs a world-readable copy."""

    def __init__(self, python, sleepers=1, prefix=(), other_user=False):
        self.script = os.path.join(HERE, "target.py")
        if other_user:
            self.script = world_copy(self.script)
        pktest.Target.__init__(self, python, self.script, args=[sleepers], prefix=prefix, cwd="/")
        line = self.ready_text.split()
        if len(line) < 2:
            fail("target %s did not get ready: %r %s" % (python, line, self.output()))
        self.ns_pid = int(line[0])          # as the target sees itself
        self.ns_reader = int(line[1])
        self.ns_tids = parse_tids(line[2:])  # name -> TID as the target sees it
        self.nthreads = len(self.ns_tids)

    def alive(self):
        line = (self.ask("alive") or "").split()
        if not line or line[0] != "alive":
            fail("target does not answer: %r %s" % (line, self.output()))
        return parse_tids(line[1:])


def wait_blocked(pid, tid, what, want_syscall=None, limit=20.0):
    """Poll /proc until the thread sleeps in a system call (want_syscall if
    given): a condition the kernel reports, not a guess at a delay."""
    pktest.wait_blocked(pid, tid, what, syscall=want_syscall, sleeping=True, limit=limit)


def status_field(pid, tid, name):
    with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    fail("no %s in /proc/%d/task/%d/status" % (name, pid, tid))


def check_untouched(pid):
    """No thread of pid stopped or traced."""
    bad = pktest.stopped_or_traced(pid)
    if bad:
        fail("threads of %d left stopped or traced: %s" % (pid, "; ".join(bad)))
