/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include "pk_attach.h"
#include "pk_log.h"
#include "pk_symbols.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t ms_now(void)
{
	return pk_now_ns() / 1000000ull;
}

int child_start(struct child *c, char *const argv[])
{
	char fdarg[16];
	char *args[64];
	int p[2];
	size_t i;

	memset(c, 0, sizeof(*c));
	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
	for (i = 0; argv[i] != NULL && i < 63; i++)
		args[i] = strcmp(argv[i], "@FD") == 0 ? fdarg : argv[i];
	args[i] = NULL;
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (c->pid == 0) {
		/* The write end must survive exec. */
		int fl = fcntl(p[1], F_GETFD);

		fcntl(p[1], F_SETFD, fl & ~FD_CLOEXEC);
		execv(args[0], args);
		_exit(127);
	}
	close(p[1]);
	c->fd = p[0];
	return 0;
}

int child_line(struct child *c, char *line, size_t cap, unsigned timeout_ms)
{
	uint64_t end = ms_now() + timeout_ms;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		uint64_t now;
		ssize_t r;
		int pr;

		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf);

			if (n >= cap)
				n = cap - 1;
			memcpy(line, c->buf, n);
			line[n] = '\0';
			c->len -= (size_t)(nl - c->buf) + 1;
			memmove(c->buf, nl + 1, c->len);
			return 0;
		}
		now = ms_now();
		if (now >= end)
			return -ETIMEDOUT;
		pr = poll(&pfd, 1, (int)(end - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		if (c->len == sizeof(c->buf))
			c->len = 0; /* a runaway line: drop it */
		r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		c->len += (size_t)r;
	}
}

int child_stop(struct child *c)
{
	int st = 0;

	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &st, 0);
		c->pid = 0;
	}
	if (c->fd > 0)
		close(c->fd);
	c->fd = -1;
	return st;
}

bool kv(const char *line, const char *key, char *buf, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = line;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == line || p[-1] == ' ') && p[kl] == '=') {
			size_t n = strcspn(p + kl + 1, " ");

			if (n >= cap)
				n = cap - 1;
			memcpy(buf, p + kl + 1, n);
			buf[n] = '\0';
			return true;
		}
		p += kl;
	}
	return false;
}

uint64_t kv_u64(const char *line, const char *key)
{
	char b[64];

	if (!kv(line, key, b, sizeof(b)))
		return 0;
	return strtoull(b, NULL, 0);
}

int wait_injectable(pid_t pid, pid_t tid, unsigned timeout_ms, char *why, size_t cap)
{
	uint64_t end = ms_now() + timeout_ms;
	int ret;

	for (;;) {
		pk_error_clear();
		ret = pk_rcall_check_thread(pid, tid, why, cap);
		if (ret != -EAGAIN || ms_now() >= end)
			return ret;
		usleep(500);
	}
}

int thread_tracer(pid_t pid, pid_t tid, char *state)
{
	struct pk_status st;

	*state = '?';
	if (pk_proc_status(pid, tid, &st) < 0)
		return -1;
	*state = st.state;
	return st.tracer_pid;
}

int verify_cave(pid_t pid, uint64_t cave, bool verbose)
{
	const uint8_t *code;
	uint16_t machine;
	struct pk_mem *mem;
	uint8_t got[1024];
	char text[8192];
	size_t len;
	const char *p;
	int ret, nsys = 0;

	code = pk_rcall_trampoline(&len, &machine);
	if (len > sizeof(got))
		return -E2BIG;
	ret = pk_mem_open_pid(pid, &mem);
	if (ret < 0)
		return ret;
	ret = pk_mem_read(mem, cave, got, len);
	pk_mem_close(mem);
	if (ret < 0)
		return ret;
	if (memcmp(got, code, len) != 0) {
		fprintf(stderr, "cave at %#" PRIx64 " differs from the trampoline\n", cave);
		return -EIO;
	}
	ret = pk_code_disasm(machine, got, len, cave, text, sizeof(text));
	if (ret < 0)
		return ret;
	if (verbose)
		printf("trampoline read back from %d at %#" PRIx64 " (%zu bytes):\n%s", (int)pid, cave, len, text);
	/* Code up to the final return; what follows is the MXCSR constant. */
	p = strstr(text, ": ret");
	if (p == NULL || (strstr(text, "(bad)") != NULL && strstr(text, "(bad)") < p)) {
		fprintf(stderr, "trampoline does not decode up to its return\n");
		return -EIO;
	}
	for (p = text; (p = strstr(p, ": syscall")) != NULL; p++)
		nsys++;
	if (nsys != 1) {
		fprintf(stderr, "trampoline has %d syscall instructions\n", nsys);
		return -EIO;
	}
	return 0;
}

void print_result(const char *what, const struct pk_rcall_result *r)
{
	const char *sn = pk_syscall_name(r->syscall_nr);

	printf("%-8s %-16s ret=%-5" PRId64 " step=%d ensure=%" PRId64 " call=%" PRId64
	       " errno=%d hijack=%.1fus freeze=%.1fus wall=%.1fus stops=%u signals=%u gstops=%u frame=%#" PRIx64 "\n",
	       what, sn != NULL ? sn : "?", r->syscall_ret, (int)r->step, r->ensure_ret, r->call_ret,
	       r->target_errno, (double)r->hijack_ns / 1e3, (double)r->freeze_ns / 1e3, (double)r->wall_ns / 1e3,
	       r->stops, r->signals, r->group_stops, r->frame);
}
