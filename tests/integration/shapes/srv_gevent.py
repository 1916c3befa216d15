# SPDX-License-Identifier: MIT
"""gevent's pywsgi server, monkey-patched, on the listening socket whose fd is
argv[1], running shapes_app (every request a greenlet of the main thread)."""
from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import sys  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402

from shapes_app import app, event, native_tid  # noqa: E402

server = WSGIServer(socket.socket(fileno=int(sys.argv[1])), app, log=None)
server.start()
event("ready %d" % native_tid())
server.serve_forever()
