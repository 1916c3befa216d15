/* SPDX-License-Identifier: MIT */
/* pk_clock.h: CLOCK_MONOTONIC in nanoseconds. */
#include "pk_clock.h"

#include <time.h>

uint64_t pk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void pk_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}
