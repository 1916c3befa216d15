/* SPDX-License-Identifier: MIT */
/* The interpreter walk on hostile memory: fake images (tests/fuzz/pyimage.h)
 * behind pk_mem_open_ops(), built for every layout of the generated table,
 * then broken on purpose. Each case names the clean outcome it expects: an
 * error (-ELOOP, -EFAULT...), or a partial result with frames_error set,
 * frames bounded, names left NULL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/pyimage.h"

#define IMG_CAP (4u << 20)
#define WILD 0x00000dead0000000ull

struct ver {
	int major, minor;
	bool ft; /* the free-threaded entry of that version */
};

struct fx {
	struct pyimg im;
	struct pyimg_std s;
	struct pk_py *py;
	struct pk_py_snapshot *snap;
	const struct pk_layout *L;
};

static void fx_init_cap(struct fx *f, void **state, bool names, size_t cap)
{
	const struct ver *v = *state;

	memset(f, 0, sizeof(*f));
	assert_int_equal(pyimg_init_ft(&f->im, v->major, v->minor, cap, v->ft), 0);
	f->L = f->im.L;
	pyimg_standard(&f->im, &f->s, names);
	assert_false(f->im.oom);
	assert_int_equal(f->s.rt, PYIMG_BASE);
}

static void fx_init(struct fx *f, void **state, bool names)
{
	fx_init_cap(f, state, names, IMG_CAP);
}

/* The costly cases run on a few layouts only: old frames and dicts, the
 * 3.11-3.12 _PyCFrame, the newest. */
static bool heavy_version(void **state, int want_minor_a, int want_minor_b)
{
	const struct ver *v = *state;

	return v->major == 2 || v->minor == want_minor_a || v->minor == want_minor_b;
}

static int fx_walk_opts(struct fx *f, bool types, const struct pk_snapshot_opts *opts)
{
	int rc;

	assert_false(f->im.oom);
	pk_error_clear();
	if (f->py == NULL)
		assert_int_equal(pyimg_open(&f->im, types, &f->py), 0);
	pk_py_snapshot_free(f->snap);
	f->snap = NULL;
	rc = pk_py_read_image(f->py, opts, &f->snap);
	if (rc < 0)
		assert_null(f->snap);
	else
		assert_non_null(f->snap);
	return rc;
}

static int fx_walk(struct fx *f, bool names, unsigned max_frames)
{
	struct pk_snapshot_opts o = { .max_frames = max_frames, .want_frames = true, .want_names = names };

	return fx_walk_opts(f, true, &o);
}

static void fx_done(struct fx *f)
{
	pk_py_snapshot_free(f->snap);
	pk_py_close(f->py);
	pyimg_free(&f->im);
	pk_error_clear();
}

static bool pyimg_new_frames_v(void **state)
{
	const struct ver *v = *state;

	return v->major == 3 && v->minor >= 11;
}

static bool new_frames(const struct fx *f)
{
	return pyimg_new_frames(&f->im);
}

static const char *inner_name(const struct fx *f)
{
	return f->L->co_qualname >= 0 ? "Worker.inner" : "inner";
}

static void assert_frame(const struct pk_py_frame *fr, const char *function, const char *file, int line)
{
	assert_string_equal(fr->function, function);
	assert_string_equal(fr->file, file);
	assert_int_equal(fr->line, line);
}

/* Thread 0 of the standard image, read right. */
static void assert_thread0_ok(const struct fx *f, const struct pk_py_thread *t)
{
	assert_int_equal(t->tstate, f->s.ts[0]);
	assert_int_equal(t->nframes, 2);
	assert_null(t->frames_error);
	assert_false(t->frames_truncated);
	assert_frame(&t->frames[0], inner_name(f), "/app/work.py", 12);
	assert_frame(&t->frames[1], "outer", "/app/main.py", 23);
}

static void assert_thread1_ok(const struct fx *f, const struct pk_py_thread *t)
{
	assert_int_equal(t->tstate, f->s.ts[1]);
	assert_int_equal(t->nframes, 1);
	assert_null(t->frames_error);
	assert_frame(&t->frames[0], "outer", "/app/main.py", 23);
}

static void assert_error_has(const char *what)
{
	if (strstr(pk_error_message(), what) == NULL)
		fail_msg("error '%s' does not say '%s'", pk_error_message(), what);
}

static void assert_frames_error_has(const struct pk_py_thread *t, const char *what)
{
	assert_non_null(t->frames_error);
	if (strstr(t->frames_error, what) == NULL)
		fail_msg("frames_error '%s' does not say '%s'", t->frames_error, what);
}

/* Where the function name of a frame comes from: the qualified name when
 * the version has one, else (or when that cannot be read) the name. */
static void set_code_name(struct fx *f, uint64_t code, uint64_t str)
{
	pyimg_u64(&f->im, code, f->L->co_name, str);
	pyimg_u64(&f->im, code, f->L->co_qualname, str);
}

/* ------------------------------------------------------------ well-formed */

/* The builder itself: without this, every "clean failure" below could be a
 * builder that never made a valid image. */
static void test_wellformed(void **state)
{
	struct fx f;

	fx_init(&f, state, true);
	for (int types = 1; types >= 0; types--) {
		struct pk_snapshot_opts o = { .want_frames = true, .want_names = true };

		pk_py_close(f.py);
		f.py = NULL;
		assert_int_equal(fx_walk_opts(&f, types, &o), 0);
		assert_int_equal(f.snap->ninterps, 1);
		assert_int_equal(f.snap->nthreads, 2);
		assert_thread0_ok(&f, &f.snap->threads[0]);
		assert_thread1_ok(&f, &f.snap->threads[1]);
		assert_int_equal(f.snap->threads[0].ident, PYIMG_IDENT0);
		assert_int_equal(f.snap->threads[1].ident, PYIMG_IDENT1);
		assert_true(f.snap->threads[0].main_interp);
		if (f.L->ts_native_thread_id >= 0) {
			assert_int_equal(f.snap->threads[0].ns_tid, PYIMG_TID0);
			assert_int_equal(f.snap->threads[1].ns_tid, PYIMG_TID1);
		}
		assert_non_null(f.snap->threads[0].name);
		assert_non_null(f.snap->threads[1].name);
		assert_string_equal(f.snap->threads[0].name, "MainThread");
		assert_string_equal(f.snap->threads[1].name, "Worker-1");
	}
	/* 3.13+: the image's _Py_DebugOffsets was read and agreed. */
	if (f.L->dbg_size > 0) {
		assert_non_null(strstr(pk_py_layout_source(f.py), "_Py_DebugOffsets ("));
		assert_non_null(strstr(pk_py_layout_source(f.py), ", 0 differ)"));
	}
	/* The page cache in front of the backend changes nothing. */
	pk_mem_cache_enable(f.py->mem, true);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_thread0_ok(&f, &f.snap->threads[0]);
	assert_string_equal(f.snap->threads[1].name, "Worker-1");
	fx_done(&f);
}

/* ------------------------------------------------------------ lists that loop */

static void test_thread_list_self_loop(void **state)
{
	struct fx f;

	fx_init(&f, state, false);
	pyimg_u64(&f.im, f.s.ts[1], f.L->ts_next, f.s.ts[1]);
	assert_int_equal(fx_walk(&f, false, 0), -ELOOP);
	assert_error_has("loops");
	fx_done(&f);
}

static void test_thread_list_rho(void **state)
{
	struct fx f;
	uint64_t a, b;

	fx_init(&f, state, false);
	/* ts0 -> ts1 -> a -> b -> ts1: the loop does not come back to the head. */
	b = pyimg_tstate(&f.im, 3, 3, 0, f.s.ts[1]);
	a = pyimg_tstate(&f.im, 2, 2, 0, b);
	pyimg_u64(&f.im, f.s.ts[1], f.L->ts_next, a);
	assert_int_equal(fx_walk(&f, false, 0), -ELOOP);
	assert_error_has("loops");
	fx_done(&f);
}

/* Thread states that overlap, 16 bytes apart, each next pointing 16 bytes
 * further: no cycle, only a list far longer than any process has. */
static uint64_t overlapping_threads(struct fx *f, size_t n)
{
	uint64_t r = pyimg_alloc(&f->im, 16 * (n + 1) + 0x400);

	for (size_t k = 0; k < n; k++)
		pyimg_u64(&f->im, r + 16 * k, f->L->ts_next, k + 1 < n ? r + 16 * (k + 1) : 0);
	return r;
}

static void test_thread_list_long(void **state)
{
	struct fx f;
	struct pk_snapshot_opts o = { .want_frames = false };
	uint64_t r;

	fx_init(&f, state, false);
	if (f.L->ts_size >= 0x400) {
		fx_done(&f);
		skip(); /* 3.6: 100000 thread states of 1 KiB read, the same test as the others at 100 MiB */
	}
	/* A long list that ends is read whole... */
	r = overlapping_threads(&f, 1000);
	pyimg_u64(&f.im, f.s.interp, f.L->is_tstate_head, r);
	assert_int_equal(fx_walk_opts(&f, true, &o), 0);
	assert_int_equal(f.snap->nthreads, 1000);
	assert_int_equal(f.snap->threads[999].tstate, r + 16 * 999);
	/* ...one longer than PK_MAX_THREADS is refused. */
	r = overlapping_threads(&f, PK_MAX_THREADS + 10);
	assert_false(f.im.oom);
	pyimg_u64(&f.im, f.s.interp, f.L->is_tstate_head, r);
	assert_int_equal(fx_walk_opts(&f, true, &o), -ELOOP);
	assert_error_has("more than 100000 threads");
	fx_done(&f);
}

static void test_interp_list_loop(void **state)
{
	struct fx f;
	uint64_t other;

	fx_init(&f, state, false);
	pyimg_u64(&f.im, f.s.interp, f.L->is_next, f.s.interp);
	assert_int_equal(fx_walk(&f, false, 0), -ELOOP);
	assert_error_has("loops");
	/* Two interpreters pointing at each other. */
	other = pyimg_interp(&f.im, 0, 0);
	pyimg_u64(&f.im, f.s.interp, f.L->is_next, other);
	pyimg_u64(&f.im, other, f.L->is_next, f.s.interp);
	assert_int_equal(fx_walk(&f, false, 0), -ELOOP);
	assert_error_has("loops");
	fx_done(&f);
}

/* ------------------------------------------------------------ frame chains */

static void test_frame_chain_self_loop(void **state)
{
	struct fx f;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	pyimg_u64(&f.im, f.s.frames[1], f.L->fr_back, f.s.frames[1]);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_int_equal(f.snap->nthreads, 2);
	t = &f.snap->threads[0];
	assert_frames_error_has(t, "frame chain loops");
	assert_int_equal(t->nframes, 2);
	assert_frame(&t->frames[0], inner_name(&f), "/app/work.py", 12);
	assert_thread1_ok(&f, &f.snap->threads[1]);
	fx_done(&f);
}

static void test_frame_chain_long_cycle(void **state)
{
	enum { N = 300, ENTRY = 100 };
	struct fx f;
	uint64_t fr[N];
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	/* fr[0] -> ... -> fr[N-1] -> fr[ENTRY] */
	fr[N - 1] = pyimg_frame(&f.im, f.s.codes[1], 0);
	for (int i = N - 2; i >= 0; i--)
		fr[i] = pyimg_frame(&f.im, f.s.codes[1], fr[i + 1]);
	pyimg_u64(&f.im, fr[N - 1], f.L->fr_back, fr[ENTRY]);
	pyimg_u64(&f.im, pyimg_ts_frame_slot(&f.im, f.s.ts[0]), 0, fr[0]);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	t = &f.snap->threads[0];
	assert_frames_error_has(t, "frame chain loops");
	assert_false(t->frames_truncated);
	/* Found within three times the loop: Brent's bound, not max_frames. */
	assert_true(t->nframes >= N);
	assert_true(t->nframes <= ENTRY + 3 * (N - ENTRY));
	assert_thread1_ok(&f, &f.snap->threads[1]);
	fx_done(&f);
}

static void test_frame_chain_too_deep(void **state)
{
	enum { N = 40 };
	struct fx f;
	uint64_t next = 0;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	for (int i = 0; i < N; i++)
		next = pyimg_frame(&f.im, f.s.codes[0], next);
	pyimg_u64(&f.im, pyimg_ts_frame_slot(&f.im, f.s.ts[0]), 0, next);
	assert_int_equal(fx_walk(&f, false, 8), 0);
	t = &f.snap->threads[0];
	assert_int_equal(t->nframes, 8);
	assert_true(t->frames_truncated);
	assert_null(t->frames_error);
	assert_thread1_ok(&f, &f.snap->threads[1]);
	fx_done(&f);
}

/* Frames that show nothing (3.11+: no code, a C-stack shim) still count
 * against the walk: a long chain of them ends in a truncated, empty stack. */
static void test_frame_chain_invisible(void **state)
{
	struct fx f;
	uint64_t next = 0;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	for (int i = 0; i < 500; i++) {
		next = pyimg_frame(&f.im, f.s.codes[0], next);
		pyimg_u64(&f.im, next, f.L->fr_code, 0);
	}
	pyimg_u64(&f.im, pyimg_ts_frame_slot(&f.im, f.s.ts[0]), 0, next);
	assert_int_equal(fx_walk(&f, false, 8), 0);
	t = &f.snap->threads[0];
	assert_int_equal(t->nframes, 0);
	if (new_frames(&f)) {
		assert_true(t->frames_truncated);
		assert_null(t->frames_error);
	} else {
		/* Before 3.11 every frame object has a code object. */
		assert_frames_error_has(t, "frame without code");
	}
	fx_done(&f);
}

/* ------------------------------------------------------------ wild pointers */

static void test_wild_first_frame(void **state)
{
	struct fx f;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	pyimg_u64(&f.im, pyimg_ts_frame_slot(&f.im, f.s.ts[0]), 0, WILD);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	t = &f.snap->threads[0];
	assert_int_equal(t->nframes, 0);
	assert_frames_error_has(t, "unreadable frame at 0xdead0000000");
	assert_thread1_ok(&f, &f.snap->threads[1]);
	fx_done(&f);
}

/* 3.11-3.12: the thread state points at a _PyCFrame first. */
static void test_wild_cframe(void **state)
{
	struct fx f;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	if (f.L->cframe_current_frame < 0) {
		fx_done(&f);
		skip();
	}
	pyimg_u64(&f.im, f.s.ts[0], f.L->ts_frame, WILD);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	t = &f.snap->threads[0];
	assert_int_equal(t->nframes, 0);
	assert_frames_error_has(t, "unreadable _PyCFrame at 0xdead0000000");
	assert_thread1_ok(&f, &f.snap->threads[1]);
	fx_done(&f);
}

static void test_wild_back(void **state)
{
	struct fx f;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	pyimg_u64(&f.im, f.s.frames[0], f.L->fr_back, 0x41414141);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	t = &f.snap->threads[0];
	assert_int_equal(t->nframes, 1);
	assert_frame(&t->frames[0], inner_name(&f), "/app/work.py", 12);
	assert_frames_error_has(t, "unreadable frame at 0x41414141");
	fx_done(&f);
}

static void test_wild_code(void **state)
{
	struct fx f;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	pyimg_u64(&f.im, f.s.frames[0], f.L->fr_code, WILD);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	t = &f.snap->threads[0];
	assert_int_equal(t->nframes, 0);
	assert_frames_error_has(t, new_frames(&f) ? "unreadable code object at 0xdead0000000"
						  : "bad code object at 0xdead0000000");
	assert_thread1_ok(&f, &f.snap->threads[1]);
	fx_done(&f);
}

static void test_wild_lists(void **state)
{
	struct fx f;

	fx_init(&f, state, false);
	/* The thread list, the interpreter list, _PyRuntime: nothing to show. */
	pyimg_u64(&f.im, f.s.ts[0], f.L->ts_next, WILD);
	assert_int_equal(fx_walk(&f, false, 0), -EFAULT);
	assert_error_has("read thread state at 0xdead0000000");
	pyimg_u64(&f.im, f.s.ts[0], f.L->ts_next, f.s.ts[1]);
	pyimg_u64(&f.im, f.s.interp, f.L->is_tstate_head, WILD);
	assert_int_equal(fx_walk(&f, false, 0), -EFAULT);
	pyimg_u64(&f.im, f.s.interp, f.L->is_tstate_head, f.s.ts[0]);
	pyimg_u64(&f.im, f.s.interp, f.L->is_next, WILD);
	assert_int_equal(fx_walk(&f, false, 0), -EFAULT);
	pyimg_u64(&f.im, f.s.interp, f.L->is_next, 0);
	pyimg_set_head(&f.im, f.s.rt, WILD);
	assert_true(fx_walk(&f, false, 0) < 0);
	pyimg_set_head(&f.im, f.s.rt, 0);
	assert_int_equal(fx_walk(&f, false, 0), -ENOEXEC);
	assert_error_has("empty");
	pk_py_close(f.py);
	f.py = NULL;
	/* The head itself outside the image. */
	{
		struct pk_mem *mem;
		struct pk_snapshot_opts o = { .want_frames = true };
		assert_int_equal(pk_mem_open_ops(&pyimg_ops, &f.im, &mem), 0);
		assert_int_equal(pk_py_open_image(f.L, f.im.major, f.im.minor, WILD, mem, &f.py), 0);
		assert_int_equal(pk_py_read_image(f.py, &o, &f.snap), -EFAULT);
		assert_null(f.snap);
	}
	fx_done(&f);
}

/* ------------------------------------------------------------ truncated objects */

static void test_truncated_thread_state(void **state)
{
	struct fx f;

	fx_init(&f, state, false);
	pyimg_hole(&f.im, f.s.ts[1] + 16, 8);
	assert_int_equal(fx_walk(&f, false, 0), -EFAULT);
	fx_done(&f);
}

static void test_truncated_code(void **state)
{
	struct fx f;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	pyimg_hole(&f.im, f.s.codes[0] + 16, 8);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	t = &f.snap->threads[0];
	assert_int_equal(t->nframes, 0);
	assert_frames_error_has(t, "code object at");
	assert_thread1_ok(&f, &f.snap->threads[1]);
	fx_done(&f);
}

static void test_truncated_frame(void **state)
{
	struct fx f;
	const struct pk_layout *L;
	int32_t need;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	L = f.L;
	need = pyimg_max(pyimg_max(L->fr_back, L->fr_code), pyimg_max(pyimg_max(L->fr_lasti, L->fr_instr), L->fr_owner)) + 8;
	/* Cut right after the fields the walk needs: still read. */
	if (L->fr_size > need)
		pyimg_hole(&f.im, f.s.frames[0] + (uint64_t)need, (uint64_t)(L->fr_size - need));
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_thread0_ok(&f, &f.snap->threads[0]);
	/* Cut inside them: an unreadable frame. */
	f.im.nholes = 0;
	pyimg_hole(&f.im, f.s.frames[1] + (uint64_t)need - 8, 8);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	t = &f.snap->threads[0];
	assert_int_equal(t->nframes, 1);
	assert_frames_error_has(t, "unreadable frame");
	fx_done(&f);
}

/* A string at the very end of readable memory: the reader's first, larger
 * header read fails and the exact one succeeds. */
static void test_truncated_string_at_end(void **state)
{
	struct fx f;
	uint64_t s;

	fx_init(&f, state, false);
	s = pyimg_str(&f.im, "x");
	set_code_name(&f, f.s.codes[0], s);
	/* 3.x: the ASCII header and one character; 2.7: the 48 bytes its reader asks for. */
	f.im.readable = (size_t)(s - PYIMG_BASE) + (f.im.major == 2 ? 0x30 : (size_t)f.L->uni_ascii_size + 1);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_string_equal(f.snap->threads[0].frames[0].function, "x");
	/* One byte less: no name, but the frame is still there. */
	f.im.readable--;
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_string_equal(f.snap->threads[0].frames[0].function, "?");
	assert_string_equal(f.snap->threads[0].frames[0].file, "/app/work.py");
	fx_done(&f);
}

/* ------------------------------------------------------------ absurd sizes */

static void test_absurd_string_lengths(void **state)
{
	struct fx f;
	char *big = malloc(5001);
	uint64_t s;
	const struct pk_py_frame *fr;

	assert_non_null(big);
	memset(big, 'A', 5000);
	big[5000] = '\0';
	fx_init(&f, state, false);
	s = pyimg_str(&f.im, big);
	set_code_name(&f, f.s.codes[0], s);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	fr = &f.snap->threads[0].frames[0];
	if (f.im.major == 2) {
		/* 2.7 str: longer than PK_MAX_STRING is refused. */
		assert_string_equal(fr->function, "?");
	} else {
		/* 3.x: the start of an absurdly long name. */
		assert_int_equal(strlen(fr->function), PK_MAX_STRING);
		assert_int_equal(strspn(fr->function, "A"), PK_MAX_STRING);
	}
	/* A length of 2^40 reads no more. */
	pyimg_u64(&f.im, s, f.im.major == 2 ? f.L->var_ob_size : f.L->uni_length, 1ull << 40);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	fr = &f.snap->threads[0].frames[0];
	assert_true(strlen(fr->function) <= PK_MAX_STRING);
	/* Negative. */
	pyimg_u64(&f.im, s, f.im.major == 2 ? f.L->var_ob_size : f.L->uni_length, (uint64_t)-5);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_string_equal(f.snap->threads[0].frames[0].function, "?");
	if (f.im.major == 3) {
		/* A kind that does not exist (3), a non-compact string whose data pointer is wild. */
		uint32_t kmask = f.L->uni_kind_mask ? f.L->uni_kind_mask : 0x1c;
		uint32_t compact = f.L->uni_compact_mask ? f.L->uni_compact_mask : 0x20;
		pyimg_u64(&f.im, s, f.L->uni_length, 5);
		pyimg_u32(&f.im, s, f.L->uni_state, (3u << __builtin_ctz(kmask)) | compact);
		assert_int_equal(fx_walk(&f, false, 0), 0);
		assert_string_equal(f.snap->threads[0].frames[0].function, "?");
		pyimg_u32(&f.im, s, f.L->uni_state, 1u << __builtin_ctz(kmask));
		pyimg_u64(&f.im, s, f.L->uni_data_any, WILD);
		assert_int_equal(fx_walk(&f, false, 0), 0);
		assert_string_equal(f.snap->threads[0].frames[0].function, "?");
	}
	/* A file name that is not there. */
	pyimg_u64(&f.im, f.s.codes[0], f.L->co_filename, WILD);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_string_equal(f.snap->threads[0].frames[0].file, "?");
	assert_int_equal(f.snap->threads[0].frames[0].line, 12);
	free(big);
	fx_done(&f);
}

static void test_string_wrong_type(void **state)
{
	struct fx f;
	uint64_t name;
	struct pk_snapshot_opts o = { .want_frames = true };

	fx_init(&f, state, false);
	name = pyimg_str(&f.im, inner_name(&f));
	set_code_name(&f, f.s.codes[0], name);
	pyimg_u64(&f.im, name, f.L->ob_type, PYIMG_DICT_TYPE);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	/* 2.7: not a str, so read as a unicode object, whose buffer pointer is 0. */
	assert_string_equal(f.snap->threads[0].frames[0].function, "?");
	/* Without the type to check against, it is read for what it looks like. */
	pk_py_close(f.py);
	f.py = NULL;
	assert_int_equal(fx_walk_opts(&f, false, &o), 0);
	assert_string_equal(f.snap->threads[0].frames[0].function, inner_name(&f));
	fx_done(&f);
}

static void test_code_wrong_type(void **state)
{
	struct fx f;
	const struct pk_py_thread *t;
	struct pk_snapshot_opts o = { .want_frames = true };

	fx_init(&f, state, false);
	pyimg_u64(&f.im, f.s.codes[0], f.L->ob_type, PYIMG_STR_TYPE);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	t = &f.snap->threads[0];
	if (new_frames(&f)) {
		/* 3.11+: f_executable may be something else than code: the frame is not shown. */
		assert_int_equal(t->nframes, 1);
		assert_null(t->frames_error);
		assert_frame(&t->frames[0], "outer", "/app/main.py", 23);
	} else {
		assert_int_equal(t->nframes, 0);
		assert_frames_error_has(t, "bad code object");
	}
	/* A frame whose "code" is a string object, no type known: whatever it
	 * reads, it ends. */
	pk_py_close(f.py);
	f.py = NULL;
	pyimg_u64(&f.im, f.s.frames[0], f.L->fr_code, pyimg_str(&f.im, "not code at all"));
	assert_int_equal(fx_walk_opts(&f, false, &o), 0);
	assert_true(f.snap->threads[0].nframes <= 2);
	assert_thread1_ok(&f, &f.snap->threads[1]);
	fx_done(&f);
}

/* ------------------------------------------------------------ line tables */

static void test_linetable_absurd_size(void **state)
{
	static const uint64_t sizes[] = { 1ull << 40, (uint64_t)-1, PK_MAX_LINETABLE + 1, PK_MAX_LINETABLE };
	struct fx f;

	fx_init(&f, state, false);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		pyimg_u64(&f.im, f.s.tables[0], f.L->var_ob_size, sizes[i]);
		assert_int_equal(fx_walk(&f, false, 0), 0);
		/* No table: the first line of the code. */
		assert_frame(&f.snap->threads[0].frames[0], inner_name(&f), "/app/work.py", 10);
		assert_null(f.snap->threads[0].frames_error);
	}
	pyimg_u64(&f.im, f.s.codes[0], f.L->co_linetable >= 0 ? f.L->co_linetable : f.L->co_lnotab, WILD);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_int_equal(f.snap->threads[0].frames[0].line, 10);
	fx_done(&f);
}

static void test_linetable_lies(void **state)
{
	struct fx f;
	uint64_t sval;
	int expect;

	fx_init(&f, state, false);
	sval = f.s.tables[0] + (uint64_t)f.L->bytes_ob_sval;
	if (new_frames(&f)) {
		/* Not at an entry start: no line. */
		pyimg_u8(&f.im, sval, 0, 0x01);
		expect = 0;
	} else if (f.im.minor == 10 && f.im.major == 3) {
		/* Every range empty: no line. */
		pyimg_u8(&f.im, sval, 0, 0);
		expect = 0;
	} else {
		/* -128 lines (3.x) / +128 (2.7) */
		pyimg_u8(&f.im, sval, 1, 0x80);
		expect = f.im.major == 2 ? 10 + 128 : 0;
	}
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_frame(&f.snap->threads[0].frames[0], inner_name(&f), "/app/work.py", expect);
	/* A first line that is negative is no line. */
	pyimg_u32(&f.im, f.s.codes[1], f.L->co_firstlineno, (uint32_t)-1000);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_int_equal(f.snap->threads[1].frames[0].line, 0);
	fx_done(&f);
}

/* An instruction pointer (3.11+) or f_lasti far outside the code. */
static void test_position_absurd(void **state)
{
	struct fx f;
	const struct pk_py_thread *t;

	fx_init(&f, state, false);
	if (new_frames(&f))
		pyimg_u64(&f.im, f.s.frames[0], f.L->fr_instr, f.s.codes[0] + (1ull << 40));
	else
		pyimg_u32(&f.im, f.s.frames[0], f.L->fr_lasti, INT_MAX);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	t = &f.snap->threads[0];
	assert_int_equal(t->nframes, 2);
	assert_string_equal(t->frames[0].function, inner_name(&f));
	/* lnotab: the last line its table reaches; 3.10+: a position that
	 * cannot be is no position, and the code's first line is shown. */
	assert_int_equal(t->frames[0].line, (f.im.major == 2 || f.im.minor <= 9) ? 12 : 10);
	fx_done(&f);
}

/* ------------------------------------------------------------ dicts (thread names) */

static void dict_set_count(struct fx *f, uint64_t dict, uint64_t n)
{
	const struct pk_layout *L = f->L;
	uint64_t keys;

	if (f->im.major == 2) {
		pyimg_u64(&f->im, dict, L->dict27_ma_mask, n);
		return;
	}
	keys = pyimg_get_u64(&f->im, dict + (uint64_t)L->dict_ma_keys);
	if (f->im.minor >= 11)
		pyimg_u64(&f->im, keys, L->dk_nentries, n);
	else
		pyimg_u64(&f->im, keys, 32, n);
}

static void assert_no_names(const struct fx *f)
{
	for (size_t i = 0; i < f->snap->nthreads; i++)
		assert_null(f->snap->threads[i].name);
}

static void test_dict_huge(void **state)
{
	/* The last two are allowed sizes whose entries are not in memory. */
	static const uint64_t counts[] = { 1ull << 40, 1u << 20, (1u << 17) - 1, 60000 };
	struct fx f;

	fx_init(&f, state, true);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		dict_set_count(&f, f.s.names.modules, counts[i]);
		assert_int_equal(fx_walk(&f, true, 0), 0);
		assert_no_names(&f);
		assert_thread0_ok(&f, &f.snap->threads[0]);
	}
	dict_set_count(&f, f.s.names.modules, f.im.major == 2 ? 7 : 2);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_string_equal(f.snap->threads[1].name, "Worker-1");
	/* One thread's instance dict is absurd: only that thread has no name. */
	dict_set_count(&f, f.s.names.thread_dicts[1], 1ull << 33);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_string_equal(f.snap->threads[0].name, "MainThread");
	assert_null(f.snap->threads[1].name);
	if (f.im.major == 3 && f.im.minor >= 11) {
		uint64_t keys = pyimg_get_u64(&f.im, f.s.names.modules + (uint64_t)f.L->dict_ma_keys);
		dict_set_count(&f, f.s.names.thread_dicts[1], 2);
		pyimg_u8(&f.im, keys, f.L->dk_log2_index_bytes, 63);
		assert_int_equal(fx_walk(&f, true, 0), 0);
		assert_no_names(&f);
	} else if (f.im.major == 3) {
		uint64_t keys = pyimg_get_u64(&f.im, f.s.names.modules + (uint64_t)f.L->dict_ma_keys);
		dict_set_count(&f, f.s.names.thread_dicts[1], 2);
		pyimg_u64(&f.im, keys, 8, 1ull << 50); /* dk_size */
		assert_int_equal(fx_walk(&f, true, 0), 0);
		assert_no_names(&f);
	}
	fx_done(&f);
}

static void test_dict_self_reference(void **state)
{
	struct fx f;
	struct pk_snapshot_opts o = { .want_frames = true, .want_names = true };
	uint64_t slot;

	/* sys.modules["threading"] is sys.modules itself. */
	fx_init(&f, state, true);
	slot = pyimg_dict_value_slot(&f.im, f.s.names.modules, 1);
	pyimg_u64(&f.im, slot, 0, f.s.names.modules);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_no_names(&f);
	assert_thread0_ok(&f, &f.snap->threads[0]);
	fx_done(&f);

	/* threading.__dict__["_active"] is threading.__dict__. */
	fx_init(&f, state, true);
	slot = pyimg_dict_value_slot(&f.im, f.s.names.tmod_dict, 1);
	assert_int_equal(pyimg_get_u64(&f.im, slot), f.s.names.active);
	pyimg_u64(&f.im, slot, 0, f.s.names.tmod_dict);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_no_names(&f);
	fx_done(&f);

	/* _active maps each ident to _active. */
	fx_init(&f, state, true);
	for (size_t i = 0; i < 2; i++)
		pyimg_u64(&f.im, pyimg_dict_value_slot(&f.im, f.s.names.active, i), 0, f.s.names.active);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_no_names(&f);
	fx_done(&f);

	/* A dict whose keys object (2.7: table) is the dict itself. */
	fx_init(&f, state, true);
	pyimg_u64(&f.im, f.s.names.modules, f.im.major == 2 ? f.L->dict27_ma_table : f.L->dict_ma_keys,
		  f.s.names.modules);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_no_names(&f);
	fx_done(&f);

	/* A Thread whose "_name" is its own instance dict: not a string. */
	fx_init(&f, state, true);
	slot = pyimg_dict_value_slot(&f.im, f.s.names.thread_dicts[1], 1);
	pyimg_u64(&f.im, slot, 0, f.s.names.thread_dicts[1]);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_string_equal(f.snap->threads[0].name, "MainThread");
	assert_null(f.snap->threads[1].name);
	/* Without types to check, whatever the dict reads as, it is bounded. */
	pk_py_close(f.py);
	f.py = NULL;
	assert_int_equal(fx_walk_opts(&f, false, &o), 0);
	assert_string_equal(f.snap->threads[0].name, "MainThread");
	if (f.snap->threads[1].name != NULL)
		assert_true(strlen(f.snap->threads[1].name) <= 4 * PK_MAX_STRING);
	fx_done(&f);
}

/* ------------------------------------------------------------ _Py_DebugOffsets that lie */

static void dbg_set(struct fx *f, int32_t pos, uint64_t v)
{
	assert_true(pos != PK_NOFF);
	pyimg_u64(&f->im, f->s.rt, pos, v);
}

static void test_debug_offsets_lie(void **state)
{
	struct fx f;
	struct pk_mem *mem;

	fx_init(&f, state, true);
	if (f.L->dbg_size <= 0) {
		fx_done(&f);
		skip(); /* before 3.13 */
	}
	/* Sizes and offsets beyond anything real (but below the 16 MiB sanity cap). */
	dbg_set(&f, f.L->dbg_ts_size, 0xfffff0);
	dbg_set(&f, f.L->dbg_fr_size, 0xfffff0);
	dbg_set(&f, f.L->dbg_co_size, 0xfffff0);
	dbg_set(&f, f.L->dbg_uni_ascii_size, 0xfffff0);
	dbg_set(&f, f.L->dbg_uni_compact_size != PK_NOFF ? f.L->dbg_uni_compact_size : f.L->dbg_uni_ascii_size,
		0xfffff0);
	/* Beyond the thread state size it reports: inconsistent, not used. */
	dbg_set(&f, f.L->dbg_ts_next, 0xfffff0);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_null(strstr(pk_py_layout_source(f.py), "_Py_DebugOffsets"));
	assert_non_null(strstr(f.py->dbgoff_problem, "ts_next = 0xfffff0 is outside ts_size = 0xfffff0"));
	assert_int_equal(f.snap->nthreads, 2);
	pk_py_close(f.py);
	f.py = NULL;
	/* Inside it, but far beyond anything real: used, and bounded. */
	dbg_set(&f, f.L->dbg_ts_next, 0xffffe0);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_non_null(strstr(pk_py_layout_source(f.py), "_Py_DebugOffsets"));
	/* The next pointer lies beyond what is read of a thread state: one thread. */
	assert_int_equal(f.snap->nthreads, 1);
	assert_int_equal(f.snap->threads[0].nframes, 2);
	/* Strings: no name can be read with such a header. */
	assert_string_equal(f.snap->threads[0].frames[0].function, "?");
	assert_string_equal(f.snap->threads[0].frames[0].file, "?");
	pk_py_close(f.py);
	f.py = NULL;

	/* A version that is not the image's: the table's offsets stay. */
	dbg_set(&f, f.L->dbg_version, 0x030c00f0);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_null(strstr(pk_py_layout_source(f.py), "_Py_DebugOffsets"));
	assert_int_equal(f.snap->nthreads, 2);
	assert_thread0_ok(&f, &f.snap->threads[0]);
	pk_py_close(f.py);
	f.py = NULL;

	/* A free-threaded image read with the entry of a default build, or the
	 * other way round: refused, not walked with the wrong object layout. */
	dbg_set(&f, f.L->dbg_version, (uint64_t)f.im.major << 24 | (uint64_t)f.im.minor << 16 | 0xf0);
	dbg_set(&f, f.L->dbg_free_threaded, f.L->free_threaded ? 0 : 1);
	assert_int_equal(pk_mem_open_ops(&pyimg_ops, &f.im, &mem), 0);
	assert_int_equal(pk_py_open_image(f.L, f.im.major, f.im.minor, PYIMG_BASE, mem, &f.py), -ENOTSUP);
	assert_null(f.py);
	pk_mem_close(mem);
	fx_done(&f);
}

/* ------------------------------------------------------------ GIL */

static void test_gil(void **state)
{
	struct fx f;
	const struct pk_layout *L;

	fx_init(&f, state, false);
	L = f.L;
	if (L->rt_gilstate_tstate_current >= 0) {
		/* 3.7-3.11: the current thread state holds the GIL. */
		pyimg_u64(&f.im, f.s.rt, L->rt_gilstate_tstate_current, f.s.ts[1]);
	} else if (L->is_ceval_gil >= 0) {
		uint64_t gil = pyimg_alloc(&f.im, 0x200);
		pyimg_u64(&f.im, f.s.interp, L->is_ceval_gil, gil);
		pyimg_u32(&f.im, gil, L->gil_locked, 1);
		pyimg_u64(&f.im, gil, L->gil_last_holder, f.s.ts[1]);
		if (L->free_threaded) {
			/* Free-threaded, GIL not enabled: no thread holds or waits
			 * for one, whatever locked and last_holder say. */
			assert_int_equal(fx_walk(&f, false, 0), 0);
			assert_int_equal(f.snap->threads[0].gil, PK_GIL_ABSENT);
			assert_int_equal(f.snap->threads[1].gil, PK_GIL_ABSENT);
			/* Enabled at run time (PYTHON_GIL=1, a module without
			 * Py_mod_gil): read as on a default build. */
			pyimg_u32(&f.im, gil, L->gil_enabled, 1);
		}
	} else {
		fx_done(&f);
		skip(); /* 2.7, 3.6: statics found through symbols */
	}
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_int_equal(f.snap->threads[0].gil, PK_GIL_NONE);
	assert_int_equal(f.snap->threads[1].gil, PK_GIL_HOLDS);
	if (L->is_ceval_gil >= 0 && L->rt_gilstate_tstate_current < 0) {
		/* A wild GIL pointer: nobody holds it (free-threaded: there is
		 * none, as the build says), and nothing else changes. */
		pyimg_u64(&f.im, f.s.interp, L->is_ceval_gil, WILD);
		assert_int_equal(fx_walk(&f, false, 0), 0);
		assert_int_equal(f.snap->threads[1].gil, L->free_threaded ? PK_GIL_ABSENT : PK_GIL_NONE);
		assert_thread0_ok(&f, &f.snap->threads[0]);
	}
	fx_done(&f);
}

/* ------------------------------------------------------------ budgets */

/* Hundreds of thread states sharing one deep stack whose frames all name a
 * code object with 4096-character names: a few hundred KiB of target that
 * would make gigabytes of strings. The walk stops at its byte budget, the
 * first threads complete, the others say why they have no frames. */
static void test_walk_byte_budget(void **state)
{
	enum { NTS = 400, DEPTH = 3000 };
	struct fx f;
	char *big;
	uint64_t code, next = 0, head;
	uint64_t total = 0;
	size_t nbudget = 0;

	if (!heavy_version(state, 12, 14))
		skip();
	big = malloc(PK_MAX_STRING + 1);
	assert_non_null(big);
	memset(big, 'B', PK_MAX_STRING);
	big[PK_MAX_STRING] = '\0';
	fx_init(&f, state, false);
	code = pyimg_code(&f.im, big, big, big, 1, 0);
	for (int i = 0; i < DEPTH; i++)
		next = pyimg_frame(&f.im, code, next);
	head = f.s.ts[0];
	for (int i = 0; i < NTS; i++)
		head = pyimg_tstate(&f.im, 100 + (uint64_t)i, 0, next, head);
	pyimg_u64(&f.im, f.s.interp, f.L->is_tstate_head, head);
	assert_false(f.im.oom);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_int_equal(f.snap->nthreads, NTS + 2);
	assert_int_equal(f.snap->threads[0].nframes, PK_DEFAULT_MAX_FRAMES);
	assert_true(f.snap->threads[0].frames_truncated);
	assert_null(f.snap->threads[0].frames_error);
	for (size_t i = 0; i < f.snap->nthreads; i++) {
		const struct pk_py_thread *t = &f.snap->threads[i];
		for (size_t j = 0; j < t->nframes; j++)
			total += strlen(t->frames[j].function) + strlen(t->frames[j].file);
		if (t->frames_error != NULL && strstr(t->frames_error, "budget") != NULL)
			nbudget++;
	}
	/* 256 MiB of strings at most (and a frame's worth over). */
	assert_true(total <= (256u << 20));
	assert_true(total >= (200u << 20));
	assert_true(nbudget >= NTS - 20);
	free(big);
	fx_done(&f);
}

/* A thousand threads whose stacks are endless chains of frames that show
 * nothing: each stops at its own step limit, and the walk at its total. */
static void test_walk_step_budget(void **state)
{
	enum { NTS = 1100, DEPTH = 4 * PK_DEFAULT_MAX_FRAMES + 100 };
	struct fx f;
	uint64_t next = 0, head;
	const struct pk_py_thread *last;

	if (!heavy_version(state, 12, 12) || !pyimg_new_frames_v(state))
		skip();
	fx_init(&f, state, false);
	for (int i = 0; i < DEPTH; i++) {
		next = pyimg_frame(&f.im, f.s.codes[0], next);
		pyimg_u64(&f.im, next, f.L->fr_code, 0);
	}
	head = 0;
	for (int i = 0; i < NTS; i++)
		head = pyimg_tstate(&f.im, 100 + (uint64_t)i, 0, next, head);
	pyimg_u64(&f.im, f.s.interp, f.L->is_tstate_head, head);
	assert_false(f.im.oom);
	assert_int_equal(fx_walk(&f, false, 0), 0);
	assert_int_equal(f.snap->nthreads, NTS);
	assert_true(f.snap->threads[0].frames_truncated);
	assert_null(f.snap->threads[0].frames_error);
	last = &f.snap->threads[NTS - 1];
	assert_int_equal(last->nframes, 0);
	assert_frames_error_has(last, "walk budget exhausted");
	fx_done(&f);
}

/* _active names one thread 60000 times, and that Thread's __dict__ has
 * 60000 keys, none of them "_name": 3.6 billion key comparisons unless the
 * name lookups share a budget. The first thread is still named. */
static void test_names_budget(void **state)
{
	enum { N = 60000 };
	struct fx f;
	uint64_t *k, *v;
	uint64_t key, val, tdict, thread, id0, id1, slot;

	if (!heavy_version(state, 8, 12))
		skip();
	k = calloc(N, sizeof(*k));
	v = calloc(N, sizeof(*v));
	assert_non_null(k);
	assert_non_null(v);
	fx_init_cap(&f, state, true, 16u << 20);
	key = pyimg_str(&f.im, "_x");
	val = pyimg_str(&f.im, "value");
	for (size_t i = 0; i < N; i++) {
		k[i] = key;
		v[i] = val;
	}
	tdict = pyimg_dict(&f.im, N, k, v, true);
	thread = pyimg_dict_object(&f.im, tdict);
	id0 = pyimg_long(&f.im, PYIMG_IDENT0);
	id1 = pyimg_long(&f.im, PYIMG_IDENT1);
	/* _active: MainThread first, then the bad Thread under ident 1, N-1 times. */
	slot = pyimg_dict_value_slot(&f.im, f.s.names.active, 0);
	k[0] = id0;
	v[0] = pyimg_get_u64(&f.im, slot);
	for (size_t i = 1; i < N; i++) {
		k[i] = id1;
		v[i] = thread;
	}
	slot = pyimg_dict_value_slot(&f.im, f.s.names.tmod_dict, 1);
	pyimg_u64(&f.im, slot, 0, pyimg_dict(&f.im, N, k, v, false));
	assert_false(f.im.oom);
	assert_int_equal(fx_walk(&f, true, 0), 0);
	assert_string_equal(f.snap->threads[0].name, "MainThread");
	assert_null(f.snap->threads[1].name);
	assert_thread0_ok(&f, &f.snap->threads[0]);
	free(k);
	free(v);
	fx_done(&f);
}

/* ------------------------------------------------------------ the runner */

#define CASES(X)                                                                                                     \
	X(wellformed) X(thread_list_self_loop) X(thread_list_rho) X(thread_list_long) X(interp_list_loop)          \
	X(frame_chain_self_loop) X(frame_chain_long_cycle) X(frame_chain_too_deep) X(frame_chain_invisible)       \
	X(wild_first_frame) X(wild_cframe) X(wild_back) X(wild_code) X(wild_lists) X(truncated_thread_state)       \
	X(truncated_code) X(truncated_frame) X(truncated_string_at_end) X(absurd_string_lengths)                   \
	X(string_wrong_type) X(code_wrong_type) X(linetable_absurd_size) X(linetable_lies) X(position_absurd)      \
	X(dict_huge) X(dict_self_reference) X(debug_offsets_lie) X(gil) X(walk_byte_budget)                     \
	X(walk_step_budget) X(names_budget)

#define CASE_ENTRY(name) { #name, test_##name },
static const struct {
	const char *name;
	CMUnitTestFunction fn;
} cases[] = { CASES(CASE_ENTRY) };

int main(void)
{
	size_t ncases = sizeof(cases) / sizeof(cases[0]);
	struct ver *vers = calloc(pk_layouts_count, sizeof(*vers));
	struct CMUnitTest *tests = calloc(ncases * pk_layouts_count, sizeof(*tests));
	char **names = calloc(ncases * pk_layouts_count, sizeof(*names));
	size_t n = 0;
	int rc;

	if (vers == NULL || tests == NULL || names == NULL)
		return 1;
	/* Every case on every layout of the table: 2.7, 3.6 ... newest. */
	for (size_t v = 0; v < pk_layouts_count; v++) {
		vers[v].major = pk_layouts[v].version >> 8;
		vers[v].minor = pk_layouts[v].version & 0xff;
		vers[v].ft = pk_layouts[v].free_threaded != 0;
	}
	for (size_t c = 0; c < ncases; c++) {
		for (size_t v = 0; v < pk_layouts_count; v++) {
			names[n] = malloc(64);
			if (names[n] == NULL)
				return 1;
			snprintf(names[n], 64, "%s/%d.%d%s", cases[c].name, vers[v].major, vers[v].minor,
				 vers[v].ft ? "t" : "");
			tests[n].name = names[n];
			tests[n].test_func = cases[c].fn;
			tests[n].initial_state = &vers[v];
			n++;
		}
	}
	rc = _cmocka_run_group_tests("cpython_hostile", tests, n, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(tests);
	free(vers);
	return rc;
}
