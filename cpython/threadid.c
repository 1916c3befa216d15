/* SPDX-License-Identifier: MIT */
/* Thread identity: which live OS thread each thread state is on, and which
 * state is the active one where a thread holds several.
 *
 * What a thread state says about its thread is what was true when it was
 * bound: thread_id (the ident) is the creating thread's pthread_t and, on
 * 3.11+, native_thread_id its kernel TID. Both can be wrong now:
 *  - a process forked by a program that does not call PyOS_AfterFork (uwsgi
 *    by default) keeps the parent's states; native_thread_id names the
 *    parent's thread, while the ident, the address of the C library's thread
 *    descriptor, is the address of the child's own main thread descriptor
 *    (fork copies it, and the kernel writes the child's TID into it);
 *  - a program may create states on one thread and run them on another
 *    (uwsgi creates each worker core's subinterpreter state on the main
 *    thread and swaps it in on the core's thread), and one OS thread then
 *    holds a state per interpreter.
 * So the thread is found from the thread itself, in this order:
 *  1. stack (3.11+): a state that runs Python code has its eval loop's
 *     _PyCFrame (3.11-3.12) or entry frame (3.12+) on the C stack of the
 *     thread that runs it; that thread is the one whose stack pointer is the
 *     closest below the address (stacks grow down and do not overlap), with
 *     no thread descriptor in between (a descriptor tops its own thread's
 *     stack);
 *  2. native_thread_id (3.11+) when it names a live thread of the process;
 *  3. the ident's descriptor: the kernel TID inside it (at an offset of the C
 *     library's struct pthread found from the process itself, below).
 * Of several states on one thread, the active one is the innermost that runs
 * Python code there (the lowest C-stack address); where no stack tells
 * (before 3.11), the only one with Python frames; else none can be told:
 * the thread is "ambiguous", and the row shows the GIL holder or the main
 * interpreter's state as a guess. */
#include "py-priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DESC_SCAN 0x1000u      /* bytes of a descriptor searched for the TID */
#define DESC_MIN 0x100u
#define DESC_SAMPLES 8u        /* descriptors read to find the offset */
#define STACK_SPAN_MAX (256ull << 20) /* an address this far above a stack pointer is not on that stack */

/* x86_64 glibc and musl: a thread descriptor starts with a pointer to itself
 * (the TCB's self pointer, what %fs:0 reads). */
static bool desc_self_ok(const uint8_t *buf, size_t len, uint64_t addr)
{
	return addr != 0 && len >= 8 && pk_get_u64(buf, len, 0) == addr;
}

/* The descriptor may sit at the top of a stack mapping: a long read can run
 * past its end. Returns the bytes read, 0 if not even DESC_MIN could be. */
static size_t read_desc(struct pk_py *py, uint64_t addr, uint8_t *buf, size_t cap)
{
	size_t got = cap;

	for (; got >= DESC_MIN; got /= 2) {
		struct pk_mem_iov v = { addr, buf, got };
		if (pk_mem_readv_uncached(py->mem, &v, 1, NULL) == 0)
			break;
	}
	pk_error_clear();
	return got >= DESC_MIN ? got : 0;
}

static const struct pk_id_task *task_by_ns(const struct pk_id_task *tasks, size_t n, pid_t ns_tid)
{
	size_t lo = 0, hi = n;

	if (ns_tid <= 0)
		return NULL;
	/* Ascending by TID; in pykill's own namespace both ids are equal. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tasks[mid].tid == ns_tid) {
			if (tasks[mid].ns_tid == ns_tid)
				return &tasks[mid];
			break;
		}
		if (tasks[mid].tid < ns_tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < n; i++)
		if (tasks[i].ns_tid == ns_tid)
			return &tasks[i];
	return NULL;
}

static bool task_exited(const struct pk_id_task *t)
{
	return t->state == 'Z' || t->state == 'X';
}

struct sample {
	uint64_t addr;
	pid_t tid;                 /* certain pairs: the TID this descriptor must hold; 0 for the others */
	uint8_t *buf;
	size_t len;
};

/* The offset of the kernel TID in the C library's thread descriptor, from
 * the process itself: descriptors whose thread is known for certain (the
 * thread pointer of a stopped thread; on 3.11+ the ident of a state whose
 * native_thread_id is a live thread) must all hold their TID there, and
 * other states' descriptors should hold live TIDs (stale ones, inherited
 * across fork, may not). The offset that fits every certain pair and most
 * others wins; a tie that would map some descriptor differently leaves it
 * unknown. Cached in py once found with no tie. -1 if unknown. */
static int tid_offset(struct pk_py *py, const struct pk_py_thread *th, size_t n, const struct pk_id_task *tasks,
		      size_t ntasks)
{
	struct sample s[2 * DESC_SAMPLES];
	size_t ns = 0, ncertain = 0, minlen = DESC_SCAN;
	int best = -1, ntied = 0, first_tied = -1;
	unsigned best_certain = 0, best_other = 0;
	bool same_mapping = true;

	if (py->pthread_tid_offset >= 0)
		return py->pthread_tid_offset;
	/* Certain pairs first. */
	for (size_t i = 0; i < ntasks && ns < DESC_SAMPLES; i++)
		if (tasks[i].tp != 0)
			s[ns++] = (struct sample){ .addr = tasks[i].tp, .tid = tasks[i].ns_tid };
	for (size_t i = 0; i < n && ns < DESC_SAMPLES; i++) {
		const struct pk_id_task *t = th[i].ident != 0 ? task_by_ns(tasks, ntasks, th[i].native_tid) : NULL;
		bool dup = false;
		/* An exited thread's descriptor no longer holds its TID (the
		 * kernel clears it): no certain pair. */
		if (t == NULL || task_exited(t))
			continue;
		for (size_t k = 0; k < ns && !dup; k++)
			dup = s[k].addr == th[i].ident;
		if (!dup)
			s[ns++] = (struct sample){ .addr = th[i].ident, .tid = th[i].native_tid };
	}
	ncertain = ns;
	for (size_t i = 0; i < n && ns < 2 * DESC_SAMPLES; i++) {
		bool dup = false;
		if (th[i].ident == 0)
			continue;
		for (size_t k = 0; k < ns && !dup; k++)
			dup = s[k].addr == th[i].ident;
		if (!dup)
			s[ns++] = (struct sample){ .addr = th[i].ident };
	}
	/* Read them; a descriptor that is not one (no self pointer) is dropped,
	 * a certain one with it (its thread pointer was not a descriptor: not
	 * a C library pykill knows how to read). */
	for (size_t i = 0; i < ns; i++) {
		s[i].buf = malloc(DESC_SCAN);
		if (s[i].buf == NULL)
			goto out;
		s[i].len = read_desc(py, s[i].addr, s[i].buf, DESC_SCAN);
		if (!desc_self_ok(s[i].buf, s[i].len, s[i].addr)) {
			if (s[i].tid != 0)
				goto out;
			s[i].len = 0;
		}
		if (s[i].len != 0 && s[i].len < minlen && s[i].tid != 0)
			minlen = s[i].len;
	}
	for (size_t off = 8; off + 4 <= minlen; off += 4) {
		unsigned certain = 0, other = 0;
		bool ok = true;

		for (size_t i = 0; i < ncertain && ok; i++)
			ok = pk_get_i32(s[i].buf, s[i].len, (int32_t)off) == s[i].tid;
		if (!ok)
			continue;
		certain = (unsigned)ncertain;
		for (size_t i = ncertain; i < ns; i++) {
			int32_t v = pk_get_i32(s[i].buf, s[i].len, (int32_t)off);
			if (off + 4 <= s[i].len && v > 0 && task_by_ns(tasks, ntasks, v) != NULL)
				other++;
		}
		if (certain + other == 0)
			continue;
		if (best < 0 || certain > best_certain || (certain == best_certain && other > best_other)) {
			best = (int)off;
			best_certain = certain;
			best_other = other;
			ntied = 1;
			first_tied = best;
			same_mapping = true;
		} else if (certain == best_certain && other == best_other) {
			/* A tie: harmless only if both offsets say the same of every descriptor. */
			ntied++;
			for (size_t i = 0; i < ns && same_mapping; i++)
				same_mapping = s[i].len == 0 ||
					       pk_get_i32(s[i].buf, s[i].len, first_tied) ==
						       pk_get_i32(s[i].buf, s[i].len, (int32_t)off);
		}
	}
	if (best >= 0 && ntied > 1 && !same_mapping)
		best = -1;
	if (best >= 0 && ntied == 1)
		py->pthread_tid_offset = best;
	pk_log(PK_LOG_DEBUG, "thread descriptors: TID at offset %d (%zu certain pair(s), %zu other descriptor(s), %d "
	       "offset(s) tied)", best, ncertain, ns - ncertain, ntied);
out:
	for (size_t i = 0; i < ns; i++)
		free(s[i].buf);
	pk_error_clear();
	return best;
}

static const struct pk_desc_word *desc_word(const struct pk_py *py, uint64_t ident)
{
	size_t lo = 0, hi = py->ndesc_words;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (py->desc_words[mid].ident == ident)
			return &py->desc_words[mid];
		if (py->desc_words[mid].ident < ident)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_word(const void *a, const void *b)
{
	uint64_t x = ((const struct pk_desc_word *)a)->ident, y = ((const struct pk_desc_word *)b)->ident;
	return x < y ? -1 : x > y;
}

void pk_threads_prefetch(struct pk_py *py, const struct pk_py_thread *th, size_t n, const struct pk_id_task *tasks,
			 size_t ntasks)
{
	struct pk_desc_word *w;
	struct pk_mem_iov *iov;
	uint64_t *self;
	bool *ok;
	size_t k = 0;
	int off;

	if (n == 0 || ntasks == 0)
		return;
	off = tid_offset(py, th, n, tasks, ntasks);
	if (off < 0)
		return;
	w = calloc(n, sizeof(*w));
	iov = calloc(2 * n, sizeof(*iov));
	self = calloc(n, sizeof(*self));
	ok = calloc(2 * n, sizeof(*ok));
	if (w == NULL || iov == NULL || self == NULL || ok == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (th[i].ident == 0)
			continue;
		w[k].ident = th[i].ident;
		iov[2 * k] = (struct pk_mem_iov){ th[i].ident, &self[k], 8 };
		iov[2 * k + 1] = (struct pk_mem_iov){ th[i].ident + (uint64_t)off, &w[k].tid, 4 };
		k++;
	}
	pk_mem_readv_uncached(py->mem, iov, 2 * k, ok);
	pk_error_clear();
	for (size_t i = 0; i < k; i++)
		w[i].self_ok = ok[2 * i] && ok[2 * i + 1] && self[i] == w[i].ident;
	qsort(w, k, sizeof(*w), cmp_word);
	free(py->desc_words);
	py->desc_words = w;
	py->ndesc_words = k;
	w = NULL;
out:
	free(w);
	free(iov);
	free(self);
	free(ok);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Is there a descriptor in (lo, hi]? descs sorted. */
static bool desc_between(const uint64_t *descs, size_t n, uint64_t lo, uint64_t hi)
{
	size_t a = 0, b = n;

	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (descs[mid] <= lo)
			a = mid + 1;
		else
			b = mid;
	}
	return a < n && descs[a] <= hi;
}

struct by_sp {
	uint64_t sp;
	size_t task;
};

static int cmp_by_sp(const void *a, const void *b)
{
	const struct by_sp *x = a, *y = b;
	return x->sp < y->sp ? -1 : x->sp > y->sp;
}

/* The thread whose stack holds addr, or -1. sps sorted by sp; descs sorted;
 * desc_of[i] the descriptor of task i (0 unknown). */
static ssize_t stack_owner(uint64_t addr, const struct pk_id_task *tasks, size_t ntasks, const struct by_sp *sps,
			   size_t nsps, const uint64_t *descs, size_t ndescs, const uint64_t *desc_of, pid_t leader)
{
	size_t a = 0, b = nsps, t;
	uint64_t sp;

	/* The greatest stack pointer at or below addr. */
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (sps[mid].sp <= addr)
			a = mid + 1;
		else
			b = mid;
	}
	if (a == 0)
		return -1;
	sp = sps[a - 1].sp;
	t = sps[a - 1].task;
	if (addr - sp > STACK_SPAN_MAX || desc_between(descs, ndescs, sp, addr))
		return -1;
	/* A thread's stack ends below its own descriptor (not the main
	 * thread's: the kernel made that stack). Where the descriptor is not
	 * known, only stack pointers known for every thread vouch for it: the
	 * owner's own one could otherwise be the unknown one above. */
	if (tasks[t].tid != leader) {
		if (desc_of[t] != 0) {
			if (addr >= desc_of[t])
				return -1;
		} else if (nsps < ntasks) {
			return -1;
		}
	}
	return (ssize_t)t;
}

/* Several states on one OS thread: the active one, and whether it is known. */
static void pick_active(struct pk_py_thread *th, const size_t *idx, size_t k)
{
	size_t best = SIZE_MAX;
	bool known = false;

	for (size_t i = 0; i < k; i++) {
		struct pk_py_thread *t = &th[idx[i]];
		if (t->tid_from == PK_TID_FROM_STACK && (best == SIZE_MAX || t->cstack < th[best].cstack)) {
			best = idx[i];
			known = true;
		}
	}
	if (!known) {
		/* No stack says it (before 3.11, or frames not read): a state with
		 * Python frames among states with none is the one in use, as long
		 * as the others cannot hide theirs (no C-stack address at all). */
		size_t framed = 0, with_cstack = 0, f = 0;
		for (size_t i = 0; i < k; i++) {
			if (th[idx[i]].nframes > 0) {
				framed++;
				f = idx[i];
			}
			with_cstack += th[idx[i]].cstack != 0;
		}
		if (framed == 1 && with_cstack == 0) {
			best = f;
			known = true;
		}
	}
	if (!known) {
		/* A guess for the row: the GIL holder, else the main interpreter's
		 * state, else the first of the thread list. */
		for (size_t i = 0; i < k && best == SIZE_MAX; i++)
			if (th[idx[i]].gil == PK_GIL_HOLDS)
				best = idx[i];
		for (size_t i = 0; i < k && best == SIZE_MAX; i++)
			if (th[idx[i]].main_interp)
				best = idx[i];
		if (best == SIZE_MAX)
			best = idx[0];
	}
	for (size_t i = 0; i < k; i++) {
		th[idx[i]].idle = idx[i] != best;
		th[idx[i]].ambiguous = !known && k > 1;
	}
}

struct tid_idx {
	pid_t tid;
	size_t i;
};

static int cmp_tid_idx(const void *a, const void *b)
{
	const struct tid_idx *x = a, *y = b;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* A descriptor whose TID reads 0 is an exited thread's (the kernel clears
 * that word at the thread's exit) whose state Python did not clean up: a
 * main thread that called pthread_exit leaves its state listed, and stays
 * listed itself, a zombie leader, while the other threads run on. The
 * state is marked exited ('X'); whether it is the main thread's (3.7+:
 * _PyRuntime.main_thread) tells that its thread is the leader. */
static bool exited_main(struct pk_py *py, struct pk_py_thread *t, const struct pk_id_task *leader)
{
	uint64_t main_ident = 0;
	bool is_main;

	t->state = 'X';
	is_main = leader != NULL && task_exited(leader) && py->runtime != 0 && py->layout.rt_main_thread >= 0 &&
		  pk_rd_u64(py, py->runtime + (uint64_t)py->layout.rt_main_thread, &main_ident) == 0 &&
		  main_ident == t->ident;
	pk_error_clear();
	return is_main;
}

void pk_threads_identify(struct pk_py *py, struct pk_py_thread *th, size_t n, struct pk_id_task *tasks,
			 size_t ntasks, pid_t leader)
{
	struct pk_mem_iov *iov = NULL;
	uint64_t *self = NULL, *descs = NULL, *desc_of = NULL;
	int32_t *tidv = NULL;
	bool *ok = NULL, *okv = NULL;
	size_t *slot = NULL;
	struct by_sp *sps = NULL;
	struct tid_idx *groups = NULL;
	size_t *idx = NULL;
	size_t nsps = 0, ndescs = 0;
	const struct pk_id_task *leader_task = NULL;
	int off;

	for (size_t i = 0; i < ntasks; i++) {
		tasks[i].has_state = false;
		if (tasks[i].tid == leader)
			leader_task = &tasks[i];
	}
	for (size_t i = 0; i < n; i++) {
		th[i].tid = 0;
		th[i].ns_tid = 0;
		th[i].tid_from = PK_TID_FROM_NONE;
		th[i].ident_tid = 0;
		th[i].inherited = th[i].idle = th[i].ambiguous = false;
	}
	if (ntasks == 0) {
		/* A memory image: no thread to find; the state's own word. */
		for (size_t i = 0; i < n; i++)
			th[i].ns_tid = th[i].native_tid;
		return;
	}
	if (n == 0)
		return;
	off = tid_offset(py, th, n, tasks, ntasks);
	iov = calloc(2 * n, sizeof(*iov));
	self = calloc(n, sizeof(*self));
	tidv = calloc(n, sizeof(*tidv));
	ok = calloc(2 * n, sizeof(*ok));
	okv = calloc(2 * n, sizeof(*okv));
	slot = calloc(n, sizeof(*slot));
	descs = calloc(n + ntasks, sizeof(*descs));
	desc_of = calloc(ntasks, sizeof(*desc_of));
	sps = calloc(ntasks, sizeof(*sps));
	groups = calloc(n, sizeof(*groups));
	idx = calloc(n, sizeof(*idx));
	if (iov == NULL || self == NULL || tidv == NULL || ok == NULL || okv == NULL || slot == NULL || descs == NULL ||
	    desc_of == NULL || sps == NULL || groups == NULL || idx == NULL)
		goto out; /* every tid stays 0: unknown, never wrong */
	/* 3. (read first: the descriptors also bound the stacks) The TID in
	 * each ident's descriptor: from the words read before the freeze
	 * while they still name a live thread, the others in one batched
	 * read. */
	if (off >= 0) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			const struct pk_desc_word *w = th[i].ident ? desc_word(py, th[i].ident) : NULL;
			if (th[i].ident == 0)
				continue;
			if (w != NULL && w->self_ok && task_by_ns(tasks, ntasks, w->tid) != NULL) {
				self[i] = th[i].ident;
				tidv[i] = w->tid;
				ok[2 * i] = ok[2 * i + 1] = true;
				continue;
			}
			iov[k] = (struct pk_mem_iov){ th[i].ident, &self[i], 8 };
			iov[k + 1] = (struct pk_mem_iov){ th[i].ident + (uint64_t)off, &tidv[i], 4 };
			/* Parallel to iov: where each answer goes. */
			slot[k / 2] = i;
			k += 2;
		}
		if (k > 0) {
			pk_mem_readv_uncached(py->mem, iov, k, okv);
			pk_error_clear();
			for (size_t j = 0; j < k / 2; j++) {
				ok[2 * slot[j]] = okv[2 * j];
				ok[2 * slot[j] + 1] = okv[2 * j + 1];
			}
		}
	}
	for (size_t i = 0; i < ntasks; i++) {
		if (tasks[i].tp != 0) {
			desc_of[i] = tasks[i].tp;
			descs[ndescs++] = tasks[i].tp;
		}
		if (tasks[i].sp != 0)
			sps[nsps++] = (struct by_sp){ tasks[i].sp, i };
	}
	for (size_t i = 0; i < n; i++) {
		const struct pk_id_task *t;
		if (off < 0 || th[i].ident == 0 || !ok[2 * i] || !ok[2 * i + 1] || self[i] != th[i].ident)
			continue;
		/* A valid descriptor bounds stacks even when its thread is gone. */
		descs[ndescs++] = th[i].ident;
		t = task_by_ns(tasks, ntasks, tidv[i]);
		if (t != NULL && desc_of[t - tasks] == 0)
			desc_of[t - tasks] = th[i].ident;
	}
	qsort(descs, ndescs, sizeof(*descs), cmp_u64);
	qsort(sps, nsps, sizeof(*sps), cmp_by_sp);

	for (size_t i = 0; i < n; i++) {
		struct pk_py_thread *t = &th[i];
		const struct pk_id_task *native = task_by_ns(tasks, ntasks, t->native_tid);
		const struct pk_id_task *desc = NULL, *chosen = NULL;
		bool desc_ok = off >= 0 && t->ident != 0 && ok[2 * i] && ok[2 * i + 1] && self[i] == t->ident;

		if (desc_ok)
			desc = task_by_ns(tasks, ntasks, tidv[i]);
		/* A state of the parent kept across fork: its native_thread_id names
		 * no thread here. Only the forking thread lives on in the child, as
		 * its main thread; a descriptor of any other thread of the parent
		 * was freed (or reused by a new thread) here: stale. */
		if (py->layout.ts_native_thread_id >= 0 && t->native_tid > 0 && native == NULL && desc != NULL) {
			if (desc == leader_task)
				t->inherited = true;
			else
				desc = NULL;
		}
		if (desc != NULL)
			t->ident_tid = desc->tid;
		else if (native != NULL)
			t->ident_tid = native->tid;
		if (t->cstack != 0) {
			ssize_t k = stack_owner(t->cstack, tasks, ntasks, sps, nsps, descs, ndescs, desc_of, leader);
			if (k >= 0) {
				chosen = &tasks[k];
				t->tid_from = PK_TID_FROM_STACK;
			}
		}
		if (chosen == NULL && native != NULL) {
			chosen = native;
			t->tid_from = PK_TID_FROM_NATIVE;
		}
		if (chosen == NULL && desc != NULL) {
			chosen = desc;
			t->tid_from = PK_TID_FROM_PTHREAD;
		}
		if (chosen == NULL && desc_ok && tidv[i] == 0 && exited_main(py, t, leader_task)) {
			chosen = leader_task;
			t->tid_from = PK_TID_FROM_PTHREAD;
		}
		if (chosen != NULL) {
			t->tid = chosen->tid;
			t->ns_tid = chosen->ns_tid;
			tasks[chosen - tasks].has_state = true;
		}
	}
	/* Group by OS thread: one active state each. */
	for (size_t i = 0; i < n; i++)
		groups[i] = (struct tid_idx){ th[i].tid, i };
	qsort(groups, n, sizeof(*groups), cmp_tid_idx);
	for (size_t a = 0; a < n;) {
		size_t b = a, k = 0;
		while (b < n && groups[b].tid == groups[a].tid)
			b++;
		if (groups[a].tid != 0) {
			for (size_t j = a; j < b; j++)
				idx[k++] = groups[j].i;
			pick_active(th, idx, k);
		}
		a = b;
	}
out:
	free(iov);
	free(self);
	free(tidv);
	free(ok);
	free(okv);
	free(slot);
	free(descs);
	free(desc_of);
	free(sps);
	free(groups);
	free(idx);
}

/* Row order: each OS thread where its first state was, the active state
 * first and its idle states after it; states of no live thread last. */
struct order_key {
	size_t group, within;
	size_t i;
};

static int cmp_order(const void *a, const void *b)
{
	const struct order_key *x = a, *y = b;
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->within != y->within)
		return x->within < y->within ? -1 : 1;
	return 0;
}

int pk_threads_order(struct pk_py_thread *th, size_t n, size_t *nos_threads)
{
	struct tid_idx *g;
	struct order_key *keys;
	struct pk_py_thread *sorted;
	size_t active = 0;

	*nos_threads = 0;
	for (size_t i = 0; i < n; i++)
		active += th[i].tid != 0 && !th[i].idle;
	*nos_threads = active;
	if (n < 2)
		return 0;
	g = calloc(n, sizeof(*g));
	keys = calloc(n, sizeof(*keys));
	sorted = calloc(n, sizeof(*sorted));
	if (g == NULL || keys == NULL || sorted == NULL) {
		free(g);
		free(keys);
		free(sorted);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		g[i] = (struct tid_idx){ th[i].tid, i };
	qsort(g, n, sizeof(*g), cmp_tid_idx);
	for (size_t a = 0; a < n;) {
		size_t b = a, first = g[a].i;
		while (b < n && g[b].tid == g[a].tid)
			b++;
		for (size_t j = a; j < b; j++) {
			struct order_key *k = &keys[g[j].i];
			k->i = g[j].i;
			if (g[a].tid == 0) {
				k->group = n + g[j].i;
				k->within = 0;
			} else {
				k->group = first; /* g is sorted by (tid, index): the group's first state */
				k->within = th[g[j].i].idle ? 1 + g[j].i : 0;
			}
		}
		a = b;
	}
	qsort(keys, n, sizeof(*keys), cmp_order);
	for (size_t i = 0; i < n; i++)
		sorted[i] = th[keys[i].i];
	memcpy(th, sorted, n * sizeof(*th));
	free(sorted);
	free(keys);
	free(g);
	return 0;
}
