"""Pictures of a convolution, drawn from the same Geometry the kernels run.

``tconv.draw(spec_or_text, input_shape, view='scatter', format='svg')`` draws a
layer's one or two spatial axes (a chosen 2-D slice of a 3-D layer):

========  ==========================================================================
view      what it shows
========  ==========================================================================
scatter   each input cell stamps the (dilated) kernel onto the full output grid at
          stride steps, overlaps add; the cropped border is greyed and the kept
          window outlined. Animated: one frame per input cell, then the crop.
zeros     the same output as inserting stride-1 zeros between inputs, padding each
          side by d*(k-1) minus that side's crop, and sliding the flipped kernel
overlap   how many kernel taps reach each output cell (the checkerboard), counts written in
matrix    the convolution matrix C and the transposed convolution as C^T (small cases)
conv      the forward convolution: the window sliding over the padded input
========  ==========================================================================

Formats: ``'svg'`` (a :class:`Svg`, a ``str`` that Jupyter shows inline), ``'png'``
(:class:`Png` bytes), ``'gif'`` and ``'apng'`` (animations, bytes) and ``'tty'``
(text for a terminal). PNG, GIF and APNG need Pillow (``pip install tconv[draw]``).
Cells are labelled symbolically (``x0``, ``w2``...) unless ``x`` and ``kernel`` are
given; numbers then come from the real kernels (:func:`tconv.ops.run`).

``tconv.draw`` is both this package and a callable: calling the package calls
:func:`draw`, so ``tconv.draw(...)`` works however it was reached (``import
tconv.draw.svg`` makes Python bind the package itself to ``tconv.draw``).

>>> svg = draw("keras.Conv1DTranspose(1, 3, strides=2, padding='same')", (8, 1))
>>> svg.startswith("<svg") and 'class="box kept"' in svg
True
>>> print(draw("torch.nn.ConvTranspose1d(1, 1, 4, stride=2, padding=1)", (1, 2), view="overlap",
...            format="tty"))
torch.nn.ConvTranspose1d(1, 1, 4, stride=2, padding=1) on (1, 2): overlap
taps per cell, full scatter
┌───┬───┬───┬───┬───┬───┐
│░1░│ 1 │ 2 │ 2 │ 1 │░1░│
└───┴───┴───┴───┴───┴───┘
taps per output cell
┌───┬───┬───┬───┐
│ 1 │ 2 │ 2 │ 1 │
└───┴───┴───┴───┘
taps reaching each cell (per stride phase, axis 0: 2/2): even; crop 1 cell(s) at the start, 1 at the end
░n░ cropped cell, [n] current step
<BLANKLINE>
"""

from __future__ import annotations

import numbers
import sys
import types
from typing import Any, Sequence

import numpy as np

from tconv.draw.scene import VIEWS, Scene, build
from tconv.errors import TconvError
from tconv.geometry import Geometry

__all__ = ["draw", "scene", "Svg", "Png", "Animation", "VIEWS", "FORMATS"]

FORMATS = ("svg", "png", "gif", "apng", "tty")


class Svg(str):
    """SVG text; Jupyter shows it inline."""

    def _repr_svg_(self) -> str:
        return str(self)

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self)


class Png(bytes):
    """PNG bytes; Jupyter shows them inline."""

    def _repr_png_(self) -> bytes:
        return bytes(self)

    def save(self, path) -> None:
        with open(path, "wb") as fh:
            fh.write(self)


class Animation(bytes):
    """GIF or APNG bytes; Jupyter shows them inline as an ``<img>``."""

    mime = "image/gif"

    def _repr_html_(self) -> str:
        import base64

        return f'<img src="data:{self.mime};base64,{base64.b64encode(self).decode()}"/>'

    def save(self, path) -> None:
        with open(path, "wb") as fh:
            fh.write(self)


class _Apng(Animation):
    mime = "image/apng"


def scene(spec_or_text: Any, input_shape: Sequence[int] | None = None, view: str = "scatter", *,
          x: Any = None, kernel: Any = None, axes: Sequence[int] | None = None) -> Scene:
    """The neutral :class:`~tconv.draw.scene.Scene` that :func:`draw` renders.

    ``spec_or_text`` is a text spec, a :class:`~tconv.spec.LayerSpec` or a
    :class:`~tconv.geometry.Geometry`; ``axes`` picks the one or two spatial axes drawn
    (default: all of a 1-D or 2-D layer, the last two of a 3-D one).
    """
    if view not in VIEWS:
        raise TconvError("view", view, f"must be one of {', '.join(VIEWS)}")
    if isinstance(spec_or_text, Geometry):
        g, title = spec_or_text, ""
    else:
        from tconv.spec import LayerSpec, parse, shape_tuple

        spec = parse(spec_or_text) if isinstance(spec_or_text, str) else spec_or_text
        if not isinstance(spec, LayerSpec):
            raise TconvError("spec", spec_or_text, "must be a text spec, a LayerSpec or a Geometry")
        if input_shape is None:
            input_shape = next((spec.get(n) for n in ("input", "lhs", "X") if spec.get(n) is not None), None)
            if input_shape is None:
                raise TconvError("input_shape", None, f"is needed to draw {spec!r}")
        input_shape = shape_tuple(input_shape)
        g = spec.resolve(input_shape).geometry
        title = f"{spec!r} on {input_shape}"
    axes = _axes(axes, g.rank)
    drawn = Geometry(tuple(g.axes[a] for a in axes), 1, 1, 1, g.transposed)
    if len(axes) < g.rank:
        title += f", spatial axes {axes}"
    return build(drawn, view, x=x, kernel=kernel, title=f"{title}: {view}" if title else "")


def _axes(axes: Any, rank: int) -> tuple[int, ...]:
    """``axes`` (an int, or a sequence of one or two) as one or two distinct spatial axes of
    a ``rank``-D layer, counted from 0 (negative ones from the end); None: all of a 1-D or
    2-D layer, the last two of a 3-D one. Anything else is refused by name."""
    def is_int(value: Any) -> bool:
        return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))

    if axes is None:
        return (1, 2) if rank == 3 else tuple(range(rank))
    rule = f"must be one or two distinct spatial axes of the {rank}-D layer, each in [{-rank}, {rank})"
    given = axes.item() if isinstance(axes, np.ndarray) and axes.ndim == 0 else axes
    given = (given,) if is_int(given) else given
    if isinstance(given, (str, bytes)) or not isinstance(given, (Sequence, np.ndarray)) or not 1 <= len(given) <= 2:
        raise TconvError("axes", axes, rule)
    if not all(is_int(a) and -rank <= a < rank for a in given):
        raise TconvError("axes", axes, rule)
    picked = tuple(int(a) % rank for a in given)
    if len(set(picked)) != len(picked):
        raise TconvError("axes", axes, rule)
    return picked


def draw(spec_or_text: Any, input_shape: Sequence[int] | None = None, view: str = "scatter",
         format: str = "svg", x: Any = None, kernel: Any = None, *, axes: Sequence[int] | None = None,
         frame: int | str | Sequence[int] | None = None, colour: bool = False, cell: int | None = None):
    """Draw a layer's computation.

    Parameters
    ----------
    spec_or_text : str, LayerSpec or Geometry
        The layer, e.g. ``"keras.Conv2DTranspose(512, 3, strides=2, padding='same')"``.
    input_shape : sequence of int
        In the framework's own data format, batch axis optional (``(8, 8, 1024)``).
    view : {'scatter', 'zeros', 'overlap', 'matrix', 'conv'}
    format : {'svg', 'png', 'gif', 'apng', 'tty'}
    x, kernel : arrays, optional
        One channel of the drawn input (its spatial shape) and the kernel's spatial
        taps (in the forward convolution's order, tconv's neutral layout); given
        together, cells show numbers computed by the real kernels.
    axes : one or two ints, optional
        The spatial axes drawn (default: all, or the last two of a 3-D layer).
    frame : int, 'all' or ints, optional
        Which frame(s): default the static picture for svg/png/tty, every frame for
        gif/apng; ``'all'`` on svg stacks every frame into one strip.
    colour : bool
        ANSI colour in the ``'tty'`` format.
    cell : int, optional
        Pixels per cell (default 24).

    Returns
    -------
    Svg (str), Png or Animation (bytes), or str for ``'tty'``.
    """
    if format not in FORMATS:
        raise TconvError("format", format, f"must be one of {', '.join(FORMATS)}")
    s = scene(spec_or_text, input_shape, view, x=x, kernel=kernel, axes=axes)
    indices = _frames(s, frame, format)
    size = {} if cell is None else {"cell": int(cell)}
    if format == "svg":
        from tconv.draw import svg

        return Svg(svg.render(s, indices, **size))
    if format == "tty":
        from tconv.draw import tty

        if indices is not None and len(indices) != 1:
            raise TconvError("frame", frame, "must be one frame for the 'tty' format")
        return tty.render(s, None if indices is None else indices[0], colour=colour)
    from tconv.draw import raster

    if format == "png":
        if indices is not None and len(indices) != 1:
            raise TconvError("frame", frame, "must be one frame for the 'png' format (use gif or apng)")
        return Png(raster.png(s, None if indices is None else indices[0], **size))
    if format == "gif":
        return Animation(raster.gif(s, indices, **size))
    return _Apng(raster.apng(s, indices, **size))


def _frames(s: Scene, frame, format: str) -> list[int] | None:
    n = len(s.frames)
    if frame is None:
        return None
    if frame == "all":
        return list(range(n))
    items = [frame] if isinstance(frame, int) and not isinstance(frame, bool) else frame
    try:
        items = list(items)
    except TypeError:
        raise TconvError("frame", frame, "must be an int, 'all' or a list of ints") from None
    for i in items:
        if isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n:
            raise TconvError("frame", frame, f"must index the {n} frames of this view (0..{n - 1})")
    return items


class _CallableModule(types.ModuleType):
    """The package object, callable as :func:`draw` (see the module docstring)."""

    def __call__(self, *args, **kwargs):
        return draw(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
