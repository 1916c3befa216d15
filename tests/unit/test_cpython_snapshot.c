/* SPDX-License-Identifier: MIT */
/* The snapshot's reading, and its bounds.
 *
 * pk_py_snapshot() on a live process whose memory is a fake image: the
 * /proc side and the freeze are real (a forked child that sleeps in
 * pause()), the interpreter is tests/fuzz/pyimage.h's standard image read
 * through pk_mem_open_ops(). The image's reader can be made to fail while
 * the child is held in a ptrace stop, which is when pk_py_snapshot()
 * refreshes its page cache.
 *
 * The bounds of a reading (struct pk_read_limits) on a forged thread list
 * that does not loop: in thread states for a process of so many threads,
 * and in time, with a reader made slow. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../fuzz/pyimage.h"

struct failing {
	struct pyimg *im;
	pid_t child;
	unsigned failed;    /* reads refused */
};

/* Is the child held in a ptrace stop right now? */
static bool child_stopped(pid_t pid)
{
	struct pk_stat st;

	if (pk_proc_stat(pid, 0, &st) < 0) {
		pk_error_clear();
		return false;
	}
	return st.state == 't';
}

/* The image, except while the child is stopped: then every read fails
 * with an error that is no "unreadable address" (-EIO). */
static int failing_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct failing *f = ctx;

	if (child_stopped(f->child)) {
		f->failed++;
		return -EIO;
	}
	return pyimg_read(f->im, addr, buf, len);
}

static const struct pk_mem_ops failing_ops = { failing_read, NULL };

static pid_t start_child(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		/* Gone with the test, even one that fails before killing it, and
		 * holding none of its output (ctest waits for that to close). */
		int null = open("/dev/null", O_RDWR);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(1);
		for (;;)
			pause();
	}
	return pid;
}

static void stop_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Wait (bounded) until the child sleeps in pause(): then only a freeze
 * that stops every thread stops it. */
static void wait_sleeping(pid_t pid)
{
	for (int i = 0; i < 5000; i++) {
		struct pk_syscall sc;
		if (pk_proc_syscall(pid, pid, &sc) == 0 && sc.nr >= 0)
			return;
		pk_error_clear();
		usleep(1000);
	}
	fail_msg("child %d never blocked in pause()", (int)pid);
}

/* A page-cache refresh that fails inside the freeze (issue #10 B): the
 * snapshot must fail with that error and hand back nothing, never report
 * success with no snapshot (list and raise dereference it). */
static void test_refresh_fails_in_freeze(void **state)
{
	static const int vers[][2] = { { 3, 12 }, { 2, 7 } };
	(void)state;

	for (size_t v = 0; v < sizeof(vers) / sizeof(vers[0]); v++) {
		struct pyimg im;
		struct pyimg_std s;
		struct failing f = { 0 };
		struct pk_snapshot_opts o = { .freeze = PK_FREEZE_ALL, .want_frames = true };
		struct pk_py_snapshot *snap = (struct pk_py_snapshot *)(uintptr_t)1;
		struct pk_mem *mem;
		struct pk_py *py;
		int rc;

		assert_int_equal(pyimg_init(&im, vers[v][0], vers[v][1], 4u << 20), 0);
		pyimg_standard(&im, &s, false);
		assert_false(im.oom);
		f.im = &im;
		f.child = start_child();
		wait_sleeping(f.child);
		assert_int_equal(pk_mem_open_ops(&failing_ops, &f, &mem), 0);
		assert_int_equal(pk_py_open_image(im.L, im.major, im.minor, PYIMG_BASE, mem, &py), 0);
		py->pid = f.child;

		rc = pk_py_snapshot(py, &o, &snap);
		assert_true(f.failed > 0); /* the failure did happen inside the freeze */
		if (rc != -EIO || snap != NULL)
			stop_child(f.child);
		assert_null(snap);
		assert_int_equal(rc, -EIO);
		assert_false(child_stopped(f.child)); /* released */

		pk_py_close(py);
		stop_child(f.child);
		pyimg_free(&im);
		pk_error_clear();
	}
}

/* ------------------------------------------------------------ bounds */

static const int bound_vers[][2] = { { 3, 12 }, { 2, 7 }, { 3, 14 } };

/* n thread states after the standard image's two, overlapping 16 bytes
 * apart, each next pointing 16 bytes further: no loop, only a list longer
 * than the process could have. Returns the first. */
static uint64_t forged_tail(struct pyimg *im, const struct pyimg_std *s, size_t n)
{
	uint64_t r = pyimg_alloc(im, 16 * (n + 1) + 0x400);

	for (size_t k = 0; k < n; k++)
		pyimg_u64(im, r + 16 * k, im->L->ts_next, k + 1 < n ? r + 16 * (k + 1) : 0);
	pyimg_u64(im, s->ts[1], im->L->ts_next, r);
	return r;
}

/* Read slowly: every read of the image takes 20 us or more. */
static int slow_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct timespec ts = { 0, 20000 };

	nanosleep(&ts, NULL);
	return pyimg_read(ctx, addr, buf, len);
}

static const struct pk_mem_ops slow_ops = { slow_read, NULL };

/* A list longer than 2 thread states per thread + PK_SPARE_TSTATES is cut
 * there (issue #10 C): the threads before are read, frames and all, and
 * the snapshot says why it stopped. Without the bound it is read whole. */
static void test_bound_thread_states(void **state)
{
	(void)state;
	for (size_t v = 0; v < sizeof(bound_vers) / sizeof(bound_vers[0]); v++) {
		struct pyimg im;
		struct pyimg_std s;
		struct pk_py *py;
		struct pk_py_snapshot *snap = NULL;
		struct pk_snapshot_opts o = { .want_frames = true };
		struct pk_read_limits lim = { .process_threads = 10 };
		const size_t n = 6000, bound = 10 * 2 + PK_SPARE_TSTATES;
		uint64_t first;

		assert_int_equal(pyimg_init(&im, bound_vers[v][0], bound_vers[v][1], 1u << 20), 0);
		pyimg_standard(&im, &s, false);
		first = forged_tail(&im, &s, n);
		assert_false(im.oom);
		assert_int_equal(pyimg_open(&im, true, &py), 0);

		assert_int_equal(pk_py_read_image_limited(py, &o, &lim, &snap), 0);
		assert_int_equal(snap->nthreads, bound);
		assert_non_null(strstr(snap->cut, "cut after 4116 thread states"));
		assert_non_null(strstr(snap->cut, "forged or cyclic"));
		assert_int_equal(snap->threads[0].ident, PYIMG_IDENT0);
		assert_int_equal(snap->threads[0].nframes, 2);
		assert_int_equal(snap->threads[2].tstate, first);
		assert_int_equal(snap->threads[bound - 1].tstate, first + 16 * (bound - 3));
		pk_py_snapshot_free(snap);

		/* Unbounded (a memory image): the whole list, nothing cut. */
		assert_int_equal(pk_py_read_image(py, &o, &snap), 0);
		assert_int_equal(snap->nthreads, n + 2);
		assert_string_equal(snap->cut, "");
		pk_py_snapshot_free(snap);

		pk_py_close(py);
		pyimg_free(&im);
		pk_error_clear();
	}
}

/* The time bound: with every read slow, a list of 20000 thread states
 * would take seconds; the reading stops once its 20 ms have passed, keeps
 * the states read so far, in order, and says so. (What is asserted is
 * the outcome, not a duration.) */
static void test_bound_time(void **state)
{
	(void)state;
	for (size_t v = 0; v < sizeof(bound_vers) / sizeof(bound_vers[0]); v++) {
		struct pyimg im;
		struct pyimg_std s;
		struct pk_mem *mem;
		struct pk_py *py;
		struct pk_py_snapshot *snap = NULL;
		struct pk_snapshot_opts o = { .want_frames = true };
		struct pk_read_limits lim = { .budget_ns = 20000000 };
		const size_t n = 20000;
		uint64_t first;

		assert_int_equal(pyimg_init(&im, bound_vers[v][0], bound_vers[v][1], 1u << 20), 0);
		pyimg_standard(&im, &s, false);
		first = forged_tail(&im, &s, n);
		assert_false(im.oom);
		assert_int_equal(pk_mem_open_ops(&slow_ops, &im, &mem), 0);
		assert_int_equal(pk_py_open_image(im.L, im.major, im.minor, PYIMG_BASE, mem, &py), 0);

		assert_int_equal(pk_py_read_image_limited(py, &o, &lim, &snap), 0);
		assert_true(snap->nthreads < n);
		assert_non_null(strstr(snap->cut, "the 20 ms allowed"));
		for (size_t i = 2; i < snap->nthreads; i++)
			assert_int_equal(snap->threads[i].tstate, first + 16 * (i - 2));
		pk_py_snapshot_free(snap);

		pk_py_close(py);
		pyimg_free(&im);
		pk_error_clear();
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refresh_fails_in_freeze),
		cmocka_unit_test(test_bound_thread_states),
		cmocka_unit_test(test_bound_time),
	};


	return cmocka_run_group_tests(tests, NULL, NULL);
}
