# SPDX-License-Identifier: MIT
# Shared by the scripts that fetch Debian sid binaries into a private
# directory without installing anything (tests/fetch-pythons.sh,
# bench/fetch-austin.sh, bench/fetch-gdb.sh): the private apt state, the
# download, the sid ld.so and the patchelf that make a sid binary run on
# this host with sid's own libc. POSIX sh, sourced, never run; it runs
# nothing when sourced. The caller sets PK_FETCH_NAME (the prefix of its
# messages) first, and sources it by the script's own path:
#   . "$(dirname -- "$0")/lib/fetch-lib.sh"
# which works from any directory (no cd, no lookup of the current one).
# Function-local variables start with _pkf_ (POSIX sh has no local).

PK_FETCH_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

pk_fetch_msg() { printf '%s: %s\n' "$PK_FETCH_NAME" "$*" >&2; }
pk_fetch_die() {
	pk_fetch_msg "$*"
	exit 1
}

# pk_fetch_bench_cache [quote-free] [CACHE_DIR]: sets C to the cache
# directory of bench/fetch-*.sh: CACHE_DIR, else $PYKILL_BENCH_CACHE, else
# ~/.cache/pykill-bench, made absolute. Exits 2 with the usage when
# CACHE_DIR looks like an option; with quote-free, exits 1 when it holds a
# single quote (the caller writes it into a script between single quotes).
pk_fetch_bench_cache() {
	_pkf_q=
	if [ "${1:-}" = quote-free ]; then
		_pkf_q=1
		shift
	fi
	case "${1:-}" in
	-*) echo "usage: $0 [CACHE_DIR]" >&2; exit 2 ;;
	esac
	C=${1:-${PYKILL_BENCH_CACHE:-${HOME:?}/.cache/pykill-bench}}
	if [ -n "$_pkf_q" ]; then
		case "$C" in
		*"'"*) pk_fetch_die "cache directory must not contain a single quote: $C" ;;
		esac
	fi
	case "$C" in
	/*) ;;
	*) C=$(pwd)/$C ;;
	esac
}

# pk_fetch_need TOOL...: exit 1 naming the first tool that is not on PATH,
# or the keyring when it cannot be read.
pk_fetch_need() {
	for _pkf_t in "$@"; do
		command -v "$_pkf_t" >/dev/null 2>&1 || pk_fetch_die "missing $_pkf_t (apt-get install apt dpkg patchelf)"
	done
	[ -r "$PK_FETCH_KEYRING" ] || pk_fetch_die "missing $PK_FETCH_KEYRING (apt-get install debian-archive-keyring)"
}

# pk_fetch_missing TOOL...: prints " TOOL" for each tool not on PATH, and
# " debian-archive-keyring(PATH)" when the keyring cannot be read; nothing
# when all is there (for a caller that reports every gap at once).
pk_fetch_missing() {
	for _pkf_t in "$@"; do
		command -v "$_pkf_t" >/dev/null 2>&1 || printf ' %s' "$_pkf_t"
	done
	[ -r "$PK_FETCH_KEYRING" ] || printf ' debian-archive-keyring(%s)' "$PK_FETCH_KEYRING"
}

# pk_fetch_apt_setup DIR: private apt state in DIR/apt (lists, cache, a
# sources.list for sid main signed by the Debian archive keyring), used by
# pk_fetch_apt and the functions below. Returns 1 (said) when DIR/apt
# cannot be created, 2 (said) when sources.list cannot be written.
pk_fetch_apt_setup() {
	PK_FETCH_APT=$1/apt
	if ! mkdir -p "$PK_FETCH_APT/lists/partial" "$PK_FETCH_APT/cache/archives/partial"; then
		pk_fetch_msg "cannot create directories under $1"
		return 1
	fi
	if ! { echo "deb [signed-by=$PK_FETCH_KEYRING] http://deb.debian.org/debian sid main" \
		>"$PK_FETCH_APT/sources.list.tmp" &&
		mv -f "$PK_FETCH_APT/sources.list.tmp" "$PK_FETCH_APT/sources.list"; }; then
		pk_fetch_msg "cannot write $PK_FETCH_APT/sources.list"
		return 2
	fi
}

# pk_fetch_apt CMD [ARG...]: run an apt command on the private state only:
# nothing under /etc/apt or /var/lib/apt is read for the package lists or
# written, and with an empty status file apt installs nothing and resolves
# dependencies as on an empty system. The sandbox user is root because the
# cache may be under a directory _apt cannot enter (e.g. /root/.cache).
# PK_FETCH_APT_OPTS: more options, words without blanks (fetch-gdb's).
pk_fetch_apt() {
	# shellcheck disable=SC2086 # PK_FETCH_APT_OPTS is a list of words
	"$@" -o Dir::Etc::sourcelist="$PK_FETCH_APT/sources.list" -o Dir::Etc::sourceparts=/dev/null \
		-o Dir::State::Lists="$PK_FETCH_APT/lists" -o Dir::Cache="$PK_FETCH_APT/cache" \
		-o Dir::State::status=/dev/null -o APT::Sandbox::User=root -o APT::Architecture=amd64 \
		${PK_FETCH_APT_OPTS:-}
}

# pk_fetch_apt_update: the package lists of sid, logged to update.log.
# Returns 1 (said) when apt-get update fails.
pk_fetch_apt_update() {
	pk_fetch_msg "apt-get update (sid, private lists in $PK_FETCH_APT)"
	if ! pk_fetch_apt apt-get -q update >"$PK_FETCH_APT/update.log" 2>&1; then
		pk_fetch_msg "apt-get update failed, see $PK_FETCH_APT/update.log"
		return 1
	fi
}

# pk_fetch_download DIR PKG: download PKG's .deb into DIR, logged to
# download-PKG.log. Returns 1 (said) on failure.
pk_fetch_download() {
	pk_fetch_msg "downloading $2"
	if ! (cd "$1" && pk_fetch_apt apt-get -q download "$2") >"$PK_FETCH_APT/download-$2.log" 2>&1; then
		pk_fetch_msg "apt-get download $2 failed, see $PK_FETCH_APT/download-$2.log"
		return 1
	fi
}

# pk_fetch_ldso ROOT [lib64-first]: prints the path of sid's dynamic loader
# unpacked under ROOT; 1 when there is none. The multiarch directory is
# looked in first; lib64-first looks in usr/lib64 and lib64 first (the
# path fetch-pythons.sh has always written into PT_INTERP, and compares
# against to tell whether an interpreter is patched already).
pk_fetch_ldso() {
	if [ "${2:-}" = lib64-first ]; then
		set -- "$1/usr/lib64" "$1/lib64" "$1/usr/lib/x86_64-linux-gnu" "$1/lib/x86_64-linux-gnu"
	else
		set -- "$1/usr/lib/x86_64-linux-gnu" "$1/lib/x86_64-linux-gnu" "$1/usr/lib64" "$1/lib64"
	fi
	for _pkf_d in "$@"; do
		if [ -e "$_pkf_d/ld-linux-x86-64.so.2" ]; then
			printf '%s\n' "$_pkf_d/ld-linux-x86-64.so.2"
			return 0
		fi
	done
	return 1
}

# pk_fetch_patch SRC DST LDSO ROOT: copy the sid binary SRC to DST, its
# PT_INTERP set to LDSO and its DT_RPATH to ROOT's library directories, so
# that it runs with sid's libc (the binary itself, not through ld.so, so
# that /proc/PID/exe and comm are its own). DT_RPATH, not DT_RUNPATH:
# RUNPATH only covers the executable's own dependencies, not those of
# dlopen'ed modules (_ctypes -> libffi.so.8), which would then come from
# the host. DST appears whole or not at all (DST.tmp meanwhile); 1 on failure.
pk_fetch_patch() {
	if cp -f "$1" "$2.tmp" &&
		patchelf --set-interpreter "$3" --force-rpath \
			--set-rpath "$4/usr/lib/x86_64-linux-gnu:$4/lib/x86_64-linux-gnu" "$2.tmp" &&
		mv -f "$2.tmp" "$2"; then
		return 0
	fi
	rm -f "$2.tmp"
	return 1
}
