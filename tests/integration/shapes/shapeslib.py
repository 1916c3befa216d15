# SPDX-License-Identifier: MIT
"""Shared helpers of the shapes tests: real servers started on a loopback
listener chosen at run time, an event pipe every server process writes its
events to (ready, hang, landed, finally...), HTTP requests, and pykill.

Every process a test starts is in a session of its own and is killed, with
its group, on every path out (normal exit, failure, signal)."""
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
import pktest  # noqa: E402
from pktest import Fail, check, skip  # noqa: E402,F401

_servers = []  # Server objects to stop on the way out


@pktest.at_cleanup  # pktest.skip and fail run it
def cleanup():
    for s in list(_servers):
        s.stop()


def _on_signal(signum, frame):
    cleanup()
    sys.exit(128 + signum)


atexit.register(cleanup)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def need_module(python, module):
    """Skip unless `python -c 'import module'` works."""
    res = subprocess.run([python, "-c", "import " + module], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=120)
    if res.returncode != 0:
        skip("%s cannot import %s (install it: tests/install-deps.sh): %s" % (
            python, module, res.stdout.decode(errors="replace").strip().splitlines()[-1:]))


def listener():
    """A loopback listening socket on a port the kernel picks now; passed to
    the server as a file descriptor, so no other process can take the port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    s.set_inheritable(True)
    return s


class Server(pktest.Events):
    """A server process (its own session: killpg reaches its children too)
    writing "EVENT ARGS..." lines to the pipe whose fd is PK_SHAPES_EV.
    expect(prefix, timeout, what) names who should have said it."""

    expect_timeout = 30  # s

    def __init__(self, argv, env=None, pass_fds=(), cwd=None, log_path=None):
        ev_r, ev_w = os.pipe()
        e = dict(os.environ)
        e.pop("PYTHONPATH", None)
        e.update(env or {})
        e["PK_SHAPES_EV"] = str(ev_w)
        e["PYTHONPATH"] = HERE
        e["PYTHONUNBUFFERED"] = "1"
        self.log_path = log_path
        self.log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, env=e, pass_fds=(ev_w,) + tuple(pass_fds), cwd=cwd or HERE,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _servers.append(self)
        os.close(ev_w)
        self.reader = pktest.LineReader(ev_r)  # at its end every process holding the pipe has exited
        self.events = []

    def _read(self, timeout):
        """Whether lines came within timeout."""
        got = self.reader.read(timeout)
        self.events.extend(self.reader.take())
        return bool(got)

    def lines(self, timeout):
        self._read(timeout)
        return not self.reader.eof

    def missing(self, prefix, timeout, what):
        raise Fail("%s never said %r (events: %r)%s" % (what or "the server", prefix, self.events, self.tail()))

    def saw(self, prefix, timeout=0.0):
        """Whether an event starting with prefix comes within timeout (not taken)."""
        deadline = time.time() + timeout
        while True:
            if any(e.startswith(prefix) for e in self.events):
                return True
            left = deadline - time.time()
            if left <= 0 or self.reader.eof:
                self._read(0)
                return any(e.startswith(prefix) for e in self.events)
            self._read(left)

    def drain(self):
        while self._read(0):
            pass

    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def tail(self, n=25):
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
        except IOError:
            return ""
        return "\n  server output (last %d lines):\n    %s" % (n, "\n    ".join(lines[-n:]))

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def logged(self, text, timeout):
        """Whether text shows up in the server's output within timeout
        (polled: the server writes its log lines as they happen)."""
        deadline = time.time() + timeout
        while text not in self.log_text():
            if time.time() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self):
        if self in _servers:
            _servers.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        else:
            # The leader has gone; children it forked may not have.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait()
        os.close(self.reader.fd)
        if self.log is not subprocess.DEVNULL:
            self.log.close()


class Http(object):
    """One HTTP/1.0 request on its own connection, read in a thread: the
    answer's status, or "closed" (the server closed the connection without
    an answer), or None while nothing came (or nothing came before the
    connection's time-out)."""

    def __init__(self, port, path, timeout=60):
        self.path = path
        self.status = None
        self.body = b""
        self.done = threading.Event()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        data = b""
        timed_out = False
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            timed_out = True
        except OSError:
            pass
        if data.startswith(b"HTTP/"):
            self.status = int(data.split(b" ", 2)[1])
            self.body = data.split(b"\r\n\r\n", 1)[-1]
        elif not timed_out:
            self.status = "closed"
        self.done.set()

    def wait(self, timeout):
        """The status once the connection ends, or None if it has not within timeout."""
        self.done.wait(timeout)
        return self.status if self.done.is_set() else None

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def get(port, path, timeout=30):
    h = Http(port, path, timeout)
    st = h.wait(timeout + 1)
    h.close()
    return st, h.body


def together(port, n, round_id, timeout=20):
    """n concurrent requests that each wait, in the server, until all n are
    being handled at once (a barrier with a time-out): how many got 200."""
    reqs = [Http(port, "/together/%s/%d" % (round_id, n), timeout) for _ in range(n)]
    codes = [r.wait(timeout + 1) for r in reqs]
    for r in reqs:
        r.close()
    return sum(1 for c in codes if c == 200), codes


def pykill(binary, *args, **kw):
    """pktest.run_pykill: (exit code, stdout, stderr); a hang is a Fail."""
    return pktest.run_pykill(binary, *args, timeout=kw.get("timeout", 60), error=pktest.throw)


def list_threads(binary, pid):
    rc, out, err = pykill(binary, "list", "--json", pid)
    check(rc == 0, "pykill list --json %d: exit %d: %s" % (pid, rc, err))
    return dict((t["tid"], t) for t in json.loads(out)["threads"])


def thread_alive(pid, tid):
    return os.path.exists("/proc/%d/task/%d" % (pid, tid))


def wait_thread_gone(pid, tid, timeout):
    deadline = time.time() + timeout
    while thread_alive(pid, tid):
        if time.time() > deadline:
            return False
        # The kernel gives no event for another process's thread exiting:
        # poll /proc, a bounded number of times.
        time.sleep(0.01)
    return True
