#!/bin/sh
# SPDX-License-Identifier: MIT
# Run a libFuzzer target for the fuzz.* tests (tests/fuzz/CMakeLists.txt).
#   run-fuzzer.sh replay FUZZER CORPUS WORKDIR MAX_LEN
#       run every committed input once
#   run-fuzzer.sh fuzz FUZZER CORPUS WORKDIR MAX_LEN SECONDS
#       fuzz for SECONDS from a scratch copy of CORPUS (WORKDIR/corpus), so the
#       inputs libFuzzer adds stay out of the source tree
# A crash, leak, sanitizer report, timeout (10 s per input) or memory blow-up
# (2 GiB) fails the test; the input is left in WORKDIR/crash-* (or leak-,
# timeout-, oom-): reproduce with "FUZZER FILE", and once fixed, commit it
# to CORPUS as a regression seed.
set -eu
mode=$1 fuzzer=$2 corpus=$3 work=$4 max_len=$5
mkdir -p "$work"
# libFuzzer says 77 on a crash by default: the suite's "skipped".
opts="-max_len=$max_len -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -artifact_prefix=$work/ -print_final_stats=1"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
case $mode in
replay)
	# Files, not the directory: every input runs once, none is skipped.
	exec "$fuzzer" $opts -runs=1 "$corpus"/*
	;;
fuzz)
	seconds=$6
	rm -rf "$work/corpus"
	mkdir -p "$work/corpus"
	cp "$corpus"/* "$work/corpus/"
	exec "$fuzzer" $opts -max_total_time="$seconds" "$work/corpus"
	;;
*)
	echo "run-fuzzer.sh: unknown mode $mode" >&2
	exit 2
	;;
esac
