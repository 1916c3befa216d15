/* SPDX-License-Identifier: MIT */
/* attach/cave.c: code caves found in a fake memory image (pk_mem_open_ops)
 * holding an ELF header, program headers and an executable segment whose
 * last page has a tail: zero, too small, dirty, already holding the
 * trampoline; preference order; corrupt headers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pk_attach.h"
#include "pk_inject.h"
#include "pk_log.h"

#define BASE 0x400000ull
#define IMG_LEN 0x6000u
#define LIBC 0x403000ull /* a second object (libc) in the same image */

struct image {
	uint8_t b[IMG_LEN];
};

static int img_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct image *im = ctx;

	if (addr < BASE || addr - BASE > IMG_LEN || len > IMG_LEN - (addr - BASE))
		return -EFAULT;
	memcpy(buf, im->b + (addr - BASE), len);
	return 0;
}

static const struct pk_mem_ops img_ops = { .read = img_read, .destroy = NULL };

/* An object at map_start: ELF header + 2 PT_LOADs, the second executable
 * (file offset 0x1000, vaddr 0x1000, text_len bytes). */
static void put_elf(struct image *im, uint64_t map_start, uint64_t text_len, uint16_t phnum)
{
	uint8_t *p = im->b + (map_start - BASE);
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	uint16_t machine;

	pk_rcall_trampoline(NULL, &machine);
	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_DYN;
	eh.e_machine = machine;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = phnum;
	memset(ph, 0, sizeof(ph));
	ph[0].p_type = PT_LOAD;
	ph[0].p_flags = PF_R;
	ph[0].p_filesz = ph[0].p_memsz = 0x800;
	ph[1].p_type = PT_LOAD;
	ph[1].p_flags = PF_R | PF_X;
	ph[1].p_offset = 0x1000;
	ph[1].p_vaddr = 0x1000;
	ph[1].p_filesz = ph[1].p_memsz = text_len;
	memcpy(p, &eh, sizeof(eh));
	memcpy(p + sizeof(eh), ph, sizeof(ph));
	/* "code" up to the end of the segment, zero after it */
	memset(p + 0x1000, 0, 0x2000);
	memset(p + 0x1000, 0xc3, text_len);
}

static const char maps_text[] = "400000-401000 r--p 00000000 08:01 42 /usr/lib/libpython3.12.so.1.0\n"
				"401000-403000 r-xp 00001000 08:01 42 /usr/lib/libpython3.12.so.1.0\n"
				"403000-404000 r--p 00000000 08:01 43 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
				"404000-406000 r-xp 00001000 08:01 43 /usr/lib/x86_64-linux-gnu/libc.so.6\n";

struct fixture {
	struct image im;
	struct pk_maps maps;
	struct pk_mem *mem;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	put_elf(&f->im, BASE, 0x1a00, 2); /* libpython text ends at 0x402a00 */
	put_elf(&f->im, LIBC, 0x1800, 2); /* libc text ends at 0x405800 */
	assert_int_equal(pk_maps_parse(maps_text, sizeof(maps_text) - 1, &f->maps), 0);
	assert_int_equal(pk_mem_open_ops(&img_ops, &f->im, &f->mem), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pk_mem_close(f->mem);
	pk_maps_free(&f->maps);
	free(f);
	return 0;
}

static uint64_t expected_at(uint64_t page_end)
{
	size_t len;

	pk_rcall_trampoline(&len, NULL);
	return (page_end - len) & ~(uint64_t)63;
}

static void zero_tail_of_libpython_first(void **state)
{
	struct fixture *f = *state;
	uint64_t cave = 0;

	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0, &cave), 0);
	assert_int_equal(cave, expected_at(0x403000));
	assert_true(cave >= 0x402a00);
}

static void prefer_selects_mapping(void **state)
{
	struct fixture *f = *state;
	uint64_t cave = 0;

	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0x404100, &cave), 0);
	assert_int_equal(cave, expected_at(0x406000));
}

static void dirty_tail_is_skipped(void **state)
{
	struct fixture *f = *state;
	uint64_t cave = 0;

	/* One byte of someone else's data in libpython's tail: use libc. */
	f->im.b[0x402b00 - BASE] = 0x90;
	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0, &cave), 0);
	assert_int_equal(cave, expected_at(0x406000));
	/* And libc's too: nothing left. */
	f->im.b[0x405ff0 - BASE] = 0x01;
	pk_error_clear();
	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0, &cave), -ENOSPC);
	assert_true(strlen(pk_error_message()) > 0);
}

static void installed_trampoline_is_reused(void **state)
{
	struct fixture *f = *state;
	uint64_t cave = 0, at = expected_at(0x403000);
	const uint8_t *code;
	size_t len;

	code = pk_rcall_trampoline(&len, NULL);
	memcpy(f->im.b + (at - BASE), code, len);
	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0, &cave), 0);
	assert_int_equal(cave, at);

	/* The trampoline at another offset is not ours to share. */
	memset(f->im.b + (at - BASE), 0, len);
	memcpy(f->im.b + (at - 64 - BASE), code, len);
	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0, &cave), 0);
	assert_int_equal(cave, expected_at(0x406000));
}

static void too_small_or_page_aligned(void **state)
{
	struct fixture *f = *state;
	uint64_t cave = 0;
	size_t len;

	pk_rcall_trampoline(&len, NULL);
	/* libpython: tail of len - 8 bytes; libc: segment ends on the page. */
	put_elf(&f->im, BASE, 0x2000 - (len - 8), 2);
	put_elf(&f->im, LIBC, 0x2000, 2);
	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0, &cave), -ENOSPC);
	/* Exactly enough, 64-aligned. */
	put_elf(&f->im, BASE, 0x2000 - ((len + 63) & ~(size_t)63), 2);
	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0, &cave), 0);
	assert_int_equal(cave, expected_at(0x403000));
}

static void corrupt_headers_are_skipped(void **state)
{
	struct fixture *f = *state;
	uint64_t cave = 0;

	put_elf(&f->im, BASE, 0x1a00, 60000); /* e_phnum beyond the mapping */
	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0, &cave), 0);
	assert_int_equal(cave, expected_at(0x406000));
	f->im.b[LIBC - BASE] = 'X'; /* not ELF */
	assert_int_equal(pk_cave_find(f->mem, &f->maps, 0, &cave), -ENOSPC);
}

static void other_objects_only_when_preferred(void **state)
{
	static const char text[] = "400000-401000 r--p 00000000 08:01 42 /opt/app/libfoo.so\n"
				   "401000-403000 r-xp 00001000 08:01 42 /opt/app/libfoo.so\n";
	struct fixture *f = *state;
	struct pk_maps maps;
	uint64_t cave = 0;

	assert_int_equal(pk_maps_parse(text, sizeof(text) - 1, &maps), 0);
	assert_int_equal(pk_cave_find(f->mem, &maps, 0, &cave), -ENOSPC);
	assert_int_equal(pk_cave_find(f->mem, &maps, 0x401234, &cave), 0);
	assert_int_equal(cave, expected_at(0x403000));
	pk_maps_free(&maps);
}

static void install_refuses_foreign_bytes_and_readonly_images(void **state)
{
	struct fixture *f = *state;
	const uint8_t *code;
	size_t len;
	uint64_t at = expected_at(0x403000);

	/* Already there: nothing to write, success. */
	code = pk_rcall_trampoline(&len, NULL);
	memcpy(f->im.b + (at - BASE), code, len);
	assert_int_equal(pk_cave_install(f->mem, at), 0);
	/* Foreign code: never overwritten. */
	f->im.b[at - BASE + 3] ^= 0xff;
	assert_int_equal(pk_cave_install(f->mem, at), -EEXIST);
	/* Zero: would write, but this image is read-only. */
	memset(f->im.b + (at - BASE), 0, len);
	assert_true(pk_cave_install(f->mem, at) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(zero_tail_of_libpython_first, setup, teardown),
		cmocka_unit_test_setup_teardown(prefer_selects_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(dirty_tail_is_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(installed_trampoline_is_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(too_small_or_page_aligned, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_headers_are_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(other_objects_only_when_preferred, setup, teardown),
		cmocka_unit_test_setup_teardown(install_refuses_foreign_bytes_and_readonly_images, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
