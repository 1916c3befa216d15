/* SPDX-License-Identifier: MIT */
/* attach: the parsers behind list's blocked time and fd descriptions
 * (sched's se.exec_start, /proc/net/{tcp,udp,unix} lines), and what a live
 * fd of this test resolves to. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pk_attach.h"

static void test_sched_parse(void **state)
{
	const char *text = "python3 (123, #threads: 2)\n"
			   "-------------------------------------------------------------------\n"
			   "se.exec_start                                :      48708660.193878\n"
			   "se.vruntime                                  :           889.030794\n";
	uint64_t ns = 0;

	(void)state;
	assert_int_equal(pk_sched_parse(text, strlen(text), &ns), 0);
	assert_true(ns == 48708660193878ull);
	/* Fewer decimals are scaled, more are cut: no UB either way. */
	assert_int_equal(pk_sched_parse("se.exec_start : 5.5\n", 20, &ns), 0);
	assert_true(ns == 5500000ull);
	assert_int_equal(pk_sched_parse("se.exec_start : 1.1234567\n", 26, &ns), 0);
	assert_true(ns == 1123456ull);
	assert_int_equal(pk_sched_parse("se.vruntime : 1.0\n", 18, &ns), -ENOENT);
	assert_int_equal(pk_sched_parse("se.exec_start : x\n", 18, &ns), -EINVAL);
	assert_int_equal(pk_sched_parse("se.exec_start : 1.0 junk\n", 25, &ns), -EINVAL);
	assert_int_equal(pk_sched_parse("se.exec_start : 99999999999999999999999\n", 40, &ns), -ERANGE);
	assert_int_equal(pk_sched_parse("", 0, &ns), -ENOENT);
}

static void test_sched_offcpu(void **state)
{
	uint64_t ns = 7;

	(void)state;
	assert_int_equal(pk_sched_offcpu(5000, 3000, &ns), 0);
	assert_true(ns == 2000);
	/* Another CPU's clock a little behind: 0, not a wrap to 584 years. */
	assert_int_equal(pk_sched_offcpu(3000, 3001, &ns), 0);
	assert_true(ns == 0);
	/* Just migrated, not run since: unknown (the trial saw "1h03m", the
	 * uptime, for a thread 10 s old). */
	ns = 7;
	assert_int_equal(pk_sched_offcpu(3790000000000ull, 0, &ns), -ENODATA);
	assert_true(ns == 7);
}

static void test_sched_self(void **state)
{
	uint64_t now = 0, off = 1;

	(void)state;
	if (access("/proc/thread-self/sched", R_OK) != 0)
		skip();
	assert_int_equal(pk_sched_now(&now), 0);
	assert_true(now > 0);
	/* This thread runs: its last time on a CPU is now, give or take. */
	assert_int_equal(pk_proc_offcpu_ns(getpid(), getpid(), now, &off), 0);
	assert_true(off < 1000000000ull);
}

static void test_inet_lines(void **state)
{
	struct pk_fd_info fi;
	const char *v4 = "   3: 0100007F:D3BC 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 "
			 "900377 1 0000000000000000 20 4 30 10 -1\n";
	const char *v6 = "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A "
			 "00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n";
	const char *udp = "  711: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 "
			  "17 2 0000000000000000 0\n";

	(void)state;
	memset(&fi, 0, sizeof(fi));
	assert_int_equal(pk_net_inet_line_parse(v4, false, true, 900377, &fi), 0);
	assert_int_equal(fi.kind, PK_FD_INET);
	assert_string_equal(fi.proto, "tcp");
	assert_string_equal(fi.local, "127.0.0.1:54204");
	assert_string_equal(fi.remote, "127.0.0.1:5432");
	assert_string_equal(fi.state, "ESTABLISHED");
	assert_int_equal(pk_net_inet_line_parse(v4, false, true, 900378, &fi), -ENOENT);
	assert_int_equal(pk_net_inet_line_parse(v6, true, true, 4242, &fi), 0);
	assert_string_equal(fi.proto, "tcp6");
	assert_string_equal(fi.local, "[::1]:80");
	assert_string_equal(fi.state, "LISTEN");
	assert_int_equal(pk_net_inet_line_parse(udp, false, false, 17, &fi), 0);
	assert_string_equal(fi.proto, "udp");
	assert_string_equal(fi.state, "UNCONNECTED");
	/* Header and broken lines. */
	assert_int_equal(pk_net_inet_line_parse("  sl  local_address rem_address   st tx_queue\n", false, true, 1, &fi),
			 -EINVAL);
	assert_int_equal(pk_net_inet_line_parse("   3: 0100007F:D3BC\n", false, true, 1, &fi), -EINVAL);
	assert_int_equal(pk_net_inet_line_parse("   3: 0100007F:FFFFF 0100007F:1538 01\n", false, true, 1, &fi),
			 -EINVAL);
	assert_int_equal(pk_net_inet_line_parse("", false, true, 1, &fi), -EINVAL);
}

static void test_unix_lines(void **state)
{
	struct pk_fd_info fi;

	(void)state;
	memset(&fi, 0, sizeof(fi));
	assert_int_equal(pk_net_unix_line_parse("0000000000000000: 00000003 00000000 00000000 0001 03 2359219\n", 2359219,
						&fi), 0);
	assert_int_equal(fi.kind, PK_FD_UNIX);
	assert_string_equal(fi.state, "CONNECTED");
	assert_string_equal(fi.path, "");
	assert_int_equal(pk_net_unix_line_parse("0000000000000000: 00000002 00000000 00010000 0001 01 77 /run/a b.sock\n",
						77, &fi), 0);
	assert_string_equal(fi.state, "LISTEN");
	assert_string_equal(fi.path, "/run/a b.sock");
	assert_int_equal(pk_net_unix_line_parse("0000000000000000: 00000002 00000000 00000000 0001 09 77 @x\n", 77, &fi),
			 0);
	assert_string_equal(fi.state, "?");
	assert_int_equal(pk_net_unix_line_parse("0000000000000000: 00000002 00000000 00000000 0001 03 78\n", 77, &fi),
			 -ENOENT);
	assert_int_equal(pk_net_unix_line_parse("Num       RefCount Protocol Flags    Type St Inode Path\n", 77, &fi),
			 -EINVAL);
}

static void test_live_fds(void **state)
{
	struct pk_fd_info fi;
	struct pk_fd_index *ix = NULL;
	int sv[2], p[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pk_proc_fd_info(getpid(), p[0], &ix, &fi), 0);
	assert_int_equal(fi.kind, PK_FD_PIPE);
	assert_int_equal(fi.mode, 'r');
	/* The other end is the write end, held here. */
	assert_int_equal(fi.nholders, 1);
	assert_int_equal(fi.holders[0].pid, getpid());
	assert_int_equal(fi.holders[0].fd, p[1]);
	assert_int_equal(fi.holders[0].mode, 'w');
	assert_int_equal(pk_proc_fd_info(getpid(), sv[0], &ix, &fi), 0);
	assert_int_equal(fi.kind, PK_FD_UNIX);
	assert_string_equal(fi.state, "CONNECTED");
	/* sock_diag for unix sockets is a module (unix_diag): it may be absent. */
	if (fi.peer_inode != 0) {
		assert_int_equal(fi.nholders, 1);
		assert_int_equal(fi.holders[0].fd, sv[1]);
	}
	assert_int_equal(pk_proc_fd_info(getpid(), 0x7ffffff0, &ix, &fi), -EBADF);
	/* Without an index nothing is walked: no holders, nothing else lost. */
	assert_int_equal(pk_proc_fd_info(getpid(), p[1], NULL, &fi), 0);
	assert_int_equal(fi.kind, PK_FD_PIPE);
	assert_int_equal(fi.mode, 'w');
	assert_int_equal(fi.nholders, 0);
	pk_fd_index_free(ix);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sched_parse),
		cmocka_unit_test(test_sched_offcpu),
		cmocka_unit_test(test_sched_self),
		cmocka_unit_test(test_inet_lines),
		cmocka_unit_test(test_unix_lines),
		cmocka_unit_test(test_live_fds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
