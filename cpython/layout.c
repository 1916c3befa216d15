/* Lookup in the generated per-version table (cpython/layouts_gen.c). */
#include "layout.h"

const struct pk_layout *pk_layout_find(int major, int minor)
{
	uint16_t want;

	/* Reject before narrowing, so 3.271 cannot alias some 4.15. */
	if (major < 0 || major > 0xff || minor < 0 || minor > 0xff)
		return NULL;
	want = (uint16_t)(major << 8 | minor);
	for (size_t i = 0; i < pk_layouts_count; i++) {
		if (pk_layouts[i].version == want)
			return &pk_layouts[i];
	}
	return NULL;
}
