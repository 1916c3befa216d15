/* SPDX-License-Identifier: MIT */
/* A consistent picture of every Python thread, for as short a freeze as we
 * can manage.
 *
 * What holds: a thread blocked in a system call cannot change its own Python
 * stack, and no thread can change the interpreter's thread list or another
 * thread's frames without running. So (PK_FREEZE_AUTO) only the threads that
 * were not blocked in a system call when /proc was read are stopped; the
 * others are never interrupted, so none of their system calls sees a
 * spurious EINTR because of us. After reading, each Python thread that was
 * left running is checked through its CPU time: if it ran since /proc was
 * read, it may have changed what we read, so it is stopped too and the
 * whole read is done again (at most PK_ROUNDS times, then everything is
 * stopped). Signals that would end pykill are blocked by the freeze while any
 * thread is stopped, so Ctrl-C cannot leave a thread stopped. */
#include "py-priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PK_ROUNDS 3
#define TSTATE_READ_MAX 0x400

struct task {
	pid_t tid, ns_tid;
	char state;
	struct pk_syscall sc;
	uint64_t cpu_ns;
	char comm[64];
	bool stopped;
	bool python;
	bool waits_for_held_gil; /* blocked on a GIL whose holder we stopped */
};

struct reading {
	struct pk_py_thread *threads;
	struct pk_gil_info *gils;  /* the GIL of each thread's interpreter, parallel to threads */
	size_t n, cap;
	size_t ninterps;
	bool finalizing;
	uint64_t main_interp;   /* where the main interpreter's threads are: names are read for them */
	size_t main_first, main_count;
	/* Every link of the thread lists as read (the head, each next): read
	 * again, uncached, before the threads are released, they tell whether
	 * the list changed under us. */
	uint64_t *link_addr, *link_val;
	size_t nlinks, links_cap;
	/* The bounds of this reading (pk_read_limits) and, when one was
	 * reached, what was left unread. */
	size_t max_tstates;     /* thread states of every interpreter; 0: none but PK_MAX_THREADS */
	size_t process_threads;
	uint64_t budget_ns, deadline; /* 0: none */
	char cut[256];
};

static void link_add(struct reading *r, uint64_t addr, uint64_t val)
{
	if (r->nlinks == r->links_cap) {
		size_t ncap = r->links_cap ? r->links_cap * 2 : 256;
		uint64_t *a = realloc(r->link_addr, ncap * sizeof(*a));
		uint64_t *v;
		if (a == NULL)
			return;
		r->link_addr = a;
		v = realloc(r->link_val, ncap * sizeof(*v));
		if (v == NULL)
			return;
		r->link_val = v;
		r->links_cap = ncap;
	}
	r->link_addr[r->nlinks] = addr;
	r->link_val[r->nlinks++] = val;
}

static void thread_clear(struct pk_py_thread *t)
{
	for (size_t i = 0; i < t->nframes; i++) {
		free(t->frames[i].function);
		free(t->frames[i].file);
	}
	free(t->frames);
	free(t->name);
	free(t->frames_error);
	memset(t, 0, sizeof(*t));
}

static void reading_clear(struct reading *r)
{
	for (size_t i = 0; i < r->n; i++)
		thread_clear(&r->threads[i]);
	free(r->threads);
	free(r->gils);
	free(r->link_addr);
	free(r->link_val);
	memset(r, 0, sizeof(*r));
}

/* Arm a reading's bounds; its time runs from now. */
static void reading_limit(struct reading *r, const struct pk_read_limits *lim)
{
	if (lim == NULL)
		return;
	r->process_threads = lim->process_threads;
	if (lim->process_threads != 0)
		r->max_tstates = lim->process_threads * 2 + PK_SPARE_TSTATES;
	r->budget_ns = lim->budget_ns;
	r->deadline = lim->budget_ns != 0 ? pk_now_ns() + lim->budget_ns : 0;
}

static bool reading_late(const struct reading *r)
{
	return r->deadline != 0 && pk_now_ns() >= r->deadline;
}

/* The first bound reached says why the reading stopped there. */
static void reading_cut(struct reading *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reading_cut(struct reading *r, const char *fmt, ...)
{
	va_list ap;

	if (r->cut[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(r->cut, sizeof(r->cut), fmt, ap);
	va_end(ap);
	pk_log(PK_LOG_INFO, "reading cut short: %s", r->cut);
}

static int scan_tasks(pid_t pid, bool want_ns, struct task **out, size_t *nout)
{
	pid_t *tids = NULL;
	size_t n = 0, k = 0;
	struct task *tasks;
	int rc;

	rc = pk_proc_tasks(pid, &tids, &n);
	if (rc < 0)
		return rc;
	tasks = calloc(n ? n : 1, sizeof(*tasks));
	if (tasks == NULL) {
		free(tids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct task *t = &tasks[k];
		struct pk_stat st;

		t->tid = tids[i];
		t->ns_tid = tids[i];
		if (pk_proc_stat(pid, t->tid, &st) < 0)
			continue; /* ended meanwhile */
		t->state = st.state;
		snprintf(t->comm, sizeof(t->comm), "%s", st.comm);
		if (pk_proc_syscall(pid, t->tid, &t->sc) < 0)
			t->sc.nr = PK_SYSCALL_RUNNING;
		if (want_ns) {
			struct pk_status ts;
			if (pk_proc_status(pid, t->tid, &ts) < 0)
				continue;
			if (ts.ns_levels > 0)
				t->ns_tid = ts.nspid[ts.ns_levels - 1];
		}
		k++;
	}
	free(tids);
	pk_error_clear();
	*out = tasks;
	*nout = k;
	return 0;
}

static bool must_stop(const struct task *t, enum pk_freeze_mode mode)
{
	if (mode == PK_FREEZE_ALL)
		return t->state != 'T' && t->state != 't' && t->state != 'Z' && t->state != 'X';
	if (mode == PK_FREEZE_NONE)
		return false;
	if (t->state == 'T' || t->state == 't' || t->state == 'Z' || t->state == 'X')
		return false; /* cannot run anyway */
	return t->state == 'R' || t->sc.nr < 0;
}

/* tasks[] is in ascending TID order (from /proc/PID/task). */
static struct task *task_by_tid(struct task *tasks, size_t n, pid_t tid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tasks[mid].tid == tid)
			return &tasks[mid];
		if (tasks[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ------------------------------------------------------------ reading */

static int reading_push(struct reading *r, const struct pk_gil_info *gil, struct pk_py_thread **out)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 64;
		struct pk_py_thread *n = realloc(r->threads, ncap * sizeof(*n));
		struct pk_gil_info *g;
		if (n == NULL)
			return -ENOMEM;
		r->threads = n;
		g = realloc(r->gils, ncap * sizeof(*g));
		if (g == NULL)
			return -ENOMEM;
		r->gils = g;
		r->cap = ncap;
	}
	r->gils[r->n] = *gil;
	*out = &r->threads[r->n++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int read_interp_threads(struct pk_py *py, struct pk_code_cache *cache, uint64_t interp, int64_t interp_id,
			       bool main_interp, const struct pk_snapshot_opts *opts, struct reading *r)
{
	const struct pk_layout *L = &py->layout;
	struct pk_gil_info gil;
	uint64_t ts = 0;
	struct pk_chain chain;
	size_t tslen = (size_t)L->ts_size;
	size_t first = r->n, nts = 0, cap = 0;
	unsigned max_frames = opts->max_frames ? opts->max_frames : PK_DEFAULT_MAX_FRAMES;
	uint64_t t_start = pk_now_ns(), t_list = 0, t_pre = 0, t_walk = 0;
	uint8_t *bufs = NULL;
	uint64_t *addrs = NULL;
	int rc;

	/* Only the fields used: a thread state is up to a kilobyte, and every
	 * byte read is copied again when the cache is refreshed in the freeze. */
	{
		const int32_t used[] = { L->ts_next, L->ts_frame, L->ts_thread_id, L->ts_native_thread_id,
					 L->ts_async_exc, L->ts_interp };
		int32_t hi = 0;
		for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++)
			if (used[i] > hi)
				hi = used[i];
		if ((size_t)hi + 8 < tslen)
			tslen = (size_t)hi + 8;
	}
	if (tslen == 0 || tslen > TSTATE_READ_MAX)
		tslen = TSTATE_READ_MAX;
	pk_gil_read(py, interp, &gil);
	rc = pk_rd_u64(py, interp + (uint64_t)L->is_tstate_head, &ts);
	if (rc == 0)
		link_add(r, interp + (uint64_t)L->is_tstate_head, ts);
	if (rc < 0) {
		pk_error("read the thread list of interpreter %lld at 0x%llx: unreadable", (long long)interp_id,
			 (unsigned long long)interp);
		return rc;
	}
	/* Pass 1: the thread states (a linked list: one at a time). A forged
	 * list can be long without looping: it is read up to the reading's
	 * bounds, in thread states and in time, and what follows is left. */
	pk_chain_init(&chain, ts, PK_MAX_THREADS, 0);
	while ((rc = pk_chain_next(&chain, &ts)) != 0) {
		uint8_t *buf;

		if (rc == -ELOOP) {
			pk_error("read the thread list of interpreter %lld: it loops at 0x%llx", (long long)interp_id,
				 (unsigned long long)chain.cur);
			goto out;
		}
		if (r->max_tstates != 0 && r->n + nts >= r->max_tstates) {
			reading_cut(r, "the thread list was cut after %zu thread states, more than a process of %zu "
				    "threads has (2 per thread + %u): a forged or cyclic list; the rest was not read",
				    r->n + nts, r->process_threads, PK_SPARE_TSTATES);
			break;
		}
		if (reading_late(r)) {
			reading_cut(r, "the thread list was cut after %zu thread states: reading it took the %llu ms "
				    "allowed while threads are stopped; the rest was not read", r->n + nts,
				    (unsigned long long)(r->budget_ns / 1000000));
			break;
		}
		/* Checked after the cuts: a list past them is cut, not refused. */
		if (rc == -E2BIG) {
			pk_error("read the thread list of interpreter %lld: more than %u threads (corrupt list?)",
				 (long long)interp_id, PK_MAX_THREADS);
			rc = -ELOOP;
			goto out;
		}
		if (nts == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			uint8_t *nb = realloc(bufs, ncap * tslen);
			uint64_t *na = realloc(addrs, ncap * sizeof(*na));
			if (nb != NULL)
				bufs = nb;
			if (na != NULL)
				addrs = na;
			if (nb == NULL || na == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			cap = ncap;
		}
		buf = bufs + nts * tslen;
		if (pk_mem_read(py->mem, ts, buf, tslen) < 0) {
			pk_error("read thread state at 0x%llx: unreadable memory", (unsigned long long)ts);
			rc = -EFAULT;
			goto out;
		}
		addrs[nts++] = ts;
		link_add(r, ts + (uint64_t)L->ts_next, pk_get_u64(buf, tslen, L->ts_next));
		pk_chain_follow(&chain, pk_get_u64(buf, tslen, L->ts_next));
	}
	t_list = pk_now_ns();
	/* Pass 2: every thread's frames, a depth level at a time, in batched reads. */
	if (opts->want_frames && nts > 1 && !reading_late(r)) {
		uint64_t *firsts = malloc(nts * sizeof(*firsts));
		if (firsts != NULL) {
			for (size_t i = 0; i < nts; i++)
				firsts[i] = pk_get_u64(bufs + i * tslen, tslen, L->ts_frame);
			pk_frames_prefetch(py, firsts, nts, max_frames * 4 + 64);
			free(firsts);
		}
	}
	t_pre = pk_now_ns();
	/* Pass 3: the threads, from the warm cache. */
	for (size_t i = 0; i < nts; i++) {
		const uint8_t *buf = bufs + i * tslen;
		struct pk_py_thread *t;

		rc = reading_push(r, &gil, &t);
		if (rc < 0)
			goto out;
		t->interp_id = interp_id;
		t->main_interp = main_interp;
		t->tstate = addrs[i];
		t->ident = pk_get_u64(buf, tslen, L->ts_thread_id);
		if (L->ts_native_thread_id >= 0)
			t->native_tid = (pid_t)pk_get_u64(buf, tslen, L->ts_native_thread_id);
		/* 3.11-3.12: cframe points into the state itself (root_cframe)
		 * unless an eval loop runs it: then to that loop's _PyCFrame, on
		 * the C stack of the thread running it (threadid.c). */
		if (L->cframe_current_frame >= 0) {
			uint64_t cf = pk_get_u64(buf, tslen, L->ts_frame);
			uint64_t size = L->ts_size > 0 ? (uint64_t)L->ts_size : TSTATE_READ_MAX;
			if (cf != 0 && (cf < addrs[i] || cf - addrs[i] >= size))
				t->cstack = cf;
		}
		t->has_async_exc = pk_get_u64(buf, tslen, L->ts_async_exc) != 0;
		/* _Py_THREAD_SUSPENDED (2): the world is stopped and this state
		 * is not the one that stopped it. */
		if (L->ts_state >= 0)
			t->stw_suspended = pk_get_i32(buf, tslen, L->ts_state) == 2;
		t->gil = gil.absent ? PK_GIL_ABSENT
			 : (gil.holder != 0 && gil.holder == addrs[i]) ? PK_GIL_HOLDS : PK_GIL_NONE;
		t->state = '?';
		t->syscall_nr = -1;
		if (opts->want_frames && reading_late(r)) {
			reading_cut(r, "the %llu ms allowed for reading while threads are stopped ran out: the frames "
				    "of %zu thread(s) were not read", (unsigned long long)(r->budget_ns / 1000000), nts - i);
			t->frames_error = strdup("not read: the time allowed while threads are stopped ran out");
		} else if (opts->want_frames) {
			rc = pk_frames_walk(py, cache, buf, tslen, max_frames, t);
			if (rc < 0)
				goto out;
		}
	}
	t_walk = pk_now_ns();
	if (main_interp) {
		r->main_interp = interp;
		r->main_first = first;
		r->main_count = r->n - first;
	}
	if (main_interp && opts->want_names && r->n > first)
		pk_names_read(py, interp, &r->threads[first], r->n - first);
	pk_log(PK_LOG_DEBUG, "interpreter %lld: %zu thread states in %.3f ms, frames prefetched in %.3f ms, walked in "
	       "%.3f ms, names in %.3f ms", (long long)interp_id, nts, (double)(t_list - t_start) / 1e6,
	       (double)(t_pre - t_list) / 1e6, (double)(t_walk - t_pre) / 1e6, (double)(pk_now_ns() - t_walk) / 1e6);
	rc = 0;
out:
	free(bufs);
	free(addrs);
	return rc;
}

static int read_all(struct pk_py *py, const struct pk_snapshot_opts *opts, const struct pk_read_limits *lim,
		    struct reading *r)
{
	const struct pk_layout *L = &py->layout;
	struct pk_code_cache *cache;
	uint64_t interp = 0, main_interp = 0;
	struct pk_chain chain;
	int rc;

	reading_limit(r, lim);
	cache = pk_code_cache_new();
	if (cache == NULL)
		return -ENOMEM;
	if (py->runtime != 0) {
		uint64_t fin = 0;
		rc = pk_rd_u64(py, py->runtime + (uint64_t)L->rt_interpreters_head, &interp);
		if (rc < 0) {
			pk_error("read _PyRuntime at 0x%llx: unreadable memory", (unsigned long long)py->runtime);
			goto out;
		}
		if (L->rt_interpreters_main >= 0)
			pk_rd_u64(py, py->runtime + (uint64_t)L->rt_interpreters_main, &main_interp);
		if (L->rt_finalizing >= 0 && pk_rd_u64(py, py->runtime + (uint64_t)L->rt_finalizing, &fin) == 0)
			r->finalizing = fin != 0;
	} else {
		rc = pk_rd_u64(py, py->interp_head_var, &interp);
		if (rc < 0) {
			pk_error("read interp_head at 0x%llx: unreadable memory", (unsigned long long)py->interp_head_var);
			goto out;
		}
	}
	if (interp == 0) {
		pk_error("read the interpreter list of process %d: it is empty (Python not initialised yet, or "
			 "already finalised)", (int)py->pid);
		rc = -ENOEXEC;
		goto out;
	}
	/* The list is newest first: without interpreters.main, the main one is last. */
	if (main_interp == 0) {
		uint64_t p = 0, next = 0;
		pk_chain_init(&chain, interp, PK_MAX_INTERPS, 0);
		while (pk_chain_next(&chain, &p) > 0) {
			main_interp = p;
			if (pk_rd_u64(py, p + (uint64_t)L->is_next, &next) < 0)
				break;
			pk_chain_follow(&chain, next);
		}
	}
	pk_chain_init(&chain, interp, PK_MAX_INTERPS, 0);
	while ((rc = pk_chain_next(&chain, &interp)) != 0) {
		int64_t id = 0;
		uint64_t next = 0;

		if (rc == -ELOOP) {
			pk_error("read the interpreter list: it loops");
			goto out;
		}
		if (rc == -E2BIG) {
			pk_error("read the interpreter list: more than %u interpreters (corrupt list?)", PK_MAX_INTERPS);
			rc = -ELOOP;
			goto out;
		}
		if (reading_late(r)) {
			reading_cut(r, "the interpreter list was cut after %zu interpreters: reading took the %llu ms "
				    "allowed while threads are stopped; the rest was not read", r->ninterps,
				    (unsigned long long)(r->budget_ns / 1000000));
			break;
		}
		if (L->is_id >= 0)
			pk_rd_u64(py, interp + (uint64_t)L->is_id, (uint64_t *)&id);
		rc = read_interp_threads(py, cache, interp, id, interp == main_interp, opts, r);
		if (rc < 0)
			goto out;
		r->ninterps++;
		if (r->cut[0] != '\0')
			break; /* the next interpreters are past the bound too */
		rc = pk_rd_u64(py, interp + (uint64_t)L->is_next, &next);
		if (rc < 0) {
			pk_error("read interpreter at 0x%llx: unreadable memory", (unsigned long long)interp);
			goto out;
		}
		pk_chain_follow(&chain, next);
	}
	rc = 0;
out:
	pk_code_cache_free(cache);
	return rc;
}

/* Which live thread each state is on (threadid.c): the tasks as /proc
 * showed them, with the stack and thread pointers of the threads this
 * freeze stopped. Marks the tasks that have a state. */
static void map_tids(struct pk_py *py, struct reading *r, struct task *tasks, size_t ntasks,
		     const struct pk_freeze *fz)
{
	uint64_t t0 = pk_now_ns();
	struct pk_id_task *ids = calloc(ntasks ? ntasks : 1, sizeof(*ids));
	bool want_regs = py->pthread_tid_offset < 0;

	/* The registers of stopped threads (a ptrace call each, inside the
	 * freeze) serve to find the descriptor's TID offset, once, and to place
	 * the states that run Python code on their stacks. */
	for (size_t i = 0; i < r->n && !want_regs; i++)
		want_regs = r->threads[i].cstack != 0;
	if (ids == NULL) {
		for (size_t i = 0; i < r->n; i++)
			r->threads[i].tid = r->threads[i].ns_tid = 0;
		return;
	}
	for (size_t i = 0; i < ntasks; i++) {
		ids[i].tid = tasks[i].tid;
		ids[i].ns_tid = tasks[i].ns_tid;
		ids[i].state = tasks[i].state;
		ids[i].sp = tasks[i].sc.nr != PK_SYSCALL_RUNNING ? tasks[i].sc.sp : 0;
		if (want_regs && fz != NULL && pk_freeze_has(fz, tasks[i].tid)) {
			uint64_t sp = 0, tp = 0;
			if (pk_freeze_sp_tp(fz, tasks[i].tid, &sp, &tp) == 0) {
				ids[i].sp = sp;
				ids[i].tp = tp;
			}
		}
	}
	pk_threads_identify(py, r->threads, r->n, ids, ntasks, py->pid);
	for (size_t i = 0; i < ntasks; i++)
		tasks[i].python = ids[i].has_state;
	free(ids);
	pk_log(PK_LOG_DEBUG, "thread identity of %zu states in %.3f ms", r->n, (double)(pk_now_ns() - t0) / 1e6);
}

/* Before the freeze: the thread descriptors' words (threadid.c). */
static void prefetch_tids(struct pk_py *py, struct reading *r, const struct task *tasks, size_t ntasks)
{
	struct pk_id_task *ids = calloc(ntasks ? ntasks : 1, sizeof(*ids));

	if (ids == NULL)
		return;
	for (size_t i = 0; i < ntasks; i++) {
		ids[i].tid = tasks[i].tid;
		ids[i].ns_tid = tasks[i].ns_tid;
		ids[i].state = tasks[i].state;
	}
	pk_threads_prefetch(py, r->threads, r->n, ids, ntasks);
	free(ids);
}

/* While the GIL holder is stopped, no other thread of its interpreter can
 * run Python code: a thread that wakes up (a sleep ends, data arrives, the
 * GIL wait times out every switch interval) blocks taking the GIL before it
 * can touch its frames, the thread list or any object. So when the holder
 * is among the stopped threads, the threads left running cannot make the
 * reading stale, however often they wake: they need no check. (When the
 * GIL is free, or its holder is blocked in a system call and so not
 * stopped, every thread is checked.) */
static void mark_gil_waiters(struct reading *r, struct task *tasks, size_t ntasks, pid_t *holder_tid)
{
	uint64_t last_holder = 0;
	struct task *holder = NULL;

	*holder_tid = 0;
	for (size_t i = 0; i < ntasks; i++)
		tasks[i].waits_for_held_gil = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct pk_gil_info *g = &r->gils[i];
		struct task *task;

		if (r->threads[i].tid == 0 || g->holder == 0)
			continue;
		task = task_by_tid(tasks, ntasks, r->threads[i].tid);
		if (task == NULL || task->stopped)
			continue;
		/* Threads of one interpreter share a GIL: look its holder up once. */
		if (g->holder != last_holder) {
			last_holder = g->holder;
			holder = NULL;
			for (size_t k = 0; k < r->n; k++)
				if (r->threads[k].tstate == g->holder && r->threads[k].tid != 0)
					holder = task_by_tid(tasks, ntasks, r->threads[k].tid);
		}
		if (holder != NULL && holder->stopped)
			task->waits_for_held_gil = true;
		else if (holder != NULL && *holder_tid == 0)
			*holder_tid = holder->tid;
	}
}

/* Sample what moved_threads() compares with: a kept-open schedstat per
 * thread, or the CPU time where the descriptor could not be had. */
static struct pk_watch *watch_tasks(pid_t pid, struct task *tasks, size_t ntasks)
{
	struct pk_watch *w = NULL;
	pid_t *tids = calloc(ntasks ? ntasks : 1, sizeof(*tids));

	if (tids != NULL) {
		for (size_t i = 0; i < ntasks; i++)
			tids[i] = tasks[i].tid;
		if (pk_watch_open(pid, tids, ntasks, &w) < 0)
			w = NULL;
		free(tids);
	}
	for (size_t i = 0; i < ntasks; i++)
		if (w == NULL || pk_watch_moved(w, i) == -ENOENT)
			pk_proc_cputime(pid, tasks[i].tid, &tasks[i].cpu_ns);
	pk_error_clear();
	return w;
}

/* Did a thread list change while it was read? Every link is read again
 * from the live process, in batched reads that bypass the cache. */
static bool links_changed(struct pk_py *py, const struct reading *r)
{
	struct pk_mem_iov *iov;
	uint64_t *now;
	bool changed = false;

	if (r->nlinks == 0)
		return false;
	iov = malloc(r->nlinks * sizeof(*iov));
	now = malloc(r->nlinks * sizeof(*now));
	if (iov == NULL || now == NULL) {
		free(iov);
		free(now);
		return true;
	}
	for (size_t i = 0; i < r->nlinks; i++) {
		iov[i].addr = r->link_addr[i];
		iov[i].buf = &now[i];
		iov[i].len = sizeof(now[i]);
	}
	pk_mem_cache_enable(py->mem, false);
	if (pk_mem_readv(py->mem, iov, r->nlinks, NULL) < 0) {
		changed = true;
		pk_error_clear();
	}
	for (size_t i = 0; i < r->nlinks && !changed; i++)
		changed = now[i] != r->link_val[i];
	free(iov);
	free(now);
	return changed;
}

/* Threads born since /proc was read: never watched, never stopped, and a
 * new thread may well be running Python code. */
static size_t new_threads(pid_t pid, struct task *tasks, size_t ntasks, const struct pk_freeze *fz, pid_t **out)
{
	pid_t *now = NULL, *fresh;
	size_t n = 0, k = 0;

	*out = NULL;
	if (pk_proc_tasks(pid, &now, &n) < 0) {
		pk_error_clear();
		return 0;
	}
	fresh = calloc(n ? n : 1, sizeof(*fresh));
	if (fresh == NULL) {
		free(now);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (task_by_tid(tasks, ntasks, now[i]) == NULL && !pk_freeze_has(fz, now[i]))
			fresh[k++] = now[i];
	free(now);
	if (k == 0)
		free(fresh);
	else
		*out = fresh;
	return k;
}

/* Did any Python thread we left running run since /proc was read? */
static size_t moved_threads(pid_t pid, struct pk_watch *w, struct task *tasks, size_t ntasks, pid_t *moved,
			    bool all)
{
	size_t k = 0;

	for (size_t i = 0; i < ntasks; i++) {
		uint64_t now;
		struct task *t = &tasks[i];
		int m;

		if (t->stopped || (!t->python && !all) || (t->waits_for_held_gil && !all))
			continue;
		m = w != NULL ? pk_watch_moved(w, i) : -ENOENT;
		if (m == 1)
			moved[k++] = t->tid;
		if (m != -ENOENT)
			continue; /* 0: did not run; other errors: ended, its state is gone with it */
		if (pk_proc_cputime(pid, t->tid, &now) < 0)
			continue; /* ended: its state is gone with it */
		if (now != t->cpu_ns) {
			moved[k++] = t->tid;
			continue;
		}
		/* The CPU time of a thread on a CPU right now is only brought up to
		 * date at the next tick: a thread that woke up and is running may
		 * not show it yet. Its state does. */
		{
			struct pk_stat st;
			if (pk_proc_stat(pid, t->tid, &st) == 0 && st.state == 'R')
				moved[k++] = t->tid;
		}
	}
	pk_error_clear();
	return k;
}

/* Join the memory view with the /proc view: state, system call, GIL role. */
static void classify(struct pk_py_snapshot *snap, const struct pk_gil_info *gils, struct task *tasks, size_t ntasks)
{
	long futex_nr = pk_syscall_number("futex");

	for (size_t i = 0; i < snap->nthreads; i++) {
		struct pk_py_thread *t = &snap->threads[i];
		const struct pk_gil_info *g = &gils[i];
		struct task *task = t->tid ? task_by_tid(tasks, ntasks, t->tid) : NULL;

		if (t->ns_tid == 0)
			t->ns_tid = t->tid;
		t->is_main = t->main_interp && t->ns_tid != 0 && t->ns_tid == snap->ns_pid;
		if (task == NULL)
			continue;
		t->state = task->state;
		t->syscall_nr = task->sc.nr;
		memcpy(t->syscall_args, task->sc.args, sizeof(t->syscall_args));
		t->syscall_sp = task->sc.sp;
		if (t->gil != PK_GIL_HOLDS && t->gil != PK_GIL_ABSENT && task->sc.nr >= 0 && task->sc.nr == futex_nr) {
			enum pk_gil_wait w = pk_gil_wait_on(g, task->sc.args[0]);
			if (w == PK_GIL_WAIT_TAKE)
				t->gil = PK_GIL_WAITS;
			else if (w == PK_GIL_WAIT_HANDOVER)
				t->gil = PK_GIL_DROPPING;
		}
	}
}

/* What the worker shapes need beyond the frames (cpython/shape.c): the
 * modules that tell some apart, and the main thread's name where
 * threading._active does not give it (it needs is_main: after classify).
 * Read after the release, like the names. */
static void read_shapes(struct pk_py *py, struct pk_py_snapshot *snap, const struct reading *r, bool names,
			bool frames)
{
	static const char *const modules[] = { "gevent", "uwsgi" }; /* in the order of PK_PYMOD_* */

	if (names && r->main_count > 0) {
		pk_mem_cache_enable(py->mem, true);
		pk_names_main_thread(py, r->main_interp, &snap->threads[r->main_first], r->main_count);
		pk_modules_find(py, r->main_interp, modules, sizeof(modules) / sizeof(modules[0]), &snap->modules);
		pk_mem_cache_enable(py->mem, false);
		pk_mem_cache_drop(py->mem);
	}
	if (frames)
		for (size_t i = 0; i < snap->nthreads; i++) {
			struct pk_py_thread *t = &snap->threads[i];
			t->shape = pk_shape_classify(t, pk_shape_modules(snap, t), &t->shape_idle);
		}
}

static int snapshot_once(struct pk_py *py, const struct pk_snapshot_opts *opts, struct pk_py_snapshot **out);

/* Two pykills (or pykill and a short-lived tracer) may each hold threads
 * the other needs: back off, with everything released, and try again a
 * few times before reporting "already traced". */
int pk_py_snapshot(struct pk_py *py, const struct pk_snapshot_opts *opts, struct pk_py_snapshot **out)
{
	int rc = -EPERM;

	for (unsigned attempt = 0; attempt < 4; attempt++) {
		rc = snapshot_once(py, opts, out);
		/* The other tracer may have let go before we could see it: an
		 * EPERM is worth another try either way (a lasting one costs
		 * ~30 ms more before it is reported). */
		if (rc != -EPERM)
			break;
		if (attempt < 3) {
			struct timespec ts = { 0, (long)(5000000u * (attempt + 1) + (unsigned)(pk_now_ns() % 5000000u)) };
			pk_log(PK_LOG_INFO, "another tracer holds a thread of process %d; trying again", (int)py->pid);
			pk_error_clear();
			nanosleep(&ts, NULL);
		}
	}
	return rc;
}

/* ------------------------------------------------------------ the freeze */

/* One attempt at a snapshot (snapshot_once): what it holds from the task
 * scan to the release. */
struct freeze_run {
	struct pk_py *py;
	const struct pk_snapshot_opts *opts; /* with threads stopped: ropts, names left out */
	struct pk_snapshot_opts ropts;
	bool want_names;                     /* as asked: read after the release when left out */
	struct pk_freeze *fz;                /* NULL: PK_FREEZE_NONE */
	struct task *tasks;                  /* the process's tasks as /proc showed them */
	size_t ntasks;
	struct pk_watch *watch;              /* PK_FREEZE_AUTO: CPU time of the threads left running */
	pid_t *ids;                          /* threads to stop when the next round starts */
	size_t nids;
	pid_t holder_tid;                    /* a GIL holder seen running (mark_gil_waiters) */
	struct pk_read_limits loose, frozen; /* a reading's bounds with nothing / something stopped */
	struct reading r;
	unsigned round;
	uint64_t t0, tr, tc;                 /* first stop; this round's reading began, ended */
};

/* The tasks of the process, the bounds of a reading for that many, the
 * watchers of the threads to be left running, and which to stop first. */
static int run_start(struct freeze_run *fr, struct pk_py_snapshot *snap)
{
	struct pk_py *py = fr->py;
	struct pk_status st;
	int rc;

	rc = pk_proc_status(py->pid, 0, &st);
	if (rc < 0)
		return rc;
	snap->ns_pid = st.ns_levels > 0 ? st.nspid[st.ns_levels - 1] : py->pid;
	rc = scan_tasks(py->pid, st.ns_levels > 1, &fr->tasks, &fr->ntasks);
	if (rc < 0)
		return rc;
	/* Bounds on what the target's memory can make us read: thread states
	 * for a process of this many threads, always; and time, while any
	 * thread is stopped. */
	fr->loose.process_threads = fr->frozen.process_threads = fr->ntasks;
	fr->frozen.budget_ns = PK_FROZEN_READ_NS;
	if (fr->opts->freeze == PK_FREEZE_AUTO)
		fr->watch = watch_tasks(py->pid, fr->tasks, fr->ntasks);
	fr->ids = calloc(fr->ntasks ? fr->ntasks : 1, sizeof(*fr->ids));
	if (fr->ids == NULL)
		return -ENOMEM;

	fr->t0 = pk_now_ns();
	if (fr->opts->freeze != PK_FREEZE_NONE) {
		rc = pk_freeze_new(py->pid, &fr->fz);
		if (rc < 0)
			return rc;
	}
	fr->nids = 0;
	for (size_t i = 0; i < fr->ntasks; i++)
		if (must_stop(&fr->tasks[i], fr->opts->freeze))
			fr->ids[fr->nids++] = fr->tasks[i].tid;
	/* Thread names live in Python objects (threading._active): many small
	 * reads for something that is only a label. With threads stopped they
	 * are read after the release instead (validated like everything else),
	 * which keeps them out of the freeze. */
	if (fr->fz != NULL) {
		fr->ropts = *fr->opts;
		fr->ropts.want_names = false;
		fr->opts = &fr->ropts;
	}
	return 0;
}

/* A first reading while nothing is stopped (possibly torn, never shown)
 * tells which memory the real one needs; once the threads are stopped, all
 * of it is fetched again in a few batched system calls, and the reading
 * that counts is served from the cache. This keeps the freeze short where
 * it matters: a sequential walk of a thousand thread states is a thousand
 * system calls. */
static void run_warm_up(struct freeze_run *fr)
{
	struct pk_py *py = fr->py;
	uint64_t tw;

	if (fr->fz == NULL || fr->nids == 0)
		return;
	tw = pk_now_ns();
	pk_mem_cache_drop(py->mem);
	pk_mem_cache_enable(py->mem, true);
	if (read_all(py, fr->opts, &fr->loose, &fr->r) < 0)
		pk_error_clear();
	else
		prefetch_tids(py, &fr->r, fr->tasks, fr->ntasks);
	reading_clear(&fr->r);
	pk_log(PK_LOG_DEBUG, "warm-up reading (nothing stopped) in %.3f ms", (double)(pk_now_ns() - tw) / 1e6);
}

/* A round, step 1: stop the threads chosen, then refresh the cache from
 * the stopped target (or drop it: with nothing stopped, nothing read
 * earlier can be trusted to hold). */
static int round_stop(struct freeze_run *fr)
{
	struct pk_py *py = fr->py;
	int rc;

	if (fr->fz != NULL && fr->nids > 0) {
		rc = pk_freeze_add(fr->fz, fr->ids, fr->nids);
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < fr->ntasks; i++)
			if (pk_freeze_has(fr->fz, fr->tasks[i].tid))
				fr->tasks[i].stopped = true;
	}
	if (fr->fz != NULL && pk_freeze_count(fr->fz) > 0) {
		uint64_t tf = pk_now_ns();
		pk_mem_cache_enable(py->mem, true);
		rc = pk_mem_cache_refresh(py->mem);
		if (rc < 0)
			return rc;
		pk_log(PK_LOG_DEBUG, "round %u: cache refreshed in %.3f ms", fr->round,
		       (double)(pk_now_ns() - tf) / 1e6);
	} else {
		pk_mem_cache_drop(py->mem);
		pk_mem_cache_enable(py->mem, fr->fz != NULL);
	}
	return 0;
}

/* Step 2: the whole reading again, within the frozen bounds while anything
 * is stopped; a thread list whose links read differently uncached changed
 * under it (-EAGAIN). The reading's 0 / -errno. */
static int round_read(struct freeze_run *fr)
{
	struct pk_py *py = fr->py;
	bool frozen = fr->fz != NULL && pk_freeze_count(fr->fz) > 0;
	int rc;

	reading_clear(&fr->r);
	fr->tr = pk_now_ns();
	rc = read_all(py, fr->opts, frozen ? &fr->frozen : &fr->loose, &fr->r);
	if (rc == 0 && fr->fz != NULL && links_changed(py, &fr->r)) {
		pk_error("read the thread list of process %d: it changed while it was read", (int)py->pid);
		rc = -EAGAIN;
	}
	if (rc == 0)
		map_tids(py, &fr->r, fr->tasks, fr->ntasks, fr->fz);
	fr->tc = pk_now_ns();
	return rc;
}

/* Threads born since /proc was read were never stopped or watched: they
 * are to be stopped too. */
static int add_born(struct freeze_run *fr)
{
	pid_t *born = NULL, *more;
	size_t nborn = new_threads(fr->py->pid, fr->tasks, fr->ntasks, fr->fz, &born);

	if (nborn == 0)
		return 0;
	more = realloc(fr->ids, (fr->nids + nborn + fr->ntasks) * sizeof(*more));
	if (more == NULL) {
		free(born);
		return -ENOMEM;
	}
	fr->ids = more;
	memcpy(fr->ids + fr->nids, born, nborn * sizeof(*born));
	fr->nids += nborn;
	free(born);
	return 0;
}

enum round_verdict { ROUND_DONE, ROUND_AGAIN, ROUND_TORN };

/* Step 3: does the reading stand? ROUND_DONE: it does (the last round's
 * reading stands or fails: its -errno). ROUND_AGAIN: read again, having
 * stopped fr->ids, the threads left running that ran meanwhile (the GIL
 * holder alone when one of them ran while it did) and those born since
 * /proc was read. ROUND_TORN: the reading came out torn by something we
 * did not see run. Else -errno. */
static int round_check(struct freeze_run *fr, int read_rc)
{
	const struct pk_snapshot_opts *opts = fr->opts;
	bool torn = false;
	int rc;

	if (fr->fz == NULL || fr->round > PK_ROUNDS) {
		pk_log(PK_LOG_DEBUG, "round %u: read in %.3f ms", fr->round, (double)(fr->tc - fr->tr) / 1e6);
		return read_rc < 0 ? read_rc : ROUND_DONE;
	}
	if (read_rc == 0 && fr->r.cut[0] != '\0') {
		/* Another round would spend its bounds again on the same
		 * list: the reading stands, cut short and saying so. */
		pk_log(PK_LOG_DEBUG, "round %u: read in %.3f ms, cut short: not read again", fr->round,
		       (double)(fr->tc - fr->tr) / 1e6);
		return ROUND_DONE;
	}
	fr->nids = 0;
	if (read_rc == 0 && opts->freeze == PK_FREEZE_AUTO) {
		mark_gil_waiters(&fr->r, fr->tasks, fr->ntasks, &fr->holder_tid);
		fr->nids = moved_threads(fr->py->pid, fr->watch, fr->tasks, fr->ntasks, fr->ids, false);
		/* Threads ran while the GIL holder was running: stopping the
		 * holder is enough for the next reading (see mark_gil_waiters). */
		if (fr->nids > 0 && fr->holder_tid != 0 && fr->round < PK_ROUNDS) {
			fr->ids[0] = fr->holder_tid;
			fr->nids = 1;
		}
		if (pk_log_enabled(PK_LOG_DEBUG)) {
			size_t exempt = 0;
			for (size_t i = 0; i < fr->ntasks; i++)
				exempt += fr->tasks[i].waits_for_held_gil;
			pk_log(PK_LOG_DEBUG, "round %u: read in %.3f ms; of %zu threads left running, %zu need no "
			       "check (GIL holder stopped); checked in %.3f ms", fr->round, (double)(fr->tc - fr->tr) / 1e6,
			       fr->ntasks - pk_freeze_count(fr->fz), exempt, (double)(pk_now_ns() - fr->tc) / 1e6);
		}
	}
	rc = add_born(fr);
	if (rc < 0)
		return rc;
	if (read_rc < 0) {
		pk_log(PK_LOG_DEBUG, "round %u: reading failed (%s); stopping every thread", fr->round,
		       pk_error_message());
		pk_error_clear();
		torn = true;
	}
	if (fr->nids == 0 && !torn)
		return ROUND_DONE;
	pk_log(PK_LOG_DEBUG, "round %u: %zu thread(s) ran or were born while being read; reading again", fr->round,
	       fr->nids);
	return torn ? ROUND_TORN : ROUND_AGAIN;
}

/* Step 4, before another round: after a torn reading, or when the gentle
 * rounds are spent, give up being gentle: everything that can be stopped,
 * threads born meanwhile included, then one last reading. */
static int round_next(struct freeze_run *fr, enum round_verdict v)
{
	size_t keep = 0;
	pid_t *more;

	if (v != ROUND_TORN && fr->round < PK_ROUNDS)
		return 0;
	more = realloc(fr->ids, (fr->nids + fr->ntasks) * sizeof(*more));
	if (more == NULL)
		return -ENOMEM;
	fr->ids = more;
	/* Keep the newborns (not in tasks[]); every known thread is added below. */
	for (size_t i = 0; i < fr->nids; i++)
		if (task_by_tid(fr->tasks, fr->ntasks, fr->ids[i]) == NULL)
			fr->ids[keep++] = fr->ids[i];
	fr->nids = keep;
	for (size_t i = 0; i < fr->ntasks; i++)
		if (!fr->tasks[i].stopped && must_stop(&fr->tasks[i], PK_FREEZE_ALL) &&
		    !pk_freeze_has(fr->fz, fr->tasks[i].tid))
			fr->ids[fr->nids++] = fr->tasks[i].tid;
	fr->round = PK_ROUNDS; /* the next round is the last */
	return 0;
}

/* Rounds 1..PK_ROUNDS stop what must be stopped; if threads keep running
 * (or the reading comes out torn, or threads are born), the round after
 * stops everything that can be stopped and is the last. */
static int run_rounds(struct freeze_run *fr, struct pk_py_snapshot *snap)
{
	int rc, v;

	for (fr->round = 1;; fr->round++) {
		rc = round_stop(fr);
		if (rc < 0)
			return rc;
		snap->rounds = fr->round;
		v = round_check(fr, round_read(fr));
		if (v < 0)
			return v;
		if (v == ROUND_DONE)
			return 0;
		rc = round_next(fr, (enum round_verdict)v);
		if (rc < 0)
			return rc;
	}
}

/* Release first: nothing after it needs the target stopped. */
static void run_release(struct freeze_run *fr, struct pk_py_snapshot *snap)
{
	struct pk_py *py = fr->py;

	if (pk_log_enabled(PK_LOG_DEBUG)) {
		struct pk_mem_stats ms;
		pk_mem_get_stats(py->mem, &ms);
		pk_log(PK_LOG_DEBUG, "memory: %llu reads in %llu system calls (%llu bytes), %llu cache hits",
		       (unsigned long long)ms.reads, (unsigned long long)ms.syscalls, (unsigned long long)ms.bytes,
		       (unsigned long long)ms.cache_hits);
	}
	if (fr->fz != NULL) {
		snap->nstopped = pk_freeze_count(fr->fz);
		snap->freeze_ns = pk_freeze_end(fr->fz);
		pk_freeze_free(fr->fz);
		fr->fz = NULL;
	}
	pk_mem_cache_enable(py->mem, false);
	pk_mem_cache_drop(py->mem);
	/* The names left out of the freeze. */
	if (fr->want_names && !fr->opts->want_names && fr->r.main_count > 0) {
		uint64_t tn = pk_now_ns();
		pk_mem_cache_enable(py->mem, true);
		pk_names_read(py, fr->r.main_interp, &fr->r.threads[fr->r.main_first], fr->r.main_count);
		pk_mem_cache_enable(py->mem, false);
		pk_mem_cache_drop(py->mem);
		pk_log(PK_LOG_DEBUG, "names read after the release in %.3f ms", (double)(pk_now_ns() - tn) / 1e6);
	}
	snap->read_ns = pk_now_ns() - fr->t0;
}

/* A finished reading becomes the snapshot's (r is left empty), joined with
 * the /proc view of the tasks (none for a memory image), then ordered into
 * rows. */
static int reading_hand_over(struct pk_py *py, struct reading *r, struct pk_py_snapshot *snap, struct task *tasks,
			     size_t ntasks, bool names, bool frames)
{
	snap->threads = r->threads;
	snap->nthreads = r->n;
	snap->ninterps = r->ninterps;
	snap->finalizing = r->finalizing;
	snprintf(snap->cut, sizeof(snap->cut), "%s", r->cut);
	classify(snap, r->gils, tasks, ntasks);
	read_shapes(py, snap, r, names, frames);
	free(r->gils);
	free(r->link_addr);
	free(r->link_val);
	memset(r, 0, sizeof(*r));
	return pk_threads_order(snap->threads, snap->nthreads, &snap->nos_threads);
}

/* Native threads: no thread state. */
static int snapshot_natives(struct pk_py_snapshot *snap, const struct task *tasks, size_t ntasks)
{
	snap->natives = calloc(ntasks ? ntasks : 1, sizeof(*snap->natives));
	if (snap->natives == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < ntasks; i++) {
		struct pk_native_thread *n;
		if (tasks[i].python)
			continue;
		n = &snap->natives[snap->nnatives++];
		n->tid = tasks[i].tid;
		n->ns_tid = tasks[i].ns_tid;
		n->state = tasks[i].state;
		n->syscall_nr = tasks[i].sc.nr;
		memcpy(n->syscall_args, tasks[i].sc.args, sizeof(n->syscall_args));
		snprintf(n->comm, sizeof(n->comm), "%s", tasks[i].comm);
	}
	return 0;
}

static void run_end(struct freeze_run *fr)
{
	if (fr->fz != NULL)
		pk_freeze_free(fr->fz);
	reading_clear(&fr->r);
	pk_watch_close(fr->watch);
	free(fr->ids);
	free(fr->tasks);
}

static int snapshot_once(struct pk_py *py, const struct pk_snapshot_opts *opts, struct pk_py_snapshot **out)
{
	struct freeze_run fr = { .py = py, .opts = opts, .want_names = opts->want_names };
	struct pk_py_snapshot *snap;
	int rc;

	*out = NULL;
	snap = calloc(1, sizeof(*snap));
	if (snap == NULL)
		return -ENOMEM;
	snap->pid = py->pid;
	rc = run_start(&fr, snap);
	if (rc < 0)
		goto fail;
	run_warm_up(&fr);
	rc = run_rounds(&fr, snap);
	if (rc < 0)
		goto fail;
	run_release(&fr, snap);
	rc = reading_hand_over(py, &fr.r, snap, fr.tasks, fr.ntasks, fr.want_names, fr.opts->want_frames);
	if (rc < 0)
		goto fail;
	rc = snapshot_natives(snap, fr.tasks, fr.ntasks);
	if (rc < 0)
		goto fail;
	run_end(&fr);
	/* A process that died while being read leaves a picture of nothing. */
	rc = pk_py_gone_check(py, 0);
	if (rc < 0) {
		pk_py_snapshot_free(snap);
		return rc;
	}
	*out = snap;
	return 0;
fail:
	if (fr.fz != NULL) {
		pk_freeze_free(fr.fz);
		fr.fz = NULL;
	}
	pk_mem_cache_enable(py->mem, false);
	run_end(&fr);
	pk_py_snapshot_free(snap);
	return pk_py_gone_check(py, rc);
}

/* The memory walk alone, for memory images (image.c): what pk_py_snapshot
 * reads, without /proc and without stopping anything. */
int pk_py_read_threads(struct pk_py *py, const struct pk_snapshot_opts *opts, const struct pk_read_limits *lim,
		       struct pk_py_snapshot *snap)
{
	struct reading r = { 0 };
	int rc;

	rc = read_all(py, opts, lim, &r);
	if (rc < 0) {
		reading_clear(&r);
		return rc;
	}
	map_tids(py, &r, NULL, 0, NULL);
	return reading_hand_over(py, &r, snap, NULL, 0, opts->want_names, opts->want_frames);
}

void pk_py_snapshot_free(struct pk_py_snapshot *snap)
{
	if (snap == NULL)
		return;
	for (size_t i = 0; i < snap->nthreads; i++)
		thread_clear(&snap->threads[i]);
	free(snap->threads);
	free(snap->natives);
	free(snap);
}
