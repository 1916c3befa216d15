/* SPDX-License-Identifier: MIT */
/* A minimal streaming JSON writer: enough for pykill's documented schemas. */
#ifndef PK_CLI_JSON_H
#define PK_CLI_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct pk_json {
	FILE *out;
	int depth;
	bool need_comma[32];
};

void pk_json_init(struct pk_json *j, FILE *out);
void pk_json_obj_begin(struct pk_json *j, const char *key);
void pk_json_obj_end(struct pk_json *j);
void pk_json_arr_begin(struct pk_json *j, const char *key);
void pk_json_arr_end(struct pk_json *j);
void pk_json_str(struct pk_json *j, const char *key, const char *val); /* NULL → null */
void pk_json_int(struct pk_json *j, const char *key, long long val);
void pk_json_uint(struct pk_json *j, const char *key, unsigned long long val);
void pk_json_bool(struct pk_json *j, const char *key, bool val);
void pk_json_null(struct pk_json *j, const char *key);
void pk_json_seconds(struct pk_json *j, const char *key, uint64_t ns); /* 12.345 (ms precision) */
void pk_json_end(struct pk_json *j); /* newline */

#endif
