# SPDX-License-Identifier: MIT
"""twisted.web's WSGIResource on the reactor's thread pool (argv[2]
threads) on the listening socket whose fd is argv[1], running shapes_app."""
import os
import socket
import sys

from twisted.internet import reactor
from twisted.web.server import Site
from twisted.web.wsgi import WSGIResource

from shapes_app import app, event, native_tid

n, fd = int(sys.argv[2]), int(sys.argv[1])
os.set_blocking(fd, False)  # the reactor's accept() must not block it (it adopts the fd as it is)
pool = reactor.getThreadPool()
pool.adjustPoolsize(n, n)
site = Site(WSGIResource(reactor, pool, app))
reactor.adoptStreamPort(fd, socket.AF_INET, site)
reactor.callWhenRunning(lambda: event("ready %d" % native_tid()))
reactor.run()
