/* SPDX-License-Identifier: MIT */
/* symbols: small ELF objects built by the test, byte by byte, to reach the
 * cases real files do not show on this machine (versioned .symtab names,
 * 32-bit objects, segments whose file image ends early, tail-merged version
 * strings, aarch64 code, notes without sections). */
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
#include <sys/mman.h>
#include <unistd.h>

#include "pk_log.h"
#include "pk_symbols.h"
#include "unit-util.h"

/* ---------------------------------------------------------------------- */
/* A tiny ELF writer: the caller places bytes at file offsets, adds program
 * and section headers; finish() appends the section name table and the
 * section headers and writes the ELF header. */

#define T_CAP (512 * 1024)
#define T_DATA 0x400 /* first free offset after the header and phdrs */

struct tsym {
	const char *name;
	uint64_t value, size;
	unsigned char bind, type;
	uint16_t shndx;
};

struct telf {
	unsigned char *buf;
	size_t size;
	unsigned char class;
	uint16_t type, machine;
	Elf64_Phdr ph[8];
	int nph;
	struct {
		char name[32];
		Elf64_Shdr sh;
	} sec[16];
	int nsec; /* not counting the null section */
	int fd;
	char path[64];
};

static void t_init(struct telf *t, uint16_t type, uint16_t machine)
{
	memset(t, 0, sizeof(*t));
	t->buf = calloc(1, T_CAP);
	assert_non_null(t->buf);
	t->size = T_DATA;
	t->class = ELFCLASS64;
	t->type = type;
	t->machine = machine;
	t->fd = -1;
}

static void t_put(struct telf *t, size_t off, const void *data, size_t len)
{
	assert_true(off + len <= T_CAP);
	memcpy(t->buf + off, data, len);
	if (off + len > t->size)
		t->size = off + len;
}

static void t_phdr(struct telf *t, uint32_t type, uint64_t off, uint64_t vaddr, uint64_t filesz, uint64_t memsz,
		   uint32_t flags)
{
	Elf64_Phdr *ph = &t->ph[t->nph++];

	assert_true(t->nph <= 8);
	ph->p_type = type;
	ph->p_offset = off;
	ph->p_vaddr = ph->p_paddr = vaddr;
	ph->p_filesz = filesz;
	ph->p_memsz = memsz;
	ph->p_flags = flags;
	ph->p_align = type == PT_LOAD ? 0x1000 : 4;
}

/* Returns the section index. */
static uint16_t t_section(struct telf *t, const char *name, uint32_t type, uint64_t flags, uint64_t addr, uint64_t off,
			  uint64_t size, uint32_t link, uint64_t entsize)
{
	int i = t->nsec++;

	assert_true(t->nsec < 16);
	snprintf(t->sec[i].name, sizeof(t->sec[i].name), "%s", name);
	t->sec[i].sh.sh_type = type;
	t->sec[i].sh.sh_flags = flags;
	t->sec[i].sh.sh_addr = addr;
	t->sec[i].sh.sh_offset = off;
	t->sec[i].sh.sh_size = size;
	t->sec[i].sh.sh_link = link;
	t->sec[i].sh.sh_entsize = entsize;
	/* 4-byte aligned notes are padded to 4 bytes (libelf reads 8-aligned
	 * ones as the 8-byte padded kind). */
	t->sec[i].sh.sh_addralign = type == SHT_NOTE ? 4 : 8;
	return (uint16_t)(i + 1);
}

/* A symbol table and its string table at off; returns the end offset. */
static size_t t_symtab(struct telf *t, uint32_t type, const char *name, const char *strname, size_t off,
		       const struct tsym *syms, size_t n)
{
	size_t symoff = off, stroff = off + (n + 1) * sizeof(Elf64_Sym), strsize = 1, i;
	uint16_t strndx;

	t->buf[stroff] = '\0';
	for (i = 0; i < n; i++) {
		Elf64_Sym s;
		size_t len = strlen(syms[i].name);

		memset(&s, 0, sizeof(s));
		s.st_name = (uint32_t)strsize;
		s.st_value = syms[i].value;
		s.st_size = syms[i].size;
		s.st_info = ELF64_ST_INFO(syms[i].bind, syms[i].type);
		s.st_shndx = syms[i].shndx;
		t_put(t, symoff + (i + 1) * sizeof(Elf64_Sym), &s, sizeof(s));
		t_put(t, stroff + strsize, syms[i].name, len + 1);
		strsize += len + 1;
	}
	strndx = t_section(t, strname, SHT_STRTAB, 0, 0, stroff, strsize, 0, 0);
	t_section(t, name, type, 0, 0, symoff, (n + 1) * sizeof(Elf64_Sym), strndx, sizeof(Elf64_Sym));
	t_put(t, stroff, "", 1);
	return (stroff + strsize + 7) & ~(size_t)7;
}

/* Lay out names and headers, write to a memfd, return a path to it. */
static const char *t_finish(struct telf *t, bool with_sections)
{
	size_t names = (t->size + 7) & ~(size_t)7, shoff, namesize = 1;
	Elf64_Ehdr eh;
	int i;

	/* A loadable object has segments; tests about sections get one. */
	if (t->nph == 0)
		t_phdr(t, PT_LOAD, 0, 0, t->size, t->size, PF_R);
	t->buf[names] = '\0';
	for (i = 0; i < t->nsec; i++) {
		size_t len = strlen(t->sec[i].name) + 1;

		t->sec[i].sh.sh_name = (uint32_t)namesize;
		memcpy(t->buf + names + namesize, t->sec[i].name, len);
		namesize += len;
	}
	memcpy(t->buf + names + namesize, ".shstrtab", 10);
	shoff = (names + namesize + 10 + 7) & ~(size_t)7;
	t->size = shoff;
	if (with_sections) {
		Elf64_Shdr null, shstr;

		memset(&null, 0, sizeof(null));
		t_put(t, shoff, &null, sizeof(null));
		for (i = 0; i < t->nsec; i++)
			t_put(t, shoff + (size_t)(i + 1) * sizeof(Elf64_Shdr), &t->sec[i].sh, sizeof(Elf64_Shdr));
		memset(&shstr, 0, sizeof(shstr));
		shstr.sh_name = (uint32_t)namesize;
		shstr.sh_type = SHT_STRTAB;
		shstr.sh_offset = names;
		shstr.sh_size = namesize + 10;
		t_put(t, shoff + (size_t)(t->nsec + 1) * sizeof(Elf64_Shdr), &shstr, sizeof(shstr));
	}

	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = t->class;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = t->type;
	eh.e_machine = t->machine;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = t->nph > 0 ? sizeof(eh) : 0;
	eh.e_shoff = with_sections ? shoff : 0;
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = (uint16_t)t->nph;
	eh.e_shentsize = sizeof(Elf64_Shdr);
	eh.e_shnum = with_sections ? (uint16_t)(t->nsec + 2) : 0;
	eh.e_shstrndx = with_sections ? (uint16_t)(t->nsec + 1) : 0;
	memcpy(t->buf, &eh, sizeof(eh));
	if (t->nph > 0)
		memcpy(t->buf + sizeof(eh), t->ph, (size_t)t->nph * sizeof(Elf64_Phdr));

	t->fd = memfd_create("pk-test-elf", MFD_CLOEXEC);
	assert_true(t->fd >= 0);
	assert_int_equal(write(t->fd, t->buf, t->size), (ssize_t)t->size);
	snprintf(t->path, sizeof(t->path), "/proc/self/fd/%d", t->fd);
	return t->path;
}

static struct pk_elf *t_open(struct telf *t, bool with_sections)
{
	struct pk_elf *e = NULL;
	int ret;

	pk_error_clear();
	ret = unit_elf_open(t_finish(t, with_sections), "synthetic", &e);
	if (ret != 0)
		fprintf(stderr, "open synthetic: %d %s\n", ret, pk_error_message());
	assert_int_equal(ret, 0);
	return e;
}

static void t_free(struct telf *t)
{
	if (t->fd >= 0)
		close(t->fd);
	free(t->buf);
}

/* ---------------------------------------------------------------------- */

static void test_symbols(void **state)
{
	static const struct tsym dyn[] = {
		{ "foo", 0x1000, 8, STB_GLOBAL, STT_OBJECT, 5 },
		{ "bar", 0, 0, STB_GLOBAL, STT_FUNC, SHN_UNDEF },
		{ "weakone", 0x1100, 4, STB_WEAK, STT_FUNC, 5 },
	};
	static const struct tsym tab[] = {
		{ "foo", 0x2000, 8, STB_GLOBAL, STT_OBJECT, 5 },
		{ "bar", 0x3000, 16, STB_GLOBAL, STT_FUNC, 5 },
		{ "ver@@V_1", 0x4000, 1, STB_GLOBAL, STT_FUNC, 5 },
		{ "old@V_0", 0x4100, 1, STB_GLOBAL, STT_FUNC, 5 },
		{ "dup", 0x5000, 4, STB_LOCAL, STT_OBJECT, 5 },
		{ "dup", 0x5100, 4, STB_GLOBAL, STT_OBJECT, 5 },
		{ "loc", 0x6000, 4, STB_LOCAL, STT_OBJECT, 5 },
		{ "loc", 0x6100, 4, STB_LOCAL, STT_OBJECT, 5 },
		{ "secsym", 0x7000, 0, STB_LOCAL, STT_SECTION, 5 },
		{ "file.c", 0, 0, STB_LOCAL, STT_FILE, SHN_ABS },
		{ "absval", 0x1234, 0, STB_GLOBAL, STT_NOTYPE, SHN_ABS },
		{ "undef_only", 0, 0, STB_GLOBAL, STT_NOTYPE, SHN_UNDEF },
	};
	struct telf t;
	struct pk_elf *e;
	uint64_t v = 0, size = 0;
	size_t off;

	(void)state;
	t_init(&t, ET_DYN, EM_X86_64);
	off = t_symtab(&t, SHT_DYNSYM, ".dynsym", ".dynstr", T_DATA, dyn, 3);
	t_symtab(&t, SHT_SYMTAB, ".symtab", ".strtab", off, tab, sizeof(tab) / sizeof(tab[0]));
	e = t_open(&t, true);

	/* .dynsym wins over .symtab. */
	assert_int_equal(pk_elf_symbol(e, "foo", &v, &size), 0);
	assert_int_equal(v, 0x1000);
	assert_int_equal(size, 8);
	/* Undefined in .dynsym, defined in .symtab. */
	assert_int_equal(pk_elf_symbol(e, "bar", &v, &size), 0);
	assert_int_equal(v, 0x3000);
	assert_int_equal(size, 16);
	assert_int_equal(pk_elf_symbol(e, "weakone", &v, NULL), 0);
	assert_int_equal(v, 0x1100);
	/* Versioned .symtab names match their base name, and themselves. */
	assert_int_equal(pk_elf_symbol(e, "ver", &v, NULL), 0);
	assert_int_equal(v, 0x4000);
	assert_int_equal(pk_elf_symbol(e, "ver@@V_1", &v, NULL), 0);
	assert_int_equal(v, 0x4000);
	assert_int_equal(pk_elf_symbol(e, "ver@V_1", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "old", &v, NULL), 0);
	assert_int_equal(v, 0x4100);
	/* Exact base names only. */
	assert_int_equal(pk_elf_symbol(e, "ve", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "verx", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "fo", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "fooo", &v, NULL), -ENOENT);
	/* A global definition wins over a static of the same name; among
	 * statics the first. */
	assert_int_equal(pk_elf_symbol(e, "dup", &v, NULL), 0);
	assert_int_equal(v, 0x5100);
	assert_int_equal(pk_elf_symbol(e, "loc", &v, NULL), 0);
	assert_int_equal(v, 0x6000);
	/* Section and file symbols are not symbols one looks up. */
	assert_int_equal(pk_elf_symbol(e, "secsym", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "file.c", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "absval", &v, NULL), 0);
	assert_int_equal(v, 0x1234);
	assert_int_equal(pk_elf_symbol(e, "undef_only", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "", &v, NULL), -EINVAL);
	/* Lookups that find nothing are answers, not failures. */
	pk_error_clear();
	assert_int_equal(pk_elf_symbol(e, "nothing", &v, NULL), -ENOENT);
	assert_string_equal(pk_error_message(), "");

	assert_int_equal(pk_elf_section(e, ".symtab", &v, &size), 0);
	assert_int_equal(size, (sizeof(tab) / sizeof(tab[0]) + 1) * sizeof(Elf64_Sym));
	pk_elf_close(e);
	t_free(&t);
}

/* Thousands of names: every one found with its own value (hash chains,
 * growth), none invented. */
static void test_many_symbols(void **state)
{
	enum { N = 6000 };
	struct tsym *syms = calloc(N, sizeof(*syms));
	char (*names)[16] = calloc(N, 16);
	struct telf t;
	struct pk_elf *e;
	uint64_t v;
	size_t i;

	(void)state;
	assert_non_null(syms);
	assert_non_null(names);
	for (i = 0; i < N; i++) {
		snprintf(names[i], 16, "sym_%zu", i * 7);
		syms[i] = (struct tsym){ names[i], 0x100000 + i * 16, 8, STB_GLOBAL, STT_OBJECT, 1 };
	}
	t_init(&t, ET_DYN, EM_X86_64);
	t_symtab(&t, SHT_SYMTAB, ".symtab", ".strtab", T_DATA, syms, N);
	e = t_open(&t, true);
	for (i = 0; i < N; i++) {
		char other[24];

		assert_int_equal(pk_elf_symbol(e, names[i], &v, NULL), 0);
		assert_int_equal(v, 0x100000 + i * 16);
		snprintf(other, sizeof(other), "sym_%zu", i * 7 + 1);
		assert_int_equal(pk_elf_symbol(e, other, &v, NULL), -ENOENT);
	}
	pk_elf_close(e);
	t_free(&t);
	free(names);
	free(syms);
}

/* A string table without a final NUL must not be read past its end. */
static void test_unterminated_strtab(void **state)
{
	static const struct tsym tab[] = {
		{ "first", 0x10, 1, STB_GLOBAL, STT_OBJECT, 1 },
		{ "last", 0x20, 1, STB_GLOBAL, STT_OBJECT, 1 },
	};
	struct telf t;
	struct pk_elf *e;
	uint64_t v;

	(void)state;
	t_init(&t, ET_DYN, EM_X86_64);
	t_symtab(&t, SHT_SYMTAB, ".symtab", ".strtab", T_DATA, tab, 2);
	/* Cut the table's size by one: "last" loses its NUL. */
	t.sec[0].sh.sh_size -= 1;
	e = t_open(&t, true);
	assert_int_equal(pk_elf_symbol(e, "first", &v, NULL), 0);
	assert_int_equal(v, 0x10);
	assert_int_equal(pk_elf_symbol(e, "last", &v, NULL), -ENOENT);
	pk_elf_close(e);
	t_free(&t);
}

static void test_elf32_rejected(void **state)
{
	struct telf t;
	struct pk_elf *e = NULL;

	(void)state;
	t_init(&t, ET_DYN, EM_386);
	t.class = ELFCLASS32;
	pk_error_clear();
	assert_int_equal(unit_elf_open(t_finish(&t, false), "elf32.so", &e), -ENOEXEC);
	assert_null(e);
	assert_non_null(strstr(pk_error_message(), "elf32.so"));
	assert_non_null(strstr(pk_error_message(), "64-bit"));
	t_free(&t);
}

static void test_read(void **state)
{
	unsigned char a[0x100], b[0x100], buf[0x40], want[0x40];
	struct telf t;
	struct pk_elf *e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(a); i++) {
		a[i] = (unsigned char)(i + 1);
		b[i] = (unsigned char)(0x80 + i);
	}
	t_init(&t, ET_DYN, EM_X86_64);
	t_put(&t, 0x1000, a, sizeof(a));
	t_put(&t, 0x2000, b, sizeof(b));
	/* [0x10000, 0x10100) from the file, [0x10100, 0x10300) zero. */
	t_phdr(&t, PT_LOAD, 0x1000, 0x10000, 0x100, 0x300, PF_R | PF_W);
	/* Adjacent segment at 0x10300. */
	t_phdr(&t, PT_LOAD, 0x2000, 0x10300, 0x100, 0x100, PF_R);
	/* A segment whose file image the file does not have. */
	t_phdr(&t, PT_LOAD, 0x70000, 0x20000, 0x1000, 0x1000, PF_R);
	e = t_open(&t, false);

	assert_int_equal(pk_elf_read(e, 0x10000, buf, 0x10), 0);
	assert_memory_equal(buf, a, 0x10);
	/* Straddles p_filesz: data then zeros. */
	memset(want, 0, sizeof(want));
	memcpy(want, a + 0xf0, 0x10);
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(pk_elf_read(e, 0x100f0, buf, 0x40), 0);
	assert_memory_equal(buf, want, 0x40);
	/* Straddles two segments. */
	memset(want, 0, sizeof(want));
	memcpy(want + 0x20, b, 0x20);
	assert_int_equal(pk_elf_read(e, 0x102e0, buf, 0x40), 0);
	assert_memory_equal(buf, want, 0x40);
	/* Last byte of the second segment, and one past it. */
	assert_int_equal(pk_elf_read(e, 0x103ff, buf, 1), 0);
	assert_int_equal(buf[0], b[0xff]);
	assert_int_equal(pk_elf_read(e, 0x103ff, buf, 2), -EFAULT);
	assert_int_equal(pk_elf_read(e, 0xffff, buf, 2), -EFAULT);
	assert_int_equal(pk_elf_read(e, 0x0, buf, 1), -EFAULT);
	/* Truncated file: no made-up bytes. */
	assert_int_equal(pk_elf_read(e, 0x20000, buf, 1), -EFAULT);
	/* Address arithmetic must not wrap. */
	assert_int_equal(pk_elf_read(e, UINT64_MAX - 4, buf, 0x10), -EFAULT);
	pk_elf_close(e);
	t_free(&t);
}

static void test_load_bias_and_segments(void **state)
{
	struct pk_elf_segment segs[4];
	struct telf t;
	struct pk_elf *e;
	uint64_t bias;
	long page = sysconf(_SC_PAGESIZE);

	(void)state;
	if (page != 0x1000)
		skip(); /* the layout below assumes 4 KiB pages */
	t_init(&t, ET_DYN, EM_X86_64);
	t_phdr(&t, PT_LOAD, 0x0, 0x0, 0x800, 0x800, PF_R);
	t_phdr(&t, PT_LOAD, 0x1000, 0x11000, 0x2000, 0x2000, PF_R | PF_X);
	/* Data: not page-aligned, RELRO splits it in two mappings. */
	t_phdr(&t, PT_LOAD, 0x3e10, 0x23e10, 0x2200, 0x4000, PF_R | PF_W);
	t_phdr(&t, PT_LOAD, 0x6000, 0x40000, 0x100, 0x100, PF_R | PF_X);
	t_put(&t, 0x6100, "", 1);
	e = t_open(&t, false);
	assert_false(pk_elf_is_exec(e));

	assert_int_equal(pk_elf_load_bias(e, 0x7f0000000000, 0x0, &bias), 0);
	assert_int_equal(bias, 0x7f0000000000);
	assert_int_equal(pk_elf_load_bias(e, 0x7f0000011000, 0x1000, &bias), 0);
	assert_int_equal(bias, 0x7f0000000000);
	assert_int_equal(pk_elf_load_bias(e, 0x7f0000023000, 0x3000, &bias), 0);
	assert_int_equal(bias, 0x7f0000000000);
	/* The part after RELRO, mapped from the middle of the segment. */
	assert_int_equal(pk_elf_load_bias(e, 0x7f0000025000, 0x5000, &bias), 0);
	assert_int_equal(bias, 0x7f0000000000);
	assert_int_equal(pk_elf_load_bias(e, 0x7f0000040000, 0x6000, &bias), 0);
	assert_int_equal(bias, 0x7f0000000000);
	pk_error_clear();
	assert_int_equal(pk_elf_load_bias(e, 0x7f0000050000, 0x9000, &bias), -ENOENT);
	assert_non_null(strstr(pk_error_message(), "synthetic"));

	/* Executable segments only; the count even when they do not fit. */
	assert_int_equal(pk_elf_segments(e, segs, 4), 2);
	assert_int_equal(segs[0].vaddr, 0x11000);
	assert_int_equal(segs[0].filesz, 0x2000);
	assert_int_equal(segs[0].memsz, 0x2000);
	assert_int_equal(segs[0].flags, PF_R | PF_X);
	assert_int_equal(segs[1].vaddr, 0x40000);
	memset(segs, 0, sizeof(segs));
	assert_int_equal(pk_elf_segments(e, segs, 1), 2);
	assert_int_equal(segs[0].vaddr, 0x11000);
	assert_int_equal(segs[1].vaddr, 0);
	pk_elf_close(e);
	t_free(&t);

	/* ET_EXEC: addresses are absolute whatever the mapping. */
	t_init(&t, ET_EXEC, EM_X86_64);
	t_phdr(&t, PT_LOAD, 0x0, 0x400000, 0x800, 0x800, PF_R | PF_X);
	e = t_open(&t, false);
	assert_true(pk_elf_is_exec(e));
	bias = 1;
	assert_int_equal(pk_elf_load_bias(e, 0x400000, 0, &bias), 0);
	assert_int_equal(bias, 0);
	pk_elf_close(e);
	t_free(&t);
}

/* One read-only section holding data; returns the found string or NULL. */
static int version_in(const char *secname, uint32_t type, uint64_t flags, const void *data, size_t len, int major,
		      int minor, char *out, size_t cap)
{
	struct telf t;
	struct pk_elf *e;
	int ret;

	t_init(&t, ET_DYN, EM_X86_64);
	t_put(&t, 0x1000, data, len);
	t_section(&t, secname, type, flags, 0x1000, 0x1000, len, 0, 0);
	e = t_open(&t, true);
	ret = pk_elf_find_version_string(e, major, minor, out, cap);
	pk_elf_close(e);
	t_free(&t);
	return ret;
}

#define RO(s) ".rodata", SHT_PROGBITS, SHF_ALLOC, s, sizeof(s)

static void test_version_string(void **state)
{
	char v[32];

	(void)state;
	/* Tail-merged only. */
	assert_int_equal(version_in(RO("x\0/build/Python-3.9.1\0y"), 0, 0, v, sizeof(v)), 0);
	assert_string_equal(v, "3.9.1");
	/* A standalone copy is preferred over an earlier merged one. */
	assert_int_equal(version_in(RO("/opt/python-3.9.1\0zz\0003.9.2\0"), 0, 0, v, sizeof(v)), 0);
	assert_string_equal(v, "3.9.2");
	/* At the very start of the section counts as standalone. */
	assert_int_equal(version_in(RO("3.10.4\0/x/3.10.3\0"), 0, 0, v, sizeof(v)), 0);
	assert_string_equal(v, "3.10.4");
	/* Release suffixes. */
	assert_int_equal(version_in(RO("\0003.13.0rc1\0"), 3, 13, v, sizeof(v)), 0);
	assert_string_equal(v, "3.13.0rc1");
	assert_int_equal(version_in(RO("\0003.14.0a1+\0"), 3, 14, v, sizeof(v)), 0);
	assert_string_equal(v, "3.14.0a1+");
	assert_int_equal(version_in(RO("\0003.12.0b4\0"), 0, 0, v, sizeof(v)), 0);
	assert_string_equal(v, "3.12.0b4");
	assert_int_equal(version_in(RO("\0002.7.18+\0"), 2, 7, v, sizeof(v)), 0);
	assert_string_equal(v, "2.7.18+");
	/* Not versions: followed by something, part of a longer number, no
	 * NUL, bad suffix, too many digits. */
	assert_int_equal(version_in(RO("\0003.12.1 (main)\0"), 0, 0, v, sizeof(v)), -ENOENT);
	assert_int_equal(version_in(RO("\00013.12.1\0"), 3, 12, v, sizeof(v)), -ENOENT);
	assert_int_equal(version_in(RO("\0001.3.12.1\0"), 3, 12, v, sizeof(v)), -ENOENT);
	assert_int_equal(version_in(RO("\0003.12.1c1\0"), 0, 0, v, sizeof(v)), -ENOENT);
	assert_int_equal(version_in(RO("\0003.12.1rc\0"), 0, 0, v, sizeof(v)), -ENOENT);
	assert_int_equal(version_in(RO("\0003.1234.1\0"), 0, 0, v, sizeof(v)), -ENOENT);
	assert_int_equal(version_in(".rodata", SHT_PROGBITS, SHF_ALLOC, "\0003.12.1", 7, 0, 0, v, sizeof(v)), -ENOENT);
	/* The wanted X.Y among others (zlib's, unicodedata's). */
	assert_int_equal(version_in(RO("\0001.2.13\0003.2.0\0003.11.2\0"), 3, 11, v, sizeof(v)), 0);
	assert_string_equal(v, "3.11.2");
	assert_int_equal(version_in(RO("\0001.2.13\0003.2.0\0003.11.2\0"), 3, 2, v, sizeof(v)), 0);
	assert_string_equal(v, "3.2.0");
	assert_int_equal(version_in(RO("\0001.2.13\0003.2.0\0003.11.2\0"), 3, 12, v, sizeof(v)), -ENOENT);
	/* A merged string of the wanted version beats a standalone other one. */
	assert_int_equal(version_in(RO("\0003.8.0\0/p/3.11.9\0"), 3, 11, v, sizeof(v)), 0);
	assert_string_equal(v, "3.11.9");
	/* No .rodata: other read-only allocated data, never code or writable
	 * data or what is not loaded. */
	assert_int_equal(version_in(".rodata.custom", SHT_PROGBITS, SHF_ALLOC, "\0003.7.3\0", 8, 0, 0, v, sizeof(v)),
			 0);
	assert_string_equal(v, "3.7.3");
	assert_int_equal(version_in(".data", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, "\0003.7.3\0", 8, 0, 0, v, sizeof(v)),
			 -ENOENT);
	assert_int_equal(version_in(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, "\0003.7.3\0", 8, 0, 0, v,
				    sizeof(v)),
			 -ENOENT);
	assert_int_equal(version_in(".comment", SHT_PROGBITS, 0, "\0003.7.3\0", 8, 0, 0, v, sizeof(v)), -ENOENT);
	assert_int_equal(version_in(".rodata", SHT_NOBITS, SHF_ALLOC, "\0003.7.3\0", 8, 0, 0, v, sizeof(v)), -ENOENT);
	/* The buffer must hold the NUL. */
	assert_int_equal(version_in(RO("\0003.7.3\0"), 0, 0, v, 5), -ENOSPC);
	assert_int_equal(version_in(RO("\0003.7.3\0"), 0, 0, v, 6), 0);
	assert_string_equal(v, "3.7.3");
}

static void put_note(struct telf *t, size_t off, uint32_t type, const char *name, const unsigned char *desc,
		     uint32_t descsz)
{
	Elf64_Nhdr nh;
	uint32_t namesz = (uint32_t)strlen(name) + 1;

	nh.n_namesz = namesz;
	nh.n_descsz = descsz;
	nh.n_type = type;
	t_put(t, off, &nh, sizeof(nh));
	t_put(t, off + sizeof(nh), name, namesz);
	t_put(t, off + sizeof(nh) + ((namesz + 3) & ~3u), desc, descsz);
}

static void test_build_id(void **state)
{
	static const unsigned char id[20] = { 0x00, 0x01, 0x02, 0xab, 0xcd, 0xef, 0x10, 0x20, 0x30, 0x40,
					      0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xff };
	static const unsigned char other[4] = { 1, 2, 3, 4 };
	char hex[64];
	struct telf t;
	struct pk_elf *e;

	(void)state;
	/* In a note section, after an unrelated note. */
	t_init(&t, ET_DYN, EM_X86_64);
	put_note(&t, 0x1000, NT_GNU_ABI_TAG, "GNU", other, 4);
	put_note(&t, 0x1000 + 12 + 4 + 4, NT_GNU_BUILD_ID, "GNU", id, sizeof(id));
	t_section(&t, ".notes", SHT_NOTE, SHF_ALLOC, 0x1000, 0x1000, 20 + 12 + 4 + 20, 0, 0);
	e = t_open(&t, true);
	assert_int_equal(pk_elf_build_id(e, hex, sizeof(hex)), 0);
	assert_string_equal(hex, "000102abcdef102030405060708090a0b0c0d0ff");
	assert_int_equal(pk_elf_build_id(e, hex, 41), 0);
	assert_int_equal(pk_elf_build_id(e, hex, 40), -ENOSPC);
	pk_elf_close(e);
	t_free(&t);

	/* No sections at all: the PT_NOTE. */
	t_init(&t, ET_DYN, EM_X86_64);
	put_note(&t, 0x1000, NT_GNU_BUILD_ID, "GNU", id, 16);
	t_phdr(&t, PT_NOTE, 0x1000, 0x1000, 12 + 4 + 16, 12 + 4 + 16, PF_R);
	e = t_open(&t, false);
	assert_int_equal(pk_elf_build_id(e, hex, sizeof(hex)), 0);
	assert_string_equal(hex, "000102abcdef102030405060708090a0");
	pk_elf_close(e);
	t_free(&t);

	/* Wrong owner, or none. */
	t_init(&t, ET_DYN, EM_X86_64);
	put_note(&t, 0x1000, NT_GNU_BUILD_ID, "XYZ", id, 20);
	t_section(&t, ".notes", SHT_NOTE, SHF_ALLOC, 0x1000, 0x1000, 12 + 4 + 20, 0, 0);
	e = t_open(&t, true);
	pk_error_clear();
	assert_int_equal(pk_elf_build_id(e, hex, sizeof(hex)), -ENOENT);
	assert_string_equal(pk_error_message(), "");
	pk_elf_close(e);
	t_free(&t);
}

static void put32(struct telf *t, size_t off, uint32_t insn)
{
	t_put(t, off, &insn, 4);
}

/* aarch64 ADRP Xd, page (PC-relative, 4 KiB pages). */
static uint32_t adrp(unsigned int rd, uint64_t pc, uint64_t target)
{
	int64_t pages = (int64_t)((target & ~0xfffull) - (pc & ~0xfffull)) >> 12;
	uint32_t imm = (uint32_t)pages & 0x1fffff;

	return 0x90000000u | ((imm & 3) << 29) | ((imm >> 2) << 5) | rd;
}

static void test_rip_targets_aarch64(void **state)
{
	const uint64_t base = 0x400000;
	uint64_t tg[8];
	char text[1024];
	struct telf t;
	struct pk_elf *e;

	(void)state;
	t_init(&t, ET_EXEC, EM_AARCH64);
	put32(&t, 0x1000, adrp(0, base + 0x0, 0x411000));
	put32(&t, 0x1004, 0xf9400000u | (0x28 / 8) << 10 | 0 << 5 | 0); /* ldr x0, [x0, #0x28] */
	put32(&t, 0x1008, adrp(1, base + 0x8, 0x3ff000));
	put32(&t, 0x100c, 0x91000000u | 0x10 << 10 | 1 << 5 | 1); /* add x1, x1, #0x10 */
	put32(&t, 0x1010, 0xb9000000u | (0x8 / 4) << 10 | 1 << 5 | 0); /* str w0, [x1, #8] */
	put32(&t, 0x1014, 0xd65f03c0u);                                 /* ret */
	put32(&t, 0x1018, adrp(2, base + 0x18, 0x500000));
	put32(&t, 0x101c, 0x91000000u | 0x20 << 10 | 2 << 5 | 2); /* add x2, x2, #0x20 */
	t_phdr(&t, PT_LOAD, 0x1000, base, 0x20, 0x20, PF_R | PF_X);
	e = t_open(&t, false);
	assert_int_equal(pk_elf_machine(e), EM_AARCH64);

	/* The encodings above are what they claim to be. */
	assert_int_equal(pk_code_disasm(EM_AARCH64, t.buf + 0x1000, 0x20, base, text, sizeof(text)), 0);
	assert_non_null(strstr(text, "adrp x0, #0x411000"));
	assert_non_null(strstr(text, "ldr x0, [x0, #0x28]"));
	assert_non_null(strstr(text, "adrp x1, #0x3ff000"));
	assert_non_null(strstr(text, "add x1, x1, #0x10"));
	assert_non_null(strstr(text, "ret"));

	/* add x1 turned x1 into a full address: the store through it is
	 * not another page + offset pair. Stops at ret. */
	assert_int_equal(pk_elf_rip_targets(e, base, 16, tg, 8), 2);
	assert_int_equal(tg[0], 0x411028);
	assert_int_equal(tg[1], 0x3ff010);
	/* From after the ret. */
	assert_int_equal(pk_elf_rip_targets(e, base + 0x18, 16, tg, 8), 1);
	assert_int_equal(tg[0], 0x500020);
	pk_elf_close(e);
	t_free(&t);
}

static void test_rip_targets_x86(void **state)
{
	static const unsigned char code[] = {
		0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00,       /* mov 0x10(%rip),%rax */
		0x64, 0x48, 0x8b, 0x04, 0x25, 0xf8, 0xff, 0xff, 0xff, /* mov %fs:-8,%rax */
		0x48, 0x8d, 0x3d, 0xe0, 0xff, 0xff, 0xff,       /* lea -0x20(%rip),%rdi */
		0x0f, 0x84, 0x00, 0x00, 0x00, 0x00,             /* je (conditional: go on) */
		0xff, 0x25, 0x30, 0x00, 0x00, 0x00,             /* jmp *0x30(%rip) */
		0x48, 0x8b, 0x05, 0x40, 0x00, 0x00, 0x00,       /* mov 0x40(%rip),%rax: not reached */
	};
	const uint64_t base = 0x11000;
	uint64_t tg[8];
	struct telf t;
	struct pk_elf *e;

	(void)state;
	t_init(&t, ET_DYN, EM_X86_64);
	t_put(&t, 0x1000, code, sizeof(code));
	t_phdr(&t, PT_LOAD, 0x1000, base, sizeof(code), sizeof(code), PF_R | PF_X);
	e = t_open(&t, false);
	assert_int_equal(pk_elf_rip_targets(e, base, 32, tg, 8), 3);
	assert_int_equal(tg[0], base + 7 + 0x10);
	assert_int_equal(tg[1], base + 16 + 7 - 0x20);
	assert_int_equal(tg[2], base + 29 + 6 + 0x30);
	/* The function runs up to the end of the segment: what the file has
	 * is decoded, nothing beyond. */
	assert_int_equal(pk_elf_rip_targets(e, base + 35, 32, tg, 8), 1);
	assert_int_equal(tg[0], base + 35 + 7 + 0x40);
	pk_elf_close(e);
	t_free(&t);

	/* A machine capstone is not asked about. */
	t_init(&t, ET_DYN, EM_RISCV);
	t_put(&t, 0x1000, code, sizeof(code));
	t_phdr(&t, PT_LOAD, 0x1000, base, sizeof(code), sizeof(code), PF_R | PF_X);
	e = t_open(&t, false);
	pk_error_clear();
	assert_int_equal(pk_elf_rip_targets(e, base, 32, tg, 8), -ENOTSUP);
	assert_non_null(strstr(pk_error_message(), "synthetic"));
	pk_elf_close(e);
	t_free(&t);
}

/* pk_elf_code_scan on a PyThreadState_SetAsyncExc-shaped function: the
 * arguments copied to callee-saved registers, _PyRuntime through a GOT slot
 * (an R_X86_64_RELATIVE relocation, or the caller's resolver), the store of
 * the second argument after the first ret, reached by a forward branch
 * (the epilogue's pops before that ret must not clobber what the branch
 * carried). */
static int got_fixed(void *ctx, uint64_t slot, uint64_t *target)
{
	(void)slot;
	*target = *(const uint64_t *)ctx;
	return 0;
}

static void test_code_scan_x86(void **state)
{
	static const unsigned char code[] = {
		0x55,                                     /*  0 push %rbp */
		0x48, 0x89, 0xf5,                         /*  1 mov %rsi,%rbp */
		0x53,                                     /*  4 push %rbx */
		0x48, 0x89, 0xfb,                         /*  5 mov %rdi,%rbx */
		0x48, 0x8b, 0x05, 0xf1, 0x00, 0x00, 0x00, /*  8 mov GOT(%rip),%rax: slot 0x11100 */
		0x48, 0x8b, 0x40, 0x28,                   /* 15 mov 0x28(%rax),%rax */
		0x48, 0x39, 0x98, 0x98, 0x00, 0x00, 0x00, /* 19 cmp %rbx,0x98(%rax) */
		0x74, 0x04,                               /* 26 je 32 */
		0x5b,                                     /* 28 pop %rbx */
		0x5d,                                     /* 29 pop %rbp */
		0xc3,                                     /* 30 ret */
		0x90,                                     /* 31 nop */
		0x48, 0x89, 0xa8, 0x90, 0x00, 0x00, 0x00, /* 32 mov %rbp,0x90(%rax) */
		0xf0, 0x48, 0x83, 0x48, 0x18, 0x08,       /* 39 lock orq $8,0x18(%rax) */
		0x5b, 0x5d, 0xc3,                         /* 45 pop %rbx; pop %rbp; ret */
	};
	const uint64_t base = 0x11000, slot = 0x11100, rt = 0x50000, rt2 = 0x60000;
	struct pk_code_scan sc;
	Elf64_Rela rela;
	uint64_t zero = 0;
	struct telf t;
	struct pk_elf *e;

	(void)state;
	t_init(&t, ET_DYN, EM_X86_64);
	t_put(&t, 0x1000, code, sizeof(code));
	t_put(&t, 0x1100, &zero, sizeof(zero));
	t_phdr(&t, PT_LOAD, 0x1000, base, 0x108, 0x108, PF_R | PF_X | PF_W);
	t_section(&t, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, base, 0x1000, sizeof(code), 0, 0);
	t_section(&t, ".got", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, slot, 0x1100, 8, 0, 8);
	memset(&rela, 0, sizeof(rela));
	rela.r_offset = slot;
	rela.r_info = ELF64_R_INFO(0, R_X86_64_RELATIVE);
	rela.r_addend = (int64_t)rt;
	t_put(&t, 0x1200, &rela, sizeof(rela));
	t_section(&t, ".rela.dyn", SHT_RELA, SHF_ALLOC, 0, 0x1200, sizeof(rela), 0, sizeof(rela));
	e = t_open(&t, true);

	assert_int_equal(pk_elf_code_scan(e, base, sizeof(code), NULL, NULL, &sc), 0);
	assert_int_equal(sc.n, 4);
	assert_int_equal(sc.n_before_ret, 2);
	assert_false(sc.call_before_ret);
	/* The GOT load is no access: it gave %rax the runtime's address. */
	assert_int_equal(sc.acc[0].kind, PK_CODE_LOAD);
	assert_int_equal(sc.acc[0].base, PK_CODE_ADDR);
	assert_int_equal(sc.acc[0].addr, rt + 0x28);
	assert_int_equal(sc.acc[1].kind, PK_CODE_CMP);
	assert_int_equal(sc.acc[1].base, PK_CODE_OTHER);
	assert_int_equal(sc.acc[1].src, PK_CODE_ARG0);
	assert_int_equal(sc.acc[1].disp, 0x98);
	assert_int_equal(sc.acc[2].kind, PK_CODE_STORE);
	assert_int_equal(sc.acc[2].src, PK_CODE_ARG1);
	assert_int_equal(sc.acc[2].disp, 0x90);
	assert_false(sc.acc[2].before_ret);
	assert_int_equal(sc.acc[3].kind, PK_CODE_RMW);
	assert_true(sc.acc[3].lock);
	assert_true(sc.acc[3].has_imm);
	assert_int_equal(sc.acc[3].imm, 8);
	assert_int_equal(sc.acc[3].disp, 0x18);

	/* A resolver (the live process's relocated slot) wins over the file. */
	assert_int_equal(pk_elf_code_scan(e, base, sizeof(code), got_fixed, (void *)&rt2, &sc), 0);
	assert_int_equal(sc.acc[0].addr, rt2 + 0x28);

	/* Only the straight path up to the first ret. */
	assert_int_equal(pk_elf_code_scan(e, base, 31, NULL, NULL, &sc), 0);
	assert_int_equal(sc.n, 2);
	pk_elf_close(e);
	t_free(&t);

	/* Not x86_64: not decoded. */
	t_init(&t, ET_DYN, EM_AARCH64);
	t_put(&t, 0x1000, code, sizeof(code));
	t_phdr(&t, PT_LOAD, 0x1000, base, sizeof(code), sizeof(code), PF_R | PF_X);
	e = t_open(&t, false);
	assert_int_equal(pk_elf_code_scan(e, base, sizeof(code), NULL, NULL, &sc), -ENOTSUP);
	pk_elf_close(e);
	t_free(&t);
}

/* ---------------------------------------------------------------------- */
/* .dynsym looked up through .gnu.hash / .hash, written here from the ABI's
 * definitions (the reference), then corrupted field by field. */

static uint32_t ref_gnu_hash(const char *s)
{
	uint32_t h = 5381;

	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static uint32_t ref_sysv_hash(const char *s)
{
	uint32_t h = 0, g;

	while (*s != '\0') {
		h = (h << 4) + (unsigned char)*s++;
		g = h & 0xf0000000u;
		if (g != 0)
			h ^= g >> 24;
		h &= ~g;
	}
	return h;
}

enum { HN = 200, H_BUCKETS = 17, H_SYMOFF = 4 /* symbol index of hsyms[H_SYMOFF - 1] */ };

static struct tsym hsyms[HN];
static char hnames[HN][24];
static int hlog_fallbacks, hlog_symtab, hlog_hashed;

static void hash_log(enum pk_log_level level, const char *msg, void *userdata)
{
	(void)level;
	(void)userdata;
	hlog_fallbacks += strstr(msg, "indexing every symbol") != NULL;
	hlog_symtab += strstr(msg, ".symtab read") != NULL;
	hlog_hashed += strstr(msg, "dynamic symbols (.gnu.hash)") != NULL || strstr(msg, "dynamic symbols (.hash)") != NULL;
}

/* The dynamic symbols (index i + 1 for hsyms[i]): below symoffset an
 * undefined one, a local definition and a section symbol, as linkers put
 * them; then definitions ordered by GNU bucket, as .gnu.hash needs, with
 * "twice" defined twice (a versioned name: the first in table order is
 * the answer) and a local among them. */
static void hash_symbols(void)
{
	size_t i, n = 0;

	hsyms[n++] = (struct tsym){ "undef_fn", 0, 0, STB_GLOBAL, STT_FUNC, SHN_UNDEF };
	hsyms[n++] = (struct tsym){ "low_local", 0x900, 4, STB_LOCAL, STT_OBJECT, 1 };
	hsyms[n++] = (struct tsym){ "", 0x0, 0, STB_LOCAL, STT_SECTION, 1 };
	for (i = 0; n < HN - 3; i++, n++) {
		snprintf(hnames[n], sizeof(hnames[n]), "Py_sym_%zu", i * 3);
		hsyms[n] = (struct tsym){ hnames[n], 0x10000 + n * 16, 8, STB_GLOBAL, STT_OBJECT, 1 };
	}
	hsyms[n++] = (struct tsym){ "twice", 0x2000, 1, STB_GLOBAL, STT_FUNC, 1 };
	hsyms[n++] = (struct tsym){ "twice", 0x3000, 2, STB_GLOBAL, STT_FUNC, 1 };
	hsyms[n++] = (struct tsym){ "hashed_local", 0x4000, 4, STB_LOCAL, STT_OBJECT, 1 };
	/* Stable insertion sort by bucket from H_SYMOFF - 1 on: the two
	 * "twice" keep their order. */
	for (i = H_SYMOFF; i < HN; i++) {
		struct tsym x = hsyms[i];
		size_t j = i;

		while (j > H_SYMOFF - 1 && ref_gnu_hash(hsyms[j - 1].name) % H_BUCKETS > ref_gnu_hash(x.name) % H_BUCKETS) {
			hsyms[j] = hsyms[j - 1];
			j--;
		}
		hsyms[j] = x;
	}
}

/* .gnu.hash of hsyms at off (bloom: 2 words, shift 6); returns its size. */
static size_t t_gnu_hash(struct telf *t, size_t off, uint16_t dynsym)
{
	uint32_t hdr[4] = { H_BUCKETS, H_SYMOFF, 2, 6 };
	uint64_t bloom[2] = { 0, 0 };
	uint32_t buckets[H_BUCKETS] = { 0 };
	uint32_t count = HN + 1, i;
	size_t size = 16 + sizeof(bloom) + sizeof(buckets) + 4 * (size_t)(count - H_SYMOFF);

	for (i = H_SYMOFF; i < count; i++) {
		uint32_t h = ref_gnu_hash(hsyms[i - 1].name), b = h % H_BUCKETS, c = h & ~1u;

		bloom[(h / 64) % 2] |= (1ull << (h % 64)) | (1ull << ((h >> 6) % 64));
		if (buckets[b] == 0)
			buckets[b] = i;
		if (i + 1 == count || ref_gnu_hash(hsyms[i].name) % H_BUCKETS != b)
			c |= 1; /* the last of its bucket */
		t_put(t, off + 16 + sizeof(bloom) + sizeof(buckets) + 4 * (size_t)(i - H_SYMOFF), &c, 4);
	}
	t_put(t, off, hdr, sizeof(hdr));
	t_put(t, off + 16, bloom, sizeof(bloom));
	t_put(t, off + 16 + sizeof(bloom), buckets, sizeof(buckets));
	t_section(t, ".gnu.hash", SHT_GNU_HASH, SHF_ALLOC, 0, off, size, dynsym, 0);
	return size;
}

/* SysV .hash of hsyms at off; chains linked highest index first, as GNU ld
 * links them. Returns its size. */
static size_t t_sysv_hash(struct telf *t, size_t off, uint16_t dynsym)
{
	uint32_t count = HN + 1, hdr[2] = { H_BUCKETS, HN + 1 }, buckets[H_BUCKETS] = { 0 }, i;
	size_t size = 8 + 4 * (size_t)(H_BUCKETS + count);

	t_put(t, off + 8 + 4 * (size_t)H_BUCKETS, "\0\0\0\0", 4); /* chain[0] */
	for (i = 1; i < count; i++) {
		uint32_t b = ref_sysv_hash(hsyms[i - 1].name) % H_BUCKETS;

		t_put(t, off + 8 + 4 * (size_t)(H_BUCKETS + i), &buckets[b], 4);
		buckets[b] = i;
	}
	t_put(t, off, hdr, sizeof(hdr));
	t_put(t, off + 8, buckets, sizeof(buckets));
	t_section(t, ".hash", SHT_HASH, SHF_ALLOC, 0, off, size, dynsym, 0);
	return size;
}

enum hcorrupt {
	H_OK,
	H_GNU_BUCKET_PAST_END,  /* a bucket names a symbol past the table */
	H_GNU_BUCKET_BELOW,     /* a bucket names an unhashed symbol */
	H_GNU_NO_END,           /* the last chain has no end bit: the walk would run off */
	H_GNU_BLOOM_SHIFT,      /* a shift of 32 of a 32-bit hash (undefined in C; the fuzzer found it) */
	H_GNU_BUCKETS_HUGE,     /* more buckets than the section holds */
	H_GNU_SYMOFF_PAST,      /* symoffset past the symbol count */
	H_GNU_SHORT,            /* the section cut inside its header */
	H_SYSV_LOOP,            /* a chain that links to itself */
	H_SYSV_PAST_END,        /* a chain link past the table */
	H_SYSV_NCHAIN,          /* nchain is not the symbol count */
};

/* Build the object (no .symtab: only .dynsym can answer), corrupt it, and
 * check every answer is still the table's: all definitions found with their
 * values, the first of "twice", locals, nothing for undefined or absent
 * names. Returns how many times the reader fell back to its own index. */
static int check_hash_object(bool gnu, enum hcorrupt how)
{
	struct telf t;
	struct pk_elf *e;
	uint64_t v = 0, size = 0;
	size_t off = T_DATA, hoff, i;
	uint16_t dynsym;
	uint32_t w;

	hash_symbols();
	t_init(&t, ET_DYN, EM_X86_64);
	off = t_symtab(&t, SHT_DYNSYM, ".dynsym", ".dynstr", off, hsyms, HN);
	dynsym = (uint16_t)t.nsec; /* t_symtab adds the string table, then the symbols */
	hoff = off;
	if (gnu)
		t_gnu_hash(&t, hoff, dynsym);
	else
		t_sysv_hash(&t, hoff, dynsym);
	switch (how) {
	case H_OK:
		break;
	case H_GNU_BUCKET_PAST_END:
	case H_GNU_BUCKET_BELOW:
		w = how == H_GNU_BUCKET_PAST_END ? HN + 50 : 1;
		for (i = 0; i < H_BUCKETS; i++)
			t_put(&t, hoff + 32 + 4 * i, &w, 4);
		break;
	case H_GNU_NO_END:
		/* Every end bit cleared: each walk runs to the table's end. */
		for (i = 0; i < HN + 1 - H_SYMOFF; i++) {
			memcpy(&w, t.buf + hoff + 32 + 4 * H_BUCKETS + 4 * i, 4);
			w &= ~1u;
			t_put(&t, hoff + 32 + 4 * H_BUCKETS + 4 * i, &w, 4);
		}
		break;
	case H_GNU_BLOOM_SHIFT:
		w = 32;
		t_put(&t, hoff + 12, &w, 4);
		break;
	case H_GNU_BUCKETS_HUGE:
		w = 0x40000000u;
		t_put(&t, hoff, &w, 4);
		break;
	case H_GNU_SYMOFF_PAST:
		w = HN + 2;
		t_put(&t, hoff + 4, &w, 4);
		break;
	case H_GNU_SHORT:
		t.sec[t.nsec - 1].sh.sh_size = 12;
		break;
	case H_SYSV_LOOP:
		for (i = 1; i < HN + 1; i++) {
			w = (uint32_t)i;
			t_put(&t, hoff + 8 + 4 * (H_BUCKETS + i), &w, 4);
		}
		break;
	case H_SYSV_PAST_END:
		w = 0x7fffffffu;
		for (i = 1; i < HN + 1; i++)
			t_put(&t, hoff + 8 + 4 * (H_BUCKETS + i), &w, 4);
		break;
	case H_SYSV_NCHAIN:
		w = HN;
		t_put(&t, hoff + 4, &w, 4);
		break;
	}
	hlog_fallbacks = hlog_symtab = hlog_hashed = 0;
	pk_log_set_handler(hash_log, NULL, PK_LOG_DEBUG);
	e = t_open(&t, true);
	for (i = 0; i < HN; i++) {
		const struct tsym *sy = &hsyms[i];

		if (sy->shndx == SHN_UNDEF || sy->type == STT_SECTION || strcmp(sy->name, "twice") == 0)
			continue;
		assert_int_equal(pk_elf_symbol(e, sy->name, &v, &size), 0);
		assert_int_equal(v, sy->value);
		assert_int_equal(size, sy->size);
	}
	assert_int_equal(pk_elf_symbol(e, "twice", &v, &size), 0);
	assert_int_equal(v, 0x2000);
	assert_int_equal(size, 1);
	assert_int_equal(pk_elf_symbol(e, "undef_fn", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "Py_sym_1", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "Py_sym_", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "nothing_at_all", &v, NULL), -ENOENT);
	pk_log_set_handler(NULL, NULL, PK_LOG_ERROR);
	assert_int_equal(hlog_symtab, 0);
	pk_elf_close(e);
	t_free(&t);
	return hlog_fallbacks;
}

static void test_dynhash_gnu(void **state)
{
	(void)state;
	/* A sound table is used: taken at open, no fallback to the full index. */
	assert_int_equal(check_hash_object(true, H_OK), 0);
	assert_int_equal(hlog_hashed, 1);
}

static void test_dynhash_sysv(void **state)
{
	(void)state;
	assert_int_equal(check_hash_object(false, H_OK), 0);
	assert_int_equal(hlog_hashed, 1);
}

/* A corrupt table reads nothing out of bounds (ASan builds), never loops,
 * and costs only speed: the reader falls back to indexing .dynsym. */
static void test_dynhash_corrupt(void **state)
{
	static const enum hcorrupt gnu[] = { H_GNU_BUCKET_PAST_END, H_GNU_BUCKET_BELOW, H_GNU_NO_END,
					     H_GNU_BLOOM_SHIFT,	    H_GNU_BUCKETS_HUGE,	H_GNU_SYMOFF_PAST,
					     H_GNU_SHORT };
	static const enum hcorrupt sysv[] = { H_SYSV_LOOP, H_SYSV_PAST_END, H_SYSV_NCHAIN };

	(void)state;
	for (size_t i = 0; i < sizeof(gnu) / sizeof(gnu[0]); i++)
		assert_int_equal(check_hash_object(true, gnu[i]), 1);
	for (size_t i = 0; i < sizeof(sysv) / sizeof(sysv[0]); i++)
		assert_int_equal(check_hash_object(false, sysv[i]), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_symbols),
		cmocka_unit_test(test_many_symbols),
		cmocka_unit_test(test_unterminated_strtab),
		cmocka_unit_test(test_elf32_rejected),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_load_bias_and_segments),
		cmocka_unit_test(test_version_string),
		cmocka_unit_test(test_build_id),
		cmocka_unit_test(test_rip_targets_aarch64),
		cmocka_unit_test(test_rip_targets_x86),
		cmocka_unit_test(test_code_scan_x86),
		cmocka_unit_test(test_dynhash_gnu),
		cmocka_unit_test(test_dynhash_sysv),
		cmocka_unit_test(test_dynhash_corrupt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
