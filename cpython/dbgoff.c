/* _Py_DebugOffsets (3.13+): the target publishes the offsets of the
 * structures an out-of-process reader needs, at the start of _PyRuntime.
 * Where the target says something, the target is right: its values replace
 * the generated table's (a mismatch is logged; a test cross-checks both on
 * the interpreters of the suite). Fields it does not cover (async_exc,
 * eval_breaker on 3.13, GIL condition variables...) keep the table's value. */
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

int pk_dbgoff_apply(struct pk_py *py)
{
	struct pk_layout *L = &py->layout;
	uint8_t *buf;
	size_t len = (size_t)L->dbg_size;
	uint64_t version = 0, ft = 0, v;
	unsigned replaced = 0, differed = 0;
	int rc;

	if (L->dbg_size <= 0 || len > DBG_MAX_SIZE || py->runtime == 0)
		return -ENOENT;
	buf = malloc(len);
	if (buf == NULL)
		return -ENOMEM;
	rc = pk_mem_read(py->mem, py->runtime, buf, len);
	if (rc < 0) {
		pk_log(PK_LOG_WARN, "_Py_DebugOffsets at 0x%llx unreadable", (unsigned long long)py->runtime);
		goto out;
	}
	if (memcmp(buf, "xdebugpy", 8) != 0) {
		pk_log(PK_LOG_WARN, "_PyRuntime at 0x%llx does not start with the _Py_DebugOffsets cookie",
		       (unsigned long long)py->runtime);
		rc = -EINVAL;
		goto out;
	}
	get(buf, len, L->dbg_version, &version);
	if ((int)((version >> 24) & 0xff) != py->major || (int)((version >> 16) & 0xff) != py->minor) {
		pk_log(PK_LOG_WARN, "_Py_DebugOffsets says version 0x%llx, the object says %s",
		       (unsigned long long)version, py->version);
		rc = -EINVAL;
		goto out;
	}
	if (get(buf, len, L->dbg_free_threaded, &ft) == 0 && ft != 0) {
		pk_error("inspect Python %s in %s: free-threaded builds are not supported yet", py->version, py->path);
		rc = -ENOTSUP;
		goto out;
	}
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		int32_t pos = *field_at(L, pairs[i].dbg);
		int32_t *field = field_at(L, pairs[i].field);

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
	}
	/* The GIL fields are given from the start of the interpreter state. */
	if (L->is_gil > 0) {
		if (get(buf, len, L->dbg_gil_locked, &v) == 0 && v > (uint64_t)L->is_gil && v < DBG_MAX_OFFSET)
			L->gil_locked = (int32_t)(v - (uint64_t)L->is_gil);
		if (get(buf, len, L->dbg_gil_last_holder, &v) == 0 && v > (uint64_t)L->is_gil && v < DBG_MAX_OFFSET)
			L->gil_last_holder = (int32_t)(v - (uint64_t)L->is_gil);
	}
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
