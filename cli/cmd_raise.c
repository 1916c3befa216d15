/* SPDX-License-Identifier: MIT */
/* pykill raise PID THREAD [EXCEPTION]: stop one thread with an exception. */
#include "cli.h"
#include "pk_log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_JSON = 256, OPT_WAIT, OPT_VIA, OPT_INTERRUPT, OPT_WITHDRAW, OPT_FORCE, OPT_INTERP };

/* SIGINT, SIGTERM, SIGHUP: the first stops the run where it can stop
 * without leaving anything behind (before anything is queued: nothing
 * done; after: the verdict as it is then); the second ends pykill, as the
 * default would have (delivered only once no thread is stopped: the
 * freeze blocks these signals while it holds threads). */
static volatile sig_atomic_t stop_signal;
static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

static void on_stop_signal(int sig)
{
	if (stop_signal != 0) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_signal = sig;
}

static void catch_stop_signals(void)
{
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	/* Reads, waits and ptrace calls go on; only pauses end early. */
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) {
		if (sigaction(stop_signals[i], &sa, &old) == 0 && old.sa_handler == SIG_IGN)
			sigaction(stop_signals[i], &old, NULL); /* ignored by whoever started us (nohup): stays so */
	}
}

static const char *stop_signal_name(int sig)
{
	return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

static const char *via_name(enum pk_raise_via via)
{
	return via == PK_VIA_CALL ? "call" : via == PK_VIA_WRITE ? "write" : "auto";
}

static const char *verdict_name(enum pk_verdict v)
{
	switch (v) {
	case PK_VERDICT_DELIVERED:
		return "delivered";
	case PK_VERDICT_PENDING:
		return "pending";
	case PK_VERDICT_ENDED:
		return "ended";
	case PK_VERDICT_REPLACED:
		return "replaced";
	case PK_VERDICT_WITHDRAWN:
		return "withdrawn";
	case PK_VERDICT_REFUSED:
		return "refused";
	}
	return "?";
}

static int verdict_exit(enum pk_verdict v)
{
	switch (v) {
	case PK_VERDICT_DELIVERED:
	case PK_VERDICT_ENDED:
		return PK_EXIT_OK;
	case PK_VERDICT_PENDING:
		return PK_EXIT_PENDING;
	case PK_VERDICT_REPLACED:
	case PK_VERDICT_WITHDRAWN:
		return PK_EXIT_NOT_DELIVERED;
	case PK_VERDICT_REFUSED:
		return PK_EXIT_REFUSED;
	}
	return PK_EXIT_FAILURE;
}

static const char *harm_name(enum pk_harm h)
{
	return h == PK_HARM_REFUSE ? "refuse" : h == PK_HARM_NOTE ? "note" : "none";
}

/* "gunicorn gthread pool worker", "asyncio event loop, waiting for work". */
static void describe_shape(const struct pk_raise_result *r, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s", pk_shape_label(r->shape), r->shape_idle ? ", waiting for work" : "");
}

/* Before anything was done: what the exception would do, what to raise
 * instead, how to go on anyway. On standard error, as every refusal. The
 * commands it suggests name the same state (--interp when it was given). */
static void print_refusal(pid_t pid, const struct pk_raise_result *r, const struct pk_raise_opts *ro)
{
	const char *sug = pk_shape_suggest(r->shape, r->shape_idle);
	char shape[160], who[PK_ESC_CAP + 80], interp[40] = "";

	describe_shape(r, shape, sizeof(shape));
	pk_format_thread_state(r->tid, r->name, r->interp_id, ro->pick_interp, who, sizeof(who));
	if (ro->pick_interp)
		snprintf(interp, sizeof(interp), "--interp=%lld ", (long long)ro->interp);
	fprintf(stderr, "pykill: raise %s in %s of process %d: refused, nothing done: the thread is %s %s; %s%s "
		"there: %s\n", r->exception, who, (int)pid,
		r->shape == PK_SHAPE_MAIN ? "the" : strchr("aeiou", shape[0]) ? "an" : "a", shape, r->exception,
		r->exception_default ? " (its default)" : "", r->consequence.text);
	if (sug != NULL && strcmp(sug, r->exception) != 0) {
		struct pk_consequence c;
		pk_shape_consequence(r->shape, r->shape_idle, sug, &c);
		fprintf(stderr, "pykill: %s instead: %s (pykill raise %s%d %d %s)\n", sug, c.text, interp, (int)pid,
			(int)r->tid, sug);
	} else if (r->shape_idle) {
		fprintf(stderr, "pykill: no exception fails only a job there: the thread runs none now ('pykill list %d' "
			"shows what each thread runs)\n", (int)pid);
	}
	fprintf(stderr, "pykill: to raise %s there anyway: pykill raise --force %s%d %d %s\n", r->exception, interp,
		(int)pid, (int)r->tid, r->exception);
}

static void print_json(pid_t pid, const struct pk_raise_result *r, bool forced)
{
	const char *exc = r->exception;
	const char *sug = pk_shape_suggest(r->shape, r->shape_idle);
	struct pk_json j;
	char hex[24];

	pk_json_init(&j, stdout);
	pk_json_obj_begin(&j, NULL);
	pk_json_int(&j, "schema", 1);
	pk_json_int(&j, "pid", pid);
	pk_json_int(&j, "tid", r->tid);
	pk_json_int(&j, "ns_tid", r->ns_tid);
	pk_json_uint(&j, "ident", (unsigned long long)r->ident);
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)r->ident);
	pk_json_str(&j, "ident_hex", hex);
	pk_json_int(&j, "interp", r->interp_id);
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)r->tstate);
	pk_json_str(&j, "tstate", hex);
	pk_json_str(&j, "tid_from", pk_tid_from_name(r->tid_from));
	pk_json_bool(&j, "inherited", r->inherited);
	pk_json_str(&j, "name", r->name);
	pk_json_str(&j, "exception", exc);
	pk_json_bool(&j, "exception_default", r->exception_default);
	pk_json_str(&j, "shape", pk_shape_key(r->shape));
	pk_json_bool(&j, "shape_idle", r->shape_idle);
	pk_json_obj_begin(&j, "consequence");
	pk_json_str(&j, "harm", harm_name(r->consequence.harm));
	pk_json_str(&j, "text", r->consequence.text);
	pk_json_obj_end(&j);
	pk_json_bool(&j, "forced", forced && r->consequence.harm == PK_HARM_REFUSE);
	pk_json_str(&j, "suggest", sug != NULL && strcmp(sug, exc) != 0 ? sug : NULL);
	if (r->verdict == PK_VERDICT_REFUSED) {
		pk_json_null(&j, "via");
		pk_json_null(&j, "via_reason");
	} else {
		pk_json_str(&j, "via", via_name(r->via));
		pk_json_str(&j, "via_reason", r->via_reason);
	}
	pk_json_str(&j, "verdict", verdict_name(r->verdict));
	pk_json_uint(&j, "waited_ms", (unsigned long long)(r->waited_ns / 1000000));
	pk_json_uint(&j, "freeze_us", (unsigned long long)(r->freeze_ns / 1000));
	if (r->verdict == PK_VERDICT_REFUSED)
		pk_json_str(&j, "reason", r->consequence.text);
	else
		pk_json_str(&j, "reason", r->reason[0] != '\0' ? r->reason : NULL);
	pk_json_str(&j, "withdraw", r->withdraw_note[0] != '\0' ? r->withdraw_note : NULL);
	if (r->stopped_by != 0)
		pk_json_str(&j, "stopped_by", stop_signal_name(r->stopped_by));
	else
		pk_json_null(&j, "stopped_by");
	if (r->verdict == PK_VERDICT_PENDING) {
		pk_json_syscall(&j, pid, r->syscall_nr, r->syscall_args);
		pk_format_done();
	} else
		pk_json_null(&j, "syscall");
	pk_json_str(&j, "where", r->where);
	if (r->interrupt_note[0] != '\0') {
		pk_json_obj_begin(&j, "interrupt");
		pk_json_str(&j, "syscall", pk_py_syscall_name_or(r->interrupted_nr, NULL));
		pk_json_str(&j, "note", r->interrupt_note);
		pk_json_obj_end(&j);
	} else {
		pk_json_null(&j, "interrupt");
	}
	pk_json_obj_end(&j);
	pk_json_end(&j);
}

/* Everything here may quote the target's names (the thread's, its
 * function's and file's, another exception's, the borrowed thread's), so
 * each is escaped whole; the exception's name passed the name check. */
static void print_human(pid_t pid, const struct pk_raise_result *r, const struct pk_raise_opts *ro)
{
	bool forced = ro->force;
	const char *exc = r->exception;
	char who[PK_ESC_CAP + 80], e[PK_ESC_CAP], shape[160];

	pk_format_thread_state(r->tid, r->name, r->interp_id, ro->pick_interp, who, sizeof(who));
	if (r->verdict == PK_VERDICT_DELIVERED) {
		printf("%s delivered to %s of process %d in %.1f ms\n", exc, who, (int)pid,
		       (double)(r->inject_ns + r->waited_ns) / 1e6);
	} else if (r->verdict == PK_VERDICT_ENDED) {
		printf("%s queued for %s of process %d; the thread ended within %.1f ms (whether it raised the "
		       "exception first cannot be told)\n", exc, who, (int)pid, (double)(r->inject_ns + r->waited_ns) / 1e6);
	} else if (r->verdict == PK_VERDICT_REPLACED) {
		printf("%s not delivered to %s of process %d: %s\n", exc, who, (int)pid,
		       r->reason[0] ? pk_esc(r->reason, e, sizeof(e)) : "another exception replaced it");
	} else if (r->verdict == PK_VERDICT_WITHDRAWN) {
		printf("%s not delivered to %s of process %d within %.1f s, and withdrawn (it will not fire): %s\n", exc,
		       who, (int)pid, (double)r->waited_ns / 1e9, pk_esc(r->reason, e, sizeof(e)));
	} else {
		printf("%s queued for %s of process %d, not delivered after %.1f s: %s\n", exc, who, (int)pid,
		       (double)r->waited_ns / 1e9, pk_esc(r->reason, e, sizeof(e)));
		if (r->syscall_nr >= 0) {
			char sc[2048];
			pk_format_syscall(pid, r->syscall_nr, r->syscall_args, sc, sizeof(sc));
			pk_format_done();
			printf("  system call: %s\n", sc);
		}
		if (r->where != NULL)
			printf("  at %s\n", pk_esc(r->where, e, sizeof(e)));
	}
	if (r->interrupt_note[0] != '\0')
		printf("  --interrupt: %s\n", pk_esc(r->interrupt_note, e, sizeof(e)));
	if (r->withdraw_note[0] != '\0' && r->verdict != PK_VERDICT_WITHDRAWN)
		printf("  --withdraw-if-pending: %s\n", pk_esc(r->withdraw_note, e, sizeof(e)));
	if (r->stopped_by != 0)
		printf("  %s stopped the watch after %.1f s%s", stop_signal_name(r->stopped_by),
		       (double)r->waited_ns / 1e9, r->verdict == PK_VERDICT_PENDING ? ": the exception stays queued" : "\n");
	if (r->stopped_by != 0 && r->verdict == PK_VERDICT_PENDING)
		printf(" ('pykill withdraw %d %d' takes it back)\n", (int)pid, (int)r->tid);
	if (r->inherited)
		printf("  the thread state was inherited across fork (its native_thread_id names a thread of the parent "
		       "process); thread %d is the thread it is on now\n", (int)r->tid);
	if (r->freeze_ns > 0)
		printf("  via %s: %s; target threads stopped for %.3f ms\n", via_name(r->via),
		       pk_esc(r->via_reason, e, sizeof(e)), (double)r->freeze_ns / 1e6);
	else
		printf("  via %s: %s; no target thread was stopped\n", via_name(r->via),
		       pk_esc(r->via_reason, e, sizeof(e)));
	/* What it does there: said for every raise, as "forced" when --force
	 * overrode a refusal. */
	describe_shape(r, shape, sizeof(shape));
	printf("  %s: %s; %s%s there: %s\n",
	       forced && r->consequence.harm == PK_HARM_REFUSE ? "forced"
	       : r->consequence.harm == PK_HARM_NOTE          ? "note"
							      : "shape",
	       shape, exc, r->exception_default ? " (its default)" : "", r->consequence.text);
	fflush(stdout);
}

/* The EXCEPTION argument: a built-in class name, looked up as the symbol
 * PyExc_NAME. The longest CPython has is 25 characters
 * (PendingDeprecationWarning); anything far longer is no class name, and is
 * not worth attaching to the target for, nor echoing whole. */
#define PK_EXC_NAME_MAX 100u

int pk_cmd_raise(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "via", required_argument, NULL, OPT_VIA },
		{ "interrupt", no_argument, NULL, OPT_INTERRUPT },
		{ "withdraw-if-pending", no_argument, NULL, OPT_WITHDRAW },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "interp", required_argument, NULL, OPT_INTERP },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* No exception named: the default of the thread's shape. */
	struct pk_raise_opts ro = { .exception = NULL, .via = PK_VIA_AUTO, .wait_ms = 2000 };
	struct pk_raise_result res;
	struct pk_py *py = NULL;
	bool json = false;
	char q[PK_ESC_ARG];
	pid_t pid;
	int c, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_WAIT: {
			uint64_t ms;
			if (pk_parse_num(optarg, PK_NUM_MILLI, 0, 3600000, &ms) < 0)
				return pk_usage_error("raise: --wait takes seconds from 0 to 3600, with at most 3 "
						      "decimals, not '%s'", pk_esc(optarg, q, sizeof(q)));
			ro.wait_ms = (unsigned)ms;
			break;
		}
		case OPT_VIA:
			if (strcmp(optarg, "call") == 0)
				ro.via = PK_VIA_CALL;
			else if (strcmp(optarg, "write") == 0)
				ro.via = PK_VIA_WRITE;
			else if (strcmp(optarg, "auto") == 0)
				ro.via = PK_VIA_AUTO;
			else
				return pk_usage_error("raise: --via must be auto, call or write, not '%s'",
						      pk_esc(optarg, q, sizeof(q)));
			break;
		case OPT_INTERRUPT:
			ro.interrupt = true;
			break;
		case OPT_WITHDRAW:
			ro.withdraw_if_pending = true;
			break;
		case OPT_FORCE:
			ro.force = true;
			break;
		case OPT_INTERP:
			rc = pk_arg_interp("raise", optarg, &ro.interp);
			if (rc != PK_EXIT_OK)
				return rc;
			ro.pick_interp = true;
			break;
		case 'v':
			pk_cli_more_verbose();
			break;
		case 'h':
			return pk_help();
		default:
			return pk_usage_error("raise: unknown option '%s'", pk_esc(argv[optind - 1], q, sizeof(q)));
		}
	}
	if (argc - optind < 2)
		return pk_usage_error("raise: missing %s", argc - optind == 0 ? "PID and THREAD" : "THREAD");
	if (argc - optind > 3)
		return pk_usage_error("raise: unexpected argument '%s'", pk_esc(argv[optind + 3], q, sizeof(q)));
	rc = pk_arg_pid("raise", argv[optind], &pid);
	if (rc == PK_EXIT_OK)
		rc = pk_arg_thread("raise", argv[optind + 1], &ro.thread);
	if (rc != PK_EXIT_OK)
		return rc;
	if (argc - optind == 3)
		ro.exception = argv[optind + 2];
	if (ro.exception != NULL && strlen(ro.exception) > PK_EXC_NAME_MAX)
		return pk_usage_error("raise: the exception name '%s' is %zu characters long: a built-in exception "
				      "class name has at most %u", pk_esc(ro.exception, q, sizeof(q)),
				      strlen(ro.exception), PK_EXC_NAME_MAX);

	catch_stop_signals();
	ro.stop = &stop_signal;
	rc = pk_py_open(pid, &py);
	if (rc < 0)
		return json ? pk_fail_json(rc, "inspect process", NULL, pid, argv[optind + 1])
			    : pk_fail(rc, "inspect process");
	rc = pk_py_raise(py, &ro, &res);
	if (rc == -ENOENT && ro.exception != NULL) {
		char close[256], ec[4 * sizeof(close)];
		pk_py_exception_suggest(py, ro.exception, close, sizeof(close));
		pk_py_close(py);
		/* The suggestions are symbol names of the target's binary. */
		if (close[0] != '\0')
			return pk_usage_error("raise: unknown exception '%s'; did you mean: %s?",
					      pk_esc(ro.exception, q, sizeof(q)), pk_esc(close, ec, sizeof(ec)));
		return pk_usage_error("raise: unknown exception '%s' (a built-in exception class name, e.g. "
				      "SystemExit)", pk_esc(ro.exception, q, sizeof(q)));
	}
	if (rc < 0) {
		char more[200] = "";

		if (rc == -EPERM && pk_py_other_tracer(pid) > 0)
			snprintf(more, sizeof(more), "raise must stop threads: detach that tracer first (end strace or "
				 "the debugger); 'pykill list --freeze=none %d' still reads the process", (int)pid);
		rc = json ? pk_fail_json(rc, "raise", more, pid, argv[optind + 1]) : pk_fail_hint(rc, "raise", more);
		pk_raise_result_clear(&res);
		pk_py_close(py);
		return rc;
	}
	if (res.verdict == PK_VERDICT_REFUSED)
		print_refusal(pid, &res, &ro);
	if (json)
		print_json(pid, &res, ro.force);
	else if (res.verdict != PK_VERDICT_REFUSED)
		print_human(pid, &res, &ro);
	rc = verdict_exit(res.verdict);
	pk_raise_result_clear(&res);
	pk_py_close(py);
	return rc;
}
