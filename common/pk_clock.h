/* SPDX-License-Identifier: MIT */
/* The clock every room measures with: freeze budgets, verdict waits, the
 * times pykill reports. */
#ifndef PK_CLOCK_H
#define PK_CLOCK_H

#include <stdint.h>

uint64_t pk_now_ns(void); /* CLOCK_MONOTONIC */
void pk_sleep_ns(uint64_t ns);

#endif
