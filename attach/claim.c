/* SPDX-License-Identifier: MIT */
/* One pykill at a time per thread of a target.
 *
 * Two pykills raising into one thread would see each other's exception:
 * the second could only tell "replaced" from "taken, then another queued"
 * by timing. A claim serialises them: an abstract unix socket named after
 * the process and the thread's ident, bound for as long as one pykill works on that
 * thread. The kernel releases it when pykill exits, however it exits
 * (SIGKILL included); nothing is left on disk. */
#include "pk_attach.h"
#include "pk_log.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int pk_thread_claim(pid_t pid, uint64_t ident, unsigned timeout_ms, const volatile sig_atomic_t *stop, int *fd_out)
{
	struct sockaddr_un sa;
	socklen_t len;
	uint64_t deadline = pk_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int fd, n;

	*fd_out = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	/* sun_path[0] == '\0': the abstract namespace. */
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "pykill/%d/%llx", (int)pid, (unsigned long long)ident);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int err = errno;
		pk_error("claim thread 0x%llx of process %d: socket: %s", (unsigned long long)ident, (int)pid, strerror(err));
		return -err;
	}
	for (;;) {
		if (bind(fd, (struct sockaddr *)&sa, len) == 0) {
			*fd_out = fd;
			return 0;
		}
		if (errno != EADDRINUSE) {
			int err = errno;
			close(fd);
			pk_error("claim thread 0x%llx of process %d: bind: %s", (unsigned long long)ident, (int)pid, strerror(err));
			return -err;
		}
		/* The other pykill may hold it for its whole --wait: a Ctrl-C
		 * here must not wait that out. */
		if (stop != NULL && *stop != 0) {
			close(fd);
			return -EINTR;
		}
		if (pk_now_ns() >= deadline) {
			close(fd);
			pk_error("thread 0x%llx of process %d: another pykill is working on it (still after %u ms)",
				 (unsigned long long)ident, (int)pid, timeout_ms);
			return -EBUSY;
		}
		pk_sleep_ns(2000000);
	}
}

void pk_thread_unclaim(int fd)
{
	if (fd >= 0)
		close(fd);
}
