/* SPDX-License-Identifier: MIT */
/* Internals of the command-line front end. */
#ifndef PK_CLI_H
#define PK_CLI_H

#include "esc.h"
#include "json.h"
#include "num.h"
#include "pk_cpython.h"
#include "pk_exit.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct pk_cli {
	int verbose;
};

extern struct pk_cli pk_cli;

/* -v: one more level of detail on stderr. */
void pk_cli_more_verbose(void);

/* -h/--help, after the command as before it: the usage on stdout; PK_EXIT_OK. */
int pk_help(void);

/* Usage error: message to stderr with the hint, returns PK_EXIT_USAGE. */
int pk_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a library failure (pk_error message, hint) and map -errno to an exit status. */
int pk_fail(int err, const char *fallback_what);
/* The same, with more_hint (what the command's user can do) after the library's hint. */
int pk_fail_hint(int err, const char *fallback_what, const char *more_hint);
/* pk_fail_hint, and with --json one object on stdout: schema, pid, thread
 * (the argument), verdict "refused" (exit 7) or "failed", exit, error, hint. */
int pk_fail_json(int err, const char *fallback_what, const char *more_hint, pid_t pid, const char *thread);
int pk_exit_for_errno(int err);

/* PID_MAX_LIMIT of 64-bit kernels: no process ID is larger. */
#define PK_PID_MAX 4194304u
/* Numeric arguments, through pk_parse_num: PK_EXIT_OK, or the usage error's
 * status with a message naming the argument of command cmd. */
int pk_arg_pid(const char *cmd, const char *s, pid_t *out);
/* THREAD of raise and withdraw: a TID, or an ident in decimal or 0x-hex. */
int pk_arg_thread(const char *cmd, const char *s, uint64_t *out);
/* --interp N of raise and withdraw: an interpreter ID, 0 (the main one) or above. */
int pk_arg_interp(const char *cmd, const char *s, int64_t *out);

/* Formatting shared by commands. */
const char *pk_state_name(char state);
/* "clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, 0x7ff..., 0x0)" with fd
 * arguments resolved: "recvfrom(fd 7 -> socket:[123], ...)". */
void pk_format_syscall(pid_t pid, long nr, const uint64_t *args, char *buf, size_t cap);
/* "thread 123 (worker-1)", the name escaped; "thread 123" without one. */
void pk_format_thread(pid_t tid, const char *name, char *buf, size_t cap);
/* The same, then ", its state of interpreter N" where the state is not the
 * obvious one: of a subinterpreter, or picked by --interp (named). */
void pk_format_thread_state(pid_t tid, const char *name, int64_t interp_id, bool named, char *buf, size_t cap);
void pk_json_syscall(struct pk_json *j, pid_t pid, long nr, const uint64_t *args);
const char *pk_gil_name(enum pk_gil_role role);
/* JSON's tid_from: "stack", "native_thread_id", "pthread", or NULL. */
const char *pk_tid_from_name(enum pk_tid_from from);
/* Append a string the target controls (a name, a path) to human output at
 * buf + *o: the one place such strings of list's descriptions go through. */
void pk_format_untrusted(char *buf, size_t cap, size_t *o, const char *s);
/* Free what formatting kept for the run (the index of pipe and socket holders). */
void pk_format_done(void);

int pk_cmd_ps(int argc, char **argv);
int pk_cmd_list(int argc, char **argv);
int pk_cmd_raise(int argc, char **argv);
int pk_cmd_withdraw(int argc, char **argv);

#endif
