#!/bin/bash
# SPDX-License-Identifier: MIT
# Regenerates cpython/layouts_gen.c from real CPython headers by compiling
# and running cpython/gen/offsets.c once per header set. See README.md.
#
# Usage: cpython/gen/generate.sh [--check] [-o FILE]
#   (no option)  write cpython/layouts_gen.c; every header set must exist
#   --check      regenerate the entries whose headers are present and diff
#                them with the committed file; exit 1 on any difference in
#                the numbers, 77 when no header set is present
#   -o FILE      write FILE instead of cpython/layouts_gen.c
# Environment: CC (default cc), PYENV_ROOT (default ~/.pyenv),
#   PYKILL_PYTHONS (default ~/.cache/pykill-pythons, filled by
#   tests/fetch-pythons.sh).

set -u
set -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$repo/cpython/layouts_gen.c
check=

while [ $# -gt 0 ]; do
	case "$1" in
	--check) check=1 ;;
	-o) [ $# -ge 2 ] || { echo "generate.sh: -o needs a file" >&2; exit 2; }; out=$2; shift ;;
	*) echo "usage: $0 [--check] [-o FILE]" >&2; exit 2 ;;
	esac
	shift
done

CC=${CC:-cc}
pyenv=${PYENV_ROOT:-$HOME/.pyenv}
sid=${PYKILL_PYTHONS:-$HOME/.cache/pykill-pythons}/sid-root
ftdir=${PYKILL_PYTHONS:-$HOME/.cache/pykill-pythons}/ft

# ft_build MINOR: the build tree of the free-threaded MINOR that
# tests/build-ft-pythons.sh made (the newest that passed its smoke test),
# else a path that does not exist.
ft_build() {
	local d best=
	for d in "$ftdir"/build-"$1".*; do
		[ -e "$d.done" ] && best=$d
	done
	echo "${best:-$ftdir/build-$1.missing}"
}
# ft_lib DIR: the directory of the build tree's _sysconfigdata.
ft_lib() {
	local f
	for f in "$1"/build/lib.*/_sysconfigdata*.py; do
		[ -r "$f" ] && { dirname "$f"; return 0; }
	done
	echo "$1/build/lib.missing"
}
ft313=$(ft_build 3.13)

# minor | include directory | extra -I | lib directory (sysconfigdata) | description
# Newest last: the table keeps this order. A minor ending in "t" is a
# free-threaded build (Py_GIL_DISABLED, from its own pyconfig.h), from a build
# tree of tests/build-ft-pythons.sh: no distribution ships its headers.
sets=(
	"2.7|$pyenv/versions/2.7.18/include/python2.7||$pyenv/versions/2.7.18/lib/python2.7|pyenv headers"
	"3.6|$pyenv/versions/3.6.15/include/python3.6m||$pyenv/versions/3.6.15/lib/python3.6|pyenv headers"
	"3.7|$pyenv/versions/3.7.16/include/python3.7m||$pyenv/versions/3.7.16/lib/python3.7|pyenv headers"
	"3.8|$pyenv/versions/3.8.18/include/python3.8||$pyenv/versions/3.8.18/lib/python3.8|pyenv headers"
	"3.9|$pyenv/versions/3.9.18/include/python3.9||$pyenv/versions/3.9.18/lib/python3.9|pyenv headers"
	"3.10|$pyenv/versions/3.10.13/include/python3.10||$pyenv/versions/3.10.13/lib/python3.10|pyenv headers"
	"3.11|$pyenv/versions/3.11.7/include/python3.11||$pyenv/versions/3.11.7/lib/python3.11|pyenv headers"
	"3.12|$pyenv/versions/3.12.1/include/python3.12||$pyenv/versions/3.12.1/lib/python3.12|pyenv headers"
	"3.13|$pyenv/versions/3.13.0/include/python3.13||$pyenv/versions/3.13.0/lib/python3.13|pyenv headers"
	"3.14|$sid/usr/include/python3.14|$sid/usr/include|$sid/usr/lib/python3.14|Debian sid libpython3.14-dev headers"
	"3.15|$sid/usr/include/python3.15|$sid/usr/include|$sid/usr/lib/python3.15|Debian sid libpython3.15-dev headers"
	"3.13t|$ft313/Include|$ft313|$(ft_lib "$ft313")|free-threaded build tree, tests/build-ft-pythons.sh"
)
# Same minor as an entry above, from another patch release: must agree
# with it in everything but sizes (see README.md).
crosscheck="3.13|$sid/usr/include/python3.13|$sid/usr/include|$sid/usr/lib/python3.13|Debian sid libpython3.13-dev headers"

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# sysconfigdata LIBDIR: the build's sysconfig data module, if any.
sysconfigdata() {
	local f
	for f in "$1"/_sysconfigdata*.py; do
		[ -r "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

# core_defines LIBDIR: the CPython knobs (-DPy_*, -D_Py_*) the interpreter
# core itself was compiled with. Some change the layout: Debian builds 3.14+
# with --enable-experimental-jit=yes-off (-D_Py_TIER2=3 -D_Py_JIT), which
# adds a member to _PyThreadStateImpl and so to the sizes of the
# interpreter and runtime states. Py_BUILD_CORE and NDEBUG are always given.
core_defines() {
	local f
	f=$(sysconfigdata "$1") || return 1
	grep -o "'PY_CORE_CFLAGS': '[^']*'" "$f" | grep -oE -- "-D_?Py_[A-Za-z0-9_]+(=[^ ']*)?" |
		grep -v -e '^-DPy_BUILD_CORE$' | tr '\n' ' ' | sed 's/ $//'
	return 0
}

# entry SET OUTFILE: compile offsets.c against SET and print its entry.
entry() {
	local minor inc extra lib what defs
	IFS='|' read -r minor inc extra lib what <<<"$1"
	local exe=$tmp/offsets-$minor-$RANDOM
	defs=$(core_defines "$lib") || { echo "generate.sh: no sysconfigdata in $lib" >&2; return 1; }
	local flags=(-std=gnu11 -DPy_BUILD_CORE -DPy_BUILD_CORE_BUILTIN -DNDEBUG)
	# shellcheck disable=SC2206 # the defines are single words
	[ -n "$defs" ] && { flags+=($defs); what="$what, $defs"; }
	flags+=(-I"$inc" -I"$inc/internal")
	[ -n "$extra" ] && flags+=(-I"$extra")
	flags+=(-I"$repo/cpython")
	if ! "$CC" "${flags[@]}" "$here/offsets.c" -o "$exe" 2>"$tmp/cc.log"; then
		echo "generate.sh: compiling offsets.c against $inc failed:" >&2
		cat "$tmp/cc.log" >&2
		return 1
	fi
	"$exe" "$what" >"$2" || { echo "generate.sh: offsets for $inc failed" >&2; return 1; }
	local got
	got=$(sed -n 's/^\t\t\.version = 0x0\([0-9a-f]\)\([0-9a-f][0-9a-f]\),$/\1 \2/p' "$2")
	if [ "$(printf '%d.%d' 0x${got% *} 0x${got#* })" != "${minor%t}" ]; then
		echo "generate.sh: $inc holds $got, not $minor" >&2
		return 1
	fi
	local ft=0x0
	case "$minor" in *t) ft=0x1 ;; esac
	if ! grep -qx $'\t\t.free_threaded = '"$ft," "$2"; then
		echo "generate.sh: $inc: free_threaded is not $ft for $minor (Py_GIL_DISABLED)" >&2
		return 1
	fi
}

have() {
	local minor inc lib
	IFS='|' read -r minor inc _ lib _ <<<"$1"
	[ -r "$inc/Python.h" ] && sysconfigdata "$lib" >/dev/null
}

# Blank out the patch level where a release is named: --check tolerates a
# newer patch release as long as every number is the same.
strip_versions() { sed -E 's/^(\t\t\.source = "| \*   )([0-9]+\.[0-9]+)\.[0-9]+[a-z0-9+]*/\1\2.x/'; }

# Cross-check another patch release of a minor already in the table.
cross_check() {
	local minor
	IFS='|' read -r minor _ <<<"$crosscheck"
	if ! have "$crosscheck"; then
		echo "generate.sh: note: no headers for the $minor cross-check (run tests/fetch-pythons.sh)" >&2
		return 0
	fi
	entry "$crosscheck" "$tmp/cross" || return 1
	[ -e "$tmp/entry-$minor" ] || return 0
	local diffs
	diffs=$(diff <(grep -v $'^\t\t.source = ' "$tmp/entry-$minor") <(grep -v $'^\t\t.source = ' "$tmp/cross") |
		sed -n 's/^> \t\t\.\([a-z0-9_]*\) = .*/\1/p')
	[ -z "$diffs" ] && return 0
	local a b
	a=$(sed -n 's/^\t\t\.source = "\(.*\)",$/\1/p' "$tmp/entry-$minor")
	b=$(sed -n 's/^\t\t\.source = "\(.*\)",$/\1/p' "$tmp/cross")
	# Patch releases may append members (3.13.x: PyThreadState grew), which
	# changes only the sizes of the enclosing states.
	if echo "$diffs" | grep -qvxE 'rt_size|is_size|ts_size|fr_size|co_size'; then
		echo "generate.sh: $b differs from $a in offsets, not only sizes:" $diffs >&2
		echo "generate.sh: one entry per minor version is not enough any more" >&2
		return 1
	fi
	echo "generate.sh: note: $b differs from $a only in sizes:" $diffs >&2
}

status=0
missing=()
for s in "${sets[@]}"; do
	IFS='|' read -r minor inc _ <<<"$s"
	if ! have "$s"; then
		missing+=("$minor ($inc)")
		continue
	fi
	entry "$s" "$tmp/entry-$minor" || exit 1
done
cross_check || status=1

assemble() {
	cat <<'EOF'
/* SPDX-License-Identifier: MIT */
/* Per-version CPython layouts (x86_64), see cpython/layout.h.
 *
 * GENERATED by cpython/gen/generate.sh (which compiles and runs
 * cpython/gen/offsets.c against each header set): do not edit by hand.
 * Fields a version does not have, or whose structure is not in its
 * installed headers, are PK_NOFF; cpython/gen/README.md lists why.
 * Header sets:
EOF
	local s minor
	for s in "${sets[@]}"; do
		IFS='|' read -r minor _ <<<"$s"
		sed -n 's/^\t\t\.source = "\(.*\)",$/ *   \1/p' "$tmp/entry-$minor"
	done
	cat <<'EOF'
 */
#include "layout.h"

const struct pk_layout pk_layouts[] = {
EOF
	for s in "${sets[@]}"; do
		IFS='|' read -r minor _ <<<"$s"
		cat "$tmp/entry-$minor"
	done
	cat <<'EOF'
};

const size_t pk_layouts_count = sizeof(pk_layouts) / sizeof(pk_layouts[0]);
EOF
}

if [ -z "$check" ]; then
	if [ ${#missing[@]} -gt 0 ]; then
		echo "generate.sh: missing header sets (install the pyenv versions, run tests/fetch-pythons.sh):" >&2
		printf '  %s\n' "${missing[@]}" >&2
		exit 1
	fi
	[ $status -eq 0 ] || exit 1
	assemble >"$tmp/out.c" || exit 1
	mv -f "$tmp/out.c" "$out" || exit 1
	echo "generate.sh: wrote $out" >&2
	exit 0
fi

if [ ! -r "$out" ]; then
	echo "generate.sh: $out does not exist" >&2
	exit 1
fi

# --check with every header set: the whole file must come out the same.
if [ ${#missing[@]} -eq 0 ]; then
	assemble >"$tmp/out.c" || exit 1
	if ! diff -u <(strip_versions <"$out") <(strip_versions <"$tmp/out.c") >"$tmp/diff"; then
		echo "generate.sh: $out is not what the headers give:" >&2
		cat "$tmp/diff" >&2
		exit 1
	fi
	if ! cmp -s "$out" "$tmp/out.c"; then
		echo "generate.sh: note: same numbers, other patch releases:" >&2
		diff "$out" "$tmp/out.c" | sed -n 's/^> \t\t\.source = /  /p' >&2
	fi
	[ $status -eq 0 ] && echo "generate.sh: $out matches all ${#sets[@]} header sets" >&2
	exit $status
fi

# --check with some header sets missing: compare entry by entry.
checked=0
for s in "${sets[@]}"; do
	IFS='|' read -r minor _ <<<"$s"
	[ -e "$tmp/entry-$minor" ] || continue
	ver=$(sed -n 's/^\t\t\.version = \(0x[0-9a-f]*\),$/\1/p' "$tmp/entry-$minor")
	ft=$(sed -n 's/^\t\t\.free_threaded = \(0x[0-9a-f]*\),$/\1/p' "$tmp/entry-$minor")
	# The committed block of this version and build flavour: from "\t{" to "\t},".
	awk -v want="$ver" -v ft="$ft" '
		$0 == "\t{" { buf = $0 "\n"; inblk = 1; next }
		inblk { buf = buf $0 "\n" }
		inblk && $0 == "\t\t.version = " want "," { hit = 1 }
		inblk && $0 == "\t\t.free_threaded = " ft "," { hitft = 1 }
		inblk && $0 == "\t}," { if (hit && hitft) printf "%s", buf; inblk = 0; hit = 0; hitft = 0 }
	' "$out" >"$tmp/committed-$minor"
	if [ ! -s "$tmp/committed-$minor" ]; then
		echo "generate.sh: $out has no entry for $minor" >&2
		status=1
	elif ! diff -u <(strip_versions <"$tmp/committed-$minor") \
			<(strip_versions <"$tmp/entry-$minor") >"$tmp/diff-$minor"; then
		echo "generate.sh: entry $minor differs from $out:" >&2
		cat "$tmp/diff-$minor" >&2
		status=1
	elif ! cmp -s "$tmp/committed-$minor" "$tmp/entry-$minor"; then
		echo "generate.sh: note: $minor: same numbers, other patch release:" \
			"$(sed -n 's/^\t\t\.source = \(.*\),$/\1/p' "$tmp/entry-$minor")" >&2
	fi
	checked=$((checked + 1))
done
for m in "${missing[@]}"; do
	echo "generate.sh: skipped (no headers): $m" >&2
done
if [ $checked -eq 0 ]; then
	echo "generate.sh: no header set present, nothing checked" >&2
	exit 77
fi
[ $status -eq 0 ] && echo "generate.sh: $checked entries match $out, ${#missing[@]} skipped" >&2
exit $status
