/* SPDX-License-Identifier: MIT */
/* Thread names: threading.Thread.name lives only in Python objects. Read it
 * the way py-spy does: interp->modules["threading"].__dict__["_active"] maps
 * idents to Thread objects, whose instance attribute "_name" (2.7:
 * "_Thread__name") is the name. Threads that threading does not know about
 * (started from C, or with _thread directly) have no name.
 *
 * Dicts are read generically per version: the classic table (2.7), the
 * compact dict with an index table (3.6+), split dicts whose values live in
 * the instance or in a values array and whose keys are shared by the type
 * (3.11+). Every count comes from the target and is bounded. */
#include "py-priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NAMES_MAX_ENTRIES (1u << 17)
/* Dict entries and key strings looked at in one pk_names_read(). Each dict
 * is bounded, but _active may hold 2^17 entries for one thread whose
 * instance dict has 2^17 keys: without a total, that is 2^34 string reads. */
#define NAMES_MAX_WORK (1u << 22)

/* Layout of PyDictKeysObject before 3.11, when it was private to
 * Objects/dict-common.h and so absent from the installed headers the
 * generator reads: five Py_ssize_t-sized fields (dk_refcnt, dk_size,
 * dk_lookup, dk_usable, dk_nentries), then the index table, then entries
 * of three pointers. The same from 3.6 to 3.10. */
#define DK36_SIZE 8
#define DK36_NENTRIES 32
#define DK36_INDICES 40
#define DK36_ENTRY 24

struct entry {
	uint64_t key, value;
};

/* A Python int that fits in 64 bits. */
static int read_long(struct pk_py *py, uint64_t obj, uint64_t *out)
{
	const struct pk_layout *L = &py->layout;
	uint8_t buf[64]; /* up to 3 digits after the header: 0x28 + 12 on free-threaded builds */
	uint64_t v = 0;
	int64_t ndigits;
	int sign = 1;

	if (pk_mem_read(py->mem, obj, buf, sizeof(buf)) < 0)
		return -EFAULT;
	if (py->major == 2) {
		/* PyIntObject: ob_ival right after the header; idents above LONG_MAX are PyLong. */
		int64_t iv;
		memcpy(&iv, buf + 16, 8);
		*out = (uint64_t)iv;
		return 0;
	}
	if (py->minor >= 12) { /* 3.12+: lv_tag = ndigits << 3 | sign bits */
		uint64_t tag = pk_get_u64(buf, sizeof(buf), L->long_lv_tag);
		ndigits = (int64_t)(tag >> 3);
		sign = 1 - (int)(tag & 3);
	} else {
		ndigits = (int64_t)pk_get_u64(buf, sizeof(buf), L->var_ob_size);
		if (ndigits < -3)
			return -ERANGE; /* and -INT64_MIN would overflow */
		if (ndigits < 0) {
			sign = -1;
			ndigits = -ndigits;
		}
	}
	if (ndigits > 3 || sign < 0 || L->long_digits < 0 || (size_t)L->long_digits + 12 > sizeof(buf))
		return -ERANGE;
	for (int64_t i = ndigits - 1; i >= 0; i--) {
		uint32_t d;
		memcpy(&d, buf + L->long_digits + 4 * i, 4);
		v = (v << 30) | (d & 0x3fffffff);
	}
	*out = v;
	return 0;
}

static int index_bytes_for(uint64_t size)
{
	if (size <= 0xff)
		return 1;
	if (size <= 0xffff)
		return 2;
	if (size <= 0xffffffffULL)
		return 4;
	return 8;
}

/* The live entries of a keys object: (key, value-or-index). When values is
 * non-zero the dict is split and the values are read from there. */
static int keys_entries(struct pk_py *py, uint64_t keys, uint64_t values, struct entry **out, size_t *nout,
			uint64_t *work)
{
	const struct pk_layout *L = &py->layout;
	uint8_t hdr[64];
	uint64_t nentries, entries;
	size_t esize, koff, voff;
	uint8_t *raw = NULL;
	struct entry *ents = NULL;
	size_t k = 0;
	int rc;

	*out = NULL;
	*nout = 0;
	if (pk_mem_read(py->mem, keys, hdr, sizeof(hdr)) < 0)
		return -EFAULT;
	if (py->minor >= 11) {
		uint8_t log2_index = pk_get_u8(hdr, sizeof(hdr), L->dk_log2_index_bytes);
		uint8_t kind = pk_get_u8(hdr, sizeof(hdr), L->dk_kind);

		if (L->dk_indices < 0 || log2_index > 40)
			return -EINVAL;
		nentries = pk_get_u64(hdr, sizeof(hdr), L->dk_nentries);
		entries = keys + (uint64_t)L->dk_indices + (1ULL << log2_index);
		if (kind == 0) {
			esize = (size_t)L->dk_entry_size;
			koff = 8;
			voff = 16;
		} else {
			esize = (size_t)L->dk_unicode_entry_size;
			koff = 0;
			voff = 8;
		}
	} else {
		uint64_t size = pk_get_u64(hdr, sizeof(hdr), DK36_SIZE);

		if (size == 0 || size > (1ULL << 40))
			return -EINVAL;
		nentries = pk_get_u64(hdr, sizeof(hdr), DK36_NENTRIES);
		entries = keys + DK36_INDICES + size * (uint64_t)index_bytes_for(size);
		esize = DK36_ENTRY;
		koff = 8;
		voff = 16;
	}
	if (nentries > NAMES_MAX_ENTRIES || esize < 16 || esize > 64)
		return -EINVAL;
	if (nentries == 0)
		return 0;
	*work += nentries;
	if (*work > NAMES_MAX_WORK)
		return -E2BIG;
	raw = malloc(nentries * esize);
	ents = calloc(nentries, sizeof(*ents));
	if (raw == NULL || ents == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = pk_mem_read(py->mem, entries, raw, nentries * esize);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < nentries; i++) {
		uint64_t key, val;
		memcpy(&key, raw + i * esize + koff, 8);
		memcpy(&val, raw + i * esize + voff, 8);
		if (key == 0)
			continue; /* deleted or never used */
		if (values != 0) {
			if (pk_rd_u64(py, values + 8 * i, &val) < 0)
				continue;
		}
		if (val == 0)
			continue;
		ents[k].key = key;
		ents[k].value = val;
		k++;
	}
	*out = ents;
	*nout = k;
	ents = NULL;
	rc = 0;
out:
	free(raw);
	free(ents);
	return rc;
}

static int dict_entries27(struct pk_py *py, uint64_t dict, struct entry **out, size_t *nout, uint64_t *work)
{
	const struct pk_layout *L = &py->layout;
	uint64_t mask = 0, table = 0;
	uint8_t *raw;
	struct entry *ents;
	size_t n, k = 0;

	if (pk_rd_u64(py, dict + (uint64_t)L->dict27_ma_mask, &mask) < 0 ||
	    pk_rd_u64(py, dict + (uint64_t)L->dict27_ma_table, &table) < 0)
		return -EFAULT;
	if (mask >= NAMES_MAX_ENTRIES)
		return -EINVAL;
	n = (size_t)mask + 1;
	*work += n;
	if (*work > NAMES_MAX_WORK)
		return -E2BIG;
	raw = malloc(n * 24);
	ents = calloc(n, sizeof(*ents));
	if (raw == NULL || ents == NULL || pk_mem_read(py->mem, table, raw, n * 24) < 0) {
		free(raw);
		free(ents);
		return raw && ents ? -EFAULT : -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t key, val;
		memcpy(&key, raw + i * 24 + 8, 8);
		memcpy(&val, raw + i * 24 + 16, 8);
		if (key == 0 || val == 0)
			continue; /* empty, or dummy (deleted) */
		ents[k].key = key;
		ents[k].value = val;
		k++;
	}
	free(raw);
	*out = ents;
	*nout = k;
	return 0;
}

static int dict_entries(struct pk_py *py, uint64_t dict, struct entry **out, size_t *nout, uint64_t *work)
{
	const struct pk_layout *L = &py->layout;
	uint64_t keys = 0, values = 0;

	if (dict == 0)
		return -EINVAL;
	if (py->dict_type != 0) {
		uint64_t type = 0;
		if (pk_rd_u64(py, dict + (uint64_t)L->ob_type, &type) < 0 || type != py->dict_type)
			return -EINVAL;
	}
	if (py->major == 2)
		return dict_entries27(py, dict, out, nout, work);
	if (pk_rd_u64(py, dict + (uint64_t)L->dict_ma_keys, &keys) < 0 ||
	    pk_rd_u64(py, dict + (uint64_t)L->dict_ma_values, &values) < 0)
		return -EFAULT;
	if (values != 0 && L->dv_values > 0)
		values += (uint64_t)L->dv_values;
	return keys_entries(py, keys, values, out, nout, work);
}

/* Find the value whose key is the string want. *hint remembers the key
 * object that matched last time: attribute names are interned, so every
 * instance's dict holds the same key object. */
static uint64_t find_str(struct pk_py *py, const struct entry *ents, size_t n, const char *want, uint64_t *hint,
			 uint64_t *work)
{
	for (size_t i = 0; i < n && *hint; i++)
		if (ents[i].key == *hint)
			return ents[i].value;
	for (size_t i = 0; i < n; i++) {
		char *s = NULL;
		bool eq;
		if (++*work > NAMES_MAX_WORK)
			return 0;
		/* Only a key as short as want can be want: longer ones are not read. */
		if (pk_rd_string_upto(py, ents[i].key, strlen(want), &s) < 0)
			continue;
		eq = strcmp(s, want) == 0;
		free(s);
		if (eq) {
			*hint = ents[i].key;
			return ents[i].value;
		}
	}
	return 0;
}

static uint64_t dict_get(struct pk_py *py, uint64_t dict, const char *want, uint64_t *hint, uint64_t *work)
{
	struct entry *ents = NULL;
	size_t n = 0;
	uint64_t v = 0;

	if (dict_entries(py, dict, &ents, &n, work) == 0)
		v = find_str(py, ents, n, want, hint, work);
	free(ents);
	return v;
}

/* An instance attribute, wherever this version keeps the instance dict. */
static uint64_t attr_get(struct pk_py *py, uint64_t obj, const char *want, uint64_t *hint, uint64_t *work)
{
	const struct pk_layout *L = &py->layout;
	uint8_t tb[1024];
	size_t tlen;
	uint64_t type, flags;
	int64_t dictoffset;

	if (pk_rd_u64(py, obj + (uint64_t)L->ob_type, &type) < 0 || type == 0)
		return 0;
	tlen = (size_t)(L->ht_cached_keys > 0 ? L->ht_cached_keys + 8 : L->tp_dictoffset + 8);
	if (tlen > sizeof(tb) || tlen < (size_t)L->tp_flags + 8)
		tlen = sizeof(tb) < 0x1a0 ? sizeof(tb) : 0x1a0;
	if (pk_mem_read(py->mem, type, tb, tlen) < 0)
		return 0;
	flags = pk_get_u64(tb, tlen, L->tp_flags);

	if (L->tpflags_managed_dict != 0 && (flags & L->tpflags_managed_dict) && L->managed_dict_offset != PK_NOFF) {
		uint64_t slot = 0, dict = 0, values = 0;
		uint64_t keys = pk_get_u64(tb, tlen, L->ht_cached_keys);

		if (pk_rd_u64(py, obj + (uint64_t)(int64_t)L->managed_dict_offset, &slot) < 0)
			return 0;
		if (L->tpflags_inline_values != 0) {
			/* 3.13+: the values sit right after the object unless a dict was made. */
			dict = slot;
			if (dict == 0 && (flags & L->tpflags_inline_values)) {
				uint8_t valid = 0;
				uint64_t basic = pk_get_u64(tb, tlen, L->tp_basicsize);
				if (basic > (1u << 20) ||
				    pk_mem_read(py->mem, obj + basic + 3, &valid, 1) < 0 || !valid)
					return 0;
				values = obj + basic + (uint64_t)L->dv_values;
			}
		} else if (py->minor == 11) {
			/* 3.11: dict pointer at -3 words, values pointer at -4 words. */
			dict = slot;
			if (dict == 0 && pk_rd_u64(py, obj + (uint64_t)(int64_t)L->managed_dict_offset - 8, &values) < 0)
				return 0;
		} else if (slot & 1) {
			values = slot + 1; /* 3.12: a tagged values pointer */
		} else {
			dict = slot;
		}
		if (dict != 0)
			return dict_get(py, dict, want, hint, work);
		if (values != 0 && keys != 0) {
			struct entry *ents = NULL;
			size_t n = 0;
			uint64_t v = 0;
			if (keys_entries(py, keys, values, &ents, &n, work) == 0)
				v = find_str(py, ents, n, want, hint, work);
			free(ents);
			return v;
		}
		return 0;
	}
	dictoffset = (int64_t)pk_get_u64(tb, tlen, L->tp_dictoffset);
	if (dictoffset <= 0 || dictoffset > (1 << 20)) {
		return 0;
	} else {
		uint64_t dict = 0;
		if (pk_rd_u64(py, obj + (uint64_t)dictoffset, &dict) < 0)
			return 0;
		return dict_get(py, dict, want, hint, work);
	}
}

/* A module's __dict__: PyModuleObject.md_dict where the headers give it,
 * else through the module type's tp_dictoffset (the same field). */
static uint64_t module_dict(struct pk_py *py, uint64_t module)
{
	const struct pk_layout *L = &py->layout;
	uint64_t dict = 0, type = 0;
	int64_t off = L->module_md_dict;

	if (off == PK_NOFF) {
		uint64_t v = 0;
		if (pk_rd_u64(py, module + (uint64_t)L->ob_type, &type) < 0 ||
		    pk_rd_u64(py, type + (uint64_t)L->tp_dictoffset, &v) < 0 || (int64_t)v <= 0 || v > 4096)
			return 0;
		off = (int64_t)v;
	}
	if (pk_rd_u64(py, module + (uint64_t)off, &dict) < 0)
		return 0;
	return dict;
}

struct by_ident {
	uint64_t ident;
	size_t i;
};

static int cmp_ident(const void *a, const void *b)
{
	const struct by_ident *x = a, *y = b;

	if (x->ident != y->ident)
		return x->ident < y->ident ? -1 : 1;
	return x->i < y->i ? -1 : (x->i > y->i);
}

/* The first thread of ident that has no name yet, or NULL. Idents are
 * unique in a sane process; corrupt memory may repeat one many times, so
 * only the first few threads of an ident are considered. */
static struct pk_py_thread *thread_of(struct pk_py_thread *threads, const struct by_ident *sorted, size_t n,
				      uint64_t ident)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sorted[mid].ident < ident)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k < n && k < lo + 8 && sorted[k].ident == ident; k++)
		if (threads[sorted[k].i].name == NULL)
			return &threads[sorted[k].i];
	return NULL;
}

int pk_names_read(struct pk_py *py, uint64_t interp, struct pk_py_thread *threads, size_t n)
{
	const struct pk_layout *L = &py->layout;
	uint64_t modules = 0, module, md_dict = 0, active;
	uint64_t hint_mod = 0, hint_active = 0, hint_name = 0, work = 0;
	struct entry *ents = NULL;
	struct by_ident *sorted;
	size_t nents = 0;
	const char *attr = py->major == 2 ? "_Thread__name" : "_name";

	if (L->is_modules < 0 || pk_rd_u64(py, interp + (uint64_t)L->is_modules, &modules) < 0 || modules == 0) {
		pk_log(PK_LOG_DEBUG, "names: no modules dict in interpreter 0x%llx", (unsigned long long)interp);
		return -ENOENT;
	}
	module = dict_get(py, modules, "threading", &hint_mod, &work);
	if (module == 0) {
		pk_log(PK_LOG_DEBUG, "names: no 'threading' in sys.modules (dict 0x%llx)", (unsigned long long)modules);
		return -ENOENT; /* threading never imported: no thread has a name */
	}
	md_dict = module_dict(py, module);
	active = md_dict ? dict_get(py, md_dict, "_active", &hint_active, &work) : 0;
	if (active == 0 || dict_entries(py, active, &ents, &nents, &work) < 0) {
		pk_log(PK_LOG_DEBUG, "names: threading._active not found (module 0x%llx, dict 0x%llx)",
		       (unsigned long long)module, (unsigned long long)md_dict);
		return -ENOENT;
	}
	/* Threads by ident: _active and the thread list may both be long. */
	sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (sorted == NULL) {
		free(ents);
		return -ENOMEM;
	}
	for (size_t j = 0; j < n; j++) {
		sorted[j].ident = threads[j].ident;
		sorted[j].i = j;
	}
	qsort(sorted, n, sizeof(*sorted), cmp_ident);
	for (size_t i = 0; i < nents; i++) {
		uint64_t ident, name_obj;
		struct pk_py_thread *t;

		if (read_long(py, ents[i].key, &ident) < 0)
			continue;
		t = thread_of(threads, sorted, n, ident);
		if (t == NULL)
			continue;
		name_obj = attr_get(py, ents[i].value, attr, &hint_name, &work);
		if (name_obj != 0)
			pk_rd_string(py, name_obj, &t->name);
	}
	free(sorted);
	free(ents);
	return 0;
}

/* Under gevent's monkey-patching threading._active is keyed by greenlet
 * ident, so the main thread's Thread object names no thread state. The
 * module keeps it as _main_thread too (3.4+): its name goes to the main
 * thread when its _ident is not the ident of a thread already named. */
int pk_names_main_thread(struct pk_py *py, uint64_t interp, struct pk_py_thread *threads, size_t n)
{
	const struct pk_layout *L = &py->layout;
	uint64_t modules = 0, module, md_dict, main_obj, ident_obj, name_obj;
	uint64_t hint_mod = 0, hint_main = 0, hint_ident = 0, hint_name = 0, work = 0, ident = 0;
	struct pk_py_thread *main = NULL;

	if (py->major != 3)
		return -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (threads[i].is_main)
			main = &threads[i];
	if (main == NULL || main->name != NULL)
		return 0;
	if (L->is_modules < 0 || pk_rd_u64(py, interp + (uint64_t)L->is_modules, &modules) < 0 || modules == 0)
		return -ENOENT;
	module = dict_get(py, modules, "threading", &hint_mod, &work);
	md_dict = module ? module_dict(py, module) : 0;
	main_obj = md_dict ? dict_get(py, md_dict, "_main_thread", &hint_main, &work) : 0;
	if (main_obj == 0)
		return -ENOENT;
	ident_obj = attr_get(py, main_obj, "_ident", &hint_ident, &work);
	if (ident_obj != 0 && read_long(py, ident_obj, &ident) == 0)
		for (size_t i = 0; i < n; i++)
			if (threads[i].ident == ident && &threads[i] != main)
				return 0; /* it is another thread's: threading was imported there */
	name_obj = attr_get(py, main_obj, "_name", &hint_name, &work);
	if (name_obj == 0)
		return -ENOENT;
	pk_log(PK_LOG_DEBUG, "names: main thread named from threading._main_thread (its ident 0x%llx is no thread's)",
	       (unsigned long long)ident);
	return pk_rd_string(py, name_obj, &main->name);
}

int pk_modules_find(struct pk_py *py, uint64_t interp, const char *const *names, size_t nnames, unsigned *found)
{
	const struct pk_layout *L = &py->layout;
	uint64_t modules = 0, work = 0;
	struct entry *ents = NULL;
	size_t n = 0, longest = 0;
	int rc;

	*found = 0;
	for (size_t k = 0; k < nnames; k++)
		if (strlen(names[k]) > longest)
			longest = strlen(names[k]);
	if (L->is_modules < 0 || pk_rd_u64(py, interp + (uint64_t)L->is_modules, &modules) < 0 || modules == 0)
		return -ENOENT;
	rc = dict_entries(py, modules, &ents, &n, &work);
	if (rc < 0)
		return rc;
	/* One pass over sys.modules: a key longer than every name is not read. */
	for (size_t i = 0; i < n && work < NAMES_MAX_WORK; i++, work++) {
		char *key = NULL;
		if (pk_rd_string_upto(py, ents[i].key, longest, &key) < 0)
			continue;
		for (size_t k = 0; k < nnames; k++)
			if (strcmp(key, names[k]) == 0)
				*found |= 1u << k;
		free(key);
	}
	free(ents);
	return 0;
}
