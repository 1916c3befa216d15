# SPDX-License-Identifier: MIT
"""The helpers every integration driver and bench harness shares.

A driver finds this file by a path relative to its own file, never the cwd:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import pktest

Drivers run under the host's python3 (3.6 or later: ctest's PYKILL_TEST_PYTHON,
bench/*.sh); the targets they start run under each interpreter tested, 2.7 and
3.6+, and never import this file.

- fail / skip: end the driver with 1 / ctest's skip code 77 (SKIP) after the
  cleanup hooks ran (at_cleanup) and every Target still running was killed;
  Fail, throw and check, for drivers that catch a failure per scenario.
- resolve_python: an interpreter path, or "sid:3.X" from the fetch cache.
- /proc: stat_fields, task_syscall, wait_until, wait_blocked (a thread asleep
  in a system call), wait_progress (a thread ran again), stopped_or_traced.
- run / run_pykill: a command's exit code, stdout and stderr (and its JSON).
- LineReader and Target: a target process started with pipes of its own, a
  ready handshake on the first line it writes, then events and answers read
  line by line with deadlines (select, never a sleep). Events: the expect()
  loop alone, for readers of other event streams (servers).
"""
import json
import os
import select
import subprocess
import sys
import time

SKIP = 77

_cleanups = []  # callables run (last first) by cleanup()
started = []    # every process a Target started; killed by cleanup()


class Fail(Exception):
    """A failure a driver catches itself (one scenario of several)."""


def throw(msg):
    """An error handler that raises Fail (for Target(error=throw), wait_*)."""
    raise Fail(msg)


def check(cond, msg):
    """Fail(msg) unless cond: an assertion of a driver that catches Fail."""
    if not cond:
        raise Fail(msg)


def at_cleanup(fn):
    _cleanups.append(fn)
    return fn


def cleanup():
    """Run the cleanup hooks, then kill what a Target started and is still running."""
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception as e:  # a hook must not hide the failure being reported
            print("cleanup: %s" % e)
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def fail(msg):
    print("FAIL: " + msg)
    sys.stdout.flush()
    cleanup()
    sys.exit(1)


def skip(msg):
    print("SKIP: " + msg)
    sys.stdout.flush()
    cleanup()
    sys.exit(SKIP)


def resolve_python(spec):
    """A path, sid:3.X read from the fetch cache's STATUS (tests/fetch-pythons.sh),
    or ft:3.Xt (a free-threaded build) from its STATUS-ft (tests/build-ft-pythons.sh).
    Skips (77), naming it, when the interpreter is absent."""
    if spec.startswith("sid:"):
        ver, status, what, how, script = spec[4:], "STATUS", "Debian sid python%s", "fetched", "fetch-pythons.sh"
    elif spec.startswith("ft:"):
        ver, status, what, how, script = spec[3:], "STATUS-ft", "free-threaded python%s", "built", "build-ft-pythons.sh"
    else:
        if not os.path.exists(spec):
            skip("%s is not installed" % spec)
        return spec
    cache = os.environ.get("PYKILL_PYTHONS", os.path.expanduser("~/.cache/pykill-pythons"))
    try:
        with open(os.path.join(cache, status)) as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] == ver:
                    if parts[1] == "ok":
                        return parts[3]
                    skip("%s could not be %s: %s" % (what % ver, how, " ".join(parts[2:])))
    except IOError:
        pass
    skip("%s not %s (run tests/%s %s)" % (what % ver, how, script, cache))


def clean_env(**extra):
    """The driver's environment without PYTHONPATH (a target's own imports only)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


# --- /proc -----------------------------------------------------------------

def stat_fields(pid, tid=None):
    """/proc/PID/task/TID/stat after the command name: [0] is the state."""
    with open("/proc/%d/task/%d/stat" % (pid, tid or pid)) as f:
        st = f.read()
    return st[st.rindex(")") + 2:].split()


def task_syscall(pid, tid):
    """The number of the system call thread tid is blocked in; None while it
    runs, or when it is gone."""
    try:
        with open("/proc/%d/task/%d/syscall" % (pid, tid)) as f:
            s = f.read().split()
    except (IOError, OSError):
        return None
    return int(s[0]) if s and s[0].isdigit() else None


def wait_until(cond, what, limit=20, error=fail, interval=0.001):
    """Poll cond() (a condition /proc or the target reports, not a delay)
    until true; error("WHAT did not happen within LIMIT s") otherwise."""
    deadline = time.time() + limit
    while not cond():
        if time.time() > deadline:
            error("%s did not happen within %d s" % (what, limit))
            return False
        time.sleep(interval)
    return True


def wait_blocked(pid, tid, what=None, syscall=None, not_syscall=None, sleeping=False, limit=20,
                 error=fail, interval=0.001, details=None):
    """Until thread tid of pid is blocked in a system call: syscall (a number
    or a collection of numbers) if given, not not_syscall if given, and, with
    sleeping, in state S (interruptible sleep) as well. error(message) when
    that does not happen within limit seconds or the thread is gone.
    details(): more to say in that message (the target's threads)."""
    want = None if syscall is None else (set(syscall) if isinstance(syscall, (set, list, tuple)) else {syscall})
    what = what or "thread %d of %d" % (tid, pid)
    deadline = time.time() + limit
    while time.time() < deadline:
        nr = task_syscall(pid, tid)
        if nr is None and not os.path.exists("/proc/%d/task/%d" % (pid, tid)):
            error("%s: thread %d of %d exited" % (what, tid, pid))
            return False
        if nr is not None and (want is None or nr in want) and nr != not_syscall:
            try:
                if not sleeping or stat_fields(pid, tid)[0] == "S":
                    return True
            except (IOError, OSError):
                pass
        time.sleep(interval)
    error("%s never blocked in system call %s%s" % (
        what, "(any)" if want is None else "/".join(str(n) for n in sorted(want)),
        (": " + details()) if details else ""))
    return False


def cpu_ticks(pid, tid):
    f = stat_fields(pid, tid)
    return int(f[11]) + int(f[12])


def wait_progress(pid, tid, limit=20.0, error=fail):
    """Until thread tid has run on a CPU again (utime+stime grew)."""
    before = cpu_ticks(pid, tid)
    deadline = time.time() + limit
    while time.time() < deadline:
        if cpu_ticks(pid, tid) > before:
            return True
        time.sleep(0.005)
    error("thread %d of %d did not run for %.0f s" % (tid, pid, limit))
    return False


def task_status(pid, tid):
    """/proc/PID/task/TID/status as a dict; None when the thread is gone."""
    try:
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except (IOError, OSError):
        return None


def stopped_or_traced(pid):
    """["thread TID: State S, TracerPid N", ...] for each thread of pid left
    stopped (t, T) or traced; threads that end meanwhile are passed over."""
    bad = []
    for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
        st = task_status(pid, tid)
        if st is None:
            continue
        if st["State"][0] in "tT" or st["TracerPid"] != "0":
            bad.append("thread %s: State %s, TracerPid %s" % (tid, st["State"], st["TracerPid"]))
    return bad


def as_user(uid, why=""):
    """The prefix (setpriv) that runs a command as uid, with no capabilities."""
    import shutil
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        skip("setpriv (util-linux) is not installed" + (": " + why if why else ""))
    return [setpriv, "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "--inh-caps=-all"]


def world_copy(path, name=None):
    """A copy of path (named name) in a fresh 0755 directory, removed by
    cleanup(): the checkout or build tree may sit under a 0700 home another
    user cannot enter; a renamed copy is also how an embedded interpreter looks."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="pykill-test-")
    at_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    os.chmod(d, 0o755)
    copy = os.path.join(d, name or os.path.basename(path))
    shutil.copy(path, copy)
    os.chmod(copy, 0o755)
    return copy


# --- running commands and pykill -------------------------------------------

def run(argv, timeout=60, **kw):
    """argv to its end: the CompletedProcess with .out and .err decoded."""
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, **kw)
    res.out = res.stdout.decode("utf-8", "replace")
    res.err = res.stderr.decode("utf-8", "replace")
    return res


def show(argv, res):
    return "`%s` exited %d\n  stdout: %r\n  stderr: %r" % (" ".join(argv), res.returncode, res.out, res.err)


def run_pykill(binary, *args, **kw):
    """pykill ARGS...: (exit code, stdout, stderr). A run longer than timeout
    (60 s) is a hang: it is killed and error() is told."""
    timeout = kw.pop("timeout", 60)
    error = kw.pop("error", fail)
    argv = [binary] + [str(a) for a in args]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        error("pykill %s hung (killed after %d s)" % (" ".join(argv[1:]), timeout))
        raise
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def pykill_json(binary, *args, **kw):
    """run_pykill with --json output: (exit code, parsed stdout or None, stderr)."""
    rc, out, err = run_pykill(binary, *args, **kw)
    try:
        doc = json.loads(out) if out.strip() else None
    except ValueError:
        (kw.get("error") or fail)("pykill %s printed no JSON (exit %d): %r %s" % (
            " ".join(str(a) for a in args), rc, out[-2000:], err))
        raise
    return rc, doc, err


# --- target processes ------------------------------------------------------

class LineReader(object):
    """Lines from a file descriptor, with deadlines (select)."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.eof = False

    def read(self, timeout):
        """What one read gives within timeout: True if data came, False on
        timeout, None at end of file."""
        if self.eof:
            return None
        if not select.select([self.fd], [], [], max(timeout, 0))[0]:
            return False
        data = os.read(self.fd, 1 << 16)
        if not data:
            self.eof = True
            return None
        self.buf += data
        return True

    def take(self):
        """The complete lines read so far (decoded), removed from the buffer."""
        lines = []
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            lines.append(line.decode("utf-8", "replace"))
        return lines

    def readline(self, timeout):
        """The next line; None on timeout or end of file."""
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            if not self.read(deadline - time.time()):
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")


class Events(object):
    """A list of lines a process said (self.events) and expect(): the first
    one starting with a prefix, taken off the list, waited for until a
    deadline. A subclass reads: lines(timeout) adds what comes within timeout
    to self.events (False: nothing more can come); and says what is missing:
    missing(prefix, timeout, about), whose answer expect() returns (or it
    raises). expect_timeout is the default timeout."""

    expect_timeout = 10

    def expect(self, prefix, timeout=None, about=None):
        """The first line starting with prefix (the ones before it are kept);
        missing(prefix, timeout, about) if none comes within timeout."""
        timeout = self.expect_timeout if timeout is None else timeout
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.startswith(prefix):
                    return self.events.pop(i)
            left = deadline - time.time()
            if left <= 0 or self.lines(left) is False:
                return self.missing(prefix, timeout, about)


class Target(Events):
    """A target process: prefix + [python, script, EV_FD, CMD_FD] + args.

    It writes lines on EV_FD (events, answers; its first line starting with
    `ready` is the handshake) and reads commands on CMD_FD. With stdio, it
    gets no fds: it answers on stdout and reads commands on stdin. Its
    output (stdout and stderr, or stderr with stdio) is kept for failure
    messages. error(message) is told what goes wrong (default fail);
    on_line(line) sees every line as it is read; details(), if given, adds
    to the message when an expected line does not come (the target's threads).

    The ready line's text after "ready " is self.ready_text; ready=None
    waits for none. popen_kw go to subprocess.Popen (preexec_fn,
    start_new_session)."""

    def __init__(self, python, script, args=(), prefix=(), env=None, cwd=None, pass_fds=(), ready="ready",
                 ready_timeout=30, error=fail, on_line=None, details=None, stdio=False,
                 **popen_kw):
        self.error = error
        self.on_line = on_line
        self.details = details
        self.events = []
        env = clean_env() if env is None else env
        argv = list(prefix) + [python, script]
        args = [a if isinstance(a, bytes) else str(a) for a in args]  # bytes as they are (names not UTF-8)
        if stdio:
            self.proc = subprocess.Popen(argv + args, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, pass_fds=tuple(pass_fds), env=env, cwd=cwd,
                                         **popen_kw)
            self.cmd = self.proc.stdin.fileno()
            self.reader = LineReader(self.proc.stdout.fileno())
        else:
            ev_r, ev_w = os.pipe()
            cmd_r, cmd_w = os.pipe()
            self.proc = subprocess.Popen(argv + [str(ev_w), str(cmd_r)] + args,
                                         pass_fds=(ev_w, cmd_r) + tuple(pass_fds), env=env, cwd=cwd,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen_kw)
            os.close(ev_w)
            os.close(cmd_r)
            self.cmd = cmd_w
            self.reader = LineReader(ev_r)
        started.append(self.proc)
        self.pid = self.proc.pid
        self.stdio = stdio
        self.ready_text = None
        if ready is not None:
            line = self.expect(ready, ready_timeout)
            if line is not None:
                self.ready_text = line[len(ready):].lstrip(" ")

    def lines(self, timeout):
        """Read what comes within timeout into self.events; error() if the target ended."""
        got = self.reader.read(timeout)
        if got is None:
            out = self.output()
            self.error("target exited (status %s): %s" % (self.proc.returncode, out[-2000:]))
        for line in self.reader.take():
            if self.on_line:
                self.on_line(line)
            self.events.append(line)

    def drain(self):
        """Take in what the target has written so far, without waiting."""
        self.lines(0)

    def readline(self, timeout=10):
        """The next line in order; None if none comes within timeout or the target ended."""
        if self.events:
            return self.events.pop(0)
        line = self.reader.readline(timeout)
        if line is not None and self.on_line:
            self.on_line(line)
        return line

    def missing(self, prefix, timeout, details=None):
        """error() when an expected line did not come (expect()'s about: a
        details() for this call)."""
        details = details or self.details
        self.error("target never said %r; events: %r%s" % (
            prefix, self.events[-20:], ("; its threads: " + details()) if details else ""))
        return None

    def expect_json(self, prefix, timeout=10):
        return json.loads(self.expect(prefix + " ", timeout)[len(prefix) + 1:])

    def send(self, cmd):
        data = (cmd + "\n").encode()
        os.write(self.cmd, data)

    def ask(self, cmd, timeout=10):
        """Send cmd; its answer is the next line (None if none comes)."""
        self.send(cmd)
        return self.readline(timeout)

    def quit(self):
        """Send "quit": error() unless the target then exits 0 (what it printed
        in the message); its output."""
        self.send("quit")
        out = self.output()
        if self.proc.returncode != 0:
            self.error("target exited %s: %s" % (self.proc.returncode, out))
        return out

    def output(self, timeout=20):
        """Everything the target printed, once it has ended (killed after timeout)."""
        if self.proc.stdout is None or self.stdio:
            self.proc.wait()
            return ""
        try:
            out = self.proc.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out = self.proc.communicate()[0]
        return (out or b"").decode(errors="replace")

    def close(self):
        """Kill it if it still runs, and close the pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.stdio:
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except (OSError, ValueError):
                    pass
            return
        for fd in (self.reader.fd, self.cmd):
            try:
                os.close(fd)
            except OSError:
                pass
