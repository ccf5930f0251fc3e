"""``tconv serve``: a local page where a layer's arguments change and its arithmetic and
pictures follow.

A face on the Python API: the page (``static/``: plain HTML, CSS and JavaScript, no
build step, nothing fetched from the internet) computes nothing; every number and picture
comes from the JSON/SVG API of :mod:`tconv.web.app`, computed from the same Geometry as
the kernels. It needs the ``web`` extra (``pip install tconv[web]``: Starlette and
uvicorn), imported only here, never by ``import tconv``.

API (GET; ``SHAPE`` as ``8,8,1024`` or ``8x8x1024``; bad input is a 400 with ``{"error": message}``):

=================================================  =================================================
``/api/explain?spec=TEXT&input=SHAPE``             ``tconv.explain(TEXT, SHAPE).to_dict()``
``/api/draw?spec=&input=&view=&frame=``            SVG (``image/svg+xml``); view scatter, zeros,
                                                   overlap, matrix or conv; frame optional
``/api/frames?spec=&input=&view=``                 the view's frames: index, kind, ms, caption
``/api/translate?spec=&to=&input=``                ``translate(...).to_dict()`` plus ``code``
``/api/form?spec=&input=``                         the layer's fields, defaults and valid choices
``/api/form?framework=&kind=&rank=``               the same for the page's example of that layer
``/api/spec?callee=NAME&ARG=VALUE...``             ``{"spec": TEXT}`` from a form's values
=================================================  =================================================
"""

from __future__ import annotations

import contextlib

from tconv.errors import TconvError

__all__ = ["create_app", "serve", "background"]


def _require() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as exc:
        raise TconvError("web", exc.name, "is not installed: the page needs the web extra "
                         "(pip install 'tconv[web]')") from None


def create_app(**kwargs):
    """The Starlette application (see :func:`tconv.web.app.create_app`)."""
    _require()
    from tconv.web.app import create_app as _create

    return _create(**kwargs)


def serve(host: str = "127.0.0.1", port: int = 8000, *, open_browser: bool = False, log_level: str = "warning",
          on_ready=None) -> None:
    """Serve the page with uvicorn until interrupted (Ctrl-C stops it cleanly)."""
    _require()
    import uvicorn

    allowed = ("127.0.0.1", "localhost", "[::1]", "::1") + ((host,) if host not in ("0.0.0.0", "::") else ("*",))
    config = uvicorn.Config(create_app(allowed_hosts=allowed), host=host, port=port, log_level=log_level)
    server = uvicorn.Server(config)
    if on_ready is not None or open_browser:
        import threading
        import time

        def announce():
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                if on_ready is not None:
                    on_ready(server)
                if open_browser:
                    import webbrowser

                    webbrowser.open(_url(host, _bound_port(server, port)))
        threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:
        # uvicorn shuts down on Ctrl-C, then re-raises the signal it caught: that is the clean stop
        pass


@contextlib.contextmanager
def background(app=None, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 20.0):
    """Serve ``app`` (default: :func:`create_app`) from a background thread; yields its URL.

    For notebooks and tests: the socket is bound before the thread starts (``port=0``
    picks a free port), and leaving the block stops the server and joins the thread.
    """
    _require()
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app if app is not None else create_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="tconv-web-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the tconv web server did not start")
            time.sleep(0.02)
        yield _url(host, bound)
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def _bound_port(server, port: int) -> int:
    """The port uvicorn bound (``port=0`` picks a free one)."""
    for s in getattr(server, "servers", []) or []:
        for sock in getattr(s, "sockets", []) or []:
            return sock.getsockname()[1]
    return port


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}/"
