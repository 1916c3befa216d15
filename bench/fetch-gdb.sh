#!/bin/sh
# SPDX-License-Identifier: MIT
# Fetch Debian sid's gdb into a private directory, without installing
# anything into the system, for the gdb rows of bench/raise-bench.sh.
#
# Why: Debian 12's gdb 13.1 cannot make inferior calls on CPUs with AMX
# (Sapphire Rapids and later, this project's machine): restoring the
# registers after the call fails with "Couldn't write extended state status:
# Bad address" (PTRACE_SETREGSET NT_X86_XSTATE with gdb's fixed-size buffer,
# smaller than the kernel's XSAVE size with AMX tile data, which the kernel
# rejects), the call's result is lost and the target is left holding the GIL
# it took in PyGILState_Ensure: every Python thread of the target deadlocks
# (seen with Debian 12's /usr/bin/python3.11). sid's gdb 18.1 works here;
# versions 14-17 were not tried.
#
# sid's gdb needs sid's libc and libpython3.14, so the binary is patched
# (PT_INTERP + DT_RPATH) to use the ld.so and libraries of the same tree,
# the way tests/fetch-pythons.sh does for the sid interpreters, and a
# wrapper script sets PYTHONHOME and gdb's data directory to the tree.
#
# Usage: bench/fetch-gdb.sh [CACHE_DIR]
#   CACHE_DIR defaults to ${PYKILL_BENCH_CACHE:-$HOME/.cache/pykill-bench}.
# Result: CACHE_DIR/gdb/gdb, a runnable gdb (wrapper script); exit 0, or 1
# with the reason on stderr. Idempotent; remove CACHE_DIR/gdb to refetch.

set -u

PK_FETCH_NAME=fetch-gdb
# shellcheck source=SCRIPTDIR/../tests/lib/fetch-lib.sh
. "$(dirname -- "$0")/../tests/lib/fetch-lib.sh"
msg() { pk_fetch_msg "$@"; }
die() { pk_fetch_die "$@"; }

pk_fetch_bench_cache quote-free "$@"
G=$C/gdb
WRAP=$G/gdb

if [ -x "$WRAP" ] && "$WRAP" -nx -batch -ex 'show version' >/dev/null 2>&1; then
	msg "already there: $WRAP"
	exit 0
fi
pk_fetch_need apt-get dpkg-deb patchelf

mkdir -p "$G/root" || die "cannot create directories under $G"
pk_fetch_apt_setup "$G" || exit 1
# With an empty status file apt resolves gdb's whole dependency closure;
# every package is only downloaded and unpacked into $G/root.
PK_FETCH_APT_OPTS="-o APT::Install-Recommends=false -o Debug::NoLocking=true"
pk_fetch_apt_update || exit 1
msg "downloading gdb and its dependencies"
pk_fetch_apt apt-get -q -y --download-only install gdb >"$G/apt/download.log" 2>&1 ||
	die "apt-get --download-only install gdb failed, see $G/apt/download.log"
n=0
for f in "$G"/apt/cache/archives/*.deb; do
	[ -e "$f" ] || die "nothing downloaded, see $G/apt/download.log"
	dpkg-deb -x "$f" "$G/root" || die "cannot extract $f"
	n=$((n + 1))
done
msg "unpacked $n packages into $G/root"

R=$G/root
LDSO=$(pk_fetch_ldso "$R") || die "no ld-linux-x86-64.so.2 in the sid libc6 package"
[ -x "$R/usr/bin/gdb" ] || die "no usr/bin/gdb in the unpacked tree"
PYHOME=
for d in "$R"/usr/lib/python3.*; do
	[ -d "$d" ] && PYHOME=$R/usr
done
pk_fetch_patch "$R/usr/bin/gdb" "$G/gdb.bin" "$LDSO" "$R" || die "cannot copy/patch $R/usr/bin/gdb"
# The wrapper execs gdb: its PID is the one the harness started and times.
{
	echo '#!/bin/sh'
	echo "# sid's gdb from bench/fetch-gdb.sh: its own Python and data directory."
	[ -n "$PYHOME" ] && echo "PYTHONHOME='$PYHOME'; export PYTHONHOME"
	# Like the host's gdb: libthread_db of the host's libc (the target's) is trusted.
	echo "exec '$G/gdb.bin' -data-directory '$R/usr/share/gdb' -iex 'add-auto-load-safe-path /usr/lib:/lib' \"\$@\""
} >"$WRAP.tmp" && chmod +x "$WRAP.tmp" && mv -f "$WRAP.tmp" "$WRAP" || die "cannot write $WRAP"
"$WRAP" -nx -batch -ex 'show version' >"$G/version.txt" 2>&1 || die "$WRAP does not run: $(tail -n 3 "$G/version.txt")"
msg "$WRAP: $(head -n 1 "$G/version.txt")"
