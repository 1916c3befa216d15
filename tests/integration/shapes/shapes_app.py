# SPDX-License-Identifier: MIT
"""The request handlers every shapes server runs (WSGI for gunicorn and
gevent; the asyncio, thread and pool servers and celery call handle_hang and
barrier_wait directly).

  /ok               200 "ok TID"
  /hang/ID          says "hang ID TID", then spins in a Python loop inside
                    try/except/finally that says which exception landed
                    ("landed ID NAME") and "finally ID"; re-raises it
  /together/R/N     waits, with a time-out, until N requests of round R are
                    being handled at once: 200 if they were, 503 if not (so
                    N requests at once all get 200 only with N workers free)

Events go to the pipe whose fd is PK_SHAPES_EV, one line each (small writes
to a pipe are atomic, whoever writes them)."""
import os
import threading

EV = int(os.environ.get("PK_SHAPES_EV", "2"))
BARRIER_TIMEOUT = float(os.environ.get("PK_SHAPES_BARRIER_TIMEOUT", "5"))


def event(msg):
    os.write(EV, (msg + "\n").encode())


def native_tid():
    return threading.get_native_id()


def handle_hang(req_id):
    """Spin until an exception lands; say which, then let it go on."""
    event("hang %s %d" % (req_id, native_tid()))
    n = 0
    try:
        while True:
            n += 1
    except BaseException as e:
        event("landed %s %s" % (req_id, type(e).__name__))
        raise
    finally:
        event("finally %s" % req_id)


_barriers = {}
_barriers_lock = threading.Lock()


def barrier_wait(round_id, n):
    """True when n callers of round_id met within BARRIER_TIMEOUT."""
    with _barriers_lock:
        b = _barriers.get(round_id)
        if b is None:
            b = _barriers[round_id] = threading.Barrier(n)
    try:
        b.wait(BARRIER_TIMEOUT)
        return True
    except threading.BrokenBarrierError:
        return False


def app(environ, start_response):
    parts = environ["PATH_INFO"].strip("/").split("/")
    if parts[0] == "hang":
        handle_hang(parts[1])
    if parts[0] == "together":
        ok = barrier_wait(parts[1], int(parts[2]))
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"together\n" if ok else b"alone\n"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("ok %d\n" % native_tid()).encode()]
