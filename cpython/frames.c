/* SPDX-License-Identifier: MIT */
/* Python stacks: walk a thread's frame chain and resolve each frame to
 * function, file and line, the way the interpreter itself reports them
 * (sys._current_frames(), tracebacks).
 *
 * Code objects are resolved once per run and cached by address: a deep
 * recursion is one code object, and the names and line tables are the
 * expensive part of a frame. */
#include "py-priv.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pk_code {
	uint64_t addr;
	int err;                /* 0, or why the object could not be used */
	char *function;
	char *file;
	int firstlineno;
	int firsttraceable;     /* 3.11+ in code units */
	uint8_t *table;
	size_t table_len;
};

#define CODE_CACHE_MIN 256u

/* One walk (every thread of a snapshot) shares a budget. Thread states and
 * frames may overlap in hostile memory, so a few kilobytes of target can
 * hold 100000 threads whose 2048-frame stacks all name one code object with
 * a 4096-character name: without a budget that is terabytes of strings and
 * hours of reads. Real processes stay far below both. */
#define WALK_MAX_STEPS (1u << 23)   /* frames visited, all threads */
#define WALK_MAX_BYTES (256u << 20) /* strings, line tables and cache slots kept */

struct pk_code_cache {
	struct pk_code *slots;
	size_t cap, used;
	uint64_t steps;
	uint64_t bytes;
};

struct pk_code_cache *pk_code_cache_new(void)
{
	struct pk_code_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->cap = CODE_CACHE_MIN;
	c->slots = calloc(c->cap, sizeof(*c->slots));
	if (c->slots == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

static void code_release(struct pk_code *code)
{
	free(code->function);
	free(code->file);
	free(code->table);
}

void pk_code_cache_free(struct pk_code_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->cap; i++)
		if (c->slots[i].addr != 0)
			code_release(&c->slots[i]);
	free(c->slots);
	free(c);
}

static size_t hash_addr(uint64_t a, size_t cap)
{
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdULL;
	a ^= a >> 33;
	return (size_t)a & (cap - 1);
}

static int cache_grow(struct pk_code_cache *c)
{
	size_t ncap = c->cap * 2;
	struct pk_code *n = calloc(ncap, sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap; i++) {
		if (c->slots[i].addr == 0)
			continue;
		size_t h = hash_addr(c->slots[i].addr, ncap);
		while (n[h].addr != 0)
			h = (h + 1) & (ncap - 1);
		n[h] = c->slots[i];
	}
	free(c->slots);
	c->slots = n;
	c->cap = ncap;
	return 0;
}

/* The name a frame shows: the qualified name (3.11+), else the name. */
static char *function_name(const char *name, const char *qual)
{
	return strdup(qual != NULL ? qual : (name != NULL ? name : "?"));
}

/* Read what a frame needs from a code object: names, first line, line table. */
static void code_load(struct pk_py *py, struct pk_code_cache *c, struct pk_code *code)
{
	const struct pk_layout *L = &py->layout;
	uint8_t buf[512];
	size_t len = (size_t)L->co_size;
	char *name = NULL, *qual = NULL;
	uint64_t table_obj;
	int rc;

	if (len == 0 || len > sizeof(buf))
		len = sizeof(buf) < 0xc0 ? sizeof(buf) : 0xc0;
	rc = pk_mem_read(py->mem, code->addr, buf, len);
	if (rc < 0) {
		code->err = rc;
		return;
	}
	if (py->code_type != 0 && pk_get_u64(buf, len, L->ob_type) != py->code_type) {
		code->err = -EINVAL;
		return;
	}
	pk_rd_string(py, pk_get_u64(buf, len, L->co_name), &name);
	if (L->co_qualname >= 0)
		pk_rd_string(py, pk_get_u64(buf, len, L->co_qualname), &qual);
	pk_rd_string(py, pk_get_u64(buf, len, L->co_filename), &code->file);
	code->function = function_name(name, qual);
	free(name);
	free(qual);
	if (code->file == NULL)
		code->file = strdup("?");
	code->firstlineno = pk_get_i32(buf, len, L->co_firstlineno);
	code->firsttraceable = L->co_firsttraceable >= 0 ? pk_get_i32(buf, len, L->co_firsttraceable) : 0;
	table_obj = pk_get_u64(buf, len, L->co_linetable >= 0 ? L->co_linetable : L->co_lnotab);
	if (table_obj != 0 && c->bytes < WALK_MAX_BYTES)
		pk_rd_bytes(py, table_obj, PK_MAX_LINETABLE, &code->table, &code->table_len);
	if (code->function == NULL || code->file == NULL) {
		code->err = -ENOMEM;
		return;
	}
	c->bytes += strlen(code->function) + strlen(code->file) + 2 + code->table_len;
}

static struct pk_code *code_get(struct pk_py *py, struct pk_code_cache *c, uint64_t addr)
{
	size_t h;

	if (c->used * 2 >= c->cap && cache_grow(c) < 0)
		return NULL;
	h = hash_addr(addr, c->cap);
	while (c->slots[h].addr != 0) {
		if (c->slots[h].addr == addr)
			return &c->slots[h];
		h = (h + 1) & (c->cap - 1);
	}
	c->slots[h].addr = addr;
	c->used++;
	c->bytes += 2 * sizeof(*c->slots); /* the table is kept at most half full */
	code_load(py, c, &c->slots[h]);
	return &c->slots[h];
}

/* The line the interpreter reports for a frame at byte offset addr_bytes of
 * its code (or lasti for the older formats). */
static int code_line(const struct pk_py *py, const struct pk_code *code, int addr_bytes)
{
	if (code->table == NULL)
		return code->firstlineno;
	if (py->major == 2)
		return pk_lnotab_line(code->table, code->table_len, code->firstlineno, addr_bytes, false);
	if (py->minor <= 9)
		return pk_lnotab_line(code->table, code->table_len, code->firstlineno, addr_bytes, true);
	if (py->minor == 10)
		return pk_linetable310_line(code->table, code->table_len, code->firstlineno, addr_bytes);
	return pk_linetable311_line(code->table, code->table_len, code->firstlineno, addr_bytes);
}

static int push_frame(struct pk_code_cache *c, struct pk_py_thread *t, size_t *cap, uint64_t addr,
		      const struct pk_code *code, int line)
{
	struct pk_py_frame *f;

	if (t->nframes == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct pk_py_frame *n = realloc(t->frames, ncap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		t->frames = n;
		*cap = ncap;
	}
	f = &t->frames[t->nframes];
	f->function = strdup(code->function);
	f->file = strdup(code->file);
	f->line = line > 0 ? line : 0;
	f->addr = addr;
	f->code = code->addr;
	if (f->function == NULL || f->file == NULL) {
		free(f->function);
		free(f->file);
		return -ENOMEM;
	}
	t->nframes++;
	c->bytes += sizeof(*f) + strlen(f->function) + strlen(f->file) + 2;
	return 0;
}

static void set_error(struct pk_py_thread *t, const char *what, uint64_t addr)
{
	char buf[128];

	if (t->frames_error != NULL)
		return;
	snprintf(buf, sizeof(buf), "%s at 0x%llx", what, (unsigned long long)addr);
	t->frames_error = strdup(buf);
}

/* The first frame of the chain, from the thread state; -EFAULT (and *cframe
 * set) when the 3.11-3.12 _PyCFrame in between cannot be read. */
static int first_frame(struct pk_py *py, const uint8_t *ts, size_t tslen, uint64_t *frame, uint64_t *cframe)
{
	const struct pk_layout *L = &py->layout;
	uint64_t p = pk_get_u64(ts, tslen, L->ts_frame);

	*cframe = 0;
	if (p != 0 && L->cframe_current_frame >= 0) {
		uint64_t cur = 0;
		if (pk_rd_u64(py, p + (uint64_t)L->cframe_current_frame, &cur) < 0) {
			*frame = 0;
			*cframe = p;
			return -EFAULT;
		}
		p = cur;
	}
	*frame = p;
	return 0;
}

int pk_frames_walk(struct pk_py *py, struct pk_code_cache *cache, const uint8_t *ts, size_t tslen,
		   unsigned max_frames, struct pk_py_thread *t)
{
	const struct pk_layout *L = &py->layout;
	bool new_frames = py->major == 3 && py->minor >= 11;
	size_t cap = 0;
	uint64_t frame, cframe;
	struct pk_chain chain;
	int more;

	if (first_frame(py, ts, tslen, &frame, &cframe) < 0) {
		set_error(t, "unreadable _PyCFrame", cframe);
		return 0;
	}
	/* A chain that loops is corrupt (or torn). Shim and incomplete frames
	 * count towards the bound too. */
	pk_chain_init(&chain, frame, max_frames * 4 + 64, 0);
	while ((more = pk_chain_next(&chain, &frame)) > 0) {
		uint8_t fb[128];
		size_t flen = (size_t)L->fr_size;
		uint64_t code_addr;
		struct pk_code *code;
		int line;

		if (t->nframes >= max_frames) {
			t->frames_truncated = true;
			break;
		}
		if (++cache->steps > WALK_MAX_STEPS || cache->bytes > WALK_MAX_BYTES) {
			t->frames_truncated = true;
			set_error(t, "too many frames in the process, walk budget exhausted", frame);
			return 0;
		}
		if (flen == 0 || flen > sizeof(fb))
			flen = sizeof(fb);
		if (pk_mem_read(py->mem, frame, fb, flen) < 0) {
			/* Frame objects may sit at the end of a mapping: read just the fields. */
			int32_t need = L->fr_back;
			if (L->fr_code > need)
				need = L->fr_code;
			if (L->fr_lasti > need)
				need = L->fr_lasti;
			if (L->fr_instr > need)
				need = L->fr_instr;
			if (L->fr_owner > need)
				need = L->fr_owner;
			flen = (size_t)need + 8;
			if (flen > sizeof(fb) || pk_mem_read(py->mem, frame, fb, flen) < 0) {
				set_error(t, "unreadable frame", frame);
				return 0;
			}
		}
		code_addr = pk_get_u64(fb, flen, L->fr_code) & ~L->fr_code_tag_mask;
		pk_chain_follow(&chain, pk_get_u64(fb, flen, L->fr_back));

		if (new_frames) {
			int owner = pk_get_u8(fb, flen, L->fr_owner);
			uint64_t instr = pk_get_u64(fb, flen, L->fr_instr);
			uint64_t code_units;

			/* C-stack shims and interpreter-owned frames carry no Python
			 * location. A shim lives on the C stack of the thread that
			 * runs this state: the innermost one tells which thread
			 * that is (threadid.c). */
			if (L->fr_owner_cstack >= 0 && owner == L->fr_owner_cstack && t->cstack == 0)
				t->cstack = frame;
			if ((L->fr_owner_cstack >= 0 && owner == L->fr_owner_cstack) ||
			    (L->fr_owner_interpreter >= 0 && owner == L->fr_owner_interpreter))
				continue;
			if (code_addr == 0)
				continue;
			code = code_get(py, cache, code_addr);
			if (code == NULL)
				return -ENOMEM;
			if (code->err == -EINVAL)
				continue; /* f_executable that is not a code object */
			if (code->err < 0) {
				set_error(t, "unreadable code object", code_addr);
				return 0;
			}
			code_units = code_addr + (uint64_t)L->co_code_adaptive;
			/* An incomplete frame (being set up) is invisible to Python too. */
			if (owner != L->fr_owner_generator && instr < code_units + (uint64_t)code->firsttraceable * 2)
				continue;
			/* A position outside any real code object is no position. */
			line = code_line(py, code, instr - code_units <= (uint64_t)INT_MAX ? (int)(instr - code_units) : -1);
		} else {
			if (code_addr == 0) {
				set_error(t, "frame without code", frame);
				return 0;
			}
			code = code_get(py, cache, code_addr);
			if (code == NULL)
				return -ENOMEM;
			if (code->err < 0) {
				set_error(t, "bad code object", code_addr);
				return 0;
			}
			{
				int lasti = pk_get_i32(fb, flen, L->fr_lasti);
				if (py->major == 3 && py->minor == 10)
					lasti = (lasti < 0 || lasti > INT_MAX / 2) ? -1 : lasti * 2;
				line = code_line(py, code, lasti);
			}
		}
		if (push_frame(cache, t, &cap, frame, code, line) < 0)
			return -ENOMEM;
	}
	if (more == -ELOOP)
		set_error(t, "frame chain loops", chain.cur);
	else if (more == -E2BIG)
		t->frames_truncated = true;
	return 0;
}

/* Warm the page cache for many threads' frame chains at once: walk all the
 * chains in step, one depth level at a time, loading every frame of a level
 * (and the code objects they point to) in one batched read. The real walk
 * that follows then finds nearly everything in the cache: the number of
 * system calls grows with the depth of the deepest stack, not with the
 * number of frames. Nothing here is trusted or kept: it only reads. */
void pk_frames_prefetch(struct pk_py *py, const uint64_t *first, size_t n, unsigned max_depth)
{
	const struct pk_layout *L = &py->layout;
	size_t flen = (size_t)L->fr_size, clen = (size_t)L->co_size;
	uint64_t *cur = NULL, *codes = NULL;
	uint8_t *scratch = NULL;
	struct pk_mem_iov *iov = NULL;
	size_t ncodes = 0, codes_cap = 0, stride, total = 0;

	if (n == 0)
		return;
	if (flen == 0 || flen > 128)
		flen = 128;
	if (clen == 0 || clen > 512)
		clen = 512;
	stride = flen > clen ? flen : clen;
	cur = malloc(n * sizeof(*cur));
	iov = malloc(n * sizeof(*iov));
	scratch = malloc(n * stride);
	if (cur == NULL || iov == NULL || scratch == NULL)
		goto out;
	memcpy(cur, first, n * sizeof(*cur));
	/* 3.11-3.12: the thread state points at a _PyCFrame, which points at the frame. */
	if (L->cframe_current_frame >= 0) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (cur[i] == 0)
				continue;
			iov[k].addr = cur[i] + (uint64_t)L->cframe_current_frame;
			iov[k].buf = scratch + stride * i;
			iov[k].len = 8;
			k++;
		}
		pk_mem_readv(py->mem, iov, k, NULL);
		for (size_t i = 0; i < n; i++) {
			uint64_t f = 0;
			if (cur[i] != 0 && pk_mem_read(py->mem, cur[i] + (uint64_t)L->cframe_current_frame, &f, 8) < 0)
				f = 0;
			cur[i] = f;
		}
	}
	for (unsigned depth = 0; depth < max_depth; depth++) {
		size_t k = 0, first_code = ncodes;

		for (size_t i = 0; i < n; i++) {
			if (cur[i] == 0)
				continue;
			iov[k].addr = cur[i];
			iov[k].buf = scratch + stride * i;
			iov[k].len = flen;
			k++;
		}
		total += k;
		if (k == 0 || total > WALK_MAX_STEPS)
			break; /* the walk itself stops there too */
		pk_mem_readv(py->mem, iov, k, NULL);
		for (size_t i = 0; i < n; i++) {
			const uint8_t *fb = scratch + stride * i;
			uint64_t code;

			if (cur[i] == 0)
				continue;
			if (pk_mem_read(py->mem, cur[i], scratch + stride * i, flen) < 0) {
				cur[i] = 0;
				continue;
			}
			code = pk_get_u64(fb, flen, L->fr_code) & ~L->fr_code_tag_mask;
			cur[i] = pk_get_u64(fb, flen, L->fr_back);
			if (code == 0)
				continue;
			if (ncodes == codes_cap) {
				size_t ncap = codes_cap ? codes_cap * 2 : 256;
				uint64_t *nc;
				if (ncap > (1u << 20))
					continue;
				nc = realloc(codes, ncap * sizeof(*nc));
				if (nc == NULL)
					continue;
				codes = nc;
				codes_cap = ncap;
			}
			codes[ncodes++] = code;
		}
		/* Code objects of this level not seen before: one batched read. */
		k = 0;
		for (size_t c = first_code; c < ncodes && k < n; c++) {
			bool seen = false;
			for (size_t d = c > 64 ? c - 64 : 0; d < c && !seen; d++)
				seen = codes[d] == codes[c];
			if (seen)
				continue;
			iov[k].addr = codes[c];
			iov[k].buf = scratch + stride * k;
			iov[k].len = clen;
			k++;
		}
		if (k > 0)
			pk_mem_readv(py->mem, iov, k, NULL);
	}
out:
	free(cur);
	free(iov);
	free(scratch);
	free(codes);
}
