/* SPDX-License-Identifier: MIT */
/* attach/arch/x86_64: what the remote-call engine (inject.c) needs from the
 * architecture. Every architecture provides the same functions (pk_arch_*)
 * and the frame contract below; inject.c holds the arch-neutral logic.
 *
 * Shared with trampoline.S (preprocessed), so the C parts are guarded. */
#ifndef PK_ARCH_PRIV_H
#define PK_ARCH_PRIV_H

/* ---------------------------------------------------------------- frame
 *
 * The per-call data lives on the hijacked thread's own stack, never in the
 * cave (the cave holds constant code only, so several pykills may share it).
 * S is the thread's rsp at the stop.
 *
 *   S            +----------------------------+
 *                | red zone of the interrupted | 128 bytes, never written
 *   S-128        +----------------------------+
 *                | return rip                  | <- "ret $128" pops it and
 *   S-136        | rflags                      |    lands with rsp == S
 *   S-144        | rax rbx rcx rdx rsi rdi rbp |
 *                | r8 ... r15 (pop order up)   |
 *   S-264        +----------------------------+ <- pop area (F_POPAREA)
 *                | padding                     |
 *                | XSAVE image (64-aligned)    |
 *   F+128        +----------------------------+
 *                | header (fn pointers, args,  |
 *                | results, progress)          |
 *   F            +----------------------------+ <- rbx = rsp at entry, 64-aligned
 *                | callee stack grows down     | >= 64 KiB of the stack VMA
 *
 * Why the return works without a register or a per-call slot in the cave:
 * "ret $128" reads rip from [rsp] and sets rsp += 8 + 128 in one
 * instruction, so the slot it reads sits just below the red zone and no
 * instruction ever runs with rsp == S while the slot is still needed. A
 * signal delivered during the pops puts its frame below rsp - 128, i.e. on
 * already-consumed bytes. */
#define PK_X86_F_MAGIC 0
#define PK_X86_F_FN_ERRNO 8
#define PK_X86_F_FN_ENSURE 16
#define PK_X86_F_FN_CALL 24
#define PK_X86_F_FN_RELEASE 32
#define PK_X86_F_ARG0 40
#define PK_X86_F_ARG1 48
#define PK_X86_F_RFBM 56        /* XRSTOR requested-feature bitmap (edx:eax) */
#define PK_X86_F_RET_ENSURE 64  /* out */
#define PK_X86_F_RET_CALL 72    /* out */
#define PK_X86_F_ERRNO_ADDR 80  /* out: &errno of the thread, 0 if fn_errno is 0 */
#define PK_X86_F_ERRNO_VAL 88   /* out: errno at the hijack (32 bits used) */
#define PK_X86_F_STEP 96        /* out: PK_X86_STEP_* reached so far */
#define PK_X86_F_POPAREA 104    /* address of the pop area (S - 264) */
#define PK_X86_F_HEADER 128     /* header size; XSAVE image follows */
#define PK_X86_F_XSAVE PK_X86_F_HEADER

#define PK_X86_REDZONE 128
#define PK_X86_POPAREA_LEN (17 * 8)                          /* 15 GPRs, rflags, rip */
#define PK_X86_POPAREA_BELOW_SP (PK_X86_REDZONE + PK_X86_POPAREA_LEN) /* 264 */

/* Progress written by the trampoline (same values as enum pk_rcall_step). */
#define PK_X86_STEP_ENTERED 1
#define PK_X86_STEP_ENSURED 2
#define PK_X86_STEP_CALLED 3
#define PK_X86_STEP_RELEASED 4

/* Marker: getpid(MAGIC, frame) executed from inside the cave once every
 * result is stored; the tracer stops there (syscall-entry-stop) to read the
 * results and detach. getpid ignores its arguments and cannot block. */
#define PK_X86_MARKER_NR 39 /* __NR_getpid */
#define PK_X86_MARKER_MAGIC 0x4c4c41435f4b5021 /* "!PK_CALL" */
#define PK_X86_FRAME_MAGIC 0x454d4152465f4b50  /* "PK_FRAME" */

#ifndef __ASSEMBLER__

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "pk_inject.h"

/* Everything saved from the thread at the stop. */
struct pk_arch_state {
	struct user_regs_struct regs;
	uint8_t *xstate;     /* NT_X86_XSTATE image, standard format */
	size_t xstate_len;
	uint64_t rfbm;       /* components the trampoline's XRSTOR restores */
};

/* The frame image to write into the target: bytes [lo, lo + len). */
struct pk_arch_frame {
	uint64_t lo;         /* == frame base (rbx/rsp at entry) */
	size_t len;
	uint8_t *image;
};

struct pk_arch_results {
	uint64_t magic;
	int64_t ensure_ret, call_ret;
	uint64_t errno_addr;
	int errno_val;
	unsigned step;
};

/* Learn what the CPU needs (once; slow in a VM), before any thread is
 * stopped. -ENOTSUP if the engine cannot work on it. */
int pk_arch_init(void);

/* ELF machine of this architecture (for disassemblers). */
uint16_t pk_arch_elf_machine(void);

/* PTRACE_GETREGS + PTRACE_GETREGSET(NT_X86_XSTATE) of a thread in a
 * ptrace-stop. */
int pk_arch_save(pid_t tid, struct pk_arch_state *st);
void pk_arch_state_free(struct pk_arch_state *st);

uint64_t pk_arch_sp(const struct pk_arch_state *st);
uint64_t pk_arch_pc(const struct pk_arch_state *st);

/* Length of the system call instruction that ends at pc when the thread is
 * parked in a system call. */
#define PK_ARCH_SYSCALL_INSN_LEN 2

/* Is the stop inside a system call the kernel will restart or fail with
 * EINTR (the only states the trampoline knows how to resume)? Fills the
 * system call number and the pending return value; writes the reason into
 * why otherwise. */
int pk_arch_parked_syscall(const struct pk_arch_state *st, long *nr, int64_t *ret, char *why, size_t cap);
/* Do these bytes (ending at the pc) hold the system call instruction? */
bool pk_arch_is_syscall_insn(const uint8_t *before, size_t n);
/* Is nr with these arguments a pure sleep, a system call a thread may be
 * borrowed in (see regs.c)? */
bool pk_arch_syscall_allowed(long nr, const uint64_t args[6]);
void pk_arch_syscall_args(const struct pk_arch_state *st, uint64_t args[6]);
/* The thread pointer (x86_64: fs_base == pthread_self() with glibc). */
uint64_t pk_arch_thread_pointer(const struct pk_arch_state *st);
/* The program counter of a thread in a ptrace stop. -errno. */
int pk_arch_read_pc(pid_t tid, uint64_t *pc);
/* The stack pointer and the thread pointer of a thread in a ptrace stop. */
int pk_arch_read_sp_tp(pid_t tid, uint64_t *sp, uint64_t *tp);
/* Thread-level features that make the trampoline unsafe (shadow stack). */
int pk_arch_check_thread(pid_t pid, pid_t tid, char *why, size_t cap);

/* Frame for this state and call: everything below sp - red zone. Fails
 * with -EINVAL when the state cannot be resumed by the trampoline. */
int pk_arch_frame_build(const struct pk_arch_state *st, const struct pk_rcall_spec *spec,
			struct pk_arch_frame *fr);
void pk_arch_frame_free(struct pk_arch_frame *fr);
/* Decode the header of a frame read back from the target; -EPROTO if it is
 * not one of ours (magic). */
int pk_arch_frame_results(const uint8_t *hdr, size_t len, struct pk_arch_results *res);
#define PK_ARCH_FRAME_HEADER PK_X86_F_HEADER

/* Make the system call the stopped thread is parked in return ret (e.g.
 * -EINTR) instead of being restarted. Only at a stop inside get_signal()
 * (PTRACE_INTERRUPT's event stop). */
int pk_arch_fail_syscall(pid_t tid, const struct pk_arch_state *st, int64_t ret);

/* Point the stopped thread at the trampoline: rip = cave, rsp = rbx =
 * frame, orig_rax = -1, TF and DF cleared. From here the thread finishes on
 * its own. */
int pk_arch_enter(pid_t tid, const struct pk_arch_state *st, uint64_t cave, uint64_t frame);

/* Is this system-call entry (PTRACE_GET_SYSCALL_INFO: AUDIT_ARCH_*, number,
 * arguments) the trampoline's marker for this frame? */
bool pk_arch_is_marker(uint32_t audit_arch, uint64_t nr, const uint64_t args[6], uint64_t frame);

/* The same from the registers of a thread in a syscall stop (kernels
 * without PTRACE_GET_SYSCALL_INFO, before 5.3): pc is where the marker's
 * syscall instruction ends. Entry and exit stop both qualify. */
bool pk_arch_at_marker(pid_t tid, uint64_t pc, uint64_t frame);

/* The trampoline as linked into pykill: its bytes, and the offset of the
 * instruction after the marker system call (the pc the kernel reports at
 * the marker's syscall-entry-stop, relative to the cave). */
const uint8_t *pk_arch_trampoline(size_t *len, size_t *marker_end);

#endif /* __ASSEMBLER__ */
#endif
