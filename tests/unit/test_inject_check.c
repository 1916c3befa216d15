/* SPDX-License-Identifier: MIT */
/* Hijack-point checks and refusals of the remote-call engine on forked
 * children (same addresses as this process): asleep in nanosleep (safe),
 * in futex, running, stopped, a thread of another process; bad function
 * addresses; and one real call. ptrace of one's own child is needed for the
 * last test only (skipped without it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pk_attach.h"
#include "pk_inject.h"
#include "pk_log.h"

enum child_kind { C_SLEEP, C_FUTEX, C_BUSY };

static long child_fn(unsigned long a, unsigned long b);
long child_fn(unsigned long a, unsigned long b)
{
	return (long)(a * 3 + b);
}

/* Children of the running test, killed by teardown even when it fails. */
static pid_t kids[4];

static pid_t spawn(enum child_kind kind)
{
	pid_t pid = fork();
	size_t i;

	assert_true(pid >= 0);
	for (i = 0; pid > 0 && i < 4; i++)
		if (kids[i] == 0) {
			kids[i] = pid;
			break;
		}
	if (pid == 0) {
		static int word;
		struct timespec ts = { .tv_sec = 1, .tv_nsec = 0 };

		for (;;) {
			if (kind == C_SLEEP)
				nanosleep(&ts, NULL);
			else if (kind == C_FUTEX)
				syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
			else
				__asm__ volatile("" ::: "memory");
		}
	}
	return pid;
}

/* Until the child shows the state (and syscall) we want. */
static void await(pid_t pid, char state, long nr)
{
	int i;

	for (i = 0; i < 4000; i++) {
		struct pk_status st;
		struct pk_syscall sc;

		if (pk_proc_status(pid, pid, &st) == 0 && st.state == state &&
		    (nr < 0 || (pk_proc_syscall(pid, pid, &sc) == 0 && sc.nr == nr)))
			return;
		usleep(1000);
	}
	fail_msg("child %d never reached state %c / syscall %ld", (int)pid, state, nr);
}

static void reap(pid_t pid)
{
	size_t i;

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (i = 0; i < 4; i++)
		if (kids[i] == pid)
			kids[i] = 0;
}

static int reap_all(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++)
		if (kids[i] > 0)
			reap(kids[i]);
	return 0;
}

static int tracer_of(pid_t pid)
{
	struct pk_status st;

	assert_int_equal(pk_proc_status(pid, pid, &st), 0);
	return st.tracer_pid;
}

static void sleeping_thread_is_safe(void **state)
{
	pid_t pid = spawn(C_SLEEP);
	char why[256];

	(void)state;
	await(pid, 'S', SYS_clock_nanosleep);
	assert_int_equal(pk_rcall_check_thread(pid, pid, why, sizeof(why)), 0);
	reap(pid);
}

static void futex_is_refused(void **state)
{
	pid_t pid = spawn(C_FUTEX);
	struct pk_rcall_spec spec = { .fn_call = (uint64_t)(uintptr_t)child_fn };
	struct pk_rcall_result r;
	char why[256];

	(void)state;
	await(pid, 'S', SYS_futex);
	assert_int_equal(pk_rcall_check_thread(pid, pid, why, sizeof(why)), -EAGAIN);
	assert_non_null(strstr(why, "futex"));
	pk_error_clear();
	assert_int_equal(pk_rcall_run(pid, pid, &spec, &r), -EAGAIN);
	assert_non_null(strstr(pk_error_message(), "futex"));
	assert_int_equal(tracer_of(pid), 0);
	assert_false(r.completed);
	reap(pid);
}

static void running_is_refused(void **state)
{
	pid_t pid = spawn(C_BUSY);
	char why[256];

	(void)state;
	await(pid, 'R', -1);
	assert_int_equal(pk_rcall_check_thread(pid, pid, why, sizeof(why)), -EAGAIN);
	reap(pid);
}

static void stopped_is_refused(void **state)
{
	pid_t pid = spawn(C_SLEEP);
	char why[256];

	(void)state;
	await(pid, 'S', SYS_clock_nanosleep);
	kill(pid, SIGSTOP);
	await(pid, 'T', -1);
	/* The teardown's SIGKILL works on a stopped child too. */
	assert_int_equal(pk_rcall_check_thread(pid, pid, why, sizeof(why)), -EAGAIN);
	assert_non_null(strstr(why, "stopped"));
	kill(pid, SIGCONT);
	reap(pid);
}

static void foreign_thread_is_an_error(void **state)
{
	pid_t a = spawn(C_SLEEP), b = spawn(C_SLEEP);
	char why[256];

	(void)state;
	await(a, 'S', SYS_clock_nanosleep);
	await(b, 'S', SYS_clock_nanosleep);
	pk_error_clear();
	assert_int_equal(pk_rcall_check_thread(a, b, why, sizeof(why)), -ESRCH);
	reap(a);
	reap(b);
}

static void bad_addresses_are_refused(void **state)
{
	static const int data = 1;
	pid_t pid = spawn(C_SLEEP);
	struct pk_rcall_spec spec = { .fn_call = 0 };
	struct pk_rcall_result r;

	(void)state;
	await(pid, 'S', SYS_clock_nanosleep);
	assert_int_equal(pk_rcall_run(pid, pid, &spec, &r), -EINVAL);
	spec.fn_call = (uint64_t)(uintptr_t)&data; /* not executable */
	pk_error_clear();
	assert_int_equal(pk_rcall_run(pid, pid, &spec, &r), -EINVAL);
	spec.fn_call = (uint64_t)(uintptr_t)child_fn;
	spec.fn_ensure = 0x10; /* unmapped */
	assert_int_equal(pk_rcall_run(pid, pid, &spec, &r), -EINVAL);
	assert_int_equal(tracer_of(pid), 0);
	reap(pid);
}

static void one_call(void **state)
{
	pid_t pid = spawn(C_SLEEP);
	struct pk_rcall_spec spec = {
		.fn_call = (uint64_t)(uintptr_t)child_fn,
		.fn_errno = (uint64_t)(uintptr_t)__errno_location,
		.call_arg0 = 1000,
		.call_arg1 = 7,
	};
	struct pk_rcall_result r;
	int ret, st;

	(void)state;
	await(pid, 'S', SYS_clock_nanosleep);
	pk_error_clear();
	ret = pk_rcall_run(pid, pid, &spec, &r);
	if (ret == -EPERM) {
		reap(pid);
		skip();
	}
	assert_int_equal(ret, 0);
	assert_true(r.completed);
	assert_int_equal(r.step, PK_RCALL_DONE);
	assert_int_equal(r.call_ret, 3007);
	assert_true(r.errno_kept);
	assert_int_equal(r.syscall_nr, SYS_clock_nanosleep);
	assert_true(r.cave != 0 && r.frame != 0 && r.frame % 64 == 0);
	assert_true(r.freeze_ns > 0 && r.freeze_ns <= r.wall_ns);
	assert_int_equal(tracer_of(pid), 0);
	/* Still alive and back asleep in its loop. */
	await(pid, 'S', -1);
	assert_int_equal(waitpid(pid, &st, WNOHANG), 0);
	reap(pid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(sleeping_thread_is_safe, reap_all),
		cmocka_unit_test_teardown(futex_is_refused, reap_all),
		cmocka_unit_test_teardown(running_is_refused, reap_all),
		cmocka_unit_test_teardown(stopped_is_refused, reap_all),
		cmocka_unit_test_teardown(foreign_thread_is_an_error, reap_all),
		cmocka_unit_test_teardown(bad_addresses_are_refused, reap_all),
		cmocka_unit_test_teardown(one_call, reap_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
