/* SPDX-License-Identifier: MIT */
/* symbols: the ELF reader against real objects on this machine (pyenv
 * libpythons, Debian's static non-PIE python3.11, the libraries this test is
 * linked with). A test whose file is absent is skipped. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <link.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gelf.h>
#include <libelf.h>

#include "pk_log.h"
#include "pk_symbols.h"
#include "unit-util.h"

#define PY_STATIC "/usr/bin/python3.11"

static char pyenv_root[512];

static const char *pyenv_lib(const char *version, const char *file)
{
	static char path[4][1024];
	static int slot;
	char *p = path[slot++ % 4];

	snprintf(p, sizeof(path[0]), "%s/versions/%s/lib/%s", pyenv_root, version, file);
	return p;
}

#define LIB27 pyenv_lib("2.7.18", "libpython2.7.so")
#define LIB36 pyenv_lib("3.6.15", "libpython3.6m.so.1.0")
#define LIB312 pyenv_lib("3.12.1", "libpython3.12.so.1.0")
#define LIB313 pyenv_lib("3.13.0", "libpython3.13.so.1.0")

/* Open or skip when the file is not on this machine. */
static struct pk_elf *open_or_skip(const char *path)
{
	struct pk_elf *e = NULL;
	int ret;

	if (access(path, R_OK) != 0) {
		fprintf(stderr, "skip: %s absent\n", path);
		skip();
	}
	pk_error_clear();
	ret = unit_elf_open(path, path, &e);
	if (ret != 0)
		fprintf(stderr, "pk_elf_open %s: %d %s\n", path, ret, pk_error_message());
	assert_int_equal(ret, 0);
	assert_non_null(e);
	return e;
}

static uint64_t sym(const struct pk_elf *e, const char *name)
{
	uint64_t v = 0;
	int ret = pk_elf_symbol(e, name, &v, NULL);

	if (ret != 0)
		fprintf(stderr, "symbol %s in %s: %d\n", name, pk_elf_path(e), ret);
	assert_int_equal(ret, 0);
	return v;
}

/* Parse "X.Y.Z" into the Py_Version hex form of a final release. */
static uint32_t hexversion_of(const char *s)
{
	unsigned int major, minor, micro;

	assert_int_equal(sscanf(s, "%u.%u.%u", &major, &minor, &micro), 3);
	return (major << 24) | (minor << 16) | (micro << 8) | 0xf0;
}

/* ---------------------------------------------------------------------- */

static void test_open_errors(void **state)
{
	struct pk_elf *e = (struct pk_elf *)0x1;
	char dir[] = "/tmp/pk-symbols-XXXXXX";
	char path[256];
	int fd;

	(void)state;
	pk_error_clear();
	assert_int_equal(pk_elf_open(-1, "/nonexistent/libpython.so", &e), -EBADF);
	assert_null(e);
	assert_non_null(strstr(pk_error_message(), "/nonexistent/libpython.so"));

	pk_error_clear();
	assert_int_equal(unit_elf_open("/etc/passwd", "/etc/passwd", &e), -ENOEXEC);
	assert_null(e);
	assert_non_null(strstr(pk_error_message(), "not an ELF file"));

	pk_error_clear();
	assert_int_equal(unit_elf_open("/tmp", "/tmp", &e), -ENOEXEC);
	assert_non_null(strstr(pk_error_message(), "not a regular file"));

	/* Empty file. */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/empty", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	pk_error_clear();
	assert_int_equal(unit_elf_open(path, "empty", &e), -ENOEXEC);
	assert_non_null(strstr(pk_error_message(), "empty"));
	unlink(path);
	rmdir(dir);
	pk_error_clear();
}

static void test_display_path(void **state)
{
	struct pk_elf *e;

	(void)state;
	assert_int_equal(unit_elf_open("/proc/self/exe", "/the/target/sees/this", &e), 0);
	assert_string_equal(pk_elf_path(e), "/the/target/sees/this");
	assert_int_equal(pk_elf_machine(e), EM_X86_64);
	pk_elf_close(e);
}

/* Debian's python3.11: non-PIE ET_EXEC, stripped .symtab, exported .dynsym. */
static void test_static_python311(void **state)
{
	struct pk_elf *e = open_or_skip(PY_STATIC);
	struct pk_elf_segment segs[8];
	uint64_t v, size, addr, secsize, bias = 1, runtime, head;
	uint32_t pyver;
	char ver[32], bid[64];
	size_t nseg, i;
	int ninexec = 0;

	(void)state;
	assert_true(pk_elf_is_exec(e));
	assert_int_equal(pk_elf_machine(e), EM_X86_64);

	runtime = sym(e, "_PyRuntime");
	assert_int_equal(pk_elf_symbol(e, "_PyRuntime", &v, &size), 0);
	assert_true(size > 0);
	assert_int_equal(pk_elf_section(e, ".PyRuntime", &addr, &secsize), 0);
	/* _PyRuntime is what the .PyRuntime section holds. */
	assert_true(runtime >= addr && runtime + size <= addr + secsize);

	/* .symtab is stripped: statics are gone, undefined imports are not found. */
	assert_int_equal(pk_elf_symbol(e, "interp_head", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "memcpy", &v, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "no_such_symbol_anywhere", &v, NULL), -ENOENT);

	/* Py_Version agrees with the version string. */
	assert_int_equal(pk_elf_find_version_string(e, 3, 11, ver, sizeof(ver)), 0);
	assert_string_equal(ver, "3.11.2");
	assert_int_equal(pk_elf_read(e, sym(e, "Py_Version"), &pyver, sizeof(pyver)), 0);
	assert_int_equal(pyver, hexversion_of(ver));

	/* The list head accessor points into _PyRuntime (non-PIE: absolute). */
	assert_int_equal(pk_elf_rip_targets(e, sym(e, "PyInterpreterState_Head"), 8, &head, 1), 1);
	assert_true(head >= runtime && head < runtime + size);

	assert_int_equal(pk_elf_load_bias(e, 0x400000, 0, &bias), 0);
	assert_int_equal(bias, 0);

	assert_int_equal(pk_elf_build_id(e, bid, sizeof(bid)), 0);
	assert_int_equal(strlen(bid), 40);
	assert_int_equal(strspn(bid, "0123456789abcdef"), 40);
	assert_int_equal(pk_elf_build_id(e, bid, 40), -ENOSPC);

	/* Code segments hold the functions, not the data. */
	nseg = pk_elf_segments(e, segs, 8);
	assert_true(nseg >= 1 && nseg <= 8);
	for (i = 0; i < nseg; i++) {
		uint64_t f = sym(e, "PyThreadState_SetAsyncExc");

		assert_true(segs[i].flags & PF_X);
		assert_true(segs[i].filesz <= segs[i].memsz);
		if (f >= segs[i].vaddr && f < segs[i].vaddr + segs[i].filesz)
			ninexec++;
		assert_false(runtime >= segs[i].vaddr && runtime < segs[i].vaddr + segs[i].memsz);
	}
	assert_int_equal(ninexec, 1);
	assert_int_equal(pk_elf_segments(e, NULL, 0), nseg);
	pk_elf_close(e);
}

static void test_libpython312(void **state)
{
	struct pk_elf *e = open_or_skip(LIB312);
	uint64_t v, size, addr, secsize;
	unsigned char zero[64], buf[64];
	uint32_t pyver;
	char ver[32];

	(void)state;
	assert_false(pk_elf_is_exec(e));

	/* .dynsym and .symtab both answer; a static only .symtab. */
	assert_int_equal(pk_elf_symbol(e, "_PyRuntime", &v, &size), 0);
	assert_int_equal(pk_elf_section(e, ".PyRuntime", &addr, &secsize), 0);
	assert_int_equal(v, addr);
	assert_true(size <= secsize);
	assert_int_equal(pk_elf_symbol(e, "PyInterpreterState_Head", &v, &size), 0);
	assert_true(size > 0);

	assert_int_equal(pk_elf_find_version_string(e, 0, 0, ver, sizeof(ver)), 0);
	assert_string_equal(ver, "3.12.1");
	assert_int_equal(pk_elf_read(e, sym(e, "Py_Version"), &pyver, sizeof(pyver)), 0);
	assert_int_equal(pyver, hexversion_of(ver));

	/* .bss lies past p_filesz: zeros, not whatever follows in the file. */
	memset(zero, 0, sizeof(zero));
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(pk_elf_section(e, ".bss", &addr, &secsize), 0);
	assert_true(secsize >= sizeof(buf));
	assert_int_equal(pk_elf_read(e, addr, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, zero, sizeof(buf));
	/* Past the end of the last segment. */
	pk_error_clear();
	assert_int_equal(pk_elf_read(e, addr + secsize + 0x100000, buf, 1), -EFAULT);
	assert_non_null(strstr(pk_error_message(), "libpython3.12"));
	assert_int_equal(pk_elf_read(e, 0xffffffffffffff00ull, buf, sizeof(buf)), -EFAULT);
	assert_int_equal(pk_elf_read(e, addr, buf, 0), 0);

	assert_int_equal(pk_elf_section(e, ".no-such-section", &addr, &secsize), -ENOENT);
	pk_elf_close(e);
}

/* 3.13 starts _PyRuntime with _Py_DebugOffsets, statically initialised. */
static void test_libpython313_debug_offsets(void **state)
{
	struct pk_elf *e = open_or_skip(LIB313);
	uint64_t addr, size;
	char cookie[8];

	(void)state;
	assert_int_equal(pk_elf_section(e, ".PyRuntime", &addr, &size), 0);
	assert_int_equal(addr, sym(e, "_PyRuntime"));
	assert_int_equal(pk_elf_read(e, addr, cookie, sizeof(cookie)), 0);
	assert_memory_equal(cookie, "xdebugpy", 8);
	pk_elf_close(e);
}

/* Must stay fast: pykill opens the target's libpython on every run. */
/* Opening the same object again gives the same answers (nothing cached
 * across handles goes stale). How fast it is belongs to bench/, not here. */
static void test_open_repeat(void **state)
{
	uint64_t first = 0;
	int i;

	(void)state;
	if (access(LIB312, R_OK) != 0)
		skip();
	for (i = 0; i < 10; i++) {
		struct pk_elf *e;
		uint64_t v;

		assert_int_equal(unit_elf_open(LIB312, LIB312, &e), 0);
		assert_int_equal(pk_elf_symbol(e, "_PyRuntime", &v, NULL), 0);
		pk_elf_close(e);
		if (i == 0)
			first = v;
		assert_int_equal(v, first);
	}
}

static void test_version_strings(void **state)
{
	static const struct {
		const char *version, *file, *want;
		int major, minor;
	} cases[] = {
		{ NULL, PY_STATIC, "3.11.2", 3, 11 },
		{ "3.12.1", "libpython3.12.so.1.0", "3.12.1", 3, 12 },
		{ "2.7.18", "libpython2.7.so", "2.7.18", 2, 7 },
		{ "3.6.15", "libpython3.6m.so", "3.6.15", 3, 6 },
		{ "3.13.0", "libpython3.13.so.1.0", "3.13.0", 3, 13 },
	};
	size_t i;
	int found = 0;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = cases[i].version ? pyenv_lib(cases[i].version, cases[i].file) : cases[i].file;
		struct pk_elf *e;
		char ver[32], tiny[4];

		if (access(path, R_OK) != 0)
			continue;
		assert_int_equal(unit_elf_open(path, path, &e), 0);
		memset(ver, 0, sizeof(ver));
		assert_int_equal(pk_elf_find_version_string(e, cases[i].major, cases[i].minor, ver, sizeof(ver)), 0);
		assert_string_equal(ver, cases[i].want);
		assert_int_equal(pk_elf_find_version_string(e, 0, 0, ver, sizeof(ver)), 0);
		assert_string_equal(ver, cases[i].want);
		/* A different X.Y is not accepted. */
		assert_int_equal(pk_elf_find_version_string(e, cases[i].major, cases[i].minor + 1, ver, sizeof(ver)),
				 -ENOENT);
		assert_int_equal(pk_elf_find_version_string(e, cases[i].major, cases[i].minor, tiny, sizeof(tiny)),
				 -ENOSPC);
		pk_elf_close(e);
		found++;
	}
	if (found == 0)
		skip();
}

/* 3.6: the statics behind the exported accessors, as `nm` shows them. */
static void test_rip_targets_36(void **state)
{
	struct pk_elf *e = open_or_skip(LIB36);
	uint64_t t[4];

	(void)state;
	assert_int_equal(pk_elf_rip_targets(e, sym(e, "PyInterpreterState_Head"), 16, t, 4), 1);
	assert_int_equal(t[0], sym(e, "interp_head"));

	/* movl $1,pending_async_exc(%rip); movl $1,eval_breaker(%rip); ret */
	assert_int_equal(pk_elf_rip_targets(e, sym(e, "_PyEval_SignalAsyncExc"), 16, t, 4), 2);
	assert_int_equal(t[0], sym(e, "pending_async_exc"));
	assert_int_equal(t[1], sym(e, "eval_breaker"));

	/* max_targets and max_insns bound the walk. */
	assert_int_equal(pk_elf_rip_targets(e, sym(e, "_PyEval_SignalAsyncExc"), 16, t, 1), 1);
	assert_int_equal(t[0], sym(e, "pending_async_exc"));
	assert_int_equal(pk_elf_rip_targets(e, sym(e, "_PyEval_SignalAsyncExc"), 1, t, 4), 1);
	assert_int_equal(pk_elf_rip_targets(e, sym(e, "_PyEval_SignalAsyncExc"), 0, t, 4), 0);

	pk_error_clear();
	assert_int_equal(pk_elf_rip_targets(e, 0xfffffffffff00000ull, 16, t, 4), -EFAULT);
	assert_true(pk_error_message()[0] != '\0');
	pk_elf_close(e);
}

static void test_rip_targets_27(void **state)
{
	struct pk_elf *e = open_or_skip(LIB27);
	uint64_t t[4];

	(void)state;
	/* cmpq $0,interpreter_lock(%rip); setne %al; ret */
	assert_int_equal(pk_elf_rip_targets(e, sym(e, "PyEval_ThreadsInitialized"), 16, t, 4), 1);
	assert_int_equal(t[0], sym(e, "interpreter_lock"));
	assert_int_equal(pk_elf_rip_targets(e, sym(e, "PyInterpreterState_Head"), 16, t, 4), 1);
	assert_int_equal(t[0], sym(e, "interp_head"));
	pk_elf_close(e);
}

/* A stripped copy keeps .dynsym and the code: the statics are still found
 * through the accessors. */
static void test_stripped_copy(void **state)
{
	char dir[] = "/tmp/pk-symbols-XXXXXX";
	char path[256], cmd[1024];
	struct pk_elf *orig = open_or_skip(LIB36), *e;
	uint64_t t, v;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/libpython3.6m.so.1.0", dir);
	snprintf(cmd, sizeof(cmd), "strip -o '%s' '%s' 2>/dev/null", path, LIB36);
	if (system(cmd) != 0) {
		rmdir(dir);
		pk_elf_close(orig);
		fprintf(stderr, "skip: strip failed\n");
		skip();
	}
	assert_int_equal(unit_elf_open(path, LIB36, &e), 0);
	assert_int_equal(pk_elf_symbol(e, "interp_head", &v, NULL), -ENOENT);
	assert_int_equal(sym(e, "PyInterpreterState_Head"), sym(orig, "PyInterpreterState_Head"));
	assert_int_equal(pk_elf_rip_targets(e, sym(e, "PyInterpreterState_Head"), 16, &t, 1), 1);
	assert_int_equal(t, sym(orig, "interp_head"));
	pk_elf_close(e);
	pk_elf_close(orig);
	unlink(path);
	rmdir(dir);
}

/* Load bias of a library mapped into this very process: link-time value +
 * bias is what dlsym says, and every mapping of that load (RELRO splits the
 * data segment, so one starts mid-segment) gives the same bias. Mappings of
 * the file elsewhere (valgrind maps it to read symbols) are not the load. */
struct mapping {
	uint64_t start, end, offset;
};

static void check_bias_of_mapped(const char *lib_substr, const char *symbol)
{
	struct mapping maps[64];
	char line[1024], path[512] = "";
	uint64_t bias = 0, b, value, addr;
	size_t nmaps = 0, i, in_load = 0;
	struct pk_elf *e;
	struct stat st;
	bool found = false;
	FILE *f;

	addr = (uint64_t)(uintptr_t)dlsym(RTLD_DEFAULT, symbol);
	if (addr == 0)
		skip(); /* linked statically (-DPYKILL_STATIC=ON): no shared object to check */
	f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL && nmaps < 64) {
		unsigned long start, end, offset;
		char mpath[512];

		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %511s", &start, &end, &offset, mpath) != 4)
			continue;
		if (strstr(mpath, lib_substr) == NULL)
			continue;
		if (path[0] == '\0')
			snprintf(path, sizeof(path), "%s", mpath);
		maps[nmaps++] = (struct mapping){ start, end, offset };
	}
	fclose(f);
	if (nmaps == 0) {
		fprintf(stderr, "skip: %s not mapped\n", lib_substr);
		skip();
	}
	assert_int_equal(unit_elf_open(path, path, &e), 0);
	assert_int_equal(pk_elf_symbol(e, symbol, &value, NULL), 0);
	for (i = 0; i < nmaps; i++) {
		if (addr >= maps[i].start && addr < maps[i].end) {
			assert_int_equal(pk_elf_load_bias(e, maps[i].start, maps[i].offset, &bias), 0);
			found = true;
		}
	}
	assert_true(found);
	assert_int_not_equal(bias, 0);
	assert_int_equal(value + bias, addr);

	assert_int_equal(stat(path, &st), 0);
	for (i = 0; i < nmaps; i++) {
		if (maps[i].start < bias || maps[i].start >= bias + (uint64_t)st.st_size + (1u << 20))
			continue;
		if (pk_elf_load_bias(e, maps[i].start, maps[i].offset, &b) != 0)
			fprintf(stderr, "bias %s at %" PRIx64 " offset %" PRIx64 ": %s\n", path, maps[i].start,
				maps[i].offset, pk_error_message());
		assert_int_equal(pk_elf_load_bias(e, maps[i].start, maps[i].offset, &b), 0);
		assert_int_equal(b, bias);
		in_load++;
	}
	assert_true(in_load >= 2);

	/* An offset no segment starts at or covers. */
	pk_error_clear();
	assert_int_equal(pk_elf_load_bias(e, 0x7f0000000000ull, 0x7fffffff000ull, &b), -ENOENT);
	assert_non_null(strstr(pk_error_message(), path));
	pk_elf_close(e);
}

static void test_load_bias_libelf(void **state)
{
	(void)state;
	(void)elf_version(EV_CURRENT); /* linked for real, so it is mapped */
	check_bias_of_mapped("/libelf", "elf_begin");
}

static void test_load_bias_libcmocka(void **state)
{
	(void)state;
	check_bias_of_mapped("/libcmocka", "_test_free");
}

/* The test binary itself: its build id as the loaded image shows it (the
 * PT_NOTE in memory, through dl_iterate_phdr) equals what the file says. */
static int note_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	char *want = data;
	int i;

	(void)size;
	/* The first object is the main program. */
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const unsigned char *p, *end;

		if (ph->p_type != PT_NOTE)
			continue;
		p = (const unsigned char *)(uintptr_t)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while (p + sizeof(Elf64_Nhdr) <= end) {
			const Elf64_Nhdr *nh = (const Elf64_Nhdr *)(const void *)p;
			const unsigned char *name = p + sizeof(*nh);
			const unsigned char *desc = name + ((nh->n_namesz + 3) & ~3u);

			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
				uint32_t k;

				for (k = 0; k < nh->n_descsz && k < 64; k++)
					sprintf(want + 2 * k, "%02x", desc[k]);
				return 1;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 1;
}

static void test_build_id_self(void **state)
{
	char want[129] = "", got[129];
	struct pk_elf *e;

	(void)state;
	dl_iterate_phdr(note_cb, want);
	if (want[0] == '\0') {
		fprintf(stderr, "skip: test built without a build id\n");
		skip();
	}
	assert_int_equal(unit_elf_open("/proc/self/exe", "self", &e), 0);
	assert_int_equal(pk_elf_build_id(e, got, sizeof(got)), 0);
	assert_string_equal(got, want);
	pk_elf_close(e);
}

/* The target owns the file and may cut it short while pykill reads it: every
 * query after that fails or answers from what was read, none raises SIGBUS
 * (as touching a mapping of the file past its new end would). */
static void test_truncated_while_open(void **state)
{
	char path[] = "/tmp/pk-symbols-truncXXXXXX", buf[4096], version[32], id[129];
	uint64_t main_addr, target;
	struct pk_elf *e;
	int in, fd;
	ssize_t n;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(fd, buf, (size_t)n), n);
	close(in);
	assert_int_equal(pk_elf_open(fd, path, &e), 0);
	assert_int_equal(pk_elf_symbol(e, "main", &main_addr, NULL), 0);

	assert_int_equal(ftruncate(fd, 0), 0);
	/* The symbol tables were read at open: still there. */
	assert_int_equal(pk_elf_symbol(e, "test_truncated_while_open", &target, NULL), 0);
	/* The code and data are not. */
	pk_error_clear();
	assert_int_equal(pk_elf_read(e, main_addr, buf, 16), -EFAULT);
	assert_true(pk_elf_rip_targets(e, main_addr, 8, &target, 1) <= 0);
	assert_true(pk_elf_find_version_string(e, 0, 0, version, sizeof(version)) < 0);
	assert_true(pk_elf_build_id(e, id, sizeof(id)) < 0);
	pk_elf_close(e);
	close(fd);
	unlink(path);
	pk_error_clear();
}

/* What symbols/ logged while a test looked names up: whether it read .symtab
 * or gave up the object's hash table. */
static int logged_symtab_reads, logged_fallbacks;

static void count_log(enum pk_log_level level, const char *msg, void *userdata)
{
	(void)level;
	(void)userdata;
	if (strstr(msg, ".symtab read") != NULL)
		logged_symtab_reads++;
	if (strstr(msg, "indexing every symbol") != NULL)
		logged_fallbacks++;
}

/* Every definition of .dynsym, read here with libelf (the reference), is
 * found through the object's .gnu.hash with its own value (the first in
 * table order for a name defined twice), without reading .symtab: a wrong
 * hash function, bloom test, bucket or chain walk misses names, which would
 * then be looked for in .symtab and show in the log. A static only .symtab
 * has is then found by reading it once. */
static void check_dynhash_file(const char *path, const char *static_only)
{
	struct pk_elf *e = open_or_skip(path);
	size_t checked = 0, i, n;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	Elf_Data *d;
	Elf *elf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_not_equal(elf_version(EV_CURRENT), EV_NONE);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	assert_non_null(elf);
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		assert_non_null(gelf_getshdr(scn, &sh));
		if (sh.sh_type == SHT_DYNSYM)
			break;
	}
	assert_non_null(scn);
	d = elf_getdata(scn, NULL);
	assert_non_null(d);
	n = sh.sh_size / sizeof(Elf64_Sym);

	logged_symtab_reads = logged_fallbacks = 0;
	pk_log_set_handler(count_log, NULL, PK_LOG_DEBUG);
	for (i = 1; i < n; i++) {
		GElf_Sym s, first;
		const char *name;
		uint64_t v = 0, size = 0;

		assert_non_null(gelf_getsym(d, (int)i, &s));
		name = elf_strptr(elf, sh.sh_link, s.st_name);
		if (s.st_shndx == SHN_UNDEF || name == NULL || *name == '\0' || GELF_ST_BIND(s.st_info) == STB_LOCAL ||
		    GELF_ST_TYPE(s.st_info) == STT_SECTION)
			continue;
		first = s;
		for (size_t j = 1; j < i; j++) {
			GElf_Sym o;
			const char *oname;

			/* Only names defined twice need the first: compare the
			 * few that share this one's value or size first. */
			assert_non_null(gelf_getsym(d, (int)j, &o));
			if (o.st_shndx == SHN_UNDEF || GELF_ST_BIND(o.st_info) == STB_LOCAL)
				continue;
			oname = elf_strptr(elf, sh.sh_link, o.st_name);
			if (oname != NULL && strcmp(oname, name) == 0) {
				first = o;
				break;
			}
		}
		if (pk_elf_symbol(e, name, &v, &size) != 0)
			fprintf(stderr, "%s: %s not found\n", path, name);
		assert_int_equal(pk_elf_symbol(e, name, &v, &size), 0);
		assert_int_equal(v, first.st_value);
		assert_int_equal(size, first.st_size);
		checked++;
	}
	assert_true(checked > 100);
	assert_int_equal(logged_fallbacks, 0);
	assert_int_equal(logged_symtab_reads, 0);
	/* Absent names: -ENOENT, looked for in .symtab (read once). */
	assert_int_equal(pk_elf_symbol(e, "pk_no_such_symbol", NULL, NULL), -ENOENT);
	assert_int_equal(pk_elf_symbol(e, "Py_Versio", NULL, NULL), -ENOENT);
	if (static_only != NULL)
		assert_int_equal(pk_elf_symbol(e, static_only, NULL, NULL), 0);
	assert_true(logged_symtab_reads <= 1);
	assert_int_equal(logged_fallbacks, 0);
	pk_log_set_handler(NULL, NULL, PK_LOG_ERROR);
	fprintf(stderr, "%s: %zu dynamic definitions found through its hash table\n", path, checked);
	elf_end(elf);
	close(fd);
	pk_elf_close(e);
}

static void test_dynhash_libpython312(void **state)
{
	(void)state;
	check_dynhash_file(LIB312, "bytearray_length"); /* a static function */
}

static void test_dynhash_libpython27(void **state)
{
	(void)state;
	check_dynhash_file(LIB27, "interp_head");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_display_path),
		cmocka_unit_test(test_static_python311),
		cmocka_unit_test(test_libpython312),
		cmocka_unit_test(test_libpython313_debug_offsets),
		cmocka_unit_test(test_open_repeat),
		cmocka_unit_test(test_version_strings),
		cmocka_unit_test(test_rip_targets_36),
		cmocka_unit_test(test_rip_targets_27),
		cmocka_unit_test(test_stripped_copy),
		cmocka_unit_test(test_load_bias_libelf),
		cmocka_unit_test(test_load_bias_libcmocka),
		cmocka_unit_test(test_build_id_self),
		cmocka_unit_test(test_truncated_while_open),
		cmocka_unit_test(test_dynhash_libpython312),
		cmocka_unit_test(test_dynhash_libpython27),
	};
	const char *root = getenv("PYENV_ROOT");
	const char *home = getenv("HOME");

	if (root != NULL && *root != '\0')
		snprintf(pyenv_root, sizeof(pyenv_root), "%s", root);
	else
		snprintf(pyenv_root, sizeof(pyenv_root), "%s/.pyenv", home != NULL ? home : "/root");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
