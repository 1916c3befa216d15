/* SPDX-License-Identifier: MIT */
/* symbols: code inspection with capstone (bound on first use, capstone.c).
 * The architecture comes from the object's e_machine at run time, so one
 * pykill binary can reason about the code of whichever machine the file was
 * built for. */
#include "symbols-priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pk_log.h"

/* Longest instruction of any supported machine (x86: 15 bytes). */
#define MAX_INSN_BYTES 15
#define MAX_CODE_BYTES (16 * 1024)

/* -ENOTSUP for a machine pykill does not decode (told before capstone is
 * loaded), -ELIBACC when capstone cannot be loaded (recorded), -ENOMEM. */
static int cs_open_machine(uint16_t machine, bool detail, csh *handle, const struct pk_cs **api)
{
	const struct pk_cs *cs;
	cs_arch arch;
	cs_mode mode;
	cs_err err;
	int rc;

	switch (machine) {
	case EM_X86_64:
		arch = CS_ARCH_X86;
		mode = CS_MODE_64;
		break;
	case EM_AARCH64:
		arch = CS_ARCH_ARM64;
		mode = CS_MODE_ARM;
		break;
	default:
		return -ENOTSUP;
	}
	rc = pk_cs_get(&cs);
	if (rc < 0)
		return rc;
	err = cs->open(arch, mode, handle);
	if (err != CS_ERR_OK)
		return err == CS_ERR_MEM ? -ENOMEM : -ENOTSUP;
	if (machine == EM_X86_64)
		cs->option(*handle, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT); /* as objdump and gdb print it */
	if (detail && cs->option(*handle, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
		cs->close(handle);
		return -ENOTSUP;
	}
	*api = cs;
	return 0;
}

static bool x86_ends_flow(const cs_insn *insn)
{
	switch (insn->id) {
	case X86_INS_RET:
	case X86_INS_RETF:
	case X86_INS_RETFQ:
	case X86_INS_JMP:
	case X86_INS_LJMP:
	case X86_INS_UD2:
	case X86_INS_HLT:
	case X86_INS_INT3:
		return true;
	default:
		return false;
	}
}

/* RIP-relative memory operands: the displacement counts from the end of the
 * instruction. */
static size_t x86_targets(const cs_insn *insn, uint64_t *targets, size_t n, size_t max)
{
	const cs_x86 *x86 = &insn->detail->x86;
	uint8_t i;

	for (i = 0; i < x86->op_count && n < max; i++) {
		const cs_x86_op *op = &x86->operands[i];

		if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP)
			targets[n++] = insn->address + insn->size + (uint64_t)op->mem.disp;
	}
	return n;
}

struct arm64_page {
	unsigned int reg;
	uint64_t page;
};

#define ARM64_PAGES 8

static bool arm64_ends_flow(const cs_insn *insn)
{
	const cs_arm64 *a = &insn->detail->arm64;

	switch (insn->id) {
	case ARM64_INS_RET:
	case ARM64_INS_BR:
		return true;
	case ARM64_INS_B:
		return a->cc == ARM64_CC_INVALID || a->cc == ARM64_CC_AL;
	default:
		return false;
	}
}

static struct arm64_page *arm64_page_of(struct arm64_page *pages, unsigned int reg)
{
	size_t i;

	for (i = 0; i < ARM64_PAGES; i++)
		if (pages[i].reg == reg && reg != ARM64_REG_INVALID)
			return &pages[i];
	return NULL;
}

/* ADRP materialises a 4 KiB page; the following ADD or load/store adds the
 * low 12 bits. Track the pages per register and resolve the pairs. LDR
 * (literal) is PC-relative on its own; capstone gives its absolute target. */
static size_t arm64_targets(const cs_insn *insn, struct arm64_page *pages, uint64_t *targets, size_t n,
			    size_t max)
{
	const cs_arm64 *a = &insn->detail->arm64;
	struct arm64_page *pg;
	uint8_t i;

	if (insn->id == ARM64_INS_ADRP && a->op_count == 2 && a->operands[0].type == ARM64_OP_REG &&
	    a->operands[1].type == ARM64_OP_IMM) {
		pg = arm64_page_of(pages, a->operands[0].reg);
		if (pg == NULL) {
			pg = arm64_page_of(pages, ARM64_REG_INVALID);
			for (i = 0; pg == NULL && i < ARM64_PAGES; i++)
				if (pages[i].reg == ARM64_REG_INVALID)
					pg = &pages[i];
			if (pg == NULL)
				pg = &pages[0];
		}
		pg->reg = a->operands[0].reg;
		pg->page = (uint64_t)a->operands[1].imm;
		return n;
	}

	if (insn->id == ARM64_INS_ADD && a->op_count == 3 && a->operands[1].type == ARM64_OP_REG &&
	    a->operands[2].type == ARM64_OP_IMM && n < max) {
		pg = arm64_page_of(pages, a->operands[1].reg);
		if (pg != NULL) {
			uint64_t imm = (uint64_t)a->operands[2].imm;

			if (a->operands[2].shift.type == ARM64_SFT_LSL)
				imm <<= a->operands[2].shift.value;
			targets[n++] = pg->page + imm;
		}
	} else if (insn->id == ARM64_INS_LDR && a->op_count == 2 && a->operands[1].type == ARM64_OP_IMM && n < max) {
		targets[n++] = (uint64_t)a->operands[1].imm;
	} else {
		for (i = 0; i < a->op_count && n < max; i++) {
			const cs_arm64_op *op = &a->operands[i];

			if (op->type != ARM64_OP_MEM || op->mem.index != ARM64_REG_INVALID)
				continue;
			pg = arm64_page_of(pages, op->mem.base);
			if (pg != NULL)
				targets[n++] = pg->page + (uint64_t)(int64_t)op->mem.disp;
		}
	}

	/* The first operand of anything but a store is its destination: the
	 * page it held is gone. */
	switch (insn->id) {
	case ARM64_INS_STR:
	case ARM64_INS_STRB:
	case ARM64_INS_STRH:
	case ARM64_INS_STUR:
	case ARM64_INS_STP:
	case ARM64_INS_CMP:
	case ARM64_INS_CMN:
	case ARM64_INS_TST:
		break;
	default:
		if (a->op_count > 0 && a->operands[0].type == ARM64_OP_REG) {
			pg = arm64_page_of(pages, a->operands[0].reg);
			if (pg != NULL)
				pg->reg = ARM64_REG_INVALID;
		}
	}
	return n;
}

int pk_elf_rip_targets(const struct pk_elf *e, uint64_t func, size_t max_insns, uint64_t *targets, size_t max_targets)
{
	unsigned char code[MAX_CODE_BYTES];
	struct arm64_page pages[ARM64_PAGES];
	const uint8_t *p = code;
	size_t len = 0, remaining, ninsns = 0, n = 0;
	uint64_t addr = func;
	const struct pk_cs *cs;
	cs_insn *insn;
	csh handle;
	int ret;

	if (max_insns == 0 || max_targets == 0)
		return 0;
	/* Read what the file has, up to the longest the instructions can be;
	 * the function may end right at the end of its segment. */
	remaining = max_insns > MAX_CODE_BYTES / MAX_INSN_BYTES ? MAX_CODE_BYTES : max_insns * MAX_INSN_BYTES;
	while (len < remaining) {
		ssize_t got = pk_elf_read_partial(e, func + len, code + len, remaining - len);

		if (got <= 0)
			break;
		len += (size_t)got;
	}
	if (len == 0) {
		pk_error("disassemble 0x%" PRIx64 " in %s: not in the file image of any PT_LOAD", func, e->path);
		return -EFAULT;
	}

	ret = cs_open_machine(e->machine, true, &handle, &cs);
	if (ret < 0) {
		if (ret != -ELIBACC)
			pk_error("disassemble %s: %s for machine %u", e->path,
				 ret == -ENOTSUP ? "not supported" : "out of memory", e->machine);
		return ret;
	}
	insn = cs->malloc(handle);
	if (insn == NULL) {
		pk_error("disassemble %s: out of memory", e->path);
		ret = -ENOMEM;
		goto out_close;
	}
	memset(pages, 0, sizeof(pages)); /* ARM64_REG_INVALID is 0 */

	while (ninsns < max_insns && n < max_targets && cs->disasm_iter(handle, &p, &len, &addr, insn)) {
		bool end;

		ninsns++;
		if (e->machine == EM_X86_64) {
			n = x86_targets(insn, targets, n, max_targets);
			end = x86_ends_flow(insn);
		} else {
			n = arm64_targets(insn, pages, targets, n, max_targets);
			end = arm64_ends_flow(insn);
		}
		if (end)
			break;
	}
	ret = (int)n;

	cs->free(insn, 1);
out_close:
	cs->close(&handle);
	return ret;
}

bool pk_code_is_syscall_before(uint16_t machine, const uint8_t *bytes_before, size_t n, uint64_t end)
{
	const uint8_t *p;
	size_t len, count;
	uint64_t addr;
	const struct pk_cs *cs;
	cs_insn *insn = NULL;
	bool ok = false;
	csh handle;

	switch (machine) {
	case EM_X86_64:
		len = 2; /* 0f 05 */
		break;
	case EM_AARCH64:
		len = 4;
		break;
	default:
		return false;
	}
	if (bytes_before == NULL || n < len || end < len)
		return false;
	if (cs_open_machine(machine, true, &handle, &cs) < 0)
		return false;
	p = bytes_before + n - len;
	addr = end - len;
	/* Exactly one instruction of exactly these bytes. */
	count = cs->disasm(handle, p, len, addr, 0, &insn);
	if (count == 1 && insn[0].size == len) {
		if (machine == EM_X86_64)
			ok = insn[0].id == X86_INS_SYSCALL;
		else
			ok = insn[0].id == ARM64_INS_SVC && insn[0].detail->arm64.op_count == 1 &&
			     insn[0].detail->arm64.operands[0].type == ARM64_OP_IMM &&
			     insn[0].detail->arm64.operands[0].imm == 0;
	}
	if (count > 0)
		cs->free(insn, count);
	cs->close(&handle);
	return ok;
}

/* Append one whole line, or nothing: the text never ends mid-line. */
static int append_line(char *out, size_t cap, size_t *used, const char *line)
{
	size_t n = strlen(line);

	if (n >= cap - *used)
		return -ENOSPC;
	memcpy(out + *used, line, n + 1);
	*used += n;
	return 0;
}

int pk_code_disasm(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr, char *out, size_t cap)
{
	const uint8_t *p = code;
	size_t used = 0;
	const struct pk_cs *cs;
	cs_insn *insn;
	csh handle;
	int ret;

	if (out == NULL || cap == 0)
		return -EINVAL;
	out[0] = '\0';
	ret = cs_open_machine(machine, false, &handle, &cs);
	if (ret < 0) {
		if (ret != -ELIBACC)
			pk_error("disassemble code at 0x%" PRIx64 ": %s for machine %u", addr,
				 ret == -ENOTSUP ? "not supported" : "out of memory", machine);
		return ret;
	}
	insn = cs->malloc(handle);
	if (insn == NULL) {
		pk_error("disassemble code at 0x%" PRIx64 ": out of memory", addr);
		ret = -ENOMEM;
		goto out_close;
	}
	while (len > 0) {
		char line[256];

		if (cs->disasm_iter(handle, &p, &len, &addr, insn)) {
			snprintf(line, sizeof(line), "%#" PRIx64 ": %s%s%s\n", insn->address, insn->mnemonic,
				 insn->op_str[0] != '\0' ? " " : "", insn->op_str);
		} else {
			/* Like objdump: show what does not decode and resynchronise
			 * after it (one byte, or a whole word on fixed-width
			 * machines). */
			size_t skip = machine == EM_AARCH64 ? (len < 4 ? len : 4) : 1;
			size_t i, w;

			w = (size_t)snprintf(line, sizeof(line), "%#" PRIx64 ": (bad)", addr);
			for (i = 0; i < skip; i++)
				w += (size_t)snprintf(line + w, sizeof(line) - w, " %02x", p[i]);
			snprintf(line + w, sizeof(line) - w, "\n");
			p += skip;
			len -= skip;
			addr += skip;
		}
		ret = append_line(out, cap, &used, line);
		if (ret < 0) {
			pk_error("disassemble code at 0x%" PRIx64 ": text does not fit in %zu bytes", addr, cap);
			break;
		}
	}
	cs->free(insn, 1);
out_close:
	cs->close(&handle);
	return ret;
}
