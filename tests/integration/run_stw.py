#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`pykill list` during a stop-the-world pause (issue #14).

  run_stw.py PYKILL PYTHON

The target's main thread does nothing but gc.collect() over a large heap
while a thread spins in Python. On a free-threaded build (3.13t+) each
collection stops the world: every other thread state is suspended until it
ends, so most of the time the spinner is paused, and `pykill list` must say
so ("stop_the_world": true, a "paused:" line) for the spinner and never for
the collecting main thread. On a default build the GC stops no one: no
thread may be flagged. Exits 0 on success, 1 on failure, 77 when the
interpreter is absent.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from pktest import fail, resolve_python  # noqa: E402

TARGET = r'''
import gc, os, sys, sysconfig, threading
junk = [[i, str(i), (i,)] for i in range(1000000)]
def spin():
    x = 0
    while True:
        try:
            while True:
                x += 1
        except BufferError:
            pass
t = threading.Thread(target=spin, name="spinner")
t.daemon = True
t.start()
os.write(int(sys.argv[1]), ("ready %d %d\n" % (t.native_id,
         sysconfig.get_config_var("Py_GIL_DISABLED") == 1)).encode())
while True:
    gc.collect()
'''
TRIES = 40  # free-threaded: collecting 3M objects is most of the target's time
TRIES_DEFAULT = 8  # a default build: the flag must stay off
RAISE_SECONDS = 30  # free-threaded: raises until one is pending in a pause (most are; a loaded
                    # machine may run the GC's pauses less often between two raises)




def pykill(binary, *args):
    p = subprocess.run([binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        fail("pykill %s exited %d: %s" % (" ".join(args), p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


def main():
    binary, python = sys.argv[1], resolve_python(sys.argv[2])
    ready_r, ready_w = os.pipe()
    proc = subprocess.Popen([python, "-c", TARGET, str(ready_w)], pass_fds=(ready_w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(ready_w)
    try:
        line = os.read(ready_r, 100).decode().split()
        if len(line) != 3 or line[0] != "ready":
            fail("target did not get ready: %r %s" % (line, proc.communicate(timeout=10)[1]))
        spinner, free_threaded = int(line[1]), line[2] == "1"
        json_seen = human_seen = False
        for i in range(TRIES if free_threaded else TRIES_DEFAULT):
            got = json.loads(pykill(binary, "list", "--json", str(proc.pid)))
            by_tid = {t["tid"]: t for t in got["threads"]}
            if spinner not in by_tid or proc.pid not in by_tid:
                fail("threads listed: %r" % sorted(by_tid))
            if any(t["stop_the_world"] not in (True, False) for t in got["threads"]):
                fail("stop_the_world is not a boolean: %r" % got["threads"])
            if by_tid[proc.pid]["stop_the_world"]:
                fail("the collecting main thread is listed as paused by the stop-the-world it makes")
            if by_tid[spinner]["stop_the_world"]:
                if not free_threaded:
                    fail("a default build's GC stops no thread, yet the spinner is listed as paused")
                json_seen = True
            rows = pykill(binary, "list", str(proc.pid)).splitlines()
            for j, r in enumerate(rows):
                paused = j + 1 < len(rows) and rows[j + 1].strip().startswith("paused:")
                if r.split()[:1] == [str(proc.pid)] and paused:
                    fail("the collecting main thread has a paused: line:\n%s" % "\n".join(rows))
                if r.split()[:1] == [str(spinner)] and paused:
                    if not free_threaded:
                        fail("a default build's spinner has a paused: line:\n%s" % "\n".join(rows))
                    human_seen = True
            if json_seen and human_seen:
                break
        # raise into the spinner, not waiting: while it is paused the
        # pending verdict must say so, not only that it sits in a futex.
        raise_seen = False
        deadline = time.time() + RAISE_SECONDS
        raises = 0
        while free_threaded and time.time() < deadline:
            raises += 1
            p = subprocess.run([binary, "raise", "--json", "--wait=0", str(proc.pid), str(spinner), "BufferError"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            if p.returncode == 7:
                continue  # the last one is still queued
            if p.returncode not in (0, 3):
                fail("raise exited %d: %s" % (p.returncode, p.stderr.decode(errors="replace")))
            r = json.loads(p.stdout)
            reason = r.get("reason") or ""
            if p.returncode == 3 and "futex" in reason:
                if "stops the world" not in reason:
                    fail("pending in the futex of a stop-the-world pause, the reason does not say so: %r" % reason)
                raise_seen = True
                break
        if free_threaded and not raise_seen:
            fail("%d raises in %d s into the spinner of a target that keeps stopping the world: none was "
                 "pending for the pause" % (raises, RAISE_SECONDS))
        if free_threaded and not (json_seen and human_seen):
            fail("in %d lists each of a target that collects a large heap without a pause, the spinner was "
                 "listed as paused for the stop-the-world: JSON %s, table %s" % (TRIES, json_seen, human_seen))
        print("ok: %s, %d round(s) of list --json and list; spinner paused: %s" % (
            got["python"]["version"], i + 1, "seen in both" if json_seen else "never (the GC stops no one)"))
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
