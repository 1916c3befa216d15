#!/bin/sh
# SPDX-License-Identifier: MIT
# Benchmark of `pykill list`; see bench/README.md and `list-bench.sh --help`.
# A thin wrapper: the harness is bench/list_bench.py (needs python3 >= 3.8
# on the host, for os.posix_spawn; the target Python is chosen by --python).
here=$(dirname "$0")
command -v python3 >/dev/null 2>&1 || { echo "list-bench: python3 is needed for the harness" >&2; exit 2; }
exec python3 "$here/list_bench.py" "$@"
