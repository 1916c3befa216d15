#!/bin/sh
# SPDX-License-Identifier: MIT
# Start a small Python program with a few threads, show `pykill list` on it, end it.
#   tests/demo.sh PYKILL [PYTHON]
set -eu
pykill=$1
python=${2:-$(command -v python3 || echo /usr/bin/python3)}
fifo=$(mktemp -u /tmp/pykill-demo.XXXXXX)
mkfifo "$fifo"
"$python" -c '
import os, socket, sys, threading, time
a, b = socket.socketpair()
def sleeper():
    while True: time.sleep(1)
def reader():
    a.recv(1)
def spinner():
    while True: sum(range(100))
for f in (sleeper, reader, spinner):
    threading.Thread(target=f, name=f.__name__, daemon=True).start()
open(sys.argv[1], "w").write("ready\n")
time.sleep(60)
' "$fifo" &
pid=$!
read -r _ < "$fifo"
rm -f "$fifo"
"$pykill" list --stacks "$pid" || status=$?
kill "$pid"
wait "$pid" 2>/dev/null || true
exit "${status:-0}"
