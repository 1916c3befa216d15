/* SPDX-License-Identifier: MIT */
/* attach: internals shared by proc.c, mapfile.c, mem.c, freeze.c, inject.c and syscalls.c. */
#ifndef PK_ATTACH_PRIV_H
#define PK_ATTACH_PRIV_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bounds on what /proc may hand us: a maps file of a process at the
 * vm.max_map_count default (65530) is ~7 MiB. */
#define PK_PROC_MAX_FILE (64u << 20)
#define PK_PROC_MAX_MAPS (1u << 22)
#define PK_PROC_MAX_TASKS 1000000u

/* Add to set the signals of pykill that must wait while a target thread is
 * stopped or borrowed: Ctrl-C, kill, hang-up and Ctrl-\ (they would end
 * pykill between two ptrace requests) and Ctrl-Z (a stopped pykill would
 * keep the target stopped). freeze.c and inject.c block the same ones. */
void pk_stop_signals_add(sigset_t *set);

/* "/proc/PID/NAME" or "/proc/PID/task/TID/NAME" when tid != 0. */
int pk_proc_path(char *buf, size_t cap, pid_t pid, pid_t tid, const char *name);

/* Read a whole /proc file. pk_proc_read_small() into buf (NUL-terminated,
 * -EFBIG if it does not fit), pk_proc_read_alloc() into a malloc'ed buffer of
 * at most max bytes. Errors are mapped by pk_proc_errno() and described. */
int pk_proc_read_small(pid_t pid, pid_t tid, const char *name, char *buf, size_t cap, size_t *len);
int pk_proc_read_alloc(pid_t pid, pid_t tid, const char *name, size_t max, char **buf, size_t *len);

/* Turn the errno of an access to /proc/PID/... into the module's classes and
 * describe it: a vanished process or thread is -ESRCH ("no such process N"),
 * EACCES/EPERM stay and get pk_attach_explain_eperm() when ptrace_rights says
 * the file is guarded by a ptrace access check. */
int pk_proc_errno(int err, pid_t pid, pid_t tid, const char *what, int ptrace_rights);

/* Whether /proc/PID (or /proc/PID/task/TID) still exists. */
int pk_proc_exists(pid_t pid, pid_t tid);

struct pk_map;

/* pk_map_open without /proc/PID/map_files: the maps path inside the
 * target's root (mapfile.c; unit tests call it directly). */
int pk_map_open_by_path(pid_t pid, const struct pk_map *map, int *fd);
/* An O_PATH descriptor of rel resolved below dirfd as if dirfd were the
 * root, following no symbolic link (-ELOOP) and no "..": openat2 with
 * RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS, or where the kernel or a seccomp
 * filter refuses openat2, pk_open_beneath_walk(), one component at a time
 * with O_NOFOLLOW ("." and ".." refused: -EXDEV). No pk_error(). */
int pk_open_beneath(int dirfd, const char *rel, int *fd);
int pk_open_beneath_walk(int dirfd, const char *rel, int *fd);

/* An unsigned number in base 8, 10 or 16 from [*p, end), *p moved past it:
 * -EINVAL without a digit, -ERANGE on overflow (text from /proc or the
 * target is untrusted). */
int pk_scan_u64(const char **p, const char *end, unsigned base, uint64_t *out);

/* Generated at build time from the kernel headers (gen-syscall-table.cmake). */
struct pk_syscall_ent {
	long nr;
	const char *name;
};
extern const struct pk_syscall_ent pk_syscall_table[];
extern const size_t pk_syscall_table_len;

#endif
