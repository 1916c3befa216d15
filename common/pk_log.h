/* SPDX-License-Identifier: MIT */
/* Logging and error reporting shared by the pykill libraries.
 *
 * Libraries never print and never exit: they return 0 or -errno and describe
 * the failure once with pk_error(), which the CLI prints as
 * "pykill: <message>". Progress goes through pk_log(), which the CLI routes
 * to stderr when -v is given. */
#ifndef PK_LOG_H
#define PK_LOG_H

#include <stdarg.h>

enum pk_log_level {
	PK_LOG_ERROR = 0,
	PK_LOG_WARN = 1,
	PK_LOG_INFO = 2,
	PK_LOG_DEBUG = 3,
};

typedef void (*pk_log_fn)(enum pk_log_level level, const char *msg, void *userdata);

/* Install the sink; messages above max_level are dropped before formatting. */
void pk_log_set_handler(pk_log_fn fn, void *userdata, enum pk_log_level max_level);
int pk_log_enabled(enum pk_log_level level);
void pk_log(enum pk_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the message that explains the error being returned ("<what> <object>: <reason>").
 * The first error recorded since pk_error_clear() wins: inner layers know the
 * precise cause, outer layers must not overwrite it. Preserves errno. */
void pk_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Replace the recorded message unconditionally (an outer layer that knows
 * better), dropping the hint that went with the old one. */
void pk_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Append a hint line shown after the message (e.g. how to get ptrace rights). */
void pk_error_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *pk_error_message(void); /* "" when none */
const char *pk_error_hint_message(void); /* "" when none */
void pk_error_clear(void);

#endif
