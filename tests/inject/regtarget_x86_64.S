/* regtarget: a raw system call with known values in every register the
 * kernel preserves, in ymm0-15, MXCSR, the x87 control word, CF/DF and the
 * red zone; everything read back right after the syscall instruction.
 * Kept in assembly: no compiler may use these registers in between. */
#include "regtarget.h"

	.text

/* long rt_probe(struct rt_probe *p) */
	.globl rt_probe
	.type rt_probe, @function
rt_probe:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushq %rdi                          /* p, at (%rsp) across the syscall */

	cmpq $0, RT_USE_AVX512(%rdi)
	je 3f
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 RT_ZMM_IN+\i*64(%rdi), %zmm\i
	.endr
	.irp i, 0,1,2,3,4,5,6,7
	kmovq RT_K_IN+\i*8(%rdi), %k\i
	.endr
	jmp 1f
3:
	cmpq $0, RT_USE_AVX(%rdi)
	je 1f
	vmovdqu RT_YMM_IN+0*32(%rdi), %ymm0
	vmovdqu RT_YMM_IN+1*32(%rdi), %ymm1
	vmovdqu RT_YMM_IN+2*32(%rdi), %ymm2
	vmovdqu RT_YMM_IN+3*32(%rdi), %ymm3
	vmovdqu RT_YMM_IN+4*32(%rdi), %ymm4
	vmovdqu RT_YMM_IN+5*32(%rdi), %ymm5
	vmovdqu RT_YMM_IN+6*32(%rdi), %ymm6
	vmovdqu RT_YMM_IN+7*32(%rdi), %ymm7
	vmovdqu RT_YMM_IN+8*32(%rdi), %ymm8
	vmovdqu RT_YMM_IN+9*32(%rdi), %ymm9
	vmovdqu RT_YMM_IN+10*32(%rdi), %ymm10
	vmovdqu RT_YMM_IN+11*32(%rdi), %ymm11
	vmovdqu RT_YMM_IN+12*32(%rdi), %ymm12
	vmovdqu RT_YMM_IN+13*32(%rdi), %ymm13
	vmovdqu RT_YMM_IN+14*32(%rdi), %ymm14
	vmovdqu RT_YMM_IN+15*32(%rdi), %ymm15
1:
	ldmxcsr RT_MXCSR_IN(%rdi)
	fldcw RT_FCW_IN(%rdi)
	movq %rsp, RT_GPR_OUT+8*RT_G_RSP_BEFORE(%rdi)

	/* Red zone: slot i (at -128 + 8*i) = pat ^ (0x100 + i). */
	movq RT_PAT(%rdi), %rax
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14
	movq %rax, %rcx
	xorq $(0x100 + \i), %rcx
	movq %rcx, -128+8*\i(%rsp)
	.endr

	movq %rax, %rbx
	xorq $1, %rbx
	movq %rax, %rbp
	xorq $2, %rbp
	movq %rax, %r8
	xorq $3, %r8
	movq %rax, %r9
	xorq $4, %r9
	movq %rax, %r12
	xorq $5, %r12
	movq %rax, %r13
	xorq $6, %r13
	movq %rax, %r14
	xorq $7, %r14
	movq %rax, %r15
	xorq $8, %r15
	movq RT_A3(%rdi), %r10
	movq RT_A2(%rdi), %rdx
	movq RT_A1(%rdi), %rsi
	movq RT_NR(%rdi), %rax
	movq RT_A0(%rdi), %rdi
	stc
	std
	syscall
	pushfq                              /* the only red-zone slot not patterned */
	popq %r11
	cld
	movq (%rsp), %rcx                   /* p */
	movq %rax, RT_RET(%rcx)
	movq %r11, RT_GPR_OUT+8*RT_G_FLAGS(%rcx)
	movq %rbx, RT_GPR_OUT+8*RT_G_RBX(%rcx)
	movq %rbp, RT_GPR_OUT+8*RT_G_RBP(%rcx)
	movq %r8, RT_GPR_OUT+8*RT_G_R8(%rcx)
	movq %r9, RT_GPR_OUT+8*RT_G_R9(%rcx)
	movq %r12, RT_GPR_OUT+8*RT_G_R12(%rcx)
	movq %r13, RT_GPR_OUT+8*RT_G_R13(%rcx)
	movq %r14, RT_GPR_OUT+8*RT_G_R14(%rcx)
	movq %r15, RT_GPR_OUT+8*RT_G_R15(%rcx)
	movq %rdi, RT_GPR_OUT+8*RT_G_RDI(%rcx)
	movq %rsi, RT_GPR_OUT+8*RT_G_RSI(%rcx)
	movq %rdx, RT_GPR_OUT+8*RT_G_RDX(%rcx)
	movq %r10, RT_GPR_OUT+8*RT_G_R10(%rcx)
	movq %rsp, RT_GPR_OUT+8*RT_G_RSP_AFTER(%rcx)

	xorl %edx, %edx                     /* changed red-zone slots */
	movq RT_PAT(%rcx), %rax
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14
	movq %rax, %r11
	xorq $(0x100 + \i), %r11
	cmpq %r11, -128+8*\i(%rsp)
	setne %bl
	movzbl %bl, %ebx
	addq %rbx, %rdx
	.endr
	movq %rdx, RT_GPR_OUT+8*RT_G_REDZONE_BAD(%rcx)

	stmxcsr RT_MXCSR_OUT(%rcx)
	fnstcw RT_FCW_OUT(%rcx)
	cmpq $0, RT_USE_AVX512(%rcx)
	je 4f
	.irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 %zmm\i, RT_ZMM_OUT+\i*64(%rcx)
	.endr
	.irp i, 0,1,2,3,4,5,6,7
	kmovq %k\i, RT_K_OUT+\i*8(%rcx)
	.endr
	vzeroupper
	jmp 2f
4:
	cmpq $0, RT_USE_AVX(%rcx)
	je 2f
	vmovdqu %ymm0, RT_YMM_OUT+0*32(%rcx)
	vmovdqu %ymm1, RT_YMM_OUT+1*32(%rcx)
	vmovdqu %ymm2, RT_YMM_OUT+2*32(%rcx)
	vmovdqu %ymm3, RT_YMM_OUT+3*32(%rcx)
	vmovdqu %ymm4, RT_YMM_OUT+4*32(%rcx)
	vmovdqu %ymm5, RT_YMM_OUT+5*32(%rcx)
	vmovdqu %ymm6, RT_YMM_OUT+6*32(%rcx)
	vmovdqu %ymm7, RT_YMM_OUT+7*32(%rcx)
	vmovdqu %ymm8, RT_YMM_OUT+8*32(%rcx)
	vmovdqu %ymm9, RT_YMM_OUT+9*32(%rcx)
	vmovdqu %ymm10, RT_YMM_OUT+10*32(%rcx)
	vmovdqu %ymm11, RT_YMM_OUT+11*32(%rcx)
	vmovdqu %ymm12, RT_YMM_OUT+12*32(%rcx)
	vmovdqu %ymm13, RT_YMM_OUT+13*32(%rcx)
	vmovdqu %ymm14, RT_YMM_OUT+14*32(%rcx)
	vmovdqu %ymm15, RT_YMM_OUT+15*32(%rcx)
	vzeroupper
2:
	/* Back to the C defaults for the caller. */
	pushq $0x1f80
	ldmxcsr (%rsp)
	movw $0x37f, (%rsp)
	fldcw (%rsp)
	popq %rax
	movq RT_RET(%rcx), %rax
	popq %rdi
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret
	.size rt_probe, .-rt_probe

/* Entry stubs of the functions pykill injects: count calls made with a
 * misaligned stack or DF set (the trampoline must call like a compiler),
 * then continue in C. r11 is scratch at a call. */
.macro ENTRY name, impl
	.globl \name
	.type \name, @function
\name:
	movq %rsp, %r11
	andq $15, %r11
	cmpq $8, %r11
	je 1f
	lock incq rt_bad_align(%rip)
1:
	pushfq
	popq %r11
	testq $0x400, %r11
	jz 2f
	lock incq rt_bad_df(%rip)
2:
	jmp \impl
	.size \name, .-\name
.endm

/* void rt_clobber_avx512(void): every AVX-512 register is call-clobbered,
 * so a callee may do this; the trampoline's XRSTOR must undo it. */
	.globl rt_clobber_avx512
	.type rt_clobber_avx512, @function
rt_clobber_avx512:
	vpternlogd $0xff, %zmm0, %zmm0, %zmm0
	vpternlogd $0xff, %zmm9, %zmm9, %zmm9
	vpternlogd $0xff, %zmm16, %zmm16, %zmm16
	vpternlogd $0xff, %zmm31, %zmm31, %zmm31
	kxnorq %k1, %k1, %k1
	kxnorq %k7, %k7, %k7
	vzeroupper
	ret
	.size rt_clobber_avx512, .-rt_clobber_avx512

	ENTRY rt_ensure, rt_ensure_c
	ENTRY rt_call, rt_call_c
	ENTRY rt_release, rt_release_c

	.section .note.GNU-stack, "", @progbits
