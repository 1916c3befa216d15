/* SPDX-License-Identifier: MIT */
/* System call names (generated table) and what pykill knows of their
 * arguments: which ones are file descriptors and how many are meaningful. */
#include "pk_attach.h"
#include "attach-priv.h"

#include <pthread.h>
#include <string.h>

const char *pk_syscall_name(long nr)
{
	if (nr < 0)
		return NULL;
	for (size_t i = 0; i < pk_syscall_table_len; i++)
		if (pk_syscall_table[i].nr == nr)
			return pk_syscall_table[i].name;
	return NULL;
}

long pk_syscall_number(const char *name)
{
	if (name == NULL)
		return -1;
	for (size_t i = 0; i < pk_syscall_table_len; i++)
		if (strcmp(pk_syscall_table[i].name, name) == 0)
			return pk_syscall_table[i].nr;
	return -1;
}

/* Keyed by name, not number: numbers differ between architectures, and a
 * name the architecture lacks (poll, select on aarch64) simply resolves to
 * nothing. fd is a bit mask of the arguments that are file descriptors. */
#define FD(i) (1u << (i))
static const struct argspec {
	const char *name;
	unsigned fd;
	int nargs;
} argspecs[] = {
	/* I/O on one descriptor */
	{ "read", FD(0), 3 },
	{ "write", FD(0), 3 },
	{ "readv", FD(0), 3 },
	{ "writev", FD(0), 3 },
	{ "pread64", FD(0), 4 },
	{ "pwrite64", FD(0), 4 },
	{ "preadv", FD(0), 5 },
	{ "pwritev", FD(0), 5 },
	{ "preadv2", FD(0), 6 },
	{ "pwritev2", FD(0), 6 },
	{ "getdents64", FD(0), 3 },
	{ "ioctl", FD(0), 3 },
	{ "fcntl", FD(0), 3 },
	{ "flock", FD(0), 2 },
	{ "fsync", FD(0), 1 },
	{ "fdatasync", FD(0), 1 },
	{ "sync_file_range", FD(0), 4 },
	{ "fallocate", FD(0), 4 },
	{ "ftruncate", FD(0), 2 },
	{ "lseek", FD(0), 3 },
	{ "fstat", FD(0), 2 },
	{ "close", FD(0), 1 },
	{ "dup", FD(0), 1 },
	{ "dup2", FD(0) | FD(1), 2 },
	{ "dup3", FD(0) | FD(1), 3 },
	{ "sendfile", FD(0) | FD(1), 4 },
	{ "splice", FD(0) | FD(2), 6 },
	{ "tee", FD(0) | FD(1), 4 },
	{ "copy_file_range", FD(0) | FD(2), 6 },
	{ "openat", FD(0), 4 },
	{ "mmap", FD(4), 6 },
	/* sockets */
	{ "accept", FD(0), 3 },
	{ "accept4", FD(0), 4 },
	{ "connect", FD(0), 3 },
	{ "bind", FD(0), 3 },
	{ "listen", FD(0), 2 },
	{ "shutdown", FD(0), 2 },
	{ "recvfrom", FD(0), 6 },
	{ "recvmsg", FD(0), 3 },
	{ "recvmmsg", FD(0), 5 },
	{ "sendto", FD(0), 6 },
	{ "sendmsg", FD(0), 3 },
	{ "sendmmsg", FD(0), 4 },
	{ "getsockopt", FD(0), 5 },
	{ "setsockopt", FD(0), 5 },
	{ "getsockname", FD(0), 3 },
	{ "getpeername", FD(0), 3 },
	{ "socket", 0, 3 },
	/* waiting on many descriptors: the fds are in an array, not arguments */
	{ "poll", 0, 3 },
	{ "ppoll", 0, 5 },
	{ "select", 0, 5 },
	{ "pselect6", 0, 6 },
	{ "epoll_wait", FD(0), 4 },
	{ "epoll_pwait", FD(0), 6 },
	{ "epoll_pwait2", FD(0), 6 },
	{ "epoll_ctl", FD(0) | FD(2), 4 },
	{ "io_uring_enter", FD(0), 6 },
	{ "io_getevents", 0, 5 },
	/* sleeping and waiting */
	{ "futex", 0, 6 }, /* uaddr op val timeout uaddr2 val3 */
	{ "futex_waitv", 0, 5 },
	{ "clock_nanosleep", 0, 4 },
	{ "nanosleep", 0, 2 },
	{ "wait4", 0, 4 },
	{ "waitid", 0, 5 },
	{ "pause", 0, 0 },
	{ "sched_yield", 0, 0 },
	{ "restart_syscall", 0, 0 },
	{ "rt_sigtimedwait", 0, 4 },
	{ "rt_sigsuspend", 0, 2 },
	{ "semop", 0, 3 },
	{ "semtimedop", 0, 4 },
	{ "msgrcv", 0, 5 },
	{ "msgsnd", 0, 4 },
	/* others that show up in stacks */
	{ "getpid", 0, 0 },
	{ "gettid", 0, 0 },
	{ "getrandom", 0, 3 },
	{ "munmap", 0, 2 },
	{ "mprotect", 0, 3 },
	{ "madvise", 0, 3 },
	{ "brk", 0, 1 },
	{ "kill", 0, 2 },
	{ "tgkill", 0, 3 },
	{ "rt_sigprocmask", 0, 4 },
	{ "exit", 0, 1 },
	{ "exit_group", 0, 1 },
};

#define NSPECS (sizeof(argspecs) / sizeof(argspecs[0]))

/* Numbers of argspecs[], resolved once (-1: not on this architecture). */
static long spec_nr[NSPECS];
static pthread_once_t spec_once = PTHREAD_ONCE_INIT;

static void resolve_specs(void)
{
	for (size_t i = 0; i < NSPECS; i++)
		spec_nr[i] = pk_syscall_number(argspecs[i].name);
}

static const struct argspec *find_spec(long nr)
{
	if (nr < 0)
		return NULL;
	pthread_once(&spec_once, resolve_specs);
	for (size_t i = 0; i < NSPECS; i++)
		if (spec_nr[i] == nr)
			return &argspecs[i];
	return NULL;
}

unsigned pk_syscall_fd_args(long nr)
{
	const struct argspec *s = find_spec(nr);

	return s ? s->fd : 0;
}

int pk_syscall_nargs(long nr)
{
	const struct argspec *s = find_spec(nr);

	return s ? s->nargs : 6;
}
