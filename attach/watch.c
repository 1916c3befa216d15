/* SPDX-License-Identifier: MIT */
/* Watching threads for having run, cheaply: each thread's schedstat file is
 * opened once and re-read with pread(), which regenerates it (one system
 * call instead of open/read/close, ~15x cheaper). The sample is the CPU
 * time and the number of times the thread was put on a CPU: the second
 * moves as soon as a woken thread is scheduled in, before any tick brings
 * its CPU time up to date. */
#include "attach-priv.h"
#include "pk_attach.h"
#include "pk_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct pk_watch_entry {
	int fd;          /* -1: could not be opened (ended, or out of descriptors) */
	uint64_t run_ns;
	uint64_t pcount;
};

struct pk_watch {
	pid_t pid;
	size_t n;
	struct pk_watch_entry e[];
};

static int sample(int fd, uint64_t *run_ns, uint64_t *pcount)
{
	char buf[128];
	ssize_t len = pread(fd, buf, sizeof(buf) - 1, 0);
	unsigned long long a, b, c;

	if (len <= 0)
		return len == 0 ? -ESRCH : -errno;
	buf[len] = '\0';
	if (sscanf(buf, "%llu %llu %llu", &a, &b, &c) != 3)
		return -EINVAL;
	*run_ns = a;
	*pcount = c;
	return 0;
}

/* Each watched thread costs a descriptor: use what the hard limit allows. */
static void raise_nofile(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want + 64)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want + 64 ? want + 64 : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

int pk_watch_open(pid_t pid, const pid_t *tids, size_t n, struct pk_watch **out)
{
	struct pk_watch *w;

	*out = NULL;
	if (n > PK_WATCH_MAX)
		return -E2BIG;
	w = calloc(1, sizeof(*w) + n * sizeof(w->e[0]));
	if (w == NULL)
		return -ENOMEM;
	w->pid = pid;
	w->n = n;
	raise_nofile(n);
	for (size_t i = 0; i < n; i++) {
		char path[96];

		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tids[i]);
		w->e[i].fd = open(path, O_RDONLY | O_CLOEXEC);
		if (w->e[i].fd >= 0 && sample(w->e[i].fd, &w->e[i].run_ns, &w->e[i].pcount) < 0) {
			close(w->e[i].fd);
			w->e[i].fd = -1;
		}
	}
	*out = w;
	return 0;
}

int pk_watch_moved(struct pk_watch *w, size_t i)
{
	uint64_t run_ns, pcount;
	int rc;

	if (i >= w->n)
		return -EINVAL;
	if (w->e[i].fd < 0)
		return -ENOENT;
	rc = sample(w->e[i].fd, &run_ns, &pcount);
	if (rc < 0)
		return rc; /* ended */
	return run_ns != w->e[i].run_ns || pcount != w->e[i].pcount;
}

uint64_t pk_watch_cpu_ns(const struct pk_watch *w, size_t i)
{
	return i < w->n ? w->e[i].run_ns : 0;
}

void pk_watch_close(struct pk_watch *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++)
		if (w->e[i].fd >= 0)
			close(w->e[i].fd);
	free(w);
}
