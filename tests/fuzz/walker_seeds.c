/* SPDX-License-Identifier: MIT */
/* Seeds for fuzz_walker: for every layout of the table, the well-formed
 * image of tests/fuzz/pyimage.h (two threads with stacks and names) in
 * fuzz_walker's input format. Regenerate the committed corpus with
 *
 *   build/tests/fuzz/walker_seeds tests/fuzz/corpus/walker
 *
 * after a change to the builder or the layout table. */
#include <stdio.h>
#include <stdlib.h>

#include "pyimage.h"

static int write_seed(const char *dir, const char *name, uint8_t flags, uint8_t max_frames, const struct pyimg *im)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	ok = fputc(flags, f) != EOF && fputc(max_frames, f) != EOF && fwrite(im->bytes, 1, im->used, f) == im->used;
	if (fclose(f) != 0 || !ok) {
		perror(path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < pk_layouts_count && i < 16; i++) {
		int major = pk_layouts[i].version >> 8, minor = pk_layouts[i].version & 0xff;
		struct pyimg im;
		struct pyimg_std s;
		char name[64];

		if (pyimg_init(&im, major, minor, 1u << 20) < 0)
			return 1;
		pyimg_standard(&im, &s, true);
		if (im.oom)
			return 1;
		/* names and type checks on, 16 frames; and the same through the page
		 * cache for this layout (flags >> 4), without type checks */
		snprintf(name, sizeof(name), "std-%d.%d", major, minor);
		if (write_seed(argv[1], name, 0x06, 15, &im) < 0)
			return 1;
		snprintf(name, sizeof(name), "std-%d.%d-cache-notypes", major, minor);
		if (write_seed(argv[1], name, (uint8_t)(i << 4 | 0x0a), 15, &im) < 0)
			return 1;
		pyimg_free(&im);
	}
	return 0;
}
