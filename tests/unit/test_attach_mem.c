/* SPDX-License-Identifier: MIT */
/* attach: memory of another process (process_vm_readv, /proc/PID/mem),
 * the page cache, writes, and the ops backend. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pk_attach.h"
#include "pk_log.h"
#include "unit-util.h"

#define PAGE 4096u
#define NPAGES 8u

/* What the child tells us: a region of NPAGES pages whose page 3 is
 * unmapped (a hole), filled with pattern(addr); a read-only page; a string. */
struct layout {
	uint64_t region;
	uint64_t ro;
	uint64_t str;
	size_t str_len;
};

static uint8_t pattern(uint64_t addr)
{
	return (uint8_t)((addr * 2654435761u) >> 13);
}

static const char hello[] = "pykill reads this from another process";

struct child {
	pid_t pid;
	int go; /* write end: closing it lets the child exit */
	struct layout l;
};

static void child_main(int out, int in)
{
	struct layout l;
	uint8_t *r, *ro;
	char *s;
	char c;

	r = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	s = malloc(sizeof(hello));
	if (r == MAP_FAILED || ro == MAP_FAILED || s == NULL)
		_exit(2);
	for (size_t i = 0; i < NPAGES * PAGE; i++)
		r[i] = pattern((uint64_t)(uintptr_t)(r + i));
	munmap(r + 3 * PAGE, PAGE);
	memset(ro, 0xab, PAGE);
	mprotect(ro, PAGE, PROT_READ);
	memcpy(s, hello, sizeof(hello));
	l.region = (uint64_t)(uintptr_t)r;
	l.ro = (uint64_t)(uintptr_t)ro;
	l.str = (uint64_t)(uintptr_t)s;
	l.str_len = sizeof(hello);
	if (write(out, &l, sizeof(l)) != (ssize_t)sizeof(l))
		_exit(2);
	/* Wait until the parent closes its end; then report what the parent
	 * wrote into the read-only page, through the exit status. */
	while (read(in, &c, 1) < 0 && errno == EINTR)
		;
	_exit(ro[0] == 0x5a ? 42 : ro[0] == 0xab ? 43 : 44);
}

static void child_start(struct child *c)
{
	int up[2], down[2];

	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		close(up[0]);
		close(down[1]);
		child_main(up[1], down[0]);
	}
	close(up[1]);
	close(down[0]);
	assert_int_equal(read(up[0], &c->l, sizeof(c->l)), (ssize_t)sizeof(c->l));
	close(up[0]);
	c->go = down[1];
}

static int child_stop(struct child *c)
{
	int st;

	close(c->go);
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static struct child kid;

static int setup(void **state)
{
	(void)state;
	child_start(&kid);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	child_stop(&kid);
	return 0;
}

/* ---------------------------------------------------------------- reads */

static void check_pattern(uint64_t addr, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern(addr + i))
			fail_msg("byte %zu at 0x%llx differs", i, (unsigned long long)(addr + i));
}

static void test_read_basic(void **state)
{
	struct pk_mem *mem;
	uint8_t buf[3 * PAGE];
	char s[sizeof(hello)];
	uint64_t r = kid.l.region;

	(void)state;
	assert_int_equal(pk_mem_open_pid(kid.pid, &mem), 0);
	assert_int_equal(pk_mem_read(mem, kid.l.str, s, kid.l.str_len), 0);
	assert_string_equal(s, hello);
	/* within a page, across a boundary, three whole pages */
	assert_int_equal(pk_mem_read(mem, r + 10, buf, 100), 0);
	check_pattern(r + 10, buf, 100);
	assert_int_equal(pk_mem_read(mem, r + PAGE - 7, buf, 20), 0);
	check_pattern(r + PAGE - 7, buf, 20);
	assert_int_equal(pk_mem_read(mem, r + 4 * PAGE, buf, 3 * PAGE), 0);
	check_pattern(r + 4 * PAGE, buf, 3 * PAGE);
	pk_mem_close(mem);
}

static void test_read_bad(void **state)
{
	struct pk_mem *mem;
	uint8_t buf[64];
	uint64_t r = kid.l.region;
	struct pk_mem_stats st;
	void *big;

	(void)state;
	assert_int_equal(pk_mem_open_pid(kid.pid, &mem), 0);
	for (int cached = 0; cached < 2; cached++) {
		pk_mem_cache_enable(mem, cached);
		assert_int_equal(pk_mem_read(mem, 0, buf, 8), -EFAULT);
		assert_int_equal(pk_mem_read(mem, UINT64_MAX, buf, 1), -EFAULT);
		assert_int_equal(pk_mem_read(mem, UINT64_MAX - 3, buf, 8), -EFAULT); /* wraps */
		assert_int_equal(pk_mem_read(mem, 0xffff800000000000ull, buf, 8), -EFAULT);
		assert_int_equal(pk_mem_read(mem, 0x8000000000000000ull, buf, 8), -EFAULT);
		assert_int_equal(pk_mem_read(mem, r + 3 * PAGE, buf, 8), -EFAULT);   /* the hole */
		assert_int_equal(pk_mem_read(mem, r + 3 * PAGE - 4, buf, 8), -EFAULT); /* into it */
		assert_int_equal(pk_mem_read(mem, r + 4 * PAGE - 4, buf, 8), -EFAULT); /* out of it */
		assert_int_equal(pk_mem_read(mem, r + 3 * PAGE - 4, buf, 4), 0);      /* up to it */
		check_pattern(r + 3 * PAGE - 4, buf, 4);
		/* nothing to read is not an error, and touches nothing */
		assert_int_equal(pk_mem_read(mem, 0, NULL, 0), 0);
		assert_int_equal(pk_mem_read(mem, r, NULL, 8), -EINVAL);
	}
	pk_mem_get_stats(mem, &st);
	assert_true(st.reads >= 20);

	/* too long for one read: refused before touching anything */
	big = malloc((64u << 20) + 1);
	assert_non_null(big);
	pk_error_clear();
	assert_int_equal(pk_mem_read(mem, r, big, (64u << 20) + 1), -EINVAL);
	assert_true(strlen(pk_error_message()) > 0);
	/* a long read that fails part way */
	assert_int_equal(pk_mem_read(mem, r, big, 1u << 20), -EFAULT);
	free(big);
	pk_mem_close(mem);
	pk_error_clear();
}

static void test_readv_mixed(void **state)
{
	struct pk_mem *mem;
	uint64_t r = kid.l.region;
	uint8_t bufs[8][64];
	struct pk_mem_iov v[8] = {
		{ r + 5, bufs[0], 64 },
		{ 0, bufs[1], 8 },                       /* bad */
		{ r + PAGE - 32, bufs[2], 64 },          /* across a boundary */
		{ r + 3 * PAGE - 16, bufs[3], 32 },      /* into the hole: partial */
		{ r + 5 * PAGE, bufs[4], 64 },           /* after a failure */
		{ r + 6 * PAGE, NULL, 0 },               /* empty */
		{ UINT64_MAX - 10, bufs[6], 20 },        /* wraps */
		{ r + 8 * PAGE - 64, bufs[7], 64 },      /* last bytes of the region */
	};
	const bool want[8] = { true, false, true, false, true, true, false, true };
	bool ok[8];
	struct pk_mem_stats st;

	(void)state;
	assert_int_equal(pk_mem_open_pid(kid.pid, &mem), 0);
	for (int cached = 0; cached < 2; cached++) {
		pk_mem_cache_enable(mem, cached);
		memset(bufs, 0, sizeof(bufs));
		memset(ok, 0xff, sizeof(ok));
		assert_int_equal(pk_mem_readv(mem, v, 8, ok), -EFAULT);
		for (int i = 0; i < 8; i++) {
			assert_int_equal(ok[i], want[i]);
			if (want[i])
				check_pattern(v[i].addr, v[i].buf, v[i].len);
		}
		/* all good entries: 0, ok[] may be NULL */
		assert_int_equal(pk_mem_readv(mem, &v[0], 1, NULL), 0);
		assert_int_equal(pk_mem_readv(mem, &v[4], 2, NULL), 0);
		assert_int_equal(pk_mem_readv(mem, v, 8, NULL), -EFAULT);
	}
	pk_mem_cache_enable(mem, false);
	/* One system call for the good entries in a row. */
	pk_mem_get_stats(mem, &st);
	{
		uint64_t before = st.syscalls;
		struct pk_mem_iov g[3] = { v[0], v[2], v[4] };

		assert_int_equal(pk_mem_readv(mem, g, 3, ok), 0);
		pk_mem_get_stats(mem, &st);
		assert_int_equal(st.syscalls - before, 1);
	}
	pk_mem_close(mem);
}

/* More entries than IOV_MAX, every 7th bad: each chunk is retried after
 * its failing entry. */
static void test_readv_many(void **state)
{
	enum { N = 3000 };
	struct pk_mem *mem;
	struct pk_mem_iov *v = calloc(N, sizeof(*v));
	bool *ok = calloc(N, sizeof(*ok));
	uint8_t *bufs = calloc(N, 16);
	uint64_t r = kid.l.region;
	struct pk_mem_stats st;

	(void)state;
	assert_non_null(v);
	assert_non_null(ok);
	assert_non_null(bufs);
	for (size_t i = 0; i < N; i++) {
		v[i].addr = i % 7 == 3 ? r + 3 * PAGE + (i % PAGE) : r + (i * 13) % (3 * PAGE - 16);
		v[i].buf = bufs + 16 * i;
		v[i].len = 16;
	}
	assert_int_equal(pk_mem_open_pid(kid.pid, &mem), 0);
	assert_int_equal(pk_mem_readv(mem, v, N, ok), -EFAULT);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(ok[i], i % 7 != 3);
		if (ok[i])
			check_pattern(v[i].addr, v[i].buf, 16);
	}
	pk_mem_get_stats(mem, &st);
	/* one call per run of good entries, at most: not one per entry */
	assert_true(st.syscalls <= N / 7 + 3 + 2);
	pk_mem_close(mem);
	free(v);
	free(ok);
	free(bufs);
}

/* xorshift: the same reads with and without the cache. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_cache_identical(void **state)
{
	enum { ROUNDS = 4000 };
	struct pk_mem *a, *b;
	uint64_t seed = 0x1234567;
	uint64_t r = kid.l.region;
	uint8_t x[600], y[600];
	struct pk_mem_stats sa, sb;
	int failed = 0;

	(void)state;
	assert_int_equal(pk_mem_open_pid(kid.pid, &a), 0);
	assert_int_equal(pk_mem_open_pid(kid.pid, &b), 0);
	pk_mem_cache_enable(b, true);
	for (int i = 0; i < ROUNDS; i++) {
		/* from a page before the region to a page after it */
		uint64_t addr = r - PAGE + rnd(&seed) % ((NPAGES + 2) * PAGE);
		size_t len = 1 + rnd(&seed) % sizeof(x);
		int ra, rb;

		memset(x, 1, sizeof(x));
		memset(y, 2, sizeof(y));
		ra = pk_mem_read(a, addr, x, len);
		rb = pk_mem_read(b, addr, y, len);
		assert_int_equal(ra, rb);
		if (ra == 0)
			assert_memory_equal(x, y, len);
		else
			failed++;
	}
	assert_true(failed > 0);
	pk_mem_get_stats(a, &sa);
	pk_mem_get_stats(b, &sb);
	assert_int_equal(sa.reads, ROUNDS);
	assert_int_equal(sb.reads, ROUNDS);
	assert_int_equal(sa.cache_hits, 0);
	assert_true(sb.cache_hits > ROUNDS / 2);
	assert_true(sb.syscalls < sa.syscalls / 2);
	/* drop: the next read goes to the process again */
	pk_mem_cache_drop(b);
	{
		uint64_t before = sb.syscalls;

		assert_int_equal(pk_mem_read(b, r, x, 8), 0);
		pk_mem_get_stats(b, &sb);
		assert_int_equal(sb.syscalls, before + 1);
		assert_int_equal(pk_mem_read(b, r + 8, x, 8), 0);
		pk_mem_get_stats(b, &sb);
		assert_int_equal(sb.syscalls, before + 1);
	}
	pk_mem_close(a);
	pk_mem_close(b);
}

/* More distinct pages than the cache holds: it clears itself and goes on. */
static void test_cache_bounded(void **state)
{
	struct pk_mem *mem;
	uint8_t *local;
	size_t n = 6000;
	uint8_t x[8];

	(void)state;
	/* Our own memory through the live backend: pages are plentiful. */
	local = malloc(n * PAGE);
	assert_non_null(local);
	for (size_t i = 0; i < n; i++)
		local[i * PAGE + 5] = (uint8_t)i;
	assert_int_equal(pk_mem_open_pid(getpid(), &mem), 0);
	pk_mem_cache_enable(mem, true);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(pk_mem_read(mem, (uint64_t)(uintptr_t)(local + i * PAGE + 5), x, 1), 0);
			assert_int_equal(x[0], (uint8_t)i);
		}
	pk_mem_close(mem);
	free(local);
}

/* ---------------------------------------------------------------- ops */

/* A fake image: two regions that do not start or end on page boundaries. */
struct image {
	uint64_t base[2];
	size_t len[2];
	int reads;
	bool destroyed;
};

static int image_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct image *im = ctx;

	im->reads++;
	for (int k = 0; k < 2; k++)
		if (addr >= im->base[k] && len <= im->len[k] && addr - im->base[k] <= im->len[k] - len) {
			for (size_t i = 0; i < len; i++)
				((uint8_t *)buf)[i] = pattern(addr + i);
			return 0;
		}
	return -EFAULT;
}

static void image_destroy(void *ctx)
{
	((struct image *)ctx)->destroyed = true;
}

static void test_ops_backend(void **state)
{
	static const struct pk_mem_ops ops = { image_read, image_destroy };
	struct image im = { { 0x10010, 0x30000 }, { 0x1ff0, 0x3000 }, 0, false };
	struct pk_mem *mem;
	uint8_t buf[64];
	struct pk_mem_iov v[3] = {
		{ 0x10010, buf, 16 },
		{ 0x11ff8, buf + 16, 8 },  /* last bytes of region 0 */
		{ 0x32ff8, buf + 24, 16 }, /* crosses the end of region 1 */
	};
	bool ok[3];

	(void)state;
	assert_int_equal(pk_mem_open_ops(&ops, &im, &mem), 0);
	for (int cached = 0; cached < 2; cached++) {
		pk_mem_cache_enable(mem, cached);
		/* Exact reads inside a region succeed even where no whole page can
		 * be read. */
		assert_int_equal(pk_mem_read(mem, 0x10010, buf, 16), 0);
		check_pattern(0x10010, buf, 16);
		assert_int_equal(pk_mem_read(mem, 0x11ff0, buf, 16), 0);
		check_pattern(0x11ff0, buf, 16);
		assert_int_equal(pk_mem_read(mem, 0x10fff, buf, 2), 0); /* across a page, inside */
		check_pattern(0x10fff, buf, 2);
		assert_int_equal(pk_mem_read(mem, 0x10000, buf, 16), -EFAULT);
		assert_int_equal(pk_mem_read(mem, 0x30ff0, buf, 32), 0); /* whole pages: cached */
		check_pattern(0x30ff0, buf, 32);
		assert_int_equal(pk_mem_readv(mem, v, 3, ok), -EFAULT);
		assert_true(ok[0]);
		assert_true(ok[1]);
		assert_false(ok[2]);
		check_pattern(0x11ff8, buf + 16, 8);
	}
	/* Served from the cache: the backend is not asked again. */
	{
		int before = im.reads;

		assert_int_equal(pk_mem_read(mem, 0x31000, buf, 64), 0);
		assert_int_equal(im.reads, before);
	}
	assert_int_equal(pk_mem_write(mem, 0x30000, buf, 4), -EOPNOTSUPP);
	pk_mem_close(mem);
	assert_true(im.destroyed);
	assert_int_equal(pk_mem_open_ops(NULL, NULL, &mem), -EINVAL);
	pk_error_clear();
}

/* ---------------------------------------------------------------- writes */

static void test_write(void **state)
{
	struct child c;
	struct pk_mem *mem;
	uint8_t w[40], x[40];
	uint8_t one = 0x5a;

	(void)state;
	child_start(&c);
	assert_int_equal(pk_mem_open_pid(c.pid, &mem), 0);
	pk_mem_cache_enable(mem, true);
	assert_int_equal(pk_mem_read(mem, c.l.region + 100, x, sizeof(x)), 0);
	for (size_t i = 0; i < sizeof(w); i++)
		w[i] = (uint8_t)(i ^ 0xc3);
	assert_int_equal(pk_mem_write(mem, c.l.region + 100, w, sizeof(w)), 0);
	/* the write dropped the stale cached page */
	assert_int_equal(pk_mem_read(mem, c.l.region + 100, x, sizeof(x)), 0);
	assert_memory_equal(w, x, sizeof(w));
	/* a read-only page: through /proc/PID/mem */
	assert_int_equal(pk_mem_write(mem, c.l.ro, &one, 1), 0);
	assert_int_equal(pk_mem_read(mem, c.l.ro, x, 2), 0);
	assert_int_equal(x[0], 0x5a);
	assert_int_equal(x[1], 0xab);
	/* nowhere */
	pk_error_clear();
	assert_int_equal(pk_mem_write(mem, c.l.region + 3 * PAGE, w, 8), -EFAULT);
	assert_int_equal(pk_mem_write(mem, UINT64_MAX - 2, w, 8), -EINVAL);
	assert_int_equal(pk_mem_write(mem, 0, w, 0), 0);
	pk_error_clear();
	/* the child saw the read-only page change */
	assert_int_equal(child_stop(&c), 42);
	/* and now it is gone */
	assert_int_equal(pk_mem_read(mem, c.l.region, x, 8), -ESRCH);
	assert_int_equal(pk_mem_write(mem, c.l.region, w, 8), -ESRCH);
	pk_mem_close(mem);
	pk_error_clear();
	assert_int_equal(pk_mem_open_pid(c.pid, &mem), -ESRCH);
	pk_error_clear();
}

/* ---------------------------------------------------------------- fallback */

/* In a helper process whose seccomp filter makes process_vm_readv/writev
 * fail with EPERM, as container runtimes used to: every read must then go
 * through /proc/PID/mem with the same results. The filter does not check the
 * architecture field: fine for a test, not for a security boundary. */
static int deny_process_vm(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_readv, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_writev, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

static int fallback_checks(void)
{
	struct pk_mem *mem;
	uint64_t r = kid.l.region;
	uint8_t buf[3 * PAGE];
	struct pk_mem_iov v[3] = {
		{ r + 7, buf, 100 },
		{ r + 3 * PAGE, buf + 100, 8 },
		{ r + PAGE - 3, buf + 200, 10 },
	};
	bool ok[3];
	struct iovec l = { buf, 8 }, rv = { (void *)(uintptr_t)r, 8 };

	if (process_vm_readv(kid.pid, &l, 1, &rv, 1, 0) != -1 || errno != EPERM)
		return 10; /* the filter is not in effect */
	if (pk_mem_open_pid(kid.pid, &mem) != 0)
		return 11;
	if (pk_mem_read(mem, r + PAGE - 10, buf, 2 * PAGE) != 0)
		return 12;
	for (size_t i = 0; i < 2 * PAGE; i++)
		if (buf[i] != pattern(r + PAGE - 10 + i))
			return 13;
	if (pk_mem_read(mem, r + 3 * PAGE - 2, buf, 4) != -EFAULT || pk_mem_read(mem, 0, buf, 4) != -EFAULT ||
	    pk_mem_read(mem, UINT64_MAX - 8, buf, 4) != -EFAULT)
		return 14;
	if (pk_mem_readv(mem, v, 3, ok) != -EFAULT || !ok[0] || ok[1] || !ok[2])
		return 15;
	for (size_t i = 0; i < 10; i++)
		if (buf[200 + i] != pattern(r + PAGE - 3 + i))
			return 16;
	pk_mem_cache_enable(mem, true);
	if (pk_mem_read(mem, r + 5, buf, 16) != 0 || buf[0] != pattern(r + 5))
		return 17;
	/* writes too */
	buf[0] = (uint8_t)~pattern(r + 1);
	if (pk_mem_write(mem, r + 1, buf, 1) != 0 || pk_mem_read(mem, r + 1, buf + 1, 1) != 0 || buf[1] != buf[0])
		return 18;
	buf[0] = pattern(r + 1);
	if (pk_mem_write(mem, r + 1, buf, 1) != 0)
		return 19;
	pk_mem_close(mem);
	return 0;
}

/* A child that execs /bin/sleep when told to (a byte on the returned fd). */
static pid_t exec_child(int *go)
{
	int p[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			execl("/bin/sleep", "sleep", "60", (char *)NULL);
		_exit(7);
	}
	close(p[0]);
	*go = p[1];
	return pid;
}

/* The descriptor opened with the pk_mem stays with the address space of
 * that moment: after an exec, writes reach nothing (the new program is
 * untouched) and pk_mem_same_space says so, while a fresh pk_mem sees the
 * new program. */
static void test_exec_anchor(void **state)
{
	struct pk_mem *mem, *fresh;
	uint64_t word = 0x1122334455667788ull, back = 0;
	int go, st;
	pid_t pid;
	uint64_t t0;

	(void)state;
	pid = exec_child(&go);
	assert_int_equal(pk_mem_open_pid(pid, &mem), 0);
	assert_int_equal(pk_mem_same_space(mem), 0);
	assert_int_equal(write(go, "x", 1), 1);
	t0 = pk_now_ns();
	while (!unit_exe_contains(pid, "sleep")) {
		if (pk_now_ns() - t0 > 10000000000ull)
			fail_msg("the child did not exec");
		sched_yield();
	}
	assert_int_equal(pk_mem_same_space(mem), -ESRCH);
	assert_int_equal(pk_mem_open_pid(pid, &fresh), 0);
	assert_int_equal(pk_mem_same_space(fresh), 0);
	/* An address of the new program's stack, writable there: the old
	 * space's descriptor must not reach it. */
	{
		struct pk_maps maps;
		uint64_t addr = 0;

		assert_int_equal(pk_proc_maps(pid, &maps), 0);
		for (size_t i = 0; i < maps.n; i++)
			if (strcmp(maps.v[i].path, "[stack]") == 0)
				addr = maps.v[i].end - 64;
		pk_maps_free(&maps);
		assert_true(addr != 0);
		assert_int_equal(pk_mem_read(fresh, addr, &back, sizeof(back)), 0);
		assert_int_equal(pk_mem_write(mem, addr, &word, sizeof(word)), -ESRCH);
		assert_int_equal(pk_mem_read(fresh, addr, &word, sizeof(word)), 0);
		assert_memory_equal(&word, &back, sizeof(word));
	}
	pk_mem_close(fresh);
	pk_mem_close(mem);
	close(go);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
}

static void test_procmem_fallback(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (deny_process_vm() != 0)
			_exit(9);
		_exit(fallback_checks());
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_basic),
		cmocka_unit_test(test_read_bad),
		cmocka_unit_test(test_readv_mixed),
		cmocka_unit_test(test_readv_many),
		cmocka_unit_test(test_cache_identical),
		cmocka_unit_test(test_cache_bounded),
		cmocka_unit_test(test_ops_backend),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_procmem_fallback),
		cmocka_unit_test(test_exec_anchor),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
