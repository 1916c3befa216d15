/* SPDX-License-Identifier: MIT */
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

struct list {
	uint64_t next[N];
	uint64_t seen[4 * N]; /* the items handed out, in order */
	size_t n;
	struct pk_chain c;
};

/* Items from..to linked in order, to's link end. */
static void link_run(struct list *l, uint64_t from, uint64_t to, uint64_t end)
{
	for (uint64_t i = from; i < to; i++)
		l->next[i] = i + 1;
	l->next[to] = end;
}

/* Walk from first, following next[]; what pk_chain_next ended with. */
static int walk(struct list *l, uint64_t first, size_t max_steps, uint64_t budget_ns)
{
	uint64_t item = 0;
	int rc;

	l->n = 0;
	pk_chain_init(&l->c, first, max_steps, budget_ns);
	while ((rc = pk_chain_next(&l->c, &item)) > 0) {
		assert_true(item > 0 && item < N && l->n < 4 * N);
		l->seen[l->n++] = item;
		pk_chain_follow(&l->c, l->next[item]);
	}
	/* Ended is ended. */
	assert_int_equal(pk_chain_next(&l->c, &item), rc);
	return rc;
}

static void test_straight(void **state)
{
	static struct list l;

	(void)state;
	link_run(&l, 1, 100, 0);
	assert_int_equal(walk(&l, 1, 0, 0), 0);
	assert_int_equal(l.n, 100);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.seen[i], i + 1);
	/* Exactly as long as the bound: not over it. */
	assert_int_equal(walk(&l, 1, 100, 0), 0);
	assert_int_equal(l.n, 100);
	/* An empty list. */
	assert_int_equal(walk(&l, 0, 10, 0), 0);
	assert_int_equal(l.n, 0);
}

static void test_cycle_at_head(void **state)
{
	static struct list l;

	(void)state;
	l.next[5] = 5; /* an item that is its own link */
	assert_int_equal(walk(&l, 5, 1000, 0), -ELOOP);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.c.cur, 5);

	/* 1 -> ... -> 50 -> 1. Brent: the tortoise waits at item 2^k - 1 until
	 * 2^k >= the loop's length (here 63), then the loop is seen one round
	 * later; every item was handed out first. */
	link_run(&l, 1, 50, 1);
	assert_int_equal(walk(&l, 1, 1000, 0), -ELOOP);
	assert_int_equal(l.n, 63 + 50);
	for (size_t i = 0; i < 50; i++)
		assert_int_equal(l.seen[i], i + 1);
}

static void test_cycle_later(void **state)
{
	static struct list l;
	bool handed[N] = { false };

	(void)state;
	/* A rho: a tail 1..20, then a loop 21..57 -> 21. The tortoise waits
	 * at item 2^k - 1 until it is inside the loop and 2^k >= the loop's
	 * length: the 64th item (27), seen again one round (37) later. */
	link_run(&l, 1, 57, 21);
	assert_int_equal(walk(&l, 1, 1000, 0), -ELOOP);
	assert_int_equal(l.n, 63 + 37);
	assert_int_equal(l.c.cur, 27);
	for (size_t i = 0; i < l.n; i++)
		handed[l.seen[i]] = true;
	for (size_t i = 1; i <= 57; i++)
		assert_true(handed[i]);
	/* The same rho within a bound shorter than the time it takes to see the loop. */
	assert_int_equal(walk(&l, 1, 30, 0), -E2BIG);
	assert_int_equal(l.n, 30);
}

static void test_over_budget(void **state)
{
	static struct list l;
	uint64_t item;
	int rc;

	(void)state;
	link_run(&l, 1, N - 1, 0); /* no loop */
	assert_int_equal(walk(&l, 1, 100, 0), -E2BIG);
	assert_int_equal(l.n, 100);
	/* Time: looked at every 64 items, so a budget of 1 ns lets 64 through. */
	assert_int_equal(walk(&l, 1, 0, 1), -ETIME);
	assert_int_equal(l.n, 64);

	/* Two lists under one bound: 1..100, then 200.. has what is left. */
	l.next[100] = 0;
	pk_chain_init(&l.c, 1, 150, 0);
	for (l.n = 0; (rc = pk_chain_next(&l.c, &item)) > 0; l.n++)
		pk_chain_follow(&l.c, l.next[item]);
	assert_int_equal(rc, 0);
	assert_int_equal(l.n, 100);
	pk_chain_restart(&l.c, 200);
	for (l.n = 0; (rc = pk_chain_next(&l.c, &item)) > 0; l.n++)
		pk_chain_follow(&l.c, l.next[item]);
	assert_int_equal(rc, -E2BIG);
	assert_int_equal(l.n, 50);

	/* A link not handed back ends the walk. */
	pk_chain_init(&l.c, 1, 0, 0);
	assert_int_equal(pk_chain_next(&l.c, &item), 1);
	assert_int_equal(pk_chain_next(&l.c, &item), 0);
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
