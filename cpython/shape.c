/* SPDX-License-Identifier: MIT */
/* Worker shapes: what a thread is, told from its Python stack, and what an
 * exception raised in it does there.
 *
 * An asynchronous exception does not land in "the request": it lands in
 * whatever frame runs, and the frames below decide what becomes of it. A
 * concurrent.futures worker catches every BaseException into the job's
 * future (a done-callback that reads it raises it again, in the pool
 * thread, which then ends); asyncio lets SystemExit and KeyboardInterrupt
 * out of run_forever; gevent hands them to the main greenlet; a thread
 * idle in a pool's queue or a loop's poll takes the exception in the
 * framework's own code. Both tables below are data: the rules that
 * recognise a shape (frames by function and file, modules loaded), and per
 * shape what each kind of exception does, as tests/integration/shapes
 * measured it on real servers. */
#include "pk_cpython.h"

#include <stddef.h>
#include <string.h>

/* ------------------------------------------------------------ recognising */

/* A frame: the last component of its function's (qualified) name, and the
 * end of its file's path from a '/' boundary. NULL function: any. */
struct frame_mark {
	const char *function;
	const char *file;
};

enum {
	RULE_MAIN_ONLY = 1u << 0,       /* the interpreter's main thread only */
	RULE_CALLED_FROM_C = 1u << 1,   /* outermost frame neither a module's code nor threading's bootstrap */
	RULE_ALWAYS_IDLE = 1u << 2,     /* the framework's waiting loop itself */
	RULE_JOB_IS_STACK = 1u << 3,    /* the whole stack is the job (busy with a frame, idle with none) */
};

#define MARKS 4

/* Where a worker runs its job: the frame its pool or loop calls the job
 * from, and the job is the frame that one calls -- unless that is the
 * framework's own bookkeeping (a future's set_result and its callbacks),
 * where an exception escapes the framework's handler as in its waiting
 * code. Where the loop calls more than the job (its queue, its logging,
 * closing the connection), the job frame itself is named: any other callee
 * is bookkeeping, outside the handler that catches the job's exceptions.
 * No job frame: idle (between jobs). */
struct job_mark {
	struct frame_mark caller;
	const char *not_job;            /* a file whose frames are not the job */
	struct frame_mark job;          /* when listed: the job is this callee only */
};

struct shape_rule {
	enum pk_shape shape;
	struct frame_mark marks[MARKS]; /* any one, anywhere in the stack (none listed: no frame needed) */
	struct frame_mark within;       /* and this one too, when listed */
	struct job_mark job;            /* none listed: always busy (or as the flags say) */
	unsigned modules;               /* PK_PYMOD_* that must all be loaded */
	unsigned flags;
};

#define NO_MARK { NULL, NULL }
#define NO_MARKS { NO_MARK }
#define NO_JOB { NO_MARK, NULL, NO_MARK }
/* concurrent.futures: _WorkItem.run calls the job, then set_result. */
#define POOL_JOB { { "run", "concurrent/futures/thread.py" }, "concurrent/futures/_base.py", NO_MARK }

/* First match wins: the most specific shapes first. */
static const struct shape_rule rules[] = {
	/* The hub's own stack: the loop all greenlets wait on (Hub.run). */
	{ PK_SHAPE_GEVENT_HUB, { { "run", "gevent/hub.py" } }, NO_MARK, NO_JOB, 0, RULE_ALWAYS_IDLE },
	/* A greenlet: StreamServer's (so pywsgi's) handlers, and Greenlet.run
	 * where gevent is not compiled... */
	{ PK_SHAPE_GREENLET,
	  { { "_handle_and_close_when_done", "gevent/baseserver.py" }, { "run", "gevent/greenlet.py" } },
	  NO_MARK, NO_JOB, 0, RULE_JOB_IS_STACK },
	/* ...any other is a main-thread stack that starts in C (a compiled
	 * Greenlet.run) in a process that loaded gevent. */
	{ PK_SHAPE_GREENLET, NO_MARKS, NO_MARK, NO_JOB, PK_PYMOD_GEVENT,
	  RULE_MAIN_ONLY | RULE_CALLED_FROM_C | RULE_JOB_IS_STACK },
	/* An event loop: in a callback or a task's step (Handle._run calls
	 * it), or in the loop's own code (_run_once, the selector). */
	{ PK_SHAPE_ASYNCIO, { { "run_forever", "asyncio/base_events.py" } }, NO_MARK,
	  { { "_run", "asyncio/events.py" }, NULL, NO_MARK }, 0, 0 },
	/* celery's threads pool and gunicorn's gthread worker run their jobs in
	 * a ThreadPoolExecutor: their frames above the pool's tell them apart. */
	{ PK_SHAPE_CELERY,
	  { { "apply_target", "celery/concurrency/base.py" }, { "trace_task", "celery/app/trace.py" } },
	  { "_worker", "concurrent/futures/thread.py" }, POOL_JOB, 0, 0 },
	{ PK_SHAPE_GUNICORN, { { "handle", "gunicorn/workers/gthread.py" } }, { "_worker", "concurrent/futures/thread.py" },
	  POOL_JOB, 0, 0 },
	/* Any other ThreadPoolExecutor worker: in a job, or between jobs (in
	 * the queue, or handing a result over). */
	{ PK_SHAPE_POOL, { { "_worker", "concurrent/futures/thread.py" } }, NO_MARK, POOL_JOB, 0, 0 },
	/* Servers whose worker threads loop over a queue of their own and call
	 * the request from one frame: busy only inside that call -- waitress's
	 * handler_thread calling HTTPChannel.service, cheroot's worker calling
	 * HTTPConnection.communicate (from WorkerThread.run in cheroot 9, from
	 * _process_connections_until_interrupted in 10+), twisted's inContext
	 * calling the job's lambda. Anywhere else (the queue's wait, logging a
	 * failure, put_conn or close, onResult) the thread is between jobs,
	 * outside the handler that would catch the exception. */
	{ PK_SHAPE_WAITRESS, { { "handler_thread", "waitress/task.py" } }, NO_MARK,
	  { { "handler_thread", "waitress/task.py" }, NULL, { "service", "waitress/channel.py" } }, 0, 0 },
	{ PK_SHAPE_CHEROOT, { { "run", "cheroot/workers/threadpool.py" } }, NO_MARK,
	  { { NULL, "cheroot/workers/threadpool.py" }, NULL, { "communicate", "cheroot/server.py" } }, 0, 0 },
	{ PK_SHAPE_TWISTED, { { "work", "twisted/_threads/_threadworker.py" } }, NO_MARK,
	  { { "inContext", "twisted/python/threadpool.py" }, NULL, { "<lambda>", "twisted/python/threadpool.py" } },
	  0, 0 },
	/* uwsgi calls the app from C in every core; an idle core has no frame. */
	{ PK_SHAPE_UWSGI, NO_MARKS, NO_MARK, NO_JOB, PK_PYMOD_UWSGI, RULE_CALLED_FROM_C | RULE_JOB_IS_STACK },
	{ PK_SHAPE_MAIN, NO_MARKS, NO_MARK, NO_JOB, 0, RULE_MAIN_ONLY },
	{ PK_SHAPE_THREAD,
	  { { "_bootstrap_inner", "threading.py" }, { "__bootstrap_inner", "threading.py" },
	    { "_bootstrap", "threading.py" }, { "__bootstrap", "threading.py" } },
	  NO_MARK, NO_JOB, 0, 0 },
};

/* "build_tracer.<locals>.trace_task" -> "trace_task". */
static const char *last_component(const char *qualname)
{
	const char *dot = strrchr(qualname, '.');

	return dot != NULL ? dot + 1 : qualname;
}

static bool path_ends_with(const char *path, const char *suffix)
{
	size_t lp = strlen(path), ls = strlen(suffix);

	if (ls > lp || strcmp(path + lp - ls, suffix) != 0)
		return false;
	return lp == ls || path[lp - ls - 1] == '/';
}

static bool frame_is(const struct pk_py_frame *f, const struct frame_mark *m)
{
	if (f->function == NULL || f->file == NULL)
		return false;
	if (m->function != NULL && strcmp(last_component(f->function), m->function) != 0)
		return false;
	return path_ends_with(f->file, m->file);
}

/* Does any frame match any mark of the list (of at most n)? An empty
 * list: no. */
static bool any_frame_of(const struct pk_py_thread *t, const struct frame_mark *marks, size_t n)
{
	for (size_t k = 0; k < n && marks[k].file != NULL; k++)
		for (size_t i = 0; i < t->nframes; i++)
			if (frame_is(&t->frames[i], &marks[k]))
				return true;
	return false;
}

/* Where the whole stack was read, does its outermost frame say the
 * interpreter called it from C: not a module's top level (a script,
 * runpy's -m), not threading's bootstrap? A thread with no frame at all
 * counts: it runs C code, or nothing. */
static bool called_from_c(const struct pk_py_thread *t)
{
	static const struct frame_mark started[] = {
		{ "_bootstrap", "threading.py" }, { "__bootstrap", "threading.py" },
		{ "_run_module_as_main", "runpy.py" }, { "_run_module_as_main", "<frozen runpy>" },
	};
	const struct pk_py_frame *outer;

	if (t->frames_truncated || t->frames_error != NULL)
		return false;
	if (t->nframes == 0)
		return true;
	outer = &t->frames[t->nframes - 1];
	if (outer->function == NULL || strcmp(last_component(outer->function), "<module>") == 0)
		return false;
	for (size_t k = 0; k < sizeof(started) / sizeof(started[0]); k++)
		if (frame_is(outer, &started[k]))
			return false;
	return true;
}

static bool rule_matches(const struct shape_rule *rule, const struct pk_py_thread *t, unsigned modules)
{
	if ((rule->modules & modules) != rule->modules)
		return false;
	if ((rule->flags & RULE_MAIN_ONLY) && !t->is_main)
		return false;
	if ((rule->flags & RULE_CALLED_FROM_C) && !called_from_c(t))
		return false;
	if (rule->marks[0].file != NULL && !any_frame_of(t, rule->marks, MARKS))
		return false;
	return rule->within.file == NULL || any_frame_of(t, &rule->within, 1);
}

static const struct shape_rule *rule_of(const struct pk_py_thread *t, unsigned modules)
{
	for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++)
		if (rule_matches(&rules[r], t, modules))
			return &rules[r];
	return NULL;
}

/* The frame of the job (the outermost one: a job may run a nested pool's
 * or loop's), or -1. */
static int job_frame(const struct pk_py_thread *t, const struct shape_rule *rule)
{
	if (rule->flags & RULE_JOB_IS_STACK)
		return t->nframes > 0 && !t->frames_truncated ? (int)t->nframes - 1 : -1;
	if (rule->job.caller.file == NULL)
		return -1;
	for (size_t i = t->nframes; i-- > 1;) {
		const struct pk_py_frame *callee = &t->frames[i - 1];
		if (!frame_is(&t->frames[i], &rule->job.caller))
			continue;
		if (rule->job.job.file != NULL) {
			if (frame_is(callee, &rule->job.job))
				return (int)i - 1;
			continue;
		}
		if (rule->job.not_job != NULL && callee->file != NULL && path_ends_with(callee->file, rule->job.not_job))
			return -1;
		return (int)i - 1;
	}
	return -1;
}

enum pk_shape pk_shape_classify(const struct pk_py_thread *t, unsigned modules, bool *idle)
{
	const struct shape_rule *rule = rule_of(t, modules);

	*idle = false;
	if (rule == NULL)
		return PK_SHAPE_UNKNOWN;
	if (rule->flags & RULE_ALWAYS_IDLE)
		*idle = true;
	else if (rule->flags & RULE_JOB_IS_STACK)
		*idle = t->nframes == 0;
	else if (rule->job.caller.file != NULL)
		*idle = job_frame(t, rule) < 0;
	return rule->shape;
}

int pk_shape_anchor(const struct pk_py_thread *t, unsigned modules)
{
	const struct shape_rule *rule = rule_of(t, modules);

	return rule != NULL ? job_frame(t, rule) : -1;
}

unsigned pk_shape_modules(const struct pk_py_snapshot *snap, const struct pk_py_thread *t)
{
	return t->main_interp ? snap->modules : snap->modules & PK_PYMOD_UWSGI;
}

static const struct {
	const char *key, *label;
} names[PK_SHAPE_COUNT] = {
	[PK_SHAPE_UNKNOWN] = { "unknown", "thread pykill does not recognise" },
	[PK_SHAPE_THREAD] = { "thread", "threading.Thread" },
	[PK_SHAPE_MAIN] = { "main", "main thread" },
	[PK_SHAPE_POOL] = { "pool", "concurrent.futures pool worker" },
	[PK_SHAPE_GUNICORN] = { "gunicorn", "gunicorn gthread pool worker" },
	[PK_SHAPE_CELERY] = { "celery", "celery threads-pool worker" },
	[PK_SHAPE_ASYNCIO] = { "asyncio", "asyncio event loop" },
	[PK_SHAPE_GEVENT_HUB] = { "gevent-hub", "gevent hub" },
	[PK_SHAPE_GREENLET] = { "greenlet", "gevent greenlet" },
	[PK_SHAPE_UWSGI] = { "uwsgi", "uwsgi core" },
	[PK_SHAPE_WAITRESS] = { "waitress", "waitress handler thread" },
	[PK_SHAPE_CHEROOT] = { "cheroot", "cheroot (CherryPy) worker thread" },
	[PK_SHAPE_TWISTED] = { "twisted", "twisted thread-pool worker" },
};

const char *pk_shape_key(enum pk_shape shape)
{
	return (unsigned)shape < PK_SHAPE_COUNT ? names[shape].key : "unknown";
}

const char *pk_shape_label(enum pk_shape shape)
{
	return (unsigned)shape < PK_SHAPE_COUNT ? names[shape].label : names[PK_SHAPE_UNKNOWN].label;
}

/* ------------------------------------------------------------ consequences */

/* Built-in exceptions by what catches them: `except Exception` catches all
 * but the first three kinds; servers treat OSError as a socket error. */
enum exc_kind {
	EXC_EXIT = 1u << 0,      /* SystemExit */
	EXC_INTERRUPT = 1u << 1, /* KeyboardInterrupt */
	EXC_BASE = 1u << 2,      /* other BaseException, not Exception */
	EXC_OS = 1u << 3,        /* OSError and its subclasses */
	EXC_OTHER = 1u << 4,     /* any other Exception */
};
#define EXC_ANY (EXC_EXIT | EXC_INTERRUPT | EXC_BASE | EXC_OS | EXC_OTHER)
#define EXC_NOT_EXCEPTION (EXC_EXIT | EXC_INTERRUPT | EXC_BASE)

static enum exc_kind exception_kind(const char *name)
{
	static const char *const base[] = { "BaseException", "GeneratorExit", "BaseExceptionGroup" };
	static const char *const os[] = {
		"OSError", "EnvironmentError", "IOError", "WindowsError", "BlockingIOError", "ChildProcessError",
		"ConnectionError", "BrokenPipeError", "ConnectionAbortedError", "ConnectionRefusedError",
		"ConnectionResetError", "FileExistsError", "FileNotFoundError", "InterruptedError",
		"IsADirectoryError", "NotADirectoryError", "PermissionError", "ProcessLookupError", "TimeoutError",
	};

	if (strcmp(name, "SystemExit") == 0)
		return EXC_EXIT;
	if (strcmp(name, "KeyboardInterrupt") == 0)
		return EXC_INTERRUPT;
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		if (strcmp(name, base[i]) == 0)
			return EXC_BASE;
	for (size_t i = 0; i < sizeof(os) / sizeof(os[0]); i++)
		if (strcmp(name, os[i]) == 0)
			return EXC_OS;
	return EXC_OTHER;
}

enum { BUSY = 1u << 0, IDLE = 1u << 1, EITHER = BUSY | IDLE };

struct outcome {
	enum pk_shape shape;
	unsigned when;           /* BUSY, IDLE or EITHER */
	unsigned kinds;          /* EXC_* */
	enum pk_harm harm;
	const char *text;
};

/* First match wins. Measured by tests/integration/shapes (gunicorn 20.1
 * gthread, celery 5.2 threads pool, asyncio and gevent 22.10 pywsgi on
 * Python 3.11, plain threads, a ThreadPoolExecutor server, and the servers
 * below); uwsgi 2.0.21 by tests/integration/servers (servers.uwsgi.master:
 * an application that catches nothing). "it" is the exception. */
static const struct outcome outcomes[] = {
	{ PK_SHAPE_GUNICORN, EITHER, EXC_NOT_EXCEPTION, PK_HARM_REFUSE,
	  "ends this pool thread for good: concurrent.futures stores it in the job's future, gunicorn's "
	  "finish_request reads that future in this thread and raises it again, and ThreadPoolExecutor never "
	  "starts another thread; the client gets no answer and its connection is never closed" },
	{ PK_SHAPE_GUNICORN, EITHER, EXC_OS, PK_HARM_NOTE,
	  "it is an OSError: gunicorn takes it for a socket error and closes the connection without an answer "
	  "(no 500; it logs \"Socket error processing request\" with the traceback); the thread takes the next "
	  "request" },
	{ PK_SHAPE_GUNICORN, EITHER, EXC_ANY, PK_HARM_NONE,
	  "gunicorn answers 500 to this request only; the thread takes the next one" },

	{ PK_SHAPE_CELERY, EITHER, EXC_NOT_EXCEPTION, PK_HARM_REFUSE,
	  "the task vanishes: celery's pool takes it for a lost worker and logs neither a failure nor a "
	  "success (no result, no retry); the pool thread takes the next task" },
	{ PK_SHAPE_CELERY, EITHER, EXC_ANY, PK_HARM_NONE,
	  "the task fails (celery logs it and records the failure); the pool thread takes the next task" },

	{ PK_SHAPE_POOL, IDLE, EXC_ANY, PK_HARM_REFUSE,
	  "the thread is between jobs (waiting in the pool's queue, or handing a result over): it would fire in "
	  "the pool's own code, end the thread for good (concurrent.futures logs 'Exception in worker') and lose "
	  "the job it takes next" },
	{ PK_SHAPE_POOL, BUSY, EXC_NOT_EXCEPTION, PK_HARM_REFUSE,
	  "concurrent.futures stores it in the job's future, past the job's 'except Exception': the job gets "
	  "no answer, and whoever reads that future gets it raised again; a done-callback that does (gunicorn's "
	  "and many programs' do) ends this pool thread for good, and ThreadPoolExecutor never starts another" },
	{ PK_SHAPE_POOL, BUSY, EXC_ANY, PK_HARM_NONE,
	  "fails this job only (a handler that catches Exception answers it; its future holds it otherwise); "
	  "the thread takes the next job" },

	{ PK_SHAPE_ASYNCIO, IDLE, EXC_ANY, PK_HARM_REFUSE,
	  "the loop is in its own code (waiting for events, or between callbacks): it would fire there, end "
	  "run_forever and with it the server (every connection of this loop)" },
	{ PK_SHAPE_ASYNCIO, BUSY, EXC_EXIT | EXC_INTERRUPT, PK_HARM_REFUSE,
	  "ends the event loop: asyncio lets SystemExit and KeyboardInterrupt out of run_forever, so the server "
	  "ends, and every connection of this loop with it" },
	{ PK_SHAPE_ASYNCIO, BUSY, EXC_ANY, PK_HARM_NONE,
	  "fails the running task or callback only (a handler that catches it answers the request; asyncio "
	  "logs an uncaught one); the loop goes on" },

	{ PK_SHAPE_GEVENT_HUB, EITHER, EXC_ANY, PK_HARM_REFUSE,
	  "the thread runs gevent's hub, the loop every greenlet waits on, not a request: it would fire in the "
	  "hub and end the server (a hung request is a running greenlet; pykill cannot reach the waiting ones)" },
	{ PK_SHAPE_GREENLET, EITHER, EXC_EXIT | EXC_INTERRUPT, PK_HARM_REFUSE,
	  "ends the process: gevent hands SystemExit and KeyboardInterrupt from any greenlet to the main "
	  "greenlet, and the server exits (pywsgi answers this request 500 first)" },
	{ PK_SHAPE_GREENLET, EITHER, EXC_OS, PK_HARM_NOTE,
	  "it is an OSError: pywsgi takes it for a socket error and fails on its empty arguments (IndexError): "
	  "the connection is closed without an answer; the server goes on" },
	{ PK_SHAPE_GREENLET, EITHER, EXC_ANY, PK_HARM_NONE,
	  "fails this greenlet's request only (pywsgi answers 500); the other greenlets go on" },

	{ PK_SHAPE_UWSGI, IDLE, EXC_ANY, PK_HARM_REFUSE,
	  "the core waits for a request outside Python: it would fire in the next request this core takes and "
	  "fail that one instead" },
	{ PK_SHAPE_UWSGI, BUSY, EXC_EXIT, PK_HARM_REFUSE,
	  "this core stops serving for good: uwsgi finalizes Python in it, which waits in threading._shutdown "
	  "forever, and the client gets no answer; the worker's other cores go on (one fewer until it is "
	  "reloaded)" },
	{ PK_SHAPE_UWSGI, BUSY, EXC_ANY, PK_HARM_NONE,
	  "fails this request only (uwsgi logs the traceback and closes the connection); the core takes the "
	  "next one" },

	/* waitress 2.1, cheroot 9.0, twisted 22.4 (WSGIResource): measured by
	 * tests/integration/shapes. None of them replaces a worker thread that
	 * ends: each is one request fewer at once for good. */
	{ PK_SHAPE_WAITRESS, IDLE, EXC_ANY, PK_HARM_REFUSE,
	  "the thread is between requests in waitress's own code (waiting for one, or logging the last one's "
	  "failure): it would fire there, at once or when the next request comes, end the thread for good "
	  "(waitress never starts another) and leave that client without an answer" },
	{ PK_SHAPE_WAITRESS, BUSY, EXC_NOT_EXCEPTION, PK_HARM_REFUSE,
	  "the client never gets an answer: it is not an Exception, so HTTPChannel.service (which answers 500 "
	  "to those) lets it through; waitress's handler_thread catches every BaseException, logs "
	  "\"Exception when servicing\" and leaves the connection open without a response; the thread takes "
	  "the next request" },
	{ PK_SHAPE_WAITRESS, BUSY, EXC_ANY, PK_HARM_NONE,
	  "waitress answers 500 to this request only; the thread takes the next one" },

	{ PK_SHAPE_CHEROOT, EITHER, EXC_EXIT | EXC_INTERRUPT, PK_HARM_REFUSE,
	  "ends the whole server: cheroot's WorkerThread.run catches SystemExit and KeyboardInterrupt and "
	  "hands them to the server (server.interrupt), which stops, and the process exits" },
	{ PK_SHAPE_CHEROOT, IDLE, EXC_ANY, PK_HARM_REFUSE,
	  "the thread is between connections in cheroot's own code (waiting in its queue, or closing or keeping "
	  "the last one): it would fire there, at once or when the next one comes, end the thread for good "
	  "(cheroot does not replace it) and leave that client without an answer" },
	{ PK_SHAPE_CHEROOT, BUSY, EXC_OS, PK_HARM_REFUSE,
	  "it is an OSError: cheroot takes it for a socket error and fails on its empty arguments "
	  "(IndexError), which ends this worker thread for good (cheroot does not replace it); the "
	  "connection is closed without an answer" },
	{ PK_SHAPE_CHEROOT, BUSY, EXC_BASE, PK_HARM_REFUSE,
	  "it is not an Exception: cheroot's communicate catches only Exception (and hands SystemExit and "
	  "KeyboardInterrupt on), so it escapes the worker's loop: the connection is closed without an answer "
	  "and this worker thread ends for good (cheroot does not replace it)" },
	{ PK_SHAPE_CHEROOT, BUSY, EXC_ANY, PK_HARM_NONE,
	  "cheroot answers 500 to this request only; the thread takes the next one" },

	{ PK_SHAPE_TWISTED, IDLE, EXC_ANY, PK_HARM_REFUSE,
	  "the thread is between jobs (in the pool's queue, handing a result over, or the team's bookkeeping): "
	  "it would fire there, "
	  "end the thread for good (twisted's pool does not replace it) and lose the job it takes next: that "
	  "client gets no answer" },
	{ PK_SHAPE_TWISTED, BUSY, EXC_ANY, PK_HARM_NONE,
	  "fails this job only: twisted's pool catches every BaseException in the job (WSGIResource answers "
	  "500, even to SystemExit); the thread takes the next one" },

	{ PK_SHAPE_MAIN, EITHER, EXC_NOT_EXCEPTION, PK_HARM_REFUSE,
	  "ends the program: the main thread unwinds to the interpreter, which exits (SystemExit quietly, the "
	  "others with a traceback)" },
	{ PK_SHAPE_MAIN, EITHER, EXC_ANY, PK_HARM_NOTE,
	  "this is the main thread: unless the code it runs catches it, the program ends with a traceback" },

	{ PK_SHAPE_THREAD, EITHER, EXC_EXIT, PK_HARM_NONE,
	  "ends this thread quietly unless the code it runs catches it (its finally blocks run, threading "
	  "prints nothing; a thread that loops over jobs is gone for good); the thread's own code decides: "
	  "a framework's thread loop pykill does not recognise may catch it and stop the whole server "
	  "(cheroot's does) or drop the request without an answer (waitress's does)" },
	{ PK_SHAPE_THREAD, EITHER, EXC_ANY, PK_HARM_NONE,
	  "fails what the thread runs; unless its code catches it, the thread ends and threading prints a "
	  "traceback" },

	{ PK_SHAPE_UNKNOWN, EITHER, EXC_ANY, PK_HARM_NONE,
	  "pykill does not recognise what this thread runs: what follows depends on its code" },
};

void pk_shape_consequence(enum pk_shape shape, bool idle, const char *exception, struct pk_consequence *out)
{
	unsigned kind = exception_kind(exception), when = idle ? IDLE : BUSY;

	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
		const struct outcome *o = &outcomes[i];
		if (o->shape == shape && (o->when & when) && (o->kinds & kind)) {
			out->harm = o->harm;
			out->text = o->text;
			return;
		}
	}
	pk_shape_consequence(PK_SHAPE_UNKNOWN, false, exception, out);
}

const char *pk_shape_suggest(enum pk_shape shape, bool idle)
{
	switch (shape) {
	case PK_SHAPE_POOL:
	case PK_SHAPE_ASYNCIO:
	case PK_SHAPE_UWSGI:
	case PK_SHAPE_WAITRESS:
	case PK_SHAPE_CHEROOT:
	case PK_SHAPE_TWISTED:
		return idle ? NULL : "RuntimeError";
	case PK_SHAPE_GUNICORN:
	case PK_SHAPE_CELERY:
	case PK_SHAPE_GREENLET:
		return "RuntimeError";
	default:
		return NULL;
	}
}

const char *pk_shape_default_exception(enum pk_shape shape, bool idle)
{
	const char *s = pk_shape_suggest(shape, idle);

	return s != NULL ? s : "SystemExit";
}
