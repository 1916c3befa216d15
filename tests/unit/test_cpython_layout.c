/* SPDX-License-Identifier: MIT */
/* cpython/layout: the generated table (cpython/layouts_gen.c) and its lookup.
 *
 * The table comes from headers; these tests hold it against the compiled
 * interpreters. On 3.13+ each binary carries _Py_DebugOffsets in its
 * .PyRuntime section, initialised at build time, so the file itself says
 * where the runtime, interpreter, thread, frame, code and string fields are
 * and where, inside _Py_DebugOffsets, each value sits (the dbg_* fields).
 * On 3.7+ the size of the _PyRuntime symbol must equal rt_size. Each
 * interpreter is a separate test, skipped when its file is absent: pyenv
 * builds under $PYENV_ROOT (~/.pyenv), Debian sid builds under
 * $PYKILL_PYTHONS (~/.cache/pykill-pythons, see tests/fetch-pythons.sh). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout.h"
#include "pk_log.h"
#include "pk_symbols.h"
#include "unit-util.h"

/* ---------------------------------------------------------------------- */
/* Lookup */

static void test_find_every_entry(void **state)
{
	(void)state;
	assert_true(pk_layouts_count > 0);
	for (size_t i = 0; i < pk_layouts_count; i++) {
		const struct pk_layout *L = &pk_layouts[i];

		assert_ptr_equal(pk_layout_find_ft(L->version >> 8, L->version & 0xff, L->free_threaded != 0), L);
		/* Default builds first, newest last, one entry per minor version;
		 * then the free-threaded builds, likewise. */
		if (i > 0 && pk_layouts[i - 1].free_threaded == L->free_threaded)
			assert_true(pk_layouts[i - 1].version < L->version);
		if (i > 0)
			assert_true(pk_layouts[i - 1].free_threaded <= L->free_threaded);
		assert_true(L->free_threaded == 0 || L->free_threaded == 1);
		/* A free-threaded entry has no single reference count field. */
		if (L->free_threaded)
			assert_int_equal(L->ob_refcnt, PK_NOFF);
	}
}

static void test_find_supported_versions(void **state)
{
	static const int want[][2] = { { 2, 7 }, { 3, 6 }, { 3, 7 }, { 3, 8 }, { 3, 9 }, { 3, 10 },
				       { 3, 11 }, { 3, 12 }, { 3, 13 }, { 3, 14 }, { 3, 15 } };

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct pk_layout *L = pk_layout_find(want[i][0], want[i][1]);
		char prefix[16];

		assert_non_null(L);
		assert_int_equal(L->version, want[i][0] << 8 | want[i][1]);
		assert_non_null(L->source);
		snprintf(prefix, sizeof(prefix), "%d.%d.", want[i][0], want[i][1]);
		assert_memory_equal(L->source, prefix, strlen(prefix));
	}
}

/* pk_layout_find never answers with a free-threaded entry, nor the
 * fallback for a newer default build. */
static void test_find_flavours(void **state)
{
	(void)state;
	for (int minor = 13; minor <= 15; minor++) {
		const struct pk_layout *L = pk_layout_find(3, minor);
		const struct pk_layout *T = pk_layout_find_ft(3, minor, true);

		assert_non_null(L);
		assert_int_equal(L->free_threaded, 0);
		if (T != NULL) {
			assert_int_equal(T->free_threaded, 1);
			assert_int_equal(T->version, L->version);
		}
	}
	assert_int_equal(pk_layout_newest(false)->free_threaded, 0);
	assert_int_equal(pk_layout_newest(false)->version, 0x030f);
	assert_non_null(pk_layout_find_ft(3, 13, true));
	assert_int_equal(pk_layout_newest(true)->free_threaded, 1);
}

static void test_find_unknown(void **state)
{
	(void)state;
	assert_null(pk_layout_find(2, 6));
	assert_null(pk_layout_find(3, 5));
	assert_null(pk_layout_find(3, 99));
	assert_null(pk_layout_find(4, 0));
	assert_null(pk_layout_find(0, 0));
	assert_null(pk_layout_find(-1, 7));
	assert_null(pk_layout_find(3, -1));
	/* Must not be narrowed into 3.14 (0x030e) or 2.7. */
	assert_null(pk_layout_find(3, 0x10e));
	assert_null(pk_layout_find(0x102, 7));
}

/* ---------------------------------------------------------------------- */
/* Structural consistency of every entry */

#define WITHIN(L, field, size)                                                            \
	do {                                                                              \
		if ((L)->field != PK_NOFF) {                                              \
			if ((L)->field < 0 || (L)->field >= (L)->size)                    \
				fail_msg("%s: " #field " = 0x%x outside " #size " = 0x%x", \
					 (L)->source, (unsigned)(L)->field, (unsigned)(L)->size); \
		}                                                                         \
	} while (0)

/* Every dbg_* member, as a list of (position, name). */
#define DBG_FIELDS(X)                                                                                  \
	X(dbg_version) X(dbg_free_threaded) X(dbg_rt_size) X(dbg_rt_finalizing)                         \
	X(dbg_rt_interpreters_head) X(dbg_is_size) X(dbg_is_id) X(dbg_is_next) X(dbg_is_tstate_head)    \
	X(dbg_is_threads_main) X(dbg_is_modules) X(dbg_is_ceval_gil) X(dbg_is_gil) X(dbg_gil_enabled)   \
	X(dbg_gil_locked) X(dbg_gil_last_holder) X(dbg_ts_size) X(dbg_ts_prev) X(dbg_ts_next)           \
	X(dbg_ts_interp) X(dbg_ts_frame) X(dbg_ts_thread_id) X(dbg_ts_native_thread_id)                \
	X(dbg_ts_datastack_chunk) X(dbg_ts_status) X(dbg_ts_holds_gil) X(dbg_ts_eval_breaker)          \
	X(dbg_fr_size) X(dbg_fr_back) X(dbg_fr_code) X(dbg_fr_instr) X(dbg_fr_owner) X(dbg_co_size)     \
	X(dbg_co_filename) X(dbg_co_name) X(dbg_co_qualname) X(dbg_co_linetable)                       \
	X(dbg_co_firstlineno) X(dbg_co_code_adaptive) X(dbg_ob_type) X(dbg_tp_name) X(dbg_tp_flags)     \
	X(dbg_tp_basicsize) X(dbg_tp_dictoffset) X(dbg_ht_cached_keys) X(dbg_var_ob_size)              \
	X(dbg_tuple_ob_item) X(dbg_list_ob_item) X(dbg_dict_ma_keys) X(dbg_dict_ma_values)             \
	X(dbg_long_lv_tag) X(dbg_long_digits) X(dbg_bytes_ob_sval) X(dbg_uni_state) X(dbg_uni_length)  \
	X(dbg_uni_ascii_size) X(dbg_uni_compact_size)

#define DBG_POS(f) { offsetof(struct pk_layout, f), #f },
static const struct {
	size_t member;
	const char *name;
} dbg_fields[] = { DBG_FIELDS(DBG_POS) };
#define N_DBG (sizeof(dbg_fields) / sizeof(dbg_fields[0]))

/* The list above covers every int32 member from dbg_size to the last one. */
_Static_assert(N_DBG + 1 == (offsetof(struct pk_layout, dbg_uni_compact_size) -
			     offsetof(struct pk_layout, dbg_size)) / sizeof(int32_t) + 1,
	       "DBG_FIELDS must list every dbg_* member of struct pk_layout");

static int32_t member(const struct pk_layout *L, size_t off)
{
	int32_t v;

	memcpy(&v, (const char *)L + off, sizeof(v));
	return v;
}

static void test_entries_consistent(void **state)
{
	(void)state;
	for (size_t i = 0; i < pk_layouts_count; i++) {
		const struct pk_layout *L = &pk_layouts[i];
		int has_dbg = L->version >= 0x030d;

		WITHIN(L, ts_prev, ts_size);
		WITHIN(L, ts_next, ts_size);
		WITHIN(L, ts_interp, ts_size);
		WITHIN(L, ts_frame, ts_size);
		WITHIN(L, ts_thread_id, ts_size);
		WITHIN(L, ts_native_thread_id, ts_size);
		WITHIN(L, ts_async_exc, ts_size);
		WITHIN(L, ts_eval_breaker, ts_size);
		WITHIN(L, ts_status, ts_size);
		WITHIN(L, ts_state, ts_size);
		WITHIN(L, ts_holds_gil, ts_size);
		WITHIN(L, ts_dict, ts_size);
		WITHIN(L, is_next, is_size);
		WITHIN(L, is_id, is_size);
		WITHIN(L, is_tstate_head, is_size);
		WITHIN(L, is_threads_main, is_size);
		WITHIN(L, is_modules, is_size);
		WITHIN(L, is_gil, is_size);
		WITHIN(L, is_ceval_gil, is_size);
		WITHIN(L, rt_interpreters_head, rt_size);
		WITHIN(L, rt_interpreters_main, rt_size);
		WITHIN(L, rt_main_thread, rt_size);
		WITHIN(L, rt_ceval_gil, rt_size);
		WITHIN(L, rt_gilstate_tstate_current, rt_size);
		WITHIN(L, fr_back, fr_size);
		WITHIN(L, fr_code, fr_size);
		WITHIN(L, fr_lasti, fr_size);
		WITHIN(L, fr_instr, fr_size);
		WITHIN(L, fr_owner, fr_size);
		WITHIN(L, co_filename, co_size);
		WITHIN(L, co_name, co_size);
		WITHIN(L, co_qualname, co_size);
		WITHIN(L, co_firstlineno, co_size);
		WITHIN(L, co_linetable, co_size);
		WITHIN(L, co_lnotab, co_size);
		WITHIN(L, co_code_adaptive, co_size);

		/* Where the structures exist, the fields pykill cannot work without. */
		assert_int_not_equal(L->ts_next, PK_NOFF);
		assert_int_not_equal(L->ts_interp, PK_NOFF);
		assert_int_not_equal(L->ts_frame, PK_NOFF);
		assert_int_not_equal(L->ts_thread_id, PK_NOFF);
		assert_int_not_equal(L->ts_async_exc, PK_NOFF);
		assert_int_not_equal(L->is_tstate_head, PK_NOFF);
		assert_int_not_equal(L->fr_back, PK_NOFF);
		assert_int_not_equal(L->fr_code, PK_NOFF);
		assert_int_not_equal(L->co_filename, PK_NOFF);
		assert_int_not_equal(L->co_name, PK_NOFF);
		if (L->version >= 0x0307) {
			assert_int_not_equal(L->rt_interpreters_head, PK_NOFF);
			assert_int_not_equal(L->gil_locked, PK_NOFF);
			assert_int_not_equal(L->gil_last_holder, PK_NOFF);
		}
		if (L->version >= 0x030b)
			assert_int_not_equal(L->fr_owner, PK_NOFF);
		/* The cframe indirection exists exactly in 3.11 and 3.12. */
		assert_int_equal(L->cframe_current_frame != PK_NOFF, L->version == 0x030b || L->version == 0x030c);

		/* Debug-offset positions: all or nothing, distinct, inside the struct. */
		if (!has_dbg) {
			assert_int_equal(L->dbg_size, PK_NOFF);
		} else {
			assert_true(L->dbg_size > 8);
		}
		for (size_t a = 0; a < N_DBG; a++) {
			int32_t pa = member(L, dbg_fields[a].member);

			if (!has_dbg) {
				if (pa != PK_NOFF)
					fail_msg("%s: %s set before 3.13", L->source, dbg_fields[a].name);
				continue;
			}
			if (pa == PK_NOFF)
				continue;
			if (pa < 8 || pa % 8 != 0 || pa + 8 > L->dbg_size)
				fail_msg("%s: %s = 0x%x not a uint64 inside _Py_DebugOffsets (0x%x)", L->source,
					 dbg_fields[a].name, (unsigned)pa, (unsigned)L->dbg_size);
			for (size_t b = a + 1; b < N_DBG; b++) {
				if (member(L, dbg_fields[b].member) == pa)
					fail_msg("%s: %s and %s both at 0x%x", L->source, dbg_fields[a].name,
						 dbg_fields[b].name, (unsigned)pa);
			}
		}
	}
}

/* ---------------------------------------------------------------------- */
/* Against compiled interpreters */

static char pyenv_root[512];
static char pythons[512];

static const char *path_in(const char *root, const char *rel)
{
	static char path[4][1024];
	static int slot;
	char *p = path[slot++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", root, rel);
	return p;
}

static struct pk_elf *open_or_skip(const char *path)
{
	struct pk_elf *e = NULL;
	int ret;

	if (access(path, R_OK) != 0) {
		fprintf(stderr, "skip: %s absent\n", path);
		skip();
	}
	pk_error_clear();
	ret = unit_elf_open(path, path, &e);
	if (ret != 0)
		fail_msg("pk_elf_open %s: %d %s", path, ret, pk_error_message());
	return e;
}

/* Patch level of the release the table entry was generated from. */
static int table_micro(const struct pk_layout *L)
{
	int major, minor, micro;

	assert_int_equal(sscanf(L->source, "%d.%d.%d", &major, &minor, &micro), 3);
	return micro;
}

/* Sizes of the structures that later patch releases grow at the end
 * (3.13.x appended PyThreadState.datastack_cached_chunk): the only values
 * allowed to differ from a table made from another patch release. */
static int is_struct_size(const char *name)
{
	static const char *const names[] = { "rt_size", "is_size", "ts_size", "fr_size", "co_size" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0)
			return 1;
	}
	return 0;
}

/* _PyRuntime's symbol size is sizeof(_PyRuntimeState) of that build. */
static void check_runtime_size(struct pk_elf *e, const struct pk_layout *L, int micro)
{
	uint64_t value = 0, size = 0;

	assert_int_equal(pk_elf_symbol(e, "_PyRuntime", &value, &size), 0);
	if (micro != table_micro(L)) {
		fprintf(stderr, "note: %s is x.x.%d, table from %s: size 0x%" PRIx64 " vs 0x%x not compared\n",
			pk_elf_path(e), micro, L->source, size, (unsigned)L->rt_size);
		return;
	}
	if (size != (uint64_t)L->rt_size)
		fail_msg("%s: _PyRuntime is 0x%" PRIx64 " bytes, table (%s) says rt_size 0x%x", pk_elf_path(e), size,
			 L->source, (unsigned)L->rt_size);
}

/* The generated value a dbg_* position stands for (see layout.h). */
#define DBG_PAIRS(X)                                                                                    \
	X(rt_size) X(rt_finalizing) X(rt_interpreters_head) X(is_size) X(is_id) X(is_next)               \
	X(is_tstate_head) X(is_threads_main) X(is_modules) X(is_ceval_gil) X(is_gil) X(ts_size) X(ts_prev) \
	X(ts_next) X(ts_interp) X(ts_frame) X(ts_thread_id) X(ts_native_thread_id) X(ts_datastack_chunk) \
	X(ts_status) X(ts_holds_gil) X(ts_eval_breaker) X(fr_size) X(fr_back) X(fr_code) X(fr_instr)     \
	X(fr_owner) X(co_size) X(co_filename) X(co_name) X(co_qualname) X(co_linetable) X(co_firstlineno) \
	X(co_code_adaptive) X(ob_type) X(tp_name) X(tp_flags) X(tp_basicsize) X(tp_dictoffset)           \
	X(ht_cached_keys) X(var_ob_size) X(tuple_ob_item) X(list_ob_item) X(dict_ma_keys)                \
	X(dict_ma_values) X(long_lv_tag) X(long_digits) X(bytes_ob_sval) X(uni_state) X(uni_length)      \
	X(uni_ascii_size) X(uni_compact_size)

#define PAIR(f) { offsetof(struct pk_layout, dbg_##f), offsetof(struct pk_layout, f), #f },
static const struct {
	size_t dbg, field;
	const char *name;
} pairs[] = { DBG_PAIRS(PAIR) };

static uint64_t u64_at(const uint8_t *buf, size_t len, int32_t pos)
{
	uint64_t v;

	assert_true(pos >= 0 && (size_t)pos + 8 <= len);
	memcpy(&v, buf + pos, sizeof(v));
	return v;
}

/* Compare the _Py_DebugOffsets the build initialised in its .PyRuntime
 * section with the table entry of its minor version. */
static void check_debug_offsets_ft(const char *path, int minor, bool ft)
{
	const struct pk_layout *L = pk_layout_find_ft(3, minor, ft);
	struct pk_elf *e = open_or_skip(path);
	uint64_t addr = 0, size = 0, version, v;
	uint8_t buf[4096];
	size_t len;
	int micro, compared = 0, mismatches = 0;

	assert_non_null(L);
	assert_int_equal(pk_elf_section(e, ".PyRuntime", &addr, &size), 0);
	assert_true(L->dbg_size > 0 && (size_t)L->dbg_size <= sizeof(buf));
	assert_true(size >= (uint64_t)L->dbg_size);
	len = (size_t)L->dbg_size;
	assert_int_equal(pk_elf_read(e, addr, buf, len), 0);

	assert_memory_equal(buf, "xdebugpy", 8);
	version = u64_at(buf, len, L->dbg_version);
	assert_int_equal((version >> 24) & 0xff, 3);
	assert_int_equal((version >> 16) & 0xff, minor);
	assert_int_equal(u64_at(buf, len, L->dbg_free_threaded), ft ? 1 : 0);
	micro = (int)((version >> 8) & 0xff);

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		int32_t pos = member(L, pairs[i].dbg);
		int32_t want = member(L, pairs[i].field);

		if (pos == PK_NOFF)
			continue;
		v = u64_at(buf, len, pos);
		if (is_struct_size(pairs[i].name) && micro != table_micro(L)) {
			fprintf(stderr, "note: %s (3.%d.%d): %s = 0x%" PRIx64 ", table from %s has 0x%x\n", path, minor,
				micro, pairs[i].name, v, L->source, (unsigned)want);
			continue;
		}
		compared++;
		if (want == PK_NOFF || v != (uint64_t)want) {
			fprintf(stderr, "%s: %s = 0x%" PRIx64 " in _Py_DebugOffsets, table (%s) has %d\n", path,
				pairs[i].name, v, L->source, want);
			mismatches++;
		}
	}
	/* GIL fields: offsets from the start of the interpreter state. */
	v = u64_at(buf, len, L->dbg_gil_locked);
	if (v != (uint64_t)(L->is_gil + L->gil_locked)) {
		fprintf(stderr, "%s: gil locked at interp+0x%" PRIx64 ", table has 0x%x+0x%x\n", path, v,
			(unsigned)L->is_gil, (unsigned)L->gil_locked);
		mismatches++;
	}
	v = u64_at(buf, len, L->dbg_gil_last_holder);
	if (v != (uint64_t)(L->is_gil + L->gil_last_holder)) {
		fprintf(stderr, "%s: gil holder at interp+0x%" PRIx64 ", table has 0x%x+0x%x\n", path, v,
			(unsigned)L->is_gil, (unsigned)L->gil_last_holder);
		mismatches++;
	}
	/* A GIL build has no "enabled" member: the field holds 0. A
	 * free-threaded one keeps the GIL struct, with its "enabled" flag,
	 * whose position 3.13 gives from the start of the GIL struct (unlike
	 * locked and holder): offsetof(struct _gil_runtime_state, enabled). */
	if (ft)
		assert_int_equal(u64_at(buf, len, L->dbg_gil_enabled), (uint64_t)L->gil_enabled);
	else
		assert_int_equal(u64_at(buf, len, L->dbg_gil_enabled), 0);
	compared += 3;

	check_runtime_size(e, L, micro);
	fprintf(stderr, "%s: 3.%d.%d, %d debug-offset values compared with %s\n", path, minor, micro, compared,
		L->source);
	pk_elf_close(e);
	assert_int_equal(mismatches, 0);
	/* Every position the table has for this version was exercised. */
	assert_true(compared >= 40);
}

static void check_debug_offsets(const char *path, int minor)
{
	check_debug_offsets_ft(path, minor, false);
}

/* The interpreter tests/build-ft-pythons.sh built for 3.MINOR, from its
 * STATUS-ft ("3.13t ok 3.13.15 PATH"); skips naming why without one. */
static const char *ft_python(int minor)
{
	static char path[4096];
	char line[4096 + 128], key[16], st[16], ver[32];
	FILE *f = fopen(path_in(pythons, "STATUS-ft"), "r");

	snprintf(key, sizeof(key), "3.%dt", minor);
	if (f == NULL) {
		fprintf(stderr, "skip: no %s (run tests/build-ft-pythons.sh)\n", path_in(pythons, "STATUS-ft"));
		skip();
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char k[16];

		if (sscanf(line, "%15s %15s", k, st) != 2 || strcmp(k, key) != 0)
			continue;
		fclose(f);
		if (strcmp(st, "ok") != 0 || sscanf(line, "%*s %*s %31s %4095s", ver, path) != 2) {
			fprintf(stderr, "skip: python%s was not built: %s", key, line);
			skip();
		}
		return path;
	}
	fclose(f);
	fprintf(stderr, "skip: python%s not in STATUS-ft\n", key);
	skip();
	return NULL;
}

static void test_dbg_ft_313(void **state)
{
	(void)state;
	check_debug_offsets_ft(ft_python(13), 13, true);
}

static void test_dbg_pyenv_313(void **state)
{
	(void)state;
	check_debug_offsets(path_in(pyenv_root, "versions/3.13.0/lib/libpython3.13.so.1.0"), 13);
}

static void test_dbg_sid_313(void **state)
{
	(void)state;
	check_debug_offsets(path_in(pythons, "sid-root/usr/bin/python3.13"), 13);
}

static void test_dbg_sid_314(void **state)
{
	(void)state;
	check_debug_offsets(path_in(pythons, "sid-root/usr/bin/python3.14"), 14);
}

static void test_dbg_sid_315(void **state)
{
	(void)state;
	check_debug_offsets(path_in(pythons, "sid-root/usr/bin/python3.15"), 15);
}

/* 3.7-3.12 have no debug offsets: the runtime size is what can be checked. */
static void check_pyenv_runtime(const char *version, const char *lib, int minor)
{
	const struct pk_layout *L = pk_layout_find(3, minor);
	char rel[256];
	struct pk_elf *e;
	int micro;

	snprintf(rel, sizeof(rel), "versions/%s/lib/%s", version, lib);
	e = open_or_skip(path_in(pyenv_root, rel));
	assert_non_null(L);
	assert_int_equal(sscanf(version, "3.%*d.%d", &micro), 1);
	check_runtime_size(e, L, micro);
	pk_elf_close(e);
}

static void test_runtime_size_pyenv(void **state)
{
	(void)state;
	check_pyenv_runtime("3.7.16", "libpython3.7m.so.1.0", 7);
	check_pyenv_runtime("3.8.18", "libpython3.8.so.1.0", 8);
	check_pyenv_runtime("3.9.18", "libpython3.9.so.1.0", 9);
	check_pyenv_runtime("3.10.13", "libpython3.10.so.1.0", 10);
	check_pyenv_runtime("3.11.7", "libpython3.11.so.1.0", 11);
	check_pyenv_runtime("3.12.1", "libpython3.12.so.1.0", 12);
}

static int setup(void **state)
{
	const char *env;

	(void)state;
	env = getenv("PYENV_ROOT");
	if (env != NULL && env[0] != '\0')
		snprintf(pyenv_root, sizeof(pyenv_root), "%s", env);
	else
		snprintf(pyenv_root, sizeof(pyenv_root), "%s/.pyenv", getenv("HOME") ? getenv("HOME") : "/root");
	env = getenv("PYKILL_PYTHONS");
	if (env != NULL && env[0] != '\0')
		snprintf(pythons, sizeof(pythons), "%s", env);
	else
		snprintf(pythons, sizeof(pythons), "%s/.cache/pykill-pythons",
			 getenv("HOME") ? getenv("HOME") : "/root");
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_every_entry),
		cmocka_unit_test(test_find_supported_versions),
		cmocka_unit_test(test_find_flavours),
		cmocka_unit_test(test_find_unknown),
		cmocka_unit_test(test_entries_consistent),
		cmocka_unit_test(test_dbg_pyenv_313),
		cmocka_unit_test(test_dbg_sid_313),
		cmocka_unit_test(test_dbg_sid_314),
		cmocka_unit_test(test_dbg_sid_315),
		cmocka_unit_test(test_dbg_ft_313),
		cmocka_unit_test(test_runtime_size_pyenv),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
