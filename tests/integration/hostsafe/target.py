# SPDX-License-Identifier: MIT
"""A Python process that turns the paths of its own mappings against pykill.

  target.py READY_FD CMD_FD ACTION...

Runs under CPython 2.7 and 3.x, as root or as an unprivileged user. The
actions, in the order given:

  map:PATH       map one page of PATH read-only at the lowest free address
                 from 1 MiB up (below any executable's, so that pykill's
                 search of "*python*" files meets it first); the file
                 stays open
  plant:PATH=X   remove PATH if it exists, then put X there: "fifo" (a
                 named pipe nobody writes to) or "link:DEST" (a symbolic
                 link to DEST, which this process need not be able to read)
  flap           a thread unmaps and maps again every page of map:, in a
                 loop (/proc/PID/map_files/RANGE then fails at instants)
  truncate       a thread cuts every file of map: to half its size and
                 writes the rest back, in a loop (the page mapped here stays
                 inside the file, so this process never faults)
  chroot:DIR     chroot into DIR
  user:UID       set the group and user ids to UID, and make the process
                 dumpable again (so that UID may trace it)

A thread blocked reading a pipe nobody writes to is there for `pykill
raise`. Once everything is done (and a flap/truncate thread has made a
round) it writes "ready <pid> <tid of the blocked thread>" to READY_FD, then
reads CMD_FD: "quit" or end of file exits 0.
"""
import ctypes
import errno
import os
import sys
import threading

READY_FD, CMD_FD = int(sys.argv[1]), int(sys.argv[2])
ACTIONS = sys.argv[3:]

PROT_READ = 1
MAP_PRIVATE = 2
MAP_FIXED_NOREPLACE = 0x100000
PAGE = 4096
SYS_gettid = 186  # x86_64
PR_SET_DUMPABLE = 4

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.restype = ctypes.c_int
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]

mapped = []  # (path, fd, address)
rounds = [0]
round_done = threading.Event()


def as_bytes(s):
    # Python 2's str is bytes already: encoding it would import a codec,
    # which is out of reach after chroot:.
    return s if isinstance(s, bytes) else s.encode("ascii", "replace")


def die(msg):
    os.write(READY_FD, as_bytes("error %s\n" % msg))
    sys.exit(1)


def map_at(fd, addr):
    got = libc.mmap(addr, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0)
    if got is None or got == ctypes.c_void_p(-1).value:
        return ctypes.get_errno()
    if got != addr:  # a kernel without MAP_FIXED_NOREPLACE treats it as a hint
        libc.munmap(got, PAGE)
        return errno.EEXIST
    return 0


def do_map(path):
    fd = os.open(path, os.O_RDWR)
    addr = 0x100000
    while addr < 0x400000:
        err = map_at(fd, addr)
        if err == 0:
            mapped.append((path, fd, addr))
            return
        if err != errno.EEXIST:
            die("mmap %s: %s" % (path, os.strerror(err)))
        addr += 0x10000
    die("no free page below 4 MiB for %s" % path)


def do_plant(path, what):
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
    if what == "fifo":
        os.mkfifo(path, 0o666)
    elif what.startswith("link:"):
        os.symlink(what[len("link:"):], path)
    else:
        die("bad plant %r" % what)


def flap():
    while True:
        for path, fd, addr in mapped:
            libc.munmap(addr, PAGE)
            err = map_at(fd, addr)
            if err != 0:
                die("mmap again %s: %s" % (path, os.strerror(err)))
        rounds[0] += 1
        round_done.set()


def truncate():
    contents = []
    for path, fd, addr in mapped:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        contents.append(b"".join(chunks))
    while True:
        for (path, fd, addr), data in zip(mapped, contents):
            half = (len(data) // 2) & ~(PAGE - 1)
            if half < PAGE:
                half = PAGE
            os.ftruncate(fd, half)
            os.lseek(fd, half, os.SEEK_SET)
            rest = data[half:]
            while rest:
                rest = rest[os.write(fd, rest):]
        rounds[0] += 1
        round_done.set()


def gettid():
    return libc.syscall(SYS_gettid)


sleeper_tid = [0]
sleeper_started = threading.Event()
never_r, never_w = os.pipe()


def sleeper():
    sleeper_tid[0] = gettid()
    sleeper_started.set()
    os.read(never_r, 1)


def start(fn, name):
    t = threading.Thread(target=fn, name=name)
    t.daemon = True
    t.start()
    return t


loops = []
for action in ACTIONS:
    kind, _, arg = action.partition(":")
    if kind == "map":
        do_map(arg)
    elif kind == "plant":
        path, _, what = arg.partition("=")
        do_plant(path, what)
    elif kind == "flap":
        loops.append(flap)
    elif kind == "truncate":
        loops.append(truncate)
    elif kind == "chroot":
        os.chroot(arg)
        os.chdir("/")
    elif kind == "user":
        uid = int(arg)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    else:
        die("bad action %r" % action)

start(sleeper, "sleeper")
sleeper_started.wait()
for fn in loops:
    start(fn, fn.__name__)
if loops:
    round_done.wait()
os.write(READY_FD, as_bytes("ready %d %d\n" % (os.getpid(), sleeper_tid[0])))

buf = b""
while True:
    data = os.read(CMD_FD, 100)
    if not data:
        sys.exit(0)
    buf += data
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        if line == b"quit":
            sys.exit(0)
