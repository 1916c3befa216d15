/* SPDX-License-Identifier: MIT */
/* Which threading.RLock a thread blocked in futex() waits for, and who holds
 * it (issue #13): read after the snapshot, nothing stopped (the waiter is
 * asleep in the kernel, its stack does not move).
 *
 * What the thread waits on is proven, never guessed:
 *  - 3.14+: an RLock embeds a _PyRecursiveMutex right after the object
 *    header; a waiter parks in Python/parking_lot.c with a struct wait_entry
 *    { park_arg; addr; _PySemaphore sema; ... } on its own stack and sleeps
 *    on sema (a sem_t: the futex word is its first), so the futex address
 *    minus 8 holds the parked-on address, which is the RLock's mutex, so the
 *    object is that address minus the header. Checked: the futex word lies
 *    on the waiter's stack, and the object's type is _thread.RLock.
 *  - 2.7 has no C RLock; 3.6-3.13: the RLock holds a PyThread lock, a sem_t
 *    the waiter sleeps on directly, so the futex address is the RLock's
 *    rlock_lock field. The object itself is found among the words of the
 *    waiter's stack just above its stack pointer (rlock_acquire keeps self
 *    in a callee-saved register, which its callees push: measured 224-760
 *    bytes above sp on 3.6-3.13, the first copy within 256): accepted only when it is a _thread.RLock
 *    whose rlock_lock is that futex address.
 * Both keep the owner's thread ident and the recursion count in the two
 * words after the lock word (3.14+: the count of acquisitions after the
 * first). Measured against the objects' id() on 3.6,
 * 3.8, 3.10-3.13, 3.11-dbg, sid 3.13-3.15 (tests/integration/run_insight.py
 * checks it on every interpreter). */
#include "pk_cpython.h"
#include "py-priv.h"

#include <errno.h>
#include <string.h>

/* Bytes of the waiter's stack looked at above sp (3.6-3.13). */
#define STACK_SCAN 1024u
/* Distinct plausible object pointers among them: every word, at most. */
#define MAX_CANDIDATES (STACK_SCAN / 8u)

static const char RLOCK_TYPE_NAME[] = "_thread.RLock";

/* The object header's size: what the lock word follows. */
static uint64_t head_size(const struct pk_py *py)
{
	return (uint64_t)py->layout.ob_type + 8u;
}

/* Whether type is _thread.RLock: its name read once per type (a process
 * has one RLock type, and a few other lock types its waiters show). */
static bool is_rlock_type(struct pk_py *py, uint64_t type)
{
	char name[sizeof(RLOCK_TYPE_NAME)];
	uint64_t tp_name;
	size_t n = sizeof(py->other_types) / sizeof(py->other_types[0]);

	if (type == 0)
		return false;
	if (py->rlock_type != 0 && type == py->rlock_type)
		return true;
	for (size_t i = 0; i < n; i++)
		if (py->other_types[i] == type)
			return false;
	if (pk_rd_u64(py, type + (uint64_t)py->layout.tp_name, &tp_name) < 0 ||
	    pk_mem_read(py->mem, tp_name, name, sizeof(name)) < 0 || memcmp(name, RLOCK_TYPE_NAME, sizeof(name)) != 0) {
		memmove(py->other_types + 1, py->other_types, (n - 1) * sizeof(py->other_types[0]));
		py->other_types[0] = type;
		return false;
	}
	if (py->rlock_type == 0)
		py->rlock_type = type;
	return true;
}

/* obj's type, lock word, owner and count in one read. */
static int read_rlock(struct pk_py *py, uint64_t obj, uint64_t w[4])
{
	uint64_t head = head_size(py);
	uint8_t buf[64];

	if (head + 24u > sizeof(buf))
		return -EINVAL;
	if (pk_mem_read(py->mem, obj, buf, (size_t)head + 24u) < 0)
		return -EFAULT;
	w[0] = pk_get_u64(buf, (size_t)head + 24u, py->layout.ob_type);
	for (unsigned i = 1; i < 4; i++)
		w[i] = pk_get_u64(buf, (size_t)head + 24u, (int32_t)(head + 8u * (i - 1u)));
	return 0;
}

/* 3.6-3.13: the RLock among the words above sp whose lock word is futex.
 * The plausible pointers are read in one system call. */
static uint64_t rlock_on_stack(struct pk_py *py, uint64_t sp, uint64_t futex)
{
	uint64_t words[STACK_SCAN / 8u], cand[MAX_CANDIDATES], got[MAX_CANDIDATES][8];
	struct pk_mem_iov iov[MAX_CANDIDATES];
	bool ok[MAX_CANDIDATES];
	size_t len = STACK_SCAN, n = 0, rec = (size_t)head_size(py) + 24u;
	int rc;

	if (rec > sizeof(got[0]))
		return 0;
	/* Near the top of the stack the whole span may not be mapped. */
	while (len >= 512u && pk_mem_read(py->mem, sp, words, len) < 0)
		len /= 2u;
	if (len < 512u)
		return 0;
	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < len / 8u && n < MAX_CANDIDATES; i++) {
		uint64_t p = words[i];
		bool seen = false;

		/* An object: 16-aligned, in user space. (Where the stack ends is
		 * not known here, and a heap arena can start right above it: a
		 * word pointing into the stack is read like any other and fails
		 * the check.) */
		if (p < 0x10000u || p >= pk_user_addr_end() || (p & 15u) != 0)
			continue;
		for (size_t j = 0; j < n && !seen; j++)
			seen = cand[j] == p;
		if (seen)
			continue;
		cand[n] = p;
		iov[n] = (struct pk_mem_iov){ .addr = p, .buf = got[n], .len = rec };
		n++;
	}
	if (n == 0)
		return 0;
	/* -EFAULT: some were unreadable (ok[] says which); another failure:
	 * none is known to have been read. */
	rc = pk_mem_readv(py->mem, iov, n, ok);
	if (rc < 0 && rc != -EFAULT)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *b = (const uint8_t *)got[i];

		if (ok[i] && pk_get_u64(b, rec, (int32_t)head_size(py)) == futex &&
		    is_rlock_type(py, pk_get_u64(b, rec, py->layout.ob_type)))
			return cand[i];
	}
	return 0;
}

/* The RLock t waits for, read once: its address and its words (type, lock
 * word, owner, count); the parked-on address too on 3.14+. */
static int find_rlock(struct pk_py *py, uint64_t futex, uint64_t sp, uint64_t *obj, uint64_t *key, uint64_t w[4])
{
	bool parked = py->major > 3 || py->minor >= 14;

	if (parked) {
		/* The wait entry is a local of the parking function. */
		if (futex < sp || futex - sp > 65536u || pk_rd_u64(py, futex - 8u, key) < 0 || *key < head_size(py))
			return -ENOENT;
		*obj = *key - head_size(py);
		/* And the mutex says: locked, with a thread parked on it. */
		if (read_rlock(py, *obj, w) < 0 || !is_rlock_type(py, w[0]) || (w[1] & 3u) != 3u)
			return -ENOENT;
		return 0;
	}
	*key = futex;
	*obj = rlock_on_stack(py, sp, futex);
	if (*obj == 0 || read_rlock(py, *obj, w) < 0)
		return -ENOENT;
	return 0;
}

int pk_py_rlock_wait(struct pk_py *py, const struct pk_py_thread *t, struct pk_rlock_wait *out)
{
	static long futex_nr = -3;
	uint64_t obj = 0, key = 0, w[4], again_w[4], again_key = 0, futex = t->syscall_args[0], sp = t->syscall_sp;
	bool parked = py->major > 3 || py->minor >= 14;
	struct pk_syscall again;

	memset(out, 0, sizeof(*out));
	if (futex_nr == -3)
		futex_nr = pk_syscall_number("futex");
	if (py->major < 3 || t->tid <= 0 || t->syscall_nr != futex_nr || futex_nr < 0 || sp == 0)
		return -ENOENT;
	if (find_rlock(py, futex, sp, &obj, &key, w) < 0)
		return -ENOENT;
	/* A reading of one moment: the thread still asleep on the same word
	 * with the same stack once the RLock was read, and the RLock (and, on
	 * 3.14+, what the thread is parked on: two waits of one frame share
	 * the futex word) unchanged when read again after that. */
	if (pk_proc_syscall(py->pid, t->tid, &again) < 0 || again.nr != futex_nr || again.args[0] != futex ||
	    again.sp != sp || read_rlock(py, obj, again_w) < 0 || memcmp(w, again_w, sizeof(w)) != 0 ||
	    (parked && (pk_rd_u64(py, futex - 8u, &again_key) < 0 || again_key != key)))
		return -ENOENT;
	/* 3.14+ count the acquisitions after the first (level), older ones
	 * every acquisition. */
	if (parked)
		w[3]++;
	/* Held, by another thread: an RLock's owner never waits for it. */
	if (w[2] == 0 || w[3] == 0 || w[2] == t->ident)
		return -ENOENT;
	out->rlock = obj;
	out->holder_ident = w[2];
	out->count = w[3];
	return 0;
}
