# SPDX-License-Identifier: MIT
"""A celery app on kombu's filesystem transport (no broker), its folder from
PK_SHAPES_CELERY_DIR, for the threads pool. Tasks run the handlers of
shapes_app; events also say when the worker is ready and when a task ends."""
import os

from celery import Celery
from celery.signals import task_postrun, worker_ready

from shapes_app import barrier_wait, event, handle_hang, native_tid

folder = os.environ.get("PK_SHAPES_CELERY_DIR", "/tmp/pk-shapes-celery")
# kombu 5.2's filesystem transport creates a message file, then locks and
# writes it: a consumer polling in between reads it empty and its consumer
# dies (JSONDecodeError, seen in CI). The driver therefore writes into its
# own folder and renames each finished file into the worker's.
folder_out = os.environ.get("PK_SHAPES_CELERY_OUT", folder)
app = Celery("shapes_celery", broker="filesystem://", backend=None)
app.conf.broker_transport_options = {
    "data_folder_in": folder, "data_folder_out": folder_out, "processed_folder": folder,
    "store_processed": False, "polling_interval": 0.05,
}
app.conf.worker_hijack_root_logger = False
app.conf.worker_prefetch_multiplier = 1


@app.task
def hang(req_id):
    handle_hang(req_id)


@app.task
def ok(req_id):
    event("ok %s %d" % (req_id, native_tid()))


@app.task
def together(req_id, round_id, n):
    event("together %s %s" % (req_id, "ok" if barrier_wait(round_id, n) else "alone"))


@worker_ready.connect
def ready(**_):
    event("ready %d" % os.getpid())


@task_postrun.connect
def postrun(task_id=None, task=None, state=None, **_):
    event("postrun %s %s" % (task.name, state))
