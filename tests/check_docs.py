#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Keep `pykill --help`, man/pykill.1 and cli/pk_exit.h in step.

  check_docs.py PYKILL SOURCE_DIR

Every long option and command in --help must be documented in the man page and
vice versa; the exit statuses in --help, the man page's EXIT STATUS section and
the enum in cli/pk_exit.h must be the same set.
"""
import re
import subprocess
import sys

pykill, src = sys.argv[1], sys.argv[2]
res = subprocess.run([pykill, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
if res.returncode != 0 or res.stderr:
    sys.exit("FAIL: --help must print to stdout and exit 0 (exit %d, stderr %r)" % (res.returncode, res.stderr))
helptext = res.stdout.decode()
man = open(src + "/man/pykill.1").read()
man_plain = re.sub(r"\\f[BIRP]", "", man).replace("\\-", "-")
header = open(src + "/cli/pk_exit.h").read()

problems = []
help_opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", helptext))
man_opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", man_plain))
for o in sorted(help_opts - man_opts):
    problems.append("option %s is in --help but not in the man page" % o)
for o in sorted(man_opts - help_opts - {"--cap-add"}):
    problems.append("option %s is in the man page but not in --help" % o)

help_cmds = set(re.findall(r"^  ([a-z]+) ", helptext.split("Commands:")[1].split("\n\n")[0], re.M))
man_cmds = set(re.findall(r"^\.B ([a-z]+) \\fI", man, re.M))
if help_cmds != man_cmds:
    problems.append("commands differ: --help %s, man %s" % (sorted(help_cmds), sorted(man_cmds)))

help_codes = set(int(c) for c in re.findall(r"^  (\d+)  ", helptext.split("Exit status:")[1], re.M))
exit_section = man.split(".SH EXIT STATUS")[1].split(".SH ")[0]
man_codes = set(int(c) for c in re.findall(r"^\.B (\d+)$", exit_section, re.M))
enum_codes = set(int(c) for c in re.findall(r"PK_EXIT_\w+ = (\d+)", header))
# The raise-only status 3 is documented only where raise is.
if "raise" not in help_cmds:
    enum_codes.discard(3)
if not (help_codes == man_codes == enum_codes):
    problems.append("exit statuses differ: --help %s, man %s, pk_exit.h %s" % (
        sorted(help_codes), sorted(man_codes), sorted(enum_codes)))
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("ok: %d options, %d commands, exit statuses %s in step" % (len(help_opts), len(help_cmds), sorted(man_codes)))
