"""``tconv serve``: the local page (change a layer's arguments, watch the arithmetic and pictures).

Binds 127.0.0.1 unless ``--host`` names another address (then it warns: the page is
meant for this machine). Needs the web extra: ``pip install 'tconv[web]'``.
"""

from __future__ import annotations

import argparse
import sys

HELP = "serve the local page: change a layer's arguments and watch the arithmetic and the pictures"
DESCRIPTION = HELP + "."
EPILOG = """\
examples:
  tconv serve                     # http://127.0.0.1:8000/ (the seed's layer)
  tconv serve --port 8765 --open  # and open it in the browser
  tconv serve --port 0            # any free port (the URL is printed)

A link reproduces a view: http://127.0.0.1:8000/?spec=TEXT&input=SHAPE. Ctrl-C stops the server.
"""

_LOCAL = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", "-p", type=int, default=8000, help="port (default 8000; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; anything else is reachable from other machines)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")


def run(args: argparse.Namespace) -> int:
    from tconv.errors import TconvError
    from tconv.web import _url, serve

    if not 0 <= args.port <= 65535:
        raise TconvError("--port", args.port, "must be between 0 and 65535")
    if args.host not in _LOCAL:
        print(f"tconv serve: warning: binding {args.host}, not 127.0.0.1: other machines can reach this page "
              "and make it compute; use it only on a network you trust", file=sys.stderr)

    def ready(server):
        from tconv.web import _bound_port

        print(f"tconv serve: {_url(args.host, _bound_port(server, args.port))}  (Ctrl-C stops it)", flush=True)

    serve(args.host, args.port, open_browser=args.open, on_ready=ready)
    print("tconv serve: stopped", flush=True)
    return 0


if __name__ == "__main__":
    from tconv.cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
