#!/bin/sh
# SPDX-License-Identifier: MIT
# Build free-threaded CPython (PEP 703, ./configure --disable-gil) 3.13t,
# 3.14t and 3.15t from Debian's source packages, for the integration tests.
# No Debian package ships a free-threaded interpreter (sid, forky,
# trixie(-backports) and experimental checked, Dec 2026), so the upstream
# tarball of Debian's source package (the .orig.tar.xz; Debian's patches are
# not applied) is built on this host, against the host's libc, without
# PGO/LTO and without installing: the tests run the interpreter from its
# build tree.
#
# Usage: tests/build-ft-pythons.sh [CACHE_DIR]
#   CACHE_DIR defaults to ${PYKILL_PYTHONS:-$HOME/.cache/pykill-pythons}
#   (the directory of tests/fetch-pythons.sh); everything goes under
#   CACHE_DIR/ft.
#
# Result: CACHE_DIR/STATUS-ft, one line per version, as fetch-pythons.sh's:
#   3.13t ok 3.13.15 CACHE_DIR/ft/build-3.13.15/python
#   3.14t failed <reason>
# The headers for cpython/gen are CACHE_DIR/ft/build-X.Y.Z/Include (and
# pyconfig.h beside the interpreter). Idempotent: a build that passed its
# smoke test is reused; the source package version tried is the newest one
# the archive serves (apt-cache showsrc lists versions whose files are no
# longer in the pool: each is tried, newest first). The time each build took
# is in CACHE_DIR/ft/build-X.Y.Z.time; a build that failed leaves
# CACHE_DIR/ft/build-X.Y.Z.failed (its reason) and is not tried again until
# that file is removed. Exits 0 even when a version failed
# (the tests skip naming the reason from STATUS-ft); non-zero only on usage
# errors.
#
# Build needs: build-essential, libffi-dev (ctypes), zlib1g-dev; xz-utils.

set -u

VERSIONS=${PYKILL_FT_VERSIONS:-"3.13 3.14 3.15"}
JOBS=${PYKILL_FT_JOBS:-2}

PK_FETCH_NAME=build-ft-pythons
# shellcheck source=SCRIPTDIR/lib/fetch-lib.sh
. "$(dirname -- "$0")/lib/fetch-lib.sh"
msg() { pk_fetch_msg "$@"; }

usage() {
	echo "usage: $0 [CACHE_DIR]   (default \${PYKILL_PYTHONS:-\$HOME/.cache/pykill-pythons})" >&2
	exit 2
}

case "${1:-}" in
-*) usage ;;
esac
[ $# -le 1 ] || usage

if [ $# -eq 1 ]; then
	C=$1
elif [ -n "${PYKILL_PYTHONS:-}" ]; then
	C=$PYKILL_PYTHONS
elif [ -n "${HOME:-}" ]; then
	C=$HOME/.cache/pykill-pythons
else
	usage
fi
case "$C" in
/*) ;;
*) C=$(pwd)/$C ;;
esac
F=$C/ft

mkdir -p "$F/src" || { msg "cannot create $F"; exit 2; }
# Its own lock: fetch-pythons.sh may hold $C/.lock for its downloads.
exec 9>"$F/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

STATUS_TMP="$C/STATUS-ft.tmp.$$"
: >"$STATUS_TMP"
finish() {
	mv -f "$STATUS_TMP" "$C/STATUS-ft"
	msg "status in $C/STATUS-ft:"
	sed 's/^/  /' "$C/STATUS-ft" >&2
	exit 0
}
fail_all() {
	for v in $VERSIONS; do
		echo "${v}t failed $*" >>"$STATUS_TMP"
	done
	finish
}

missing=$(pk_fetch_missing apt-get apt-cache make cc xz tar)
[ -z "$missing" ] || fail_all "missing tools:$missing (apt-get install build-essential xz-utils)"

# The interpreter passes when it is free-threaded, its GIL stays off with
# the modules the tests import, and /proc/self/exe is the interpreter.
SMOKE='import sys, sysconfig, threading, socket, time, json, os, ctypes
assert sysconfig.get_config_var("Py_GIL_DISABLED") == 1, "not a free-threaded build"
assert not sys._is_gil_enabled(), "the GIL is enabled"
assert os.path.realpath("/proc/self/exe") == os.path.realpath(sys.executable), "/proc/self/exe is not the interpreter"
print(sys.version.split()[0])'

# Private apt state: source indexes of sid and the suites that still carry
# older uploads (the pool keeps only some of what Sources lists).
if ! pk_fetch_apt_setup "$F"; then
	fail_all "cannot set up apt state under $F"
fi
K=$PK_FETCH_KEYRING
{
	for s in sid forky trixie-backports trixie; do
		echo "deb-src [signed-by=$K] http://deb.debian.org/debian $s main"
	done
} >"$PK_FETCH_APT/sources.list" || fail_all "cannot write $PK_FETCH_APT/sources.list"

UPDATED=
apt_update() {
	[ -n "$UPDATED" ] && [ "$UPDATED" = yes ] && return 0
	[ -n "$UPDATED" ] && return 1
	if pk_fetch_apt_update; then
		UPDATED=yes
		return 0
	fi
	UPDATED=failed
	return 1
}

# built V: prints the path of an interpreter already built for V (3.X) that
# passes the smoke test, and its version; 1 when there is none.
built() {
	for _d in "$F"/build-"$1".*; do
		[ -x "$_d/python" ] || continue
		[ -e "$_d.done" ] || continue
		if _out=$("$_d/python" -c "$SMOKE" 2>/dev/null); then
			printf '%s %s\n' "$_out" "$_d/python"
			return 0
		fi
	done
	return 1
}

# fetch_src V: the newest python$V source package the archive serves,
# into $F/src; prints the path of its .orig.tar.xz. 1 (said) on failure.
fetch_src() {
	for _t in "$F/src/python$1_$1".*.orig.tar.xz; do
		[ -e "$_t" ] && { printf '%s\n' "$_t"; return 0; }
	done
	apt_update || return 1
	_vers=$(pk_fetch_apt apt-cache showsrc "python$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -rV -u)
	[ -n "$_vers" ] || { msg "no source package python$1"; return 1; }
	for _v in $_vers; do
		msg "downloading source python$1=$_v"
		if (cd "$F/src" && pk_fetch_apt apt-get -q source --download-only "python$1=$_v") \
			>"$PK_FETCH_APT/source-python$1.log" 2>&1; then
			for _t in "$F/src/python$1_$1".*.orig.tar.xz; do
				[ -e "$_t" ] && { printf '%s\n' "$_t"; return 0; }
			done
		fi
		# A failed download leaves partial files of other versions.
		rm -f "$F/src/python$1_$_v".* "$F/src/python$1_$_v"-*
	done
	msg "no source of python$1 could be downloaded (tried: $(echo $_vers)), see $PK_FETCH_APT/source-python$1.log"
	return 1
}

for v in $VERSIONS; do
	if res=$(built "$v"); then
		echo "${v}t ok $res" >>"$STATUS_TMP"
		msg "python${v}t already built ($res)"
		continue
	fi
	if ! tarball=$(fetch_src "$v"); then
		echo "${v}t failed no source package of python$v could be downloaded (see $PK_FETCH_APT/source-python$v.log)" >>"$STATUS_TMP"
		continue
	fi
	up=$(basename "$tarball" .orig.tar.xz)
	up=${up#python"$v"_}
	d=$F/build-$up
	log=$F/build-$up.log
	# A build that failed is not tried again at every run (10 minutes
	# each): remove CACHE_DIR/ft/build-X.Y.Z.failed to try again.
	if [ -s "$d.failed" ]; then
		echo "${v}t failed $(cat "$d.failed") (rm $d.failed to try again)" >>"$STATUS_TMP"
		continue
	fi
	rm -rf "$d" "$d.done"
	msg "building python${v}t $up in $d (log $log)"
	start=$(date +%s)
	mkdir -p "$d" &&
		tar -xJf "$tarball" -C "$d" --strip-components=1 >"$log" 2>&1 &&
		(cd "$d" && ./configure --disable-gil --without-ensurepip >>"$log" 2>&1) &&
		(cd "$d" && make -j"$JOBS" >>"$log" 2>&1)
	rc=$?
	end=$(date +%s)
	echo "$((end - start)) s (make -j$JOBS, $(nproc) cores)" >"$d.time"
	if [ $rc -ne 0 ]; then
		echo "build of $up failed after $((end - start)) s: $(tail -n 1 "$log" | cut -c1-200) (see $log)" >"$d.failed"
		echo "${v}t failed $(cat "$d.failed")" >>"$STATUS_TMP"
		continue
	fi
	if out=$("$d/python" -c "$SMOKE" 2>"$F/smoke-$v.log"); then
		: >"$d.done"
		echo "${v}t ok $out $d/python" >>"$STATUS_TMP"
		msg "python${v}t ok ($out), built in $((end - start)) s"
	else
		echo "smoke test: $(tail -n 1 "$F/smoke-$v.log") (see $F/smoke-$v.log)" >"$d.failed"
		echo "${v}t failed $(cat "$d.failed")" >>"$STATUS_TMP"
	fi
done

finish
