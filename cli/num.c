/* pk_parse_num (num.h). strtol and friends accept leading blanks, a sign,
 * "1e3" (strtod), "0x10" (strtod) and wrap or clamp on overflow: an argument
 * with a stray blank or one digit too many was then taken for another
 * number, or failed later as "no such thread". Hand-written instead. */
#include "num.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

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
