/* SPDX-License-Identifier: MIT */
/* SIGKILL of the injector at every phase and at random instants: the
 * target must stay healthy (not stopped, not traced, alive, every check of
 * regtarget PASS, sleeps exact) and no call may run twice.
 *
 *   test_inject_kill [--runs N] [--seed S] [--target REGTARGET]
 *
 * Each run forks an injector (a copy of this process) that calls
 * pk_rcall_run() on one of regtarget's blocked threads with a 20 ms call
 * making a system call every ms; five at once, one per thread, sharing the
 * cave. One run in three the injector kills itself from the engine's hook
 * at a fixed phase (cycling through all of them); the others are killed by
 * this process after a seeded random delay. After each kill: TracerPid 0
 * and not in a stop, then the thread's next RESULT must be PASS (or LATE:
 * woke more than 50 ms after its deadline without being cut short, which
 * machine load alone causes), and in the end every call whose registers
 * were written ran exactly once. */
#include "harness.h"

#include "pk_attach.h"
#include "pk_log.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef REGTARGET_PATH
#define REGTARGET_PATH "regtarget"
#endif

#define NTHREADS 5
static const char *const names[NTHREADS] = { "rel", "abs", "read", "epoll", "main" };
/* Only threads in a pure sleep are ever borrowed (issue #10): read and
 * epoll are refused by the engine, so only these are killed around. */
static const char *const used[] = { "rel", "abs", "main" };
#define NUSED 3
static const char *const phase_names[] = { "seized", "stopped", "frame", "entered", "running", "stop", "marker" };
#define NPHASES ((int)(sizeof(phase_names) / sizeof(phase_names[0])))

static int failures;

static int kill_phase = -1;

static void suicide_hook(enum pk_rcall_phase ph, void *ctx)
{
	(void)ctx;
	if ((int)ph == kill_phase)
		kill(getpid(), SIGKILL);
}

struct tally {
	unsigned results, pass, late;
	uint64_t last_calls;
	bool bad_calls;
};

/* Read lines until a RESULT for thread `name`; every RESULT must PASS and
 * the call counter may only grow. */
static bool next_result(struct child *t, struct tally *ty, const char *name, unsigned timeout_ms, char *out,
			size_t cap)
{
	char line[2048];

	while (child_line(t, line, sizeof(line), timeout_ms) == 0) {
		char s[16], th[16];
		uint64_t calls;

		if (strncmp(line, "RESULT ", 7) != 0)
			continue;
		ty->results++;
		if (kv(line, "status", s, sizeof(s)) && strcmp(s, "PASS") == 0) {
			ty->pass++;
		} else {
			if (strcmp(s, "LATE") == 0)
				ty->late++;
			printf("%s\n", line);
		}
		calls = kv_u64(line, "calls");
		if (calls < ty->last_calls)
			ty->bad_calls = true;
		ty->last_calls = calls;
		if (kv_u64(line, "bad") != 0)
			ty->bad_calls = true;
		if (kv(line, "thread", th, sizeof(th)) && strcmp(th, name) == 0) {
			snprintf(out, cap, "%s", line);
			return true;
		}
	}
	return false;
}

struct injector {
	pid_t pid;
	int phase;         /* deterministic kill phase, -1: killed at delay_us */
	unsigned delay_us;
	uint64_t t_kill;
	bool killed, finished;
};

int main(int argc, char **argv)
{
	const char *target = REGTARGET_PATH;
	unsigned runs = 60, seed = 20251122, run = 0, round;
	unsigned by_phase[NPHASES] = { 0 }, random_kills = 0, completed_before_kill = 0, refused = 0;
	uint64_t calls_lo = 0, calls_hi = 0;
	char *targv[8];
	struct child t;
	struct tally ty = { 0 };
	char line[2048], why[256];
	pid_t utid[NUSED];
	uint64_t fn_ensure, fn_call, fn_release, fn_errno;
	int i, st;

	for (i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--runs") == 0)
			runs = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--seed") == 0)
			seed = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--target") == 0)
			target = argv[i + 1];
	}
	printf("seed %u, %u runs\n", seed, runs);
	srand(seed);

	targv[0] = (char *)target;
	targv[1] = "@FD";
	targv[2] = "--loops";
	targv[3] = "0";
	targv[4] = "--sleep-ms";
	targv[5] = "1000";
	targv[6] = NULL;
	if (child_start(&t, targv) != 0 || child_line(&t, line, sizeof(line), 5000) != 0 ||
	    strncmp(line, "READY ", 6) != 0) {
		printf("FAIL: regtarget did not start\n");
		return 1;
	}
	printf("%s\n", line);
	for (i = 0; i < NUSED; i++)
		utid[i] = (pid_t)kv_u64(line, used[i]);
	fn_ensure = kv_u64(line, "ensure");
	fn_call = kv_u64(line, "call");
	fn_release = kv_u64(line, "release");
	fn_errno = kv_u64(line, "errno");

	/* A round: one injector per thread, all at once (they share the
	 * cave, installing it concurrently in the first round), each killed at
	 * its own phase or instant. */
	for (round = 0; run < runs && failures == 0; round++) {
		struct injector inj[NUSED];
		uint64_t t0;
		int n = 0;

		for (i = 0; i < NUSED; i++) {
			if (wait_injectable(t.pid, utid[i], 3000, why, sizeof(why)) != 0) {
				CHECK(0, "round %u: thread %s not injectable: %s", round, used[i], why);
				goto end;
			}
		}
		t0 = pk_now_ns();
		for (i = 0; i < NUSED && run < runs; i++, run++, n++) {
			struct pk_rcall_spec spec = {
				.fn_ensure = fn_ensure,
				.fn_call = fn_call,
				.fn_release = fn_release,
				.fn_errno = fn_errno,
				.call_arg0 = run,
				.call_arg1 = 20 | 0x10000, /* 20 ms, a getppid() every ms */
				.timeout_ms = 5000,
				.hook = suicide_hook,
			};

			memset(&inj[i], 0, sizeof(inj[i]));
			inj[i].phase = run % 3 == 0 ? (int)((run / 3) % NPHASES) : -1;
			/* Half the random kills early (attach, frame, entry),
			 * half anywhere in the ~21 ms the injector lives. */
			inj[i].delay_us = inj[i].phase >= 0 ? 0 : (unsigned)rand() % (run % 2 ? 2000u : 25000u);
			kill_phase = inj[i].phase;
			inj[i].pid = fork();
			if (inj[i].pid == 0) {
				struct pk_rcall_result r;
				int ret = pk_rcall_run(t.pid, utid[i], &spec, &r);

				/* 4: refused, the thread woke up meanwhile */
				_exit(ret == 0 && r.completed ? 0 : ret == -EAGAIN ? 4 : 3);
			}
		}
		/* Kill the random ones at their instants. */
		for (;;) {
			uint64_t now = pk_now_ns(), next = UINT64_MAX;

			for (i = 0; i < n; i++) {
				uint64_t at = t0 + (uint64_t)inj[i].delay_us * 1000;

				if (inj[i].phase >= 0 || inj[i].killed)
					continue;
				if (at <= now) {
					kill(inj[i].pid, SIGKILL);
					inj[i].killed = true;
				} else if (at < next) {
					next = at;
				}
			}
			if (next == UINT64_MAX)
				break;
			usleep((useconds_t)((next - now) / 1000));
		}
		for (i = 0; i < n; i++) {
			waitpid(inj[i].pid, &st, 0);
			if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
				if (inj[i].phase >= 0) {
					by_phase[inj[i].phase]++;
					/* After the registers were written the
					 * thread completes the call on its own. */
					if (inj[i].phase >= (int)PK_RCALL_PH_ENTERED) {
						calls_lo++;
						calls_hi++;
					}
				} else {
					random_kills++;
					calls_hi++;
				}
			} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				completed_before_kill++;
				calls_lo++;
				calls_hi++;
			} else if (WIFEXITED(st) && WEXITSTATUS(st) == 4) {
				refused++;
			} else {
				CHECK(0, "round %u: injector of %s: status %#x", round, used[i], st);
			}
		}
		for (i = 0; i < n; i++) {
			char state;
			int tracer = thread_tracer(t.pid, utid[i], &state);

			CHECK(tracer == 0, "round %u: thread %s TracerPid %d", round, used[i], tracer);
			CHECK(state != 't' && state != 'T' && state != 'Z', "round %u: thread %s state %c", round,
			      used[i], state);
		}
		CHECK(kill(t.pid, 0) == 0, "round %u: target died", round);
		/* Each thread's verdict on the sleep it was borrowed in. */
		for (i = 0; i < n; i++) {
			char res[2048];

			if (!next_result(&t, &ty, used[i], 3000, res, sizeof(res))) {
				CHECK(0, "round %u: thread %s gave no result after the kill", round, used[i]);
				goto end;
			}
			CHECK(ty.pass + ty.late == ty.results, "round %u (%s, %s %u us): %s", round, used[i],
			      inj[i].phase >= 0 ? phase_names[inj[i].phase] : "random", inj[i].delay_us, res);
		}
		CHECK(!ty.bad_calls, "round %u: callee environment violation or counter went back", round);
	}
end:
	/* Every call that got its registers written ran exactly once. */
	if (failures == 0) {
		char res[2048];

		for (i = 0; i < NTHREADS; i++)
			next_result(&t, &ty, names[i], 3000, res, sizeof(res));
		CHECK(ty.last_calls >= calls_lo && ty.last_calls <= calls_hi,
		      "%" PRIu64 " calls made, expected %" PRIu64 "..%" PRIu64, ty.last_calls, calls_lo, calls_hi);
	}
	CHECK(kill(t.pid, 0) == 0, "target died");
	printf("runs %u: killed at phase", run);
	for (i = 0; i < NPHASES; i++)
		printf(" %s=%u", phase_names[i], by_phase[i]);
	printf("; killed at random instants %u; finished before the kill %u; refused %u; calls %" PRIu64
	       " (expected %" PRIu64 "..%" PRIu64 "); target results %u/%u PASS, %u LATE "
	       "(woke > 50 ms after the deadline: load)\n",
	       random_kills, completed_before_kill, refused, ty.last_calls, calls_lo, calls_hi, ty.pass, ty.results, ty.late);
	child_stop(&t);
	printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
