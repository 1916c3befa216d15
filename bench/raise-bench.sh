#!/bin/sh
# SPDX-License-Identifier: MIT
# Benchmark of `pykill raise` beside gdb; see bench/README.md and `raise-bench.sh --help`.
# A thin wrapper: the harness is bench/raise_bench.py (needs python3 >= 3.9
# on the host, for os.posix_spawn and os.waitstatus_to_exitcode; the target
# Pythons are chosen by --python).
here=$(dirname "$0")
command -v python3 >/dev/null 2>&1 || { echo "raise-bench: python3 is needed for the harness" >&2; exit 2; }
exec python3 "$here/raise_bench.py" "$@"
