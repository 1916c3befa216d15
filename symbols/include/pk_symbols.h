/* SPDX-License-Identifier: MIT */
/* symbols: what an ELF object on disk says about itself.
 *
 * Works on the file only (never on the live process), from a descriptor the
 * caller opened: a target's file through pk_map_open (attach), never by a
 * name the target controls. All addresses
 * are link-time virtual addresses; add the load bias for run-time addresses.
 * Every function returns 0 or -errno and describes failures with pk_error().
 * -ENOENT from a lookup (symbol, section, build id, version string) is an
 * answer, not a failure: it records no message, so callers may probe. */
#ifndef PK_SYMBOLS_H
#define PK_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pk_elf;

/* Open and index the ELF object open on fd (a regular file; the caller
 * keeps fd and may close it at once). display_path is the name used in
 * messages (the path as the target sees it). -ENOEXEC if it is not an ELF
 * file, not ELF64, not an executable or shared object (ET_EXEC/ET_DYN), or
 * truncated. The file is read, never mapped: its owner may truncate it
 * while pykill reads, which must cost a failed read, not a SIGBUS. */
int pk_elf_open(int fd, const char *display_path, struct pk_elf **out);
void pk_elf_close(struct pk_elf *elf);

const char *pk_elf_path(const struct pk_elf *elf);
uint16_t pk_elf_machine(const struct pk_elf *elf); /* EM_X86_64, ... */
bool pk_elf_is_exec(const struct pk_elf *elf);     /* ET_EXEC: not position independent */

/* Look a symbol up in .dynsym, then .symtab. -ENOENT if absent or undefined.
 * "name" also finds a versioned .symtab entry "name@@VER" / "name@VER". When
 * a table has several definitions, a global or weak one wins over statics,
 * else the first static. value and size may be NULL. The value is st_value
 * as is: for STT_GNU_IFUNC (libc's memcpy...) that is the resolver, and for
 * STT_TLS an offset in the TLS block. .dynsym is searched through the
 * object's .gnu.hash/.hash (checked, bounded; a corrupt one falls back to a
 * full index), .symtab is read on the first name .dynsym lacks: -ENOMEM is
 * then possible. Not thread-safe on one object (it is filled lazily). */
int pk_elf_symbol(const struct pk_elf *elf, const char *name, uint64_t *value, uint64_t *size);

/* Call cb for every defined symbol whose name starts with prefix (.dynsym
 * first, then .symtab: a name may come twice). A non-zero return from cb
 * stops the walk and is returned. */
int pk_elf_symbols_with_prefix(const struct pk_elf *elf, const char *prefix,
			       int (*cb)(const char *name, uint64_t value, void *ctx), void *ctx);

/* Section by name (section headers survive strip). -ENOENT if absent. */
int pk_elf_section(const struct pk_elf *elf, const char *name, uint64_t *addr, uint64_t *size);

/* Copy len bytes of the file image at link-time address vaddr (from a PT_LOAD
 * with file backing; bytes past p_filesz read as zero). -EFAULT if outside. */
int pk_elf_read(const struct pk_elf *elf, uint64_t vaddr, void *buf, size_t len);

/* GNU build id as lowercase hex into buf (cap >= 2*20+1). -ENOENT if none. */
int pk_elf_build_id(const struct pk_elf *elf, char *buf, size_t cap);

/* Load bias for a mapping of this object found in /proc/PID/maps at
 * map_start with file offset map_offset: run-time address = link-time + bias.
 * 0 for ET_EXEC. -ENOENT if no PT_LOAD covers map_offset. */
int pk_elf_load_bias(const struct pk_elf *elf, uint64_t map_start, uint64_t map_offset, uint64_t *bias);

/* Executable PT_LOAD segments (for code caves): link-time start, file size
 * and memory size (p_memsz; the segment's last page ends at
 * vaddr + memsz rounded up to the page size). Fills at most max entries and
 * returns how many there are (may be > max). */
struct pk_elf_segment {
	uint64_t vaddr;
	uint64_t filesz;
	uint64_t memsz;
	uint32_t flags; /* PF_R | PF_W | PF_X */
};
size_t pk_elf_segments(const struct pk_elf *elf, struct pk_elf_segment *out, size_t max);

/* A CPython version string "X.Y.Z[suffix]" found in the object's read-only
 * data (matched anywhere, as the linker may tail-merge it into a longer
 * string). Only strings whose X.Y equals want_major.want_minor when those are
 * non-zero. A string that stands alone (starts a string) is preferred over
 * a merged tail. Pass X.Y whenever it is known: static builds also embed other
 * strings of this form (zlib "1.2.13", unicodedata "3.2.0"), and with
 * want_major == 0 the first standalone one wins. -ENOENT if none,
 * -ENOSPC if cap is too small. */
int pk_elf_find_version_string(const struct pk_elf *elf, int want_major, int want_minor, char *buf, size_t cap);

/* Code inspection (capstone, dlopen'ed on first use in the dynamic build:
 * every function below returns -ELIBACC, or false, with the reason recorded,
 * when it cannot be loaded). Decode up to max_insns instructions of the
 * function at link-time address func (bytes from the file) and collect the
 * absolute targets of RIP-relative memory operands, in order. Used to learn
 * the address of static variables (interp_head, eval_breaker) from tiny
 * exported accessors. Stops after a ret or unconditional jump (whose own
 * operand still counts), at max_insns, at max_targets, or where the file's
 * bytes end. aarch64: ADRP + ADD/LDR/STR pairs and LDR (literal) resolve to
 * their absolute address. Returns the number found (>= 0) or -errno
 * (-ENOTSUP for a machine other than x86_64/aarch64, -EFAULT if func is
 * outside every PT_LOAD). */
int pk_elf_rip_targets(const struct pk_elf *elf, uint64_t func, size_t max_insns, uint64_t *targets, size_t max_targets);

/* Does the instruction that ends exactly at address end (bytes given, at
 * least 16 before end) decode as the system call instruction of machine? */
bool pk_code_is_syscall_before(uint16_t machine, const uint8_t *bytes_before, size_t n, uint64_t end);

/* Disassemble len bytes at addr into text, one instruction per line
 * ("0x1000: movq 0x10(%rip), %rax", AT&T syntax on x86 as objdump/gdb), for
 * verifying code written into a target and for -v output. Bytes that do not
 * decode show as "(bad) xx". -ENOSPC when the text does not fit (out then
 * holds the whole lines that did), -ENOTSUP for an unknown machine. */
int pk_code_disasm(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr, char *out, size_t cap);

/* The memory accesses of a small function (x86_64; -ENOTSUP elsewhere),
 * decoded in file order from link-time address func over size bytes (the
 * symbol's st_size; 0: a short default; at most 4 KiB). Used to check
 * structure offsets against the interpreter's own accessors. Registers are
 * modelled as the first or second argument (rdi, rsi, copied by 64-bit
 * register moves), a known link-time address (RIP-relative LEA, or a load
 * from a GOT slot whose dynamic relocation gives the address), or other.
 * Branches are not followed. */
enum pk_code_val { PK_CODE_OTHER = 0, PK_CODE_ARG0, PK_CODE_ARG1, PK_CODE_ADDR };
enum pk_code_kind { PK_CODE_LOAD, PK_CODE_STORE, PK_CODE_CMP, PK_CODE_XCHG, PK_CODE_RMW };
struct pk_code_access {
	uint64_t insn;   /* link-time address of the instruction */
	uint8_t kind;    /* enum pk_code_kind (RMW: or, add, inc, cmpxchg ... on memory) */
	uint8_t base;    /* enum pk_code_val: what the base register held (ADDR for RIP-relative) */
	uint8_t src;     /* enum pk_code_val: the 64-bit register operand, if any */
	uint8_t size;    /* bytes accessed */
	bool has_imm;    /* an immediate operand, in imm */
	bool lock;       /* lock prefix */
	bool before_ret; /* on the straight path before the first ret or jmp */
	int64_t imm;
	int64_t disp;    /* displacement from the base register */
	uint64_t addr;   /* base ADDR: link-time address accessed */
};
#define PK_CODE_MAX_ACCESS 64
struct pk_code_scan {
	size_t n;             /* entries of acc */
	size_t n_before_ret;  /* of them, before the first ret or jmp */
	bool call_before_ret; /* a call before the first ret or jmp */
	bool truncated;       /* more accesses than acc holds */
	struct pk_code_access acc[PK_CODE_MAX_ACCESS];
};
/* got, if not NULL, says what a GOT slot (link-time address) holds as a
 * link-time address (e.g. read from the relocated slot of a live process:
 * one read instead of a search of the dynamic relocations); 0 or -errno. */
typedef int (*pk_code_got_fn)(void *ctx, uint64_t slot, uint64_t *target);
int pk_elf_code_scan(const struct pk_elf *elf, uint64_t func, uint64_t size, pk_code_got_fn got, void *got_ctx,
		     struct pk_code_scan *out);

#endif
