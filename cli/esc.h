/* SPDX-License-Identifier: MIT */
/* Text from outside pykill (thread, function, file and exception names, file
 * descriptor targets, command lines, the arguments being complained about)
 * made safe to print: the one escaper of the human output, and the UTF-8
 * decoder the JSON writer shares with it. */
#ifndef PK_CLI_ESC_H
#define PK_CLI_ESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for one escaped string of the human output: any real name or path (at
 * most 4096 printable bytes) fits whole; a hostile one full of escapes is cut
 * (the JSON output has it whole). */
#define PK_ESC_CAP 8192u
/* Room for an argument quoted back in a usage error: longer ones are cut. */
#define PK_ESC_ARG 72u

/* The valid UTF-8 sequence at s (a NUL-terminated string, s[0] != 0): its
 * length 1-4 and code point, or 0 when the byte at s starts none (a stray
 * continuation byte, an overlong form, a surrogate, above U+10FFFF, a
 * sequence cut short). */
size_t pk_utf8_char(const unsigned char *s, uint32_t *cp);

/* A code point that moves the cursor or hides or reorders text instead of
 * showing a glyph: C0 and C1 controls, DEL, bidirectional controls,
 * zero-width characters, line and paragraph separators, BOM. */
bool pk_esc_hidden(uint32_t cp);

/* s as one line of plain text: printable UTF-8 kept, a backslash doubled,
 * \n \r \t, other control bytes and bytes that are not valid UTF-8 as \xNN,
 * the other hidden code points as \uNNNN. Nothing a terminal interprets can
 * pass, and the escape can be read back unambiguously. Written into buf (cap
 * >= 4 bytes); what does not fit is cut at an escape boundary and ends with
 * "...". Returns buf, for use as a printf argument. */
const char *pk_esc(const char *s, char *buf, size_t cap);

#endif
