/* SPDX-License-Identifier: MIT */
/* x86_64 part of the remote-call engine: registers, extended state, the
 * system-call restart rules, the frame and the trampoline's bytes. */
#include "arch-priv.h"
#include "attach-priv.h"
#include "pk_attach.h"
#include "pk_log.h"

#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/audit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Kernel-internal return values a tracer sees at a stop inside a syscall
 * (include/linux/errno.h); the kernel turns them into a restart or EINTR
 * after get_signal(), which is where PTRACE_INTERRUPT stops the thread. */
#define K_ERESTARTSYS 512
#define K_ERESTARTNOINTR 513
#define K_ERESTARTNOHAND 514
#define K_ERESTART_RESTARTBLOCK 516

_Static_assert(PK_X86_STEP_ENTERED == PK_RCALL_ENTERED && PK_X86_STEP_ENSURED == PK_RCALL_ENSURED &&
		       PK_X86_STEP_CALLED == PK_RCALL_CALLED && PK_X86_STEP_RELEASED == PK_RCALL_RELEASED,
	       "trampoline steps match enum pk_rcall_step");
_Static_assert(PK_X86_POPAREA_BELOW_SP == 264, "pop area layout");

#define USER_CS_64 0x33 /* __USER_CS: 64-bit user code segment */
#define FLAG_TF 0x100u
#define FLAG_DF 0x400u

/* Standard-format XSAVE layout. */
#define XSAVE_LEGACY_LEN 512
#define XSAVE_HEADER_LEN 64
#define XSAVE_XSTATE_BV 512
#define XSAVE_XCOMP_BV 520
/* Keep the pykill-side buffer bounded whatever the CPU says. */
#define XSAVE_MAX_LEN (64u << 10)

extern const uint8_t pk_x86_tramp_start[];
extern const uint8_t pk_x86_tramp_marker_end[];
extern const uint8_t pk_x86_tramp_end[];

uint16_t pk_arch_elf_machine(void)
{
	return EM_X86_64;
}

const uint8_t *pk_arch_trampoline(size_t *len, size_t *marker_end)
{
	if (len != NULL)
		*len = (size_t)(pk_x86_tramp_end - pk_x86_tramp_start);
	if (marker_end != NULL)
		*marker_end = (size_t)(pk_x86_tramp_marker_end - pk_x86_tramp_start);
	return pk_x86_tramp_start;
}

/* ---------------------------------------------------------------- state */

/* What CPUID says about XSAVE, read once: CPUID traps to the hypervisor in
 * a VM (~13 us each here), and must not run while the thread is stopped. */
static struct {
	bool done, xsave;
	size_t max_len;          /* largest standard-format image */
	uint64_t fits_end[64];   /* offset + size of component i, 0 if none */
	uint64_t dynamic;        /* XFD-capable components (AMX tile data + config) */
} cpu;

int pk_arch_init(void)
{
	unsigned a, b, c, d, i;

	if (cpu.done)
		return cpu.xsave ? 0 : -ENOTSUP;
	cpu.done = true;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
		return -ENOTSUP;
	__cpuid_count(0xd, 0, a, b, c, d);
	cpu.max_len = c > b ? c : b;
	if (cpu.max_len < XSAVE_LEGACY_LEN + XSAVE_HEADER_LEN || cpu.max_len > XSAVE_MAX_LEN)
		return -ENOTSUP;
	for (i = 2; i < 63; i++) {
		unsigned size, off, ecx, edx;

		if (!(((uint64_t)d << 32 | a) & (1ull << i)))
			continue;
		__cpuid_count(0xd, i, size, off, ecx, edx);
		(void)edx;
		if (size != 0)
			cpu.fits_end[i] = (uint64_t)off + size;
		if (ecx & 4u)
			cpu.dynamic |= 1ull << i;
	}
	if (cpu.dynamic & (1ull << 18)) /* XTILEDATA goes with XTILECFG */
		cpu.dynamic |= 1ull << 17;
	cpu.xsave = true;
	return 0;
}

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

/* Components the trampoline's XRSTOR may restore for this image:
 * - enabled in XCR0 (XRSTOR faults on others);
 * - entirely inside the image the kernel gave us;
 * - not a dynamically enabled component (XFD-capable, i.e. AMX tile data,
 *   plus its tile config) unless the thread has it in use: XRSTOR of an
 *   XFD-armed component raises #NM, which the kernel turns into SIGILL for
 *   a thread without AMX permission. Such a component the callees cannot
 *   have touched either. */
static uint64_t xrstor_mask(const uint8_t *img, size_t len)
{
	uint64_t xcr0 = xgetbv0(), xstate_bv, mask = xcr0 & 3u;
	unsigned i;

	memcpy(&xstate_bv, img + XSAVE_XSTATE_BV, sizeof(xstate_bv));
	for (i = 2; i < 63; i++)
		if ((xcr0 & (1ull << i)) && cpu.fits_end[i] != 0 && cpu.fits_end[i] <= len)
			mask |= 1ull << i;
	return mask & ~(cpu.dynamic & ~xstate_bv);
}

int pk_arch_save(pid_t tid, struct pk_arch_state *st)
{
	struct iovec iov;
	size_t cap;
	uint64_t xcomp_bv;
	int err;

	memset(st, 0, sizeof(*st));
	if (ptrace(PTRACE_GETREGS, tid, NULL, &st->regs) < 0) {
		err = errno;
		pk_error("read registers of thread %d: %s", (int)tid, strerror(err));
		return -err;
	}
	if (pk_arch_init() < 0) {
		pk_error("save FP state of thread %d: CPU or kernel without XSAVE is not supported", (int)tid);
		return -ENOTSUP;
	}
	cap = (cpu.max_len + 63) & ~(size_t)63;
	st->xstate = aligned_alloc(64, cap);
	if (st->xstate == NULL) {
		pk_error("save FP state of thread %d: out of memory", (int)tid);
		return -ENOMEM;
	}
	memset(st->xstate, 0, cap);
	iov.iov_base = st->xstate;
	iov.iov_len = cap;
	if (ptrace(PTRACE_GETREGSET, tid, (void *)(uintptr_t)NT_X86_XSTATE, &iov) < 0) {
		err = errno;
		pk_error("read FP state (NT_X86_XSTATE) of thread %d: %s", (int)tid, strerror(err));
		goto fail;
	}
	st->xstate_len = iov.iov_len;
	if (st->xstate_len < XSAVE_LEGACY_LEN + XSAVE_HEADER_LEN || st->xstate_len > cap) {
		pk_error("read FP state of thread %d: kernel returned %zu bytes", (int)tid, st->xstate_len);
		err = EPROTO;
		goto fail;
	}
	memcpy(&xcomp_bv, st->xstate + XSAVE_XCOMP_BV, sizeof(xcomp_bv));
	if (xcomp_bv != 0) {
		/* The regset is the standard (uncompacted) format; XRSTOR
		 * would fault on anything else. */
		pk_error("read FP state of thread %d: compacted XSAVE image (xcomp_bv %#" PRIx64 ")", (int)tid,
			 xcomp_bv);
		err = EPROTO;
		goto fail;
	}
	st->rfbm = xrstor_mask(st->xstate, st->xstate_len);
	return 0;
fail:
	free(st->xstate);
	st->xstate = NULL;
	return -err;
}

void pk_arch_state_free(struct pk_arch_state *st)
{
	free(st->xstate);
	st->xstate = NULL;
	st->xstate_len = 0;
}

uint64_t pk_arch_sp(const struct pk_arch_state *st)
{
	return st->regs.rsp;
}

uint64_t pk_arch_pc(const struct pk_arch_state *st)
{
	return st->regs.rip;
}

/* ---------------------------------------------------------------- syscall */

int pk_arch_parked_syscall(const struct pk_arch_state *st, long *nr, int64_t *ret, char *why, size_t cap)
{
	int64_t rax = (int64_t)st->regs.rax;
	long orig = (long)st->regs.orig_rax;

	*nr = orig;
	*ret = rax;
	if (st->regs.cs != USER_CS_64) {
		snprintf(why, cap, "thread runs 32-bit code (cs %#llx)", (unsigned long long)st->regs.cs);
		return -EAGAIN;
	}
	if (orig < 0) {
		snprintf(why, cap, "thread is not inside a system call");
		return -EAGAIN;
	}
	switch (rax) {
	case -K_ERESTARTSYS:
	case -K_ERESTARTNOINTR:
	case -K_ERESTARTNOHAND:
	case -K_ERESTART_RESTARTBLOCK:
	case -EINTR:
		return 0;
	default:
		snprintf(why, cap, "system call %ld was not interrupted (return value %" PRId64 ")", orig, rax);
		return -EAGAIN;
	}
}

bool pk_arch_is_syscall_insn(const uint8_t *before, size_t n)
{
	/* 0f 05 = syscall. int $0x80 (cd 80) would mean the 32-bit table. */
	return n >= 2 && before[n - 2] == 0x0f && before[n - 1] == 0x05;
}

bool pk_arch_syscall_allowed(long nr, const uint64_t args[6])
{
	/* Only a pure sleep: a call nobody else can be waiting on. Borrowing a
	 * thread postpones whatever its system call does for others (drain a
	 * pipe, accept, reap a child, release a peer), and a GIL holder may be
	 * waiting on exactly that while the borrowed thread waits for the GIL:
	 * a deadlock. A sleep only delays the thread itself, which needs the
	 * GIL next anyway. select/poll with no descriptor are sleeps (Python
	 * 2.7's time.sleep is select(0, ...)). Never futex. */
	switch (nr) {
	case SYS_clock_nanosleep:
	case SYS_nanosleep:
	case SYS_restart_syscall: /* the caller checks that it restarts a sleep */
		return true;
	case SYS_select:
	case SYS_pselect6:
		return args[0] == 0; /* nfds */
	case SYS_poll:
	case SYS_ppoll:
		return args[1] == 0; /* nfds */
	default:
		return false;
	}
}

void pk_arch_syscall_args(const struct pk_arch_state *st, uint64_t args[6])
{
	args[0] = st->regs.rdi;
	args[1] = st->regs.rsi;
	args[2] = st->regs.rdx;
	args[3] = st->regs.r10;
	args[4] = st->regs.r8;
	args[5] = st->regs.r9;
}

/* x86_64 with 4-level paging: user addresses lie below 2^47 (5-level
 * paging hands out higher ones only to a process that asks with mmap
 * hints; CPython does not). */
uint64_t pk_user_addr_end(void)
{
	return 1ull << 47;
}

uint64_t pk_arch_thread_pointer(const struct pk_arch_state *st)
{
	return st->regs.fs_base;
}

int pk_arch_check_thread(pid_t pid, pid_t tid, char *why, size_t cap)
{
	char buf[8192];
	const char *p;
	size_t len;
	int ret;

	/* A user shadow stack would reject the trampoline's final "ret"
	 * (and return-address tricks in general): refuse rather than crash. */
	ret = pk_proc_read_small(pid, tid, "status", buf, sizeof(buf), &len);
	if (ret < 0)
		return ret;
	p = strstr(buf, "\nx86_Thread_features:");
	if (p != NULL) {
		const char *le = strchr(p + 1, '\n');
		size_t n = le != NULL ? (size_t)(le - p) : strlen(p);
		char line[256];

		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, p, n);
		line[n] = '\0';
		if (strstr(line, "shstk") != NULL) {
			snprintf(why, cap, "thread %d runs with a shadow stack (not supported)", (int)tid);
			return -EAGAIN;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- frame */

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static uint64_t get64(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

int pk_arch_frame_build(const struct pk_arch_state *st, const struct pk_rcall_spec *spec,
			struct pk_arch_frame *fr)
{
	const struct user_regs_struct *r = &st->regs;
	uint64_t sp = r->rsp, rip = r->rip, rax = r->rax, popa, lo, xlen;
	int64_t ret = (int64_t)r->rax;
	uint64_t v[17];
	size_t i, len;

	memset(fr, 0, sizeof(*fr));
	if (st->xstate == NULL || st->xstate_len < XSAVE_LEGACY_LEN + XSAVE_HEADER_LEN)
		return -EINVAL;
	xlen = ((uint64_t)st->xstate_len + 63) & ~(uint64_t)63;
	if (sp < (1u << 20) + PK_X86_POPAREA_BELOW_SP + PK_X86_F_HEADER + xlen)
		return -EINVAL;

	/* Where the interrupted code continues, done the way the kernel
	 * would if it restarted the call itself (arch_do_signal_or_restart):
	 * re-execute the syscall instruction with the original number, or
	 * restart_syscall for a RESTARTBLOCK call (its restart_block, e.g. the
	 * absolute expiry of a relative sleep, is still in the kernel); -EINTR
	 * is returned as is. */
	if ((long)r->orig_rax >= 0) {
		switch (ret) {
		case -K_ERESTARTSYS:
		case -K_ERESTARTNOINTR:
		case -K_ERESTARTNOHAND:
			rax = r->orig_rax;
			rip -= 2;
			break;
		case -K_ERESTART_RESTARTBLOCK:
			rax = SYS_restart_syscall;
			rip -= 2;
			break;
		default:
			break;
		}
	}

	popa = sp - PK_X86_POPAREA_BELOW_SP;
	lo = (popa - PK_X86_F_HEADER - xlen) & ~(uint64_t)63;
	len = (size_t)(sp - PK_X86_REDZONE - lo);
	fr->image = calloc(1, len);
	if (fr->image == NULL)
		return -ENOMEM;
	fr->lo = lo;
	fr->len = len;

	put64(fr->image, PK_X86_F_MAGIC, PK_X86_FRAME_MAGIC);
	put64(fr->image, PK_X86_F_FN_ERRNO, spec->fn_errno);
	put64(fr->image, PK_X86_F_FN_ENSURE, spec->fn_ensure);
	put64(fr->image, PK_X86_F_FN_CALL, spec->fn_call);
	put64(fr->image, PK_X86_F_FN_RELEASE, spec->fn_release);
	put64(fr->image, PK_X86_F_ARG0, spec->call_arg0);
	put64(fr->image, PK_X86_F_ARG1, spec->call_arg1);
	put64(fr->image, PK_X86_F_RFBM, st->rfbm);
	put64(fr->image, PK_X86_F_POPAREA, popa);
	memcpy(fr->image + PK_X86_F_XSAVE, st->xstate, st->xstate_len);

	/* In the trampoline's pop order. */
	v[0] = r->r15;
	v[1] = r->r14;
	v[2] = r->r13;
	v[3] = r->r12;
	v[4] = r->r11;
	v[5] = r->r10;
	v[6] = r->r9;
	v[7] = r->r8;
	v[8] = r->rbp;
	v[9] = r->rdi;
	v[10] = r->rsi;
	v[11] = r->rdx;
	v[12] = r->rcx;
	v[13] = r->rbx;
	v[14] = rax;
	v[15] = r->eflags;
	v[16] = rip;
	for (i = 0; i < 17; i++)
		put64(fr->image, (size_t)(popa - lo) + 8 * i, v[i]);
	return 0;
}

void pk_arch_frame_free(struct pk_arch_frame *fr)
{
	free(fr->image);
	fr->image = NULL;
	fr->len = 0;
}

int pk_arch_frame_results(const uint8_t *hdr, size_t len, struct pk_arch_results *res)
{
	memset(res, 0, sizeof(*res));
	if (len < PK_X86_F_HEADER)
		return -EPROTO;
	res->magic = get64(hdr, PK_X86_F_MAGIC);
	res->ensure_ret = (int64_t)get64(hdr, PK_X86_F_RET_ENSURE);
	res->call_ret = (int64_t)get64(hdr, PK_X86_F_RET_CALL);
	res->errno_addr = get64(hdr, PK_X86_F_ERRNO_ADDR);
	res->errno_val = (int)(uint32_t)get64(hdr, PK_X86_F_ERRNO_VAL);
	res->step = (unsigned)get64(hdr, PK_X86_F_STEP);
	return res->magic == PK_X86_FRAME_MAGIC ? 0 : -EPROTO;
}

/* ---------------------------------------------------------------- entry */

int pk_arch_enter(pid_t tid, const struct pk_arch_state *st, uint64_t cave, uint64_t frame)
{
	struct user_regs_struct r = st->regs;
	int err;

	r.rip = cave;
	r.rsp = frame;
	r.rbx = frame;
	r.rax = 0;
	/* -1: no system call in progress, so the kernel does not rewind our
	 * rip on the way out of this stop (gdb amd64_linux_write_pc, CRIU). */
	r.orig_rax = (unsigned long long)-1;
	r.eflags &= ~(unsigned long long)(FLAG_TF | FLAG_DF);
	if (ptrace(PTRACE_SETREGS, tid, NULL, &r) < 0) {
		err = errno;
		pk_error("write registers of thread %d: %s", (int)tid, strerror(err));
		return -err;
	}
	return 0;
}

bool pk_arch_is_marker(uint32_t audit_arch, uint64_t nr, const uint64_t args[6], uint64_t frame)
{
	return audit_arch == AUDIT_ARCH_X86_64 && nr == PK_X86_MARKER_NR && args[0] == PK_X86_MARKER_MAGIC &&
	       args[1] == frame;
}

int pk_arch_read_pc(pid_t tid, uint64_t *pc)
{
	struct user_regs_struct r;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &r) < 0)
		return -errno;
	*pc = r.rip;
	return 0;
}

int pk_arch_read_sp_tp(pid_t tid, uint64_t *sp, uint64_t *tp)
{
	struct user_regs_struct r;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &r) < 0)
		return -errno;
	*sp = r.rsp;
	*tp = r.fs_base;
	return 0;
}

bool pk_arch_at_marker(pid_t tid, uint64_t pc, uint64_t frame)
{
	struct user_regs_struct r;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &r) < 0)
		return false;
	return r.rip == pc && r.orig_rax == PK_X86_MARKER_NR && r.rdi == PK_X86_MARKER_MAGIC && r.rsi == frame &&
	       r.cs == USER_CS_64;
}

int pk_arch_fail_syscall(pid_t tid, const struct pk_arch_state *st, int64_t ret)
{
	struct user_regs_struct r = st->regs;
	int err;

	/* At a stop inside get_signal() the kernel decides on the way out
	 * whether to restart: it restarts only for -ERESTART* in rax, so a
	 * plain error value makes the interrupted call return it. orig_rax
	 * stays: the thread is still "in" that system call. */
	r.rax = (unsigned long long)ret;
	if (ptrace(PTRACE_SETREGS, tid, NULL, &r) < 0) {
		err = errno;
		pk_error("write registers of thread %d: %s", (int)tid, strerror(err));
		return -err;
	}
	return 0;
}
