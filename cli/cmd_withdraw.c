/* SPDX-License-Identifier: MIT */
/* pykill withdraw PID THREAD: remove the exception queued for one thread. */
#include "cli.h"
#include "pk_log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_JSON = 256, OPT_INTERP };

static void print_json(pid_t pid, const struct pk_withdraw_result *r)
{
	struct pk_json j;

	pk_json_init(&j, stdout);
	pk_json_obj_begin(&j, NULL);
	pk_json_int(&j, "schema", 1);
	pk_json_int(&j, "pid", pid);
	pk_json_int(&j, "tid", r->tid);
	pk_json_uint(&j, "ident", (unsigned long long)r->ident);
	pk_json_int(&j, "interp", r->interp_id);
	pk_json_str(&j, "name", r->name);
	pk_json_str(&j, "withdrawn", r->withdrawn ? r->exception : NULL);
	pk_json_uint(&j, "freeze_us", (unsigned long long)(r->freeze_ns / 1000));
	pk_json_obj_end(&j);
	pk_json_end(&j);
}

int pk_cmd_withdraw(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "interp", required_argument, NULL, OPT_INTERP },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pk_withdraw_result res;
	struct pk_py *py = NULL;
	bool json = false;
	int64_t interp = -1;
	char q[PK_ESC_ARG];
	uint64_t thread;
	pid_t pid;
	int c, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_INTERP:
			rc = pk_arg_interp("withdraw", optarg, &interp);
			if (rc != PK_EXIT_OK)
				return rc;
			break;
		case 'v':
			pk_cli_more_verbose();
			break;
		case 'h':
			return pk_help();
		default:
			return pk_usage_error("withdraw: unknown option '%s'", pk_esc(argv[optind - 1], q, sizeof(q)));
		}
	}
	if (argc - optind < 2)
		return pk_usage_error("withdraw: missing %s", argc - optind == 0 ? "PID and THREAD" : "THREAD");
	if (argc - optind > 2)
		return pk_usage_error("withdraw: unexpected argument '%s'", pk_esc(argv[optind + 2], q, sizeof(q)));
	rc = pk_arg_pid("withdraw", argv[optind], &pid);
	if (rc == PK_EXIT_OK)
		rc = pk_arg_thread("withdraw", argv[optind + 1], &thread);
	if (rc != PK_EXIT_OK)
		return rc;

	rc = pk_py_open(pid, &py);
	if (rc < 0)
		return json ? pk_fail_json(rc, "inspect process", NULL, pid, argv[optind + 1])
			    : pk_fail(rc, "inspect process");
	rc = pk_py_withdraw(py, thread, interp, &res);
	if (rc < 0) {
		char more[200] = "";

		if (rc == -EPERM && pk_py_other_tracer(pid) > 0)
			snprintf(more, sizeof(more), "withdraw must stop threads: detach that tracer first (end strace "
				 "or the debugger); 'pykill list --freeze=none %d' still reads the process", (int)pid);
		rc = json ? pk_fail_json(rc, "withdraw", more, pid, argv[optind + 1]) : pk_fail_hint(rc, "withdraw", more);
		pk_withdraw_result_clear(&res);
		pk_py_close(py);
		return rc;
	}
	if (json) {
		print_json(pid, &res);
	} else {
		/* The thread's name and the exception's (a class the program may
		 * have named) are the target's: escaped. */
		char who[PK_ESC_CAP + 80], e[4 * sizeof(res.exception)];

		pk_format_thread_state(res.tid, res.name, res.interp_id, interp >= 0, who, sizeof(who));
		if (res.withdrawn)
			printf("withdrew %s queued for %s of process %d: it will not fire\n",
			       pk_esc(res.exception, e, sizeof(e)), who, (int)pid);
		else
			printf("nothing was queued for %s of process %d\n", who, (int)pid);
		if (res.freeze_ns > 0)
			printf("  target threads stopped for %.3f ms\n", (double)res.freeze_ns / 1e6);
		else
			printf("  no target thread was stopped\n");
	}
	fflush(stdout);
	pk_withdraw_result_clear(&res);
	pk_py_close(py);
	return PK_EXIT_OK;
}
