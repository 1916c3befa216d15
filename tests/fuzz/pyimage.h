/* SPDX-License-Identifier: MIT */
/* Fake CPython memory images, for the walker's unit tests
 * (tests/unit/test_cpython_hostile.c) and its fuzzer (tests/fuzz/fuzz_walker.c).
 *
 * An image is one run of bytes mapped at PYIMG_BASE, read through
 * pk_mem_open_ops(). The builder lays out, for one layout of the generated
 * table, the objects the walker reads: _PyRuntime (or the interp_head
 * variable), an interpreter, thread states, frames, code objects, strings,
 * line tables, and for thread names sys.modules -> threading -> _active ->
 * Thread.__dict__. Tests then break them on purpose; the fuzzer takes raw
 * bytes as the image, seeded with well-formed ones written by walker_seeds.c.
 *
 * Header-only: every function is static inline, so each user compiles its own copy. */
#ifndef PK_TEST_PYIMAGE_H
#define PK_TEST_PYIMAGE_H

#include "py-priv.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PYIMG_BASE 0x10000ull
/* Type objects the walker only compares against, never reads: outside the image. */
#define PYIMG_CODE_TYPE 0x7e0000001000ull
#define PYIMG_STR_TYPE 0x7e0000002000ull
#define PYIMG_DICT_TYPE 0x7e0000003000ull
#define PYIMG_BYTES_TYPE 0x7e0000004000ull
#define PYIMG_INT_TYPE 0x7e0000005000ull
#define PYIMG_MAX_HOLES 8

struct pyimg {
	const struct pk_layout *L;
	int major, minor;
	uint8_t *bytes;
	size_t cap;          /* bytes[0..cap) exist */
	size_t used;         /* bump allocator */
	size_t readable;     /* 0: reads up to used succeed; else up to this many bytes */
	bool oom;            /* something did not fit in cap */
	uint64_t hole_lo[PYIMG_MAX_HOLES], hole_hi[PYIMG_MAX_HOLES];
	unsigned nholes;
	uint64_t reads;      /* backend calls */
};

static inline int pyimg_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct pyimg *im = ctx;
	size_t lim = im->readable ? im->readable : im->used;

	im->reads++;
	if (lim > im->cap)
		lim = im->cap;
	if (addr < PYIMG_BASE || addr - PYIMG_BASE > lim || len > lim - (addr - PYIMG_BASE))
		return -EFAULT;
	for (unsigned i = 0; i < im->nholes; i++)
		if (addr < im->hole_hi[i] && addr + len > im->hole_lo[i])
			return -EFAULT;
	memcpy(buf, im->bytes + (addr - PYIMG_BASE), len);
	return 0;
}

static const struct pk_mem_ops pyimg_ops __attribute__((unused)) = { pyimg_read, NULL };

/* An image laid out with the table entry of major.minor, of a free-threaded
 * build (ft) or a default one. */
static inline int pyimg_init_ft(struct pyimg *im, int major, int minor, size_t cap, bool ft)
{
	memset(im, 0, sizeof(*im));
	im->L = pk_layout_find_ft(major, minor, ft);
	if (im->L == NULL)
		return -ENOENT;
	im->major = major;
	im->minor = minor;
	im->bytes = calloc(1, cap);
	if (im->bytes == NULL)
		return -ENOMEM;
	im->cap = cap;
	return 0;
}

static inline int pyimg_init(struct pyimg *im, int major, int minor, size_t cap)
{
	return pyimg_init_ft(im, major, minor, cap, false);
}

static inline void pyimg_free(struct pyimg *im)
{
	free(im->bytes);
	im->bytes = NULL;
}

static inline bool pyimg_new_frames(const struct pyimg *im)
{
	return im->major == 3 && im->minor >= 11;
}

/* Make [addr, addr+len) unreadable. */
static inline void pyimg_hole(struct pyimg *im, uint64_t addr, uint64_t len)
{
	if (im->nholes < PYIMG_MAX_HOLES) {
		im->hole_lo[im->nholes] = addr;
		im->hole_hi[im->nholes] = addr + len;
		im->nholes++;
	}
}

static inline uint64_t pyimg_alloc(struct pyimg *im, size_t size)
{
	size_t at = (im->used + 15) & ~(size_t)15;

	if (size == 0)
		size = 8;
	if (at > im->cap || size > im->cap - at) {
		im->oom = true;
		return 0;
	}
	im->used = at + size;
	return PYIMG_BASE + at;
}

static inline void pyimg_put(struct pyimg *im, uint64_t addr, int32_t off, const void *src, size_t n)
{
	uint64_t a;

	if (off < 0 || addr < PYIMG_BASE)
		return; /* a field this version does not have */
	a = addr - PYIMG_BASE + (uint64_t)off;
	if (a > im->cap || n > im->cap - a) {
		im->oom = true;
		return;
	}
	memcpy(im->bytes + a, src, n);
}

static inline void pyimg_u64(struct pyimg *im, uint64_t addr, int32_t off, uint64_t v)
{
	pyimg_put(im, addr, off, &v, 8);
}

static inline void pyimg_u32(struct pyimg *im, uint64_t addr, int32_t off, uint32_t v)
{
	pyimg_put(im, addr, off, &v, 4);
}

static inline void pyimg_u8(struct pyimg *im, uint64_t addr, int32_t off, uint8_t v)
{
	pyimg_put(im, addr, off, &v, 1);
}

static inline uint64_t pyimg_get_u64(const struct pyimg *im, uint64_t addr)
{
	uint64_t v = 0;

	if (addr >= PYIMG_BASE && addr - PYIMG_BASE + 8 <= im->cap)
		memcpy(&v, im->bytes + (addr - PYIMG_BASE), 8);
	return v;
}

static inline uint8_t pyimg_get_u8(const struct pyimg *im, uint64_t addr)
{
	return addr >= PYIMG_BASE && addr - PYIMG_BASE < im->cap ? im->bytes[addr - PYIMG_BASE] : 0;
}

static inline int32_t pyimg_max(int32_t a, int32_t b)
{
	return a > b ? a : b;
}

/* ------------------------------------------------------------ objects */

static inline uint32_t pyimg_mask(uint32_t m, uint32_t dflt)
{
	return m ? m : dflt;
}

/* A str: 2.7 PyStringObject, 3.x compact ASCII. */
static inline uint64_t pyimg_str(struct pyimg *im, const char *s)
{
	const struct pk_layout *L = im->L;
	size_t n = strlen(s);
	uint64_t o;

	if (im->major == 2) {
		/* At least the 64 bytes the reader asks for first. */
		o = pyimg_alloc(im, (size_t)L->bytes_ob_sval + n + 1 > 64 ? (size_t)L->bytes_ob_sval + n + 1 : 64);
		pyimg_u64(im, o, L->ob_type, PYIMG_STR_TYPE);
		pyimg_u64(im, o, L->var_ob_size, n);
		pyimg_put(im, o, L->bytes_ob_sval, s, n);
		return o;
	}
	{
		uint32_t kmask = pyimg_mask(L->uni_kind_mask, 0x1c);
		uint32_t state = (1u << __builtin_ctz(kmask)) | pyimg_mask(L->uni_compact_mask, 0x20) |
				 pyimg_mask(L->uni_ascii_mask, 0x40);
		size_t hdr = (size_t)pyimg_max(pyimg_max(L->uni_ascii_size, L->uni_compact_size), L->uni_data_any + 8);

		/* Room for the larger header: the reader first asks for that much. */
		o = pyimg_alloc(im, (hdr > (size_t)L->uni_ascii_size + n + 1 ? hdr : (size_t)L->uni_ascii_size + n + 1));
		pyimg_u64(im, o, L->ob_type, PYIMG_STR_TYPE);
		pyimg_u64(im, o, L->uni_length, n);
		pyimg_u32(im, o, L->uni_state, state);
		pyimg_put(im, o, L->uni_ascii_size, s, n);
		return o;
	}
}

static inline uint64_t pyimg_bytes(struct pyimg *im, const void *data, size_t n)
{
	const struct pk_layout *L = im->L;
	uint64_t o = pyimg_alloc(im, (size_t)L->bytes_ob_sval + n + 1);

	pyimg_u64(im, o, L->ob_type, PYIMG_BYTES_TYPE);
	pyimg_u64(im, o, L->var_ob_size, n);
	pyimg_put(im, o, L->bytes_ob_sval, data, n);
	return o;
}

/* Every frame the builder makes stands 4 bytes into its code (f_lasti 4,
 * 3.10: 2 code units, 3.11+: instr_ptr at code + 4). This table puts those
 * bytes on line firstlineno + delta (0 <= delta < 32) in the version's own
 * format. */
static inline uint64_t pyimg_linetable(struct pyimg *im, unsigned delta)
{
	uint8_t t[2];

	if (pyimg_new_frames(im)) {
		t[0] = 0x80 | (13 << 3) | 7; /* NO_COLUMNS, 8 code units: bytes [0, 16) */
		t[1] = (uint8_t)(delta << 1); /* signed varint, one byte */
	} else if (im->major == 3 && im->minor == 10) {
		t[0] = 16; /* bytes [0, 16) */
		t[1] = (uint8_t)delta;
	} else {
		t[0] = 0; /* from byte 0 on */
		t[1] = (uint8_t)delta;
	}
	return pyimg_bytes(im, t, 2);
}

static inline uint64_t pyimg_code(struct pyimg *im, const char *name, const char *qualname, const char *file,
			   int firstlineno, uint64_t table)
{
	const struct pk_layout *L = im->L;
	int32_t size = pyimg_max(L->co_size, 0x100);
	uint64_t o;

	if (L->co_code_adaptive >= 0)
		size = pyimg_max(size, L->co_code_adaptive + 64);
	o = pyimg_alloc(im, (size_t)size);
	pyimg_u64(im, o, L->ob_type, PYIMG_CODE_TYPE);
	pyimg_u64(im, o, L->co_name, pyimg_str(im, name));
	if (L->co_qualname >= 0)
		pyimg_u64(im, o, L->co_qualname, pyimg_str(im, qualname));
	pyimg_u64(im, o, L->co_filename, pyimg_str(im, file));
	pyimg_u32(im, o, L->co_firstlineno, (uint32_t)firstlineno);
	pyimg_u64(im, o, L->co_linetable >= 0 ? L->co_linetable : L->co_lnotab, table);
	pyimg_u32(im, o, L->co_firsttraceable, 0);
	return o;
}

/* A frame of code, called from back (0: the outermost). */
static inline uint64_t pyimg_frame(struct pyimg *im, uint64_t code, uint64_t back)
{
	const struct pk_layout *L = im->L;
	uint64_t f = pyimg_alloc(im, (size_t)pyimg_max(L->fr_size, 0x80));

	pyimg_u64(im, f, L->fr_back, back);
	if (pyimg_new_frames(im)) {
		/* 3.14+: a tagged stack reference; the tag bits must be ignored. */
		pyimg_u64(im, f, L->fr_code, code | (L->fr_code_tag_mask & 1));
		pyimg_u64(im, f, L->fr_instr, code + (uint64_t)L->co_code_adaptive + 4);
		pyimg_u8(im, f, L->fr_owner, 0); /* FRAME_OWNED_BY_THREAD */
	} else {
		pyimg_u64(im, f, L->fr_code, code);
		pyimg_u32(im, f, L->fr_lasti, im->minor == 10 && im->major == 3 ? 2 : 4);
	}
	return f;
}

/* A thread state whose innermost frame is frame (0: none). 3.11-3.12 point
 * at a _PyCFrame, which points at the frame. */
static inline uint64_t pyimg_tstate(struct pyimg *im, uint64_t ident, uint64_t native_tid, uint64_t frame, uint64_t next)
{
	const struct pk_layout *L = im->L;
	uint64_t ts = pyimg_alloc(im, (size_t)pyimg_max(L->ts_size, 0x100));

	pyimg_u64(im, ts, L->ts_next, next);
	pyimg_u64(im, ts, L->ts_thread_id, ident);
	pyimg_u64(im, ts, L->ts_native_thread_id, native_tid);
	if (L->cframe_current_frame >= 0) {
		uint64_t cf = pyimg_alloc(im, 64);
		pyimg_u64(im, cf, L->cframe_current_frame, frame);
		pyimg_u64(im, ts, L->ts_frame, cf);
	} else {
		pyimg_u64(im, ts, L->ts_frame, frame);
	}
	return ts;
}

/* The frame pointer field of a thread state: where the chain starts. */
static inline uint64_t pyimg_ts_frame_slot(const struct pyimg *im, uint64_t ts)
{
	const struct pk_layout *L = im->L;

	if (L->cframe_current_frame >= 0)
		return pyimg_get_u64(im, ts + (uint64_t)L->ts_frame) + (uint64_t)L->cframe_current_frame;
	return ts + (uint64_t)L->ts_frame;
}

static inline uint64_t pyimg_interp(struct pyimg *im, uint64_t tstate_head, uint64_t modules)
{
	const struct pk_layout *L = im->L;
	int32_t size = pyimg_max(pyimg_max(L->is_next, L->is_id), pyimg_max(L->is_tstate_head, L->is_modules));
	uint64_t is;

	size = pyimg_max(size, L->is_ceval_gil) + 8;
	is = pyimg_alloc(im, (size_t)size);
	pyimg_u64(im, is, L->is_tstate_head, tstate_head);
	pyimg_u64(im, is, L->is_modules, modules);
	return is;
}

/* _Py_DebugOffsets fields and the layout fields they give (as dbgoff.c). */
#define PYIMG_DBG(f) { offsetof(struct pk_layout, dbg_##f), offsetof(struct pk_layout, f) }
static const struct {
	size_t dbg, field;
} pyimg_dbg_pairs[] __attribute__((unused)) = {
	PYIMG_DBG(rt_size), PYIMG_DBG(rt_finalizing), PYIMG_DBG(rt_interpreters_head),
	PYIMG_DBG(is_size), PYIMG_DBG(is_id), PYIMG_DBG(is_next), PYIMG_DBG(is_tstate_head),
	PYIMG_DBG(is_threads_main), PYIMG_DBG(is_modules), PYIMG_DBG(is_ceval_gil), PYIMG_DBG(is_gil),
	PYIMG_DBG(ts_size), PYIMG_DBG(ts_prev), PYIMG_DBG(ts_next), PYIMG_DBG(ts_interp), PYIMG_DBG(ts_frame),
	PYIMG_DBG(ts_thread_id), PYIMG_DBG(ts_native_thread_id), PYIMG_DBG(ts_datastack_chunk),
	PYIMG_DBG(ts_status), PYIMG_DBG(ts_holds_gil), PYIMG_DBG(ts_eval_breaker),
	PYIMG_DBG(fr_size), PYIMG_DBG(fr_back), PYIMG_DBG(fr_code), PYIMG_DBG(fr_instr), PYIMG_DBG(fr_owner),
	PYIMG_DBG(co_size), PYIMG_DBG(co_filename), PYIMG_DBG(co_name), PYIMG_DBG(co_qualname),
	PYIMG_DBG(co_linetable), PYIMG_DBG(co_firstlineno), PYIMG_DBG(co_code_adaptive),
	PYIMG_DBG(ob_type), PYIMG_DBG(tp_name), PYIMG_DBG(tp_flags), PYIMG_DBG(tp_basicsize),
	PYIMG_DBG(tp_dictoffset), PYIMG_DBG(ht_cached_keys), PYIMG_DBG(var_ob_size), PYIMG_DBG(tuple_ob_item),
	PYIMG_DBG(list_ob_item), PYIMG_DBG(dict_ma_keys), PYIMG_DBG(dict_ma_values), PYIMG_DBG(long_lv_tag),
	PYIMG_DBG(long_digits), PYIMG_DBG(bytes_ob_sval), PYIMG_DBG(uni_state), PYIMG_DBG(uni_length),
	PYIMG_DBG(uni_ascii_size), PYIMG_DBG(uni_compact_size),
};

static inline int32_t pyimg_field(const struct pk_layout *L, size_t off)
{
	int32_t v;

	memcpy(&v, (const char *)L + off, sizeof(v));
	return v;
}

/* _PyRuntime (3.7+; 3.13+ opening with a _Py_DebugOffsets that agrees with
 * the table), or the interp_head variable (2.7, 3.6). Allocate it first: the
 * image's head is then PYIMG_BASE. */
static inline uint64_t pyimg_runtime(struct pyimg *im)
{
	const struct pk_layout *L = im->L;
	int32_t size;
	uint64_t rt;

	if (im->major == 2 || im->minor < 7)
		return pyimg_alloc(im, 8);
	size = pyimg_max(pyimg_max(L->rt_interpreters_head, L->rt_interpreters_main),
			 pyimg_max(L->rt_finalizing, L->rt_gilstate_tstate_current)) + 8;
	size = pyimg_max(size, L->dbg_size);
	rt = pyimg_alloc(im, (size_t)size);
	if (L->dbg_size > 0) {
		pyimg_put(im, rt, 0, "xdebugpy", 8);
		pyimg_u64(im, rt, L->dbg_version, (uint64_t)im->major << 24 | (uint64_t)im->minor << 16 | 0xf0);
		pyimg_u64(im, rt, L->dbg_free_threaded, L->free_threaded);
		for (size_t i = 0; i < sizeof(pyimg_dbg_pairs) / sizeof(pyimg_dbg_pairs[0]); i++) {
			int32_t pos = pyimg_field(L, pyimg_dbg_pairs[i].dbg);
			int32_t v = pyimg_field(L, pyimg_dbg_pairs[i].field);
			if (pos != PK_NOFF && v >= 0)
				pyimg_u64(im, rt, pos, (uint64_t)v);
		}
		if (L->is_gil > 0) {
			pyimg_u64(im, rt, L->dbg_gil_locked, (uint64_t)(L->is_gil + L->gil_locked));
			pyimg_u64(im, rt, L->dbg_gil_last_holder, (uint64_t)(L->is_gil + L->gil_last_holder));
		}
	}
	return rt;
}

static inline void pyimg_set_head(struct pyimg *im, uint64_t rt, uint64_t interp)
{
	const struct pk_layout *L = im->L;

	if (im->major == 2 || im->minor < 7) {
		pyimg_u64(im, rt, 0, interp);
		return;
	}
	pyimg_u64(im, rt, L->rt_interpreters_head, interp);
	pyimg_u64(im, rt, L->rt_interpreters_main, interp);
}

/* ------------------------------------------------------------ names */

/* A non-negative int: 2.7 PyIntObject, 3.x PyLongObject of 30-bit digits. */
static inline uint64_t pyimg_long(struct pyimg *im, uint64_t v)
{
	const struct pk_layout *L = im->L;
	uint32_t d[3];
	unsigned n = 0;
	uint64_t o;

	if (im->major == 2) {
		o = pyimg_alloc(im, 24);
		pyimg_u64(im, o, L->ob_type, PYIMG_INT_TYPE);
		pyimg_u64(im, o, 16, v);
		return o;
	}
	while (v != 0 && n < 3) {
		d[n++] = (uint32_t)(v & 0x3fffffff);
		v >>= 30;
	}
	o = pyimg_alloc(im, (size_t)pyimg_max(L->long_digits + 16, 48)); /* the reader asks for 48 */
	pyimg_u64(im, o, L->ob_type, PYIMG_INT_TYPE);
	if (im->minor >= 12)
		pyimg_u64(im, o, L->long_lv_tag, (uint64_t)n << 3);
	else
		pyimg_u64(im, o, L->var_ob_size, n);
	for (unsigned i = 0; i < n; i++)
		pyimg_u32(im, o, L->long_digits + 4 * (int32_t)i, d[i]);
	return o;
}

/* A dict of n (key, value) object pairs. unicode_keys picks the 3.11+
 * PyDictUnicodeEntry form (string keys), else the general form. */
/* Bytes per index of a table of 2^log2 slots (CPython's DK_IXSIZE). */
static inline unsigned pyimg_ixsize(unsigned log2)
{
	return log2 < 8 ? 1 : log2 < 16 ? 2 : 4;
}

static inline uint64_t pyimg_dict(struct pyimg *im, size_t n, const uint64_t *keys, const uint64_t *values, bool unicode_keys)
{
	const struct pk_layout *L = im->L;
	unsigned log2 = 3, ix;
	uint64_t d, k, entries;

	while ((1u << log2) < 2 * n + 1)
		log2++;
	ix = pyimg_ixsize(log2);
	if (im->major == 2) {
		uint64_t table = pyimg_alloc(im, 24u << log2);
		d = pyimg_alloc(im, (size_t)pyimg_max(L->dict27_ma_table, L->dict27_ma_mask) + 8);
		pyimg_u64(im, d, L->ob_type, PYIMG_DICT_TYPE);
		pyimg_u64(im, d, 16, n); /* ma_fill */
		pyimg_u64(im, d, L->dict_ma_used, n);
		pyimg_u64(im, d, L->dict27_ma_mask, (1u << log2) - 1);
		pyimg_u64(im, d, L->dict27_ma_table, table);
		for (size_t i = 0; i < n; i++) {
			pyimg_u64(im, table, (int32_t)(24 * i + 8), keys[i]);
			pyimg_u64(im, table, (int32_t)(24 * i + 16), values[i]);
		}
		return d;
	}
	d = pyimg_alloc(im, 0x40);
	pyimg_u64(im, d, L->ob_type, PYIMG_DICT_TYPE);
	pyimg_u64(im, d, L->dict_ma_used, n);
	if (im->minor >= 11) {
		size_t esize = (size_t)(unicode_keys ? L->dk_unicode_entry_size : L->dk_entry_size);
		k = pyimg_alloc(im, (size_t)L->dk_indices + ((size_t)ix << log2) + esize * n + 64);
		pyimg_u8(im, k, L->dk_log2_size, (uint8_t)log2);
		pyimg_u8(im, k, L->dk_log2_index_bytes, (uint8_t)(log2 + (unsigned)__builtin_ctz(ix)));
		pyimg_u8(im, k, L->dk_kind, unicode_keys ? 1 : 0);
		pyimg_u64(im, k, L->dk_nentries, n);
		entries = k + (uint64_t)L->dk_indices + ((uint64_t)ix << log2);
		for (size_t i = 0; i < n; i++) {
			pyimg_put(im, k, L->dk_indices + (int32_t)(ix * i), &i, ix); /* little-endian */
			pyimg_u64(im, entries, (int32_t)(esize * i + (unicode_keys ? 0 : 8)), keys[i]);
			pyimg_u64(im, entries, (int32_t)(esize * i + (unicode_keys ? 8 : 16)), values[i]);
		}
	} else {
		/* dk_refcnt, dk_size, dk_lookup, dk_usable, dk_nentries, indices, entries (names.c) */
		k = pyimg_alloc(im, 40 + ((size_t)ix << log2) + 24 * n);
		pyimg_u64(im, k, 8, 1u << log2);
		pyimg_u64(im, k, 32, n);
		entries = k + 40 + ((uint64_t)ix << log2);
		for (size_t i = 0; i < n; i++) {
			pyimg_put(im, k, 40 + (int32_t)(ix * i), &i, ix);
			pyimg_u64(im, entries, (int32_t)(24 * i + 8), keys[i]);
			pyimg_u64(im, entries, (int32_t)(24 * i + 16), values[i]);
		}
	}
	pyimg_u64(im, d, L->dict_ma_keys, k);
	pyimg_u64(im, d, L->dict_ma_values, 0);
	return d;
}

/* An object whose instance dict is at offset 16, found through its type's
 * tp_dictoffset (a module on versions without md_dict in the headers, a
 * Thread). */
static inline uint64_t pyimg_dict_object(struct pyimg *im, uint64_t dict)
{
	const struct pk_layout *L = im->L;
	uint64_t type = pyimg_alloc(im, 0x400);
	uint64_t o = pyimg_alloc(im, 0x40);

	pyimg_u64(im, type, L->tp_flags, 0);
	pyimg_u64(im, type, L->tp_dictoffset, 16);
	pyimg_u64(im, o, L->ob_type, type);
	pyimg_u64(im, o, 16, dict);
	pyimg_u64(im, o, L->module_md_dict, dict);
	return o;
}

/* Where the value of entry i of a dict made by pyimg_dict is. */
static inline uint64_t pyimg_dict_value_slot(const struct pyimg *im, uint64_t dict, size_t i)
{
	const struct pk_layout *L = im->L;
	uint64_t keys;

	if (im->major == 2)
		return pyimg_get_u64(im, dict + (uint64_t)L->dict27_ma_table) + 24 * i + 16;
	keys = pyimg_get_u64(im, dict + (uint64_t)L->dict_ma_keys);
	if (im->minor >= 11) {
		bool uni = pyimg_get_u8(im, keys + (uint64_t)L->dk_kind) != 0;
		uint64_t esize = (uint64_t)(uni ? L->dk_unicode_entry_size : L->dk_entry_size);
		return keys + (uint64_t)L->dk_indices + (1ull << pyimg_get_u8(im, keys + (uint64_t)L->dk_log2_index_bytes)) +
		       esize * i + (uni ? 8 : 16);
	}
	{
		uint64_t size = pyimg_get_u64(im, keys + 8);
		return keys + 40 + size * pyimg_ixsize((unsigned)__builtin_ctzll(size ? size : 1)) + 24 * i + 16;
	}
}

/* The objects behind thread names, for tests to break. */
struct pyimg_names_out {
	uint64_t modules;      /* sys.modules: {"sys": str, "threading": module} */
	uint64_t tmod_dict;    /* threading.__dict__: {"_shutdown": str, "_active": dict} */
	uint64_t active;       /* threading._active: {ident: Thread} */
	uint64_t thread_dicts[2]; /* each Thread's __dict__: {"_ident": int, "_name": str} */
};

/* sys.modules with a threading module whose _active maps each ident to a
 * Thread named names[i] (n <= 2). Returns the modules dict. */
static inline uint64_t pyimg_names(struct pyimg *im, size_t n, const uint64_t *idents, const char *const *names,
			    struct pyimg_names_out *o)
{
	const char *attr = im->major == 2 ? "_Thread__name" : "_name";
	uint64_t k[4], v[4], mk[2], mv[2];
	uint64_t *ak = calloc(n ? n : 1, sizeof(*ak)), *av = calloc(n ? n : 1, sizeof(*av));
	uint64_t attr_key = pyimg_str(im, attr), active, tmod;

	if (ak == NULL || av == NULL) {
		im->oom = true;
		free(ak);
		free(av);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		/* Another attribute first: the lookup must compare keys. */
		k[0] = pyimg_str(im, "_ident");
		v[0] = pyimg_long(im, idents[i]);
		k[1] = attr_key;
		v[1] = pyimg_str(im, names[i]);
		ak[i] = pyimg_long(im, idents[i]);
		av[i] = pyimg_dict_object(im, pyimg_dict(im, 2, k, v, true));
		if (o != NULL && i < 2)
			o->thread_dicts[i] = pyimg_get_u64(im, av[i] + 16);
	}
	active = pyimg_dict(im, n, ak, av, false);
	free(ak);
	free(av);
	mk[0] = pyimg_str(im, "_shutdown");
	mv[0] = pyimg_str(im, "not a function");
	mk[1] = pyimg_str(im, "_active");
	mv[1] = active;
	tmod = pyimg_dict_object(im, pyimg_dict(im, 2, mk, mv, true));
	k[0] = pyimg_str(im, "sys");
	v[0] = pyimg_str(im, "not a module");
	k[1] = pyimg_str(im, "threading");
	v[1] = tmod;
	if (o != NULL) {
		o->active = active;
		o->tmod_dict = pyimg_get_u64(im, tmod + 16);
		o->modules = pyimg_dict(im, 2, k, v, true);
		return o->modules;
	}
	return pyimg_dict(im, 2, k, v, true);
}

/* ------------------------------------------------------------ a whole process */

/* Two threads. Thread 0 (the main one) runs Worker.inner (/app/work.py:12)
 * called from outer (/app/main.py:23); thread 1 runs outer alone. With
 * names: "MainThread" and "Worker-1". */
struct pyimg_std {
	uint64_t rt, interp, ts[2], frames[3], codes[2], tables[2];
	struct pyimg_names_out names; /* all 0 without names */
	uint64_t idents[2];
};

#define PYIMG_IDENT0 0x7f12345607c0ull
#define PYIMG_IDENT1 0x7f1233d5f6c0ull
#define PYIMG_TID0 4242
#define PYIMG_TID1 4243

static inline void pyimg_standard(struct pyimg *im, struct pyimg_std *s, bool names)
{
	static const char *const thread_names[2] = { "MainThread", "Worker-1" };

	memset(s, 0, sizeof(*s));
	s->rt = pyimg_runtime(im);
	s->idents[0] = PYIMG_IDENT0;
	s->idents[1] = PYIMG_IDENT1;
	s->tables[0] = pyimg_linetable(im, 2);
	s->tables[1] = pyimg_linetable(im, 3);
	s->codes[0] = pyimg_code(im, "inner", "Worker.inner", "/app/work.py", 10, s->tables[0]);
	s->codes[1] = pyimg_code(im, "outer", "outer", "/app/main.py", 20, s->tables[1]);
	s->frames[1] = pyimg_frame(im, s->codes[1], 0);
	s->frames[0] = pyimg_frame(im, s->codes[0], s->frames[1]);
	s->frames[2] = pyimg_frame(im, s->codes[1], 0);
	s->ts[1] = pyimg_tstate(im, PYIMG_IDENT1, PYIMG_TID1, s->frames[2], 0);
	s->ts[0] = pyimg_tstate(im, PYIMG_IDENT0, PYIMG_TID0, s->frames[0], s->ts[1]);
	if (names)
		pyimg_names(im, 2, s->idents, thread_names, &s->names);
	s->interp = pyimg_interp(im, s->ts[0], s->names.modules);
	pyimg_set_head(im, s->rt, s->interp);
}

/* The interpreter model around the image (which must outlive it). */
static inline int pyimg_open(struct pyimg *im, bool types, struct pk_py **out)
{
	struct pk_mem *mem;
	int rc;

	*out = NULL;
	rc = pk_mem_open_ops(&pyimg_ops, im, &mem);
	if (rc < 0)
		return rc;
	rc = pk_py_open_image(im->L, im->major, im->minor, PYIMG_BASE, mem, out);
	if (rc < 0) {
		pk_mem_close(mem);
		return rc;
	}
	if (types) {
		(*out)->code_type = PYIMG_CODE_TYPE;
		(*out)->str_type = PYIMG_STR_TYPE;
		(*out)->dict_type = PYIMG_DICT_TYPE;
	}
	return 0;
}

#endif
