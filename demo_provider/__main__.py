"""Run the demo provider: ``python -m demo_provider [--host H] [--port P] [--db PATH]
[--redirect-uri URI ...]``.

Migrates its own database quietly, seeds it, then serves until SIGTERM/SIGINT. The
only line written to stdout is ``demo provider listening on http://HOST:PORT``, so
a parent process (``make run``, the test harness) knows when and where it is up.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import django
from django.core.management import call_command
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application


class QuietRequestHandler(WSGIRequestHandler):
    """No request lines on stderr: noise in the test output, and query strings in them."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo_provider", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument(
        "--db",
        help="SQLite file (default: $DEMO_PROVIDER_DB, else .demo_provider.sqlite3 in the repo)",
    )
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="an extra allowed redirect URI for every client (repeatable)",
    )
    return parser.parse_args(argv)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    # Always our own settings, even when started from a shell (or pytest) that has
    # the main site's DJANGO_SETTINGS_MODULE exported.
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo_provider.settings"
    if args.db:
        os.environ["DEMO_PROVIDER_DB"] = str(Path(args.db).resolve())

    django.setup()
    from demo_provider.seed import seed  # needs the app registry set up

    call_command("migrate", verbosity=0, interactive=False)
    seed(args.redirect_uri)

    ipv6 = ":" in args.host
    server = ThreadedWSGIServer((args.host, args.port), QuietRequestHandler, ipv6=ipv6)
    server.set_app(get_wsgi_application())
    host = f"[{args.host}]" if ipv6 else args.host
    print(f"demo provider listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
