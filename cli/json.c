/* SPDX-License-Identifier: MIT */
#include "json.h"
#include "esc.h"

#include <string.h>

void pk_json_init(struct pk_json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

static void sep(struct pk_json *j, const char *key);

/* RFC 8259: '"', '\\' and the control characters escaped; the other code
 * points that a terminal would act on (pk_esc_hidden) escaped too, so that
 * the output is safe to look at and still exact. Bytes that are not valid
 * UTF-8 (a 2.7 byte string, a file name from a non-UTF-8 file system, which a
 * 3.x str carries as U+DC80..U+DCFF and the reader keeps as the byte) become
 * \udcNN: Python's surrogateescape, so the value is lossless and
 * s.encode("utf-8", "surrogateescape") gives the bytes back. */
static void put_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	fputc('"', out);
	for (; *p; p += n ? n : 1) {
		n = pk_utf8_char(p, &cp);
		if (n == 0) {
			fprintf(out, "\\udc%02x", *p);
			continue;
		}
		switch (cp) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (pk_esc_hidden(cp))
				fprintf(out, "\\u%04x", (unsigned)cp);
			else
				fwrite(p, 1, n, out);
		}
	}
	fputc('"', out);
}

static void sep(struct pk_json *j, const char *key)
{
	if (j->depth > 0 && j->need_comma[j->depth])
		fputc(',', j->out);
	if (j->depth > 0)
		j->need_comma[j->depth] = true;
	if (key != NULL) {
		put_string(j->out, key);
		fputc(':', j->out);
	}
}

void pk_json_obj_begin(struct pk_json *j, const char *key)
{
	sep(j, key);
	fputc('{', j->out);
	if (j->depth < 31)
		j->depth++;
	j->need_comma[j->depth] = false;
}

void pk_json_obj_end(struct pk_json *j)
{
	fputc('}', j->out);
	if (j->depth > 0)
		j->depth--;
}

void pk_json_arr_begin(struct pk_json *j, const char *key)
{
	sep(j, key);
	fputc('[', j->out);
	if (j->depth < 31)
		j->depth++;
	j->need_comma[j->depth] = false;
}

void pk_json_arr_end(struct pk_json *j)
{
	fputc(']', j->out);
	if (j->depth > 0)
		j->depth--;
}

void pk_json_str(struct pk_json *j, const char *key, const char *val)
{
	sep(j, key);
	if (val == NULL)
		fputs("null", j->out);
	else
		put_string(j->out, val);
}

void pk_json_int(struct pk_json *j, const char *key, long long val)
{
	sep(j, key);
	fprintf(j->out, "%lld", val);
}

void pk_json_uint(struct pk_json *j, const char *key, unsigned long long val)
{
	sep(j, key);
	fprintf(j->out, "%llu", val);
}

void pk_json_bool(struct pk_json *j, const char *key, bool val)
{
	sep(j, key);
	fputs(val ? "true" : "false", j->out);
}

void pk_json_null(struct pk_json *j, const char *key)
{
	sep(j, key);
	fputs("null", j->out);
}

void pk_json_end(struct pk_json *j)
{
	fputc('\n', j->out);
	fflush(j->out);
}

void pk_json_seconds(struct pk_json *j, const char *key, uint64_t ns)
{
	sep(j, key);
	fprintf(j->out, "%llu.%03llu", (unsigned long long)(ns / 1000000000u),
		(unsigned long long)(ns % 1000000000u / 1000000u));
}
