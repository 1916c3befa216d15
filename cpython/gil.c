/* SPDX-License-Identifier: MIT */
/* The GIL of an interpreter, read from the target: who holds it, and the
 * addresses of the futex words its waiters sleep on. Shared by `list`
 * (who waits for it) and the write path of `raise` (a job's thread
 * asleep on it takes a new exception only after its job on 3.13+).
 * Every version's GIL is a different thing: 2.7's is a PyThread lock (a
 * semaphore), 3.6's static variables, 3.7-3.11's a struct in the runtime,
 * 3.12+'s a per-interpreter pointer. */
#include "py-priv.h"

#include <string.h>

/* The field at off in the GIL struct at gil, size bytes (the table's; else
 * glibc's pthread_cond_t, 48, or pthread_mutex_t, 40): [*lo, *hi). A field
 * the table does not have is left empty. */
static void field_range(uint64_t gil, int32_t off, int32_t size, uint64_t size_default, uint64_t *lo, uint64_t *hi)
{
	if (off < 0)
		return;
	*lo = gil + (uint64_t)off;
	*hi = *lo + (size > 0 ? (uint64_t)size : size_default);
}

static void gil_from_struct(struct pk_py *py, uint64_t gil, struct pk_gil_info *g)
{
	const struct pk_layout *L = &py->layout;

	field_range(gil, L->gil_cond, L->gil_cond_size, 48, &g->wait_lo[0], &g->wait_hi[0]);
	field_range(gil, L->gil_mutex, L->gil_mutex_size, 40, &g->wait_lo[1], &g->wait_hi[1]);
	field_range(gil, L->gil_switch_cond, L->gil_switch_cond_size, 48, &g->drop_lo[0], &g->drop_hi[0]);
	field_range(gil, L->gil_switch_mutex, L->gil_switch_mutex_size, 40, &g->drop_lo[1], &g->drop_hi[1]);
}

static void read_gil(struct pk_py *py, uint64_t interp, struct pk_gil_info *g)
{
	const struct pk_layout *L = &py->layout;
	uint64_t v = 0;

	memset(g, 0, sizeof(*g));
	if (py->major == 2 || py->minor < 7) {
		if (py->tstate_current_var && pk_rd_u64(py, py->tstate_current_var, &v) == 0)
			g->holder = v;
		if (py->major == 2) {
			/* The 2.7 GIL is a PyThread lock: a semaphore whose futex word is inside it. */
			uint64_t lock = 0;
			if (py->interpreter_lock27_var && pk_rd_u64(py, py->interpreter_lock27_var, &lock) == 0 && lock) {
				g->wait_lo[0] = lock;
				g->wait_hi[0] = lock + 32;
			}
		} else {
			if (py->gil36_cond) {
				g->wait_lo[0] = py->gil36_cond;
				g->wait_hi[0] = py->gil36_cond + 48;
			}
			if (py->gil36_mutex) {
				g->wait_lo[1] = py->gil36_mutex;
				g->wait_hi[1] = py->gil36_mutex + 40;
			}
			if (py->gil36_switch_cond) {
				g->drop_lo[0] = py->gil36_switch_cond;
				g->drop_hi[0] = py->gil36_switch_cond + 48;
			}
			if (py->gil36_switch_mutex) {
				g->drop_lo[1] = py->gil36_switch_mutex;
				g->drop_hi[1] = py->gil36_switch_mutex + 40;
			}
		}
		return;
	}
	if (L->rt_ceval_gil >= 0) {
		/* 3.7-3.11: one GIL in the runtime; the holder is the current tstate. */
		if (L->rt_gilstate_tstate_current >= 0 &&
		    pk_rd_u64(py, py->runtime + (uint64_t)L->rt_gilstate_tstate_current, &v) == 0)
			g->holder = v;
		gil_from_struct(py, py->runtime + (uint64_t)L->rt_ceval_gil, g);
		return;
	}
	if (L->is_ceval_gil >= 0) {
		/* 3.12+: per-interpreter pointer; locked + last_holder name the holder. */
		uint64_t gil = 0;
		int32_t locked = 0;
		if (pk_rd_u64(py, interp + (uint64_t)L->is_ceval_gil, &gil) < 0 || gil == 0)
			return;
		/* Free-threaded builds keep the struct: the GIL is enabled again at
		 * run time when a module that does not support running without it
		 * is imported (PYTHON_GIL=1 too), and then works as on a default
		 * build. Unreadable: no GIL, as the build says. */
		if (L->free_threaded && L->gil_enabled >= 0) {
			int32_t enabled = 0;
			if (pk_rd_i32(py, gil + (uint64_t)L->gil_enabled, &enabled) < 0 || enabled == 0) {
				g->absent = true;
				return;
			}
		}
		if (pk_rd_i32(py, gil + (uint64_t)L->gil_locked, &locked) == 0 && locked == 1 &&
		    pk_rd_u64(py, gil + (uint64_t)L->gil_last_holder, &v) == 0)
			g->holder = v;
		gil_from_struct(py, gil, g);
	}
}

void pk_gil_read(struct pk_py *py, uint64_t interp, struct pk_gil_info *g)
{
	read_gil(py, interp, g);
	pk_error_clear(); /* what was unreadable stays 0 */
}

static bool in_range(uint64_t a, const uint64_t *lo, const uint64_t *hi)
{
	for (int i = 0; i < 2; i++)
		if (lo[i] != 0 && a >= lo[i] && a < hi[i])
			return true;
	return false;
}

enum pk_gil_wait pk_gil_wait_on(const struct pk_gil_info *g, uint64_t futex_addr)
{
	if (in_range(futex_addr, g->wait_lo, g->wait_hi))
		return PK_GIL_WAIT_TAKE;
	if (in_range(futex_addr, g->drop_lo, g->drop_hi))
		return PK_GIL_WAIT_HANDOVER;
	return PK_GIL_WAIT_NONE;
}
