/* SPDX-License-Identifier: MIT */
/* Cost of process_vm_readv on this machine, the way pykill's page cache
 * uses it (one 4 KiB page per call) and batched (64 pages per call).
 *
 *   cc -O2 -o /tmp/readv-cost bench/readv-cost.c
 *   /tmp/readv-cost PID HEXADDR [PAGES]
 *
 * HEXADDR: start of 4 readable pages of PID (e.g. the first line of a
 * library in /proc/PID/maps). Reads PAGES pages (default 2048) three ways:
 * into fresh (never touched) memory, into touched memory, and 64 per call. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>

#define PAGE 4096
#define BATCH 64

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	pid_t pid;
	unsigned long addr;
	long n;
	char *fresh, *touched;
	double t;

	if (argc < 3) {
		fprintf(stderr, "usage: %s PID HEXADDR [PAGES]\n", argv[0]);
		return 2;
	}
	pid = (pid_t)atoi(argv[1]);
	addr = strtoul(argv[2], NULL, 16);
	n = argc > 3 ? atol(argv[3]) : 2048;
	if (n < BATCH || n > 1 << 20) {
		fprintf(stderr, "PAGES must be in [%d, %d]\n", BATCH, 1 << 20);
		return 2;
	}
	n -= n % BATCH;
	fresh = malloc((size_t)n * PAGE);
	touched = malloc((size_t)n * PAGE);
	if (fresh == NULL || touched == NULL) {
		perror("malloc");
		return 1;
	}
	for (long i = 0; i < n; i++)
		touched[i * PAGE] = 1;

	for (int pass = 0; pass < 2; pass++) {
		char *dst = pass == 0 ? fresh : touched;

		t = now_us();
		for (long i = 0; i < n; i++) {
			struct iovec l = { dst + i * PAGE, PAGE };
			struct iovec r = { (void *)(addr + (unsigned long)(i % 4) * PAGE), PAGE };

			if (process_vm_readv(pid, &l, 1, &r, 1, 0) != PAGE) {
				perror("process_vm_readv");
				return 1;
			}
		}
		printf("1 page per call, %s destination: %.2f us per page\n",
		       pass == 0 ? "fresh" : "touched", (now_us() - t) / n);
	}
	t = now_us();
	for (long k = 0; k < n / BATCH; k++) {
		struct iovec l[BATCH], r[BATCH];

		for (int i = 0; i < BATCH; i++) {
			l[i].iov_base = touched + (long)i * PAGE;
			l[i].iov_len = PAGE;
			r[i].iov_base = (void *)(addr + (unsigned long)(i % 4) * PAGE);
			r[i].iov_len = PAGE;
		}
		if (process_vm_readv(pid, l, BATCH, r, BATCH, 0) != BATCH * PAGE) {
			perror("process_vm_readv");
			return 1;
		}
	}
	printf("%d pages per call, touched destination: %.2f us per page\n", BATCH, (now_us() - t) / n);
	free(fresh);
	free(touched);
	return 0;
}
