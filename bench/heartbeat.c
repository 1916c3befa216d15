/* SPDX-License-Identifier: MIT */
/* Native heartbeat for bench/target.py, loaded with ctypes.
 *
 * A plain pthread (not a Python thread: it never takes the GIL) loops on a
 * relative 1 ms clock_nanosleep and records the largest gap between two
 * wakeups minus the 1 ms asked for. While pykill keeps this thread stopped,
 * or keeps the CPU from it, the gap grows by that much: it is the latency the
 * target itself sees, measured inside the target rather than reported by
 * pykill.
 *
 * Window protocol (driven by the target's main thread):
 *   hb_begin()  forget the largest gap so far;
 *   hb_end()    wait until the heartbeat has woken twice after the call, so
 *               that a gap still in progress when the window closes (the
 *               thread is stopped, or has not been scheduled yet) is counted,
 *               then return the largest gap in ns, or -1 if the heartbeat
 *               did not tick within a second.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define HB_PERIOD_NS 1000000LL

static atomic_llong hb_max_gap_ns;
static atomic_ullong hb_ticks;
static atomic_int hb_started;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *hb_loop(void *arg)
{
	const struct timespec period = { 0, HB_PERIOD_NS };
	int64_t prev, now, gap;
	long long old;

	(void)arg;
	prev = now_ns();
	for (;;) {
		/* EINTR only shortens one sleep; the gap is measured on the clock. */
		clock_nanosleep(CLOCK_MONOTONIC, 0, &period, NULL);
		now = now_ns();
		gap = now - prev - HB_PERIOD_NS;
		prev = now;
		old = atomic_load(&hb_max_gap_ns);
		while (gap > old && !atomic_compare_exchange_weak(&hb_max_gap_ns, &old, gap))
			;
		atomic_fetch_add(&hb_ticks, 1);
	}
	return NULL;
}

/* Returns 0, or an errno value. Starting twice is a no-op. */
int hb_start(void)
{
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	if (atomic_exchange(&hb_started, 1))
		return 0;
	rc = pthread_attr_init(&attr);
	if (rc)
		return rc;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	rc = pthread_create(&th, &attr, hb_loop, NULL);
	pthread_attr_destroy(&attr);
	if (rc)
		return rc;
	pthread_setname_np(th, "heartbeat");
	return 0;
}

void hb_begin(void)
{
	atomic_store(&hb_max_gap_ns, 0);
}

long long hb_end(void)
{
	const struct timespec poll = { 0, 100000 };
	unsigned long long t0 = atomic_load(&hb_ticks);
	int64_t deadline = now_ns() + 1000000000LL;

	while (atomic_load(&hb_ticks) < t0 + 2) {
		if (now_ns() > deadline)
			return -1;
		nanosleep(&poll, NULL);
	}
	return atomic_load(&hb_max_gap_ns);
}

unsigned long long hb_tick_count(void)
{
	return atomic_load(&hb_ticks);
}
