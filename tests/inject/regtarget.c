/* SPDX-License-Identifier: MIT */
/* regtarget: a target for the remote-call engine that checks, after every
 * blocking system call, that nothing of its state changed.
 *
 *   regtarget FD [--loops N] [--sleep-ms MS] [--slack-ms MS]
 *
 * Threads (each loops N times, 0 = forever):
 *   rel    clock_nanosleep(CLOCK_MONOTONIC, 0, MS)      (-ERESTART_RESTARTBLOCK)
 *   abs    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, now + MS)  (-ERESTARTNOHAND)
 *   read   read() on a pipe the main thread feeds every MS   (-ERESTARTSYS)
 *   epoll  epoll_wait(empty set, MS), retried on EINTR        (-EINTR)
 *   main   nanosleep(MS) then feeds the pipe
 * Each blocking call goes through rt_probe (regtarget_x86_64.S) with
 * patterns in rbx rbp r8 r9 r12-r15, the syscall arguments, ymm0-15 (or
 * zmm0-31 and k0-7 with AVX-512), MXCSR
 * 0x7f80, x87 CW 0x27f, CF and DF set, 15 red-zone qwords, errno = 12345;
 * afterwards every one is compared, and the sleeps must last their full
 * length and no more than the slack (50 ms) longer: FAIL when cut short or
 * late by half a sleep more than the time the thread waited for a CPU
 * (/proc/thread-self/schedstat; i.e. restarted from scratch), LATE when
 * only later than the slack (a loaded machine does that to any sleeper).
 *
 * rt_ensure / rt_call / rt_release have the signatures of
 * PyGILState_Ensure / PyThreadState_SetAsyncExc / PyGILState_Release: they
 * count their calls, check the environment the trampoline gives them
 * (aligned stack, DF clear, MXCSR 0x1f80, x87 CW 0x37f) and clobber ymm,
 * errno, flags (and MXCSR/x87 CW in rt_release) on purpose. SIGUSR1 is
 * counted by a handler (signals during an injected call).
 *
 * Output on FD, one line per write():
 *   READY pid=.. rel=TID abs=TID read=TID epoll=TID main=TID ensure=0x.. call=0x.. release=0x.. errno=0x..
 *   RESULT thread=NAME iter=I status=PASS|LATE|FAIL elapsed_ms=.. calls=C bad=B why=...
 *   DONE status=PASS|FAIL
 */
#include "regtarget.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct rt_probe {
	uint64_t nr;
	uint64_t a[4];
	uint64_t pat;
	uint64_t use_avx;
	uint32_t mxcsr_in;
	uint16_t fcw_in;
	uint16_t pad0;
	uint64_t ret;
	uint64_t gpr_out[16];
	uint32_t mxcsr_out;
	uint16_t fcw_out;
	uint8_t pad1[256 - 206];
	uint8_t ymm_in[16 * 32];
	uint8_t ymm_out[16 * 32];
	uint8_t zmm_in[32 * 64];
	uint8_t zmm_out[32 * 64];
	uint64_t k_in[8];
	uint64_t k_out[8];
	uint64_t use_avx512;
	uint8_t pad2[56];
};

_Static_assert(offsetof(struct rt_probe, nr) == RT_NR, "layout");
_Static_assert(offsetof(struct rt_probe, a) == RT_A0, "layout");
_Static_assert(offsetof(struct rt_probe, pat) == RT_PAT, "layout");
_Static_assert(offsetof(struct rt_probe, use_avx) == RT_USE_AVX, "layout");
_Static_assert(offsetof(struct rt_probe, mxcsr_in) == RT_MXCSR_IN, "layout");
_Static_assert(offsetof(struct rt_probe, fcw_in) == RT_FCW_IN, "layout");
_Static_assert(offsetof(struct rt_probe, ret) == RT_RET, "layout");
_Static_assert(offsetof(struct rt_probe, gpr_out) == RT_GPR_OUT, "layout");
_Static_assert(offsetof(struct rt_probe, mxcsr_out) == RT_MXCSR_OUT, "layout");
_Static_assert(offsetof(struct rt_probe, fcw_out) == RT_FCW_OUT, "layout");
_Static_assert(offsetof(struct rt_probe, ymm_in) == RT_YMM_IN, "layout");
_Static_assert(offsetof(struct rt_probe, ymm_out) == RT_YMM_OUT, "layout");
_Static_assert(offsetof(struct rt_probe, zmm_in) == RT_ZMM_IN, "layout");
_Static_assert(offsetof(struct rt_probe, zmm_out) == RT_ZMM_OUT, "layout");
_Static_assert(offsetof(struct rt_probe, k_in) == RT_K_IN, "layout");
_Static_assert(offsetof(struct rt_probe, k_out) == RT_K_OUT, "layout");
_Static_assert(offsetof(struct rt_probe, use_avx512) == RT_USE_AVX512, "layout");
_Static_assert(sizeof(struct rt_probe) == RT_SIZE, "layout");

long rt_probe(struct rt_probe *p);
void rt_clobber_avx512(void);
long rt_ensure(void);
long rt_call(unsigned long a0, unsigned long a1);
void rt_release(int g);
long rt_ensure_c(void);
long rt_call_c(unsigned long a0, unsigned long a1);
void rt_release_c(int g);

/* Written by the assembly entry stubs. */
_Atomic unsigned long rt_bad_align, rt_bad_df;

static _Atomic unsigned long n_ensure, n_call, n_release, n_bad_env;
static _Atomic int any_fail;
static int out_fd = -1;
static unsigned loops = 3;
static unsigned sleep_ms = 1000;
static int use_avx, use_avx512;
static int feed_pipe[2];

#define RT_ENSURE_RET 7
#define RT_ERRNO_MARK 12345
static uint64_t slack_ns = 50ull * 1000000;
#define RT_CALL_SYSCALLS 0x10000ul

static _Atomic unsigned long n_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&n_usr1, 1);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines of several threads never interleave. */
	(void)!write(out_fd, line, (size_t)n);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned get_mxcsr(void)
{
	unsigned v;

	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static unsigned get_fcw(void)
{
	unsigned short v;

	__asm__ volatile("fnstcw %0" : "=m"(v));
	return v;
}

static void check_env(void)
{
	if (get_mxcsr() != 0x1f80 || get_fcw() != 0x37f)
		atomic_fetch_add(&n_bad_env, 1);
}

static void clobber(void)
{
	errno = 999;
	if (use_avx512)
		rt_clobber_avx512();
	if (use_avx)
		__asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n\t"
				 "vpcmpeqd %%ymm1, %%ymm1, %%ymm1\n\t"
				 "vpcmpeqd %%ymm7, %%ymm7, %%ymm7\n\t"
				 "vpcmpeqd %%ymm8, %%ymm8, %%ymm8\n\t"
				 "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\t"
				 "vpxor %%xmm3, %%xmm3, %%xmm3\n\t"
				 "cmp %%eax, %%eax"
				 :
				 :
				 : "xmm0", "xmm1", "xmm3", "xmm7", "xmm8", "xmm15", "cc");
	else
		__asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n\tpcmpeqd %%xmm15, %%xmm15" ::: "xmm0", "xmm15");
}

long rt_ensure_c(void)
{
	check_env();
	atomic_fetch_add(&n_ensure, 1);
	clobber();
	return RT_ENSURE_RET;
}

static _Atomic unsigned long last_a0, last_a1;

long rt_call_c(unsigned long a0, unsigned long a1)
{
	check_env();
	atomic_store(&last_a0, a0);
	atomic_store(&last_a1, a1);
	/* Low 16 bits of a1: spin that many ms (vDSO clock, no system call),
	 * to give the tests a long call to kill pykill in or signal the thread
	 * during. RT_CALL_SYSCALLS: make a getppid() every ms meanwhile (ptrace
	 * stops for the tracer; no effect on the thread's restart_block). */
	if ((a1 & 0xffff) != 0) {
		uint64_t end = now_ns() + (a1 & 0xffff) * 1000000ull, next = 0;

		for (;;) {
			uint64_t t = now_ns();

			if (t >= end)
				break;
			if ((a1 & RT_CALL_SYSCALLS) && t >= next) {
				syscall(SYS_getppid);
				next = t + 1000000;
			}
		}
	}
	atomic_fetch_add(&n_call, 1);
	clobber();
	return (long)(a0 + 1);
}

void rt_release_c(int g)
{
	check_env();
	if (g != RT_ENSURE_RET)
		atomic_fetch_add(&n_bad_env, 1);
	atomic_fetch_add(&n_release, 1);
	clobber();
	/* A callee breaking the FP control words: the trampoline's XRSTOR must
	 * still give the thread its own back. */
	{
		unsigned m = 0x3f80;
		unsigned short cw = 0x7f;

		__asm__ volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(m), "m"(cw));
	}
}

/* ---------------------------------------------------------------- probe */

struct check {
	char why[512];
	size_t n;
	bool late; /* woke more than the slack late, but not by half a sleep */
	char late_why[96];
};

/* Sleep length verdict: early is a failure (the call was cut short or
 * EINTR'd); late by half a sleep or more is a failure (restarted from
 * scratch: "doubled"); late by more than the slack only is LATE, which is
 * what a loaded machine does to any sleeper, injected or not. */
static void check_wake(struct check *c, uint64_t woke, uint64_t deadline, uint64_t rq_delay);

static void fail(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct check *c, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (c->n >= sizeof(c->why) - 2)
		return;
	if (c->n > 0)
		c->why[c->n++] = ',';
	va_start(ap, fmt);
	w = vsnprintf(c->why + c->n, sizeof(c->why) - c->n, fmt, ap);
	va_end(ap);
	if (w > 0)
		c->n += (size_t)w < sizeof(c->why) - c->n ? (size_t)w : sizeof(c->why) - c->n - 1;
}

static void probe_setup(struct rt_probe *p, unsigned tag, unsigned iter)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	p->pat = 0x5a00000000000000ull | ((uint64_t)tag << 40) | ((uint64_t)iter << 16);
	p->use_avx = (uint64_t)use_avx;
	p->use_avx512 = (uint64_t)use_avx512;
	p->mxcsr_in = 0x7f80; /* round toward zero, all exceptions masked */
	p->fcw_in = 0x27f;    /* double precision */
	for (i = 0; i < sizeof(p->ymm_in); i++)
		p->ymm_in[i] = (uint8_t)(0x11 * tag + 7 * i + iter);
	for (i = 0; i < sizeof(p->zmm_in); i++)
		p->zmm_in[i] = (uint8_t)(0x13 * tag + 5 * i + iter);
	for (i = 0; i < 8; i++)
		p->k_in[i] = 0x0101010101010101ull * (i + 1) ^ ((uint64_t)tag << 40) ^ iter;
}

/* Run the syscall through the probe and check everything it preserved. */
static long probe_run(struct rt_probe *p, struct check *c, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		      uint64_t a3)
{
	static const unsigned slot_xor[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const int slot_idx[8] = { RT_G_RBX, RT_G_RBP, RT_G_R8, RT_G_R9, RT_G_R12, RT_G_R13, RT_G_R14, RT_G_R15 };
	static const char *const slot_name[8] = { "rbx", "rbp", "r8", "r9", "r12", "r13", "r14", "r15" };
	long ret;
	int i, e;

	p->nr = (uint64_t)nr;
	p->a[0] = a0;
	p->a[1] = a1;
	p->a[2] = a2;
	p->a[3] = a3;
	errno = RT_ERRNO_MARK;
	ret = rt_probe(p);
	e = errno;
	if (e != RT_ERRNO_MARK)
		fail(c, "errno=%d", e);
	for (i = 0; i < 8; i++)
		if (p->gpr_out[slot_idx[i]] != (p->pat ^ slot_xor[i]))
			fail(c, "%s=%#" PRIx64, slot_name[i], p->gpr_out[slot_idx[i]]);
	if (p->gpr_out[RT_G_RDI] != a0 || p->gpr_out[RT_G_RSI] != a1 || p->gpr_out[RT_G_RDX] != a2 ||
	    p->gpr_out[RT_G_R10] != a3)
		fail(c, "syscall args changed");
	if (p->gpr_out[RT_G_RSP_AFTER] != p->gpr_out[RT_G_RSP_BEFORE])
		fail(c, "rsp moved by %" PRId64,
		     (int64_t)(p->gpr_out[RT_G_RSP_AFTER] - p->gpr_out[RT_G_RSP_BEFORE]));
	if ((p->gpr_out[RT_G_FLAGS] & 0x401) != 0x401)
		fail(c, "flags=%#" PRIx64, p->gpr_out[RT_G_FLAGS]);
	if (p->gpr_out[RT_G_REDZONE_BAD] != 0)
		fail(c, "redzone %" PRIu64 " qwords changed", p->gpr_out[RT_G_REDZONE_BAD]);
	if (p->mxcsr_out != p->mxcsr_in)
		fail(c, "mxcsr=%#x", p->mxcsr_out);
	if (p->fcw_out != p->fcw_in)
		fail(c, "fcw=%#x", p->fcw_out);
	if (use_avx512) {
		for (i = 0; i < 32; i++)
			if (memcmp(p->zmm_in + 64 * i, p->zmm_out + 64 * i, 64) != 0) {
				fail(c, "zmm%d", i);
				break;
			}
		for (i = 0; i < 8; i++)
			if (p->k_in[i] != p->k_out[i]) {
				fail(c, "k%d=%#" PRIx64, i, p->k_out[i]);
				break;
			}
	} else if (use_avx && memcmp(p->ymm_in, p->ymm_out, sizeof(p->ymm_in)) != 0) {
		for (i = 0; i < 16; i++)
			if (memcmp(p->ymm_in + 32 * i, p->ymm_out + 32 * i, 32) != 0) {
				fail(c, "ymm%d", i);
				break;
			}
	}
	return ret;
}

/* Time this thread spent runnable but waiting for a CPU (schedstat). */
static uint64_t run_delay_ns(void)
{
	char buf[128];
	unsigned long long run = 0, delay = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");

	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL || sscanf(buf, "%llu %llu", &run, &delay) != 2)
		delay = 0;
	fclose(f);
	return delay;
}

static void check_wake(struct check *c, uint64_t woke, uint64_t deadline, uint64_t rq_delay)
{
	uint64_t half = (uint64_t)sleep_ms * 1000000ull / 2, late = woke > deadline ? woke - deadline : 0;

	/* Lateness the thread spent waiting for a CPU is the machine's; what
	 * is left is sleep the kernel added (a restart from scratch). */
	if (woke < deadline)
		fail(c, "woke %.3f ms early", ((double)deadline - (double)woke) / 1e6);
	else if (late >= half + rq_delay)
		fail(c, "woke %.3f ms late, %.3f ms of it waiting for a CPU", (double)late / 1e6,
		     (double)rq_delay / 1e6);
	else if (late > slack_ns) {
		c->late = true;
		snprintf(c->late_why, sizeof(c->late_why), "woke_%.3f_ms_late_%.3f_ms_runqueue", (double)late / 1e6,
			 (double)rq_delay / 1e6);
	}
}

static void report(const char *name, unsigned iter, struct check *c, uint64_t elapsed)
{
	const char *status = c->n > 0 ? "FAIL" : c->late ? "LATE" : "PASS";

	if (c->n > 0)
		atomic_store(&any_fail, 1);
	say("RESULT thread=%s iter=%u status=%s elapsed_ms=%.3f calls=%lu bad=%lu why=%s", name, iter, status,
	    (double)elapsed / 1e6, (unsigned long)atomic_load(&n_call),
	    (unsigned long)(atomic_load(&n_bad_env) + atomic_load(&rt_bad_align) + atomic_load(&rt_bad_df)),
	    c->n > 0 ? c->why : c->late ? c->late_why : "-");
}

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static pid_t tids[5];

static void *thread_rel(void *arg)
{
	struct rt_probe p __attribute__((aligned(64)));
	unsigned it;

	(void)arg;
	tids[0] = gettid_();
	for (it = 1; loops == 0 || it <= loops; it++) {
		struct timespec req = { .tv_sec = sleep_ms / 1000, .tv_nsec = (long)(sleep_ms % 1000) * 1000000 };
		struct check c = { .n = 0 };
		uint64_t t0, el;
		long r;

		uint64_t rq;

		probe_setup(&p, 1, it);
		rq = run_delay_ns();
		t0 = now_ns();
		r = probe_run(&p, &c, SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, (uint64_t)(uintptr_t)&req, 0);
		el = now_ns() - t0;
		rq = run_delay_ns() - rq;
		if (r != 0)
			fail(&c, "ret=%ld", r);
		check_wake(&c, t0 + el, t0 + (uint64_t)sleep_ms * 1000000ull, rq);
		report("rel", it, &c, el);
	}
	return NULL;
}

static void *thread_abs(void *arg)
{
	struct rt_probe p __attribute__((aligned(64)));
	unsigned it;

	(void)arg;
	tids[1] = gettid_();
	for (it = 1; loops == 0 || it <= loops; it++) {
		struct check c = { .n = 0 };
		uint64_t rq = run_delay_ns(), t0 = now_ns(), dl = t0 + (uint64_t)sleep_ms * 1000000ull, t1;
		struct timespec req = { .tv_sec = (time_t)(dl / 1000000000ull), .tv_nsec = (long)(dl % 1000000000ull) };
		long r;

		probe_setup(&p, 2, it);
		r = probe_run(&p, &c, SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, (uint64_t)(uintptr_t)&req,
			      0);
		t1 = now_ns();
		rq = run_delay_ns() - rq;
		if (r != 0)
			fail(&c, "ret=%ld", r);
		check_wake(&c, t1, dl, rq);
		report("abs", it, &c, t1 - t0);
	}
	return NULL;
}

static void *thread_read(void *arg)
{
	struct rt_probe p __attribute__((aligned(64)));
	unsigned it;

	(void)arg;
	tids[2] = gettid_();
	for (it = 1; loops == 0 || it <= loops; it++) {
		struct check c = { .n = 0 };
		unsigned char b = 0;
		uint64_t t0 = now_ns();
		long r;

		probe_setup(&p, 3, it);
		r = probe_run(&p, &c, SYS_read, (uint64_t)feed_pipe[0], (uint64_t)(uintptr_t)&b, 1, 0);
		if (r != 1)
			fail(&c, "ret=%ld", r);
		else if (b != (unsigned char)it)
			fail(&c, "read byte %u, want %u", b, it & 0xffu);
		report("read", it, &c, now_ns() - t0);
	}
	return NULL;
}

static void *thread_epoll(void *arg)
{
	struct rt_probe p __attribute__((aligned(64)));
	struct epoll_event ev;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	unsigned it;

	(void)arg;
	tids[3] = gettid_();
	for (it = 1; loops == 0 || it <= loops; it++) {
		struct check c = { .n = 0 };
		uint64_t rq = run_delay_ns(), t0 = now_ns(), dl = t0 + (uint64_t)sleep_ms * 1000000ull, t1;
		unsigned eintr = 0;
		long r;

		/* epoll_wait returns -EINTR to a stop or ptrace interrupt
		 * (signal(7)); retried with the remaining time, like Python. */
		for (;;) {
			uint64_t now = now_ns();
			long ms = now >= dl ? 0 : (long)((dl - now + 999999) / 1000000);

			probe_setup(&p, 4, it);
			r = probe_run(&p, &c, SYS_epoll_wait, (uint64_t)ep, (uint64_t)(uintptr_t)&ev, 1, (uint64_t)ms);
			if (r != -EINTR)
				break;
			if (++eintr > 1000)
				break;
		}
		t1 = now_ns();
		rq = run_delay_ns() - rq;
		if (r != 0)
			fail(&c, "ret=%ld", r);
		check_wake(&c, t1, dl, rq);
		report("epoll", it, &c, t1 - t0);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[4];
	void *(*fn[4])(void *) = { thread_rel, thread_abs, thread_read, thread_epoll };
	struct rt_probe p __attribute__((aligned(64)));
	unsigned it;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: regtarget FD [--loops N] [--sleep-ms MS] [--slack-ms MS]\n");
		return 2;
	}
	out_fd = atoi(argv[1]);
	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--loops") == 0)
			loops = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--sleep-ms") == 0)
			sleep_ms = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--slack-ms") == 0)
			slack_ns = strtoull(argv[i + 1], NULL, 0) * 1000000ull;
	}
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);
	}
	__builtin_cpu_init();
	use_avx = __builtin_cpu_supports("avx") != 0;
	use_avx512 = __builtin_cpu_supports("avx512bw") != 0; /* kmovq needs BW */
	if (pipe(feed_pipe) != 0)
		return 1;
	tids[4] = gettid_();
	for (i = 0; i < 4; i++)
		if (pthread_create(&th[i], NULL, fn[i], NULL) != 0)
			return 1;
	while (tids[0] == 0 || tids[1] == 0 || tids[2] == 0 || tids[3] == 0)
		usleep(1000);
	say("READY pid=%d rel=%d abs=%d read=%d epoll=%d main=%d ensure=%p call=%p release=%p errno=%p avx=%d avx512=%d",
	    (int)getpid(), (int)tids[0], (int)tids[1], (int)tids[2], (int)tids[3], (int)tids[4], (void *)rt_ensure,
	    (void *)rt_call, (void *)rt_release, (void *)__errno_location, use_avx, use_avx512);

	/* main: relative nanosleep, then one byte for the read thread. */
	for (it = 1; loops == 0 || it <= loops; it++) {
		struct timespec req = { .tv_sec = sleep_ms / 1000, .tv_nsec = (long)(sleep_ms % 1000) * 1000000 };
		struct check c = { .n = 0 };
		unsigned char b = (unsigned char)it;
		uint64_t t0, el;
		long r;

		uint64_t rq;

		probe_setup(&p, 5, it);
		rq = run_delay_ns();
		t0 = now_ns();
		r = probe_run(&p, &c, SYS_nanosleep, (uint64_t)(uintptr_t)&req, 0, 0, 0);
		el = now_ns() - t0;
		rq = run_delay_ns() - rq;
		if (r != 0)
			fail(&c, "ret=%ld", r);
		check_wake(&c, t0 + el, t0 + (uint64_t)sleep_ms * 1000000ull, rq);
		report("main", it, &c, el);
		if (write(feed_pipe[1], &b, 1) != 1)
			return 1;
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	say("DONE status=%s calls=%lu ensure=%lu release=%lu bad=%lu usr1=%lu", atomic_load(&any_fail) ? "FAIL" : "PASS",
	    (unsigned long)atomic_load(&n_call), (unsigned long)atomic_load(&n_ensure),
	    (unsigned long)atomic_load(&n_release),
	    (unsigned long)(atomic_load(&n_bad_env) + atomic_load(&rt_bad_align) + atomic_load(&rt_bad_df)),
	    (unsigned long)atomic_load(&n_usr1));
	return atomic_load(&any_fail) ? 1 : 0;
}
