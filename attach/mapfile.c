/* SPDX-License-Identifier: MIT */
/* attach: open the file behind a mapping of the target.
 *
 * pykill usually runs as root and the target may be anyone: every name on
 * the way to a file the target maps is the target's to change once it is
 * mapped (a symbolic link to /etc/shadow, a FIFO whose open blocks forever,
 * a device whose open does something). So nothing here opens a path the
 * target chose by name:
 * - /proc/PID/map_files/START-END is the mapped file itself, whatever its
 *   name has become; when the caller may use it and it fails, the mapping
 *   is gone and there is nothing to read (a name would be a guess);
 * - without the right to map_files, the maps line's path is resolved
 *   inside the target's root without following any symbolic link (a path
 *   the kernel prints has none), and the result must be the mapping's inode;
 * - everything is first looked up as O_PATH (no open of a FIFO or device
 *   ever happens), and only a regular file is then opened for reading,
 *   through our own descriptor (/proc/self/fd/N: that very inode, no second
 *   lookup by name). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "attach-priv.h"
#include "pk_attach.h"
#include "pk_log.h"

#ifndef SYS_openat2
#define SYS_openat2 437 /* the same on every architecture */
#endif

#define DELETED_SUFFIX " (deleted)"
/* openat2 says EAGAIN when a rename or mount raced RESOLVE_IN_ROOT's checks. */
#define OPENAT2_TRIES 8

static void close_keep_errno(int fd)
{
	int saved_errno = errno;

	if (fd >= 0)
		close(fd);
	errno = saved_errno;
}

static const char *file_kind(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISLNK(mode))
		return "a symbolic link";
	return "not a regular file";
}

int pk_open_beneath_walk(int dirfd, const char *rel, int *out)
{
	char name[NAME_MAX + 1];
	const char *p = rel;
	int cur = -1, rc;

	*out = -1;
	while (*p == '/')
		p++;
	if (*p == '\0')
		return -ENOENT;
	for (;;) {
		size_t n = strcspn(p, "/");
		struct stat st;
		int fd;

		if (n > NAME_MAX) {
			rc = -ENAMETOOLONG;
			goto fail;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		/* A path the kernel prints has no "." or ".."; ".." is the one
		 * way out of dirfd without a symbolic link. */
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			rc = -EXDEV;
			goto fail;
		}
		fd = openat(cur >= 0 ? cur : dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			goto fail;
		}
		if (fstat(fd, &st) != 0) {
			rc = -errno;
			close(fd);
			goto fail;
		}
		if (cur >= 0)
			close(cur);
		cur = fd;
		if (S_ISLNK(st.st_mode)) {
			rc = -ELOOP;
			goto fail;
		}
		p += n;
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		if (!S_ISDIR(st.st_mode)) {
			rc = -ENOTDIR;
			goto fail;
		}
	}
	*out = cur;
	return 0;
fail:
	close_keep_errno(cur);
	return rc;
}

int pk_open_beneath(int dirfd, const char *rel, int *out)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = -1;

	*out = -1;
	for (int i = 0; i < OPENAT2_TRIES; i++) {
		fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	if (fd >= 0) {
		*out = (int)fd;
		return 0;
	}
	/* Before Linux 5.6 there is no openat2; seccomp profiles older than
	 * it (container runtimes) refuse it with EPERM, which a lookup itself
	 * never gives: walk the path one component at a time instead. */
	if (errno == ENOSYS || errno == EPERM)
		return pk_open_beneath_walk(dirfd, rel, out);
	return -errno;
}

/* The file found by name is the one mapped: same inode, and same device
 * unless on overlayfs (stat shows the overlay's device, maps before Linux
 * 6.8 the layer's). A file of the same name installed since (an upgrade)
 * has other contents, and a planted one may be anything. */
static int same_as_mapped(pid_t pid, const struct pk_map *map, int pfd, const struct stat *st)
{
	struct statfs sf;

	if ((uint64_t)st->st_ino != map->inode) {
		pk_error("open %s of process %d: replaced since it was mapped (inode %" PRIu64
			 " there now, the mapping's is %" PRIu64 ")",
			 map->path, (int)pid, (uint64_t)st->st_ino, map->inode);
		return -ENOENT;
	}
	if (major(st->st_dev) == map->dev_major && minor(st->st_dev) == map->dev_minor)
		return 0;
	if (fstatfs(pfd, &sf) == 0 && sf.f_type == OVERLAYFS_SUPER_MAGIC)
		return 0;
	pk_error("open %s of process %d: replaced since it was mapped (device %u:%u there now, the mapping's is %u:%u)",
		 map->path, (int)pid, major(st->st_dev), minor(st->st_dev), map->dev_major, map->dev_minor);
	return -ENOENT;
}

/* pfd: an O_PATH descriptor of what was found (consumed). Only a regular
 * file is opened, and through pfd itself. */
static int open_found(pid_t pid, const struct pk_map *map, int pfd, bool by_name, int *out)
{
	char self[64];
	struct stat st, st2;
	int fd = -1, rc;

	if (fstat(pfd, &st) != 0) {
		rc = -errno;
		pk_error("open %s of process %d: %s", map->path, (int)pid, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		if (by_name)
			pk_error("open %s of process %d: %s there now, not the regular file that was mapped; not opened",
				 map->path, (int)pid, file_kind(st.st_mode));
		else
			pk_error("open %s of process %d: %s, not a regular file; not opened", map->path, (int)pid,
				 file_kind(st.st_mode));
		rc = -ENOENT;
		goto out;
	}
	if (by_name) {
		rc = same_as_mapped(pid, map, pfd, &st);
		if (rc < 0)
			goto out;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	/* O_NONBLOCK | O_NOCTTY change nothing for a regular file; they would
	 * keep a FIFO from blocking and a terminal from becoming ours were the
	 * check above ever wrong. */
	fd = open(self, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		pk_error("open %s of process %d: %s", map->path, (int)pid, strerror(-rc));
		goto out;
	}
	/* /proc/self/fd is how the kernel reopens a descriptor, unless /proc
	 * is not procfs: then this is something else. */
	if (fstat(fd, &st2) != 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev) {
		pk_error("open %s of process %d: reopening it through /proc/self/fd gave another file", map->path,
			 (int)pid);
		rc = -ENOENT;
		goto out;
	}
	*out = fd;
	fd = -1;
	rc = 0;
out:
	close_keep_errno(fd);
	close_keep_errno(pfd);
	return rc;
}

/* Does the process share our mount namespace? */
static bool same_mount_ns(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	return stat("/proc/self/ns/mnt", &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Where path (as maps prints it) lies below root (as /proc/PID/root reads),
 * without its leading '/'; NULL when it is not below. */
static const char *below(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return path + 1;
	if (strncmp(path, root, n) == 0 && path[n] == '/')
		return path + n + 1;
	return NULL;
}

static int open_root_failed(pid_t pid, const struct pk_map *map, const char *what, int err)
{
	if ((err == ENOENT || err == ESRCH) && !pk_proc_exists(pid, 0)) {
		pk_error("no such process %d", (int)pid);
		return -ESRCH;
	}
	pk_error("open %s of process %d: %s: %s", map->path, (int)pid, what, strerror(err));
	if (err == EACCES || err == EPERM)
		pk_attach_explain_eperm(pid);
	return -err;
}

/* The kernel prints a maps path (and /proc/PID/root) relative to the
 * reader's root when it can reach the file from there, else relative to
 * the root of the target's mount namespace. So a chrooted target's file
 * inside its root shows as ROOT/path: resolved below /proc/PID/root with
 * ROOT taken off; one outside its root (mapped before the chroot) is below
 * ours when the target shares our mount namespace; in another mount
 * namespace, a path not below its root cannot be placed. */
int pk_map_open_by_path(pid_t pid, const struct pk_map *map, int *out)
{
	char link[64], root[PATH_MAX];
	const char *rel;
	int dirfd = -1, pfd = -1, rc;
	ssize_t n;

	*out = -1;
	/* maps cannot tell a deleted file from one named so: only
	 * map_files reaches a deleted file, and a name is never guessed. */
	if (ends_with(map->path, DELETED_SUFFIX)) {
		pk_error("open %s of process %d: deleted, and /proc/%d/map_files, the only way to it, needs "
			 "CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE",
			 map->path, (int)pid, (int)pid);
		return -ENOENT;
	}
	snprintf(link, sizeof(link), "/proc/%d/root", (int)pid);
	dirfd = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return open_root_failed(pid, map, link, errno);
	n = readlink(link, root, sizeof(root) - 1);
	if (n <= 0) {
		rc = open_root_failed(pid, map, link, n < 0 ? errno : ENOENT);
		goto out;
	}
	root[n] = '\0';
	rel = below(map->path, root);
	if (rel == NULL) {
		if (!same_mount_ns(pid)) {
			pk_error("open %s of process %d: outside its root %s, in another mount namespace", map->path,
				 (int)pid, root);
			rc = -ENOENT;
			goto out;
		}
		close(dirfd);
		dirfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0) {
			rc = -errno;
			pk_error("open /: %s", strerror(-rc));
			goto out;
		}
		rel = map->path + 1;
	}
	rc = pk_open_beneath(dirfd, rel, &pfd);
	if (rc == -ELOOP) {
		pk_error("open %s of process %d: replaced since it was mapped (a symbolic link on the way, not "
			 "followed)",
			 map->path, (int)pid);
		rc = -ENOENT;
		goto out;
	}
	if (rc == -ENOENT && !pk_proc_exists(pid, 0)) {
		pk_error("no such process %d", (int)pid);
		rc = -ESRCH;
		goto out;
	}
	if (rc < 0) {
		pk_error("open %s of process %d: %s", map->path, (int)pid, strerror(-rc));
		if (rc == -EACCES || rc == -EPERM)
			pk_attach_explain_eperm(pid);
		goto out;
	}
	rc = open_found(pid, map, pfd, true, out);
out:
	close_keep_errno(dirfd);
	return rc;
}

int pk_map_open(pid_t pid, const struct pk_map *map, int *out)
{
	char path[96];
	pid_t via;
	int pfd, err, rc;

	if (out != NULL)
		*out = -1;
	if (map == NULL || map->path == NULL || out == NULL || pid <= 0)
		return -EINVAL;
	if (map->path[0] != '/') {
		pk_error("open mapping %" PRIx64 "-%" PRIx64 " of process %d: not backed by a file (%s)", map->start,
			 map->end, (int)pid, map->path[0] ? map->path : "anonymous");
		return -ENOENT;
	}
	/* Through a live task: a leader that called pthread_exit has neither
	 * map_files nor root. */
	rc = pk_proc_live_task(pid, &via);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)via, map->start, map->end);
	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd >= 0)
		return open_found(pid, map, pfd, false, out);
	err = errno;
	/* Opening map_files needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE
	 * since Linux 5.9) over the initial user namespace. */
	if (err == EPERM || err == EACCES)
		return pk_map_open_by_path(via, map, out);
	if ((err == ENOENT || err == ESRCH) && !pk_proc_exists(pid, 0)) {
		pk_error("no such process %d", (int)pid);
		return -ESRCH;
	}
	if (err == ENOENT) {
		snprintf(path, sizeof(path), "/proc/%d/map_files", (int)pid);
		if (access(path, F_OK) != 0)
			return pk_map_open_by_path(pid, map, out); /* a kernel without map_files */
		pk_error("open %s of process %d: unmapped meanwhile (no mapping %" PRIx64 "-%" PRIx64 " any more)",
			 map->path, (int)pid, map->start, map->end);
		return -ENOENT;
	}
	pk_error("open %s of process %d: %s: %s", map->path, (int)pid, path, strerror(err));
	return -err;
}
