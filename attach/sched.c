/* SPDX-License-Identifier: MIT */
/* How long a thread has been off CPU, from the scheduler's own clock.
 *
 * /proc/PID/task/TID/sched (CONFIG_SCHED_DEBUG) prints se.exec_start: the
 * scheduler clock (rq_clock_task, ms with ns decimals) when the thread last
 * ran. A thread that went to sleep has it frozen at the moment it left the
 * CPU. "Now" must come from the same clock: CLOCK_MONOTONIC and
 * /proc/timer_list's "now at" are another clock (they differ by
 * milliseconds here, and drift apart over uptime). pykill's own exec_start
 * is that clock, refreshed by sched_yield() (yield_task_fair updates the
 * running entity's exec_start to the runqueue's clock). schedstat gives CPU
 * and wait time only, no moment: without the sched file the answer is
 * unknown. */
#include "pk_attach.h"
#include "attach-priv.h"
#include "pk_log.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EXEC_START_KEY "se.exec_start"

int pk_sched_parse(const char *text, size_t len, uint64_t *exec_start_ns)
{
	const char *p, *end;

	if (text == NULL || exec_start_ns == NULL || len > PK_PROC_MAX_FILE)
		return -EINVAL;
	end = text + len;
	for (p = text; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t kl = strlen(EXEC_START_KEY);

		if ((size_t)(le - p) > kl && memcmp(p, EXEC_START_KEY, kl) == 0 && (p[kl] == ' ' || p[kl] == ':')) {
			uint64_t ms = 0, frac = 0;
			unsigned digits = 0;
			const char *v = p + kl;

			while (v < le && (*v == ' ' || *v == '\t' || *v == ':'))
				v++;
			if (v >= le || *v < '0' || *v > '9')
				return -EINVAL;
			for (; v < le && *v >= '0' && *v <= '9'; v++) {
				if (ms > (UINT64_MAX / 1000000u - 9) / 10)
					return -ERANGE;
				ms = ms * 10 + (uint64_t)(*v - '0');
			}
			if (v < le && *v == '.') {
				/* Nanoseconds: exactly six decimals in the kernel's format; read at most six. */
				for (v++; v < le && *v >= '0' && *v <= '9'; v++)
					if (digits < 6) {
						frac = frac * 10 + (uint64_t)(*v - '0');
						digits++;
					}
				for (; digits < 6; digits++)
					frac *= 10;
			}
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			if (v != le)
				return -EINVAL;
			*exec_start_ns = ms * 1000000u + frac;
			return 0;
		}
		p = nl ? nl + 1 : end;
	}
	return -ENOENT;
}

/* No pk_error(): a missing file (kernel without CONFIG_SCHED_DEBUG) or a
 * thread that ended is an answer ("unknown"), not a failure of list. */
static int read_exec_start(const char *path, uint64_t *ns)
{
	char buf[8192];
	size_t len;
	int fd, rc;
	ssize_t r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The key is on the first lines; the rest of the file is not needed. */
	do {
		r = read(fd, buf, sizeof(buf) - 1);
	} while (r < 0 && errno == EINTR);
	rc = r < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	len = (size_t)r;
	buf[len] = '\0';
	return pk_sched_parse(buf, len, ns);
}

int pk_sched_now(uint64_t *ns)
{
	if (ns == NULL)
		return -EINVAL;
	sched_yield();
	return read_exec_start("/proc/thread-self/sched", ns);
}

int pk_proc_offcpu_ns(pid_t pid, pid_t tid, uint64_t now_ns, uint64_t *ns)
{
	char path[96];
	uint64_t start;
	int rc;

	if (ns == NULL || pid <= 0 || tid <= 0)
		return -EINVAL;
	rc = pk_proc_path(path, sizeof(path), pid, tid, "sched");
	if (rc < 0)
		return rc;
	rc = read_exec_start(path, &start);
	if (rc < 0)
		return rc;
	return pk_sched_offcpu(now_ns, start, ns);
}

int pk_sched_offcpu(uint64_t now_ns, uint64_t exec_start_ns, uint64_t *ns)
{
	/* migrate_task_rq_fair(): "no longer consider this task hot". */
	if (exec_start_ns == 0)
		return -ENODATA;
	/* Runqueue clocks of two CPUs can disagree by a little: never negative. */
	*ns = now_ns > exec_start_ns ? now_ns - exec_start_ns : 0;
	return 0;
}
