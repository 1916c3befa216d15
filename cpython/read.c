/* SPDX-License-Identifier: MIT */
/* Typed reads of target memory: integers, strings, bytes. Every length that
 * comes from the target is bounded before it sizes an allocation. */
#include "py-priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pk_rd_u64(struct pk_py *py, uint64_t addr, uint64_t *out)
{
	return pk_mem_read(py->mem, addr, out, sizeof(*out));
}

int pk_rd_i32(struct pk_py *py, uint64_t addr, int32_t *out)
{
	return pk_mem_read(py->mem, addr, out, sizeof(*out));
}

static size_t put_utf8(char *dst, uint32_t cp)
{
	if (cp < 0x80) {
		dst[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (char)(0xc0 | (cp >> 6));
		dst[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp >= 0xdc80 && cp <= 0xdcff) {
		/* A byte that was not UTF-8, carried by surrogateescape (a file
		 * name from a non-UTF-8 file system, os.fsdecode): the byte
		 * itself, as os.fsencode gives it back. The CLI shows it as
		 * \xNN, JSON as this very code point. */
		dst[0] = (char)(cp & 0xff);
		return 1;
	}
	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd; /* another lone surrogate: no byte stands for it */
	if (cp < 0x10000) {
		dst[0] = (char)(0xe0 | (cp >> 12));
		dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		dst[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	if (cp > 0x10ffff)
		cp = 0xfffd;
	if (cp < 0x10000)
		return put_utf8(dst, cp);
	dst[0] = (char)(0xf0 | (cp >> 18));
	dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	dst[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Convert kind-sized code units to UTF-8. */
static char *units_to_utf8(const uint8_t *data, size_t n, unsigned kind)
{
	char *out = malloc(n * 4 + 1);
	size_t o = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		uint32_t cp;

		if (kind == 1) {
			cp = data[i];
		} else if (kind == 2) {
			uint16_t u;
			memcpy(&u, data + 2 * i, 2);
			cp = u;
		} else {
			memcpy(&cp, data + 4 * i, 4);
		}
		o += put_utf8(out + o, cp);
	}
	out[o] = '\0';
	return out;
}

static int read_units(struct pk_py *py, uint64_t addr, size_t n, unsigned kind, char **out)
{
	uint8_t *buf;
	int rc;

	buf = malloc(n * kind + 1);
	if (buf == NULL)
		return -ENOMEM;
	rc = pk_mem_read(py->mem, addr, buf, n * kind);
	if (rc == 0) {
		*out = units_to_utf8(buf, n, kind);
		if (*out == NULL)
			rc = -ENOMEM;
	}
	free(buf);
	return rc;
}

static int read_str27(struct pk_py *py, uint64_t obj, const uint8_t *hdr, size_t hlen, size_t max, char **out)
{
	const struct pk_layout *L = &py->layout;
	int64_t size = (int64_t)pk_get_u64(hdr, hlen, L->var_ob_size);
	char *s;
	int rc;

	if (size < 0 || size > (int64_t)PK_MAX_STRING)
		return -EINVAL;
	if ((uint64_t)size > max)
		return -ERANGE;
	s = malloc((size_t)size + 1);
	if (s == NULL)
		return -ENOMEM;
	rc = pk_mem_read(py->mem, obj + (uint64_t)L->bytes_ob_sval, s, (size_t)size);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s[size] = '\0';
	/* 2.7 str is bytes, kept as they are: UTF-8 shows as text, other bytes
	 * as \xNN (CLI) or \udcNN (JSON, surrogateescape: lossless). */
	*out = s;
	return 0;
}

/* At most max characters: a longer string is cut there when truncate, else
 * refused with -ERANGE before its characters are read. */
static int rd_string(struct pk_py *py, uint64_t obj, size_t max, bool truncate, char **out)
{
	const struct pk_layout *L = &py->layout;
	uint8_t hdr[128];
	size_t hlen;
	int rc;

	*out = NULL;
	if (obj == 0)
		return -EINVAL;
	hlen = (size_t)(L->uni_compact_size > 0 ? L->uni_compact_size : 64);
	if (L->uni_data_any > 0 && (size_t)L->uni_data_any + 8 > hlen)
		hlen = (size_t)L->uni_data_any + 8;
	if (hlen > sizeof(hdr))
		hlen = sizeof(hdr);
	rc = pk_mem_read(py->mem, obj, hdr, hlen);
	if (rc < 0) {
		/* A small object near the end of a mapping: the exact fields only. */
		hlen = (size_t)(L->uni_ascii_size > 0 ? L->uni_ascii_size : 0x30);
		if (hlen > sizeof(hdr))
			hlen = sizeof(hdr); /* a size from _Py_DebugOffsets is the target's word */
		rc = pk_mem_read(py->mem, obj, hdr, hlen);
		if (rc < 0)
			return rc;
	}
	if (py->major == 2) {
		uint64_t type = pk_get_u64(hdr, hlen, L->ob_type);
		if (py->str_type == 0 || type == py->str_type)
			return read_str27(py, obj, hdr, hlen, truncate ? PK_MAX_STRING : max, out);
		/* 2.7 unicode object: Py_UNICODE (UCS4 on Linux) array. */
		int64_t n = (int64_t)pk_get_u64(hdr, hlen, L->uni27_length);
		uint64_t data = pk_get_u64(hdr, hlen, L->uni27_str);
		if (L->uni27_length < 0 || n < 0 || n > (int64_t)PK_MAX_STRING)
			return -EINVAL;
		if (!truncate && (uint64_t)n > max)
			return -ERANGE;
		return read_units(py, data, (size_t)n, 4, out);
	}

	{
		int64_t n = (int64_t)pk_get_u64(hdr, hlen, L->uni_length);
		uint32_t state = (uint32_t)pk_get_i32(hdr, hlen, L->uni_state);
		/* The bit-field positions come from the headers; these are CPython's since 3.3. */
		uint32_t kmask = L->uni_kind_mask ? L->uni_kind_mask : 0x1c;
		unsigned kind = (state & kmask) >> __builtin_ctz(kmask);
		bool compact = (state & (L->uni_compact_mask ? L->uni_compact_mask : 0x20)) != 0;
		bool ascii = (state & (L->uni_ascii_mask ? L->uni_ascii_mask : 0x40)) != 0;
		uint64_t data;

		if (py->str_type != 0 && pk_get_u64(hdr, hlen, L->ob_type) != py->str_type)
			return -EINVAL;
		if (n < 0 || (kind != 1 && kind != 2 && kind != 4))
			return -EINVAL;
		if (!truncate && (uint64_t)n > max)
			return -ERANGE;
		if (n > (int64_t)PK_MAX_STRING)
			n = PK_MAX_STRING; /* show the start of an absurdly long name */
		if (compact)
			data = obj + (uint64_t)(ascii ? L->uni_ascii_size : L->uni_compact_size);
		else
			data = pk_get_u64(hdr, hlen, L->uni_data_any);
		return read_units(py, data, (size_t)n, kind, out);
	}
}

int pk_rd_string(struct pk_py *py, uint64_t obj, char **out)
{
	return rd_string(py, obj, PK_MAX_STRING, true, out);
}

int pk_rd_string_upto(struct pk_py *py, uint64_t obj, size_t max, char **out)
{
	return rd_string(py, obj, max < PK_MAX_STRING ? max : PK_MAX_STRING, false, out);
}

int pk_rd_bytes(struct pk_py *py, uint64_t obj, size_t max, uint8_t **out, size_t *len)
{
	const struct pk_layout *L = &py->layout;
	uint64_t size;
	uint8_t *buf;
	int rc;

	*out = NULL;
	*len = 0;
	rc = pk_rd_u64(py, obj + (uint64_t)L->var_ob_size, &size);
	if (rc < 0)
		return rc;
	if ((int64_t)size < 0 || size > max)
		return -EINVAL;
	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return -ENOMEM;
	rc = pk_mem_read(py->mem, obj + (uint64_t)L->bytes_ob_sval, buf, size);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = size;
	return 0;
}
