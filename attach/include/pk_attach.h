/* SPDX-License-Identifier: MIT */
/* attach: the live process. /proc parsing, memory reads, ptrace stops.
 *
 * Every function returns 0 (or a count) on success and -errno on failure,
 * and describes the failure once with pk_error(). Error classes the CLI maps
 * to exit statuses: -ESRCH (no such process/thread), -EPERM/-EACCES (no
 * ptrace rights; a hint is recorded with pk_error_hint()). */
#ifndef PK_ATTACH_H
#define PK_ATTACH_H

#include "pk_clock.h"
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- /proc */

#define PK_MAP_R 1u
#define PK_MAP_W 2u
#define PK_MAP_X 4u
#define PK_MAP_P 8u /* private (copy on write) */

struct pk_map {
	uint64_t start, end, offset;
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint32_t prot; /* PK_MAP_* */
	char *path;    /* as written in maps ("" for anonymous); may end in " (deleted)" */
};

struct pk_maps {
	struct pk_map *v;
	size_t n;
};

int pk_proc_maps(pid_t pid, struct pk_maps *out);
/* Parse the text of a maps file (unit tests, fuzzing). */
int pk_maps_parse(const char *text, size_t len, struct pk_maps *out);
void pk_maps_free(struct pk_maps *maps);
const struct pk_map *pk_maps_find(const struct pk_maps *maps, uint64_t addr);

/* Open the file behind a mapping for reading (*fd, the caller's to close),
 * even when the target lives in another mount namespace or a chroot, and
 * never by a name the target controls: /proc/PID/map_files/START-END (the
 * mapped file itself); when the caller lacks the right to that
 * (CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), the maps path resolved inside
 * the target's root without following symbolic links, accepted only when
 * it is the mapped inode. Only a regular file is ever opened. -ENOENT when
 * the mapped file cannot be had: not backed by a file, unmapped meanwhile,
 * deleted (without map_files), replaced since it was mapped; -ESRCH,
 * -EACCES/-EPERM (with a hint). */
int pk_map_open(pid_t pid, const struct pk_map *map, int *fd);

#define PK_MAX_NS_LEVELS 8

struct pk_status {
	char state;          /* R S D T t Z X I ... */
	pid_t tgid;
	pid_t tracer_pid;
	int threads;         /* of the thread group, the leader included even as a zombie; 0 if not shown */
	uid_t uid_real, uid_effective;
	int ns_levels;       /* entries in nspid (1 when not in a child PID namespace) */
	pid_t nspid[PK_MAX_NS_LEVELS]; /* NSpid: [0] as seen from the caller's... see below */
	uint64_t cap_eff;
	uint64_t voluntary_ctxt_switches, nonvoluntary_ctxt_switches;
	char name[64];
	int seccomp;         /* 0 none, 1 strict, 2 filter; -1 not shown (kernel without seccomp) */
	int kthread;         /* 1 a kernel thread, 0 not; -1 not shown (kernels before 6.7) */
};
/* /proc/PID/status or /proc/PID/task/TID/status (tid 0 = the process). NSpid
 * lists the ids from the outermost namespace the proc mount knows to the
 * innermost; nspid[ns_levels-1] is the id inside the target's own namespace. */
int pk_proc_status(pid_t pid, pid_t tid, struct pk_status *out);
/* The same, describing nothing (for diagnostics of another failure). */
int pk_proc_status_quiet(pid_t pid, pid_t tid, struct pk_status *out);
int pk_status_parse(const char *text, size_t len, struct pk_status *out);

struct pk_stat {
	char state;
	char comm[64];
	uint64_t utime, stime;  /* clock ticks */
	uint64_t starttime;     /* clock ticks after boot */
	int processor;
	uint64_t wchan_flag;
};
int pk_proc_stat(pid_t pid, pid_t tid, struct pk_stat *out);
int pk_stat_parse(const char *text, size_t len, struct pk_stat *out);

/* /proc/PID/task/TID/syscall: nr -1 = not in a syscall (blocked elsewhere),
 * PK_SYSCALL_RUNNING = running, so unknown. */
#define PK_SYSCALL_RUNNING (-2)
struct pk_syscall {
	long nr;
	uint64_t args[6];
	uint64_t sp, pc;
};
int pk_proc_syscall(pid_t pid, pid_t tid, struct pk_syscall *out);
int pk_syscall_parse(const char *text, size_t len, struct pk_syscall *out);

/* CPU time the thread has run, in ns (/proc/PID/task/TID/schedstat): if it is
 * unchanged between two reads, the thread executed no instruction between them. */
int pk_proc_cputime(pid_t pid, pid_t tid, uint64_t *ns);

/* Watching a set of threads for having run since a sample: a descriptor on
 * each thread's schedstat is kept open and re-read with pread() (one cheap
 * system call, for use while the target is frozen). */
struct pk_watch;
#define PK_WATCH_MAX 1000000u
/* Opens and samples; a thread whose file cannot be opened is not watched. */
int pk_watch_open(pid_t pid, const pid_t *tids, size_t n, struct pk_watch **out);
/* 1 if thread i was on a CPU since the sample, 0 if not, -ENOENT if not
 * watched, -ESRCH (or another -errno) if it has ended. No pk_error(). */
int pk_watch_moved(struct pk_watch *w, size_t i);
uint64_t pk_watch_cpu_ns(const struct pk_watch *w, size_t i);
void pk_watch_close(struct pk_watch *w);

/* Is a thread of pid inside execve/execveat right now (as far as /proc
 * shows a thread not running)? An exec kills the other threads before it
 * replaces the address space: their deaths are its doing. No pk_error(). */
bool pk_proc_exec_in_flight(pid_t pid);

/* Kernel TIDs of the process, ascending. *tids is malloc'ed. */
int pk_proc_tasks(pid_t pid, pid_t **tids, size_t *n);

/* A task of process pid that has not exited, to reach the process's
 * address space, root and descriptors through: pid itself when its leader
 * lives, else the lowest TID of a thread that is neither zombie nor dead.
 * A leader that called pthread_exit stays a zombie (/proc/PID shows state
 * Z, its maps, mem, map_files and fd empty or gone) while the process runs
 * on. pk_proc_maps, pk_map_open, pk_proc_fd_target and the memory
 * reads (pk_mem_open_pid) go through it. -ESRCH (described) when no task
 * is left. */
int pk_proc_live_task(pid_t pid, pid_t *tid);
/* Has process pid ended, its /proc/PID/status (of the leader) read as st?
 * Not merely its leader: a zombie leader with other threads is a live
 * process (Threads: counts the zombie leader too). */
bool pk_status_ended(const struct pk_status *st);

/* Where an fd of the process points: a path, "socket:[123]", "pipe:[45]"... */
int pk_proc_fd_target(pid_t pid, int fd, char *buf, size_t cap);

/* How long a thread has been off CPU (sched.c). pk_sched_now() reads the
 * scheduler clock (what se.exec_start in /proc/.../sched counts), and
 * pk_proc_offcpu_ns() how long before now_ns the thread last left a CPU.
 * Meaningful only for a thread that is not running. -ENOENT when the kernel
 * has no sched file (CONFIG_SCHED_DEBUG), -ESRCH/-ENOENT when the thread
 * ended. No pk_error(): the caller says "unknown". */
int pk_sched_now(uint64_t *ns);
int pk_proc_offcpu_ns(pid_t pid, pid_t tid, uint64_t now_ns, uint64_t *ns);
/* se.exec_start of a sched file's text, in ns (unit tests, fuzzing). */
int pk_sched_parse(const char *text, size_t len, uint64_t *exec_start_ns);
/* now_ns - exec_start_ns, never negative; -ENODATA for an exec_start of 0:
 * the kernel zeroes it when it moves a woken thread to another CPU, until
 * the thread runs there (it is not blocked, and the difference would be
 * the whole uptime). */
int pk_sched_offcpu(uint64_t now_ns, uint64_t exec_start_ns, uint64_t *ns);

/* What an fd of a process is connected to (fdinfo.c), read from /proc
 * without stopping anything: sockets from the process's own network
 * namespace (/proc/PID/net/...), matched by inode. */
enum pk_fd_kind {
	PK_FD_UNKNOWN = 0,
	PK_FD_FILE,      /* path, pos */
	PK_FD_PIPE,      /* inode; holders: the other end */
	PK_FD_INET,      /* proto tcp/tcp6/udp/udp6, local, remote, state */
	PK_FD_UNIX,      /* proto unix, path (may be empty), state, peer_inode; holders: the peer */
	PK_FD_SOCKET,    /* another socket family (netlink, packet...) or not found */
	PK_FD_OTHER,     /* anon_inode:..., /dev/... character devices are files */
};
#define PK_FD_MAX_HOLDERS 8
struct pk_fd_holder {
	pid_t pid;
	int fd;
	char mode;         /* 'r', 'w', 'u' (read-write), '?' */
	char comm[24];     /* raw from /proc/PID/comm: target-controlled */
};
struct pk_fd_info {
	enum pk_fd_kind kind;
	char target[256];  /* readlink of /proc/PID/fd/FD */
	uint64_t inode;    /* socket or pipe inode, 0 otherwise */
	char mode;         /* this fd's access mode: 'r', 'w', 'u', '?' */
	long long pos;     /* file offset from fdinfo, -1 unknown */
	char proto[8];     /* "tcp", "tcp6", "udp", "udp6", "unix"; "" unknown */
	char local[64], remote[64]; /* "127.0.0.1:5432", "[::1]:80" */
	char state[16];    /* "ESTABLISHED", "LISTEN"...; unix "CONNECTED"...; "" unknown */
	char path[256];    /* unix socket path ("@name" abstract, target-controlled) */
	uint64_t peer_inode; /* unix: the other end's inode, 0 unknown */
	struct pk_fd_holder holders[PK_FD_MAX_HOLDERS]; /* pipe: other end; unix: peer */
	size_t nholders;
	bool holders_truncated; /* more holders, or the /proc scan hit its bound */
};
/* Every pipe and socket descriptor of every process pykill may read, by
 * inode: one walk of /proc/[0-9]*\/fd, bounded (PK_FD_SCAN_MAX links), made
 * the first time a holder is looked up and kept for the caller's later
 * lookups (a list of 100 threads blocked on pipes walks /proc once). */
struct pk_fd_index;
#define PK_FD_SCAN_MAX (1u << 20)
void pk_fd_index_free(struct pk_fd_index *ix);
/* Fills out as far as /proc shows; -EBADF no such fd, -ESRCH no such
 * process; no pk_error() (the caller prints what it has). *ix is built on
 * first need (NULL before), and freed by the caller. */
int pk_proc_fd_info(pid_t pid, int fd, struct pk_fd_index **ix, struct pk_fd_info *out);
/* Parse one line of /proc/net/{tcp,tcp6,udp,udp6} (v6: 32 hex digits per
 * address) or /proc/net/unix; 0 and out filled when it is the socket
 * with this inode, -ENOENT another socket, -EINVAL malformed. */
int pk_net_inet_line_parse(const char *line, bool v6, bool tcp, uint64_t inode, struct pk_fd_info *out);
int pk_net_unix_line_parse(const char *line, uint64_t inode, struct pk_fd_info *out);

/* The system call name for nr on this architecture (table generated at build
 * time from the kernel headers); NULL if unknown. */
const char *pk_syscall_name(long nr);
long pk_syscall_number(const char *name); /* -1 if unknown */
/* Bit i set when argument i of syscall nr is a file descriptor. */
unsigned pk_syscall_fd_args(long nr);
/* Number of meaningful arguments to show for nr (0..6). */
int pk_syscall_nargs(long nr);

/* ---------------------------------------------------------------- memory */

struct pk_mem;

/* A memory backend: the live process, or a fake image in tests. read must
 * return 0 and fill len bytes, or -EFAULT (or another -errno). */
struct pk_mem_ops {
	int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
	void (*destroy)(void *ctx);
};

/* Opens /proc/PID/mem at once: that descriptor stays bound to the address
 * space the process has now (see pk_mem_same_space, pk_mem_write). Open it
 * before reading anything a decision will rest on (maps included). */
int pk_mem_open_pid(pid_t pid, struct pk_mem **out);
int pk_mem_open_ops(const struct pk_mem_ops *ops, void *ctx, struct pk_mem **out);
void pk_mem_close(struct pk_mem *mem);

/* Read exactly len bytes; -EFAULT if any part is unreadable (not described
 * with pk_error: the caller knows what it was reading), -EINVAL above 64 MiB;
 * len 0 reads nothing and returns 0. Goes through a page cache while it is
 * enabled. */
int pk_mem_read(struct pk_mem *mem, uint64_t addr, void *buf, size_t len);
/* Several reads in one system call where the backend allows it. Returns 0
 * when all succeeded, else -EFAULT; ok[i] (if not NULL) says which did. */
struct pk_mem_iov {
	uint64_t addr;
	void *buf;
	size_t len;
};
int pk_mem_readv(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok);
/* The same, never through the page cache (nor into it): for a few bytes on
 * many pages, where caching would add every page to each refresh. */
int pk_mem_readv_uncached(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok);

/* Page cache: reads are served from whole pages read once. Enable it while the
 * target is frozen (its memory cannot change); pk_mem_cache_drop() when it
 * may have changed. Off by default. */
void pk_mem_cache_enable(struct pk_mem *mem, bool on);
void pk_mem_cache_drop(struct pk_mem *mem);
/* Read every cached line again, in as few system calls as possible: a
 * reading done while the target ran tells which memory a consistent
 * reading will need; refreshed once the target is frozen, that reading is
 * served from the cache. */
int pk_mem_cache_refresh(struct pk_mem *mem);
/* Counters for -v and benchmarks. */
struct pk_mem_stats {
	uint64_t reads, syscalls, bytes, cache_hits;
};
void pk_mem_get_stats(const struct pk_mem *mem, struct pk_mem_stats *out);

/* Is the address space of pk_mem_open_pid's moment still alive? 0 yes (or a
 * memory image), -ESRCH no: the process exited or executed a new program
 * since; reads through process_vm_readv may have seen the new one. Not
 * described with pk_error(). One system call. */
int pk_mem_same_space(struct pk_mem *mem);

/* Has process pid an address space now? 1 yes, 0 no (it is exiting: the
 * kernel releases the space before the task turns zombie; or it is gone),
 * -errno when it cannot be told. Opens /proc/PID/mem afresh; not described with
 * pk_error(). */
int pk_mem_space_now(pid_t pid);

/* Write (for raise), through the descriptor opened by pk_mem_open_pid: into
 * that address space only (-ESRCH once it is gone), read-only pages too. */
int pk_mem_write(struct pk_mem *mem, uint64_t addr, const void *buf, size_t len);

/* ---------------------------------------------------------------- freeze */

/* A set of threads of one process held in ptrace stops (PTRACE_SEIZE +
 * PTRACE_INTERRUPT; never PTRACE_ATTACH, never PTRACE_O_EXITKILL), so that
 * nothing is left stopped if pykill dies. While any freeze is active, SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT (and SIGTSTP) of pykill are blocked; they are
 * delivered after pk_freeze_end() has detached every thread. All calls on
 * freezes must come from the same thread of pykill (ptrace's rule). */
struct pk_freeze;

int pk_freeze_new(pid_t pid, struct pk_freeze **out);
/* Stop these threads (tids of pid, e.g. from pk_proc_tasks). A thread that
 * has exited meanwhile is skipped, not an error; -ESRCH when the process is
 * gone. A thread that does not stop within 200 ms (uninterruptible sleep) is
 * not counted by pk_freeze_has/count and is released when it stops. On
 * another failure every thread stopped so far is released before returning. */
int pk_freeze_add(struct pk_freeze *fz, const pid_t *tids, size_t n);
bool pk_freeze_has(const struct pk_freeze *fz, pid_t tid);
size_t pk_freeze_count(const struct pk_freeze *fz);
/* Where a stopped thread of the freeze is (its program counter): -ESRCH when
 * tid is not stopped by this freeze, other -errno from ptrace. No pk_error(). */
int pk_freeze_pc(const struct pk_freeze *fz, pid_t tid, uint64_t *pc);
/* Its stack pointer and its thread pointer (x86_64: fs_base, the address of
 * the C library's thread descriptor, pthread_self(), with glibc and musl).
 * Same errors as pk_freeze_pc. */
int pk_freeze_sp_tp(const struct pk_freeze *fz, pid_t tid, uint64_t *sp, uint64_t *tp);
/* Release every stopped thread. Returns how long the first one was stopped, in ns. */
uint64_t pk_freeze_end(struct pk_freeze *fz);
void pk_freeze_free(struct pk_freeze *fz); /* ends it first if still active */

/* Claim the thread of pid with this Python ident (unique among its live
 * threads) for this pykill (claim.c): waits up to timeout_ms
 * while another pykill holds it (-EBUSY then), or until *stop (if not
 * NULL) is set by the caller's signal handler (-EINTR, no message).
 * Released by pk_thread_unclaim() or when pykill exits, however it exits. */
int pk_thread_claim(pid_t pid, uint64_t ident, unsigned timeout_ms, const volatile sig_atomic_t *stop, int *fd);
void pk_thread_unclaim(int fd);

/* The end of the user address space of this architecture: no pointer of a
 * target's heap or stack lies at or above it (attach/arch/). */
uint64_t pk_user_addr_end(void);

/* Why ptrace of pid would fail, as a hint for messages (already traced by pid
 * N, yama ptrace_scope, another user, missing CAP_SYS_PTRACE). */
void pk_attach_explain_eperm(pid_t pid);
/* Another tracer (not this process) of pid or of one of its threads: its
 * PID, or 0 if none is seen. */
pid_t pk_attach_other_tracer(pid_t pid);

#endif
