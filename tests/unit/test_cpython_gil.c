/* SPDX-License-Identifier: MIT */
/* cpython/gil.c: which wait on a GIL a futex address is. The ranges are
 * half-open, a slot whose start is 0 is no range, and taking the GIL is
 * told before handing it over (as list shows it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "py-priv.h"

static void test_wait_kinds(void **state)
{
	/* A 3.12+ GIL at 0x1000: cond +0x20 (48), mutex +0x50 (40),
	 * switch_cond +0x78 (48), switch_mutex +0xa8 (40). */
	struct pk_gil_info g = {
		.wait_lo = { 0x1020, 0x1050 }, .wait_hi = { 0x1050, 0x1078 },
		.drop_lo = { 0x1078, 0x10a8 }, .drop_hi = { 0x10a8, 0x10d0 },
	};
	(void)state;
	assert_int_equal(pk_gil_wait_on(&g, 0x101f), PK_GIL_WAIT_NONE);
	assert_int_equal(pk_gil_wait_on(&g, 0x1020), PK_GIL_WAIT_TAKE);
	assert_int_equal(pk_gil_wait_on(&g, 0x1050), PK_GIL_WAIT_TAKE);
	assert_int_equal(pk_gil_wait_on(&g, 0x1077), PK_GIL_WAIT_TAKE);
	assert_int_equal(pk_gil_wait_on(&g, 0x1078), PK_GIL_WAIT_HANDOVER);
	assert_int_equal(pk_gil_wait_on(&g, 0x10cf), PK_GIL_WAIT_HANDOVER);
	assert_int_equal(pk_gil_wait_on(&g, 0x10d0), PK_GIL_WAIT_NONE);
}

static void test_empty_slots(void **state)
{
	/* 2.7: one semaphore, no hand-over; an unread GIL: nothing at all
	 * (address 0 must not match a zero-width slot at 0). */
	struct pk_gil_info g27 = { .wait_lo = { 0x2000, 0 }, .wait_hi = { 0x2020, 0 } };
	struct pk_gil_info none = { 0 };
	(void)state;
	assert_int_equal(pk_gil_wait_on(&g27, 0x2010), PK_GIL_WAIT_TAKE);
	assert_int_equal(pk_gil_wait_on(&g27, 0), PK_GIL_WAIT_NONE);
	assert_int_equal(pk_gil_wait_on(&g27, 0x2020), PK_GIL_WAIT_NONE);
	assert_int_equal(pk_gil_wait_on(&none, 0), PK_GIL_WAIT_NONE);
	assert_int_equal(pk_gil_wait_on(&none, 0x10), PK_GIL_WAIT_NONE);
}

static void test_take_before_handover(void **state)
{
	/* Overlapping slots (a forged or unknown layout): taking wins, as it did. */
	struct pk_gil_info g = { .wait_lo = { 0x3000, 0 }, .wait_hi = { 0x3100, 0 },
				 .drop_lo = { 0x3080, 0 }, .drop_hi = { 0x3180, 0 } };
	(void)state;
	assert_int_equal(pk_gil_wait_on(&g, 0x3090), PK_GIL_WAIT_TAKE);
	assert_int_equal(pk_gil_wait_on(&g, 0x3100), PK_GIL_WAIT_HANDOVER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_kinds),
		cmocka_unit_test(test_empty_slots),
		cmocka_unit_test(test_take_before_handover),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
