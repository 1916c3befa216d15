/* The self-restoring trampoline, copied into a code cave of the target.
 *
 * Constraints (see arch-priv.h for the frame):
 *  - position independent, no relocation: only rbx- and rsp-relative data,
 *    plus one rip-relative constant inside the blob itself (local label, so
 *    the assembler resolves it; the unit test disassembles the blob and
 *    checks no operand leaves it);
 *  - constant: identical bytes for every call, so concurrent pykills may
 *    install it at the same place and find it already there;
 *  - needs nothing from pykill once entered: it ends by restoring the
 *    interrupted context itself, so the tracer may die at any instant.
 *
 * Entry state (set by pk_arch_enter): rip = start, rbx = rsp = frame base
 * F (64-byte aligned), orig_rax = -1 (no syscall restart on this path),
 * TF = DF = 0, every other register as interrupted.
 * It lives in .rodata: pykill never executes it itself. */
#include "arch-priv.h"

	.section .rodata.pk_trampoline, "a", @progbits
	.balign 64
	.globl pk_x86_tramp_start
	.hidden pk_x86_tramp_start
	.globl pk_x86_tramp_marker_end
	.hidden pk_x86_tramp_marker_end
	.globl pk_x86_tramp_end
	.hidden pk_x86_tramp_end

pk_x86_tramp_start:
	cld
	movq %rbx, %rsp
	andq $-16, %rsp                    /* ABI: rsp % 16 == 0 at each call */
	movq $PK_X86_STEP_ENTERED, PK_X86_F_STEP(%rbx)
	/* A clean FP environment for the callees, like the kernel gives a
	 * signal handler: the interrupted code may run with any rounding mode
	 * or x87 precision. Its own values come back with the XRSTOR. */
	fninit
	ldmxcsr .Lmxcsr_default(%rip)

	/* errno is memory, not a register: keep its value across the calls. */
	movq PK_X86_F_FN_ERRNO(%rbx), %r11
	testq %r11, %r11
	jz 1f
	xorl %eax, %eax
	call *%r11
	movq %rax, PK_X86_F_ERRNO_ADDR(%rbx)
	movl (%rax), %ecx
	movl %ecx, PK_X86_F_ERRNO_VAL(%rbx)
1:
	/* g = ensure() */
	xorl %eax, %eax
	movq PK_X86_F_FN_ENSURE(%rbx), %r11
	testq %r11, %r11
	jz 2f
	cld
	call *%r11
2:
	movq %rax, PK_X86_F_RET_ENSURE(%rbx)
	movq $PK_X86_STEP_ENSURED, PK_X86_F_STEP(%rbx)

	/* r = call(arg0, arg1); al = 0: no vector registers (varargs ABI) */
	movq PK_X86_F_ARG0(%rbx), %rdi
	movq PK_X86_F_ARG1(%rbx), %rsi
	movq PK_X86_F_FN_CALL(%rbx), %r11
	xorl %eax, %eax
	cld
	call *%r11
	movq %rax, PK_X86_F_RET_CALL(%rbx)
	movq $PK_X86_STEP_CALLED, PK_X86_F_STEP(%rbx)

	/* release(g) */
	movq PK_X86_F_FN_RELEASE(%rbx), %r11
	testq %r11, %r11
	jz 3f
	movl PK_X86_F_RET_ENSURE(%rbx), %edi
	xorl %eax, %eax
	cld
	call *%r11
3:
	movq $PK_X86_STEP_RELEASED, PK_X86_F_STEP(%rbx)

	movq PK_X86_F_ERRNO_ADDR(%rbx), %rax
	testq %rax, %rax
	jz 4f
	movl PK_X86_F_ERRNO_VAL(%rbx), %ecx
	movl %ecx, (%rax)
4:
	/* Marker for the tracer: every result is in the frame. */
	movl $PK_X86_MARKER_NR, %eax
	movabsq $PK_X86_MARKER_MAGIC, %rdi
	movq %rbx, %rsi
	syscall
pk_x86_tramp_marker_end:

	/* Extended state (x87, MXCSR, xmm/ymm/zmm, opmasks...) as saved by
	 * the tracer; components not in the image's xstate_bv go back to
	 * their init state, which is what they were. */
	movl PK_X86_F_RFBM(%rbx), %eax
	movl PK_X86_F_RFBM+4(%rbx), %edx
	xrstor64 PK_X86_F_XSAVE(%rbx)

	/* General registers, flags, then rip and rsp in one instruction. */
	movq PK_X86_F_POPAREA(%rbx), %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	popfq
	retq $PK_X86_REDZONE

	.balign 4
.Lmxcsr_default:
	.long 0x1f80
pk_x86_tramp_end:

	.section .note.GNU-stack, "", @progbits
