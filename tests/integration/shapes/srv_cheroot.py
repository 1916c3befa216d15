# SPDX-License-Identifier: MIT
"""cheroot's WSGI server (CherryPy's: argv[2] WorkerThreads) on the
listening socket whose fd is argv[1], running shapes_app."""
import socket
import sys

from cheroot import wsgi

from shapes_app import app, event, native_tid

LSOCK = socket.socket(fileno=int(sys.argv[1]))


class Server(wsgi.Server):
    def bind(self, family, type, proto=0):
        # The test's listener, not a port of cheroot's choosing: no other
        # process can take it between choosing and binding.
        self.socket = LSOCK
        self.bind_addr = LSOCK.getsockname()
        return LSOCK


server = Server(LSOCK.getsockname(), app, numthreads=int(sys.argv[2]), max=int(sys.argv[2]))
server.prepare()  # binds and starts the worker threads
event("ready %d" % native_tid())
server.serve()
