# SPDX-License-Identifier: MIT
"""The WSGI application run_uwsgi.py serves through a real uwsgi (mounted once,
or twice as /a and /b: then each mount has its own interpreter unless
--single-interpreter).

Every line it writes goes to the FIFO named by PK_SERVERS_FIFO (one write per
line, shorter than PIPE_BUF: atomic among the worker's threads):
  GET .../ok       200 "ok PID TID IDENT SCRIPT"
  GET .../spin     "spin SCRIPT PID TID IDENT INTERP", then a Python loop that
                   never ends (it sleeps 0.5 ms every 20000 turns, so that
                   requests of other interpreters get the GIL); an exception
                   landing in it is reported
                   "caught SCRIPT TID EXCEPTION" and answered 500 "EXCEPTION in
                   TID"; "done SCRIPT TID" from its finally block
  GET .../hang     "hang SCRIPT PID TID", then the same loop, catching
                   nothing: what uwsgi itself does with the exception is
                   what the client sees; "done SCRIPT TID" from its finally
  GET .../barrier  waits at a threading.Barrier of PK_SERVERS_CORES parties:
                   200 only when that many requests are served at once
INTERP is the interpreter's ID (_xxsubinterpreters), -1 where it cannot be
had.
"""
import os
import threading
import time

FIFO = os.environ["PK_SERVERS_FIFO"]
barrier = threading.Barrier(int(os.environ["PK_SERVERS_CORES"]), timeout=60)


def announce(line):
    fd = os.open(FIFO, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def interp_id():
    try:
        import _xxsubinterpreters
        return int(_xxsubinterpreters.get_current())
    except Exception:
        return -1


def spin(script):
    tid = threading.get_native_id()
    announce("spin %s %d %d %d %d" % (script, os.getpid(), tid, threading.get_ident(), interp_id()))
    try:
        n = 0
        while True:
            n += 1
            # Python 3.11 asks for the GIL through the waiter's own
            # interpreter: a loop in another one never hears it. A short
            # sleep now and then hands the GIL over.
            if n % 20000 == 0:
                time.sleep(0.0005)
    except BaseException as e:
        announce("caught %s %d %s" % (script, tid, type(e).__name__))
        return "500 Internal Server Error", "%s in %d\n" % (type(e).__name__, tid)
    finally:
        announce("done %s %d" % (script, tid))


def hang(script):
    tid = threading.get_native_id()
    announce("hang %s %d %d" % (script, os.getpid(), tid))
    try:
        n = 0
        while True:
            n += 1
            if n % 20000 == 0:
                time.sleep(0.0005)
    finally:
        announce("done %s %d" % (script, tid))


def application(environ, start_response):
    script = environ.get("SCRIPT_NAME") or "/"
    path = environ.get("PATH_INFO", "")
    tid = threading.get_native_id()
    if path == "/spin":
        status, body = spin(script)
    elif path == "/hang":
        hang(script)
    elif path == "/barrier":
        barrier.wait()
        status, body = "200 OK", "barrier %d %d\n" % (os.getpid(), tid)
    elif path == "/ok":
        status, body = "200 OK", "ok %d %d %d %s\n" % (os.getpid(), tid, threading.get_ident(), script)
    else:
        status, body = "404 Not Found", "no %s\n" % path
    start_response(status, [("Content-Type", "text/plain")])
    return [body.encode()]
