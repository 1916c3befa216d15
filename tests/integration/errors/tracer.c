/* SPDX-License-Identifier: MIT */
/* Test helper: hold a process traced, like a debugger left attached would.
 *
 *   tracer PID
 *
 * PTRACE_SEIZEs every thread of PID without interrupting it (the target keeps
 * running), writes "ok <number of threads>" to stdout, then waits until its
 * stdin reaches end of file and exits, which detaches. While it waits it
 * resumes any stop the target reports (a signal delivered to the target
 * stops it under ptrace), so the target never stays stopped because of us.
 * Exits 0, or 1 with a message on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SEIZE_ROUNDS 100

/* Seize every task not seized yet; returns how many are held, or -1. A
 * thread may start while we walk the directory, so walk again until a pass
 * finds nothing new (bounded). */
static int seize_all(pid_t pid)
{
	char path[64];
	int held = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	for (int round = 0; round < MAX_SEIZE_ROUNDS; round++) {
		DIR *d = opendir(path);
		struct dirent *de;
		int added = 0;

		if (d == NULL) {
			fprintf(stderr, "tracer: open %s: %s\n", path, strerror(errno));
			return -1;
		}
		while ((de = readdir(d)) != NULL) {
			char *end;
			long tid = strtol(de->d_name, &end, 10);

			if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end != '\0' || tid <= 0 || tid > INT_MAX)
				continue;
			if (ptrace(PTRACE_SEIZE, (pid_t)tid, NULL, NULL) == 0) {
				held++;
				added++;
			} else if (errno != EPERM && errno != ESRCH) {
				/* EPERM: already ours (or not allowed: reported below). */
				fprintf(stderr, "tracer: seize %ld: %s\n", tid, strerror(errno));
				closedir(d);
				return -1;
			}
		}
		closedir(d);
		if (added == 0)
			return held;
	}
	return held;
}

/* Resume whatever stopped: a signal-delivery-stop gets its signal back. */
static void resume_stops(void)
{
	for (;;) {
		int status;
		pid_t t = waitpid(-1, &status, __WALL | WNOHANG);

		if (t <= 0)
			return;
		if (WIFSTOPPED(status)) {
			int sig = WSTOPSIG(status);

			if ((status >> 16) != 0 || sig == SIGTRAP)
				sig = 0; /* an event stop, not a signal to pass on */
			ptrace(PTRACE_CONT, t, NULL, (void *)(long)sig);
		}
	}
}

int main(int argc, char **argv)
{
	struct pollfd pfd[2];
	sigset_t mask;
	char *end;
	long pid;
	int held, sfd;

	if (argc != 2) {
		fprintf(stderr, "usage: tracer PID\n");
		return 1;
	}
	pid = strtol(argv[1], &end, 10);
	if (*end != '\0' || pid <= 0 || pid > INT_MAX) {
		fprintf(stderr, "tracer: bad PID '%s'\n", argv[1]);
		return 1;
	}
	/* SIGCHLD through a descriptor: the target's stops wake the same poll()
	 * as the end of stdin, no timed polling. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
		fprintf(stderr, "tracer: signalfd: %s\n", strerror(errno));
		return 1;
	}
	held = seize_all((pid_t)pid);
	if (held <= 0) {
		if (held == 0)
			fprintf(stderr, "tracer: could not seize any thread of %ld\n", pid);
		return 1;
	}
	printf("ok %d\n", held);
	fflush(stdout);

	pfd[0].fd = STDIN_FILENO;
	pfd[0].events = POLLIN;
	pfd[1].fd = sfd;
	pfd[1].events = POLLIN;
	for (;;) {
		char buf[256];

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "tracer: poll: %s\n", strerror(errno));
			return 1;
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) < 0 && errno != EAGAIN) {
				fprintf(stderr, "tracer: read signalfd: %s\n", strerror(errno));
				return 1;
			}
			resume_stops();
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				break;
		}
	}
	/* Exiting detaches every seized thread; a stop that raced with the end
	 * of stdin is resumed first so no thread waits for a tracer gone. */
	resume_stops();
	return 0;
}
