/* SPDX-License-Identifier: MIT */
/* Code caves for the remote-call trampoline.
 *
 * A cave is the tail of the last page of an executable PT_LOAD: the loader
 * maps whole pages, so the bytes between the end of the segment and the end
 * of its page are mapped executable but belong to no function (with the
 * default -z separate-code layout they are the file's zero padding). Nothing
 * jumps there, so writing the trampoline there changes no behaviour of the
 * target, and since the trampoline is constant code, a second pykill finds
 * it already installed.
 *
 * The segment end comes from the program headers read from the target's
 * own memory (the ELF header is mapped at the start of the object's first
 * mapping), so what is checked is what the process runs, whatever file the
 * path names now. Everything read is untrusted and bounded. */
#include "pk_attach.h"
#include "pk_inject.h"
#include "arch-priv.h"
#include "pk_log.h"

#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PHNUM 128u
#define MAX_CANDIDATES 64u

static uint64_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (uint64_t)p : 4096u;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

static bool is_file_exec(const struct pk_map *m)
{
	return (m->prot & PK_MAP_X) && (m->prot & PK_MAP_P) && m->inode != 0 && m->path != NULL &&
	       m->path[0] == '/';
}

/* The mapping that holds the ELF header of the object m belongs to. */
static const struct pk_map *first_mapping(const struct pk_maps *maps, const struct pk_map *m)
{
	size_t i;

	for (i = 0; i < maps->n; i++) {
		const struct pk_map *o = &maps->v[i];

		if (o->offset == 0 && o->inode == m->inode && o->dev_major == m->dev_major &&
		    o->dev_minor == m->dev_minor && o->start <= m->start && (o->prot & PK_MAP_R))
			return o;
	}
	return NULL;
}

/* [*start, *end): the tail of the executable segment mapped by m. 0 or
 * -ENOENT (quietly: callers try the next mapping). */
static int segment_tail(struct pk_mem *mem, const struct pk_maps *maps, const struct pk_map *m,
			uint64_t *start, uint64_t *end)
{
	const uint64_t pg = page_size(), mask = pg - 1;
	const struct pk_map *hdr_map = first_mapping(maps, m);
	Elf64_Phdr *ph = NULL;
	Elf64_Ehdr eh;
	uint16_t i;
	int ret = -ENOENT;

	if (hdr_map == NULL || pk_mem_read(mem, hdr_map->start, &eh, sizeof(eh)) != 0)
		return -ENOENT;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_machine != pk_arch_elf_machine() || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
	    eh.e_phnum > MAX_PHNUM || eh.e_phoff > hdr_map->end - hdr_map->start ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > hdr_map->end - hdr_map->start - eh.e_phoff)
		return -ENOENT;
	ph = calloc(eh.e_phnum, sizeof(*ph));
	if (ph == NULL)
		return -ENOMEM;
	if (pk_mem_read(mem, hdr_map->start + eh.e_phoff, ph, (size_t)eh.e_phnum * sizeof(*ph)) != 0)
		goto out;
	for (i = 0; i < eh.e_phnum; i++) {
		uint64_t bias, seg_end, pg_end, size;

		if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X) || (ph[i].p_offset & ~mask) != m->offset)
			continue;
		/* The loader maps the page holding p_offset at the page
		 * holding p_vaddr + bias. */
		bias = m->start - (ph[i].p_vaddr & ~mask);
		size = ph[i].p_memsz > ph[i].p_filesz ? ph[i].p_memsz : ph[i].p_filesz;
		if (size > m->end - m->start || ph[i].p_vaddr > UINT64_MAX - size - bias)
			continue;
		seg_end = bias + ph[i].p_vaddr + size;
		pg_end = (seg_end + mask) & ~mask;
		if (seg_end <= m->start || pg_end > m->end || pg_end == seg_end)
			continue;
		*start = seg_end;
		*end = pg_end;
		ret = 0;
		break;
	}
out:
	free(ph);
	return ret;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* A cave in mapping m: the trampoline at the end of the tail, 64-aligned,
 * so every pykill picks the same address; the rest of the tail must be
 * zero (nobody else uses it). */
static int try_mapping(struct pk_mem *mem, const struct pk_maps *maps, const struct pk_map *m, uint64_t *cave)
{
	const uint8_t *code;
	uint64_t start, end, at;
	size_t tlen, n;
	uint8_t *buf;
	int ret;

	code = pk_rcall_trampoline(&tlen, NULL);
	ret = segment_tail(mem, maps, m, &start, &end);
	if (ret < 0)
		return ret;
	if (end - start < tlen)
		return -ENOSPC;
	at = (end - tlen) & ~(uint64_t)63;
	if (at < start)
		return -ENOSPC;
	n = (size_t)(end - start);
	buf = malloc(n);
	if (buf == NULL)
		return -ENOMEM;
	ret = pk_mem_read(mem, start, buf, n);
	if (ret == 0) {
		size_t off = (size_t)(at - start);

		if (all_zero(buf, off) && all_zero(buf + off + tlen, n - off - tlen) &&
		    (all_zero(buf + off, tlen) || memcmp(buf + off, code, tlen) == 0))
			*cave = at;
		else
			ret = -EEXIST;
	}
	free(buf);
	return ret;
}

static int name_rank(const struct pk_map *m)
{
	const char *b = base_name(m->path);

	if (strncmp(b, "libpython", 9) == 0)
		return 1;
	if (strncmp(b, "python", 6) == 0)
		return 2;
	if (strncmp(b, "libc.so", 7) == 0 || strncmp(b, "libc-", 5) == 0)
		return 3;
	return 0;
}

int pk_cave_find(struct pk_mem *mem, const struct pk_maps *maps, uint64_t prefer, uint64_t *cave)
{
	const struct pk_map *pm = prefer != 0 ? pk_maps_find(maps, prefer) : NULL;
	size_t i, tried = 0, tlen;
	int rank;

	if (pm != NULL && is_file_exec(pm) && try_mapping(mem, maps, pm, cave) == 0)
		return 0;
	for (rank = 1; rank <= 3; rank++) {
		for (i = 0; i < maps->n && tried < MAX_CANDIDATES; i++) {
			const struct pk_map *m = &maps->v[i];

			if (m == pm || !is_file_exec(m) || name_rank(m) != rank)
				continue;
			tried++;
			if (try_mapping(mem, maps, m, cave) == 0)
				return 0;
		}
	}
	pk_rcall_trampoline(&tlen, NULL);
	pk_error("find a code cave: no executable mapping of python, libpython or libc has %zu free bytes "
		 "after its code",
		 tlen);
	return -ENOSPC;
}

int pk_cave_install(struct pk_mem *mem, uint64_t cave)
{
	uint8_t buf[1024];
	const uint8_t *code;
	size_t tlen;
	int ret;

	code = pk_rcall_trampoline(&tlen, NULL);
	if (tlen > sizeof(buf))
		return -E2BIG;
	ret = pk_mem_read(mem, cave, buf, tlen);
	if (ret < 0) {
		pk_error("read code cave at 0x%" PRIx64 ": %s", cave, strerror(-ret));
		return ret;
	}
	if (memcmp(buf, code, tlen) == 0)
		return 0;
	if (!all_zero(buf, tlen)) {
		pk_error("install trampoline at 0x%" PRIx64 ": the cave holds other code", cave);
		return -EEXIST;
	}
	ret = pk_mem_write(mem, cave, code, tlen);
	if (ret < 0) {
		pk_error("install trampoline at 0x%" PRIx64 ": %s", cave, strerror(-ret));
		return ret;
	}
	ret = pk_mem_read(mem, cave, buf, tlen);
	if (ret < 0 || memcmp(buf, code, tlen) != 0) {
		pk_error("install trampoline at 0x%" PRIx64 ": read back differs", cave);
		return ret < 0 ? ret : -EIO;
	}
	return 0;
}
