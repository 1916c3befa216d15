/* pykill list PID: every Python thread of a live process. */
#include "cli.h"
#include "pk_attach.h"
#include "pk_log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_JSON = 256, OPT_STACKS, OPT_FREEZE, OPT_MAX_FRAMES };

static void json_thread(struct pk_json *j, const struct pk_py_snapshot *snap, const struct pk_py_thread *t)
{
	char hex[24];

	pk_json_obj_begin(j, NULL);
	pk_json_int(j, "tid", t->tid);
	pk_json_int(j, "ns_tid", t->ns_tid);
	pk_json_uint(j, "ident", (unsigned long long)t->ident);
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)t->ident);
	pk_json_str(j, "ident_hex", hex);
	pk_json_int(j, "interp", t->interp_id);
	pk_json_bool(j, "main", t->is_main);
	pk_json_bool(j, "gil", t->gil == PK_GIL_HOLDS);
	pk_json_str(j, "gil_state", pk_gil_name(t->gil));
	pk_json_str(j, "state", pk_state_name(t->state));
	pk_json_syscall(j, snap->pid, t->syscall_nr, t->syscall_args);
	pk_json_str(j, "name", t->name);
	pk_json_bool(j, "async_exc_pending", t->has_async_exc);
	pk_json_arr_begin(j, "frames");
	for (size_t i = 0; i < t->nframes; i++) {
		pk_json_obj_begin(j, NULL);
		pk_json_str(j, "function", t->frames[i].function);
		pk_json_str(j, "file", t->frames[i].file);
		pk_json_int(j, "line", t->frames[i].line);
		pk_json_obj_end(j);
	}
	pk_json_arr_end(j);
	pk_json_bool(j, "frames_truncated", t->frames_truncated);
	pk_json_str(j, "frames_error", t->frames_error);
	pk_json_obj_end(j);
}

static void print_json(struct pk_py *py, const struct pk_py_snapshot *snap)
{
	struct pk_json j;

	pk_json_init(&j, stdout);
	pk_json_obj_begin(&j, NULL);
	pk_json_int(&j, "schema", 1);
	pk_json_int(&j, "pid", snap->pid);
	pk_json_int(&j, "ns_pid", snap->ns_pid);
	pk_json_obj_begin(&j, "python");
	pk_json_str(&j, "version", pk_py_version(py));
	pk_json_str(&j, "path", pk_py_path(py));
	pk_json_obj_end(&j);
	pk_json_uint(&j, "freeze_us", (unsigned long long)(snap->freeze_ns / 1000));
	pk_json_uint(&j, "threads_stopped", (unsigned long long)snap->nstopped);
	pk_json_uint(&j, "interpreters", (unsigned long long)snap->ninterps);
	pk_json_bool(&j, "finalizing", snap->finalizing);
	pk_json_str(&j, "threads_cut", snap->cut[0] != '\0' ? snap->cut : NULL);
	pk_json_arr_begin(&j, "threads");
	for (size_t i = 0; i < snap->nthreads; i++)
		json_thread(&j, snap, &snap->threads[i]);
	pk_json_arr_end(&j);
	pk_json_arr_begin(&j, "native_threads");
	for (size_t i = 0; i < snap->nnatives; i++) {
		const struct pk_native_thread *n = &snap->natives[i];
		pk_json_obj_begin(&j, NULL);
		pk_json_int(&j, "tid", n->tid);
		pk_json_int(&j, "ns_tid", n->ns_tid);
		pk_json_str(&j, "comm", n->comm);
		pk_json_str(&j, "state", pk_state_name(n->state));
		pk_json_syscall(&j, snap->pid, n->syscall_nr, n->syscall_args);
		pk_json_obj_end(&j);
	}
	pk_json_arr_end(&j);
	pk_json_obj_end(&j);
	pk_json_end(&j);
}

static void where(const struct pk_py_thread *t, char *buf, size_t cap)
{
	if (t->nframes > 0)
		snprintf(buf, cap, "%s (%s:%d)", t->frames[0].function, t->frames[0].file, t->frames[0].line);
	else if (t->frames_error != NULL)
		snprintf(buf, cap, "? (%s)", t->frames_error);
	else
		snprintf(buf, cap, "-");
}

static void print_table(struct pk_py *py, const struct pk_py_snapshot *snap, bool stacks)
{
	char sc[512], loc[512], tid[32];
	int64_t last_interp = -1;
	bool ns = snap->ns_pid != snap->pid;

	printf("PID %d%s  Python %s  %s  frozen %.3f ms (%zu thread%s stopped)\n", (int)snap->pid,
	       ns ? "" : "", pk_py_version(py), pk_py_path(py), (double)snap->freeze_ns / 1e6, snap->nstopped,
	       snap->nstopped == 1 ? "" : "s");
	if (ns)
		printf("PID %d in its own namespace\n", (int)snap->ns_pid);
	if (snap->finalizing)
		printf("the interpreter is shutting down\n");
	if (snap->cut[0] != '\0')
		printf("cut short: %s\n", snap->cut);
	for (size_t i = 0; i < snap->nthreads; i++) {
		const struct pk_py_thread *t = &snap->threads[i];
		const char *name = t->name ? t->name : "-";
		char flags[4] = "--";

		if (snap->ninterps > 1 && t->interp_id != last_interp) {
			printf("%sinterpreter %lld%s\n", i ? "\n" : "", (long long)t->interp_id,
			       t->main_interp ? " (main)" : " (subinterpreter)");
			last_interp = t->interp_id;
		}
		if (i == 0 || (snap->ninterps > 1 && t->interp_id == last_interp && i > 0 &&
			       snap->threads[i - 1].interp_id != t->interp_id))
			printf("%-16s %-16s %-16s %-4s %-10s %-40s %s\n", "TID", "IDENT", "NAME", "GIL", "STATE",
			       "SYSCALL", "WHERE");
		if (t->is_main)
			flags[0] = 'M';
		flags[1] = t->gil == PK_GIL_HOLDS ? 'G' : t->gil == PK_GIL_WAITS ? 'w' : t->gil == PK_GIL_DROPPING ? 'd' : '-';
		if (t->tid == 0)
			snprintf(tid, sizeof(tid), "?");
		else if (t->ns_tid != t->tid)
			snprintf(tid, sizeof(tid), "%d(%d)", (int)t->tid, (int)t->ns_tid);
		else
			snprintf(tid, sizeof(tid), "%d", (int)t->tid);
		if (t->syscall_nr >= 0)
			pk_format_syscall(snap->pid, t->syscall_nr, t->syscall_args, sc, sizeof(sc));
		else
			snprintf(sc, sizeof(sc), "%s", t->syscall_nr == PK_SYSCALL_RUNNING ? "(running)" : "-");
		where(t, loc, sizeof(loc));
		printf("%-16s 0x%-14llx %-16s %-4s %-10s %-40s %s\n", tid, (unsigned long long)t->ident, name, flags,
		       pk_state_name(t->state), sc, loc);
		if (stacks) {
			for (size_t f = 0; f < t->nframes; f++)
				printf("    %s (%s:%d)\n", t->frames[f].function, t->frames[f].file, t->frames[f].line);
			if (t->frames_truncated)
				printf("    ... stack cut at %zu frames\n", t->nframes);
			if (t->frames_error)
				printf("    ... %s\n", t->frames_error);
		}
	}
	if (snap->nnatives > 0)
		printf("(%zu native thread%s without a Python thread state)\n", snap->nnatives,
		       snap->nnatives == 1 ? "" : "s");
	fflush(stdout);
}

int pk_cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "stacks", no_argument, NULL, OPT_STACKS },
		{ "freeze", required_argument, NULL, OPT_FREEZE },
		{ "max-frames", required_argument, NULL, OPT_MAX_FRAMES },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pk_snapshot_opts so = { .freeze = PK_FREEZE_AUTO, .want_frames = true, .want_names = true };
	struct pk_py *py = NULL;
	struct pk_py_snapshot *snap = NULL;
	bool json = false, stacks = false;
	pid_t pid;
	int c, rc;
	uint64_t t0;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_STACKS:
			stacks = true;
			break;
		case OPT_FREEZE:
			if (strcmp(optarg, "auto") == 0)
				so.freeze = PK_FREEZE_AUTO;
			else if (strcmp(optarg, "all") == 0)
				so.freeze = PK_FREEZE_ALL;
			else if (strcmp(optarg, "none") == 0)
				so.freeze = PK_FREEZE_NONE;
			else
				return pk_usage_error("list: --freeze must be auto, all or none, not '%s'", optarg);
			break;
		case OPT_MAX_FRAMES: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 1 || v > 1000000)
				return pk_usage_error("list: --max-frames must be a number from 1 to 1000000, not '%s'",
						      optarg);
			so.max_frames = (unsigned)v;
			break;
		}
		case 'v':
			pk_cli_more_verbose();
			break;
		case 'h':
			return pk_usage_error("list: use 'pykill --help'");
		default:
			return pk_usage_error("list: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return pk_usage_error("list: missing PID");
	if (argc - optind > 1)
		return pk_usage_error("list: unexpected argument '%s'", argv[optind + 1]);
	if (!pk_parse_pid(argv[optind], &pid))
		return pk_usage_error("list: '%s' is not a process ID", argv[optind]);

	t0 = pk_now_ns();
	rc = pk_py_open(pid, &py);
	if (rc < 0)
		return pk_fail(rc, "inspect process");
	pk_log(PK_LOG_INFO, "found Python %s in %s in %.3f ms; layout: %s", pk_py_version(py), pk_py_path(py),
	       (double)(pk_now_ns() - t0) / 1e6, pk_py_layout_source(py));
	rc = pk_py_snapshot(py, &so, &snap);
	if (rc < 0) {
		rc = pk_fail(rc, "read the threads");
		pk_py_close(py);
		return rc;
	}
	pk_log(PK_LOG_INFO, "read %zu Python thread(s) in %zu interpreter(s) in %u round(s); %zu thread(s) stopped "
	       "for %.3f ms; total %.3f ms", snap->nthreads, snap->ninterps, snap->rounds, snap->nstopped,
	       (double)snap->freeze_ns / 1e6, (double)(pk_now_ns() - t0) / 1e6);
	if (json)
		print_json(py, snap);
	else
		print_table(py, snap, stacks);
	pk_py_snapshot_free(snap);
	pk_py_close(py);
	return PK_EXIT_OK;
}
