/* SPDX-License-Identifier: MIT */
/* Line numbers from the three line-table formats CPython has used.
 *
 * Each function mirrors the interpreter's own lookup for that format
 * (PyCode_Addr2Line) so that pykill shows the line the interpreter itself
 * would report, e.g. in sys._current_frames(). The tables come from target
 * memory: every index is checked against len. */
#include "py-priv.h"

/* <= 3.9 co_lnotab: (address increment, line increment) byte pairs. Line
 * increments are signed from 3.6 on, unsigned in 2.7. */
/* Lines are accumulated in 64 bits: the first line and the deltas come from
 * the target, and a lie must give "no line" (-1), not an overflow. */
static int clamp_line(int64_t line)
{
	return (line < INT32_MIN || line > INT32_MAX) ? -1 : (int)line;
}

int pk_lnotab_line(const uint8_t *tab, size_t len, int firstlineno, int lasti_bytes, bool signed_deltas)
{
	int64_t line = firstlineno;
	int64_t addr = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		addr += tab[i];
		if (addr > lasti_bytes)
			break;
		line += signed_deltas ? (int)(int8_t)tab[i + 1] : (int)tab[i + 1];
	}
	return clamp_line(line);
}

/* 3.10 co_linetable (PEP 626): (code-byte delta, signed line delta) pairs,
 * line delta -128 meaning "no line". The interpreter walks address ranges
 * until the one containing addr; ranges of zero length are merged forward. */
int pk_linetable310_line(const uint8_t *tab, size_t len, int firstlineno, int addr_bytes)
{
	int64_t computed = firstlineno, start = 0, end = 0, line = -1;

	if (addr_bytes < 0)
		return firstlineno;
	for (size_t i = 0; i + 1 < len; i += 2) {
		int ldelta = (int8_t)tab[i + 1];

		start = end;
		end += tab[i];
		if (ldelta == -128) {
			line = -1;
		} else {
			computed += ldelta;
			line = computed;
		}
		if (start == end)
			continue;
		if (addr_bytes >= start && addr_bytes < end)
			return clamp_line(line);
	}
	return -1;
}

/* 3.11+ location table (PEP 657). Each entry starts with a byte whose top bit
 * is set: bits 3-6 the kind, bits 0-2 the length in code units minus one. */
enum {
	LOC_ONE_LINE0 = 10,
	LOC_ONE_LINE1 = 11,
	LOC_ONE_LINE2 = 12,
	LOC_NO_COLUMNS = 13,
	LOC_LONG = 14,
	LOC_NONE = 15,
};

static unsigned scan_varint(const uint8_t *tab, size_t len, size_t *pos)
{
	unsigned val = 0, shift = 0;
	uint8_t b;

	if (*pos >= len)
		return 0;
	b = tab[(*pos)++];
	val = b & 63;
	while ((b & 64) && *pos < len && shift < 28) {
		b = tab[(*pos)++];
		shift += 6;
		val |= (unsigned)(b & 63) << shift;
	}
	return val;
}

static int scan_signed_varint(const uint8_t *tab, size_t len, size_t *pos)
{
	unsigned uval = scan_varint(tab, len, pos);

	return (uval & 1) ? -(int)(uval >> 1) : (int)(uval >> 1);
}

int pk_linetable311_line(const uint8_t *tab, size_t len, int firstlineno, int addr_bytes)
{
	int64_t computed = firstlineno;
	int64_t start, end = 0;
	size_t pos = 0;

	if (addr_bytes < 0)
		return firstlineno;
	while (pos < len) {
		uint8_t first = tab[pos];
		int kind = (first >> 3) & 15;
		int delta = 0;
		int64_t line;
		size_t p = pos + 1;

		if (!(first & 128))
			return -1; /* not at an entry start: corrupt table */
		switch (kind) {
		case LOC_NONE:
			break;
		case LOC_NO_COLUMNS:
		case LOC_LONG:
			delta = scan_signed_varint(tab, len, &p);
			break;
		case LOC_ONE_LINE1:
			delta = 1;
			break;
		case LOC_ONE_LINE2:
			delta = 2;
			break;
		default:
			break;
		}
		computed += delta;
		line = (kind == LOC_NONE) ? -1 : computed;
		start = end;
		end += ((first & 7) + 1) * 2;
		if (addr_bytes >= start && addr_bytes < end)
			return clamp_line(line);
		/* Skip the rest of this entry: up to the next byte with the top bit set. */
		pos++;
		while (pos < len && !(tab[pos] & 128))
			pos++;
	}
	return -1;
}
