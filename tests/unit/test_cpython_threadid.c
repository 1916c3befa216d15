/* SPDX-License-Identifier: MIT */
/* Thread identity (cpython/threadid.c) on a fake process: C library thread
 * descriptors in a memory image (tests/fuzz/pyimage.h), thread states and
 * live threads given directly. Each case is a shape seen in real servers:
 * a state inherited across fork (uwsgi's worker), a state created on one
 * thread and run on another (uwsgi's subinterpreter states), several states
 * on one thread, stale descriptors, and nothing to tell. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../fuzz/pyimage.h"

#define TID_OFF 0x2d0 /* where this fake C library keeps the TID; found, not known, by pykill */
#define DESC_SIZE 0x1000
#define PID 1000      /* the thread-group leader */

struct fx {
	struct pyimg im;
	struct pk_py *py;
	uint64_t desc[4];  /* descriptors of threads 1000..1003 */
};

static void fx_init(struct fx *f)
{
	struct pk_mem *mem = NULL;

	memset(f, 0, sizeof(*f));
	assert_int_equal(pyimg_init(&f->im, 3, 11, 1u << 20), 0);
	/* Room below the first descriptor, for the stacks the tests place there. */
	pyimg_alloc(&f->im, 0x40000);
	for (int i = 0; i < 4; i++) {
		uint64_t d = pyimg_alloc(&f->im, 0x20000) + 0x1f000 - DESC_SIZE;
		int32_t tid = PID + i;
		f->desc[i] = d;
		pyimg_u64(&f->im, d, 0, d);                /* the TCB's self pointer */
		pyimg_put(&f->im, d, TID_OFF, &tid, 4);
	}
	assert_false(f->im.oom);
	assert_int_equal(pk_mem_open_ops(&pyimg_ops, &f->im, &mem), 0);
	assert_int_equal(pk_py_open_image(f->im.L, 3, 11, PYIMG_BASE, mem, &f->py), 0);
}

static void fx_done(struct fx *f)
{
	pk_py_close(f->py);
	pyimg_free(&f->im);
}

static struct pk_py_thread state(int64_t interp, uint64_t ident, pid_t native, uint64_t cstack)
{
	struct pk_py_thread t;

	memset(&t, 0, sizeof(t));
	t.interp_id = interp;
	t.main_interp = interp == 0;
	t.tstate = 0x5000 + (uint64_t)interp * 0x100 + ident % 0x100 + cstack % 0x10;
	t.ident = ident;
	t.native_tid = native;
	t.cstack = cstack;
	return t;
}

static void tasks4(struct fx *f, struct pk_id_task *tasks, bool with_sp)
{
	for (int i = 0; i < 4; i++) {
		memset(&tasks[i], 0, sizeof(tasks[i]));
		tasks[i].tid = tasks[i].ns_tid = PID + i;
		/* The main thread's stack is far above; the others end below their descriptor. */
		if (with_sp)
			tasks[i].sp = i == 0 ? 0x7ffd00000000ull : f->desc[i] - 0x8000;
	}
}

/* uwsgi --master: the worker's state was made by the master's thread 900;
 * its ident is the descriptor the worker's main thread inherited. */
static void test_inherited_across_fork(void **state_)
{
	struct fx f;
	struct pk_id_task tasks[4];
	struct pk_py_thread th[2];

	(void)state_;
	fx_init(&f);
	tasks4(&f, tasks, false);
	th[0] = state(0, f.desc[0], 900, 0);          /* core 0, from the master */
	th[1] = state(0, f.desc[1], PID + 1, 0);     /* core 1, made in the worker */
	pk_threads_identify(f.py, th, 2, tasks, 4, PID);
	assert_int_equal(th[0].tid, PID);
	assert_int_equal(th[0].tid_from, PK_TID_FROM_PTHREAD);
	assert_true(th[0].inherited);
	assert_int_equal(th[1].tid, PID + 1);
	assert_int_equal(th[1].tid_from, PK_TID_FROM_NATIVE);
	assert_false(th[1].inherited);
	assert_false(th[0].idle || th[1].idle || th[0].ambiguous);
	assert_true(tasks[0].has_state && tasks[1].has_state && !tasks[2].has_state);
	fx_done(&f);
}

/* A parent's state whose thread did not survive the fork: its descriptor
 * was freed in the child (TID 0), or reused by a new thread of the child. */
static void test_stale_states(void **state_)
{
	struct fx f;
	struct pk_id_task tasks[4];
	struct pk_py_thread th[3];
	int32_t zero = 0;

	(void)state_;
	fx_init(&f);
	tasks4(&f, tasks, false);
	pyimg_put(&f.im, f.desc[3], TID_OFF, &zero, 4);
	th[0] = state(0, f.desc[0], PID, 0);
	th[1] = state(0, f.desc[3], 901, 0);          /* freed descriptor */
	th[2] = state(0, f.desc[2], 902, 0);          /* reused by live thread 1002 */
	pk_threads_identify(f.py, th, 3, tasks, 4, PID);
	assert_int_equal(th[0].tid, PID);
	assert_int_equal(th[1].tid, 0);
	assert_int_equal(th[1].tid_from, PK_TID_FROM_NONE);
	assert_int_equal(th[2].tid, 0);
	assert_int_equal(th[2].ident_tid, 0);
	fx_done(&f);
}

/* uwsgi with two mounts: interpreter 1's states were all made on the main
 * thread (ident = its descriptor); the one running on core 2 is found from
 * its stack, and core 2's own state is idle there. */
static void test_state_runs_on_another_thread(void **state_)
{
	struct fx f;
	struct pk_id_task tasks[4];
	struct pk_py_thread th[5];
	size_t nos = 0;

	(void)state_;
	fx_init(&f);
	tasks4(&f, tasks, true);
	th[0] = state(1, f.desc[0], 900, f.desc[2] - 0x4000); /* runs on 1002 */
	th[1] = state(1, f.desc[0], 900, 0);                  /* idle, on the main thread by ident */
	th[2] = state(0, f.desc[2], PID + 2, 0);              /* core 2's own, swapped out */
	th[3] = state(0, f.desc[0], 900, 0x7ffd00001000ull);   /* the main thread runs Python */
	th[4] = state(0, f.desc[1], PID + 1, 0);              /* core 1, alone */
	pk_threads_identify(f.py, th, 5, tasks, 4, PID);
	assert_int_equal(th[0].tid, PID + 2);
	assert_int_equal(th[0].tid_from, PK_TID_FROM_STACK);
	assert_int_equal(th[0].ident_tid, PID);
	assert_true(th[0].inherited);
	assert_false(th[0].idle);
	assert_int_equal(th[2].tid, PID + 2);
	assert_true(th[2].idle);
	assert_int_equal(th[1].tid, PID);
	assert_true(th[1].idle);
	assert_int_equal(th[3].tid, PID);
	assert_false(th[3].idle);
	assert_int_equal(th[3].tid_from, PK_TID_FROM_STACK);
	assert_false(th[4].idle);
	for (int i = 0; i < 5; i++)
		assert_false(th[i].ambiguous);
	/* Rows: each thread's active state first, its idle ones after it. */
	assert_int_equal(pk_threads_order(th, 5, &nos), 0);
	assert_int_equal(nos, 3);
	for (int i = 0; i < 5; i++) {
		if (!th[i].idle)
			continue;
		assert_true(i > 0);
		assert_int_equal(th[i - 1].tid, th[i].tid);
	}
	fx_done(&f);
}

/* Nested: a thread runs a subinterpreter from Python code; both states are
 * on its stack, the innermost (lowest address) is the active one. */
static void test_nested_innermost_wins(void **state_)
{
	struct fx f;
	struct pk_id_task tasks[4];
	struct pk_py_thread th[2];

	(void)state_;
	fx_init(&f);
	tasks4(&f, tasks, true);
	th[0] = state(0, f.desc[1], PID + 1, f.desc[1] - 0x1000);
	th[1] = state(1, f.desc[1], PID + 1, f.desc[1] - 0x3000);
	pk_threads_identify(f.py, th, 2, tasks, 4, PID);
	assert_int_equal(th[0].tid, PID + 1);
	assert_int_equal(th[1].tid, PID + 1);
	assert_true(th[0].idle);
	assert_false(th[1].idle);
	fx_done(&f);
}

/* Several states on an idle thread, none running Python code: nothing
 * tells which is active; the row shows the main interpreter's. */
static void test_ambiguous(void **state_)
{
	struct fx f;
	struct pk_id_task tasks[4];
	struct pk_py_thread th[3];

	(void)state_;
	fx_init(&f);
	tasks4(&f, tasks, true);
	th[0] = state(1, f.desc[0], PID, 0);
	th[1] = state(0, f.desc[0], PID, 0);
	th[2] = state(2, f.desc[0], PID, 0);
	pk_threads_identify(f.py, th, 3, tasks, 4, PID);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(th[i].tid, PID);
		assert_true(th[i].ambiguous);
	}
	assert_false(th[1].idle);
	assert_true(th[0].idle && th[2].idle);
	fx_done(&f);
}

/* An address on no known stack: above a thread's stack pointer but past
 * another thread's descriptor (that thread's stack pointer unknown) is not
 * taken for the lower thread's. */
static void test_descriptor_between(void **state_)
{
	struct fx f;
	struct pk_id_task tasks[4];
	struct pk_py_thread th[3];

	(void)state_;
	fx_init(&f);
	tasks4(&f, tasks, true);
	tasks[2].sp = 0; /* running, not stopped: unknown */
	th[0] = state(1, f.desc[0], 900, f.desc[2] - 0x4000); /* on 1002's stack */
	th[1] = state(0, f.desc[1], PID + 1, 0);
	th[2] = state(0, f.desc[2], PID + 2, 0);
	pk_threads_identify(f.py, th, 3, tasks, 4, PID);
	/* Not on 1001 (whose descriptor lies between); falls back to its ident. */
	assert_int_equal(th[0].tid, PID);
	assert_int_equal(th[0].tid_from, PK_TID_FROM_PTHREAD);
	fx_done(&f);
}

/* The TID offset comes from stopped threads' thread pointers alone too,
 * and a memory image (no task) keeps the state's own word. */
static void test_offset_from_thread_pointer_and_image(void **state_)
{
	struct fx f;
	struct pk_id_task tasks[4];
	struct pk_py_thread th[1];

	(void)state_;
	fx_init(&f);
	tasks4(&f, tasks, false);
	tasks[3].tp = f.desc[3];
	th[0] = state(0, f.desc[0], 0, 0); /* before 3.11: no native_thread_id */
	pk_threads_identify(f.py, th, 1, tasks, 4, PID);
	assert_int_equal(th[0].tid, PID);
	assert_int_equal(th[0].tid_from, PK_TID_FROM_PTHREAD);
	assert_false(th[0].inherited);
	th[0] = state(0, f.desc[0], 4242, 0);
	pk_threads_identify(f.py, th, 1, NULL, 0, PID);
	assert_int_equal(th[0].tid, 0);
	assert_int_equal(th[0].ns_tid, 4242);
	fx_done(&f);
}

/* Words read before the freeze are used while their TID names a live
 * thread; one that names none (the descriptor was reused by a thread born
 * since) is read again. */
static void test_prefetched_words(void **state_)
{
	struct fx f;
	struct pk_id_task tasks[4];
	struct pk_py_thread th[2];
	int32_t v;
	uint64_t reads;

	(void)state_;
	fx_init(&f);
	tasks4(&f, tasks, false);
	v = 777; /* a thread that has ended */
	pyimg_put(&f.im, f.desc[3], TID_OFF, &v, 4);
	th[0] = state(0, f.desc[1], PID + 1, 0);
	th[1] = state(0, f.desc[3], 0, 0);
	pk_threads_prefetch(f.py, th, 2, tasks, 4);
	v = PID + 3; /* its descriptor, reused by thread 1003 */
	pyimg_put(&f.im, f.desc[3], TID_OFF, &v, 4);
	reads = f.im.reads;
	pk_threads_identify(f.py, th, 2, tasks, 4, PID);
	assert_int_equal(th[0].tid, PID + 1);
	assert_int_equal(th[1].tid, PID + 3);
	assert_int_equal(th[1].tid_from, PK_TID_FROM_PTHREAD);
	/* Only the second descriptor was read again, in one batch. */
	assert_int_equal(f.im.reads - reads, 2);
	fx_done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inherited_across_fork),
		cmocka_unit_test(test_stale_states),
		cmocka_unit_test(test_state_runs_on_another_thread),
		cmocka_unit_test(test_nested_innermost_wins),
		cmocka_unit_test(test_ambiguous),
		cmocka_unit_test(test_descriptor_between),
		cmocka_unit_test(test_offset_from_thread_pointer_and_image),
		cmocka_unit_test(test_prefetched_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
