/* SPDX-License-Identifier: MIT */
/* attach: /proc parsers on crafted text and on this process's own files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach-priv.h"
#include "pk_attach.h"
#include "pk_log.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---------------------------------------------------------------- maps */

static void test_maps_parse_basic(void **state)
{
	static const char text[] =
		"00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n"
		"00651000-00652000 rw-s 00051000 fd:1a 4294967296  /path with spaces/lib x.so (deleted)\n"
		"7ffd0000-7ffd1000 ---p 00000000 00:00 0 \n"
		"7ffe0000-7fff0000 rw-p 00000000 00:00 0                          [stack]\n"
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0          [vsyscall]";
	struct pk_maps m;

	(void)state;
	assert_int_equal(pk_maps_parse(S(text), &m), 0);
	assert_int_equal(m.n, 5);
	assert_int_equal(m.v[0].start, 0x400000);
	assert_int_equal(m.v[0].end, 0x452000);
	assert_int_equal(m.v[0].prot, PK_MAP_R | PK_MAP_X | PK_MAP_P);
	assert_int_equal(m.v[0].dev_major, 8);
	assert_int_equal(m.v[0].dev_minor, 2);
	assert_int_equal(m.v[0].inode, 173521);
	assert_string_equal(m.v[0].path, "/usr/bin/dbus-daemon");
	assert_int_equal(m.v[1].prot, PK_MAP_R | PK_MAP_W);
	assert_int_equal(m.v[1].offset, 0x51000);
	assert_int_equal(m.v[1].dev_major, 0xfd);
	assert_int_equal(m.v[1].dev_minor, 0x1a);
	assert_int_equal(m.v[1].inode, 4294967296ull);
	assert_string_equal(m.v[1].path, "/path with spaces/lib x.so (deleted)");
	assert_int_equal(m.v[2].prot, PK_MAP_P);
	assert_string_equal(m.v[2].path, "");
	assert_string_equal(m.v[3].path, "[stack]");
	assert_int_equal(m.v[4].start, 0xffffffffff600000ull);
	assert_string_equal(m.v[4].path, "[vsyscall]");

	assert_ptr_equal(pk_maps_find(&m, 0x400000), &m.v[0]);
	assert_ptr_equal(pk_maps_find(&m, 0x451fff), &m.v[0]);
	assert_null(pk_maps_find(&m, 0x452000));
	assert_null(pk_maps_find(&m, 0x3fffff));
	assert_ptr_equal(pk_maps_find(&m, 0x7ffeffff), &m.v[3]);
	assert_null(pk_maps_find(&m, 0));
	assert_null(pk_maps_find(&m, UINT64_MAX));
	pk_maps_free(&m);
	assert_null(m.v);
	assert_int_equal(m.n, 0);
}

static void test_maps_parse_edge(void **state)
{
	struct pk_maps m;

	(void)state;
	/* empty input, empty lines: no maps, not an error */
	assert_int_equal(pk_maps_parse("", 0, &m), 0);
	assert_int_equal(m.n, 0);
	assert_null(m.v);
	assert_int_equal(pk_maps_parse(NULL, 0, &m), 0);
	assert_int_equal(pk_maps_parse(S("\n\n"), &m), 0);
	assert_int_equal(m.n, 0);

	/* out of order input comes back sorted */
	assert_int_equal(pk_maps_parse(S("2000-3000 r--p 0 00:00 0 b\n1000-2000 r--p 0 00:00 0 a\n"), &m), 0);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.v[0].path, "a");
	assert_ptr_equal(pk_maps_find(&m, 0x2500), &m.v[1]);
	pk_maps_free(&m);

	/* a length that cuts the text: nothing beyond len is read */
	assert_int_equal(pk_maps_parse("1000-2000 r--p 0 00:00 0 /abcdef", 28, &m), 0);
	assert_string_equal(m.v[0].path, "/ab");
	pk_maps_free(&m);

	/* malformed */
	assert_int_equal(pk_maps_parse(S("1000-2000 r--p 0 00:00\n"), &m), -EINVAL);
	assert_int_equal(pk_maps_parse(S("1000 2000 r--p 0 00:00 0\n"), &m), -EINVAL);
	assert_int_equal(pk_maps_parse(S("2000-1000 r--p 0 00:00 0\n"), &m), -EINVAL);
	assert_int_equal(pk_maps_parse(S("1000-2000 rz-p 0 00:00 0\n"), &m), -EINVAL);
	assert_int_equal(pk_maps_parse(S("1000-2000 r--q 0 00:00 0\n"), &m), -EINVAL);
	assert_int_equal(pk_maps_parse(S("1000-2000 r--p 0 00:00 12x /a\n"), &m), -EINVAL);
	assert_int_equal(pk_maps_parse(S("1000-2000 r-"), &m), -EINVAL);
	/* 17 hex digits overflow 64 bits */
	assert_int_equal(pk_maps_parse(S("10000000000000000-20000000000000000 r--p 0 00:00 0\n"), &m), -EINVAL);
	assert_int_equal(pk_maps_parse(S("1000-2000 r--p 0 00:00 99999999999999999999999\n"), &m), -EINVAL);
	assert_null(m.v);
}

static void test_maps_self(void **state)
{
	struct pk_maps m;
	const struct pk_map *me, *stack;
	uint64_t code = (uint64_t)(uintptr_t)&test_maps_self;
	uint64_t local = (uint64_t)(uintptr_t)&m;
	char exe[PATH_MAX];
	ssize_t n;

	(void)state;
	assert_int_equal(pk_proc_maps(getpid(), &m), 0);
	assert_true(m.n > 5);
	me = pk_maps_find(&m, code);
	assert_non_null(me);
	assert_true(me->prot & PK_MAP_X);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_string_equal(me->path, exe);
	/* (under valgrind our stack is not the one named [stack]) */
	stack = pk_maps_find(&m, local);
	assert_non_null(stack);
	assert_int_equal(stack->prot & (PK_MAP_R | PK_MAP_W | PK_MAP_X), PK_MAP_R | PK_MAP_W);
	{
		bool named = false;

		for (size_t i = 0; i < m.n; i++)
			named = named || strcmp(m.v[i].path, "[stack]") == 0;
		assert_true(named);
	}
	for (size_t i = 1; i < m.n; i++)
		assert_true(m.v[i - 1].end <= m.v[i].start);

	/* The file behind our own code, through map_files (we are root). */
	{
		struct stat a;
		int fd = -1;

		assert_int_equal(pk_map_open(getpid(), me, &fd), 0);
		assert_true(fd >= 0);
		assert_int_equal(fstat(fd, &a), 0);
		assert_true(S_ISREG(a.st_mode));
		assert_int_equal(a.st_ino, me->inode);
		assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		close(fd);
		assert_int_equal(pk_map_open(getpid(), stack, &fd), -ENOENT);
		assert_int_equal(fd, -1);
	}
	pk_maps_free(&m);
	pk_error_clear();
}

/* ---------------------------------------------------------------- opening mapped files */

/* A directory of things a target could plant where its mapped files were:
 *   lib.so            a regular file (the "mapped" one)
 *   secret            a regular file no one should open (watched)
 *   link.so -> secret
 *   fifo              a FIFO: an open for reading would block for ever
 *   real/lib.so, dirlink -> real */
struct plant {
	char dir[64];
	char lib[128], secret[128], link[128], fifo[128], deleted[160], reallib[128], dirlib[128];
	int watch; /* inotify: any open or read of secret, fifo or "lib.so (deleted)" */
};

static void plant_path(char *buf, size_t cap, const struct plant *p, const char *name)
{
	snprintf(buf, cap, "%s/%s", p->dir, name);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void plant_setup(struct plant *p)
{
	char real[128], dirlink[128];

	snprintf(p->dir, sizeof(p->dir), "/tmp/pk-test-plantXXXXXX");
	assert_non_null(mkdtemp(p->dir));
	plant_path(p->lib, sizeof(p->lib), p, "lib.so");
	plant_path(p->secret, sizeof(p->secret), p, "secret");
	plant_path(p->link, sizeof(p->link), p, "link.so");
	plant_path(p->fifo, sizeof(p->fifo), p, "fifo");
	snprintf(p->deleted, sizeof(p->deleted), "%s (deleted)", p->lib);
	plant_path(real, sizeof(real), p, "real");
	plant_path(p->reallib, sizeof(p->reallib), p, "real/lib.so");
	plant_path(dirlink, sizeof(dirlink), p, "dirlink");
	plant_path(p->dirlib, sizeof(p->dirlib), p, "dirlink/lib.so");
	write_file(p->lib, "the mapped file\n");
	write_file(p->secret, "secret\n");
	write_file(p->deleted, "a file named as maps names a deleted one\n");
	assert_int_equal(symlink(p->secret, p->link), 0);
	assert_int_equal(mkfifo(p->fifo, 0600), 0);
	assert_int_equal(mkdir(real, 0700), 0);
	write_file(p->reallib, "another mapped file\n");
	assert_int_equal(symlink(real, dirlink), 0);
	p->watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(p->watch >= 0);
	assert_true(inotify_add_watch(p->watch, p->secret, IN_OPEN | IN_ACCESS | IN_DONT_FOLLOW) >= 0);
	assert_true(inotify_add_watch(p->watch, p->fifo, IN_OPEN | IN_ACCESS | IN_DONT_FOLLOW) >= 0);
	assert_true(inotify_add_watch(p->watch, p->deleted, IN_OPEN | IN_ACCESS | IN_DONT_FOLLOW) >= 0);
}

static void plant_teardown(struct plant *p)
{
	char path[128];

	close(p->watch);
	unlink(p->lib);
	unlink(p->secret);
	unlink(p->deleted);
	unlink(p->link);
	unlink(p->fifo);
	unlink(p->reallib);
	plant_path(path, sizeof(path), p, "dirlink");
	unlink(path);
	plant_path(path, sizeof(path), p, "real");
	rmdir(path);
	rmdir(p->dir);
}

static bool plant_touched(const struct plant *p)
{
	char buf[4096];

	return read(p->watch, buf, sizeof(buf)) > 0;
}

/* A map entry for path as maps would show it: the inode and device of
 * what is there (or of like_path), at a range map_files does not have. */
static void fake_map(struct pk_map *m, char *path, const char *like_path)
{
	struct stat st;

	memset(m, 0, sizeof(*m));
	m->start = 0x1000;
	m->end = 0x2000;
	m->path = path;
	if (lstat(like_path ? like_path : path, &st) == 0) {
		m->inode = st.st_ino;
		m->dev_major = major(st.st_dev);
		m->dev_minor = minor(st.st_dev);
	}
}

/* pk_map_open_by_path (no map_files): refused unless it ends on the mapped
 * regular file without a symbolic link on the way; nothing planted is ever
 * opened, a FIFO never blocks. */
static void expect_refused(pid_t pid, struct pk_map *m, const char *why)
{
	int fd = 42;

	pk_error_clear();
	assert_int_equal(pk_map_open_by_path(pid, m, &fd), -ENOENT);
	assert_int_equal(fd, -1);
	if (strstr(pk_error_message(), why) == NULL || strstr(pk_error_message(), m->path) == NULL)
		fail_msg("%s: message \"%s\" does not say \"%s\"", m->path, pk_error_message(), why);
}

static void test_map_open_by_path(void **state)
{
	struct plant p;
	struct pk_map m;
	struct stat st;
	char path[192];
	int fd = -1;

	(void)state;
	plant_setup(&p);

	/* The mapped file itself. */
	fake_map(&m, p.lib, NULL);
	assert_int_equal(pk_map_open_by_path(getpid(), &m, &fd), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, m.inode);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(fd);

	/* Another file under that name (an upgrade, or planted). */
	m.inode++;
	expect_refused(getpid(), &m, "replaced since it was mapped (inode");
	m.inode--;
	{
		struct statfs sf;

		assert_int_equal(statfs(p.dir, &sf), 0);
		if (sf.f_type != OVERLAYFS_SUPER_MAGIC) {
			m.dev_minor++;
			expect_refused(getpid(), &m, "replaced since it was mapped (device");
		}
	}

	/* A symbolic link, at the end or on the way: never followed, even to
	 * the very inode that was mapped. */
	fake_map(&m, p.link, p.secret);
	expect_refused(getpid(), &m, "symbolic link");
	fake_map(&m, p.dirlib, p.reallib);
	expect_refused(getpid(), &m, "symbolic link");

	/* A FIFO or a directory where the file was: looked at, not opened. */
	fake_map(&m, p.fifo, NULL);
	expect_refused(getpid(), &m, "a FIFO");
	fake_map(&m, p.dir, NULL);
	expect_refused(getpid(), &m, "a directory");

	/* "(deleted)": map_files is the only way to a deleted file; a file
	 * named so (planted) is not even looked at, nor the name without it. */
	fake_map(&m, p.deleted, NULL);
	expect_refused(getpid(), &m, "deleted, and /proc/");
	snprintf(path, sizeof(path), "%s (deleted)", p.link);
	fake_map(&m, path, p.secret);
	expect_refused(getpid(), &m, "deleted");

	snprintf(path, sizeof(path), "%s/missing", p.dir);
	fake_map(&m, path, p.lib);
	pk_error_clear();
	assert_int_equal(pk_map_open_by_path(getpid(), &m, &fd), -ENOENT);

	assert_false(plant_touched(&p));
	plant_teardown(&p);
	pk_error_clear();
}

/* map_files is the mapped file; when it fails for root, the mapping is
 * gone, and the name is not tried instead (it may be anything now). */
static void test_map_open_unmapped(void **state)
{
	struct plant p;
	struct pk_map m;
	int fd = 42;

	(void)state;
	if (geteuid() != 0)
		skip(); /* map_files needs CAP_SYS_ADMIN: pk_map_open then goes by name */
	plant_setup(&p);
	fake_map(&m, p.fifo, NULL);
	pk_error_clear();
	assert_int_equal(pk_map_open(getpid(), &m, &fd), -ENOENT);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(pk_error_message(), "unmapped meanwhile"));
	fake_map(&m, p.secret, NULL);
	assert_int_equal(pk_map_open(getpid(), &m, &fd), -ENOENT);
	m.path = "[heap]";
	assert_int_equal(pk_map_open(getpid(), &m, &fd), -ENOENT);
	assert_false(plant_touched(&p));
	plant_teardown(&p);
	pk_error_clear();
}

/* One resolver, two implementations: openat2, and the component walk used
 * where openat2 is missing or filtered. */
static void test_open_beneath(void **state)
{
	static const struct {
		const char *rel;
		int want; /* 0: opens; else -errno */
	} cases[] = {
		{ "lib.so", 0 },       { "/lib.so", 0 },       { "real/lib.so", 0 },   { "real//lib.so", 0 },
		{ "link.so", -ELOOP }, { "dirlink/lib.so", -ELOOP }, { "missing", -ENOENT }, { "lib.so/x", -ENOTDIR },
		{ "fifo", 0 },         { "real", 0 },
	};
	struct plant p;
	int dirfd;

	(void)state;
	plant_setup(&p);
	dirfd = open(p.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	for (int walk = 0; walk < 2; walk++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			int fd = 42, rc;

			rc = walk ? pk_open_beneath_walk(dirfd, cases[i].rel, &fd) :
				    pk_open_beneath(dirfd, cases[i].rel, &fd);
			if (rc != cases[i].want)
				fail_msg("%s \"%s\": %d, want %d", walk ? "walk" : "openat2", cases[i].rel, rc,
					 cases[i].want);
			if (rc == 0) {
				/* O_PATH: no open of the FIFO took place */
				assert_int_equal(fcntl(fd, F_GETFL) & O_PATH, O_PATH);
				close(fd);
			} else {
				assert_int_equal(fd, -1);
			}
		}
	}
	/* ".." never leaves: openat2 stays in the root, the walk refuses it. */
	{
		int fd;

		assert_int_equal(pk_open_beneath_walk(dirfd, "../etc/passwd", &fd), -EXDEV);
		assert_int_equal(pk_open_beneath_walk(dirfd, "real/../lib.so", &fd), -EXDEV);
		assert_int_equal(pk_open_beneath(dirfd, "../../../lib.so", &fd), 0);
		close(fd);
		assert_int_equal(pk_open_beneath(dirfd, "../etc/passwd", &fd), -ENOENT);
	}
	close(dirfd);
	assert_false(plant_touched(&p));
	plant_teardown(&p);
}

/* A chrooted process: maps names its files as seen from our root (the
 * chroot directory's path in front), /proc/PID/root is that directory. Its
 * files inside the chroot are found below /proc/PID/root with the prefix
 * taken off; those outside it (mapped before the chroot) below our root
 * when it shares our mount namespace, never in another one. */
static pid_t start_chrooted(const char *dir, bool new_mount_ns, int *release)
{
	int ready[2], hold[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(hold[1]);
		if ((new_mount_ns && unshare(CLONE_NEWNS) != 0) || chroot(dir) != 0 || chdir("/") != 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		_exit(read(hold[0], &c, 1) < 0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release = hold[1];
	return pid;
}

static void test_map_open_chroot(void **state)
{
	struct plant p;
	struct pk_map m;
	struct stat st;
	char exe[PATH_MAX];
	ssize_t n;
	int fd, release;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip(); /* chroot and unshare need root */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	plant_setup(&p);
	for (int ns = 0; ns < 2; ns++) {
		pid = start_chrooted(p.dir, ns == 1, &release);
		/* Inside its root: our "/tmp/pk-test-plantXXXXXX/real/lib.so" is its
		 * "/real/lib.so". */
		fake_map(&m, p.reallib, NULL);
		fd = -1;
		assert_int_equal(pk_map_open_by_path(pid, &m, &fd), 0);
		assert_int_equal(fstat(fd, &st), 0);
		assert_int_equal(st.st_ino, m.inode);
		close(fd);
		fake_map(&m, p.dirlib, p.reallib);
		expect_refused(pid, &m, "symbolic link");
		/* Outside its root. */
		fake_map(&m, exe, NULL);
		if (ns == 0) {
			assert_int_equal(pk_map_open_by_path(pid, &m, &fd), 0);
			close(fd);
		} else {
			expect_refused(pid, &m, "outside its root");
		}
		close(release);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
	}
	assert_false(plant_touched(&p));
	plant_teardown(&p);
	pk_error_clear();
}

static void test_status_parse(void **state)
{
	static const char text[] =
		"Name:\t my )prog(\n"
		"Umask:\t0022\n"
		"State:\tt (tracing stop)\n"
		"Tgid:\t4242\n"
		"Ngid:\t0\n"
		"Pid:\t4243\n"
		"PPid:\t1\n"
		"TracerPid:\t77\n"
		"Uid:\t1000\t1001\t1002\t1003\n"
		"NStgid:\t4242\t12\t1\n"
		"NSpid:\t4243\t13\t2\n"
		"CapEff:\t000001fffeffffff\n"
		"Threads:\t12\n"
		"voluntary_ctxt_switches:\t18446744073709551615\n"
		"nonvoluntary_ctxt_switches:\t3";
	struct pk_status st;

	(void)state;
	assert_int_equal(pk_status_parse(S(text), &st), 0);
	assert_string_equal(st.name, " my )prog(");
	assert_int_equal(st.state, 't');
	assert_int_equal(st.tgid, 4242);
	assert_int_equal(st.tracer_pid, 77);
	assert_int_equal(st.threads, 12);
	assert_int_equal(st.uid_real, 1000);
	assert_int_equal(st.uid_effective, 1001);
	assert_int_equal(st.ns_levels, 3);
	assert_int_equal(st.nspid[0], 4243);
	assert_int_equal(st.nspid[1], 13);
	assert_int_equal(st.nspid[2], 2);
	assert_int_equal(st.cap_eff, 0x1fffeffffffull);
	assert_int_equal(st.voluntary_ctxt_switches, UINT64_MAX);
	assert_int_equal(st.nonvoluntary_ctxt_switches, 3);
}

static void test_status_parse_edge(void **state)
{
	struct pk_status st;
	char deep[512];
	size_t off;

	(void)state;
	/* no NSpid (kernels before 4.1): one level, the Pid */
	assert_int_equal(pk_status_parse(S("State:\tS (sleeping)\nTgid:\t5\nPid:\t6\n"), &st), 0);
	assert_int_equal(st.ns_levels, 1);
	assert_int_equal(st.nspid[0], 6);
	assert_int_equal(st.tracer_pid, 0);
	assert_int_equal(st.threads, 0); /* not shown: unknown */
	assert_int_equal(st.kthread, -1); /* not shown: unknown */
	assert_int_equal(pk_status_parse(S("State:\tS\nTgid:\t2\nPid:\t2\nKthread:\t1\n"), &st), 0);
	assert_int_equal(st.kthread, 1);

	/* deeper than PK_MAX_NS_LEVELS: first stays ours, last the innermost */
	off = (size_t)snprintf(deep, sizeof(deep), "State:\tS\nTgid:\t1\nPid:\t100\nNSpid:");
	for (int i = 0; i < 12; i++)
		off += (size_t)snprintf(deep + off, sizeof(deep) - off, "\t%d", 100 - i);
	assert_int_equal(pk_status_parse(deep, off, &st), 0);
	assert_int_equal(st.ns_levels, PK_MAX_NS_LEVELS);
	assert_int_equal(st.nspid[0], 100);
	assert_int_equal(st.nspid[PK_MAX_NS_LEVELS - 2], 100 - (PK_MAX_NS_LEVELS - 2));
	assert_int_equal(st.nspid[PK_MAX_NS_LEVELS - 1], 89);

	/* a long Name is truncated, not overflowed */
	memset(deep, 'x', sizeof(deep));
	memcpy(deep, "Name:\t", 6);
	memcpy(deep + 300, "\nState:\tR\nTgid:\t1\nPid:\t1\n", 25);
	assert_int_equal(pk_status_parse(deep, 325, &st), 0);
	assert_int_equal(strlen(st.name), sizeof(st.name) - 1);

	assert_int_equal(pk_status_parse("", 0, &st), -EINVAL);
	assert_int_equal(pk_status_parse(S("State:\tS\nTgid:\t1\n"), &st), -EINVAL);        /* no Pid */
	assert_int_equal(pk_status_parse(S("State:\nTgid:\t1\nPid:\t1\n"), &st), -EINVAL);   /* empty State */
	assert_int_equal(pk_status_parse(S("State:\tS\nTgid:\t99999999999\nPid:\t1\n"), &st), -EINVAL);
	assert_int_equal(pk_status_parse(S("State:\tS\nTgid:\t1\nPid:\t1\nThreads:\t-3\n"), &st), -EINVAL);
	assert_int_equal(pk_status_parse(S("State:\tS\nTgid:\t1\nPid:\t1\nNSpid:\n"), &st), -EINVAL);
	assert_int_equal(pk_status_parse(S("State:\tS\nTgid:\t1\nPid:\t1\nUid:\t1\n"), &st), -EINVAL);
	assert_int_equal(pk_status_parse(S("State:\tS\nTgid:\t1\nPid:\t1\nCapEff:\t1ffffffffffffffff\n"), &st),
			 -EINVAL);
}

static void *sleeper(void *arg)
{
	int fd = *(int *)arg;
	char c;

	prctl(PR_SET_NAME, "pk sleeper)", 0, 0, 0);
	/* Blocks in read() until the test closes the pipe. */
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void test_status_stat_self(void **state)
{
	struct pk_status st, ts;
	struct pk_stat s;
	pthread_t th;
	int p[2];
	pid_t *tids;
	size_t n;
	uint64_t a, b;
	volatile uint64_t spin = 0;

	(void)state;
	assert_int_equal(pk_proc_status(getpid(), 0, &st), 0);
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.tgid, getpid());
	assert_int_equal(st.nspid[st.ns_levels - 1], getpid());
	assert_int_equal(st.tracer_pid, 0);
	assert_int_equal(st.uid_real, getuid());

	assert_int_equal(pipe(p), 0);
	assert_int_equal(pthread_create(&th, NULL, sleeper, &p[0]), 0);
	/* The thread names itself, then sleeps; wait for both without sleeping. */
	for (;;) {
		assert_int_equal(pk_proc_tasks(getpid(), &tids, &n), 0);
		if (n == 2) {
			assert_int_equal(pk_proc_stat(getpid(), tids[1], &s), 0);
			free(tids);
			if (strcmp(s.comm, "pk sleeper)") == 0 && s.state == 'S')
				break;
		} else {
			free(tids);
		}
		sched_yield();
	}
	assert_int_equal(pk_proc_tasks(getpid(), &tids, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(tids[0], getpid());
	assert_int_equal(pk_proc_status(getpid(), tids[1], &ts), 0);
	assert_string_equal(ts.name, "pk sleeper)");
	assert_int_equal(ts.tgid, getpid());
	assert_int_equal(ts.nspid[ts.ns_levels - 1], tids[1]);
	assert_int_equal(pk_proc_stat(getpid(), tids[1], &s), 0);
	assert_string_equal(s.comm, "pk sleeper)");
	assert_int_equal(s.state, 'S');

	/* The sleeping thread's CPU time does not move; ours does. */
	assert_int_equal(pk_proc_cputime(getpid(), tids[1], &a), 0);
	assert_int_equal(pk_proc_cputime(getpid(), 0, &b), 0);
	while (spin < 20000000)
		spin++;
	{
		uint64_t a2, b2;

		assert_int_equal(pk_proc_cputime(getpid(), tids[1], &a2), 0);
		assert_int_equal(pk_proc_cputime(getpid(), getpid(), &b2), 0);
		assert_int_equal(a, a2);
		assert_true(b2 > b);
	}
	free(tids);
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);

	assert_int_equal(pk_proc_stat(getpid(), 0, &s), 0);
	assert_int_equal(s.state, 'R');
	assert_true(s.starttime > 0);
}

/* ---------------------------------------------------------------- stat */

static void test_stat_parse(void **state)
{
	static const char text[] =
		"4243 (a) (b) c) R 1 2 3 4 -1 4194560 5 6 7 8 1234 5678 -9 -10 20 0 3 0 999999 "
		"1000 100 18446744073709551615 1 2 3 4 5 0 0 0 0 1 0 0 17 1 0 0 0 0 0\n";
	struct pk_stat s;

	(void)state;
	assert_int_equal(pk_stat_parse(S(text), &s), 0);
	assert_string_equal(s.comm, "a) (b) c");
	assert_int_equal(s.state, 'R');
	assert_int_equal(s.utime, 1234);
	assert_int_equal(s.stime, 5678);
	assert_int_equal(s.starttime, 999999);
	assert_int_equal(s.wchan_flag, 1);
	assert_int_equal(s.processor, 1);

	/* no trailing newline, exactly 39 fields */
	assert_int_equal(pk_stat_parse(S("1 (x y) S 0 0 0 0 0 0 0 0 0 0 1 2 0 0 0 0 0 0 3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 7"),
				       &s),
			 0);
	assert_string_equal(s.comm, "x y");
	assert_int_equal(s.processor, 7);
	/* empty comm */
	assert_int_equal(pk_stat_parse(S("1 () S 0 0 0 0 0 0 0 0 0 0 1 2 0 0 0 0 0 0 3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 7"),
				       &s),
			 0);
	assert_string_equal(s.comm, "");

	assert_int_equal(pk_stat_parse("", 0, &s), -EINVAL);
	assert_int_equal(pk_stat_parse(S("1 (x S 0"), &s), -EINVAL);
	assert_int_equal(pk_stat_parse(S("1 x) S 0"), &s), -EINVAL);
	assert_int_equal(pk_stat_parse(S("1 (x) S 0 0 0"), &s), -EINVAL); /* too few fields */
	assert_int_equal(pk_stat_parse(S("1 (x) SS 0 0 0 0 0 0 0 0 0 0 1 2 0 0 0 0 0 0 3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 7"),
				       &s),
			 -EINVAL);
	/* utime beyond 64 bits */
	assert_int_equal(pk_stat_parse(S("1 (x) S 0 0 0 0 0 0 0 0 0 0 99999999999999999999 2 0 0 0 0 0 0 3 0 0 0 0 0 0 0 0 0 "
					 "0 0 0 0 0 0 0 7"),
				       &s),
			 -EINVAL);
	/* processor beyond int */
	assert_int_equal(pk_stat_parse(S("1 (x) S 0 0 0 0 0 0 0 0 0 0 1 2 0 0 0 0 0 0 3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
					 "4294967296"),
				       &s),
			 -EINVAL);
}

/* ---------------------------------------------------------------- syscall */

static void test_syscall_parse(void **state)
{
	struct pk_syscall sc;

	(void)state;
	assert_int_equal(pk_syscall_parse(S("running\n"), &sc), 0);
	assert_int_equal(sc.nr, PK_SYSCALL_RUNNING);
	assert_int_equal(pk_syscall_parse(S("running"), &sc), 0);
	assert_int_equal(sc.nr, PK_SYSCALL_RUNNING);
	assert_int_equal(pk_syscall_parse(S("-1 0x7ffc8f48af28 0x7f1be62ab2ad\n"), &sc), 0);
	assert_int_equal(sc.nr, -1);
	assert_int_equal(sc.sp, 0x7ffc8f48af28ull);
	assert_int_equal(sc.pc, 0x7f1be62ab2adull);
	assert_int_equal(pk_syscall_parse(S("230 0x1 0x0 0x7ffd00 0xffffffffffffffff 0x5 0x6 0x7ffc 0x7f01\n"), &sc), 0);
	assert_int_equal(sc.nr, 230);
	assert_int_equal(sc.args[0], 1);
	assert_int_equal(sc.args[2], 0x7ffd00);
	assert_int_equal(sc.args[3], UINT64_MAX);
	assert_int_equal(sc.args[5], 6);
	assert_int_equal(sc.sp, 0x7ffc);
	assert_int_equal(sc.pc, 0x7f01);

	assert_int_equal(pk_syscall_parse("", 0, &sc), -EINVAL);
	assert_int_equal(pk_syscall_parse(S("runningx"), &sc), -EINVAL);
	assert_int_equal(pk_syscall_parse(S("-1 0x1\n"), &sc), -EINVAL);
	assert_int_equal(pk_syscall_parse(S("-2 0x1 0x2\n"), &sc), -EINVAL);
	assert_int_equal(pk_syscall_parse(S("0 0x1 0x2 0x3 0x4 0x5 0x6 0x7\n"), &sc), -EINVAL);
	assert_int_equal(pk_syscall_parse(S("0 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8 0x9\n"), &sc), -EINVAL);
	assert_int_equal(pk_syscall_parse(S("0 0x10000000000000000 0x2 0x3 0x4 0x5 0x6 0x7 0x8\n"), &sc), -EINVAL);
	assert_int_equal(pk_syscall_parse(S("99999999999 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8\n"), &sc), -EINVAL);
	assert_int_equal(pk_syscall_parse(S("0 0x"), &sc), -EINVAL);
}

static void *reader(void *arg)
{
	int fd = *(int *)arg;
	char c;

	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void test_syscall_self(void **state)
{
	struct pk_syscall sc;
	pthread_t th;
	pid_t *tids;
	size_t n;
	int p[2];

	(void)state;
	/* Reading our own syscall file: we are in read(). */
	assert_int_equal(pk_proc_syscall(getpid(), 0, &sc), 0);
	assert_int_equal(sc.nr, SYS_read);

	assert_int_equal(pipe(p), 0);
	assert_int_equal(pthread_create(&th, NULL, reader, &p[0]), 0);
	for (;;) {
		assert_int_equal(pk_proc_tasks(getpid(), &tids, &n), 0);
		assert_int_equal(n, 2);
		assert_int_equal(pk_proc_syscall(getpid(), tids[1], &sc), 0);
		free(tids);
		if (sc.nr == SYS_read && sc.args[0] == (uint64_t)p[0])
			break;
		sched_yield();
	}
	assert_true(pk_syscall_fd_args(sc.nr) & 1u);
	{
		char target[64], want[64];
		struct stat st;

		assert_int_equal(pk_proc_fd_target(getpid(), (int)sc.args[0], target, sizeof(target)), 0);
		assert_int_equal(fstat(p[0], &st), 0);
		snprintf(want, sizeof(want), "pipe:[%lu]", (unsigned long)st.st_ino);
		assert_string_equal(target, want);
		assert_int_equal(pk_proc_fd_target(getpid(), p[0], target, 4), -ENAMETOOLONG);
	}
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	pk_error_clear();
	assert_int_equal(pk_proc_fd_target(getpid(), p[0], (char[64]){ 0 }, 64), -EBADF);
	assert_int_equal(pk_proc_fd_target(getpid(), -1, (char[64]){ 0 }, 64), -EBADF);
}

/* ---------------------------------------------------------------- errors */

static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void test_missing_process(void **state)
{
	pid_t pid = dead_pid();
	char msg[64], buf[64];
	struct pk_maps m;
	struct pk_status st;
	struct pk_stat s;
	struct pk_syscall sc;
	pid_t *tids;
	size_t n;
	uint64_t ns;

	(void)state;
	snprintf(msg, sizeof(msg), "no such process %d", (int)pid);
	pk_error_clear();
	assert_int_equal(pk_proc_maps(pid, &m), -ESRCH);
	assert_string_equal(pk_error_message(), msg);
	pk_error_clear();
	assert_int_equal(pk_proc_status(pid, 0, &st), -ESRCH);
	assert_string_equal(pk_error_message(), msg);
	pk_error_clear();
	assert_int_equal(pk_proc_stat(pid, pid, &s), -ESRCH);
	assert_string_equal(pk_error_message(), msg);
	assert_int_equal(pk_proc_syscall(pid, 0, &sc), -ESRCH);
	assert_int_equal(pk_proc_tasks(pid, &tids, &n), -ESRCH);
	assert_int_equal(pk_proc_cputime(pid, 0, &ns), -ESRCH);
	assert_int_equal(pk_proc_fd_target(pid, 0, buf, sizeof(buf)), -ESRCH);
	/* a thread that is not in a live process */
	pk_error_clear();
	assert_int_equal(pk_proc_status(getpid(), pid, &st), -ESRCH);
	snprintf(msg, sizeof(msg), "no such thread %d in process %d", (int)pid, (int)getpid());
	assert_string_equal(pk_error_message(), msg);
	assert_int_equal(pk_proc_status(-1, 0, &st), -EINVAL);
	pk_error_clear();
}

static int ptrace_seize_child(pid_t pid)
{
	return (int)ptrace(PTRACE_SEIZE, pid, NULL, NULL);
}

/* Running as root with CAP_SYS_PTRACE, EPERM cannot be provoked from here;
 * the hint's tracer branch can: our parent traces nothing, so trace a child
 * ourselves and ask why a second tracer would fail. */
static void test_explain_eperm(void **state)
{
	int p[2];
	pid_t pid;
	char c = 0, want[128];

	(void)state;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	/* The child of a child traces it, so the tracer is not us. */
	{
		int q[2];
		pid_t tracer;

		assert_int_equal(pipe(q), 0);
		tracer = fork();
		if (tracer == 0) {
			close(q[0]);
			if (ptrace_seize_child(pid) != 0)
				_exit(1);
			if (write(q[1], "x", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		close(q[1]);
		assert_int_equal(read(q[0], &c, 1), 1);
		close(q[0]);
		pk_error_clear();
		pk_attach_explain_eperm(pid);
		snprintf(want, sizeof(want), "process %d is already traced by pid %d (", (int)pid, (int)tracer);
		assert_non_null(strstr(pk_error_hint_message(), want));
		kill(tracer, SIGKILL);
		waitpid(tracer, NULL, 0);
	}
	close(p[1]);
	waitpid(pid, NULL, 0);
	pk_error_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maps_parse_basic),
		cmocka_unit_test(test_maps_parse_edge),
		cmocka_unit_test(test_maps_self),
		cmocka_unit_test(test_map_open_by_path),
		cmocka_unit_test(test_map_open_unmapped),
		cmocka_unit_test(test_open_beneath),
		cmocka_unit_test(test_map_open_chroot),
		cmocka_unit_test(test_status_parse),
		cmocka_unit_test(test_status_parse_edge),
		cmocka_unit_test(test_status_stat_self),
		cmocka_unit_test(test_stat_parse),
		cmocka_unit_test(test_syscall_parse),
		cmocka_unit_test(test_syscall_self),
		cmocka_unit_test(test_missing_process),
		cmocka_unit_test(test_explain_eperm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
