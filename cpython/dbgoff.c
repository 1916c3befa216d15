/* SPDX-License-Identifier: MIT */
/* _Py_DebugOffsets (3.13+): the target publishes the offsets of the
 * structures an out-of-process reader needs, at the start of _PyRuntime.
 * Where the target says something, the target is right: its values replace
 * the generated table's (a mismatch is logged; a test cross-checks both on
 * the interpreters of the suite), provided they are consistent: the same
 * version as the object, every offset inside the struct size it reports.
 * Fields it does not cover (async_exc, eval_breaker on 3.13, GIL condition
 * variables...) keep the table's value. */
#include "py-priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DBG_MAX_SIZE 4096
#define DBG_MAX_OFFSET (1 << 24)

#define PAIR(f) { offsetof(struct pk_layout, dbg_##f), offsetof(struct pk_layout, f), #f }

static const struct {
	size_t dbg, field;
	const char *name;
} pairs[] = {
	PAIR(rt_size), PAIR(rt_finalizing), PAIR(rt_interpreters_head),
	PAIR(is_size), PAIR(is_id), PAIR(is_next), PAIR(is_tstate_head), PAIR(is_threads_main),
	PAIR(is_modules), PAIR(is_ceval_gil), PAIR(is_gil),
	PAIR(ts_size), PAIR(ts_prev), PAIR(ts_next), PAIR(ts_interp), PAIR(ts_frame), PAIR(ts_thread_id),
	PAIR(ts_native_thread_id), PAIR(ts_datastack_chunk), PAIR(ts_status), PAIR(ts_holds_gil),
	PAIR(ts_eval_breaker),
	PAIR(fr_size), PAIR(fr_back), PAIR(fr_code), PAIR(fr_instr), PAIR(fr_owner),
	PAIR(co_size), PAIR(co_filename), PAIR(co_name), PAIR(co_qualname), PAIR(co_linetable),
	PAIR(co_firstlineno), PAIR(co_code_adaptive),
	PAIR(ob_type), PAIR(tp_name), PAIR(tp_flags), PAIR(tp_basicsize), PAIR(tp_dictoffset),
	PAIR(ht_cached_keys), PAIR(var_ob_size), PAIR(tuple_ob_item), PAIR(list_ob_item),
	PAIR(dict_ma_keys), PAIR(dict_ma_values), PAIR(long_lv_tag), PAIR(long_digits), PAIR(bytes_ob_sval),
	PAIR(uni_state), PAIR(uni_length), PAIR(uni_ascii_size), PAIR(uni_compact_size),
};

static int32_t *field_at(struct pk_layout *L, size_t off)
{
	return (int32_t *)(void *)((char *)L + off);
}

static int get(const uint8_t *buf, size_t len, int32_t pos, uint64_t *out)
{
	if (pos < 0 || (size_t)pos + 8 > len)
		return -EINVAL;
	memcpy(out, buf + pos, 8);
	return 0;
}

/* Offsets a version's readers rely on, each within the struct size the
 * same _Py_DebugOffsets reports: a _Py_DebugOffsets whose own layout is not
 * the one the table expects (a newer minor version that reorganised it)
 * fails this, instead of being read as offsets. width is the field's size. */
#define WITHIN(f, sz, width) { offsetof(struct pk_layout, f), offsetof(struct pk_layout, sz), width, #f, #sz }

static const struct {
	size_t field, size;
	int width;
	const char *name, *size_name;
} within[] = {
	WITHIN(rt_finalizing, rt_size, 8), WITHIN(rt_interpreters_head, rt_size, 8),
	WITHIN(is_next, is_size, 8), WITHIN(is_id, is_size, 8), WITHIN(is_tstate_head, is_size, 8),
	WITHIN(is_threads_main, is_size, 8), WITHIN(is_modules, is_size, 8),
	WITHIN(ts_prev, ts_size, 8), WITHIN(ts_next, ts_size, 8), WITHIN(ts_interp, ts_size, 8),
	WITHIN(ts_frame, ts_size, 8), WITHIN(ts_thread_id, ts_size, 8), WITHIN(ts_native_thread_id, ts_size, 8),
	WITHIN(ts_datastack_chunk, ts_size, 8), WITHIN(ts_status, ts_size, 4), WITHIN(ts_holds_gil, ts_size, 4),
	WITHIN(ts_eval_breaker, ts_size, 8), WITHIN(ts_async_exc, ts_size, 8),
	WITHIN(fr_back, fr_size, 8), WITHIN(fr_code, fr_size, 8), WITHIN(fr_instr, fr_size, 8),
	WITHIN(fr_owner, fr_size, 1),
	WITHIN(co_filename, co_size, 8), WITHIN(co_name, co_size, 8), WITHIN(co_qualname, co_size, 8),
	WITHIN(co_linetable, co_size, 8), WITHIN(co_firstlineno, co_size, 4),
	WITHIN(co_code_adaptive, co_size, 1),
};

/* "" when the patched layout N is self-consistent, else why not. */
static void check_consistent(const struct pk_layout *N, char *why, size_t cap)
{
	why[0] = '\0';
	for (size_t i = 0; i < sizeof(within) / sizeof(within[0]); i++) {
		int32_t f = *(const int32_t *)(const void *)((const char *)N + within[i].field);
		int32_t sz = *(const int32_t *)(const void *)((const char *)N + within[i].size);

		if (f == PK_NOFF || sz == PK_NOFF)
			continue;
		if (sz <= 0 || f < 0 || (int64_t)f + within[i].width > sz) {
			snprintf(why, cap, "%s = 0x%x is outside %s = 0x%x", within[i].name, (unsigned)f,
				 within[i].size_name, (unsigned)sz);
			return;
		}
	}
}

int pk_dbgoff_free_threaded(struct pk_py *py, const struct pk_layout *L, bool *ft)
{
	uint8_t head[8];
	uint64_t v = 0;
	int rc;

	*ft = false;
	if (L == NULL || py->runtime == 0 || L->dbg_free_threaded < 8 || L->dbg_free_threaded > DBG_MAX_SIZE - 8)
		return -ENOENT;
	rc = pk_mem_read(py->mem, py->runtime, head, sizeof(head));
	if (rc < 0)
		return rc;
	if (memcmp(head, "xdebugpy", 8) != 0)
		return -EINVAL;
	rc = pk_mem_read(py->mem, py->runtime + (uint64_t)L->dbg_free_threaded, &v, sizeof(v));
	if (rc < 0)
		return rc;
	*ft = v != 0;
	return 0;
}

int pk_dbgoff_apply(struct pk_py *py)
{
	struct pk_layout *L = &py->layout;
	struct pk_layout N;
	uint8_t *buf;
	size_t len = (size_t)L->dbg_size;
	uint64_t version = 0, ft = 0, v, covered = 0;
	unsigned replaced = 0, differed = 0;
	char why[160];
	int rc;

	py->dbgoff_problem[0] = '\0';
	if (L->dbg_size <= 0 || len > DBG_MAX_SIZE || py->runtime == 0)
		return -ENOENT;
	buf = malloc(len);
	if (buf == NULL)
		return -ENOMEM;
	rc = pk_mem_read(py->mem, py->runtime, buf, len);
	if (rc < 0) {
		snprintf(py->dbgoff_problem, sizeof(py->dbgoff_problem), "_Py_DebugOffsets at 0x%llx unreadable",
			 (unsigned long long)py->runtime);
		pk_log(PK_LOG_WARN, "%s", py->dbgoff_problem);
		goto out;
	}
	if (memcmp(buf, "xdebugpy", 8) != 0) {
		snprintf(py->dbgoff_problem, sizeof(py->dbgoff_problem),
			 "_PyRuntime at 0x%llx does not start with the _Py_DebugOffsets cookie",
			 (unsigned long long)py->runtime);
		pk_log(PK_LOG_WARN, "%s", py->dbgoff_problem);
		rc = -EINVAL;
		goto out;
	}
	get(buf, len, L->dbg_version, &version);
	if ((int)((version >> 24) & 0xff) != py->major || (int)((version >> 16) & 0xff) != py->minor ||
	    (py->hexversion != 0 && version != py->hexversion)) {
		snprintf(py->dbgoff_problem, sizeof(py->dbgoff_problem),
			 "_Py_DebugOffsets says version 0x%llx, the object says %s", (unsigned long long)version,
			 py->version);
		pk_log(PK_LOG_WARN, "%s", py->dbgoff_problem);
		rc = -EINVAL;
		goto out;
	}
	/* The object header, and so every object offset, differs between a
	 * free-threaded build and a default one: the entry must be of the
	 * target's flavour (pk_py_open chose it from this very flag). */
	if (get(buf, len, L->dbg_free_threaded, &ft) == 0 && (ft != 0) != (L->free_threaded != 0)) {
		pk_error("inspect Python %s in %s: _Py_DebugOffsets says a %s build, the layout table entry is for a %s one",
			 py->version, py->path, ft ? "free-threaded" : "default (GIL)",
			 L->free_threaded ? "free-threaded" : "default (GIL)");
		rc = -ENOTSUP;
		goto out;
	}
	/* Patch a copy: all of it is used, or none. */
	N = *L;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		int32_t pos = *field_at(&N, pairs[i].dbg);
		int32_t *field = field_at(&N, pairs[i].field);
		int lf;

		if (pos == PK_NOFF || get(buf, len, pos, &v) < 0)
			continue;
		if (v >= DBG_MAX_OFFSET) {
			pk_log(PK_LOG_WARN, "_Py_DebugOffsets: %s = 0x%llx is absurd; keeping the table's value",
			       pairs[i].name, (unsigned long long)v);
			continue;
		}
		if (*field != (int32_t)v) {
			differed++;
			pk_log(PK_LOG_DEBUG, "_Py_DebugOffsets: %s = 0x%llx (table: 0x%x)", pairs[i].name,
			       (unsigned long long)v, (unsigned)*field);
		}
		*field = (int32_t)v;
		replaced++;
		lf = pk_lf_of_member(pairs[i].field);
		if (lf >= 0)
			covered |= 1ull << lf;
	}
	/* The GIL fields are given from the start of the interpreter state. */
	if (N.is_gil > 0) {
		if (get(buf, len, N.dbg_gil_locked, &v) == 0 && v > (uint64_t)N.is_gil && v < DBG_MAX_OFFSET)
			N.gil_locked = (int32_t)(v - (uint64_t)N.is_gil);
		if (get(buf, len, N.dbg_gil_last_holder, &v) == 0 && v > (uint64_t)N.is_gil && v < DBG_MAX_OFFSET)
			N.gil_last_holder = (int32_t)(v - (uint64_t)N.is_gil);
	}
	check_consistent(&N, why, sizeof(why));
	if (why[0] != '\0') {
		snprintf(py->dbgoff_problem, sizeof(py->dbgoff_problem), "_Py_DebugOffsets is inconsistent: %.120s", why);
		pk_log(PK_LOG_WARN, "Python %s in %s: %s; keeping the table's values", py->version, py->path,
		       py->dbgoff_problem);
		rc = -EINVAL;
		goto out;
	}
	*L = N;
	py->lcheck.dbgoff = covered;
	if (version != 0 && py->hexversion == 0) {
		py->hexversion = (uint32_t)version;
	}
	snprintf(py->layout_source + strlen(py->layout_source),
		 sizeof(py->layout_source) - strlen(py->layout_source), " + _Py_DebugOffsets (%u fields, %u differ)",
		 replaced, differed);
	pk_log(PK_LOG_INFO, "_Py_DebugOffsets: %u offsets read from the target, %u differ from the table", replaced,
	       differed);
	rc = 0;
out:
	free(buf);
	return rc;
}
