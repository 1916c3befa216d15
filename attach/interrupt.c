/* SPDX-License-Identifier: MIT */
/* Interrupting a blocked system call from outside: the thread is stopped
 * with PTRACE_SEIZE + PTRACE_INTERRUPT (which interrupts the call, as any
 * stop does), and its pending result is changed from "restart" to -EINTR
 * before it is released, so the call returns EINTR as if a signal handler
 * had run. What the program does with EINTR is its business: CPython
 * retries (PEP 475) after checking signals, and from 3.15 that check also
 * raises a pending asynchronous exception. */
#include "arch-priv.h"
#include "pk_attach.h"
#include "pk_inject.h"
#include "pk_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int pk_interrupt_syscall(pid_t pid, pid_t tid, long *nr_out, int64_t *was)
{
	struct pk_freeze *fz = NULL;
	struct pk_arch_state st;
	char why[160];
	long nr = -1;
	int64_t ret = 0;
	int rc;

	memset(&st, 0, sizeof(st));
	*nr_out = -1;
	rc = pk_freeze_new(pid, &fz);
	if (rc < 0)
		return rc;
	rc = pk_freeze_add(fz, &tid, 1);
	if (rc < 0)
		goto out;
	if (!pk_freeze_has(fz, tid)) {
		pk_error("interrupt thread %d of process %d: it has ended", (int)tid, (int)pid);
		rc = -ESRCH;
		goto out;
	}
	rc = pk_arch_save(tid, &st);
	if (rc < 0)
		goto out;
	if (pk_arch_parked_syscall(&st, &nr, &ret, why, sizeof(why)) < 0) {
		pk_error("interrupt thread %d of process %d: not in a system call (%s)", (int)tid, (int)pid, why);
		rc = -EAGAIN;
		goto out;
	}
	*nr_out = nr;
	*was = ret;
	rc = ret == -EINTR ? 0 : pk_arch_fail_syscall(tid, &st, -EINTR);
out:
	pk_arch_state_free(&st);
	if (fz != NULL) {
		pk_freeze_end(fz);
		pk_freeze_free(fz);
	}
	return rc;
}
