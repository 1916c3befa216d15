/* SPDX-License-Identifier: MIT */
/* cpython/layout.c: the table held against the interpreter binaries.
 *
 * pk_py_open compares the layout table with what the binary says (its
 * accessors' offsets, decoded with capstone; the _PyRuntime symbol size;
 * on 3.13+ the target's _Py_DebugOffsets, checked for consistency), adapts
 * what the binary gives unambiguously, refuses a contradiction, and
 * records which fields were confirmed (pk_py_layout_exact). Here:
 *  - every interpreter on the machine passes the check, file by file and as
 *    a live process, with the write path's fields confirmed;
 *  - a deliberately wrong table entry is refused (pattern facts) or adapted
 *    (whole accessors), naming the field;
 *  - an inconsistent _Py_DebugOffsets is not used;
 *  - a "3.16" (a sid 3.15 with its version patched, as an image and as a
 *    running copy of the binary) is exact only as far as the binary and
 *    _Py_DebugOffsets confirm the write path's offsets.
 * Interpreters that are absent are skipped, saying so. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layout.h"
#include "pk_log.h"
#include "pk_symbols.h"
#include "py-priv.h"
#include "unit-util.h"

#define BIT(lf) (1ull << (lf))

static char pyenv_root[512];
static char pythons[512];

struct interp {
	const char *ver;  /* pyenv version, or NULL */
	const char *file; /* relative to the pyenv version, or absolute / under $PYKILL_PYTHONS */
	int major, minor;
	const char *run;  /* the interpreter to run, same conventions */
};

static const struct interp interps[] = {
	{ "2.7.18", "lib/libpython2.7.so.1.0", 2, 7, "bin/python2.7" },
	{ "3.6.15", "lib/libpython3.6m.so.1.0", 3, 6, "bin/python3.6" },
	{ "3.7.16", "lib/libpython3.7m.so.1.0", 3, 7, "bin/python3.7" },
	{ "3.8.18", "lib/libpython3.8.so.1.0", 3, 8, "bin/python3.8" },
	{ "3.9.18", "lib/libpython3.9.so.1.0", 3, 9, "bin/python3.9" },
	{ "3.10.13", "lib/libpython3.10.so.1.0", 3, 10, "bin/python3.10" },
	{ "3.11.7", "lib/libpython3.11.so.1.0", 3, 11, "bin/python3.11" },
	{ "3.12.1", "lib/libpython3.12.so.1.0", 3, 12, "bin/python3.12" },
	{ "3.13.0", "lib/libpython3.13.so.1.0", 3, 13, "bin/python3.13" },
	{ NULL, "/usr/bin/python3.11", 3, 11, "/usr/bin/python3.11" },
	{ NULL, "/usr/bin/python3.11d", 3, 11, "/usr/bin/python3.11d" }, /* Debian's Py_DEBUG build */
	{ NULL, "sid-root/usr/bin/python3.13", 3, 13, "bin/python3.13-run" },
	{ NULL, "sid-root/usr/bin/python3.14", 3, 14, "bin/python3.14-run" },
	{ NULL, "sid-root/usr/bin/python3.15", 3, 15, "bin/python3.15-run" },
};

static const char *path_of(const struct interp *in, const char *rel, char *buf, size_t cap)
{
	if (rel[0] == '/')
		snprintf(buf, cap, "%s", rel);
	else if (in->ver != NULL)
		snprintf(buf, cap, "%s/versions/%s/%s", pyenv_root, in->ver, rel);
	else
		snprintf(buf, cap, "%s/%s", pythons, rel);
	return buf;
}

/* ------------------------------------------------------------------ images */

/* Memory that reads like the file's data, with the first bytes of
 * _PyRuntime (the _Py_DebugOffsets) taken from a patchable copy. */
struct fileimg {
	struct pk_elf *elf;
	uint64_t rt;
	uint8_t head[4096];
	size_t headlen;
};

static int fileimg_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct fileimg *im = ctx;

	if (addr >= im->rt && addr - im->rt < im->headlen && len <= im->headlen - (addr - im->rt)) {
		memcpy(buf, im->head + (addr - im->rt), len);
		return 0;
	}
	return pk_elf_read(im->elf, addr, buf, len) == 0 ? 0 : -EFAULT;
}

static void fileimg_destroy(void *ctx)
{
	(void)ctx;
}

static const struct pk_mem_ops fileimg_ops = { fileimg_read, fileimg_destroy };

static struct pk_elf *open_or_skip(const char *path)
{
	struct pk_elf *e = NULL;

	if (access(path, R_OK) != 0) {
		fprintf(stderr, "skip: %s absent\n", path);
		return NULL;
	}
	pk_error_clear();
	if (unit_elf_open(path, path, &e) != 0)
		fail_msg("pk_elf_open %s: %s", path, pk_error_message());
	return e;
}

static uint64_t runtime_of(struct pk_elf *e)
{
	uint64_t v = 0, s = 0;

	if (pk_elf_symbol(e, "_PyRuntime", &v, &s) == 0)
		return v;
	return 0;
}

/* The model pk_py_open builds (table entry, _Py_DebugOffsets from the file's
 * initial bytes on 3.13+), for an interpreter file. im->head may be patched
 * by the caller first (set patched). */
static struct pk_py *open_file_image(struct fileimg *im, const struct pk_layout *table, int major, int minor,
				     bool patched)
{
	struct pk_mem *mem = NULL;
	struct pk_py *py = NULL;

	im->rt = runtime_of(im->elf);
	if (!patched) {
		im->headlen = table->dbg_size > 0 ? (size_t)table->dbg_size : 0;
		if (im->headlen > 0)
			assert_int_equal(pk_elf_read(im->elf, im->rt, im->head, im->headlen), 0);
	}
	assert_int_equal(pk_mem_open_ops(&fileimg_ops, im, &mem), 0);
	assert_int_equal(pk_py_open_image(table, major, minor, im->rt != 0 ? im->rt : 0x1000, mem, &py), 0);
	return py;
}

static unsigned popcount(uint64_t m)
{
	return (unsigned)__builtin_popcountll(m);
}

static void names_of(uint64_t m, char *buf, size_t cap)
{
	buf[0] = '\0';
	for (int i = 0; i < PK_LF_COUNT; i++)
		if ((m >> i) & 1)
			snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? " " : "", pk_lf_info[i].name);
}

/* What every build of that version must have confirmed by its own code. */
static uint64_t must_verify(int major, int minor)
{
	uint64_t m = BIT(PK_LF_IS_NEXT) | BIT(PK_LF_IS_TSTATE_HEAD) | BIT(PK_LF_TS_NEXT) | BIT(PK_LF_TS_THREAD_ID) |
		     BIT(PK_LF_TS_ASYNC_EXC);

	if (major == 3 && minor >= 7)
		m |= BIT(PK_LF_RT_INTERPRETERS_HEAD) | BIT(PK_LF_RT_INTERPRETERS_MAIN) | BIT(PK_LF_RT_SIZE) |
		     BIT(PK_LF_IS_ID);
	/* (The GIL's locked field is confirmed too, except in the debug
	 * build, whose PyEval_ThreadsInitialized has another shape.) */
	if (major == 3 && minor >= 7 && minor <= 11)
		m |= BIT(PK_LF_RT_TSTATE_CURRENT);
	if (major == 3 && minor >= 9)
		m |= BIT(PK_LF_TS_INTERP);
	if (major == 2 || minor < 12)
		m |= BIT(PK_LF_OB_REFCNT);
	/* The eval-breaker signal of the write path: 3.7 and 3.10-3.12 from
	 * _PyEval_SignalAsyncExc (3.8 and 3.9 address it through pointers that
	 * are no table field), 3.13+ from PyThreadState_SetAsyncExc. */
	if (major == 3 && minor == 7)
		m |= BIT(PK_LF_RT_EVAL_BREAKER) | BIT(PK_LF_RT_PENDING_ASYNC_EXC);
	if (major == 3 && minor >= 10 && minor <= 12)
		m |= BIT(PK_LF_IS_EVAL_BREAKER) | BIT(PK_LF_IS_PENDING_ASYNC_EXC);
	if (major == 3 && minor >= 13)
		m |= BIT(PK_LF_TS_EVAL_BREAKER);
	return m;
}

static void check_interp_file(const struct interp *in, unsigned *checked)
{
	char path[1024], names[512];
	const struct pk_layout *table = pk_layout_find(in->major, in->minor);
	struct fileimg im;
	struct pk_py *py;
	char version[16];
	int rc;

	memset(&im, 0, sizeof(im));
	im.elf = open_or_skip(path_of(in, in->file, path, sizeof(path)));
	if (im.elf == NULL)
		return;
	assert_non_null(table);
	py = open_file_image(&im, table, in->major, in->minor, false);
	snprintf(version, sizeof(version), "%d.%d", in->major, in->minor);
	pk_error_clear();
	rc = pk_layout_check_elf(&py->layout, im.elf, im.rt, in->major, in->minor, version, &py->lcheck);
	if (rc != 0)
		fail_msg("%s: check refused: %s", path, pk_error_message());
	names_of(py->lcheck.verified, names, sizeof(names));
	fprintf(stderr, "%s (%s): %u confirmed [%s], %u from _Py_DebugOffsets, exact %d\n", path, version,
		popcount(py->lcheck.verified), names, popcount(py->lcheck.dbgoff), pk_py_layout_exact(py));
	assert_string_equal(py->lcheck.mismatch, "");
	assert_int_equal(py->lcheck.adapted, 0);
	if ((py->lcheck.verified & must_verify(in->major, in->minor)) != must_verify(in->major, in->minor)) {
		names_of(must_verify(in->major, in->minor) & ~py->lcheck.verified, names, sizeof(names));
		fail_msg("%s: not confirmed by the binary: %s", path, names);
	}
	assert_true(pk_py_layout_exact(py));
	pk_py_close(py);
	pk_elf_close(im.elf);
	(*checked)++;
}

static void test_every_interpreter_file(void **state)
{
	unsigned checked = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(interps) / sizeof(interps[0]); i++)
		check_interp_file(&interps[i], &checked);
	if (checked == 0)
		skip();
}

/* A table entry and the file of that version, for the tests below. */
static bool open_pair(int idx, struct fileimg *im, struct pk_py **py)
{
	char path[1024];
	const struct interp *in = &interps[idx];

	memset(im, 0, sizeof(*im));
	im->elf = open_or_skip(path_of(in, in->file, path, sizeof(path)));
	if (im->elf == NULL)
		return false;
	*py = open_file_image(im, pk_layout_find(in->major, in->minor), in->major, in->minor, false);
	return true;
}

#define I_312 7
#define I_309 4
#define I_307 2
#define I_SID314 12
#define I_SID315 13

static void close_pair(struct fileimg *im, struct pk_py *py)
{
	pk_py_close(py);
	pk_elf_close(im->elf);
}

/* async_exc is known from PyThreadState_SetAsyncExc's store only (a
 * pattern): a table that disagrees is refused, naming the field. */
static void test_wrong_async_exc_refused(void **state)
{
	struct fileimg im;
	struct pk_py *py;

	(void)state;
	if (!open_pair(I_312, &im, &py))
		skip();
	py->layout.ts_async_exc += 8;
	pk_error_clear();
	assert_int_equal(pk_layout_check_elf(&py->layout, im.elf, im.rt, 3, 12, "3.12.1", &py->lcheck), -ENOTSUP);
	assert_non_null(strstr(pk_error_message(), "layout of Python 3.12.1 in "));
	assert_non_null(strstr(pk_error_message(),
			       "does not match pykill's table: ts_async_exc is at 0x80, table says 0x88"));
	assert_false(pk_py_layout_exact(py));
	close_pair(&im, py);
}

/* The eval-breaker fields of 3.10-3.12 come from _PyEval_SignalAsyncExc,
 * whose only accesses are two stores of 1: swapped in the table, the
 * binary's order is taken. */
static void test_wrong_eval_breaker_adapted(void **state)
{
	struct fileimg im;
	struct pk_py *py;
	int32_t t;

	(void)state;
	if (!open_pair(I_312, &im, &py))
		skip();
	t = py->layout.is_ceval_eval_breaker;
	py->layout.is_ceval_eval_breaker = py->layout.is_ceval_pending_async_exc;
	py->layout.is_ceval_pending_async_exc = t;
	pk_error_clear();
	assert_int_equal(pk_layout_check_elf(&py->layout, im.elf, im.rt, 3, 12, "3.12.1", &py->lcheck), 0);
	assert_int_equal(py->layout.is_ceval_pending_async_exc, 0x1a4);
	assert_int_equal(py->layout.is_ceval_eval_breaker, 0x170);
	assert_int_equal(py->lcheck.adapted, BIT(PK_LF_IS_EVAL_BREAKER) | BIT(PK_LF_IS_PENDING_ASYNC_EXC));
	close_pair(&im, py);
}

/* The thread id is known from the comparison in PyThreadState_SetAsyncExc
 * only (a pattern): refused, like async_exc. */
static void test_wrong_thread_id_refused(void **state)
{
	struct fileimg im;
	struct pk_py *py;

	(void)state;
	if (!open_pair(I_309, &im, &py))
		skip();
	py->layout.ts_thread_id += 8;
	pk_error_clear();
	assert_int_equal(pk_layout_check_elf(&py->layout, im.elf, im.rt, 3, 9, "3.9.18", &py->lcheck), -ENOTSUP);
	assert_non_null(strstr(pk_error_message(), "ts_thread_id is at 0xb0, table says 0xb8"));
	close_pair(&im, py);
}

/* PyThreadState_Next is nothing but "return tstate->next": the binary's
 * value is taken, and the layout is no longer "the table's, exact". */
static void test_wrong_next_adapted(void **state)
{
	struct fileimg im;
	struct pk_py *py;

	(void)state;
	if (!open_pair(I_312, &im, &py))
		skip();
	assert_true(pk_py_layout_exact(py));
	py->layout.ts_next = 0x10;
	pk_error_clear();
	assert_int_equal(pk_layout_check_elf(&py->layout, im.elf, im.rt, 3, 12, "3.12.1", &py->lcheck), 0);
	assert_int_equal(py->layout.ts_next, 8);
	assert_int_equal(py->lcheck.adapted, BIT(PK_LF_TS_NEXT));
	assert_true(py->lcheck.verified & BIT(PK_LF_TS_NEXT));
	/* Every write-path field is still confirmed by the binary, ob_refcnt
	 * aside: 3.12 does not count references to exception types. */
	assert_true(pk_py_layout_exact(py));
	close_pair(&im, py);
}

/* The py-spy case: 3.7.0-3.7.3 keep gilstate.tstate_current elsewhere in
 * _PyRuntime than later 3.7, and the struct has another size. Simulated by
 * moving the runtime's fields in the 3.7.16 table: every one the binary
 * gives by a whole accessor, the symbol size, the GIL's place and the
 * eval-breaker stores is taken from the binary. */
static void test_runtime_drift_adapted(void **state)
{
	struct fileimg im;
	struct pk_py *py;

	(void)state;
	if (!open_pair(I_307, &im, &py))
		skip();
	py->layout.rt_gilstate_tstate_current -= 0x58;
	py->layout.rt_size -= 0x58;
	py->layout.rt_ceval_gil -= 0x58;
	py->layout.rt_ceval_eval_breaker -= 0x58;
	py->layout.rt_ceval_pending_async_exc -= 0x58;
	assert_int_equal(pk_layout_check_elf(&py->layout, im.elf, im.rt, 3, 7, "3.7.16", &py->lcheck), 0);
	assert_int_equal(py->layout.rt_gilstate_tstate_current, 0x5c8);
	assert_int_equal(py->layout.rt_size, 0x5f0);
	assert_int_equal(py->layout.rt_ceval_gil + py->layout.gil_locked, 0x500);
	assert_int_equal(py->layout.rt_ceval_eval_breaker, 0x2c8);
	assert_int_equal(py->layout.rt_ceval_pending_async_exc, 0x2e4);
	assert_int_equal(py->lcheck.adapted, BIT(PK_LF_RT_TSTATE_CURRENT) | BIT(PK_LF_RT_SIZE) |
						     BIT(PK_LF_RT_GIL_LOCKED) | BIT(PK_LF_RT_EVAL_BREAKER) |
						     BIT(PK_LF_RT_PENDING_ASYNC_EXC));
	/* Not the table's struct any more, but 3.7's write path is confirmed
	 * field by field (_PyEval_SignalAsyncExc, Py_IncRef for ob_refcnt):
	 * still exact. Without the eval-breaker facts it would not be. */
	assert_true(pk_py_layout_exact(py));
	py->lcheck.verified &= ~BIT(PK_LF_RT_EVAL_BREAKER);
	assert_false(pk_py_layout_exact(py));
	close_pair(&im, py);
}

/* When _Py_DebugOffsets and the code disagree, neither wins. */
static void test_dbgoff_contradicted_refused(void **state)
{
	struct fileimg im;
	struct pk_py *py;

	(void)state;
	if (!open_pair(I_SID314, &im, &py))
		skip();
	assert_true(py->lcheck.dbgoff & BIT(PK_LF_RT_INTERPRETERS_HEAD));
	py->layout.rt_interpreters_head += 8;
	pk_error_clear();
	assert_int_equal(pk_layout_check_elf(&py->layout, im.elf, im.rt, 3, 14, "3.14.10", &py->lcheck), -ENOTSUP);
	assert_non_null(strstr(pk_error_message(), "rt_interpreters_head is at 0x328, table says 0x330 (from "
						   "_Py_DebugOffsets)"));
	close_pair(&im, py);
}

static void put_u64(uint8_t *buf, int32_t pos, uint64_t v)
{
	memcpy(buf + pos, &v, sizeof(v));
}

static uint64_t get_u64(const uint8_t *buf, int32_t pos)
{
	uint64_t v;

	memcpy(&v, buf + pos, sizeof(v));
	return v;
}

/* A _Py_DebugOffsets whose thread_id lies outside the thread state size it
 * gives (what a reorganised struct read at the old positions looks like)
 * is not used: the table's values stay, and without a table for the
 * version pk_py_open would refuse. */
static void test_dbgoff_inconsistent_unused(void **state)
{
	const struct pk_layout *t315 = pk_layout_find(3, 15);
	struct fileimg im;
	struct pk_py *py;
	char path[1024];

	(void)state;
	memset(&im, 0, sizeof(im));
	im.elf = open_or_skip(path_of(&interps[I_SID315], interps[I_SID315].file, path, sizeof(path)));
	if (im.elf == NULL)
		skip();
	im.rt = runtime_of(im.elf);
	im.headlen = (size_t)t315->dbg_size;
	assert_int_equal(pk_elf_read(im.elf, im.rt, im.head, im.headlen), 0);
	put_u64(im.head, t315->dbg_ts_thread_id, get_u64(im.head, t315->dbg_ts_size) + 8);
	put_u64(im.head, t315->dbg_ts_next, 0x18); /* a value that would differ from the table */
	py = open_file_image(&im, t315, 3, 15, true);
	assert_non_null(strstr(py->dbgoff_problem, "_Py_DebugOffsets is inconsistent: ts_thread_id = "));
	assert_int_equal(py->lcheck.dbgoff, 0);
	assert_int_equal(py->layout.ts_next, t315->ts_next);
	pk_py_close(py);
	pk_elf_close(im.elf);
}

/* A 3.16 that has no table: 3.15's positions and the target's
 * _Py_DebugOffsets. Without a binary to confirm async_exc (an image), the
 * write path is not exact; with the binary's PyThreadState_SetAsyncExc
 * confirming it, it is. The same image as 3.15 is exact by the table. */
static void test_exact_316_image(void **state)
{
	const struct pk_layout *t315 = pk_layout_find(3, 15);
	struct fileimg im;
	struct pk_py *py;
	char path[1024];
	uint64_t hex;

	(void)state;
	memset(&im, 0, sizeof(im));
	im.elf = open_or_skip(path_of(&interps[I_SID315], interps[I_SID315].file, path, sizeof(path)));
	if (im.elf == NULL)
		skip();
	py = open_file_image(&im, t315, 3, 15, false);
	assert_true(pk_py_layout_exact(py));
	pk_py_close(py);

	hex = get_u64(im.head, t315->dbg_version);
	put_u64(im.head, t315->dbg_version, (hex & ~0xff0000ull) | (16u << 16));
	py = open_file_image(&im, t315, 3, 16, true);
	assert_string_equal(py->dbgoff_problem, "");
	assert_true(py->lcheck.dbgoff & BIT(PK_LF_TS_THREAD_ID));
	assert_false(py->lcheck.dbgoff & BIT(PK_LF_TS_ASYNC_EXC));
	assert_false(pk_py_layout_exact(py));

	assert_int_equal(pk_layout_check_elf(&py->layout, im.elf, im.rt, 3, 16, "3.16.2", &py->lcheck), 0);
	assert_true(py->lcheck.verified & BIT(PK_LF_TS_ASYNC_EXC));
	assert_true(pk_py_layout_exact(py));
	pk_py_close(py);
	pk_elf_close(im.elf);
}

/* -------------------------------------------------------------- processes */

/* Start argv with a pipe on stdout; return once it printed "ready". */
static pid_t start_ready(char *const argv[], const char *pythonhome)
{
	int fds[2];
	char buf[16];
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		if (pythonhome != NULL)
			setenv("PYTHONHOME", pythonhome, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	while (got < 6 && (n = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	if (got < 6 || memcmp(buf, "ready\n", 6) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("%s did not start", argv[0]);
	}
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

#define SCRIPT "import sys, time\nsys.stdout.write('ready\\n')\nsys.stdout.flush()\nwhile True: time.sleep(0.05)\n"

static void test_every_interpreter_live(void **state)
{
	unsigned checked = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(interps) / sizeof(interps[0]); i++) {
		const struct interp *in = &interps[i];
		char path[1024], names[512];
		char *argv[] = { path, "-c", SCRIPT, NULL };
		struct pk_py *py = NULL;
		pid_t pid;
		int rc;

		path_of(in, in->run, path, sizeof(path));
		if (access(path, X_OK) != 0) {
			fprintf(stderr, "skip: %s absent\n", path);
			continue;
		}
		pid = start_ready(argv, NULL);
		pk_error_clear();
		rc = pk_py_open(pid, &py);
		stop(pid);
		if (rc != 0)
			fail_msg("%s: pk_py_open: %d %s", path, rc, pk_error_message());
		names_of(py->lcheck.verified, names, sizeof(names));
		fprintf(stderr, "%s: Python %s, %s; confirmed [%s]\n", path, pk_py_version(py), pk_py_layout_source(py),
			names);
		assert_int_equal(py->lcheck.adapted, 0);
		assert_true(pk_py_layout_exact(py));
		assert_int_equal(py->lcheck.verified & must_verify(in->major, in->minor), must_verify(in->major, in->minor));
		pk_py_close(py);
		checked++;
	}
	if (checked == 0)
		skip();
}

/* File offset of link-time address vaddr in an ELF image in memory. */
static size_t file_offset(const uint8_t *img, size_t len, uint64_t vaddr)
{
	Elf64_Ehdr eh;

	assert_true(len >= sizeof(eh));
	memcpy(&eh, img, sizeof(eh));
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		assert_true(eh.e_phoff + (i + 1) * sizeof(ph) <= len);
		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr && vaddr + 8 <= ph.p_vaddr + ph.p_filesz)
			return (size_t)(ph.p_offset + (vaddr - ph.p_vaddr));
	}
	fail_msg("0x%" PRIx64 " is in no PT_LOAD", vaddr);
	return 0;
}

/* A copy of sid's python3.15, patched by patch(), run until it is ready:
 * returns its pid (0 when python3.15 is absent); dst in dir is the copy,
 * for remove_copy(). */
typedef void (*patch_fn)(uint8_t *img, size_t len, struct pk_elf *e);

static void remove_copy(const char *dir, const char *dst)
{
	unlink(dst);
	rmdir(dir);
}

static pid_t start_patched_315(patch_fn patch, char *dir, char *dst, size_t cap)
{
	char src[1024], home[1024];
	char *argv[] = { dst, "-c", SCRIPT, NULL };
	struct pk_elf *e;
	uint8_t *img;
	size_t len;
	struct stat st;
	FILE *f;
	pid_t pid;

	snprintf(src, sizeof(src), "%s/bin/python3.15", pythons);
	snprintf(home, sizeof(home), "%s/sid-root/usr", pythons);
	if (access(src, X_OK) != 0) {
		fprintf(stderr, "skip: %s absent\n", src);
		return 0;
	}
	f = fopen(src, "rb");
	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	len = (size_t)st.st_size;
	img = malloc(len);
	assert_non_null(img);
	assert_int_equal(fread(img, 1, len, f), len);
	fclose(f);
	e = open_or_skip(src);
	assert_non_null(e);
	patch(img, len, e);
	pk_elf_close(e);

	assert_non_null(mkdtemp(dir));
	snprintf(dst, cap, "%s/python3.15", dir);
	f = fopen(dst, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(img, 1, len, f), len);
	fclose(f);
	free(img);
	assert_int_equal(chmod(dst, 0755), 0);
	pid = start_ready(argv, home);
	return pid;
}

/* Py_Version and _Py_DebugOffsets.version say 3.16 (the interpreter itself
 * never reads either). */
static void patch_316(uint8_t *img, size_t len, struct pk_elf *e)
{
	const struct pk_layout *t315 = pk_layout_find(3, 15);
	uint64_t pyver, size, rt;
	uint32_t hex;

	assert_int_equal(pk_elf_symbol(e, "Py_Version", &pyver, &size), 0);
	assert_int_equal(pk_elf_symbol(e, "_PyRuntime", &rt, &size), 0);
	memcpy(&hex, img + file_offset(img, len, pyver), 4);
	hex = (hex & ~0xff0000u) | (16u << 16);
	memcpy(img + file_offset(img, len, pyver), &hex, 4);
	memcpy(img + file_offset(img, len, rt + (uint64_t)t315->dbg_version), &hex, 4);
}

/* A running "3.16": pk_py_open takes 3.15's positions and the target's
 * debug offsets, and confirms async_exc from the code: exact, and it says
 * which table it used. */
static void test_live_316(void **state)
{
	char dir[] = "/tmp/pk-layoutcheck-XXXXXX", dst[1100];
	struct pk_py *py = NULL;
	pid_t pid;
	int rc;

	(void)state;
	pid = start_patched_315(patch_316, dir, dst, sizeof(dst));
	if (pid == 0)
		skip();
	pk_error_clear();
	rc = pk_py_open(pid, &py);
	stop(pid);
	remove_copy(dir, dst);
	if (rc != 0)
		fail_msg("pk_py_open on the 3.16 copy: %d %s", rc, pk_error_message());
	fprintf(stderr, "3.16 copy: Python %s, %s\n", pk_py_version(py), pk_py_layout_source(py));
	assert_memory_equal(pk_py_version(py), "3.16.", 5);
	assert_non_null(strstr(pk_py_layout_source(py), "generated table 3.15 for 3.16 + _Py_DebugOffsets"));
	assert_false(py->lcheck.table_exact);
	assert_true(py->lcheck.verified & BIT(PK_LF_TS_ASYNC_EXC));
	assert_true(pk_py_layout_exact(py));
	pk_py_close(py);
}

/* A 3.16 whose PyThreadState_SetAsyncExc no longer has the shape the check
 * knows (the exception reaches async_exc through another register): nothing
 * confirms async_exc, _Py_DebugOffsets does not cover it, there is no 3.16
 * table: readable, but not exact, and pk_py_open says so at INFO. */
static void patch_316_opaque(uint8_t *img, size_t len, struct pk_elf *e)
{
	/* mov %r12,%rdi; xchg %rdi,0xa8(%rbx) */
	static const uint8_t seq[] = { 0x4c, 0x89, 0xe7, 0x48, 0x87, 0xbb, 0xa8, 0x00, 0x00, 0x00 };
	uint64_t fn, size;
	size_t off;
	int found = 0;

	patch_316(img, len, e);
	assert_int_equal(pk_elf_symbol(e, "PyThreadState_SetAsyncExc", &fn, &size), 0);
	off = file_offset(img, len, fn);
	assert_true(off + size <= len);
	for (size_t i = 0; i + sizeof(seq) <= size; i++) {
		if (memcmp(img + off + i, seq, sizeof(seq)) == 0) {
			img[off + i + 2] = 0xef; /* mov %r13,%rdi */
			found++;
		}
	}
	if (found != 1)
		fail_msg("python3.15's PyThreadState_SetAsyncExc: %d copies of the async_exc exchange", found);
}

static char logged[4096];

static void keep_log(enum pk_log_level level, const char *msg, void *userdata)
{
	(void)level;
	(void)userdata;
	snprintf(logged + strlen(logged), sizeof(logged) - strlen(logged), "%s\n", msg);
}

static void test_live_316_not_exact(void **state)
{
	char dir[] = "/tmp/pk-layoutcheck-XXXXXX", dst[1100];
	struct pk_py *py = NULL;
	pid_t pid;
	int rc;

	(void)state;
	pid = start_patched_315(patch_316_opaque, dir, dst, sizeof(dst));
	if (pid == 0)
		skip();
	logged[0] = '\0';
	pk_log_set_handler(keep_log, NULL, PK_LOG_INFO);
	pk_error_clear();
	rc = pk_py_open(pid, &py);
	pk_log_set_handler(NULL, NULL, PK_LOG_WARN);
	stop(pid);
	remove_copy(dir, dst);
	if (rc != 0)
		fail_msg("pk_py_open on the 3.16 copy: %d %s", rc, pk_error_message());
	assert_memory_equal(pk_py_version(py), "3.16.", 5);
	assert_false(py->lcheck.verified & BIT(PK_LF_TS_ASYNC_EXC));
	assert_false(pk_py_layout_exact(py));
	assert_non_null(strstr(logged, "layout of Python 3.16.2 is not exact (no table for this version): the write "
				       "path's ts_async_exc is unconfirmed"));
	pk_py_close(py);
}

/* PyThreadState_SetAsyncExc stores async_exc 16 bytes further than the
 * table (and _Py_DebugOffsets does not cover it): the binary contradicts
 * the table on a field the write path stores through; pk_py_open refuses,
 * naming it. (The patched interpreter runs; nothing here calls that
 * function.) */
static void patch_async_exc(uint8_t *img, size_t len, struct pk_elf *e)
{
	static const uint8_t xchg[] = { 0x48, 0x87, 0xbb, 0xa8, 0x00, 0x00, 0x00 }; /* xchg %rdi,0xa8(%rbx) */
	uint64_t fn, size;
	size_t off;
	int found = 0;

	assert_int_equal(pk_elf_symbol(e, "PyThreadState_SetAsyncExc", &fn, &size), 0);
	off = file_offset(img, len, fn);
	assert_true(off + size <= len);
	for (size_t i = 0; i + sizeof(xchg) <= size; i++) {
		if (memcmp(img + off + i, xchg, sizeof(xchg)) == 0) {
			img[off + i + 3] = 0xb8;
			found++;
		}
	}
	if (found != 1)
		fail_msg("python3.15's PyThreadState_SetAsyncExc: %d copies of xchg %%rdi,0xa8(%%rbx)", found);
}

static void test_live_mismatch_refused(void **state)
{
	char dir[] = "/tmp/pk-layoutcheck-XXXXXX", dst[1100];
	struct pk_py *py = NULL;
	pid_t pid;
	int rc;

	(void)state;
	pid = start_patched_315(patch_async_exc, dir, dst, sizeof(dst));
	if (pid == 0)
		skip();
	pk_error_clear();
	rc = pk_py_open(pid, &py);
	stop(pid);
	remove_copy(dir, dst);
	fprintf(stderr, "patched async_exc: %d %s\n", rc, pk_error_message());
	assert_int_equal(rc, -ENOTSUP);
	assert_null(py);
	assert_non_null(strstr(pk_error_message(), "layout of Python 3.15."));
	assert_non_null(strstr(pk_error_message(),
			       "does not match pykill's table: ts_async_exc is at 0xb8, table says 0xa8"));
}

static int setup(void **state)
{
	const char *env;

	(void)state;
	env = getenv("PYENV_ROOT");
	if (env != NULL && env[0] != '\0')
		snprintf(pyenv_root, sizeof(pyenv_root), "%s", env);
	else
		snprintf(pyenv_root, sizeof(pyenv_root), "%s/.pyenv", getenv("HOME") ? getenv("HOME") : "/root");
	env = getenv("PYKILL_PYTHONS");
	if (env != NULL && env[0] != '\0')
		snprintf(pythons, sizeof(pythons), "%s", env);
	else
		snprintf(pythons, sizeof(pythons), "%s/.cache/pykill-pythons",
			 getenv("HOME") ? getenv("HOME") : "/root");
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_interpreter_file),
		cmocka_unit_test(test_wrong_async_exc_refused),
		cmocka_unit_test(test_wrong_eval_breaker_adapted),
		cmocka_unit_test(test_wrong_thread_id_refused),
		cmocka_unit_test(test_wrong_next_adapted),
		cmocka_unit_test(test_runtime_drift_adapted),
		cmocka_unit_test(test_dbgoff_contradicted_refused),
		cmocka_unit_test(test_dbgoff_inconsistent_unused),
		cmocka_unit_test(test_exact_316_image),
		cmocka_unit_test(test_every_interpreter_live),
		cmocka_unit_test(test_live_316),
		cmocka_unit_test(test_live_316_not_exact),
		cmocka_unit_test(test_live_mismatch_refused),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
