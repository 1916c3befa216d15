/* SPDX-License-Identifier: MIT */
/* The one parser of numeric arguments (cli/num.c): digits only, no sign, no
 * blank, no exponent, overflow refused, never wrapped or clamped. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "num.h"

#include <errno.h>

static int parse(const char *s, unsigned forms, uint64_t min, uint64_t max, uint64_t *v)
{
	*v = 0xdeadbeef;
	return pk_parse_num(s, forms, min, max, v);
}

static void test_decimal(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse("17652", 0, 1, UINT64_MAX, &v), 0);
	assert_int_equal(v, 17652);
	assert_int_equal(parse("0", 0, 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse("007", 0, 0, 10, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(parse("18446744073709551615", 0, 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
}

static void test_malformed(void **state)
{
	static const char *bad[] = {
		"", " 17652", "17652 ", "\t1", "1\n", "+1", "-1", "1e3", "1.0", "0x10", "12x", "x12", "1 2",
		"１２", /* fullwidth digits */
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], 0, 0, UINT64_MAX, &v), -EINVAL);
		assert_true(v == 0xdeadbeef); /* untouched on failure */
	}
	assert_int_equal(pk_parse_num(NULL, 0, 0, 1, &v), -EINVAL);
}

static void test_range(void **state)
{
	uint64_t v;

	(void)state;
	/* 2^64: one more than fits, refused rather than wrapped to 0 or clamped. */
	assert_int_equal(parse("18446744073709551616", 0, 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse("99999999999999999999999999", 0, 0, UINT64_MAX, &v), -ERANGE);
	/* 4294967297 would be 1 if truncated to 32 bits. */
	assert_int_equal(parse("4294967297", 0, 1, 4194304, &v), -ERANGE);
	assert_int_equal(parse("4194304", 0, 1, 4194304, &v), 0);
	assert_int_equal(parse("4194305", 0, 1, 4194304, &v), -ERANGE);
	assert_int_equal(parse("0", 0, 1, 10, &v), -ERANGE);
	/* Malformed wins over too large: "12x" is not a number, however long. */
	assert_int_equal(parse("99999999999999999999999x", 0, 0, UINT64_MAX, &v), -EINVAL);
}

static void test_hex(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse("0x7f00aBcD", PK_NUM_HEX, 1, UINT64_MAX, &v), 0);
	assert_true(v == 0x7f00abcdULL);
	assert_int_equal(parse("0XFFFFFFFFFFFFFFFF", PK_NUM_HEX, 1, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse("0x10000000000000000", PK_NUM_HEX, 1, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse("0x", PK_NUM_HEX, 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse("0xzz", PK_NUM_HEX, 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse("0x 1", PK_NUM_HEX, 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse("0x-1", PK_NUM_HEX, 0, UINT64_MAX, &v), -EINVAL);
	/* Hex digits without 0x are not decimal. */
	assert_int_equal(parse("ff", PK_NUM_HEX, 0, UINT64_MAX, &v), -EINVAL);
	/* Decimal still works with PK_NUM_HEX. */
	assert_int_equal(parse("123", PK_NUM_HEX, 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 123);
	/* Without PK_NUM_HEX, 0x is malformed. */
	assert_int_equal(parse("0x10", 0, 0, UINT64_MAX, &v), -EINVAL);
}

static void test_milli(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse("2", PK_NUM_MILLI, 0, 3600000, &v), 0);
	assert_int_equal(v, 2000);
	assert_int_equal(parse("0.3", PK_NUM_MILLI, 0, 3600000, &v), 0);
	assert_int_equal(v, 300);
	assert_int_equal(parse("0.05", PK_NUM_MILLI, 0, 3600000, &v), 0);
	assert_int_equal(v, 50);
	assert_int_equal(parse("1.234", PK_NUM_MILLI, 0, 3600000, &v), 0);
	assert_int_equal(v, 1234);
	assert_int_equal(parse("3600", PK_NUM_MILLI, 0, 3600000, &v), 0);
	assert_int_equal(v, 3600000);
	assert_int_equal(parse("3600.001", PK_NUM_MILLI, 0, 3600000, &v), -ERANGE);
	/* strtod's forms are not numbers here. */
	static const char *bad[] = { "1e3", "0x10", " 1", "1 ", "+1", "-1", "inf", "nan", "1.", ".5", "1.2345", "1,5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], PK_NUM_MILLI, 0, 3600000, &v), -EINVAL);
	assert_int_equal(parse("99999999999999999999", PK_NUM_MILLI, 0, 3600000, &v), -ERANGE);
	/* No fraction without PK_NUM_MILLI. */
	assert_int_equal(parse("0.5", 0, 0, 10, &v), -EINVAL);
}

/* --stuck's durations (list and ps): units combined, decimals, a year at
 * most, and the form they are said back in. */
static void test_duration(void **state)
{
	static const char *bad[] = { "", "s", "5x", "1.5.5s", "-1s", " 1s", "1s ", "367d", "99999999999999999999" };
	char buf[24];
	uint64_t ns;

	(void)state;
	assert_true(pk_parse_duration("30s", &ns) && ns == 30000000000ull);
	assert_true(pk_parse_duration("1h30m", &ns) && ns == 5400000000000ull);
	assert_true(pk_parse_duration("0.5", &ns) && ns == 500000000ull);
	assert_true(pk_parse_duration("2d", &ns) && ns == 172800000000000ull);
	assert_true(pk_parse_duration("366d", &ns) && ns == 366ull * 86400 * 1000000000ull);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(pk_parse_duration(bad[i], &ns));
	pk_format_duration(500000000ull, buf, sizeof(buf));
	assert_string_equal(buf, "0.5s");
	pk_format_duration(45000000000ull, buf, sizeof(buf));
	assert_string_equal(buf, "45s");
	pk_format_duration(303000000000ull, buf, sizeof(buf));
	assert_string_equal(buf, "5m03s");
	pk_format_duration(11520000000000ull, buf, sizeof(buf));
	assert_string_equal(buf, "3h12m");
	pk_format_duration(187200000000000ull, buf, sizeof(buf));
	assert_string_equal(buf, "2d04h");
	/* A threshold said back: exact or rounded up, and parsed back to at
	 * least what it was. */
	static const struct {
		uint64_t ns;
		const char *s;
	} exact[] = { { 50000000ull, "0.05s" }, { 90500000000ull, "90.5s" }, { 30000000000ull, "30s" },
		      { 300000000000ull, "5m" }, { 7200000000000ull, "2h" }, { 1ull, "0.001s" },
		      { 1500000001ull, "1.501s" } };
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
		pk_format_duration_exact(exact[i].ns, buf, sizeof(buf));
		assert_string_equal(buf, exact[i].s);
		assert_true(pk_parse_duration(buf, &ns) && ns >= exact[i].ns);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decimal),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_milli),
		cmocka_unit_test(test_duration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
