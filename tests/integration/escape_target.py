# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""Target for tests/integration/run_escape.py (2.7 and 3.6+): a process whose
names are hostile to whoever prints them (issue #10, item 5).

  escape_target.py READY_FD CMD_FD SPEC TRUTH [ARG...]

SPEC is a JSON file of hex-encoded byte strings written by the test, so that
the test alone decides them: "names" (role -> thread name), "func" (a
function name), "file" (a code object's file name), "exc" (an exception
class name), "fifo" (a file name), "dir" (where to make the FIFOs). A 3.x
process turns bytes into str as Python does for file names (UTF-8,
surrogateescape); 2.7 keeps the bytes (its str). ARG... only makes the
command line hostile too.

Threads, each parked in a system call for good:
  nl, osc, bad, bidi  named from SPEC, blocked in os.read of a pipe; nl's
                      innermost frame is a function whose co_name (and
                      co_qualname) is "func" and co_filename is "file",
                      reading the FIFO named "fifo" (opened O_RDWR)
  osc, bad            an exception class named "exc", queued for them by the
                      program itself (PyThreadState_SetAsyncExc): it fires
                      when their read returns, unless withdrawn
  opener              blocked opening a FIFO for reading: openat(AT_FDCWD, ...)
  sleeper             time.sleep: a thread the call path may borrow
Once they are parked and the exceptions queued, the TIDs and idents go to
TRUTH as JSON and "ready PID" to READY_FD. On "quit" from CMD_FD every reader
is fed and joined; the target prints "outcome ROLE WHAT" (WHAT: "returned",
"Evil" for the class named "exc", or the name of the exception the thread
got) for each, then "target ok", and
exits 0 (1 and why if a thread did not end).
"""
from __future__ import print_function

import binascii
import ctypes
import json
import os
import sys
import threading
import time
import types

PY3 = sys.version_info[0] >= 3
READY_FD, CMD_FD, SPEC, TRUTH = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
libc = ctypes.CDLL(None, use_errno=True)

with open(SPEC) as f:
    spec = json.load(f)


def raw(key, d=spec):
    return binascii.unhexlify(d[key].encode("ascii"))


def text(b):
    """What Python itself makes of these bytes as a name: 3.x decodes as it
    does file names (surrogateescape), 2.7 keeps them (str is bytes)."""
    return b.decode("utf-8", "surrogateescape") if PY3 else b


names = dict((role, text(raw(role, spec["names"]))) for role in spec["names"])
FUNC, FILE, EXC = text(raw("func")), text(raw("file")), text(raw("exc"))
FIFO = os.path.join(raw("dir"), raw("fifo"))
OPEN_FIFO = os.path.join(raw("dir"), b"open-fifo")

if PY3:
    from threading import get_ident
else:
    from thread import get_ident

tids, idents, outcome = {}, {}, {}
Evil = type(EXC, (Exception,), {})


def gettid():
    return libc.syscall(186)  # SYS_gettid, x86_64


def crafted_reader():
    """A function named FUNC in a file named FILE: the names a code object
    carries are whatever compile() and code.replace() were given."""
    ns = {}
    exec(compile("def park(read, fd):\n    return read(fd, 1)\n", FILE, "exec"), ns)
    code = ns["park"].__code__
    if hasattr(code, "replace"):  # 3.8+
        kw = {"co_name": FUNC}
        if hasattr(code, "co_qualname"):  # 3.11+: the name pykill shows
            kw["co_qualname"] = FUNC
        code = code.replace(**kw)
    elif PY3:
        code = types.CodeType(code.co_argcount, code.co_kwonlyargcount, code.co_nlocals, code.co_stacksize,
                              code.co_flags, code.co_code, code.co_consts, code.co_names, code.co_varnames,
                              code.co_filename, FUNC, code.co_firstlineno, code.co_lnotab, code.co_freevars,
                              code.co_cellvars)
    else:
        code = types.CodeType(code.co_argcount, code.co_nlocals, code.co_stacksize, code.co_flags, code.co_code,
                              code.co_consts, code.co_names, code.co_varnames, code.co_filename, FUNC,
                              code.co_firstlineno, code.co_lnotab, code.co_freevars, code.co_cellvars)
    return types.FunctionType(code, ns)


os.mkfifo(FIFO)
os.mkfifo(OPEN_FIFO)
feeds = {}


def reader(role):
    tids[role] = gettid()
    idents[role] = get_ident()
    read = os.read
    try:
        if role == "nl":
            fd = os.open(FIFO, os.O_RDWR)  # does not wait for a writer; the read does
            feeds[role] = fd
            crafted_reader()(read, fd)
        else:
            r, w = os.pipe()
            feeds[role] = w
            read(r, 1)
        outcome[role] = "returned"
    except BaseException as e:  # SystemExit and the program's own class alike
        outcome[role] = "Evil" if isinstance(e, Evil) else type(e).__name__


def opener():
    tids["opener"] = gettid()
    idents["opener"] = get_ident()
    os.close(os.open(OPEN_FIFO, os.O_RDONLY))  # waits in openat(AT_FDCWD, ...) for a writer
    outcome["opener"] = "returned"


def sleeper():
    tids["sleeper"] = gettid()
    idents["sleeper"] = get_ident()
    time.sleep(3600)


threads = {}
for role in ("nl", "osc", "bad", "bidi"):
    threads[role] = threading.Thread(target=reader, args=(role,), name=names[role])
threads["opener"] = threading.Thread(target=opener, name="opener")
threads["sleeper"] = threading.Thread(target=sleeper, name="sleeper")
threads["sleeper"].daemon = True
for t in threads.values():
    t.start()

WANT = {"opener": ("257",), "sleeper": ("230", "35", "23", "270")}  # openat; clock_nanosleep, nanosleep, select


def parked(role):
    """Blocked in its system call, as /proc says (a condition, not a guess)."""
    try:
        with open("/proc/self/task/%d/syscall" % tids[role]) as f:
            nr = f.read().split()[0]
        with open("/proc/self/task/%d/stat" % tids[role]) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (IOError, OSError, KeyError):
        return False
    return state == "S" and nr in WANT.get(role, ("0",))


deadline = time.time() + 60
while not all(parked(role) for role in threads):
    if time.time() > deadline:
        print("target: threads did not park: %r" % tids, file=sys.stderr)
        sys.exit(2)
    time.sleep(0.005)

# The program queues an exception of its own class for two readers: it
# fires when their read returns, unless withdrawn.
set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
ident_type = ctypes.c_ulong if sys.version_info >= (3, 7) else ctypes.c_long
for role in ("osc", "bad"):
    if set_async(ident_type(idents[role]), ctypes.py_object(Evil)) != 1:
        print("target: PyThreadState_SetAsyncExc did not find %s" % role, file=sys.stderr)
        sys.exit(2)

with open(TRUTH, "w") as f:
    json.dump({"pid": os.getpid(), "tids": tids, "idents": idents}, f)
os.write(READY_FD, ("ready %d\n" % os.getpid()).encode())
cmd = os.read(CMD_FD, 100)  # the main thread parks here

for role, fd in feeds.items():
    os.write(fd, b"x")
fd = os.open(OPEN_FIFO, os.O_WRONLY)  # the opener is waiting: no wait here
os.close(fd)
stuck = []
for role, t in threads.items():
    if role != "sleeper":
        t.join(20)
        if t.is_alive():
            stuck.append(role)
for role in sorted(outcome):
    print("outcome %s %s" % (role, outcome[role]))
if stuck:
    print("target: FAILED: threads did not end: %s" % ", ".join(stuck))
    sys.exit(1)
print("target ok")
sys.exit(0)
