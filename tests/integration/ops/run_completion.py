#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The bash completion of pykill, driven as readline drives it.

  run_completion.py PYKILL COMPLETION_FILE PYTHON

Sources COMPLETION_FILE in `bash --norc`, checks `complete -p pykill`, then
calls _pykill with COMP_WORDS/COMP_CWORD set for each case and compares
COMPREPLY: commands, options, option values (with '=' as a word break and
without), the PIDs of Python processes (a live target listed, a non-Python
process not), the TIDs of the PID given to raise, exception names.
Exits 0, 1 on failure, 77 when bash or PYTHON is missing.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opslib import Target, cleanup, fail, skip, started  # noqa: E402


def bash_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def complete(bash, compfile, pykill, words, wordbreaks=None):
    """COMPREPLY for the command line words, completing the last one."""
    script = "source %s || exit 9\n" % bash_quote(compfile)
    if wordbreaks is not None:
        script += "COMP_WORDBREAKS=%s\n" % bash_quote(wordbreaks)
    script += "COMP_WORDS=(%s)\nCOMP_CWORD=%d\n" % (" ".join(bash_quote(w) for w in words), len(words) - 1)
    script += "COMP_LINE=%s\nCOMP_POINT=${#COMP_LINE}\n" % bash_quote(" ".join(words))
    script += "_pykill %s || exit 8\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n" % bash_quote(pykill)
    res = subprocess.run([bash, "--norc", "--noprofile", "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    if res.returncode != 0 or res.stderr:
        fail("completing %r: bash exited %d: %s" % (words, res.returncode, res.stderr))
    return sorted(l for l in res.stdout.split("\n") if l)


def main():
    pykill, compfile, python = sys.argv[1], sys.argv[2], sys.argv[3]
    bash = shutil.which("bash")
    if bash is None:
        skip("bash is not installed")
    if not os.path.exists(python):
        skip("%s is not installed" % python)
    res = subprocess.run([bash, "--norc", "--noprofile", "-c", "source %s && complete -p pykill" % bash_quote(compfile)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if res.returncode != 0 or "-F _pykill" not in res.stdout or not res.stdout.rstrip().endswith(" pykill"):
        fail("complete -p pykill: %r %r" % (res.stdout, res.stderr))

    t = Target(python, sleepers=2)
    other = subprocess.Popen(["sleep", "600"])
    started.append(other)
    pid = str(t.proc.pid)
    tids = sorted(os.listdir("/proc/%s/task" % pid))
    try:
        def expect(words, want, wordbreaks=None, contains=False):
            got = complete(bash, compfile, pykill, words, wordbreaks)
            if contains:
                missing = [w for w in want if w not in got]
                if missing:
                    fail("completing %r: %r missing from %r" % (words, missing, got))
            elif got != sorted(want):
                fail("completing %r%s: got %r, want %r" % (words, "" if wordbreaks is None else
                                                           " (COMP_WORDBREAKS %r)" % wordbreaks, got, sorted(want)))
            return got

        expect(["pykill", ""], ["help", "list", "ps", "raise", "withdraw"])
        expect(["pykill", "w"], ["withdraw"])
        expect(["pykill", "withdraw", "--"], ["--interp=", "--json", "--verbose"])
        expect(["pykill", "l"], ["list"])
        expect(["pykill", "--v"], ["--verbose", "--version"])
        expect(["pykill", "-v", "r"], ["raise"])
        # Every command's options, as --help lists them (with '=' when they take a value).
        helptext = subprocess.run([pykill, "--help"], stdout=subprocess.PIPE, universal_newlines=True).stdout
        for cmd in ("ps", "list", "raise"):
            section = helptext.split("Options for %s:\n" % cmd)[1].split("\n\n")[0]
            opts = re.findall(r"^  (--[a-z-]+=?)", section, re.M)
            if not opts:
                fail("no options for %s in --help:\n%s" % (cmd, helptext))
            expect(["pykill", cmd, "--"], opts + ["--verbose"])
        expect(["pykill", "ps", "--"], ["--json", "--pids", "--stuck=", "--verbose"])
        expect(["pykill", "list", "--fr"], ["--freeze="])
        expect(["pykill", "raise", "--v"], ["--verbose", "--via="])
        # Option values: readline cuts at '=' by default, not when '=' is no word break.
        expect(["pykill", "list", "--freeze", "=", ""], ["all", "auto", "none"])
        expect(["pykill", "list", "--freeze", "=", "a"], ["all", "auto"])
        expect(["pykill", "raise", "--via", "=", "c"], ["call"])
        expect(["pykill", "list", "--freeze=a"], ["--freeze=all", "--freeze=auto"], wordbreaks=" \t\n\"'")
        # PIDs: the live Python target, not a non-Python process, nor a TID.
        for words in (["pykill", "list", ""], ["pykill", "-v", "list", "--json", "--freeze", "=", "all", ""],
                      ["pykill", "raise", ""], ["pykill", "withdraw", ""], ["pykill", "ps", pid, ""]):
            got = expect(words, [pid], contains=True)
            if str(other.pid) in got or tids[-1] in got:
                fail("completing %r offers the non-Python %d or the TID %s: %r" % (words, other.pid, tids[-1], got))
        expect(["pykill", "list", pid[:-1]], [pid], contains=True)
        # raise PID <TAB>: that process's TIDs; then exception names.
        expect(["pykill", "raise", pid, ""], tids)
        expect(["pykill", "raise", "--via=write", pid, ""], tids, wordbreaks=" \t\n\"'")
        expect(["pykill", "withdraw", pid, ""], tids)
        expect(["pykill", "raise", pid, tids[-1], "Sys"], ["SystemExit"])
        expect(["pykill", "raise", pid, tids[-1], "Ke"], ["KeyboardInterrupt"])
        expect(["pykill", "raise", pid, tids[-1], "SystemExit", ""], [])
        # A pykill that cannot answer: the /proc/*/maps scan still finds the target.
        got = complete(bash, compfile, "/nonexistent/pykill", ["pykill", "list", ""])
        if pid not in got or str(other.pid) in got:
            fail("the fallback scan of /proc/*/maps: %r (target %s, non-Python %d)" % (got, pid, other.pid))
        t.quit()
    finally:
        cleanup()
    print("ok: commands, options, values, PIDs, TIDs and exception names complete")


if __name__ == "__main__":
    main()
