/* SPDX-License-Identifier: MIT */
/* The one parser of numeric command-line arguments: PIDs, THREAD (a TID or a
 * Python ident), --max-frames, --wait; and durations (--stuck). */
#ifndef PK_CLI_NUM_H
#define PK_CLI_NUM_H

#include <stdbool.h>
#include <stddef.h>
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

/* A duration of --stuck: "30s", "5m", "1h30m", "2d", "0.5s"; a number alone
 * is seconds; at most a year. */
bool pk_parse_duration(const char *s, uint64_t *ns);
/* A duration for people: "0.4s", "45s", "5m03s", "3h12m", "2d04h". */
void pk_format_duration(uint64_t ns, char *buf, size_t cap);
/* A threshold said back: "30s", "5m", "1h", "0.05s", "90.5s"; whole
 * milliseconds rounded up, so pk_parse_duration of it is never less. */
void pk_format_duration_exact(uint64_t ns, char *buf, size_t cap);

#endif
