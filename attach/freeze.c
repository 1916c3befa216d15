/* SPDX-License-Identifier: MIT */
/* Freezes: threads held in ptrace stops.
 *
 * PTRACE_SEIZE (no options: no EXITKILL, and never PTRACE_ATTACH, whose
 * SIGSTOP would leave the process stopped if we died) then PTRACE_INTERRUPT,
 * for every thread first, then one wait per thread: the first thread is
 * stopped for the least possible time. If pykill dies, the kernel detaches
 * every tracee and they simply continue.
 *
 * The stop we wait for is a PTRACE_EVENT_STOP: WSTOPSIG SIGTRAP for our
 * interrupt, or the stop signal when the process is in (or enters) a group
 * stop; PTRACE_DETACH puts such a thread back into the group stop. A
 * signal-delivery-stop can come first when a real signal was being
 * delivered: the thread is then stopped just as well, and the signal is
 * handed back by PTRACE_DETACH. That signal is lost if pykill is SIGKILLed
 * meanwhile (the kernel drops it), so the window is the freeze itself.
 *
 * All ptrace requests must come from one thread of pykill (the tracer). */
#include "pk_attach.h"
#include "attach-priv.h"
#include "arch-priv.h"
#include "pk_log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long pk_freeze_add waits for the threads to stop. Only a thread in
 * uninterruptible sleep (D) takes longer; it cannot run Python code either. */
#define PK_FREEZE_WAIT_NS (200ull * 1000000)
/* How long pk_freeze_end waits for threads that had not stopped. */
#define PK_FREEZE_LATE_NS (100ull * 1000000)

enum { T_SEIZED = 1, T_STOPPED, T_GONE };

struct fthread {
	pid_t tid;
	uint8_t state;
	bool group_stop; /* stopped by a job-control stop, not by us */
	int sig;         /* signal of a signal-delivery-stop, re-injected at detach */
};

struct pk_freeze {
	pid_t pid;
	struct fthread *v;
	size_t n, cap;
	size_t nstopped;
	bool blocking;     /* holds a reference on the blocked signals */
	uint64_t t_first;  /* just before the first SEIZE, 0 when none */
	uint64_t t_last;   /* just after the last DETACH of a stopped thread */
};

/* ---------------------------------------------------------------- signals */

/* Ctrl-C, kill, hang-up and Ctrl-\ of pykill wait until every thread is
 * released; so does Ctrl-Z, which would otherwise keep the target frozen
 * for as long as pykill is stopped. */
static const int blocked_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };
static int block_refs;
static sigset_t block_prev;

void pk_stop_signals_add(sigset_t *set)
{
	for (size_t i = 0; i < sizeof(blocked_sigs) / sizeof(blocked_sigs[0]); i++)
		sigaddset(set, blocked_sigs[i]);
}

static void sig_block(void)
{
	sigset_t s;

	if (block_refs++ > 0)
		return;
	sigemptyset(&s);
	pk_stop_signals_add(&s);
	pthread_sigmask(SIG_BLOCK, &s, &block_prev);
}

static void sig_unblock(void)
{
	sigset_t s;

	if (block_refs <= 0 || --block_refs > 0)
		return;
	/* Unblock only what we blocked: changes the program made meanwhile
	 * to other signals stay. Pending ones are delivered now. */
	sigemptyset(&s);
	for (size_t i = 0; i < sizeof(blocked_sigs) / sizeof(blocked_sigs[0]); i++)
		if (!sigismember(&block_prev, blocked_sigs[i]))
			sigaddset(&s, blocked_sigs[i]);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

/* ---------------------------------------------------------------- orphans */

/* Threads that were seized but had not stopped when we gave up on them (in
 * uninterruptible sleep for long): they will stop when they wake, and must
 * then be detached. Swept at every freeze call; the kernel detaches them if
 * pykill exits first. */
#define PK_MAX_ORPHANS 64
static pid_t orphans[PK_MAX_ORPHANS];
static int orphan_sig[PK_MAX_ORPHANS];
static size_t norphans;

static void orphans_sweep(void)
{
	for (size_t i = 0; i < norphans;) {
		int st;
		pid_t r = waitpid(orphans[i], &st, __WALL | WNOHANG);
		bool done = false;

		if (r == orphans[i]) {
			if (WIFSTOPPED(st)) {
				int sig = (st >> 16) == 0 ? WSTOPSIG(st) : orphan_sig[i];

				ptrace(PTRACE_DETACH, orphans[i], NULL, (void *)(long)sig);
			}
			done = true;
		} else if (r < 0 && errno == ECHILD) {
			done = true;
		}
		if (done) {
			orphans[i] = orphans[--norphans];
			orphan_sig[i] = orphan_sig[norphans];
		} else {
			i++;
		}
	}
}

/* ---------------------------------------------------------------- waiting */

static bool is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* Record what waitpid reported for t. Returns true when t is settled
 * (stopped or gone). */
static bool handle_status(struct pk_freeze *fz, struct fthread *t, int st)
{
	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		t->state = T_GONE;
		return true;
	}
	if (!WIFSTOPPED(st))
		return false;
	if ((st >> 16) == PTRACE_EVENT_STOP) {
		/* PTRACE_DETACH puts such a thread back into its group stop. */
		t->group_stop = is_stop_signal(WSTOPSIG(st));
		if (t->group_stop)
			pk_log(PK_LOG_DEBUG, "thread %d of process %d is in a group stop (signal %d)",
			       (int)t->tid, (int)fz->pid, WSTOPSIG(st));
	} else if ((st >> 16) == 0) {
		/* signal-delivery-stop: keep the signal for PTRACE_DETACH. */
		t->sig = WSTOPSIG(st);
		pk_log(PK_LOG_DEBUG, "thread %d of process %d stopped delivering signal %d; it is re-injected at detach",
		       (int)t->tid, (int)fz->pid, t->sig);
	}
	/* Other events are not enabled (options 0); a stop is a stop. */
	if (t->state != T_STOPPED) {
		t->state = T_STOPPED;
		fz->nstopped++;
	}
	return true;
}

/* ---------------------------------------------------------------- exec */

/* An exec by one thread of the target kills the others and waits, holding
 * the process's cred_guard_mutex, until every one of them is reaped; a
 * thread we trace is reaped by us only. PTRACE_SEIZE takes that mutex: a
 * SEIZE made while a thread we hold lies dead would wait for ever on the
 * exec that waits on us. So dead tracees are reaped before the SEIZEs, and
 * a SEIZE that waits is interrupted by a timer whose handler reaps them
 * (the mutex wait is interruptible; the SEIZE restarts after the handler).
 * A timer, not SIGCHLD: every stop we cause sends one, and a handler run
 * per stop would cost more than the SEIZEs. The period bounds the wait. */
#define PK_SEIZE_TICK_NS (50ull * 1000000)
#define PK_SEIZE_TICK_SIG SIGURG /* ignored by default: a late one harms nothing */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* Exits only: a stop must stay for wait_stops to see. */
static bool reap_if_dead(pid_t tid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)tid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0 || si.si_pid != tid)
		return false;
	if (si.si_code != CLD_EXITED && si.si_code != CLD_KILLED && si.si_code != CLD_DUMPED)
		return false;
	return waitpid(tid, NULL, WNOHANG | __WALL) == tid;
}

static struct pk_freeze *volatile seizing; /* for the handler; set during the SEIZEs */

static void reap_on_tick(int sig)
{
	int saved_errno = errno;
	struct pk_freeze *fz = seizing;

	(void)sig;
	if (fz != NULL)
		for (size_t i = 0; i < fz->n; i++)
			if (fz->v[i].state != T_GONE)
				reap_if_dead(fz->v[i].tid);
	errno = saved_errno;
}

/* Settle the dead among the threads held: reaped, gone. */
static void reap_dead(struct pk_freeze *fz)
{
	for (size_t i = 0; i < fz->n; i++) {
		struct fthread *t = &fz->v[i];

		if (t->state == T_GONE || !reap_if_dead(t->tid))
			continue;
		if (t->state == T_STOPPED)
			fz->nstopped--;
		t->state = T_GONE;
	}
}

struct seize_guard {
	bool armed;
	struct sigaction old_act;
	sigset_t old_mask;
};

static timer_t tick_timer;
static bool tick_timer_made;
static pid_t tick_tid;

static void seize_guard_on(struct pk_freeze *fz, struct seize_guard *g)
{
	struct itimerspec its = { .it_interval = { 0, (long)PK_SEIZE_TICK_NS }, .it_value = { 0, (long)PK_SEIZE_TICK_NS } };
	struct sigaction sa;
	sigset_t tick;
	pid_t self = (pid_t)syscall(SYS_gettid);

	reap_dead(fz);
	g->armed = false;
	if (tick_timer_made && tick_tid != self) {
		timer_delete(tick_timer);
		tick_timer_made = false;
	}
	if (!tick_timer_made) {
		struct sigevent sev;

		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = PK_SEIZE_TICK_SIG;
		sev.sigev_notify_thread_id = self; /* the tracer thread, which makes the SEIZEs */
		tick_tid = self;
		if (timer_create(CLOCK_MONOTONIC, &sev, &tick_timer) < 0) {
			pk_log(PK_LOG_DEBUG, "timer_create: %s; an exec during the freeze may delay it", strerror(errno));
			return;
		}
		tick_timer_made = true;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = reap_on_tick;
	sigemptyset(&sa.sa_mask);
	seizing = fz;
	sigaction(PK_SEIZE_TICK_SIG, &sa, &g->old_act);
	sigemptyset(&tick);
	sigaddset(&tick, PK_SEIZE_TICK_SIG);
	pthread_sigmask(SIG_UNBLOCK, &tick, &g->old_mask);
	timer_settime(tick_timer, 0, &its, NULL);
	g->armed = true;
}

static void seize_guard_off(struct seize_guard *g)
{
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	struct timespec zero = { 0, 0 };
	sigset_t tick;

	if (!g->armed)
		return;
	timer_settime(tick_timer, 0, &off, NULL);
	sigemptyset(&tick);
	sigaddset(&tick, PK_SEIZE_TICK_SIG);
	pthread_sigmask(SIG_BLOCK, &tick, NULL);
	while (sigtimedwait(&tick, NULL, &zero) == PK_SEIZE_TICK_SIG)
		;
	sigaction(PK_SEIZE_TICK_SIG, &g->old_act, NULL);
	seizing = NULL;
	if (!sigismember(&g->old_mask, PK_SEIZE_TICK_SIG))
		pthread_sigmask(SIG_UNBLOCK, &tick, NULL);
}

static bool is_ours(const struct pk_freeze *fz, pid_t tid)
{
	for (size_t i = 0; i < fz->n; i++)
		if (fz->v[i].tid == tid)
			return true;
	return false;
}

/* Wait until every T_SEIZED thread in v[from..n) is stopped or gone, or the
 * deadline passes (those stay T_SEIZED). Blocking waitpid could hang for
 * ever on a thread in D state, so we poll each thread and sleep in
 * sigtimedwait(SIGCHLD): every ptrace stop or exit of a tracee sends us a
 * SIGCHLD, and a stop that happens before we take a SIGCHLD is visible to
 * the waitpid after it, so no wake-up is missed while SIGCHLD is blocked.
 * A SIGCHLD of another child of ours is raised again afterwards. */
static int wait_stops(struct pk_freeze *fz, size_t from, uint64_t timeout_ns)
{
	sigset_t chld, old;
	bool foreign = false;
	uint64_t deadline = pk_now_ns() + timeout_ns;
	int rc = 0;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &old);
	for (size_t i = from; i < fz->n && rc == 0; i++) {
		struct fthread *t = &fz->v[i];
		uint64_t slice = 50000;

		while (t->state == T_SEIZED) {
			siginfo_t si;
			struct timespec ts;
			uint64_t now, left;
			int st;
			pid_t r = waitpid(t->tid, &st, __WALL | WNOHANG);

			if (r == t->tid) {
				handle_status(fz, t, st);
				continue;
			}
			if (r < 0) {
				if (errno == EINTR)
					continue;
				if (errno == ECHILD) {
					/* Not our tracee any more: gone through an exec. */
					t->state = T_GONE;
					continue;
				}
				rc = -errno;
				pk_error("wait for thread %d of process %d: %s", (int)t->tid, (int)fz->pid,
					 strerror(errno));
				break;
			}
			now = pk_now_ns();
			if (now >= deadline)
				break;
			left = deadline - now;
			/* No SIGCHLD comes if the program ignores it or set
			 * SA_NOCLDSTOP, or it may go to another thread of pykill:
			 * so sleep in slices, growing from 50 us to 2 ms. */
			if (left > slice)
				left = slice;
			if (slice < 2000000u)
				slice *= 2;
			else
				reap_dead(fz); /* slow to stop: maybe an exec waiting on a
						* death whose SIGCHLD merged with another */
			ts.tv_sec = 0;
			ts.tv_nsec = (long)left;
			if (sigtimedwait(&chld, &si, &ts) == SIGCHLD && si.si_code != CLD_TRAPPED) {
				if (!is_ours(fz, si.si_pid))
					foreign = true;
				else
					reap_dead(fz); /* one held may block an exec (see above) */
			}
		}
	}
	if (!sigismember(&old, SIGCHLD))
		pthread_sigmask(SIG_UNBLOCK, &chld, NULL);
	if (foreign)
		raise(SIGCHLD);
	return rc;
}

/* ---------------------------------------------------------------- release */

static int detach(struct pk_freeze *fz, struct fthread *t)
{
	if (ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->sig) == 0) {
		t->state = T_GONE;
		fz->nstopped--;
		fz->t_last = pk_now_ns();
		return 0;
	}
	return -errno;
}

/* Release every thread; never stop at one failure. */
static void release_all(struct pk_freeze *fz)
{
	size_t late = 0;

	/* Stopped threads first: that is what ends the freeze. */
	for (size_t i = 0; i < fz->n; i++) {
		struct fthread *t = &fz->v[i];
		int rc;

		if (t->state != T_STOPPED)
			continue;
		rc = detach(fz, t);
		if (rc < 0) {
			/* ESRCH: killed (SIGKILL) while stopped; it is exiting and
			 * must be reaped, or it stays a zombie that keeps its
			 * process from being reaped. Anything else: try again. */
			if (rc != -ESRCH)
				pk_log(PK_LOG_WARN, "detach thread %d of process %d: %s", (int)t->tid,
				       (int)fz->pid, strerror(-rc));
			t->state = T_SEIZED;
			fz->nstopped--;
		}
	}
	for (size_t i = 0; i < fz->n; i++)
		if (fz->v[i].state == T_SEIZED)
			late++;
	if (late) {
		/* Threads that had not stopped, or died: wait a little, then
		 * detach or reap them. */
		wait_stops(fz, 0, PK_FREEZE_LATE_NS);
		for (size_t i = 0; i < fz->n; i++) {
			struct fthread *t = &fz->v[i];

			if (t->state == T_STOPPED && detach(fz, t) < 0) {
				t->state = T_SEIZED;
				fz->nstopped--;
			}
			if (t->state == T_SEIZED) {
				pk_log(PK_LOG_WARN,
				       "thread %d of process %d did not stop in time; it is released "
				       "when it does, or when pykill exits",
				       (int)t->tid, (int)fz->pid);
				if (norphans < PK_MAX_ORPHANS) {
					orphan_sig[norphans] = t->sig;
					orphans[norphans++] = t->tid;
				}
				t->state = T_GONE;
			}
		}
	}
	fz->n = 0;
	fz->nstopped = 0;
	if (fz->blocking) {
		fz->blocking = false;
		sig_unblock();
	}
}

/* ---------------------------------------------------------------- API */

int pk_freeze_new(pid_t pid, struct pk_freeze **out)
{
	struct pk_freeze *fz;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (pid <= 0) {
		pk_error("no such process %d", (int)pid);
		return -ESRCH;
	}
	orphans_sweep();
	fz = calloc(1, sizeof(*fz));
	if (fz == NULL) {
		pk_error("freeze process %d: out of memory", (int)pid);
		return -ENOMEM;
	}
	fz->pid = pid;
	*out = fz;
	return 0;
}

static int ft_cmp(const void *a, const void *b)
{
	const struct fthread *x = a, *y = b;

	return (x->tid > y->tid) - (x->tid < y->tid);
}

static const struct fthread *find(const struct pk_freeze *fz, pid_t tid)
{
	size_t lo = 0, hi = fz->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fz->v[mid].tid == tid)
			return &fz->v[mid];
		if (fz->v[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* EPERM from PTRACE_SEIZE also means "exiting" (a zombie thread group
 * leader whose other threads live on) or "already ours". */
static bool seize_eperm_benign(pid_t pid, pid_t tid)
{
	struct pk_status st;

	if (pk_proc_status_quiet(pid, tid, &st) < 0)
		return true; /* vanished meanwhile */
	return st.state == 'Z' || st.state == 'X' || st.tracer_pid == getpid();
}

static bool has_other_threads(pid_t pid)
{
	pid_t *tids;
	size_t n;
	bool more;

	if (pk_proc_tasks(pid, &tids, &n) < 0)
		return false;
	more = n > 1;
	free(tids);
	return more;
}

int pk_freeze_add(struct pk_freeze *fz, const pid_t *tids, size_t n)
{
	struct seize_guard guard;
	uint64_t t_start, t_seized;
	size_t from;
	bool sorted = true;
	int rc = 0;

	if (fz == NULL || (tids == NULL && n > 0))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (n > PK_PROC_MAX_TASKS || fz->n + n > PK_PROC_MAX_TASKS) {
		pk_error("freeze process %d: more than %u threads", (int)fz->pid, PK_PROC_MAX_TASKS);
		return -E2BIG;
	}
	/* Allocate before stopping anything: no failure path while stopped. */
	if (fz->n + n > fz->cap) {
		size_t cap = fz->n + n;
		struct fthread *v = realloc(fz->v, cap * sizeof(*v));

		if (v == NULL) {
			pk_error("freeze process %d: out of memory", (int)fz->pid);
			return -ENOMEM;
		}
		fz->v = v;
		fz->cap = cap;
	}
	orphans_sweep();
	if (!fz->blocking) {
		sig_block();
		fz->blocking = true;
	}

	from = fz->n;
	t_start = pk_now_ns();
	seize_guard_on(fz, &guard);
	for (size_t i = 0; i < n; i++) {
		pid_t tid = tids[i];
		struct fthread *t;

		if (tid <= 0 || find(fz, tid) != NULL)
			continue;
		if (fz->t_first == 0)
			fz->t_first = pk_now_ns();
		if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
			int err = errno;

			if (err == ESRCH)
				continue; /* exited meanwhile */
			if (err == EPERM && seize_eperm_benign(fz->pid, tid))
				continue;
			rc = -err;
			pk_error("attach to thread %d of process %d: %s", (int)tid, (int)fz->pid,
				 strerror(err));
			if (err == EPERM || err == EACCES)
				pk_attach_explain_eperm(fz->pid);
			break;
		}
		t = &fz->v[fz->n];
		t->tid = tid;
		t->state = T_SEIZED;
		t->group_stop = false;
		t->sig = 0;
		atomic_signal_fence(memory_order_release); /* the handler reads v[0..n) */
		fz->n++;
		/* ESRCH: it died just now; the wait reaps it. */
		ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
	}
	seize_guard_off(&guard);

	t_seized = pk_now_ns();
	if (rc == 0) {
		rc = wait_stops(fz, from, PK_FREEZE_WAIT_NS);
		pk_log(PK_LOG_DEBUG, "freeze of process %d: %zu threads seized in %llu us, stopped after %llu us",
		       (int)fz->pid, fz->n - from, (unsigned long long)(t_seized - t_start) / 1000,
		       (unsigned long long)(pk_now_ns() - t_start) / 1000);
	} else {
		/* Those seized can only be detached once stopped. */
		wait_stops(fz, from, PK_FREEZE_WAIT_NS);
	}
	if (rc < 0) {
		release_all(fz);
		fz->t_first = 0;
		return rc;
	}

	/* Keep v sorted by tid, without the threads that are gone. */
	{
		size_t k = 0;

		for (size_t i = 0; i < fz->n; i++) {
			if (fz->v[i].state == T_GONE)
				continue;
			if (fz->v[i].state == T_SEIZED)
				pk_log(PK_LOG_WARN, "thread %d of process %d did not stop within %llu ms",
				       (int)fz->v[i].tid, (int)fz->pid, PK_FREEZE_WAIT_NS / 1000000);
			if (k > 0 && fz->v[k - 1].tid > fz->v[i].tid)
				sorted = false;
			fz->v[k++] = fz->v[i];
		}
		fz->n = k;
	}
	if (!sorted)
		qsort(fz->v, fz->n, sizeof(*fz->v), ft_cmp);
	if (fz->n == 0) {
		struct pk_status st;

		/* Every thread was gone: is the process? A zombie keeps its
		 * /proc entry and its leader refuses SEIZE with EPERM; but a
		 * leader that called pthread_exit is a zombie too, while its
		 * other threads run on. */
		if (!pk_proc_exists(fz->pid, 0) ||
		    (pk_proc_status_quiet(fz->pid, 0, &st) == 0 && (st.state == 'Z' || st.state == 'X') &&
		     !has_other_threads(fz->pid))) {
			pk_error("no such process %d", (int)fz->pid);
			rc = -ESRCH;
		}
		/* Nothing held: nothing to protect. */
		fz->t_first = 0;
		if (fz->blocking) {
			fz->blocking = false;
			sig_unblock();
		}
	}
	return rc;
}

bool pk_freeze_has(const struct pk_freeze *fz, pid_t tid)
{
	const struct fthread *t;

	if (fz == NULL)
		return false;
	t = find(fz, tid);
	return t != NULL && t->state == T_STOPPED;
}

int pk_freeze_pc(const struct pk_freeze *fz, pid_t tid, uint64_t *pc)
{
	if (!pk_freeze_has(fz, tid))
		return -ESRCH;
	return pk_arch_read_pc(tid, pc);
}

int pk_freeze_sp_tp(const struct pk_freeze *fz, pid_t tid, uint64_t *sp, uint64_t *tp)
{
	if (!pk_freeze_has(fz, tid))
		return -ESRCH;
	return pk_arch_read_sp_tp(tid, sp, tp);
}

size_t pk_freeze_count(const struct pk_freeze *fz)
{
	return fz ? fz->nstopped : 0;
}

uint64_t pk_freeze_end(struct pk_freeze *fz)
{
	uint64_t dt = 0;

	if (fz == NULL)
		return 0;
	fz->t_last = 0;
	release_all(fz);
	if (fz->t_first != 0 && fz->t_last > fz->t_first)
		dt = fz->t_last - fz->t_first;
	fz->t_first = 0;
	orphans_sweep();
	return dt;
}

void pk_freeze_free(struct pk_freeze *fz)
{
	if (fz == NULL)
		return;
	if (fz->n > 0 || fz->blocking)
		pk_freeze_end(fz);
	free(fz->v);
	free(fz);
}
