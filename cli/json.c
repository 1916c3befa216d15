#include "json.h"

#include <string.h>

void pk_json_init(struct pk_json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

static void sep(struct pk_json *j, const char *key);

static void put_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', out);
	for (; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
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
