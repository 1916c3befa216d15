/* The one parser of numeric command-line arguments: PIDs, THREAD (a TID or a
 * Python ident), --max-frames, --wait. */
#ifndef PK_CLI_NUM_H
#define PK_CLI_NUM_H

#include <stdint.h>

enum pk_num_form {
	PK_NUM_HEX = 1u,   /* "0x" and hex digits are accepted too (a Python ident as hex()) */
	PK_NUM_MILLI = 2u, /* a '.' and 1 to 3 decimals are accepted; the value is in thousandths */
};

/* s as a number of the given forms (PK_NUM_*, or 0: decimal digits only):
 * no sign, no blank, no exponent, nothing after the digits; a value above
 * max (in the result's unit) is refused, never wrapped or clamped. 0, or
 * -EINVAL (not a number of that form), -ERANGE (below min or above max). */
int pk_parse_num(const char *s, unsigned forms, uint64_t min, uint64_t max, uint64_t *out);

#endif
