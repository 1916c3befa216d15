#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The install tree and the Debian package.

  run_package.py BUILD_DIR SOURCE_DIR CPACK STATIC(ON|OFF)

1. `cmake --install BUILD_DIR --prefix TMP`: the binary runs, the man page
   (gzip'ed) is man/pykill.1, the bash completion is contrib's.
2. `cpack -G DEB`: the control fields (Package, Version, Architecture,
   Maintainer, Section, Priority, a summary and an extended Description,
   Installed-Size, Depends from dpkg-shlibdeps: libc6, plus libelf1 and
   libcapstone4 unless static), the file list (only these three files, owned
   by root, modes 0755/0644, under /usr), and the extracted files (dpkg-deb -x)
   are the same as the install tree's; the extracted binary runs; the
   copyright file is the licence of LICENSE; lintian (when installed)
   reports no error or warning.
Exits 0, 1 on failure, 77 when cmake/dpkg-deb/dpkg-shlibdeps are missing.
"""
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from pktest import fail, skip  # noqa: E402

FILES = {"usr/bin/pykill": 0o755, "usr/share/man/man1/pykill.1.gz": 0o644,
         "usr/share/bash-completion/completions/pykill": 0o644,
         "usr/share/doc/pykill/copyright": 0o644, "usr/share/doc/pykill/changelog.gz": 0o644}


def run(argv, **kw):
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, **kw)
    if res.returncode != 0:
        fail("`%s` exited %d:\n%s" % (" ".join(argv), res.returncode, res.stdout))
    return res.stdout


def check_tree(root, prefix, src, what):
    pk = os.path.join(root, prefix, "bin/pykill")
    out = run([pk, "--version"])
    if not out.startswith("pykill "):
        fail("%s: %s --version says %r" % (what, pk, out))
    with gzip.open(os.path.join(root, prefix, "share/man/man1/pykill.1.gz"), "rt") as f:
        man = f.read()
    with open(os.path.join(src, "man/pykill.1")) as f:
        if man != f.read():
            fail("%s: the installed man page is not man/pykill.1" % what)
    with open(os.path.join(root, prefix, "share/bash-completion/completions/pykill")) as f:
        comp = f.read()
    with open(os.path.join(src, "contrib/bash-completion/pykill")) as f:
        if comp != f.read():
            fail("%s: the installed completion is not contrib/bash-completion/pykill" % what)
    with open(os.path.join(root, prefix, "share/doc/pykill/copyright")) as f:
        copyright_text = " ".join(f.read().split())
    with open(os.path.join(src, "LICENSE")) as f:
        licence = f.read().split("\n\n", 2)[2]  # after the title and the copyright line
    if " ".join(licence.split()) not in copyright_text.replace(" . ", " "):
        fail("%s: share/doc/pykill/copyright does not carry LICENSE's text" % what)
    with gzip.open(os.path.join(root, prefix, "share/doc/pykill/changelog.gz"), "rt") as f:
        if not f.read().startswith("pykill ("):
            fail("%s: share/doc/pykill/changelog.gz is not a Debian changelog" % what)


def main():
    build, src, cpack, static = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].upper() in ("ON", "1", "TRUE")
    cmake = os.path.join(os.path.dirname(cpack), "cmake")
    for tool in ("dpkg-deb", "dpkg-shlibdeps"):
        if shutil.which(tool) is None:
            skip("%s is not installed (dpkg-dev)" % tool)
    if not os.path.exists(cmake):
        skip("no cmake beside %s" % cpack)
    tmp = tempfile.mkdtemp(prefix="pykill-pkg-")
    try:
        inst = os.path.join(tmp, "inst")
        run([cmake, "--install", build, "--prefix", inst])
        check_tree(inst, "", src, "cmake --install")

        out = os.path.join(tmp, "deb")
        run([cpack, "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"), "-B", out])
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        if len(debs) != 1:
            fail("cpack made %r, want one .deb" % debs)
        deb = os.path.join(out, debs[0])
        arch = run(["dpkg", "--print-architecture"]).strip()
        fields = {}
        for name in ("Package", "Version", "Architecture", "Maintainer", "Section", "Priority", "Depends",
                     "Installed-Size", "Description"):
            fields[name] = run(["dpkg-deb", "-f", deb, name]).rstrip("\n")
        with open(os.path.join(src, "CMakeLists.txt")) as f:
            version = re.search(r"project\(pykill VERSION ([0-9.]+)", f.read()).group(1)
        want = {"Package": "pykill", "Version": version, "Architecture": arch, "Section": "devel",
                "Priority": "optional"}
        for k, v in want.items():
            if fields[k] != v:
                fail("control field %s is %r, want %r" % (k, fields[k], v))
        if not re.match(r"^[^<>]+ <[^@<>\s]+@[^@<>\s]+>$", fields["Maintainer"]):
            fail("Maintainer %r is not 'Name <address>'" % fields["Maintainer"])
        if not fields["Installed-Size"].isdigit() or int(fields["Installed-Size"]) <= 0:
            fail("Installed-Size %r" % fields["Installed-Size"])
        desc = fields["Description"].split("\n")
        if len(desc) < 2 or not desc[0] or len(desc[0]) > 80 or desc[1].strip() == desc[0] or \
                any(not l.startswith(" ") or len(l) > 80 for l in desc[1:]):
            fail("Description needs a summary line and an indented extended text: %r" % fields["Description"])
        deps = dict((d.split()[0], d) for d in (x.strip() for x in fields["Depends"].split(",")) if d)
        want_deps = {"libc6"} if static else {"libc6", "libelf1", "libcapstone4"}
        if set(deps) != want_deps:
            fail("Depends %r, want exactly %s (from dpkg-shlibdeps)" % (fields["Depends"], sorted(want_deps)))
        if any("(>=" not in d for d in deps.values()):
            fail("Depends without versions (dpkg-shlibdeps not used?): %r" % fields["Depends"])

        listing = run(["dpkg-deb", "-c", deb]).splitlines()
        files = {}
        for line in listing:
            parts = line.split()
            mode, owner, path = parts[0], parts[1], parts[5]
            if owner != "root/root":
                fail("%s is owned by %s" % (path, owner))
            if mode.startswith("-"):
                perm = sum(1 << (8 - i) for i, c in enumerate(mode[1:10]) if c != "-")
                files[path.lstrip("./")] = perm
            elif not path.startswith("./usr/"):
                fail("the package has %s outside /usr" % path)
        if files != FILES:
            fail("package files %r, want %r" % (sorted(files.items()), sorted(FILES.items())))

        root = os.path.join(tmp, "root")
        run(["dpkg-deb", "-x", deb, root])
        check_tree(root, "usr", src, "dpkg-deb -x")
        if shutil.which("file") and "not stripped" in run(["file", "-b", os.path.join(root, "usr/bin/pykill")]):
            fail("the packaged binary is not stripped")
        if shutil.which("lintian"):
            res = subprocess.run(["lintian", "--allow-root", "--tag-display-limit", "0", deb],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
            tags = [l for l in res.stdout.splitlines() if l[:3] in ("E: ", "W: ")]
            if tags:
                fail("lintian on %s:\n%s" % (debs[0], "\n".join(tags)))
        else:
            print("note: lintian is not installed; the package was not linted")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok: install tree and %s (Depends: %s)" % (debs[0], fields["Depends"]))


if __name__ == "__main__":
    main()
