/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the /proc parsers of the attach module: arbitrary
 * bytes as the text of maps, status, stat, syscall and sched files, and as
 * lines of /proc/net/{tcp,tcp6,udp,udp6,unix}.
 *
 * The input is passed with its length and is not NUL-terminated, so any
 * read past the end is caught by AddressSanitizer. Build and run (from the
 * source tree):
 *
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *         -fno-sanitize-recover=undefined -I attach -I common \
 *         tests/fuzz/fuzz_proc.c attach/proc.c attach/sched.c attach/fdinfo.c \
 *         attach/syscalls.c build/attach/syscall-table.c common/pk_log.c -o /tmp/fuzz_proc
 *   cp -r tests/fuzz/corpus/proc /tmp/fuzz-proc-corpus
 *   /tmp/fuzz_proc -max_total_time=30 -max_len=8192 /tmp/fuzz-proc-corpus
 *
 * (the scratch copy keeps the inputs libFuzzer adds out of the tree) */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pk_attach.h"
#include "pk_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_maps(const char *text, size_t size)
{
	struct pk_maps m;

	if (pk_maps_parse(text, size, &m) != 0)
		return;
	for (size_t i = 0; i < m.n; i++) {
		const struct pk_map *p = &m.v[i];

		/* every path is a string inside the result, every range sane */
		if (strlen(p->path) > size || p->end < p->start)
			abort();
		if (i > 0 && m.v[i - 1].start > p->start)
			abort();
		if (pk_maps_find(&m, p->start) == NULL && p->end > p->start)
			abort();
		(void)pk_maps_find(&m, p->end);
		(void)pk_maps_find(&m, p->start - 1);
	}
	(void)pk_maps_find(&m, 0);
	(void)pk_maps_find(&m, UINT64_MAX);
	pk_maps_free(&m);
}

static void check_status(const char *text, size_t size)
{
	struct pk_status st;

	if (pk_status_parse(text, size, &st) != 0)
		return;
	if (st.ns_levels < 1 || st.ns_levels > PK_MAX_NS_LEVELS)
		abort();
	if (strnlen(st.name, sizeof(st.name)) >= sizeof(st.name))
		abort();
	if (st.tgid < 0 || st.tracer_pid < 0)
		abort();
}

static void check_stat(const char *text, size_t size)
{
	struct pk_stat s;

	if (pk_stat_parse(text, size, &s) != 0)
		return;
	if (strnlen(s.comm, sizeof(s.comm)) >= sizeof(s.comm) || s.processor < 0)
		abort();
}

static void check_syscall(const char *text, size_t size)
{
	struct pk_syscall sc;

	if (pk_syscall_parse(text, size, &sc) != 0)
		return;
	if (sc.nr < PK_SYSCALL_RUNNING)
		abort();
}

static void check_sched(const char *text, size_t size)
{
	uint64_t ns;

	(void)pk_sched_parse(text, size, &ns);
}

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* The net line parsers take one NUL-terminated line, as fgets gives it. */
static void check_net_lines(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	struct pk_fd_info fi;

	if (line == NULL)
		return;
	memcpy(line, data, size);
	line[size] = '\0';
	for (int v6 = 0; v6 < 2; v6++)
		for (int tcp = 0; tcp < 2; tcp++) {
			memset(&fi, 0, sizeof(fi));
			if (pk_net_inet_line_parse(line, v6, tcp, 0, &fi) == 0 &&
			    (!terminated(fi.local, sizeof(fi.local)) || !terminated(fi.remote, sizeof(fi.remote)) ||
			     !terminated(fi.state, sizeof(fi.state)) || fi.kind != PK_FD_INET))
				abort();
		}
	memset(&fi, 0, sizeof(fi));
	if (pk_net_unix_line_parse(line, 0, &fi) == 0 &&
	    (!terminated(fi.path, sizeof(fi.path)) || !terminated(fi.state, sizeof(fi.state)) || fi.kind != PK_FD_UNIX))
		abort();
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: the parsers must not look one byte further. */
	char *text = malloc(size ? size : 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	check_maps(text, size);
	check_status(text, size);
	check_stat(text, size);
	check_syscall(text, size);
	check_sched(text, size);
	free(text);
	check_net_lines(data, size);
	pk_error_clear();
	return 0;
}
