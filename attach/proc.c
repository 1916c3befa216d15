/* SPDX-License-Identifier: MIT */
/* /proc parsers and readers.
 *
 * The parsers (pk_*_parse) take arbitrary bytes: they never read past len,
 * never trust a number to fit, and return -EINVAL for text the kernel would
 * not have produced. They do not describe failures (they do not know which
 * file the text came from); the readers do. */
#include "pk_attach.h"
#include "attach-priv.h"
#include "pk_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

int pk_proc_path(char *buf, size_t cap, pid_t pid, pid_t tid, const char *name)
{
	int n;

	if (tid != 0)
		n = snprintf(buf, cap, "/proc/%d/task/%d/%s", (int)pid, (int)tid, name);
	else
		n = snprintf(buf, cap, "/proc/%d/%s", (int)pid, name);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

int pk_proc_exists(pid_t pid, pid_t tid)
{
	char path[64];

	if (pid <= 0 || tid < 0)
		return 0;
	if (tid != 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) == 0;
}

int pk_proc_errno(int err, pid_t pid, pid_t tid, const char *what, int ptrace_rights)
{
	if (err == ENOENT || err == ESRCH) {
		if (!pk_proc_exists(pid, 0)) {
			pk_error("no such process %d", (int)pid);
			return -ESRCH;
		}
		if (tid != 0 && !pk_proc_exists(pid, tid)) {
			pk_error("no such thread %d in process %d", (int)tid, (int)pid);
			return -ESRCH;
		}
		/* The process is there but the file is not (kernel config): a
		 * zombie also lands here for some files. */
		pk_error("read %s: %s", what, strerror(err));
		return -err;
	}
	pk_error("read %s: %s", what, strerror(err));
	if ((err == EACCES || err == EPERM) && ptrace_rights)
		pk_attach_explain_eperm(pid);
	return -err;
}

/* Read a file into buf (cap includes the NUL); -EFBIG when it does not fit.
 * Returns -errno without describing anything. */
static int read_fd_into(int fd, char *buf, size_t cap, size_t *len)
{
	size_t off = 0;

	for (;;) {
		ssize_t r;

		if (off + 1 >= cap) {
			char extra;

			/* Full: it fits only if we are at end of file. */
			do {
				r = read(fd, &extra, 1);
			} while (r < 0 && errno == EINTR);
			if (r < 0)
				return -errno;
			if (r > 0)
				return -EFBIG;
			break;
		}
		r = read(fd, buf + off, cap - 1 - off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	buf[off] = '\0';
	*len = off;
	return 0;
}

static int read_path_small(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = read_fd_into(fd, buf, cap, len);
	close(fd);
	return rc;
}

/* The state letter of a task, 0 when it cannot be read (ended). Quiet. */
static char task_state(pid_t pid, pid_t tid)
{
	char path[96], buf[1024];
	struct pk_stat st;
	size_t len;

	if (pk_proc_path(path, sizeof(path), pid, tid, "stat") < 0 || read_path_small(path, buf, sizeof(buf), &len) < 0 ||
	    pk_stat_parse(buf, len, &st) < 0)
		return 0;
	return st.state;
}

static bool state_live(char state)
{
	return state != 0 && state != 'Z' && state != 'X';
}

int pk_proc_live_task(pid_t pid, pid_t *out)
{
	pid_t *tids = NULL;
	size_t n = 0;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = 0;
	/* The common case, one read: the leader runs. */
	if (state_live(task_state(pid, 0))) {
		*out = pid;
		return 0;
	}
	rc = pk_proc_tasks(pid, &tids, &n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && *out == 0; i++)
		if (tids[i] != pid && state_live(task_state(pid, tids[i])))
			*out = tids[i];
	free(tids);
	if (*out == 0) {
		pk_error("no such process %d (it has exited; no thread of it is left)", (int)pid);
		return -ESRCH;
	}
	return 0;
}

/* "/proc/TASK/NAME" for the live task of pid (pk_proc_live_task): the
 * files that describe the address space, the root and the descriptors
 * are empty or gone under an exited leader. /proc/TID is the thread's own
 * view of them, map_files included (which /proc/PID/task/TID lacks). */
static int live_path(pid_t pid, const char *name, char *buf, size_t cap)
{
	pid_t via;
	int rc = pk_proc_live_task(pid, &via);
	int n;

	if (rc < 0)
		return rc;
	n = snprintf(buf, cap, "/proc/%d/%s", (int)via, name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Which /proc files are behind a ptrace access check (so that EACCES means
 * "no ptrace rights" and deserves the explanation). */
static int needs_ptrace_rights(const char *name)
{
	static const char *const guarded[] = { "maps", "syscall", "mem", "environ", "auxv", "stack" };

	for (size_t i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++)
		if (strcmp(name, guarded[i]) == 0)
			return 1;
	return 0;
}

int pk_proc_read_small(pid_t pid, pid_t tid, const char *name, char *buf, size_t cap, size_t *len)
{
	char path[96];
	int rc;

	if (pid <= 0 || tid < 0 || buf == NULL || cap == 0) {
		pk_error("read /proc/%d/%s: invalid process id", (int)pid, name);
		return -EINVAL;
	}
	rc = pk_proc_path(path, sizeof(path), pid, tid, name);
	if (rc < 0)
		return rc;
	rc = read_path_small(path, buf, cap, len);
	if (rc == -EFBIG) {
		pk_error("read %s: larger than %zu bytes", path, cap - 1);
		return rc;
	}
	if (rc < 0)
		return pk_proc_errno(-rc, pid, tid, path, needs_ptrace_rights(name));
	return 0;
}

int pk_proc_read_alloc(pid_t pid, pid_t tid, const char *name, size_t max, char **out, size_t *len)
{
	char path[96];
	char *buf = NULL;
	size_t cap = 4096, off = 0;
	int fd, rc;

	*out = NULL;
	*len = 0;
	if (pid <= 0 || tid < 0) {
		pk_error("read /proc/%d/%s: invalid process id", (int)pid, name);
		return -EINVAL;
	}
	rc = pk_proc_path(path, sizeof(path), pid, tid, name);
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pk_proc_errno(errno, pid, tid, path, needs_ptrace_rights(name));
	for (;;) {
		ssize_t r;

		if (buf == NULL || off >= cap) {
			size_t ncap = buf == NULL ? cap : cap * 2;
			char *nb;

			if (buf != NULL && cap > max) {
				pk_error("read %s: larger than %zu bytes", path, max);
				rc = -EFBIG;
				goto fail;
			}
			/* One byte over max tells a file of exactly max bytes from a larger one. */
			if (ncap > max + 1)
				ncap = max + 1;
			nb = realloc(buf, ncap + 1);
			if (nb == NULL) {
				rc = -ENOMEM;
				pk_error("read %s: out of memory", path);
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + off, cap - off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = pk_proc_errno(errno, pid, tid, path, needs_ptrace_rights(name));
			goto fail;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	if (off > max) {
		pk_error("read %s: larger than %zu bytes", path, max);
		rc = -EFBIG;
		goto fail;
	}
	close(fd);
	buf[off] = '\0';
	*out = buf;
	*len = off;
	return 0;
fail:
	free(buf);
	close(fd);
	return rc;
}

/* Bounded number scanning over [*p, end). Each consumes at least one digit
 * and fails on overflow, so hostile text cannot produce UB. */
int pk_scan_u64(const char **p, const char *end, unsigned base, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int any = 0;

	for (; s < end; s++) {
		unsigned d;
		char c = *s;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			break;
		if (d >= base)
			break;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
		any = 1;
	}
	if (!any)
		return -EINVAL;
	*p = s;
	*out = v;
	return 0;
}

static int scan_pid(const char **p, const char *end, pid_t *out)
{
	uint64_t v;
	int rc = pk_scan_u64(p, end, 10, &v);

	if (rc < 0)
		return rc;
	if (v > INT_MAX)
		return -ERANGE;
	*out = (pid_t)v;
	return 0;
}

static int scan_hex_0x(const char **p, const char *end, uint64_t *out)
{
	if (end - *p >= 2 && (*p)[0] == '0' && ((*p)[1] == 'x' || (*p)[1] == 'X'))
		*p += 2;
	return pk_scan_u64(p, end, 16, out);
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static int expect_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

/* ---------------------------------------------------------------- maps */

/* "start-end perms offset major:minor inode [path]". The path is the rest
 * of the line after the padding: it may contain spaces and end in
 * " (deleted)"; the kernel escapes newlines in it. */
static int parse_map_line(const char *p, const char *end, struct pk_map *m, char **pool)
{
	uint64_t v;
	size_t plen;

	if (pk_scan_u64(&p, end, 16, &m->start) < 0 || expect_char(&p, end, '-') < 0 ||
	    pk_scan_u64(&p, end, 16, &m->end) < 0 || expect_char(&p, end, ' ') < 0)
		return -EINVAL;
	if (m->end < m->start || end - p < 5)
		return -EINVAL;
	m->prot = 0;
	if (p[0] == 'r')
		m->prot |= PK_MAP_R;
	else if (p[0] != '-')
		return -EINVAL;
	if (p[1] == 'w')
		m->prot |= PK_MAP_W;
	else if (p[1] != '-')
		return -EINVAL;
	if (p[2] == 'x')
		m->prot |= PK_MAP_X;
	else if (p[2] != '-')
		return -EINVAL;
	if (p[3] == 'p')
		m->prot |= PK_MAP_P;
	else if (p[3] != 's')
		return -EINVAL;
	p += 4;
	if (expect_char(&p, end, ' ') < 0 || pk_scan_u64(&p, end, 16, &m->offset) < 0 ||
	    expect_char(&p, end, ' ') < 0)
		return -EINVAL;
	if (pk_scan_u64(&p, end, 16, &v) < 0 || v > UINT32_MAX)
		return -EINVAL;
	m->dev_major = (uint32_t)v;
	if (expect_char(&p, end, ':') < 0 || pk_scan_u64(&p, end, 16, &v) < 0 || v > UINT32_MAX)
		return -EINVAL;
	m->dev_minor = (uint32_t)v;
	if (expect_char(&p, end, ' ') < 0 || pk_scan_u64(&p, end, 10, &m->inode) < 0)
		return -EINVAL;
	if (p < end && *p != ' ' && *p != '\t')
		return -EINVAL;
	p = skip_blanks(p, end);
	plen = (size_t)(end - p);
	memcpy(*pool, p, plen);
	(*pool)[plen] = '\0';
	m->path = *pool;
	*pool += plen + 1;
	return 0;
}

static int map_cmp(const void *a, const void *b)
{
	const struct pk_map *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

/* One allocation holds the array and, after it, every path: freeing is one
 * free() and a 60000-line maps file costs one malloc. */
int pk_maps_parse(const char *text, size_t len, struct pk_maps *out)
{
	const char *p, *end;
	struct pk_map *v;
	size_t lines = 0, n = 0, bytes;
	char *pool;
	int sorted = 1;

	if (out == NULL)
		return -EINVAL;
	out->v = NULL;
	out->n = 0;
	if (text == NULL)
		return len == 0 ? 0 : -EINVAL;
	if (len > PK_PROC_MAX_FILE)
		return -EFBIG;
	for (p = text, end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		lines++;
		p = nl ? nl + 1 : end;
	}
	if (lines == 0)
		return 0;
	if (lines > PK_PROC_MAX_MAPS)
		return -E2BIG;
	/* Bounded by PK_PROC_MAX_FILE and PK_PROC_MAX_MAPS: cannot overflow. */
	bytes = lines * sizeof(struct pk_map) + len + lines;
	v = malloc(bytes);
	if (v == NULL)
		return -ENOMEM;
	pool = (char *)(v + lines);
	for (p = text, end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		if (le > p) {
			if (parse_map_line(p, le, &v[n], &pool) < 0) {
				free(v);
				return -EINVAL;
			}
			if (n > 0 && map_cmp(&v[n - 1], &v[n]) > 0)
				sorted = 0;
			n++;
		}
		p = nl ? nl + 1 : end;
	}
	if (n == 0) {
		free(v);
		return 0;
	}
	if (!sorted)
		qsort(v, n, sizeof(*v), map_cmp);
	out->v = v;
	out->n = n;
	return 0;
}

void pk_maps_free(struct pk_maps *maps)
{
	if (maps == NULL)
		return;
	free(maps->v);
	maps->v = NULL;
	maps->n = 0;
}

const struct pk_map *pk_maps_find(const struct pk_maps *maps, uint64_t addr)
{
	size_t lo = 0, hi;

	if (maps == NULL || maps->v == NULL)
		return NULL;
	hi = maps->n;
	/* Last map with start <= addr; maps do not overlap. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (maps->v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	if (addr < maps->v[lo - 1].end)
		return &maps->v[lo - 1];
	return NULL;
}

int pk_proc_maps(pid_t pid, struct pk_maps *out)
{
	char *text;
	size_t len;
	pid_t via;
	int rc;

	if (out == NULL)
		return -EINVAL;
	out->v = NULL;
	out->n = 0;
	rc = pk_proc_live_task(pid, &via);
	if (rc < 0)
		return rc;
	rc = pk_proc_read_alloc(pid, via == pid ? 0 : via, "maps", PK_PROC_MAX_FILE, &text, &len);
	if (rc < 0)
		return rc;
	rc = pk_maps_parse(text, len, out);
	if (rc < 0)
		pk_error("parse /proc/%d/maps: %s", (int)pid,
			 rc == -EINVAL ? "unexpected format" : strerror(-rc));
	free(text);
	return rc;
}

/* ---------------------------------------------------------------- status */

static int line_key(const char *p, const char *le, const char *key, const char **val)
{
	size_t kl = strlen(key);

	if ((size_t)(le - p) < kl + 1 || memcmp(p, key, kl) != 0 || p[kl] != ':')
		return 0;
	*val = p + kl + 1;
	return 1;
}

static int parse_status_line(const char *p, const char *le, struct pk_status *out, unsigned *seen)
{
	const char *v;
	uint64_t u;

	if (line_key(p, le, "Name", &v)) {
		size_t n;

		/* "Name:\t<comm>": the name itself may start with a blank. */
		if (v < le && *v == '\t')
			v++;
		n = (size_t)(le - v);
		if (n >= sizeof(out->name))
			n = sizeof(out->name) - 1;
		memcpy(out->name, v, n);
		out->name[n] = '\0';
		*seen |= 1u;
	} else if (line_key(p, le, "State", &v)) {
		v = skip_blanks(v, le);
		if (v >= le)
			return -EINVAL;
		out->state = *v;
		*seen |= 2u;
	} else if (line_key(p, le, "Tgid", &v)) {
		v = skip_blanks(v, le);
		if (scan_pid(&v, le, &out->tgid) < 0)
			return -EINVAL;
		*seen |= 4u;
	} else if (line_key(p, le, "Pid", &v)) {
		pid_t pid;

		v = skip_blanks(v, le);
		if (scan_pid(&v, le, &pid) < 0)
			return -EINVAL;
		if (!(*seen & 0x10u)) {
			out->nspid[0] = pid;
			out->ns_levels = 1;
		}
		*seen |= 8u;
	} else if (line_key(p, le, "NSpid", &v)) {
		pid_t ids[PK_MAX_NS_LEVELS];
		int n = 0, total = 0;

		/* Deeper than PK_MAX_NS_LEVELS (the kernel allows 32): keep the
		 * outermost levels and make the last slot the innermost id, so
		 * nspid[0] and nspid[ns_levels-1] keep their meaning. */
		for (;;) {
			pid_t id;

			v = skip_blanks(v, le);
			if (v >= le)
				break;
			if (scan_pid(&v, le, &id) < 0)
				return -EINVAL;
			if (n < PK_MAX_NS_LEVELS)
				ids[n++] = id;
			else
				ids[PK_MAX_NS_LEVELS - 1] = id;
			if (++total > 64)
				return -EINVAL;
		}
		if (n == 0)
			return -EINVAL;
		memcpy(out->nspid, ids, sizeof(ids[0]) * (size_t)n);
		out->ns_levels = n;
		*seen |= 0x10u;
	} else if (line_key(p, le, "Threads", &v)) {
		v = skip_blanks(v, le);
		if (pk_scan_u64(&v, le, 10, &u) < 0 || u > INT32_MAX)
			return -EINVAL;
		out->threads = (int)u;
	} else if (line_key(p, le, "TracerPid", &v)) {
		v = skip_blanks(v, le);
		if (scan_pid(&v, le, &out->tracer_pid) < 0)
			return -EINVAL;
	} else if (line_key(p, le, "Uid", &v)) {
		uint64_t r, e;

		v = skip_blanks(v, le);
		if (pk_scan_u64(&v, le, 10, &r) < 0)
			return -EINVAL;
		v = skip_blanks(v, le);
		if (pk_scan_u64(&v, le, 10, &e) < 0 || r > UINT32_MAX || e > UINT32_MAX)
			return -EINVAL;
		out->uid_real = (uid_t)r;
		out->uid_effective = (uid_t)e;
	} else if (line_key(p, le, "CapEff", &v)) {
		v = skip_blanks(v, le);
		if (pk_scan_u64(&v, le, 16, &u) < 0)
			return -EINVAL;
		out->cap_eff = u;
	} else if (line_key(p, le, "voluntary_ctxt_switches", &v)) {
		v = skip_blanks(v, le);
		if (pk_scan_u64(&v, le, 10, &out->voluntary_ctxt_switches) < 0)
			return -EINVAL;
	} else if (line_key(p, le, "nonvoluntary_ctxt_switches", &v)) {
		v = skip_blanks(v, le);
		if (pk_scan_u64(&v, le, 10, &out->nonvoluntary_ctxt_switches) < 0)
			return -EINVAL;
	} else if (line_key(p, le, "Seccomp", &v)) {
		v = skip_blanks(v, le);
		if (pk_scan_u64(&v, le, 10, &u) < 0 || u > 2)
			return -EINVAL;
		out->seccomp = (int)u;
	} else if (line_key(p, le, "Kthread", &v)) {
		v = skip_blanks(v, le);
		if (pk_scan_u64(&v, le, 10, &u) < 0 || u > 1)
			return -EINVAL;
		out->kthread = (int)u;
	}
	return 0;
}

int pk_status_parse(const char *text, size_t len, struct pk_status *out)
{
	const char *p, *end;
	unsigned seen = 0;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->seccomp = -1;
	out->kthread = -1;
	if (text == NULL || len > PK_PROC_MAX_FILE)
		return -EINVAL;
	for (p = text, end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		if (parse_status_line(p, le, out, &seen) < 0)
			return -EINVAL;
		p = nl ? nl + 1 : end;
	}
	/* State, Tgid and Pid are in every kernel's status. */
	if ((seen & 0xeu) != 0xeu)
		return -EINVAL;
	return 0;
}

int pk_proc_status(pid_t pid, pid_t tid, struct pk_status *out)
{
	char *text;
	size_t len;
	int rc;

	if (out == NULL)
		return -EINVAL;
	/* Usually ~1.5 KiB, but Groups: can list 65536 groups. */
	rc = pk_proc_read_alloc(pid, tid, "status", 1u << 20, &text, &len);
	if (rc < 0)
		return rc;
	rc = pk_status_parse(text, len, out);
	if (rc < 0) {
		if (tid != 0)
			pk_error("parse /proc/%d/task/%d/status: unexpected format", (int)pid, (int)tid);
		else
			pk_error("parse /proc/%d/status: unexpected format", (int)pid);
	}
	free(text);
	return rc;
}

bool pk_status_ended(const struct pk_status *st)
{
	return (st->state == 'Z' || st->state == 'X') && st->threads <= 1;
}

/* ---------------------------------------------------------------- stat */

/* "pid (comm) state f4 f5 ...": comm is up to 16 bytes of anything,
 * including spaces and ')', so it ends at the LAST ')'. */
int pk_stat_parse(const char *text, size_t len, struct pk_stat *out)
{
	const char *p, *end, *open, *close;
	size_t n;
	int field;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (text == NULL || len == 0 || len > PK_PROC_MAX_FILE)
		return -EINVAL;
	end = text + len;
	open = memchr(text, '(', len);
	if (open == NULL)
		return -EINVAL;
	close = NULL;
	for (p = end; p > open + 1;) {
		p--;
		if (*p == ')') {
			close = p;
			break;
		}
	}
	if (close == NULL)
		return -EINVAL;
	n = (size_t)(close - open - 1);
	if (n >= sizeof(out->comm))
		n = sizeof(out->comm) - 1;
	memcpy(out->comm, open + 1, n);
	out->comm[n] = '\0';

	p = close + 1;
	for (field = 3; field <= 39; field++) {
		const char *tok, *te;
		uint64_t v;

		if (p >= end || *p != ' ')
			return -EINVAL;
		p++;
		tok = p;
		while (p < end && *p != ' ' && *p != '\n')
			p++;
		te = p;
		if (te == tok)
			return -EINVAL;
		switch (field) {
		case 3:
			if (te - tok != 1)
				return -EINVAL;
			out->state = *tok;
			break;
		case 14:
		case 15:
		case 22:
		case 35:
		case 39:
			if (pk_scan_u64(&tok, te, 10, &v) < 0 || tok != te)
				return -EINVAL;
			if (field == 14)
				out->utime = v;
			else if (field == 15)
				out->stime = v;
			else if (field == 22)
				out->starttime = v;
			else if (field == 35)
				out->wchan_flag = v;
			else if (v > INT_MAX)
				return -EINVAL;
			else
				out->processor = (int)v;
			break;
		default:
			break;
		}
	}
	return 0;
}

int pk_proc_stat(pid_t pid, pid_t tid, struct pk_stat *out)
{
	char buf[4096];
	size_t len;
	int rc;

	if (out == NULL)
		return -EINVAL;
	rc = pk_proc_read_small(pid, tid, "stat", buf, sizeof(buf), &len);
	if (rc < 0)
		return rc;
	rc = pk_stat_parse(buf, len, out);
	if (rc < 0) {
		if (tid != 0)
			pk_error("parse /proc/%d/task/%d/stat: unexpected format", (int)pid, (int)tid);
		else
			pk_error("parse /proc/%d/stat: unexpected format", (int)pid);
	}
	return rc;
}

/* ---------------------------------------------------------------- syscall */

/* "running", "-1 SP PC" or "NR A0 A1 A2 A3 A4 A5 SP PC" (NR decimal, the
 * others 0x-prefixed hex). */
int pk_syscall_parse(const char *text, size_t len, struct pk_syscall *out)
{
	const char *p, *end;
	uint64_t nr;
	int neg = 0;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (text == NULL || len == 0 || len > PK_PROC_MAX_FILE)
		return -EINVAL;
	p = text;
	end = text + len;
	if (len >= 7 && memcmp(p, "running", 7) == 0) {
		p += 7;
		if (p < end && *p == '\n')
			p++;
		if (p != end)
			return -EINVAL;
		out->nr = PK_SYSCALL_RUNNING;
		return 0;
	}
	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (pk_scan_u64(&p, end, 10, &nr) < 0 || nr > INT_MAX)
		return -EINVAL;
	if (neg) {
		/* The kernel only ever prints -1 here. */
		if (nr != 1)
			return -EINVAL;
		out->nr = -1;
		if (expect_char(&p, end, ' ') < 0 || scan_hex_0x(&p, end, &out->sp) < 0 ||
		    expect_char(&p, end, ' ') < 0 || scan_hex_0x(&p, end, &out->pc) < 0)
			return -EINVAL;
	} else {
		out->nr = (long)nr;
		for (int i = 0; i < 6; i++)
			if (expect_char(&p, end, ' ') < 0 || scan_hex_0x(&p, end, &out->args[i]) < 0)
				return -EINVAL;
		if (expect_char(&p, end, ' ') < 0 || scan_hex_0x(&p, end, &out->sp) < 0 ||
		    expect_char(&p, end, ' ') < 0 || scan_hex_0x(&p, end, &out->pc) < 0)
			return -EINVAL;
	}
	if (p < end && *p == '\n')
		p++;
	return p == end ? 0 : -EINVAL;
}

int pk_proc_syscall(pid_t pid, pid_t tid, struct pk_syscall *out)
{
	char buf[512];
	size_t len;
	int rc;

	if (out == NULL)
		return -EINVAL;
	rc = pk_proc_read_small(pid, tid, "syscall", buf, sizeof(buf), &len);
	if (rc < 0)
		return rc;
	rc = pk_syscall_parse(buf, len, out);
	if (rc < 0) {
		if (tid != 0)
			pk_error("parse /proc/%d/task/%d/syscall: unexpected format", (int)pid, (int)tid);
		else
			pk_error("parse /proc/%d/syscall: unexpected format", (int)pid);
	}
	return rc;
}

bool pk_proc_exec_in_flight(pid_t pid)
{
	static long nr_execve = -2, nr_execveat = -2;
	char path[96], buf[512];
	struct dirent *de;
	unsigned seen = 0;
	bool found = false;
	DIR *d;

	if (nr_execve == -2) {
		nr_execve = pk_syscall_number("execve");
		nr_execveat = pk_syscall_number("execveat");
	}
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return false;
	while (!found && seen < PK_PROC_MAX_TASKS && (de = readdir(d)) != NULL) {
		struct pk_syscall sc;
		size_t len;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		seen++;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/syscall", (int)pid, de->d_name);
		if (read_path_small(path, buf, sizeof(buf), &len) == 0 && pk_syscall_parse(buf, len, &sc) == 0)
			found = sc.nr >= 0 && (sc.nr == nr_execve || sc.nr == nr_execveat);
	}
	closedir(d);
	return found;
}

/* ---------------------------------------------------------------- cputime */

int pk_proc_cputime(pid_t pid, pid_t tid, uint64_t *ns)
{
	char buf[4096], path[96];
	const char *p;
	size_t len;
	uint64_t v;
	struct pk_stat st;
	long hz;
	int rc;

	if (ns == NULL || pid <= 0 || tid < 0)
		return -EINVAL;
	/* The header promises a thread's time: tid 0 is the leader thread,
	 * not the sum over the process that /proc/PID/stat would give. */
	if (tid == 0)
		tid = pid;
	pk_proc_path(path, sizeof(path), pid, tid, "schedstat");
	rc = read_path_small(path, buf, sizeof(buf), &len);
	if (rc == 0) {
		p = buf;
		if (pk_scan_u64(&p, buf + len, 10, &v) < 0) {
			pk_error("parse %s: unexpected format", path);
			return -EINVAL;
		}
		*ns = v;
		return 0;
	}
	if (rc != -ENOENT || !pk_proc_exists(pid, tid))
		return pk_proc_errno(-rc, pid, tid, path, 0);

	/* No CONFIG_SCHED_INFO: clock ticks of the thread, much coarser. */
	rc = pk_proc_stat(pid, tid, &st);
	if (rc < 0)
		return rc;
	hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0 || hz > 1000000000L)
		hz = 100;
	v = st.utime + st.stime;
	if (v < st.utime || v > UINT64_MAX / (1000000000u / (uint64_t)hz))
		v = UINT64_MAX;
	else
		v *= 1000000000u / (uint64_t)hz;
	*ns = v;
	return 0;
}

/* ---------------------------------------------------------------- tasks, fds */

static int tid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

int pk_proc_tasks(pid_t pid, pid_t **tids, size_t *n)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	pid_t *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	if (tids == NULL || n == NULL)
		return -EINVAL;
	*tids = NULL;
	*n = 0;
	if (pid <= 0) {
		pk_error("no such process %d", (int)pid);
		return -ESRCH;
	}
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return pk_proc_errno(errno, pid, 0, path, 0);
	for (;;) {
		const char *s;
		pid_t tid;

		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				rc = pk_proc_errno(errno, pid, 0, path, 0);
				goto fail;
			}
			break;
		}
		s = de->d_name;
		if (scan_pid(&s, de->d_name + strlen(de->d_name), &tid) < 0 || *s != '\0' || tid <= 0)
			continue;
		if (cnt == cap) {
			pid_t *nv;

			if (cap >= PK_PROC_MAX_TASKS) {
				pk_error("read %s: more than %u threads", path, PK_PROC_MAX_TASKS);
				rc = -E2BIG;
				goto fail;
			}
			cap = cap ? cap * 2 : 64;
			if (cap > PK_PROC_MAX_TASKS)
				cap = PK_PROC_MAX_TASKS;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				pk_error("read %s: out of memory", path);
				rc = -ENOMEM;
				goto fail;
			}
			v = nv;
		}
		v[cnt++] = tid;
	}
	closedir(d);
	if (cnt == 0) {
		/* The directory of a reaped process reads empty. */
		free(v);
		if (!pk_proc_exists(pid, 0)) {
			pk_error("no such process %d", (int)pid);
			return -ESRCH;
		}
		return 0;
	}
	qsort(v, cnt, sizeof(*v), tid_cmp);
	*tids = v;
	*n = cnt;
	return 0;
fail:
	closedir(d);
	free(v);
	return rc;
}

int pk_proc_fd_target(pid_t pid, int fd, char *buf, size_t cap)
{
	char path[64];
	ssize_t r;

	if (buf == NULL || cap == 0 || pid <= 0)
		return -EINVAL;
	if (fd < 0) {
		pk_error("read fd %d of process %d: no such file descriptor", fd, (int)pid);
		return -EBADF;
	}
	{
		char name[32];
		int rc;

		snprintf(name, sizeof(name), "fd/%d", fd);
		rc = live_path(pid, name, path, sizeof(path));
		if (rc < 0)
			return rc;
	}
	r = readlink(path, buf, cap);
	if (r < 0) {
		int err = errno;

		if (err == ENOENT && pk_proc_exists(pid, 0)) {
			pk_error("read fd %d of process %d: no such file descriptor", fd, (int)pid);
			return -EBADF;
		}
		return pk_proc_errno(err, pid, 0, path, 1);
	}
	if ((size_t)r >= cap) {
		pk_error("read %s: target longer than %zu bytes", path, cap - 1);
		return -ENAMETOOLONG;
	}
	buf[r] = '\0';
	return 0;
}

/* ---------------------------------------------------------------- EPERM */

int pk_proc_status_quiet(pid_t pid, pid_t tid, struct pk_status *st)
{
	char buf[16384], path[96];
	size_t len;
	int rc;

	if (pid <= 0 || tid < 0)
		return -EINVAL;
	pk_proc_path(path, sizeof(path), pid, tid, "status");
	rc = read_path_small(path, buf, sizeof(buf), &len);
	if (rc < 0)
		return rc;
	return pk_status_parse(buf, len, st);
}

static void hint_add(char *hint, size_t cap, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void hint_add(char *hint, size_t cap, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= cap)
		return;
	if (*off > 0) {
		n = snprintf(hint + *off, cap - *off, "; ");
		*off = n < 0 ? cap : *off + (size_t)n;
		if (*off >= cap)
			return;
	}
	va_start(ap, fmt);
	n = vsnprintf(hint + *off, cap - *off, fmt, ap);
	va_end(ap);
	*off = n < 0 ? cap : *off + (size_t)n;
}

#define PK_CAP_SYS_PTRACE 19

pid_t pk_attach_other_tracer(pid_t pid)
{
	struct pk_status st;
	pid_t *tids = NULL;
	size_t n = 0;
	pid_t tracer = 0;

	if (pid <= 0 || pk_proc_status_quiet(pid, 0, &st) < 0)
		return 0;
	if (st.tracer_pid > 0 && st.tracer_pid != getpid())
		return st.tracer_pid;
	/* ptrace is per thread: another tracer may hold a thread, not the leader. */
	if (pk_proc_tasks(pid, &tids, &n) < 0)
		return 0;
	for (size_t i = 0; i < n && i < 100000; i++) {
		struct pk_status ts;
		if (pk_proc_status_quiet(pid, tids[i], &ts) == 0 && ts.tracer_pid > 0 && ts.tracer_pid != getpid()) {
			tracer = ts.tracer_pid;
			break;
		}
	}
	free(tids);
	return tracer;
}

void pk_attach_explain_eperm(pid_t pid)
{
	char hint[480] = "";
	size_t off = 0;
	struct pk_status st, self;
	int have_st, have_self, has_cap = 0, scope = -1;
	char buf[64], path[64];
	size_t len;

	have_st = pid > 0 && pk_proc_status_quiet(pid, 0, &st) == 0;
	have_self = pk_proc_status_quiet(getpid(), 0, &self) == 0;
	if (have_self)
		has_cap = (self.cap_eff >> PK_CAP_SYS_PTRACE) & 1;

	if (have_st)
		st.tracer_pid = pk_attach_other_tracer(pid);
	if (have_st && st.tracer_pid > 0) {
		const char *comm = "?";

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)st.tracer_pid);
		if (read_path_small(path, buf, sizeof(buf), &len) == 0) {
			if (len > 0 && buf[len - 1] == '\n')
				buf[--len] = '\0';
			comm = buf;
		}
		hint_add(hint, sizeof(hint), &off, "process %d is already traced by pid %d (%s)", (int)pid,
			 (int)st.tracer_pid, comm);
	}

	if (read_path_small("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof(buf), &len) == 0) {
		const char *p = buf;
		uint64_t v;

		if (pk_scan_u64(&p, buf + len, 10, &v) == 0 && v <= 3)
			scope = (int)v;
	}
	if (scope == 1 && !has_cap)
		hint_add(hint, sizeof(hint), &off,
			 "kernel.yama.ptrace_scope is 1: only a parent may attach unless the tracer has "
			 "CAP_SYS_PTRACE (run as root, or sysctl kernel.yama.ptrace_scope=0)");
	else if (scope == 2 && !has_cap)
		hint_add(hint, sizeof(hint), &off,
			 "kernel.yama.ptrace_scope is 2: only a tracer with CAP_SYS_PTRACE may attach");
	else if (scope == 3)
		hint_add(hint, sizeof(hint), &off,
			 "kernel.yama.ptrace_scope is 3: ptrace attach is disabled until reboot");

	if (have_st && getuid() != 0 && (st.uid_real != getuid() || st.uid_effective != getuid()))
		hint_add(hint, sizeof(hint), &off,
			 "process %d is owned by another user (uid %u, we are uid %u): run pykill as that "
			 "user or as root",
			 (int)pid, (unsigned)st.uid_real, (unsigned)getuid());
	if (geteuid() == 0 && have_self && !has_cap)
		hint_add(hint, sizeof(hint), &off,
			 "missing CAP_SYS_PTRACE (in a container: --cap-add SYS_PTRACE)");
	if (off == 0)
		hint_add(hint, sizeof(hint), &off,
			 "a security module (AppArmor, SELinux), a seccomp filter or a non-dumpable target "
			 "(setuid program, prctl PR_SET_DUMPABLE) may forbid ptrace");
	pk_error_hint("%s", hint);
}
