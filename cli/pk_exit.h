/* SPDX-License-Identifier: MIT */
/* Exit statuses of pykill. Listed in man/pykill.1 under EXIT STATUS; a test
 * checks the two agree. */
#ifndef PK_EXIT_H
#define PK_EXIT_H

enum pk_exit {
	PK_EXIT_OK = 0,          /* success; for raise: the exception was delivered */
	PK_EXIT_FAILURE = 1,     /* any other failure */
	PK_EXIT_USAGE = 2,       /* bad command line */
	PK_EXIT_PENDING = 3,     /* raise: injected but not delivered yet */
	PK_EXIT_NO_PROCESS = 4,  /* no such process or thread */
	PK_EXIT_PERMISSION = 5,  /* no right to trace the process */
	PK_EXIT_NOT_PYTHON = 6,  /* not a Python process, or an unsupported version */
	PK_EXIT_REFUSED = 7,     /* raise/withdraw refused, nothing done: unsafe now, another exception
				  * already queued, an exception that needs arguments */
	PK_EXIT_NOT_DELIVERED = 8, /* raise: not delivered and no longer queued (withdrawn, or replaced
				    * by another exception) */
	PK_EXIT_INTERRUPTED = 130, /* raise: a signal (SIGINT...) came before anything was queued */
};

#endif
