#!/bin/sh
# SPDX-License-Identifier: MIT
# Fetch CPython 3.13, 3.14 and 3.15 from Debian sid into a private directory,
# without installing anything into the system: they need sid's libc, so the
# interpreters are patched (PT_INTERP + DT_RPATH) to use the sid ld.so and
# libraries from the same tree. The executable is patched rather than run
# through ld.so so that /proc/PID/exe and comm of the target are the
# interpreter's, as they are for a real deployment.
#
# Usage: tests/fetch-pythons.sh [CACHE_DIR]
#   CACHE_DIR defaults to ${PYKILL_PYTHONS:-$HOME/.cache/pykill-pythons}.
#
# Result: CACHE_DIR/STATUS, one line per version:
#   3.14 ok 3.14.10 CACHE_DIR/bin/python3.14-run
#   3.15 failed <reason>
# CACHE_DIR/sid-root/usr/include/python3.X holds the headers (libpython3.X-dev)
# used by cpython/gen. Idempotent: what is already there is reused (remove
# CACHE_DIR/debs, CACHE_DIR/extracted and CACHE_DIR/sid-root to move to newer
# sid uploads). Exits 0
# even when a version failed (the tests skip naming the reason from STATUS);
# non-zero only on usage errors.

set -u

VERSIONS="3.13 3.14 3.15"
# Shared libraries the interpreters and the extension modules behind
# "import threading, socket, time, json, os, sys, ctypes" link against
# (apt-cache depends python3.X-minimal libpython3.X-minimal
# libpython3.X-stdlib, plus libssl3t64 so that _ssl/_hashlib do not pick up
# the host's older libcrypto, minus what those imports never load: sqlite,
# ncurses, readline, db, uuid, tzdata, media-types).
COMMON_PKGS="libc6 libgcc-s1 zlib1g libexpat1 libffi8 libbz2-1.0 liblzma5 libzstd1 libssl3t64"

PK_FETCH_NAME=fetch-pythons
# shellcheck source=SCRIPTDIR/lib/fetch-lib.sh
. "$(dirname -- "$0")/lib/fetch-lib.sh"
msg() { pk_fetch_msg "$@"; }

usage() {
	echo "usage: $0 [CACHE_DIR]   (default \${PYKILL_PYTHONS:-\$HOME/.cache/pykill-pythons})" >&2
	exit 2
}

case "${1:-}" in
-h|--help) usage ;;
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
*"'"*) msg "cache directory must not contain a single quote: $C"; exit 2 ;;
/*) ;;
*) C=$(pwd)/$C ;;
esac

mkdir -p "$C" || { msg "cannot create $C"; exit 2; }
# Concurrent runs on the same cache (several test runs at once) would
# interleave downloads and patching.
exec 9>"$C/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

STATUS_TMP="$C/STATUS.tmp.$$"
: >"$STATUS_TMP"
finish() {
	mv -f "$STATUS_TMP" "$C/STATUS"
	msg "status in $C/STATUS:"
	sed 's/^/  /' "$C/STATUS" >&2
	exit 0
}
fail_all() {
	for v in $VERSIONS; do
		echo "$v failed $*" >>"$STATUS_TMP"
	done
	finish
}

# --- tools -------------------------------------------------------------
missing=$(pk_fetch_missing apt-get apt-cache dpkg-deb patchelf)
if [ -n "$missing" ]; then
	msg "missing:$missing (apt-get install apt dpkg patchelf debian-archive-keyring)"
	fail_all "missing tools:$missing"
fi

ROOT=$C/sid-root
DEBS=$C/debs
BIN=$C/bin
mkdir -p "$DEBS" "$ROOT" "$BIN" "$C/extracted" || fail_all "cannot create directories under $C"
# A sources.list that cannot be written is no failure yet: one written
# before may serve.
pk_fetch_apt_setup "$C"
[ $? -ne 1 ] || fail_all "cannot create directories under $C"

UPDATED=
apt_update() {
	[ -n "$UPDATED" ] && return 0
	if ! pk_fetch_apt_update; then
		UPDATED=failed
		return 1
	fi
	UPDATED=yes
}

# have_deb PKG: a .deb of PKG is already in $DEBS.
have_deb() {
	for f in "$DEBS/$1"_*.deb; do
		[ -e "$f" ] && return 0
	done
	return 1
}

# fetch_pkg PKG: download PKG into $DEBS unless present. Returns 1 on failure.
fetch_pkg() {
	have_deb "$1" && return 0
	apt_update || return 1
	[ "$UPDATED" = yes ] || return 1
	pk_fetch_download "$DEBS" "$1" || return 1
	have_deb "$1"
}

# extract_pkg PKG: unpack the .deb of PKG into $ROOT once.
extract_pkg() {
	for f in "$DEBS/$1"_*.deb; do
		[ -e "$f" ] || return 1
		b=$(basename "$f")
		[ -e "$C/extracted/$b" ] && continue
		msg "extracting $b"
		dpkg-deb -x "$f" "$ROOT" || return 1
		: >"$C/extracted/$b"
	done
}

# --- common libraries ---------------------------------------------------
common_failed=
for p in $COMMON_PKGS; do
	if ! fetch_pkg "$p" || ! extract_pkg "$p"; then
		common_failed="$common_failed $p"
	fi
done
if [ -n "$common_failed" ]; then
	fail_all "cannot fetch/extract:$common_failed (see $C/apt/*.log)"
fi

LDSO=$(pk_fetch_ldso "$ROOT" lib64-first) || fail_all "no ld-linux-x86-64.so.2 in the sid libc6 package"

SMOKE='import threading, socket, time, json, os, sys, ctypes
assert os.path.realpath("/proc/self/exe") == os.path.realpath(sys.executable), "/proc/self/exe is not the interpreter"
print(sys.version.split()[0])'

# --- per version --------------------------------------------------------
for v in $VERSIONS; do
	failed=
	for p in "python$v-minimal" "libpython$v-minimal" "libpython$v-stdlib" "libpython$v-dev"; do
		if ! fetch_pkg "$p"; then
			failed="cannot download $p (see $C/apt/download-$p.log or update.log)"
			break
		fi
		if ! extract_pkg "$p"; then
			failed="cannot extract $p"
			break
		fi
	done
	if [ -n "$failed" ]; then
		echo "$v failed $failed" >>"$STATUS_TMP"
		continue
	fi

	exe=$BIN/python$v
	run=$BIN/python$v-run
	if [ ! -x "$exe" ] || [ "$(patchelf --print-interpreter "$exe" 2>/dev/null)" != "$LDSO" ]; then
		msg "patching $exe"
		if ! pk_fetch_patch "$ROOT/usr/bin/python$v" "$exe" "$LDSO" "$ROOT"; then
			echo "$v failed cannot copy/patch $ROOT/usr/bin/python$v" >>"$STATUS_TMP"
			continue
		fi
	fi
	# exec, so that the PID the tests get is the interpreter's.
	cat >"$run.tmp" <<EOF
#!/bin/sh
# Generated by tests/fetch-pythons.sh: Debian sid python$v with its own libc.
PYTHONHOME='$ROOT/usr'
export PYTHONHOME
exec '$exe' "\$@"
EOF
	chmod 755 "$run.tmp" && mv -f "$run.tmp" "$run"

	if out=$("$run" -c "$SMOKE" 2>"$C/smoke-$v.log"); then
		echo "$v ok $out $run" >>"$STATUS_TMP"
		msg "python$v ok ($out)"
	else
		reason=$(tail -n 1 "$C/smoke-$v.log")
		echo "$v failed smoke test: ${reason:-no output} (see $C/smoke-$v.log)" >>"$STATUS_TMP"
	fi
done

finish
