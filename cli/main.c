/* SPDX-License-Identifier: MIT */
/* pykill: inspect and stop threads of a live CPython process. */
#include "cli.h"
#include "pk_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pk_cli pk_cli;

static const char usage_text[] =
	"Usage: pykill [OPTION]... COMMAND [ARG]...\n"
	"Inspect the threads of a running CPython process, and stop one of them.\n"
	"\n"
	"Commands:\n"
	"  ps [PID]...         every Python process this user may read: PID, user,\n"
	"                      Python version, threads running Python (\"4+5\": and 5\n"
	"                      more thread states), command line (stops nothing);\n"
	"                      with PIDs, only those\n"
	"  list PID            show every Python thread, one row per OS thread: TID,\n"
	"                      ident, name, shape (what it is: a pool worker, an event\n"
	"                      loop...), GIL, state, how long it has been blocked,\n"
	"                      system call (what its fds lead to), where it is in the\n"
	"                      Python code (other thread states of the thread: idle)\n"
	"  raise PID THREAD [EXCEPTION]\n"
	"                      make THREAD (a TID, or a Python ident in decimal or\n"
	"                      0x-hex) raise EXCEPTION in the thread state active on\n"
	"                      it, then say whether it was delivered; refused (exit 7)\n"
	"                      where the thread's shape says it would end a pool\n"
	"                      thread for good, a server or the program (default\n"
	"                      EXCEPTION: RuntimeError in a server's worker, where it\n"
	"                      fails only the request; SystemExit elsewhere)\n"
	"  withdraw PID THREAD remove the exception queued for THREAD (by pykill or by\n"
	"                      the program) before it fires; says whether one was\n"
	"                      queued (--json: one JSON object)\n"
	"\n"
	"Options for ps:\n"
	"  --json              one JSON object (schema 1) instead of the table\n"
	"  --pids              only the PIDs, one a line (for shell completion)\n"
	"  --stuck=DURATION    count, per process, the Python threads blocked at least\n"
	"                      DURATION (default 30s), workers waiting for work left\n"
	"                      out (columns STUCK and LONGEST)\n"
	"\n"
	"Options for list:\n"
	"  --json              one JSON object (schema 1) instead of the table\n"
	"  --stacks            print each thread's whole Python stack under it\n"
	"  --freeze=MODE       auto (default): stop only threads that could change what\n"
	"                      is read; all: stop every thread; none: never stop anything\n"
	"  --max-frames=N      read at most N frames per thread (default 2048)\n"
	"  --sort=blocked      longest-blocked threads first (unknown and running last)\n"
	"  --stuck=DURATION    only threads blocked in a system call at least DURATION\n"
	"                      (30s, 5m, 1h, 1h30m, 2d; a number alone is seconds)\n"
	"\n"
	"Options for raise:\n"
	"  --wait=SECONDS      watch the thread this long for delivery (default 2)\n"
	"  --via=PATH          auto (default): write; call where pykill does not know\n"
	"                      the version's layout exactly; write: stop every thread\n"
	"                      and write the thread state (runs nothing in the\n"
	"                      target); call: run PyThreadState_SetAsyncExc in a\n"
	"                      thread borrowed from a pure sleep (refused otherwise)\n"
	"  --withdraw-if-pending  if the exception has not fired within --wait, take\n"
	"                      it back (now or never; exit 8)\n"
	"  --force             raise even where pykill says the exception would end a\n"
	"                      pool thread for good, a server or the program\n"
	"  --interp=N          (also withdraw) the thread's state of interpreter N, for\n"
	"                      a thread that holds one per interpreter when nothing\n"
	"                      tells which one is active\n"
	"  --interrupt         if the thread is blocked in a system call, make the call\n"
	"                      return EINTR (Python 3.15+ then raises at once; older\n"
	"                      versions retry the call)\n"
	"  --json              one JSON object (schema 1) instead of the text\n"
	"\n"
	"General options:\n"
	"  -v, --verbose       say what pykill is doing, step by step, on stderr\n"
	"  -h, --help          show this help and exit\n"
	"  -V, --version       show the version and exit\n"
	"\n"
	"Exit status:\n"
	"  0  success\n"
	"  1  other failure\n"
	"  2  usage error\n"
	"  3  raise: the exception is queued but not delivered yet\n"
	"  4  no such process or thread\n"
	"  5  permission denied (ptrace rights)\n"
	"  6  not a Python process, or an unsupported Python version\n"
	"  7  raise/withdraw refused, nothing done (harmful without --force, unsafe\n"
	"     now, another exception already queued, an exception that needs\n"
	"     arguments, which thread state is active cannot be told)\n"
	"  8  raise: not delivered and no longer queued (withdrawn, or replaced)\n"
	"  130  raise: interrupted (Ctrl-C) before anything was queued: nothing done\n"
	"\n"
	"See pykill(1) for details.\n";

int pk_help(void)
{
	fputs(usage_text, stdout);
	return PK_EXIT_OK;
}

int pk_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("pykill: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'pykill --help' for more information.\n", stderr);
	return PK_EXIT_USAGE;
}

int pk_exit_for_errno(int err)
{
	switch (-err) {
	case ESRCH:
		return PK_EXIT_NO_PROCESS;
	case EPERM:
	case EACCES:
		return PK_EXIT_PERMISSION;
	case ENOEXEC:
	case ENOTSUP:
		return PK_EXIT_NOT_PYTHON;
	case EBUSY:
	case EEXIST:
	case ECANCELED:
		return PK_EXIT_REFUSED;
	case EINTR:
		return PK_EXIT_INTERRUPTED;
	default:
		return PK_EXIT_FAILURE;
	}
}

/* raise and withdraw with --json: a runbook branches on the JSON, so a run
 * that ends before any verdict (a refusal found while reading or writing, a
 * process that is gone) prints one object too, besides stderr's message. */
int pk_fail_json(int err, const char *fallback_what, const char *more_hint, pid_t pid, const char *thread)
{
	char msg[1024], hint[1024];
	struct pk_json j;
	int code;

	if (pk_error_message()[0] != '\0')
		snprintf(msg, sizeof(msg), "%s", pk_error_message());
	else
		snprintf(msg, sizeof(msg), "%s: %s", fallback_what, strerror(-err));
	snprintf(hint, sizeof(hint), "%s%s%s", pk_error_hint_message(),
		 pk_error_hint_message()[0] != '\0' && more_hint != NULL && more_hint[0] != '\0' ? "; " : "",
		 more_hint != NULL ? more_hint : "");
	code = pk_fail_hint(err, fallback_what, more_hint);
	pk_json_init(&j, stdout);
	pk_json_obj_begin(&j, NULL);
	pk_json_int(&j, "schema", 1);
	pk_json_int(&j, "pid", pid);
	pk_json_str(&j, "thread", thread);
	pk_json_str(&j, "verdict", code == PK_EXIT_REFUSED ? "refused" : "failed");
	pk_json_int(&j, "exit", code);
	pk_json_str(&j, "error", msg);
	pk_json_str(&j, "hint", hint[0] != '\0' ? hint : NULL);
	pk_json_obj_end(&j);
	pk_json_end(&j);
	fflush(stdout);
	return code;
}

int pk_fail(int err, const char *fallback_what)
{
	return pk_fail_hint(err, fallback_what, NULL);
}

/* The message and hint quote what the libraries read from the target (thread
 * and exception names, a process's comm): escaped like every other output. */
int pk_fail_hint(int err, const char *fallback_what, const char *more_hint)
{
	const char *msg = pk_error_message();
	const char *hint = pk_error_hint_message();
	char e[PK_ESC_CAP];

	if (msg[0] != '\0')
		fprintf(stderr, "pykill: %s\n", pk_esc(msg, e, sizeof(e)));
	else
		fprintf(stderr, "pykill: %s: %s\n", fallback_what, strerror(-err));
	if (hint[0] != '\0' || (more_hint != NULL && more_hint[0] != '\0'))
		fprintf(stderr, "pykill: hint: %s%s%s\n", pk_esc(hint, e, sizeof(e)),
			hint[0] != '\0' && more_hint != NULL && more_hint[0] != '\0' ? "; " : "",
			more_hint != NULL ? more_hint : "");
	return pk_exit_for_errno(err);
}

int pk_arg_pid(const char *cmd, const char *s, pid_t *out)
{
	char q[PK_ESC_ARG];
	uint64_t v;
	int rc = pk_parse_num(s, 0, 1, PK_PID_MAX, &v);

	if (rc == -ERANGE)
		return pk_usage_error("%s: '%s' is not a process ID: out of range (1 to %u)", cmd,
				      pk_esc(s, q, sizeof(q)), PK_PID_MAX);
	if (rc < 0)
		return pk_usage_error("%s: '%s' is not a process ID (decimal digits only: no sign, no blank)", cmd,
				      pk_esc(s, q, sizeof(q)));
	*out = (pid_t)v;
	return PK_EXIT_OK;
}

int pk_arg_thread(const char *cmd, const char *s, uint64_t *out)
{
	char q[PK_ESC_ARG];
	int rc = pk_parse_num(s, PK_NUM_HEX, 1, UINT64_MAX, out);

	if (rc == -ERANGE)
		return pk_usage_error("%s: '%s' is not a thread ID or a Python thread ident: out of range (1 to "
				      "18446744073709551615, 0xffffffffffffffff)", cmd, pk_esc(s, q, sizeof(q)));
	if (rc < 0)
		return pk_usage_error("%s: '%s' is not a thread ID or a Python thread ident (decimal digits, or 0x and "
				      "hex digits: no sign, no blank)", cmd, pk_esc(s, q, sizeof(q)));
	return PK_EXIT_OK;
}

int pk_arg_interp(const char *cmd, const char *s, int64_t *out)
{
	char q[PK_ESC_ARG];
	uint64_t v;
	int rc = pk_parse_num(s, 0, 0, INT64_MAX, &v);

	if (rc < 0)
		return pk_usage_error("%s: --interp takes an interpreter ID (decimal digits: 0 is the main one), not '%s'%s",
				      cmd, pk_esc(s, q, sizeof(q)), rc == -ERANGE ? ": out of range" : "");
	*out = (int64_t)v;
	return PK_EXIT_OK;
}

static void log_to_stderr(enum pk_log_level level, const char *msg, void *userdata)
{
	static const char *names[] = { "error", "warning", "", "debug" };
	char e[PK_ESC_CAP];

	(void)userdata;
	pk_esc(msg, e, sizeof(e)); /* it may quote the target's names */
	if (level == PK_LOG_INFO)
		fprintf(stderr, "pykill: %s\n", e);
	else
		fprintf(stderr, "pykill: %s: %s\n", names[level], e);
}

void pk_cli_more_verbose(void)
{
	pk_cli.verbose++;
	pk_log_set_handler(log_to_stderr, NULL, pk_cli.verbose > 1 ? PK_LOG_DEBUG : PK_LOG_INFO);
	/* INFO includes WARN: -v shows warnings too. */
}

int main(int argc, char **argv)
{
	int i;

	/* One line per failure by default; warnings come with -v. */
	pk_log_set_handler(log_to_stderr, NULL, PK_LOG_ERROR);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			return pk_help();
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("pykill %s\n", PYKILL_VERSION);
			return PK_EXIT_OK;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			pk_cli_more_verbose();
		} else if (strcmp(a, "-vv") == 0) {
			pk_cli_more_verbose();
			pk_cli_more_verbose();
		} else if (a[0] == '-') {
			char q[PK_ESC_ARG];
			return pk_usage_error("unknown option '%s'", pk_esc(a, q, sizeof(q)));
		} else {
			break;
		}
	}
	if (i >= argc)
		return pk_usage_error("missing command");
	if (strcmp(argv[i], "ps") == 0)
		return pk_cmd_ps(argc - i, argv + i);
	if (strcmp(argv[i], "list") == 0)
		return pk_cmd_list(argc - i, argv + i);
	if (strcmp(argv[i], "raise") == 0)
		return pk_cmd_raise(argc - i, argv + i);
	if (strcmp(argv[i], "withdraw") == 0)
		return pk_cmd_withdraw(argc - i, argv + i);
	if (strcmp(argv[i], "help") == 0)
		return pk_help();
	{
		char q[PK_ESC_ARG];
		return pk_usage_error("unknown command '%s'", pk_esc(argv[i], q, sizeof(q)));
	}
}
