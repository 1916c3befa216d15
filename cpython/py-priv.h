/* SPDX-License-Identifier: MIT */
/* Internals of the cpython module, shared by its .c files. */
#ifndef PK_CPYTHON_PRIV_H
#define PK_CPYTHON_PRIV_H

#include "layout.h"
#include "pk_attach.h"
#include "pk_cpython.h"
#include "pk_log.h"
#include "pk_symbols.h"

#include <stdbool.h>
#include <stdint.h>

/* Bounds on walks driven by target memory. */
#define PK_MAX_INTERPS 1024u
#define PK_MAX_STRING 4096u        /* characters of a name or path */
#define PK_MAX_LINETABLE (1u << 22) /* bytes of a line table */
#define PK_MAX_DICT_ENTRIES (1u << 20)

/* Where the interpreter lives in the target and how to read it. */
struct pk_py {
	pid_t pid;
	struct pk_mem *mem;
	struct pk_maps maps;
	struct pk_elf *elf;        /* the object that holds the interpreter */
	char *path;                /* as the target sees it */
	uint64_t bias;
	int major, minor;
	uint32_t hexversion;       /* 0 when only major/minor are known */
	char version[32];          /* "3.14.2", "3.14.2t" for a free-threaded build */
	bool free_threaded;        /* _Py_DebugOffsets.free_threaded (3.13+): a PEP 703 build */
	struct pk_layout layout;   /* table entry, patched from _Py_DebugOffsets */
	char layout_source[192];
	struct pk_layout_check lcheck; /* which fields the binary / _Py_DebugOffsets vouched for */
	char dbgoff_problem[160];  /* why _Py_DebugOffsets was not used, "" if it was or is absent */

	uint64_t runtime;          /* &_PyRuntime (3.7+) */
	uint64_t interp_head_var;  /* 2.7/3.6: &interp_head */
	uint64_t tstate_current_var; /* 2.7/3.6: &_PyThreadState_Current */
	uint64_t gil36_locked, gil36_last_holder, gil36_cond, gil36_mutex, gil36_switch_cond, gil36_switch_mutex;
	uint64_t interpreter_lock27_var; /* 2.7: &interpreter_lock (a PyThread lock pointer) */
	uint64_t code_type;        /* &PyCode_Type, 0 if unknown */
	uint64_t str_type;         /* &PyUnicode_Type (3.x) or &PyString_Type (2.7), 0 if unknown */
	uint64_t dict_type;        /* &PyDict_Type, 0 if unknown */

	int pthread_tid_offset;    /* offset of the kernel TID in the C library's thread descriptor, -1 unknown */
	/* Descriptor words read outside a freeze (threadid.c), by ident,
	 * ascending: a live thread's TID never changes in it. */
	struct pk_desc_word *desc_words;
	size_t ndesc_words;
	uint64_t rlock_type;       /* the _thread.RLock type once seen (locks.c), 0 before */
	uint64_t other_types[4];   /* types seen whose name is not _thread.RLock (locks.c) */
};

struct pk_desc_word {
	uint64_t ident;
	int32_t tid;               /* at pthread_tid_offset */
	bool self_ok;              /* starts with a pointer to itself: a descriptor */
};

/* May the write path of `raise` store through this layout? True when the
 * table entry is for this exact minor version and the check against the
 * binary adapted nothing, or when every offset the write path uses (see
 * pk_layout_write_fields() in layout.h: the interpreter and thread lists,
 * thread_id, async_exc, ob_refcnt before 3.12, the eval-breaker fields) came
 * from the target's _Py_DebugOffsets or was confirmed by the binary's code.
 * False e.g. for a 3.16 read with 3.15's table whose async_exc nothing
 * confirmed. pk_py_open logs (PK_LOG_INFO) when it is false. */
bool pk_py_layout_exact(const struct pk_py *py);

/* Is this object the one that holds the interpreter (its runtime state or
 * thread-list head symbols)? pk_py_open and ps ask the same. */
bool pk_py_elf_holds_interpreter(const struct pk_elf *elf);
/* Does a file name (its last component) say "python", in any case? */
bool pk_py_name_has_python(const char *path);

/* The ELF object behind a mapping of process pid, read through pk_map_open:
 * never from a path the target chose. */
int pk_py_map_elf(pid_t pid, const struct pk_map *map, struct pk_elf **out);

/* rc, or -ESRCH (with the message) if the process has exited meanwhile or
 * executed a new program since pk_py_open. */
int pk_py_gone_check(const struct pk_py *py, int rc);
/* Has the process ended, or is its last task running its exit (not merely
 * its leader: a leader that called pthread_exit is a zombie while the
 * process lives on)? */
bool pk_py_process_ended(pid_t pid);

/* Reading helpers (read.c). All bounded; return 0 / -errno. */
int pk_rd_u64(struct pk_py *py, uint64_t addr, uint64_t *out);
int pk_rd_i32(struct pk_py *py, uint64_t addr, int32_t *out);
/* A str (3.x unicode, 2.7 str/unicode) object as malloc'ed UTF-8 (a 2.7
 * str: its bytes as they are; U+DC80..U+DCFF, surrogateescape'd bytes: those
 * bytes; so what is not UTF-8 is the target's bytes, which the CLI shows). */
int pk_rd_string(struct pk_py *py, uint64_t obj, char **out);
/* A bytes (2.7 str) object's contents, malloc'ed, at most max bytes. */
int pk_rd_bytes(struct pk_py *py, uint64_t obj, size_t max, uint8_t **out, size_t *len);

static inline uint64_t pk_get_u64(const uint8_t *buf, size_t cap, int32_t off)
{
	uint64_t v = 0;
	if (off >= 0 && (size_t)off + 8 <= cap)
		__builtin_memcpy(&v, buf + off, 8);
	return v;
}

static inline int32_t pk_get_i32(const uint8_t *buf, size_t cap, int32_t off)
{
	int32_t v = 0;
	if (off >= 0 && (size_t)off + 4 <= cap)
		__builtin_memcpy(&v, buf + off, 4);
	return v;
}

static inline uint8_t pk_get_u8(const uint8_t *buf, size_t cap, int32_t off)
{
	return (off >= 0 && (size_t)off < cap) ? buf[off] : 0;
}

/* A walk along a linked list in target memory (chain.c): the one place
 * that bounds it and finds a list that comes back on itself (Brent's
 * cycle detection). The walk keeps its own reads; for each item it hands
 * back the link it read:
 *
 *	pk_chain_init(&c, first, max_steps, budget_ns);
 *	while ((rc = pk_chain_next(&c, &addr)) > 0) {
 *		... read the item at addr, and its link ...
 *		pk_chain_follow(&c, link);
 *	}
 *
 * pk_chain_next returns 1 with the next item, 0 at the end (a null link,
 * or an item whose link was not handed back), -ELOOP when the chain came
 * back to an item it had handed out (c.cur: where it loops), -E2BIG before
 * an item past max_steps, -ETIME when budget_ns have passed since
 * pk_chain_init (looked at every 64 items). The checks are made in that
 * order, before an item is handed out; 0 for max_steps or budget_ns: no
 * such bound. Once it has returned 0 or less it returns the same again. */
struct pk_chain {
	uint64_t cur;            /* the item handed out last; after -ELOOP, where the chain loops */
	uint64_t link;           /* that item's link, as its walk read it */
	uint64_t tortoise;       /* Brent: an earlier item, moved at powers of two */
	unsigned power, lam;
	bool started;
	int end;                 /* 1 walking, else what pk_chain_next returns from now on */
	size_t steps, max_steps; /* items handed out, and how many may be */
	uint64_t t0, budget_ns;
};
void pk_chain_init(struct pk_chain *c, uint64_t first, size_t max_steps, uint64_t budget_ns);
/* Another list under the same bounds (the items and the time already spent
 * count): a walk over several lists that shares one budget. */
void pk_chain_restart(struct pk_chain *c, uint64_t first);
int pk_chain_next(struct pk_chain *c, uint64_t *item);
static inline void pk_chain_follow(struct pk_chain *c, uint64_t link)
{
	c->link = link;
}

/* Frames (frames.c). */
struct pk_code_cache;
struct pk_code_cache *pk_code_cache_new(void);
void pk_code_cache_free(struct pk_code_cache *cache);
/* Walk one thread's frame chain starting from the thread state bytes. */
int pk_frames_walk(struct pk_py *py, struct pk_code_cache *cache, const uint8_t *tstate, size_t tslen,
		   unsigned max_frames, struct pk_py_thread *out);

/* Warm the page cache for the frame chains of n threads (first = each
 * thread state's frame pointer field value). */
void pk_frames_prefetch(struct pk_py *py, const uint64_t *first, size_t n, unsigned max_depth);

/* Line numbers (linetable.c), pure functions on copied bytes. */
int pk_lnotab_line(const uint8_t *tab, size_t len, int firstlineno, int lasti_bytes, bool signed_deltas);
int pk_linetable310_line(const uint8_t *tab, size_t len, int firstlineno, int addr_bytes);
int pk_linetable311_line(const uint8_t *tab, size_t len, int firstlineno, int addr_bytes);

/* Thread identity (threadid.c). A live thread of the process as it needs
 * it; tasks ascending by tid. */
struct pk_id_task {
	pid_t tid, ns_tid;
	uint64_t sp;               /* stack pointer; 0 unknown (it was running) */
	uint64_t tp;               /* thread pointer (fs_base) of a stopped thread; 0 unknown */
	char state;                /* /proc state letter, 0 unknown; 'Z' or 'X': exited (a leader that called
				    * pthread_exit stays listed, a zombie, while the other threads run on) */
	bool has_state;            /* out: a thread state is on it */
};
/* Set tid, ns_tid, tid_from, inherited, idle and ambiguous of every state
 * from its ident, native_tid and cstack (see threadid.c). leader: the
 * thread-group leader's tid. No task (a memory image): ns_tid = native_tid,
 * tid 0. Reads target memory; never fails (what cannot be found stays 0). */
void pk_threads_identify(struct pk_py *py, struct pk_py_thread *th, size_t n, struct pk_id_task *tasks,
			 size_t ntasks, pid_t leader);
/* Outside the freeze: find the TID offset and read every ident's
 * descriptor words (self pointer, TID), uncached, into py->desc_words, so
 * that pk_threads_identify reads inside the freeze only the descriptors
 * of threads born since (or whose TID no longer names a live thread). */
void pk_threads_prefetch(struct pk_py *py, const struct pk_py_thread *th, size_t n, const struct pk_id_task *tasks,
			 size_t ntasks);
/* Reorder into rows: each OS thread's active state, then its idle ones;
 * states on no live thread last. *nos_threads = live OS threads. */
int pk_threads_order(struct pk_py_thread *th, size_t n, size_t *nos_threads);

/* gil.c: an interpreter's GIL (holder, futex words of its waiters). */
struct pk_gil_info {
	uint64_t holder;                 /* tstate holding the GIL, 0 if none/unknown */
	uint64_t wait_lo[2], wait_hi[2]; /* futex words of threads taking it: cond, mutex */
	uint64_t drop_lo[2], drop_hi[2]; /* FORCE_SWITCHING: switch_cond, switch_mutex */
	bool absent;                     /* free-threaded interpreter with its GIL disabled */
};
enum pk_gil_wait { PK_GIL_WAIT_NONE, PK_GIL_WAIT_TAKE, PK_GIL_WAIT_HANDOVER };
/* What is unreadable stays 0: such a GIL has no holder and no waiter. */
void pk_gil_read(struct pk_py *py, uint64_t interp, struct pk_gil_info *g);
/* What a thread asleep in futex(futex_addr) is doing with this GIL. */
enum pk_gil_wait pk_gil_wait_on(const struct pk_gil_info *g, uint64_t futex_addr);

/* Thread names (names.c): fills thread->name for every thread of the main interpreter. */
int pk_names_read(struct pk_py *py, uint64_t interp, struct pk_py_thread *threads, size_t n);

/* The main thread's name from threading._main_thread when _active did not
 * give it one (gevent's monkey-patching keys _active by greenlet). Needs
 * is_main set. */
int pk_names_main_thread(struct pk_py *py, uint64_t interp, struct pk_py_thread *threads, size_t n);
/* Which of names (at most 32) are keys of the interpreter's sys.modules:
 * bit k of *found for names[k]. */
int pk_modules_find(struct pk_py *py, uint64_t interp, const char *const *names, size_t nnames, unsigned *found);

/* _Py_DebugOffsets (dbgoff.c): patch py->layout from the target, 3.13+. */
int pk_dbgoff_apply(struct pk_py *py);
/* 3.13+: is the target a free-threaded build? Reads the cookie and the
 * free_threaded flag of _Py_DebugOffsets at the positions L (an entry of the
 * same minor version, or the newest) gives. 0, or -errno when it cannot be
 * read or the cookie is missing (*ft then false). */
int pk_dbgoff_free_threaded(struct pk_py *py, const struct pk_layout *L, bool *ft);

/* Bounds on one reading of the interpreters and their thread lists
 * (snapshot.c), whatever the target's memory says. A list may be long
 * without looping (forged): past process_threads * 2 + PK_SPARE_TSTATES
 * thread states, or once budget_ns have passed since the reading began,
 * the reading stops where it is, keeps what it read, and says why in the
 * snapshot's cut (frames not yet read are left unread, each thread saying
 * so). pk_py_snapshot applies both while any thread is stopped (the
 * budget: PK_FROZEN_READ_NS), the thread-state bound alone otherwise. A
 * list that loops within them, or one longer than PK_MAX_THREADS, is
 * still an error (-ELOOP). */
struct pk_read_limits {
	size_t process_threads;  /* threads of the process; 0: no thread-state bound */
	uint64_t budget_ns;      /* 0: no time bound */
};
#define PK_SPARE_TSTATES 4096u
/* A process of 2000 threads with 30-frame stacks reads in 60-150 ms with
 * threads stopped on a loaded 2-core machine: room for that, and a bound
 * all the same. */
#define PK_FROZEN_READ_NS (250ull * 1000000)

/* Memory images (image.c): the interpreter model around a pk_mem that is not
 * a live process (pk_mem_open_ops), for unit tests and fuzzing of the walk.
 * layout is copied (3.13+: patched from a _Py_DebugOffsets in the image when
 * there is a valid one); runtime_or_interp_head is &_PyRuntime (3.7+) or
 * &interp_head (2.7, 3.6). On success py owns mem (pk_py_close closes it);
 * on failure the caller still does. No pid, no ELF, no maps. */
int pk_py_open_image(const struct pk_layout *layout, int major, int minor, uint64_t runtime_or_interp_head,
		     struct pk_mem *mem, struct pk_py **out);
/* pk_py_snapshot() without /proc and without freezing: the same walk of
 * interpreters, threads, frames and names. Free with pk_py_snapshot_free(). */
int pk_py_read_image(struct pk_py *py, const struct pk_snapshot_opts *opts, struct pk_py_snapshot **out);
/* The same within bounds (NULL: none). */
int pk_py_read_image_limited(struct pk_py *py, const struct pk_snapshot_opts *opts, const struct pk_read_limits *lim,
			     struct pk_py_snapshot **out);
/* The memory walk of pk_py_snapshot() alone (snapshot.c), into snap's
 * threads, ninterps and finalizing; no task is known, so tid stays 0. */
int pk_py_read_threads(struct pk_py *py, const struct pk_snapshot_opts *opts, const struct pk_read_limits *lim,
		       struct pk_py_snapshot *snap);

/* pk_rd_string() for comparisons (read.c): -ERANGE, without reading the
 * characters, when the string is longer than max. */
int pk_rd_string_upto(struct pk_py *py, uint64_t obj, size_t max, char **out);

#endif
