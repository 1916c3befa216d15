/* pk_py_snapshot() on a live process whose memory is a fake image: the
 * /proc side and the freeze are real (a forked child that sleeps in
 * pause()), the interpreter is tests/fuzz/pyimage.h's standard image read
 * through pk_mem_open_ops(). The image's reader can be made to fail while
 * the child is held in a ptrace stop, which is when pk_py_snapshot()
 * refreshes its page cache. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refresh_fails_in_freeze),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
