# SPDX-License-Identifier: MIT
"""A ThreadPoolExecutor of one worker kept busy with short jobs (2 ms of
Python, then 2 ms between jobs, back to back): a raise may find the worker
in a job or between two, and between the reading and the write the job may
end. Says "job-failed NAME" for a job that failed (its done-callback reads
the future, as the pool server's does).

With the argument "contended": each job is one C call (sum over a range,
about a millisecond, no eval-breaker check inside it), a thread spins in
Python beside the worker and the switch interval is 0.5 ms, so the worker
gives the GIL away at nearly every check -- on 3.13+ inside
_Py_HandlePending, after it has read its eval-breaker bits: an exception
written then fires only at the next check, after the job (issue #11).
Three jobs are kept queued, so the worker never waits for work."""
import concurrent.futures
import sys
import threading
import time

from shapes_app import event, native_tid

CONTENDED = sys.argv[1:] == ["contended"]


def job():
    end = time.perf_counter() + 0.002
    while time.perf_counter() < end:
        pass


def c_call_job():
    return sum(range(100000))


def spin():
    n = 0
    while True:
        n += 1


def report(fut):
    try:
        fut.result()
    except Exception as e:
        event("job-failed %s" % type(e).__name__)


pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
pool.submit(job).result()
if CONTENDED:
    sys.setswitchinterval(0.0005)
    spinner = threading.Thread(target=spin, name="spinner")
    spinner.daemon = True
    spinner.start()
    event("ready %d" % native_tid())
    while True:
        if pool._work_queue.qsize() < 3:
            pool.submit(c_call_job).add_done_callback(report)
        else:
            time.sleep(0.001)
event("ready %d" % native_tid())
while True:
    pool.submit(job).add_done_callback(report)
    time.sleep(0.002)
