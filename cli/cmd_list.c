/* SPDX-License-Identifier: MIT */
/* pykill list PID: every Python thread of a live process. */
#include "cli.h"
#include "pk_clock.h"
#include "pk_log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_JSON = 256, OPT_STACKS, OPT_FREEZE, OPT_MAX_FRAMES, OPT_SORT, OPT_STUCK };

/* "busy" running a job, "idle" waiting for one; null where the shape has
 * no such thing (a plain thread, the main thread, an unknown). */
static const char *shape_state(const struct pk_py_thread *t)
{
	switch (t->shape) {
	case PK_SHAPE_POOL:
	case PK_SHAPE_GUNICORN:
	case PK_SHAPE_CELERY:
	case PK_SHAPE_ASYNCIO:
	case PK_SHAPE_GEVENT_HUB:
	case PK_SHAPE_GREENLET:
	case PK_SHAPE_UWSGI:
	case PK_SHAPE_WAITRESS:
	case PK_SHAPE_CHEROOT:
	case PK_SHAPE_TWISTED:
		return t->shape_idle ? "idle" : "busy";
	default:
		return NULL;
	}
}

/* What a thread that runs gevent hides: the greenlets that are not
 * running (pykill reads the thread's current stack only). */
static const char *gevent_note(const struct pk_py_thread *t)
{
	if (t->shape == PK_SHAPE_GEVENT_HUB)
		return "runs gevent: its hub is running, no request is; the greenlets waiting on the hub are not "
		       "shown (pykill reads only the running stack)";
	if (t->shape == PK_SHAPE_GREENLET)
		return "runs gevent: the greenlet shown is the one running; the others (and the hub) are not shown "
		       "(pykill reads only the running stack)";
	return NULL;
}

/* One line of output: a thread, and how long it has been off CPU. */
struct row {
	const struct pk_py_thread *t;
	size_t index;            /* in the snapshot: keeps --sort stable */
	size_t nidle;            /* the thread's idle states, after index in the snapshot */
	bool blocked_known;
	uint64_t blocked_ns;
	bool rlock_known;        /* waits for an RLock, holder proven (pk_py_rlock_wait) */
	struct pk_rlock_wait rlock;
};

struct list_view {
	struct row *rows;
	size_t n;
	size_t hidden;           /* OS threads left out by --stuck */
	size_t hidden_states;    /* their thread states */
};

/* Read after the snapshot, once nothing is stopped: /proc only. */
static void measure_blocked(pid_t pid, struct row *rows, size_t n)
{
	uint64_t now;
	int rc = pk_py_sched_now(&now);

	if (rc < 0) {
		pk_log(PK_LOG_INFO, "blocked times unknown: no scheduler clock in /proc/thread-self/sched (%s)",
		       strerror(-rc));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!pk_py_thread_blocked(rows[i].t))
			continue;
		rc = pk_py_offcpu_ns(pid, rows[i].t->tid, now, &rows[i].blocked_ns);
		rows[i].blocked_known = rc == 0;
		if (rc < 0)
			pk_log(PK_LOG_DEBUG, "blocked time of thread %d unknown: %s", (int)rows[i].t->tid, strerror(-rc));
	}
}

/* Longest blocked first; unknown and running after, in snapshot order. */
static int row_cmp_blocked(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->blocked_known != y->blocked_known)
		return x->blocked_known ? -1 : 1;
	if (x->blocked_known && x->blocked_ns != y->blocked_ns)
		return x->blocked_ns > y->blocked_ns ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

static void format_blocked(const struct row *r, char *buf, size_t cap)
{
	if (r->t->tid == 0)
		snprintf(buf, cap, "?");
	else if (!pk_py_thread_blocked(r->t))
		snprintf(buf, cap, "-");
	else if (!r->blocked_known)
		snprintf(buf, cap, "?");
	else
		pk_format_duration(r->blocked_ns, buf, cap);
}

/* Columns of the NAME: as wide as the longest name, 16 to 32 characters;
 * a longer name is cut there with "..." (JSON has it whole). Counted in
 * code points of the escaped text, which is what a terminal advances by
 * (bar wide CJK glyphs). */
#define NAME_MIN_COLS 16u
#define NAME_MAX_COLS 32u

static size_t text_cols(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* Bytes of the token of escaped text at s: a whole escape (\\, \n, \xNN,
 * \uNNNN: what pk_esc writes), else one UTF-8 character. */
static size_t esc_token(const char *s)
{
	size_t n = 1;

	if (s[0] == '\\')
		n = s[1] == 'x' ? 4 : s[1] == 'u' ? 6 : 2;
	else
		while (((unsigned char)s[n] & 0xC0) == 0x80)
			n++;
	for (size_t i = 1; i < n; i++)
		if (s[i] == '\0')
			return i;
	return n;
}

/* The escaped name, cut to cols columns (never inside an escape), then
 * padded to them. */
static void print_name_cell(const char *esc, size_t cols)
{
	size_t w = text_cols(esc), i = 0, used = 0;

	if (w <= cols) {
		printf("%s%*s", esc, (int)(cols - w), "");
		return;
	}
	while (esc[i] != '\0') {
		size_t n = esc_token(esc + i), tw = esc[i] == '\\' ? n : 1;

		if (used + tw > cols - 3)
			break;
		used += tw;
		i += n;
	}
	printf("%.*s...%*s", (int)i, esc, (int)(cols - 3 - used), "");
}

static size_t name_cols(const struct list_view *v)
{
	char e[PK_ESC_CAP];
	size_t cols = NAME_MIN_COLS;

	for (size_t i = 0; i < v->n; i++) {
		size_t w = v->rows[i].t->name ? text_cols(pk_esc(v->rows[i].t->name, e, sizeof(e))) : 1;
		if (w > cols)
			cols = w < NAME_MAX_COLS ? w : NAME_MAX_COLS;
	}
	return cols;
}

#define RLOCK_BUDGET_NS (50u * 1000000u)

/* Read after the snapshot, nothing stopped. Each waiter costs a few small
 * reads: bounded in time for a process with thousands of waiting threads
 * (then the rest say nothing). */
static void find_rlock_holders(struct pk_py *py, struct row *rows, size_t n)
{
	uint64_t t0 = pk_now_ns();

	for (size_t i = 0; i < n; i++) {
		if (pk_now_ns() - t0 > RLOCK_BUDGET_NS) {
			pk_log(PK_LOG_INFO, "RLock holders not looked for in threads %zu to %zu: %u ms spent", i, n - 1,
			       (unsigned)(RLOCK_BUDGET_NS / 1000000u));
			return;
		}
		rows[i].rlock_known = pk_py_rlock_wait(py, rows[i].t, &rows[i].rlock) == 0;
		pk_error_clear();
	}
}

/* The rows to print, measured, filtered by --stuck (stuck_ns, 0 = all) and
 * sorted: one per OS thread, its active state (the snapshot has its idle
 * states right after it), and one per state on no live thread. */
static int make_view(struct pk_py *py, const struct pk_py_snapshot *snap, bool sort_blocked, uint64_t stuck_ns,
		     struct list_view *v)
{
	size_t k = 0, n = 0;

	v->rows = calloc(snap->nthreads ? snap->nthreads : 1, sizeof(*v->rows));
	v->n = 0;
	v->hidden = v->hidden_states = 0;
	if (v->rows == NULL) {
		pk_error("list: out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < snap->nthreads; i++) {
		if (snap->threads[i].idle && n > 0 && snap->threads[i].tid == v->rows[n - 1].t->tid) {
			v->rows[n - 1].nidle++;
			continue;
		}
		v->rows[n].t = &snap->threads[i];
		v->rows[n].index = i;
		n++;
	}
	measure_blocked(snap->pid, v->rows, n);
	for (size_t i = 0; i < n; i++) {
		if (stuck_ns > 0 && !(v->rows[i].blocked_known && v->rows[i].blocked_ns >= stuck_ns)) {
			v->hidden++;
			v->hidden_states += 1 + v->rows[i].nidle;
			continue;
		}
		v->rows[k++] = v->rows[i];
	}
	v->n = k;
	if (sort_blocked)
		qsort(v->rows, v->n, sizeof(*v->rows), row_cmp_blocked);
	/* Only for the rows shown, in their order: the budget goes to those. */
	find_rlock_holders(py, v->rows, v->n);
	return 0;
}

/* The thread holding the GIL this thread waits for, when that is known: the
 * one thread of its interpreter that holds a GIL (a GIL belongs to one
 * interpreter, or to all of them before 3.12; a holder in another
 * interpreter may hold another GIL: then nothing is said). */
static const struct pk_py_thread *gil_holder(const struct pk_py_snapshot *snap, const struct pk_py_thread *t)
{
	const struct pk_py_thread *h = NULL;

	if (t->gil != PK_GIL_WAITS)
		return NULL;
	for (size_t i = 0; i < snap->nthreads; i++) {
		const struct pk_py_thread *u = &snap->threads[i];

		if (u == t || u->gil != PK_GIL_HOLDS || u->interp_id != t->interp_id)
			continue;
		if (h != NULL)
			return NULL;
		h = u;
	}
	return h;
}

/* " [GIL held by 23497 (worker-2)]" after a GIL waiter's system call. */
static void append_gil_holder(const struct pk_py_snapshot *snap, const struct pk_py_thread *t, char *buf, size_t cap)
{
	const struct pk_py_thread *h = gil_holder(snap, t);
	size_t o = strlen(buf);
	int n;

	if (h == NULL || o >= cap)
		return;
	n = snprintf(buf + o, cap - o, " [GIL held by %d (", (int)h->tid);
	o = n < 0 ? cap : o + (size_t)n;
	pk_format_untrusted(buf, cap, &o, h->name ? h->name : "-");
	pk_format_untrusted(buf, cap, &o, ")]");
}

/* The one live Python thread with this ident (an RLock records its owner's
 * ident), by its active state, other than the waiter; NULL when none or
 * several (a state left behind by a thread that exited). */
static const struct pk_py_thread *holder_by_ident(const struct pk_py_snapshot *snap, const struct pk_py_thread *waiter,
						  uint64_t ident)
{
	const struct pk_py_thread *h = NULL;

	for (size_t i = 0; i < snap->nthreads; i++) {
		const struct pk_py_thread *u = &snap->threads[i];

		/* An OS thread's idle states (subinterpreters) share its ident. */
		if (u->ident != ident || u->idle)
			continue;
		if (u == waiter || u->tid <= 0 || h != NULL)
			return NULL;
		h = u;
	}
	return h;
}

/* " [RLock held by 23497 (worker-2)]" after an RLock waiter's system call. */
static void append_rlock_holder(const struct pk_py_snapshot *snap, const struct row *r, char *buf, size_t cap)
{
	const struct pk_py_thread *h;
	size_t o = strlen(buf);
	int n;

	if (!r->rlock_known || o >= cap)
		return;
	h = holder_by_ident(snap, r->t, r->rlock.holder_ident);
	if (h == NULL) {
		snprintf(buf + o, cap - o, " [RLock held by ident 0x%llx, no one live thread of this list]",
			 (unsigned long long)r->rlock.holder_ident);
		return;
	}
	n = snprintf(buf + o, cap - o, " [RLock held by %d (", (int)h->tid);
	o = n < 0 ? cap : o + (size_t)n;
	pk_format_untrusted(buf, cap, &o, h->name ? h->name : "-");
	pk_format_untrusted(buf, cap, &o, ")]");
}

static void json_thread(struct pk_json *j, const struct pk_py_snapshot *snap, const struct row *r)
{
	const struct pk_py_thread *t = r->t, *h;
	char hex[24];

	pk_json_obj_begin(j, NULL);
	pk_json_int(j, "tid", t->tid);
	pk_json_int(j, "ns_tid", t->ns_tid);
	pk_json_uint(j, "ident", (unsigned long long)t->ident);
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)t->ident);
	pk_json_str(j, "ident_hex", hex);
	pk_json_int(j, "interp", t->interp_id);
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)t->tstate);
	pk_json_str(j, "tstate", hex);
	if (t->native_tid > 0)
		pk_json_int(j, "native_thread_id", t->native_tid);
	else
		pk_json_null(j, "native_thread_id");
	pk_json_str(j, "tid_from", pk_tid_from_name(t->tid_from));
	pk_json_int(j, "ident_tid", t->ident_tid);
	pk_json_bool(j, "inherited", t->inherited);
	pk_json_bool(j, "idle", t->idle);
	pk_json_bool(j, "ambiguous", t->ambiguous);
	pk_json_bool(j, "main", t->is_main);
	/* null: there is no GIL (a free-threaded interpreter running without one). */
	if (t->gil == PK_GIL_ABSENT)
		pk_json_null(j, "gil");
	else
		pk_json_bool(j, "gil", t->gil == PK_GIL_HOLDS);
	pk_json_str(j, "gil_state", pk_gil_name(t->gil));
	pk_json_bool(j, "stop_the_world", t->stw_suspended);
	pk_json_str(j, "state", pk_state_name(t->state));
	if (r->blocked_known)
		pk_json_seconds(j, "blocked_s", r->blocked_ns);
	else
		pk_json_null(j, "blocked_s");
	pk_json_syscall(j, snap->pid, t->syscall_nr, t->syscall_args);
	h = gil_holder(snap, t);
	if (h != NULL) {
		pk_json_obj_begin(j, "gil_holder");
		pk_json_int(j, "tid", h->tid);
		pk_json_uint(j, "ident", (unsigned long long)h->ident);
		pk_json_str(j, "name", h->name);
		pk_json_obj_end(j);
	} else {
		pk_json_null(j, "gil_holder");
	}
	if (r->rlock_known) {
		h = holder_by_ident(snap, t, r->rlock.holder_ident);
		pk_json_obj_begin(j, "rlock_holder");
		if (h != NULL)
			pk_json_int(j, "tid", h->tid);
		else
			pk_json_null(j, "tid");
		pk_json_uint(j, "ident", (unsigned long long)r->rlock.holder_ident);
		pk_json_str(j, "name", h != NULL ? h->name : NULL);
		pk_json_uint(j, "count", (unsigned long long)r->rlock.count);
		pk_json_obj_end(j);
	} else {
		pk_json_null(j, "rlock_holder");
	}
	pk_json_str(j, "name", t->name);
	pk_json_bool(j, "async_exc_pending", t->has_async_exc);
	pk_json_str(j, "shape", pk_shape_key(t->shape));
	pk_json_str(j, "shape_state", shape_state(t));
	pk_json_arr_begin(j, "frames");
	for (size_t i = 0; i < t->nframes; i++) {
		pk_json_obj_begin(j, NULL);
		pk_json_str(j, "function", t->frames[i].function);
		pk_json_str(j, "file", t->frames[i].file);
		pk_json_int(j, "line", t->frames[i].line);
		pk_json_obj_end(j);
	}
	pk_json_arr_end(j);
	pk_json_bool(j, "frames_truncated", t->frames_truncated);
	pk_json_str(j, "frames_error", t->frames_error);
	pk_json_str(j, "note", gevent_note(t));
	pk_json_obj_end(j);
}

static void print_json(struct pk_py *py, const struct pk_py_snapshot *snap, const struct list_view *v)
{
	struct pk_json j;

	pk_json_init(&j, stdout);
	pk_json_obj_begin(&j, NULL);
	pk_json_int(&j, "schema", 1);
	pk_json_int(&j, "pid", snap->pid);
	pk_json_int(&j, "ns_pid", snap->ns_pid);
	pk_json_obj_begin(&j, "python");
	pk_json_str(&j, "version", pk_py_version(py));
	pk_json_str(&j, "path", pk_py_path(py));
	pk_json_obj_end(&j);
	pk_json_uint(&j, "freeze_us", (unsigned long long)(snap->freeze_ns / 1000));
	pk_json_uint(&j, "threads_stopped", (unsigned long long)snap->nstopped);
	pk_json_uint(&j, "interpreters", (unsigned long long)snap->ninterps);
	pk_json_uint(&j, "os_threads", (unsigned long long)snap->nos_threads);
	pk_json_bool(&j, "finalizing", snap->finalizing);
	pk_json_str(&j, "threads_cut", snap->cut[0] != '\0' ? snap->cut : NULL);
	pk_json_arr_begin(&j, "threads");
	/* Every state: each row's, then its thread's idle states (as blocked
	 * as their thread). */
	for (size_t i = 0; i < v->n; i++) {
		json_thread(&j, snap, &v->rows[i]);
		for (size_t k = 1; k <= v->rows[i].nidle; k++) {
			struct row idle = v->rows[i];
			idle.t = &snap->threads[v->rows[i].index + k];
			json_thread(&j, snap, &idle);
		}
	}
	pk_json_arr_end(&j);
	pk_json_uint(&j, "threads_hidden", (unsigned long long)v->hidden_states);
	pk_json_arr_begin(&j, "native_threads");
	for (size_t i = 0; i < snap->nnatives; i++) {
		const struct pk_native_thread *n = &snap->natives[i];
		pk_json_obj_begin(&j, NULL);
		pk_json_int(&j, "tid", n->tid);
		pk_json_int(&j, "ns_tid", n->ns_tid);
		pk_json_str(&j, "comm", n->comm);
		pk_json_str(&j, "state", pk_state_name(n->state));
		pk_json_syscall(&j, snap->pid, n->syscall_nr, n->syscall_args);
		pk_json_obj_end(&j);
	}
	pk_json_arr_end(&j);
	pk_json_obj_end(&j);
	pk_json_end(&j);
}

/* Where a thread is: "function (file:line)", both names escaped (the
 * target's to choose: a newline in one would forge a row). */
static void print_frame(const struct pk_py_frame *f)
{
	char fn[PK_ESC_CAP], file[PK_ESC_CAP];

	printf("%s (%s:%d)", pk_esc(f->function, fn, sizeof(fn)), pk_esc(f->file, file, sizeof(file)), f->line);
}

static void print_where(const struct pk_py_thread *t)
{
	char e[PK_ESC_CAP];

	if (t->nframes > 0)
		print_frame(&t->frames[0]);
	else if (t->frames_error != NULL)
		printf("? (%s)", pk_esc(t->frames_error, e, sizeof(e)));
	else
		printf("-");
}

/* --stacks: every frame, one a line. */
static void print_stack(const struct pk_py_thread *t, const char *indent)
{
	char e[PK_ESC_CAP];

	for (size_t f = 0; f < t->nframes; f++) {
		printf("%s", indent);
		print_frame(&t->frames[f]);
		putchar('\n');
	}
	if (t->frames_truncated)
		printf("%s... stack cut at %zu frames\n", indent, t->nframes);
	if (t->frames_error)
		printf("%s... %s\n", indent, pk_esc(t->frames_error, e, sizeof(e)));
}

/* What the row's TID rests on, where it is not the plain case. */
static void print_notes(const struct row *r)
{
	const struct pk_py_thread *t = r->t;

	if (t->inherited)
		printf("    inherited across fork: its native_thread_id %d names a thread of the parent process; it is "
		       "on thread %d now\n", (int)t->native_tid, (int)t->tid);
	if (t->tid_from == PK_TID_FROM_STACK && t->ident_tid != 0 && t->ident_tid != t->tid)
		printf("    created on thread %d (its ident), runs on this one\n", (int)t->ident_tid);
	if (t->tid == 0)
		printf("    on no live thread (%s)\n", t->native_tid > 0 ? "its native_thread_id and its ident name none"
							  : "its ident names none");
	if (t->stw_suspended)
		printf("    paused: its interpreter stops the world (a free-threaded build's GC, fork or finalisation); it "
		       "runs again when the world restarts\n");
	if (t->ambiguous)
		printf("    %zu thread states on this thread and nothing tells which one is active (none is seen running "
		       "Python code on its stack): this row is a guess; raise needs --interp\n", 1 + r->nidle);
}

/* A state under its thread's row that the thread does not run now. */
static void print_idle(const struct pk_py_thread *t, bool stacks)
{
	char name[PK_ESC_CAP];

	printf("    idle: state 0x%llx of interpreter %lld, ident 0x%llx%s%s%s%s%s: ", (unsigned long long)t->tstate,
	       (long long)t->interp_id, (unsigned long long)t->ident, t->name ? " (" : "",
	       t->name ? pk_esc(t->name, name, sizeof(name)) : "", t->name ? ")" : "",
	       t->inherited ? ", inherited across fork" : "",
	       t->has_async_exc ? ", an exception queued (fires when the state runs again)" : "");
	if (t->nframes > 0) {
		printf("suspended in ");
		print_frame(&t->frames[0]);
	} else {
		printf("no Python frame");
	}
	putchar('\n');
	if (stacks)
		print_stack(t, "        ");
}

static void print_table(struct pk_py *py, const struct pk_py_snapshot *snap, const struct list_view *v, bool stacks,
			uint64_t stuck_ns)
{
	char sc[2048], tid[32], name[PK_ESC_CAP], e[PK_ESC_CAP], ver[128], blocked[24], shape[32], interp[24] = "";
	bool ns = snap->ns_pid != snap->pid, interps = snap->ninterps > 1;
	size_t ncols = name_cols(v);

	printf("PID %d%s  Python %s  %s  frozen %.3f ms (%zu thread%s stopped)\n", (int)snap->pid,
	       ns ? "" : "", pk_esc(pk_py_version(py), ver, sizeof(ver)), pk_esc(pk_py_path(py), e, sizeof(e)),
	       (double)snap->freeze_ns / 1e6, snap->nstopped, snap->nstopped == 1 ? "" : "s");
	if (ns)
		printf("PID %d in its own namespace\n", (int)snap->ns_pid);
	if (snap->finalizing)
		printf("the interpreter is shutting down\n");
	if (snap->cut[0] != '\0')
		printf("cut short: %s\n", pk_esc(snap->cut, e, sizeof(e)));
	/* One row per OS thread (its active state), its idle states under it;
	 * states on no live thread last (the snapshot's order, unless --sort).
	 * INTERP, the active state's interpreter, where there are several. */
	if (v->n > 0)
		printf("%-16s %-16s %-*s %s%-12s %-4s %-10s %-8s %-40s %s\n", "TID", "IDENT", (int)ncols, "NAME",
		       interps ? "INTERP " : "", "SHAPE", "GIL", "STATE", "BLOCKED", "SYSCALL", "WHERE");
	for (size_t i = 0; i < v->n; i++) {
		const struct pk_py_thread *t = v->rows[i].t;
		char flags[4] = "---";

		if (t->is_main)
			flags[0] = 'M';
		flags[1] = t->gil == PK_GIL_HOLDS ? 'G' : t->gil == PK_GIL_WAITS ? 'w' : t->gil == PK_GIL_DROPPING ? 'd' : '-';
		/* An exception queued and not yet taken: by a pykill whose
		 * verdict was "pending", or by the program. */
		if (t->has_async_exc)
			flags[2] = 'X';
		if (t->tid == 0)
			snprintf(tid, sizeof(tid), "-");
		else if (t->ns_tid != t->tid)
			snprintf(tid, sizeof(tid), "%d(%d)", (int)t->tid, (int)t->ns_tid);
		else
			snprintf(tid, sizeof(tid), "%d", (int)t->tid);
		if (t->syscall_nr >= 0) {
			pk_format_syscall(snap->pid, t->syscall_nr, t->syscall_args, sc, sizeof(sc));
			append_gil_holder(snap, t, sc, sizeof(sc));
			append_rlock_holder(snap, &v->rows[i], sc, sizeof(sc));
		} else {
			snprintf(sc, sizeof(sc), "%s", t->syscall_nr == PK_PY_SYSCALL_RUNNING ? "(running)" : "-");
		}
		format_blocked(&v->rows[i], blocked, sizeof(blocked));
		/* The hub is always the waiting loop: no ":idle" to add. */
		snprintf(shape, sizeof(shape), "%s%s", pk_shape_key(t->shape),
			 t->shape_idle && t->shape != PK_SHAPE_GEVENT_HUB ? ":idle" : "");
		if (interps)
			snprintf(interp, sizeof(interp), "%-6lld ", (long long)t->interp_id);
		printf("%-16s 0x%-14llx ", tid, (unsigned long long)t->ident);
		print_name_cell(t->name ? pk_esc(t->name, name, sizeof(name)) : "-", ncols);
		printf(" %s%-12s %-4s %-10s %-8s %-40s ", interp, shape, flags, pk_state_name(t->state), blocked, sc);
		print_where(t);
		putchar('\n');
		print_notes(&v->rows[i]);
		if (stacks)
			print_stack(t, "    ");
		for (size_t k = 1; k <= v->rows[i].nidle; k++)
			print_idle(&snap->threads[v->rows[i].index + k], stacks);
	}
	if (snap->nthreads != snap->nos_threads)
		printf("(%zu OS thread%s with %zu Python thread states)\n", snap->nos_threads,
		       snap->nos_threads == 1 ? "" : "s", snap->nthreads);
	if (stuck_ns > 0) {
		char d[24];
		pk_format_duration_exact(stuck_ns, d, sizeof(d));
		printf("(%zu thread%s not blocked for %s or longer, or not known to be, not shown)\n", v->hidden,
		       v->hidden == 1 ? "" : "s", d);
	}
	if (snap->nnatives > 0)
		printf("(%zu native thread%s without a Python thread state)\n", snap->nnatives,
		       snap->nnatives == 1 ? "" : "s");
	for (size_t i = 0; i < snap->nthreads; i++)
		if (!snap->threads[i].idle && gevent_note(&snap->threads[i]) != NULL)
			printf("(thread %d %s)\n", (int)snap->threads[i].tid, gevent_note(&snap->threads[i]));
	fflush(stdout);
}

int pk_cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "stacks", no_argument, NULL, OPT_STACKS },
		{ "freeze", required_argument, NULL, OPT_FREEZE },
		{ "max-frames", required_argument, NULL, OPT_MAX_FRAMES },
		{ "sort", required_argument, NULL, OPT_SORT },
		{ "stuck", required_argument, NULL, OPT_STUCK },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pk_snapshot_opts so = { .freeze = PK_FREEZE_AUTO, .want_frames = true, .want_names = true };
	struct pk_py *py = NULL;
	struct pk_py_snapshot *snap = NULL;
	struct list_view view = { 0 };
	bool json = false, stacks = false, sort_blocked = false;
	uint64_t stuck_ns = 0;
	char q[PK_ESC_ARG];
	pid_t pid;
	int c, rc;
	uint64_t t0;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_STACKS:
			stacks = true;
			break;
		case OPT_FREEZE:
			if (strcmp(optarg, "auto") == 0)
				so.freeze = PK_FREEZE_AUTO;
			else if (strcmp(optarg, "all") == 0)
				so.freeze = PK_FREEZE_ALL;
			else if (strcmp(optarg, "none") == 0)
				so.freeze = PK_FREEZE_NONE;
			else
				return pk_usage_error("list: --freeze must be auto, all or none, not '%s'",
						      pk_esc(optarg, q, sizeof(q)));
			break;
		case OPT_MAX_FRAMES: {
			uint64_t v;
			if (pk_parse_num(optarg, 0, 1, 1000000, &v) < 0)
				return pk_usage_error("list: --max-frames must be a number from 1 to 1000000 (decimal "
						      "digits only), not '%s'", pk_esc(optarg, q, sizeof(q)));
			so.max_frames = (unsigned)v;
			break;
		}
		case OPT_SORT:
			if (strcmp(optarg, "blocked") != 0)
				return pk_usage_error("list: --sort must be blocked, not '%s'", pk_esc(optarg, q, sizeof(q)));
			sort_blocked = true;
			break;
		case OPT_STUCK:
			if (!pk_parse_duration(optarg, &stuck_ns) || stuck_ns == 0)
				return pk_usage_error("list: --stuck must be a duration above 0 such as 30s, 5m, 1h "
						      "(at most a year), not '%s'", pk_esc(optarg, q, sizeof(q)));
			break;
		case 'v':
			pk_cli_more_verbose();
			break;
		case 'h':
			return pk_help();
		default:
			return pk_usage_error("list: unknown option '%s'", pk_esc(argv[optind - 1], q, sizeof(q)));
		}
	}
	if (optind >= argc)
		return pk_usage_error("list: missing PID");
	if (argc - optind > 1)
		return pk_usage_error("list: unexpected argument '%s'", pk_esc(argv[optind + 1], q, sizeof(q)));
	rc = pk_arg_pid("list", argv[optind], &pid);
	if (rc != PK_EXIT_OK)
		return rc;

	t0 = pk_now_ns();
	rc = pk_py_open(pid, &py);
	if (rc < 0)
		return pk_fail(rc, "inspect process");
	pk_log(PK_LOG_INFO, "found Python %s in %s in %.3f ms; layout: %s", pk_py_version(py), pk_py_path(py),
	       (double)(pk_now_ns() - t0) / 1e6, pk_py_layout_source(py));
	rc = pk_py_snapshot(py, &so, &snap);
	if (rc < 0) {
		char more[160] = "";

		/* A debugger or strace holds a thread: stopping is what failed,
		 * reading never needs it. */
		if (rc == -EPERM && so.freeze != PK_FREEZE_NONE && pk_py_other_tracer(pid) > 0)
			snprintf(more, sizeof(more), "'pykill list --freeze=none %d' still reads it: it stops nothing "
				 "(the picture may then be torn)", (int)pid);
		rc = pk_fail_hint(rc, "read the threads", more);
		pk_py_close(py);
		return rc;
	}
	pk_log(PK_LOG_INFO, "read %zu Python thread(s) in %zu interpreter(s) in %u round(s); %zu thread(s) stopped "
	       "for %.3f ms; total %.3f ms", snap->nthreads, snap->ninterps, snap->rounds, snap->nstopped,
	       (double)snap->freeze_ns / 1e6, (double)(pk_now_ns() - t0) / 1e6);
	rc = make_view(py, snap, sort_blocked, stuck_ns, &view);
	if (rc < 0) {
		rc = pk_fail(rc, "list the threads");
		pk_py_snapshot_free(snap);
		pk_py_close(py);
		return rc;
	}
	if (json)
		print_json(py, snap, &view);
	else
		print_table(py, snap, &view, stacks, stuck_ns);
	pk_format_done();
	free(view.rows);
	pk_py_snapshot_free(snap);
	pk_py_close(py);
	return PK_EXIT_OK;
}
