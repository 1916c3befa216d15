/* SPDX-License-Identifier: MIT */
#include "pk_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static pk_log_fn log_fn;
static void *log_userdata;
static enum pk_log_level log_max = PK_LOG_WARN;

static char error_buf[512];
static char hint_buf[512];

void pk_log_set_handler(pk_log_fn fn, void *userdata, enum pk_log_level max_level)
{
	log_fn = fn;
	log_userdata = userdata;
	log_max = max_level;
}

int pk_log_enabled(enum pk_log_level level)
{
	return log_fn != NULL && level <= log_max;
}

void pk_log(enum pk_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int saved_errno = errno;

	if (!pk_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fn(level, msg, log_userdata);
	errno = saved_errno;
}

__attribute__((format(printf, 3, 0)))
static void vset(char *buf, size_t cap, const char *fmt, va_list ap)
{
	vsnprintf(buf, cap, fmt, ap);
}

void pk_error(const char *fmt, ...)
{
	va_list ap;
	int saved_errno = errno;

	if (error_buf[0] == '\0') {
		va_start(ap, fmt);
		vset(error_buf, sizeof(error_buf), fmt, ap);
		va_end(ap);
		pk_log(PK_LOG_DEBUG, "error: %s", error_buf);
	}
	errno = saved_errno;
}

void pk_error_set(const char *fmt, ...)
{
	va_list ap;
	int saved_errno = errno;

	va_start(ap, fmt);
	vset(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	hint_buf[0] = '\0'; /* it was about the message replaced */
	errno = saved_errno;
}

void pk_error_hint(const char *fmt, ...)
{
	va_list ap;
	int saved_errno = errno;

	if (hint_buf[0] == '\0') {
		va_start(ap, fmt);
		vset(hint_buf, sizeof(hint_buf), fmt, ap);
		va_end(ap);
	}
	errno = saved_errno;
}

const char *pk_error_message(void)
{
	return error_buf;
}

const char *pk_error_hint_message(void)
{
	return hint_buf;
}

void pk_error_clear(void)
{
	error_buf[0] = '\0';
	hint_buf[0] = '\0';
}
