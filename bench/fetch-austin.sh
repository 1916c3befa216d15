#!/bin/sh
# SPDX-License-Identifier: MIT
# Fetch Debian sid's austin (3.x, which has the -w/--where mode that Debian
# 12's austin 1.0.1 lacks) into a private directory, without installing
# anything into the system: it needs sid's libc, so the binary is patched
# (PT_INTERP + DT_RPATH) to use the sid ld.so and libraries of the same tree,
# the way tests/fetch-pythons.sh does for the sid interpreters.
#
# Usage: bench/fetch-austin.sh [CACHE_DIR]
#   CACHE_DIR defaults to ${PYKILL_BENCH_CACHE:-$HOME/.cache/pykill-bench}.
# Result: CACHE_DIR/austin/austin, a runnable austin; exit 0, or 1 with the
# reason on stderr. Idempotent; remove CACHE_DIR/austin to refetch.

set -u

PKGS="austin libc6 libsframe3 libunwind8 liblzma5 libzstd1 zlib1g"

PK_FETCH_NAME=fetch-austin
# shellcheck source=SCRIPTDIR/../tests/lib/fetch-lib.sh
. "$(dirname -- "$0")/../tests/lib/fetch-lib.sh"
msg() { pk_fetch_msg "$@"; }
die() { pk_fetch_die "$@"; }

pk_fetch_bench_cache "$@"
A=$C/austin
EXE=$A/austin

if [ -x "$EXE" ] && "$EXE" --help 2>/dev/null | grep -q -- --where; then
	msg "already there: $EXE"
	exit 0
fi
pk_fetch_need apt-get dpkg-deb patchelf

mkdir -p "$A/debs" "$A/root" || die "cannot create directories under $A"
pk_fetch_apt_setup "$A" || exit 1
pk_fetch_apt_update || exit 1
for p in $PKGS; do
	pk_fetch_download "$A/debs" "$p" || exit 1
done
for f in "$A"/debs/*.deb; do
	dpkg-deb -x "$f" "$A/root" || die "cannot extract $f"
done

LDSO=$(pk_fetch_ldso "$A/root") || die "no ld-linux-x86-64.so.2 in the sid libc6 package"
pk_fetch_patch "$A/root/usr/bin/austin" "$EXE" "$LDSO" "$A/root" || die "cannot copy/patch $A/root/usr/bin/austin"
"$EXE" --help 2>/dev/null | grep -q -- --where || die "$EXE does not run, or has no --where"
msg "$EXE: $("$EXE" -V 2>&1 | head -n 1)"
