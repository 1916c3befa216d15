/* SPDX-License-Identifier: MIT */
/* The one walker of linked lists in target memory (see struct pk_chain in
 * py-priv.h). The target's memory is untrusted: a list may come back on
 * itself (corrupt, torn, forged) or merely go on, so every walk is bounded
 * in items and, where something is stopped, in time. */
#include "pk_clock.h"
#include "py-priv.h"

#include <errno.h>

void pk_chain_init(struct pk_chain *c, uint64_t first, size_t max_steps, uint64_t budget_ns)
{
	c->max_steps = max_steps;
	c->budget_ns = budget_ns;
	c->steps = 0;
	c->t0 = budget_ns != 0 ? pk_now_ns() : 0;
	pk_chain_restart(c, first);
}

void pk_chain_restart(struct pk_chain *c, uint64_t first)
{
	c->cur = first;
	c->link = 0;
	c->tortoise = first;
	c->power = 1;
	c->lam = 0;
	c->started = false;
	c->end = 1;
}

int pk_chain_next(struct pk_chain *c, uint64_t *item)
{
	/* A walk that ended stays ended: the caller may ask again safely. */
	if (c->end <= 0)
		return c->end;
	if (c->started) {
		c->cur = c->link;
		c->link = 0; /* an item whose link was not handed back ends the walk */
		/* Brent: the tortoise waits at a power-of-two step; the chain
		 * loops if it comes back to it. Every item of a loop (and of the
		 * tail before it) has been handed out by then. */
		if (c->cur != 0 && c->cur == c->tortoise)
			return c->end = -ELOOP;
		if (++c->lam == c->power) {
			c->tortoise = c->cur;
			c->power *= 2;
			c->lam = 0;
		}
	}
	c->started = true;
	if (c->cur == 0)
		return c->end = 0;
	if (c->max_steps != 0 && c->steps >= c->max_steps)
		return c->end = -E2BIG;
	/* The clock every 64 items: a read costs more than the check, but not
	 * by so much that every item should pay for it. */
	if (c->budget_ns != 0 && c->steps != 0 && (c->steps & 63) == 0 && pk_now_ns() - c->t0 > c->budget_ns)
		return c->end = -ETIME;
	c->steps++;
	*item = c->cur;
	return 1;
}
