/* SPDX-License-Identifier: MIT */
/* symbols: open, index and query an ELF object on disk (libelf).
 *
 * The file comes from the target's file system and is not trusted: every
 * offset, count and string taken from it is checked against the file size
 * and the tables it points into before use. */
#include "symbols-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pk_log.h"

/* FNV-1a over the name up to its version suffix ("name@VER", "name@@VER"),
 * so that "PyFoo" and the .symtab spelling "PyFoo@@VERS" hash alike. */
static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0' && *s != '@'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* Exact match of the whole symbol name, or of its base name when the
 * symbol carries a version suffix and the query does not. */
static bool name_matches(const char *symname, const char *query, size_t qlen)
{
	if (strncmp(symname, query, qlen) != 0)
		return false;
	if (symname[qlen] == '\0')
		return true;
	return symname[qlen] == '@' && memchr(query, '@', qlen) == NULL;
}

/* Trim a string table so that every offset below *size starts a
 * NUL-terminated string: cut after the last NUL. */
static void trim_strtab(const char **strs, size_t *size)
{
	const char *last;

	if (*strs == NULL || *size == 0)
		goto empty;
	last = memrchr(*strs, '\0', *size);
	if (last == NULL)
		goto empty;
	*size = (size_t)(last - *strs) + 1;
	return;
empty:
	*strs = NULL;
	*size = 0;
}

static void symtab_free(struct pk_elf_symtab *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* Is sym a definition a name can find? The same filter for every way of
 * looking names up (index, hash walk). */
static bool sym_findable(const struct pk_elf_symtab *t, const Elf64_Sym *sym)
{
	unsigned int type = ELF64_ST_TYPE(sym->st_info);
	const char *name;

	if (sym->st_shndx == SHN_UNDEF || sym->st_name == 0 || sym->st_name >= t->strs_size)
		return false;
	if (type == STT_SECTION || type == STT_FILE)
		return false;
	name = t->strs + sym->st_name;
	return *name != '\0' && *name != '@';
}

/* Read one table and its string table. A table that cannot be read (corrupt
 * header, truncated file) is left empty: the object stays usable through its
 * other table and its segments. */
static void symtab_read(struct pk_elf *e, Elf_Scn *scn, const GElf_Shdr *shdr, struct pk_elf_symtab *t,
			const char *what)
{
	Elf_Data *data, *strdata;
	Elf_Scn *strscn;
	size_t count;

	data = elf_getdata(scn, NULL);
	if (data == NULL || data->d_type != ELF_T_SYM || data->d_buf == NULL) {
		pk_log(PK_LOG_DEBUG, "%s: %s unreadable: %s", e->path, what, elf_errmsg(-1));
		return;
	}
	strscn = elf_getscn(e->elf, shdr->sh_link);
	strdata = strscn != NULL ? elf_getdata(strscn, NULL) : NULL;
	if (strdata == NULL || strdata->d_buf == NULL) {
		pk_log(PK_LOG_DEBUG, "%s: string table of %s unreadable: %s", e->path, what, elf_errmsg(-1));
		return;
	}
	t->strs = strdata->d_buf;
	t->strs_size = strdata->d_size;
	trim_strtab(&t->strs, &t->strs_size);
	if (t->strs == NULL)
		return;

	count = data->d_size / sizeof(Elf64_Sym);
	if (count > PK_ELF_MAX_SYMBOLS) {
		pk_log(PK_LOG_WARN, "%s: %s has %zu symbols, indexing the first %u", e->path, what, count,
		       PK_ELF_MAX_SYMBOLS);
		count = PK_ELF_MAX_SYMBOLS;
	}
	t->syms = data->d_buf;
	t->count = count;
}

/* Hash the findable symbols of a table read by symtab_read (FNV, our own
 * index: every symbol is visited once). Returns 0 or -ENOMEM. */
static int symtab_index(struct pk_elf *e, struct pk_elf_symtab *t, const char *what)
{
	size_t nslots, i;

	if (t->slots != NULL || t->syms == NULL)
		return 0;
	/* At most half full, so probe chains stay short and always end. */
	nslots = 16;
	while (nslots < 2 * t->count)
		nslots *= 2;
	t->slots = calloc(nslots, sizeof(*t->slots));
	if (t->slots == NULL) {
		pk_error("index %s of %s: out of memory", what, e->path);
		return -ENOMEM;
	}
	t->mask = nslots - 1;

	/* Index 0 is the reserved null symbol. */
	for (i = 1; i < t->count; i++) {
		const Elf64_Sym *sym = &t->syms[i];
		uint32_t h;
		size_t slot;

		if (!sym_findable(t, sym))
			continue;
		h = name_hash(t->strs + sym->st_name);
		for (slot = h & t->mask; t->slots[slot].index != 0; slot = (slot + 1) & t->mask)
			;
		t->slots[slot].hash = h;
		t->slots[slot].index = (uint32_t)(i + 1);
	}
	return 0;
}

/* Equal names are met in table order along a probe chain; a global or weak
 * definition wins over local ones (several files may have a static of the
 * same name), otherwise the first local. */
static const Elf64_Sym *symtab_lookup(const struct pk_elf_symtab *t, const char *name)
{
	const Elf64_Sym *best = NULL;
	size_t qlen = strlen(name);
	uint32_t h;
	size_t slot;

	if (t->slots == NULL)
		return NULL;
	h = name_hash(name);
	for (slot = h & t->mask; t->slots[slot].index != 0; slot = (slot + 1) & t->mask) {
		const Elf64_Sym *sym;

		if (t->slots[slot].hash != h)
			continue;
		sym = &t->syms[t->slots[slot].index - 1];
		if (!name_matches(t->strs + sym->st_name, name, qlen))
			continue;
		if (ELF64_ST_BIND(sym->st_info) != STB_LOCAL)
			return sym;
		if (best == NULL)
			best = sym;
	}
	return best;
}

/* ---- .dynsym through the object's own hash table ---- */

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* The dynamic linker's hash functions (glibc dl_new_hash, and the SysV ABI's). */
static uint32_t gnu_hash(const char *s)
{
	uint32_t h = 5381;

	for (; *s != '\0'; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

static uint32_t sysv_hash(const char *s)
{
	uint32_t h = 0, g;

	for (; *s != '\0'; s++) {
		h = (h << 4) + (unsigned char)*s;
		g = h & 0xf0000000u;
		if (g != 0)
			h ^= g >> 24;
		h &= ~g;
	}
	return h;
}

/* Take the hash section sec for .dynsym if its header fits the section and
 * the symbol count; else leave dynhash unset (the full index is used). */
static void dynhash_init(struct pk_elf *e, const struct pk_elf_section *sec, bool gnu)
{
	struct pk_elf_dynhash *d = &e->dynhash;
	const struct pk_elf_symtab *t = &e->dynsym;
	const unsigned char *b;
	size_t size;
	uint64_t need;

	b = pk_elf_section_bytes(e, sec, &size);
	if (b == NULL || t->syms == NULL || t->count == 0)
		return;
	if (gnu) {
		uint32_t nbuckets, symoffset, bloom_size, bloom_shift;

		if (size < 16)
			goto bad;
		nbuckets = rd32(b);
		symoffset = rd32(b + 4);
		bloom_size = rd32(b + 8);
		bloom_shift = rd32(b + 12);
		/* All four are 32-bit: the sum cannot wrap in 64 bits. */
		need = 16 + 8 * (uint64_t)bloom_size + 4 * (uint64_t)nbuckets +
		       4 * (uint64_t)(t->count > symoffset ? t->count - symoffset : 0);
		/* The shift applies to a 32-bit hash. */
		if (nbuckets == 0 || bloom_size == 0 || bloom_shift >= 32 || symoffset == 0 || symoffset > t->count ||
		    need > size)
			goto bad;
		d->nbuckets = nbuckets;
		d->symoffset = symoffset;
		d->bloom_size = bloom_size;
		d->bloom_shift = bloom_shift;
		/* Symbols below symoffset are not hashed (normally the
		 * undefined ones): any definition there is looked for by a
		 * scan, so the answer stays the full table's. */
		for (uint32_t i = 1; i < symoffset; i++)
			if (sym_findable(t, &t->syms[i])) {
				d->low_defined = true;
				break;
			}
	} else {
		uint32_t nbuckets, nchain;

		if (size < 8)
			goto bad;
		nbuckets = rd32(b);
		nchain = rd32(b + 4);
		need = 8 + 4 * ((uint64_t)nbuckets + nchain);
		/* nchain is the symbol count: every symbol is hashed. */
		if (nbuckets == 0 || nchain != t->count || need > size)
			goto bad;
		d->nbuckets = nbuckets;
	}
	d->gnu = gnu;
	d->size = size;
	d->bytes = b;
	return;
bad:
	pk_log(PK_LOG_DEBUG, "%s: %s does not fit its section or .dynsym: indexing every symbol instead", e->path,
	       sec->name);
	memset(d, 0, sizeof(*d));
}

/* Keep the better of two matches: a global or weak one over a local, then
 * the lower index (the full index's answer: first in table order). */
static void better(const struct pk_elf_symtab *t, uint32_t i, uint32_t *nonlocal, uint32_t *local)
{
	uint32_t *slot = ELF64_ST_BIND(t->syms[i].st_info) != STB_LOCAL ? nonlocal : local;

	if (*slot == 0 || i < *slot)
		*slot = i;
}

static bool findable_match(const struct pk_elf_symtab *t, uint32_t i, const char *name, size_t qlen)
{
	const Elf64_Sym *sym = &t->syms[i];

	return sym_findable(t, sym) && name_matches(t->strs + sym->st_name, name, qlen);
}

/* Look name up in .dynsym through dynhash: 0 with *out (NULL when absent),
 * or -EBADMSG when the walk leaves the tables or does not end, which only a
 * corrupt table does. Every index is checked before use and every chain
 * walk is bounded by the symbol count. */
static int dynhash_lookup(const struct pk_elf *e, const char *name, const Elf64_Sym **out)
{
	const struct pk_elf_dynhash *d = &e->dynhash;
	const struct pk_elf_symtab *t = &e->dynsym;
	size_t qlen = strlen(name);
	uint32_t nonlocal = 0, local = 0, count = (uint32_t)t->count;

	*out = NULL;
	if (d->gnu) {
		const unsigned char *bloom = d->bytes + 16;
		const unsigned char *buckets = bloom + 8 * (size_t)d->bloom_size;
		const unsigned char *chain = buckets + 4 * (size_t)d->nbuckets;
		uint32_t h = gnu_hash(name), i;
		uint64_t word;

		if (d->low_defined)
			for (i = 1; i < d->symoffset; i++)
				if (findable_match(t, i, name, qlen))
					better(t, i, &nonlocal, &local);
		if (nonlocal != 0)
			goto done; /* below every hashed symbol: first in table order */
		word = rd64(bloom + 8 * (size_t)((h / 64) % d->bloom_size));
		if (((word >> (h % 64)) & (word >> ((h >> d->bloom_shift) % 64)) & 1) == 0)
			goto done;
		i = rd32(buckets + 4 * (size_t)(h % d->nbuckets));
		if (i == 0)
			goto done;
		if (i < d->symoffset || i >= count)
			return -EBADMSG;
		/* A chain is a run of consecutive symbols, ended by the
		 * low bit of its last hash; it cannot pass the table's end. */
		for (;; i++) {
			uint32_t c;

			if (i >= count)
				return -EBADMSG;
			c = rd32(chain + 4 * (size_t)(i - d->symoffset));
			if ((c | 1) == (h | 1) && findable_match(t, i, name, qlen)) {
				better(t, i, &nonlocal, &local);
				if (ELF64_ST_BIND(t->syms[i].st_info) != STB_LOCAL)
					break;
			}
			if (c & 1)
				break;
		}
	} else {
		const unsigned char *buckets = d->bytes + 8;
		const unsigned char *chain = buckets + 4 * (size_t)d->nbuckets;
		uint32_t h = sysv_hash(name), i, steps = 0;

		/* Chains are linked by index and may run in any order (GNU ld
		 * links them highest first): walk to the end, keep the best. */
		for (i = rd32(buckets + 4 * (size_t)(h % d->nbuckets)); i != STN_UNDEF;
		     i = rd32(chain + 4 * (size_t)i)) {
			if (i >= count || ++steps > count)
				return -EBADMSG;
			if (findable_match(t, i, name, qlen))
				better(t, i, &nonlocal, &local);
		}
	}
done:
	if (nonlocal != 0)
		*out = &t->syms[nonlocal];
	else if (local != 0)
		*out = &t->syms[local];
	return 0;
}

static int load_segments(struct pk_elf *e)
{
	size_t phnum, i;

	if (elf_getphdrnum(e->elf, &phnum) != 0) {
		pk_error("read ELF %s: bad program headers: %s", e->path, elf_errmsg(-1));
		return -ENOEXEC;
	}
	if (phnum > PK_ELF_MAX_SEGMENTS) {
		pk_error("read ELF %s: %zu program headers, more than %u", e->path, phnum, PK_ELF_MAX_SEGMENTS);
		return -ENOEXEC;
	}
	if (phnum == 0)
		return 0;
	e->phdrs = calloc(phnum, sizeof(*e->phdrs));
	if (e->phdrs == NULL) {
		pk_error("read ELF %s: out of memory", e->path);
		return -ENOMEM;
	}
	for (i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(e->elf, (int)i, &ph) == NULL) {
			pk_error("read ELF %s: bad program header %zu: %s", e->path, i, elf_errmsg(-1));
			return -ENOEXEC;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		/* Sanitise so later arithmetic cannot wrap. */
		if (ph.p_vaddr + ph.p_memsz < ph.p_vaddr || ph.p_offset + ph.p_filesz < ph.p_offset) {
			pk_log(PK_LOG_DEBUG, "%s: ignoring PT_LOAD %zu that wraps around", e->path, i);
			continue;
		}
		if (ph.p_filesz > ph.p_memsz)
			ph.p_filesz = ph.p_memsz;
		e->phdrs[e->nphdrs++] = ph;
	}
	return 0;
}

static int load_sections(struct pk_elf *e)
{
	const char *names = NULL;
	size_t names_size = 0;
	size_t shnum, shstrndx, i, dynsym_index = 0;
	const struct pk_elf_section *gnuhash = NULL, *sysvhash = NULL;
	bool native;
	int ret;

	if (elf_getshdrnum(e->elf, &shnum) != 0) {
		pk_error("read ELF %s: bad section headers: %s", e->path, elf_errmsg(-1));
		return -ENOEXEC;
	}
	if (shnum > PK_ELF_MAX_SECTIONS) {
		pk_log(PK_LOG_WARN, "%s: %zu sections, indexing the first %u", e->path, shnum, PK_ELF_MAX_SECTIONS);
		shnum = PK_ELF_MAX_SECTIONS;
	}
	if (shnum <= 1)
		return 0;

	/* Without names the sections are still useful for their symbol tables. */
	if (elf_getshdrstrndx(e->elf, &shstrndx) == 0) {
		Elf_Scn *scn = elf_getscn(e->elf, shstrndx);
		Elf_Data *d = scn != NULL ? elf_getdata(scn, NULL) : NULL;

		if (d != NULL) {
			names = d->d_buf;
			names_size = d->d_size;
			trim_strtab(&names, &names_size);
		}
	}

	e->sections = calloc(shnum, sizeof(*e->sections));
	if (e->sections == NULL) {
		pk_error("read ELF %s: out of memory", e->path);
		return -ENOMEM;
	}
	for (i = 1; i < shnum; i++) {
		Elf_Scn *scn = elf_getscn(e->elf, i);
		struct pk_elf_section *s;
		GElf_Shdr sh;

		if (scn == NULL || gelf_getshdr(scn, &sh) == NULL)
			continue;
		s = &e->sections[e->nsections++];
		s->index = i;
		s->name = names != NULL && sh.sh_name < names_size ? names + sh.sh_name : "";
		s->addr = sh.sh_addr;
		s->offset = sh.sh_offset;
		s->size = sh.sh_size;
		s->flags = sh.sh_flags;
		s->type = sh.sh_type;
		s->link = sh.sh_link;
		if (sh.sh_type == SHT_DYNSYM && e->dynsym_scn == NULL) {
			e->dynsym_scn = scn;
			e->dynsym_hdr = sh;
			dynsym_index = i;
		} else if (sh.sh_type == SHT_SYMTAB && e->symtab_scn == NULL) {
			e->symtab_scn = scn;
			e->symtab_hdr = sh;
		}
	}
	/* Only a hash table of this .dynsym: a file may carry others. */
	for (i = 0; i < e->nsections && dynsym_index != 0; i++) {
		const struct pk_elf_section *sec = &e->sections[i];

		if (sec->link != dynsym_index)
			continue;
		if (sec->type == SHT_GNU_HASH && gnuhash == NULL)
			gnuhash = sec;
		else if (sec->type == SHT_HASH && sysvhash == NULL)
			sysvhash = sec;
	}

	/* .dynsym is read now (the names most lookups want are there) and
	 * looked up through its own hash table; .symtab, ten times larger in
	 * libpython, only when a name is not in .dynsym (symtab_ensure). */
	if (e->dynsym_scn == NULL)
		return 0;
	symtab_read(e, e->dynsym_scn, &e->dynsym_hdr, &e->dynsym, ".dynsym");
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	native = elf_getident(e->elf, NULL)[EI_DATA] == ELFDATA2LSB;
#else
	native = elf_getident(e->elf, NULL)[EI_DATA] == ELFDATA2MSB;
#endif
	if (native && gnuhash != NULL)
		dynhash_init(e, gnuhash, true);
	if (native && e->dynhash.bytes == NULL && sysvhash != NULL)
		dynhash_init(e, sysvhash, false);
	if (e->dynhash.bytes == NULL) {
		ret = symtab_index(e, &e->dynsym, ".dynsym");
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Read and index .symtab on first need. 0 (an unreadable table stays
 * empty) or -ENOMEM. */
static int symtab_ensure(struct pk_elf *e)
{
	if (e->symtab_tried)
		return 0;
	e->symtab_tried = true;
	if (e->symtab_scn == NULL)
		return 0;
	symtab_read(e, e->symtab_scn, &e->symtab_hdr, &e->symtab, ".symtab");
	pk_log(PK_LOG_DEBUG, "%s: .symtab read, %zu symbols", e->path, e->symtab.count);
	return symtab_index(e, &e->symtab, ".symtab");
}

/* libelf quietly counts only the headers that fit in the file, so a
 * truncated object would look like one without segments or sections. Say
 * what is wrong instead. */
static int check_header(struct pk_elf *e, const Elf64_Ehdr *eh)
{
	uint64_t end;

	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN) {
		pk_error("read ELF %s: type %u is not an executable or a shared object", e->path, eh->e_type);
		return -ENOEXEC;
	}
	if (eh->e_phnum == 0) {
		pk_error("read ELF %s: no program headers", e->path);
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr)) {
		pk_error("read ELF %s: program header size %u, expected %zu", e->path, eh->e_phentsize,
			 sizeof(Elf64_Phdr));
		return -ENOEXEC;
	}
	/* PN_XNUM counts live in section 0: at least that much must be there. */
	end = eh->e_phoff + (uint64_t)(eh->e_phnum == PN_XNUM ? 1 : eh->e_phnum) * sizeof(Elf64_Phdr);
	if (eh->e_phoff > e->file_size || end > e->file_size) {
		pk_error("read ELF %s: truncated (program headers end at %#" PRIx64 ", file has %zu bytes)", e->path,
			 end, e->file_size);
		return -ENOEXEC;
	}
	if (eh->e_shoff == 0)
		return 0; /* no section headers: allowed, symbols come from sections only */
	if (eh->e_shentsize != sizeof(Elf64_Shdr)) {
		pk_error("read ELF %s: section header size %u, expected %zu", e->path, eh->e_shentsize,
			 sizeof(Elf64_Shdr));
		return -ENOEXEC;
	}
	end = eh->e_shoff + (uint64_t)(eh->e_shnum == 0 ? 1 : eh->e_shnum) * sizeof(Elf64_Shdr);
	if (eh->e_shoff > e->file_size || end > e->file_size) {
		pk_error("read ELF %s: truncated (section headers end at %#" PRIx64 ", file has %zu bytes)", e->path,
			 end, e->file_size);
		return -ENOEXEC;
	}
	return 0;
}

int pk_elf_open(int fd, const char *display_path, struct pk_elf **out)
{
	struct pk_elf *e;
	Elf64_Ehdr *ehdr;
	struct stat st;
	int ret;

	*out = NULL;
	if (display_path == NULL)
		display_path = "(ELF file)";
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		pk_error("open ELF %s: out of memory", display_path);
		return -ENOMEM;
	}
	e->fd = -1;
	e->path = strdup(display_path);
	if (e->path == NULL) {
		pk_error("open ELF %s: out of memory", display_path);
		ret = -ENOMEM;
		goto fail;
	}
	if (fd < 0) {
		pk_error("open ELF %s: no file", display_path);
		ret = -EBADF;
		goto fail;
	}
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		pk_error("stat %s: %s", display_path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		pk_error("read ELF %s: not a regular file", display_path);
		ret = -ENOEXEC;
		goto fail;
	}
	e->file_size = (size_t)st.st_size;
	/* Our own descriptor: the caller may close its one at once. */
	e->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (e->fd < 0) {
		ret = -errno;
		pk_error("open ELF %s: %s", display_path, strerror(errno));
		goto fail;
	}

	if (elf_version(EV_CURRENT) == EV_NONE) {
		pk_error("read ELF %s: libelf: %s", display_path, elf_errmsg(-1));
		ret = -ENOTSUP;
		goto fail;
	}
	/* Read, never mapped (ELF_C_READ: libelf preads the headers and each
	 * section we ask for, no more; pk_elf_read_partial preads too). The
	 * file belongs to the target, which may truncate it at any moment: a
	 * mapping of it would then kill pykill with SIGBUS on the next touch
	 * of a page past the new end, where a read just comes back short. */
	e->elf = elf_begin(e->fd, ELF_C_READ, NULL);
	if (e->elf == NULL) {
		pk_error("read ELF %s: %s", display_path, elf_errmsg(-1));
		ret = -ENOEXEC;
		goto fail;
	}
	if (elf_kind(e->elf) != ELF_K_ELF) {
		pk_error("read ELF %s: not an ELF file", display_path);
		ret = -ENOEXEC;
		goto fail;
	}
	if (gelf_getclass(e->elf) != ELFCLASS64) {
		pk_error("read ELF %s: not a 64-bit ELF object", display_path);
		ret = -ENOEXEC;
		goto fail;
	}
	ehdr = elf64_getehdr(e->elf);
	if (ehdr == NULL) {
		pk_error("read ELF %s: bad ELF header: %s", display_path, elf_errmsg(-1));
		ret = -ENOEXEC;
		goto fail;
	}
	e->type = ehdr->e_type;
	e->machine = ehdr->e_machine;
	ret = check_header(e, ehdr);
	if (ret < 0)
		goto fail;

	ret = load_segments(e);
	if (ret < 0)
		goto fail;
	ret = load_sections(e);
	if (ret < 0)
		goto fail;

	pk_log(PK_LOG_DEBUG, "%s: ELF type %u machine %u, %zu PT_LOAD, %zu sections, %zu dynamic symbols (%s)%s",
	       e->path, e->type, e->machine, e->nphdrs, e->nsections, e->dynsym.count,
	       e->dynhash.bytes == NULL ? "indexed" : e->dynhash.gnu ? ".gnu.hash" : ".hash",
	       e->symtab_scn != NULL ? ", .symtab read when needed" : "");
	*out = e;
	return 0;

fail:
	pk_elf_close(e);
	return ret;
}

void pk_elf_close(struct pk_elf *e)
{
	int saved_errno = errno;

	if (e == NULL)
		return;
	symtab_free(&e->symtab);
	symtab_free(&e->dynsym);
	free(e->sections);
	free(e->phdrs);
	if (e->elf != NULL)
		elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	free(e->path);
	free(e);
	errno = saved_errno;
}

const char *pk_elf_path(const struct pk_elf *e)
{
	return e->path;
}

uint16_t pk_elf_machine(const struct pk_elf *e)
{
	return e->machine;
}

bool pk_elf_is_exec(const struct pk_elf *e)
{
	return e->type == ET_EXEC;
}

/* The lazily filled parts of an object are its own: callers hold it const
 * because, to them, a lookup changes nothing. (Objects are used by one
 * thread at a time.) */
static struct pk_elf *lazy(const struct pk_elf *e)
{
	return (struct pk_elf *)(uintptr_t)e;
}

static int dynsym_lookup(const struct pk_elf *e, const char *name, const Elf64_Sym **sym)
{
	int ret;

	if (e->dynhash.bytes != NULL) {
		ret = dynhash_lookup(e, name, sym);
		if (ret == 0)
			return 0;
		/* A table that leads nowhere: the dynamic linker would fail
		 * here too, but every symbol is still in .dynsym. */
		pk_log(PK_LOG_DEBUG, "%s: %s is inconsistent (looking up %s): indexing every symbol instead", e->path,
		       e->dynhash.gnu ? ".gnu.hash" : ".hash", name);
		memset(&lazy(e)->dynhash, 0, sizeof(e->dynhash));
	}
	ret = symtab_index(lazy(e), &lazy(e)->dynsym, ".dynsym");
	if (ret < 0)
		return ret;
	*sym = symtab_lookup(&e->dynsym, name);
	return 0;
}

int pk_elf_symbol(const struct pk_elf *e, const char *name, uint64_t *value, uint64_t *size)
{
	const Elf64_Sym *sym = NULL;
	int ret;

	if (name == NULL || *name == '\0')
		return -EINVAL;
	ret = dynsym_lookup(e, name, &sym);
	if (ret < 0)
		return ret;
	if (sym == NULL) {
		ret = symtab_ensure(lazy(e));
		if (ret < 0)
			return ret;
		sym = symtab_lookup(&e->symtab, name);
	}
	if (sym == NULL)
		return -ENOENT;
	if (value != NULL)
		*value = sym->st_value;
	if (size != NULL)
		*size = sym->st_size;
	return 0;
}

const struct pk_elf_section *pk_elf_find_section(const struct pk_elf *e, const char *name)
{
	size_t i;

	for (i = 0; i < e->nsections; i++)
		if (strcmp(e->sections[i].name, name) == 0)
			return &e->sections[i];
	return NULL;
}

const unsigned char *pk_elf_section_bytes(const struct pk_elf *e, const struct pk_elf_section *sec, size_t *size)
{
	Elf_Scn *scn;
	Elf_Data *d;

	*size = 0;
	if (sec->type == SHT_NOBITS || sec->offset > e->file_size || sec->size > e->file_size - sec->offset)
		return NULL;
	/* libelf reads the section once and keeps it until elf_end. */
	scn = elf_getscn(e->elf, sec->index);
	d = scn != NULL ? elf_rawdata(scn, NULL) : NULL;
	if (d == NULL || d->d_buf == NULL) {
		pk_log(PK_LOG_DEBUG, "%s: section %s unreadable: %s", e->path, sec->name, elf_errmsg(-1));
		return NULL;
	}
	*size = d->d_size < sec->size ? d->d_size : (size_t)sec->size;
	return d->d_buf;
}

int pk_elf_section(const struct pk_elf *e, const char *name, uint64_t *addr, uint64_t *size)
{
	const struct pk_elf_section *s;

	if (name == NULL)
		return -EINVAL;
	s = pk_elf_find_section(e, name);
	if (s == NULL)
		return -ENOENT;
	if (addr != NULL)
		*addr = s->addr;
	if (size != NULL)
		*size = s->size;
	return 0;
}

ssize_t pk_elf_read_partial(const struct pk_elf *e, uint64_t vaddr, void *buf, size_t len)
{
	size_t i;

	for (i = 0; i < e->nphdrs; i++) {
		const GElf_Phdr *ph = &e->phdrs[i];
		uint64_t off, n, infile = 0;

		if (vaddr < ph->p_vaddr || vaddr - ph->p_vaddr >= ph->p_memsz)
			continue;
		off = vaddr - ph->p_vaddr;
		n = ph->p_memsz - off;
		if (n > len)
			n = len;
		if (n > SSIZE_MAX)
			n = SSIZE_MAX;
		if (off < ph->p_filesz) {
			uint64_t foff = ph->p_offset + off;

			infile = ph->p_filesz - off;
			if (infile > n)
				infile = n;
			/* A truncated file does not have the bytes: do not
			 * pretend they are zero. */
			if (foff >= e->file_size)
				return -EFAULT;
			if (infile > e->file_size - foff) {
				infile = e->file_size - foff;
				n = infile;
			}
			for (uint64_t got = 0; got < infile;) {
				ssize_t r = pread(e->fd, (unsigned char *)buf + got, infile - got, (off_t)(foff + got));

				if (r < 0 && errno == EINTR)
					continue;
				if (r <= 0) /* cut short since it was opened */
					return -EFAULT;
				got += (uint64_t)r;
			}
		}
		memset((unsigned char *)buf + infile, 0, n - infile);
		return (ssize_t)n;
	}
	return -EFAULT;
}

int pk_elf_read(const struct pk_elf *e, uint64_t vaddr, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t done = 0;

	/* Adjacent PT_LOADs are read through, as the process would see them. */
	while (done < len) {
		ssize_t n = pk_elf_read_partial(e, vaddr + done, p + done, len - done);

		if (n <= 0) {
			pk_error("read %zu bytes at 0x%" PRIx64 " of %s: not in the file image of any PT_LOAD", len,
				 vaddr, e->path);
			return -EFAULT;
		}
		done += (size_t)n;
	}
	return 0;
}

static int find_build_id_in(Elf_Data *data, unsigned char *id, size_t *idlen)
{
	size_t off = 0, next, name_off, desc_off;
	GElf_Nhdr nh;

	while (off < data->d_size && (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp((const char *)data->d_buf + name_off, "GNU", 4) == 0 && nh.n_descsz > 0 &&
		    nh.n_descsz <= PK_ELF_MAX_BUILD_ID) {
			memcpy(id, (const char *)data->d_buf + desc_off, nh.n_descsz);
			*idlen = nh.n_descsz;
			return 0;
		}
		off = next;
	}
	return -ENOENT;
}

static int find_build_id(const struct pk_elf *e, unsigned char *id, size_t *idlen)
{
	size_t shnum, phnum, i;
	Elf *elf = e->elf;

	if (elf_getshdrnum(elf, &shnum) == 0) {
		if (shnum > PK_ELF_MAX_SECTIONS)
			shnum = PK_ELF_MAX_SECTIONS;
		for (i = 1; i < shnum; i++) {
			Elf_Scn *scn = elf_getscn(elf, i);
			Elf_Data *d;
			GElf_Shdr sh;

			if (scn == NULL || gelf_getshdr(scn, &sh) == NULL || sh.sh_type != SHT_NOTE)
				continue;
			d = elf_getdata(scn, NULL);
			if (d != NULL && find_build_id_in(d, id, idlen) == 0)
				return 0;
		}
	}
	/* Section headers can be gone (sstrip); the note segment cannot. */
	if (elf_getphdrnum(elf, &phnum) != 0)
		return -ENOENT;
	if (phnum > PK_ELF_MAX_SEGMENTS)
		phnum = PK_ELF_MAX_SEGMENTS;
	for (i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		Elf_Data *d;

		if (gelf_getphdr(elf, (int)i, &ph) == NULL || ph.p_type != PT_NOTE)
			continue;
		d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
					 ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
		if (d != NULL && find_build_id_in(d, id, idlen) == 0)
			return 0;
	}
	return -ENOENT;
}

int pk_elf_build_id(const struct pk_elf *e, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char id[PK_ELF_MAX_BUILD_ID];
	size_t idlen = 0, i;
	int ret;

	ret = find_build_id(e, id, &idlen);
	if (ret < 0)
		return ret;
	if (cap < 2 * idlen + 1) {
		pk_error("read build id of %s: %zu bytes do not fit in %zu", e->path, idlen, cap);
		return -ENOSPC;
	}
	for (i = 0; i < idlen; i++) {
		buf[2 * i] = hex[id[i] >> 4];
		buf[2 * i + 1] = hex[id[i] & 0xf];
	}
	buf[2 * idlen] = '\0';
	return 0;
}

int pk_elf_load_bias(const struct pk_elf *e, uint64_t map_start, uint64_t map_offset, uint64_t *bias)
{
	long pagesize = sysconf(_SC_PAGESIZE);
	uint64_t mask = (uint64_t)(pagesize > 0 ? pagesize : 4096) - 1;
	size_t i;

	if (e->type == ET_EXEC) {
		*bias = 0;
		return 0;
	}
	/* The dynamic loader maps each PT_LOAD from its page-aligned offset
	 * to its page-aligned address, so a maps line starting a segment
	 * shows exactly that offset. */
	for (i = 0; i < e->nphdrs; i++) {
		const GElf_Phdr *ph = &e->phdrs[i];

		if ((ph->p_offset & ~mask) == map_offset) {
			*bias = map_start - (ph->p_vaddr & ~mask);
			return 0;
		}
	}
	/* A mapping that starts inside a segment: mprotect (RELRO) split it. */
	for (i = 0; i < e->nphdrs; i++) {
		const GElf_Phdr *ph = &e->phdrs[i];
		uint64_t off0 = ph->p_offset & ~mask;

		if (ph->p_filesz > 0 && map_offset > off0 && map_offset < ph->p_offset + ph->p_filesz) {
			*bias = map_start - ((ph->p_vaddr & ~mask) + (map_offset - off0));
			return 0;
		}
	}
	pk_error("compute load bias of %s: no PT_LOAD at file offset 0x%" PRIx64 " (wrong file?)", e->path,
		 map_offset);
	return -ENOENT;
}

size_t pk_elf_segments(const struct pk_elf *e, struct pk_elf_segment *out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < e->nphdrs; i++) {
		const GElf_Phdr *ph = &e->phdrs[i];

		if (!(ph->p_flags & PF_X))
			continue;
		if (n < max) {
			out[n].vaddr = ph->p_vaddr;
			out[n].filesz = ph->p_filesz;
			out[n].memsz = ph->p_memsz;
			out[n].flags = ph->p_flags;
		}
		n++;
	}
	return n;
}

static int iter_table(const struct pk_elf_symtab *t, const char *prefix, size_t plen,
		      int (*cb)(const char *name, uint64_t value, void *ctx), void *ctx)
{
	for (size_t i = 0; i < t->count; i++) {
		const Elf64_Sym *sym = &t->syms[i];
		const char *name;
		int rc;

		if (sym->st_shndx == SHN_UNDEF || sym->st_name >= t->strs_size)
			continue;
		name = t->strs + sym->st_name;
		if (strncmp(name, prefix, plen) != 0)
			continue;
		rc = cb(name, sym->st_value, ctx);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int pk_elf_symbols_with_prefix(const struct pk_elf *e, const char *prefix,
			       int (*cb)(const char *name, uint64_t value, void *ctx), void *ctx)
{
	size_t plen = strlen(prefix);
	int rc = iter_table(&e->dynsym, prefix, plen, cb, ctx);

	if (rc == 0)
		rc = symtab_ensure(lazy(e));
	if (rc == 0)
		rc = iter_table(&e->symtab, prefix, plen, cb, ctx);
	return rc;
}
