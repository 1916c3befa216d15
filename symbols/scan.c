/* SPDX-License-Identifier: MIT */
/* symbols: the memory accesses of a small function, for checking structure
 * offsets against the code that uses them (cpython/layout.c).
 *
 * A linear decode (x86_64) with a tiny register model: each general
 * register holds the first or second argument (copied through 64-bit
 * register moves), a known link-time address (a RIP-relative LEA, or a load
 * from a GOT slot whose dynamic relocation names the address), or something
 * else. Code is decoded once, in file order; a forward branch carries the
 * registers to its target (merged where paths meet), code after a ret or
 * jmp starts with what the branches to it carried, or nothing. Backward
 * branches (loops) are not followed, which is why callers accept a pattern
 * only when it is unique. */
#include "symbols-priv.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "pk_log.h"

#define SCAN_MAX_BYTES 4096
#define SCAN_DEFAULT_BYTES 256
#define SCAN_MAX_RELOCS (1u << 22)

struct regval {
	uint8_t cls;   /* enum pk_code_val */
	uint64_t addr; /* PK_CODE_ADDR */
};

#define NGPR 16
#define GPR_RSI 4 /* rows of the table in gpr() */
#define GPR_RDI 5
#define SCAN_MAX_PENDING 32

/* Register classes at one point of the function. */
struct state {
	struct regval r[NGPR];
};

/* A forward branch target and the registers on the way there. */
struct pending {
	uint64_t target;
	struct state st;
};

/* Index 0..15 of the general register a register name belongs to (eax ->
 * rax), or -1 for anything else (rip, segment, vector registers). */
static int gpr(unsigned reg)
{
	static const unsigned fam[][5] = {
		{ X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH },
		{ X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH },
		{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH },
		{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH },
		{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL, X86_REG_INVALID },
		{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL, X86_REG_INVALID },
		{ X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL, X86_REG_INVALID },
		{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL, X86_REG_INVALID },
		{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B, X86_REG_INVALID },
		{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B, X86_REG_INVALID },
		{ X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B, X86_REG_INVALID },
		{ X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B, X86_REG_INVALID },
		{ X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B, X86_REG_INVALID },
		{ X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B, X86_REG_INVALID },
		{ X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B, X86_REG_INVALID },
		{ X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B, X86_REG_INVALID },
	};

	if (reg == X86_REG_INVALID)
		return -1;
	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++)
		for (size_t j = 0; j < 5; j++)
			if (fam[i][j] == reg)
				return (int)i;
	return -1;
}

/* What a GOT slot at link-time address slot will hold once relocated: the
 * addend of an R_X86_64_RELATIVE, or the value of the defined symbol of an
 * R_X86_64_GLOB_DAT / R_X86_64_64. -ENOENT if no such relocation. The
 * relocation tables are read from the file, bounded by its size. */
static int got_target(const struct pk_elf *e, uint64_t slot, uint64_t *out)
{
	for (size_t s = 0; s < e->nsections; s++) {
		const struct pk_elf_section *sec = &e->sections[s];
		const unsigned char *bytes;
		size_t n, size;

		if (sec->type != SHT_RELA)
			continue;
		bytes = pk_elf_section_bytes(e, sec, &size);
		if (bytes == NULL)
			continue;
		n = size / sizeof(Elf64_Rela);
		if (n > SCAN_MAX_RELOCS)
			n = SCAN_MAX_RELOCS;
		for (size_t i = 0; i < n; i++) {
			Elf64_Rela r;
			uint32_t type, sym;

			memcpy(&r, bytes + i * sizeof(r), sizeof(r));
			if (r.r_offset != slot)
				continue;
			type = (uint32_t)ELF64_R_TYPE(r.r_info);
			sym = (uint32_t)ELF64_R_SYM(r.r_info);
			if (type == R_X86_64_RELATIVE) {
				*out = (uint64_t)r.r_addend;
				return 0;
			}
			if ((type == R_X86_64_GLOB_DAT || type == R_X86_64_64) && sym != 0 &&
			    sym < e->dynsym.count && e->dynsym.syms[sym].st_shndx != SHN_UNDEF) {
				*out = e->dynsym.syms[sym].st_value + (uint64_t)r.r_addend;
				return 0;
			}
			return -ENOENT;
		}
	}
	return -ENOENT;
}

static void set_other(struct regval *regs, unsigned reg)
{
	int r = gpr(reg);

	if (r >= 0)
		regs[r].cls = PK_CODE_OTHER;
}

static void clobber_call(struct regval *regs)
{
	static const unsigned caller_saved[] = { X86_REG_RAX, X86_REG_RCX, X86_REG_RDX, X86_REG_RSI, X86_REG_RDI,
						 X86_REG_R8,  X86_REG_R9,  X86_REG_R10, X86_REG_R11 };

	for (size_t i = 0; i < sizeof(caller_saved) / sizeof(caller_saved[0]); i++)
		set_other(regs, caller_saved[i]);
}

/* Where two paths meet, a register keeps its class only if both agree. */
static void merge(struct state *into, const struct state *from)
{
	for (int i = 0; i < NGPR; i++)
		if (into->r[i].cls != from->r[i].cls ||
		    (into->r[i].cls == PK_CODE_ADDR && into->r[i].addr != from->r[i].addr))
			into->r[i].cls = PK_CODE_OTHER;
}

/* Remember the registers for a forward branch to target (merging with
 * other branches there); with no room left the target is simply not
 * known, and its code is decoded with nothing known. */
static void add_pending(struct pending *p, size_t *np, uint64_t target, const struct state *st)
{
	for (size_t i = 0; i < *np; i++) {
		if (p[i].target == target) {
			merge(&p[i].st, st);
			return;
		}
	}
	if (*np < SCAN_MAX_PENDING) {
		p[*np].target = target;
		p[*np].st = *st;
		(*np)++;
	}
}

/* One instruction: record its memory access, then update the registers. */
struct resolver {
	pk_code_got_fn fn;
	void *ctx;
};

static int resolve_got(const struct pk_elf *e, const struct resolver *r, uint64_t slot, uint64_t *target)
{
	const struct pk_elf_section *got = pk_elf_find_section(e, ".got");

	if (got == NULL || slot < got->addr || slot - got->addr >= got->size)
		return -ENOENT;
	if (r->fn != NULL)
		return r->fn(r->ctx, slot, target);
	return got_target(e, slot, target);
}

static void scan_insn(const struct pk_elf *e, const struct resolver *res, const struct pk_cs *cs, csh handle,
		      const cs_insn *insn, struct regval *regs, struct pk_code_scan *out, bool before_ret)
{
	const cs_x86 *x = &insn->detail->x86;
	const cs_x86_op *mem = NULL, *reg = NULL, *imm = NULL;
	uint64_t end = insn->address + insn->size;
	cs_regs rd, wr;
	uint8_t nrd = 0, nwr = 0;
	int rr;

	for (uint8_t i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type == X86_OP_MEM && mem == NULL)
			mem = op;
		else if (op->type == X86_OP_REG && reg == NULL)
			reg = op;
		else if (op->type == X86_OP_IMM && imm == NULL)
			imm = op;
	}

	rr = reg != NULL ? gpr(reg->reg) : -1;
	switch (insn->id) {
	case X86_INS_NOP:
	case X86_INS_ENDBR64:
		return;
	case X86_INS_CALL:
		if (before_ret)
			out->call_before_ret = true;
		clobber_call(regs);
		return;
	case X86_INS_LEA:
		if (mem != NULL && reg != NULL && rr >= 0) {
			struct regval v = { PK_CODE_OTHER, 0 };
			unsigned base = mem->mem.base;
			int rb = gpr(base);

			if (mem->mem.index == X86_REG_INVALID && mem->mem.segment == X86_REG_INVALID) {
				if (base == X86_REG_RIP) {
					v.cls = PK_CODE_ADDR;
					v.addr = end + (uint64_t)mem->mem.disp;
				} else if (rb >= 0 && regs[rb].cls == PK_CODE_ADDR) {
					v.cls = PK_CODE_ADDR;
					v.addr = regs[rb].addr + (uint64_t)mem->mem.disp;
				}
			}
			regs[rr] = v;
		}
		return;
	default:
		break;
	}

	/* A register-to-register move of a whole 64-bit register keeps what it
	 * holds (the prologue's "mov %rdi,%rbx"). */
	if (insn->id == X86_INS_MOV && mem == NULL && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
	    x->operands[1].type == X86_OP_REG && x->operands[0].size == 8 && x->operands[1].size == 8) {
		int dst = gpr(x->operands[0].access & CS_AC_WRITE ? x->operands[0].reg : x->operands[1].reg);
		int src = gpr(x->operands[0].access & CS_AC_WRITE ? x->operands[1].reg : x->operands[0].reg);

		if (dst >= 0 && src >= 0) {
			regs[dst] = regs[src];
			return;
		}
	}

	if (mem != NULL && mem->mem.segment == X86_REG_INVALID) {
		struct pk_code_access a;
		unsigned base = mem->mem.base;
		int rb = gpr(base);
		bool rip = base == X86_REG_RIP;

		memset(&a, 0, sizeof(a));
		a.insn = insn->address;
		a.size = mem->size;
		a.disp = mem->mem.disp;
		a.lock = x->prefix[0] == X86_PREFIX_LOCK;
		a.before_ret = before_ret;
		if (rip) {
			a.base = PK_CODE_ADDR;
			a.addr = end + (uint64_t)mem->mem.disp;
		} else if (mem->mem.index == X86_REG_INVALID && rb >= 0) {
			const struct regval *b = &regs[rb];

			a.base = b->cls;
			if (b->cls == PK_CODE_ADDR)
				a.addr = b->addr + (uint64_t)mem->mem.disp;
		}
		if (reg != NULL && rr >= 0 && reg->size == 8)
			a.src = regs[rr].cls;
		if (imm != NULL) {
			a.has_imm = true;
			a.imm = imm->imm;
		}
		if (insn->id == X86_INS_CMP || insn->id == X86_INS_TEST)
			a.kind = PK_CODE_CMP;
		else if (insn->id == X86_INS_XCHG)
			a.kind = PK_CODE_XCHG;
		else if ((mem->access & CS_AC_WRITE) && (mem->access & CS_AC_READ))
			a.kind = PK_CODE_RMW;
		else if (mem->access & CS_AC_WRITE)
			a.kind = PK_CODE_STORE;
		else
			a.kind = PK_CODE_LOAD;

		/* "mov GOT(%rip),%reg": the register now holds the address the
		 * slot is relocated to; the GOT itself is no access of interest. */
		if (rip && a.kind == PK_CODE_LOAD && insn->id == X86_INS_MOV && reg != NULL && reg->size == 8 &&
		    rr >= 0) {
			uint64_t target;

			if (resolve_got(e, res, a.addr, &target) == 0) {
				regs[rr].cls = PK_CODE_ADDR;
				regs[rr].addr = target;
				return;
			}
		}
		if (out->n < PK_CODE_MAX_ACCESS) {
			out->acc[out->n++] = a;
			if (before_ret)
				out->n_before_ret++;
		} else {
			out->truncated = true;
		}
	}

	/* Whatever else the instruction writes now holds something unknown. */
	if (cs->regs_access(handle, insn, rd, &nrd, wr, &nwr) == CS_ERR_OK) {
		for (uint8_t i = 0; i < nwr; i++)
			set_other(regs, wr[i]);
	} else {
		for (uint8_t i = 0; i < x->op_count; i++)
			if (x->operands[i].type == X86_OP_REG && (x->operands[i].access & CS_AC_WRITE))
				set_other(regs, x->operands[i].reg);
	}
}

int pk_elf_code_scan(const struct pk_elf *e, uint64_t func, uint64_t size, pk_code_got_fn got, void *got_ctx,
		     struct pk_code_scan *out)
{
	const struct resolver res = { got, got_ctx };
	unsigned char code[SCAN_MAX_BYTES];
	struct pending pend[SCAN_MAX_PENDING];
	struct state st;
	const uint8_t *p = code;
	size_t len = 0, want, npend = 0;
	uint64_t addr = func;
	bool before_ret = true, dead = false;
	const struct pk_cs *cs;
	cs_insn *insn;
	csh handle;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (e->machine != EM_X86_64)
		return -ENOTSUP;
	want = size == 0 ? SCAN_DEFAULT_BYTES : (size > SCAN_MAX_BYTES ? SCAN_MAX_BYTES : (size_t)size);
	while (len < want) {
		ssize_t nread = pk_elf_read_partial(e, func + len, code + len, want - len);

		if (nread <= 0)
			break;
		len += (size_t)nread;
	}
	if (len == 0)
		return -EFAULT;
	ret = pk_cs_get(&cs);
	if (ret < 0)
		return ret; /* -ELIBACC: no capstone, said by pk_cs_get */
	if (cs->open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
		return -ENOMEM;
	if (cs->option(handle, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
		ret = -ENOTSUP;
		goto out_close;
	}
	insn = cs->malloc(handle);
	if (insn == NULL) {
		ret = -ENOMEM;
		goto out_close;
	}
	memset(&st, 0, sizeof(st));
	st.r[GPR_RDI].cls = PK_CODE_ARG0; /* the System V argument registers */
	st.r[GPR_RSI].cls = PK_CODE_ARG1;

	while (len > 0) {
		const cs_x86 *x;

		if (!cs->disasm_iter(handle, &p, &len, &addr, insn)) {
			/* endbr64, for a capstone that does not know it. */
			if (len >= 4 && memcmp(p, "\xf3\x0f\x1e\xfa", 4) == 0) {
				p += 4;
				len -= 4;
				addr += 4;
				continue;
			}
			break;
		}
		/* Padding after a ret or jmp belongs to no path. */
		if (dead && (insn->id == X86_INS_NOP || insn->id == X86_INS_INT3))
			continue;
		/* Code after a ret or jmp is reached by branches: forward ones
		 * carried their registers here. Without any, it is a loop body
		 * placed after its entry jump (or cold code): the registers of
		 * the straight path are the best guess, and patterns must be
		 * unique to count. */
		for (size_t i = 0; i < npend; i++) {
			if (pend[i].target != insn->address)
				continue;
			if (dead)
				st = pend[i].st;
			else
				merge(&st, &pend[i].st);
			pend[i] = pend[--npend];
			break;
		}
		dead = false;
		x = &insn->detail->x86;
		if (cs->insn_group(handle, insn, CS_GRP_JUMP) && x->op_count == 1 && x->operands[0].type == X86_OP_IMM &&
		    (uint64_t)x->operands[0].imm > insn->address && (uint64_t)x->operands[0].imm < func + want)
			add_pending(pend, &npend, (uint64_t)x->operands[0].imm, &st);
		scan_insn(e, &res, cs, handle, insn, st.r, out, before_ret);
		if (insn->id == X86_INS_RET || insn->id == X86_INS_JMP || insn->id == X86_INS_UD2 ||
		    insn->id == X86_INS_HLT) {
			before_ret = false;
			dead = true;
		}
	}
	cs->free(insn, 1);
out_close:
	cs->close(&handle);
	return ret;
}
