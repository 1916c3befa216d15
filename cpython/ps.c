/* SPDX-License-Identifier: MIT */
/* Every Python process the caller can see, for `pykill ps`.
 *
 * Nothing is stopped and no binary is run: /proc is walked, a process is a
 * candidate when an executable mapping's file name contains "python" or its
 * main executable holds the interpreter's globals (an interpreter linked into
 * a program of another name), and candidates are identified by pk_py_open
 * and counted by pk_py_snapshot(PK_FREEZE_NONE), which never stop anything.
 * The executables checked for the interpreter's globals are opened once per
 * (device, inode) in a run: on a busy host most processes share a handful of
 * binaries (bash, sshd, the same worker image). */
#include "py-priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PS_MAX_PROCS 4194304u   /* pid_max's ceiling */
#define PS_CMDLINE_MAX 4096u    /* bytes of /proc/PID/cmdline kept */
#define PS_CACHE_MAX 4096u      /* distinct executables checked per run */

struct exe_entry {
	uint32_t dev_major, dev_minor;
	uint64_t inode;
	bool holds;
};

struct exe_cache {
	struct exe_entry *v;
	size_t n, cap;
	size_t opened, hits;
};

/* Does the file behind this mapping hold the interpreter? Answered once per
 * (device, inode); a file that cannot be opened or parsed counts as no. */
static bool exe_holds(struct exe_cache *c, pid_t pid, const struct pk_map *m)
{
	struct pk_elf *elf = NULL;
	bool holds = false;

	for (size_t i = 0; i < c->n; i++) {
		const struct exe_entry *e = &c->v[i];

		if (e->inode == m->inode && e->dev_major == m->dev_major && e->dev_minor == m->dev_minor) {
			c->hits++;
			return e->holds;
		}
	}
	if (pk_py_map_elf(pid, m, &elf) == 0) {
		holds = pk_py_elf_holds_interpreter(elf);
		pk_elf_close(elf);
	}
	c->opened++;
	pk_error_clear();
	/* A full cache only costs speed: the answer is still right. */
	if (c->n == c->cap && c->cap < PS_CACHE_MAX) {
		size_t ncap = c->cap ? 2 * c->cap : 64;
		struct exe_entry *nv = realloc(c->v, ncap * sizeof(*nv));

		if (nv != NULL) {
			c->v = nv;
			c->cap = ncap;
		}
	}
	if (c->n < c->cap)
		c->v[c->n++] = (struct exe_entry){ m->dev_major, m->dev_minor, m->inode, holds };
	return holds;
}

/* The mapping of the process's main executable: the one whose path is what
 * /proc/TASK/exe points to (task: a live one, see pk_proc_live_task). NULL
 * if there is none (or it cannot be read). */
static const struct pk_map *main_exe(pid_t task, const struct pk_maps *maps)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)task);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return NULL;
	target[n] = '\0';
	for (size_t i = 0; i < maps->n; i++)
		if (strcmp(maps->v[i].path, target) == 0)
			return &maps->v[i];
	return NULL;
}

static bool is_candidate(struct exe_cache *c, pid_t pid, pid_t task, const struct pk_maps *maps)
{
	const struct pk_map *exe;

	/* An interpreter's code is mapped executable; a python-named file
	 * mapped only for reading (an editor, a packager) does not count. */
	for (size_t i = 0; i < maps->n; i++) {
		const struct pk_map *m = &maps->v[i];

		if (m->path[0] == '/' && (m->prot & PK_MAP_X) && pk_py_name_has_python(m->path))
			return true;
	}
	exe = main_exe(task, maps);
	return exe != NULL && exe_holds(c, pid, exe);
}

/* /proc/TASK/cmdline (a live task's: an exited leader's is empty) with the
 * NUL separators turned into spaces, bounded; "[comm]" when empty (as
 * ps(1) shows it). */
static char *read_cmdline(pid_t task, const char *comm)
{
	char path[64];
	char *buf;
	size_t len = 0;
	int fd;

	buf = malloc(PS_CMDLINE_MAX + 1);
	if (buf == NULL)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)task);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		while (len < PS_CMDLINE_MAX) {
			ssize_t r = read(fd, buf + len, PS_CMDLINE_MAX - len);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			len += (size_t)r;
		}
		close(fd);
	}
	while (len > 0 && (buf[len - 1] == '\0' || buf[len - 1] == ' '))
		len--;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[len] = '\0';
	if (len == 0)
		snprintf(buf, PS_CMDLINE_MAX + 1, "[%s]", comm);
	return buf;
}

static void proc_clear(struct pk_ps_proc *p)
{
	free(p->path);
	free(p->cmdline);
	free(p->error);
	memset(p, 0, sizeof(*p));
}

static bool is_permission(int rc)
{
	return rc == -EPERM || rc == -EACCES;
}

bool pk_py_thread_blocked(const struct pk_py_thread *t)
{
	return t->tid > 0 && (t->state == 'S' || t->state == 'D') && t->syscall_nr != PK_SYSCALL_RUNNING;
}

/* How many threads of snap have been blocked at least stuck_ns (and the
 * longest), from /proc; with idle_out, a worker waiting for work is left
 * out. An OS thread counts once, by its active state (its idle ones share
 * its time). -1 without a scheduler clock. */
static long blocked_at_least(pid_t pid, const struct pk_py_snapshot *snap, uint64_t stuck_ns, bool idle_out,
			     uint64_t *longest)
{
	uint64_t now, off;
	long n = 0;

	if (pk_sched_now(&now) < 0)
		return -1;
	for (size_t i = 0; i < snap->nthreads; i++) {
		const struct pk_py_thread *t = &snap->threads[i];

		if (t->idle || (idle_out && t->shape_idle) || !pk_py_thread_blocked(t) ||
		    pk_proc_offcpu_ns(pid, t->tid, now, &off) < 0 ||
		    off < stuck_ns)
			continue;
		n++;
		if (off > *longest)
			*longest = off;
	}
	return n;
}

/* The stuck threads of a process: blocked at least stuck_ns, a worker
 * waiting for work (it waits for good by design) left out. Which thread is
 * an idle worker is told from its stack: read (unfrozen, like the thread
 * list) only when some thread has been blocked that long at all. */
static void count_stuck(struct pk_py *py, const struct pk_py_snapshot *snap, uint64_t stuck_ns, struct pk_ps_proc *p)
{
	struct pk_snapshot_opts so = { .freeze = PK_FREEZE_NONE, .want_frames = true, .want_names = true };
	struct pk_py_snapshot *stacks = NULL;
	uint64_t longest = 0;

	p->stuck = blocked_at_least(py->pid, snap, stuck_ns, false, &longest);
	if (p->stuck <= 0)
		return;
	if (pk_py_snapshot(py, &so, &stacks) < 0) {
		pk_error_clear();
		p->stuck = -1;
		return;
	}
	longest = 0;
	p->stuck = blocked_at_least(py->pid, stacks, stuck_ns, true, &longest);
	p->stuck_longest_ns = longest;
	pk_py_snapshot_free(stacks);
}

/* Identify one candidate and fill p. Returns 1 when it is a Python process
 * to list, 0 when it is not (or is gone), -EPERM when it may not be read,
 * -ENOMEM. */
static int inspect(pid_t pid, const struct pk_status *st, const struct pk_ps_opts *opts, struct pk_ps_proc *p)
{
	struct pk_snapshot_opts so = { .freeze = PK_FREEZE_NONE };
	struct pk_py_snapshot *snap = NULL;
	struct pk_py *py = NULL;
	uint64_t t0 = pk_now_ns();
	int rc;

	p->pid = pid;
	p->ns_pid = st->ns_levels > 0 ? st->nspid[st->ns_levels - 1] : pid;
	p->uid = st->uid_effective;
	p->nthreads = -1;
	p->nstates = -1;
	p->stuck = -1;
	rc = pk_py_open(pid, &py);
	if (is_permission(rc))
		return -EPERM;
	if (rc == -ENOTSUP || rc == -ENOENT || rc == -ELIBACC) {
		/* A Python pykill cannot read (or whose file it would not
		 * open, or whose code it cannot check without capstone): still
		 * worth showing, with why. */
		p->error = strdup(pk_error_message());
		rc = p->error ? 1 : -ENOMEM;
		goto out;
	}
	if (rc < 0) {
		rc = rc == -ENOMEM ? rc : 0;
		goto out;
	}
	snprintf(p->version, sizeof(p->version), "%s", pk_py_version(py));
	p->path = strdup(pk_py_path(py));
	if (p->path == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (opts->count_threads) {
		rc = pk_py_snapshot(py, &so, &snap);
		if (is_permission(rc)) {
			rc = -EPERM;
			goto out;
		}
		if (rc == -ESRCH) {
			rc = 0;
			goto out;
		}
		if (rc < 0) {
			p->error = strdup(pk_error_message()[0] ? pk_error_message() : strerror(-rc));
			rc = p->error ? 1 : -ENOMEM;
			goto out;
		}
		/* OS threads, as list's rows; where no state could be placed
		 * on a live thread at all, the states stand in for them. */
		p->nstates = (long)snap->nthreads;
		p->nthreads = snap->nos_threads > 0 ? (long)snap->nos_threads : (long)snap->nthreads;
		if (opts->stuck_ns > 0)
			count_stuck(py, snap, opts->stuck_ns, p);
	}
	rc = 1;
out:
	pk_log(PK_LOG_DEBUG, "process %d: %s in %.3f ms", (int)pid,
	       rc == 1 ? (p->version[0] ? p->version : "unsupported Python") :
	       rc == 0 ? "not Python" : "not readable",
	       (double)(pk_now_ns() - t0) / 1e6);
	pk_py_snapshot_free(snap);
	pk_py_close(py);
	pk_error_clear();
	return rc;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = ((const struct pk_ps_proc *)a)->pid, y = ((const struct pk_ps_proc *)b)->pid;

	return (x > y) - (x < y);
}

/* The PIDs to look at: the caller's, or every process in /proc. */
static int list_pids(const struct pk_ps_opts *opts, pid_t **out, size_t *nout)
{
	struct dirent *de;
	pid_t *v = NULL;
	size_t n = 0, cap = 0;
	DIR *dir;

	if (opts->pids != NULL) {
		v = malloc((opts->npids ? opts->npids : 1) * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		memcpy(v, opts->pids, opts->npids * sizeof(*v));
		*out = v;
		*nout = opts->npids;
		return 0;
	}
	dir = opendir("/proc");
	if (dir == NULL) {
		int err = errno;
		pk_error("list processes in /proc: %s", strerror(err));
		return -err;
	}
	while ((de = readdir(dir)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end != '\0' || pid <= 0 || pid > INT_MAX)
			continue;
		if (n == cap) {
			pid_t *nv;

			if (cap >= PS_MAX_PROCS)
				break;
			cap = cap ? 2 * cap : 512;
			nv = realloc(v, cap * sizeof(*nv));
			if (nv == NULL) {
				free(v);
				closedir(dir);
				pk_error("list processes in /proc: out of memory");
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = (pid_t)pid;
	}
	closedir(dir);
	*out = v;
	*nout = n;
	return 0;
}

/* A process that could not be read: counted; with PIDs named, which one
 * (the caller says why it is not listed). At most npids of them: the
 * array is allocated once, for all. */
static void skipped(struct pk_ps *res, const struct pk_ps_opts *opts, pid_t pid)
{
	res->skipped++;
	if (opts->pids == NULL)
		return;
	if (res->skipped_pids == NULL)
		res->skipped_pids = calloc(opts->npids ? opts->npids : 1, sizeof(*res->skipped_pids));
	if (res->skipped_pids != NULL && res->nskipped_pids < opts->npids)
		res->skipped_pids[res->nskipped_pids++] = pid;
}

int pk_py_ps(const struct pk_ps_opts *opts, struct pk_ps *out)
{
	struct exe_cache cache = { 0 };
	struct pk_ps res = { 0 };
	size_t cap = 0, candidates = 0;
	pid_t *pids = NULL, self = getpid();
	size_t npids = 0;
	uint64_t t0 = pk_now_ns();
	int rc;

	memset(out, 0, sizeof(*out));
	rc = list_pids(opts, &pids, &npids);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < npids; i++) {
		struct pk_maps maps = { 0 };
		struct pk_status st;
		struct pk_ps_proc p = { 0 };
		pid_t pid = pids[i], task;

		if (pid == self)
			continue;
		res.scanned++;
		/* Threads are not processes; a TID given by the caller is not listed. */
		if (pk_proc_status(pid, 0, &st) < 0 || st.tgid != pid || pk_status_ended(&st)) {
			pk_error_clear();
			continue;
		}
		/* A leader that called pthread_exit has no exe, no cmdline: a
		 * live thread of the process has them. */
		task = pid;
		if ((st.state == 'Z' || st.state == 'X') && pk_proc_live_task(pid, &task) < 0) {
			pk_error_clear();
			continue;
		}
		rc = pk_proc_maps(pid, &maps);
		if (rc < 0) {
			if (is_permission(rc))
				skipped(&res, opts, pid);
			pk_error_clear();
			continue;
		}
		if (!is_candidate(&cache, pid, task, &maps)) {
			pk_maps_free(&maps);
			continue;
		}
		pk_maps_free(&maps);
		candidates++;
		rc = inspect(pid, &st, opts, &p);
		if (rc == -ENOMEM)
			goto fail;
		if (rc == -EPERM)
			skipped(&res, opts, pid);
		if (rc != 1) {
			proc_clear(&p);
			continue;
		}
		p.cmdline = read_cmdline(task, st.name);
		if (p.cmdline == NULL) {
			proc_clear(&p);
			rc = -ENOMEM;
			goto fail;
		}
		if (res.n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct pk_ps_proc *nv = realloc(res.v, ncap * sizeof(*nv));

			if (nv == NULL) {
				proc_clear(&p);
				rc = -ENOMEM;
				goto fail;
			}
			res.v = nv;
			cap = ncap;
		}
		res.v[res.n++] = p;
	}
	if (res.n > 1)
		qsort(res.v, res.n, sizeof(*res.v), pid_cmp);
	pk_log(PK_LOG_INFO, "ps: %zu processes read in %.3f ms: %zu candidates, %zu Python, %zu not readable; "
	       "%zu executables opened, %zu answers from the (dev, inode) cache",
	       res.scanned, (double)(pk_now_ns() - t0) / 1e6, candidates, res.n, res.skipped, cache.opened,
	       cache.hits);
	free(cache.v);
	free(pids);
	*out = res;
	return 0;
fail:
	pk_error("list Python processes: out of memory");
	free(cache.v);
	free(pids);
	pk_ps_free(&res);
	return rc;
}

void pk_ps_free(struct pk_ps *ps)
{
	if (ps == NULL)
		return;
	for (size_t i = 0; i < ps->n; i++)
		proc_clear(&ps->v[i]);
	free(ps->v);
	free(ps->skipped_pids);
	memset(ps, 0, sizeof(*ps));
}
