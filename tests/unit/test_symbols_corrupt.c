/* SPDX-License-Identifier: MIT */
/* symbols: damaged objects must fail cleanly (an error code and a message)
 * or open and answer; never crash, hang or read out of bounds. The base
 * object is this test's own executable (symbols, notes, debug info) and, when
 * present, a real libpython. Run it under -DPYKILL_SANITIZE=ON too. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pk_log.h"
#include "pk_symbols.h"
#include "unit-util.h"

struct image {
	unsigned char *data;
	size_t size;
};

static struct image self_image;
static int memfd = -1;
static unsigned long n_opened, n_failed;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure can be replayed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static void load_file(const char *path, struct image *img)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t done = 0;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	img->size = (size_t)st.st_size;
	img->data = malloc(img->size);
	assert_non_null(img->data);
	while (done < img->size) {
		ssize_t n = read(fd, img->data + done, img->size - done);

		assert_true(n > 0);
		done += (size_t)n;
	}
	close(fd);
}

/* Everything a caller may ask, on whatever opened. */
static void probe(const struct pk_elf *e)
{
	static const char *const names[] = { "main", "_start", "pk_elf_open", "_PyRuntime", "Py_Version",
					     "PyInterpreterState_Head", "interp_head", "memcpy", "x" };
	struct pk_elf_segment segs[4];
	unsigned char buf[256];
	char text[128];
	uint64_t v, size, t[4];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (pk_elf_symbol(e, names[i], &v, &size) != 0)
			continue;
		(void)pk_elf_read(e, v, buf, size < sizeof(buf) ? (size_t)size : sizeof(buf));
		(void)pk_elf_rip_targets(e, v, 32, t, 4);
	}
	if (pk_elf_section(e, ".text", &v, &size) == 0) {
		(void)pk_elf_read(e, v, buf, sizeof(buf));
		(void)pk_elf_rip_targets(e, v, 64, t, 4);
	}
	(void)pk_elf_section(e, ".PyRuntime", &v, &size);
	(void)pk_elf_find_version_string(e, 0, 0, text, sizeof(text));
	(void)pk_elf_find_version_string(e, 3, 12, text, sizeof(text));
	(void)pk_elf_build_id(e, text, sizeof(text));
	(void)pk_elf_segments(e, segs, 4);
	for (i = 0; i < 4; i++)
		(void)pk_elf_load_bias(e, 0x7f0000000000ull + i * 0x1000, i * 0x1000, &v);
	(void)pk_elf_is_exec(e);
	(void)pk_elf_machine(e);
	(void)pk_elf_path(e);
}

/* Open `len` bytes of img (possibly altered): it opens and answers, or it
 * fails with -errno and says why. */
static void try_bytes(const unsigned char *data, size_t len)
{
	struct pk_elf *e = (struct pk_elf *)0x1;
	int ret;

	assert_int_equal(ftruncate(memfd, 0), 0);
	assert_int_equal(pwrite(memfd, data, len, 0), (ssize_t)len);
	pk_error_clear();
	ret = pk_elf_open(memfd, "damaged", &e);
	if (ret == 0) {
		assert_non_null(e);
		probe(e);
		pk_elf_close(e);
		n_opened++;
	} else {
		assert_true(ret < 0 && ret > -4096);
		assert_null(e);
		assert_non_null(strstr(pk_error_message(), "damaged"));
		n_failed++;
	}
}

static int setup(void **state)
{
	(void)state;
	load_file("/proc/self/exe", &self_image);
	memfd = memfd_create("pk-corrupt", MFD_CLOEXEC);
	if (memfd < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fprintf(stderr, "damaged objects: %lu opened, %lu refused\n", n_opened, n_failed);
	close(memfd);
	free(self_image.data);
	return 0;
}

/* The brief's case: the first 100 bytes of a real object, in a real file. */
static void test_truncated_100(void **state)
{
	char dir[] = "/tmp/pk-symbols-XXXXXX", path[256];
	struct pk_elf *e = NULL;
	int fd, ret;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/truncated.so", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, self_image.data, 100), 100);
	close(fd);
	pk_error_clear();
	ret = unit_elf_open(path, path, &e);
	assert_int_equal(ret, -ENOEXEC);
	assert_null(e);
	assert_non_null(strstr(pk_error_message(), "truncated.so"));
	unlink(path);
	rmdir(dir);
}

static void test_truncated_everywhere(void **state)
{
	size_t len;

	(void)state;
	/* Byte by byte through the headers, then in strides to the end. */
	for (len = 0; len < 2048 && len < self_image.size; len++)
		try_bytes(self_image.data, len);
	for (; len < self_image.size; len += 1 + rnd() % 4096)
		try_bytes(self_image.data, len);
	try_bytes(self_image.data, self_image.size);
}

static const uint64_t nasty[] = {
	0, 1, 7, 0x40, 0xfff, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
	0x7fffffffffffffffull, 0x8000000000000000ull, 0xfffffffffffffff0ull, UINT64_MAX,
};
#define NNASTY (sizeof(nasty) / sizeof(nasty[0]))

static void set_field(unsigned char *p, size_t width, uint64_t v)
{
	if (width == 8) {
		memcpy(p, &v, 8);
	} else if (width == 4) {
		uint32_t x = (uint32_t)v;

		memcpy(p, &x, 4);
	} else {
		uint16_t x = (uint16_t)v;

		memcpy(p, &x, 2);
	}
}

/* Every field of every section header set to bad values, one at a time. */
static void test_section_headers(void **state)
{
	static const struct {
		size_t off, width;
	} fields[] = {
		{ offsetof(Elf64_Shdr, sh_name), 4 },	 { offsetof(Elf64_Shdr, sh_type), 4 },
		{ offsetof(Elf64_Shdr, sh_flags), 8 },	 { offsetof(Elf64_Shdr, sh_addr), 8 },
		{ offsetof(Elf64_Shdr, sh_offset), 8 },	 { offsetof(Elf64_Shdr, sh_size), 8 },
		{ offsetof(Elf64_Shdr, sh_link), 4 },	 { offsetof(Elf64_Shdr, sh_entsize), 8 },
		{ offsetof(Elf64_Shdr, sh_addralign), 8 },
	};
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)(const void *)self_image.data;
	unsigned char *copy = malloc(self_image.size);
	size_t i, f, k;

	(void)state;
	assert_non_null(copy);
	assert_true(eh->e_shnum > 0 && eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) <= self_image.size);
	for (i = 0; i < eh->e_shnum; i++) {
		size_t base = eh->e_shoff + i * sizeof(Elf64_Shdr);

		for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			for (k = 0; k < NNASTY + 2; k++) {
				uint64_t v = k < NNASTY ? nasty[k]
					     : k == NNASTY ? self_image.size - 1
							   : rnd();

				memcpy(copy, self_image.data, self_image.size);
				set_field(copy + base + fields[f].off, fields[f].width, v);
				try_bytes(copy, self_image.size);
			}
		}
	}
	free(copy);
}

/* ELF and program header fields. */
static void test_headers(void **state)
{
	static const struct {
		size_t off, width;
	} ehdr_fields[] = {
		{ offsetof(Elf64_Ehdr, e_type), 2 },	  { offsetof(Elf64_Ehdr, e_machine), 2 },
		{ offsetof(Elf64_Ehdr, e_phoff), 8 },	  { offsetof(Elf64_Ehdr, e_shoff), 8 },
		{ offsetof(Elf64_Ehdr, e_ehsize), 2 },	  { offsetof(Elf64_Ehdr, e_phentsize), 2 },
		{ offsetof(Elf64_Ehdr, e_phnum), 2 },	  { offsetof(Elf64_Ehdr, e_shentsize), 2 },
		{ offsetof(Elf64_Ehdr, e_shnum), 2 },	  { offsetof(Elf64_Ehdr, e_shstrndx), 2 },
		{ EI_CLASS, 1 },			  { EI_DATA, 1 },
	}, phdr_fields[] = {
		{ offsetof(Elf64_Phdr, p_type), 4 },   { offsetof(Elf64_Phdr, p_offset), 8 },
		{ offsetof(Elf64_Phdr, p_vaddr), 8 },  { offsetof(Elf64_Phdr, p_filesz), 8 },
		{ offsetof(Elf64_Phdr, p_memsz), 8 },  { offsetof(Elf64_Phdr, p_align), 8 },
	};
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)(const void *)self_image.data;
	unsigned char *copy = malloc(self_image.size);
	size_t i, f, k;

	(void)state;
	assert_non_null(copy);
	for (f = 0; f < sizeof(ehdr_fields) / sizeof(ehdr_fields[0]); f++) {
		for (k = 0; k < NNASTY; k++) {
			memcpy(copy, self_image.data, self_image.size);
			if (ehdr_fields[f].width == 1)
				copy[ehdr_fields[f].off] = (unsigned char)nasty[k];
			else
				set_field(copy + ehdr_fields[f].off, ehdr_fields[f].width, nasty[k]);
			try_bytes(copy, self_image.size);
		}
	}
	for (i = 0; i < eh->e_phnum; i++) {
		size_t base = eh->e_phoff + i * sizeof(Elf64_Phdr);

		for (f = 0; f < sizeof(phdr_fields) / sizeof(phdr_fields[0]); f++) {
			for (k = 0; k < NNASTY + 1; k++) {
				memcpy(copy, self_image.data, self_image.size);
				set_field(copy + base + phdr_fields[f].off, phdr_fields[f].width,
					  k < NNASTY ? nasty[k] : rnd());
				try_bytes(copy, self_image.size);
			}
		}
	}
	free(copy);
}

/* Random bytes in the headers, the symbol and string tables. */
static void test_random_damage(void **state)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)(const void *)self_image.data;
	unsigned char *copy = malloc(self_image.size);
	size_t shtab = eh->e_shoff, shlen = (size_t)eh->e_shnum * sizeof(Elf64_Shdr);
	int iter;

	(void)state;
	assert_non_null(copy);
	for (iter = 0; iter < 3000; iter++) {
		int n = 1 + (int)(rnd() % 16), j;

		memcpy(copy, self_image.data, self_image.size);
		for (j = 0; j < n; j++) {
			size_t where;

			switch (rnd() % 3) {
			case 0: /* ELF + program headers */
				where = rnd() % 1024;
				break;
			case 1: /* section headers */
				where = shtab + rnd() % shlen;
				break;
			default: /* anywhere */
				where = rnd() % self_image.size;
			}
			if (where < self_image.size)
				copy[where] = (unsigned char)rnd();
		}
		try_bytes(copy, self_image.size);
	}
	free(copy);
}

/* The unaltered object still opens and answers (the harness is sound). */
static void test_pristine(void **state)
{
	struct pk_elf *e;
	uint64_t v;

	(void)state;
	assert_int_equal(ftruncate(memfd, 0), 0);
	assert_int_equal(pwrite(memfd, self_image.data, self_image.size, 0), (ssize_t)self_image.size);
	assert_int_equal(pk_elf_open(memfd, "pristine", &e), 0);
	assert_int_equal(pk_elf_symbol(e, "pk_elf_open", &v, NULL), 0);
	assert_int_equal(pk_elf_symbol(e, "main", &v, NULL), 0);
	pk_elf_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pristine),
		cmocka_unit_test(test_truncated_100),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_section_headers),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_random_damage),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
