#include "cli.h"
#include "pk_attach.h"

#include <fcntl.h>
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

const char *pk_gil_name(enum pk_gil_role role)
{
	switch (role) {
	case PK_GIL_HOLDS: return "holds";
	case PK_GIL_WAITS: return "waits";
	case PK_GIL_DROPPING: return "dropping";
	case PK_GIL_NONE: return "none";
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

/* The kernel reads a descriptor argument as an int, the low half of the
 * register: AT_FDCWD (-100) arrives as 0xffffff9c, which printed as a 64-bit
 * number was "fd 4294967196". */
static int fd_arg(uint64_t reg)
{
	return (int)(int32_t)(uint32_t)reg;
}

/* What descriptor fd of pid refers to: "socket:[123]", a path (the target's
 * to name: escaped by the caller for human output), "AT_FDCWD" (the
 * directory argument of an *at call meaning the current directory), "?". */
static void fd_target(pid_t pid, int fd, char *buf, size_t cap)
{
	if (fd == AT_FDCWD)
		snprintf(buf, cap, "AT_FDCWD");
	else if (fd < 0 || pk_proc_fd_target(pid, fd, buf, cap) < 0)
		snprintf(buf, cap, "?");
}

void pk_format_syscall(pid_t pid, long nr, const uint64_t *args, char *buf, size_t cap)
{
	const char *name = pk_syscall_name(nr);
	unsigned fds = pk_syscall_fd_args(nr);
	int nargs = pk_syscall_nargs(nr);
	size_t o;

	if (name != NULL)
		o = (size_t)snprintf(buf, cap, "%s(", name);
	else
		o = (size_t)snprintf(buf, cap, "syscall_%ld(", nr);
	for (int i = 0; i < nargs && o < cap; i++) {
		const char *sep = i ? ", " : "";

		if (fds & (1u << i)) {
			int fd = fd_arg(args[i]);
			char target[256], e[4 * sizeof(target)];

			if (fd == AT_FDCWD) {
				o += (size_t)snprintf(buf + o, cap - o, "%sAT_FDCWD", sep);
				continue;
			}
			fd_target(pid, fd, target, sizeof(target));
			o += (size_t)snprintf(buf + o, cap - o, "%sfd %d -> %s", sep, fd, pk_esc(target, e, sizeof(e)));
		} else {
			o += (size_t)snprintf(buf + o, cap - o, "%s0x%llx", sep, (unsigned long long)args[i]);
		}
	}
	if (o < cap)
		snprintf(buf + o, cap - o, ")");
}

void pk_json_syscall(struct pk_json *j, pid_t pid, long nr, const uint64_t *args)
{
	unsigned fds = pk_syscall_fd_args(nr);
	int nargs = pk_syscall_nargs(nr);
	char hex[24];

	if (nr < 0) {
		pk_json_null(j, "syscall");
		return;
	}
	pk_json_obj_begin(j, "syscall");
	pk_json_int(j, "nr", nr);
	pk_json_str(j, "name", pk_syscall_name(nr));
	pk_json_arr_begin(j, "args");
	for (int i = 0; i < nargs; i++) {
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)args[i]);
		pk_json_str(j, NULL, hex);
	}
	pk_json_arr_end(j);
	pk_json_arr_begin(j, "fds");
	for (int i = 0; i < nargs; i++) {
		char target[256];
		if (!(fds & (1u << i)))
			continue;
		fd_target(pid, fd_arg(args[i]), target, sizeof(target));
		pk_json_obj_begin(j, NULL);
		pk_json_int(j, "arg", i);
		pk_json_int(j, "fd", fd_arg(args[i]));
		pk_json_str(j, "target", target);
		pk_json_obj_end(j);
	}
	pk_json_arr_end(j);
	pk_json_obj_end(j);
}
