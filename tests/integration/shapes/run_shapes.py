#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pykill raise against real servers: it must say what an exception does in
the thread's shape before doing anything, refuse what ends a pool thread for
good or the server (issue #11, items 5 and 7), and what it says must be what
happens.

  run_shapes.py SERVER PYKILL PYTHON

SERVER is one of gunicorn (gthread worker), celery (threads pool, kombu's
filesystem transport), asyncio, gevent (pywsgi, monkey-patched), thread
(plain threading.Thread workers), pool (a ThreadPoolExecutor server),
waitress, cheroot (CherryPy's WSGI server) and twisted (WSGIResource on
the reactor's thread pool).
Each server is started on a loopback listener chosen now (passed as a file
descriptor), says "ready" on an event pipe, and runs requests whose handler
says "hang ID TID", spins in a Python loop, and says which exception landed.
For each server the test checks:
  - list: the shapes of its threads (and gevent's MainThread name and note);
  - SystemExit into the busy worker or loop is refused (exit 7) naming the
    consequence and suggesting RuntimeError, and nothing was queued: the
    handler still spins, list shows nothing pending, withdraw finds nothing;
    an idle worker, an idle loop, gevent's hub are refused too;
  - the default exception there is RuntimeError, and it fails that request
    only (a 500, or the task's failure), another request is served, and the
    server then serves N requests at once with N workers;
  - each of SystemExit, KeyboardInterrupt, RuntimeError, TimeoutError (with
    --force where refused) does what pykill says it does (the table in
    man/pykill.1, WORKER SHAPES): the pool thread gone for good and the pool
    one worker short, the server exited, the task gone without a trace...
Exits 0, 1 on failure, 77 (naming what is missing) to skip.
"""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shapeslib import (HERE, Fail, Http, Server, check, cleanup, get, list_threads, listener, need_module,  # noqa: E402
                       pykill, skip, thread_alive, together, wait_thread_gone)
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
from pktest import wait_blocked  # noqa: E402

N = 4            # workers of every server
ANSWER_WAIT = 3  # seconds a client waits for an answer that should not come

PYKILL = None
FREE_THREADED = False  # the target interpreter is a free-threaded build (set in main)


def raise_json(pid, tid, exc=None, *extra):
    args = ["raise", "--json"] + list(extra) + [pid, tid] + ([exc] if exc else [])
    rc, out, err = pykill(PYKILL, *args)
    try:
        r = json.loads(out)
    except ValueError:
        raise Fail("pykill %s: exit %d, no JSON: %r %r" % (" ".join(map(str, args)), rc, out, err))
    return rc, r, err


def expect_refused(pid, tid, exc, says, what):
    """exc refused into tid (exit 7, verdict refused, the consequence named
    on stderr and in the JSON), nothing queued for it."""
    rc, r, err = raise_json(pid, tid, exc)
    check(rc == 7 and r["verdict"] == "refused", "%s: %s was not refused: exit %d %r" % (what, exc, rc, r))
    check(says in (r.get("consequence") or {}).get("text", "") and r["consequence"]["harm"] == "refuse",
          "%s: %s refused without saying %r: %r" % (what, exc, says, r["consequence"]))
    check("refused, nothing done" in err and says in err and "--force" in err,
          "%s: %s: the message does not say it plainly: %r" % (what, exc, err))
    nothing_queued(pid, tid, what)
    return r


def nothing_queued(pid, tid, what):
    t = list_threads(PYKILL, pid).get(tid)
    check(t is not None, "%s: thread %d is gone after a refusal" % (what, tid))
    check(not t["async_exc_pending"], "%s: something is queued for %d after a refusal: %r" % (what, tid, t))
    rc, out, err = pykill(PYKILL, "withdraw", "--json", pid, tid)
    check(rc == 0 and json.loads(out)["withdrawn"] is None,
          "%s: withdraw found something queued after a refusal: exit %d %s %s" % (what, rc, out, err))


def expect_delivered(pid, tid, exc, *extra):
    rc, r, err = raise_json(pid, tid, exc, *extra)
    check(rc == 0 and r["verdict"] in ("delivered", "ended"),
          "%s into %d (%s): exit %d %r %s" % (exc or "the default", tid, " ".join(extra), rc, r, err))
    return r


# ------------------------------------------------------------ servers

class HttpServer(object):
    """One of the HTTP servers; pid is the process whose threads serve
    (gunicorn's worker, not its arbiter)."""

    def __init__(self, kind, python, workers=N):
        self.kind, self.python, self.workers = kind, python, workers
        self.tmp = tempfile.mkdtemp(prefix="pk-shapes-%s-" % kind)
        self.starts = 0
        self.start()

    def start(self):
        self.starts += 1
        lsock = listener()
        self.port = lsock.getsockname()[1]
        fd = lsock.fileno()
        if self.kind == "gunicorn":
            argv = [self.python, "-m", "gunicorn", "-c", os.path.join(HERE, "shapes_gunicorn_conf.py"),
                    "-k", "gthread", "--threads", str(self.workers), "-w", "1", "--timeout", "300",
                    "-b", "fd://%d" % fd, "shapes_app:app"]
        elif self.kind == "asyncio":
            argv = [self.python, os.path.join(HERE, "srv_asyncio.py"), str(fd)]
        elif self.kind == "gevent":
            argv = [self.python, os.path.join(HERE, "srv_gevent.py"), str(fd)]
        elif self.kind in ("waitress", "cheroot", "twisted"):
            argv = [self.python, os.path.join(HERE, "srv_%s.py" % self.kind), str(fd), str(self.workers)]
        else:
            argv = [self.python, os.path.join(HERE, "srv_threads.py"), self.kind, str(fd), str(self.workers)]
        self.srv = Server(argv, pass_fds=(fd,), log_path=os.path.join(self.tmp, "server-%d.log" % self.starts))
        lsock.close()
        ready = self.srv.expect("ready ", 120, "the %s server" % self.kind)
        self.pid = int(ready.split()[1]) if self.kind == "gunicorn" else self.srv.proc.pid

    def restart(self):
        self.srv.stop()
        self.start()

    def alive(self):
        return self.srv.alive() and os.path.exists("/proc/%d" % self.pid)

    def hang(self, rid):
        """A request that hangs in the handler: (its connection, the TID running it)."""
        h = Http(self.port, "/hang/%s" % rid)
        ev = self.srv.expect("hang %s " % rid, 30, "the %s server" % self.kind)
        return h, int(ev.split()[2])

    def landed(self, rid, exc):
        self.srv.expect("landed %s %s" % (rid, exc), 10, "the handler of %s" % rid)

    def capacity(self, n, tag):
        """How many of n requests at once were all being handled together."""
        return together(self.port, n, "%s-%d" % (tag, self.starts))[0]

    def stop(self):
        self.srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def shapes_of(pid):
    return dict((tid, (t.get("shape"), t.get("shape_state"))) for tid, t in list_threads(PYKILL, pid).items())


def idle_worker(pid, shape, timeout=10):
    """A thread of that shape waiting for work. Polled: the worker that
    answered the last request may still be handing its result over."""
    deadline = time.time() + timeout
    while True:
        seen = shapes_of(pid)
        for tid, (s, state) in seen.items():
            if s == shape and state == "idle":
                return tid
        if time.time() > deadline:
            raise Fail("no idle %s thread in %d: %r" % (shape, pid, seen))
        time.sleep(0.05)


def all_idle(s, shape, timeout=10):
    """The threads once all s.workers workers of that shape are idle and the
    main thread is in its own loop. Polled: after the last answer some
    workers may still be finishing (cheroot closing the connection, twisted
    handing the result to the reactor, waitress ending its service)."""
    deadline = time.time() + timeout
    while True:
        shapes = shapes_of(s.pid)
        workers = sorted(v for k, v in shapes.items() if k != s.pid)
        if workers == [(shape, "idle")] * s.workers and shapes.get(s.pid) == ("main", None):
            return shapes
        if time.time() > deadline:
            raise Fail("%s's threads are not all idle within %d s: %r" % (shape, timeout, shapes))
        time.sleep(0.05)


def check_request_only(s, tid, what):
    """After a request failed: another request is served, and N at once."""
    st, _ = get(s.port, "/ok")
    check(st == 200, "%s: a request after it got %r" % (what, st))
    got = s.capacity(s.workers, "after-" + what.replace(" ", "_"))
    check(got == s.workers, "%s: only %d of %d requests at once were served together" % (what, got, s.workers))
    if tid is not None:
        check(thread_alive(s.pid, tid), "%s: the worker thread %d is gone" % (what, tid))


def http_runtime_error(s, rid, via_default=True):
    """The default exception (RuntimeError there) fails that request only."""
    h, tid = s.hang(rid)
    other = None
    if s.kind in ("gunicorn", "thread", "pool", "waitress", "cheroot", "twisted"):
        other = get(s.port, "/ok")[0]  # served by another worker meanwhile
    r = expect_delivered(s.pid, tid, None if via_default else "RuntimeError")
    check(r["exception"] == "RuntimeError" and r["exception_default"] == via_default and
          r["consequence"]["harm"] == "none",
          "default exception into a busy %s worker: %r" % (s.kind, r))
    s.landed(rid, "RuntimeError")
    st = h.wait(10)
    check(st == 500, "RuntimeError: the client got %r, not a 500" % (st,))
    check(other in (None, 200), "RuntimeError: a request served meanwhile got %r" % (other,))
    check_request_only(s, tid, "RuntimeError")
    return tid


def http_timeout_error(s, rid, answer, harm):
    h, tid = s.hang(rid)
    r = expect_delivered(s.pid, tid, "TimeoutError")
    check(r["consequence"]["harm"] == harm, "TimeoutError: harm %r, want %r: %r" % (
        r["consequence"]["harm"], harm, r["consequence"]))
    s.landed(rid, "TimeoutError")
    st = h.wait(10)
    check(st == answer, "TimeoutError: the client got %r, want %r" % (st, answer))
    check_request_only(s, tid, "TimeoutError")


def pool_loses_thread(s, rid, exc, says, left):
    """exc refused into a busy pool thread; forced, the thread ends for
    good and the pool serves one request fewer at once."""
    h, tid = s.hang(rid)
    expect_refused(s.pid, tid, exc, says, "%s into a busy %s worker" % (exc, s.kind))
    check(not s.srv.saw("landed %s" % rid), "%s: the handler got an exception after a refusal" % exc)
    r = expect_delivered(s.pid, tid, exc, "--force")
    check(r["forced"], "%s --force: not marked forced: %r" % (exc, r))
    s.landed(rid, exc)
    check(wait_thread_gone(s.pid, tid, 10), "%s --force: the pool thread %d did not end" % (exc, tid))
    st = h.wait(ANSWER_WAIT)
    check(st in (None, "closed"), "%s --force: the client got %r" % (exc, st))
    check(s.alive(), "%s --force: the server exited" % exc)
    got = s.capacity(left, "left-" + exc)
    check(got == left, "%s --force: %d workers should be left, %d requests of %d were served together" %
          (exc, left, got, left))
    got = s.capacity(left + 1, "short-" + exc)
    check(got < left + 1, "%s --force: the pool still serves %d at once: the thread was replaced" % (exc, left + 1))
    return st


def server_ends(s, rid, exc, says):
    """exc refused into the busy loop; forced, the server exits."""
    if not s.alive():
        s.restart()
    h, tid = s.hang(rid)
    expect_refused(s.pid, tid, exc, says, "%s into a busy %s loop" % (exc, s.kind))
    r = expect_delivered(s.pid, tid, exc, "--force")
    check(r["forced"], "%s --force: not marked forced: %r" % (exc, r))
    s.landed(rid, exc)
    check(s.srv.wait_exit(20), "%s --force: the %s server did not exit" % (exc, s.kind))
    st = h.wait(10)
    s.restart()
    return st


# ------------------------------------------------------------ scenarios

def sc_gunicorn(python):
    need_module(python, "gunicorn")
    s = HttpServer("gunicorn", python)
    results = {}
    try:
        check(s.capacity(N, "fill") == N, "gunicorn does not serve %d requests at once" % N)
        shapes = shapes_of(s.pid)
        check(sorted(v for k, v in shapes.items() if k != s.pid) == [("pool", "idle")] * N and
              shapes[s.pid] == ("main", None), "gunicorn's threads: %r" % shapes)
        # An idle pool thread: whatever is raised lands in the pool's loop.
        idle = idle_worker(s.pid, "pool")
        expect_refused(s.pid, idle, "RuntimeError", "lose the job it takes next", "RuntimeError into an idle pool thread")
        # A busy one: SystemExit refused; the default (RuntimeError) is a 500.
        h, tid = s.hang("se-refused")
        check(shapes_of(s.pid)[tid] == ("gunicorn", "busy"), "the hung worker: %r" % (shapes_of(s.pid)[tid],))
        r = expect_refused(s.pid, tid, "SystemExit", "ends this pool thread for good", "SystemExit into gthread")
        check(r["suggest"] == "RuntimeError", "no RuntimeError suggested: %r" % r)
        check(not s.srv.saw("landed se-refused", 0.2), "the handler got an exception after a refusal")
        r = expect_delivered(s.pid, tid, None)
        check(r["exception"] == "RuntimeError" and r["exception_default"], "gthread's default: %r" % r)
        s.landed("se-refused", "RuntimeError")
        check(h.wait(10) == 500, "the refused request did not get its 500 once RuntimeError came")
        check_request_only(s, tid, "RuntimeError")
        results["RuntimeError"] = "500, worker goes on"
        http_timeout_error(s, "te", "closed", "note")
        # Logged as a socket error, with the traceback, as pykill says.
        check(s.srv.logged("Socket error processing request", 10), "TimeoutError: gunicorn did not log a socket error")
        results["TimeoutError"] = "connection closed without an answer, logged as a socket error"
        pool_loses_thread(s, "se", "SystemExit", "ends this pool thread for good", N - 1)
        results["SystemExit"] = "refused; forced: pool thread gone, no answer"
        pool_loses_thread(s, "ki", "KeyboardInterrupt", "ends this pool thread for good", N - 2)
        results["KeyboardInterrupt"] = "refused; forced: pool thread gone, no answer"
    finally:
        s.stop()
    return results


def sc_pool(python):
    s = HttpServer("pool", python)
    results = {}
    try:
        check(s.capacity(N, "fill") == N, "the pool does not serve %d requests at once" % N)
        shapes = shapes_of(s.pid)
        check(sorted(v for k, v in shapes.items() if k != s.pid) == [("pool", "idle")] * N and
              shapes[s.pid] == ("main", None), "the pool server's threads: %r" % shapes)
        idle = idle_worker(s.pid, "pool")
        expect_refused(s.pid, idle, "SystemExit", "lose the job it takes next", "SystemExit into an idle pool thread")
        http_runtime_error(s, "rt")
        results["RuntimeError"] = "500, thread goes on"
        http_timeout_error(s, "te", 500, "none")
        results["TimeoutError"] = "500, thread goes on"
        pool_loses_thread(s, "se", "SystemExit", "ends this pool thread for good", N - 1)
        results["SystemExit"] = "refused; forced: pool thread gone (its done-callback re-raised it)"
        pool_loses_thread(s, "ki", "KeyboardInterrupt", "ends this pool thread for good", N - 2)
        results["KeyboardInterrupt"] = results["SystemExit"]
    finally:
        s.stop()
    # An idle worker, forced: the exception fires when it takes its next
    # job, which is lost, and the thread with it. One worker: no other takes
    # the jobs, and a pool never replaces a thread.
    s = HttpServer("pool", python, workers=1)
    try:
        check(get(s.port, "/ok")[0] == 200, "a one-worker pool does not serve")
        idle = idle_worker(s.pid, "pool")
        rc, r, err = raise_json(s.pid, idle, "RuntimeError", "--force", "--wait", "0.3")
        check(rc == 3 and r["verdict"] == "pending" and r["forced"], "RuntimeError --force into an idle pool "
              "thread: exit %d %r" % (rc, r))
        lost = Http(s.port, "/ok")
        check(lost.wait(ANSWER_WAIT) in (None, "closed"), "the next job was served: %r" % (lost.status,))
        lost.close()
        check(wait_thread_gone(s.pid, idle, 10), "the idle pool thread survived its next job")
        st, _ = get(s.port, "/ok", timeout=ANSWER_WAIT)
        check(st is None, "a request after the pool lost its only thread got %r" % (st,))
        results["RuntimeError, idle"] = "refused; forced: next job lost, thread gone"
    finally:
        s.stop()
    results["churn"] = pool_churn(python, CHURN_RAISES)
    results["churn, contended GIL"] = pool_churn(python, CHURN_CONTENDED_RAISES, contended=True)
    results["GIL held by C code"] = pool_gil_held(python)
    return results


# futex(2): the worker's sleep on the GIL.
SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(os.uname()[4])


def gil_disabled(python):
    """A free-threaded build running without its GIL (3.13t+)."""
    out = __import__("subprocess").check_output(
        [python, "-c", "import sys; print(int(not getattr(sys, '_is_gil_enabled', lambda: True)()))"])
    return out.strip() == b"1"


def version_tuple(python):
    out = __import__("subprocess").check_output([python, "-c", "import sys; print('%d %d' % sys.version_info[:2])"])
    return tuple(int(x) for x in out.split())


def pool_gil_held(python):
    """RuntimeError into a worker asleep on the GIL that the main thread
    holds in a C call. 3.13+: the write path waits, then refuses, saying
    --force writes anyway (the worker may be in the eval loop's check that
    takes a new exception only after the job); --force queues it. Older
    versions queue it at once. Either way it fails the job once the GIL
    is free, and the worker lives. A free-threaded build without its GIL:
    nothing waits, the job fails at once."""
    tmp = tempfile.mkdtemp(prefix="pk-shapes-gilheld-")
    srv = Server([python, os.path.join(HERE, "srv_gilheld.py")], log_path=os.path.join(tmp, "gilheld.log"))
    try:
        worker = int(srv.expect("ready ", 60, "the GIL-holding program").split()[1])
        pid = srv.proc.pid
        if gil_disabled(python):
            rc, r, err = raise_json(pid, worker, "RuntimeError")
            check(rc == 0 and r["verdict"] == "delivered", "no GIL: want delivered at once: %d %r %s" % (rc, r, err))
            srv.expect("job-failed RuntimeError", 10, "the GIL-holding program")
            check(thread_alive(pid, worker), "no GIL: the worker ended: %s" % srv.tail(12))
            return "no GIL (free-threaded): delivered at once beside the C call, the worker lives"
        wait_blocked(pid, worker, "the worker, waiting for the GIL", syscall=SYS_FUTEX, limit=5,
                     error=lambda msg: check(False, msg))
        rc, r, err = raise_json(pid, worker, "RuntimeError", "--wait", "0.3")
        if version_tuple(python) >= (3, 13):
            # The last try found it asleep on the GIL, or (woken by the
            # GIL's timed wait, stopped while running) inside the check.
            check(rc == 7 and "at each of" in (r.get("error") or "") and
                  ("asleep on its interpreter's GIL" in r["error"] or "(_Py_HandlePending)" in r["error"]) and
                  "--force writes anyway" in (r.get("hint") or ""),
                  "GIL held, 3.13+: want a refusal naming the GIL wait and --force: exit %d %r" % (rc, r))
            rc, r, err = raise_json(pid, worker, "RuntimeError", "--force", "--wait", "0.3")
            said = "refused, then queued with --force"
        else:
            said = "queued at once"
        check(rc == 3 and r["verdict"] == "pending", "GIL held: want the exception queued (exit 3): %d %r %s" % (
            rc, r, err))
        srv.expect("released", 30, "the GIL-holding program")
        srv.expect("job-failed RuntimeError", 10, "the GIL-holding program")
        check(thread_alive(pid, worker), "GIL held: the worker ended: %s" % srv.tail(12))
        return "%s; the job failed once the GIL was free, the worker lives" % said
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


CHURN_RAISES = 100
# Before the write path waited out _Py_HandlePending (3.13+), the contended
# program's worker ended within the first 1-4 raises; with only the return
# address checked, in 1 run of 15.
CHURN_CONTENDED_RAISES = 50
# A path that refused every raise would keep the worker alive too: some
# must fail their job. How many depends on the load (a worker found
# handing a result over is refused): 30-50 of 50 on an idle machine, 13
# on 2 cores under a parallel test run (sid 3.14); no share is asserted.


def pool_churn(python, raises, contended=False):
    """RuntimeError again and again into a worker that runs 2 ms jobs back
    to back: each raise is refused (between jobs), fails one job, or is
    taken back (its job ended before it fired) -- the worker never takes it
    between jobs, where it would end for good. contended: jobs of one C
    call, a thread spinning beside the worker (see srv_churn.py)."""
    tmp = tempfile.mkdtemp(prefix="pk-shapes-churn-")
    argv = [python, os.path.join(HERE, "srv_churn.py")] + (["contended"] if contended else [])
    srv = Server(argv, log_path=os.path.join(tmp, "churn.log"))
    try:
        srv.expect("ready ", 60, "the churn program")
        pid = srv.proc.pid
        workers = [tid for tid, t in list_threads(PYKILL, pid).items()
                   if tid != pid and (t.get("name") or "").startswith("ThreadPoolExecutor")]
        check(len(workers) == 1, "the churn program's pool threads: %r" % workers)
        worker = workers[0]
        verdicts = {}
        gave_up = 0
        for i in range(raises):
            rc, r, err = raise_json(pid, worker, "RuntimeError", "--wait", "1")
            key = r.get("verdict")
            verdicts[key] = verdicts.get(key, 0) + 1
            # Refused by the write path's own waits (not by the shape:
            # a worker found between jobs is refused by design).
            if rc == 7 and "at each of" in (r.get("error") or ""):
                gave_up += 1
            check((rc, key) in ((0, "delivered"), (7, "refused"), (8, "withdrawn")),
                  "churn raise %d: exit %d %r %s; the program said: %s" % (i, rc, r, err, srv.tail(12)))
            check(thread_alive(pid, worker), "churn raise %d (%s) ended the pool thread: %s" % (
                i, key, srv.tail(12)))
        # One failed job per raise delivered, no more.
        for _ in range(verdicts.get("delivered", 0)):
            srv.expect("job-failed RuntimeError", 10, "the churn program")
        check(not srv.saw("job-failed", 0.5), "churn: more jobs failed than raises were delivered (%r)" % verdicts)
        check("Exception in worker" not in srv.log_text(), "churn: the worker logged %s" % srv.tail(12))
        check(verdicts.get("delivered", 0) >= 1 and gave_up <= raises // 2,
              "churn: %r, %d of them given up by the write path: it refuses what it could deliver" % (
                  verdicts, gave_up))
        return "%d raises into %s: %s (%d given up by the write path); the worker lives" % (
            raises, "1 ms C-call jobs beside a spinning thread" if contended else "2 ms jobs", ", ".join(
            "%s %d" % kv for kv in sorted(verdicts.items())), gave_up)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def sc_thread(python):
    s = HttpServer("thread", python)
    results = {}
    try:
        check(s.capacity(N, "fill") == N, "the thread server does not serve %d requests at once" % N)
        shapes = shapes_of(s.pid)
        check(sorted(v for k, v in shapes.items() if k != s.pid) == [("thread", None)] * N and
              shapes[s.pid] == ("main", None), "the thread server's threads: %r" % shapes)
        http_runtime_error(s, "rt", via_default=False)
        results["RuntimeError"] = "500, thread goes on"
        http_timeout_error(s, "te", 500, "none")
        results["TimeoutError"] = "500, thread goes on"
        # The mission: `pykill raise PID TID SystemExit` into a plain thread,
        # as written, no confirmation: it ends that thread quietly.
        h, tid = s.hang("se")
        rc, out, err = pykill(PYKILL, "raise", s.pid, tid, "SystemExit")
        check(rc == 0 and "delivered" in out and "ends this thread quietly" in out,
              "SystemExit into a plain thread: exit %d %s %s" % (rc, out, err))
        s.landed("se", "SystemExit")
        check(wait_thread_gone(s.pid, tid, 10), "SystemExit: the thread did not end")
        check(h.wait(10) == "closed", "SystemExit: the client got %r" % (h.status,))
        check("Traceback" not in s.srv.log_text(), "SystemExit: threading printed a traceback")
        check(s.capacity(N - 1, "left-se") == N - 1, "SystemExit: the other workers do not serve")
        results["SystemExit"] = "thread ends quietly (the worker loop is gone)"
        # The default there is SystemExit too.
        h, tid = s.hang("default")
        r = expect_delivered(s.pid, tid, None)
        check(r["exception"] == "SystemExit" and r["exception_default"], "a plain thread's default: %r" % r)
        s.landed("default", "SystemExit")
        check(wait_thread_gone(s.pid, tid, 10), "the default: the thread did not end")
        h, tid = s.hang("ki")
        expect_delivered(s.pid, tid, "KeyboardInterrupt")
        s.landed("ki", "KeyboardInterrupt")
        check(wait_thread_gone(s.pid, tid, 10), "KeyboardInterrupt: the thread did not end")
        check("KeyboardInterrupt" in s.srv.log_text(), "KeyboardInterrupt: no traceback")
        results["KeyboardInterrupt"] = "thread ends, traceback"
        # The main thread, in accept(): SystemExit ends the program, refused.
        expect_refused(s.pid, s.pid, "SystemExit", "ends the program", "SystemExit into the main thread")
        # RuntimeError is said (it ends the program unless caught), not
        # refused: pending in accept(), it fires with the next connection.
        rc, r, err = raise_json(s.pid, s.pid, "RuntimeError", "--wait", "0.3")
        check(rc == 3 and r["consequence"]["harm"] == "note" and "main thread" in r["consequence"]["text"],
              "RuntimeError into the main thread: exit %d %r" % (rc, r))
        Http(s.port, "/ok", timeout=5).close()
        if FREE_THREADED and not s.srv.wait_exit(20):
            # Free-threaded builds (3.13t, 2 runs of 2): the main thread's
            # first check after accept() returns runs a scheduled GC (or a
            # refcount merge) before it looks at the queued exception; the
            # GC frees the workers ended above and runs threading's WeakSet
            # callback on this thread, whose own check takes the exception,
            # and a callback's exception is only printed ("Exception ignored
            # in"). CPython's order in _Py_HandlePending, not pykill's: it
            # must be that, and nothing else, that kept the program alive.
            log = s.srv.log_text()
            tail = log[log.rfind("Exception ignored in"):]
            check("Exception ignored in" in log and "\nRuntimeError: " in tail,
                  "RuntimeError into the main thread: the program did not end:\n%s" % log[-2000:])
            results["main: RuntimeError"] = "swallowed by a callback the thread ran first (free-threaded)"
        else:
            check(s.srv.wait_exit(20), "RuntimeError into the main thread: the program did not end")
            results["main: RuntimeError"] = "program ends (said, not refused)"
    finally:
        s.stop()
    return results


def sc_asyncio(python):
    s = HttpServer("asyncio", python)
    results = {}
    try:
        shapes = shapes_of(s.pid)
        check(shapes[s.pid] == ("asyncio", "idle"), "the idle loop thread: %r" % shapes)
        expect_refused(s.pid, s.pid, None, "end run_forever", "the default into an idle event loop")
        check(s.alive() and get(s.port, "/ok")[0] == 200, "the loop does not serve after a refusal")
        h, tid = s.hang("refused")
        check(shapes_of(s.pid)[tid] == ("asyncio", "busy"), "the busy loop thread: %r" % (shapes_of(s.pid)[tid],))
        expect_refused(s.pid, tid, "SystemExit", "ends the event loop", "SystemExit into a busy loop")
        r = expect_delivered(s.pid, tid, None)
        check(r["exception"] == "RuntimeError" and r["exception_default"], "asyncio's default: %r" % r)
        s.landed("refused", "RuntimeError")
        check(h.wait(10) == 500, "RuntimeError: the client got %r" % (h.status,))
        check_request_only(s, tid, "RuntimeError")
        results["RuntimeError"] = "500, loop goes on"
        http_timeout_error(s, "te", 500, "none")
        results["TimeoutError"] = "500, loop goes on"
        st = server_ends(s, "se", "SystemExit", "ends the event loop")
        results["SystemExit"] = "refused; forced: server exits (client: %s)" % st
        st = server_ends(s, "ki", "KeyboardInterrupt", "ends the event loop")
        results["KeyboardInterrupt"] = "refused; forced: server exits (client: %s)" % st
        # Forced into the idle loop: it fires in the loop's own code.
        rc, r, err = raise_json(s.pid, s.pid, "RuntimeError", "--force", "--wait", "0.3")
        check(rc in (0, 3) and r["forced"], "RuntimeError --force into the idle loop: exit %d %r" % (rc, r))
        try:
            Http(s.port, "/ok", timeout=5).close()
        except OSError:
            pass
        check(s.srv.wait_exit(20), "RuntimeError --force into the idle loop: the server goes on")
        results["RuntimeError, idle"] = "refused; forced: server exits"
    finally:
        s.stop()
    return results


def sc_gevent(python):
    need_module(python, "gevent")
    s = HttpServer("gevent", python)
    results = {}
    try:
        threads = list_threads(PYKILL, s.pid)
        main = threads[s.pid]
        check(main["name"] == "MainThread", "monkey-patched MainThread is named %r" % (main["name"],))
        check(main["shape"] == "gevent-hub" and main["note"] and "not shown" in main["note"],
              "the hub thread: %r" % main)
        rc, out, err = pykill(PYKILL, "list", s.pid)
        check(rc == 0 and "gevent-hub" in out and "greenlets waiting on the hub are not shown" in out,
              "list does not say the waiting greenlets are not shown: %s" % out)
        expect_refused(s.pid, s.pid, "RuntimeError", "gevent's hub", "RuntimeError into the hub")
        check(get(s.port, "/ok")[0] == 200, "the hub does not serve after a refusal")
        h, tid = s.hang("refused")
        t = list_threads(PYKILL, s.pid)[tid]
        check(t["shape"] == "greenlet" and "others" in (t["note"] or ""), "the running greenlet: %r" % t)
        expect_refused(s.pid, tid, "SystemExit", "ends the process", "SystemExit into a greenlet")
        r = expect_delivered(s.pid, tid, None)
        check(r["exception"] == "RuntimeError" and r["exception_default"], "a greenlet's default: %r" % r)
        s.landed("refused", "RuntimeError")
        check(h.wait(10) == 500, "RuntimeError: the client got %r" % (h.status,))
        check_request_only(s, tid, "RuntimeError")
        results["RuntimeError"] = "500, server goes on"
        http_timeout_error(s, "te", "closed", "note")
        check("IndexError" in s.srv.log_text(), "TimeoutError: pywsgi did not fail on its arguments")
        results["TimeoutError"] = "connection closed (pywsgi's IndexError), server goes on"
        st = server_ends(s, "se", "SystemExit", "ends the process")
        results["SystemExit"] = "refused; forced: server exits (client: %s)" % st
        st = server_ends(s, "ki", "KeyboardInterrupt", "ends the process")
        results["KeyboardInterrupt"] = "refused; forced: server exits (client: %s)" % st
    finally:
        s.stop()
    return results


class Celery(object):
    def __init__(self, python):
        self.tmp = tempfile.mkdtemp(prefix="pk-shapes-celery-")
        self.queue = os.path.join(self.tmp, "queue")
        self.staging = os.path.join(self.tmp, "staging")
        os.mkdir(self.queue)
        os.mkdir(self.staging)
        os.environ["PK_SHAPES_CELERY_DIR"] = self.queue
        os.environ["PK_SHAPES_CELERY_OUT"] = self.staging
        import shapes_celery  # the same app as the worker's, to send tasks
        self.app = shapes_celery
        self.srv = Server([python, "-m", "celery", "-A", "shapes_celery", "worker", "-P", "threads", "-c", str(N),
                           "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                          env={"PK_SHAPES_CELERY_DIR": self.queue, "PK_SHAPES_CELERY_OUT": self.queue},
                          log_path=os.path.join(self.tmp, "worker.log"))
        self.srv.expect("ready ", 180, "the celery worker")
        self.pid = self.srv.proc.pid
        self.rounds = 0

    def send(self, task, *args):
        """Send, then hand the finished message file to the worker whole."""
        r = task.delay(*args)
        for f in os.listdir(self.staging):
            os.rename(os.path.join(self.staging, f), os.path.join(self.queue, f))
        return r

    def capacity(self):
        self.rounds += 1
        rid = "r%d" % self.rounds
        for k in range(N):
            self.send(self.app.together, "%s-%d" % (rid, k), rid, N)
        return sum(1 for _ in range(N) if self.srv.expect("together %s-" % rid, 60).split()[2] == "ok")

    def hang(self, rid):
        task = self.send(self.app.hang, rid)
        return task.id, int(self.srv.expect("hang %s " % rid, 60).split()[2])

    def log_lines(self, task_id):
        return [l for l in self.srv.log_text().splitlines() if task_id in l]

    def stop(self):
        self.srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def sc_celery(python):
    need_module(python, "celery")
    need_module(python, "kombu.transport.filesystem")
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        skip("the celery test sends tasks from the driver: run it under %s" % python)
    c = Celery(python)
    results = {}
    try:
        check(c.capacity() == N, "celery does not run %d tasks at once" % N)
        # The pool threads go back to waiting once their task has ended and
        # been acknowledged: poll pykill's reading for that state (bounded).
        deadline = time.time() + 10
        shapes = shapes_of(c.pid)
        while time.time() < deadline and \
                sorted(v for k, v in shapes.items() if k != c.pid and v[0] in ("pool", "celery")) != \
                [("pool", "idle")] * N:
            time.sleep(0.05)
            shapes = shapes_of(c.pid)
        check(sorted(v for k, v in shapes.items() if k != c.pid and v[0] == "pool") == [("pool", "idle")] * N and
              shapes[c.pid] == ("main", None), "celery's threads: %r" % shapes)
        idle = idle_worker(c.pid, "pool")
        expect_refused(c.pid, idle, "SystemExit", "lose the job it takes next", "SystemExit into an idle celery thread")
        task_id, tid = c.hang("refused")
        check(shapes_of(c.pid)[tid] == ("celery", "busy"), "the task's thread: %r" % (shapes_of(c.pid)[tid],))
        expect_refused(c.pid, tid, "SystemExit", "the task vanishes", "SystemExit into a celery task")
        r = expect_delivered(c.pid, tid, None)
        check(r["exception"] == "RuntimeError" and r["exception_default"], "celery's default: %r" % r)
        c.srv.expect("landed refused RuntimeError", 10)
        c.srv.expect("postrun shapes_celery.hang FAILURE", 20)
        check(any("raised unexpected" in l for l in c.log_lines(task_id)), "RuntimeError: celery did not log the "
              "failure: %r" % c.log_lines(task_id))
        check(thread_alive(c.pid, tid) and c.capacity() == N, "RuntimeError: the pool is short")
        results["RuntimeError"] = "task failed and logged, pool goes on"
        task_id, tid = c.hang("te")
        expect_delivered(c.pid, tid, "TimeoutError")
        c.srv.expect("landed te TimeoutError", 10)
        c.srv.expect("postrun shapes_celery.hang FAILURE", 20)
        check(any("raised unexpected" in l for l in c.log_lines(task_id)), "TimeoutError: no failure logged")
        results["TimeoutError"] = results["RuntimeError"]
        for exc in ("SystemExit", "KeyboardInterrupt"):
            task_id, tid = c.hang(exc)
            expect_refused(c.pid, tid, exc, "the task vanishes", "%s into a celery task" % exc)
            r = expect_delivered(c.pid, tid, exc, "--force")
            check(r["forced"], "%s --force: %r" % (exc, r))
            c.srv.expect("landed %s %s" % (exc, exc), 10)
            # The task ends with no state: neither a success nor a failure,
            # and no log line but "received".
            c.srv.expect("postrun shapes_celery.hang None", 20)
            lines = c.log_lines(task_id)
            check(len(lines) == 1 and "received" in lines[0], "%s: the task left log lines: %r" % (exc, lines))
            check(thread_alive(c.pid, tid) and c.capacity() == N, "%s: the pool is short" % exc)
            results[exc] = "refused; forced: the task vanishes without a log line, pool goes on"
    finally:
        c.stop()
    return results

# ------------------------------------------------------------ thread servers
# waitress, cheroot and twisted's reactor pool: threads of their own looping
# over a queue of their own, none replaced when it ends.

THREAD_SERVERS = {"waitress": "waitress", "cheroot": "cheroot.wsgi", "twisted": "twisted.web.wsgi"}


def no_idle_stuck(s):
    """ps --stuck leaves the idle workers out: once list sees all N blocked
    for the duration, ps counts at most the main thread (in its poll)."""
    deadline = time.time() + 10
    while True:
        rc, out, err = pykill(PYKILL, "list", "--json", "--stuck=0.3s", s.pid)
        check(rc == 0, "list --stuck: exit %d %s" % (rc, err))
        blocked = [t for t in json.loads(out)["threads"] if t["tid"] != s.pid]
        if len(blocked) >= s.workers:
            break
        check(time.time() < deadline, "the idle %s workers are not blocked: %s" % (s.kind, out))
        time.sleep(0.1)
    rc, out, err = pykill(PYKILL, "ps", "--json", "--stuck=0.3s", s.pid)
    got = json.loads(out)["processes"][0]["stuck"]
    check(rc == 0 and got <= 1, "ps --stuck counts %r threads of %s (its idle workers among them): %s" % (
        got, s.kind, out))


def busy_request_only(s, rid, exc, answer, harm, says=None):
    """exc into a busy worker fails that request only: refused first where
    harm is "refuse" (then forced), the client gets answer (None: nothing
    within ANSWER_WAIT, the connection left open), the thread lives and the
    server serves N at once."""
    h, tid = s.hang(rid)
    extra = ()
    if harm == "refuse":
        expect_refused(s.pid, tid, exc, says, "%s into a busy %s worker" % (exc, s.kind))
        check(not s.srv.saw("landed %s" % rid), "%s: the handler got an exception after a refusal" % exc)
        extra = ("--force",)
    r = expect_delivered(s.pid, tid, exc, *extra)
    check(r["consequence"]["harm"] == harm and (says is None or says in r["consequence"]["text"]),
          "%s into a busy %s worker: %r" % (exc, s.kind, r["consequence"]))
    s.landed(rid, exc)
    st = h.wait(ANSWER_WAIT if answer is None else 10)
    check(st == answer, "%s: the client got %r, want %r" % (exc, st, answer))
    h.close()
    check_request_only(s, tid, exc)


def idle_loses_thread(kind, python, says):
    """An idle worker, forced: the exception fires when it takes the next
    request, which gets no answer, and the thread ends. One worker: no
    other takes the request."""
    s = HttpServer(kind, python, workers=1)
    try:
        check(get(s.port, "/ok")[0] == 200, "a one-worker %s does not serve" % kind)
        idle = idle_worker(s.pid, kind)
        expect_refused(s.pid, idle, "RuntimeError", says, "RuntimeError into an idle %s worker" % kind)
        rc, r, err = raise_json(s.pid, idle, "RuntimeError", "--force", "--wait", "0.3")
        check(rc == 3 and r["verdict"] == "pending" and r["forced"], "RuntimeError --force into an idle %s "
              "worker: exit %d %r" % (kind, rc, r))
        lost = Http(s.port, "/ok")
        check(lost.wait(ANSWER_WAIT) in (None, "closed"), "the next request was served: %r" % (lost.status,))
        lost.close()
        check(wait_thread_gone(s.pid, idle, 10), "the idle %s worker survived its next request" % kind)
        check(s.alive(), "the %s server exited" % kind)
    finally:
        s.stop()


def sc_thread_server(kind, python):
    need_module(python, THREAD_SERVERS[kind])
    s = HttpServer(kind, python)
    results = {}
    try:
        check(s.capacity(N, "fill") == N, "%s does not serve %d requests at once" % (kind, N))
        all_idle(s, kind)
        no_idle_stuck(s)
        h, tid = s.hang("shape")
        check(shapes_of(s.pid)[tid] == (kind, "busy"), "the hung worker: %r" % (shapes_of(s.pid)[tid],))
        expect_delivered(s.pid, tid, "RuntimeError")
        s.landed("shape", "RuntimeError")
        h.wait(10)
        h.close()
        http_runtime_error(s, "rt")
        results["RuntimeError"] = "500 (the default), thread goes on"
        if kind == "waitress":
            http_timeout_error(s, "te", 500, "none")
            results["TimeoutError"] = "500, thread goes on"
            for exc in ("SystemExit", "KeyboardInterrupt"):
                busy_request_only(s, exc, exc, None, "refuse", "never gets an answer")
                check(s.srv.logged("Exception when servicing", 10), "%s: waitress did not log it" % exc)
                results[exc] = "refused; forced: no answer (connection left open), thread goes on"
        elif kind == "cheroot":
            pool_loses_thread(s, "te", "TimeoutError", "IndexError", N - 1)
            check("IndexError" in s.srv.log_text(), "TimeoutError: cheroot did not fail on its arguments")
            results["TimeoutError"] = "refused; forced: connection closed, worker thread gone for good"
            s.restart()
            expect_refused(s.pid, idle_worker(s.pid, kind), "SystemExit", "whole server",
                           "SystemExit into an idle cheroot worker")
            for exc in ("SystemExit", "KeyboardInterrupt"):
                st = server_ends(s, exc, exc, "whole server")
                results[exc] = "refused; forced: the server exits (client: %s)" % st
        else:
            for exc in ("TimeoutError", "SystemExit", "KeyboardInterrupt"):
                busy_request_only(s, exc, exc, 500, "none", "500")
                results[exc] = "500, thread goes on"
    finally:
        s.stop()
    idle_loses_thread(kind, python, "for good")
    results["idle worker"] = "refused; forced: next request unanswered, thread gone for good"
    return results


SCENARIOS = {"gunicorn": sc_gunicorn, "celery": sc_celery, "asyncio": sc_asyncio, "gevent": sc_gevent,
             "thread": sc_thread, "pool": sc_pool}
for _kind in THREAD_SERVERS:
    SCENARIOS[_kind] = (lambda k: lambda python: sc_thread_server(k, python))(_kind)


def main():
    global PYKILL, FREE_THREADED
    server, PYKILL, python = sys.argv[1], sys.argv[2], sys.argv[3]
    if python.startswith(("sid:", "ft:")):
        sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
        from pktest import resolve_python  # skips (77), naming why, when not fetched or built
        python = resolve_python(python)
    if not os.path.exists(python):
        skip("%s is not installed" % python)
    res = __import__("subprocess").run([python, "-c", "import sys, sysconfig; print(sys.version_info >= (3, 8), "
                                        "sysconfig.get_config_var('Py_GIL_DISABLED') == 1)"],
                                       stdout=__import__("subprocess").PIPE)
    if res.stdout.split()[:1] != [b"True"]:
        skip("%s is older than 3.8 (the servers use threading.get_native_id)" % python)
    FREE_THREADED = res.stdout.split()[1:] == [b"True"]
    t0 = time.time()
    try:
        results = SCENARIOS[server](python)
    except Fail as e:
        print("FAIL: %s: %s" % (server, e))
        cleanup()
        sys.exit(1)
    except Exception:
        import traceback
        print("FAIL: %s: the driver broke:\n%s" % (server, traceback.format_exc()))
        cleanup()
        sys.exit(1)
    cleanup()
    print("ok: %s in %.0f s:" % (server, time.time() - t0))
    for exc, what in results.items():
        print("  %-20s %s" % (exc, what))


if __name__ == "__main__":
    main()
