/* SPDX-License-Identifier: MIT */
/* Layout of struct rt_probe, shared by regtarget.c and regtarget_x86_64.S. */
#ifndef REGTARGET_H
#define REGTARGET_H

#define RT_NR 0         /* syscall number */
#define RT_A0 8         /* rdi */
#define RT_A1 16        /* rsi */
#define RT_A2 24        /* rdx */
#define RT_A3 32        /* r10 */
#define RT_PAT 40       /* base pattern for the registers */
#define RT_USE_AVX 48
#define RT_MXCSR_IN 56  /* 32 bits */
#define RT_FCW_IN 60    /* 16 bits */
#define RT_RET 64
#define RT_GPR_OUT 72   /* 16 slots, see RT_G_* */
#define RT_MXCSR_OUT 200
#define RT_FCW_OUT 204
#define RT_YMM_IN 256   /* 16 x 32 bytes */
#define RT_YMM_OUT 768  /* 16 x 32 bytes */
#define RT_ZMM_IN 1280  /* 32 x 64 bytes, used instead of ymm with AVX-512 */
#define RT_ZMM_OUT 3328
#define RT_K_IN 5376    /* k0-k7, 8 bytes each */
#define RT_K_OUT 5440
#define RT_USE_AVX512 5504
#define RT_SIZE 5568

/* Slots of gpr_out. */
#define RT_G_RBX 0
#define RT_G_RBP 1
#define RT_G_R8 2
#define RT_G_R9 3
#define RT_G_R12 4
#define RT_G_R13 5
#define RT_G_R14 6
#define RT_G_R15 7
#define RT_G_RDI 8
#define RT_G_RSI 9
#define RT_G_RDX 10
#define RT_G_R10 11
#define RT_G_RSP_BEFORE 12
#define RT_G_RSP_AFTER 13
#define RT_G_FLAGS 14
#define RT_G_REDZONE_BAD 15 /* red-zone qwords that changed */

/* Red zone slots patterned: -128(%rsp) .. -16(%rsp); -8 is where pushfq
 * reads the flags back. */
#define RT_REDZONE_SLOTS 15

#endif
