/* SPDX-License-Identifier: MIT */
/* A real CPython: borrow the main thread (asleep in time.sleep) to call
 *     g = PyGILState_Ensure(); PyThreadState_SetAsyncExc(worker, SystemExit);
 *     PyGILState_Release(g);
 * then check the worker's finally ran, the main thread's sleep went on
 * unharmed (full length) and the process exits normally.
 *
 *   test_inject_python [PYTHON]
 * PYTHON defaults to $PK_TEST_PYTHON, then ~/.pyenv/versions/3.12.1/bin/python3.12
 * (a shared-libpython build); exit 77 when absent. Symbols come from the
 * target's own files (maps + ELF, symbols/), never from pykill's libc. */
#include "harness.h"

#include "pk_attach.h"
#include "pk_log.h"
#include "pk_symbols.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PY_TARGET_SCRIPT
#define PY_TARGET_SCRIPT "py_target.py"
#endif

static int failures;

/* An object mapped in pid whose file name starts with prefix: opened with
 * its load bias. */
static int open_object(pid_t pid, const struct pk_maps *maps, const char *prefix, struct pk_elf **elf,
		       uint64_t *bias)
{
	size_t i, pl = strlen(prefix);

	for (i = 0; i < maps->n; i++) {
		const struct pk_map *m = &maps->v[i];
		const char *b = strrchr(m->path, '/');
		int fd, ret;

		if (b == NULL || m->offset != 0 || strncmp(b + 1, prefix, pl) != 0)
			continue;
		ret = pk_map_open(pid, m, &fd);
		if (ret < 0)
			return ret;
		ret = pk_elf_open(fd, m->path, elf);
		close(fd);
		if (ret < 0)
			return ret;
		ret = pk_elf_load_bias(*elf, m->start, m->offset, bias);
		if (ret < 0) {
			pk_elf_close(*elf);
			return ret;
		}
		return 0;
	}
	return -ENOENT;
}

static int symbol(struct pk_elf *elf, uint64_t bias, const char *name, uint64_t *addr)
{
	uint64_t v, sz;
	int ret = pk_elf_symbol(elf, name, &v, &sz);

	if (ret < 0) {
		printf("symbol %s not found in %s\n", name, pk_elf_path(elf));
		return ret;
	}
	*addr = v + bias;
	return 0;
}

int main(int argc, char **argv)
{
	char python[PATH_MAX];
	char *pargv[] = { python, PY_TARGET_SCRIPT, "@FD", "20", NULL };
	const char *env = getenv("PK_TEST_PYTHON"), *home = getenv("HOME");
	struct pk_elf *libpy = NULL, *libc = NULL;
	uint64_t bias_py = 0, bias_c = 0, fn_ensure, fn_call, fn_release, fn_errno, exc_var, exc = 0;
	uint64_t worker_ident;
	struct pk_rcall_result r;
	struct pk_maps maps;
	struct pk_mem *mem;
	struct child t;
	char line[2048], why[256];
	pid_t main_tid;
	bool finally_ran = false, exited = false;
	int ret, st, sleeps_after = 0;
	double injected_sleep = -1;

	if (argc > 1)
		snprintf(python, sizeof(python), "%s", argv[1]);
	else if (env != NULL)
		snprintf(python, sizeof(python), "%s", env);
	else
		snprintf(python, sizeof(python), "%s/.pyenv/versions/3.12.1/bin/python3.12", home ? home : "/root");
	if (access(python, X_OK) != 0) {
		printf("skip: %s not found\n", python);
		return SKIP_CODE;
	}
	if (child_start(&t, pargv) != 0 || child_line(&t, line, sizeof(line), 10000) != 0 ||
	    strncmp(line, "READY ", 6) != 0) {
		printf("FAIL: %s did not start\n", python);
		child_stop(&t);
		return 1;
	}
	printf("%s\n", line);
	main_tid = (pid_t)kv_u64(line, "main_tid");
	worker_ident = kv_u64(line, "worker_ident");

	/* Resolve in the target's own objects. */
	ret = pk_proc_maps(t.pid, &maps);
	CHECK(ret == 0, "maps: %s", pk_error_message());
	if (ret != 0)
		goto out;
	if (open_object(t.pid, &maps, "libpython", &libpy, &bias_py) != 0 &&
	    open_object(t.pid, &maps, "python", &libpy, &bias_py) != 0) {
		printf("FAIL: no libpython/python mapping (%s)\n", pk_error_message());
		failures++;
		goto out_maps;
	}
	if (open_object(t.pid, &maps, "libc.so", &libc, &bias_c) != 0) {
		printf("FAIL: no libc mapping (%s)\n", pk_error_message());
		failures++;
		goto out_maps;
	}
	if (symbol(libpy, bias_py, "PyGILState_Ensure", &fn_ensure) < 0 ||
	    symbol(libpy, bias_py, "PyThreadState_SetAsyncExc", &fn_call) < 0 ||
	    symbol(libpy, bias_py, "PyGILState_Release", &fn_release) < 0 ||
	    symbol(libpy, bias_py, "PyExc_SystemExit", &exc_var) < 0 ||
	    symbol(libc, bias_c, "__errno_location", &fn_errno) < 0) {
		failures++;
		goto out_maps;
	}
	/* PyExc_SystemExit is a pointer variable: the class is its value. */
	if (pk_mem_open_pid(t.pid, &mem) == 0) {
		ret = pk_mem_read(mem, exc_var, &exc, sizeof(exc));
		pk_mem_close(mem);
		CHECK(ret == 0 && exc != 0, "read PyExc_SystemExit");
	}
	printf("%s: Ensure=%#" PRIx64 " SetAsyncExc=%#" PRIx64 " Release=%#" PRIx64 " SystemExit=%#" PRIx64
	       " __errno_location=%#" PRIx64 "\n",
	       pk_elf_path(libpy), fn_ensure, fn_call, fn_release, exc, fn_errno);

	ret = wait_injectable(t.pid, main_tid, 5000, why, sizeof(why));
	CHECK(ret == 0, "main thread not injectable: %s", why);
	if (ret == 0) {
		struct pk_rcall_spec spec = {
			.fn_ensure = fn_ensure,
			.fn_call = fn_call,
			.fn_release = fn_release,
			.fn_errno = fn_errno,
			.call_arg0 = worker_ident,
			.call_arg1 = exc,
			.timeout_ms = 5000,
			.is_syscall_before = pk_code_is_syscall_before,
		};

		pk_error_clear();
		ret = pk_rcall_run(t.pid, main_tid, &spec, &r);
		print_result("main", &r);
		CHECK(ret == 0 && r.completed, "pk_rcall_run: %d %s", ret, pk_error_message());
		CHECK(r.call_ret == 1, "PyThreadState_SetAsyncExc returned %" PRId64 " (1 = one thread)", r.call_ret);
		CHECK(r.ensure_ret == 1, "PyGILState_Ensure returned %" PRId64 " (PyGILState_UNLOCKED = 1)",
		      r.ensure_ret);
		if (ret == 0)
			CHECK(verify_cave(t.pid, r.cave, false) == 0, "cave");
	}

	/* Worker: finally runs, thread ends. Main: the sleep it was borrowed
	 * in lasts its full second, the loop sees the worker gone, exits 0. */
	while (!exited && child_line(&t, line, sizeof(line), 5000) == 0) {
		printf("%s\n", line);
		if (strncmp(line, "FINALLY ", 8) == 0) {
			finally_ran = true;
		} else if (strncmp(line, "SLEEP ", 6) == 0) {
			char v[32];

			if (sleeps_after++ == 0 && kv(line, "elapsed", v, sizeof(v)))
				injected_sleep = strtod(v, NULL);
		} else if (strcmp(line, "EXIT") == 0) {
			exited = true;
		}
	}
	CHECK(finally_ran, "the worker's finally block did not run");
	CHECK(injected_sleep >= 1.0 && injected_sleep < 1.5, "the borrowed sleep lasted %.4f s", injected_sleep);
	if (injected_sleep > 1.05)
		printf("warning: the borrowed sleep woke %.1f ms late (machine load?)\n", (injected_sleep - 1.0) * 1e3);
	CHECK(exited, "the main thread did not finish");
	waitpid(t.pid, &st, 0);
	t.pid = 0;
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python exit status %#x", st);
out_maps:
	if (libpy != NULL)
		pk_elf_close(libpy);
	if (libc != NULL)
		pk_elf_close(libc);
	pk_maps_free(&maps);
out:
	child_stop(&t);
	printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
