/* SPDX-License-Identifier: MIT */
/* What /proc says about the target, handed on to the CLI (pk_cpython.h):
 * attach/ reads it; this file only translates, so that cli/ sees one
 * module's header and attach/ stays free to change its own types. */
#include "py-priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(PK_PY_SYSCALL_RUNNING == PK_SYSCALL_RUNNING, "the snapshot passes attach's value on");
/* The kind is passed on as its number: the two enums must stay in step. */
#define SAME_KIND(k) ((int)PK_PY_FD_##k == (int)PK_FD_##k)
_Static_assert(SAME_KIND(UNKNOWN) && SAME_KIND(FILE) && SAME_KIND(PIPE) && SAME_KIND(INET) && SAME_KIND(UNIX) &&
		       SAME_KIND(SOCKET) && SAME_KIND(OTHER),
	       "enum pk_py_fd_kind is enum pk_fd_kind");
/* Strings are copied whole (memcpy of the array): the same sizes, or one
 * would be cut or overrun. */
#define SAME_SIZE(f) (sizeof(((struct pk_py_fd *)0)->f) == sizeof(((struct pk_fd_info *)0)->f))
_Static_assert(PK_PY_FD_MAX_HOLDERS == PK_FD_MAX_HOLDERS && SAME_SIZE(target) && SAME_SIZE(proto) &&
		       SAME_SIZE(state) && SAME_SIZE(local) && SAME_SIZE(remote) && SAME_SIZE(path) &&
		       SAME_SIZE(holders[0].comm),
	       "struct pk_py_fd's strings are struct pk_fd_info's");

const char *pk_py_syscall_name(long nr)
{
	return pk_syscall_name(nr);
}

const char *pk_py_syscall_name_or(long nr, const char *unknown)
{
	const char *name = pk_syscall_name(nr); /* NULL for nr < 0 too */

	return name != NULL ? name : unknown;
}

int pk_py_syscall_nargs(long nr)
{
	return pk_syscall_nargs(nr);
}

unsigned pk_py_syscall_fd_args(long nr)
{
	return pk_syscall_fd_args(nr);
}

/* The index is attach's; the public name only hides which module owns it. */
struct pk_py_fd_index {
	struct pk_fd_index *ix;
};

int pk_py_fd_info(pid_t pid, int fd, struct pk_py_fd_index **ix, struct pk_py_fd *out)
{
	struct pk_fd_info fi;
	int rc;

	if (*ix == NULL && (*ix = calloc(1, sizeof(**ix))) == NULL)
		return -ENOMEM;
	rc = pk_proc_fd_info(pid, fd, &(*ix)->ix, &fi);
	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->kind = (enum pk_py_fd_kind)fi.kind;
	memcpy(out->target, fi.target, sizeof(out->target));
	out->pos = fi.pos;
	memcpy(out->proto, fi.proto, sizeof(out->proto));
	memcpy(out->state, fi.state, sizeof(out->state));
	memcpy(out->local, fi.local, sizeof(out->local));
	memcpy(out->remote, fi.remote, sizeof(out->remote));
	memcpy(out->path, fi.path, sizeof(out->path));
	out->peer_inode = fi.peer_inode;
	out->nholders = fi.nholders < PK_PY_FD_MAX_HOLDERS ? fi.nholders : PK_PY_FD_MAX_HOLDERS;
	for (size_t i = 0; i < out->nholders; i++) {
		out->holders[i].pid = fi.holders[i].pid;
		out->holders[i].fd = fi.holders[i].fd;
		out->holders[i].mode = fi.holders[i].mode;
		memcpy(out->holders[i].comm, fi.holders[i].comm, sizeof(out->holders[i].comm));
	}
	out->holders_truncated = fi.holders_truncated;
	return 0;
}

void pk_py_fd_index_free(struct pk_py_fd_index *ix)
{
	if (ix != NULL)
		pk_fd_index_free(ix->ix);
	free(ix);
}

int pk_py_sched_now(uint64_t *now_ns)
{
	return pk_sched_now(now_ns);
}

int pk_py_offcpu_ns(pid_t pid, pid_t tid, uint64_t now_ns, uint64_t *ns)
{
	return pk_proc_offcpu_ns(pid, tid, now_ns, ns);
}

pid_t pk_py_other_tracer(pid_t pid)
{
	return pk_attach_other_tracer(pid);
}
