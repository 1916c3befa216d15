# SPDX-License-Identifier: MIT
"""gunicorn hooks of the shapes test: say when the worker is ready, and when
the arbiter sees a worker exit."""
import os

from shapes_app import event


def post_worker_init(worker):
    event("ready %d" % os.getpid())


def child_exit(server, worker):
    event("worker-exit %d" % worker.pid)
