/* SPDX-License-Identifier: MIT */
/* pykill raise: queue an asynchronous exception in one thread, then watch it.
 *
 * Two ways to queue it:
 *  - the call path: one thread of the target, parked in an allow-listed
 *    blocking system call (so it holds none of the locks these functions
 *    take), runs PyGILState_Ensure / PyThreadState_SetAsyncExc /
 *    PyGILState_Release through the self-restoring trampoline of
 *    attach/include/pk_inject.h. Only that thread is stopped, and only until it
 *    runs the trampoline; the GIL holder keeps running so Ensure can get
 *    the GIL. Before calling, the GIL must be obtainable: free, or held by
 *    a thread that is executing bytecode (it drops the GIL on request).
 *  - the write path: every thread not blocked in a system call stopped
 *    (one that is cannot touch the interpreter until its call returns; it
 *    is checked again after), async_exc and the eval-breaker signal of
 *    this version written directly. No code runs in the target, so it
 *    works with a wedged GIL.
 * Either way, delivery is when the thread's async_exc is consumed (the eval
 * loop raised it) or the thread ends. */
#include "py-priv.h"
#include "pk_inject.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


void pk_raise_result_clear(struct pk_raise_result *res)
{
	free(res->name);
	free(res->where);
	memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------ exceptions */

static int exception_type(struct pk_py *py, const char *name, uint64_t *type)
{
	char sym[128];
	uint64_t value, size, ptr = 0;

	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return -ENOENT;
	if (snprintf(sym, sizeof(sym), "PyExc_%s", name) >= (int)sizeof(sym) ||
	    pk_elf_symbol(py->elf, sym, &value, &size) < 0)
		return -ENOENT;
	/* PyExc_X is a pointer variable: its value is the type object. */
	if (pk_rd_u64(py, value + py->bias, &ptr) < 0 || ptr == 0) {
		pk_error("read %s in process %d: unreadable", sym, (int)py->pid);
		return -EFAULT;
	}
	*type = ptr;
	return 0;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(size_t) * (lb + 1));
	}
	return prev[lb];
}

struct suggest {
	const char *want;
	char *buf;
	size_t cap, n;
};

static int suggest_cb(const char *sym, uint64_t value, void *ctx)
{
	struct suggest *s = ctx;
	const char *name = sym + 6; /* after "PyExc_" */
	size_t len = strlen(s->want);
	(void)value;

	if (s->n >= 5 || strchr(name, '@') != NULL)
		return 0;
	if (edit_distance(name, s->want) <= (len < 6 ? 1u : 3u) || strcasestr(name, s->want) != NULL) {
		if (s->buf[0] != '\0' && strstr(s->buf, name) != NULL)
			return 0; /* .dynsym and .symtab both have it */
		snprintf(s->buf + strlen(s->buf), s->cap - strlen(s->buf), "%s%s", s->buf[0] ? ", " : "", name);
		s->n++;
	}
	return 0;
}

void pk_py_exception_suggest(struct pk_py *py, const char *name, char *buf, size_t cap)
{
	struct suggest s = { name, buf, cap, 0 };

	buf[0] = '\0';
	pk_elf_symbols_with_prefix(py->elf, "PyExc_", suggest_cb, &s);
}

/* ------------------------------------------------------------ threads */

/* "interpreter 0 state 0x55d0 (name), interpreter 1 state 0x55e0" of the
 * states of one OS thread (those of interp, if >= 0). */
static void list_states(const struct pk_py_snapshot *snap, pid_t tid, int64_t interp, bool queued_only, char *buf,
			size_t cap)
{
	size_t len = 0, shown = 0, more = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < snap->nthreads; i++) {
		const struct pk_py_thread *t = &snap->threads[i];
		if (t->tid != tid || (interp >= 0 && t->interp_id != interp) || (queued_only && !t->has_async_exc))
			continue;
		if (shown >= 8 || len + 96 >= cap) {
			more++;
			continue;
		}
		snprintf(buf + len, cap - len, "%sinterpreter %lld state 0x%llx%s%s%s", shown ? ", " : "",
			 (long long)t->interp_id, (unsigned long long)t->tstate, t->name ? " (" : "",
			 t->name ? t->name : "", t->name ? ")" : "");
		len = strlen(buf);
		shown++;
	}
	if (more > 0 && len + 32 < cap)
		snprintf(buf + len, cap - len, " and %zu more", more);
}

/* The OS thread THREAD names: a TID of the process, or an ident, which is
 * the pthread_t of a thread (the thread whose descriptor it is; states
 * carrying it may run on other threads). 0 and a message when none. */
static pid_t thread_of_spec(struct pk_py *py, struct pk_py_snapshot *snap, const char *verb, const char *spec,
			    uint64_t v, struct pk_py_thread **legacy)
{
	struct pk_py_thread *only = NULL;
	size_t carrying = 0;

	*legacy = NULL;
	/* A TID (as ps -L shows it) first: idents are pointers, far above pid_max. */
	for (size_t i = 0; i < snap->nthreads; i++)
		if (snap->threads[i].tid != 0 && (uint64_t)snap->threads[i].tid == v)
			return snap->threads[i].tid;
	for (size_t i = 0; i < snap->nthreads; i++) {
		struct pk_py_thread *t = &snap->threads[i];
		if (t->ident != v)
			continue;
		if (t->ident_tid != 0)
			return t->ident_tid;
		carrying++;
		only = t;
	}
	if (carrying > 0) {
		/* The ident names no live thread. Without any thread identity
		 * (nothing could be resolved: a C library pykill cannot read) the
		 * state carrying it is the one meant, as long as it is only one. */
		if (snap->nos_threads == 0 && carrying == 1) {
			*legacy = only;
			return 0;
		}
		/* An exited thread's (its descriptor's TID cleared): the state
		 * itself, which raise refuses saying so. */
		if (carrying == 1 && only->tid == 0 && only->state == 'X') {
			*legacy = only;
			return 0;
		}
		if (carrying == 1 && only->tid != 0)
			return only->tid;
		pk_error("%s in process %d: the thread state%s with ident %s %s on no live thread (%s)", verb,
			 (int)py->pid, carrying == 1 ? "" : "s", spec, carrying == 1 ? "is" : "are",
			 py->layout.ts_native_thread_id >= 0
				 ? "its thread is gone: a state left behind, e.g. inherited across fork from a thread "
				   "of the parent"
				 : "its thread is gone");
		return 0;
	}
	for (size_t i = 0; i < snap->nnatives; i++) {
		if ((uint64_t)snap->natives[i].tid == v) {
			pk_error("%s in thread %llu of process %d: it has no Python thread state (%s)",
				 verb, (unsigned long long)v, (int)py->pid, snap->natives[i].comm);
			return 0;
		}
	}
	if (v < (1u << 22)) {
		char path[64];
		struct pk_status st;
		snprintf(path, sizeof(path), "/proc/%llu", (unsigned long long)v);
		if (access(path, F_OK) == 0 && pk_proc_status((pid_t)v, 0, &st) == 0 && st.tgid != py->pid) {
			pk_error_clear();
			pk_error("%s in thread %llu: it is not a thread of process %d (it belongs to process %d)",
				 verb, (unsigned long long)v, (int)py->pid, (int)st.tgid);
			return 0;
		}
		pk_error_clear();
		pk_error("%s in thread %llu of process %d: no such thread", verb, (unsigned long long)v, (int)py->pid);
		return 0;
	}
	pk_error("%s in process %d: no Python thread has ident %s", verb, (int)py->pid, spec);
	return 0;
}

/* The one thread state THREAD means. For raise: the state active on the
 * OS thread (never an idle one: an exception queued there fires only when
 * that state runs again, maybe in another request); refused, naming the
 * candidates, when which one is active cannot be told. interp >= 0 picks
 * among the thread's states. For withdraw: the state with an exception
 * queued, else the active one. NULL with a message (-ESRCH, or -EBUSY in
 * *err for a refusal). */
static struct pk_py_thread *find_thread_in(struct pk_py *py, struct pk_py_snapshot *snap, uint64_t v,
					   int64_t interp, bool withdraw, int *err)
{
	struct pk_py_thread *active = NULL, *in_interp = NULL, *queued = NULL, *legacy = NULL;
	size_t nstates = 0, ninterp = 0, nqueued = 0;
	char names[700], spec[48];
	const char *verb = withdraw ? "withdraw" : "raise";
	pid_t tid;

	*err = -ESRCH;
	snprintf(spec, sizeof(spec), "%llu (0x%llx)", (unsigned long long)v, (unsigned long long)v);
	tid = thread_of_spec(py, snap, verb, spec, v, &legacy);
	if (legacy != NULL) {
		if (interp >= 0 && legacy->interp_id != interp) {
			pk_error("%s in process %d: the thread state with ident %s belongs to interpreter %lld, not %lld",
				 verb, (int)py->pid, spec, (long long)legacy->interp_id, (long long)interp);
			return NULL;
		}
		return legacy;
	}
	if (tid == 0)
		return NULL;
	for (size_t i = 0; i < snap->nthreads; i++) {
		struct pk_py_thread *t = &snap->threads[i];
		if (t->tid != tid)
			continue;
		nstates++;
		if (!t->idle)
			active = t;
		if (interp >= 0 && t->interp_id != interp)
			continue;
		ninterp++;
		in_interp = t;
		if (t->has_async_exc) {
			nqueued++;
			queued = t;
		}
	}
	if (active == NULL) {
		pk_error("%s in thread %d of process %d: no thread state is active on it", verb, (int)tid, (int)py->pid);
		return NULL;
	}
	if (interp >= 0 && ninterp == 0) {
		list_states(snap, tid, -1, false, names, sizeof(names));
		pk_error("%s in thread %d of process %d: it has no thread state of interpreter %lld (it has: %s)",
			 verb, (int)tid, (int)py->pid, (long long)interp, names);
		return NULL;
	}
	*err = -EBUSY;
	if (withdraw) {
		if (nqueued == 1)
			return queued;
		if (nqueued > 1) {
			list_states(snap, tid, interp, true, names, sizeof(names));
			pk_error("withdraw in thread %d of process %d: refused: exceptions are queued in %zu of its thread "
				 "states (%s); choose one with --interp", (int)tid, (int)py->pid, nqueued, names);
			return NULL;
		}
		if (interp < 0 || active->interp_id == interp)
			return active;
		return in_interp;
	}
	if (nstates == 1)
		return active;
	if (!active->ambiguous) {
		if (interp < 0 || active->interp_id == interp)
			return active;
		pk_error("raise in thread %d of process %d: refused: its thread state of interpreter %lld is idle (the "
			 "thread runs interpreter %lld's state now); an exception queued in an idle state fires only "
			 "when that state runs again, maybe in another request", (int)tid, (int)py->pid,
			 (long long)interp, (long long)active->interp_id);
		return NULL;
	}
	if (interp >= 0 && ninterp == 1)
		return in_interp; /* the operator's choice: none runs Python code */
	list_states(snap, tid, interp, false, names, sizeof(names));
	pk_error("raise in thread %d of process %d: refused: it holds %zu thread states%s and nothing tells which one "
		 "is active (none is seen running Python code on its stack), so which one would take the exception "
		 "cannot be told: %s; %s", (int)tid, (int)py->pid, interp >= 0 ? ninterp : nstates,
		 interp >= 0 ? " of that interpreter" : "", names,
		 interp >= 0 ? "an exception queued in an idle one fires only when it runs again"
			     : "choose one with --interp N");
	return NULL;
}

/* Another state of t's interpreter with t's ident? */
static bool ident_shared(const struct pk_py_snapshot *snap, const struct pk_py_thread *t)
{
	for (size_t i = 0; i < snap->nthreads; i++)
		if (&snap->threads[i] != t && snap->threads[i].interp_id == t->interp_id &&
		    snap->threads[i].ident == t->ident)
			return true;
	return false;
}

/* Does t's OS thread hold other thread states than t? */
static bool thread_has_idle(const struct pk_py_snapshot *snap, const struct pk_py_thread *t)
{
	for (size_t i = 0; i < snap->nthreads; i++)
		if (&snap->threads[i] != t && t->tid != 0 && snap->threads[i].tid == t->tid)
			return true;
	return false;
}

/* find_thread_in's answer, told: a thread missing from a reading that was
 * cut short may be in the part not read. */
static struct pk_py_thread *find_thread(struct pk_py *py, struct pk_py_snapshot *snap, uint64_t v, int64_t interp,
					bool withdraw, int *err)
{
	struct pk_py_thread *t = find_thread_in(py, snap, v, interp, withdraw, err);

	if (t == NULL && *err == -ESRCH && snap->cut[0] != '\0') {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", pk_error_message());
		pk_error_set("%s (the reading was cut short: %s)", msg, snap->cut);
	}
	return t;
}

/* Has the task not exited? (A zombie is the leader that called
 * pthread_exit while other threads run on.) */
static bool thread_state_live(char state)
{
	return state != 'Z' && state != 'X';
}

static struct pk_py_thread *gil_holder(struct pk_py_snapshot *snap)
{
	for (size_t i = 0; i < snap->nthreads; i++)
		if (snap->threads[i].gil == PK_GIL_HOLDS)
			return &snap->threads[i];
	return NULL;
}

static void describe_thread(const struct pk_py_thread *t, char *buf, size_t cap)
{
	if (t->nframes > 0)
		snprintf(buf, cap, "thread %d (%s) in %s (%s:%d)", (int)t->tid, t->name ? t->name : "-",
			 t->frames[0].function, t->frames[0].file, t->frames[0].line);
	else
		snprintf(buf, cap, "thread %d (%s)", (int)t->tid, t->name ? t->name : "-");
}

/* ------------------------------------------------------------ call path */

static int libc_errno_location(struct pk_py *py, uint64_t *addr)
{
	for (size_t i = 0; i < py->maps.n; i++) {
		const struct pk_map *m = &py->maps.v[i];
		const char *base = strrchr(m->path, '/');
		struct pk_elf *elf;
		uint64_t v, size, bias;
		int rc;

		if (base == NULL || m->offset != 0 || (strncmp(base + 1, "libc.so", 7) != 0 && strncmp(base + 1, "libc-", 5) != 0))
			continue;
		if (pk_py_map_elf(py->pid, m, &elf) < 0)
			continue;
		rc = pk_elf_symbol(elf, "__errno_location", &v, &size);
		if (rc == 0)
			rc = pk_elf_load_bias(elf, m->start, m->offset, &bias);
		pk_elf_close(elf);
		if (rc == 0) {
			*addr = v + bias;
			return 0;
		}
	}
	/* A static build may carry its own libc. */
	{
		uint64_t v, size;
		if (pk_elf_symbol(py->elf, "__errno_location", &v, &size) == 0) {
			*addr = v + py->bias;
			return 0;
		}
	}
	pk_error_clear();
	return -ENOENT;
}

static int call_path(struct pk_py *py, const struct pk_py_thread *hijack, uint64_t ident, uint64_t exc,
		     struct pk_raise_result *res)
{
	struct pk_rcall_spec spec = { 0 };
	struct pk_rcall_result out = { 0 };
	uint64_t v, size;
	int rc;

	if (pk_elf_symbol(py->elf, "PyGILState_Ensure", &v, &size) < 0)
		goto nosym;
	spec.fn_ensure = v + py->bias;
	if (pk_elf_symbol(py->elf, "PyThreadState_SetAsyncExc", &v, &size) < 0)
		goto nosym;
	spec.fn_call = v + py->bias;
	if (pk_elf_symbol(py->elf, "PyGILState_Release", &v, &size) < 0)
		goto nosym;
	spec.fn_release = v + py->bias;
	libc_errno_location(py, &spec.fn_errno);
	spec.call_arg0 = ident;
	spec.call_arg1 = exc;
	spec.timeout_ms = 2000;
	spec.is_syscall_before = pk_code_is_syscall_before;
	spec.refuse_restart_block = true;
	spec.mem = py->mem;
	rc = pk_rcall_run(py->pid, hijack->tid, &spec, &out);
	res->freeze_ns = out.freeze_ns;
	res->hijacked_tid = hijack->tid;
	res->via = PK_VIA_CALL;
	snprintf(res->via_reason, sizeof(res->via_reason), "thread %d (%s) was borrowed from its %s", (int)hijack->tid,
		 hijack->name ? hijack->name : "-",
		 pk_py_syscall_name_or(out.syscall_nr, "sleep"));
	pk_log(PK_LOG_INFO, "call path: thread %d parked in %s ran the call: stopped %.3f ms, %u stop(s), %.3f ms wall",
	       (int)hijack->tid, pk_py_syscall_name_or(out.syscall_nr, "?"),
	       (double)out.freeze_ns / 1e6, out.stops, (double)out.wall_ns / 1e6);
	if (rc == -ETIMEDOUT && out.step >= PK_RCALL_CALLED) {
		/* The exception is queued; only the GIL's release is late. */
		pk_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	if (out.call_ret == 0) {
		pk_error("raise in thread %d of process %d: the thread ended before the exception could be queued",
			 (int)res->tid, (int)py->pid);
		return -ESRCH;
	}
	return 0;
nosym:
	pk_error("raise in process %d: %s does not export the C-API functions the call path needs", (int)py->pid,
		 py->path);
	return -ENOTSUP;
}

static void append_refusal(char *buf, size_t cap, const char *reason)
{
	size_t len = strlen(buf);

	if (reason == NULL || reason[0] == '\0' || len + 3 >= cap)
		return;
	snprintf(buf + len, cap - len, "%s%s", len ? "; " : "", reason);
}

/* The call path: a thread parked in a pure sleep (checked again by the
 * engine once stopped), main thread first, while the GIL can be had.
 * -EAGAIN with why when no thread is safe to borrow now. */
static int call_path_choose(struct pk_py *py, struct pk_py_snapshot *snap, uint64_t ident, uint64_t exc,
			    struct pk_raise_result *res, char *why, size_t cap)
{
	struct pk_py_thread *holder = gil_holder(snap);
	char who[200], tw[200], refusals[600] = "";
	int rc = -EAGAIN;

	/* A holder blocked in a system call keeps the GIL until the call
	 * returns: the borrowed thread would wait that long in
	 * PyGILState_Ensure. A holder that runs hands it over on request
	 * (bytecode), or when its C code ends: the call waits that long, up
	 * to its time-out, and says so. */
	if (holder != NULL && holder->syscall_nr >= 0 && (holder->state == 'S' || holder->state == 'D')) {
		describe_thread(holder, who, sizeof(who));
		snprintf(why, cap, "the GIL is held by %s, blocked in %s", who,
			 pk_py_syscall_name_or(holder->syscall_nr, "a system call"));
		return -EAGAIN;
	}
	for (int pass = 0; pass < 2 && rc == -EAGAIN; pass++) {
		for (size_t i = 0; i < snap->nthreads && rc == -EAGAIN; i++) {
			struct pk_py_thread *c = &snap->threads[i];
			/* An exited thread (a main thread that called pthread_exit
			 * leaves its thread state listed) runs nothing. */
			if (c->tid == 0 || c->idle || !c->main_interp || (pass == 0) != c->is_main || c == holder ||
			    !thread_state_live(c->state))
				continue;
			if (pk_rcall_check_thread(py->pid, c->tid, tw, sizeof(tw)) < 0) {
				pk_error_clear();
				append_refusal(refusals, sizeof(refusals), tw);
				continue;
			}
			rc = call_path(py, c, ident, exc, res);
			/* EPERM: another tracer (often another pykill) holds it for a moment. */
			if (rc == -EPERM || rc == -EAGAIN) {
				append_refusal(refusals, sizeof(refusals), pk_error_message());
				pk_log(PK_LOG_INFO, "thread %d could not be used: %s; trying another", (int)c->tid,
				       pk_error_message());
				pk_error_clear();
				rc = -EAGAIN;
			}
		}
	}
	/* Every candidate's reason, not only the last: the first may be the
	 * one the operator can act on. */
	if (rc == -EAGAIN)
		snprintf(why, cap, "no Python thread is parked in a pure sleep where a call is safe%s%s%s",
			 refusals[0] ? " (" : "", refusals, refusals[0] ? ")" : "");
	return rc;
}

/* ------------------------------------------------------------ write path */

static int write_u32(struct pk_py *py, uint64_t addr, uint32_t v)
{
	return pk_mem_write(py->mem, addr, &v, sizeof(v));
}

/* Where the eval-breaker signal of this version lives, for setting it
 * (value 1) or, on withdrawal, clearing the async-exception flag. */
static int signal_async_exc(struct pk_py *py, uint64_t tstate, uint64_t interp, bool set)
{
	const struct pk_layout *L = &py->layout;
	uint64_t v, size, targets[2];
	int rc;

	if (py->major == 2) {
		/* The 2.7 ticker: polled at every "slow" opcode. Nothing to clear. */
		if (!set)
			return 0;
		if (pk_elf_symbol(py->elf, "_Py_Ticker", &v, &size) < 0)
			return -ENOTSUP;
		return write_u32(py, v + py->bias, 0);
	}
	if (py->minor == 6) {
		/* Statics: _PyEval_SignalAsyncExc stores 1 to pending_async_exc then eval_breaker. */
		if (pk_elf_symbol(py->elf, "_PyEval_SignalAsyncExc", &v, &size) < 0 ||
		    pk_elf_rip_targets(py->elf, v, 8, targets, 2) != 2)
			return -ENOTSUP;
		rc = write_u32(py, targets[0] + py->bias, set);
		return rc < 0 || !set ? rc : write_u32(py, targets[1] + py->bias, 1);
	}
	if (L->rt_ceval_pending_async_exc >= 0 && L->rt_ceval_eval_breaker >= 0) {
		rc = write_u32(py, py->runtime + (uint64_t)L->rt_ceval_pending_async_exc, set);
		return rc < 0 || !set ? rc : write_u32(py, py->runtime + (uint64_t)L->rt_ceval_eval_breaker, 1);
	}
	if (L->is_ceval_pending_async_exc >= 0 && L->is_ceval_eval_breaker >= 0) {
		rc = write_u32(py, interp + (uint64_t)L->is_ceval_pending_async_exc, set);
		return rc < 0 || !set ? rc : write_u32(py, interp + (uint64_t)L->is_ceval_eval_breaker, 1);
	}
	if (L->ts_eval_breaker >= 0) {
		/* 3.13+: a per-thread word whose high bits hold the
		 * instrumentation version: only its low byte, which holds the
		 * bit, is written, so a version another thread set meanwhile is
		 * never written back stale (free-threaded builds do not recopy
		 * it: a stale one makes RESUME loop). The target's own updates
		 * of the word are compare-and-swap loops: a thread stopped inside
		 * one retries with our value. */
		uint64_t eb = 0;
		uint8_t low;
		rc = pk_rd_u64(py, tstate + (uint64_t)L->ts_eval_breaker, &eb);
		if (rc < 0)
			return rc;
		low = (uint8_t)(eb & 0xffu); /* little-endian: x86_64, aarch64 */
		low = set ? (uint8_t)(low | 0x8u) : (uint8_t)(low & ~0x8u); /* _PY_ASYNC_EXCEPTION_BIT */
		return pk_mem_write(py->mem, tstate + (uint64_t)L->ts_eval_breaker, &low, sizeof(low));
	}
	return -ENOTSUP;
}

/* Code that reads or writes a thread's async_exc, or the async-exception
 * signal, in several steps: a thread stopped inside it would, once resumed,
 * overwrite what pykill wrote (PyThreadState_SetAsyncExc between reading
 * the old value and storing the new one) or clear our signal (the eval
 * loop between taking an exception and unsignalling). The write path never
 * writes while a thread is inside one of these; functions a stripped
 * build does not name are covered by the checks after the write (the
 * verdict sees a replacement; a lost signal only delays delivery). */
static const char *const async_exc_code[] = {
	"PyThreadState_SetAsyncExc", "_PyThreadState_SetAsyncExc", "_PyEval_SignalAsyncExc",
	"_Py_HandlePending",         "eval_frame_handle_pending",  "PyThreadState_Clear",
	"_PyThreadState_ClearAsyncExc", "_PyEval_EvalFrame_HandlePending",
};

#define N_ASYNC_EXC_CODE (sizeof(async_exc_code) / sizeof(async_exc_code[0]))

struct code_range {
	uint64_t lo, hi;
	const char *name;
};

/* Where async_exc_code lies in this process, looked up once per write
 * (each try of it uses the same). */
struct async_code {
	struct code_range r[N_ASYNC_EXC_CODE];
	size_t n;
	size_t handle_pending; /* _Py_HandlePending's index in r, n when not named */
};

static void async_code_find(struct pk_py *py, struct async_code *code)
{
	code->n = 0;
	for (size_t i = 0; i < N_ASYNC_EXC_CODE; i++) {
		struct code_range *r = &code->r[code->n];
		uint64_t v, size;
		if (pk_elf_symbol(py->elf, async_exc_code[i], &v, &size) < 0 || size == 0 || size > (1u << 20))
			continue;
		r->lo = v + py->bias;
		r->hi = v + py->bias + size;
		r->name = async_exc_code[i];
		code->n++;
	}
	for (code->handle_pending = 0; code->handle_pending < code->n; code->handle_pending++)
		if (strcmp(code->r[code->handle_pending].name, "_Py_HandlePending") == 0)
			break;
	pk_error_clear();
}

/* Has the task exited, and not been reaped (a leader that called
 * pthread_exit)? It runs nothing and cannot be stopped. Quiet. */
static bool task_exited(pid_t pid, pid_t tid)
{
	struct pk_status st;

	return pk_proc_status_quiet(pid, tid, &st) == 0 && !thread_state_live(st.state);
}

/* Is the thread in one of the ranges? For a thread that could not be
 * stopped, /proc's pc of its system call stands in (a thread in neither is
 * running: unknown, so "inside"; one that has exited runs nothing). */
static const char *inside_async_code(struct pk_py *py, struct pk_freeze *fz, pid_t tid, const struct async_code *code)
{
	struct pk_syscall sc;
	uint64_t pc = 0;

	if (pk_freeze_pc(fz, tid, &pc) < 0) {
		if (pk_proc_syscall(py->pid, tid, &sc) < 0) {
			pk_error_clear();
			return NULL; /* gone meanwhile */
		}
		if (sc.nr < 0)
			return task_exited(py->pid, tid) ? NULL : "running code pykill could not stop";
		pc = sc.pc;
	}
	for (size_t i = 0; i < code->n; i++)
		if (pc >= code->r[i].lo && pc < code->r[i].hi)
			return code->r[i].name;
	return NULL;
}

/* Bytes of a thread's native stack above sp looked at for a return into
 * _Py_HandlePending: from a futex wait for the GIL the call is 5 frames up
 * (take_gil, _PyThreadState_Attach, the pthread wait, futex): measured
 * 288-448 bytes above sp (pyenv 3.13.0, sid 3.14 and 3.15); four times that. */
#define HANDLE_PENDING_SCAN 2048u

/* 3.13+: is the thread inside _Py_HandlePending, past its one read of the
 * thread's eval-breaker word? That pass acts on the bits it read first:
 * one that gives the GIL away and waits for it again (the usual reason a
 * spinning thread is found waiting for the GIL) returns without looking
 * at an exception queued meanwhile, which is then taken at the thread's
 * next check -- after its job, if the job returns first (in the pool's
 * own code, ending the worker). A return address into it above the
 * stopped thread's stack pointer says so; a stale copy of one only costs
 * another try (the thread runs on). */
static bool inside_handle_pending(struct pk_py *py, struct pk_freeze *fz, pid_t tid, const struct code_range *hp)
{
	uint64_t words[HANDLE_PENDING_SCAN / 8u], sp = 0, tp = 0;
	size_t len = HANDLE_PENDING_SCAN;

	if (tid <= 0)
		return false;
	/* Only a thread stopped while running: the stack of one asleep in the
	 * kernel does not move, so a stale copy would be seen at every try
	 * (a job blocked in recv() must stay raisable); its wait for the GIL
	 * is told by the futex word (asleep_on_gil). */
	if (pk_freeze_sp_tp(fz, tid, &sp, &tp) < 0) {
		pk_error_clear();
		return false;
	}
	/* Near the top of the stack the whole span may not be mapped. */
	while (len >= 256u && pk_mem_read(py->mem, sp, words, len) < 0)
		len /= 2u;
	pk_error_clear();
	if (len < 256u)
		return false;
	for (size_t i = 0; i < len / 8u; i++)
		if (words[i] > hp->lo && words[i] < hp->hi) {
			pk_log(PK_LOG_DEBUG, "thread %d: a return into _Py_HandlePending at sp+%zu", (int)tid, i * 8u);
			return true;
		}
	return false;
}

/* 3.13+: is the job's thread, left asleep in the kernel, asleep on its
 * interpreter's GIL (taking it, or handing it over)? Where the wait is
 * inside _Py_HandlePending, that pass will not look at a new exception;
 * optimised builds move parts of it out of the function's own symbol
 * (cold code) where no return address says so, and the futex word of the
 * wait does. A thread waiting there after a system call of its own is
 * refused too: it soon runs again. One that has woken since it was found
 * asleep may be past that read now, unstopped: refused as well. The
 * reason, NULL when the thread may be written to. */
#define AWAKE_SINCE "awake since it was found asleep (unstopped, it may be past _Py_HandlePending's read)"

static const char *asleep_on_gil(struct pk_py *py, struct pk_freeze *fz, pid_t tid, uint64_t tstate,
				 uint64_t interp)
{
	const struct pk_layout *L = &py->layout;
	struct pk_gil_info gil;
	struct pk_syscall sc;
	int32_t state = 0;

	if (tid <= 0 || pk_freeze_has(fz, tid))
		return NULL;
	if (pk_proc_syscall(py->pid, tid, &sc) < 0) {
		pk_error_clear();
		return NULL; /* gone: the verdict tells */
	}
	if (sc.nr < 0)
		return task_exited(py->pid, tid) ? NULL : AWAKE_SINCE;
	if (sc.nr != pk_syscall_number("futex"))
		return NULL;
	/* Free-threaded: parked by a stop-the-world (_Py_THREAD_SUSPENDED, 2).
	 * A thread running Python parks from _Py_HandlePending's check of
	 * the stop bit, and carries on with the bits it read before: the
	 * same as a pass that waited for the GIL (review). Pauses last
	 * milliseconds: the next try finds it running. */
	if (L->free_threaded && L->ts_state >= 0 && pk_rd_i32(py, tstate + (uint64_t)L->ts_state, &state) == 0 &&
	    state == 2)
		return "parked by a stop-the-world pause (free-threaded: the pass of its eval loop's check that "
		       "parked it takes a new exception only after the job)";
	pk_error_clear();
	if (L->is_ceval_gil < 0)
		return NULL;
	pk_gil_read(py, interp, &gil);
	if (pk_gil_wait_on(&gil, sc.args[0]) != PK_GIL_WAIT_NONE)
		return "asleep on its interpreter's GIL (3.13+ may then take a new exception only after the job)";
	return NULL;
}

/* Is the thread still in the system call *was, as far as /proc tells
 * (number, first argument, stack and instruction pointers)? A thread
 * gone meanwhile counts as the same: the verdict tells. */
static bool same_syscall(pid_t pid, pid_t tid, const struct pk_syscall *was)
{
	struct pk_syscall now;

	if (pk_proc_syscall(pid, tid, &now) < 0) {
		pk_error_clear();
		return true;
	}
	return now.nr == was->nr && now.args[0] == was->args[0] && now.sp == was->sp && now.pc == was->pc;
}

/* The work done while everything is stopped is bounded in steps and in
 * time: a forged or cyclic chain must not keep the target frozen. */
#define WALK_BUDGET_NS 20000000ull

/* Find tstate in the thread lists of every interpreter (it is still a live
 * thread state, not freed memory), and its interpreter. 0, -ESRCH when it
 * is not there, -ELOOP when a list loops, is longer than any real
 * process's or the time budget ran out. */
static int locate_tstate(struct pk_py *py, uint64_t tstate, size_t nthreads_seen, uint64_t *interp_out)
{
	const struct pk_layout *L = &py->layout;
	struct pk_chain interps, tstates;
	uint64_t head = 0, it = 0, ts = 0;
	int rc, more;

	/* One budget for the thread lists of all interpreters: the states of
	 * every list count, and the clock runs from here. A state is compared
	 * before the bound is, so one more than the bound is looked at. */
	pk_chain_init(&tstates, 0, nthreads_seen * 2 + 4096 + 1, WALK_BUDGET_NS);
	if (py->runtime != 0)
		rc = pk_rd_u64(py, py->runtime + (uint64_t)L->rt_interpreters_head, &head);
	else
		rc = pk_rd_u64(py, py->interp_head_var, &head);
	if (rc < 0)
		return rc;
	pk_chain_init(&interps, head, PK_MAX_INTERPS, 0);
	while ((more = pk_chain_next(&interps, &it)) > 0) {
		uint64_t link = 0;

		rc = pk_rd_u64(py, it + (uint64_t)L->is_tstate_head, &link);
		if (rc < 0)
			return rc;
		pk_chain_restart(&tstates, link);
		while ((more = pk_chain_next(&tstates, &ts)) > 0) {
			if (ts == tstate) {
				*interp_out = it;
				return 0;
			}
			rc = pk_rd_u64(py, ts + (uint64_t)L->ts_next, &link);
			if (rc < 0)
				return rc;
			pk_chain_follow(&tstates, link);
		}
		if (more < 0)
			return -ELOOP;
		rc = pk_rd_u64(py, it + (uint64_t)L->is_next, &link);
		if (rc < 0)
			return rc;
		pk_chain_follow(&interps, link);
	}
	return more < 0 ? -ELOOP : -ESRCH;
}

/* Another thread of the same interpreter with an async exception queued?
 * What cannot be told (unreadable, a list that loops, out of time) is yes. */
static bool others_pending(struct pk_py *py, uint64_t interp, uint64_t tstate)
{
	const struct pk_layout *L = &py->layout;
	struct pk_chain chain;
	uint64_t ts = 0;
	int more;

	if (pk_rd_u64(py, interp + (uint64_t)L->is_tstate_head, &ts) < 0)
		return true;
	pk_chain_init(&chain, ts, PK_MAX_THREADS, WALK_BUDGET_NS);
	while ((more = pk_chain_next(&chain, &ts)) > 0) {
		uint64_t exc = 0, next = 0;
		if (ts != tstate && (pk_rd_u64(py, ts + (uint64_t)L->ts_async_exc, &exc) < 0 || exc != 0))
			return true;
		if (pk_rd_u64(py, ts + (uint64_t)L->ts_next, &next) < 0)
			return true;
		pk_chain_follow(&chain, next);
	}
	/* Past PK_MAX_THREADS states: none of them had one. */
	return more == -ELOOP || more == -ETIME;
}

/* Reference counts: until 3.12 exception types are not immortal, and the
 * reference async_exc holds must be counted. An object is never freed by
 * pykill: a count that would reach 0 is left at 1 (a leak, not a crash). */
static int refcount_add(struct pk_py *py, uint64_t obj, int delta)
{
	const struct pk_layout *L = &py->layout;
	int64_t refcnt = 0;
	int rc;

	if (py->major == 3 && py->minor >= 12)
		return 0;
	rc = pk_rd_u64(py, obj + (uint64_t)L->ob_refcnt, (uint64_t *)&refcnt);
	if (rc < 0)
		return rc;
	if (refcnt <= 0 || refcnt > (1ll << 40))
		return -EINVAL;
	if (refcnt + delta < 1)
		return 0;
	refcnt += delta;
	return pk_mem_write(py->mem, obj + (uint64_t)L->ob_refcnt, &refcnt, sizeof(refcnt));
}

static bool has_python_frame(struct pk_py *py, uint64_t tstate);

/* Is the frame at addr, running code, still on the thread's stack? 1 yes,
 * 0 no (or not found within the bounds: the stack's depth when read, plus
 * the default frame bound, shims counted; the walk's time budget; a chain
 * that loops, after every frame of it was looked at), -errno
 * unreadable. The code is compared too: 3.11+ frames live in a per-thread
 * stack, where the next call at the same depth (the pool's set_result
 * after the job returned) takes the same address. */
static int frame_on_stack(struct pk_py *py, uint64_t tstate, uint64_t addr, uint64_t code, size_t depth_seen)
{
	const struct pk_layout *L = &py->layout;
	struct pk_chain chain;
	uint64_t frame = 0;
	int rc;

	rc = pk_rd_u64(py, tstate + (uint64_t)L->ts_frame, &frame);
	if (rc == 0 && frame != 0 && L->cframe_current_frame >= 0)
		rc = pk_rd_u64(py, frame + (uint64_t)L->cframe_current_frame, &frame);
	if (rc < 0)
		return rc;
	/* A frame is compared before the bound is: the bound plus two frames are looked at. */
	pk_chain_init(&chain, frame, (depth_seen + PK_DEFAULT_MAX_FRAMES) * 4 + 2, WALK_BUDGET_NS);
	while (pk_chain_next(&chain, &frame) > 0) {
		uint64_t next = 0;
		if (frame == addr) {
			uint64_t c = 0;
			rc = pk_rd_u64(py, frame + (uint64_t)L->fr_code, &c);
			if (rc < 0)
				return rc;
			return (c & ~L->fr_code_tag_mask) == code;
		}
		rc = pk_rd_u64(py, frame + (uint64_t)L->fr_back, &next);
		if (rc < 0)
			return rc;
		pk_chain_follow(&chain, next);
	}
	return 0;
}

/* OP_TAKE_BACK: withdraw this run's exception if the job it was raised
 * for has ended before it fired (the anchor left the stack). */
enum write_op { OP_RAISE, OP_WITHDRAW, OP_RESIGNAL, OP_TAKE_BACK };

struct write_job {
	enum write_op op;
	uint64_t tstate, ident, exc;
	pid_t native_tid;        /* 3.11+: native_thread_id as read (stale in a state inherited across fork) */
	pid_t os_tid;            /* RAISE: the kernel thread it runs on (its native stack is looked at) */
	bool must_run;           /* RAISE: the state must still run Python code (its thread has idle states) */
	size_t nthreads_seen;
	uint64_t anchor;         /* RAISE: a frame that must still be on the thread's stack, 0 none */
	uint64_t anchor_code;    /* the code it runs */
	size_t anchor_depth;     /* the stack's depth when it was read (bounds the search) */
	/* out */
	uint64_t old;            /* async_exc found (RAISE: non-zero means refused) */
	bool taken_back;         /* TAKE_BACK: it was withdrawn */
	bool framed;             /* RAISE: the thread was inside Python code when it was queued */
	bool went_idle;          /* RAISE (-ESRCH): must_run, and the state no longer runs Python code */
	bool await_handle_pending; /* RAISE: wait while the job's thread may be past _Py_HandlePending's read
				    * (3.13+); --force writes anyway */
	/* per try */
	struct pk_syscall os_sc; /* RAISE: the job's thread's system call when the try began (nr < 0: none) */
	char busy[192];          /* why the try was released ("thread N was <busy>"), "" if it was not */
	pid_t busy_tid;
	bool busy_handle_pending; /* the reason was one --force skips */
	uint64_t freeze_ns;
	unsigned stopped;
};

/* Withdraw: async_exc cleared, its reference dropped, the version's
 * flag cleared unless another thread still needs it (the eval breaker
 * itself is left set: a spurious check is harmless). Everything stopped. */
static int clear_async_exc(struct pk_py *py, const struct write_job *job, uint64_t interp, uint64_t cur)
{
	const struct pk_layout *L = &py->layout;
	uint64_t zero = 0;
	int rc;

	rc = pk_mem_write(py->mem, job->tstate + (uint64_t)L->ts_async_exc, &zero, sizeof(zero));
	if (rc < 0)
		return rc;
	refcount_add(py, cur, -1);
	if (L->ts_eval_breaker >= 0 || !others_pending(py, interp, job->tstate))
		signal_async_exc(py, job->tstate, interp, false);
	return 0;
}

/* One attempt, everything stopped: 0 done, -EAGAIN a thread was inside
 * async-exception code (released untouched: try again), -EEXIST (RAISE)
 * another exception is queued (nothing written), -ESRCH the thread state
 * has gone, other -errno. */
static int write_once(struct pk_py *py, struct write_job *job, const struct async_code *code)
{
	const struct pk_layout *L = &py->layout;
	struct pk_freeze *fz = NULL;
	pid_t *tids = NULL, *running = NULL, *blocked = NULL;
	size_t ntids = 0, nrunning = 0, nblocked = 0;
	uint64_t interp = 0, id = 0, cur = 0;
	int rc, sig_rc = 0;

	job->busy[0] = '\0';
	job->busy_handle_pending = false;
	job->os_sc.nr = -1;
	rc = pk_proc_tasks(py->pid, &tids, &ntids);
	if (rc < 0)
		return rc;
	/* Stop the threads that run; leave those blocked in a system call in
	 * the kernel, where they touch no Python state: stopping them would
	 * cut their calls short (a pipe write interrupted by a stop returns a
	 * short count). They are checked again once the others are stopped. */
	running = malloc(sizeof(*running) * (ntids ? ntids : 1));
	blocked = malloc(sizeof(*blocked) * (ntids ? ntids : 1));
	if (running == NULL || blocked == NULL) {
		pk_error("raise in process %d: out of memory", (int)py->pid);
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ntids; i++) {
		struct pk_syscall sc;
		if (pk_proc_syscall(py->pid, tids[i], &sc) < 0) {
			pk_error_clear(); /* gone meanwhile */
			continue;
		}
		if (tids[i] == job->os_tid)
			job->os_sc = sc;
		if (sc.nr >= 0)
			blocked[nblocked++] = tids[i];
		else if (!task_exited(py->pid, tids[i]))
			running[nrunning++] = tids[i];
	}
	rc = pk_freeze_new(py->pid, &fz);
	if (rc < 0)
		goto out;
	rc = pk_freeze_add(fz, running, nrunning);
	if (rc < 0)
		goto out;
	job->stopped = (unsigned)pk_freeze_count(fz);
	/* Still the program that was read? (A thread in the middle of an exec
	 * stops only once it runs the new one.) */
	rc = pk_mem_same_space(py->mem);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < nblocked; i++) {
		struct pk_syscall sc;
		if (pk_proc_syscall(py->pid, blocked[i], &sc) == 0 && sc.nr < 0) {
			snprintf(job->busy, sizeof(job->busy), "in a system call that returned meanwhile");
			job->busy_tid = blocked[i];
			rc = -EAGAIN;
			goto out;
		}
		pk_error_clear();
	}
	for (size_t i = 0; i < ntids; i++) {
		const char *in = inside_async_code(py, fz, tids[i], code);
		if (in != NULL) {
			if (strncmp(in, "running ", 8) == 0)
				snprintf(job->busy, sizeof(job->busy), "%s", in);
			else
				snprintf(job->busy, sizeof(job->busy), "inside %s (code that reads or writes asynchronous "
					 "exceptions)", in);
			job->busy_tid = tids[i];
			rc = -EAGAIN;
			goto out;
		}
	}
	rc = locate_tstate(py, job->tstate, job->nthreads_seen, &interp);
	if (rc == -ESRCH || (rc == 0 && (pk_rd_u64(py, job->tstate + (uint64_t)L->ts_thread_id, &id) < 0 ||
					 id != job->ident))) {
		rc = -ESRCH;
		goto out;
	}
	if (rc == -ELOOP) {
		pk_error("raise in process %d: its thread list is longer than any real process's (or cyclic): "
			 "nothing written", (int)py->pid);
		rc = -EBADMSG;
		goto out;
	}
	if (rc < 0)
		goto out;
	/* Only where the consequence depends on where it fires (a job). */
	if (job->op == OP_RAISE && job->await_handle_pending && job->anchor != 0 && L->ts_eval_breaker >= 0) {
		const char *why = NULL;
		if (code->handle_pending < code->n &&
		    inside_handle_pending(py, fz, job->os_tid, &code->r[code->handle_pending]))
			why = "inside the eval loop's check of its signals (_Py_HandlePending), which has read them "
			      "already";
		else
			why = asleep_on_gil(py, fz, job->os_tid, job->tstate, interp);
		if (why != NULL) {
			snprintf(job->busy, sizeof(job->busy), "%s", why);
			job->busy_handle_pending = true;
			job->busy_tid = job->os_tid;
			rc = -EAGAIN;
			goto out;
		}
	}
	if (L->ts_native_thread_id >= 0 && job->native_tid > 0) {
		uint64_t native = 0;
		if (pk_rd_u64(py, job->tstate + (uint64_t)L->ts_native_thread_id, &native) == 0 &&
		    native != (uint64_t)job->native_tid) {
			rc = -ESRCH; /* the state now belongs to another thread */
			goto out;
		}
	}
	/* A thread that swaps states (one per interpreter) may have swapped
	 * this one out since it was read: queued in a state that no longer
	 * runs, the exception would fire in whatever runs it next. */
	if (job->op == OP_RAISE && job->must_run && !has_python_frame(py, job->tstate)) {
		job->went_idle = true;
		rc = -ESRCH;
		goto out;
	}
	rc = pk_rd_u64(py, job->tstate + (uint64_t)L->ts_async_exc, &cur);
	if (rc < 0)
		goto out;
	job->old = cur;
	switch (job->op) {
	case OP_RAISE:
		/* Never replace an exception queued by someone else (another
		 * pykill, the program): it would be lost without a word. */
		if (cur != 0) {
			rc = -EEXIST;
			goto out;
		}
		/* The consequence was decided for the job the thread was read
		 * in: a worker that has finished it since (back in its pool's
		 * queue, its loop's poll) would take the exception there. */
		if (job->anchor != 0 && frame_on_stack(py, job->tstate, job->anchor, job->anchor_code, job->anchor_depth) <= 0) {
			pk_error_clear();
			rc = -ESTALE;
			goto out;
		}
		/* The job's thread left asleep: still in the very call it was
		 * found in? Woken meanwhile, it may have come to the check of
		 * its signals and read them, unstopped. Last thing before the
		 * write, to keep that window as short as it can be. */
		if (job->await_handle_pending && job->anchor != 0 && L->ts_eval_breaker >= 0 && job->os_sc.nr >= 0 &&
		    !pk_freeze_has(fz, job->os_tid) && !same_syscall(py->pid, job->os_tid, &job->os_sc)) {
			snprintf(job->busy, sizeof(job->busy), "%s", AWAKE_SINCE);
			job->busy_handle_pending = true;
			job->busy_tid = job->os_tid;
			rc = -EAGAIN;
			goto out;
		}
		rc = refcount_add(py, job->exc, +1);
		if (rc < 0) {
			pk_error("raise via write in process %d: the exception type's reference count is unreadable",
				 (int)py->pid);
			goto out;
		}
		/* A thread that returns from its system call meanwhile must not
		 * see the exception without the signal where the signal is
		 * per interpreter (it would take the exception and clear the flag,
		 * then ours would be set for nothing): there the signal goes
		 * first. The per-thread bit of 3.13+ is cleared before async_exc
		 * is taken: there the exception goes first. */
		if (L->ts_eval_breaker < 0) {
			sig_rc = signal_async_exc(py, job->tstate, interp, true);
			if (sig_rc < 0 && sig_rc != -ENOTSUP) {
				rc = sig_rc;
				goto out;
			}
		}
		rc = pk_mem_write(py->mem, job->tstate + (uint64_t)L->ts_async_exc, &job->exc, sizeof(job->exc));
		if (rc < 0)
			goto out;
		job->framed = has_python_frame(py, job->tstate);
		rc = L->ts_eval_breaker >= 0 ? signal_async_exc(py, job->tstate, interp, true) : sig_rc;
		break;
	case OP_RESIGNAL:
		/* Only while our exception is still the one queued. */
		rc = cur == job->exc ? signal_async_exc(py, job->tstate, interp, true) : 0;
		break;
	case OP_TAKE_BACK:
		/* Only ours, only while the job is over (a job that runs again at
		 * the same frame address is its next one: left alone). */
		if (cur != job->exc || frame_on_stack(py, job->tstate, job->anchor, job->anchor_code, job->anchor_depth) != 0) {
			pk_error_clear();
			rc = 0;
			break;
		}
		job->taken_back = true;
		rc = clear_async_exc(py, job, interp, cur);
		break;
	case OP_WITHDRAW:
		if (cur == 0 || (job->exc != 0 && cur != job->exc)) {
			rc = 0;
			break;
		}
		rc = clear_async_exc(py, job, interp, cur);
		break;
	}
	if (rc == -ENOTSUP) {
		pk_log(PK_LOG_WARN, "no eval-breaker signal for Python %s: delivery waits for the thread's next GIL "
		       "switch", py->version);
		rc = 0;
	}
out:
	if (fz != NULL) {
		job->freeze_ns += pk_freeze_end(fz);
		pk_freeze_free(fz);
	}
	free(blocked);
	free(running);
	free(tids);
	return rc;
}

#define WRITE_TRIES 50
#define WRITE_BUDGET_NS 500000000ull

/* write_once until no thread is inside async-exception code, other
 * pykills' short holds waited out; bounded in tries and time. */
static int write_path(struct pk_py *py, struct write_job *job)
{
	struct async_code code;
	uint64_t t0 = pk_now_ns();
	unsigned attempt;
	int rc;

	async_code_find(py, &code);
	for (attempt = 0;; attempt++) {
		rc = write_once(py, job, &code);
		if ((rc != -EAGAIN && rc != -EPERM) || attempt + 1 >= WRITE_TRIES || pk_now_ns() - t0 > WRITE_BUDGET_NS)
			break;
		pk_error_clear();
		if (rc == -EAGAIN)
			pk_log(PK_LOG_INFO, "thread %d was %s: released everything, trying again",
			       (int)job->busy_tid, job->busy);
		/* Let it leave the code (or the other tracer finish), jittered so
		 * that two pykills do not keep meeting. */
		pk_sleep_ns(1000000ull * (attempt < 5 ? attempt + 1 : 5) + pk_now_ns() % 1000000ull);
	}
	if (rc == -EAGAIN) {
		pk_error("raise in process %d: nothing was written: at each of %u tries over %llu ms a thread was where "
			 "pykill must not write (the last time, thread %d was %s)", (int)py->pid, attempt + 1,
			 (unsigned long long)((pk_now_ns() - t0) / 1000000ull), (int)job->busy_tid, job->busy);
		if (job->busy_handle_pending)
			pk_error_hint("--force writes anyway; the exception may then fire after the job, in the "
				      "worker's own code (see WORKER SHAPES)");
		rc = -EBUSY;
	}
	return rc;
}

/* ------------------------------------------------------------ verdict */

static bool thread_alive(pid_t pid, pid_t tid)
{
	char path[64];
	struct pk_status st;

	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
	if (access(path, F_OK) != 0)
		return false;
	/* Other threads are reaped as they exit; the leader stays, a zombie,
	 * when it called pthread_exit: gone all the same. */
	if (tid != pid)
		return true;
	return pk_proc_status_quiet(pid, tid, &st) == 0 && thread_state_live(st.state);
}

enum watch_state {
	W_QUEUED,    /* our exception is still in async_exc */
	W_TAKEN,     /* async_exc empty, the thread still there: it raised ours */
	W_REPLACED,  /* another exception is in async_exc */
	W_GONE,      /* the thread (or its thread state) is gone */
	W_UNFRAMED,  /* async_exc empty, the thread alive but outside Python code: taken, or cleared at its end */
};

/* Does the thread run Python code right now (a current frame)? */
static bool has_python_frame(struct pk_py *py, uint64_t tstate)
{
	const struct pk_layout *L = &py->layout;
	uint64_t frame = 0;

	if (pk_rd_u64(py, tstate + (uint64_t)L->ts_frame, &frame) < 0 || frame == 0)
		return false;
	if (L->cframe_current_frame >= 0 && pk_rd_u64(py, frame + (uint64_t)L->cframe_current_frame, &frame) < 0)
		return false;
	return frame != 0;
}

/* One look at the thread. Read in this order: async_exc, then the ident
 * (a freed state no longer matches, or is scribbled over in debug builds),
 * then whether the thread is alive. An empty async_exc counts as taken
 * only while the thread is inside Python code: a thread that ends with the
 * exception still queued empties it too (PyThreadState_Clear), with no
 * frame left. */
static enum watch_state watch(struct pk_py *py, uint64_t tstate, uint64_t ident, pid_t tid, uint64_t exc,
			      uint64_t *seen)
{
	const struct pk_layout *L = &py->layout;
	uint64_t cur = 1, id = 0;
	bool framed;

	if (pk_rd_u64(py, tstate + (uint64_t)L->ts_async_exc, &cur) < 0) {
		pk_error_clear();
		return W_GONE;
	}
	framed = cur == 0 && has_python_frame(py, tstate);
	if (pk_rd_u64(py, tstate + (uint64_t)L->ts_thread_id, &id) < 0 || id != ident ||
	    (tid != 0 && !thread_alive(py->pid, tid))) {
		pk_error_clear();
		return W_GONE;
	}
	*seen = cur;
	if (cur == exc)
		return W_QUEUED;
	if (cur == 0)
		return framed ? W_TAKEN : W_UNFRAMED;
	return W_REPLACED;
}

/* The name of an exception object (a type, or an instance: its type's). */
static void exception_name(struct pk_py *py, uint64_t obj, char *buf, size_t cap)
{
	const struct pk_layout *L = &py->layout;
	uint64_t type = 0, meta = 0, meta_type = 0, name = 0, named;
	char raw[96];

	snprintf(buf, cap, "an exception object at 0x%" PRIx64, obj);
	if (pk_rd_u64(py, obj + (uint64_t)L->ob_type, &type) < 0 || type == 0 ||
	    pk_rd_u64(py, type + (uint64_t)L->ob_type, &meta) < 0 ||
	    pk_rd_u64(py, meta + (uint64_t)L->ob_type, &meta_type) < 0) {
		pk_error_clear();
		return;
	}
	/* A type's type is a metatype whose own type is itself (type). */
	named = (meta == meta_type) ? obj : type;
	if (pk_rd_u64(py, named + (uint64_t)L->tp_name, &name) < 0 || name == 0 ||
	    pk_mem_read(py->mem, name, raw, sizeof(raw) - 1) < 0) {
		pk_error_clear();
		return;
	}
	raw[sizeof(raw) - 1] = '\0';
	if (strncmp(raw, "exceptions.", 11) == 0) /* 2.7 */
		memmove(raw, raw + 11, strlen(raw + 11) + 1);
	/* Kept as the program named it (a class of its own may be called
	 * anything): the CLI escapes it for a terminal, JSON keeps it exact. */
	snprintf(buf, cap, "%s%s", raw, named == obj ? "" : " (an instance)");
}

static bool process_job_stopped(struct pk_py *py)
{
	struct pk_status st;

	if (pk_proc_status_quiet(py->pid, 0, &st) < 0)
		return false;
	return st.state == 'T';
}

/* Why the exception is still queued goes to res->reason; what happens to it
 * if it stays queued goes to *next, said only when it does stay (not when
 * --withdraw-if-pending then takes it back). */
static void explain_pending(struct pk_py *py, uint64_t ident, struct pk_raise_result *res, char *next,
			    size_t next_cap)
{
	struct pk_snapshot_opts so = { .freeze = PK_FREEZE_AUTO, .want_frames = true, .want_names = true,
				       .max_frames = 4 };
	struct pk_py_snapshot *snap = NULL;
	struct pk_py_thread *t = NULL, *h;
	char who[200];
	const char *sc;

	next[0] = '\0';
	if (process_job_stopped(py)) {
		snprintf(res->reason, sizeof(res->reason), "the process is stopped (SIGSTOP or job control)");
		snprintf(next, next_cap, "the exception fires once it is continued (kill -CONT %d)", (int)py->pid);
		return;
	}
	if (pk_py_snapshot(py, &so, &snap) < 0) {
		pk_error_clear();
		snprintf(res->reason, sizeof(res->reason), "not delivered yet");
		return;
	}
	for (size_t i = 0; i < snap->nthreads; i++)
		if (snap->threads[i].tstate == res->tstate && snap->threads[i].ident == ident)
			t = &snap->threads[i];
	if (t == NULL) {
		snprintf(res->reason, sizeof(res->reason), "not delivered yet");
		goto out;
	}
	res->state = t->state;
	res->syscall_nr = t->syscall_nr;
	memcpy(res->syscall_args, t->syscall_args, sizeof(res->syscall_args));
	if (t->nframes > 0 && asprintf(&res->where, "%s (%s:%d)", t->frames[0].function, t->frames[0].file,
					t->frames[0].line) < 0)
		res->where = NULL;
	h = gil_holder(snap);
	sc = pk_py_syscall_name_or(t->syscall_nr, NULL);
	if (t->gil == PK_GIL_WAITS || (t->gil != PK_GIL_HOLDS && t->syscall_nr < 0 && h != NULL && h != t)) {
		/* A thread on a CPU without the GIL while another holds it is, in
		 * all likelihood, between two waits for the GIL. */
		if (h != NULL) {
			describe_thread(h, who, sizeof(who));
			snprintf(res->reason, sizeof(res->reason), "waiting for the GIL, held by %s", who);
		} else {
			snprintf(res->reason, sizeof(res->reason), "waiting for the GIL");
		}
	} else if (t->syscall_nr >= 0) {
		/* A suspended state waits for the world to restart: in the
		 * futex of that wait, or in a call of its own that returns into
		 * it. */
		snprintf(res->reason, sizeof(res->reason), "blocked in system call %s%s%s", sc ? sc : "?",
			 t->gil == PK_GIL_HOLDS ? " while holding the GIL" : "",
			 t->stw_suspended ? ", paused while its interpreter stops the world (a free-threaded build's GC, "
					    "fork or finalisation)" : "");
		snprintf(next, next_cap, "%s", t->stw_suspended
			 ? "the exception stays queued and fires once the world restarts and the call has returned"
			 : "the exception stays queued and fires when the call returns");
	} else if (t->gil == PK_GIL_HOLDS) {
		/* Running with the GIL and the exception still there after the
		 * wait: the eval loop has not reached a check, so it is not
		 * running bytecode (2.7: see below). */
		snprintf(res->reason, sizeof(res->reason), "running C code while holding the GIL");
		snprintf(next, next_cap, "the exception fires at its next bytecode boundary");
	} else {
		snprintf(res->reason, sizeof(res->reason), "running outside the interpreter loop (in C code)");
		snprintf(next, next_cap, "the exception fires when it returns to Python code");
	}
	if (py->major == 2) {
		size_t len = strlen(res->reason);
		snprintf(res->reason + len, sizeof(res->reason) - len, " (Python 2.7 looks at asynchronous exceptions "
			 "only every sys.getcheckinterval() ticks of a thread that runs)");
	}
out:
	pk_py_snapshot_free(snap);
}

/* --interrupt: if the thread is blocked in a system call (and has not taken
 * the exception yet), make that call return EINTR. Whether the thread then
 * raises at once depends on the version: 3.15+ checks asynchronous
 * exceptions on its EINTR retry path (gh-144748); older versions retry the
 * call, and the exception waits for it to return. The verdict says which.
 * A thread pykill has just stopped and released (the write path) or
 * borrowed (the call path) is back in its call within moments: the reading
 * of /proc is waited for, as long as the reading before the raise said it
 * was blocked. */
#define INTERRUPT_SETTLE_NS 200000000ull
static void interrupt_target(struct pk_py *py, uint64_t ident, uint64_t tstate, uint64_t exc, bool was_blocked,
			     struct pk_raise_result *res)
{
	struct pk_syscall sc;
	uint64_t seen, t0 = pk_now_ns();
	long nr = -1;
	int64_t was = 0;
	int rc;

	res->interrupted_nr = -1;
	for (;;) {
		if (watch(py, tstate, ident, res->tid, exc, &seen) != W_QUEUED) {
			snprintf(res->interrupt_note, sizeof(res->interrupt_note),
				 "nothing to interrupt: the exception is no longer queued");
			return;
		}
		if (pk_proc_syscall(py->pid, res->tid, &sc) == 0 && sc.nr >= 0)
			break;
		pk_error_clear();
		if (!was_blocked || pk_now_ns() - t0 > INTERRUPT_SETTLE_NS) {
			snprintf(res->interrupt_note, sizeof(res->interrupt_note),
				 "nothing to interrupt: the thread is not blocked in a system call");
			return;
		}
		pk_sleep_ns(200000);
	}
	rc = pk_interrupt_syscall(py->pid, res->tid, &nr, &was);
	if (rc < 0) {
		snprintf(res->interrupt_note, sizeof(res->interrupt_note), "could not interrupt: %s",
			 pk_error_message());
		pk_error_clear();
		return;
	}
	res->interrupted_nr = nr;
	snprintf(res->interrupt_note, sizeof(res->interrupt_note), "made %s return EINTR",
		 pk_py_syscall_name_or(nr, "the system call"));
	pk_log(PK_LOG_INFO, "interrupted %s in thread %d (its pending result was %lld)",
	       pk_py_syscall_name_or(nr, "?"), (int)res->tid, (long long)was);
}

/* Another exception is queued for the thread: never replaced. */
static int refuse_queued(struct pk_py *py, pid_t tid, uint64_t queued)
{
	char name[128];

	exception_name(py, queued, name, sizeof(name));
	pk_error("raise in thread %d of process %d: refused: %s is already queued for it (by another pykill or by "
		 "the program) and fires first; pykill does not replace it. 'pykill withdraw %d %d' removes it (then "
		 "raise again)", (int)tid, (int)py->pid, name, (int)py->pid, (int)tid);
	return -EEXIST;
}

/* Built-in exceptions whose constructor needs arguments: raised from
 * async_exc (called with none) they turn into a TypeError. */
static const char *needs_arguments(const char *name)
{
	static const struct {
		const char *name, *why;
	} v[] = {
		{ "UnicodeDecodeError", "its constructor needs 5 arguments" },
		{ "UnicodeEncodeError", "its constructor needs 5 arguments" },
		{ "UnicodeTranslateError", "its constructor needs 4 arguments" },
		{ "BaseExceptionGroup", "its constructor needs 2 arguments (a message and a list of exceptions)" },
		{ "ExceptionGroup", "its constructor needs 2 arguments (a message and a list of exceptions)" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (strcmp(name, v[i].name) == 0)
			return v[i].why;
	return NULL;
}

/* An exception pykill can raise: a built-in class this interpreter has,
 * whose constructor needs no argument. -ECANCELED or -ENOENT (with the
 * message) otherwise. */
static int check_exception(struct pk_py *py, const char *name, uint64_t *exc)
{
	const char *args_why = needs_arguments(name);
	int rc;

	if (args_why != NULL) {
		pk_error("raise %s in process %d: refused: %s, and an asynchronous exception is raised without "
			 "any (the thread would get a TypeError instead); use RuntimeError or SystemExit",
			 name, (int)py->pid, args_why);
		return -ECANCELED;
	}
	rc = exception_type(py, name, exc);
	if (rc < 0) {
		if (rc == -ENOENT)
			pk_error("raise in process %d: Python %s has no built-in exception '%.64s%s'", (int)py->pid,
				 py->version, name, strlen(name) > 64 ? "..." : "");
		return rc == -ENOENT ? rc : pk_py_gone_check(py, rc);
	}
	return 0;
}

/* --withdraw-if-pending: take our own exception back at the end of the
 * wait ("now or never"). Only ours: a different one is left alone. */
static void withdraw_own(struct pk_py *py, uint64_t tstate, uint64_t ident,
			 uint64_t exc, const struct pk_py_thread *target, size_t nthreads, struct pk_raise_result *res)
{
	struct write_job w = { .op = OP_WITHDRAW, .tstate = tstate, .ident = ident, .exc = exc,
			       .native_tid = target->native_tid, .nthreads_seen = nthreads };
	int rc;

	rc = write_path(py, &w);
	res->freeze_ns += w.freeze_ns;
	if (rc < 0) {
		snprintf(res->withdraw_note, sizeof(res->withdraw_note), "could not withdraw it: %s",
			 pk_error_message());
		pk_error_clear();
		return;
	}
	if (w.old == exc) {
		res->verdict = PK_VERDICT_WITHDRAWN;
		snprintf(res->withdraw_note, sizeof(res->withdraw_note), "withdrawn: it will not fire");
	} else if (w.old == 0) {
		res->verdict = PK_VERDICT_DELIVERED;
		snprintf(res->withdraw_note, sizeof(res->withdraw_note), "it fired just before it could be withdrawn");
	} else {
		res->verdict = PK_VERDICT_REPLACED;
		snprintf(res->withdraw_note, sizeof(res->withdraw_note), "another exception had replaced it; that one "
			 "was left queued");
	}
}

int pk_py_withdraw(struct pk_py *py, uint64_t thread, int64_t interp, struct pk_withdraw_result *res)
{
	struct pk_snapshot_opts so = { .freeze = PK_FREEZE_AUTO, .want_frames = false, .want_names = true };
	struct pk_py_snapshot *snap = NULL;
	struct pk_py_thread *target;
	struct write_job w = { .op = OP_WITHDRAW };
	int claim = -1;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!pk_py_layout_exact(py)) {
		pk_error("withdraw in process %d: refused: pykill does not know the layout of Python %s exactly "
			 "enough to write into it", (int)py->pid, py->version);
		return -ENOTSUP;
	}
	rc = pk_py_snapshot(py, &so, &snap);
	if (rc < 0)
		return rc;
	res->freeze_ns = snap->freeze_ns;
	target = find_thread(py, snap, thread, interp, true, &rc);
	if (target == NULL)
		goto out;
	res->tid = target->tid;
	res->ident = target->ident;
	res->interp_id = target->interp_id;
	res->name = target->name ? strdup(target->name) : NULL;
	rc = pk_thread_claim(py->pid, target->ident, 5000u, NULL, &claim);
	if (rc < 0)
		goto out;
	w.tstate = target->tstate;
	w.ident = target->ident;
	w.native_tid = target->native_tid;
	w.nthreads_seen = snap->nthreads;
	rc = write_path(py, &w);
	res->freeze_ns += w.freeze_ns;
	if (rc == -ESRCH)
		pk_error("withdraw in thread %d of process %d: the thread has ended", (int)res->tid, (int)py->pid);
	if (rc < 0)
		goto out;
	res->withdrawn = w.old != 0;
	if (res->withdrawn)
		exception_name(py, w.old, res->exception, sizeof(res->exception));
out:
	pk_thread_unclaim(claim);
	pk_py_snapshot_free(snap);
	return rc < 0 ? pk_py_gone_check(py, rc) : 0;
}

void pk_withdraw_result_clear(struct pk_withdraw_result *res)
{
	free(res->name);
	memset(res, 0, sizeof(*res));
}

/* How often the verdict looks. A thread takes the exception within
 * microseconds of getting the GIL, and a thread that then ends frees its
 * state soon after: for the first 50 ms the verdict watches without a
 * pause (a look costs a few microseconds), so "delivered" is seen rather
 * than only "ended"; then every 50 us up to 0.5 s, then every 1 ms. */
static void verdict_pause(uint64_t since_ns)
{
	if (since_ns < 50000000ull)
		return;
	pk_sleep_ns(since_ns < 500000000ull ? 50000 : 1000000);
}

#define RESIGNAL_AFTER_NS 100000000ull

/* OP_TAKE_BACK: true when this run's exception was withdrawn because its
 * job had ended (checked again with everything stopped). */
static bool take_back(struct pk_py *py, const struct write_job *job, struct pk_raise_result *res)
{
	struct write_job tb = *job;

	tb.op = OP_TAKE_BACK;
	tb.freeze_ns = 0;
	tb.taken_back = false;
	if (write_path(py, &tb) < 0) {
		pk_error_clear();
		return false;
	}
	res->freeze_ns += tb.freeze_ns;
	if (tb.taken_back)
		pk_log(PK_LOG_INFO, "thread %d finished its job before the exception fired: taken back", (int)res->tid);
	return tb.taken_back;
}

/* Read the process, find the thread, and decide what to raise there: the
 * exception (the default of the thread's shape when none is named, looked
 * up in *exc) and its consequence. A consequence pykill refuses sets the
 * verdict PK_VERDICT_REFUSED (0 returned: nothing done). -errno with the
 * message otherwise. */
static int read_target(struct pk_py *py, const struct pk_raise_opts *opts, struct pk_raise_result *res,
		       struct pk_py_snapshot **snap, struct pk_py_thread **target, uint64_t *exc)
{
	/* Every frame (up to the default bound): a shape is told by the
	 * outermost frames too (a pool's _worker, threading's bootstrap). A
	 * consistent picture, too: the thread list may change while a thread
	 * starts or ends, and a torn reading could miss the thread. */
	struct pk_snapshot_opts so = { .freeze = PK_FREEZE_AUTO, .want_frames = true, .want_names = true };
	struct pk_py_thread *t;
	int rc;

	rc = pk_py_snapshot(py, &so, snap);
	if (rc < 0)
		return rc;
	t = *target = find_thread(py, *snap, opts->thread, opts->pick_interp ? opts->interp : -1, false, &rc);
	if (t == NULL)
		return rc;
	res->tid = t->tid;
	res->ns_tid = t->ns_tid;
	res->ident = t->ident;
	res->tstate = t->tstate;
	res->interp_id = t->interp_id;
	res->tid_from = t->tid_from;
	res->inherited = t->inherited;
	free(res->name);
	res->name = t->name ? strdup(t->name) : NULL;
	if (!thread_state_live(t->state)) {
		char who[64];
		if (res->tid != 0)
			snprintf(who, sizeof(who), "thread %d", (int)res->tid);
		else
			snprintf(who, sizeof(who), "thread with ident 0x%llx", (unsigned long long)res->ident);
		pk_error("raise in %s of process %d: refused: the thread has exited%s; its Python thread state is "
			 "still listed, but nothing runs there to raise an exception: nothing was queued", who,
			 (int)py->pid,
			 t->is_main ? " (the main thread called pthread_exit; the other threads run on)" : "");
		return -ESRCH;
	}
	if ((*snap)->finalizing) {
		pk_error("raise in process %d: refused: the interpreter is shutting down", (int)py->pid);
		return -EBUSY;
	}
	/* What the exception would do there, decided before anything is done:
	 * SystemExit ends a plain thread quietly, but gunicorn's pool thread
	 * for good, or a whole asyncio or gevent server (issue #11). */
	res->shape = t->shape;
	res->shape_idle = t->shape_idle;
	if (opts->exception == NULL) {
		res->exception = pk_shape_default_exception(t->shape, t->shape_idle);
		res->exception_default = true;
		rc = check_exception(py, res->exception, exc);
		if (rc == -ENOENT || rc == -ECANCELED) {
			pk_error_clear();
			pk_error("raise in process %d: Python %s has no %s, the default exception for a %s: name one",
				 (int)py->pid, py->version, res->exception, pk_shape_label(t->shape));
			rc = -ENOTSUP;
		}
		if (rc < 0)
			return rc;
	}
	pk_shape_consequence(t->shape, t->shape_idle, res->exception, &res->consequence);
	if (res->consequence.harm == PK_HARM_REFUSE && !opts->force) {
		pk_log(PK_LOG_INFO, "%s in thread %d, a %s%s: refused: %s", res->exception, (int)res->tid,
		       pk_shape_label(t->shape), t->shape_idle ? " (idle)" : "", res->consequence.text);
		res->verdict = PK_VERDICT_REFUSED;
	}
	return 0;
}

/* Queue exc in the target by the path opts and the layout allow. The
 * write path checks the job anchor of the thread's shape (the frame that
 * holds its job: a pool's work item, a loop's callback) is still on its
 * stack: -ESTALE when it is not (the job ended, nothing written). */
static int queue_exception(struct pk_py *py, const struct pk_raise_opts *opts, struct pk_py_snapshot *snap,
			   struct pk_py_thread *target, uint64_t exc, struct pk_raise_result *res,
			   struct write_job *job, bool *framed_at_queue)
{
	char why[1024] = "";
	uint64_t cur = 0;
	int anchor, rc;

	if (pk_rd_u64(py, target->tstate + (uint64_t)py->layout.ts_async_exc, &cur) == 0 && cur != 0)
		return refuse_queued(py, res->tid, cur);
	pk_error_clear();

	/* The path. The write path needs nothing from the target: the
	 * default wherever pykill knows this version's layout exactly. The
	 * call path runs code in a borrowed thread: only on request, or where
	 * the layout is not known exactly enough to write. */
	if (opts->via == PK_VIA_WRITE || (opts->via == PK_VIA_AUTO && pk_py_layout_exact(py))) {
		res->via = PK_VIA_WRITE;
		snprintf(res->via_reason, sizeof(res->via_reason), "%s",
			 opts->via == PK_VIA_WRITE ? "asked for"
						   : "the default: nothing run in the target, only threads not blocked in "
						     "a system call stopped");
	} else if (!target->main_interp) {
		pk_error("raise in thread %d of process %d: refused: the thread belongs to a subinterpreter, which "
			 "the call path cannot reach (PyThreadState_SetAsyncExc searches the caller's interpreter "
			 "only)%s", (int)res->tid, (int)py->pid,
			 pk_py_layout_exact(py) ? "; use --via=write" : "");
		return -EBUSY;
	} else if (ident_shared(snap, target)) {
		pk_error("raise in thread %d of process %d: refused: other thread states of its interpreter carry the "
			 "same ident 0x%llx, and PyThreadState_SetAsyncExc (the call path) would queue the exception in "
			 "every one of them%s", (int)res->tid, (int)py->pid, (unsigned long long)target->ident,
			 pk_py_layout_exact(py) ? "; use --via=write" : "");
		return -EBUSY;
	} else {
		/* The call path cannot hold the thread still between the reading
		 * and the call: the shape is as read (DESIGN.md, residuals). */
		rc = call_path_choose(py, snap, target->ident, exc, res, why, sizeof(why));
		/* The call ran while the borrowed thread held the GIL, so the
		 * target was not running then: inside Python code if the reading
		 * just before found it there (it can leave only through the eval
		 * loop, or by ending, which the call would have seen). */
		*framed_at_queue = rc == 0 && target->nframes > 0;
		if (rc == -EAGAIN) {
			pk_error("raise in thread %d of process %d: refused: the call path is not safe now: %s%s",
				 (int)res->tid, (int)py->pid, why,
				 opts->via == PK_VIA_AUTO ? " (and the write path needs a layout pykill knows "
							    "exactly for this version)" : "");
			return -EBUSY;
		}
		return rc;
	}
	memset(job, 0, sizeof(*job));
	job->op = OP_RAISE;
	job->tstate = target->tstate;
	job->ident = target->ident;
	job->exc = exc;
	job->native_tid = target->native_tid;
	job->os_tid = target->tid;
	job->await_handle_pending = !opts->force;
	job->nthreads_seen = snap->nthreads;
	job->must_run = target->nframes > 0 && thread_has_idle(snap, target);
	anchor = target->shape_idle ? -1 : pk_shape_anchor(target, pk_shape_modules(snap, target));
	job->anchor = anchor >= 0 ? target->frames[anchor].addr : 0;
	job->anchor_code = anchor >= 0 ? target->frames[anchor].code : 0;
	job->anchor_depth = target->nframes;
	rc = write_path(py, job);
	res->freeze_ns += job->freeze_ns;
	if (rc == -EEXIST)
		return refuse_queued(py, res->tid, job->old);
	if (rc == -ESRCH && job->went_idle) {
		pk_error("raise in thread %d of process %d: refused: its thread state of interpreter %lld stopped "
			 "running Python code before the exception could be queued (the thread swapped it out); "
			 "nothing written", (int)res->tid, (int)py->pid, (long long)target->interp_id);
		return -EBUSY;
	}
	if (rc == -ESRCH)
		pk_error("raise in thread %d of process %d: the thread ended before the exception could be queued",
			 (int)res->tid, (int)py->pid);
	if (rc == 0)
		*framed_at_queue = job->framed;
	return rc;
}

int pk_py_raise(struct pk_py *py, const struct pk_raise_opts *opts, struct pk_raise_result *res)
{
	struct pk_py_snapshot *snap = NULL;
	struct pk_py_thread *target = NULL;
	struct write_job job = { 0 };
	uint64_t exc = 0, t0 = pk_now_ns(), tq, tstate, ident, snap_freeze = 0, seen = 0;
	char qname[128];
	bool was_blocked, resignalled = false, framed_at_queue = false;
	int claim = -1;
	int rc;

	memset(res, 0, sizeof(*res));
	res->syscall_nr = -1;
	res->interrupted_nr = -1;
	/* A named exception is checked before the target is read: a typo is
	 * a usage error whatever the thread. */
	if (opts->exception != NULL) {
		res->exception = opts->exception;
		rc = check_exception(py, opts->exception, &exc);
		if (rc < 0)
			return rc;
	}
	/* The reading decides what to raise and whether; the write path
	 * checks, everything stopped, that the thread still runs the job it
	 * was read in (-ESTALE otherwise: nothing written, read again). */
	for (unsigned reading = 0;; reading++) {
		pk_py_snapshot_free(snap);
		snap = NULL;
		rc = read_target(py, opts, res, &snap, &target, &exc);
		if (snap != NULL)
			snap_freeze += snap->freeze_ns;
		if (rc < 0 || res->verdict == PK_VERDICT_REFUSED)
			goto out;
		/* One pykill at a time on this thread: another one's verdict and
		 * ours could not tell "replaced" from "taken, then another
		 * queued". */
		if (claim < 0) {
			rc = pk_thread_claim(py->pid, target->ident, opts->wait_ms + 5000u, opts->stop, &claim);
			if (rc == -EINTR)
				goto interrupted;
			if (rc < 0)
				goto out;
		}
		/* Interrupted before anything is queued: nothing done. */
		if (opts->stop != NULL && *opts->stop != 0)
			goto interrupted;
		rc = queue_exception(py, opts, snap, target, exc, res, &job, &framed_at_queue);
		if (rc != -ESTALE || reading >= 2)
			break;
		pk_log(PK_LOG_INFO, "thread %d left the job it was read in before the exception was written "
		       "(nothing written): reading it again", (int)res->tid);
		pk_error_clear();
	}
	if (rc == -ESTALE) {
		pk_error("raise in thread %d of process %d: refused: the thread finished what it ran each time "
			 "pykill was about to write (3 readings), so what %s would do there is not known; nothing "
			 "written", (int)res->tid, (int)py->pid, res->exception);
		rc = -EBUSY;
	}
	if (rc < 0)
		goto out;
	ident = target->ident;
	tstate = target->tstate;
	was_blocked = target->syscall_nr >= 0;
	/* Everything this run stopped counts, the first reading included. */
	res->freeze_ns += snap_freeze;
	tq = pk_now_ns();
	res->inject_ns = tq - t0;
	if (opts->interrupt)
		interrupt_target(py, ident, tstate, exc, was_blocked, res);

	/* The verdict: "delivered" only when this run's exception left
	 * async_exc while the thread was there to raise it. */
	for (;;) {
		enum watch_state w = watch(py, tstate, ident, res->tid, exc, &seen);
		uint64_t waited = pk_now_ns() - tq;

		/* A thread that was inside Python code when the exception was
		 * queued cannot leave it without the eval loop taking the
		 * exception: before 3.10 it checks at almost every instruction,
		 * since then at every call and backward jump, and a threading
		 * thread makes calls after its function returns. If it is now
		 * outside Python code, or gone, it took it. (One exception, in
		 * DESIGN.md: a bare _thread thread queued at its last RETURN.) */
		if (w == W_TAKEN || ((w == W_GONE || w == W_UNFRAMED) && framed_at_queue)) {
			res->verdict = PK_VERDICT_DELIVERED;
			break;
		}
		if (w == W_GONE) {
			res->verdict = PK_VERDICT_ENDED;
			break;
		}
		if (w == W_REPLACED) {
			res->verdict = PK_VERDICT_REPLACED;
			exception_name(py, seen, qname, sizeof(qname));
			snprintf(res->reason, sizeof(res->reason), "%s replaced it before it fired (queued by another "
				 "pykill or by the program)", qname);
			break;
		}
		if (waited >= (uint64_t)opts->wait_ms * 1000000ull || (opts->stop != NULL && *opts->stop != 0)) {
			res->verdict = w == W_UNFRAMED ? PK_VERDICT_ENDED : PK_VERDICT_PENDING;
			if (waited < (uint64_t)opts->wait_ms * 1000000ull)
				res->stopped_by = (int)*opts->stop;
			break;
		}
		/* Still queued, and the job it was raised for has ended (the
		 * worker is between jobs, where it would end the worker or the
		 * loop): take it back, everything stopped, if it is still so. */
		if (w == W_QUEUED && job.anchor != 0 &&
		    frame_on_stack(py, tstate, job.anchor, job.anchor_code, job.anchor_depth) == 0 && take_back(py, &job, res)) {
			res->verdict = PK_VERDICT_WITHDRAWN;
			snprintf(res->reason, sizeof(res->reason), "the job it was raised in ended before it fired, and "
				 "in the %s's own code it would %s; taken back", pk_shape_label(res->shape),
				 res->shape == PK_SHAPE_ASYNCIO ? "end the event loop" : "end the thread for good");
			break;
		}
		pk_error_clear();
		/* A thread stopped where the eval loop recomputes its breaker
		 * flag may have cleared our signal (code the write path cannot
		 * see by name in every build): set it again, once, if the
		 * exception is still ours and queued. */
		if (res->via == PK_VIA_WRITE && !resignalled && waited > RESIGNAL_AFTER_NS) {
			struct write_job rs = job;
			resignalled = true;
			rs.op = OP_RESIGNAL;
			rs.freeze_ns = 0;
			if (write_path(py, &rs) == 0)
				res->freeze_ns += rs.freeze_ns;
			pk_error_clear();
			continue;
		}
		verdict_pause(waited);
	}
	res->waited_ns = pk_now_ns() - tq;
	/* The verdict came from reading the thread state: of no worth if the
	 * process has become another program meanwhile. A thread that ended
	 * ("ended") may have been ended by an exec (in flight: let it finish,
	 * then the check below tells). */
	if (res->verdict == PK_VERDICT_ENDED)
		for (unsigned i = 0; i < 2000 && pk_proc_exec_in_flight(py->pid); i++)
			pk_sleep_ns(1000000);
	if (pk_mem_same_space(py->mem) < 0) {
		/* Gone: an exec makes the reading worthless; a process that
		 * exited (the exception ended its main thread, so the program)
		 * keeps the verdict. */
		bool exited = pk_py_process_ended(py->pid);
		pk_error_clear();
		if (!exited || res->verdict == PK_VERDICT_PENDING) {
			rc = -ESRCH;
			goto out;
		}
	}
	if (res->verdict == PK_VERDICT_PENDING) {
		char next[160];

		explain_pending(py, ident, res, next, sizeof(next));
		if (res->interrupted_nr >= 0) {
			char tmp[sizeof(res->reason)];
			snprintf(tmp, sizeof(tmp), "%s", res->reason);
			snprintf(res->reason, sizeof(res->reason), "%s returned EINTR but was retried (Python %s does not "
				 "check asynchronous exceptions there); now %.400s",
				 pk_py_syscall_name_or(res->interrupted_nr, "the call"),
				 py->version, tmp);
		}
		if (opts->withdraw_if_pending)
			withdraw_own(py, tstate, ident, exc, target, snap->nthreads, res);
		if (res->verdict == PK_VERDICT_PENDING && next[0] != '\0') {
			size_t len = strlen(res->reason);
			snprintf(res->reason + len, sizeof(res->reason) - len, "; %s", next);
		}
	}
	rc = 0;
	goto out;
interrupted:
	pk_error("raise in thread %d of process %d: interrupted by signal %d (%s) before anything was queued; "
		 "nothing done", (int)res->tid, (int)py->pid, (int)*opts->stop, strsignal((int)*opts->stop));
	rc = -EINTR;
out:
	pk_thread_unclaim(claim);
	pk_py_snapshot_free(snap);
	return rc < 0 && rc != -ENOENT && rc != -ECANCELED && rc != -EEXIST && rc != -EINTR ? pk_py_gone_check(py, rc)
											      : rc;
}
