/* SPDX-License-Identifier: MIT */
/* The escaper of the human output (esc.h). Every string pykill did not write
 * itself goes through pk_esc() before it reaches a terminal: a thread name
 * with a newline would otherwise forge a row of the table, and an escape
 * sequence in a file name would clear the screen or set the window title. */
#include "esc.h"

#include <stdio.h>
#include <string.h>

size_t pk_utf8_char(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0; /* continuation byte, C0/C1 (overlong), F5-FF */
	}
	/* A NUL ends the string: it is no continuation byte, so this never reads past it. */
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

bool pk_esc_hidden(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
	       (cp >= 0xfff9 && cp <= 0xfffb);
}

/* The escape of the character at s into piece (at most 6 bytes and a NUL);
 * *adv: how many bytes of s it stands for. Returns its length. */
static size_t esc_one(const unsigned char *s, char piece[8], size_t *adv)
{
	uint32_t cp;
	size_t n = pk_utf8_char(s, &cp);

	*adv = n ? n : 1;
	if (n == 0)
		return (size_t)snprintf(piece, 8, "\\x%02x", s[0]);
	switch (cp) {
	case '\\':
		return (size_t)snprintf(piece, 8, "\\\\");
	case '\n':
		return (size_t)snprintf(piece, 8, "\\n");
	case '\r':
		return (size_t)snprintf(piece, 8, "\\r");
	case '\t':
		return (size_t)snprintf(piece, 8, "\\t");
	default:
		break;
	}
	if (cp < 0x80 && pk_esc_hidden(cp))
		return (size_t)snprintf(piece, 8, "\\x%02x", (unsigned)cp);
	if (pk_esc_hidden(cp))
		return (size_t)snprintf(piece, 8, "\\u%04x", (unsigned)cp);
	memcpy(piece, s, n);
	piece[n] = '\0';
	return n;
}

const char *pk_esc(const char *s, char *buf, size_t cap)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	size_t o = 0, keep = 0; /* keep: the longest output so far that leaves room for "..." */
	size_t adv;

	if (cap == 0)
		return buf;
	for (; *p; p += adv) {
		char piece[8];
		size_t n = esc_one(p, piece, &adv);

		if (o + n >= cap) {
			if (cap >= 4) {
				memcpy(buf + keep, "...", 3);
				o = keep + 3;
			}
			break;
		}
		memcpy(buf + o, piece, n);
		o += n;
		if (o + 3 < cap)
			keep = o;
	}
	buf[o] = '\0';
	return buf;
}
