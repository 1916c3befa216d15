# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""Target of run_insight.py: threads blocked on peers the driver knows.

Runs on every interpreter of the suite (2.7 and 3.6+).
  insight_target.py EV_FD CMD_FD [--lo-up]
Says "ready PID" on EV_FD, then reads commands from CMD_FD, one a line:
  sleep            a thread "sleeper" blocks in time.sleep(3600)
  tcp              a loopback TCP connection; "tcp-recv" blocks in recv on it
  unix             a socketpair; "unix-recv" blocks in recv on one end
  pipe FD          "pipe-read" blocks reading FD (a pipe the driver writes)
  flock PATH       reads 5 bytes of PATH, then "flock-wait" blocks in flock
                   (the driver holds the lock)
  gil              "gil-waiter" spins in Python; then "gil-holder" blocks in
                   libc sleep(3600) called through ctypes.PyDLL, which keeps
                   the GIL: the waiter waits for it for good (and so does
                   every other thread: the target answers no more commands)
  rlock            "rlock-holder" takes an RLock twice and a Lock, then
                   blocks in time.sleep(3600); "rlock-waiter" blocks
                   acquiring the RLock, "lock-waiter" the Lock (whose holder
                   CPython does not record)
  quit             exit 0
Each thread says "started NAME {json}" (its TID and what the driver checks)
just before its blocking call. --lo-up brings the loopback interface up
(in a fresh network namespace it is down).
"""
from __future__ import print_function

import fcntl
import json
import os
import socket
import struct
import sys
import threading
import time

EV_FD, CMD_FD = int(sys.argv[1]), int(sys.argv[2])
keep = []  # sockets and files the blocked threads use

try:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
except Exception:
    _libc = None


def gettid():
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    return _libc.syscall(186)  # SYS_gettid on x86_64


def say(line):
    os.write(EV_FD, (line + "\n").encode())


def started(name, **info):
    info["tid"] = gettid()
    say("started %s %s" % (name, json.dumps(info)))


def spawn(name, fn):
    t = threading.Thread(target=fn, name=name)
    t.daemon = True
    t.start()


def lo_up():
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sh14x", b"lo", 0))
    flags = struct.unpack("16sh14x", req)[1]
    fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))
    s.close()


def sleeper():
    started("sleeper")
    time.sleep(3600)


def tcp():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname())
    a = srv.accept()[0]
    keep.extend([srv, c, a])

    def run():
        started("tcp-recv", local="%s:%d" % c.getsockname(), remote="%s:%d" % c.getpeername(), fd=c.fileno())
        c.recv(10)
    spawn("tcp-recv", run)


def unix():
    a, b = socket.socketpair()
    keep.extend([a, b])

    def run():
        started("unix-recv", fd=a.fileno(), peer_fd=b.fileno())
        a.recv(10)
    spawn("unix-recv", run)


def pipe(fd):
    def run():
        started("pipe-read", fd=fd)
        os.read(fd, 10)
    spawn("pipe-read", run)


def flock(path):
    fd = os.open(path, os.O_RDONLY)  # unbuffered: the offset is what was read
    os.read(fd, 5)

    def run():
        started("flock-wait", fd=fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
    spawn("flock-wait", run)


def gil():
    if _libc is None:
        say("error no ctypes")
        return
    sleep = ctypes.PyDLL(None).sleep  # PyDLL: the call keeps the GIL

    def spin():
        started("gil-waiter")
        while True:
            pass

    def hold():
        started("gil-holder")
        sleep(3600)
    spawn("gil-waiter", spin)
    spawn("gil-holder", hold)


def rlock():
    rl, lk, held = threading.RLock(), threading.Lock(), threading.Event()

    def hold():
        rl.acquire()
        rl.acquire()
        lk.acquire()
        held.set()
        started("rlock-holder", ident=threading.current_thread().ident)
        time.sleep(3600)

    def wait_rlock():
        started("rlock-waiter")
        rl.acquire()

    def wait_lock():
        started("lock-waiter")
        lk.acquire()
    spawn("rlock-holder", hold)
    held.wait()
    spawn("rlock-waiter", wait_rlock)
    spawn("lock-waiter", wait_lock)


def main():
    if "--lo-up" in sys.argv:
        lo_up()
    say("ready %d" % os.getpid())
    buf = b""
    while True:
        data = os.read(CMD_FD, 4096)
        if not data:
            return 1
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            words = line.decode().split()
            if words == ["quit"]:
                return 0
            if words == ["sleep"]:
                spawn("sleeper", sleeper)
            elif words == ["tcp"]:
                tcp()
            elif words == ["unix"]:
                unix()
            elif words[0] == "pipe":
                pipe(int(words[1]))
            elif words == ["gil"]:
                gil()
            elif words == ["rlock"]:
                rlock()
            elif words[0] == "flock":
                flock(words[1])
            else:
                say("error unknown command %r" % line)


if __name__ == "__main__":
    sys.exit(main())
