/* SPDX-License-Identifier: MIT */
/* What a file descriptor of a process leads to: the other end of a pipe or
 * a unix socket, a TCP/UDP connection's addresses and state, a file's
 * offset. Only /proc (and, for a unix socket's peer, sock_diag) is read;
 * nothing of the target is stopped. Every line read is untrusted text. */
#include "pk_attach.h"
#include "attach-priv.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NET_MAX_LINES (1u << 22) /* per /proc/net file: bounds a hostile or huge table */
#define SCAN_MAX_PROCS 65536u

/* Over a NUL-terminated string. */
static int parse_u64(const char **p, unsigned base, uint64_t *out)
{
	return pk_scan_u64(p, *p + strlen(*p), base, out);
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Skip one whitespace-separated field. */
static const char *skip_field(const char *p)
{
	p = skip_ws(p);
	while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n')
		p++;
	return p;
}

static const char *tcp_state_name(uint64_t st)
{
	static const char *const names[] = { NULL, "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
					     "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
					     "NEW_SYN_RECV" };

	return st < sizeof(names) / sizeof(names[0]) ? names[st] : NULL;
}

/* "0100007F:1F90": the address words as the kernel printed them (%08X of a
 * network-order word loaded in host order), the port in host order. */
static int parse_inet_addr(const char **pp, bool v6, char *buf, size_t cap)
{
	unsigned char bytes[16];
	char ip[INET6_ADDRSTRLEN];
	const char *p = *pp;
	uint64_t port;
	int words = v6 ? 4 : 1;

	for (int w = 0; w < words; w++) {
		char hex[9];
		const char *h = hex;
		uint64_t v;
		uint32_t v32;

		for (int i = 0; i < 8; i++) {
			if (p[i] == '\0')
				return -EINVAL;
			hex[i] = p[i];
		}
		hex[8] = '\0';
		if (parse_u64(&h, 16, &v) < 0 || *h != '\0')
			return -EINVAL;
		v32 = (uint32_t)v;
		memcpy(bytes + 4 * w, &v32, 4);
		p += 8;
	}
	if (*p != ':')
		return -EINVAL;
	p++;
	if (parse_u64(&p, 16, &port) < 0 || port > 65535)
		return -EINVAL;
	if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, ip, sizeof(ip)) == NULL)
		return -EINVAL;
	snprintf(buf, cap, v6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)port);
	*pp = p;
	return 0;
}

int pk_net_inet_line_parse(const char *line, bool v6, bool tcp, uint64_t inode, struct pk_fd_info *out)
{
	char local[64], remote[64];
	const char *p = skip_ws(line);
	uint64_t st, ino;

	/* "sl: local remote st tx:rx tr:when retrnsmt uid timeout inode ..." */
	if (parse_u64(&p, 10, &st) < 0 || *p != ':')
		return -EINVAL;
	p = skip_ws(p + 1);
	if (parse_inet_addr(&p, v6, local, sizeof(local)) < 0)
		return -EINVAL;
	p = skip_ws(p);
	if (parse_inet_addr(&p, v6, remote, sizeof(remote)) < 0)
		return -EINVAL;
	p = skip_ws(p);
	if (parse_u64(&p, 16, &st) < 0)
		return -EINVAL;
	for (int i = 0; i < 5; i++)
		p = skip_field(p);
	p = skip_ws(p);
	if (parse_u64(&p, 10, &ino) < 0)
		return -EINVAL;
	if (ino != inode)
		return -ENOENT;
	out->kind = PK_FD_INET;
	snprintf(out->proto, sizeof(out->proto), "%s%s", tcp ? "tcp" : "udp", v6 ? "6" : "");
	memcpy(out->local, local, sizeof(local));
	memcpy(out->remote, remote, sizeof(remote));
	if (tcp)
		snprintf(out->state, sizeof(out->state), "%s", tcp_state_name(st) ? tcp_state_name(st) : "?");
	else
		/* UDP reuses the TCP numbers: 1 connected, 7 not. */
		snprintf(out->state, sizeof(out->state), "%s", st == 1 ? "CONNECTED" : "UNCONNECTED");
	return 0;
}

int pk_net_unix_line_parse(const char *line, uint64_t inode, struct pk_fd_info *out)
{
	static const char *const states[] = { "FREE", "UNCONNECTED", "CONNECTING", "CONNECTED", "DISCONNECTING" };
	const char *p = skip_ws(line);
	uint64_t num, flags, type, st, ino;
	size_t n;

	/* "Num: RefCount Protocol Flags Type St Inode [Path]" */
	if (parse_u64(&p, 16, &num) < 0 || *p != ':')
		return -EINVAL;
	p = skip_field(p + 1);
	p = skip_field(p);
	p = skip_ws(p);
	if (parse_u64(&p, 16, &flags) < 0)
		return -EINVAL;
	p = skip_ws(p);
	if (parse_u64(&p, 16, &type) < 0)
		return -EINVAL;
	p = skip_ws(p);
	if (parse_u64(&p, 16, &st) < 0)
		return -EINVAL;
	p = skip_ws(p);
	if (parse_u64(&p, 10, &ino) < 0)
		return -EINVAL;
	if (ino != inode)
		return -ENOENT;
	out->kind = PK_FD_UNIX;
	snprintf(out->proto, sizeof(out->proto), "unix");
	if (flags & 0x10000u) /* __SO_ACCEPTCON */
		snprintf(out->state, sizeof(out->state), "LISTEN");
	else
		snprintf(out->state, sizeof(out->state), "%s", st < 5 ? states[st] : "?");
	if (*p == ' ')
		p++;
	n = strcspn(p, "\n");
	if (n >= sizeof(out->path))
		n = sizeof(out->path) - 1;
	memcpy(out->path, p, n);
	out->path[n] = '\0';
	return 0;
}

/* Look the inode up in one /proc/PID/net table. 1 found, 0 not, -errno. */
static int net_table_find(pid_t pid, const char *name, uint64_t inode, struct pk_fd_info *out)
{
	char path[64], line[1024];
	unsigned lines = 0;
	bool v6 = strchr(name, '6') != NULL, tcp = strncmp(name, "tcp", 3) == 0, unix_ = strcmp(name, "unix") == 0;
	bool partial = false;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid, name);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	while (!found && lines < NET_MAX_LINES && fgets(line, sizeof(line), f) != NULL) {
		bool whole = strchr(line, '\n') != NULL;

		/* The first line is a header; a continuation of an over-long line is skipped. */
		if (lines++ > 0 && !partial) {
			int rc = unix_ ? pk_net_unix_line_parse(line, inode, out)
				       : pk_net_inet_line_parse(line, v6, tcp, inode, out);
			found = rc == 0;
		}
		partial = !whole;
	}
	fclose(f);
	return found;
}

/* A sock_diag socket in the network namespace of pid: sock_diag answers
 * for the namespace its socket was made in. Entering another one needs
 * CAP_SYS_ADMIN; -errno without it. */
static int netlink_in_ns_of(pid_t pid)
{
	char path[64];
	struct stat a, b;
	int self = -1, target = -1, s = -1, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &b) < 0)
		return -errno;
	if (stat("/proc/thread-self/ns/net", &a) < 0)
		return -errno;
	if (a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
		s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		return s < 0 ? -errno : s;
	}
	/* Another namespace (a container): enter it for the socket() only. */
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0) {
		err = -errno;
		goto out;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		err = -errno;
		goto out;
	}
	s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (s < 0)
		err = -errno;
	/* Should going back fail, pykill stays in the target's namespace:
	 * harmless, it makes no other use of the network. */
	(void)setns(self, CLONE_NEWNET);
out:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return s >= 0 ? s : err;
}

/* UNIX_DIAG_PEER of one socket: 0 and *peer, or -errno (no
 * CONFIG_UNIX_DIAG, no namespace, no peer: an unconnected socket). */
static int unix_peer(pid_t pid, uint64_t inode, uint64_t *peer)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg;
	union {
		struct nlmsghdr nlh;
		char buf[8192];
	} resp;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = 1 };
	ssize_t r;
	int s, rc = -ENOENT;

	if (inode > UINT32_MAX)
		return -ERANGE;
	s = netlink_in_ns_of(pid);
	if (s < 0)
		return s;
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.req.sdiag_family = AF_UNIX;
	msg.req.udiag_states = ~0u;
	msg.req.udiag_ino = (uint32_t)inode;
	msg.req.udiag_show = UDIAG_SHOW_PEER;
	msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0u; /* INET_DIAG_NOCOOKIE */
	if (sendto(s, &msg, sizeof(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	r = recv(s, resp.buf, sizeof(resp.buf), 0);
	if (r < 0) {
		rc = -errno;
		goto out;
	}
	/* Walked by offsets, each header copied out: the kernel aligns them to
	 * 4 bytes, but NLMSG_NEXT/RTA_NEXT cast char pointers, which clang's
	 * -Wcast-align rejects, and a reply is nothing to trust blindly. */
	for (size_t off = 0; off + sizeof(struct nlmsghdr) <= (size_t)r;) {
		struct nlmsghdr h;
		struct unix_diag_msg m;

		memcpy(&h, resp.buf + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > (size_t)r - off)
			break;
		if (h.nlmsg_type == NLMSG_ERROR || h.nlmsg_type == NLMSG_DONE)
			break;
		if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY || h.nlmsg_len < NLMSG_LENGTH(sizeof(m))) {
			off += NLMSG_ALIGN(h.nlmsg_len);
			continue;
		}
		memcpy(&m, resp.buf + off + NLMSG_HDRLEN, sizeof(m));
		if (m.udiag_ino != (uint32_t)inode) {
			off += NLMSG_ALIGN(h.nlmsg_len);
			continue;
		}
		for (size_t a = off + NLMSG_LENGTH(sizeof(m)); a + sizeof(struct rtattr) <= off + h.nlmsg_len;) {
			struct rtattr at;

			memcpy(&at, resp.buf + a, sizeof(at));
			if (at.rta_len < sizeof(at) || at.rta_len > off + h.nlmsg_len - a)
				break;
			if (at.rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(&at) >= sizeof(uint32_t)) {
				uint32_t v;
				memcpy(&v, resp.buf + a + RTA_LENGTH(0), sizeof(v));
				*peer = v;
				rc = 0;
			}
			a += RTA_ALIGN(at.rta_len);
		}
		break;
	}
out:
	close(s);
	return rc;
}

/* "pos:\t123\nflags:\t0100002\n...": the offset and the access mode. */
static void read_fdinfo(pid_t pid, int fd, long long *pos, char *mode)
{
	char path[64], buf[4096];
	const char *p;
	ssize_t r;
	int f;

	*pos = -1;
	*mode = '?';
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	r = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (r <= 0)
		return;
	buf[r] = '\0';
	p = strstr(buf, "pos:");
	if (p != NULL) {
		uint64_t v;
		p = skip_ws(p + 4);
		if (parse_u64(&p, 10, &v) == 0 && v <= (uint64_t)INT64_MAX)
			*pos = (long long)v;
	}
	p = strstr(buf, "flags:");
	if (p != NULL) {
		uint64_t v;
		p = skip_ws(p + 6);
		if (parse_u64(&p, 8, &v) == 0)
			*mode = (v & 3) == 0 ? 'r' : (v & 3) == 1 ? 'w' : (v & 3) == 2 ? 'u' : '?';
	}
}

static void read_comm(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	ssize_t r;
	int f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	buf[0] = '\0';
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	r = read(f, buf, cap - 1);
	close(f);
	if (r <= 0) {
		buf[0] = '\0';
		return;
	}
	buf[r] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

static bool inode_of(const char *target, const char *prefix, uint64_t *inode)
{
	size_t pl = strlen(prefix);
	const char *p;

	if (strncmp(target, prefix, pl) != 0)
		return false;
	p = target + pl;
	return parse_u64(&p, 10, inode) == 0 && strcmp(p, "]") == 0;
}

struct fd_ent {
	uint64_t inode;
	pid_t pid;
	int fd;
	bool pipe;
};

struct pk_fd_index {
	struct fd_ent *v;
	size_t n, cap;
	bool truncated; /* the walk hit a bound: some holders may be missing */
};

static int ent_cmp(const void *a, const void *b)
{
	const struct fd_ent *x = a, *y = b;

	if (x->pipe != y->pipe)
		return x->pipe ? 1 : -1;
	if (x->inode != y->inode)
		return x->inode < y->inode ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

static int index_push(struct pk_fd_index *ix, const struct fd_ent *e)
{
	if (ix->n == ix->cap) {
		size_t ncap = ix->cap ? ix->cap * 2 : 1024;
		struct fd_ent *nv = realloc(ix->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		ix->v = nv;
		ix->cap = ncap;
	}
	ix->v[ix->n++] = *e;
	return 0;
}

/* One process's pipe and socket descriptors. 0, or -ENOMEM / -E2BIG (bound hit). */
static int index_process(struct pk_fd_index *ix, pid_t pid, unsigned *links)
{
	char path[64];
	struct dirent *fe;
	DIR *fds;
	int rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	fds = opendir(path);
	if (fds == NULL)
		return 0; /* gone, or not ours to read */
	while (rc == 0 && (fe = readdir(fds)) != NULL) {
		char lp[96], target[64];
		const char *t = fe->d_name;
		struct fd_ent e;
		uint64_t fd;
		ssize_t r;

		if (parse_u64(&t, 10, &fd) < 0 || *t != '\0' || fd > INT32_MAX)
			continue;
		if (++*links > PK_FD_SCAN_MAX) {
			rc = -E2BIG;
			break;
		}
		snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", (int)pid, (int)fd);
		r = readlink(lp, target, sizeof(target) - 1);
		if (r <= 0)
			continue;
		target[r] = '\0';
		e.pid = pid;
		e.fd = (int)fd;
		if (inode_of(target, "pipe:[", &e.inode))
			e.pipe = true;
		else if (inode_of(target, "socket:[", &e.inode))
			e.pipe = false;
		else
			continue;
		rc = index_push(ix, &e);
	}
	closedir(fds);
	return rc;
}

static int index_build(struct pk_fd_index **out)
{
	struct pk_fd_index *ix = calloc(1, sizeof(*ix));
	unsigned procs = 0, links = 0;
	struct dirent *pe;
	DIR *proc;

	if (ix == NULL)
		return -ENOMEM;
	proc = opendir("/proc");
	if (proc == NULL) {
		ix->truncated = true;
		goto done;
	}
	while ((pe = readdir(proc)) != NULL) {
		const char *s = pe->d_name;
		uint64_t v;
		int rc;

		if (parse_u64(&s, 10, &v) < 0 || *s != '\0' || v == 0 || v > INT32_MAX)
			continue;
		if (++procs > SCAN_MAX_PROCS) {
			ix->truncated = true;
			break;
		}
		rc = index_process(ix, (pid_t)v, &links);
		if (rc < 0) {
			/* Out of memory or over the bound: what was read stays usable. */
			ix->truncated = true;
			break;
		}
	}
	closedir(proc);
done:
	if (ix->n > 1)
		qsort(ix->v, ix->n, sizeof(*ix->v), ent_cmp);
	*out = ix;
	return 0;
}

void pk_fd_index_free(struct pk_fd_index *ix)
{
	if (ix == NULL)
		return;
	free(ix->v);
	free(ix);
}

/* Every (process, fd) holding this pipe or socket inode, but (self_pid, self_fd). */
static void find_holders(struct pk_fd_index **ixp, bool pipe, uint64_t inode, pid_t self_pid, int self_fd,
			 struct pk_fd_info *out)
{
	struct pk_fd_index *ix;
	struct fd_ent key = { .inode = inode, .pid = 0, .fd = -1, .pipe = pipe };
	size_t lo = 0, hi;

	if (ixp == NULL || (*ixp == NULL && index_build(ixp) < 0))
		return;
	ix = *ixp;
	out->holders_truncated = ix->truncated;
	/* First entry not below key: (pipe, inode, pid 0, fd -1) sorts before every holder. */
	hi = ix->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ent_cmp(&ix->v[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < ix->n && ix->v[i].pipe == pipe && ix->v[i].inode == inode; i++) {
		struct pk_fd_holder *h;
		long long pos;

		if (ix->v[i].pid == self_pid && ix->v[i].fd == self_fd)
			continue;
		if (out->nholders == PK_FD_MAX_HOLDERS) {
			out->holders_truncated = true;
			break;
		}
		h = &out->holders[out->nholders++];
		h->pid = ix->v[i].pid;
		h->fd = ix->v[i].fd;
		read_fdinfo(h->pid, h->fd, &pos, &h->mode);
		read_comm(h->pid, h->comm, sizeof(h->comm));
	}
}

/* Keep only the holders at the other end of a pipe: the writers of a read
 * end, the readers of a write end (a holder of unknown mode stays). */
static void keep_other_end(struct pk_fd_info *out)
{
	size_t k = 0;

	if (out->mode != 'r' && out->mode != 'w')
		return;
	for (size_t i = 0; i < out->nholders; i++)
		if (out->holders[i].mode != out->mode)
			out->holders[k++] = out->holders[i];
	out->nholders = k;
}

int pk_proc_fd_info(pid_t pid, int fd, struct pk_fd_index **ix, struct pk_fd_info *out)
{
	static const char *const tables[] = { "tcp", "tcp6", "udp", "udp6", "unix" };
	char path[64];
	ssize_t r;

	if (out == NULL || pid <= 0 || fd < 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->pos = -1;
	out->mode = '?';
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	r = readlink(path, out->target, sizeof(out->target) - 1);
	if (r < 0) {
		int err = errno;
		if (err == ENOENT)
			return pk_proc_exists(pid, 0) ? -EBADF : -ESRCH;
		return -err;
	}
	out->target[r] = '\0';
	read_fdinfo(pid, fd, &out->pos, &out->mode);
	if (inode_of(out->target, "socket:[", &out->inode)) {
		out->kind = PK_FD_SOCKET;
		for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
			if (net_table_find(pid, tables[i], out->inode, out) == 1)
				break;
		if (out->kind == PK_FD_UNIX && unix_peer(pid, out->inode, &out->peer_inode) == 0 &&
		    out->peer_inode != 0)
			find_holders(ix, false, out->peer_inode, pid, fd, out);
		out->pos = -1;
	} else if (inode_of(out->target, "pipe:[", &out->inode)) {
		out->kind = PK_FD_PIPE;
		find_holders(ix, true, out->inode, pid, fd, out);
		keep_other_end(out);
		out->pos = -1;
	} else if (out->target[0] == '/') {
		out->kind = PK_FD_FILE;
	} else {
		out->kind = PK_FD_OTHER;
		out->pos = -1;
	}
	return 0;
}
