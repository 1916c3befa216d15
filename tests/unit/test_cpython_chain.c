/* The chain walker (cpython/chain.c) on lists made of array indices: item
 * i's link is next[i], 0 ends the list. What it must hand out, and where it
 * must stop, whatever shape the list has. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "py-priv.h"

#include <errno.h>

#define N 300

/* Walk from first, following next[]; the items handed out go to seen[]. */
static int walk(const uint64_t *next, uint64_t first, size_t max_steps, uint64_t budget_ns, uint64_t *seen,
		size_t *nseen, struct pk_chain *c)
{
	uint64_t item = 0;
	int rc;

	*nseen = 0;
	pk_chain_init(c, first, max_steps, budget_ns);
	while ((rc = pk_chain_next(c, &item)) > 0) {
		assert_true(item > 0 && item < N);
		assert_true(*nseen < 4 * N);
		seen[(*nseen)++] = item;
		pk_chain_follow(c, next[item]);
	}
	/* Ended is ended. */
	assert_int_equal(pk_chain_next(c, &item), rc);
	return rc;
}

static void test_straight(void **state)
{
	uint64_t next[N] = { 0 }, seen[4 * N];
	struct pk_chain c;
	size_t n;

	(void)state;
	for (uint64_t i = 1; i < 100; i++)
		next[i] = i + 1; /* 1 -> 2 -> ... -> 100 -> 0 */
	assert_int_equal(walk(next, 1, 0, 0, seen, &n, &c), 0);
	assert_int_equal(n, 100);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(seen[i], i + 1);
	/* Exactly as long as the bound: not over it. */
	assert_int_equal(walk(next, 1, 100, 0, seen, &n, &c), 0);
	assert_int_equal(n, 100);
	/* An empty list. */
	assert_int_equal(walk(next, 0, 10, 0, seen, &n, &c), 0);
	assert_int_equal(n, 0);
}

static void test_cycle_at_head(void **state)
{
	uint64_t next[N] = { 0 }, seen[4 * N];
	struct pk_chain c;
	size_t n;

	(void)state;
	next[5] = 5; /* an item that is its own link */
	assert_int_equal(walk(next, 5, 1000, 0, seen, &n, &c), -ELOOP);
	assert_int_equal(n, 1);
	assert_int_equal(c.cur, 5);

	/* 1 -> 2 -> ... -> 50 -> 1: every item is handed out before the loop is seen. */
	for (uint64_t i = 1; i < 50; i++)
		next[i] = i + 1;
	next[50] = 1;
	assert_int_equal(walk(next, 1, 1000, 0, seen, &n, &c), -ELOOP);
	/* Brent: the tortoise waits at item 2^k - 1 until 2^k >= the loop's
	 * length (here 63), then the loop is seen one round later. */
	assert_int_equal(n, 63 + 50);
	for (size_t i = 0; i < 50; i++)
		assert_int_equal(seen[i], i + 1);
}

static void test_cycle_later(void **state)
{
	uint64_t next[N] = { 0 }, seen[4 * N];
	struct pk_chain c;
	bool handed[N] = { false };
	size_t n;

	(void)state;
	/* A rho: a tail 1..20, then a loop 21..57 -> 21. */
	for (uint64_t i = 1; i < 57; i++)
		next[i] = i + 1;
	next[57] = 21;
	assert_int_equal(walk(next, 1, 1000, 0, seen, &n, &c), -ELOOP);
	for (size_t i = 0; i < n; i++)
		handed[seen[i]] = true;
	for (size_t i = 1; i <= 57; i++)
		assert_true(handed[i]);
	/* Brent: the tortoise waits at item 2^k - 1 until it is inside the loop
	 * (item 21 on) and 2^k >= the loop's length: item 63 (the 23rd of the
	 * loop), seen again one round (37) later. */
	assert_int_equal(n, 63 + 37);
	assert_true(c.cur >= 21 && c.cur <= 57);
	/* The same rho within a bound shorter than the time it takes to see the loop. */
	assert_int_equal(walk(next, 1, 30, 0, seen, &n, &c), -E2BIG);
	assert_int_equal(n, 30);
}

static void test_over_budget(void **state)
{
	uint64_t next[N] = { 0 }, seen[4 * N];
	struct pk_chain c;
	size_t n;

	(void)state;
	for (uint64_t i = 1; i < N - 1; i++)
		next[i] = i + 1; /* 1 .. 299, no loop */
	assert_int_equal(walk(next, 1, 100, 0, seen, &n, &c), -E2BIG);
	assert_int_equal(n, 100);
	/* A walk over two lists under one bound: the second one has what is left. */
	pk_chain_init(&c, 1, 150, 0);
	for (int k = 0; k < 2; k++) {
		uint64_t item;
		int rc;
		n = 0;
		if (k == 1)
			pk_chain_restart(&c, 200);
		while ((rc = pk_chain_next(&c, &item)) > 0) {
			n++;
			pk_chain_follow(&c, next[item]);
			if (k == 0 && item == 100)
				pk_chain_follow(&c, 0); /* the first list ends at 100 */
		}
		assert_int_equal(rc, k == 0 ? 0 : -E2BIG);
		assert_int_equal(n, k == 0 ? 100 : 50);
	}
	/* Time: looked at every 64 items, so a budget of 1 ns lets 64 through. */
	assert_int_equal(walk(next, 1, 0, 1, seen, &n, &c), -ETIME);
	assert_int_equal(n, 64);
	/* A link not handed back ends the walk. */
	pk_chain_init(&c, 1, 0, 0);
	{
		uint64_t item;
		assert_int_equal(pk_chain_next(&c, &item), 1);
		assert_int_equal(pk_chain_next(&c, &item), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_straight),
		cmocka_unit_test(test_cycle_at_head),
		cmocka_unit_test(test_cycle_later),
		cmocka_unit_test(test_over_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
