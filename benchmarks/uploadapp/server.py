"""The benchmarks' web server: Django under wsgiref on a free loopback port, printed first.

    python -m benchmarks.uploadapp.server

Nothing of ``attachments`` is imported before Django starts, so the code under
test is whichever ``attachments`` comes first on ``PYTHONPATH``: this checkout's,
or an older revision's for a before/after comparison (``upload.py --baseline``).
"""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django
from django.core.wsgi import get_wsgi_application


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve() -> None:
    django.setup()
    logging.getLogger("attachments").setLevel(logging.WARNING)
    logging.getLogger("django.request").setLevel(logging.ERROR)  # refused hostile uploads
    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_Quiet)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve()
