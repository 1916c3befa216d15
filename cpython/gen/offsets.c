/* SPDX-License-Identifier: MIT */
/* Prints one initializer of struct pk_layout (cpython/layout.h) for the
 * CPython whose headers it is compiled against.
 *
 * Built and run by generate.sh once per header set:
 *   cc -std=gnu11 -DPy_BUILD_CORE -DPy_BUILD_CORE_BUILTIN -DNDEBUG \
 *      -I<inc> -I<inc>/internal -I<repo>/cpython offsets.c
 *   ./a.out "<what the headers are>"
 *
 * Every number comes from offsetof/sizeof on the real structures, from the
 * headers' own macros and enum constants, or from exercising the headers'
 * bit-fields and inline helpers; none is typed here. Version checks only
 * choose which member holds a given fact in which release. */
#include <Python.h>

#if PY_VERSION_HEX < 0x03000000
#include "frameobject.h"
#include "longintrepr.h"
#elif PY_VERSION_HEX < 0x03070000
#include "frameobject.h"
#include "longintrepr.h"
#elif PY_VERSION_HEX < 0x03080000
#include "frameobject.h"
#include "longintrepr.h"
#include "internal/pystate.h"           /* _PyRuntimeState, ceval, gil */
#elif PY_VERSION_HEX < 0x03090000
#include "frameobject.h"
#include "longintrepr.h"
#include "pycore_pystate.h"             /* _PyRuntimeState, PyInterpreterState */
#elif PY_VERSION_HEX < 0x030B0000
#include "frameobject.h"
#include "longintrepr.h"
#include "pycore_runtime.h"
#include "pycore_interp.h"
#include "pycore_pystate.h"
#if PY_VERSION_HEX >= 0x030A0000
#include "pycore_moduleobject.h"
#endif
#else
#include "pycore_runtime.h"             /* 3.13: _Py_DebugOffsets */
#include "pycore_interp.h"
#include "pycore_pystate.h"
#include "pycore_frame.h"               /* _PyInterpreterFrame, PyFrameObject */
#include "pycore_dict.h"                /* PyDictKeysObject, PyDictValues */
#include "pycore_object.h"              /* MANAGED_DICT_OFFSET */
#include "pycore_moduleobject.h"
#if PY_VERSION_HEX >= 0x030D0000
#include "pycore_stackref.h"            /* Py_TAG_BITS (3.14+) */
#endif
#if PY_VERSION_HEX >= 0x030E0000
#include "pycore_debug_offsets.h"
#endif
#endif

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"

/* The fields of struct pk_layout after version and source, in declaration
 * order. check_fields() proves at run time that the list covers the struct
 * exactly, so a field added to layout.h cannot be silently left out. */
#define PK_FIELDS(I, U32, U64) \
	U32(free_threaded) \
	I(rt_size) I(rt_finalizing) I(rt_interpreters_head) I(rt_interpreters_main) \
	I(rt_main_thread) I(rt_gilstate_tstate_current) I(rt_ceval_gil) \
	I(rt_ceval_eval_breaker) I(rt_ceval_pending_async_exc) \
	I(is_size) I(is_next) I(is_id) I(is_tstate_head) I(is_threads_main) I(is_modules) \
	I(is_ceval_gil) I(is_gil) I(is_ceval_eval_breaker) I(is_ceval_pending_async_exc) \
	I(is_finalizing) \
	I(gil_locked) I(gil_last_holder) I(gil_cond) I(gil_cond_size) I(gil_mutex) \
	I(gil_mutex_size) I(gil_switch_cond) I(gil_switch_cond_size) I(gil_switch_mutex) \
	I(gil_switch_mutex_size) I(gil_enabled) \
	I(ts_size) I(ts_prev) I(ts_next) I(ts_interp) I(ts_frame) I(cframe_current_frame) \
	I(ts_thread_id) I(ts_native_thread_id) I(ts_async_exc) I(ts_eval_breaker) \
	I(ts_status) I(ts_state) I(ts_holds_gil) I(ts_datastack_chunk) I(ts_dict) \
	I(fr_size) I(fr_back) I(fr_code) I(fr_lasti) I(fr_instr) I(fr_owner) \
	U64(fr_code_tag_mask) I(fr_owner_cstack) I(fr_owner_interpreter) I(fr_owner_generator) \
	I(co_size) I(co_filename) I(co_name) I(co_qualname) I(co_firstlineno) I(co_lnotab) \
	I(co_linetable) I(co_code_adaptive) I(co_firsttraceable) I(co_flags) \
	I(ob_refcnt) I(ob_type) I(var_ob_size) I(tp_name) I(tp_flags) I(tp_dictoffset) \
	I(tp_basicsize) I(bytes_ob_sval) I(uni_length) I(uni_state) I(uni_ascii_size) \
	I(uni_compact_size) I(uni_data_any) I(uni_utf8) I(uni_utf8_length) I(uni27_str) \
	I(uni27_length) I(long_digits) I(long_lv_tag) I(tuple_ob_item) I(list_ob_item) \
	I(module_md_dict) I(dict_ma_used) I(dict_ma_keys) I(dict_ma_values) I(dk_size) \
	I(dk_log2_size) I(dk_log2_index_bytes) I(dk_kind) I(dk_nentries) I(dk_indices) \
	I(dk_entry_size) I(dk_unicode_entry_size) I(dict27_ma_mask) I(dict27_ma_table) \
	I(heaptype_ht_name) \
	I(managed_dict_offset) U64(tpflags_managed_dict) U64(tpflags_inline_values) \
	I(ht_cached_keys) I(dv_values) \
	I(long_shift) U32(uni_kind_mask) U32(uni_compact_mask) U32(uni_ascii_mask) \
	U32(ts_status_active_mask) U32(ts_status_holds_gil_mask) \
	I(dbg_size) I(dbg_version) I(dbg_free_threaded) \
	I(dbg_rt_size) I(dbg_rt_finalizing) I(dbg_rt_interpreters_head) \
	I(dbg_is_size) I(dbg_is_id) I(dbg_is_next) I(dbg_is_tstate_head) I(dbg_is_threads_main) \
	I(dbg_is_modules) I(dbg_is_ceval_gil) I(dbg_is_gil) \
	I(dbg_gil_enabled) I(dbg_gil_locked) I(dbg_gil_last_holder) \
	I(dbg_ts_size) I(dbg_ts_prev) I(dbg_ts_next) I(dbg_ts_interp) I(dbg_ts_frame) \
	I(dbg_ts_thread_id) I(dbg_ts_native_thread_id) I(dbg_ts_datastack_chunk) \
	I(dbg_ts_status) I(dbg_ts_holds_gil) I(dbg_ts_eval_breaker) \
	I(dbg_fr_size) I(dbg_fr_back) I(dbg_fr_code) I(dbg_fr_instr) I(dbg_fr_owner) \
	I(dbg_co_size) I(dbg_co_filename) I(dbg_co_name) I(dbg_co_qualname) \
	I(dbg_co_linetable) I(dbg_co_firstlineno) I(dbg_co_code_adaptive) \
	I(dbg_ob_type) I(dbg_tp_name) I(dbg_tp_flags) I(dbg_tp_basicsize) I(dbg_tp_dictoffset) \
	I(dbg_ht_cached_keys) I(dbg_var_ob_size) I(dbg_tuple_ob_item) I(dbg_list_ob_item) \
	I(dbg_dict_ma_keys) I(dbg_dict_ma_values) I(dbg_long_lv_tag) I(dbg_long_digits) \
	I(dbg_bytes_ob_sval) I(dbg_uni_state) I(dbg_uni_length) I(dbg_uni_ascii_size) \
	I(dbg_uni_compact_size)

enum kind { K_I32, K_U32, K_U64 };

struct field {
	const char *name;
	size_t off, size, align;
	enum kind kind;
};

#define MEMBER_SIZE(T, m) sizeof(((T *)0)->m)
#define F_I32(n) { #n, offsetof(struct pk_layout, n), MEMBER_SIZE(struct pk_layout, n), _Alignof(int32_t), K_I32 },
#define F_U32(n) { #n, offsetof(struct pk_layout, n), MEMBER_SIZE(struct pk_layout, n), _Alignof(uint32_t), K_U32 },
#define F_U64(n) { #n, offsetof(struct pk_layout, n), MEMBER_SIZE(struct pk_layout, n), _Alignof(uint64_t), K_U64 },

static const struct field fields[] = { PK_FIELDS(F_I32, F_U32, F_U64) };
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const size_t kind_size[] = { [K_I32] = 4, [K_U32] = 4, [K_U64] = 8 };

static void die(const char *what, const char *name)
{
	fprintf(stderr, "offsets (%s): %s %s\n", PY_VERSION, what, name);
	exit(1);
}

/* The list must tile struct pk_layout from `source` to the end with no
 * gap: any member missing from PK_FIELDS (or out of order) leaves one. */
static void check_fields(void)
{
	size_t end = offsetof(struct pk_layout, source) + sizeof(const char *);

	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		size_t want = (end + f->align - 1) / f->align * f->align;

		if (f->size != kind_size[f->kind])
			die("wrong type in PK_FIELDS for", f->name);
		if (f->off != want)
			die("PK_FIELDS does not match layout.h (missing or misordered member) before", f->name);
		end = f->off + f->size;
	}
	end = (end + _Alignof(struct pk_layout) - 1) / _Alignof(struct pk_layout) * _Alignof(struct pk_layout);
	if (end != sizeof(struct pk_layout))
		die("PK_FIELDS does not match layout.h: members missing after", fields[NFIELDS - 1].name);
}

static struct pk_layout L;
static const char *current;     /* name of the field being set, for errors */

static int32_t i32(long long v)
{
	if (v < INT32_MIN || v > INT32_MAX)
		die("value out of int32 range for", current);
	return (int32_t)v;
}

#define SET(f, v) (current = #f, L.f = i32((long long)(v)))
#define SETU(f, v) (current = #f, L.f = (v))
#define OFF(f, T, m) SET(f, offsetof(T, m))
#define SIZE(f, T) SET(f, sizeof(T))
#define MSIZE(f, T, m) SET(f, MEMBER_SIZE(T, m))

/* Mask of the bits a bit-field occupies in the first 4 bytes of its
 * container: set it to all ones in a zeroed copy and look. */
#define BITMASK(T, path)                                              \
	__extension__({                                               \
		T bm_obj;                                             \
		uint32_t bm_word;                                     \
		memset(&bm_obj, 0, sizeof(bm_obj));                   \
		bm_obj.path = ~bm_obj.path;                               \
		memcpy(&bm_word, &bm_obj, sizeof(bm_word));           \
		bm_word;                                              \
	})

/* Word holding a bit-field `path` of member `m` of T: mask within m. */
#define MEMBER_BITMASK(T, m, path)                                         \
	__extension__({                                                    \
		T mb_obj;                                                  \
		uint32_t mb_word;                                          \
		_Static_assert(MEMBER_SIZE(T, m) >= 4, "bit-field word"); \
		memset(&mb_obj, 0, sizeof(mb_obj));                        \
		mb_obj.m.path = ~mb_obj.m.path;                                  \
		memcpy(&mb_word, (char *)&mb_obj + offsetof(T, m), 4);     \
		mb_word;                                                   \
	})

static void init_defaults(void)
{
#define D_I32(n) L.n = PK_NOFF;
#define D_U32(n) L.n = 0;
#define D_U64(n) L.n = 0;
	PK_FIELDS(D_I32, D_U32, D_U64)
}

static void fill_runtime(void)
{
#if PY_VERSION_HEX >= 0x03070000
	SIZE(rt_size, _PyRuntimeState);
	OFF(rt_interpreters_head, _PyRuntimeState, interpreters.head);
	OFF(rt_interpreters_main, _PyRuntimeState, interpreters.main);
#if PY_VERSION_HEX >= 0x03090000
	OFF(rt_finalizing, _PyRuntimeState, _finalizing);
#else
	OFF(rt_finalizing, _PyRuntimeState, finalizing);
#endif
#if PY_VERSION_HEX >= 0x03080000
	OFF(rt_main_thread, _PyRuntimeState, main_thread);
#else
	/* 3.7 keeps the main thread's ident in the pending-calls state. */
	OFF(rt_main_thread, _PyRuntimeState, ceval.pending.main_thread);
#endif
#if PY_VERSION_HEX < 0x030C0000
	OFF(rt_gilstate_tstate_current, _PyRuntimeState, gilstate.tstate_current);
	OFF(rt_ceval_gil, _PyRuntimeState, ceval.gil);
#endif
#if PY_VERSION_HEX < 0x03090000
	OFF(rt_ceval_eval_breaker, _PyRuntimeState, ceval.eval_breaker);
	OFF(rt_ceval_pending_async_exc, _PyRuntimeState, ceval.pending.async_exc);
#endif
#endif
}

static void fill_interp(void)
{
	SIZE(is_size, PyInterpreterState);
	OFF(is_next, PyInterpreterState, next);
#if PY_VERSION_HEX >= 0x03070000
	OFF(is_id, PyInterpreterState, id);
#endif
#if PY_VERSION_HEX >= 0x030B0000
	OFF(is_tstate_head, PyInterpreterState, threads.head);
#else
	OFF(is_tstate_head, PyInterpreterState, tstate_head);
#endif
#if PY_VERSION_HEX >= 0x030D0000
	OFF(is_threads_main, PyInterpreterState, threads.main);
#elif PY_VERSION_HEX >= 0x030C0000
	OFF(is_threads_main, PyInterpreterState, threads_main);
#endif
#if PY_VERSION_HEX >= 0x030C0000
	OFF(is_modules, PyInterpreterState, imports.modules);
	OFF(is_ceval_gil, PyInterpreterState, ceval.gil);
	OFF(is_gil, PyInterpreterState, _gil);
	OFF(is_finalizing, PyInterpreterState, _finalizing);
#else
	OFF(is_modules, PyInterpreterState, modules);
#endif
#if PY_VERSION_HEX >= 0x03090000 && PY_VERSION_HEX < 0x030D0000
	OFF(is_ceval_eval_breaker, PyInterpreterState, ceval.eval_breaker);
	OFF(is_ceval_pending_async_exc, PyInterpreterState, ceval.pending.async_exc);
#endif
}

static void fill_gil(void)
{
#if PY_VERSION_HEX >= 0x03070000
	typedef struct _gil_runtime_state G;
	OFF(gil_locked, G, locked);
	OFF(gil_last_holder, G, last_holder);
	OFF(gil_cond, G, cond);
	MSIZE(gil_cond_size, G, cond);
	OFF(gil_mutex, G, mutex);
	MSIZE(gil_mutex_size, G, mutex);
#ifdef FORCE_SWITCHING
	OFF(gil_switch_cond, G, switch_cond);
	MSIZE(gil_switch_cond_size, G, switch_cond);
	OFF(gil_switch_mutex, G, switch_mutex);
	MSIZE(gil_switch_mutex_size, G, switch_mutex);
#endif
#if PY_VERSION_HEX >= 0x030D0000 && defined(Py_GIL_DISABLED)
	OFF(gil_enabled, G, enabled);
#endif
#endif
}

static void fill_tstate(void)
{
	typedef PyThreadState T;
	SIZE(ts_size, T);
#if PY_VERSION_HEX >= 0x03000000
	OFF(ts_prev, T, prev);
#endif
	OFF(ts_next, T, next);
	OFF(ts_interp, T, interp);
#if PY_VERSION_HEX >= 0x030D0000
	OFF(ts_frame, T, current_frame);
#elif PY_VERSION_HEX >= 0x030B0000
	OFF(ts_frame, T, cframe);
	OFF(cframe_current_frame, _PyCFrame, current_frame);
#else
	OFF(ts_frame, T, frame);
#endif
	OFF(ts_thread_id, T, thread_id);
#if PY_VERSION_HEX >= 0x030B0000
	OFF(ts_native_thread_id, T, native_thread_id);
	OFF(ts_datastack_chunk, T, datastack_chunk);
#endif
	OFF(ts_async_exc, T, async_exc);
#if PY_VERSION_HEX >= 0x030C0000
	OFF(ts_status, T, _status);
	SETU(ts_status_active_mask, MEMBER_BITMASK(T, _status, active));
#endif
#if PY_VERSION_HEX >= 0x030D0000
	OFF(ts_eval_breaker, T, eval_breaker);
	OFF(ts_state, T, state);
#endif
#if PY_VERSION_HEX >= 0x030E0000
	OFF(ts_holds_gil, T, holds_gil);
#elif PY_VERSION_HEX >= 0x030D0000
	SETU(ts_status_holds_gil_mask, MEMBER_BITMASK(T, _status, holds_gil));
#endif
	OFF(ts_dict, T, dict);
}

/* 3.14+ f_executable is a _PyStackRef whose low Py_TAG_BITS are tags. */
#if defined(Py_TAG_BITS)
#define EXECUTABLE_TAG_BITS(fr) _Generic((fr)->f_executable, _PyStackRef: (uint64_t)(Py_TAG_BITS), default: (uint64_t)0)
#else
#define EXECUTABLE_TAG_BITS(fr) ((uint64_t)0)
#endif

static void fill_frame(void)
{
#if PY_VERSION_HEX >= 0x030B0000
	typedef _PyInterpreterFrame F;
	SIZE(fr_size, F);
	OFF(fr_back, F, previous);
	OFF(fr_owner, F, owner);
	SET(fr_owner_generator, FRAME_OWNED_BY_GENERATOR);
#if PY_VERSION_HEX >= 0x030D0000
	OFF(fr_code, F, f_executable);
	OFF(fr_instr, F, instr_ptr);
	SETU(fr_code_tag_mask, EXECUTABLE_TAG_BITS((F *)0));
#else
	OFF(fr_code, F, f_code);
	OFF(fr_instr, F, prev_instr);
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030F0000
	SET(fr_owner_cstack, FRAME_OWNED_BY_CSTACK);
#endif
#if PY_VERSION_HEX >= 0x030E0000
	SET(fr_owner_interpreter, FRAME_OWNED_BY_INTERPRETER);
#endif
#else
	typedef PyFrameObject F;
	SIZE(fr_size, F);
	OFF(fr_back, F, f_back);
	OFF(fr_code, F, f_code);
	OFF(fr_lasti, F, f_lasti);
#endif
}

static void fill_code(void)
{
	typedef PyCodeObject C;
	SIZE(co_size, C);
	OFF(co_filename, C, co_filename);
	OFF(co_name, C, co_name);
	OFF(co_firstlineno, C, co_firstlineno);
	OFF(co_flags, C, co_flags);
#if PY_VERSION_HEX >= 0x030A0000
	OFF(co_linetable, C, co_linetable);
#else
	OFF(co_lnotab, C, co_lnotab);
#endif
#if PY_VERSION_HEX >= 0x030B0000
	OFF(co_qualname, C, co_qualname);
	OFF(co_code_adaptive, C, co_code_adaptive);
	OFF(co_firsttraceable, C, _co_firsttraceable);
#endif
}

static void fill_objects(void)
{
#ifdef Py_GIL_DISABLED
	/* PEP 703: ob_tid, ob_mutex, ob_gc_bits, ob_ref_local, ob_ref_shared
	 * before ob_type; no single ob_refcnt (pykill writes it only before
	 * 3.12, where no build is free-threaded). */
	SETU(free_threaded, 1);
#else
	OFF(ob_refcnt, PyObject, ob_refcnt);
#endif
	OFF(ob_type, PyObject, ob_type);
	OFF(var_ob_size, PyVarObject, ob_size);
	OFF(tp_name, PyTypeObject, tp_name);
	OFF(tp_flags, PyTypeObject, tp_flags);
	OFF(tp_dictoffset, PyTypeObject, tp_dictoffset);
	OFF(tp_basicsize, PyTypeObject, tp_basicsize);
	OFF(heaptype_ht_name, PyHeapTypeObject, ht_name);
	OFF(tuple_ob_item, PyTupleObject, ob_item);
	OFF(list_ob_item, PyListObject, ob_item);
	OFF(dict_ma_used, PyDictObject, ma_used);
	SET(long_shift, PyLong_SHIFT);
#if PY_VERSION_HEX >= 0x030C0000
	OFF(long_digits, PyLongObject, long_value.ob_digit);
	OFF(long_lv_tag, PyLongObject, long_value.lv_tag);
#else
	OFF(long_digits, PyLongObject, ob_digit);
	/* layout.h: before 3.12 the sign and size live in ob_size. */
#if PY_VERSION_HEX >= 0x03000000
	OFF(long_lv_tag, PyLongObject, ob_base.ob_size);
#else
	OFF(long_lv_tag, PyLongObject, ob_size);   /* PyObject_VAR_HEAD spelled out */
#endif
#endif

#if PY_VERSION_HEX < 0x03000000
	OFF(bytes_ob_sval, PyStringObject, ob_sval);
	OFF(uni27_str, PyUnicodeObject, str);
	OFF(uni27_length, PyUnicodeObject, length);
	OFF(dict27_ma_mask, PyDictObject, ma_mask);
	OFF(dict27_ma_table, PyDictObject, ma_table);
	/* The element of ma_table. */
	SIZE(dk_entry_size, PyDictEntry);
#else
	OFF(bytes_ob_sval, PyBytesObject, ob_sval);
	OFF(uni_length, PyASCIIObject, length);
	OFF(uni_state, PyASCIIObject, state);
	SIZE(uni_ascii_size, PyASCIIObject);
	SIZE(uni_compact_size, PyCompactUnicodeObject);
	OFF(uni_data_any, PyUnicodeObject, data.any);
	OFF(uni_utf8, PyCompactUnicodeObject, utf8);
	OFF(uni_utf8_length, PyCompactUnicodeObject, utf8_length);
	SETU(uni_kind_mask, MEMBER_BITMASK(PyASCIIObject, state, kind));
	SETU(uni_compact_mask, MEMBER_BITMASK(PyASCIIObject, state, compact));
	SETU(uni_ascii_mask, MEMBER_BITMASK(PyASCIIObject, state, ascii));
	OFF(dict_ma_keys, PyDictObject, ma_keys);
	OFF(dict_ma_values, PyDictObject, ma_values);
	OFF(ht_cached_keys, PyHeapTypeObject, ht_cached_keys);
#endif
#if PY_VERSION_HEX >= 0x030A0000
	OFF(module_md_dict, PyModuleObject, md_dict);
#endif

#if PY_VERSION_HEX >= 0x030B0000
	typedef PyDictKeysObject K;
	OFF(dk_log2_size, K, dk_log2_size);
	OFF(dk_log2_index_bytes, K, dk_log2_index_bytes);
	OFF(dk_kind, K, dk_kind);
	OFF(dk_nentries, K, dk_nentries);
	OFF(dk_indices, K, dk_indices);
	SIZE(dk_entry_size, PyDictKeyEntry);
	SIZE(dk_unicode_entry_size, PyDictUnicodeEntry);
	OFF(dv_values, PyDictValues, values);

	SETU(tpflags_managed_dict, Py_TPFLAGS_MANAGED_DICT);
#ifdef Py_TPFLAGS_INLINE_VALUES
	SETU(tpflags_inline_values, Py_TPFLAGS_INLINE_VALUES);
#endif
#ifdef MANAGED_DICT_OFFSET
	SET(managed_dict_offset, MANAGED_DICT_OFFSET);
#else
	{
		/* 3.12 has no macro: ask the header's own accessor where
		 * the dict-or-values word of an object at obj sits. */
		_Alignas(16) char buf[128];
		PyObject *obj = (PyObject *)(buf + 64);
		SET(managed_dict_offset, (char *)_PyObject_DictOrValuesPointer(obj) - (char *)obj);
	}
#endif
#endif
}

static void fill_debug_offsets(void)
{
#if PY_VERSION_HEX >= 0x030D0000
	typedef _Py_DebugOffsets D;
	SIZE(dbg_size, D);
	OFF(dbg_version, D, version);
	OFF(dbg_free_threaded, D, free_threaded);
	OFF(dbg_rt_size, D, runtime_state.size);
	OFF(dbg_rt_finalizing, D, runtime_state.finalizing);
	OFF(dbg_rt_interpreters_head, D, runtime_state.interpreters_head);
	OFF(dbg_is_size, D, interpreter_state.size);
	OFF(dbg_is_id, D, interpreter_state.id);
	OFF(dbg_is_next, D, interpreter_state.next);
	OFF(dbg_is_tstate_head, D, interpreter_state.threads_head);
	OFF(dbg_is_modules, D, interpreter_state.imports_modules);
	OFF(dbg_is_ceval_gil, D, interpreter_state.ceval_gil);
	OFF(dbg_is_gil, D, interpreter_state.gil_runtime_state);
	OFF(dbg_gil_enabled, D, interpreter_state.gil_runtime_state_enabled);
	OFF(dbg_gil_locked, D, interpreter_state.gil_runtime_state_locked);
	OFF(dbg_gil_last_holder, D, interpreter_state.gil_runtime_state_holder);
	OFF(dbg_ts_size, D, thread_state.size);
	OFF(dbg_ts_prev, D, thread_state.prev);
	OFF(dbg_ts_next, D, thread_state.next);
	OFF(dbg_ts_interp, D, thread_state.interp);
	OFF(dbg_ts_frame, D, thread_state.current_frame);
	OFF(dbg_ts_thread_id, D, thread_state.thread_id);
	OFF(dbg_ts_native_thread_id, D, thread_state.native_thread_id);
	OFF(dbg_ts_datastack_chunk, D, thread_state.datastack_chunk);
	OFF(dbg_ts_status, D, thread_state.status);
	OFF(dbg_fr_size, D, interpreter_frame.size);
	OFF(dbg_fr_back, D, interpreter_frame.previous);
	OFF(dbg_fr_code, D, interpreter_frame.executable);
	OFF(dbg_fr_instr, D, interpreter_frame.instr_ptr);
	OFF(dbg_fr_owner, D, interpreter_frame.owner);
	OFF(dbg_co_size, D, code_object.size);
	OFF(dbg_co_filename, D, code_object.filename);
	OFF(dbg_co_name, D, code_object.name);
	OFF(dbg_co_qualname, D, code_object.qualname);
	OFF(dbg_co_linetable, D, code_object.linetable);
	OFF(dbg_co_firstlineno, D, code_object.firstlineno);
	OFF(dbg_co_code_adaptive, D, code_object.co_code_adaptive);
	OFF(dbg_ob_type, D, pyobject.ob_type);
	OFF(dbg_tp_name, D, type_object.tp_name);
	OFF(dbg_tp_flags, D, type_object.tp_flags);
	OFF(dbg_var_ob_size, D, bytes_object.ob_size);
	OFF(dbg_tuple_ob_item, D, tuple_object.ob_item);
	OFF(dbg_list_ob_item, D, list_object.ob_item);
	OFF(dbg_dict_ma_keys, D, dict_object.ma_keys);
	OFF(dbg_dict_ma_values, D, dict_object.ma_values);
	OFF(dbg_long_lv_tag, D, long_object.lv_tag);
	OFF(dbg_long_digits, D, long_object.ob_digit);
	OFF(dbg_bytes_ob_sval, D, bytes_object.ob_sval);
	OFF(dbg_uni_state, D, unicode_object.state);
	OFF(dbg_uni_length, D, unicode_object.length);
	OFF(dbg_uni_ascii_size, D, unicode_object.asciiobject_size);
#if PY_VERSION_HEX >= 0x030E0000
	OFF(dbg_is_threads_main, D, interpreter_state.threads_main);
	OFF(dbg_ts_eval_breaker, D, debugger_support.eval_breaker);
#endif
#if PY_VERSION_HEX >= 0x030F0000
	OFF(dbg_ts_holds_gil, D, thread_state.holds_gil);
	OFF(dbg_tp_basicsize, D, type_object.tp_basicsize);
	OFF(dbg_tp_dictoffset, D, type_object.tp_dictoffset);
	OFF(dbg_ht_cached_keys, D, heap_type_object.ht_cached_keys);
	OFF(dbg_uni_compact_size, D, unicode_object.compactunicodeobject_size);
#endif
#endif
}

static void print_c_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void print_entry(const char *what)
{
	printf("\t{\n\t\t.version = 0x%02x%02x,\n", PY_MAJOR_VERSION, PY_MINOR_VERSION);
	char source[256];

	if ((size_t)snprintf(source, sizeof(source), "%s (%s)", PY_VERSION, what) >= sizeof(source))
		die("description too long:", what);
	printf("\t\t.source = ");
	print_c_string(source);
	printf(",\n");
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		const char *p = (const char *)&L + f->off;
		int32_t v32;
		uint32_t u32;
		uint64_t u64;

		printf("\t\t.%s = ", f->name);
		switch (f->kind) {
		case K_I32:
			memcpy(&v32, p, sizeof(v32));
			if (v32 == PK_NOFF)
				printf("PK_NOFF");
			else if (v32 < 0)
				printf("-0x%" PRIx32, (uint32_t)-(int64_t)v32);
			else
				printf("0x%" PRIx32, (uint32_t)v32);
			break;
		case K_U32:
			memcpy(&u32, p, sizeof(u32));
			printf("0x%" PRIx32, u32);
			break;
		case K_U64:
			memcpy(&u64, p, sizeof(u64));
			printf("0x%" PRIx64, u64);
			break;
		}
		printf(",\n");
	}
	printf("\t},\n");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s \"<description of the header set>\"\n", argv[0]);
		return 2;
	}
	check_fields();
	init_defaults();
	fill_runtime();
	fill_interp();
	fill_gil();
	fill_tstate();
	fill_frame();
	fill_code();
	fill_objects();
	fill_debug_offsets();
	print_entry(argv[1]);
	return ferror(stdout) ? 1 : 0;
}
