/* SPDX-License-Identifier: MIT */
/* attach: the generated system call table and pykill's argument knowledge. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/syscall.h>

#include "pk_attach.h"

static void test_names_match_headers(void **state)
{
	(void)state;
	/* The test compiles against the same <sys/syscall.h>: SYS_x is __NR_x. */
	assert_string_equal(pk_syscall_name(SYS_read), "read");
	assert_string_equal(pk_syscall_name(SYS_write), "write");
	assert_string_equal(pk_syscall_name(SYS_futex), "futex");
	assert_string_equal(pk_syscall_name(SYS_clock_nanosleep), "clock_nanosleep");
	assert_string_equal(pk_syscall_name(SYS_epoll_pwait), "epoll_pwait");
	assert_string_equal(pk_syscall_name(SYS_recvfrom), "recvfrom");
	assert_string_equal(pk_syscall_name(SYS_restart_syscall), "restart_syscall");
	assert_string_equal(pk_syscall_name(SYS_exit_group), "exit_group");
	assert_int_equal(pk_syscall_number("read"), SYS_read);
	assert_int_equal(pk_syscall_number("futex"), SYS_futex);
	assert_int_equal(pk_syscall_number("openat"), SYS_openat);
	assert_int_equal(pk_syscall_number("no_such_call"), -1);
	assert_int_equal(pk_syscall_number(""), -1);
	assert_int_equal(pk_syscall_number(NULL), -1);
	assert_null(pk_syscall_name(-1));
	assert_null(pk_syscall_name(PK_SYSCALL_RUNNING));
	assert_null(pk_syscall_name(1L << 40));
}

static void test_round_trip(void **state)
{
	int named = 0;

	(void)state;
	for (long nr = 0; nr < 4096; nr++) {
		const char *name = pk_syscall_name(nr);

		if (name == NULL)
			continue;
		named++;
		assert_true(name[0] != '\0');
		assert_int_equal(pk_syscall_number(name), nr);
	}
	/* Every architecture has a few hundred. */
	assert_true(named > 250);
}

static void test_fd_args(void **state)
{
	(void)state;
	assert_int_equal(pk_syscall_fd_args(SYS_read), 1u);
	assert_int_equal(pk_syscall_fd_args(SYS_recvfrom), 1u);
	assert_int_equal(pk_syscall_fd_args(SYS_accept4), 1u);
#ifdef SYS_epoll_wait /* not on every architecture */
	assert_int_equal(pk_syscall_fd_args(SYS_epoll_wait), 1u);
#endif
	assert_int_equal(pk_syscall_fd_args(SYS_ioctl), 1u);
#ifdef SYS_dup2 /* not on every architecture */
	assert_int_equal(pk_syscall_fd_args(SYS_dup2), 3u);
#endif
	assert_int_equal(pk_syscall_fd_args(SYS_splice), 5u);
	assert_int_equal(pk_syscall_fd_args(SYS_mmap), 1u << 4);
#ifdef SYS_poll /* not on every architecture */
	assert_int_equal(pk_syscall_fd_args(SYS_poll), 0u);   /* fds in an array */
#endif
#ifdef SYS_select /* not on every architecture */
	assert_int_equal(pk_syscall_fd_args(SYS_select), 0u);
#endif
	assert_int_equal(pk_syscall_fd_args(SYS_futex), 0u);
	assert_int_equal(pk_syscall_fd_args(-1), 0u);
	assert_int_equal(pk_syscall_fd_args(PK_SYSCALL_RUNNING), 0u);
	assert_int_equal(pk_syscall_fd_args(100000), 0u);
}

static void test_nargs(void **state)
{
	(void)state;
	assert_int_equal(pk_syscall_nargs(SYS_futex), 6);
	assert_int_equal(pk_syscall_nargs(SYS_clock_nanosleep), 4);
	assert_int_equal(pk_syscall_nargs(SYS_nanosleep), 2);
	assert_int_equal(pk_syscall_nargs(SYS_wait4), 4);
	assert_int_equal(pk_syscall_nargs(SYS_read), 3);
#ifdef SYS_pause /* not on every architecture */
	assert_int_equal(pk_syscall_nargs(SYS_pause), 0);
#endif
	assert_int_equal(pk_syscall_nargs(SYS_restart_syscall), 0);
	/* unknown to pykill: show all six */
	assert_int_equal(pk_syscall_nargs(SYS_personality), 6);
	assert_int_equal(pk_syscall_nargs(-1), 6);
	assert_int_equal(pk_syscall_nargs(100000), 6);
	for (long nr = 0; nr < 1024; nr++) {
		int n = pk_syscall_nargs(nr);

		assert_true(n >= 0 && n <= 6);
		/* an fd argument is always among the meaningful ones */
		assert_true(pk_syscall_fd_args(nr) < (1u << n) || pk_syscall_fd_args(nr) == 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_match_headers),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_fd_args),
		cmocka_unit_test(test_nargs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
