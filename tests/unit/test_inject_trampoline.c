/* SPDX-License-Identifier: MIT */
/* The trampoline as linked into pykill, decoded with capstone: position
 * independent (every RIP-relative operand and branch stays inside the
 * blob, calls only through registers), exactly one system call, ends with
 * the single-instruction return to the interrupted context. Plus the
 * allow-list of hijack points. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <capstone/capstone.h>
#include <elf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "pk_inject.h"

static void decodes_to_the_return(void **state)
{
	const uint8_t *code, *p;
	uint16_t machine;
	size_t len, left, nsys = 0, ncalls = 0;
	uint64_t addr = 0;
	bool saw_ret = false;
	cs_insn *insn;
	csh h;

	(void)state;
	code = pk_rcall_trampoline(&len, &machine);
	assert_non_null(code);
	assert_true(len > 16 && len <= 512);
	if (machine != EM_X86_64)
		skip();
	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(h);
	p = code;
	left = len;
	while (left > 0 && !saw_ret) {
		const cs_x86 *x;
		uint8_t i;

		assert_true(cs_disasm_iter(h, &p, &left, &addr, insn));
		x = &insn->detail->x86;
		for (i = 0; i < x->op_count; i++) {
			const cs_x86_op *op = &x->operands[i];

			if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP) {
				int64_t target = (int64_t)insn->address + insn->size + op->mem.disp;

				assert_true(target >= 0 && (uint64_t)target + 4 <= len);
			}
			if (op->type == X86_OP_MEM && op->mem.base == X86_REG_INVALID &&
			    op->mem.index == X86_REG_INVALID && op->mem.segment == X86_REG_INVALID)
				fail_msg("absolute memory operand at +%#lx", (unsigned long)insn->address);
		}
		switch (insn->id) {
		case X86_INS_SYSCALL:
			nsys++;
			break;
		case X86_INS_CALL:
			/* Only through a register: no relative target to relocate. */
			assert_int_equal(x->op_count, 1);
			assert_int_equal(x->operands[0].type, X86_OP_REG);
			ncalls++;
			break;
		case X86_INS_JMP:
		case X86_INS_JE:
		case X86_INS_JNE:
			assert_int_equal(x->operands[0].type, X86_OP_IMM);
			assert_true(x->operands[0].imm >= 0 && (uint64_t)x->operands[0].imm < len);
			break;
		case X86_INS_RET:
			/* "ret $128": rip and rsp in one instruction, skipping
			 * the red zone. */
			assert_int_equal(x->op_count, 1);
			assert_int_equal(x->operands[0].imm, 128);
			saw_ret = true;
			break;
		case X86_INS_INT3:
		case X86_INS_INT:
			fail_msg("trap instruction in the trampoline");
			break;
		default:
			break;
		}
	}
	assert_true(saw_ret);
	assert_int_equal(nsys, 1);
	assert_int_equal(ncalls, 4); /* __errno_location, ensure, call, release */
	/* What follows the return is data (the default MXCSR), within 8 bytes. */
	assert_true(left <= 8);
	cs_free(insn, 1);
	cs_close(&h);
}

static void same_bytes_every_time(void **state)
{
	const uint8_t *a, *b;
	size_t la, lb;

	(void)state;
	a = pk_rcall_trampoline(&la, NULL);
	b = pk_rcall_trampoline(&lb, NULL);
	assert_ptr_equal(a, b);
	assert_int_equal(la, lb);
}

static void allow_list(void **state)
{
	(void)state;
	const uint64_t none[6] = { 0 }, fds[6] = { 3, 1, 0, 0, 0, 0 };

	/* Pure sleeps only. */
	assert_true(pk_rcall_syscall_allowed(SYS_clock_nanosleep, none));
	assert_true(pk_rcall_syscall_allowed(SYS_nanosleep, none));
	assert_true(pk_rcall_syscall_allowed(SYS_restart_syscall, none));
	assert_true(pk_rcall_syscall_allowed(SYS_select, none));   /* 2.7's time.sleep */
	assert_true(pk_rcall_syscall_allowed(SYS_pselect6, none));
	assert_true(pk_rcall_syscall_allowed(SYS_poll, none));
	assert_true(pk_rcall_syscall_allowed(SYS_ppoll, none));
	/* A call others may wait on (a pipe drained, a connection accepted,
	 * a child reaped) postpones them while the thread is borrowed. */
	assert_false(pk_rcall_syscall_allowed(SYS_select, fds));
	assert_false(pk_rcall_syscall_allowed(SYS_pselect6, fds));
	assert_false(pk_rcall_syscall_allowed(SYS_poll, fds));
	assert_false(pk_rcall_syscall_allowed(SYS_ppoll, fds));
	assert_false(pk_rcall_syscall_allowed(SYS_read, none));
	assert_false(pk_rcall_syscall_allowed(SYS_epoll_pwait, none));
	assert_false(pk_rcall_syscall_allowed(SYS_recvfrom, none));
	assert_false(pk_rcall_syscall_allowed(SYS_accept4, none));
	assert_false(pk_rcall_syscall_allowed(SYS_wait4, none));
	assert_false(pk_rcall_syscall_allowed(SYS_futex, none));
	assert_false(pk_rcall_syscall_allowed(SYS_write, none));
	assert_false(pk_rcall_syscall_allowed(SYS_mmap, none));
	assert_false(pk_rcall_syscall_allowed(SYS_ioctl, none));
	assert_false(pk_rcall_syscall_allowed(SYS_openat, none));
	assert_false(pk_rcall_syscall_allowed(-1, none));
	assert_false(pk_rcall_syscall_allowed(-2, none));
	assert_false(pk_rcall_syscall_allowed(100000, none));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_to_the_return),
		cmocka_unit_test(same_bytes_every_time),
		cmocka_unit_test(allow_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
