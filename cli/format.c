/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *pk_state_name(char state)
{
	switch (state) {
	case 'R': return "running";
	case 'S': return "sleeping";
	case 'D': return "disk-wait";
	case 'T': return "stopped";
	case 't': return "traced";
	case 'Z': return "zombie";
	case 'X': return "dead";
	case 'I': return "idle";
	case 'P': return "parked";
	case 'W': return "waking";
	case 'K': return "wakekill";
	default: return "unknown";
	}
}

const char *pk_tid_from_name(enum pk_tid_from from)
{
	switch (from) {
	case PK_TID_FROM_STACK: return "stack";
	case PK_TID_FROM_NATIVE: return "native_thread_id";
	case PK_TID_FROM_PTHREAD: return "pthread";
	default: return NULL;
	}
}

const char *pk_gil_name(enum pk_gil_role role)
{
	switch (role) {
	case PK_GIL_HOLDS: return "holds";
	case PK_GIL_WAITS: return "waits";
	case PK_GIL_DROPPING: return "dropping";
	case PK_GIL_NONE: return "none";
	case PK_GIL_ABSENT: return "absent";
	default: return "unknown";
	}
}

void pk_format_thread(pid_t tid, const char *name, char *buf, size_t cap)
{
	char e[PK_ESC_CAP];

	if (name != NULL)
		snprintf(buf, cap, "thread %d (%s)", (int)tid, pk_esc(name, e, sizeof(e)));
	else
		snprintf(buf, cap, "thread %d", (int)tid);
}

void pk_format_thread_state(pid_t tid, const char *name, int64_t interp_id, bool named, char *buf, size_t cap)
{
	size_t len;

	pk_format_thread(tid, name, buf, cap);
	len = strlen(buf);
	if ((interp_id != 0 || named) && len < cap)
		snprintf(buf + len, cap - len, ", its state of interpreter %lld", (long long)interp_id);
}

/* The kernel reads a descriptor argument as an int, the low half of the
 * register: AT_FDCWD (-100) arrives as 0xffffff9c, which printed as a 64-bit
 * number was "fd 4294967196". */
static int fd_arg(uint64_t reg)
{
	return (int)(int32_t)(uint32_t)reg;
}

/* Appends to buf at *o, never past cap. */
static void append(char *buf, size_t cap, size_t *o, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t cap, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*o >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *o, cap - *o, fmt, ap);
	va_end(ap);
	*o = n < 0 ? cap : *o + (size_t)n;
}

/* Appends a string the target controls (a path, a socket name, another
 * process's comm), escaped for human output. */
void pk_format_untrusted(char *buf, size_t cap, size_t *o, const char *s)
{
	char e[PK_ESC_CAP];

	append(buf, cap, o, "%s", pk_esc(s, e, sizeof(e)));
}

static void append_untrusted(char *buf, size_t cap, size_t *o, const char *s)
{
	pk_format_untrusted(buf, cap, o, s);
}

static const char *fd_kind_name(enum pk_py_fd_kind kind)
{
	switch (kind) {
	case PK_PY_FD_FILE: return "file";
	case PK_PY_FD_PIPE: return "pipe";
	case PK_PY_FD_INET: return "inet";
	case PK_PY_FD_UNIX: return "unix";
	case PK_PY_FD_SOCKET: return "socket";
	case PK_PY_FD_OTHER: return "other";
	default: return NULL;
	}
}

/* Who holds which pipe and socket, read once per run on first need. */
static struct pk_py_fd_index *fd_index;

void pk_format_done(void)
{
	pk_py_fd_index_free(fd_index);
	fd_index = NULL;
}

static bool fd_info(pid_t pid, int fd, struct pk_py_fd *fi)
{
	return fd >= 0 && pk_py_fd_info(pid, fd, &fd_index, fi) == 0;
}

static void append_holders(char *buf, size_t cap, size_t *o, const struct pk_py_fd *fi)
{
	if (fi->nholders == 0) {
		append(buf, cap, o, " not visible");
		return;
	}
	append(buf, cap, o, " held by ");
	for (size_t i = 0; i < fi->nholders; i++) {
		append(buf, cap, o, "%s%d (", i ? ", " : "", (int)fi->holders[i].pid);
		append_untrusted(buf, cap, o, fi->holders[i].comm);
		append(buf, cap, o, ") fd %d", fi->holders[i].fd);
	}
	if (fi->holders_truncated)
		append(buf, cap, o, ", ...");
}

/* "tcp 127.0.0.1:43122 -> 127.0.0.1:5432 ESTABLISHED", "unix /run/x.sock
 * CONNECTED, peer held by 12 (nginx) fd 7", "pipe:[45], other end held by
 * 13 (sh) fd 1", "/var/log/x.log pos 1234"; "?" when the fd is gone. */
static void describe_fd(pid_t pid, int fd, char *buf, size_t cap)
{
	struct pk_py_fd fi;
	size_t o = 0;

	buf[0] = '\0';
	if (!fd_info(pid, fd, &fi)) {
		append(buf, cap, &o, "?");
		return;
	}
	switch (fi.kind) {
	case PK_PY_FD_INET:
		append(buf, cap, &o, "%s %s", fi.proto, fi.local);
		if (strcmp(fi.state, "LISTEN") != 0 && strcmp(fi.state, "UNCONNECTED") != 0)
			append(buf, cap, &o, " -> %s", fi.remote);
		append(buf, cap, &o, " %s", fi.state);
		break;
	case PK_PY_FD_UNIX:
		append(buf, cap, &o, "unix ");
		if (fi.path[0] != '\0')
			append_untrusted(buf, cap, &o, fi.path);
		else
			append(buf, cap, &o, "%s", fi.target);
		append(buf, cap, &o, " %s", fi.state);
		if (fi.peer_inode != 0) {
			append(buf, cap, &o, ", peer socket:[%llu]", (unsigned long long)fi.peer_inode);
			append_holders(buf, cap, &o, &fi);
		}
		break;
	case PK_PY_FD_PIPE:
		append(buf, cap, &o, "%s, other end", fi.target);
		append_holders(buf, cap, &o, &fi);
		break;
	case PK_PY_FD_FILE:
		append_untrusted(buf, cap, &o, fi.target);
		if (fi.pos >= 0)
			append(buf, cap, &o, " pos %lld", fi.pos);
		break;
	default:
		append_untrusted(buf, cap, &o, fi.target);
		break;
	}
}

static void json_fd_info(struct pk_json *j, pid_t pid, int fd)
{
	struct pk_py_fd fi;
	bool ok = fd != AT_FDCWD && fd_info(pid, fd, &fi);
	bool sock = ok && (fi.kind == PK_PY_FD_INET || fi.kind == PK_PY_FD_UNIX);

	/* AT_FDCWD: the directory argument of an *at call meaning the
	 * current directory, no descriptor. */
	pk_json_str(j, "target", fd == AT_FDCWD ? "AT_FDCWD" : ok ? fi.target : "?");
	pk_json_str(j, "kind", ok ? fd_kind_name(fi.kind) : NULL);
	pk_json_str(j, "proto", sock ? fi.proto : NULL);
	pk_json_str(j, "local", ok && fi.kind == PK_PY_FD_INET ? fi.local : NULL);
	pk_json_str(j, "remote", ok && fi.kind == PK_PY_FD_INET ? fi.remote : NULL);
	pk_json_str(j, "state", sock ? fi.state : NULL);
	pk_json_str(j, "path", ok && fi.kind == PK_PY_FD_UNIX && fi.path[0] ? fi.path : ok && fi.kind == PK_PY_FD_FILE ? fi.target : NULL);
	if (ok && fi.pos >= 0)
		pk_json_int(j, "pos", fi.pos);
	else
		pk_json_null(j, "pos");
	if (ok && fi.kind == PK_PY_FD_UNIX && fi.peer_inode != 0)
		pk_json_uint(j, "peer_inode", (unsigned long long)fi.peer_inode);
	else
		pk_json_null(j, "peer_inode");
	pk_json_arr_begin(j, "holders");
	for (size_t i = 0; ok && i < fi.nholders; i++) {
		char mode[2] = { fi.holders[i].mode, '\0' };

		pk_json_obj_begin(j, NULL);
		pk_json_int(j, "pid", fi.holders[i].pid);
		pk_json_int(j, "fd", fi.holders[i].fd);
		pk_json_str(j, "comm", fi.holders[i].comm);
		pk_json_str(j, "mode", mode);
		pk_json_obj_end(j);
	}
	pk_json_arr_end(j);
	pk_json_bool(j, "holders_truncated", ok && fi.holders_truncated);
}

void pk_format_syscall(pid_t pid, long nr, const uint64_t *args, char *buf, size_t cap)
{
	const char *name = pk_py_syscall_name(nr);
	unsigned fds = pk_py_syscall_fd_args(nr);
	int nargs = pk_py_syscall_nargs(nr);
	size_t o;

	if (name != NULL)
		o = (size_t)snprintf(buf, cap, "%s(", name);
	else
		o = (size_t)snprintf(buf, cap, "syscall_%ld(", nr);
	for (int i = 0; i < nargs && o < cap; i++) {
		if (fds & (1u << i)) {
			int fd = fd_arg(args[i]);
			char target[1024];

			if (fd == AT_FDCWD) {
				o += (size_t)snprintf(buf + o, cap - o, "%sAT_FDCWD", i ? ", " : "");
				continue;
			}
			describe_fd(pid, fd, target, sizeof(target));
			o += (size_t)snprintf(buf + o, cap - o, "%sfd %d -> %s", i ? ", " : "", fd, target);
		} else {
			o += (size_t)snprintf(buf + o, cap - o, "%s0x%llx", i ? ", " : "", (unsigned long long)args[i]);
		}
	}
	if (o < cap)
		snprintf(buf + o, cap - o, ")");
}

void pk_json_syscall(struct pk_json *j, pid_t pid, long nr, const uint64_t *args)
{
	unsigned fds = pk_py_syscall_fd_args(nr);
	int nargs = pk_py_syscall_nargs(nr);
	char hex[24];

	if (nr < 0) {
		pk_json_null(j, "syscall");
		return;
	}
	pk_json_obj_begin(j, "syscall");
	pk_json_int(j, "nr", nr);
	pk_json_str(j, "name", pk_py_syscall_name(nr));
	pk_json_arr_begin(j, "args");
	for (int i = 0; i < nargs; i++) {
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)args[i]);
		pk_json_str(j, NULL, hex);
	}
	pk_json_arr_end(j);
	pk_json_arr_begin(j, "fds");
	for (int i = 0; i < nargs; i++) {
		if (!(fds & (1u << i)))
			continue;
		pk_json_obj_begin(j, NULL);
		pk_json_int(j, "arg", i);
		pk_json_int(j, "fd", fd_arg(args[i]));
		json_fd_info(j, pid, fd_arg(args[i]));
		pk_json_obj_end(j);
	}
	pk_json_arr_end(j);
	pk_json_obj_end(j);
}
