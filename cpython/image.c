/* SPDX-License-Identifier: MIT */
/* An interpreter model around a memory image instead of a live process.
 *
 * Target memory is untrusted, and the only way to show that the walker
 * survives any of it is to hand it memory nobody could get from a real
 * CPython: cycles, wild pointers, absurd sizes, objects cut short. The unit
 * tests and the fuzzer build such images behind pk_mem_open_ops() and walk
 * them here with the same code pk_py_snapshot() uses, minus /proc and the
 * freeze, which need a process. */
#include "py-priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pk_py_open_image(const struct pk_layout *layout, int major, int minor, uint64_t runtime_or_interp_head,
		     struct pk_mem *mem, struct pk_py **out)
{
	struct pk_py *py;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (layout == NULL || mem == NULL || (major != 2 && major != 3) || minor < 0 || minor > 99) {
		pk_error("open memory image: invalid arguments");
		return -EINVAL;
	}
	py = calloc(1, sizeof(*py));
	if (py == NULL) {
		pk_error("open memory image: out of memory");
		return -ENOMEM;
	}
	py->pthread_tid_offset = -1;
	py->major = major;
	py->minor = minor;
	snprintf(py->version, sizeof(py->version), "%d.%d", major, minor);
	py->layout = *layout;
	/* Short: dbgoff.c appends what _Py_DebugOffsets changed. */
	snprintf(py->layout_source, sizeof(py->layout_source), "memory image %d.%d", major, minor);
	py->path = strdup("<memory image>");
	if (py->path == NULL) {
		free(py);
		pk_error("open memory image: out of memory");
		return -ENOMEM;
	}
	/* 2.7 and 3.6 keep the interpreter list in a static; later versions in _PyRuntime. */
	if (major == 2 || minor < 7)
		py->interp_head_var = runtime_or_interp_head;
	else
		py->runtime = runtime_or_interp_head;
	py->mem = mem;
	/* No binary to check against: exact only when the table is this version's. */
	py->lcheck.table_exact = layout->version == (uint16_t)(major << 8 | minor);
	if (major == 3 && minor >= 13) {
		/* Offsets the image publishes win; a missing or invalid
		 * _Py_DebugOffsets leaves the table's. A free-threaded build is
		 * refused: its object headers are not the table's. */
		rc = pk_dbgoff_apply(py);
		if (rc == -ENOMEM || rc == -ENOTSUP) {
			py->mem = NULL; /* the caller keeps it on failure */
			pk_py_close(py);
			return rc;
		}
	}
	*out = py;
	return 0;
}

int pk_py_read_image(struct pk_py *py, const struct pk_snapshot_opts *opts, struct pk_py_snapshot **out)
{
	return pk_py_read_image_limited(py, opts, NULL, out);
}

int pk_py_read_image_limited(struct pk_py *py, const struct pk_snapshot_opts *opts, const struct pk_read_limits *lim,
			     struct pk_py_snapshot **out)
{
	struct pk_py_snapshot *snap;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (py == NULL || opts == NULL)
		return -EINVAL;
	snap = calloc(1, sizeof(*snap));
	if (snap == NULL) {
		pk_error("read memory image: out of memory");
		return -ENOMEM;
	}
	rc = pk_py_read_threads(py, opts, lim, snap);
	if (rc < 0) {
		pk_py_snapshot_free(snap);
		return rc;
	}
	*out = snap;
	return 0;
}
