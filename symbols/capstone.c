/* SPDX-License-Identifier: MIT */
/* symbols: capstone, bound on first use.
 *
 * Debian's libcapstone.so.4 holds every architecture capstone knows: linked
 * as a NEEDED library, the dynamic loader applies its ~78,000 relocations
 * and faults in ~390 pages on every exec (1.2 ms of a 2 ms process start on
 * the project machine), also for `--version`, `--help` or a usage error,
 * which never decode an instruction. So the dynamic build binds it with
 * dlopen the first time code is inspected (the layout check of every
 * pk_py_open, raise's call path), and a host without it learns why at that
 * point instead of failing to start. The PYKILL_STATIC build
 * (PK_CAPSTONE_STATIC) links the archive in and calls it directly: its point
 * is a binary that needs no library on the host.
 *
 * Only the soname of the API this file was compiled against is loaded:
 * capstone renumbers its instruction and register ids between major
 * versions, so another major's library would decode into wrong ids. */
#include "symbols-priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "pk_log.h"

#define PK_CS_STR2(x) #x
#define PK_CS_STR(x) PK_CS_STR2(x)
#define PK_CS_SONAME "libcapstone.so." PK_CS_STR(CS_API_MAJOR)

static struct pk_cs cs_api;
static int cs_rc = -ELIBACC;
static char cs_why[256];
static pthread_once_t cs_once = PTHREAD_ONCE_INIT;

#ifdef PK_CAPSTONE_STATIC

static void cs_bind(void)
{
	cs_api.open = cs_open;
	cs_api.close = cs_close;
	cs_api.option = cs_option;
	cs_api.malloc = cs_malloc;
	cs_api.free = cs_free;
	cs_api.disasm = cs_disasm;
	cs_api.disasm_iter = cs_disasm_iter;
	cs_api.regs_access = cs_regs_access;
	cs_api.insn_group = cs_insn_group;
	cs_rc = 0;
}

#else

#include <dlfcn.h>
#include <string.h>

/* dlsym returns void *; POSIX guarantees it converts to a function pointer. */
#define PK_CS_SYM(field, name)                                                                                   \
	do {                                                                                                     \
		void *p_ = dlsym(h, name);                                                                       \
		if (p_ == NULL) {                                                                                \
			missing = name;                                                                          \
			goto fail;                                                                               \
		}                                                                                                \
		memcpy(&cs_api.field, &p_, sizeof(p_));                                                          \
	} while (0)

static void cs_bind(void)
{
	unsigned int (*version)(int *, int *) = NULL;
	const char *missing = NULL;
	int major = 0, minor = 0;
	void *h, *p;

	/* RTLD_LOCAL: its symbols stay out of the global scope. Never closed:
	 * handles and instructions may live until exit. */
	h = dlopen(PK_CS_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *err = dlerror();

		snprintf(cs_why, sizeof(cs_why), "%s", err != NULL ? err : "not found");
		return;
	}
	p = dlsym(h, "cs_version");
	if (p == NULL) {
		missing = "cs_version";
		goto fail;
	}
	memcpy(&version, &p, sizeof(p));
	version(&major, &minor);
	if (major != CS_API_MAJOR) {
		snprintf(cs_why, sizeof(cs_why), "it is capstone %d.%d, pykill was built for %d.x", major, minor,
			 CS_API_MAJOR);
		return;
	}
	PK_CS_SYM(open, "cs_open");
	PK_CS_SYM(close, "cs_close");
	PK_CS_SYM(option, "cs_option");
	PK_CS_SYM(malloc, "cs_malloc");
	PK_CS_SYM(free, "cs_free");
	PK_CS_SYM(disasm, "cs_disasm");
	PK_CS_SYM(disasm_iter, "cs_disasm_iter");
	PK_CS_SYM(regs_access, "cs_regs_access");
	PK_CS_SYM(insn_group, "cs_insn_group");
	cs_rc = 0;
	return;
fail:
	snprintf(cs_why, sizeof(cs_why), "it has no %s", missing);
}

#endif

int pk_cs_get(const struct pk_cs **out)
{
	pthread_once(&cs_once, cs_bind);
	if (cs_rc < 0) {
		/* Recorded on every call: an earlier message may have been
		 * cleared since. */
		pk_error("load %s (capstone, needed to inspect the interpreter's code; Debian package libcapstone4): %s",
			 PK_CS_SONAME, cs_why);
		*out = NULL;
		return cs_rc;
	}
	*out = &cs_api;
	return 0;
}
