/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit tests (included by a test_*.c, after cmocka). */
#ifndef PK_UNIT_UTIL_H
#define PK_UNIT_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "pk_symbols.h"

/* Does the program process pid runs (/proc/PID/exe) have name in its path?
 * (How a test sees that an exec has completed.) */
static inline bool unit_exe_contains(pid_t pid, const char *name)
{
	char path[64], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return strstr(target, name) != NULL;
}

/* pk_elf_open on a file the test names (its own, trusted; pykill itself
 * opens a target's files with pk_map_open only). -errno if it cannot be
 * opened. */
static inline int unit_elf_open(const char *path, const char *display, struct pk_elf **out)
{
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = pk_elf_open(fd, display, out);
	close(fd);
	return rc;
}

#endif
