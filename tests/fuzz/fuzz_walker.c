/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the interpreter walk (cpython/): arbitrary bytes as
 * the memory of a Python process.
 *
 * Input: one flags byte (F_*), one max-frames byte, then the image, mapped at
 * PYIMG_BASE (tests/fuzz/pyimage.h), whose first bytes are _PyRuntime
 * (3.7+) or the interp_head variable (2.7, 3.6). Every input is walked with
 * every layout of the generated table, as pk_py_snapshot() walks a live
 * process (threads, frames, names; 3.13+ also _Py_DebugOffsets from the
 * image). The walk must end with an error or a result whose every count and
 * string is within its documented bound. Seeds: well-formed images written
 * by walker_seeds.c (tests/fuzz/corpus/walker). It needs the whole cpython
 * module, so it is built by CMake: -DPYKILL_FUZZ=ON (tests/fuzz/CMakeLists.txt). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyimage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_NO_FRAMES 0x01
#define F_NAMES 0x02
#define F_TYPES 0x04
#define F_CACHE 0x08 /* the page cache, for the layout (flags >> 4) only: it costs 64 MiB per walk */

static void check(const struct pk_py_snapshot *snap, unsigned max_frames)
{
	if (snap->nthreads > (size_t)PK_MAX_THREADS * PK_MAX_INTERPS)
		abort();
	for (size_t i = 0; i < snap->nthreads; i++) {
		const struct pk_py_thread *t = &snap->threads[i];

		if (t->nframes > max_frames || (t->nframes > 0 && t->frames == NULL))
			abort();
		for (size_t j = 0; j < t->nframes; j++) {
			const struct pk_py_frame *f = &t->frames[j];
			if (f->function == NULL || f->file == NULL || f->line < 0 ||
			    strlen(f->function) > 4 * PK_MAX_STRING || strlen(f->file) > 4 * PK_MAX_STRING)
				abort();
		}
		if (t->name != NULL && strlen(t->name) > 4 * PK_MAX_STRING)
			abort();
		if (t->frames_error != NULL && strlen(t->frames_error) > 200)
			abort();
	}
}

static void walk(const struct pk_layout *L, uint8_t *image, size_t len, uint8_t flags, unsigned max_frames,
		 bool cache)
{
	struct pyimg im;
	struct pk_mem *mem;
	struct pk_py *py = NULL;
	struct pk_py_snapshot *snap = NULL;
	struct pk_snapshot_opts opts = {
		.max_frames = max_frames,
		.want_frames = !(flags & F_NO_FRAMES),
		.want_names = (flags & F_NAMES) != 0,
	};
	int rc;

	memset(&im, 0, sizeof(im));
	im.L = L;
	im.major = L->version >> 8;
	im.minor = L->version & 0xff;
	im.bytes = image;
	im.cap = im.used = len;
	if (pk_mem_open_ops(&pyimg_ops, &im, &mem) < 0)
		abort();
	rc = pk_py_open_image(L, im.major, im.minor, PYIMG_BASE, mem, &py);
	if (rc < 0) {
		/* Only a _Py_DebugOffsets of the other flavour (free-threaded or
		 * not) than the entry is refused. */
		if (rc != -ENOTSUP)
			abort();
		pk_mem_close(mem);
		return;
	}
	if (flags & F_TYPES) {
		py->code_type = PYIMG_CODE_TYPE;
		py->str_type = PYIMG_STR_TYPE;
		py->dict_type = PYIMG_DICT_TYPE;
	}
	pk_mem_cache_enable(py->mem, cache);
	rc = pk_py_read_image(py, &opts, &snap);
	if (rc == 0) {
		if (snap == NULL)
			abort();
		check(snap, max_frames);
	} else if (rc > 0 || rc < -4095 || snap != NULL) {
		abort();
	}
	pk_py_snapshot_free(snap);
	pk_py_close(py);
	pk_error_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *image;
	size_t len;
	unsigned max_frames;

	if (size < 2)
		return 0;
	/* Small stacks keep each run short; the walk's own bounds are the
	 * unit tests' business. */
	max_frames = data[1] % 64 + 1;
	len = size - 2;
	/* An exact-size copy: a read one byte past the image is caught. */
	image = malloc(len ? len : 1);
	if (image == NULL)
		return 0;
	memcpy(image, data + 2, len);
	for (size_t i = 0; i < pk_layouts_count; i++)
		walk(&pk_layouts[i], image, len, data[0], max_frames,
		     (data[0] & F_CACHE) && i == (size_t)(data[0] >> 4) % pk_layouts_count);
	free(image);
	return 0;
}
