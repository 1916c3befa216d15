/* SPDX-License-Identifier: MIT */
/* Worker shapes (cpython/shape.c): stacks as pykill read them from real
 * servers (gunicorn gthread, celery's threads pool, asyncio, gevent pywsgi,
 * uwsgi, waitress, cheroot, twisted's thread pool, plain threads; qualified names of 3.11+ and the bare names of
 * older versions), what each is recognised as, and what each kind of
 * exception is said to do there. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pk_cpython.h"

#define PY311 "/usr/lib/python3.11/"
#define DIST "/usr/lib/python3/dist-packages/"

/* A thread whose stack is the "function|file" strings, innermost first. */
static struct pk_py_thread thread_of(bool is_main, const char *const *stack)
{
	struct pk_py_thread t;
	size_t n = 0;

	memset(&t, 0, sizeof(t));
	t.is_main = is_main;
	while (stack[n] != NULL)
		n++;
	t.frames = calloc(n ? n : 1, sizeof(*t.frames));
	assert_non_null(t.frames);
	for (size_t i = 0; i < n; i++) {
		const char *bar = strchr(stack[i], '|');
		assert_non_null(bar);
		t.frames[i].function = strndup(stack[i], (size_t)(bar - stack[i]));
		t.frames[i].file = strdup(bar + 1);
		t.frames[i].line = 1;
	}
	t.nframes = n;
	return t;
}

static void thread_free(struct pk_py_thread *t)
{
	for (size_t i = 0; i < t->nframes; i++) {
		free(t->frames[i].function);
		free(t->frames[i].file);
	}
	free(t->frames);
}

static void expect_shape(bool is_main, unsigned modules, const char *const *stack, enum pk_shape want, bool want_idle)
{
	struct pk_py_thread t = thread_of(is_main, stack);
	bool idle = !want_idle;
	enum pk_shape got = pk_shape_classify(&t, modules, &idle);

	if (got != want || idle != want_idle)
		fail_msg("stack starting %s: got %s%s, want %s%s", stack[0] ? stack[0] : "(none)", pk_shape_key(got),
			 idle ? " (idle)" : "", pk_shape_key(want), want_idle ? " (idle)" : "");
	thread_free(&t);
}

static const char *const gunicorn_busy[] = {
	"app|/srv/app.py",
	"ThreadWorker.handle_request|" DIST "gunicorn/workers/gthread.py",
	"ThreadWorker.handle|" DIST "gunicorn/workers/gthread.py",
	"_WorkItem.run|" PY311 "concurrent/futures/thread.py",
	"_worker|" PY311 "concurrent/futures/thread.py",
	"Thread.run|" PY311 "threading.py",
	"Thread._bootstrap_inner|" PY311 "threading.py",
	"Thread._bootstrap|" PY311 "threading.py",
	NULL,
};

static const char *const pool_idle[] = {
	"_worker|" PY311 "concurrent/futures/thread.py",
	"Thread.run|" PY311 "threading.py",
	"Thread._bootstrap_inner|" PY311 "threading.py",
	"Thread._bootstrap|" PY311 "threading.py",
	NULL,
};

/* 3.6: Queue.get in Python, bare function names. */
static const char *const pool_idle36[] = {
	"wait|/usr/lib/python3.6/threading.py",
	"get|/usr/lib/python3.6/queue.py",
	"_worker|/usr/lib/python3.6/concurrent/futures/thread.py",
	"run|/usr/lib/python3.6/threading.py",
	"_bootstrap_inner|/usr/lib/python3.6/threading.py",
	"_bootstrap|/usr/lib/python3.6/threading.py",
	NULL,
};

static const char *const pool_busy38[] = {
	"handle_hang|/srv/shapes_app.py",
	"serve|/srv/srv_threads.py",
	"run|/opt/py38/lib/python3.8/concurrent/futures/thread.py",
	"_worker|/opt/py38/lib/python3.8/concurrent/futures/thread.py",
	"run|/opt/py38/lib/python3.8/threading.py",
	"_bootstrap_inner|/opt/py38/lib/python3.8/threading.py",
	"_bootstrap|/opt/py38/lib/python3.8/threading.py",
	NULL,
};

static const char *const celery_busy[] = {
	"hang|/srv/tasks.py",
	"_install_stack_protection.<locals>.__protected_call__|" DIST "celery/app/trace.py",
	"build_tracer.<locals>.trace_task|" DIST "celery/app/trace.py",
	"fast_trace_task|" DIST "celery/app/trace.py",
	"apply_target|" DIST "celery/concurrency/base.py",
	"_WorkItem.run|" PY311 "concurrent/futures/thread.py",
	"_worker|" PY311 "concurrent/futures/thread.py",
	"Thread.run|" PY311 "threading.py",
	"Thread._bootstrap_inner|" PY311 "threading.py",
	"Thread._bootstrap|" PY311 "threading.py",
	NULL,
};

static const char *const celery_main[] = {
	"Transport.drain_events|" DIST "kombu/transport/virtual/base.py",
	"synloop|" DIST "celery/worker/loops.py",
	"WorkController.start|" DIST "celery/worker/worker.py",
	"main|" DIST "celery/__main__.py",
	"<module>|" DIST "celery/__main__.py",
	"_run_code|<frozen runpy>",
	"_run_module_as_main|<frozen runpy>",
	NULL,
};

static const char *const asyncio_busy[] = {
	"handle|/srv/aio.py",
	"Handle._run|" PY311 "asyncio/events.py",
	"BaseEventLoop._run_once|" PY311 "asyncio/base_events.py",
	"BaseEventLoop.run_forever|" PY311 "asyncio/base_events.py",
	"BaseEventLoop.run_until_complete|" PY311 "asyncio/base_events.py",
	"Runner.run|" PY311 "asyncio/runners.py",
	"run|" PY311 "asyncio/runners.py",
	"<module>|/srv/aio.py",
	NULL,
};

static const char *const asyncio_idle[] = {
	"EpollSelector.select|" PY311 "selectors.py",
	"BaseEventLoop._run_once|" PY311 "asyncio/base_events.py",
	"BaseEventLoop.run_forever|" PY311 "asyncio/base_events.py",
	"BaseEventLoop.run_until_complete|" PY311 "asyncio/base_events.py",
	"Runner.run|" PY311 "asyncio/runners.py",
	"run|" PY311 "asyncio/runners.py",
	"<module>|/srv/aio.py",
	NULL,
};

/* A loop of its own in a threading.Thread, pure-Python Task (3.7). */
static const char *const asyncio_thread37[] = {
	"handler|/srv/app.py",
	"_step|/usr/lib/python3.7/asyncio/tasks.py",
	"_run|/usr/lib/python3.7/asyncio/events.py",
	"_run_once|/usr/lib/python3.7/asyncio/base_events.py",
	"run_forever|/usr/lib/python3.7/asyncio/base_events.py",
	"run|/usr/lib/python3.7/threading.py",
	"_bootstrap_inner|/usr/lib/python3.7/threading.py",
	"_bootstrap|/usr/lib/python3.7/threading.py",
	NULL,
};

static const char *const gevent_hub[] = { "Hub.run|" DIST "gevent/hub.py", NULL };

static const char *const gevent_pywsgi[] = {
	"app|/srv/gev.py",
	"WSGIHandler.run_application|" DIST "gevent/pywsgi.py",
	"WSGIHandler.handle_one_response|" DIST "gevent/pywsgi.py",
	"WSGIHandler.handle_one_request|" DIST "gevent/pywsgi.py",
	"WSGIHandler.handle|" DIST "gevent/pywsgi.py",
	"WSGIServer.handle|" DIST "gevent/pywsgi.py",
	"_handle_and_close_when_done|" DIST "gevent/baseserver.py",
	NULL,
};

/* gevent.spawn(job): Greenlet.run is compiled, so job is the bottom. */
static const char *const gevent_spawned[] = { "spin|/srv/jobs.py", "job|/srv/jobs.py", NULL };

/* The main greenlet itself, starting the server. */
static const char *const gevent_main_greenlet[] = {
	"WSGIServer.init_socket|" DIST "gevent/pywsgi.py",
	"BaseServer.start|" DIST "gevent/baseserver.py",
	"BaseServer.serve_forever|" DIST "gevent/baseserver.py",
	"<module>|/srv/gev.py",
	NULL,
};

static const char *const uwsgi_busy[] = {
	"handle_hang|/srv/shapes_app.py",
	"app|/srv/shapes_app.py",
	NULL,
};

static const char *const no_frames[] = { NULL };

static const char *const plain_thread[] = {
	"build_report|/srv/worker.py",
	"worker_loop|/srv/worker.py",
	"Thread.run|" PY311 "threading.py",
	"Thread._bootstrap_inner|" PY311 "threading.py",
	"Thread._bootstrap|" PY311 "threading.py",
	NULL,
};

static const char *const plain_thread27[] = {
	"spin|/srv/worker.py",
	"run|/usr/lib/python2.7/threading.py",
	"__bootstrap_inner|/usr/lib/python2.7/threading.py",
	"__bootstrap|/usr/lib/python2.7/threading.py",
	NULL,
};

static const char *const script_main[] = { "<module>|/srv/worker.py", NULL };

/* A bare _thread thread: started from C. */
static const char *const bare_thread[] = { "spin|/srv/worker.py", NULL };

/* Look-alikes: a file of the same name elsewhere, a function of the same
 * name in another file. */
static const char *const lookalike[] = {
	"_worker|/srv/myconcurrent/futures/thread.py.bak",
	"_worker|/srv/notconcurrent/futures/thread.pyx",
	"run_forever|/srv/asyncio/base_events.py.orig",
	"run|/srv/mygevent/hub.py",
	"Thread._bootstrap|/srv/mythreading.py",
	NULL,
};

static void test_servers(void **state)
{
	(void)state;
	expect_shape(false, 0, gunicorn_busy, PK_SHAPE_GUNICORN, false);
	expect_shape(false, 0, pool_idle, PK_SHAPE_POOL, true);
	expect_shape(false, 0, pool_idle36, PK_SHAPE_POOL, true);
	expect_shape(false, 0, pool_busy38, PK_SHAPE_POOL, false);
	expect_shape(false, 0, celery_busy, PK_SHAPE_CELERY, false);
	expect_shape(true, 0, celery_main, PK_SHAPE_MAIN, false);
	expect_shape(true, 0, asyncio_busy, PK_SHAPE_ASYNCIO, false);
	expect_shape(true, 0, asyncio_idle, PK_SHAPE_ASYNCIO, true);
	expect_shape(false, 0, asyncio_thread37, PK_SHAPE_ASYNCIO, false);
}

/* waitress 2.1, cheroot 9.0 and twisted 22.4 (WSGIResource) on 3.11, as
 * pykill read them: busy in a request, idle in their queues. */
#define BOOT "Thread.run|" PY311 "threading.py", "Thread._bootstrap_inner|" PY311 "threading.py", \
	"Thread._bootstrap|" PY311 "threading.py"
static const char *const waitress_busy[] = {
	"app|/srv/app.py", "WSGITask.execute|" DIST "waitress/task.py", "Task.service|" DIST "waitress/task.py",
	"HTTPChannel.service|" DIST "waitress/channel.py",
	"ThreadedTaskDispatcher.handler_thread|" DIST "waitress/task.py", BOOT, NULL,
};
static const char *const waitress_idle[] = {
	"Condition.wait|" PY311 "threading.py", "ThreadedTaskDispatcher.handler_thread|" DIST "waitress/task.py",
	BOOT, NULL,
};
static const char *const cheroot_busy[] = {
	"app|/srv/app.py", "Gateway.respond|" DIST "cheroot/wsgi.py", "HTTPRequest.respond|" DIST "cheroot/server.py",
	"HTTPConnection.communicate|" DIST "cheroot/server.py", "WorkerThread.run|" DIST "cheroot/workers/threadpool.py",
	"Thread._bootstrap_inner|" PY311 "threading.py", "Thread._bootstrap|" PY311 "threading.py", NULL,
};
static const char *const cheroot_idle[] = {
	"Condition.wait|" PY311 "threading.py", "Queue.get|" PY311 "queue.py",
	"WorkerThread.run|" DIST "cheroot/workers/threadpool.py", "Thread._bootstrap_inner|" PY311 "threading.py",
	"Thread._bootstrap|" PY311 "threading.py", NULL,
};
static const char *const twisted_busy[] = {
	"app|/srv/app.py", "_WSGIResponse.run|" DIST "twisted/web/wsgi.py",
	"ContextTracker.callWithContext|" DIST "twisted/python/context.py",
	"ThreadPool.callInThreadWithCallback.<locals>.<lambda>|" DIST "twisted/python/threadpool.py",
	"ThreadPool.callInThreadWithCallback.<locals>.inContext|" DIST "twisted/python/threadpool.py",
	"Team._coordinateThisTask.<locals>.doWork|" DIST "twisted/_threads/_team.py",
	"ThreadWorker.__init__.<locals>.work|" DIST "twisted/_threads/_threadworker.py", BOOT, NULL,
};
static const char *const twisted_idle[] = {
	"Condition.wait|" PY311 "threading.py", "Queue.get|" PY311 "queue.py",
	"ThreadWorker.__init__.<locals>.work|" DIST "twisted/_threads/_threadworker.py", BOOT, NULL,
};

/* Between requests outside the queue: waitress logging a failure, cheroot 9
 * closing a connection in run's finally, twisted's onResult; and cheroot
 * 10+, whose run calls the loop that calls communicate. */
static const char *const waitress_logging[] = {
	"Logger.exception|" PY311 "logging/__init__.py",
	"ThreadedTaskDispatcher.handler_thread|" DIST "waitress/task.py", BOOT, NULL,
};
static const char *const cheroot9_close[] = {
	"HTTPConnection.close|" DIST "cheroot/server.py", "WorkerThread.run|" DIST "cheroot/workers/threadpool.py",
	"Thread._bootstrap_inner|" PY311 "threading.py", "Thread._bootstrap|" PY311 "threading.py", NULL,
};
static const char *const cheroot9_put_conn[] = {
	"HTTPServer.put_conn|" DIST "cheroot/server.py", "WorkerThread.run|" DIST "cheroot/workers/threadpool.py",
	"Thread._bootstrap_inner|" PY311 "threading.py", "Thread._bootstrap|" PY311 "threading.py", NULL,
};
#define SITE "/usr/lib/python3.12/site-packages/"
static const char *const cheroot10_idle[] = {
	"Condition.wait|" PY311 "threading.py", "Queue.get|" PY311 "queue.py",
	"WorkerThread._process_connections_until_interrupted|" SITE "cheroot/workers/threadpool.py",
	"WorkerThread.run|" SITE "cheroot/workers/threadpool.py", "Thread._bootstrap_inner|" PY311 "threading.py",
	"Thread._bootstrap|" PY311 "threading.py", NULL,
};
static const char *const cheroot10_busy[] = {
	"app|/srv/app.py", "Gateway.respond|" SITE "cheroot/wsgi.py", "HTTPRequest.respond|" SITE "cheroot/server.py",
	"HTTPConnection.communicate|" SITE "cheroot/server.py",
	"WorkerThread._process_connections_until_interrupted|" SITE "cheroot/workers/threadpool.py",
	"WorkerThread.run|" SITE "cheroot/workers/threadpool.py", "Thread._bootstrap_inner|" PY311 "threading.py",
	"Thread._bootstrap|" PY311 "threading.py", NULL,
};
static const char *const twisted_on_result[] = {
	"_WSGIResponse.run.<locals>.onResult|" DIST "twisted/web/wsgi.py",
	"ThreadPool.callInThreadWithCallback.<locals>.inContext|" DIST "twisted/python/threadpool.py",
	"Team._coordinateThisTask.<locals>.doWork|" DIST "twisted/_threads/_team.py",
	"ThreadWorker.__init__.<locals>.work|" DIST "twisted/_threads/_threadworker.py", BOOT, NULL,
};

/* twisted's inContext outside its try: building the Failure, logging it. */
static const char *const twisted_failure[] = {
	"Failure.__init__|" DIST "twisted/python/failure.py",
	"ThreadPool.callInThreadWithCallback.<locals>.inContext|" DIST "twisted/python/threadpool.py",
	"Team._coordinateThisTask.<locals>.doWork|" DIST "twisted/_threads/_team.py",
	"ThreadWorker.__init__.<locals>.work|" DIST "twisted/_threads/_threadworker.py", BOOT, NULL,
};
static const char *const twisted_log_err[] = {
	"err|" DIST "twisted/python/log.py",
	"ThreadPool.callInThreadWithCallback.<locals>.inContext|" DIST "twisted/python/threadpool.py",
	"Team._coordinateThisTask.<locals>.doWork|" DIST "twisted/_threads/_team.py",
	"ThreadWorker.__init__.<locals>.work|" DIST "twisted/_threads/_threadworker.py", BOOT, NULL,
};

static void test_thread_servers(void **state)
{
	(void)state;
	expect_shape(false, 0, waitress_busy, PK_SHAPE_WAITRESS, false);
	expect_shape(false, 0, waitress_idle, PK_SHAPE_WAITRESS, true);
	expect_shape(false, 0, cheroot_busy, PK_SHAPE_CHEROOT, false);
	expect_shape(false, 0, cheroot_idle, PK_SHAPE_CHEROOT, true);
	expect_shape(false, 0, twisted_busy, PK_SHAPE_TWISTED, false);
	expect_shape(false, 0, twisted_idle, PK_SHAPE_TWISTED, true);
	/* The innermost frame is the loop itself (between two requests, or in
	 * a lock taken in C): idle too. */
	expect_shape(false, 0, waitress_idle + 1, PK_SHAPE_WAITRESS, true);
	/* Only the job frame is busy: the loop's other callees are not. */
	expect_shape(false, 0, waitress_logging, PK_SHAPE_WAITRESS, true);
	expect_shape(false, 0, cheroot9_close, PK_SHAPE_CHEROOT, true);
	expect_shape(false, 0, cheroot9_put_conn, PK_SHAPE_CHEROOT, true);
	expect_shape(false, 0, cheroot10_idle, PK_SHAPE_CHEROOT, true);
	expect_shape(false, 0, cheroot10_busy, PK_SHAPE_CHEROOT, false);
	expect_shape(false, 0, twisted_on_result, PK_SHAPE_TWISTED, true);
	expect_shape(false, 0, twisted_failure, PK_SHAPE_TWISTED, true);
	expect_shape(false, 0, twisted_log_err, PK_SHAPE_TWISTED, true);
	/* Before 3.11 a frame has its bare name: the lambda is "<lambda>". */
	{
		static const char *const bare[] = {
			"app|/srv/app.py", "<lambda>|" DIST "twisted/python/threadpool.py",
			"inContext|" DIST "twisted/python/threadpool.py", "doWork|" DIST "twisted/_threads/_team.py",
			"work|" DIST "twisted/_threads/_threadworker.py", "run|/usr/lib/python3.9/threading.py", NULL,
		};
		expect_shape(false, 0, bare, PK_SHAPE_TWISTED, false);
	}
	/* The anchor is the job frame: communicate, service, the lambda. */
	{
		struct pk_py_thread t = thread_of(false, cheroot10_busy);
		assert_int_equal(pk_shape_anchor(&t, 0), 3);
		thread_free(&t);
		t = thread_of(false, waitress_busy);
		assert_int_equal(pk_shape_anchor(&t, 0), 3);
		thread_free(&t);
		t = thread_of(false, twisted_busy);
		assert_int_equal(pk_shape_anchor(&t, 0), 3);
		thread_free(&t);
		t = thread_of(false, cheroot9_close);
		assert_int_equal(pk_shape_anchor(&t, 0), -1);
		thread_free(&t);
	}
}

static void test_gevent(void **state)
{
	(void)state;
	expect_shape(true, PK_PYMOD_GEVENT, gevent_hub, PK_SHAPE_GEVENT_HUB, true);
	expect_shape(true, PK_PYMOD_GEVENT, gevent_pywsgi, PK_SHAPE_GREENLET, false);
	/* The frames alone say it, module list or not. */
	expect_shape(true, 0, gevent_pywsgi, PK_SHAPE_GREENLET, false);
	expect_shape(true, PK_PYMOD_GEVENT, gevent_spawned, PK_SHAPE_GREENLET, false);
	/* Without gevent, a main thread whose stack starts in C is the main thread. */
	expect_shape(true, 0, gevent_spawned, PK_SHAPE_MAIN, false);
	expect_shape(true, PK_PYMOD_GEVENT, gevent_main_greenlet, PK_SHAPE_MAIN, false);
	/* Not the main thread: gevent's own thread pool, an unknown. */
	expect_shape(false, PK_PYMOD_GEVENT, gevent_spawned, PK_SHAPE_UNKNOWN, false);
}

static void test_uwsgi(void **state)
{
	(void)state;
	expect_shape(false, PK_PYMOD_UWSGI, uwsgi_busy, PK_SHAPE_UWSGI, false);
	expect_shape(true, PK_PYMOD_UWSGI, uwsgi_busy, PK_SHAPE_UWSGI, false);
	expect_shape(false, PK_PYMOD_UWSGI, no_frames, PK_SHAPE_UWSGI, true);
	/* A thread the app started with threading is a thread, in uwsgi too. */
	expect_shape(false, PK_PYMOD_UWSGI, plain_thread, PK_SHAPE_THREAD, false);
	expect_shape(false, 0, uwsgi_busy, PK_SHAPE_UNKNOWN, false);
}

static void test_threads(void **state)
{
	(void)state;
	expect_shape(false, 0, plain_thread, PK_SHAPE_THREAD, false);
	expect_shape(false, 0, plain_thread27, PK_SHAPE_THREAD, false);
	expect_shape(true, 0, script_main, PK_SHAPE_MAIN, false);
	expect_shape(true, 0, no_frames, PK_SHAPE_MAIN, false);
	expect_shape(false, 0, bare_thread, PK_SHAPE_UNKNOWN, false);
	expect_shape(false, 0, no_frames, PK_SHAPE_UNKNOWN, false);
	expect_shape(false, PK_PYMOD_GEVENT, lookalike, PK_SHAPE_UNKNOWN, false);
}

/* A stack cut short may have lost the frames a rule needs: a uwsgi or
 * greenlet rule, which looks at the outermost frame, does not guess. */
static void test_truncated(void **state)
{
	struct pk_py_thread t = thread_of(false, uwsgi_busy);
	bool idle;
	(void)state;

	t.frames_truncated = true;
	assert_int_equal(pk_shape_classify(&t, PK_PYMOD_UWSGI, &idle), PK_SHAPE_UNKNOWN);
	t.frames_truncated = false;
	t.frames_error = (char *)"unreadable frame";
	assert_int_equal(pk_shape_classify(&t, PK_PYMOD_UWSGI, &idle), PK_SHAPE_UNKNOWN);
	t.frames_error = NULL;
	thread_free(&t);
}

/* The job anchor: the frame whose presence says the thread still runs the
 * job it was read in (raise checks it is on the stack before writing). */
static void test_anchor(void **state)
{
	struct pk_py_thread t;
	(void)state;

	t = thread_of(false, gunicorn_busy);
	assert_int_equal(pk_shape_anchor(&t, 0), 2); /* ThreadWorker.handle, which _WorkItem.run calls */
	thread_free(&t);
	t = thread_of(false, celery_busy);
	assert_int_equal(pk_shape_anchor(&t, 0), 4); /* apply_target */
	thread_free(&t);
	t = thread_of(false, pool_busy38);
	assert_int_equal(pk_shape_anchor(&t, 0), 1); /* serve */
	thread_free(&t);
	t = thread_of(false, pool_idle);
	assert_int_equal(pk_shape_anchor(&t, 0), -1);
	thread_free(&t);
	t = thread_of(true, asyncio_busy);
	assert_int_equal(pk_shape_anchor(&t, 0), 0); /* the callback, which Handle._run calls */
	thread_free(&t);
	t = thread_of(true, asyncio_idle);
	assert_int_equal(pk_shape_anchor(&t, 0), -1);
	thread_free(&t);
	t = thread_of(true, gevent_pywsgi);
	assert_int_equal(pk_shape_anchor(&t, PK_PYMOD_GEVENT), 6); /* the greenlet's outermost */
	t.frames_truncated = true;
	assert_int_equal(pk_shape_anchor(&t, PK_PYMOD_GEVENT), -1);
	thread_free(&t);
	/* Shapes whose consequences do not depend on a job have none. */
	t = thread_of(false, plain_thread);
	assert_int_equal(pk_shape_anchor(&t, 0), -1);
	thread_free(&t);
	t = thread_of(true, script_main);
	assert_int_equal(pk_shape_anchor(&t, 0), -1);
	thread_free(&t);
}

/* A pool thread handing a finished job's result over (set_result, its
 * done-callbacks) or running a job that is C code is between jobs: an
 * exception there escapes _WorkItem.run's handler and ends the thread. */
static const char *const pool_finishing[] = {
	"report|/srv/srv_threads.py",
	"Future._invoke_callbacks|" PY311 "concurrent/futures/_base.py",
	"Future.set_result|" PY311 "concurrent/futures/_base.py",
	"_WorkItem.run|" PY311 "concurrent/futures/thread.py",
	"_worker|" PY311 "concurrent/futures/thread.py",
	"Thread.run|" PY311 "threading.py",
	"Thread._bootstrap_inner|" PY311 "threading.py",
	"Thread._bootstrap|" PY311 "threading.py",
	NULL,
};

static const char *const pool_c_job[] = {
	"_WorkItem.run|" PY311 "concurrent/futures/thread.py",
	"_worker|" PY311 "concurrent/futures/thread.py",
	"Thread.run|" PY311 "threading.py",
	"Thread._bootstrap_inner|" PY311 "threading.py",
	"Thread._bootstrap|" PY311 "threading.py",
	NULL,
};

/* An asyncio loop between callbacks: Handle._run, nothing above it. */
static const char *const asyncio_between[] = {
	"Handle._run|" PY311 "asyncio/events.py",
	"BaseEventLoop._run_once|" PY311 "asyncio/base_events.py",
	"BaseEventLoop.run_forever|" PY311 "asyncio/base_events.py",
	"<module>|/srv/aio.py",
	NULL,
};

static void test_between_jobs(void **state)
{
	(void)state;
	expect_shape(false, 0, pool_finishing, PK_SHAPE_POOL, true);
	expect_shape(false, 0, pool_c_job, PK_SHAPE_POOL, true);
	expect_shape(true, 0, asyncio_between, PK_SHAPE_ASYNCIO, true);
}

struct want {
	enum pk_shape shape;
	bool idle;
	const char *exception;
	enum pk_harm harm;
	const char *says; /* a phrase the consequence must contain */
};

/* The table issue #11 asked for, as measured (tests/integration/shapes). */
static const struct want table[] = {
	{ PK_SHAPE_GUNICORN, false, "SystemExit", PK_HARM_REFUSE, "ends this pool thread for good" },
	{ PK_SHAPE_GUNICORN, false, "KeyboardInterrupt", PK_HARM_REFUSE, "ends this pool thread for good" },
	{ PK_SHAPE_GUNICORN, false, "RuntimeError", PK_HARM_NONE, "500" },
	{ PK_SHAPE_GUNICORN, false, "TimeoutError", PK_HARM_NOTE, "OSError" },
	{ PK_SHAPE_GUNICORN, false, "ConnectionResetError", PK_HARM_NOTE, "socket error" },
	{ PK_SHAPE_CELERY, false, "SystemExit", PK_HARM_REFUSE, "vanishes" },
	{ PK_SHAPE_CELERY, false, "KeyboardInterrupt", PK_HARM_REFUSE, "vanishes" },
	{ PK_SHAPE_CELERY, false, "RuntimeError", PK_HARM_NONE, "task fails" },
	{ PK_SHAPE_CELERY, false, "TimeoutError", PK_HARM_NONE, "task fails" },
	{ PK_SHAPE_POOL, false, "SystemExit", PK_HARM_REFUSE, "for good" },
	{ PK_SHAPE_POOL, false, "GeneratorExit", PK_HARM_REFUSE, "future" },
	{ PK_SHAPE_POOL, false, "RuntimeError", PK_HARM_NONE, "fails this job only" },
	{ PK_SHAPE_POOL, false, "TimeoutError", PK_HARM_NONE, "fails this job only" },
	{ PK_SHAPE_POOL, true, "RuntimeError", PK_HARM_REFUSE, "lose the job it takes next" },
	{ PK_SHAPE_POOL, true, "SystemExit", PK_HARM_REFUSE, "lose the job it takes next" },
	{ PK_SHAPE_ASYNCIO, false, "SystemExit", PK_HARM_REFUSE, "ends the event loop" },
	{ PK_SHAPE_ASYNCIO, false, "KeyboardInterrupt", PK_HARM_REFUSE, "ends the event loop" },
	{ PK_SHAPE_ASYNCIO, false, "RuntimeError", PK_HARM_NONE, "loop goes on" },
	{ PK_SHAPE_ASYNCIO, false, "TimeoutError", PK_HARM_NONE, "loop goes on" },
	{ PK_SHAPE_ASYNCIO, true, "RuntimeError", PK_HARM_REFUSE, "end run_forever" },
	{ PK_SHAPE_GREENLET, false, "SystemExit", PK_HARM_REFUSE, "ends the process" },
	{ PK_SHAPE_GREENLET, false, "KeyboardInterrupt", PK_HARM_REFUSE, "ends the process" },
	{ PK_SHAPE_GREENLET, false, "RuntimeError", PK_HARM_NONE, "500" },
	{ PK_SHAPE_GREENLET, false, "TimeoutError", PK_HARM_NOTE, "IndexError" },
	{ PK_SHAPE_GEVENT_HUB, true, "RuntimeError", PK_HARM_REFUSE, "hub" },
	{ PK_SHAPE_GEVENT_HUB, true, "SystemExit", PK_HARM_REFUSE, "hub" },
	{ PK_SHAPE_UWSGI, false, "SystemExit", PK_HARM_REFUSE, "this core stops serving for good" },
	{ PK_SHAPE_UWSGI, false, "KeyboardInterrupt", PK_HARM_NONE, "this request only" },
	{ PK_SHAPE_UWSGI, false, "RuntimeError", PK_HARM_NONE, "this request only" },
	{ PK_SHAPE_UWSGI, true, "RuntimeError", PK_HARM_REFUSE, "next request" },
	{ PK_SHAPE_WAITRESS, false, "SystemExit", PK_HARM_REFUSE, "never gets an answer" },
	{ PK_SHAPE_WAITRESS, false, "KeyboardInterrupt", PK_HARM_REFUSE, "never gets an answer" },
	{ PK_SHAPE_WAITRESS, false, "GeneratorExit", PK_HARM_REFUSE, "never gets an answer" },
	{ PK_SHAPE_WAITRESS, false, "BaseException", PK_HARM_REFUSE, "never gets an answer" },
	{ PK_SHAPE_WAITRESS, false, "RuntimeError", PK_HARM_NONE, "500" },
	{ PK_SHAPE_WAITRESS, false, "TimeoutError", PK_HARM_NONE, "500" },
	{ PK_SHAPE_WAITRESS, true, "RuntimeError", PK_HARM_REFUSE, "for good" },
	{ PK_SHAPE_CHEROOT, false, "SystemExit", PK_HARM_REFUSE, "whole server" },
	{ PK_SHAPE_CHEROOT, true, "KeyboardInterrupt", PK_HARM_REFUSE, "whole server" },
	{ PK_SHAPE_CHEROOT, false, "GeneratorExit", PK_HARM_REFUSE, "for good" },
	{ PK_SHAPE_CHEROOT, false, "BaseException", PK_HARM_REFUSE, "for good" },
	{ PK_SHAPE_CHEROOT, false, "RuntimeError", PK_HARM_NONE, "500" },
	{ PK_SHAPE_CHEROOT, false, "TimeoutError", PK_HARM_REFUSE, "IndexError" },
	{ PK_SHAPE_CHEROOT, true, "RuntimeError", PK_HARM_REFUSE, "for good" },
	{ PK_SHAPE_TWISTED, false, "SystemExit", PK_HARM_NONE, "500" },
	{ PK_SHAPE_TWISTED, false, "RuntimeError", PK_HARM_NONE, "500" },
	{ PK_SHAPE_TWISTED, true, "RuntimeError", PK_HARM_REFUSE, "for good" },
	{ PK_SHAPE_MAIN, false, "SystemExit", PK_HARM_REFUSE, "ends the program" },
	{ PK_SHAPE_MAIN, false, "KeyboardInterrupt", PK_HARM_REFUSE, "ends the program" },
	{ PK_SHAPE_MAIN, false, "RuntimeError", PK_HARM_NOTE, "main thread" },
	/* The mission: SystemExit into a plain thread is not refused. */
	{ PK_SHAPE_THREAD, false, "SystemExit", PK_HARM_NONE, "ends this thread quietly" },
	{ PK_SHAPE_THREAD, false, "KeyboardInterrupt", PK_HARM_NONE, "traceback" },
	{ PK_SHAPE_THREAD, false, "RuntimeError", PK_HARM_NONE, "traceback" },
	{ PK_SHAPE_UNKNOWN, false, "SystemExit", PK_HARM_NONE, "does not recognise" },
};

static void test_consequences(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct want *w = &table[i];
		struct pk_consequence c = { PK_HARM_NONE, NULL };

		pk_shape_consequence(w->shape, w->idle, w->exception, &c);
		if (c.harm != w->harm || c.text == NULL || strstr(c.text, w->says) == NULL)
			fail_msg("%s%s, %s: harm %d (want %d): %s (want \"%s\")", pk_shape_key(w->shape),
				 w->idle ? " idle" : "", w->exception, (int)c.harm, (int)w->harm, c.text ? c.text : "(none)",
				 w->says);
	}
}

/* Every shape and state says something for every kind of exception. */
static void test_consequences_total(void **state)
{
	static const char *const kinds[] = { "SystemExit", "KeyboardInterrupt", "GeneratorExit", "OSError",
					     "ValueError" };
	(void)state;

	for (int s = 0; s < PK_SHAPE_COUNT; s++)
		for (int idle = 0; idle < 2; idle++)
			for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
				struct pk_consequence c = { PK_HARM_NONE, NULL };
				pk_shape_consequence((enum pk_shape)s, idle, kinds[k], &c);
				assert_non_null(c.text);
				assert_true(strlen(c.text) > 10);
			}
	assert_string_equal(pk_shape_key((enum pk_shape)99), "unknown");
}

/* The default is what fails only the request where a server is
 * recognised, SystemExit elsewhere; a suggestion is never refused itself. */
static void test_defaults(void **state)
{
	(void)state;
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_GUNICORN, false), "RuntimeError");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_CELERY, false), "RuntimeError");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_POOL, false), "RuntimeError");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_ASYNCIO, false), "RuntimeError");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_GREENLET, false), "RuntimeError");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_UWSGI, false), "RuntimeError");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_WAITRESS, false), "RuntimeError");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_CHEROOT, false), "RuntimeError");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_TWISTED, false), "RuntimeError");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_THREAD, false), "SystemExit");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_UNKNOWN, false), "SystemExit");
	assert_string_equal(pk_shape_default_exception(PK_SHAPE_MAIN, false), "SystemExit");
	assert_null(pk_shape_suggest(PK_SHAPE_POOL, true));
	assert_null(pk_shape_suggest(PK_SHAPE_ASYNCIO, true));
	assert_null(pk_shape_suggest(PK_SHAPE_GEVENT_HUB, true));
	assert_null(pk_shape_suggest(PK_SHAPE_MAIN, false));
	for (int s = 0; s < PK_SHAPE_COUNT; s++)
		for (int idle = 0; idle < 2; idle++) {
			const char *sug = pk_shape_suggest((enum pk_shape)s, idle);
			struct pk_consequence c;
			if (sug == NULL)
				continue;
			pk_shape_consequence((enum pk_shape)s, idle, sug, &c);
			assert_int_not_equal(c.harm, PK_HARM_REFUSE);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_servers),
		cmocka_unit_test(test_thread_servers),
		cmocka_unit_test(test_gevent),
		cmocka_unit_test(test_uwsgi),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_anchor),
		cmocka_unit_test(test_between_jobs),
		cmocka_unit_test(test_consequences),
		cmocka_unit_test(test_consequences_total),
		cmocka_unit_test(test_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
