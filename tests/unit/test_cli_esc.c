/* SPDX-License-Identifier: MIT */
/* The escaper of the human output (cli/esc.c) and the strings of the JSON
 * writer (cli/json.c): what a target's names can contain (newlines, escape
 * sequences, bytes that are not UTF-8) must reach neither a terminal nor a
 * JSON reader as anything but text, and JSON must keep every byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "esc.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_esc(const char *in, const char *want)
{
	char buf[256];

	assert_string_equal(pk_esc(in, buf, sizeof(buf)), want);
}

static void test_plain_kept(void **state)
{
	(void)state;
	expect_esc("", "");
	expect_esc("worker-1", "worker-1");
	expect_esc("Thread-3 (run) ~!@#$%^&*()'\"", "Thread-3 (run) ~!@#$%^&*()'\"");
	/* Printable UTF-8, 2, 3 and 4 bytes, is text. */
	expect_esc("funci\xc3\xb3n_\xc3\xb1 \xe2\x82\xac \xf0\x9f\x90\x8d", "funci\xc3\xb3n_\xc3\xb1 \xe2\x82\xac \xf0\x9f\x90\x8d");
}

static void test_controls(void **state)
{
	(void)state;
	/* A newline would forge a row; ESC and BEL make OSC window titles and CSI. */
	expect_esc("x\nTID  IDENT  FAKE", "x\\nTID  IDENT  FAKE");
	expect_esc("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07");
	expect_esc("\x1b[2J\r\t", "\\x1b[2J\\r\\t");
	expect_esc("\x01\x1f\x7f", "\\x01\\x1f\\x7f");
	/* The backslash is doubled, so that an escape can be read back. */
	expect_esc("a\\nb", "a\\\\nb");
	expect_esc("\\x1b", "\\\\x1b");
}

static void test_hidden_code_points(void **state)
{
	(void)state;
	/* C1 controls: U+009B is CSI for a terminal that honours 8-bit controls. */
	expect_esc("a\xc2\x9b" "31mb", "a\\u009b31mb");
	expect_esc("\xc2\x85", "\\u0085");
	/* Bidi override, isolates, zero-width, line separator, BOM. */
	expect_esc("\xe2\x80\xae" "evil", "\\u202eevil");
	expect_esc("\xe2\x81\xa6x\xe2\x81\xa9", "\\u2066x\\u2069");
	expect_esc("a\xe2\x80\x8b" "b", "a\\u200bb");
	expect_esc("\xe2\x80\xa8", "\\u2028");
	expect_esc("\xef\xbb\xbf", "\\ufeff");
	/* Their neighbours are text. */
	expect_esc("\xc2\xa0\xe2\x80\x90", "\xc2\xa0\xe2\x80\x90");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	/* Each byte that starts no valid sequence is \xNN; what follows is read anew. */
	expect_esc("bad\xff\xfe", "bad\\xff\\xfe");
	expect_esc("\x80x", "\\x80x");                         /* stray continuation */
	expect_esc("\xc3", "\\xc3");                            /* cut short by the end */
	expect_esc("\xc3x", "\\xc3x");                          /* cut short by ASCII */
	expect_esc("\xc0\x80", "\\xc0\\x80");                   /* overlong NUL */
	expect_esc("\xe0\x80\xaf", "\\xe0\\x80\\xaf");          /* overlong '/' */
	expect_esc("\xed\xa0\x80", "\\xed\\xa0\\x80");          /* a surrogate, U+D800 */
	expect_esc("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
	expect_esc("\xe2\x82" "\xe2\x82\xac", "\\xe2\\x82\xe2\x82\xac");
}

static void test_bounded(void **state)
{
	char small[16], tiny[4], one[1];
	char big[5001];

	(void)state;
	/* Fits exactly: 15 characters and the NUL. */
	assert_string_equal(pk_esc("abcdefghijklmno", small, sizeof(small)), "abcdefghijklmno");
	/* One more: cut, ending with "...", within the buffer. */
	assert_string_equal(pk_esc("abcdefghijklmnop", small, sizeof(small)), "abcdefghijkl...");
	/* Never in the middle of an escape. */
	assert_string_equal(pk_esc("abcdefghij\x1b\x1b\x1b", small, sizeof(small)), "abcdefghij...");
	assert_string_equal(pk_esc("abcdefgh\x1b\x1b", small, sizeof(small)), "abcdefgh\\x1b...");
	/* Nor of a UTF-8 character. */
	assert_string_equal(pk_esc("abcdefghijk\xe2\x82\xac\xe2\x82\xac", small, sizeof(small)), "abcdefghijk...");
	assert_string_equal(pk_esc("abcdefgh\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", small, sizeof(small)),
			    "abcdefgh\xe2\x82\xac...");
	assert_string_equal(pk_esc("abcdef", tiny, sizeof(tiny)), "...");
	assert_string_equal(pk_esc("abc", tiny, sizeof(tiny)), "abc");
	assert_string_equal(pk_esc("abc", one, sizeof(one)), "");
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	{
		char q[PK_ESC_ARG];
		pk_esc(big, q, sizeof(q));
		assert_int_equal(strlen(q), PK_ESC_ARG - 1);
		assert_string_equal(q + PK_ESC_ARG - 4, "...");
	}
	/* NULL is the empty string. */
	assert_string_equal(pk_esc(NULL, small, sizeof(small)), "");
}

/* Every byte value alone and after a lead byte: the output is printable
 * ASCII or valid, visible UTF-8, never a control. */
static void test_no_control_escapes(void **state)
{
	char in[4], out[64];

	(void)state;
	for (unsigned a = 1; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			const unsigned char *p;
			in[0] = (char)a;
			in[1] = (char)b;
			in[2] = (char)0x80;
			in[3] = '\0';
			pk_esc(in, out, sizeof(out));
			for (p = (const unsigned char *)out; *p;) {
				uint32_t cp;
				size_t n = pk_utf8_char(p, &cp);
				assert_true(n > 0);
				assert_false(pk_esc_hidden(cp));
				p += n;
			}
		}
	}
}

static char *json_string(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct pk_json j;

	assert_non_null(f);
	pk_json_init(&j, f);
	pk_json_str(&j, NULL, s);
	fclose(f);
	return buf;
}

static void expect_json(const char *in, const char *want)
{
	char *got = json_string(in);

	assert_string_equal(got, want);
	free(got);
}

static void test_json_strings(void **state)
{
	(void)state;
	expect_json("worker-1", "\"worker-1\"");
	expect_json("x\nTID  IDENT  FAKE", "\"x\\nTID  IDENT  FAKE\"");
	expect_json("\x1b]0;pwned\x07", "\"\\u001b]0;pwned\\u0007\"");
	expect_json("q\"b\\s\r\t\x01\x7f", "\"q\\\"b\\\\s\\r\\t\\u0001\\u007f\"");
	/* Text stays text, the hidden code points are escaped (same value). */
	expect_json("funci\xc3\xb3n \xf0\x9f\x90\x8d", "\"funci\xc3\xb3n \xf0\x9f\x90\x8d\"");
	expect_json("\xc2\x9b\xe2\x80\xae\xe2\x80\xa8", "\"\\u009b\\u202e\\u2028\"");
	/* Bytes that are not UTF-8: surrogateescape, lossless. */
	expect_json("bad\xff\xfe", "\"bad\\udcff\\udcfe\"");
	expect_json("\xc3x\x80", "\"\\udcc3x\\udc80\"");
	expect_json("\xed\xa0\x80", "\"\\udced\\udca0\\udc80\"");
	expect_json(NULL, "null");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_kept),
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_hidden_code_points),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_no_control_escapes),
		cmocka_unit_test(test_json_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
