"""Shared helpers of the ops tests: targets, /proc polling, failing and skipping."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
NOBODY = 65534
started = []  # every process a test started; killed by cleanup()
made_dirs = []  # temporary directories of world-readable copies; removed by cleanup()


def fail(msg):
    print("FAIL: " + msg)
    cleanup()
    sys.exit(1)


def skip(msg):
    print("SKIP: " + msg)
    cleanup()
    sys.exit(SKIP)


def cleanup():
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()
    while made_dirs:
        shutil.rmtree(made_dirs.pop(), ignore_errors=True)


def run(argv, **kw):
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, **kw)
    res.out = res.stdout.decode("utf-8", "replace")
    res.err = res.stderr.decode("utf-8", "replace")
    return res


def show(argv, res):
    return "`%s` exited %d\n  stdout: %r\n  stderr: %r" % (" ".join(argv), res.returncode, res.out, res.err)


def parse_tids(fields):
    return dict((k, int(v)) for k, v in (f.split("=", 1) for f in fields))


class Target(object):
    """target.py under python (through prefix, e.g. setpriv or unshare).
    other_user: the prefix runs it as another user, who may not read the
    checkout (a clone under a 0700 home): it runs a world-readable copy."""

    def __init__(self, python, sleepers=1, prefix=(), argv0=None, other_user=False):
        ready_r, ready_w = os.pipe()
        cmd_r, cmd_w = os.pipe()
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        self.script = os.path.join(HERE, "target.py")
        if other_user:
            d, self.script = world_copy(self.script)
            made_dirs.append(d)
        self.proc = subprocess.Popen(list(prefix) + [python, self.script, str(ready_w),
                                                     str(cmd_r), str(sleepers)],
                                     pass_fds=(ready_w, cmd_r), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env, cwd="/")
        started.append(self.proc)
        os.close(ready_w)
        os.close(cmd_r)
        self.answers = os.fdopen(ready_r, "rb", 0)
        self.cmd = cmd_w
        line = self.answers.readline().decode().split()
        if len(line) < 3 or line[0] != "ready":
            fail("target %s did not get ready: %r %s" % (python, line, self.output()))
        self.ns_pid = int(line[1])          # as the target sees itself
        self.ns_reader = int(line[2])
        self.ns_tids = parse_tids(line[3:])  # name -> TID as the target sees it
        self.nthreads = len(self.ns_tids)

    def alive(self):
        os.write(self.cmd, b"alive\n")
        line = self.answers.readline().decode().split()
        if not line or line[0] != "alive":
            fail("target does not answer: %r %s" % (line, self.output()))
        return parse_tids(line[1:])

    def quit(self):
        os.write(self.cmd, b"quit\n")
        out = self.output()
        if self.proc.returncode != 0:
            fail("target exited %d: %s" % (self.proc.returncode, out))

    def output(self):
        try:
            return self.proc.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()[0].decode(errors="replace")


def stat_fields(pid, tid):
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        return f.read().rsplit(")", 1)[1].split()


def wait_blocked(pid, tid, what, want_syscall=None, limit=20.0):
    """Poll /proc until the thread sleeps in a system call (want_syscall if
    given): a condition the kernel reports, not a guess at a delay."""
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            with open("/proc/%d/task/%d/syscall" % (pid, tid)) as f:
                fields = f.read().split()
            state = stat_fields(pid, tid)[0]
        except (IOError, OSError):
            fail("%s: thread %d of %d exited" % (what, tid, pid))
        if state == "S" and fields and fields[0] not in ("running", "-1") and \
                (want_syscall is None or fields[0] == str(want_syscall)):
            return
        time.sleep(0.001)
    fail("%s never blocked in a system call" % what)


def status_field(pid, tid, name):
    with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    fail("no %s in /proc/%d/task/%d/status" % (name, pid, tid))


def check_untouched(pid):
    """No thread of pid stopped or traced."""
    for name in os.listdir("/proc/%d/task" % pid):
        tid = int(name)
        try:
            state = stat_fields(pid, tid)[0]
            tracer = status_field(pid, tid, "TracerPid")
        except (IOError, OSError):
            continue  # ended meanwhile
        if state in ("t", "T") or tracer != "0":
            fail("thread %d of %d left stopped or traced (state %s, TracerPid %s)" % (tid, pid, state, tracer))


def as_user(uid):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        skip("setpriv (util-linux) is not installed")
    return [setpriv, "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "--inh-caps=-all"]


def world_copy(path, name=None):
    """A copy of path in a fresh 0755 directory (the build tree may sit under a
    0700 home; a renamed copy is also how an embedded interpreter looks)."""
    d = tempfile.mkdtemp(prefix="pykill-ops-")
    os.chmod(d, 0o755)
    copy = os.path.join(d, name or os.path.basename(path))
    shutil.copy(path, copy)
    os.chmod(copy, 0o755)
    return d, copy
