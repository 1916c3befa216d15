/* SPDX-License-Identifier: MIT */
/* Lookup in the generated per-version table (cpython/layouts_gen.c), and the
 * check of a table entry against the interpreter binary it is used for.
 *
 * Why check: the table is generated from one patch release per minor
 * version, but patch releases and distribution builds have moved fields
 * (py-spy keeps a different _PyRuntime thread-state-current offset for 3.7.0
 * to 3.7.3 than for later 3.7), and a newer minor version without a table
 * reuses the newest entry. Reading through a wrong offset shows garbage;
 * writing through one (raise --via write) corrupts the target. The binary
 * says where some fields are: its exported accessors are one load long, the
 * functions that raise an async exception compare the thread id and store
 * async_exc, and the _PyRuntime symbol has the size of the runtime struct.
 * Unknown stays unknown: a missing function or an unexpected code shape is
 * no mismatch. */
#include "layout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pk_log.h"
#include "pk_symbols.h"

const struct pk_layout *pk_layout_find(int major, int minor)
{
	return pk_layout_find_ft(major, minor, false);
}

const struct pk_layout *pk_layout_find_ft(int major, int minor, bool ft)
{
	uint16_t want;

	/* Reject before narrowing, so 3.271 cannot alias some 4.15. */
	if (major < 0 || major > 0xff || minor < 0 || minor > 0xff)
		return NULL;
	want = (uint16_t)(major << 8 | minor);
	for (size_t i = 0; i < pk_layouts_count; i++) {
		if (pk_layouts[i].version == want && (pk_layouts[i].free_threaded != 0) == ft)
			return &pk_layouts[i];
	}
	return NULL;
}

const struct pk_layout *pk_layout_newest(bool ft)
{
	const struct pk_layout *best = NULL;

	for (size_t i = 0; i < pk_layouts_count; i++) {
		if ((pk_layouts[i].free_threaded != 0) == ft && (best == NULL || pk_layouts[i].version >= best->version))
			best = &pk_layouts[i];
	}
	return best;
}

#define M(f) offsetof(struct pk_layout, f)

const struct pk_lf_info pk_lf_info[PK_LF_COUNT] = {
	[PK_LF_RT_SIZE] = { M(rt_size), "rt_size" },
	[PK_LF_RT_INTERPRETERS_HEAD] = { M(rt_interpreters_head), "rt_interpreters_head" },
	[PK_LF_RT_INTERPRETERS_MAIN] = { M(rt_interpreters_main), "rt_interpreters_main" },
	[PK_LF_RT_TSTATE_CURRENT] = { M(rt_gilstate_tstate_current), "rt_gilstate_tstate_current" },
	[PK_LF_RT_FINALIZING] = { M(rt_finalizing), "rt_finalizing" },
	[PK_LF_RT_GIL_LOCKED] = { M(rt_ceval_gil), "rt_ceval_gil + gil_locked" },
	[PK_LF_RT_EVAL_BREAKER] = { M(rt_ceval_eval_breaker), "rt_ceval_eval_breaker" },
	[PK_LF_RT_PENDING_ASYNC_EXC] = { M(rt_ceval_pending_async_exc), "rt_ceval_pending_async_exc" },
	[PK_LF_IS_NEXT] = { M(is_next), "is_next" },
	[PK_LF_IS_ID] = { M(is_id), "is_id" },
	[PK_LF_IS_TSTATE_HEAD] = { M(is_tstate_head), "is_tstate_head" },
	[PK_LF_IS_EVAL_BREAKER] = { M(is_ceval_eval_breaker), "is_ceval_eval_breaker" },
	[PK_LF_IS_PENDING_ASYNC_EXC] = { M(is_ceval_pending_async_exc), "is_ceval_pending_async_exc" },
	[PK_LF_TS_NEXT] = { M(ts_next), "ts_next" },
	[PK_LF_TS_INTERP] = { M(ts_interp), "ts_interp" },
	[PK_LF_TS_THREAD_ID] = { M(ts_thread_id), "ts_thread_id" },
	[PK_LF_TS_ASYNC_EXC] = { M(ts_async_exc), "ts_async_exc" },
	[PK_LF_TS_EVAL_BREAKER] = { M(ts_eval_breaker), "ts_eval_breaker" },
	[PK_LF_OB_REFCNT] = { M(ob_refcnt), "ob_refcnt" },
};

int pk_lf_of_member(size_t member)
{
	for (int i = 0; i < PK_LF_COUNT; i++)
		if (pk_lf_info[i].member == member)
			return i;
	return -1;
}

static int32_t *lf_field(struct pk_layout *L, int lf)
{
	return (int32_t *)(void *)((char *)L + pk_lf_info[lf].member);
}

#define BIT(lf) (1ull << (lf))

uint64_t pk_layout_write_fields(const struct pk_layout *L, int major, int minor)
{
	uint64_t m = BIT(PK_LF_IS_NEXT) | BIT(PK_LF_IS_TSTATE_HEAD) | BIT(PK_LF_TS_NEXT) | BIT(PK_LF_TS_THREAD_ID) |
		     BIT(PK_LF_TS_ASYNC_EXC);

	if (major == 3 && minor >= 7)
		m |= BIT(PK_LF_RT_INTERPRETERS_HEAD);
	if (major == 2 || minor < 12)
		m |= BIT(PK_LF_OB_REFCNT);
	/* The same choice as raise.c signal_async_exc. */
	if (major == 2 || minor == 6)
		return m;
	if (L->rt_ceval_pending_async_exc >= 0 && L->rt_ceval_eval_breaker >= 0)
		m |= BIT(PK_LF_RT_EVAL_BREAKER) | BIT(PK_LF_RT_PENDING_ASYNC_EXC);
	else if (L->is_ceval_pending_async_exc >= 0 && L->is_ceval_eval_breaker >= 0)
		m |= BIT(PK_LF_IS_EVAL_BREAKER) | BIT(PK_LF_IS_PENDING_ASYNC_EXC);
	else
		m |= BIT(PK_LF_TS_EVAL_BREAKER);
	return m;
}

bool pk_layout_check_exact(const struct pk_layout *L, int major, int minor, const struct pk_layout_check *chk)
{
	uint64_t need = pk_layout_write_fields(L, major, minor);

	if (chk->table_exact && chk->adapted == 0 && chk->mismatch[0] == '\0')
		return true;
	return chk->mismatch[0] == '\0' && (need & ~(chk->verified | chk->dbgoff)) == 0;
}

/* ------------------------------------------------------------------ facts */

enum rule {
	/* Strong (a disagreement is adapted): the function does nothing but
	 * this access before its first ret (no call), so the offset is the
	 * field. */
	R_ONLY_ARG0,   /* offset from the first argument */
	R_ONLY_RT,     /* offset inside _PyRuntime */
	R_ONLY_RT_SUM, /* offset inside _PyRuntime of rt_ceval_gil + gil_locked: the GIL struct
			* moved (its inner offset is kept) */
	R_SET1_FIRST,  /* the first of the function's only two accesses, both "store 1"
			* (pending.async_exc) */
	R_SET1_SECOND, /* the second (eval_breaker). The write path stores 1 to both, so
			* even a swapped pair would do what the interpreter does */
	/* Weak (a disagreement is refused): a pattern inside a larger
	 * function, accepted when unique. */
	R_CMP_ARG0,    /* compared with the first argument (thread id) */
	R_STORE_ARG1,  /* the second argument stored or exchanged in (async_exc) */
	R_LOCK_OR_8,   /* lock or $0x8 (3.13+ _PY_ASYNC_EXCEPTION_BIT) */
	R_REFCNT,      /* Py_IncRef: every 8-byte access to the argument, one of them a write */
};

struct fact {
	const char *func;
	int lf;
	uint16_t min, max; /* major << 8 | minor */
	enum rule rule;
	uint8_t base; /* R_SET1_*: PK_CODE_ARG0 or PK_CODE_ADDR (inside _PyRuntime) */
};

static const struct fact facts[] = {
	{ "PyInterpreterState_Next", PK_LF_IS_NEXT, 0x0207, 0xffff, R_ONLY_ARG0, 0 },
	{ "PyInterpreterState_ThreadHead", PK_LF_IS_TSTATE_HEAD, 0x0207, 0xffff, R_ONLY_ARG0, 0 },
	{ "PyThreadState_Next", PK_LF_TS_NEXT, 0x0207, 0xffff, R_ONLY_ARG0, 0 },
	{ "PyInterpreterState_GetID", PK_LF_IS_ID, 0x0307, 0xffff, R_ONLY_ARG0, 0 },
	{ "PyThreadState_GetInterpreter", PK_LF_TS_INTERP, 0x0309, 0xffff, R_ONLY_ARG0, 0 },
	{ "PyInterpreterState_Head", PK_LF_RT_INTERPRETERS_HEAD, 0x0307, 0xffff, R_ONLY_RT, 0 },
	{ "PyInterpreterState_Main", PK_LF_RT_INTERPRETERS_MAIN, 0x0307, 0xffff, R_ONLY_RT, 0 },
	{ "_PyThreadState_UncheckedGet", PK_LF_RT_TSTATE_CURRENT, 0x0307, 0x030b, R_ONLY_RT, 0 },
	{ "_Py_IsFinalizing", PK_LF_RT_FINALIZING, 0x0307, 0x030c, R_ONLY_RT, 0 },
	{ "PyEval_ThreadsInitialized", PK_LF_RT_GIL_LOCKED, 0x0307, 0x030b, R_ONLY_RT_SUM, 0 },
	/* Before 3.12 the write path counts the reference async_exc holds;
	 * Py_IncRef is "ob_refcnt += 1" (a load/add/store in debug builds,
	 * which also count _Py_RefTotal, a global). */
	{ "Py_IncRef", PK_LF_OB_REFCNT, 0x0207, 0x030b, R_REFCNT, 0 },
	{ "PyThreadState_SetAsyncExc", PK_LF_TS_THREAD_ID, 0x0207, 0xffff, R_CMP_ARG0, 0 },
	{ "PyThreadState_SetAsyncExc", PK_LF_TS_ASYNC_EXC, 0x0207, 0xffff, R_STORE_ARG1, 0 },
	{ "PyThreadState_SetAsyncExc", PK_LF_TS_EVAL_BREAKER, 0x030d, 0xffff, R_LOCK_OR_8, 0 },
	/* 3.7: SIGNAL_ASYNC_EXC() stores pending.async_exc, then eval_breaker,
	 * in _PyRuntime.ceval; 3.10-3.12: the same in interp->ceval, interp
	 * being the argument. (3.8 passes &_PyRuntime.ceval, 3.9 the thread
	 * state: their bases are not table fields.) */
	{ "_PyEval_SignalAsyncExc", PK_LF_RT_PENDING_ASYNC_EXC, 0x0307, 0x0307, R_SET1_FIRST, PK_CODE_ADDR },
	{ "_PyEval_SignalAsyncExc", PK_LF_RT_EVAL_BREAKER, 0x0307, 0x0307, R_SET1_SECOND, PK_CODE_ADDR },
	{ "_PyEval_SignalAsyncExc", PK_LF_IS_PENDING_ASYNC_EXC, 0x030a, 0x030c, R_SET1_FIRST, PK_CODE_ARG0 },
	{ "_PyEval_SignalAsyncExc", PK_LF_IS_EVAL_BREAKER, 0x030a, 0x030c, R_SET1_SECOND, PK_CODE_ARG0 },
};

struct ctx {
	const struct pk_elf *elf;
	pk_code_got_fn got;
	void *got_ctx;
	uint64_t runtime, rt_extent; /* link-time &_PyRuntime and the bytes it spans */
	const char *cached_func;
	struct pk_code_scan scan;
	int scan_rc;
};

static bool in_rt(const struct ctx *c, uint64_t addr, int64_t *off)
{
	if (c->runtime == 0 || addr < c->runtime || addr - c->runtime >= c->rt_extent)
		return false;
	*off = (int64_t)(addr - c->runtime);
	return true;
}

/* Keep a value only if every candidate agrees. */
static void candidate(int64_t v, int *n, int64_t *val)
{
	if (*n == 0 || *val != v)
		(*n)++;
	*val = v;
}

/* The value the binary gives for fact f: 1 (in *val), 0 when it tells
 * nothing, -errno when the function cannot be read. */
static int fact_value(struct ctx *c, const struct fact *f, int64_t *val)
{
	const struct pk_code_scan *s = &c->scan;
	const struct pk_code_access *a;
	uint64_t addr, size;
	int n = 0, n1 = 0;
	int64_t off = 0;

	if (c->cached_func == NULL || strcmp(c->cached_func, f->func) != 0) {
		c->cached_func = f->func;
		if (pk_elf_symbol(c->elf, f->func, &addr, &size) < 0)
			c->scan_rc = -ENOENT;
		else
			c->scan_rc = pk_elf_code_scan(c->elf, addr, size, c->got, c->got_ctx, &c->scan);
	}
	if (c->scan_rc < 0)
		return c->scan_rc == -ENOENT || c->scan_rc == -ENOTSUP ? 0 : c->scan_rc;

	switch (f->rule) {
	case R_ONLY_ARG0:
	case R_ONLY_RT:
	case R_ONLY_RT_SUM:
		if (s->n_before_ret != 1 || s->call_before_ret)
			return 0;
		a = &s->acc[0];
		if (a->kind != PK_CODE_LOAD && a->kind != PK_CODE_CMP)
			return 0;
		if (f->rule == R_ONLY_ARG0) {
			if (a->base != PK_CODE_ARG0 || a->disp < 0)
				return 0;
			*val = a->disp;
			return 1;
		}
		if (a->base != PK_CODE_ADDR || !in_rt(c, a->addr, &off))
			return 0;
		*val = off;
		return 1;
	case R_CMP_ARG0:
	case R_STORE_ARG1:
	case R_LOCK_OR_8:
		for (size_t i = 0; i < s->n; i++) {
			a = &s->acc[i];
			if (a->base != PK_CODE_OTHER || a->disp < 0)
				continue;
			if (f->rule == R_CMP_ARG0 && a->kind == PK_CODE_CMP && a->src == PK_CODE_ARG0 && a->size == 8)
				candidate(a->disp, &n, val);
			else if (f->rule == R_STORE_ARG1 && (a->kind == PK_CODE_STORE || a->kind == PK_CODE_XCHG) &&
				 a->src == PK_CODE_ARG1 && a->size == 8)
				candidate(a->disp, &n, val);
			else if (f->rule == R_LOCK_OR_8 && a->kind == PK_CODE_RMW && a->lock && a->has_imm && a->imm == 8)
				candidate(a->disp, &n, val);
		}
		return n == 1 && !s->truncated;
	case R_REFCNT: {
		bool wrote = false;

		if (s->call_before_ret)
			return 0;
		for (size_t i = 0; i < s->n_before_ret; i++) {
			a = &s->acc[i];
			if (a->base != PK_CODE_ARG0)
				continue;
			if (a->size != 8 || a->disp < 0)
				return 0;
			candidate(a->disp, &n, val);
			wrote |= a->kind == PK_CODE_RMW || a->kind == PK_CODE_STORE;
		}
		return n == 1 && wrote;
	}
	case R_SET1_FIRST:
	case R_SET1_SECOND:
		if (s->call_before_ret)
			return 0;
		for (size_t i = 0; i < s->n_before_ret; i++) {
			a = &s->acc[i];
			if (a->kind != PK_CODE_STORE || !a->has_imm || a->imm != 1 || a->base != f->base)
				return 0;
			if (a->base == PK_CODE_ADDR && !in_rt(c, a->addr, &off))
				return 0;
			if (a->base == PK_CODE_ARG0)
				off = a->disp;
			if (n1 == (f->rule == R_SET1_FIRST ? 0 : 1))
				*val = off;
			n1++;
		}
		return n1 == 2;
	}
	return 0;
}

static int refuse(struct pk_layout_check *chk, const char *version, const struct pk_elf *elf, const char *name,
		  int64_t at, int64_t table, const char *why)
{
	snprintf(chk->mismatch, sizeof(chk->mismatch), "%s is at 0x%" PRIx64 ", table says 0x%" PRIx64 "%s", name,
		 (uint64_t)at, (uint64_t)table, why);
	pk_error("layout of Python %s in %s does not match pykill's table: %s", version, pk_elf_path(elf),
		 chk->mismatch);
	return -ENOTSUP;
}

int pk_layout_check_elf(struct pk_layout *L, const struct pk_elf *elf, uint64_t runtime, int major, int minor,
			const char *version, struct pk_layout_check *chk)
{
	return pk_layout_check_elf_got(L, elf, runtime, major, minor, version, NULL, NULL, chk);
}

int pk_layout_check_elf_got(struct pk_layout *L, const struct pk_elf *elf, uint64_t runtime, int major, int minor,
			    const char *version, pk_code_got_fn got, void *got_ctx, struct pk_layout_check *chk)
{
	uint16_t ver = (uint16_t)((major & 0xff) << 8 | (minor & 0xff));
	uint64_t addr = 0, st_size = 0;
	struct ctx c;
	int rc;

	chk->verified = chk->adapted = 0;
	chk->mismatch[0] = '\0';
	memset(&c, 0, sizeof(c));
	c.elf = elf;
	c.got = got;
	c.got_ctx = got_ctx;
	c.runtime = runtime;

	/* The runtime struct's size: its symbol's st_size. */
	if (runtime != 0 && pk_elf_symbol(elf, "_PyRuntime", &addr, &st_size) == 0 && addr == runtime &&
	    st_size != 0) {
		c.rt_extent = st_size;
		if (L->rt_size == (int32_t)st_size) {
			chk->verified |= BIT(PK_LF_RT_SIZE);
		} else if (L->rt_size > 0) {
			if (chk->dbgoff & BIT(PK_LF_RT_SIZE))
				return refuse(chk, version, elf, "_PyRuntime's size (symbol)", (int64_t)st_size,
					      L->rt_size, " (from _Py_DebugOffsets)");
			pk_log(PK_LOG_INFO, "layout: _PyRuntime in %s is 0x%" PRIx64 " bytes, the table (%s) says 0x%x",
			       pk_elf_path(elf), st_size, L->source, (unsigned)L->rt_size);
			L->rt_size = (int32_t)st_size;
			chk->adapted |= BIT(PK_LF_RT_SIZE);
			chk->verified |= BIT(PK_LF_RT_SIZE);
		}
	} else if (runtime != 0) {
		c.rt_extent = L->rt_size > 0 ? (uint64_t)L->rt_size : 0;
	}

	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
		const struct fact *f = &facts[i];
		int32_t *field = lf_field(L, f->lf);
		int64_t v = 0, nv, table;
		bool strong = f->rule == R_ONLY_ARG0 || f->rule == R_ONLY_RT || f->rule == R_ONLY_RT_SUM ||
			      f->rule == R_SET1_FIRST || f->rule == R_SET1_SECOND;

		if (ver < f->min || ver > f->max || *field == PK_NOFF)
			continue;
		if (f->lf == PK_LF_RT_GIL_LOCKED && L->gil_locked == PK_NOFF)
			continue;
		rc = fact_value(&c, f, &v);
		if (rc == -ENOMEM) {
			pk_error("check the layout of Python %s in %s: out of memory", version, pk_elf_path(elf));
			return rc;
		}
		/* No capstone (said by symbols/): a check that cannot run is not
		 * a binary that says nothing. */
		if (rc == -ELIBACC)
			return rc;
		if (rc <= 0)
			continue; /* the binary does not say (or its code is unreadable) */
		table = f->lf == PK_LF_RT_GIL_LOCKED ? (int64_t)*field + L->gil_locked : *field;
		if (v == table) {
			chk->verified |= BIT(f->lf);
			continue;
		}
		/* The value to store: for the GIL, where its struct now begins. */
		nv = f->lf == PK_LF_RT_GIL_LOCKED ? v - L->gil_locked : v;
		if (!strong || (chk->dbgoff & BIT(f->lf)) || nv > INT32_MAX || nv < 0)
			return refuse(chk, version, elf, pk_lf_info[f->lf].name, v, table,
				      (chk->dbgoff & BIT(f->lf)) ? " (from _Py_DebugOffsets)" : "");
		pk_log(PK_LOG_INFO, "layout of Python %s in %s: %s is at 0x%" PRIx64 " (%s), the table (%s) says 0x%" PRIx64
		       ": using the binary's", version, pk_elf_path(elf), pk_lf_info[f->lf].name, (uint64_t)v, f->func,
		       L->source, (uint64_t)table);
		*field = (int32_t)nv;
		chk->adapted |= BIT(f->lf);
		chk->verified |= BIT(f->lf);
	}
	return 0;
}
