#!/bin/sh
# SPDX-License-Identifier: MIT
# Install what pykill needs to build and test on Debian (run as root).
# Build: a C11 compiler, CMake, pkg-config, libelf, capstone.
# Tests: cmocka, python3 (drives the integration tests; pykill itself never
# needs Python), Debian's static and debug python3.11 as targets, patchelf and
# dpkg-deb for the sid interpreters, clang for the fuzzers, lintian for the
# package test, gunicorn, celery, gevent, waitress, cheroot and twisted as the
# shapes tests' servers, uwsgi with its Python 3 plugin for the servers tests;
# libffi-dev, zlib1g-dev and xz-utils to build the free-threaded interpreters
# (tests/build-ft-pythons.sh).
set -eu
if [ "$(id -u)" != 0 ]; then
	echo "install-deps.sh: run as root (apt-get)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	build-essential cmake pkg-config libelf-dev libcapstone-dev \
	libcmocka-dev python3 python3.11 python3.11-dbg patchelf dpkg-dev ca-certificates \
	clang libclang-rt-14-dev lintian python3-gunicorn python3-celery python3-gevent \
	python3-waitress python3-cheroot python3-twisted \
	uwsgi-core uwsgi-plugin-python3 libffi-dev zlib1g-dev xz-utils >/dev/null
echo "install-deps.sh: dependencies installed" >&2
