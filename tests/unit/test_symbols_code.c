/* SPDX-License-Identifier: MIT */
/* symbols: "is the instruction before rip a system call?" and the
 * disassembly text, on byte patterns and on real code of this process. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pk_log.h"
#include "pk_symbols.h"
#include "unit-util.h"

/* 16 bytes ending at `end`, the last ones given. */
static bool syscall_before(uint16_t machine, const uint8_t *tail, size_t n)
{
	uint8_t bytes[16];

	memset(bytes, 0x90, sizeof(bytes));
	memcpy(bytes + sizeof(bytes) - n, tail, n);
	return pk_code_is_syscall_before(machine, bytes, sizeof(bytes), 0x7f0000001234);
}

static void test_syscall_x86_64(void **state)
{
	static const uint8_t syscall_insn[] = { 0x0f, 0x05 };
	static const uint8_t sysenter[] = { 0x0f, 0x34 };
	static const uint8_t int80[] = { 0xcd, 0x80 };
	static const uint8_t nops[] = { 0x90, 0x90 };
	static const uint8_t ret[] = { 0xc3 };
	/* `0f 05` as the tail of a longer instruction's bytes still decodes as
	 * syscall when looked at alone: the check is about the two bytes. */
	static const uint8_t only_one[] = { 0x05 };

	(void)state;
	assert_true(syscall_before(EM_X86_64, syscall_insn, 2));
	assert_false(syscall_before(EM_X86_64, sysenter, 2));
	assert_false(syscall_before(EM_X86_64, int80, 2));
	assert_false(syscall_before(EM_X86_64, nops, 2));
	assert_false(syscall_before(EM_X86_64, ret, 1));
	assert_false(syscall_before(EM_X86_64, only_one, 1));
	/* Too few bytes, no bytes, an address that cannot have 2 bytes
	 * before it. */
	assert_false(pk_code_is_syscall_before(EM_X86_64, syscall_insn, 1, 0x1000));
	assert_false(pk_code_is_syscall_before(EM_X86_64, NULL, 16, 0x1000));
	assert_false(pk_code_is_syscall_before(EM_X86_64, syscall_insn, 2, 1));
	assert_true(pk_code_is_syscall_before(EM_X86_64, syscall_insn, 2, 2));
}

static void test_syscall_aarch64(void **state)
{
	static const uint8_t svc0[] = { 0x01, 0x00, 0x00, 0xd4 };
	static const uint8_t svc1[] = { 0x21, 0x00, 0x00, 0xd4 };
	static const uint8_t hvc0[] = { 0x02, 0x00, 0x00, 0xd4 };
	static const uint8_t nop[] = { 0x1f, 0x20, 0x03, 0xd5 };

	(void)state;
	assert_true(syscall_before(EM_AARCH64, svc0, 4));
	assert_false(syscall_before(EM_AARCH64, svc1, 4));
	assert_false(syscall_before(EM_AARCH64, hvc0, 4));
	assert_false(syscall_before(EM_AARCH64, nop, 4));
	assert_false(pk_code_is_syscall_before(EM_AARCH64, svc0, 3, 0x1000));
	/* The x86 pattern means nothing on aarch64, and the reverse. */
	assert_false(syscall_before(EM_AARCH64, (const uint8_t[]){ 0x90, 0x90, 0x0f, 0x05 }, 4));
	assert_false(syscall_before(EM_X86_64, svc0, 4));
	/* Machines without a decoder. */
	assert_false(syscall_before(EM_RISCV, svc0, 4));
	assert_false(syscall_before(EM_386, (const uint8_t[]){ 0x0f, 0x05 }, 2));
}

/* The syscall(2) wrapper of this process's libc contains the system call
 * instruction: find it by decoding, then check the bytes that end after it. */
static void test_syscall_in_libc(void **state)
{
	const uint8_t *code = dlsym(RTLD_DEFAULT, "syscall");
	char text[8192], *line, *save = NULL;
	uint64_t found = 0;
	struct pk_elf *self;
	uint16_t machine;
	size_t len;

	(void)state;
	assert_non_null(code);
	assert_int_equal(unit_elf_open("/proc/self/exe", "self", &self), 0);
	machine = pk_elf_machine(self);
	pk_elf_close(self);
	len = machine == EM_AARCH64 ? 4 : 2;

	assert_int_equal(pk_code_disasm(machine, code, 64, (uint64_t)(uintptr_t)code, text, sizeof(text)), 0);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long addr;
		char mnem[32];

		if (sscanf(line, "%llx: %31s", &addr, mnem) == 2 &&
		    (strcmp(mnem, "syscall") == 0 || strcmp(mnem, "svc") == 0)) {
			found = addr;
			break;
		}
	}
	if (found == 0) {
		fprintf(stderr, "skip: no system call instruction at the start of syscall()\n");
		skip();
	}
	/* The 16 bytes before lie in libc's text either way. */
	assert_true(pk_code_is_syscall_before(machine, (const uint8_t *)(uintptr_t)(found + len) - 16, 16, found + len));
	/* One byte off is not it. */
	assert_false(
		pk_code_is_syscall_before(machine, (const uint8_t *)(uintptr_t)(found + len + 1) - 16, 16, found + len + 1));
}

static void test_disasm(void **state)
{
	static const uint8_t code[] = {
		0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00, /* mov 0x10(%rip),%rax */
		0x0f, 0x05,                               /* syscall */
		0xc3,                                     /* ret */
	};
	static const uint8_t bad[] = { 0x0f, 0x0b, 0x06, 0x90 }; /* ud2, invalid in 64-bit, nop */
	char text[512], tiny[24];
	size_t len;

	(void)state;
	assert_int_equal(pk_code_disasm(EM_X86_64, code, sizeof(code), 0x1000, text, sizeof(text)), 0);
	assert_string_equal(text, "0x1000: movq 0x10(%rip), %rax\n"
				  "0x1007: syscall\n"
				  "0x1009: retq\n");

	/* Bytes that do not decode are shown, and decoding goes on after. */
	assert_int_equal(pk_code_disasm(EM_X86_64, bad, sizeof(bad), 0x2000, text, sizeof(text)), 0);
	assert_string_equal(text, "0x2000: ud2\n"
				  "0x2002: (bad) 06\n"
				  "0x2003: nop\n");

	/* Too small: whole lines only, and said so. */
	pk_error_clear();
	assert_int_equal(pk_code_disasm(EM_X86_64, code, sizeof(code), 0x1000, tiny, sizeof(tiny)), -ENOSPC);
	len = strlen(tiny);
	assert_true(len == 0 || tiny[len - 1] == '\n');
	assert_true(pk_error_message()[0] != '\0');
	assert_int_equal(pk_code_disasm(EM_X86_64, code, sizeof(code), 0x1000, tiny, 0), -EINVAL);

	/* aarch64 is fixed width: a bad word is skipped whole. */
	assert_int_equal(pk_code_disasm(EM_AARCH64,
					(const uint8_t[]){ 0x01, 0x00, 0x00, 0xd4, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x03,
							   0x5f, 0xd6 },
					12, 0x400000, text, sizeof(text)),
			 0);
	assert_string_equal(text, "0x400000: svc #0\n"
				  "0x400004: (bad) 00 00 00 00\n"
				  "0x400008: ret\n");

	assert_int_equal(pk_code_disasm(EM_X86_64, code, 0, 0x1000, text, sizeof(text)), 0);
	assert_string_equal(text, "");
	pk_error_clear();
	assert_int_equal(pk_code_disasm(EM_RISCV, code, sizeof(code), 0x1000, text, sizeof(text)), -ENOTSUP);
	assert_true(pk_error_message()[0] != '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syscall_x86_64),
		cmocka_unit_test(test_syscall_aarch64),
		cmocka_unit_test(test_syscall_in_libc),
		cmocka_unit_test(test_disasm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
