/* SPDX-License-Identifier: MIT */
/* cpython: the interpreter model of a live CPython process.
 *
 * pk_py_open() finds the interpreter in the target (maps + ELF symbols, never
 * running any of the target's binaries), detects its version and picks the
 * memory layout. pk_py_snapshot() reads every interpreter and thread, with
 * stacks and names, stopping only what it must, for as short as it can.
 * Target memory is untrusted: every walk is bounded and validated. */
#ifndef PK_CPYTHON_H
#define PK_CPYTHON_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pk_py;

/* -ESRCH no such process, -EPERM/-EACCES no rights, -ENOEXEC not a Python
 * process, -ENOTSUP a Python whose version pykill has no layout for,
 * -ENOENT a "*python*" file it maps could not be opened as the file mapped
 * (replaced or deleted since, unmapped meanwhile: see pk_map_open) and no
 * other holds the interpreter. */
int pk_py_open(pid_t pid, struct pk_py **out);
void pk_py_close(struct pk_py *py);

pid_t pk_py_pid(const struct pk_py *py);
const char *pk_py_version(const struct pk_py *py);      /* "3.12.1" */
uint32_t pk_py_hexversion(const struct pk_py *py);     /* PY_VERSION_HEX when known, else major/minor only */
const char *pk_py_path(const struct pk_py *py);        /* file holding the interpreter, as the target sees it */
const char *pk_py_layout_source(const struct pk_py *py); /* "generated table 3.12" / "_Py_DebugOffsets" */

enum pk_freeze_mode {
	PK_FREEZE_AUTO = 0, /* stop only threads that could change what is read, verify the rest did not run */
	PK_FREEZE_ALL,      /* stop every thread of the process */
	PK_FREEZE_NONE,     /* never stop anything (the snapshot may be torn) */
};

struct pk_snapshot_opts {
	enum pk_freeze_mode freeze;
	unsigned max_frames;     /* per thread; 0 = default (PK_DEFAULT_MAX_FRAMES) */
	bool want_frames;
	bool want_names;
};
#define PK_DEFAULT_MAX_FRAMES 2048u
#define PK_MAX_THREADS 100000u

struct pk_py_frame {
	char *function;          /* qualified name where the version has one */
	char *file;
	int line;                /* 0 when unknown */
	uint64_t addr;           /* where the frame is in the target (frame object, or 3.11+ interpreter frame) */
	uint64_t code;           /* its code object (an address reused by another call runs other code) */
};

enum pk_gil_role {
	PK_GIL_UNKNOWN = 0,
	PK_GIL_NONE,             /* neither holds nor waits */
	PK_GIL_HOLDS,
	PK_GIL_WAITS,            /* blocked taking the GIL */
	PK_GIL_DROPPING,         /* blocked handing the GIL over (FORCE_SWITCHING) */
	PK_GIL_ABSENT,           /* its interpreter runs without a GIL (a free-threaded build whose GIL is
				  * not enabled): no thread holds or waits for one */
};

/* How the OS thread of a thread state was found (see DESIGN.md, "Thread
 * identity"). */
enum pk_tid_from {
	PK_TID_FROM_NONE = 0,    /* no live thread: tid is 0 */
	PK_TID_FROM_STACK,       /* 3.11+: its eval loop runs on that thread's stack */
	PK_TID_FROM_NATIVE,      /* 3.11+: its native_thread_id, a live thread of the process */
	PK_TID_FROM_PTHREAD,     /* its ident, a pthread_t: that thread descriptor's kernel TID */
};

/* What a thread is, told from its Python stack (cpython/shape.c): the
 * worker shapes of common servers, whose reaction to an exception is known
 * (measured by tests/integration/shapes). */
enum pk_shape {
	PK_SHAPE_UNKNOWN = 0,    /* nothing recognised (a thread started from C, a stack cut short) */
	PK_SHAPE_THREAD,         /* a plain threading.Thread */
	PK_SHAPE_MAIN,           /* the main thread, in none of the shapes below */
	PK_SHAPE_POOL,           /* a concurrent.futures ThreadPoolExecutor worker */
	PK_SHAPE_GUNICORN,       /* gunicorn gthread's pool worker, handling a request */
	PK_SHAPE_CELERY,         /* celery's threads-pool worker, running a task */
	PK_SHAPE_ASYNCIO,        /* the thread of an asyncio event loop */
	PK_SHAPE_GEVENT_HUB,     /* gevent's hub: the loop every greenlet of the thread waits on */
	PK_SHAPE_GREENLET,       /* a gevent greenlet other than the hub, running */
	PK_SHAPE_UWSGI,          /* a uwsgi core thread (the app called from C) */
	PK_SHAPE_WAITRESS,       /* a waitress handler thread (ThreadedTaskDispatcher) */
	PK_SHAPE_CHEROOT,        /* a cheroot (CherryPy) WorkerThread */
	PK_SHAPE_TWISTED,        /* a twisted thread-pool worker (the reactor's: WSGIResource, deferToThread) */
};
#define PK_SHAPE_COUNT (PK_SHAPE_TWISTED + 1)

/* Modules of the main interpreter (sys.modules) that tell shapes apart
 * when no frame does (a greenlet's function, an app uwsgi calls from C). */
enum pk_py_module {
	PK_PYMOD_GEVENT = 1u << 0,
	PK_PYMOD_UWSGI = 1u << 1,
};

struct pk_py_thread {
	int64_t interp_id;       /* 0 = main interpreter */
	bool main_interp;
	uint64_t tstate;         /* address of the PyThreadState */
	uint64_t ident;          /* threading.get_ident(): the thread_id field (the creating thread's pthread_t) */
	pid_t tid;               /* kernel TID, in pykill's PID namespace, of the live thread the state is on; 0 if none */
	pid_t ns_tid;            /* TID in the target's namespace (== tid when same namespace) */
	pid_t native_tid;        /* 3.11+: native_thread_id as the state holds it (target's namespace); 0 before */
	enum pk_tid_from tid_from;
	pid_t ident_tid;         /* the live thread its ident names (the descriptor's, else native_thread_id's), 0 if none */
	bool inherited;          /* 3.11+: created in the parent process and kept across fork without
				  * PyOS_AfterFork: native_thread_id names no thread of this process */
	bool idle;               /* another thread state is the one active on this OS thread (a thread that
				  * swaps states, e.g. one per interpreter); an exception queued here would
				  * wait until the state runs again */
	bool ambiguous;          /* several states are on this OS thread and nothing tells which one is
				  * active (the one not idle is a guess) */
	uint64_t cstack;         /* 3.11+: an address on the C stack of the eval loop running the state (the
				  * innermost _PyCFrame or entry frame), 0 if it runs none */
	bool is_main;            /* the interpreter's main thread */
	enum pk_gil_role gil;
	bool has_async_exc;      /* an async exception is pending */
	bool stw_suspended;      /* free-threaded: its state is suspended for a stop-the-world pause (the
				  * GC, fork, finalisation; 3.13 compiles pauses only into these builds): it waits for the world to restart */
	char state;              /* /proc state letter: R S D T t Z I ..., '?' unknown; 'X' also for a
				  * thread whose state is left behind after it exited, TID unknown */
	long syscall_nr;         /* -1 none, PK_PY_SYSCALL_RUNNING */
	uint64_t syscall_args[6];
	uint64_t syscall_sp;     /* its stack pointer in that call (/proc .../syscall) */
	char *name;              /* threading.Thread name, NULL if none */
	struct pk_py_frame *frames; /* innermost first */
	size_t nframes;
	bool frames_truncated;   /* stack deeper than max_frames */
	char *frames_error;      /* why the walk stopped early, NULL if it did not */
	enum pk_shape shape;     /* with want_frames (and want_names, for the module hints) */
	bool shape_idle;         /* waiting for work (a pool's queue, a loop's poll), not running a job */
};

/* A native thread of the process with no Python thread state. */
struct pk_native_thread {
	pid_t tid, ns_tid;
	char state;
	long syscall_nr;
	uint64_t syscall_args[6];
	char comm[64];
};

struct pk_py_snapshot {
	pid_t pid, ns_pid;
	uint64_t freeze_ns;      /* how long any thread was stopped; 0 if none was */
	size_t nstopped;         /* threads stopped */
	uint64_t read_ns;        /* time spent reading */
	unsigned rounds;         /* consistency rounds taken (AUTO) */
	size_t ninterps;
	/* One group per OS thread: the state active on it, then its idle states;
	 * states on no live thread (tid 0) last. */
	struct pk_py_thread *threads;
	size_t nthreads;
	size_t nos_threads;      /* groups: live OS threads with a thread state (the active ones) */
	struct pk_native_thread *natives;
	size_t nnatives;
	bool finalizing;
	unsigned modules;        /* PK_PYMOD_* loaded in the main interpreter (with want_names) */
	/* Why the reading stopped short of the end of the thread lists (or of
	 * the frames), "" when it did not: their length in thread states is
	 * bounded by the number of threads of the process, the time spent
	 * reading while any thread is stopped too (a forged or cyclic list
	 * must not keep the target stopped). What was read is kept. */
	char cut[256];
};

int pk_py_snapshot(struct pk_py *py, const struct pk_snapshot_opts *opts, struct pk_py_snapshot **out);
void pk_py_snapshot_free(struct pk_py_snapshot *snap);

/* ------------------------------------------------------------ shapes */

/* "pool", "asyncio"...: stable names for JSON and the SHAPE column. */
const char *pk_shape_key(enum pk_shape shape);
/* "concurrent.futures pool worker"...: for sentences. */
const char *pk_shape_label(enum pk_shape shape);
/* The shape of a thread from its frames (innermost first), whether it is
 * the main thread, and the modules loaded; *idle: waiting for work rather
 * than running a job. Pure: no target is read. */
enum pk_shape pk_shape_classify(const struct pk_py_thread *t, unsigned modules, bool *idle);

/* The frame of the job a worker runs (the function a pool's work item or
 * an event loop's handle calls, a greenlet's or a uwsgi core's outermost
 * frame): while it is on the stack the thread runs the job it was read in.
 * Its index in t->frames, or -1 (no job, or a shape whose consequences do
 * not depend on one). */
int pk_shape_anchor(const struct pk_py_thread *t, unsigned modules);
/* The modules (PK_PYMOD_*) that tell t's shape: the main interpreter's
 * (snap->modules); for a state of a subinterpreter only uwsgi, a property
 * of the process (its mounted apps run in subinterpreters it calls from C),
 * not gevent (monkey-patching is per interpreter, and not read there). */
unsigned pk_shape_modules(const struct pk_py_snapshot *snap, const struct pk_py_thread *t);

enum pk_harm {
	PK_HARM_NONE = 0,        /* fails what the thread runs, as intended */
	PK_HARM_NOTE,            /* does something the operator may not expect: say it */
	PK_HARM_REFUSE,          /* ends a pool thread for good, the server or the process, or loses work
				  * silently: refused unless confirmed (raise --force) */
};

struct pk_consequence {
	enum pk_harm harm;
	const char *text;        /* static: what the exception does there ("it" is the exception) */
};

/* What raising the built-in exception named exception does to a thread of
 * this shape (from the table in cpython/shape.c). */
void pk_shape_consequence(enum pk_shape shape, bool idle, const char *exception, struct pk_consequence *out);
/* The exception that fails only the work in progress in this shape (a
 * server's request), or NULL where none does (an idle worker, the hub, the
 * main thread, a plain thread). */
const char *pk_shape_suggest(enum pk_shape shape, bool idle);
/* raise's exception when none is named: the suggestion above, else
 * SystemExit (which ends a plain thread quietly). */
const char *pk_shape_default_exception(enum pk_shape shape, bool idle);

/* ------------------------------------------------------------ raise */

enum pk_raise_via {
	PK_VIA_AUTO = 0,  /* the write path where the layout is known exactly, else the call path if safe */
	PK_VIA_CALL,      /* PyGILState_Ensure / PyThreadState_SetAsyncExc / PyGILState_Release in a borrowed thread */
	PK_VIA_WRITE,     /* threads not blocked in a system call stopped, async_exc and the eval breaker written */
};

enum pk_verdict {
	PK_VERDICT_DELIVERED = 0, /* this run's exception left async_exc while the thread was there: it fired */
	PK_VERDICT_PENDING,       /* queued; the reason says why it has not fired yet */
	PK_VERDICT_ENDED,         /* the thread ended with it still queued or just taken (cannot be told apart) */
	PK_VERDICT_REPLACED,      /* another exception replaced it before it fired (reason names it) */
	PK_VERDICT_WITHDRAWN,     /* --withdraw-if-pending took it back: it will not fire */
	PK_VERDICT_REFUSED,       /* not raised, nothing done: its consequence there is refused (see consequence) */
};

struct pk_raise_opts {
	uint64_t thread;         /* kernel TID, or Python ident (a TID first: idents are far above pid_max) */
	const char *exception;   /* built-in exception class name, e.g. "SystemExit"; NULL: the
				  * default of the thread's shape (pk_shape_default_exception) */
	enum pk_raise_via via;
	unsigned wait_ms;        /* how long to watch for delivery */
	bool interrupt;          /* make the system call the thread is blocked in return EINTR */
	bool withdraw_if_pending; /* take the exception back if still pending after wait_ms ("now or never") */
	bool force;              /* raise even where the consequence is PK_HARM_REFUSE */
	bool pick_interp;        /* take the thread's state of interpreter `interp` (else: the one active on it) */
	int64_t interp;
	/* Non-NULL: the caller's signal handler stores the signal's number
	 * there to stop the run. Before anything is queued: -EINTR, nothing
	 * done. Once queued: the watch ends early, with the verdict it would
	 * have given at the end of wait_ms (withdraw_if_pending applies). */
	const volatile sig_atomic_t *stop;
};

struct pk_raise_result {
	pid_t tid, ns_tid;
	uint64_t ident;
	uint64_t tstate;         /* the thread state the exception was queued in */
	int64_t interp_id;       /* its interpreter */
	enum pk_tid_from tid_from;
	bool inherited;
	char *name;              /* the thread's threading name, or NULL */
	const char *exception;   /* the exception raised (or refused): opts->exception or the shape's
				  * default; not owned */
	bool exception_default;  /* chosen by the shape: none was named */
	enum pk_shape shape;     /* the thread's shape when it was read, and whether it was idle */
	bool shape_idle;
	struct pk_consequence consequence; /* what the exception does there */
	enum pk_raise_via via;   /* the path used */
	char via_reason[512];    /* why that path */
	pid_t hijacked_tid;      /* call path: the thread that made the call */
	uint64_t freeze_ns;      /* how long any thread was stopped to inject */
	uint64_t inject_ns;      /* command start to exception queued */
	enum pk_verdict verdict;
	int stopped_by;          /* the signal that ended the watch early (opts->stop), 0 none */
	uint64_t waited_ns;      /* queued to delivered (or to giving up) */
	char reason[640];        /* pending: why (blocked in a system call, GIL, C code) */
	long syscall_nr;         /* pending: the system call the thread is blocked in, -1 none */
	uint64_t syscall_args[6];
	char state;
	char *where;             /* innermost Python frame "func (file:line)", or NULL */
	long interrupted_nr;     /* --interrupt: the system call made to return EINTR, -1 if none */
	char interrupt_note[256]; /* --interrupt: what happened (or why nothing was interrupted) */
	char withdraw_note[256];  /* --withdraw-if-pending: what happened, "" if not asked or not pending */
};

/* Queue exception opts->exception in the chosen thread and watch it for
 * opts->wait_ms. THREAD names an OS thread (a TID, or an ident: the
 * pthread_t of a thread); the exception goes to the one thread state active
 * on it, never to an idle one. -ESRCH: no such thread (or it has no Python
 * thread state, or ended before the exception was queued); -EBUSY also when
 * the thread has several states and which one is active cannot be told,
 * or opts->interp names an idle one (the message names the candidates); -ENOENT: no such exception
 * class in this interpreter (see pk_py_exception_suggest); -ECANCELED: an
 * exception class that cannot be raised without arguments; -EEXIST: another
 * exception is already queued for the thread (never replaced); -EBUSY:
 * refused for safety (finalizing interpreter, no safe path); other -errno
 * on failure. Every refusal leaves the target untouched. An exception whose
 * consequence in the thread's shape is PK_HARM_REFUSE is not raised
 * without opts->force: 0, verdict PK_VERDICT_REFUSED, res->consequence
 * says why (decided from the first reading, before anything is stopped for
 * writing, claimed or written). */
int pk_py_raise(struct pk_py *py, const struct pk_raise_opts *opts, struct pk_raise_result *out);
void pk_raise_result_clear(struct pk_raise_result *res);

/* pykill withdraw: remove the exception queued for one thread (whoever
 * queued it), threads stopped as the write path does. */
struct pk_withdraw_result {
	pid_t tid;
	uint64_t ident;
	int64_t interp_id;
	char *name;              /* the thread's threading name, or NULL */
	bool withdrawn;          /* an exception was queued and is removed */
	char exception[128];     /* its name, when withdrawn */
	uint64_t freeze_ns;
};
/* interp -1: the state of THREAD with an exception queued (refused naming
 * them when several have one), else the active one. */
int pk_py_withdraw(struct pk_py *py, uint64_t thread, int64_t interp, struct pk_withdraw_result *res);
void pk_withdraw_result_clear(struct pk_withdraw_result *res);

/* Close matches for an unknown exception name, "A, B, C" (empty if none). */
void pk_py_exception_suggest(struct pk_py *py, const char *name, char *buf, size_t cap);

/* ------------------------------------------------------------ locks */

/* A thread blocked in futex() waiting for a threading.RLock (cpython/locks.c). */
struct pk_rlock_wait {
	uint64_t rlock;          /* the RLock object's address */
	uint64_t holder_ident;   /* threading.get_ident() of the thread that holds it */
	uint64_t count;          /* how many times the holder acquired it */
};

/* Which RLock t waits for and who holds it, when that is proven from t's
 * futex word and the RLock's own fields (3.6+); -ENOENT when t waits for
 * none, or it cannot be told (then nothing is to be said). Reads memory and
 * /proc without stopping anything: call after a snapshot, t one of its
 * threads. */
int pk_py_rlock_wait(struct pk_py *py, const struct pk_py_thread *t, struct pk_rlock_wait *out);

/* Whether t is asleep in the kernel, where its time off CPU
 * (pk_py_offcpu_ns) is how long it has been blocked; a running thread's
 * time in its state cannot be told from one reading. */
bool pk_py_thread_blocked(const struct pk_py_thread *t);

/* ------------------------------------------------- what /proc says, for printing
 * (procview.c) The system call a thread is blocked in, what its descriptors
 * lead to and how long it has been off the CPU, read from /proc after the
 * snapshot (nothing stopped): attach/ finds them, cpython/ hands them on so
 * that cli/ needs no header of another module. */

/* syscall_nr of a thread that runs, so no system call can be told. */
#define PK_PY_SYSCALL_RUNNING (-2)

/* The system call's name on this architecture, NULL if unknown. */
const char *pk_py_syscall_name(long nr);
/* The same, or unknown (a word for messages) when it has none: nr < 0 too. */
const char *pk_py_syscall_name_or(long nr, const char *unknown);
/* How many arguments of nr are worth showing (0..6). */
int pk_py_syscall_nargs(long nr);
/* Bit i set when argument i of nr is a file descriptor. */
unsigned pk_py_syscall_fd_args(long nr);

/* What a descriptor is; which fields of struct pk_py_fd say more. */
enum pk_py_fd_kind {
	PK_PY_FD_UNKNOWN = 0,
	PK_PY_FD_FILE,      /* pos */
	PK_PY_FD_PIPE,      /* holders: the other end */
	PK_PY_FD_INET,      /* proto tcp/tcp6/udp/udp6, local, remote, state */
	PK_PY_FD_UNIX,      /* proto unix, path (may be empty), state, peer_inode; holders: the peer */
	PK_PY_FD_SOCKET,    /* another socket family (netlink, packet...) or not found */
	PK_PY_FD_OTHER,     /* anon_inode:..., /dev/... character devices are files */
};
#define PK_PY_FD_MAX_HOLDERS 8
/* Where a descriptor of the target leads, as far as /proc shows: what list
 * prints of a descriptor argument. Strings are the target's bytes. */
struct pk_py_fd {
	enum pk_py_fd_kind kind;
	char target[256];   /* readlink of /proc/PID/fd/FD: a path, "socket:[123]", "pipe:[45]" */
	long long pos;      /* file offset, -1 unknown */
	char proto[8], state[16];   /* "tcp".."udp6", "unix"; "ESTABLISHED", "LISTEN", "CONNECTED"...; "" unknown */
	char local[64], remote[64]; /* "127.0.0.1:5432", "[::1]:80" */
	char path[256];     /* unix socket path ("@name" abstract) */
	uint64_t peer_inode; /* unix: the other end's inode, 0 unknown */
	/* Other processes' descriptors on the same pipe (the other end) or unix socket (the peer). */
	struct {
		pid_t pid;
		int fd;
		char mode;      /* 'r', 'w', 'u' (read-write), '?' */
		char comm[24];  /* raw from /proc/PID/comm */
	} holders[PK_PY_FD_MAX_HOLDERS];
	size_t nholders;
	bool holders_truncated; /* more holders, or the /proc scan hit its bound */
};
/* Who holds which pipe and socket: one bounded walk of /proc, made on the
 * first lookup that needs it and kept for the later ones (NULL before). */
struct pk_py_fd_index;
/* Fills out as far as /proc shows; -EBADF no such fd, -ESRCH no such
 * process; no pk_error() (the caller prints what it has). */
int pk_py_fd_info(pid_t pid, int fd, struct pk_py_fd_index **ix, struct pk_py_fd *out);
void pk_py_fd_index_free(struct pk_py_fd_index *ix);

/* The scheduler clock, and how long before now_ns thread tid of pid last
 * left a CPU (meaningful for a blocked thread only). -ENOENT when the
 * kernel has no sched file, -ESRCH/-ENOENT when the thread ended; no
 * pk_error(): the caller says "unknown". */
int pk_py_sched_now(uint64_t *now_ns);
int pk_py_offcpu_ns(pid_t pid, pid_t tid, uint64_t now_ns, uint64_t *ns);

/* Another tracer (not this process) of pid or of one of its threads: its
 * PID, or 0 if none is seen (the hint to an -EPERM). */
pid_t pk_py_other_tracer(pid_t pid);

/* ------------------------------------------------------------ ps */

/* A Python process found by pk_py_ps. */
struct pk_ps_proc {
	pid_t pid, ns_pid;       /* ns_pid: in the process's own PID namespace */
	uid_t uid;               /* effective */
	char version[32];        /* "" when the version is unsupported (see error) */
	char *path;              /* file holding the interpreter, as the target sees it; NULL if unknown */
	long nthreads;           /* OS threads with a Python thread state (list's rows); -1 when not counted */
	long nstates;            /* thread states of every interpreter (> nthreads when threads hold several,
				  * or states are on no live thread); -1 when not counted */
	char *cmdline;           /* arguments joined by spaces, at most 4096 bytes; "[comm]" if none */
	char *error;             /* why version or threads are missing, NULL if they are not */
	long stuck;              /* with stuck_ns: threads blocked that long and not waiting for
				  * work (a worker's :idle); -1 when not counted */
	uint64_t stuck_longest_ns; /* the longest of those */
};

struct pk_ps_opts {
	const pid_t *pids;       /* look only at these; NULL: every process in /proc */
	size_t npids;
	bool count_threads;      /* count the Python threads (pk_py_snapshot, PK_FREEZE_NONE) */
	uint64_t stuck_ns;       /* with count_threads, > 0: count the stuck threads (reads the stacks
				  * of a process that has threads blocked that long) */
};

struct pk_ps {
	struct pk_ps_proc *v;    /* ascending PID */
	size_t n;
	size_t scanned;          /* processes looked at */
	size_t skipped;          /* processes that could not be read (permission) */
	pid_t *skipped_pids;     /* with opts->pids: which of them were skipped, nskipped_pids of them */
	size_t nskipped_pids;
};

/* Every Python process the caller may read, without stopping anything and
 * without running any binary. Processes that end meanwhile, kernel threads,
 * zombies, TIDs that are not thread-group leaders and pykill itself are left
 * out; a Python of an unsupported version is listed with its error. -errno
 * only when /proc cannot be listed or memory runs out. */
int pk_py_ps(const struct pk_ps_opts *opts, struct pk_ps *out);
void pk_ps_free(struct pk_ps *ps);

#endif
