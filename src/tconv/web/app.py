"""The Starlette application behind ``tconv serve``: a JSON/SVG API and one static page.

Every number and picture comes from the Python API (:func:`tconv.explain`,
:func:`tconv.draw`, :func:`tconv.translation.translate`, :mod:`tconv.web.forms`); the
page only shows them. Bad input is a 400 with ``{"error": message}`` (the package's own
:class:`~tconv.errors.TconvError` message); no endpoint reads the file system (the
page's three files are read once, from the package, when the app is made).

Limits: input shapes of at most :data:`MAX_INPUT_ELEMENTS` elements and
:data:`MAX_AXIS` per axis; drawings of at most :data:`MAX_DRAWN_INPUT` input cells
(their scene has a frame per cell); every computation runs in a worker thread and
answers 400 after ``timeout`` seconds (the thread finishes in the background; the
pool's size bounds how many can).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable

from tconv.commands.explain import parse_shape
from tconv.errors import TconvError
from tconv.spec import FRAMEWORKS, parse
from tconv.web import forms

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

__all__ = ["create_app", "MAX_INPUT_ELEMENTS", "MAX_AXIS", "MAX_DRAWN_INPUT", "TIMEOUT_S"]

log = logging.getLogger("tconv.web")

#: largest input (elements, batch included) the API explains or translates
MAX_INPUT_ELEMENTS = 2 ** 20
#: largest length of one input axis
MAX_AXIS = 4096
#: largest drawn input, in cells (the scatter animation has a frame per input cell)
MAX_DRAWN_INPUT = 256
#: seconds a request may compute
TIMEOUT_S = 20.0
VIEWS = forms.VIEWS
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class _Bad(Exception):
    """A 400 with this message."""


# ------------------------------------------------------------------ reading the query


def _text(request: Request, name: str, *, required: bool = True, limit: int = 4000) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        if required:
            raise _Bad(f"{name} is missing: add ?{name}=...")
        return None
    if len(value) > limit:
        raise _Bad(f"{name} is {len(value)} characters long; at most {limit} are read")
    return value


def _shape(request: Request, *, required: bool = True) -> tuple[int, ...] | None:
    text = _text(request, "input", required=required, limit=100)
    if text is None:
        return None
    shape = parse_shape(text)
    if any(v > MAX_AXIS for v in shape):
        raise _Bad(f"input={text} has an axis longer than {MAX_AXIS}; the page explains smaller cases "
                   "(tconv explain on the command line has no such cap)")
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise _Bad(f"input={text} has {math.prod(shape):,} elements; the page explains at most "
                   f"{MAX_INPUT_ELEMENTS:,} (tconv explain on the command line has no such cap)")
    return shape


def _spec(request: Request) -> str:
    """The spec's canonical text (parsed here, so a bad one is a 400 before any work)."""
    return repr(parse(_text(request, "spec")))


# ------------------------------------------------------------------------ computing
# Results are cached by the canonical spec (its repr) and the shape: the page asks the
# same questions again on back/forward, and frames of one scene share a build.


@functools.lru_cache(maxsize=256)
def _explain_json(text: str, shape: tuple[int, ...]) -> bytes:
    from tconv.explain import explain

    return json.dumps(explain(text, shape).to_dict()).encode()


@functools.lru_cache(maxsize=256)
def _translate_json(text: str, to: str, shape: tuple[int, ...]) -> bytes:
    from tconv.translation import translate

    t = translate(text, to=to, input_shape=shape)
    return json.dumps({**t.to_dict(), "code": t.code}).encode()


@functools.lru_cache(maxsize=64)
def _scene(text: str, shape: tuple[int, ...], view: str):
    from tconv.draw import scene

    spec = parse(text)
    g = spec.resolve(shape).geometry
    drawn = g.axes[-2:] if g.rank == 3 else g.axes
    cells = math.prod(min(a.size, a.out) for a in drawn)
    if cells > MAX_DRAWN_INPUT:
        raise _Bad(f"input={','.join(map(str, shape))}: the drawing would have {cells} input cells; the page "
                   f"draws at most {MAX_DRAWN_INPUT} (e.g. 16 x 16). Explain works on any size; draw a "
                   "smaller case to see the pictures")
    return scene(spec, shape, view)


@functools.lru_cache(maxsize=512)
def _svg(text: str, shape: tuple[int, ...], view: str, frame: int | None) -> str:
    from tconv.draw import svg

    s = _scene(text, shape, view)
    if frame is not None and not -len(s.frames) <= frame < len(s.frames):
        raise _Bad(f"frame={frame} must index the {len(s.frames)} frames of this view (0..{len(s.frames) - 1})")
    return svg.render(s, None if frame is None else [frame])


def _frames(text: str, shape: tuple[int, ...], view: str) -> dict:
    s = _scene(text, shape, view)
    return {"view": view, "static": s.static_frame % len(s.frames),
            "frames": [{"index": i, "kind": f.kind, "ms": f.duration_ms, "caption": f.caption}
                       for i, f in enumerate(s.frames)]}


def _form(request: Request) -> dict:
    text = _text(request, "spec", required=False)
    if text is None:
        framework = _text(request, "framework", required=False) or "keras"
        kind = _text(request, "kind", required=False) or "transposed"
        rank_text = _text(request, "rank", required=False, limit=2) or "2"
        if not rank_text.isdigit():
            raise TconvError("rank", rank_text, "must be 1, 2 or 3")
        text, shape_text = forms.example(framework, kind, int(rank_text))
        shape = parse_shape(shape_text)
    else:
        shape = _shape(request)
    return forms.form(parse(text), shape)


def _build(request: Request) -> dict:
    callee = _text(request, "callee", limit=80)
    values: dict[str, Any] = {}
    for name in request.query_params.keys():
        if name == "callee":
            continue
        items = request.query_params.getlist(name)
        if len(items) > 16 or any(len(v) > 200 for v in items):
            raise _Bad(f"{name} has too many or too long values")
        values[name] = items if len(items) > 1 else items[0]
    if len(values) > 32:
        raise _Bad("too many arguments")
    return {"spec": repr(forms.build_spec(callee, values))}


# ------------------------------------------------------------------------ the app


def create_app(*, timeout: float = TIMEOUT_S, workers: int = 4,
               allowed_hosts: tuple[str, ...] = _LOCAL_HOSTS) -> Starlette:
    """The application. ``allowed_hosts`` are the Host headers answered (DNS rebinding:
    a page elsewhere cannot reach this one through a name that resolves to 127.0.0.1)."""
    # Starlette is the web extra's: imported here, so that this module imports (and its
    # doctests collect) without it
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tconv-web")
    pkg = resources.files("tconv.web") / "static"
    index = (pkg / "index.html").read_bytes()
    static = {name: ((pkg / name).read_bytes(), mime) for name, mime in _STATIC.items()}

    async def compute(fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(pool.submit(fn)), timeout)
        except asyncio.TimeoutError:
            raise _Bad(f"this took longer than {timeout:g} s and was stopped; try a smaller case") from None

    def endpoint(work: Callable[[Request], Callable[[], Any]], kind: str = "json"):
        async def handle(request: Request) -> Response:
            try:
                job = work(request)  # reads and checks the query (cheap), returns the computation
                result = await compute(job)
            except (TconvError, _Bad) as exc:
                return _error(str(exc))
            except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
                # input-caused but not named by tconv: a 400 with the reason, logged so it gets a message
                log.warning("input error on %s: %r", request.url.path, exc, exc_info=True)
                return _error(f"tconv could not handle this input ({type(exc).__name__}: {exc})")
            except Exception:  # noqa: BLE001 - never a traceback to the page
                log.exception("internal error on %s?%s", request.url.path, request.url.query)
                return JSONResponse({"error": "internal error in tconv (logged by the server)"}, status_code=500)
            if kind == "svg":
                return Response(result, media_type="image/svg+xml", headers=_HEADERS)
            if isinstance(result, bytes):
                return Response(result, media_type="application/json", headers=_HEADERS)
            return JSONResponse(result, headers=_HEADERS)
        return handle

    def explain_job(request):
        spec, shape = _spec(request), _shape(request)
        return lambda: _explain_json(spec, shape)

    def translate_job(request):
        spec, shape = _spec(request), _shape(request)
        to = _text(request, "to", limit=10)
        if to not in FRAMEWORKS:
            raise TconvError("to", to, f"must be one of {', '.join(FRAMEWORKS)}")
        return lambda: _translate_json(spec, to, shape)

    def view_of(request):
        view = _text(request, "view", required=False, limit=20) or "scatter"
        if view not in VIEWS:
            raise TconvError("view", view, f"must be one of {', '.join(VIEWS)}")
        return view

    def draw_job(request):
        spec, shape, view = _spec(request), _shape(request), view_of(request)
        frame_text = _text(request, "frame", required=False, limit=6)
        frame = None
        if frame_text is not None:
            if not frame_text.lstrip("-").isdigit():
                raise TconvError("frame", frame_text, "must be an integer")
            frame = int(frame_text)
        return lambda: _svg(spec, shape, view, frame)

    def frames_job(request):
        spec, shape, view = _spec(request), _shape(request), view_of(request)
        return lambda: _frames(spec, shape, view)

    def form_job(request):
        return lambda: _form(request)

    def spec_job(request):
        return lambda: _build(request)

    async def page(request: Request) -> Response:
        return Response(index, media_type="text/html; charset=utf-8", headers=_HEADERS)

    def static_file(name: str):
        body, mime = static[name]

        async def serve(request: Request) -> Response:
            return Response(body, media_type=mime, headers=_HEADERS)
        return serve

    routes = [Route("/", page), Route("/api/explain", endpoint(explain_job)),
              Route("/api/draw", endpoint(draw_job, "svg")), Route("/api/frames", endpoint(frames_job)),
              Route("/api/translate", endpoint(translate_job)), Route("/api/form", endpoint(form_job)),
              Route("/api/spec", endpoint(spec_job))]
    routes += [Route(f"/static/{name}", static_file(name)) for name in static]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    async def not_found(request: Request, exc) -> Response:
        return JSONResponse({"error": f"{request.url.path} is not a page or endpoint of tconv serve"},
                            status_code=getattr(exc, "status_code", 404), headers=_HEADERS)

    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found},
                     middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))])


_HEADERS = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer"}


def _error(message: str):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=400, headers=_HEADERS)
