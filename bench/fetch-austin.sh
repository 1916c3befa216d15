#!/bin/sh
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
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

msg() { printf 'fetch-austin: %s\n' "$*" >&2; }
die() { msg "$*"; exit 1; }

case "${1:-}" in
-*) echo "usage: $0 [CACHE_DIR]" >&2; exit 2 ;;
esac
C=${1:-${PYKILL_BENCH_CACHE:-${HOME:?}/.cache/pykill-bench}}
case "$C" in
/*) ;;
*) C=$(pwd)/$C ;;
esac
A=$C/austin
EXE=$A/austin

if [ -x "$EXE" ] && "$EXE" --help 2>/dev/null | grep -q -- --where; then
	msg "already there: $EXE"
	exit 0
fi
for t in apt-get dpkg-deb patchelf; do
	command -v "$t" >/dev/null 2>&1 || die "missing $t (apt-get install apt dpkg patchelf)"
done
[ -r "$KEYRING" ] || die "missing $KEYRING (apt-get install debian-archive-keyring)"

mkdir -p "$A/apt/lists/partial" "$A/apt/cache/archives/partial" "$A/debs" "$A/root" ||
	die "cannot create directories under $A"
echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian sid main" >"$A/apt/sources.list" ||
	die "cannot write $A/apt/sources.list"

# Private apt state: nothing under /etc/apt or /var/lib/apt is read or written.
apt_o() {
	"$@" -o Dir::Etc::sourcelist="$A/apt/sources.list" -o Dir::Etc::sourceparts=/dev/null \
		-o Dir::State::Lists="$A/apt/lists" -o Dir::Cache="$A/apt/cache" \
		-o Dir::State::status=/dev/null -o APT::Sandbox::User=root -o APT::Architecture=amd64
}

msg "apt-get update (sid, private lists in $A/apt)"
apt_o apt-get -q update >"$A/apt/update.log" 2>&1 || die "apt-get update failed, see $A/apt/update.log"
for p in $PKGS; do
	msg "downloading $p"
	(cd "$A/debs" && apt_o apt-get -q download "$p") >"$A/apt/download-$p.log" 2>&1 ||
		die "apt-get download $p failed, see $A/apt/download-$p.log"
done
for f in "$A"/debs/*.deb; do
	dpkg-deb -x "$f" "$A/root" || die "cannot extract $f"
done

LDSO=
for l in "$A/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$A/root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
	"$A/root/usr/lib64/ld-linux-x86-64.so.2" "$A/root/lib64/ld-linux-x86-64.so.2"; do
	if [ -e "$l" ]; then
		LDSO=$l
		break
	fi
done
[ -n "$LDSO" ] || die "no ld-linux-x86-64.so.2 in the sid libc6 package"
cp -f "$A/root/usr/bin/austin" "$EXE.tmp" &&
	patchelf --set-interpreter "$LDSO" --force-rpath \
		--set-rpath "$A/root/usr/lib/x86_64-linux-gnu:$A/root/lib/x86_64-linux-gnu" "$EXE.tmp" &&
	mv -f "$EXE.tmp" "$EXE" || { rm -f "$EXE.tmp"; die "cannot copy/patch $A/root/usr/bin/austin"; }
"$EXE" --help 2>/dev/null | grep -q -- --where || die "$EXE does not run, or has no --where"
msg "$EXE: $("$EXE" -V 2>&1 | head -n 1)"
