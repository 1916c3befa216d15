#!/bin/sh
# SPDX-License-Identifier: MIT
# The whole test suite from a fresh Debian machine: dependencies, the Debian sid
# interpreters (3.13-3.15), the free-threaded ones built from Debian's sources
# (3.13t-3.15t, once per machine: see tests/build-ft-pythons.sh), a -Werror
# build, then every unit and integration test. Run as root (apt-get, and
# ptrace of processes that are not children).
#   tests/run-all.sh [BUILD_DIR] [extra cmake args...]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
[ $# -gt 0 ] && shift
"$src/tests/install-deps.sh"
"$src/tests/fetch-pythons.sh" || echo "run-all.sh: fetching the sid interpreters failed; their tests will skip" >&2
"$src/tests/build-ft-pythons.sh" || echo "run-all.sh: building the free-threaded interpreters failed; their tests will skip" >&2
cmake -S "$src" -B "$build" -DPYKILL_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
