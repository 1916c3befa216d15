/* SPDX-License-Identifier: MIT */
/* pk_parse_num (num.h). strtol and friends accept leading blanks, a sign,
 * "1e3" (strtod), "0x10" (strtod) and wrap or clamp on overflow: an argument
 * with a stray blank or one digit too many was then taken for another
 * number, or failed later as "no such thread". Hand-written instead. */
#include "num.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

static int digit(char c, unsigned base)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (base == 16 && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (base == 16 && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pk_parse_num(const char *s, unsigned forms, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned base = 10, decimals = 0;
	uint64_t v = 0;
	bool any = false, overflow = false;
	int d;

	if (s == NULL)
		return -EINVAL;
	if ((forms & PK_NUM_HEX) && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; (d = digit(*s, base)) >= 0; s++) {
		any = true;
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			overflow = true; /* keep scanning: "12x" with too many digits is still not a number */
		else
			v = v * base + (uint64_t)d;
	}
	if (!any)
		return -EINVAL;
	if ((forms & PK_NUM_MILLI) && base == 10) {
		if (*s == '.') {
			s++;
			for (; *s >= '0' && *s <= '9' && decimals < 3; s++, decimals++) {
				if (v > (UINT64_MAX - 9) / 10)
					overflow = true;
				else
					v = v * 10 + (uint64_t)(*s - '0');
			}
			if (decimals == 0)
				return -EINVAL; /* "1." */
		}
		for (; decimals < 3; decimals++) {
			if (v > UINT64_MAX / 10)
				overflow = true;
			else
				v *= 10;
		}
	}
	if (*s != '\0')
		return -EINVAL;
	if (overflow || v > max || v < min)
		return -ERANGE;
	*out = v;
	return 0;
}

bool pk_parse_duration(const char *s, uint64_t *ns)
{
	const uint64_t max = 366ull * 86400u * 1000000000u;
	uint64_t total = 0;

	if (*s == '\0')
		return false;
	while (*s != '\0') {
		uint64_t whole = 0, frac = 0, scale = 1, unit;
		bool any = false;

		for (; *s >= '0' && *s <= '9'; s++, any = true) {
			whole = whole * 10 + (uint64_t)(*s - '0');
			if (whole > max / 1000000000u)
				return false;
		}
		if (*s == '.')
			for (s++; *s >= '0' && *s <= '9'; s++, any = true)
				if (scale < 1000000000u) {
					frac = frac * 10 + (uint64_t)(*s - '0');
					scale *= 10;
				}
		if (!any)
			return false;
		switch (*s) {
		case 's': unit = 1; s++; break;
		case 'm': unit = 60; s++; break;
		case 'h': unit = 3600; s++; break;
		case 'd': unit = 86400; s++; break;
		case '\0': unit = 1; break;
		default: return false;
		}
		if (whole > max / 1000000000u / unit)
			return false;
		total += whole * unit * 1000000000u + frac * unit * (1000000000u / scale);
		if (total > max)
			return false;
	}
	*ns = total;
	return true;
}

void pk_format_duration(uint64_t ns, char *buf, size_t cap)
{
	uint64_t s = ns / 1000000000u;

	if (s < 10)
		snprintf(buf, cap, "%.1fs", (double)(ns / 100000000u) / 10);
	else if (s < 60)
		snprintf(buf, cap, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(buf, cap, "%llum%02llus", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, cap, "%lluh%02llum", (unsigned long long)(s / 3600), (unsigned long long)(s % 3600 / 60));
	else
		snprintf(buf, cap, "%llud%02lluh", (unsigned long long)(s / 86400),
			 (unsigned long long)(s % 86400 / 3600));
}

void pk_format_duration_exact(uint64_t ns, char *buf, size_t cap)
{
	uint64_t ms = (ns + 999999u) / 1000000u; /* up: never below what was asked */

	if (ms % 3600000u == 0 && ms > 0)
		snprintf(buf, cap, "%lluh", (unsigned long long)(ms / 3600000u));
	else if (ms % 60000u == 0 && ms > 0)
		snprintf(buf, cap, "%llum", (unsigned long long)(ms / 60000u));
	else if (ms % 1000u == 0)
		snprintf(buf, cap, "%llus", (unsigned long long)(ms / 1000u));
	else {
		int n = snprintf(buf, cap, "%llu.%03llu", (unsigned long long)(ms / 1000u),
				 (unsigned long long)(ms % 1000u));
		/* "0.050" -> "0.05" */
		while (n > 0 && (size_t)n < cap && buf[n - 1] == '0')
			buf[--n] = '\0';
		if (n > 0 && (size_t)n + 1 < cap) {
			buf[n] = 's';
			buf[n + 1] = '\0';
		}
	}
}

