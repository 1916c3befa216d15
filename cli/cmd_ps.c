/* SPDX-License-Identifier: MIT */
/* pykill ps [PID]...: every Python process this user can see, without
 * stopping anything. */
#include "cli.h"
#include "pk_log.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_JSON = 256, OPT_PIDS, OPT_STUCK };

/* ps's default --stuck: a request or a job is rarely meant to wait longer. */
#define PS_STUCK_DEFAULT_NS (30ull * 1000000000u)

static void user_name(uid_t uid, char *buf, size_t cap)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL && pw->pw_name != NULL)
		snprintf(buf, cap, "%s", pw->pw_name);
	else
		snprintf(buf, cap, "%u", (unsigned)uid);
}

static void print_json(const struct pk_ps *ps, uint64_t stuck_ns)
{
	struct pk_json j;
	char user[64];

	pk_json_init(&j, stdout);
	pk_json_obj_begin(&j, NULL);
	pk_json_int(&j, "schema", 1);
	pk_json_seconds(&j, "stuck_s", stuck_ns);
	pk_json_arr_begin(&j, "processes");
	for (size_t i = 0; i < ps->n; i++) {
		const struct pk_ps_proc *p = &ps->v[i];

		user_name(p->uid, user, sizeof(user));
		pk_json_obj_begin(&j, NULL);
		pk_json_int(&j, "pid", p->pid);
		pk_json_int(&j, "ns_pid", p->ns_pid);
		pk_json_str(&j, "user", user);
		pk_json_uint(&j, "uid", p->uid);
		pk_json_str(&j, "version", p->version[0] ? p->version : NULL);
		pk_json_str(&j, "path", p->path);
		if (p->nthreads >= 0)
			pk_json_int(&j, "threads", p->nthreads);
		else
			pk_json_null(&j, "threads");
		if (p->nstates >= 0)
			pk_json_int(&j, "thread_states", p->nstates);
		else
			pk_json_null(&j, "thread_states");
		if (p->stuck >= 0) {
			pk_json_int(&j, "stuck", p->stuck);
			if (p->stuck > 0)
				pk_json_seconds(&j, "stuck_longest_s", p->stuck_longest_ns);
			else
				pk_json_null(&j, "stuck_longest_s");
		} else {
			pk_json_null(&j, "stuck");
			pk_json_null(&j, "stuck_longest_s");
		}
		pk_json_str(&j, "cmdline", p->cmdline);
		pk_json_str(&j, "error", p->error);
		pk_json_obj_end(&j);
	}
	pk_json_arr_end(&j);
	pk_json_uint(&j, "skipped", (unsigned long long)ps->skipped);
	pk_json_obj_end(&j);
	pk_json_end(&j);
}

static void print_table(const struct pk_ps *ps, uint64_t stuck_ns)
{
	char user[64], pid[32], threads[48], eu[256], ever[128], e[PK_ESC_CAP], stuck[24], d[24];
	bool errors = false, any_stuck = false;

	printf("%-12s %-10s %-10s %7s %5s %-7s  %s\n", "PID", "USER", "PYTHON", "THREADS", "STUCK", "LONGEST",
	       "COMMAND");
	for (size_t i = 0; i < ps->n; i++) {
		const struct pk_ps_proc *p = &ps->v[i];

		user_name(p->uid, user, sizeof(user));
		if (p->ns_pid != p->pid)
			snprintf(pid, sizeof(pid), "%d(%d)", (int)p->pid, (int)p->ns_pid);
		else
			snprintf(pid, sizeof(pid), "%d", (int)p->pid);
		/* "4+5": 4 OS threads and 5 more thread states (threads holding
		 * several, states on no live thread). */
		if (p->nthreads >= 0 && p->nstates > p->nthreads)
			snprintf(threads, sizeof(threads), "%ld+%ld", p->nthreads, p->nstates - p->nthreads);
		else if (p->nthreads >= 0)
			snprintf(threads, sizeof(threads), "%ld", p->nthreads);
		else
			snprintf(threads, sizeof(threads), "?");
		/* STUCK 2, LONGEST 5m03s: two threads stuck, the longest for 5m03s. */
		if (p->stuck > 0) {
			pk_format_duration(p->stuck_longest_ns, d, sizeof(d));
			snprintf(stuck, sizeof(stuck), "%ld", p->stuck);
			any_stuck = true;
		} else {
			snprintf(stuck, sizeof(stuck), "%s", p->stuck == 0 ? "-" : "?");
			snprintf(d, sizeof(d), "%s", stuck);
		}
		/* The command line is the target's to write: escaped. */
		printf("%-12s %-10s %-10s %7s %5s %-7s  %s\n", pid, pk_esc(user, eu, sizeof(eu)),
		       p->version[0] ? pk_esc(p->version, ever, sizeof(ever)) : "?", threads, stuck, d,
		       pk_esc(p->cmdline, e, sizeof(e)));
		errors |= p->error != NULL;
	}
	if (errors)
		for (size_t i = 0; i < ps->n; i++)
			if (ps->v[i].error != NULL)
				printf("%d: %s\n", (int)ps->v[i].pid, pk_esc(ps->v[i].error, e, sizeof(e)));
	if (any_stuck) {
		pk_format_duration_exact(stuck_ns, d, sizeof(d));
		printf("(STUCK: Python threads blocked %s or longer, not counting workers waiting for work; "
		       "'pykill list --stuck=%s PID' shows them, idle workers too: SHAPE ends in :idle)\n", d, d);
	}
	if (ps->skipped > 0)
		printf("(%zu process%s not readable: permission denied)\n", ps->skipped,
		       ps->skipped == 1 ? "" : "es");
	fflush(stdout);
}

/* PIDs named on the command line that the table leaves out: each said on
 * stderr, as every other command says it; the status is the worst of them
 * (no such process, then permission denied, then not a Python process), so
 * that a runbook can branch on it. */
static int named_left_out(const pid_t *pids, size_t n, const struct pk_ps *ps)
{
	int code = PK_EXIT_OK;

	for (size_t i = 0; i < n; i++) {
		bool listed = false;
		for (size_t k = 0; k < ps->n && !listed; k++)
			listed = ps->v[k].pid == pids[i];
		if (listed)
			continue;
		bool unreadable = false;
		for (size_t k = 0; k < ps->nskipped_pids && !unreadable; k++)
			unreadable = ps->skipped_pids[k] == pids[i];
		if (kill(pids[i], 0) < 0 && errno == ESRCH) {
			fprintf(stderr, "pykill: ps: no process %d\n", (int)pids[i]);
			code = PK_EXIT_NO_PROCESS;
		} else if (unreadable) {
			fprintf(stderr, "pykill: ps: process %d: its memory map may not be read: permission denied\n"
				"pykill: hint: run as root or the process's user (CAP_SYS_PTRACE)\n", (int)pids[i]);
			if (code != PK_EXIT_NO_PROCESS)
				code = PK_EXIT_PERMISSION;
		} else {
			fprintf(stderr, "pykill: ps: process %d: not a Python process this user may read (or a thread "
				"ID, not a process's)\n", (int)pids[i]);
			if (code == PK_EXIT_OK)
				code = PK_EXIT_NOT_PYTHON;
		}
	}
	return code;
}

int pk_cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "pids", no_argument, NULL, OPT_PIDS },
		{ "stuck", required_argument, NULL, OPT_STUCK },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pk_ps_opts po = { .count_threads = true, .stuck_ns = PS_STUCK_DEFAULT_NS };
	struct pk_ps ps;
	pid_t *pids = NULL;
	bool json = false, only_pids = false;
	int c, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_PIDS:
			only_pids = true;
			break;
		case OPT_STUCK:
			if (!pk_parse_duration(optarg, &po.stuck_ns) || po.stuck_ns == 0) {
				char q[PK_ESC_ARG];
				return pk_usage_error("ps: --stuck must be a duration above 0 such as 30s, 5m, 1h (at "
						      "most a year), not '%s'", pk_esc(optarg, q, sizeof(q)));
			}
			break;
		case 'v':
			pk_cli_more_verbose();
			break;
		case 'h':
			return pk_help();
		default: {
			char q[PK_ESC_ARG];
			return pk_usage_error("ps: unknown option '%s'", pk_esc(argv[optind - 1], q, sizeof(q)));
		}
		}
	}
	if (json && only_pids)
		return pk_usage_error("ps: --json and --pids do not go together");
	if (optind < argc) {
		pids = calloc((size_t)(argc - optind), sizeof(*pids));
		if (pids == NULL)
			return pk_fail(-ENOMEM, "ps");
		for (int i = optind; i < argc; i++) {
			rc = pk_arg_pid("ps", argv[i], &pids[po.npids]);
			if (rc != PK_EXIT_OK) {
				free(pids);
				return rc;
			}
			po.npids++;
		}
		po.pids = pids;
	}
	/* --pids is for shell completion: identifying is enough, counting threads is not needed. */
	po.count_threads = !only_pids;
	if (only_pids)
		po.stuck_ns = 0;

	/* A scan meets many processes: a library warning about one of them
	 * (an odd interpreter) belongs in its row, not on stderr, unless -v. */
	if (pk_cli.verbose == 0)
		pk_log_set_handler(NULL, NULL, PK_LOG_ERROR);
	rc = pk_py_ps(&po, &ps);
	if (rc < 0) {
		free(pids);
		return pk_fail(rc, "list Python processes");
	}
	if (only_pids) {
		for (size_t i = 0; i < ps.n; i++)
			printf("%d\n", (int)ps.v[i].pid);
		fflush(stdout);
	} else if (json) {
		print_json(&ps, po.stuck_ns);
	} else {
		print_table(&ps, po.stuck_ns);
	}
	rc = named_left_out(pids, po.npids, &ps);
	free(pids);
	pk_ps_free(&ps);
	return rc;
}
