/* pykill raise: queue an asynchronous exception in one thread, then watch it.
 *
 * Two ways to queue it:
 *  - the call path: one thread of the target, parked in an allow-listed
 *    blocking system call (so it holds none of the locks these functions
 *    take), runs PyGILState_Ensure / PyThreadState_SetAsyncExc /
 *    PyGILState_Release through the self-restoring trampoline of
 *    attach/pk_inject.h. Only that thread is stopped, and only until it
 *    runs the trampoline; the GIL holder keeps running so Ensure can get
 *    the GIL. Before calling, the GIL must be obtainable: free, or held by
 *    a thread that is executing bytecode (it drops the GIL on request).
 *  - the write path: every thread stopped, async_exc and the eval-breaker
 *    signal of this version written directly. No code runs in the target,
 *    so it works with a wedged GIL.
 * Either way, delivery is when the thread's async_exc is consumed (the eval
 * loop raised it) or the thread ends. */
#include "py-priv.h"
#include "pk_inject.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GIL_PROGRESS_NS 20000000ull /* how long a GIL holder is watched for bytecode progress */

void pk_raise_result_clear(struct pk_raise_result *res)
{
	free(res->name);
	free(res->where);
	memset(res, 0, sizeof(*res));
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
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

static struct pk_py_thread *find_thread(struct pk_py *py, struct pk_py_snapshot *snap, const char *spec)
{
	uint64_t v;

	if (!parse_u64(spec, &v)) {
		pk_error("raise in process %d: '%s' is neither a thread ID nor a Python thread ident", (int)py->pid,
			 spec);
		return NULL;
	}
	/* A TID (as ps -L shows it) first: idents are pointers, far above pid_max. */
	for (size_t i = 0; i < snap->nthreads; i++)
		if (snap->threads[i].tid != 0 && (uint64_t)snap->threads[i].tid == v)
			return &snap->threads[i];
	for (size_t i = 0; i < snap->nthreads; i++)
		if (snap->threads[i].ident == v)
			return &snap->threads[i];
	for (size_t i = 0; i < snap->nnatives; i++) {
		if ((uint64_t)snap->natives[i].tid == v) {
			pk_error("raise in thread %llu of process %d: it has no Python thread state (%s)",
				 (unsigned long long)v, (int)py->pid, snap->natives[i].comm);
			return NULL;
		}
	}
	if (v < (1u << 22)) {
		char path[64];
		struct pk_status st;
		snprintf(path, sizeof(path), "/proc/%llu", (unsigned long long)v);
		if (access(path, F_OK) == 0 && pk_proc_status((pid_t)v, 0, &st) == 0 && st.tgid != py->pid) {
			pk_error_clear();
			pk_error("raise in thread %llu: it is not a thread of process %d (it belongs to process %d)",
				 (unsigned long long)v, (int)py->pid, (int)st.tgid);
			return NULL;
		}
		pk_error_clear();
		pk_error("raise in thread %llu of process %d: no such thread", (unsigned long long)v, (int)py->pid);
		return NULL;
	}
	pk_error("raise in process %d: no Python thread has ident %s", (int)py->pid, spec);
	return NULL;
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

/* Is the GIL holder executing bytecode (it will hand the GIL over on
 * request), or stuck in a system call or in long C code? Watched without
 * stopping anything: its innermost frame and instruction must move. */
static bool holder_makes_progress(struct pk_py *py, const struct pk_py_thread *h)
{
	const struct pk_layout *L = &py->layout;
	uint64_t f0 = 0, f1 = 0, i0 = 0, i1 = 0, t0 = pk_now_ns();
	int32_t field = L->fr_instr >= 0 ? L->fr_instr : L->fr_lasti;

	uint64_t cpu0 = 0, cpu1 = 0;
	bool have_cpu;

	if (h->syscall_nr >= 0 && (h->state == 'S' || h->state == 'D'))
		return false;
	have_cpu = h->tid != 0 && pk_proc_cputime(py->pid, h->tid, &cpu0) == 0;
	for (int round = 0; pk_now_ns() - t0 < GIL_PROGRESS_NS; round++) {
		uint64_t frame = 0, cf = 0, instr = 0;
		if (pk_rd_u64(py, h->tstate + (uint64_t)L->ts_frame, &frame) < 0)
			return false;
		if (L->cframe_current_frame >= 0 && frame != 0) {
			if (pk_rd_u64(py, frame + (uint64_t)L->cframe_current_frame, &cf) < 0)
				return false;
			frame = cf;
		}
		if (frame != 0 && pk_mem_read(py->mem, frame + (uint64_t)field, &instr, L->fr_instr >= 0 ? 8 : 4) < 0)
			return false;
		if (round == 0) {
			f0 = frame;
			i0 = instr;
		} else {
			f1 = frame;
			i1 = instr;
			if (f1 != f0 || i1 != i0)
				return true;
		}
		pk_sleep_ns(1000000);
	}
	/* Not a single instruction moved. Stuck in C code only if it ran: on a
	 * loaded machine a holder may simply not have had a CPU (it will drop
	 * the GIL on request when it gets one). */
	if (have_cpu && pk_proc_cputime(py->pid, h->tid, &cpu1) == 0 && cpu1 == cpu0)
		return true;
	pk_error_clear();
	return false;
}

/* ------------------------------------------------------------ call path */

static int libc_errno_location(struct pk_py *py, uint64_t *addr)
{
	for (size_t i = 0; i < py->maps.n; i++) {
		const struct pk_map *m = &py->maps.v[i];
		const char *base = strrchr(m->path, '/');
		char open_path[512];
		struct pk_elf *elf;
		uint64_t v, size, bias;
		int rc;

		if (base == NULL || m->offset != 0 || (strncmp(base + 1, "libc.so", 7) != 0 && strncmp(base + 1, "libc-", 5) != 0))
			continue;
		if (pk_map_open_path(py->pid, m, open_path, sizeof(open_path)) < 0 ||
		    pk_elf_open(open_path, m->path, &elf) < 0)
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
	pk_log(PK_LOG_INFO, "call path: thread %d parked in %s ran the call: stopped %.3f ms, %u stop(s), %.3f ms wall",
	       (int)hijack->tid, pk_syscall_name(out.syscall_nr) ? pk_syscall_name(out.syscall_nr) : "?",
	       (double)out.freeze_ns / 1e6, out.stops, (double)out.wall_ns / 1e6);
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

/* ------------------------------------------------------------ write path */

static int write_u32(struct pk_py *py, uint64_t addr, uint32_t v)
{
	return pk_mem_write(py->mem, addr, &v, sizeof(v));
}

/* The eval-breaker signal that makes this version's eval loop look at async_exc. */
static int signal_async_exc(struct pk_py *py, uint64_t tstate, uint64_t interp)
{
	const struct pk_layout *L = &py->layout;
	uint64_t v, size, targets[2];
	int rc;

	if (py->major == 2) {
		/* The 2.7 ticker: polled at every "slow" opcode. */
		if (pk_elf_symbol(py->elf, "_Py_Ticker", &v, &size) < 0)
			return -ENOTSUP;
		return write_u32(py, v + py->bias, 0);
	}
	if (py->minor == 6) {
		/* Statics: _PyEval_SignalAsyncExc stores 1 to pending_async_exc then eval_breaker. */
		if (pk_elf_symbol(py->elf, "_PyEval_SignalAsyncExc", &v, &size) < 0 ||
		    pk_elf_rip_targets(py->elf, v, 8, targets, 2) != 2)
			return -ENOTSUP;
		rc = write_u32(py, targets[0] + py->bias, 1);
		return rc < 0 ? rc : write_u32(py, targets[1] + py->bias, 1);
	}
	if (L->rt_ceval_pending_async_exc >= 0 && L->rt_ceval_eval_breaker >= 0) {
		rc = write_u32(py, py->runtime + (uint64_t)L->rt_ceval_pending_async_exc, 1);
		return rc < 0 ? rc : write_u32(py, py->runtime + (uint64_t)L->rt_ceval_eval_breaker, 1);
	}
	if (L->is_ceval_pending_async_exc >= 0 && L->is_ceval_eval_breaker >= 0) {
		rc = write_u32(py, interp + (uint64_t)L->is_ceval_pending_async_exc, 1);
		return rc < 0 ? rc : write_u32(py, interp + (uint64_t)L->is_ceval_eval_breaker, 1);
	}
	if (L->ts_eval_breaker >= 0) {
		/* 3.13+: a per-thread word; high bits hold the instrumentation version: OR the bit in. */
		uint64_t eb = 0;
		rc = pk_rd_u64(py, tstate + (uint64_t)L->ts_eval_breaker, &eb);
		if (rc < 0)
			return rc;
		eb |= 0x8; /* _PY_ASYNC_EXCEPTION_BIT */
		return pk_mem_write(py->mem, tstate + (uint64_t)L->ts_eval_breaker, &eb, sizeof(eb));
	}
	return -ENOTSUP;
}

static int write_path(struct pk_py *py, uint64_t ident, uint64_t exc, struct pk_raise_result *res)
{
	const struct pk_layout *L = &py->layout;
	struct pk_freeze *fz = NULL;
	pid_t *tids = NULL;
	size_t ntids = 0;
	uint64_t tstate = 0, interp = 0, old = 0, head = 0, ts;
	unsigned count = 0;
	int rc;

	rc = pk_proc_tasks(py->pid, &tids, &ntids);
	if (rc < 0)
		return rc;
	rc = pk_freeze_new(py->pid, &fz);
	if (rc < 0)
		goto out;
	rc = pk_freeze_add(fz, tids, ntids);
	if (rc < 0)
		goto out;
	/* Still the program that was read? (A thread in the middle of an exec
	 * stops only once it runs the new one.) */
	rc = pk_mem_same_space(py->mem);
	if (rc < 0)
		goto out;
	/* Everything is stopped: find the thread state again, it may have gone. */
	if (py->runtime != 0)
		rc = pk_rd_u64(py, py->runtime + (uint64_t)L->rt_interpreters_head, &head);
	else
		rc = pk_rd_u64(py, py->interp_head_var, &head);
	for (uint64_t it = head; rc == 0 && it != 0 && tstate == 0 && count < PK_MAX_INTERPS; count++) {
		unsigned n = 0;
		if (pk_rd_u64(py, it + (uint64_t)L->is_tstate_head, &ts) < 0)
			break;
		for (; ts != 0 && n < PK_MAX_THREADS; n++) {
			uint64_t id = 0;
			if (pk_rd_u64(py, ts + (uint64_t)L->ts_thread_id, &id) < 0)
				break;
			if (id == ident) {
				tstate = ts;
				interp = it;
				break;
			}
			if (pk_rd_u64(py, ts + (uint64_t)L->ts_next, &ts) < 0)
				break;
		}
		if (pk_rd_u64(py, it + (uint64_t)L->is_next, &it) < 0)
			break;
	}
	if (tstate == 0) {
		pk_error("raise in thread %d of process %d: the thread ended before the exception could be queued",
			 (int)res->tid, (int)py->pid);
		rc = -ESRCH;
		goto out;
	}
	rc = pk_rd_u64(py, tstate + (uint64_t)L->ts_async_exc, &old);
	if (rc < 0)
		goto out;
	if (old != exc) {
		/* Until 3.12 exception types are not immortal: the reference async_exc
		 * holds must be counted (the eval loop drops it after raising). */
		if (py->major == 2 || py->minor < 12) {
			int64_t refcnt = 0;
			rc = pk_rd_u64(py, exc + (uint64_t)L->ob_refcnt, (uint64_t *)&refcnt);
			if (rc == 0 && (refcnt <= 0 || refcnt > (1ll << 40)))
				rc = -EINVAL;
			if (rc == 0) {
				refcnt++;
				rc = pk_mem_write(py->mem, exc + (uint64_t)L->ob_refcnt, &refcnt, sizeof(refcnt));
			}
			if (rc < 0) {
				pk_error("raise via write in process %d: the exception type's reference count is unreadable",
					 (int)py->pid);
				goto out;
			}
		}
		rc = pk_mem_write(py->mem, tstate + (uint64_t)L->ts_async_exc, &exc, sizeof(exc));
		if (rc < 0)
			goto out;
		/* The replaced exception (a type, never freed) loses the reference. */
		if (old != 0 && (py->major == 2 || py->minor < 12)) {
			int64_t refcnt = 0;
			if (pk_rd_u64(py, old + (uint64_t)L->ob_refcnt, (uint64_t *)&refcnt) == 0 && refcnt > 1) {
				refcnt--;
				pk_mem_write(py->mem, old + (uint64_t)L->ob_refcnt, &refcnt, sizeof(refcnt));
			}
		}
	}
	rc = signal_async_exc(py, tstate, interp);
	if (rc < 0 && rc != -ENOTSUP)
		goto out;
	if (rc == -ENOTSUP)
		pk_log(PK_LOG_WARN, "no eval-breaker signal for Python %s: delivery waits for the thread's next GIL "
		       "switch", py->version);
	rc = 0;
out:
	if (fz != NULL) {
		res->freeze_ns = pk_freeze_end(fz);
		pk_freeze_free(fz);
	}
	free(tids);
	return rc;
}

/* ------------------------------------------------------------ verdict */

static bool thread_alive(pid_t pid, pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
	return access(path, F_OK) == 0;
}

static bool consumed(struct pk_py *py, uint64_t tstate, uint64_t ident, pid_t tid)
{
	const struct pk_layout *L = &py->layout;
	uint64_t exc = 1, id = 0;

	if (tid != 0 && !thread_alive(py->pid, tid))
		return true;
	/* Freed thread state (the thread is ending): its ident no longer matches. */
	if (pk_rd_u64(py, tstate + (uint64_t)L->ts_thread_id, &id) < 0 || id != ident)
		return true;
	return pk_rd_u64(py, tstate + (uint64_t)L->ts_async_exc, &exc) == 0 && exc == 0;
}

static void explain_pending(struct pk_py *py, uint64_t ident, struct pk_raise_result *res)
{
	struct pk_snapshot_opts so = { .freeze = PK_FREEZE_AUTO, .want_frames = true, .want_names = true,
				       .max_frames = 4 };
	struct pk_py_snapshot *snap = NULL;
	struct pk_py_thread *t = NULL, *h;
	char who[200];
	const char *sc;

	if (pk_py_snapshot(py, &so, &snap) < 0) {
		snprintf(res->reason, sizeof(res->reason), "not delivered yet");
		return;
	}
	for (size_t i = 0; i < snap->nthreads; i++)
		if (snap->threads[i].ident == ident)
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
	sc = t->syscall_nr >= 0 ? pk_syscall_name(t->syscall_nr) : NULL;
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
		snprintf(res->reason, sizeof(res->reason), "blocked in system call %s%s; the exception stays queued and "
			 "fires when the call returns", sc ? sc : "?", t->gil == PK_GIL_HOLDS ? " while holding the GIL" : "");
	} else if (t->gil == PK_GIL_HOLDS) {
		snprintf(res->reason, sizeof(res->reason), "running C code while holding the GIL; the exception fires "
			 "at its next bytecode boundary");
	} else {
		snprintf(res->reason, sizeof(res->reason), "running outside the interpreter loop (in C code); the "
			 "exception fires when it returns to Python code");
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
 * call, and the exception waits for it to return. The verdict says which. */
static void interrupt_target(struct pk_py *py, uint64_t ident, uint64_t tstate, struct pk_raise_result *res)
{
	struct pk_syscall sc;
	long nr = -1;
	int64_t was = 0;
	int rc;

	res->interrupted_nr = -1;
	if (consumed(py, tstate, ident, res->tid)) {
		snprintf(res->interrupt_note, sizeof(res->interrupt_note), "nothing to interrupt: already delivered");
		return;
	}
	if (pk_proc_syscall(py->pid, res->tid, &sc) < 0 || sc.nr < 0) {
		pk_error_clear();
		snprintf(res->interrupt_note, sizeof(res->interrupt_note),
			 "nothing to interrupt: the thread is not blocked in a system call");
		return;
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
		 pk_syscall_name(nr) ? pk_syscall_name(nr) : "the system call");
	pk_log(PK_LOG_INFO, "interrupted %s in thread %d (its pending result was %lld)",
	       pk_syscall_name(nr) ? pk_syscall_name(nr) : "?", (int)res->tid, (long long)was);
}

int pk_py_raise(struct pk_py *py, const struct pk_raise_opts *opts, struct pk_raise_result *res)
{
	struct pk_snapshot_opts so = { .freeze = PK_FREEZE_AUTO, .want_frames = true, .want_names = true,
				       .max_frames = 8 };
	struct pk_py_snapshot *snap = NULL;
	struct pk_py_thread *target, *holder;
	uint64_t exc = 0, t0 = pk_now_ns(), tq, tstate, ident, snap_freeze = 0;
	char why[512] = "", who[200];
	int rc;

	memset(res, 0, sizeof(*res));
	res->syscall_nr = -1;
	res->interrupted_nr = -1;
	rc = exception_type(py, opts->exception, &exc);
	if (rc < 0) {
		if (rc == -ENOENT)
			pk_error("raise in process %d: Python %s has no built-in exception '%s'", (int)py->pid,
				 py->version, opts->exception);
		return rc == -ENOENT ? rc : pk_py_gone_check(py, rc);
	}
	/* A consistent picture (the thread list may change while a thread
	 * starts or ends, and a torn reading could miss the thread): its stop,
	 * short, is counted in freeze_us below. */
	rc = pk_py_snapshot(py, &so, &snap);
	if (rc < 0)
		return rc;
	snap_freeze = snap->freeze_ns;
	target = find_thread(py, snap, opts->thread);
	if (target == NULL) {
		rc = -ESRCH;
		goto out;
	}
	res->tid = target->tid;
	res->ns_tid = target->ns_tid;
	res->ident = ident = target->ident;
	tstate = target->tstate;
	res->name = target->name ? strdup(target->name) : NULL;
	if (snap->finalizing) {
		pk_error("raise in process %d: refused: the interpreter is shutting down", (int)py->pid);
		rc = -EBUSY;
		goto out;
	}
	if (!target->main_interp && opts->via != PK_VIA_WRITE) {
		snprintf(why, sizeof(why), "the thread belongs to a subinterpreter, which PyGILState_Ensure cannot reach");
	}

	res->via = opts->via == PK_VIA_CALL ? PK_VIA_CALL : PK_VIA_WRITE;
	holder = gil_holder(snap);
	if (opts->via != PK_VIA_WRITE && why[0] == '\0' && holder != NULL && !holder_makes_progress(py, holder)) {
		describe_thread(holder, who, sizeof(who));
		if (holder->syscall_nr >= 0)
			snprintf(why, sizeof(why), "the GIL is held by %s, blocked in %s", who,
				 pk_syscall_name(holder->syscall_nr) ? pk_syscall_name(holder->syscall_nr) : "a system call");
		else
			snprintf(why, sizeof(why), "the GIL is held by %s, running C code", who);
	}
	rc = -EAGAIN;
	if (opts->via != PK_VIA_WRITE && why[0] == '\0') {
		/* A thread parked in a safe system call, main thread first. One
		 * that woke up between the check and the stop is left untouched
		 * by the engine (-EAGAIN): try the next. */
		char tw[160];
		for (int pass = 0; pass < 2 && rc == -EAGAIN; pass++) {
			for (size_t i = 0; i < snap->nthreads && rc == -EAGAIN; i++) {
				struct pk_py_thread *c = &snap->threads[i];
				if (c->tid == 0 || !c->main_interp || (pass == 0) != c->is_main)
					continue;
				if (holder != NULL && holder != c && holder->syscall_nr >= 0)
					continue;
				if (pk_rcall_check_thread(py->pid, c->tid, tw, sizeof(tw)) < 0)
					continue;
				res->via = PK_VIA_CALL;
				snprintf(res->via_reason, sizeof(res->via_reason), "thread %d (%s) was parked in %s",
					 (int)c->tid, c->name ? c->name : "-",
					 c->syscall_nr >= 0 && pk_syscall_name(c->syscall_nr) ? pk_syscall_name(c->syscall_nr)
											      : "a system call");
				rc = call_path(py, c, ident, exc, res);
				/* EPERM: another tracer (often another pykill) holds it for a moment. */
				if (rc == -EPERM)
					rc = -EAGAIN;
				if (rc == -EAGAIN) {
					pk_log(PK_LOG_INFO, "thread %d woke up before it could be used; trying another",
					       (int)c->tid);
					pk_error_clear();
				}
			}
		}
		if (rc == -EAGAIN)
			snprintf(why, sizeof(why), "no Python thread is parked in a system call where a call is safe");
	}
	if (rc == -EAGAIN) {
		if (opts->via == PK_VIA_CALL) {
			pk_error("raise in thread %d of process %d: refused: the call path is not safe now: %s",
				 (int)res->tid, (int)py->pid, why);
			rc = -EBUSY;
			goto out;
		}
		res->via = PK_VIA_WRITE;
		snprintf(res->via_reason, sizeof(res->via_reason), "%s", opts->via == PK_VIA_WRITE ? "asked for" : why);
		/* Every thread must be stopped: another pykill holding some for a few
		 * milliseconds is waited out (everything released between tries). */
		for (unsigned attempt = 0;; attempt++) {
			rc = write_path(py, ident, exc, res);
			if (rc != -EPERM || attempt >= 3)
				break;
			pk_error_clear();
			pk_sleep_ns(5000000ull * (attempt + 1) + pk_now_ns() % 5000000ull);
		}
	}
	if (rc < 0)
		goto out;
	/* Everything this run stopped counts, the first reading included. */
	res->freeze_ns += snap_freeze;
	tq = pk_now_ns();
	res->inject_ns = tq - t0;
	if (opts->interrupt)
		interrupt_target(py, ident, tstate, res);

	/* The verdict. */
	for (;;) {
		if (consumed(py, tstate, ident, res->tid)) {
			res->verdict = PK_VERDICT_DELIVERED;
			break;
		}
		if (pk_now_ns() - tq >= (uint64_t)opts->wait_ms * 1000000ull) {
			res->verdict = PK_VERDICT_PENDING;
			break;
		}
		pk_sleep_ns(500000);
	}
	res->waited_ns = pk_now_ns() - tq;
	/* The verdict came from reading the thread state: of no worth if the
	 * process has become another program meanwhile. A thread that ended
	 * counts as delivered, unless an exec (in flight: let it finish)
	 * ended it. */
	if (res->verdict == PK_VERDICT_DELIVERED)
		for (unsigned i = 0; i < 2000 && pk_proc_exec_in_flight(py->pid); i++)
			pk_sleep_ns(1000000);
	if (pk_mem_same_space(py->mem) < 0) {
		rc = -ESRCH;
		goto out;
	}
	if (res->verdict == PK_VERDICT_PENDING) {
		explain_pending(py, ident, res);
		if (res->interrupted_nr >= 0) {
			char tmp[sizeof(res->reason)];
			snprintf(tmp, sizeof(tmp), "%s", res->reason);
			snprintf(res->reason, sizeof(res->reason), "%s returned EINTR but was retried (Python %s does not "
				 "check asynchronous exceptions there); now %.400s",
				 pk_syscall_name(res->interrupted_nr) ? pk_syscall_name(res->interrupted_nr) : "the call",
				 py->version, tmp);
		}
	}
	rc = 0;
out:
	pk_py_snapshot_free(snap);
	return rc < 0 && rc != -ENOENT ? pk_py_gone_check(py, rc) : rc;
}
