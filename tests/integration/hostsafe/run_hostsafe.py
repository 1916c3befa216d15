#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests: a target must not turn pykill, run as root, against its host.

  run_hostsafe.py SCENARIO PYKILL PYTHON

pykill opens the files the target maps, and the target controls their paths
(issue #10, "harm to the host"). Each scenario starts a real CPython target
(tests/integration/hostsafe/target.py, as nobody when that user may run
PYTHON, else as root) that plants symbolic links to a root-only canary file
and FIFOs where its mapped files' paths point, then runs `pykill list`,
`pykill ps PID` and `pykill raise` against it:

  fallback  two "*python*" files mapped, then deleted and replaced by a link
            to the canary and by a FIFO (the names with and without
            " (deleted)"); pykill as root, as root without the right to
            /proc/PID/map_files (no CAP_SYS_ADMIN/CAP_CHECKPOINT_RESTORE: the
            path is all it has), and as nobody when the target is nobody.
            Every command must work (the interpreter is elsewhere).
  race      the same files, unmapped and mapped again in a loop: map_files
            fails at instants even for root. 15 rounds.
  replaced  the file that holds the interpreter (a copy) deleted and
            replaced: root must work (map_files); without map_files pykill
            must fail saying which file it could not open and why.
  chroot    the target, its interpreter file (a copy) inside DIR, chroots
            into DIR and becomes nobody: every variant must work (maps
            names the file as seen from pykill's root, not the target's).
  truncate  big "*python*" ELF files mapped and cut in half and restored in
            a loop while pykill reads them: pykill must never die of a
            signal (SIGBUS on a file mapping). 30 runs of list.

Always checked: pykill never opens the canary or a FIFO (inotify IN_OPEN /
IN_ACCESS on them), never blocks (each run has 30 s; a timeout is a failure),
never dies of a signal, and leaves no thread of the target stopped.
Exits 0 on success, 1 on failure, 77 (ctest's skip code) naming what is
missing.
"""
import ctypes
import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
import pktest  # noqa: E402
from pktest import fail, run, skip, started  # noqa: E402

NOBODY = 65534
RUN_TIMEOUT = 30
IN_ACCESS, IN_OPEN, IN_DONT_FOLLOW = 0x1, 0x20, 0x02000000
EXIT_OK, EXIT_FAILURE, EXIT_NOT_DELIVERED = 0, 1, 8

libc = ctypes.CDLL(None, use_errno=True)


def show(argv, res):
    return "`%s` exited %s\n  stdout: %r\n  stderr: %r" % (" ".join(argv), res.returncode, res.out[-2000:],
                                                          res.err[-2000:])


def as_user(uid):
    return pktest.as_user(uid, "needed to run processes as another user")


def without_map_files():
    """Root without the capabilities /proc/PID/map_files asks for: ptrace
    and file permissions intact (it can read the canary), as a container's
    root is."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        skip("setpriv (util-linux) is not installed: needed to drop CAP_SYS_ADMIN")
    caps = "-sys_admin,-checkpoint_restore"
    return [setpriv, "--inh-caps=" + caps, "--bounding-set=" + caps]


# --- inotify: did anyone open the planted files? ---------------------------

class Watch(object):
    def __init__(self):
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            fail("inotify_init1: %s" % os.strerror(ctypes.get_errno()))
        self.paths = {}

    def add(self, path):
        wd = libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN | IN_ACCESS | IN_DONT_FOLLOW)
        if wd < 0:
            fail("inotify_add_watch %s: %s" % (path, os.strerror(ctypes.get_errno())))
        self.paths[wd] = path

    def events(self):
        out = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            i = 0
            while i + 16 <= len(buf):
                wd, mask, _, ln = struct.unpack_from("iIII", buf, i)
                out.append("%s (%s)" % (self.paths.get(wd, "?"), "open" if mask & IN_OPEN else "read"))
                i += 16 + ln


# --- the target --------------------------------------------------------------

def runnable_by_nobody(python):
    res = run(as_user(NOBODY) + [python, "-c", "import ctypes, threading"], cwd="/")
    return res.returncode == 0


class Target(pktest.Target):
    """target.py with its actions, as uid (setpriv) unless 0, from /; argv0
    runs another file as the interpreter. Its ready line is "ready PID SLEEPER"."""

    def __init__(self, python, script, actions, uid, env=None, argv0=None):
        pktest.Target.__init__(self, argv0 or python, script, args=actions, prefix=as_user(uid) if uid != 0 else [],
                               env=pktest.clean_env(**(env or {})), cwd="/", ready="ready ")
        words = self.ready_text.split()
        if words[0] != str(self.pid):
            fail("target did not get ready: %r %s" % ("ready " + self.ready_text, self.output()))
        self.sleeper = int(words[1])

    def maps(self):
        with open("/proc/%d/maps" % self.pid) as f:
            return f.read()


def check_untouched(pid):
    for name in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, name)) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state in ("t", "T"):
            fail("thread %s of %d left stopped (state %s)" % (name, pid, state))


# --- the test bed ----------------------------------------------------------------

class Bed(object):
    """A world-readable directory with the target script, a directory the
    target's user owns (files), and a root-only canary the target may link
    to but not read."""

    def __init__(self, pykill, python):
        if os.geteuid() != 0:
            skip("needs root (pykill must be root to be harmed; targets run as nobody); running as uid %d"
                 % os.geteuid())
        self.pykill = pykill
        self.python = python
        self.dir = tempfile.mkdtemp(prefix="pykill-hostsafe-")
        pktest.at_cleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        os.chmod(self.dir, 0o755)
        self.script = os.path.join(self.dir, "target.py")
        shutil.copy(os.path.join(HERE, "target.py"), self.script)
        os.chmod(self.script, 0o644)
        self.uid = NOBODY if runnable_by_nobody(python) else 0
        self.files = os.path.join(self.dir, "files")
        os.mkdir(self.files)
        os.chmod(self.files, 0o755)
        os.chown(self.files, self.uid, self.uid)
        secret = os.path.join(self.dir, "secret")
        os.mkdir(secret, 0o700)
        self.canary = os.path.join(secret, "canary")
        with open(self.canary, "w") as f:
            f.write("root only: pykill must never open this\n")
        os.chmod(self.canary, 0o600)
        self.watch = Watch()
        self.watch.add(self.canary)
        self.watched = [self.canary]
        self.pykill_nobody = os.path.join(self.dir, "pykill")
        shutil.copy(pykill, self.pykill_nobody)
        os.chmod(self.pykill_nobody, 0o755)
        print("targets that plant files run as %s" % ("nobody" if self.uid else "root (nobody may not run %s)" % python))

    def own(self, path):
        os.chown(path, self.uid, self.uid)

    def copy(self, src, name):
        dst = os.path.join(self.files, name)
        shutil.copy(src, dst)
        os.chmod(dst, 0o755)
        self.own(dst)
        return dst

    def watch_fifos(self, paths):
        for p in paths:
            self.watch.add(p)
            self.watched.append(p)

    def variants(self, t_uid):
        """(name, argv prefix, pykill) for each way pykill is run."""
        out = [("root", [], self.pykill), ("root without map_files", without_map_files(), self.pykill)]
        if t_uid == NOBODY:
            out.append(("nobody", as_user(NOBODY), self.pykill_nobody))
        return out

    def probe_no_map_files(self, t):
        """Under the capability drop, /proc/PID/map_files must refuse."""
        lo, hi = (int(x, 16) for x in t.maps().split("\n", 1)[0].split()[0].split("-"))
        first = "%x-%x" % (lo, hi)  # map_files names have no leading zeros
        code = "import os\ntry:\n    os.close(os.open(%r, os.O_RDONLY))\n    print('opened')\nexcept OSError as e:\n" \
               "    print(e.errno)\n" % ("/proc/%d/map_files/%s" % (t.pid, first))
        res = run(without_map_files() + [sys.executable, "-c", code])
        if res.out.strip() != str(errno.EPERM):
            skip("dropping CAP_SYS_ADMIN/CAP_CHECKPOINT_RESTORE did not take /proc/PID/map_files away: %s"
                 % show(["probe"], res))

    def pykill_run(self, variant, args, t):
        name, prefix, pykill = variant
        argv = prefix + [pykill] + args
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(p)
        try:
            out, err = p.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            stack = ""
            try:
                with open("/proc/%d/stack" % p.pid) as f:
                    stack = f.read()
            except OSError:
                pass
            p.kill()
            p.communicate()
            opened = self.watch.events()
            fail("pykill (%s) hung: `%s` still running after %d s%s; kernel stack:\n%s"
                 % (name, " ".join(argv), RUN_TIMEOUT,
                    ", having opened " + ", ".join(sorted(set(opened))) if opened else "", stack))
        res = subprocess.CompletedProcess(argv, p.returncode, out, err)
        res.out = out.decode("utf-8", "replace")
        res.err = err.decode("utf-8", "replace")
        opened = self.watch.events()
        if opened:
            fail("pykill (%s) opened what the target planted: %s\n%s" % (name, ", ".join(sorted(set(opened))),
                                                                         show(argv, res)))
        if res.returncode < 0:
            fail("pykill (%s) died of signal %d: %s" % (name, -res.returncode, show(argv, res)))
        check_untouched(t.pid)
        return argv, res

    def expect_works(self, variant, t, what):
        """list, ps PID and raise (withdrawn at once) all succeed."""
        name = variant[0]
        argv, res = self.pykill_run(variant, ["list", "--json", str(t.pid)], t)
        if res.returncode != EXIT_OK:
            fail("%s: list (%s) failed: %s" % (what, name, show(argv, res)))
        tids = [th["tid"] for th in json.loads(res.out)["threads"]]
        if t.sleeper not in tids:
            fail("%s: list (%s) misses thread %d: %s" % (what, name, t.sleeper, show(argv, res)))
        argv, res = self.pykill_run(variant, ["ps", "--json", str(t.pid)], t)
        procs = json.loads(res.out)["processes"] if res.returncode == EXIT_OK else []
        if len(procs) != 1 or procs[0]["pid"] != t.pid or procs[0].get("error"):
            fail("%s: ps (%s) does not show process %d: %s" % (what, name, t.pid, show(argv, res)))
        argv, res = self.pykill_run(variant, ["raise", "--wait=0", "--withdraw-if-pending", str(t.pid),
                                              str(t.sleeper)], t)
        if res.returncode != EXIT_NOT_DELIVERED:
            fail("%s: raise (%s) into a thread blocked in read() should be withdrawn (exit %d): %s"
                 % (what, name, EXIT_NOT_DELIVERED, show(argv, res)))

    def expect_refused(self, variant, t, what, words):
        """list and raise fail with exit 1 and one message naming words; ps
        shows the process with that error."""
        name = variant[0]
        for args in (["list", str(t.pid)], ["raise", "--wait=0", "--withdraw-if-pending", str(t.pid),
                                             str(t.sleeper)]):
            argv, res = self.pykill_run(variant, args, t)
            lines = [l for l in res.err.splitlines() if not l.startswith("pykill: hint: ")]
            if res.returncode != EXIT_FAILURE or len(lines) != 1 or res.out:
                fail("%s: %s (%s) should fail (exit %d) with one message: %s"
                     % (what, args[0], name, EXIT_FAILURE, show(argv, res)))
            for w in words:
                if w not in lines[0]:
                    fail("%s: %s (%s) does not say %r: %s" % (what, args[0], name, w, show(argv, res)))
        print("  %s: %s" % (name, lines[0]))
        argv, res = self.pykill_run(variant, ["ps", "--json", str(t.pid)], t)
        if res.returncode != EXIT_OK:
            fail("%s: ps (%s): %s" % (what, name, show(argv, res)))
        procs = json.loads(res.out)["processes"]
        if len(procs) != 1 or not all(w in (procs[0].get("error") or "") for w in words):
            fail("%s: ps (%s) should show process %d with the error naming %r: %s"
                 % (what, name, t.pid, words, show(argv, res)))


def python_files(python):
    """(holder, kind, prefix, exec_prefix): the file that holds the
    interpreter, "lib" (libpython, found through the library path) or "exe"."""
    code = "import sys\nsys.stdout.write(sys.prefix + '\\n' + sys.exec_prefix + '\\n')\n" \
           "sys.stdout.write(open('/proc/self/maps').read())\n"
    res = run([python, "-c", code])
    if res.returncode != 0:
        fail("%s does not run: %s" % (python, show([python], res)))
    lines = res.out.splitlines()
    prefix, exec_prefix = lines[0], lines[1]
    for line in lines[2:]:
        f = line.split(None, 5)
        if len(f) == 6 and os.path.basename(f[5]).startswith("libpython"):
            return f[5], "lib", prefix, exec_prefix
    return os.path.realpath(python), "exe", prefix, exec_prefix


def start_from_copy(bed, where, actions, uid):
    """A target whose interpreter file is a copy in directory where (which
    the target's user owns); returns it and the copy's path."""
    holder, kind, prefix, exec_prefix = python_files(bed.python)
    sub = os.path.join(where, "lib" if kind == "lib" else "bin")
    os.makedirs(sub)
    os.chmod(sub, 0o755)
    bed.own(sub)
    copy = os.path.join(sub, os.path.basename(holder))
    shutil.copy(holder, copy)
    os.chmod(copy, 0o755)
    bed.own(copy)
    if kind == "lib":
        env, argv0 = {"LD_LIBRARY_PATH": sub}, None
    else:
        env, argv0 = {"PYTHONHOME": prefix + ":" + exec_prefix}, copy
    t = Target(bed.python, bed.script, [a.replace("@COPY@", copy) for a in actions], uid, env=env, argv0=argv0)
    if copy not in t.maps():
        fail("the target did not map the copy %s of %s (%s)" % (copy, holder, kind))
    return t, copy


def find_elf_bait():
    """A big ELF file that does not hold an interpreter."""
    for p in ("/usr/lib/x86_64-linux-gnu/libcapstone.so.4", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
              "/usr/lib/x86_64-linux-gnu/libcapstone.so.5"):
        if os.path.exists(p):
            return p
    return None


def plant_baits(bed, name):
    """map/plant actions for two '*python*' files: one replaced by links to
    the canary, one by FIFOs (the deleted name and the plain one)."""
    b0 = bed.copy("/bin/true", "lib%s-bait0.so" % name)
    b1 = bed.copy("/bin/true", "lib%s-bait1.so" % name)
    actions = ["map:" + b0, "plant:%s=link:%s" % (b0, bed.canary), "plant:%s (deleted)=link:%s" % (b0, bed.canary),
               "map:" + b1, "plant:%s=fifo" % b1, "plant:%s (deleted)=fifo" % b1]
    return actions, [b1, b1 + " (deleted)"]


def first_python_mapping(t, path):
    """The bait must come before the interpreter in pykill's search."""
    for line in t.maps().splitlines():
        f = line.split(None, 5)
        if len(f) == 6 and "python" in os.path.basename(f[5]).lower():
            if not f[5].startswith(path):
                fail("the bait is not the first '*python*' mapping of %d:\n%s" % (t.pid, t.maps()))
            return


# --- scenarios ----------------------------------------------------------------

def scenario_fallback(bed):
    actions, fifos = plant_baits(bed, "python")
    t = Target(bed.python, bed.script, actions, bed.uid)
    bed.watch_fifos(fifos)
    first_python_mapping(t, os.path.join(bed.files, "libpython-bait0.so"))
    bed.probe_no_map_files(t)
    for v in bed.variants(bed.uid):
        bed.expect_works(v, t, "fallback")
        print("  %s: list, ps and raise work; nothing planted opened" % v[0])
    t.quit()


def scenario_race(bed):
    actions, fifos = plant_baits(bed, "python")
    t = Target(bed.python, bed.script, actions + ["flap"], bed.uid)
    bed.watch_fifos(fifos)
    rounds = 15
    for i in range(rounds):
        bed.expect_works(bed.variants(bed.uid)[0], t, "race round %d" % i)
    print("  root: %d rounds of list, ps and raise against mappings that come and go" % rounds)
    t.quit()


def scenario_replaced(bed):
    where = os.path.join(bed.files, "python")
    os.mkdir(where)
    os.chmod(where, 0o755)
    bed.own(where)
    actions = ["plant:@COPY@=link:" + bed.canary, "plant:@COPY@ (deleted)=fifo"]
    t, copy = start_from_copy(bed, where, actions, bed.uid)
    bed.watch_fifos([copy + " (deleted)"])
    bed.probe_no_map_files(t)
    for v in bed.variants(bed.uid):
        if v[0] == "root":
            bed.expect_works(v, t, "replaced")
            print("  root: list, ps and raise work (map_files)")
        else:
            bed.expect_refused(v, t, "replaced", (copy + " (deleted)", str(t.pid), "deleted", "map_files"))
    t.quit()


def scenario_chroot(bed):
    root = os.path.join(bed.files, "jail")
    os.mkdir(root)
    os.chmod(root, 0o755)
    # Root to chroot, then nobody: so that nobody may trace it too.
    print("the chrooted target starts as root, then becomes nobody")
    t, copy = start_from_copy(bed, root, ["chroot:" + root, "user:%d" % NOBODY], 0)
    if os.readlink("/proc/%d/root" % t.pid) != root:
        fail("target %d is not chrooted into %s" % (t.pid, root))
    bed.probe_no_map_files(t)
    for v in bed.variants(NOBODY):
        bed.expect_works(v, t, "chroot")
        print("  %s: list, ps and raise work" % v[0])
    t.quit()


def scenario_truncate(bed):
    src = find_elf_bait()
    if src is None:
        skip("no big ELF library to use as bait (libcapstone, libcrypto)")
    actions = []
    for i in range(3):
        actions.append("map:" + bed.copy(src, "libpython-trunc%d.so" % i))
    t = Target(bed.python, bed.script, actions + ["truncate"], bed.uid)
    first_python_mapping(t, os.path.join(bed.files, "libpython-trunc"))
    runs = 30
    v = bed.variants(bed.uid)[0]
    for i in range(runs):
        argv, res = bed.pykill_run(v, ["list", str(t.pid)], t)
        if res.returncode != EXIT_OK:
            fail("truncate run %d: list failed: %s" % (i, show(argv, res)))
    print("  root: %d runs of list while %s copies (%d bytes) are cut and restored" % (runs, src,
                                                                                     os.path.getsize(src)))
    t.quit()


SCENARIOS = {
    "fallback": scenario_fallback,
    "race": scenario_race,
    "replaced": scenario_replaced,
    "chroot": scenario_chroot,
    "truncate": scenario_truncate,
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in SCENARIOS:
        print("usage: run_hostsafe.py {%s} PYKILL PYTHON" % ",".join(sorted(SCENARIOS)))
        sys.exit(2)
    scenario, pykill, python = sys.argv[1:]
    if not os.access(pykill, os.X_OK):
        fail("%s is not an executable: build the pykill target first" % pykill)
    if not os.access(python, os.X_OK):
        skip("%s is not installed" % python)
    bed = Bed(pykill, python)
    SCENARIOS[scenario](bed)
    print("ok: %s" % scenario)


if __name__ == "__main__":
    try:
        main()
    finally:
        pktest.cleanup()
