"""A ThreadPoolExecutor of one worker kept busy with short jobs (2 ms of
Python, then 2 ms between jobs, back to back): a raise may find the worker
in a job or between two, and between the reading and the write the job may
end. Says "job-failed NAME" for a job that failed (its done-callback reads
the future, as the pool server's does)."""
import concurrent.futures
import time

from shapes_app import event, native_tid


def job():
    end = time.perf_counter() + 0.002
    while time.perf_counter() < end:
        pass


def report(fut):
    try:
        fut.result()
    except Exception as e:
        event("job-failed %s" % type(e).__name__)


pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
pool.submit(job).result()
event("ready %d" % native_tid())
while True:
    pool.submit(job).add_done_callback(report)
    time.sleep(0.002)
