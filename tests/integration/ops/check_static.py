#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A PYKILL_STATIC build needs neither libelf, nor capstone, nor their
compression libraries at run time.

  check_static.py PYKILL

Reads the binary's NEEDED entries (readelf -d): none may name libelf,
libcapstone, libz or libzstd; ldd must resolve every one that is left; and
the binary must run (--version, ps --pids). Exits 0, 1 on failure, 77 when
readelf is missing.
"""
import re
import shutil
import subprocess
import sys

FORBIDDEN = re.compile(r"^lib(elf|capstone|z|zstd)\.so")


def main():
    pykill = sys.argv[1]
    readelf = shutil.which("readelf")
    if readelf is None:
        print("SKIP: readelf (binutils) is not installed")
        sys.exit(77)
    dyn = subprocess.run([readelf, "-d", pykill], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    bad = [n for n in needed if FORBIDDEN.match(n)]
    if bad:
        print("FAIL: %s still needs %s (all NEEDED: %s)" % (pykill, ", ".join(bad), ", ".join(needed)))
        sys.exit(1)
    if shutil.which("ldd"):
        out = subprocess.run(["ldd", pykill], stdout=subprocess.PIPE, universal_newlines=True).stdout
        if "not found" in out:
            print("FAIL: ldd cannot resolve a library of %s:\n%s" % (pykill, out))
            sys.exit(1)
    for args in (["--version"], ["ps", "--pids"]):
        res = subprocess.run([pykill] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        if res.returncode != 0:
            print("FAIL: %s %s exited %d: %s" % (pykill, " ".join(args), res.returncode, res.stderr))
            sys.exit(1)
    print("ok: NEEDED only %s" % ", ".join(needed))


if __name__ == "__main__":
    main()
