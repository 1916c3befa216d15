/* SPDX-License-Identifier: MIT */
/* symbols: internals shared by elf.c, version.c, code.c, scan.c and capstone.c. */
#ifndef PK_SYMBOLS_PRIV_H
#define PK_SYMBOLS_PRIV_H

#include <capstone/capstone.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pk_symbols.h"

/* Limits on what a (possibly hostile or corrupt) file may make us allocate. */
#define PK_ELF_MAX_SYMBOLS (1u << 22)
#define PK_ELF_MAX_SECTIONS (1u << 16)
#define PK_ELF_MAX_SEGMENTS 256u
#define PK_ELF_MAX_BUILD_ID 64u

struct pk_elf_symslot {
	uint32_t hash; /* of the name up to '@' */
	uint32_t index; /* symbol index + 1; 0 = empty slot */
};

/* One symbol table (.dynsym or .symtab), hashed by base name. */
struct pk_elf_symtab {
	const Elf64_Sym *syms; /* memory form, owned by libelf */
	size_t count;
	const char *strs;  /* string table, trimmed so strs[strs_size - 1] == '\0' */
	size_t strs_size;
	struct pk_elf_symslot *slots;
	size_t mask; /* number of slots - 1 (a power of two - 1) */
};

/* The object's own hash table of .dynsym (.gnu.hash, else .hash, linked to
 * it), walked as the dynamic linker walks it: a lookup reads a bucket and a
 * short chain instead of pykill indexing every symbol at open. Checked at
 * open (sizes within the section) and on every walk (indices within the
 * tables, chains bounded); an inconsistent one is dropped for the full index
 * (symtab_index). Raw file bytes, used only when the file's byte order is
 * the host's. */
struct pk_elf_dynhash {
	const unsigned char *bytes; /* NULL: none usable */
	size_t size;
	bool gnu;
	uint32_t nbuckets;    /* both */
	uint32_t symoffset;   /* gnu: first hashed symbol */
	uint32_t bloom_size;  /* gnu: 64-bit words */
	uint32_t bloom_shift; /* gnu */
	bool low_defined;     /* gnu: defined named symbols below symoffset (not hashed) */
};

struct pk_elf_section {
	const char *name; /* into the section name table, NUL-terminated */
	size_t index;     /* for elf_getscn */
	uint64_t addr;
	uint64_t offset;
	uint64_t size;
	uint64_t flags;
	uint32_t type;
	uint32_t link; /* sh_link */
};

struct pk_elf {
	char *path; /* display path */
	int fd;     /* ours (a duplicate): libelf and pk_elf_read_partial read through it */
	Elf *elf;
	size_t file_size; /* when opened */
	uint16_t type;    /* ET_EXEC, ET_DYN, ... */
	uint16_t machine; /* EM_X86_64, ... */

	GElf_Phdr *phdrs; /* PT_LOAD only, in file order */
	size_t nphdrs;

	struct pk_elf_section *sections;
	size_t nsections;

	struct pk_elf_symtab dynsym; /* read at open; indexed only without a usable dynhash */
	struct pk_elf_dynhash dynhash;
	struct pk_elf_symtab symtab; /* read and indexed on first need (symtab_scn) */
	Elf_Scn *dynsym_scn, *symtab_scn;
	GElf_Shdr dynsym_hdr, symtab_hdr;
	bool symtab_tried;
};

/* Copy up to len bytes of the file image at link-time vaddr, staying inside
 * the one PT_LOAD that contains vaddr. Returns the number of bytes copied
 * (> 0) or -EFAULT when vaddr is in no PT_LOAD. No pk_error(). */
ssize_t pk_elf_read_partial(const struct pk_elf *elf, uint64_t vaddr, void *buf, size_t len);

/* First section with this name, or NULL. */
const struct pk_elf_section *pk_elf_find_section(const struct pk_elf *elf, const char *name);

/* File bytes of a section with file backing, bounded by the file size,
 * read once and kept until pk_elf_close. NULL (and *size = 0) for NOBITS or
 * out-of-file sections, or when the file no longer has them. */
const unsigned char *pk_elf_section_bytes(const struct pk_elf *elf, const struct pk_elf_section *sec,
					  size_t *size);

/* The capstone functions pykill calls, bound on first use (capstone.c): the
 * dynamic build dlopens the library then, so that commands which decode no
 * code never pay for loading it. */
struct pk_cs {
	cs_err (*open)(cs_arch arch, cs_mode mode, csh *handle);
	cs_err (*close)(csh *handle);
	cs_err (*option)(csh handle, cs_opt_type type, size_t value);
	cs_insn *(*malloc)(csh handle);
	void (*free)(cs_insn *insn, size_t count);
	size_t (*disasm)(csh handle, const uint8_t *code, size_t size, uint64_t address, size_t count,
			 cs_insn **insn);
	bool (*disasm_iter)(csh handle, const uint8_t **code, size_t *size, uint64_t *address, cs_insn *insn);
	cs_err (*regs_access)(csh handle, const cs_insn *insn, cs_regs regs_read, uint8_t *regs_read_count,
			      cs_regs regs_write, uint8_t *regs_write_count);
	bool (*insn_group)(csh handle, const cs_insn *insn, unsigned int group_id);
};

/* 0 and the bound functions, or -ELIBACC (message recorded with pk_error())
 * when the library cannot be loaded: not found, another major version, a
 * function missing. Loaded once per process; thread-safe. */
int pk_cs_get(const struct pk_cs **out);

#endif
