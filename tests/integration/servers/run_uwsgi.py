#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Thread identity against a real uwsgi (issue #11): list and raise in its worker.

  run_uwsgi.py PYKILL CASE

CASE is how uwsgi runs uwsgi_app.py (4 threads, one worker):
  master        --master: the worker is forked from the master, which
                initialised Python; uwsgi does not call PyOS_AfterFork, so the
                worker's main thread state still names the master's thread
  lazy          --master --lazy-apps: the app is loaded in the worker, Python
                still initialised in the master
  nomaster      no master; the app mounted twice (/a, /b): one interpreter per
                mount, whose thread states uwsgi creates on the main thread
                and swaps in on each core's thread
  mounts        --master and two mounts (subinterpreters and fork)
  mounts-lazy   the same with --lazy-apps
  single        --master, two mounts, --single-interpreter

The test fills every core with a request spinning in a Python loop (the app
announces each one's TID on a FIFO), checks `pykill list --json` (every thread
state on a live thread of the worker; each spinning request's frame on the
row of its own TID, in the right interpreter; no spinning frame on an idle
state) and `pykill ps`, then raises RuntimeError in each spinning request
(the main thread's by TID, then by ident; the others by TID) and checks that
it landed in that request only: its client gets a 500 naming it, the others
keep spinning, /ok is served, and at the end the worker serves 4 requests at
once (a barrier). With two interpreters it also checks the refusals: an
--interp that names an idle state, and an idle thread whose states none can
tell apart. uwsgi is started on a loopback port chosen at run time (a socket
bound here, passed down); nothing sleeps: every wait is on the FIFO or on an
HTTP answer. The master (and any worker left) is killed by PID on every path.
Exits 0/1, 77 (naming what is missing) to skip.
"""
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
import pktest  # noqa: E402
CORES = 4
ANSWER_WAIT = 3  # seconds a client waits for an answer that should not come
APP = os.path.join(HERE, "uwsgi_app.py")
CASES = {
    "master": dict(master=True, lazy=False, mounts=False, single=False),
    "lazy": dict(master=True, lazy=True, mounts=False, single=False),
    "nomaster": dict(master=False, lazy=False, mounts=True, single=False),
    "mounts": dict(master=True, lazy=False, mounts=True, single=False),
    "mounts-lazy": dict(master=True, lazy=True, mounts=True, single=False),
    "single": dict(master=True, lazy=False, mounts=True, single=True),
}


Failed = pktest.Fail


class Skipped(Exception):
    pass


def task_tids(pid):
    try:
        return set(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except OSError:
        return set()


class Server(pktest.Events):
    """uwsgi on a socket bound here; its events FIFO; its clients."""

    expect_timeout = 30  # s

    def __init__(self, case, tmp):
        self.case = case
        self.opts = CASES[case]
        self.tmp = tmp
        self.proc = None
        self.pids = set()  # every uwsgi process seen: killed by PID at the end
        self.fifo = os.path.join(tmp, "events")
        os.mkfifo(self.fifo)
        # Read end opened read-write: never EOF, never blocks the app's open.
        self.fifo_fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        self.buf = b""
        self.events = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.log_path = os.path.join(tmp, "uwsgi.log")

    def start(self, uwsgi):
        o = self.opts
        argv = [uwsgi, "--need-plugin", "python3",
                "--http-socket", "fd://%d" % self.sock.fileno(),
                "--processes", "1", "--threads", str(CORES), "--enable-threads", "--need-app",
                "--die-on-term", "--chdir", HERE]
        if o["master"]:
            argv += ["--master"]
        if o["lazy"]:
            argv += ["--lazy-apps"]
        if o["mounts"]:
            argv += ["--mount", "/a=" + APP, "--mount", "/b=" + APP, "--manage-script-name"]
        else:
            argv += ["--wsgi-file", APP]
        if o["single"]:
            argv += ["--single-interpreter"]
        env = dict(os.environ, PK_SERVERS_FIFO=self.fifo, PK_SERVERS_CORES=str(CORES))
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        log = open(self.log_path, "wb")
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     pass_fds=(self.sock.fileno(),), env=env)
        log.close()
        self.pids.add(self.proc.pid)
        # Ready: an HTTP answer (the connection is queued on the socket until
        # a worker accepts it). uwsgi that exits instead says why in its log.
        status, body = self.get(self.prefix("a") + "/ok", timeout=60)
        if status != 200:
            raise Failed("uwsgi did not answer /ok: %s %r" % (status, body))
        f = body.split()
        self.worker, self.worker_ident = int(f[1]), int(f[3])
        self.pids.add(self.worker)
        if o["master"] and self.worker == self.proc.pid:
            raise Failed("with --master the worker should be a child of the master")
        if not o["master"] and self.worker != self.proc.pid:
            raise Failed("without --master the uwsgi process should be the worker")

    def prefix(self, script):
        return "/" + script if self.opts["mounts"] else ""

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def get(self, path, timeout=60):
        """One request; (status, body), or (None, why) if it failed."""
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                log = self.log_tail()
                if "unable to load" in log.lower() or "UNABLE to load" in log:
                    raise Skipped("uwsgi cannot load its python3 plugin (install uwsgi-plugin-python3): %s"
                                  % log[-300:])
                raise Failed("uwsgi exited (%s):\n%s" % (self.proc.returncode, log))
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=max(1.0, deadline - time.time()))
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                return resp.status, resp.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as e:
                if time.time() > deadline:
                    return None, repr(e)
                # Only a refused or reset connection (uwsgi still starting)
                # comes back early; wait for uwsgi to change, not for time.
                select.select([], [], [], 0.05)
            finally:
                conn.close()

    def spawn(self, path):
        """A request in its own thread: .result is (status, body) once done."""
        c = threading.Thread(target=lambda: setattr(c, "result", self.get(path, timeout=90)), daemon=True)
        c.result = None
        c.path = path
        c.start()
        return c

    def read_events(self, timeout):
        r, _, _ = select.select([self.fifo_fd], [], [], max(0.0, timeout))
        if r:
            try:
                self.buf += os.read(self.fifo_fd, 65536)
            except BlockingIOError:
                pass
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.events.append(line.decode())

    def lines(self, timeout):
        if self.proc.poll() is not None:
            raise Failed("uwsgi exited (%s):\n%s" % (self.proc.returncode, self.log_tail()))
        self.read_events(min(timeout, 1.0))

    def missing(self, prefix, timeout, about):
        raise Failed("no event %r within %d s (events: %s)\nuwsgi log:\n%s"
                     % (prefix, timeout, self.events, self.log_tail()))

    def drain(self):
        self.read_events(0)
        return list(self.events)

    def stop(self):
        """The master (or the lone worker) by PID, then anything left of it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uwsgi: SIGINT ends master and workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in sorted(self.pids):
            if pid == (self.proc.pid if self.proc else None):
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.close(self.fifo_fd)
        self.sock.close()


def pykill(argv, timeout=120):
    """pktest.run: the CompletedProcess with .out and .err."""
    return pktest.run(argv, timeout=timeout)


def show(argv, res):
    return "`%s` exited %d\n  stdout: %s\n  stderr: %s" % (" ".join(argv), res.returncode, res.out, res.err)


def run(pk, case, tmp):
    uwsgi = shutil.which("uwsgi")
    if uwsgi is None:
        raise Skipped("uwsgi is not installed (Debian: uwsgi-core uwsgi-plugin-python3)")
    srv = Server(case, tmp)
    try:
        srv.start(uwsgi)
        check(pk, srv)
    finally:
        srv.stop()


def list_json(pk, pid):
    argv = [pk, "list", "--json", str(pid)]
    res = pykill(argv)
    if res.returncode != 0:
        raise Failed(show(argv, res))
    return json.loads(res.out), argv, res


def raise_in(pk, srv, thread, *extra, expect_rc=0):
    argv = [pk, "raise", "--json", str(srv.worker), str(thread), "RuntimeError"] + list(extra)
    res = pykill(argv)
    if res.returncode != expect_rc:
        raise Failed("expected exit %d: %s" % (expect_rc, show(argv, res)))
    return (json.loads(res.out) if res.returncode in (0, 3, 8) else None), argv, res


def check(pk, srv):
    o = srv.opts
    W = srv.worker
    subinterps = o["mounts"] and not o["single"]
    forked = o["master"]
    scripts = ["a", "b"] if o["mounts"] else ["a"]
    spinning = {}  # tid -> dict(script, ident, interp, client)
    expected_caught = []
    refusals = []

    def fire(script):
        c = srv.spawn(srv.prefix(script) + "/spin")
        ev = srv.expect("spin ").split()
        # spin SCRIPT PID TID IDENT INTERP
        tid = int(ev[3])
        if int(ev[2]) != W:
            raise Failed("a request was served by process %s, not the worker %d" % (ev[2], W))
        if tid in spinning:
            raise Failed("two spinning requests announced thread %d" % tid)
        spinning[tid] = dict(script=ev[1], ident=int(ev[4]), interp=int(ev[5]), client=c)
        return tid

    def landed(tid, how):
        """The exception landed in that request, and in no other."""
        s = spinning.pop(tid)
        ev = srv.expect("caught %s %d " % (s["script"], tid))
        if not ev.endswith(" RuntimeError"):
            raise Failed("raise by %s: request on thread %d caught %r" % (how, tid, ev))
        expected_caught.append(ev)
        srv.expect("done %s %d" % (s["script"], tid))
        s["client"].join(90)
        status, body = s["client"].result or (None, "no answer")
        if status != 500 or body.strip() != "RuntimeError in %d" % tid:
            raise Failed("raise by %s: the client of the request on thread %d got %s %r, not 500 "
                         "'RuntimeError in %d'" % (how, tid, status, body, tid))
        caught = [e for e in srv.drain() if e.startswith("caught ")]
        if caught:
            raise Failed("raise by %s in thread %d: other requests caught exceptions too: %s" % (how, tid, caught))
        for other in spinning.values():
            if other["client"].result is not None:
                raise Failed("a request still spinning got an answer: %r" % (other["client"].result,))

    def check_list(where):
        snap, argv, res = list_json(pk, W)
        live = task_tids(W)
        states = snap["threads"]
        ctx = "%s: %s" % (where, json.dumps(states, indent=1))
        for t in states:
            if t["tid"] == 0 or t["tid"] not in live:
                raise Failed("thread state %s (interp %d) is not on a live thread of worker %d (tid %d; tasks %s)"
                             "\n%s" % (t.get("tstate"), t["interp"], W, t["tid"], sorted(live), ctx))
            if t.get("idle") and any(f["function"] == "spin" for f in t["frames"]):
                raise Failed("an idle state holds a spinning request's frame\n" + ctx)
        rows = [t for t in states if not t.get("idle")]
        if len(set(t["tid"] for t in rows)) != len(rows):
            raise Failed("two rows for one OS thread\n" + ctx)
        if snap.get("os_threads") != len(rows) or len(rows) != CORES:
            raise Failed("os_threads %s, %d rows, %d cores\n%s" % (snap.get("os_threads"), len(rows), CORES, ctx))
        for tid, s in spinning.items():
            row = [t for t in rows if t["tid"] == tid][0]
            if not row["frames"] or row["frames"][0]["function"] != "spin" or \
                    not row["frames"][0]["file"].endswith("uwsgi_app.py"):
                raise Failed("the request spinning on thread %d is not on its row\n%s" % (tid, ctx))
            want = s["interp"] if s["interp"] >= 0 else (1 if subinterps and s["script"] == "/b" else 0)
            if row["interp"] != want or (subinterps and (row["interp"] != 0) != (s["script"] == "/b")):
                raise Failed("the request of %s on thread %d runs in interpreter %d, its row says %d\n%s"
                             % (s["script"], tid, want, row["interp"], ctx))
            if row.get("tid_from") != "stack":
                raise Failed("the spinning state on thread %d was not found from its stack\n%s" % (tid, ctx))
            # A uwsgi core in every interpreter: its shape (what raise says and
            # refuses by) does not depend on the mount's interpreter.
            if row.get("shape") != "uwsgi" or row.get("shape_state") != "busy":
                raise Failed("the request of %s on thread %d is shaped %s/%s, not a busy uwsgi core\n%s"
                             % (s["script"], tid, row.get("shape"), row.get("shape_state"), ctx))
        main = [t for t in rows if t["tid"] == W][0]
        if not main["main"] and main["interp"] == 0:
            raise Failed("the worker's main thread row is not flagged main\n" + ctx)
        core0 = [t for t in states if t["tid"] == W and t["interp"] == 0]
        if forked and not all(t.get("inherited") for t in core0):
            raise Failed("the worker's main-interpreter state came from the master: not marked inherited\n" + ctx)
        if not forked and any(t.get("inherited") for t in states):
            raise Failed("nothing was forked, yet a state is marked inherited\n" + ctx)
        return snap

    # A: every core spins; the main thread is among them.
    for i in range(CORES):
        fire(scripts[i % len(scripts)])
    if W not in spinning:
        raise Failed("the worker's main thread %d serves no request: %s" % (W, sorted(spinning)))
    snap = check_list("every core spinning")
    text = pykill([pk, "list", str(W)])
    if text.returncode != 0:
        raise Failed(show([pk, "list", str(W)], text))
    if forked and "inherited across fork" not in text.out:
        raise Failed("list does not say the main thread's state was inherited across fork:\n" + text.out)
    if "without a Python thread state" in text.out:
        raise Failed("list counts a core thread as native:\n" + text.out)
    argv = [pk, "ps", "--json", str(W)]
    res = pykill(argv)
    ps = json.loads(res.out)["processes"] if res.returncode == 0 else []
    if len(ps) != 1 or ps[0]["threads"] != CORES or ps[0].get("thread_states") != len(snap["threads"]):
        raise Failed("ps should count %d OS threads and %d states: %s" % (CORES, len(snap["threads"]),
                                                                         show(argv, res)))

    # Never queued on an idle state: a core thread running /b has an idle
    # state of interpreter 0; asked for it, raise refuses and nothing lands.
    if subinterps:
        other_b = [t for t, s in spinning.items() if t != W and s["script"] == "/b"]
        if other_b:
            _, argv, res = raise_in(pk, srv, other_b[0], "--interp", "0", expect_rc=7)
            if "idle" not in res.err:
                raise Failed("refusal does not say the state is idle: " + show(argv, res))
            refusals.append("idle state of interpreter 0")

    # B: the main thread's request, by TID.
    w_script = spinning[W]["script"]
    out, argv, res = raise_in(pk, srv, W)
    if out["verdict"] != "delivered" or out["tid"] != W:
        raise Failed("raise by TID in the main thread: " + show(argv, res))
    landed(W, "TID %d" % W)

    # C: the only free core is the main thread's: a new request lands there
    # (the other interpreter's, with two); raised by its ident.
    tid = fire("b" if o["mounts"] and w_script == "/a" else "a")
    if tid != W:
        raise Failed("the new request should run on the only free core, the main thread %d, not %d" % (W, tid))
    check_list("main thread spinning again")
    ident = spinning[W]["ident"]
    out, argv, res = raise_in(pk, srv, "0x%x" % ident)
    if out["verdict"] != "delivered" or out["tid"] != W:
        raise Failed("raise by ident 0x%x: %s" % (ident, show(argv, res)))
    landed(W, "ident 0x%x" % ident)

    # D: the other requests still spin; a new one is served.
    status, body = srv.get(srv.prefix("a") + "/ok")
    if status != 200 or int(body.split()[2]) != W:
        raise Failed("/ok after the raises: %s %r" % (status, body))

    # E: every other request, by TID.
    for tid in sorted(spinning):
        out, argv, res = raise_in(pk, srv, tid)
        if out["verdict"] != "delivered" or out["tid"] != tid:
            raise Failed("raise by TID %d: %s" % (tid, show(argv, res)))
        landed(tid, "TID %d" % tid)

    # F: the worker still serves CORES requests at once.
    clients = [srv.spawn(srv.prefix("a") + "/barrier") for _ in range(CORES)]
    for c in clients:
        c.join(90)
    results = [c.result for c in clients]
    if any(r is None or r[0] != 200 for r in results) or len(set(r[1].split()[2] for r in results)) != CORES:
        raise Failed("%d concurrent requests after the raises: %s" % (CORES, results))

    # G: an idle main thread with a state per interpreter: none can be told
    # active, so raise refuses naming them; --interp 0 picks one. That one
    # is a uwsgi core waiting for a request: its shape refuses too (the
    # exception would fail the next request), and the command the refusal
    # offers keeps --interp; forced, it is pending in C code and withdrawn,
    # so no later request gets it.
    if subinterps:
        _, argv, res = raise_in(pk, srv, W, expect_rc=7)
        if "cannot be told" not in res.err or "--interp" not in res.err:
            raise Failed("ambiguous refusal: " + show(argv, res))
        refusals.append("ambiguous idle main thread")
        _, argv, res = raise_in(pk, srv, W, "--interp", "0", expect_rc=7)
        if "waiting for work" not in res.err or "raise --force --interp=0 %d %d" % (srv.worker, W) not in res.err:
            raise Failed("the idle core's refusal: " + show(argv, res))
        refusals.append("idle core refused by its shape, --interp kept")
        out, argv, res = raise_in(pk, srv, W, "--interp", "0", "--force", "--wait", "0.2", "--withdraw-if-pending",
                                  expect_rc=8)
        if out["verdict"] != "withdrawn" or out.get("interp") != 0:
            raise Failed("--interp 0 on the idle main thread: " + show(argv, res))
        status, body = srv.get(srv.prefix("a") + "/ok")
        if status != 200:
            raise Failed("/ok after the withdrawn exception: %s %r" % (status, body))
        refusals.append("--interp 0 picked, withdrawn")

    caught = [e for e in srv.drain() if e.startswith("caught ")]
    if caught:
        raise Failed("exceptions landed where none was raised: %s" % caught)
    if srv.case == "master":
        refusals.append(uncaught(pk, srv))
    print("ok: %s: %d exceptions, each in its own request (%s); checked: %s" % (
        srv.case, len(expected_caught), ", ".join(expected_caught), ", ".join(refusals) or "no refusal case"))


def one_request(srv, path):
    """A request in its own thread, sent once (a closed connection is an
    answer here, not a reason to send it again): .result is (status, body)
    or (None, what happened)."""
    def go():
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            c.result = (resp.status, resp.read().decode("utf-8", "replace"))
        except (OSError, http.client.HTTPException) as e:
            c.result = (None, type(e).__name__)
        finally:
            conn.close()
    c = threading.Thread(target=go, daemon=True)
    c.result = None
    c.start()
    return c


def uncaught(pk, srv):
    """What uwsgi does with each exception the application does not catch
    (/hang), raised by pykill into the request: the client's answer, the
    request's finally block, the core and the worker afterwards. SystemExit
    is refused, then forced, last (it takes the core away)."""
    W = srv.worker
    table = []
    for exc in ("RuntimeError", "TimeoutError", "KeyboardInterrupt", "SystemExit"):
        c = one_request(srv, "/hang")
        ev = srv.expect("hang ").split()
        tid = int(ev[3])
        argv = [pk, "raise", "--json", str(W), str(tid), exc]
        res = pykill(argv)
        if exc == "SystemExit":
            if res.returncode != 7 or "this core stops serving for good" not in res.err:
                raise Failed("SystemExit into a uwsgi core should be refused: " + show(argv, res))
            argv.append("--force")
            res = pykill(argv)
        if res.returncode != 0 or json.loads(res.out)["verdict"] != "delivered":
            raise Failed("%s into a uwsgi core: %s" % (exc, show(argv, res)))
        srv.expect("done / %d" % tid)
        # An answer comes as the request unwinds; one that has not come
        # within ANSWER_WAIT after its finally block ran is not coming.
        c.join(ANSWER_WAIT)
        answer = c.result or (None, "no answer")
        # The worker afterwards (the same process): 2 * CORES requests,
        # one after the other.
        served = sum(1 for _ in range(2 * CORES) if one_request_now(srv, "/ok") == W)
        snap, _, _ = list_json(pk, W)
        row = [t for t in snap["threads"] if t["tid"] == tid and not t.get("idle")]
        where = [f["function"] for f in row[0]["frames"]] if row else []
        table.append((exc, answer, served, where))
        if exc != "SystemExit":
            # uwsgi logs the traceback and closes the connection.
            if answer != (None, "RemoteDisconnected") or served != 2 * CORES or where:
                raise Failed("%s into a uwsgi core: the client got %r, the worker served %d of %d, the core is "
                             "in %r\nuwsgi log:\n%s" % (exc, answer, served, 2 * CORES, where, srv.log_tail()))
        # Forced: uwsgi finalizes Python in that core, which waits in
        # threading._shutdown for good; the other cores go on.
        elif answer != (None, "no answer") or served != 2 * CORES or "_shutdown" not in where:
            raise Failed("SystemExit (forced) into a uwsgi core: the client got %r, the worker served %d of %d, "
                         "the core is in %r\nuwsgi log:\n%s" % (answer, served, 2 * CORES, where, srv.log_tail()))
    return "uncaught: " + "; ".join("%s: client %s, worker served %d/%d, core %s" % (
        exc, answer[0] or answer[1], served, 2 * CORES, "in " + where[0] if where else "free")
        for exc, answer, served, where in table)


def one_request_now(srv, path):
    """The PID that answered path with 200, or None."""
    c = one_request(srv, path)
    c.join(60)
    status, body = c.result or (None, "")
    return int(body.split()[1]) if status == 200 else None


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        sys.exit("usage: run_uwsgi.py PYKILL {%s}" % ",".join(CASES))
    pk, case = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        pktest.skip("needs root (ptrace of uwsgi's worker, a child of the master)")
    tmp = tempfile.mkdtemp(prefix="pykill-uwsgi-")
    # A SIGTERM from ctest's timeout still stops uwsgi (run's finally).
    signal.signal(signal.SIGTERM, lambda *a: sys.exit("FAIL: terminated"))
    try:
        run(pk, case, tmp)
    except Skipped as e:
        pktest.skip(str(e))
    except Failed as e:
        pktest.fail("%s: %s" % (case, e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
