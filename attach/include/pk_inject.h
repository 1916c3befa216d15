/* SPDX-License-Identifier: MIT */
/* attach: remote function calls in one thread of a live process.
 *
 * pk_rcall_run() makes one thread of the target execute
 *     g = fn_ensure(); r = fn_call(arg0, arg1); fn_release(g);
 * (PyGILState_Ensure / PyThreadState_SetAsyncExc / PyGILState_Release) and
 * come back exactly where it was. Design (research notes, "D2"):
 *  - only the chosen thread is stopped (PTRACE_SEIZE + PTRACE_INTERRUPT; never
 *    PTRACE_ATTACH, never PTRACE_O_EXITKILL, no int3, no single-step), and
 *    only if it is parked in a pure sleep, so it holds none of the locks the
 *    called functions take and nobody waits on what its call would do;
 *  - a self-restoring trampoline in a code cave (constant code, shareable by
 *    concurrent pykills) runs the calls on the thread's own stack, below its
 *    red zone, then restores errno, the extended FP state, every register and
 *    the interrupted system call (restarted, or -EINTR as the kernel had it);
 *  - from the moment the registers are written the target completes on its
 *    own: if pykill dies (even SIGKILL) or times out, nothing is left stopped
 *    and nothing is half-restored.
 *
 * What the interrupted system call sees (the thread resumes it the way the
 * kernel restarts a call after a stop with no handler to run):
 *  - -ERESTARTSYS/-ERESTARTNOINTR/-ERESTARTNOHAND: the call is re-executed
 *    with its original arguments; absolute sleeps and reads are exact. Calls
 *    whose remaining time the kernel wrote back at the interruption (select,
 *    pselect6, ppoll) restart from that remainder, so they end later by the
 *    time the thread was borrowed (a few ms), as after any ptrace stop or
 *    SIGSTOP;
 *  - -ERESTART_RESTARTBLOCK (relative nanosleep, poll): restart_syscall
 *    with the kernel's saved expiry: exact, unless a signal handler ran in
 *    the thread during the call (rt_sigreturn clears the restart block):
 *    then the call returns -EINTR, which callers must handle anyway;
 *  - -EINTR (epoll_wait and others that fail on any stop): returned as is,
 *    as the stop itself already decided.
 * A signal for the thread during the call is delivered at once (its
 * handler runs on the stack below the frame); a Python-level SIGINT
 * arriving in that window is only acted on once the restarted call returns.
 *
 * Limits: x86_64 refuses threads with a user shadow stack (the trampoline
 * returns with "ret"); the trampoline's marker is getpid(), so a thread under
 * any seccomp filter is refused; a thread whose stack its own struct pthread
 * does not record (a stack carved from a buffer) is refused. The cave keeps the
 * trampoline after the call (harmless, reused by the next pykill).
 * ptrace requests must all come from one thread of the caller: call
 * pk_rcall_run() from the thread that does every other ptrace work.
 *
 * Every function returns 0 or -errno and describes failures with pk_error()
 * unless said otherwise. */
#ifndef PK_INJECT_H
#define PK_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pk_maps;
struct pk_mem;

#define PK_RCALL_DEFAULT_TIMEOUT_MS 5000u
/* Stack the called functions may use below the frame. */
#define PK_RCALL_STACK_HEADROOM (64u << 10)

/* Progress of a call, as written by the trampoline into its frame. */
enum pk_rcall_step {
	PK_RCALL_NOT_STARTED = 0,
	PK_RCALL_ENTERED = 1,  /* trampoline running, fn_ensure called */
	PK_RCALL_ENSURED = 2,  /* fn_ensure returned, fn_call called */
	PK_RCALL_CALLED = 3,   /* fn_call returned, fn_release called */
	PK_RCALL_RELEASED = 4, /* fn_release returned, restoring */
	PK_RCALL_DONE = 5,     /* marker reached: results final */
};

/* Points where pk_rcall_run() calls spec->hook (tests kill the caller there;
 * -v output). */
enum pk_rcall_phase {
	PK_RCALL_PH_SEIZED,   /* PTRACE_SEIZE done, not interrupted yet */
	PK_RCALL_PH_STOPPED,  /* thread in its PTRACE_EVENT_STOP, nothing changed */
	PK_RCALL_PH_FRAME,    /* frame written to its stack, registers untouched */
	PK_RCALL_PH_ENTERED,  /* registers point at the trampoline, still stopped */
	PK_RCALL_PH_RUNNING,  /* resumed in the trampoline */
	PK_RCALL_PH_STOP,     /* a ptrace stop during the call (syscall or signal) */
	PK_RCALL_PH_MARKER,   /* at the marker, results read, not detached yet */
};

struct pk_rcall_spec {
	uint64_t fn_ensure;  /* run-time addresses in the target; 0 = not called */
	uint64_t fn_call;    /* required */
	uint64_t fn_release; /* 0 = not called; receives fn_ensure's result (int) */
	uint64_t fn_errno;   /* the target libc's __errno_location; 0 = errno not kept */
	uint64_t call_arg0, call_arg1;
	uint64_t cave;       /* trampoline address; 0 = find and install one */
	unsigned timeout_ms; /* whole call; 0 = PK_RCALL_DEFAULT_TIMEOUT_MS */
	/* Optional second opinion from a disassembler (attach/ links none):
	 * pk_code_is_syscall_before() fits. Called with the 16 bytes that end at
	 * the thread's pc. */
	bool (*is_syscall_before)(uint16_t machine, const uint8_t *bytes_before, size_t n, uint64_t end);
	/* Refuse a thread whose system call resumes through restart_syscall
	 * (-ERESTART_RESTARTBLOCK: relative sleeps): the called code may
	 * overwrite the thread's restart block, and the sleep would then end
	 * early with EINTR. The engine copes with it; a caller that must never
	 * cut a sleep short sets this. */
	bool refuse_restart_block;
	/* The caller's memory of the process (not closed here), opened before
	 * the caller read what it chose this call by: the frame and the
	 * trampoline are written into that address space only, so an exec
	 * since then makes the call fail instead of reaching the new program.
	 * NULL: the engine opens its own when it starts. */
	struct pk_mem *mem;
	void (*hook)(enum pk_rcall_phase phase, void *ctx);
	void *hook_ctx;
};

struct pk_rcall_result {
	bool completed;        /* marker reached: the *_ret fields are final */
	enum pk_rcall_step step; /* last step the trampoline reached */
	int64_t ensure_ret, call_ret;
	bool errno_kept;       /* errno saved before and restored after the calls */
	int target_errno;      /* the thread's errno at the hijack */
	long syscall_nr;       /* system call the thread was parked in */
	int64_t syscall_ret;   /* its pending return value (-ERESTART*, -EINTR) */
	uint64_t cave, frame;
	uint64_t hijack_ns;    /* PTRACE_INTERRUPT -> thread resumed in the trampoline */
	uint64_t freeze_ns;    /* total time the thread spent in ptrace stops (the
				* first counted from PTRACE_INTERRUPT: upper bound) */
	uint64_t wall_ns;      /* whole pk_rcall_run() */
	unsigned stops;        /* ptrace stops during the call */
	unsigned signals;      /* signals passed through to the thread */
	unsigned group_stops;  /* job-control stops waited out (PTRACE_LISTEN) */
};

/* Is nr (this architecture's numbering) with these arguments a system call a
 * thread may be borrowed in? Only a pure sleep (nanosleep, clock_nanosleep,
 * select/poll on no descriptor, restart_syscall of a sleep): borrowing a
 * thread postpones what its call does for others, and a GIL holder may wait
 * on exactly that. Never futex. No pk_error(). */
bool pk_rcall_syscall_allowed(long nr, const uint64_t args[6]);

/* Pre-flight, nothing stopped: is tid (a thread of pid) a safe hijack point
 * right now: process not stopped, not traced, thread asleep in an
 * allow-listed system call, no shadow stack? 0 if so; -EAGAIN with the
 * reason in why when it is not (no pk_error(): callers try several
 * threads); other -errno (with pk_error()) when /proc cannot be read. */
int pk_rcall_check_thread(pid_t pid, pid_t tid, char *why, size_t cap);

/* The trampoline as built into pykill (what the cave holds). */
const uint8_t *pk_rcall_trampoline(size_t *len, uint16_t *elf_machine);

/* Code cave (cave.c): the zero tail of the last page of an executable
 * file mapping, after the end of its PT_LOAD's content, big enough for the
 * trampoline. The mapping containing prefer (if non-zero) is tried first,
 * then python, libpython and libc. A tail that already holds the trampoline
 * is reused. -ENOSPC if none fits. */
int pk_cave_find(struct pk_mem *mem, const struct pk_maps *maps, uint64_t prefer, uint64_t *cave);
/* Write the trampoline at cave (if not already there) and verify it by
 * reading it back. Refuses (-EEXIST) bytes that are neither zero nor the
 * trampoline: never overwrite code someone may be running. */
int pk_cave_install(struct pk_mem *mem, uint64_t cave);

/* Run the call in thread tid of pid (see the top of this file). On
 * success (0) out->completed is true. -ETIMEDOUT when the call did not reach
 * its end in time: pykill has detached and the thread finishes it on its
 * own (out->step says where it was). -EAGAIN: not a safe hijack point (the
 * thread was resumed untouched). -ESRCH: the process or thread is gone. */
int pk_rcall_run(pid_t pid, pid_t tid, const struct pk_rcall_spec *spec, struct pk_rcall_result *out);

/* Make the system call thread tid is blocked in return EINTR (instead of
 * being restarted transparently, as after any ptrace stop). *nr gets the
 * call, *was the result it was going to have (-ERESTART*). -EAGAIN if the
 * thread was not in a system call. */
int pk_interrupt_syscall(pid_t pid, pid_t tid, long *nr, int64_t *was);

#endif
