/* SPDX-License-Identifier: MIT */
/* Per-minor-version memory layout of the CPython structures pykill reads.
 *
 * Private to cpython/. The numbers are generated from real CPython headers by
 * cpython/gen/ (see cpython/gen/README.md) into cpython/layouts_gen.c, never
 * typed by hand. On 3.13+ the fields that _Py_DebugOffsets covers are
 * replaced at run time by the values read from the target.
 *
 * All offsets are in bytes from the start of the named structure; PK_NOFF
 * means the field does not exist in that version. Sizes likewise. */
#ifndef PK_CPYTHON_LAYOUT_H
#define PK_CPYTHON_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PK_NOFF (-1)

struct pk_layout {
	uint16_t version;   /* 0x0207, 0x0306 ... 0x030f (major << 8 | minor) */
	const char *source; /* what it was generated from, e.g. "3.12.1 (pyenv headers)" */
	uint32_t free_threaded;          /* 1: generated with Py_GIL_DISABLED (a "t" build, PEP 703: larger
					  * object header, no GIL), 0: a default build */

	/* _PyRuntimeState (3.7+), from &_PyRuntime */
	int32_t rt_size;
	int32_t rt_finalizing;           /* PyThreadState* _finalizing */
	int32_t rt_interpreters_head;    /* PyInterpreterState* interpreters.head */
	int32_t rt_interpreters_main;    /* PyInterpreterState* interpreters.main */
	int32_t rt_main_thread;          /* unsigned long main_thread (ident) */
	int32_t rt_gilstate_tstate_current; /* 3.7-3.11: _Py_atomic_address gilstate.tstate_current */
	int32_t rt_ceval_gil;            /* 3.7-3.11: struct _gil_runtime_state ceval.gil (embedded) */
	int32_t rt_ceval_eval_breaker;   /* 3.7-3.8: _Py_atomic_int ceval.eval_breaker */
	int32_t rt_ceval_pending_async_exc; /* 3.7-3.8: int ceval.pending.async_exc */

	/* PyInterpreterState */
	int32_t is_size;
	int32_t is_next;
	int32_t is_id;                   /* int64_t id (3.7+) */
	int32_t is_tstate_head;          /* tstate_head (<=3.10) / threads.head */
	int32_t is_threads_main;         /* threads.main (3.13+) */
	int32_t is_modules;              /* PyObject* modules / imports.modules (dict) */
	int32_t is_ceval_gil;            /* 3.12+: struct _gil_runtime_state *ceval.gil */
	int32_t is_gil;                  /* 3.12+: the embedded struct _gil_runtime_state _gil */
	int32_t is_ceval_eval_breaker;   /* 3.9-3.12: ceval.eval_breaker */
	int32_t is_ceval_pending_async_exc; /* 3.9-3.12: ceval.pending.async_exc */
	int32_t is_finalizing;           /* 3.13+: _finalizing (PyThreadState*) */

	/* struct _gil_runtime_state (3.7+; 3.6 uses statics found through symbols) */
	int32_t gil_locked;              /* int (atomic) */
	int32_t gil_last_holder;         /* PyThreadState* (atomic address) */
	int32_t gil_cond, gil_cond_size; /* PyCOND_T cond: a waiter for the GIL sleeps on it */
	int32_t gil_mutex, gil_mutex_size;
	int32_t gil_switch_cond, gil_switch_cond_size;   /* FORCE_SWITCHING: the dropper waits here */
	int32_t gil_switch_mutex, gil_switch_mutex_size;
	int32_t gil_enabled;             /* free-threaded builds: int enabled */

	/* PyThreadState */
	int32_t ts_size;
	int32_t ts_prev;
	int32_t ts_next;
	int32_t ts_interp;
	int32_t ts_frame;                /* <=3.10 PyFrameObject* frame; 3.11-3.12 _PyCFrame* cframe; 3.13+ _PyInterpreterFrame* current_frame */
	int32_t cframe_current_frame;    /* 3.11-3.12: _PyCFrame.current_frame */
	int32_t ts_thread_id;            /* unsigned long thread_id (the Python ident) */
	int32_t ts_native_thread_id;     /* 3.11+ unsigned long native_thread_id */
	int32_t ts_async_exc;            /* PyObject* async_exc */
	int32_t ts_eval_breaker;         /* 3.13+ uintptr_t eval_breaker */
	int32_t ts_status;               /* 3.12: the _status bit-field word (4 bytes) */
	int32_t ts_state;                /* 3.13+: int state (DETACHED 0, ATTACHED 1, SUSPENDED 2) */
	int32_t ts_holds_gil;            /* 3.14+: int holds_gil */
	int32_t ts_datastack_chunk;      /* 3.11+ _PyStackChunk* datastack_chunk */
	int32_t ts_dict;                 /* PyObject* dict */

	/* Frames. <=3.10: PyFrameObject. 3.11+: _PyInterpreterFrame. */
	int32_t fr_size;
	int32_t fr_back;                 /* f_back / previous */
	int32_t fr_code;                 /* f_code / f_executable (3.14: tagged _PyStackRef, clear low bits with fr_code_tag_mask) */
	int32_t fr_lasti;                /* <=3.10: int f_lasti (bytes <=3.9, code units in 3.10) */
	int32_t fr_instr;                /* 3.11-3.12 prev_instr, 3.13+ instr_ptr (_Py_CODEUNIT*) */
	int32_t fr_owner;                /* 3.11+ char owner */
	uint64_t fr_code_tag_mask;       /* bits of fr_code that are tags (3.14: 0x3), else 0 */
	int32_t fr_owner_cstack;         /* owner value of C-stack shim frames (3.12+), -1 if none */
	int32_t fr_owner_interpreter;    /* 3.14+: FRAME_OWNED_BY_INTERPRETER, -1 if none */
	int32_t fr_owner_generator;      /* 3.11+: FRAME_OWNED_BY_GENERATOR */

	/* PyCodeObject */
	int32_t co_size;                 /* sizeof(PyCodeObject) */
	int32_t co_filename;
	int32_t co_name;
	int32_t co_qualname;             /* 3.11+ */
	int32_t co_firstlineno;          /* int */
	int32_t co_lnotab;               /* <=3.9 bytes co_lnotab */
	int32_t co_linetable;            /* 3.10+ bytes co_linetable */
	int32_t co_code_adaptive;        /* 3.11+ offset of the inline bytecode */
	int32_t co_firsttraceable;       /* 3.11+ int _co_firsttraceable */
	int32_t co_flags;                /* int co_flags */

	/* Objects */
	int32_t ob_refcnt;
	int32_t ob_type;
	int32_t var_ob_size;             /* PyVarObject.ob_size */
	int32_t tp_name;                 /* const char* */
	int32_t tp_flags;                /* unsigned long */
	int32_t tp_dictoffset;           /* Py_ssize_t */
	int32_t tp_basicsize;
	int32_t bytes_ob_sval;           /* PyBytesObject (2.7: PyStringObject) char ob_sval[] */
	int32_t uni_length;              /* PyASCIIObject.length */
	int32_t uni_state;               /* PyASCIIObject.state (4-byte bit-field word) */
	int32_t uni_ascii_size;          /* sizeof(PyASCIIObject): data of compact ASCII strings */
	int32_t uni_compact_size;        /* sizeof(PyCompactUnicodeObject): data of other compact strings */
	int32_t uni_data_any;            /* PyUnicodeObject.data.any (legacy strings) */
	int32_t uni_utf8;                /* PyCompactUnicodeObject.utf8 */
	int32_t uni_utf8_length;
	int32_t uni27_str;               /* 2.7 PyUnicodeObject Py_UNICODE *str */
	int32_t uni27_length;
	int32_t long_digits;             /* PyLongObject ob_digit */
	int32_t long_lv_tag;             /* 3.12+ long_value.lv_tag (else ob_size) */
	int32_t tuple_ob_item;
	int32_t list_ob_item;
	int32_t module_md_dict;
	int32_t dict_ma_used;
	int32_t dict_ma_keys;
	int32_t dict_ma_values;
	int32_t dk_size;                 /* <=3.10 Py_ssize_t dk_size */
	int32_t dk_log2_size;            /* 3.11+ uint8_t dk_log2_size */
	int32_t dk_log2_index_bytes;     /* 3.11+ uint8_t */
	int32_t dk_kind;                 /* 3.11+ uint8_t dk_kind (0 general, 1 unicode, 2 split) */
	int32_t dk_nentries;
	int32_t dk_indices;              /* offset of the index table in PyDictKeysObject */
	int32_t dk_entry_size;           /* sizeof(PyDictKeyEntry) */
	int32_t dk_unicode_entry_size;   /* 3.11+ sizeof(PyDictUnicodeEntry) */
	int32_t dict27_ma_mask;          /* 2.7 PyDictObject ma_mask */
	int32_t dict27_ma_table;         /* 2.7 ma_table */
	int32_t heaptype_ht_name;        /* PyHeapTypeObject.ht_name (unused when 0) */

	/* Thread names need the instance dict of threading.Thread objects; 3.11+
	 * keep it "managed" before the object (see cpython/names.c). */
	int32_t managed_dict_offset;     /* 3.11: -3*8 .. 3.13: -3*8 (dict or values pointer), PK_NOFF before */
	uint64_t tpflags_managed_dict;   /* Py_TPFLAGS_MANAGED_DICT or 0 */
	uint64_t tpflags_inline_values;  /* 3.13+ Py_TPFLAGS_INLINE_VALUES or 0 */
	int32_t ht_cached_keys;          /* 3.11+ PyHeapTypeObject.ht_cached_keys (keys of split instance dicts) */
	int32_t dv_values;               /* 3.11+ offsetof(PyDictValues, values) */

	/* Bit-field facts, measured by setting each bit-field in a zeroed struct
	 * (x86_64 SysV bit-field allocation, as CPython is built). 0 = absent. */
	int32_t long_shift;              /* PyLong_SHIFT: value bits per digit */
	uint32_t uni_kind_mask;          /* 3.x: PyASCIIObject.state word: kind (1/2/4 after >> ctz) */
	uint32_t uni_compact_mask;       /* 3.x: state.compact */
	uint32_t uni_ascii_mask;         /* 3.x: state.ascii */
	uint32_t ts_status_active_mask;  /* 3.12+: _status.active (the tstate is bound and current) */
	uint32_t ts_status_holds_gil_mask; /* 3.13 only: _status.holds_gil (3.14+: ts_holds_gil) */

	/* Positions inside the target's _Py_DebugOffsets (3.13+, PK_NOFF before
	 * and for fields a version does not have). _Py_DebugOffsets is the first
	 * member of _PyRuntime; its layout differs between 3.13, 3.14 and 3.15
	 * and is generated from each version's own header. dbg_<field> is the
	 * byte position of the uint64 that gives <field> of this struct, so the
	 * run-time reader does: if (dbg_F != PK_NOFF) F = u64 at (dbg + dbg_F).
	 * Exceptions, marked below: dbg_gil_* give offsets from the start of
	 * PyInterpreterState (is_gil + gil_*), not from the GIL struct, and
	 * dbg_gil_enabled holds 0 on default (GIL) builds. */
	int32_t dbg_size;                /* sizeof(_Py_DebugOffsets): bytes to read */
	int32_t dbg_version;             /* uint64 PY_VERSION_HEX (after the 8-byte cookie "xdebugpy") */
	int32_t dbg_free_threaded;       /* uint64 1 on free-threaded builds */
	int32_t dbg_rt_size;
	int32_t dbg_rt_finalizing;
	int32_t dbg_rt_interpreters_head;
	int32_t dbg_is_size;
	int32_t dbg_is_id;
	int32_t dbg_is_next;
	int32_t dbg_is_tstate_head;      /* interpreter_state.threads_head */
	int32_t dbg_is_threads_main;     /* 3.14+ */
	int32_t dbg_is_modules;          /* interpreter_state.imports_modules */
	int32_t dbg_is_ceval_gil;
	int32_t dbg_is_gil;              /* interpreter_state.gil_runtime_state */
	int32_t dbg_gil_enabled;         /* value: 0 on GIL builds; 3.13t: offset in the GIL struct */
	int32_t dbg_gil_locked;          /* value: offset in PyInterpreterState */
	int32_t dbg_gil_last_holder;     /* value: offset in PyInterpreterState */
	int32_t dbg_ts_size;
	int32_t dbg_ts_prev;
	int32_t dbg_ts_next;
	int32_t dbg_ts_interp;
	int32_t dbg_ts_frame;            /* thread_state.current_frame */
	int32_t dbg_ts_thread_id;
	int32_t dbg_ts_native_thread_id;
	int32_t dbg_ts_datastack_chunk;
	int32_t dbg_ts_status;
	int32_t dbg_ts_holds_gil;        /* 3.15+ */
	int32_t dbg_ts_eval_breaker;     /* 3.14+ debugger_support.eval_breaker */
	int32_t dbg_fr_size;
	int32_t dbg_fr_back;             /* interpreter_frame.previous */
	int32_t dbg_fr_code;             /* interpreter_frame.executable */
	int32_t dbg_fr_instr;            /* interpreter_frame.instr_ptr */
	int32_t dbg_fr_owner;
	int32_t dbg_co_size;
	int32_t dbg_co_filename;
	int32_t dbg_co_name;
	int32_t dbg_co_qualname;
	int32_t dbg_co_linetable;
	int32_t dbg_co_firstlineno;
	int32_t dbg_co_code_adaptive;
	int32_t dbg_ob_type;
	int32_t dbg_tp_name;
	int32_t dbg_tp_flags;
	int32_t dbg_tp_basicsize;        /* 3.15+ */
	int32_t dbg_tp_dictoffset;       /* 3.15+ */
	int32_t dbg_ht_cached_keys;      /* 3.15+ */
	int32_t dbg_var_ob_size;         /* bytes_object.ob_size */
	int32_t dbg_tuple_ob_item;
	int32_t dbg_list_ob_item;
	int32_t dbg_dict_ma_keys;
	int32_t dbg_dict_ma_values;
	int32_t dbg_long_lv_tag;
	int32_t dbg_long_digits;
	int32_t dbg_bytes_ob_sval;
	int32_t dbg_uni_state;
	int32_t dbg_uni_length;
	int32_t dbg_uni_ascii_size;      /* unicode_object.asciiobject_size */
	int32_t dbg_uni_compact_size;    /* 3.15+ compactunicodeobject_size */
};

/* The generated table, newest last. */
extern const struct pk_layout pk_layouts[];
extern const size_t pk_layouts_count;

/* Table entry for major.minor (a default build), or NULL. */
const struct pk_layout *pk_layout_find(int major, int minor);
/* Table entry for major.minor of a free-threaded build (ft) or a default
 * one, or NULL. */
const struct pk_layout *pk_layout_find_ft(int major, int minor, bool ft);
/* The newest entry of that flavour, or NULL. */
const struct pk_layout *pk_layout_newest(bool ft);

/* ---------------------------------------------------------------------
 * Checking the table against the binary (layout.c).
 *
 * The table is per minor version; a build of another patch release (or a
 * distribution's patched one) may place a field elsewhere. At open time the
 * fields below are compared with what the interpreter binary itself says:
 * the offsets its small exported accessors use (decoded with capstone) and
 * the size of its _PyRuntime symbol. Each is a bit of a mask. */
enum pk_lf {
	PK_LF_RT_SIZE,
	PK_LF_RT_INTERPRETERS_HEAD,
	PK_LF_RT_INTERPRETERS_MAIN,
	PK_LF_RT_TSTATE_CURRENT,
	PK_LF_RT_FINALIZING,
	PK_LF_RT_GIL_LOCKED,       /* rt_ceval_gil + gil_locked (3.7-3.11) */
	PK_LF_RT_EVAL_BREAKER,     /* 3.7-3.8 */
	PK_LF_RT_PENDING_ASYNC_EXC, /* 3.7-3.8 */
	PK_LF_IS_NEXT,
	PK_LF_IS_ID,
	PK_LF_IS_TSTATE_HEAD,
	PK_LF_IS_EVAL_BREAKER,     /* 3.9-3.12 */
	PK_LF_IS_PENDING_ASYNC_EXC, /* 3.9-3.12 */
	PK_LF_TS_NEXT,
	PK_LF_TS_INTERP,
	PK_LF_TS_THREAD_ID,
	PK_LF_TS_ASYNC_EXC,
	PK_LF_TS_EVAL_BREAKER,     /* 3.13+ */
	PK_LF_OB_REFCNT,
	PK_LF_COUNT
};

/* Member of struct pk_layout and name of each PK_LF_* field. */
struct pk_lf_info {
	size_t member; /* offsetof(struct pk_layout, ...) */
	const char *name;
};
extern const struct pk_lf_info pk_lf_info[PK_LF_COUNT];

/* PK_LF_* index of a struct pk_layout member, or -1. */
int pk_lf_of_member(size_t member);

struct pk_layout_check {
	bool table_exact;  /* the table entry was generated for this minor version */
	uint64_t dbgoff;   /* fields taken from the target's _Py_DebugOffsets (3.13+) */
	uint64_t verified; /* fields the binary confirmed (or, after adapting, gave) */
	uint64_t adapted;  /* fields where the table was wrong and the binary's value is used */
	char mismatch[200]; /* why the check refused, "" otherwise */
};

struct pk_elf;
typedef int (*pk_code_got_fn)(void *ctx, uint64_t slot, uint64_t *target);

/* Compare L (the table entry, already patched from _Py_DebugOffsets on
 * 3.13+) with what elf says. runtime is the link-time address of
 * _PyRuntime (0 for 2.7/3.6). Fields the binary does not tell are left
 * alone. A field given unambiguously by a whole function (one that only
 * loads and returns it, or only stores the two eval-breaker flags) or by a
 * symbol size replaces a wrong table value (bit in chk->adapted); a
 * disagreement found by pattern in a larger function, or with a value
 * _Py_DebugOffsets gave, is refused: -ENOTSUP with
 * pk_error() "layout of Python VERSION in PATH does not match pykill's table:
 * FIELD is at N, table says M". chk->table_exact and chk->dbgoff are the
 * caller's to fill. */
int pk_layout_check_elf(struct pk_layout *L, const struct pk_elf *elf, uint64_t runtime, int major, int minor,
			const char *version, struct pk_layout_check *chk);
/* The same, with got resolving GOT slots (see pk_elf_code_scan). */
int pk_layout_check_elf_got(struct pk_layout *L, const struct pk_elf *elf, uint64_t runtime, int major, int minor,
			    const char *version, pk_code_got_fn got, void *got_ctx, struct pk_layout_check *chk);

/* The fields the write path of `raise` stores through or walks (see
 * cpython/raise.c write_path and signal_async_exc), for this layout:
 * interpreter list head (3.7+; 2.7/3.6 find it through a symbol), is_next,
 * is_tstate_head, ts_next, ts_thread_id, ts_async_exc, ob_refcnt (< 3.12,
 * where exception types are not immortal) and the eval-breaker signal
 * (rt_* 3.7-3.8, is_* 3.9-3.12, ts_eval_breaker 3.13+; 2.7 and 3.6 use
 * symbols: _Py_Ticker, the statics of _PyEval_SignalAsyncExc). */
uint64_t pk_layout_write_fields(const struct pk_layout *L, int major, int minor);

/* Exact enough to write through: the table is for this very minor version
 * and nothing had to be adapted, or every write-path field was given by
 * _Py_DebugOffsets or confirmed by the binary. */
bool pk_layout_check_exact(const struct pk_layout *L, int major, int minor, const struct pk_layout_check *chk);

#endif
