/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the symbols module: arbitrary bytes as an ELF file.
 *
 * The input goes to a memfd, handed over as pykill hands over a descriptor
 * from pk_map_open, then every query a caller makes is asked.
 * Build and run (from the source tree):
 *
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *         -I symbols -I common tests/fuzz/fuzz_elf.c symbols/elf.c symbols/version.c \
 *         symbols/code.c common/pk_log.c \
 *         -lelf -lcapstone -o /tmp/fuzz_elf
 *   cp -r tests/fuzz/corpus/elf /tmp/fuzz-elf-corpus
 *   /tmp/fuzz_elf -max_total_time=30 -max_len=65536 /tmp/fuzz-elf-corpus
 *
 * (the scratch copy keeps the inputs libFuzzer adds out of the tree) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pk_log.h"
#include "pk_symbols.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;

static void probe(struct pk_elf *e)
{
	static const char *const names[] = { "_PyRuntime", "Py_Version", "PyInterpreterState_Head", "interp_head",
					     "main", "_start", "a", "a@V" };
	struct pk_elf_segment segs[4];
	uint64_t v, size, targets[4];
	unsigned char buf[64];
	char text[256];
	size_t i, n;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (pk_elf_symbol(e, names[i], &v, &size) != 0)
			continue;
		(void)pk_elf_read(e, v, buf, sizeof(buf));
		(void)pk_elf_rip_targets(e, v, 32, targets, 4);
	}
	if (pk_elf_section(e, ".PyRuntime", &v, &size) == 0)
		(void)pk_elf_read(e, v, buf, 8);
	(void)pk_elf_find_version_string(e, 0, 0, text, sizeof(text));
	(void)pk_elf_find_version_string(e, 3, 12, text, sizeof(text));
	(void)pk_elf_build_id(e, text, sizeof(text));
	n = pk_elf_segments(e, segs, 4);
	for (i = 0; i < n && i < 4; i++) {
		(void)pk_elf_read(e, segs[i].vaddr, buf, sizeof(buf));
		(void)pk_elf_rip_targets(e, segs[i].vaddr, 16, targets, 4);
		if (pk_elf_read(e, segs[i].vaddr, buf, sizeof(buf)) == 0)
			(void)pk_code_disasm(pk_elf_machine(e), buf, sizeof(buf), segs[i].vaddr, text, sizeof(text));
	}
	(void)pk_elf_load_bias(e, 0x7f0000000000ull, 0, &v);
	(void)pk_elf_load_bias(e, 0x7f0000001000ull, 0x1000, &v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pk_elf *e;

	if (memfd < 0) {
		memfd = memfd_create("fuzz-elf", MFD_CLOEXEC);
		if (memfd < 0)
			return 0;
	}
	if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		return 0;
	pk_error_clear();
	if (pk_elf_open(memfd, "fuzz", &e) == 0) {
		probe(e);
		pk_elf_close(e);
	}
	/* The syscall check takes raw bytes: feed it the input's tail. */
	if (size >= 16) {
		(void)pk_code_is_syscall_before(62 /* EM_X86_64 */, data + size - 16, 16, 0x1000);
		(void)pk_code_is_syscall_before(183 /* EM_AARCH64 */, data + size - 16, 16, 0x1000);
	}
	return 0;
}
