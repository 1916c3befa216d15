/* SPDX-License-Identifier: MIT */
/* Finding the interpreter in a live process, without stopping it and without
 * running any of its binaries: /proc/PID/maps → the ELF object that defines
 * the interpreter's globals → version → memory layout. */
#include "py-priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

bool pk_py_name_has_python(const char *path)
{
	return strcasestr(base_name(path), "python") != NULL;
}

/* "X.Y" from a file name such as libpython3.6m.so.1.0 or python3.12. */
static bool version_from_name(const char *path, int *major, int *minor)
{
	const char *b = base_name(path);
	const char *p = strcasestr(b, "python");

	if (p == NULL)
		return false;
	p += 6;
	if (!isdigit((unsigned char)p[0]) || p[1] != '.' || !isdigit((unsigned char)p[2]))
		return false;
	*major = p[0] - '0';
	*minor = (int)strtol(p + 2, NULL, 10);
	return true;
}

static int sym_rt(struct pk_py *py, const char *name, uint64_t *addr)
{
	uint64_t v, size;
	int rc = pk_elf_symbol(py->elf, name, &v, &size);

	if (rc == 0)
		*addr = v + py->bias;
	return rc;
}

bool pk_py_elf_holds_interpreter(const struct pk_elf *elf)
{
	uint64_t v, s;

	return pk_elf_symbol(elf, "_PyRuntime", &v, &s) == 0 ||
	       pk_elf_section(elf, ".PyRuntime", &v, &s) == 0 ||
	       pk_elf_symbol(elf, "interp_head", &v, &s) == 0 ||
	       pk_elf_symbol(elf, "PyInterpreterState_Head", &v, &s) == 0;
}

int pk_py_map_elf(pid_t pid, const struct pk_map *map, struct pk_elf **out)
{
	int fd, rc;

	*out = NULL;
	rc = pk_map_open(pid, map, &fd);
	if (rc < 0)
		return rc;
	rc = pk_elf_open(fd, map->path, out);
	close(fd);
	return rc;
}

/* -ENOENT: the object does not hold the interpreter. *opened says whether
 * its file could be opened at all. */
static int try_object(struct pk_py *py, const struct pk_map *map, bool *opened)
{
	struct pk_elf *elf = NULL;
	const struct pk_map *first = map;
	uint64_t bias;
	int fd, rc;

	*opened = false;
	/* The lowest mapping of the file gives the load bias. */
	for (size_t i = 0; i < py->maps.n; i++) {
		if (strcmp(py->maps.v[i].path, map->path) == 0) {
			first = &py->maps.v[i];
			break;
		}
	}
	rc = pk_map_open(py->pid, first, &fd);
	if (rc < 0)
		return rc;
	*opened = true;
	rc = pk_elf_open(fd, first->path, &elf);
	close(fd);
	if (rc < 0)
		return rc;
	if (!pk_py_elf_holds_interpreter(elf)) {
		pk_elf_close(elf);
		return -ENOENT;
	}
	rc = pk_elf_load_bias(elf, first->start, first->offset, &bias);
	if (rc < 0) {
		pk_elf_close(elf);
		return rc;
	}
	py->elf = elf;
	py->bias = bias;
	py->path = strdup(first->path);
	return py->path ? 0 : -ENOMEM;
}

/* 0, -EACCES/-EPERM when a file could not be opened for lack of rights,
 * -ENOENT (its message recorded) when a "*python*" file could not be
 * opened otherwise (replaced, deleted, unmapped meanwhile: it may well be
 * the interpreter, and pykill will not guess), else -ENOEXEC. */
static int find_object(struct pk_py *py)
{
	char unopened[512] = "";
	int denied = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < py->maps.n; i++) {
			const struct pk_map *m = &py->maps.v[i];
			bool seen = false, opened;
			int rc;

			if (m->path[0] != '/')
				continue;
			if (pass == 0 && !pk_py_name_has_python(m->path))
				continue;
			if (pass == 1 && !(m->prot & PK_MAP_X))
				continue;
			/* Each file once per pass: pass 0 tries every "*python*" file, pass 1
			 * the files with code that pass 0 did not try. */
			if (pass == 1 && pk_py_name_has_python(m->path))
				continue;
			for (size_t j = 0; j < i && !seen; j++)
				seen = strcmp(py->maps.v[j].path, m->path) == 0 &&
				       (pass == 0 || (py->maps.v[j].prot & PK_MAP_X) != 0);
			if (seen)
				continue;
			pk_error_clear();
			rc = try_object(py, m, &opened);
			if (rc == 0)
				return 0;
			if ((rc == -EACCES || rc == -EPERM) && denied == 0)
				denied = rc;
			else if (pass == 0 && !opened && rc != -ESRCH && unopened[0] == '\0')
				snprintf(unopened, sizeof(unopened), "%s", pk_error_message());
		}
	}
	/* A file we may not open may be the interpreter: that is a permission
	 * problem, not proof that this is not Python. */
	if (denied)
		return denied;
	if (unopened[0] != '\0') {
		pk_error_set("%s", unopened);
		return -ENOENT;
	}
	return -ENOEXEC;
}

static void set_version_hex(struct pk_py *py, uint64_t hex)
{
	static const char *levels[] = { "a", "b", "rc" };
	unsigned major = (hex >> 24) & 0xff, minor = (hex >> 16) & 0xff, micro = (hex >> 8) & 0xff;
	unsigned level = (hex >> 4) & 0xf, serial = hex & 0xf;

	py->hexversion = (uint32_t)hex;
	py->major = (int)major;
	py->minor = (int)minor;
	if (level >= 0xa && level <= 0xc)
		snprintf(py->version, sizeof(py->version), "%u.%u.%u%s%u", major, minor, micro, levels[level - 0xa], serial);
	else
		snprintf(py->version, sizeof(py->version), "%u.%u.%u", major, minor, micro);
}

static bool plausible_hex(uint64_t hex)
{
	unsigned major = (hex >> 24) & 0xff, minor = (hex >> 16) & 0xff;

	return (hex >> 32) == 0 && (major == 2 || major == 3) && minor <= 40;
}

static int detect_version(struct pk_py *py)
{
	uint64_t addr, size, hex = 0;
	char cookie[24];
	int major = 0, minor = 0;

	/* 3.11+: the exported constant. */
	if (pk_elf_symbol(py->elf, "Py_Version", &addr, &size) == 0 &&
	    pk_elf_read(py->elf, addr, &hex, sizeof(hex)) == 0 && plausible_hex(hex & 0xffffffff)) {
		set_version_hex(py, hex & 0xffffffff);
		return 0;
	}
	/* 3.13+: _Py_DebugOffsets opens _PyRuntime, statically initialised in the file. */
	if ((pk_elf_symbol(py->elf, "_PyRuntime", &addr, &size) == 0 ||
	     pk_elf_section(py->elf, ".PyRuntime", &addr, &size) == 0) &&
	    pk_elf_read(py->elf, addr, cookie, sizeof(cookie)) == 0 && memcmp(cookie, "xdebugpy", 8) == 0) {
		memcpy(&hex, cookie + 8, 8);
		if (plausible_hex(hex)) {
			set_version_hex(py, hex);
			return 0;
		}
	}
	/* Older: the version string in read-only data, guided by the file name. */
	version_from_name(py->path, &major, &minor);
	if (pk_elf_find_version_string(py->elf, major, minor, py->version, sizeof(py->version)) == 0) {
		char *end;
		py->major = (int)strtol(py->version, &end, 10);
		py->minor = (*end == '.') ? (int)strtol(end + 1, NULL, 10) : 0;
		return 0;
	}
	if (major != 0) {
		py->major = major;
		py->minor = minor;
		snprintf(py->version, sizeof(py->version), "%d.%d", major, minor);
		return 0;
	}
	pk_error("read the Python version of %s: no Py_Version, no version string, no version in the file name",
		 py->path);
	return -ENOTSUP;
}

/* 2.7 and 3.6 keep the interpreter list and the GIL in static variables. The
 * symbol table has them unless stripped; else the tiny exported accessors
 * that read them are decoded. */
static int find_statics(struct pk_py *py)
{
	uint64_t fn, size, target;

	if (sym_rt(py, "interp_head", &py->interp_head_var) < 0) {
		if (pk_elf_symbol(py->elf, "PyInterpreterState_Head", &fn, &size) < 0 ||
		    pk_elf_rip_targets(py->elf, fn, 8, &target, 1) != 1) {
			pk_error("find the interpreter list in %s: no interp_head symbol and PyInterpreterState_Head "
				 "could not be decoded", py->path);
			return -ENOTSUP;
		}
		py->interp_head_var = target + py->bias;
	}
	sym_rt(py, "_PyThreadState_Current", &py->tstate_current_var);
	if (py->major == 2) {
		if (sym_rt(py, "interpreter_lock", &py->interpreter_lock27_var) < 0 &&
		    pk_elf_symbol(py->elf, "PyEval_ThreadsInitialized", &fn, &size) == 0 &&
		    pk_elf_rip_targets(py->elf, fn, 8, &target, 1) == 1)
			py->interpreter_lock27_var = target + py->bias;
	} else {
		sym_rt(py, "gil_locked", &py->gil36_locked);
		sym_rt(py, "gil_last_holder", &py->gil36_last_holder);
		sym_rt(py, "gil_cond", &py->gil36_cond);
		sym_rt(py, "gil_mutex", &py->gil36_mutex);
		sym_rt(py, "switch_cond", &py->gil36_switch_cond);
		sym_rt(py, "switch_mutex", &py->gil36_switch_mutex);
	}
	return 0;
}

static int find_runtime(struct pk_py *py)
{
	uint64_t addr, size;

	if (sym_rt(py, "_PyRuntime", &py->runtime) == 0)
		return 0;
	if (pk_elf_section(py->elf, ".PyRuntime", &addr, &size) == 0) {
		py->runtime = addr + py->bias;
		return 0;
	}
	pk_error("find _PyRuntime in %s: neither the symbol nor the .PyRuntime section is there", py->path);
	return -ENOTSUP;
}

#define PK_EXEC_SETTLE_NS (2000ull * 1000000)
#define PK_EXEC_GRACE_NS (10ull * 1000000)

/* Has the process ended (not merely its leader: a leader that called
 * pthread_exit, or is being replaced by an exec from another thread, is a
 * zombie while the process lives on)? */
bool pk_py_process_ended(pid_t pid)
{
	struct pk_status st;
	int err = pk_proc_status_quiet(pid, 0, &st);

	if (err == -ESRCH || err == -ENOENT)
		return true;
	if (err != 0 || st.threads > 1)
		return false;
	/* One task left, a zombie, or still running its exit with its address
	 * space already released (the kernel does that before the task turns
	 * zombie; an exec swaps in the new space at once, never none): then
	 * it runs or waits uninterruptibly, where a kernel thread, which never
	 * had a space, sleeps. With more tasks a leader without a space may
	 * just have called pthread_exit. */
	if (pk_status_ended(&st))
		return true;
	return st.kthread != 1 && (st.state == 'R' || st.state == 'D') && pk_mem_space_now(pid) == 0;
}

/* An exec first kills the other threads, then replaces the address space.
 * A failure in between (a thread gone, a leader turned zombie) is the
 * exec's doing: wait until it is done, so it can be told as it is. A
 * briefly running exec'ing thread does not show in /proc as inside execve:
 * the old address space gets a short grace to die even when none is seen. */
static void settle_exec(const struct pk_py *py)
{
	uint64_t t0 = pk_now_ns();
	bool seen = false;

	if (py->mem == NULL)
		return;
	while (pk_mem_same_space(py->mem) == 0 && !pk_py_process_ended(py->pid)) {
		uint64_t waited = pk_now_ns() - t0;

		seen |= pk_proc_exec_in_flight(py->pid);
		if (waited >= (seen ? PK_EXEC_SETTLE_NS : PK_EXEC_GRACE_NS))
			break;
		pk_sleep_ns(1000000);
	}
}

/* A failure while the target exits says little about the target: it
 * exited. Said once, as "no such process". Likewise an exec: whatever was
 * read may come from the new program, and the thread asked for is gone. */
int pk_py_gone_check(const struct pk_py *py, int rc)
{
	bool ended = pk_py_process_ended(py->pid);

	if (rc < 0 || ended) {
		settle_exec(py);
		ended = pk_py_process_ended(py->pid);
	}
	if (!ended && pk_mem_same_space(py->mem) < 0) {
		pk_error_set("inspect process %d: it executed a new program (execve) while pykill was at work; the "
			     "new program was not touched",
			     (int)py->pid);
		return -ESRCH;
	}
	if (rc != -ESRCH && ended) {
		pk_error_set("inspect process %d: it exited while pykill was reading it", (int)py->pid);
		return -ESRCH;
	}
	return rc;
}

/* A GOT slot of the interpreter's object as the dynamic linker filled it in
 * the target: one read, where the file would need a search of its
 * relocations (a megabyte in libpython). */
static int got_from_target(void *ctx, uint64_t slot, uint64_t *target)
{
	struct pk_py *py = ctx;
	uint64_t v;
	int rc = pk_mem_read(py->mem, slot + py->bias, &v, sizeof(v));

	if (rc < 0)
		return rc;
	*target = v - py->bias;
	return 0;
}

/* Hold the table against the binary (cpython/layout.c): adapt what it gives
 * unambiguously, refuse a contradiction, record what was confirmed. */
static int check_layout(struct pk_py *py)
{
	uint64_t runtime = py->runtime != 0 ? py->runtime - py->bias : 0;
	unsigned nver = 0, nad = 0, ndbg = 0;
	uint64_t t0 = pk_now_ns();
	int rc;

	rc = pk_layout_check_elf_got(&py->layout, py->elf, runtime, py->major, py->minor, py->version,
				     got_from_target, py, &py->lcheck);
	if (rc < 0) {
		/* This is the cause, whatever probing recorded before. */
		if (py->lcheck.mismatch[0] != '\0')
			pk_error_set("layout of Python %s in %s does not match pykill's table: %s", py->version,
				     py->path, py->lcheck.mismatch);
		return rc;
	}
	for (int i = 0; i < PK_LF_COUNT; i++) {
		nver += (py->lcheck.verified >> i) & 1;
		nad += (py->lcheck.adapted >> i) & 1;
		ndbg += (py->lcheck.dbgoff >> i) & 1;
	}
	if (nver != 0 || nad != 0)
		snprintf(py->layout_source + strlen(py->layout_source),
			 sizeof(py->layout_source) - strlen(py->layout_source), ", %u checked in the binary%s", nver,
			 nad != 0 ? " (some adapted)" : "");
	pk_log(PK_LOG_INFO, "layout of Python %s: %u fields confirmed by the binary, %u adapted, %u from "
	       "_Py_DebugOffsets (checked in %.3f ms)", py->version, nver, nad, ndbg,
	       (double)(pk_now_ns() - t0) / 1e6);
	if (!pk_py_layout_exact(py)) {
		uint64_t missing = pk_layout_write_fields(&py->layout, py->major, py->minor) &
				   ~(py->lcheck.verified | py->lcheck.dbgoff);
		char names[160] = "";

		for (int i = 0; i < PK_LF_COUNT; i++)
			if ((missing >> i) & 1)
				snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
					 names[0] ? ", " : "", pk_lf_info[i].name);
		pk_log(PK_LOG_INFO, "layout of Python %s is not exact (%s): the write path's %s %s unconfirmed",
		       py->version, py->lcheck.table_exact ? "the binary differs from the table" :
		       "no table for this version", names, strchr(names, ',') ? "are" : "is");
	}
	return 0;
}

bool pk_py_layout_exact(const struct pk_py *py)
{
	return pk_layout_check_exact(&py->layout, py->major, py->minor, &py->lcheck);
}

int pk_py_open(pid_t pid, struct pk_py **out)
{
	struct pk_py *py;
	struct pk_status st;
	const struct pk_layout *layout;
	int rc;

	*out = NULL;
	py = calloc(1, sizeof(*py));
	if (py == NULL)
		return -ENOMEM;
	py->pid = pid;
	py->pthread_tid_offset = -1;

	rc = pk_proc_status(pid, 0, &st);
	if (rc < 0)
		goto fail;
	/* A thread's TID names its process: everything below (the main
	 * thread's flag, the freeze, the one-pykill-per-thread claim) is per
	 * process. */
	if (st.tgid > 0 && st.tgid != pid) {
		pk_log(PK_LOG_INFO, "%d is a thread of process %d: inspecting the process", (int)pid, (int)st.tgid);
		pid = py->pid = st.tgid;
		rc = pk_proc_status(pid, 0, &st);
		if (rc < 0)
			goto fail;
	}
	/* Only a process whose every thread has exited is a zombie: a leader
	 * that called pthread_exit shows state Z while the others run. */
	if (pk_status_ended(&st)) {
		pk_error("inspect process %d: it is a zombie (exited, not yet reaped by its parent)", (int)pid);
		rc = -ESRCH;
		goto fail;
	}
	/* First: everything read from here on is checked against the address
	 * space of this moment (an exec replaces it). */
	rc = pk_mem_open_pid(pid, &py->mem);
	if (rc == 0)
		rc = pk_proc_maps(pid, &py->maps);
	if (rc == -EACCES || rc == -EPERM) {
		pk_error_set("inspect process %d (%s): permission denied", (int)pid, st.name);
		pk_attach_explain_eperm(pid);
		goto fail;
	}
	if (rc < 0)
		goto fail;
	if (py->maps.n == 0) {
		pk_error("inspect process %d (%s): it is a kernel thread (no memory mappings), not a Python process",
			 (int)pid, st.name);
		rc = -ENOEXEC;
		goto fail;
	}
	rc = find_object(py);
	if (rc == -ENOENT)
		goto fail; /* the file that may hold it could not be opened: said so */
	if (rc == -EACCES || rc == -EPERM) {
		pk_error_set("inspect process %d (%s): permission denied opening its mapped files", (int)pid, st.name);
		pk_attach_explain_eperm(pid);
		goto fail;
	}
	if (rc < 0) {
		pk_error_set("inspect process %d (%s): not a Python process (no mapped object defines the "
			     "interpreter's globals)", (int)pid, st.name);
		goto fail;
	}
	rc = detect_version(py);
	if (rc < 0)
		goto fail;
	pk_log(PK_LOG_INFO, "interpreter in %s (bias 0x%llx), Python %s", py->path,
	       (unsigned long long)py->bias, py->version);

	if (py->major == 2 || (py->major == 3 && py->minor < 7))
		rc = find_statics(py);
	else
		rc = find_runtime(py);
	if (rc < 0)
		goto fail;

	layout = pk_layout_find(py->major, py->minor);
	if (py->major == 3 && py->minor >= 13) {
		/* A free-threaded build (PEP 703) has another object header and
		 * no GIL: it needs the table entry generated with Py_GIL_DISABLED.
		 * _Py_DebugOffsets says which build it is; its first fields are at
		 * the same place in both flavours. */
		const struct pk_layout *probe = layout != NULL ? layout : pk_layout_newest(false);
		bool ft = false;

		if (pk_dbgoff_free_threaded(py, probe, &ft) == 0 && ft) {
			py->free_threaded = true;
			if (strlen(py->version) + 1 < sizeof(py->version))
				strcat(py->version, "t");
			/* No fallback to another minor's entry: what _Py_DebugOffsets
			 * leaves out (dicts, stack-reference tags, the GIL struct)
			 * changed between free-threaded releases, and no build of
			 * another one was there to generate it from. */
			layout = pk_layout_find_ft(py->major, py->minor, true);
			if (layout == NULL) {
				const struct pk_layout *n = pk_layout_newest(true);
				pk_error("inspect Python %s in %s: free-threaded %d.%d is not supported yet (no layout table "
					 "for it%s%s)", py->version, py->path, py->major, py->minor,
					 n != NULL ? "; pykill has one for " : "", n != NULL ? n->source : "");
				rc = -ENOTSUP;
				goto fail;
			}
		}
	}
	if (layout != NULL) {
		py->layout = *layout;
		snprintf(py->layout_source, sizeof(py->layout_source), "generated table %d.%d (%s)", py->major,
			 py->minor, layout->source);
	} else if (py->major == 3 && py->minor >= 13 && pk_layout_newest(py->free_threaded) != NULL) {
		/* A newer Python: the debug offsets it publishes must carry the
		 * day. The newest entry of the same flavour: the object header of
		 * the other one is wrong for it. */
		py->layout = *pk_layout_newest(py->free_threaded);
		snprintf(py->layout_source, sizeof(py->layout_source), "generated table %d.%d for %d.%d",
			 py->layout.version >> 8, py->layout.version & 0xff, py->major, py->minor);
	} else {
		pk_error("inspect Python %s in %s: this version is not supported (no layout table)", py->version,
			 py->path);
		rc = -ENOTSUP;
		goto fail;
	}

	py->lcheck.table_exact = layout != NULL;
	if (py->major == 3 && py->minor >= 13) {
		rc = pk_dbgoff_apply(py);
		if (rc == -ENOTSUP)
			goto fail; /* e.g. free-threaded: the table's object layout does not apply */
		if (rc < 0 && layout == NULL) {
			pk_error("inspect Python %s in %s: no layout table and no valid _Py_DebugOffsets%s%s%s", py->version,
				 py->path, py->dbgoff_problem[0] ? " (" : "", py->dbgoff_problem,
				 py->dbgoff_problem[0] ? ")" : "");
			rc = -ENOTSUP;
			goto fail;
		}
		rc = 0;
	}
	rc = check_layout(py);
	if (rc < 0)
		goto fail;

	sym_rt(py, "PyCode_Type", &py->code_type);
	sym_rt(py, py->major == 2 ? "PyString_Type" : "PyUnicode_Type", &py->str_type);
	sym_rt(py, "PyDict_Type", &py->dict_type);
	*out = py;
	return 0;
fail:
	rc = pk_py_gone_check(py, rc);
	pk_py_close(py);
	return rc;
}

void pk_py_close(struct pk_py *py)
{
	if (py == NULL)
		return;
	pk_mem_close(py->mem);
	pk_elf_close(py->elf);
	pk_maps_free(&py->maps);
	free(py->path);
	free(py->desc_words);
	free(py);
}

pid_t pk_py_pid(const struct pk_py *py)
{
	return py->pid;
}

const char *pk_py_version(const struct pk_py *py)
{
	return py->version;
}

uint32_t pk_py_hexversion(const struct pk_py *py)
{
	return py->hexversion ? py->hexversion : (uint32_t)(py->major << 24 | py->minor << 16);
}

const char *pk_py_path(const struct pk_py *py)
{
	return py->path;
}

const char *pk_py_layout_source(const struct pk_py *py)
{
	return py->layout_source;
}
