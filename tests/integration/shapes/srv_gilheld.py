# SPDX-License-Identifier: MIT
"""A pool worker in a pure-Python job while the main thread holds the GIL
in a C call for 6 s (ctypes.PyDLL: the call keeps it): the worker sleeps
on the GIL. Says "ready <worker TID>" once the job runs and the hold
starts, "released" when it ends, "job-failed NAME" for a job that failed."""
import concurrent.futures
import ctypes
import threading

from shapes_app import event, native_tid

libc = ctypes.PyDLL("libc.so.6")
started = threading.Event()
worker = []


def job():
    worker.append(native_tid())
    started.set()
    n = 0
    while True:
        n += 1


def report(fut):
    try:
        fut.result()
    except BaseException as e:
        event("job-failed %s" % type(e).__name__)


pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
pool.submit(job).add_done_callback(report)
started.wait()
event("ready %d" % worker[0])
libc.sleep(6)
event("released")
threading.Event().wait()
