/* SPDX-License-Identifier: MIT */
/* Remote function calls in one thread of a live process (pk_inject.h).
 *
 * Arch-neutral sequence; the register-level work is in arch/<arch>/.
 *
 *   pre-flight      nothing stopped: /proc says the thread sleeps in an
 *                   allow-listed syscall; the functions are in executable
 *                   mappings; the cave holds the trampoline.
 *   SEIZE           the thread is traced but runs on. If pykill dies now the
 *                   kernel detaches it: nothing happened.
 *   INTERRUPT+wait  the thread sits in PTRACE_EVENT_STOP inside get_signal(),
 *                   its syscall interrupted with a -ERESTART* or -EINTR the
 *                   kernel will act on when it resumes. Dying here = detach =
 *                   the kernel restarts the syscall: nothing happened.
 *   checks, frame   registers saved; the frame written below the red zone
 *                   (dead stack). Still nothing changed for the thread.
 *   SETREGS         rip = cave, orig_rax = -1. From here the thread completes
 *                   the call and restores itself without pykill.
 *   PTRACE_SYSCALL  pykill only watches: signals are passed through, job
 *                   control stops are LISTENed, until the marker syscall.
 *   marker, DETACH  results read from the frame; the thread restores its
 *                   registers and resumes its syscall (restarted, or -EINTR
 *                   exactly as the kernel had decided).
 *   timeout         INTERRUPT, DETACH at whatever stop: the call finishes
 *                   on its own; reported as -ETIMEDOUT with the step reached.
 */
#include "pk_inject.h"
#include "pk_attach.h"
#include "arch-priv.h"
#include "attach-priv.h"
#include "pk_log.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

/* How long the first stop may take: the thread is asleep in a syscall, so
 * the interrupt is immediate unless the kernel is busy. */
#define STOP_WAIT_MS 2000u
/* After a timeout: wait this long for the stop that lets us detach. */
#define DETACH_WAIT_MS 2000u
/* Bound of one sigtimedwait: covers a SIGCHLD we do not get (SA_NOCLDSTOP or
 * SIG_IGN set by an embedding program). */
#define POLL_SLICE_NS 10000000ull
/* Bound on the stops we watch: a call that makes this many system calls is
 * not the short C-API call it should be. Stop watching (it finishes on its
 * own) as on a timeout. */
#define MAX_STOPS 100000u

struct rcall {
	pid_t pid, tid;
	const struct pk_rcall_spec *spec;
	struct pk_rcall_result *out;
	struct pk_mem *mem;
	bool own_mem;
	struct pk_maps maps;
	bool have_maps;
	bool seized;
	bool entered;        /* registers point at the trampoline */
	bool stopped;        /* in a ptrace stop right now */
	uint64_t stopped_at; /* when that stop began (as far as we know) */
	uint64_t cave;
	size_t tramp_len, marker_end;
	struct pk_arch_state st;
	bool have_state;
	struct pk_arch_frame fr;
	uint64_t t0;
	uint64_t checked_pc; /* pc whose preceding bytes the disassembler approved, 0 none */
};

static void hook(const struct rcall *c, enum pk_rcall_phase ph)
{
	if (c->spec->hook != NULL)
		c->spec->hook(ph, c->spec->hook_ctx);
}

bool pk_rcall_syscall_allowed(long nr, const uint64_t args[6])
{
	return nr >= 0 && pk_arch_syscall_allowed(nr, args);
}

const uint8_t *pk_rcall_trampoline(size_t *len, uint16_t *elf_machine)
{
	if (elf_machine != NULL)
		*elf_machine = pk_arch_elf_machine();
	return pk_arch_trampoline(len, NULL);
}

static const char *sc_name(long nr, char *buf, size_t cap)
{
	const char *n = pk_syscall_name(nr);

	if (n != NULL)
		return n;
	snprintf(buf, cap, "syscall %ld", nr);
	return buf;
}

/* ---------------------------------------------------------------- pre-flight */

static bool restarts_a_sleep(pid_t pid, pid_t tid)
{
	char path[64], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "nanosleep") != NULL;
}

int pk_rcall_check_thread(pid_t pid, pid_t tid, char *why, size_t cap)
{
	struct pk_status ps, ts;
	struct pk_syscall sc;
	char nb[32];
	int ret;

	if (cap > 0)
		why[0] = '\0';
	ret = pk_proc_status(pid, 0, &ps);
	if (ret < 0)
		return ret;
	ret = pk_proc_status(pid, tid, &ts);
	if (ret < 0)
		return ret;
	if (ts.tgid != pid) {
		pk_error("thread %d is not a thread of process %d", (int)tid, (int)pid);
		return -ESRCH;
	}
	if (ps.state == 'T' || ps.state == 't') {
		snprintf(why, cap, "process %d is stopped (job control or a debugger)", (int)pid);
		return -EAGAIN;
	}
	/* A zombie leader alone is no exiting process: a main thread that
	 * called pthread_exit leaves the others running. */
	if (pk_status_ended(&ps)) {
		snprintf(why, cap, "process %d is exiting", (int)pid);
		return -EAGAIN;
	}
	if (ts.state == 'Z' || ts.state == 'X') {
		snprintf(why, cap, "thread %d has exited", (int)tid);
		return -EAGAIN;
	}
	if (ts.tracer_pid != 0) {
		snprintf(why, cap, "thread %d is already traced by process %d", (int)tid, (int)ts.tracer_pid);
		return -EAGAIN;
	}
	/* The trampoline's marker is a system call (getpid): a filter could
	 * kill the process, kill the thread or fail the call for it. What a
	 * filter does cannot be known without running it: no call. */
	if (ts.seccomp != 0) {
		snprintf(why, cap, "thread %d runs under a seccomp %s", (int)tid,
			 ts.seccomp == 1 ? "strict mode" : ts.seccomp == 2 ? "filter" : "mode pykill cannot see");
		return -EAGAIN;
	}
	if (ts.state != 'S') {
		snprintf(why, cap, "thread %d is not asleep (state %c)", (int)tid, ts.state);
		return -EAGAIN;
	}
	ret = pk_proc_syscall(pid, tid, &sc);
	if (ret < 0)
		return ret;
	if (sc.nr < 0) {
		snprintf(why, cap, "thread %d is not blocked in a system call", (int)tid);
		return -EAGAIN;
	}
	if (!pk_rcall_syscall_allowed(sc.nr, sc.args)) {
		snprintf(why, cap, "thread %d is blocked in %s, not in a pure sleep (borrowing it could keep others "
			 "waiting on it)", (int)tid, sc_name(sc.nr, nb, sizeof(nb)));
		return -EAGAIN;
	}
	/* restart_syscall hides what it restarts: a sleep, or a futex (a lock
	 * or condition wait with a timeout, e.g. Thread.join(timeout)) that a
	 * stop interrupted. Where the thread sleeps in the kernel tells. */
	if (sc.nr == pk_syscall_number("restart_syscall") && !restarts_a_sleep(pid, tid)) {
		snprintf(why, cap, "thread %d is in restart_syscall of something other than a sleep", (int)tid);
		return -EAGAIN;
	}
	return pk_arch_check_thread(pid, tid, why, cap);
}

static int check_code_addr(const struct rcall *c, uint64_t addr, const char *what)
{
	const struct pk_map *m;

	if (addr == 0)
		return 0;
	m = pk_maps_find(&c->maps, addr);
	if (m == NULL || !(m->prot & PK_MAP_X)) {
		pk_error("call in process %d: %s address 0x%" PRIx64 " is not in executable memory", (int)c->pid,
			 what, addr);
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- ptrace */

static int block_signals(sigset_t *old)
{
	sigset_t set;

	/* Delivered when the mask is restored. SIGCHLD is blocked so that
	 * sigtimedwait() can wait for the thread's stops. */
	sigemptyset(&set);
	pk_stop_signals_add(&set);
	sigaddset(&set, SIGCHLD);
	return -pthread_sigmask(SIG_BLOCK, &set, old);
}

static void account_resume(struct rcall *c)
{
	if (c->stopped) {
		c->out->freeze_ns += pk_now_ns() - c->stopped_at;
		c->stopped = false;
	}
}

static int resume(struct rcall *c, int req, int sig)
{
	int err;

	if (ptrace(req, c->tid, NULL, (void *)(intptr_t)sig) < 0) {
		err = errno;
		pk_error("resume thread %d: %s", (int)c->tid, strerror(err));
		return -err;
	}
	account_resume(c);
	return 0;
}

/* A tracee killed meanwhile (the process exits, or another thread execs)
 * must be reaped by its tracer: until then an exec waits for it, and
 * keeps its process's other threads from going. Bounded: a SIGKILLed
 * thread is a zombie within microseconds; a stuck one is released when
 * pykill exits. */
static void reap_killed(struct rcall *c)
{
	uint64_t deadline = pk_now_ns() + 500ull * 1000000;
	int status;

	for (;;) {
		pid_t r = waitpid(c->tid, &status, __WALL | WNOHANG);

		if ((r == c->tid && (WIFEXITED(status) || WIFSIGNALED(status))) || (r < 0 && errno != EINTR))
			break;
		if (pk_now_ns() >= deadline)
			break;
		if (r == 0)
			pk_sleep_ns(200000);
	}
	c->seized = false;
}

static int detach(struct rcall *c, int sig)
{
	int err;

	if (!c->seized)
		return 0;
	if (ptrace(PTRACE_DETACH, c->tid, NULL, (void *)(intptr_t)sig) < 0) {
		err = errno;
		pk_error("detach from thread %d: %s", (int)c->tid, strerror(err));
		if (err == ESRCH)
			reap_killed(c);
		return -err;
	}
	account_resume(c);
	c->seized = false;
	return 0;
}

/* Wait for the next stop or exit of the thread until deadline (monotonic
 * ns). waitpid has no timeout: poll it, sleeping in sigtimedwait(SIGCHLD)
 * in between (ptrace stops notify the tracer with SIGCHLD). */
static int wait_thread(struct rcall *c, uint64_t deadline, int *status)
{
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		struct timespec ts;
		uint64_t now, slice;
		pid_t r = waitpid(c->tid, status, __WALL | WNOHANG);

		if (r == c->tid) {
			if (WIFSTOPPED(*status)) {
				c->stopped = true;
				c->stopped_at = pk_now_ns();
			} else {
				c->seized = false; /* exited: nothing to detach */
			}
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			int err = errno;

			if (err == ECHILD) {
				c->seized = false;
				pk_error("thread %d of process %d is gone", (int)c->tid, (int)c->pid);
				return -ESRCH;
			}
			pk_error("wait for thread %d: %s", (int)c->tid, strerror(err));
			return -err;
		}
		now = pk_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		slice = deadline - now < POLL_SLICE_NS ? deadline - now : POLL_SLICE_NS;
		ts.tv_sec = (time_t)(slice / 1000000000ull);
		ts.tv_nsec = (long)(slice % 1000000000ull);
		(void)sigtimedwait(&chld, NULL, &ts);
	}
}

enum stop_kind {
	STOP_GONE,      /* exited or killed */
	STOP_SYSCALL,   /* syscall-entry or -exit stop */
	STOP_EVENT,     /* PTRACE_EVENT_STOP from PTRACE_INTERRUPT or LISTEN wake-up */
	STOP_GROUP,     /* PTRACE_EVENT_STOP of a job-control stop */
	STOP_SIGNAL,    /* signal-delivery-stop: re-inject sig */
	STOP_OTHER_EVENT,
};

static enum stop_kind classify(int status, int *sig)
{
	int s, ev;

	*sig = 0;
	if (!WIFSTOPPED(status))
		return STOP_GONE;
	s = WSTOPSIG(status);
	ev = (unsigned)status >> 16;
	if (s == (SIGTRAP | 0x80))
		return STOP_SYSCALL;
	if (ev == PTRACE_EVENT_STOP) {
		if (s == SIGSTOP || s == SIGTSTP || s == SIGTTIN || s == SIGTTOU)
			return STOP_GROUP;
		return STOP_EVENT;
	}
	if (ev != 0)
		return STOP_OTHER_EVENT;
	*sig = s;
	return STOP_SIGNAL;
}

static const char *gone_message(int status, char *buf, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, cap, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, cap, "is gone");
	return buf;
}

/* SEIZE + INTERRUPT, then wait for our PTRACE_EVENT_STOP, passing real
 * signals through. */
static int stop_thread(struct rcall *c, uint64_t *t_interrupt)
{
	uint64_t deadline;
	char buf[96];
	int status, sig, ret, err;

	if (ptrace(PTRACE_SEIZE, c->tid, NULL, (void *)(uintptr_t)PTRACE_O_TRACESYSGOOD) < 0) {
		err = errno;
		if (err == ESRCH) {
			pk_error("no such thread %d in process %d", (int)c->tid, (int)c->pid);
		} else {
			pk_error("trace thread %d of process %d: %s", (int)c->tid, (int)c->pid, strerror(err));
			if (err == EPERM || err == EACCES)
				pk_attach_explain_eperm(c->pid);
		}
		return -err;
	}
	c->seized = true;
	hook(c, PK_RCALL_PH_SEIZED);
	*t_interrupt = pk_now_ns();
	if (ptrace(PTRACE_INTERRUPT, c->tid, NULL, NULL) < 0) {
		err = errno;
		pk_error("interrupt thread %d: %s", (int)c->tid, strerror(err));
		return -err;
	}
	deadline = *t_interrupt + STOP_WAIT_MS * 1000000ull;
	for (;;) {
		ret = wait_thread(c, deadline, &status);
		if (ret == -ETIMEDOUT) {
			/* Cannot detach a running tracee; the interrupt is
			 * still pending, so the stop will come: wait more. */
			pk_log(PK_LOG_WARN, "thread %d: no stop after %u ms, still waiting", (int)c->tid,
			       STOP_WAIT_MS);
			deadline = pk_now_ns() + 10 * STOP_WAIT_MS * 1000000ull;
			ret = wait_thread(c, deadline, &status);
			if (ret == -ETIMEDOUT) {
				pk_error("stop thread %d: it did not stop (uninterruptible?); it is released when "
					 "pykill exits",
					 (int)c->tid);
				return ret;
			}
		}
		if (ret < 0)
			return ret;
		switch (classify(status, &sig)) {
		case STOP_GONE:
			pk_error("thread %d of process %d %s", (int)c->tid, (int)c->pid,
				 gone_message(status, buf, sizeof(buf)));
			return -ESRCH;
		case STOP_EVENT:
			return 0;
		case STOP_GROUP:
			pk_error("process %d is being stopped (job control): refusing to borrow thread %d",
				 (int)c->pid, (int)c->tid);
			return -EAGAIN;
		case STOP_SIGNAL:
			c->out->signals++;
			ret = resume(c, PTRACE_CONT, sig);
			if (ret < 0)
				return ret;
			break;
		case STOP_SYSCALL:
		case STOP_OTHER_EVENT:
			ret = resume(c, PTRACE_CONT, 0);
			if (ret < 0)
				return ret;
			break;
		}
	}
}

/* ---------------------------------------------------------------- checks */

/* The lowest address the call may use on the thread's stack, from the
 * thread's own records, never from the mapping alone (a stack carved from a
 * malloc'ed buffer sits inside a large heap mapping). The main thread runs
 * on [stack]. Any other thread: its struct pthread (at the thread pointer)
 * records the stack block glibc allocated or was given (stackblock,
 * stackblock_size); it must be exactly the mapping sp is in, with at most a
 * no-access guard below it. A thread running on any other stack (a
 * user-made one, makecontext) has bounds pykill cannot know: refused. */
#define PTHREAD_SCAN_BYTES 4096u
static int stack_floor(struct rcall *c, const struct pk_map *stack, uint64_t sp, uint64_t *floor, char *why,
		       size_t cap)
{
	uint64_t tp = pk_arch_thread_pointer(&c->st);
	const struct pk_map *tm = pk_maps_find(&c->maps, tp);
	uint64_t *words = NULL;
	size_t nbytes;
	int ret = -EAGAIN;

	if (c->tid == c->pid) {
		if (strcmp(stack->path, "[stack]") != 0) {
			snprintf(why, cap, "main thread %d runs on a stack other than [stack]", (int)c->tid);
			return -EAGAIN;
		}
		*floor = stack->start;
		return 0;
	}
	words = malloc(PTHREAD_SCAN_BYTES);
	if (words == NULL) {
		pk_error("check the stack of thread %d: out of memory", (int)c->tid);
		return -ENOMEM;
	}
	/* glibc puts the descriptor at the very top of the block: what follows
	 * it may be the next thread's block, whose guard pages (madvise'd,
	 * glibc 2.41+) share the mapping but cannot be read. Read page by
	 * page and keep what was readable. */
	nbytes = tm == NULL ? 0 : tm->end - tp < PTHREAD_SCAN_BYTES ? (size_t)(tm->end - tp) & ~(size_t)7 : PTHREAD_SCAN_BYTES;
	for (size_t got = 0; got < nbytes;) {
		size_t piece = 4096 - (size_t)((tp + got) & 4095);
		if (piece > nbytes - got)
			piece = nbytes - got;
		if (pk_mem_read(c->mem, tp + got, (char *)words + got, piece) != 0) {
			pk_error_clear();
			nbytes = got & ~(size_t)7;
			break;
		}
		got += piece;
	}
	if (tp == 0 || nbytes < 16) {
		snprintf(why, cap, "thread %d: its thread descriptor at 0x%" PRIx64 " is unreadable", (int)c->tid, tp);
		goto out;
	}
	for (size_t i = 0; i + 1 < nbytes / 8; i++) {
		uint64_t block = words[i], size = words[i + 1], lo = 0, a;
		bool ok = true;

		/* glibc puts the descriptor at the top of the block it records,
		 * allocated or given: block <= sp < tp < block + size. */
		if (size < 16384 || size > (1ull << 36) || (block & 4095) != 0 || (size & 4095) != 0 ||
		    block > sp || tp >= block + size || sp >= tp)
			continue;
		/* Every page of the block mapped: a no-access guard at the bottom,
		 * then read-write memory (adjacent stacks may share one mapping). */
		for (a = block; a < block + size && ok;) {
			const struct pk_map *g = pk_maps_find(&c->maps, a);
			if (g == NULL)
				ok = false;
			else if ((g->prot & (PK_MAP_R | PK_MAP_W)) == (PK_MAP_R | PK_MAP_W) && lo == 0)
				lo = a;
			else if ((g->prot & (PK_MAP_R | PK_MAP_W | PK_MAP_X)) != 0 && lo == 0)
				ok = false;
			else if (lo != 0 && (g->prot & (PK_MAP_R | PK_MAP_W)) != (PK_MAP_R | PK_MAP_W))
				ok = false;
			if (g != NULL)
				a = g->end;
		}
		if (!ok || lo == 0)
			continue;
		/* No separate guard mapping (glibc 2.41+ installs its guard pages
		 * with madvise, inside the mapping): keep clear of where it is. */
		*floor = lo == block ? block + (64u << 10) : lo;
		ret = 0;
		goto out;
	}
	snprintf(why, cap, "thread %d runs on a stack its thread descriptor does not record (its bounds are unknown)",
		 (int)c->tid);
out:
	free(words);
	return ret;
}

static int check_stopped_thread(struct rcall *c, char *why, size_t cap)
{
	uint8_t before[16];
	uint64_t pc = pk_arch_pc(&c->st), sp = pk_arch_sp(&c->st), args[6], stack_lo;
	const struct pk_map *stack;
	char nb[32];
	long nr;
	int64_t rv;
	int ret;

	ret = pk_arch_parked_syscall(&c->st, &nr, &rv, why, cap);
	if (ret < 0)
		return ret;
	c->out->syscall_nr = nr;
	c->out->syscall_ret = rv;
	/* A call resumed through restart_syscall depends on the thread's
	 * restart block, which the borrowed calls may overwrite (a timed futex
	 * wait in PyGILState_Ensure that a stop interrupts does): the sleep
	 * would then end early with EINTR. */
	if (c->spec->refuse_restart_block && (rv == -516 || nr == pk_syscall_number("restart_syscall"))) {
		snprintf(why, cap, "thread %d is in a system call that resumes through restart_syscall", (int)c->tid);
		return -EAGAIN;
	}
	pk_arch_syscall_args(&c->st, args);
	if (!pk_rcall_syscall_allowed(nr, args)) {
		snprintf(why, cap, "thread %d is in %s, not in a pure sleep (borrowing it could keep others waiting "
			 "on it)", (int)c->tid, sc_name(nr, nb, sizeof(nb)));
		return -EAGAIN;
	}
	if (pc >= c->cave && pc < c->cave + c->tramp_len) {
		snprintf(why, cap, "thread %d is inside a trampoline already", (int)c->tid);
		return -EAGAIN;
	}
	if (pc < sizeof(before) || pk_mem_read(c->mem, pc - sizeof(before), before, sizeof(before)) != 0) {
		snprintf(why, cap, "cannot read the code before pc 0x%" PRIx64, pc);
		return -EAGAIN;
	}
	/* The disassembler's opinion was asked before the stop for the pc
	 * /proc reported; ask again only if the thread is elsewhere now. */
	if (!pk_arch_is_syscall_insn(before, sizeof(before)) ||
	    (c->spec->is_syscall_before != NULL && pc != c->checked_pc &&
	     !c->spec->is_syscall_before(pk_arch_elf_machine(), before, sizeof(before), pc))) {
		snprintf(why, cap, "no system call instruction before pc 0x%" PRIx64, pc);
		return -EAGAIN;
	}
	stack = pk_maps_find(&c->maps, sp - 1);
	if (stack == NULL || (stack->prot & (PK_MAP_R | PK_MAP_W)) != (PK_MAP_R | PK_MAP_W)) {
		snprintf(why, cap, "stack pointer 0x%" PRIx64 " is not in writable memory", sp);
		return -EAGAIN;
	}
	ret = pk_arch_frame_build(&c->st, c->spec, &c->fr);
	if (ret < 0) {
		snprintf(why, cap, "cannot build a call frame below sp 0x%" PRIx64, sp);
		return ret == -ENOMEM ? ret : -EAGAIN;
	}
	ret = stack_floor(c, stack, sp, &stack_lo, why, cap);
	if (ret < 0)
		return ret;
	if (c->fr.lo < stack_lo || c->fr.lo - stack_lo < PK_RCALL_STACK_HEADROOM) {
		snprintf(why, cap,
			 "stack of thread %d has %" PRIu64 " bytes below the call frame, %u needed",
			 (int)c->tid, c->fr.lo >= stack_lo ? c->fr.lo - stack_lo : 0,
			 PK_RCALL_STACK_HEADROOM);
		return -EAGAIN;
	}
	return 0;
}

static int verify_bytes(struct rcall *c, uint64_t addr, const uint8_t *want, size_t len, const char *what)
{
	uint8_t *got = malloc(len);
	int ret;

	if (got == NULL) {
		pk_error("verify %s: out of memory", what);
		return -ENOMEM;
	}
	ret = pk_mem_read(c->mem, addr, got, len);
	if (ret == 0 && memcmp(got, want, len) != 0)
		ret = -EIO;
	if (ret < 0)
		pk_error("verify %s at 0x%" PRIx64 " in process %d: %s", what, addr, (int)c->pid,
			 ret == -EIO ? "read back differs" : strerror(-ret));
	free(got);
	return ret;
}

/* Before stopping anything: the bytes before the pc /proc shows must be
 * the system call instruction, in the disassembler's opinion too (it is
 * slow: keep it out of the stop). */
static int precheck_code(struct rcall *c, char *why, size_t cap)
{
	struct pk_syscall sc;
	uint8_t before[16];
	int ret;

	ret = pk_proc_syscall(c->pid, c->tid, &sc);
	if (ret < 0)
		return ret;
	if (sc.nr < 0 || sc.pc < sizeof(before))
		return 0; /* woke up meanwhile: the checks at the stop decide */
	if (pk_mem_read(c->mem, sc.pc - sizeof(before), before, sizeof(before)) != 0)
		return 0;
	if (!pk_arch_is_syscall_insn(before, sizeof(before)) ||
	    (c->spec->is_syscall_before != NULL &&
	     !c->spec->is_syscall_before(pk_arch_elf_machine(), before, sizeof(before), sc.pc))) {
		snprintf(why, cap, "no system call instruction before pc 0x%" PRIx64, sc.pc);
		return -EAGAIN;
	}
	c->checked_pc = sc.pc;
	return 0;
}

/* ---------------------------------------------------------------- the call */

static void read_results(struct rcall *c)
{
	uint8_t hdr[PK_ARCH_FRAME_HEADER];
	struct pk_arch_results r;

	if (pk_mem_read(c->mem, c->fr.lo, hdr, sizeof(hdr)) != 0)
		return;
	if (pk_arch_frame_results(hdr, sizeof(hdr), &r) < 0)
		return;
	c->out->step = (enum pk_rcall_step)(r.step <= PK_RCALL_RELEASED ? r.step : PK_RCALL_NOT_STARTED);
	c->out->ensure_ret = r.ensure_ret;
	c->out->call_ret = r.call_ret;
	c->out->errno_kept = r.errno_addr != 0;
	c->out->target_errno = r.errno_val;
}

/* At a syscall stop: is it the marker of our frame? */
static bool at_marker(struct rcall *c)
{
	struct __ptrace_syscall_info info;

	memset(&info, 0, sizeof(info));
	if (ptrace(PTRACE_GET_SYSCALL_INFO, c->tid, (void *)sizeof(info), &info) <= 0)
		return errno == EIO && pk_arch_at_marker(c->tid, c->cave + c->marker_end, c->fr.lo);
	if (pk_log_enabled(PK_LOG_DEBUG))
		pk_log(PK_LOG_DEBUG, "thread %d: syscall-%s-stop, %s %" PRIu64 " at pc 0x%" PRIx64, (int)c->tid,
		       info.op == PTRACE_SYSCALL_INFO_ENTRY ? "entry" : "exit",
		       info.op == PTRACE_SYSCALL_INFO_ENTRY ? "nr" : "ret",
		       info.op == PTRACE_SYSCALL_INFO_ENTRY ? info.entry.nr : (uint64_t)info.exit.rval,
		       info.instruction_pointer);
	return info.op == PTRACE_SYSCALL_INFO_ENTRY && info.instruction_pointer == c->cave + c->marker_end &&
	       pk_arch_is_marker(info.arch, info.entry.nr, info.entry.args, c->fr.lo);
}

static int finish_at_marker(struct rcall *c)
{
	read_results(c);
	c->out->completed = c->out->step == PK_RCALL_RELEASED;
	if (c->out->completed)
		c->out->step = PK_RCALL_DONE;
	hook(c, PK_RCALL_PH_MARKER);
	/* Detach at the syscall-entry-stop: getpid runs, then the trampoline
	 * restores the thread. */
	return detach(c, 0);
}

/* The call did not finish in time: let go at the next stop. */
static int give_up(struct rcall *c)
{
	uint64_t deadline = pk_now_ns() + DETACH_WAIT_MS * 1000000ull;
	int status, sig, ret;
	char buf[96];

	if (ptrace(PTRACE_INTERRUPT, c->tid, NULL, NULL) < 0 && errno == ESRCH) {
		reap_killed(c);
		return -ESRCH;
	}
	for (;;) {
		ret = wait_thread(c, deadline, &status);
		if (ret < 0)
			return ret;
		switch (classify(status, &sig)) {
		case STOP_GONE:
			pk_error("thread %d of process %d %s during the call", (int)c->tid, (int)c->pid,
				 gone_message(status, buf, sizeof(buf)));
			return -ESRCH;
		case STOP_SYSCALL:
			if (at_marker(c)) {
				ret = finish_at_marker(c);
				return ret < 0 ? ret : 1;
			}
			return detach(c, 0);
		case STOP_SIGNAL:
			c->out->signals++;
			return detach(c, sig);
		case STOP_EVENT:
		case STOP_GROUP:
		case STOP_OTHER_EVENT:
			return detach(c, 0);
		}
	}
}

static int watch_call(struct rcall *c, uint64_t deadline)
{
	int status, sig, ret;
	char buf[96];

	for (;;) {
		ret = wait_thread(c, deadline, &status);
		if (ret == -ETIMEDOUT || c->out->stops >= MAX_STOPS) {
			ret = give_up(c);
			if (ret == 1)
				return 0; /* reached the marker after all */
			if (ret == 0 || ret == -ESRCH) {
				uint8_t hdr[PK_ARCH_FRAME_HEADER];
				struct pk_arch_results r;

				if (pk_mem_read(c->mem, c->fr.lo, hdr, sizeof(hdr)) == 0 &&
				    pk_arch_frame_results(hdr, sizeof(hdr), &r) == 0) {
					if (r.step <= PK_RCALL_RELEASED)
						c->out->step = (enum pk_rcall_step)r.step;
				}
			}
			if (ret == -ESRCH)
				return ret;
			pk_error("call in thread %d of process %d: not finished after %u ms (step %d); pykill "
				 "detached, the thread completes it on its own",
				 (int)c->tid, (int)c->pid, c->spec->timeout_ms ? c->spec->timeout_ms
									     : PK_RCALL_DEFAULT_TIMEOUT_MS,
				 (int)c->out->step);
			return -ETIMEDOUT;
		}
		if (ret < 0)
			return ret;
		c->out->stops++;
		if (pk_log_enabled(PK_LOG_DEBUG))
			pk_log(PK_LOG_DEBUG, "thread %d: stop status %#x at +%.3f ms", (int)c->tid, status,
			       (double)(pk_now_ns() - c->t0) / 1e6);
		switch (classify(status, &sig)) {
		case STOP_GONE:
			pk_error("thread %d of process %d %s during the call", (int)c->tid, (int)c->pid,
				 gone_message(status, buf, sizeof(buf)));
			return -ESRCH;
		case STOP_SYSCALL:
			if (at_marker(c))
				return finish_at_marker(c);
			hook(c, PK_RCALL_PH_STOP);
			ret = resume(c, PTRACE_SYSCALL, 0);
			break;
		case STOP_SIGNAL:
			/* Re-inject at once: its handler runs on the stack
			 * below our frame, and the call continues after it. */
			c->out->signals++;
			hook(c, PK_RCALL_PH_STOP);
			ret = resume(c, PTRACE_SYSCALL, sig);
			break;
		case STOP_GROUP:
			/* Job control stop of the process: stay stopped
			 * with it, without being resumed by us. */
			c->out->group_stops++;
			hook(c, PK_RCALL_PH_STOP);
			ret = resume(c, PTRACE_LISTEN, 0);
			break;
		case STOP_EVENT:
		case STOP_OTHER_EVENT:
			hook(c, PK_RCALL_PH_STOP);
			ret = resume(c, PTRACE_SYSCALL, 0);
			break;
		}
		if (ret < 0)
			return ret;
	}
}

static int prepare(struct rcall *c)
{
	const struct pk_rcall_spec *s = c->spec;
	int ret;

	if (s->mem != NULL) {
		c->mem = s->mem;
	} else {
		ret = pk_mem_open_pid(c->pid, &c->mem);
		if (ret < 0)
			return ret;
		c->own_mem = true;
	}
	ret = pk_proc_maps(c->pid, &c->maps);
	if (ret < 0)
		return ret;
	c->have_maps = true;
	if (s->fn_call == 0) {
		pk_error("call in process %d: no function to call", (int)c->pid);
		return -EINVAL;
	}
	if (pk_arch_init() < 0) {
		pk_error("call in process %d: this CPU lacks what the call needs (XSAVE)", (int)c->pid);
		return -ENOTSUP;
	}
	if ((ret = check_code_addr(c, s->fn_ensure, "PyGILState_Ensure")) < 0 ||
	    (ret = check_code_addr(c, s->fn_call, "function")) < 0 ||
	    (ret = check_code_addr(c, s->fn_release, "PyGILState_Release")) < 0 ||
	    (ret = check_code_addr(c, s->fn_errno, "__errno_location")) < 0)
		return ret;
	pk_arch_trampoline(&c->tramp_len, &c->marker_end);
	c->cave = s->cave;
	if (c->cave == 0) {
		ret = pk_cave_find(c->mem, &c->maps, s->fn_ensure != 0 ? s->fn_ensure : s->fn_call, &c->cave);
		if (ret < 0)
			return ret;
	} else {
		/* A caller-given cave must be executable code memory, all of
		 * it in one mapping: the thread is about to jump there. */
		const struct pk_map *m = pk_maps_find(&c->maps, c->cave);

		if (m == NULL || !(m->prot & PK_MAP_X) || c->cave > m->end - c->tramp_len) {
			pk_error("call in process %d: cave 0x%" PRIx64 " is not in executable memory", (int)c->pid,
				 c->cave);
			return -EINVAL;
		}
	}
	ret = pk_cave_install(c->mem, c->cave);
	if (ret < 0)
		return ret;
	c->out->cave = c->cave;
	return 0;
}

int pk_rcall_run(pid_t pid, pid_t tid, const struct pk_rcall_spec *spec, struct pk_rcall_result *out)
{
	struct rcall c;
	uint64_t t0 = pk_now_ns(), t_int = 0, t_seen, deadline;
	unsigned timeout_ms = spec->timeout_ms != 0 ? spec->timeout_ms : PK_RCALL_DEFAULT_TIMEOUT_MS;
	sigset_t oldmask;
	bool masked = false;
	char why[256] = "";
	int ret, dret;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	out->syscall_nr = -1;
	c.pid = pid;
	c.tid = tid;
	c.spec = spec;
	c.out = out;
	c.t0 = t0;
	deadline = t0 + (uint64_t)timeout_ms * 1000000ull;

	ret = prepare(&c);
	if (ret < 0)
		goto out;
	ret = pk_rcall_check_thread(pid, tid, why, sizeof(why));
	if (ret == 0)
		ret = precheck_code(&c, why, sizeof(why));
	if (ret == -EAGAIN) {
		pk_error("borrow thread %d of process %d: %s", (int)tid, (int)pid, why);
		goto out;
	}
	if (ret < 0)
		goto out;

	ret = block_signals(&oldmask);
	if (ret < 0) {
		pk_error("block signals: %s", strerror(-ret));
		goto out;
	}
	masked = true;

	ret = stop_thread(&c, &t_int);
	if (ret < 0)
		goto out_detach;
	hook(&c, PK_RCALL_PH_STOPPED);
	ret = pk_arch_save(tid, &c.st);
	if (ret < 0)
		goto out_detach;
	c.have_state = true;
	ret = check_stopped_thread(&c, why, sizeof(why));
	if (ret < 0) {
		pk_error("borrow thread %d of process %d: %s", (int)tid, (int)pid, why);
		goto out_detach;
	}
	/* The thread we hold must live in the address space the caller read
	 * (an exec elsewhere in the process replaces it). */
	if (pk_mem_same_space(c.mem) < 0) {
		pk_error("borrow thread %d of process %d: the process executed a new program (or exited) since it "
			 "was read",
			 (int)tid, (int)pid);
		ret = -ESRCH;
		goto out_detach;
	}
	out->frame = c.fr.lo;
	ret = pk_mem_write(c.mem, c.fr.lo, c.fr.image, c.fr.len);
	if (ret < 0) {
		pk_error("write call frame at 0x%" PRIx64 " in process %d: %s", c.fr.lo, (int)pid, strerror(-ret));
		goto out_detach;
	}
	ret = verify_bytes(&c, c.fr.lo, c.fr.image, c.fr.len, "call frame");
	if (ret < 0)
		goto out_detach;
	/* Last look at the cave right before pointing the thread at it. */
	ret = verify_bytes(&c, c.cave, pk_arch_trampoline(NULL, NULL), c.tramp_len, "trampoline");
	if (ret < 0)
		goto out_detach;
	hook(&c, PK_RCALL_PH_FRAME);

	ret = pk_arch_enter(tid, &c.st, c.cave, c.fr.lo);
	if (ret < 0)
		goto out_detach; /* registers unchanged: plain detach */
	c.entered = true;
	hook(&c, PK_RCALL_PH_ENTERED);
	/* The first stop began somewhere between PTRACE_INTERRUPT and the
	 * moment waitpid saw it: count it from the interrupt (upper bound). */
	t_seen = c.stopped_at;
	c.stopped_at = t_int;
	ret = resume(&c, PTRACE_SYSCALL, 0);
	if (ret < 0)
		goto out_detach;
	out->hijack_ns = pk_now_ns() - t_int;
	pk_log(PK_LOG_DEBUG, "thread %d: stop seen %.3f ms after PTRACE_INTERRUPT, resumed in the trampoline %.3f ms "
			     "later",
	       (int)tid, (double)(t_seen - t_int) / 1e6, (double)(t_int + out->hijack_ns - t_seen) / 1e6);
	out->step = PK_RCALL_NOT_STARTED;
	hook(&c, PK_RCALL_PH_RUNNING);

	ret = watch_call(&c, deadline);

out_detach:
	if (ret < 0 && ret != -ETIMEDOUT && c.entered)
		pk_log(PK_LOG_WARN, "thread %d of process %d: pykill stopped watching the call; the thread completes "
				    "it and resumes on its own",
		       (int)tid, (int)pid);
	if (c.seized) {
		/* Before SETREGS: the registers are untouched and we are at a
		 * get_signal() stop, so the kernel redoes its own restart
		 * logic. After: the trampoline finishes by itself. Either way
		 * a plain detach is right, provided the thread is stopped. */
		if (c.stopped)
			dret = detach(&c, 0);
		else
			dret = give_up(&c) < 0 ? -1 : 0;
		if (dret < 0 && ret == 0)
			ret = -EIO;
	}
out:
	if (masked)
		pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
	if (c.have_state)
		pk_arch_state_free(&c.st);
	pk_arch_frame_free(&c.fr);
	if (c.have_maps)
		pk_maps_free(&c.maps);
	if (c.own_mem)
		pk_mem_close(c.mem);
	out->wall_ns = pk_now_ns() - t0;
	return ret;
}
