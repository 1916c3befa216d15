/* SPDX-License-Identifier: MIT */
/* Helpers for the remote-call tests against live targets (tests/inject). */
#ifndef PK_INJECT_HARNESS_H
#define PK_INJECT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "pk_inject.h"

#define SKIP_CODE 77

/* A check that counts a failure and goes on: prints "FAIL file:line: cond:"
 * and the printf-style message. The test file defines `static int failures;`
 * and returns non-zero when it is not 0. */
#define CHECK(cond, ...)                                                                                       \
	do {                                                                                                   \
		if (!(cond)) {                                                                                 \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                 \
			printf(__VA_ARGS__);                                                                   \
			printf("\n");                                                                          \
			failures++;                                                                            \
		}                                                                                              \
	} while (0)

/* A child process that reports on a pipe, line by line. */
struct child {
	pid_t pid;
	int fd;           /* read end */
	char buf[65536];
	size_t len;
};

/* Start argv[0] with "@FD" arguments replaced by the write end's number. */
int child_start(struct child *c, char *const argv[]);
/* Next complete line (without '\n'), waiting up to timeout_ms. 0, -ETIMEDOUT,
 * or -EPIPE when the child closed the pipe. */
int child_line(struct child *c, char *line, size_t cap, unsigned timeout_ms);
/* SIGKILL (if still running) and reap; returns the wait status. */
int child_stop(struct child *c);

/* "key=value" out of a line: copies value (up to a blank) into buf. */
bool kv(const char *line, const char *key, char *buf, size_t cap);
uint64_t kv_u64(const char *line, const char *key); /* 0 if absent; base 0 */

/* Poll pk_rcall_check_thread() until the thread is a safe hijack point. */
int wait_injectable(pid_t pid, pid_t tid, unsigned timeout_ms, char *why, size_t cap);

/* TracerPid and state of a thread ('?' if unknown). */
int thread_tracer(pid_t pid, pid_t tid, char *state);

/* Read the cave back from the target, disassemble it with capstone
 * (symbols/) and check it is the trampoline: same bytes, decodes fully, one
 * system call. Prints the listing when verbose. */
int verify_cave(pid_t pid, uint64_t cave, bool verbose);

void print_result(const char *what, const struct pk_rcall_result *r);

#endif
