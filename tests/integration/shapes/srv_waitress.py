# SPDX-License-Identifier: MIT
"""waitress (its ThreadedTaskDispatcher: argv[2] handler threads) on the
listening socket whose fd is argv[1], running shapes_app."""
import socket
import sys

import waitress.server

from shapes_app import app, event, native_tid

server = waitress.server.create_server(app, sockets=[socket.socket(fileno=int(sys.argv[1]))],
                                       threads=int(sys.argv[2]), expose_tracebacks=False)
event("ready %d" % native_tid())
server.run()
