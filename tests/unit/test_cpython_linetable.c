/* SPDX-License-Identifier: MIT */
/* Line-number decoding for the three table formats, on hand-built tables
 * whose meaning is worked out in the comments from CPython's format notes
 * (Objects/lnotab_notes.txt, Objects/locations.md). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "py-priv.h"

static void test_lnotab(void **state)
{
	/* (addr+0, line+1) (addr+6, line+1) (addr+8, line+2): addresses 0-5 on
	 * line 11, 6-13 on line 12, 14+ on line 14. */
	const uint8_t tab[] = { 0, 1, 6, 1, 8, 2 };
	(void)state;
	assert_int_equal(pk_lnotab_line(tab, sizeof(tab), 10, -1, true), 10);
	assert_int_equal(pk_lnotab_line(tab, sizeof(tab), 10, 0, true), 11);
	assert_int_equal(pk_lnotab_line(tab, sizeof(tab), 10, 4, true), 11);
	assert_int_equal(pk_lnotab_line(tab, sizeof(tab), 10, 6, true), 12);
	assert_int_equal(pk_lnotab_line(tab, sizeof(tab), 10, 13, true), 12);
	assert_int_equal(pk_lnotab_line(tab, sizeof(tab), 10, 14, true), 14);
	assert_int_equal(pk_lnotab_line(tab, sizeof(tab), 10, 1000, true), 14);
	/* A truncated pair is ignored, not read past. */
	assert_int_equal(pk_lnotab_line(tab, 5, 10, 1000, true), 12);
}

static void test_lnotab_signedness(void **state)
{
	/* 3.6+: 0xff is -1; 2.7: 255. */
	const uint8_t tab[] = { 2, 0xff };
	(void)state;
	assert_int_equal(pk_lnotab_line(tab, sizeof(tab), 50, 4, true), 49);
	assert_int_equal(pk_lnotab_line(tab, sizeof(tab), 50, 4, false), 305);
}

static void test_linetable310(void **state)
{
	/* (4 bytes, +1) [0,4) line 6; (0, +2) empty, line 8 carried; (6, none)
	 * [4,10) no line; (4, +3) [10,14) line 11. */
	const uint8_t tab[] = { 4, 1, 0, 2, 6, 0x80, 4, 3 };
	(void)state;
	assert_int_equal(pk_linetable310_line(tab, sizeof(tab), 5, -2), 5);
	assert_int_equal(pk_linetable310_line(tab, sizeof(tab), 5, 0), 6);
	assert_int_equal(pk_linetable310_line(tab, sizeof(tab), 5, 2), 6);
	assert_int_equal(pk_linetable310_line(tab, sizeof(tab), 5, 4), -1);
	assert_int_equal(pk_linetable310_line(tab, sizeof(tab), 5, 12), 11);
	assert_int_equal(pk_linetable310_line(tab, sizeof(tab), 5, 20), -1);
}

static void test_linetable311(void **state)
{
	const uint8_t tab[] = {
		0xE8, 0x02,             /* NO_COLUMNS, 1 unit, line +1       [0,2)   101 */
		0xE1, 0x00, 0x05,       /* ONE_LINE2, 2 units, cols          [2,6)   103 */
		0xF8,                   /* NONE, 1 unit                      [6,8)   -1  */
		0x82, 0x11,             /* SHORT0, 3 units, same line        [8,14)  103 */
		0xF0, 0x07, 0x00, 0x01, 0x02, /* LONG, 1 unit, line -3       [14,16) 100 */
		0xE8, 0x48, 0x03,       /* NO_COLUMNS, line +100 (two-byte varint) [16,18) 200 */
	};
	(void)state;
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, -2), 100);
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, 0), 101);
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, 2), 103);
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, 4), 103);
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, 6), -1);
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, 8), 103);
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, 12), 103);
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, 14), 100);
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, 16), 200);
	assert_int_equal(pk_linetable311_line(tab, sizeof(tab), 100, 18), -1);
}

static void test_linetable311_hostile(void **state)
{
	/* Not at an entry start, truncated varints, endless continuation bits:
	 * an answer (or -1), never a read past the end. */
	const uint8_t junk[] = { 0x01, 0x02 };
	const uint8_t trunc[] = { 0xF0, 0x7f };
	uint8_t cont[64];
	(void)state;
	assert_int_equal(pk_linetable311_line(junk, sizeof(junk), 1, 0), -1);
	assert_int_equal(pk_linetable311_line(trunc, sizeof(trunc), 1, 100), -1);
	cont[0] = 0xE8;
	for (size_t i = 1; i < sizeof(cont); i++)
		cont[i] = 0x7f;
	assert_int_equal(pk_linetable311_line(cont, sizeof(cont), 1, 100), -1);
	assert_int_equal(pk_linetable311_line(cont, 0, 1, 0), -1);
}

static void test_line_overflow(void **state)
{
	/* The first line and the deltas come from the target: a sum outside
	 * int is "no line", never undefined behaviour. */
	const uint8_t lnotab[] = { 0, 100 };
	uint8_t big[36];
	(void)state;
	assert_int_equal(pk_lnotab_line(lnotab, sizeof(lnotab), INT32_MAX - 10, 5, true), -1);
	for (size_t i = 0; i < sizeof(big); i += 6) {
		/* NO_COLUMNS, 1 unit, line delta +2^29-ish (svarint 7e 7f 7f 7f 3f) */
		const uint8_t e[] = { 0xE8, 0x7E, 0x7F, 0x7F, 0x7F, 0x3F };
		for (size_t k = 0; k < 6; k++)
			big[i + k] = e[k];
	}
	assert_int_equal(pk_linetable311_line(big, sizeof(big), INT32_MAX - 5, 10), -1);
	assert_int_equal(pk_linetable310_line(lnotab, sizeof(lnotab), INT32_MAX - 10, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lnotab),
		cmocka_unit_test(test_lnotab_signedness),
		cmocka_unit_test(test_linetable310),
		cmocka_unit_test(test_linetable311),
		cmocka_unit_test(test_linetable311_hostile),
		cmocka_unit_test(test_line_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
