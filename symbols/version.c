/* SPDX-License-Identifier: MIT */
/* symbols: find CPython's version string ("3.12.1", "3.13.0rc2") in an
 * object's read-only data, for builds where neither Py_Version (3.11+) nor
 * the exact file name tells the patch level. */
#include "symbols-priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pk_log.h"

#define VERSION_MAX_LEN 32

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Count 1..max digits at p (bounded by end); 0 if none or too many. */
static size_t digits(const unsigned char *p, const unsigned char *end, size_t max)
{
	size_t n = 0;

	while (p + n < end && is_digit(p[n])) {
		if (++n > max)
			return 0;
	}
	return n;
}

static int parse_int(const unsigned char *p, size_t n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*p++ - '0');
	return v;
}

/* Match "X.Y.Z[(a|b|rc)N][+]" followed by NUL at p (X one digit, Y and Z
 * at most three). Returns the length up to (not including) the NUL, or 0. */
static size_t match_version(const unsigned char *p, const unsigned char *end, int *major, int *minor)
{
	const unsigned char *q = p;
	size_t n;

	if (q + 2 > end || !is_digit(q[0]) || q[1] != '.')
		return 0;
	*major = q[0] - '0';
	q += 2;
	n = digits(q, end, 3);
	if (n == 0 || q + n >= end || q[n] != '.')
		return 0;
	*minor = parse_int(q, n);
	q += n + 1;
	n = digits(q, end, 3);
	if (n == 0)
		return 0;
	q += n;
	if (q < end && (*q == 'a' || *q == 'b' || *q == 'r')) {
		if (*q == 'r') {
			if (q + 1 >= end || q[1] != 'c')
				return 0;
			q++;
		}
		q++;
		n = digits(q, end, 3);
		if (n == 0)
			return 0;
		q += n;
	}
	if (q < end && *q == '+')
		q++;
	if (q >= end || *q != '\0')
		return 0;
	return (size_t)(q - p);
}

/* Scan one section. Sets *best to the first match that stands alone (at
 * the start of a string) or, failing that, the first match at all. */
static void scan(const unsigned char *data, size_t size, int want_major, int want_minor, const unsigned char **best,
		 size_t *best_len, bool *best_alone)
{
	const unsigned char *end = data + size;
	const unsigned char *p;

	for (p = data; p + 1 < end; p++) {
		int major, minor;
		bool alone;
		size_t len;

		if (p[1] != '.' || !is_digit(p[0]))
			continue;
		/* "13.12.1" or "1.3.12.1" is not "3.12.1". */
		if (p > data && (is_digit(p[-1]) || p[-1] == '.'))
			continue;
		len = match_version(p, end, &major, &minor);
		if (len == 0 || len >= VERSION_MAX_LEN)
			continue;
		if (want_major != 0 && (major != want_major || minor != want_minor))
			continue;
		alone = p == data || p[-1] == '\0';
		if (*best == NULL || (alone && !*best_alone)) {
			*best = p;
			*best_len = len;
			*best_alone = alone;
			if (alone)
				return;
		}
	}
}

int pk_elf_find_version_string(const struct pk_elf *e, int want_major, int want_minor, char *buf, size_t cap)
{
	const struct pk_elf_section *rodata;
	const unsigned char *best = NULL;
	bool best_alone = false;
	size_t best_len = 0, size, i;
	const unsigned char *data;

	/* The string is a constant: .rodata, or when the linker script names
	 * things differently, any allocated read-only non-code section. */
	rodata = pk_elf_find_section(e, ".rodata");
	if (rodata != NULL) {
		data = pk_elf_section_bytes(e, rodata, &size);
		if (data != NULL)
			scan(data, size, want_major, want_minor, &best, &best_len, &best_alone);
	} else {
		for (i = 0; i < e->nsections && !best_alone; i++) {
			const struct pk_elf_section *s = &e->sections[i];

			if (s->type != SHT_PROGBITS || !(s->flags & SHF_ALLOC) || (s->flags & (SHF_WRITE | SHF_EXECINSTR)))
				continue;
			data = pk_elf_section_bytes(e, s, &size);
			if (data != NULL)
				scan(data, size, want_major, want_minor, &best, &best_len, &best_alone);
		}
	}
	if (best == NULL)
		return -ENOENT;
	if (cap <= best_len) {
		pk_error("read version string of %s: %zu bytes do not fit in %zu", e->path, best_len + 1, cap);
		return -ENOSPC;
	}
	memcpy(buf, best, best_len);
	buf[best_len] = '\0';
	pk_log(PK_LOG_DEBUG, "%s: version string \"%s\"%s", e->path, buf, best_alone ? "" : " (tail of a longer string)");
	return 0;
}
