/* attach: internals shared by proc.c, mem.c, freeze.c and syscalls.c. */
#ifndef PK_ATTACH_PRIV_H
#define PK_ATTACH_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bounds on what /proc may hand us: a maps file of a process at the
 * vm.max_map_count default (65530) is ~7 MiB. */
#define PK_PROC_MAX_FILE (64u << 20)
#define PK_PROC_MAX_MAPS (1u << 22)
#define PK_PROC_MAX_TASKS 1000000u

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

/* Generated at build time from the kernel headers (gen-syscall-table.cmake). */
struct pk_syscall_ent {
	long nr;
	const char *name;
};
extern const struct pk_syscall_ent pk_syscall_table[];
extern const size_t pk_syscall_table_len;

#endif
