/* SPDX-License-Identifier: MIT */
/* Memory of the target: process_vm_readv (batched), /proc/PID/mem as the
 * fallback, an optional page cache, and writes.
 *
 * An unreadable address is an expected answer (callers probe pointers they
 * read from the target), so -EFAULT is returned without pk_error(): the caller
 * knows what it was reading and describes it. Failures that end the session
 * (no such process, no permission, invalid arguments) are described here. */
#include "pk_attach.h"
#include "attach-priv.h"
#include "pk_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define PK_MEM_MAX_READ (64u << 20)    /* one request; target-derived sizes are capped by callers too */
#define PK_MEM_MAX_BATCH (256u << 20)   /* bytes in one process_vm_readv call */
#define PK_CACHE_LINE 1024u /* a quarter page (never crosses a page, so it is mapped whole or not at all); smaller lines copy far less for sparse reads */
#define PK_CACHE_LINES 65536u           /* 64 MiB of lines (touched lazily), then the cache is cleared */
#define PK_CACHE_SLOTS (2 * PK_CACHE_LINES) /* open addressing, load <= 0.5 */
#define PK_CACHE_MAX_READ (64u << 10)   /* larger reads bypass the cache */

enum { SLOT_EMPTY = 0, SLOT_GOOD, SLOT_BAD, SLOT_LOADING };

struct cslot {
	uint64_t page;   /* address of the page */
	uint32_t idx;    /* its data: pages + idx * PK_CACHE_LINE */
	uint8_t state;
};

struct pk_mem {
	pid_t pid;
	/* The task whose view of the address space is read: the leader, or
	 * another live thread when the leader has exited (pk_proc_live_task);
	 * changed when it ends while the process lives on. */
	pid_t via;
	unsigned via_changes;
	const struct pk_mem_ops *ops; /* NULL for the live process */
	void *ctx;
	/* /proc/PID/mem, opened with the pk_mem: it stays bound to the address
	 * space of that moment (the kernel pins the mm at open), so writes
	 * through it can never land in a program the process exec'ed later,
	 * and pk_mem_same_space() can tell whether that space still exists. */
	int fd;
	bool fd_writable;
	bool no_pvr;                  /* process_vm_readv unusable (ENOSYS, seccomp EPERM) */

	bool cache_on;
	struct cslot *slots;
	uint8_t *pages;
	uint32_t *line_slot;          /* slot index of each line in use, in load order */
	uint32_t used;                /* pages in use */

	struct pk_mem_stats st;
};

/* ---------------------------------------------------------------- backends */

static bool range_ok(uint64_t addr, size_t len)
{
	return len <= PK_MEM_MAX_READ && addr <= UINT64_MAX - len;
}

static int gone(struct pk_mem *mem)
{
	pk_error("no such process %d", (int)mem->pid);
	return -ESRCH;
}

/* The task reads went through has ended (ESRCH): another live task of the
 * process, if there is one, takes over (0); else the process is gone. */
static int via_ended(struct pk_mem *mem)
{
	pid_t via;

	/* Bounded: each change needs a thread to end just then. */
	if (++mem->via_changes > 1000 || pk_proc_live_task(mem->pid, &via) < 0 || via == mem->via)
		return gone(mem);
	pk_log(PK_LOG_DEBUG, "task %d of process %d has ended: reading through task %d", (int)mem->via,
	       (int)mem->pid, (int)via);
	mem->via = via;
	return 0;
}

/* The address space pk_mem_open_pid saw is no more. */
static int space_gone(struct pk_mem *mem)
{
	pk_error("write memory of process %d: its address space is gone (it exited, or executed a new program)",
		 (int)mem->pid);
	return -ESRCH;
}

/* Open the anchor. Read and write need the same ptrace access, but the
 * file is also subject to permission bits: a caller with CAP_SYS_PTRACE
 * and not CAP_DAC_OVERRIDE (setcap'ed pykill, another user's process) may
 * not open it at all. Then pykill works without: reads by
 * process_vm_readv, writes by process_vm_writev (not into read-only
 * pages), and an exec during the run cannot be told. Returns -ESRCH for
 * a process that is gone, not described. */
static int open_mem(struct pk_mem *mem)
{
	char path[64];

	/* Through the live task: an exited leader's file reads nothing. */
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)mem->via);
	mem->fd = open(path, O_RDWR | O_CLOEXEC);
	mem->fd_writable = mem->fd >= 0;
	if (mem->fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS))
		mem->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mem->fd < 0) {
		int err = errno;

		if ((err == ENOENT || err == ESRCH) && !pk_proc_exists(mem->pid, 0))
			return -ESRCH;
		/* Also a kernel thread (no address space: ESRCH) lands here,
		 * to be told as such by what reads its maps. */
		pk_log(PK_LOG_INFO, "open %s: %s; going on without it (an exec of the process during this run "
				    "cannot be detected)",
		       path, strerror(err));
	}
	return 0;
}

/* pread the whole entry from /proc/PID/mem. 1 = done, 0 = unreadable, <0 = fatal. */
static int procmem_read_one(struct pk_mem *mem, uint64_t addr, void *buf, size_t len)
{
	size_t off = 0;

	/* pread takes a signed offset: the upper half is no user address. */
	if (addr > (uint64_t)INT64_MAX - len)
		return 0;
	while (off < len) {
		ssize_t r = pread(mem->fd, (char *)buf + off, len - off, (off_t)(addr + off));

		mem->st.syscalls++;
		if (r > 0) {
			off += (size_t)r;
			mem->st.bytes += (uint64_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EIO || errno == EFAULT || errno == EINVAL))
			return 0;
		/* 0: the address space is gone (exited, or exec'ed away). */
		if (r == 0 || errno == ESRCH)
			return pk_proc_exists(mem->pid, 0) ? 0 : gone(mem);
		pk_error("read /proc/%d/mem: %s", (int)mem->pid, strerror(errno));
		return -errno;
	}
	return 1;
}

static int procmem_readv(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok)
{
	int rc;

	if (mem->fd < 0) {
		pk_error("read memory of process %d: process_vm_readv is refused and /proc/%d/mem could not be "
			 "opened",
			 (int)mem->pid, (int)mem->pid);
		return -EACCES;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ok[i])
			continue;
		rc = procmem_read_one(mem, iov[i].addr, iov[i].buf, iov[i].len);
		if (rc < 0)
			return rc;
		ok[i] = rc == 1;
	}
	return 0;
}

/* process_vm_readv stops at the first entry it cannot read and returns the
 * bytes copied so far (or EFAULT if that was the very first): everything
 * before the stop succeeded, the entry it stopped in failed, and the entries
 * after it are unknown, so they go into the next call. */
static int pvr_readv(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok)
{
	struct iovec loc[IOV_MAX], rem[IOV_MAX];
	size_t i = 0;

	while (i < n) {
		size_t idx[IOV_MAX];
		size_t cnt = 0, total = 0, j = i;
		ssize_t r;

		for (; j < n && cnt < IOV_MAX; j++) {
			if (!ok[j] || iov[j].len == 0)
				continue;
			if (cnt > 0 && total + iov[j].len > PK_MEM_MAX_BATCH)
				break;
			loc[cnt].iov_base = iov[j].buf;
			loc[cnt].iov_len = iov[j].len;
			rem[cnt].iov_base = (void *)(uintptr_t)iov[j].addr;
			rem[cnt].iov_len = iov[j].len;
			idx[cnt++] = j;
			total += iov[j].len;
		}
		if (cnt == 0)
			break;
		r = process_vm_readv(mem->via, loc, cnt, rem, cnt, 0);
		mem->st.syscalls++;
		if (r < 0) {
			int err = errno;

			if (err == EINTR)
				continue;
			if (err == EFAULT) {
				ok[idx[0]] = false;
				i = idx[0] + 1;
				continue;
			}
			if (err == ESRCH) {
				int rc = via_ended(mem);
				if (rc < 0)
					return rc;
				continue;
			}
			if (err == ENOSYS || err == EPERM) {
				/* Not built in, or refused by a seccomp profile (EPERM also
				 * means "no ptrace rights", which /proc/PID/mem then reports
				 * precisely). */
				mem->no_pvr = true;
				pk_log(PK_LOG_DEBUG, "process_vm_readv: %s, using /proc/%d/mem", strerror(err),
				       (int)mem->pid);
				return procmem_readv(mem, iov + i, n - i, ok + i);
			}
			pk_error("read memory of process %d: %s", (int)mem->pid, strerror(err));
			return -err;
		}
		mem->st.bytes += (uint64_t)r;
		{
			size_t left = (size_t)r, k;

			for (k = 0; k < cnt && left >= loc[k].iov_len; k++)
				left -= loc[k].iov_len;
			if (k == cnt) {
				i = j;
			} else {
				ok[idx[k]] = false;
				i = idx[k] + 1;
			}
		}
	}
	return 0;
}

static int ops_readv(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok)
{
	for (size_t i = 0; i < n; i++) {
		int rc;

		if (!ok[i] || iov[i].len == 0)
			continue;
		rc = mem->ops->read(mem->ctx, iov[i].addr, iov[i].buf, iov[i].len);
		mem->st.syscalls++;
		if (rc == 0) {
			mem->st.bytes += iov[i].len;
		} else if (rc == -EFAULT) {
			ok[i] = false;
		} else {
			pk_error("read memory at 0x%" PRIx64 ": %s", iov[i].addr,
				 strerror(rc < 0 ? -rc : EIO));
			return rc < 0 ? rc : -EIO;
		}
	}
	return 0;
}

/* Exact reads without the cache. ok[] must be initialised: entries already
 * false are skipped. Returns 0 (check ok[]) or a fatal -errno. */
static int raw_readv(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok)
{
	for (size_t i = 0; i < n; i++)
		if (ok[i] && !range_ok(iov[i].addr, iov[i].len))
			ok[i] = false;
	if (mem->ops != NULL)
		return ops_readv(mem, iov, n, ok);
	if (mem->no_pvr)
		return procmem_readv(mem, iov, n, ok);
	return pvr_readv(mem, iov, n, ok);
}

/* ---------------------------------------------------------------- cache */

static uint32_t slot_hash(uint64_t page)
{
	return (uint32_t)(((page / PK_CACHE_LINE) * 0x9E3779B97F4A7C15ull) >> 40) & (PK_CACHE_SLOTS - 1);
}

static struct cslot *slot_find(struct pk_mem *mem, uint64_t page)
{
	uint32_t h = slot_hash(page);

	for (uint32_t k = 0; k < PK_CACHE_SLOTS; k++) {
		struct cslot *s = &mem->slots[(h + k) & (PK_CACHE_SLOTS - 1)];

		if (s->state == SLOT_EMPTY)
			return NULL;
		if (s->page == page)
			return s;
	}
	return NULL;
}

/* Caller guarantees used < PK_CACHE_LINES, so a free slot exists. */
static struct cslot *slot_insert(struct pk_mem *mem, uint64_t page)
{
	uint32_t h = slot_hash(page);

	for (uint32_t k = 0; k < PK_CACHE_SLOTS; k++) {
		struct cslot *s = &mem->slots[(h + k) & (PK_CACHE_SLOTS - 1)];

		if (s->state == SLOT_EMPTY) {
			s->page = page;
			mem->line_slot[mem->used] = (uint32_t)(s - mem->slots);
			s->idx = mem->used++;
			s->state = SLOT_LOADING;
			return s;
		}
	}
	return NULL;
}

static uint8_t *slot_data(struct pk_mem *mem, const struct cslot *s)
{
	return mem->pages + (size_t)s->idx * PK_CACHE_LINE;
}

static void cache_clear(struct pk_mem *mem)
{
	/* Clear only the slots in use: a clear happens inside a freeze. */
	if (mem->slots != NULL)
		for (uint32_t i = 0; i < mem->used; i++)
			memset(&mem->slots[mem->line_slot[i]], 0, sizeof(mem->slots[0]));
	mem->used = 0;
}

static bool cacheable(const struct pk_mem_iov *v)
{
	return v->len > 0 && v->len <= PK_CACHE_MAX_READ && range_ok(v->addr, v->len);
}

static uint64_t first_page(const struct pk_mem_iov *v)
{
	return v->addr & ~(uint64_t)(PK_CACHE_LINE - 1);
}

static uint64_t last_page(const struct pk_mem_iov *v)
{
	return (v->addr + v->len - 1) & ~(uint64_t)(PK_CACHE_LINE - 1);
}

/* Copy the entry from cached pages if every page it touches was read whole. */
static bool copy_from_pages(struct pk_mem *mem, const struct pk_mem_iov *v)
{
	uint8_t *dst = v->buf;
	uint64_t a = v->addr, e = v->addr + v->len;

	for (uint64_t p = first_page(v);; p += PK_CACHE_LINE) {
		const struct cslot *s = slot_find(mem, p);

		if (s == NULL || s->state != SLOT_GOOD)
			return false;
		if (p == last_page(v))
			break;
	}
	while (a < e) {
		const struct cslot *s = slot_find(mem, a & ~(uint64_t)(PK_CACHE_LINE - 1));
		size_t off = (size_t)(a & (PK_CACHE_LINE - 1));
		size_t chunk = PK_CACHE_LINE - off;

		if (s == NULL)
			return false; /* checked above; the caller then reads exactly */
		if (chunk > e - a)
			chunk = (size_t)(e - a);
		memcpy(dst, slot_data(mem, s) + off, chunk);
		dst += chunk;
		a += chunk;
	}
	return true;
}

/* Serve the entries from whole pages: load every missing page in one
 * batched read, copy from pages, and read exactly whatever touches a page
 * that could not be read whole (it may still be partly readable through
 * another backend, so that is never a failure by itself). */
static int cache_readv(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok)
{
	struct pk_mem_iov load_small[20], *load = load_small;
	struct cslot *lslot_small[20], **lslot = lslot_small;
	bool lok_small[20], *lok = lok_small;
	size_t need = 0, nload = 0;
	bool exact_small[16], *exact = NULL;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		if (!ok[i] || !cacheable(&iov[i]))
			continue;
		for (uint64_t p = first_page(&iov[i]);; p += PK_CACHE_LINE) {
			if (slot_find(mem, p) == NULL)
				need++;
			if (p == last_page(&iov[i]))
				break;
		}
	}
	if (need > PK_CACHE_LINES)
		return raw_readv(mem, iov, n, ok);
	if (mem->used + need > PK_CACHE_LINES) {
		cache_clear(mem);
		need = 0;
		for (size_t i = 0; i < n; i++)
			if (ok[i] && cacheable(&iov[i]))
				need += (size_t)((last_page(&iov[i]) - first_page(&iov[i])) / PK_CACHE_LINE) + 1;
		if (need > PK_CACHE_LINES)
			return raw_readv(mem, iov, n, ok);
	}
	if (need > sizeof(load_small) / sizeof(load_small[0])) {
		load = malloc(need * sizeof(*load));
		lslot = malloc(need * sizeof(*lslot));
		lok = malloc(need * sizeof(*lok));
		if (load == NULL || lslot == NULL || lok == NULL) {
			rc = -ENOMEM;
			pk_error("read memory of process %d: out of memory", (int)mem->pid);
			goto out;
		}
	}

	for (size_t i = 0; i < n; i++) {
		bool hit = true;

		if (!ok[i] || !cacheable(&iov[i]))
			continue;
		for (uint64_t p = first_page(&iov[i]);; p += PK_CACHE_LINE) {
			struct cslot *s = slot_find(mem, p);

			if (s == NULL) {
				s = slot_insert(mem, p);
				if (s == NULL || nload >= need) { /* cannot happen: need counted them */
					cache_clear(mem);
					rc = -EOVERFLOW;
					goto out;
				}
				load[nload].addr = p;
				load[nload].buf = slot_data(mem, s);
				load[nload].len = PK_CACHE_LINE;
				lok[nload] = true;
				lslot[nload++] = s;
			}
			if (s->state != SLOT_GOOD)
				hit = false;
			if (p == last_page(&iov[i]))
				break;
		}
		if (hit)
			mem->st.cache_hits++;
	}
	if (nload > 0) {
		rc = raw_readv(mem, load, nload, lok);
		if (rc < 0) {
			cache_clear(mem);
			goto out;
		}
		for (size_t k = 0; k < nload; k++)
			lslot[k]->state = lok[k] ? SLOT_GOOD : SLOT_BAD;
	}

	/* exact[0..n) marks the entries to read exactly, exact[n..2n) is
	 * their ok[] for raw_readv. */
	if (2 * n <= sizeof(exact_small) / sizeof(exact_small[0])) {
		memset(exact_small, 0, sizeof(exact_small));
		exact = exact_small;
	} else {
		exact = calloc(2 * n, sizeof(*exact));
	}
	if (exact == NULL) {
		rc = -ENOMEM;
		pk_error("read memory of process %d: out of memory", (int)mem->pid);
		goto out;
	}
	{
		size_t nexact = 0;

		for (size_t i = 0; i < n; i++) {
			if (!ok[i] || iov[i].len == 0)
				continue;
			if (cacheable(&iov[i]) && copy_from_pages(mem, &iov[i]))
				continue;
			exact[i] = exact[n + i] = true;
			nexact++;
		}
		if (nexact > 0) {
			rc = raw_readv(mem, iov, n, exact + n);
			if (rc < 0)
				goto out;
			for (size_t i = 0; i < n; i++)
				if (exact[i])
					ok[i] = exact[n + i];
		}
	}
out:
	if (exact != exact_small)
		free(exact);
	if (load != load_small)
		free(load);
	if (lslot != lslot_small)
		free(lslot);
	if (lok != lok_small)
		free(lok);
	return rc;
}

/* ---------------------------------------------------------------- API */

static struct pk_mem *mem_new(void)
{
	struct pk_mem *mem = calloc(1, sizeof(*mem));

	if (mem == NULL)
		return NULL;
	mem->fd = -1;
	return mem;
}

int pk_mem_open_pid(pid_t pid, struct pk_mem **out)
{
	struct pk_mem *mem;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (pid <= 0 || !pk_proc_exists(pid, 0)) {
		pk_error("no such process %d", (int)pid);
		return -ESRCH;
	}
	mem = mem_new();
	if (mem == NULL) {
		pk_error("open memory of process %d: out of memory", (int)pid);
		return -ENOMEM;
	}
	mem->pid = pid;
	rc = pk_proc_live_task(pid, &mem->via);
	if (rc < 0) {
		free(mem);
		return rc;
	}
	rc = open_mem(mem);
	if (rc < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
		rc = pk_proc_errno(-rc, pid, 0, path, 1);
		free(mem);
		return rc;
	}
	*out = mem;
	return 0;
}

int pk_mem_same_space(struct pk_mem *mem)
{
	uint8_t byte;
	ssize_t r;

	if (mem == NULL || mem->ops != NULL || mem->fd < 0)
		return 0;
	/* Whatever the address: while the address space lives the read
	 * returns data or fails with EIO; once it is gone (exit, exec) the
	 * kernel returns 0 bytes. */
	do {
		r = pread(mem->fd, &byte, 1, 0);
	} while (r < 0 && errno == EINTR);
	mem->st.syscalls++;
	return r == 0 ? -ESRCH : 0;
}

int pk_mem_space_now(pid_t pid)
{
	char path[64];
	uint8_t byte;
	ssize_t r;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	/* ESRCH: the kernel found no space to pin (an exit under way);
	 * ENOENT: no process at all. */
	if (fd < 0)
		return errno == ESRCH || errno == ENOENT ? 0 : -errno;
	do {
		r = pread(fd, &byte, 1, 0);
	} while (r < 0 && errno == EINTR);
	err = errno;
	close(fd);
	/* As in pk_mem_same_space: data or EIO while a space exists, 0 bytes
	 * when there is none. */
	if (r < 0 && err != EIO)
		return -err;
	return r == 0 ? 0 : 1;
}

int pk_mem_open_ops(const struct pk_mem_ops *ops, void *ctx, struct pk_mem **out)
{
	struct pk_mem *mem;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (ops == NULL || ops->read == NULL)
		return -EINVAL;
	mem = mem_new();
	if (mem == NULL) {
		pk_error("open memory image: out of memory");
		return -ENOMEM;
	}
	mem->ops = ops;
	mem->ctx = ctx;
	*out = mem;
	return 0;
}

void pk_mem_close(struct pk_mem *mem)
{
	if (mem == NULL)
		return;
	if (mem->fd >= 0)
		close(mem->fd);
	free(mem->slots);
	free(mem->pages);
	free(mem->line_slot);
	if (mem->ops != NULL && mem->ops->destroy != NULL)
		mem->ops->destroy(mem->ctx);
	free(mem);
}

static int check_len(struct pk_mem *mem, uint64_t addr, size_t len)
{
	if (len > PK_MEM_MAX_READ) {
		pk_error("read %zu bytes at 0x%" PRIx64 " of process %d: more than %u MiB at once", len,
			 addr, (int)mem->pid, PK_MEM_MAX_READ >> 20);
		return -EINVAL;
	}
	return 0;
}

int pk_mem_read(struct pk_mem *mem, uint64_t addr, void *buf, size_t len)
{
	struct pk_mem_iov v = { .addr = addr, .buf = buf, .len = len };
	bool ok = true;
	int rc;

	if (mem == NULL)
		return -EINVAL;
	mem->st.reads++;
	if (len == 0)
		return 0;
	if (buf == NULL)
		return -EINVAL;
	rc = check_len(mem, addr, len);
	if (rc < 0)
		return rc;
	if (!range_ok(addr, len))
		return -EFAULT;
	/* The common case while frozen: a small read inside one cached page. */
	if (mem->cache_on && mem->slots != NULL && first_page(&v) == last_page(&v)) {
		const struct cslot *s = slot_find(mem, first_page(&v));
		if (s != NULL && s->state == SLOT_GOOD) {
			memcpy(buf, slot_data(mem, s) + (addr - s->page), len);
			mem->st.cache_hits++;
			return 0;
		}
	}
	if (mem->cache_on && cacheable(&v))
		rc = cache_readv(mem, &v, 1, &ok);
	else
		rc = raw_readv(mem, &v, 1, &ok);
	if (rc < 0)
		return rc;
	return ok ? 0 : -EFAULT;
}

static int readv_via(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok, bool use_cache);

int pk_mem_readv(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok)
{
	return readv_via(mem, iov, n, ok, true);
}

int pk_mem_readv_uncached(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok)
{
	return readv_via(mem, iov, n, ok, false);
}

static int readv_via(struct pk_mem *mem, const struct pk_mem_iov *iov, size_t n, bool *ok, bool use_cache)
{
	bool ok_small[64], *okv = ok;
	bool all = true;
	int rc;

	if (mem == NULL || (iov == NULL && n > 0))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (okv == NULL) {
		okv = n <= sizeof(ok_small) / sizeof(ok_small[0]) ? ok_small : malloc(n * sizeof(*okv));
		if (okv == NULL) {
			pk_error("read memory of process %d: out of memory", (int)mem->pid);
			return -ENOMEM;
		}
	}
	mem->st.reads += n;
	/* Too long or NULL destination: that entry fails, the others are read. */
	for (size_t i = 0; i < n; i++)
		okv[i] = iov[i].len == 0 ||
			 (iov[i].buf != NULL && iov[i].len <= PK_MEM_MAX_READ && range_ok(iov[i].addr, iov[i].len));
	if (mem->cache_on && use_cache)
		rc = cache_readv(mem, iov, n, okv);
	else
		rc = raw_readv(mem, iov, n, okv);
	if (rc == 0)
		for (size_t i = 0; i < n; i++)
			all = all && okv[i];
	if (okv != ok && okv != ok_small)
		free(okv);
	if (rc < 0)
		return rc;
	return all ? 0 : -EFAULT;
}

void pk_mem_cache_enable(struct pk_mem *mem, bool on)
{
	if (mem == NULL)
		return;
	if (on && mem->slots == NULL) {
		/* Reserved, touched only as lines are cached. */
		mem->slots = calloc(PK_CACHE_SLOTS, sizeof(*mem->slots));
		mem->pages = malloc((size_t)PK_CACHE_LINES * PK_CACHE_LINE);
		mem->line_slot = malloc(PK_CACHE_LINES * sizeof(*mem->line_slot));
		if (mem->slots == NULL || mem->pages == NULL || mem->line_slot == NULL) {
			free(mem->slots);
			free(mem->pages);
			free(mem->line_slot);
			mem->slots = NULL;
			mem->pages = NULL;
			mem->line_slot = NULL;
			mem->used = 0;
			pk_log(PK_LOG_WARN, "memory cache disabled: out of memory");
			return;
		}
		mem->used = 0;
	}
	/* Lines kept while off could be stale when it is turned on again; turning
	 * it on while on keeps them (callers refresh or drop explicitly). */
	if (on != mem->cache_on)
		cache_clear(mem);
	mem->cache_on = on;
}

static int cmp_line(const void *a, const void *b, void *ctx)
{
	const struct pk_mem *mem = ctx;
	uint64_t x = mem->slots[*(const uint32_t *)a].page, y = mem->slots[*(const uint32_t *)b].page;

	return (x > y) - (x < y);
}

/* The fast refresh: lines sorted by address, the lines of one page read
 * through one remote iovec (the kernel pins each remote range once) into
 * their scattered buffers. A batch that does not come back whole is done
 * again line by line by the caller. Returns the number of lines refreshed
 * from the start of order[]. */
static size_t refresh_batched(struct pk_mem *mem, const uint32_t *order, size_t n)
{
	struct iovec loc[IOV_MAX], rem[IOV_MAX];
	size_t done = 0;

	while (done < n) {
		size_t nl = 0, nr = 0, total = 0, j = done;
		ssize_t r;

		for (; j < n && nl < IOV_MAX; j++) {
			struct cslot *s = &mem->slots[order[j]];
			bool extend = nr > 0 && (uint64_t)(uintptr_t)rem[nr - 1].iov_base + rem[nr - 1].iov_len == s->page &&
				      ((s->page ^ (uint64_t)(uintptr_t)rem[nr - 1].iov_base) & ~(uint64_t)4095) == 0;

			if (!extend && nr == IOV_MAX)
				break;
			loc[nl].iov_base = slot_data(mem, s);
			loc[nl++].iov_len = PK_CACHE_LINE;
			if (extend) {
				rem[nr - 1].iov_len += PK_CACHE_LINE;
			} else {
				rem[nr].iov_base = (void *)(uintptr_t)s->page;
				rem[nr++].iov_len = PK_CACHE_LINE;
			}
			total += PK_CACHE_LINE;
		}
		r = process_vm_readv(mem->via, loc, nl, rem, nr, 0);
		mem->st.syscalls++;
		if (r < 0 || (size_t)r != total)
			return done;
		mem->st.bytes += (uint64_t)r;
		for (size_t k = done; k < j; k++)
			mem->slots[order[k]].state = SLOT_GOOD;
		done = j;
	}
	return done;
}

int pk_mem_cache_refresh(struct pk_mem *mem)
{
	struct pk_mem_iov *iov;
	struct cslot **which;
	bool *ok;
	size_t n = 0;
	int rc;

	if (mem == NULL || !mem->cache_on || mem->slots == NULL || mem->used == 0)
		return 0;
	iov = malloc(mem->used * sizeof(*iov));
	which = malloc(mem->used * sizeof(*which));
	ok = malloc(mem->used * sizeof(*ok));
	if (iov == NULL || which == NULL || ok == NULL) {
		free(iov);
		free(which);
		free(ok);
		cache_clear(mem);
		return 0; /* correct either way: the lines are read again on demand */
	}
	if (mem->ops == NULL && !mem->no_pvr) {
		uint32_t *order = malloc(mem->used * sizeof(*order));
		size_t done = 0;

		if (order != NULL) {
			memcpy(order, mem->line_slot, mem->used * sizeof(*order));
			qsort_r(order, mem->used, sizeof(*order), cmp_line, mem);
			done = refresh_batched(mem, order, mem->used);
			/* What is left (a batch with an unreadable line) goes line by line. */
			for (size_t k = done; k < mem->used; k++) {
				struct cslot *s = &mem->slots[order[k]];
				iov[n].addr = s->page;
				iov[n].buf = slot_data(mem, s);
				iov[n].len = PK_CACHE_LINE;
				ok[n] = true;
				which[n++] = s;
			}
			free(order);
			goto read_rest;
		}
	}
	for (uint32_t k = 0; k < mem->used; k++) {
		struct cslot *s = &mem->slots[mem->line_slot[k]];

		iov[n].addr = s->page;
		iov[n].buf = slot_data(mem, s);
		iov[n].len = PK_CACHE_LINE;
		ok[n] = true;
		which[n++] = s;
	}
read_rest:
	rc = n > 0 ? raw_readv(mem, iov, n, ok) : 0;
	if (rc < 0)
		cache_clear(mem);
	else
		for (size_t k = 0; k < n; k++)
			which[k]->state = ok[k] ? SLOT_GOOD : SLOT_BAD;
	free(iov);
	free(which);
	free(ok);
	return rc;
}

void pk_mem_cache_drop(struct pk_mem *mem)
{
	if (mem != NULL)
		cache_clear(mem);
}

void pk_mem_get_stats(const struct pk_mem *mem, struct pk_mem_stats *out)
{
	if (out == NULL)
		return;
	if (mem == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = mem->st;
}

/* Without the anchor (see open_mem): as good as it gets, the address
 * space checked first when a read-only anchor exists. */
static int pvw_write(struct pk_mem *mem, uint64_t addr, const void *buf, size_t len)
{
	struct iovec loc = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
	struct iovec rem = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t r;

	if (pk_mem_same_space(mem) < 0)
		return space_gone(mem);
	for (;;) {
		r = process_vm_writev(mem->via, &loc, 1, &rem, 1, 0);
		mem->st.syscalls++;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ESRCH) {
			int rc = via_ended(mem);
			if (rc < 0)
				return rc;
			continue;
		}
		break;
	}
	if (r == (ssize_t)len)
		return 0;
	if (r >= 0 || errno == EFAULT) {
		pk_error("write %zu bytes at 0x%" PRIx64 " of process %d: address not mapped, or read-only (and "
			 "/proc/%d/mem could not be opened for writing)",
			 len, addr, (int)mem->pid, (int)mem->pid);
		return -EFAULT;
	}
	if (errno == ESRCH)
		return gone(mem);
	pk_error("write memory of process %d: %s", (int)mem->pid, strerror(errno));
	return -errno;
}

/* Through the anchor only: process_vm_writev would find the process's
 * current address space, which after an exec is another program's. The
 * anchor also writes with FOLL_FORCE, like a debugger's breakpoint, so
 * read-only pages (code, RELRO) are written too. */
int pk_mem_write(struct pk_mem *mem, uint64_t addr, const void *buf, size_t len)
{
	size_t off = 0;

	if (mem == NULL)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (buf == NULL)
		return -EINVAL;
	if (mem->ops != NULL) {
		pk_error("write memory at 0x%" PRIx64 ": the memory image is read-only", addr);
		return -EOPNOTSUPP;
	}
	if (len > PK_MEM_MAX_READ || addr > (uint64_t)INT64_MAX - len) {
		pk_error("write %zu bytes at 0x%" PRIx64 " of process %d: invalid range", len, addr,
			 (int)mem->pid);
		return -EINVAL;
	}
	/* Whatever was cached of these pages is now wrong. */
	cache_clear(mem);
	if (!mem->fd_writable)
		return pvw_write(mem, addr, buf, len);
	while (off < len) {
		ssize_t r = pwrite(mem->fd, (const char *)buf + off, len - off, (off_t)(addr + off));

		mem->st.syscalls++;
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return space_gone(mem);
		if (errno == EIO || errno == EFAULT) {
			pk_error("write %zu bytes at 0x%" PRIx64 " of process %d: address not mapped, or not writable",
				 len, addr, (int)mem->pid);
			return -EFAULT;
		}
		pk_error("write /proc/%d/mem: %s", (int)mem->pid, strerror(errno));
		return -errno;
	}
	return 0;
}
