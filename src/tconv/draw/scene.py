"""Geometry -> a neutral scene: frames of panels of cells, for every renderer.

A :class:`Scene` is what the SVG, raster and terminal renderers draw. It holds no
pixels and does no convolution arithmetic of its own: every cell position comes from
:mod:`tconv.geometry` (``scatter_position``, ``window_position``, ``kept_window``,
``tap_pairs``, ``jax_pads_for_crops``...), and every numeric value from the real
kernels through :func:`tconv.ops.run`. The tap counts of the overlap map are tallied
from ``scatter_position``; the tests check them against the kernels' output.

Coordinates. A panel's cells are addressed ``(row, col)``; a 1-D axis is one row.
The ranges of a panel may start below zero: the full scatter of a transposed
convolution is drawn in its own cells ``0 .. full-1``, so a negative crop (zero
extension) reaches past them, and a forward convolution's input is drawn in input
cells, so its padding sits at ``-pad_lo .. -1``. :func:`layout` places panels and
captions in cell units; renderers only scale it.

Roles (what a cell is; renderers choose colours): ``input``, ``done``, ``current``,
``todo`` (input cells before, at and after the current step), ``kernel``, ``heat``
(a tally, see ``count``), ``value``, ``zero`` (an inserted or extended zero),
``pad`` (padding), ``cut`` (a cell the crop removes), ``entry`` / ``blank``
(matrix entries), ``vector``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, Geometry, flipped_tap, jax_pads_for_crops, kept_window,
                            lhs_dilated_length, phase_tap_counts, scatter_position, tap_pairs,
                            window_position)

__all__ = ["Cell", "Box", "Panel", "Frame", "Scene", "Layout", "layout", "build", "VIEWS",
           "MAX_CELLS", "MAX_MATRIX"]

VIEWS = ("scatter", "zeros", "overlap", "matrix", "conv")
#: largest grid drawn along one axis (cells)
MAX_CELLS = 96
#: largest convolution matrix drawn (entries of C)
MAX_MATRIX = 4096

# durations of animation frames, in milliseconds
_FIRST_MS, _STEP_MS, _HOLD_MS = 1500, 300, 3500


@dataclass(frozen=True)
class Cell:
    row: int
    col: int
    text: str = ""
    role: str = "value"
    count: int | None = None   # heat: how many kernel taps reached this cell so far
    cropped: bool = False      # in the border the transposed convolution cuts
    mark: str | None = None    # 'stamp' / 'window': touched by the current step


@dataclass(frozen=True)
class Box:
    """An outline around rows ``[rows[0], rows[1])`` and cols ``[cols[0], cols[1])``."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    role: str                  # 'kept' (the transposed output's window), 'window', 'stamp'


@dataclass(frozen=True)
class Panel:
    name: str                  # stable slot name: input kernel full output padded C CT ...
    title: str
    rows: tuple[int, int]      # row coordinates drawn, [start, stop)
    cols: tuple[int, int]
    cells: tuple[Cell, ...]
    boxes: tuple[Box, ...] = ()

    @property
    def height(self) -> int:
        return self.rows[1] - self.rows[0]

    @property
    def width(self) -> int:
        return self.cols[1] - self.cols[0]

    def cell(self, row: int, col: int) -> Cell | None:
        for c in self.cells:
            if c.row == row and c.col == col:
                return c
        return None


@dataclass(frozen=True)
class Frame:
    panels: tuple[Panel, ...]
    caption: str = ""
    kind: str = "static"       # 'step', 'crop' or 'static'
    duration_ms: int = _STEP_MS

    def panel(self, name: str) -> Panel | None:
        return next((p for p in self.panels if p.name == name), None)


@dataclass(frozen=True)
class Scene:
    title: str
    view: str
    frames: tuple[Frame, ...]
    geometry: Geometry = field(repr=False)
    heat_max: int = 0          # largest tap count anywhere in the scene (for the colour ramp)
    static_frame: int = -1     # the frame a single-picture format shows by default


# ------------------------------------------------------------------------ layout

@dataclass(frozen=True)
class Layout:
    """Where things go, in cell units (renderers multiply by their cell size)."""

    width: float
    height: float
    slots: dict[str, tuple[float, float]]   # panel name -> top-left of its first cell
    title_y: float
    caption_y: float


_MARGIN, _GAP, _TITLE, _PANEL_TITLE, _CAPTION = 0.75, 1.5, 1.6, 1.3, 2.6
_TITLE_CHAR = 0.29   # width of a panel title's character, in cells (titles are half a cell high)
#: caption characters per cell of width
CAPTION_CHARS = 3.3


def layout(scene: Scene) -> Layout:
    """Panels left to right in order of first appearance, each in one slot for every frame
    (so an animation's panels never move); captions below."""
    sizes: dict[str, tuple[float, float]] = {}
    for f in scene.frames:
        for p in f.panels:
            h, w = sizes.get(p.name, (0, 0))
            sizes[p.name] = (max(h, p.height), max(w, p.width, len(p.title) * _TITLE_CHAR))
    slots, x = {}, _MARGIN
    top = _MARGIN + _TITLE + _PANEL_TITLE
    for name, (h, w) in sizes.items():
        slots[name] = (x, top)
        x += w + _GAP
    width = max(x - _GAP + _MARGIN, 24.0)
    tallest = max((h for h, _ in sizes.values()), default=1)
    caption_y = top + tallest + 0.6
    return Layout(width, caption_y + _CAPTION + _MARGIN, slots, _MARGIN, caption_y)


# ------------------------------------------------------------------------ helpers

def _rc(index: Sequence[int]) -> tuple[int, int]:
    """A 1-D or 2-D index -> (row, col); a 1-D axis is row 0."""
    return (0, index[0]) if len(index) == 1 else (index[0], index[1])


def _span(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], tuple[int, int]]:
    return ((0, 1), ranges[0]) if len(ranges) == 1 else (ranges[0], ranges[1])


def _cells_of(ranges: Sequence[tuple[int, int]]):
    return itertools.product(*(range(lo, hi) for lo, hi in ranges))


def _fmt(v: float) -> str:
    if abs(v - round(v)) < 1e-9 and abs(v) < 1e5:
        return str(int(round(v)))
    return f"{v:.3g}"


def _flat(index: Sequence[int], shape: Sequence[int]) -> int:
    flat = 0
    for i, n in zip(index, shape):
        flat = flat * n + i      # row-major numbering of the labels x0, x1, ...
    return flat


def _inside(index: Sequence[int], ranges: Sequence[tuple[int, int]]) -> bool:
    return all(lo <= i < hi for i, (lo, hi) in zip(index, ranges))


class _Values:
    """Actual numbers, from the real kernels (:func:`tconv.ops.run`) on one channel."""

    def __init__(self, x: Any, kernel: Any, in_shape: tuple[int, ...], k_shape: tuple[int, ...]):
        import numpy as np

        self.np = np
        self.x = np.asarray(x, dtype=np.float64)
        self.w = np.asarray(kernel, dtype=np.float64)
        if self.x.shape != in_shape:
            raise TconvError("x", self.x, f"must have the drawn input's shape {in_shape} (one channel)")
        if self.w.shape != k_shape:
            raise TconvError("kernel", self.w, f"must have the kernel's shape {k_shape} (one channel, "
                             "taps in the forward convolution's order)")

    def run(self, g: Geometry, x=None) -> Any:
        from tconv.ops import run

        x = self.x if x is None else x
        return run(g, x[None, ..., None], self.w[..., None, None], impl="reference")[0, ..., 0]


def _one_channel(axes: Sequence[AxisGeometry], transposed: bool) -> Geometry:
    return Geometry(tuple(axes), 1, 1, 1, transposed)


def _full_axes(g: Geometry) -> tuple[AxisGeometry, ...]:
    """The same transposed axes with no crop: the full scatter grid."""
    return tuple(AxisGeometry.transposed(a.out, a.kernel, a.stride, a.dilation, 0, 0) for a in g.axes)


def _check_size(ranges, what: str) -> None:
    for lo, hi in ranges:
        if hi - lo > MAX_CELLS:
            raise TconvError("input_shape", what, f"gives a grid of {hi - lo} cells along an axis; "
                             f"drawings stop at {MAX_CELLS} (draw a smaller case)")


def _input_panel(shape, prefix: str, values, current=None, order=None, title=None) -> Panel:
    cells = []
    for idx in _cells_of([(0, n) for n in shape]):
        if current is None:
            role = "input"
        else:
            n = order[idx]
            role = "done" if n < current else "current" if n == current else "todo"
        text = _fmt(values[idx]) if values is not None else f"{prefix}{_flat(idx, shape)}"
        cells.append(Cell(*_rc(idx), text, role))
    rows, cols = _span([(0, n) for n in shape])
    dims = "x".join(map(str, shape))
    return Panel("input", title or f"input {prefix} ({dims})", rows, cols, tuple(cells))


def _kernel_panel(shape, values, flipped: bool = False) -> Panel:
    cells = []
    for idx in _cells_of([(0, k) for k in shape]):
        src = tuple(flipped_tap(t, k) for t, k in zip(idx, shape)) if flipped else idx
        text = _fmt(values[src]) if values is not None else f"w{_flat(src, shape)}"
        cells.append(Cell(*_rc(idx), text, "kernel"))
    rows, cols = _span([(0, k) for k in shape])
    dims = "x".join(map(str, shape))
    return Panel("kernel", f"kernel w, flipped ({dims})" if flipped else f"kernel w ({dims})",
                 rows, cols, tuple(cells))


def _tally(g: Geometry, inputs) -> dict[tuple[int, ...], int]:
    """How many taps of the given input cells land on each full-scatter cell."""
    counts: dict[tuple[int, ...], int] = {}
    for i in inputs:
        for tap in _cells_of([(0, a.kernel) for a in g.axes]):
            pos = tuple(scatter_position(ii, t, a.stride, a.dilation) for ii, t, a in zip(i, tap, g.axes))
            counts[pos] = counts.get(pos, 0) + 1
    return counts


def _crop_words(g: Geometry) -> str:
    if g.rank == 1:
        a = g.axes[0]
        words = f"crop {a.crop_lo} cell(s) at the start, {a.crop_hi} at the end"
    else:
        h, w = g.axes
        words = (f"crop {h.crop_lo} row(s) at the top, {h.crop_hi} at the bottom, "
                 f"{w.crop_lo} column(s) at the left, {w.crop_hi} at the right")
    if any(a.crop_lo < 0 or a.crop_hi < 0 for a in g.axes):
        words += " (negative: extend with zeros)"
    return words


# ------------------------------------------------------------------------ scatter

def _full_panel(g: Geometry, counts, values, stamp=None, step_text=None, title=None) -> Panel:
    """The full scatter grid, with the kept window outlined and the crop marked."""
    kept = [kept_window(a) for a in g.axes]
    grid = [(0, a.full) for a in g.axes]
    ranges = [(min(0, k0), max(a.full, k1)) for a, (k0, k1) in zip(g.axes, kept)]
    cells = []
    for pos in _cells_of(ranges):
        cropped = not _inside(pos, kept)
        if not _inside(pos, grid):
            cells.append(Cell(*_rc(pos), "0", "zero", cropped=cropped))
            continue
        count = counts.get(pos, 0)
        mark = "stamp" if stamp and pos in stamp else None
        if mark and step_text is not None:
            text = step_text[pos]
        elif values is not None:
            text = _fmt(values[pos])
        else:
            text = str(count) if count else ""
        cells.append(Cell(*_rc(pos), text, "heat", count=count, cropped=cropped, mark=mark))
    rows, cols = _span(ranges)
    krows, kcols = _span(kept)
    dims = "x".join(str(a.full) for a in g.axes)
    boxes = [Box(krows, kcols, "kept")]
    if stamp:
        spos = list(stamp)
        per_axis = [(min(p[d] for p in spos), max(p[d] for p in spos) + 1) for d in range(g.rank)]
        boxes.append(Box(*_span(per_axis), "stamp"))
    return Panel("full", title or f"full scatter ({dims}), kept window outlined", rows, cols,
                 tuple(cells), tuple(boxes))


def _output_panel(g: Geometry, counts, values, title=None) -> Panel:
    """The transposed convolution's output: the kept window of the full scatter."""
    kept = [kept_window(a) for a in g.axes]
    cells = []
    for out_idx, pos in zip(_cells_of([(0, a.size) for a in g.axes]), _cells_of(kept)):
        inside = _inside(pos, [(0, a.full) for a in g.axes])
        count = counts.get(pos, 0) if inside else 0
        if values is not None:
            text = _fmt(values[out_idx])
        else:
            text = str(count) if count else ("0" if not inside else "")
        cells.append(Cell(*_rc(out_idx), text, "heat" if inside else "zero", count=count))
    rows, cols = _span([(0, a.size) for a in g.axes])
    dims = "x".join(str(a.size) for a in g.axes)
    return Panel("output", title or f"output ({dims})", rows, cols, tuple(cells))


def _scatter(g: Geometry, vals: _Values | None, heat_only: bool = False) -> Scene:
    in_shape = tuple(a.out for a in g.axes)
    k_shape = g.kernel_shape
    inputs = list(_cells_of([(0, n) for n in in_shape]))
    order = {idx: n for n, idx in enumerate(inputs)}
    full_g = _one_channel(_full_axes(g), True)
    final = _tally(g, inputs)
    heat_max = max(final.values(), default=0)
    xv = vals.x if vals else None
    wv = vals.w if vals else None
    out_values = vals.run(_one_channel(g.axes, True)) if vals else None
    full_values = vals.run(full_g) if vals else None
    kernel = _kernel_panel(k_shape, wv)
    sizes = "x".join(map(str, in_shape)) + " -> " + "x".join(str(a.size) for a in g.axes)
    frames = []
    if not heat_only:
        counts: dict[tuple[int, ...], int] = {}
        for n, i in enumerate(inputs):
            stamp: dict[tuple[int, ...], str] = {}
            for tap in _cells_of([(0, k) for k in k_shape]):
                pos = tuple(scatter_position(ii, t, a.stride, a.dilation) for ii, t, a in zip(i, tap, g.axes))
                counts[pos] = counts.get(pos, 0) + 1
                stamp[pos] = f"w{_flat(tap, k_shape)}" if vals is None else None
            partial = None
            if vals is not None:
                mask = vals.np.zeros_like(xv)
                for done in inputs[:n + 1]:
                    mask[done] = 1.0
                partial = vals.run(full_g, xv * mask)
            start = tuple(min(p[d] for p in stamp) for d in range(g.rank))
            label = _fmt(xv[i]) if vals is not None else f"x{n}"
            caption = (f"step {n + 1}/{len(inputs)}: x{n}{'' if vals is None else ' = ' + label} at {_where(i)} "
                       f"stamps the kernel at {_where(start)}; stride {_strides(g)}, overlaps add")
            frames.append(Frame(
                (_input_panel(in_shape, "x", xv, current=n, order=order), kernel,
                 _full_panel(g, dict(counts), partial, stamp, None if vals else stamp)),
                caption, "step", _FIRST_MS if n == 0 else _STEP_MS))
    crop_caption = f"{_crop_words(g)}: the grey border is cut, the outlined window is the output ({sizes})"
    frames.append(Frame(
        (_input_panel(in_shape, "x", xv), kernel, _full_panel(g, final, full_values),
         _output_panel(g, final, out_values)),
        crop_caption, "crop", _HOLD_MS))
    return Scene("", "scatter", tuple(frames), g, heat_max)


def _where(index: Sequence[int]) -> str:
    return f"cell {index[0]}" if len(index) == 1 else f"({', '.join(map(str, index))})"


def _strides(g: Geometry) -> str:
    return "x".join(str(a.stride) for a in g.axes)


# ------------------------------------------------------------------------ overlap

def _overlap(g: Geometry, vals: _Values | None) -> Scene:
    in_shape = tuple(a.out for a in g.axes)
    final = _tally(g, _cells_of([(0, n) for n in in_shape]))
    phases = "; ".join(
        f"axis {d}: {'/'.join(map(str, phase_tap_counts(a.kernel, a.stride, a.dilation)))}"
        for d, a in enumerate(g.axes))
    uneven = any(len(set(phase_tap_counts(a.kernel, a.stride, a.dilation))) > 1 for a in g.axes)
    caption = (f"taps reaching each cell (per stride phase, {phases})"
               + (": uneven, the checkerboard" if uneven else ": even") + f"; {_crop_words(g)}")
    frame = Frame((_full_panel(g, final, None, title="taps per cell, full scatter"),
                   _output_panel(g, final, None, title="taps per output cell")), caption, "static")
    return Scene("", "overlap", (frame,), g, max(final.values(), default=0))


# ------------------------------------------------------------------------ zeros

def _zeros(g: Geometry, vals: _Values | None) -> Scene:
    """Zero insertion: stride-1 zeros between inputs, pad d*(k-1) minus each crop, slide the flipped kernel."""
    in_shape = tuple(a.out for a in g.axes)
    k_shape = g.kernel_shape
    pads = [jax_pads_for_crops(a.kernel, a.dilation, a.crop_lo, a.crop_hi) for a in g.axes]
    # zero-inserted coordinates: input o sits at scatter_position(o, 0, stride)
    body = [(0, lhs_dilated_length(a.out, a.stride)) for a in g.axes]
    ranges = [(-lo, hi + n) for (lo, hi), (_, n) in zip(pads, body)]
    _check_size(ranges, "zeros")
    where = {tuple(scatter_position(oo, 0, a.stride) for oo, a in zip(o, g.axes)): o
             for o in _cells_of([(0, n) for n in in_shape])}
    xv = vals.x if vals else None
    out_values = vals.run(_one_channel(g.axes, True)) if vals else None
    outputs = list(_cells_of([(0, a.size) for a in g.axes]))
    kernel = _kernel_panel(k_shape, vals.w if vals else None, flipped=True)
    frames = []
    for n, j in enumerate(outputs):
        window = {}
        for tap in _cells_of([(0, k) for k in k_shape]):
            pos = tuple(window_position(jj, t, 1, a.dilation, lo)
                        for jj, t, a, (lo, _) in zip(j, tap, g.axes, pads))
            window[pos] = tuple(flipped_tap(t, a.kernel) for t, a in zip(tap, g.axes))
        cells, terms = [], []
        for pos in _cells_of(ranges):
            mark = "window" if pos in window else None
            if pos in where:
                o = where[pos]
                text = _fmt(xv[o]) if vals else f"x{_flat(o, in_shape)}"
                if mark:
                    w = window[pos]
                    terms.append(f"{text}*{_fmt(vals.w[w]) if vals else 'w' + str(_flat(w, k_shape))}")
                cells.append(Cell(*_rc(pos), text, "input", mark=mark))
            elif _inside(pos, body):
                cells.append(Cell(*_rc(pos), "0", "zero", mark=mark))
            else:
                cells.append(Cell(*_rc(pos), "0", "pad", mark=mark))
        wpos = list(window)
        per_axis = [(min(p[d] for p in wpos), max(p[d] for p in wpos) + 1) for d in range(g.rank)]
        dims = "x".join(str(hi - lo) for lo, hi in ranges)
        padded = Panel("padded", f"zeros inserted, padded ({dims})", *_span(ranges), tuple(cells),
                       (Box(*_span(per_axis), "window"),))
        out_cells = []
        for m, jj in enumerate(outputs):
            role = "done" if m < n else "current" if m == n else "todo"
            text = ("" if m > n else _fmt(out_values[jj]) if vals else f"y{m}")
            out_cells.append(Cell(*_rc(jj), text, role))
        out = Panel("output", "output y (" + "x".join(str(a.size) for a in g.axes) + ")",
                    *_span([(0, a.size) for a in g.axes]), tuple(out_cells))
        label = _fmt(out_values[j]) if vals else f"y{n}"
        caption = (f"{'y' + str(n) if vals else label} = " + (" + ".join(terms) if terms else "0")
                   + (f" = {label}" if vals else "")
                   + f"   (pads {', '.join(f'{lo}/{hi}' for lo, hi in pads)} = d*(k-1) minus each crop)")
        frames.append(Frame((padded, kernel, out), caption, "step", _FIRST_MS if n == 0 else _STEP_MS))
    return Scene("", "zeros", tuple(frames), g, 0, static_frame=0)


# ------------------------------------------------------------------------ conv

def _conv(g: Geometry, vals: _Values | None) -> Scene:
    """The forward convolution: the kernel slides over the padded input at stride steps."""
    in_shape = tuple(a.size for a in g.axes)
    k_shape = g.kernel_shape
    ranges = [(min(0, -a.pad_lo), max(a.size, a.size + a.pad_hi)) for a in g.axes]
    padded_range = [(-a.pad_lo, a.size + a.pad_hi) for a in g.axes]
    _check_size(ranges, "conv")
    xv = vals.x if vals else None
    out_values = vals.run(_one_channel(g.axes, False)) if vals else None
    outputs = list(_cells_of([(0, a.out) for a in g.axes]))
    kernel = _kernel_panel(k_shape, vals.w if vals else None)
    frames = []
    for n, o in enumerate(outputs):
        window = {}
        for tap in _cells_of([(0, k) for k in k_shape]):
            window[tuple(window_position(oo, t, a.stride, a.dilation, a.pad_lo)
                         for oo, t, a in zip(o, tap, g.axes))] = tap
        cells, terms = [], []
        for pos in _cells_of(ranges):
            mark = "window" if pos in window else None
            if not _inside(pos, padded_range):
                cells.append(Cell(*_rc(pos), _fmt(xv[pos]) if vals else f"x{_flat(pos, in_shape)}", "cut"))
            elif _inside(pos, [(0, n_) for n_ in in_shape]):
                text = _fmt(xv[pos]) if vals else f"x{_flat(pos, in_shape)}"
                if mark:
                    t = window[pos]
                    terms.append(f"{text}*{_fmt(vals.w[t]) if vals else 'w' + str(_flat(t, k_shape))}")
                cells.append(Cell(*_rc(pos), text, "input", mark=mark))
            else:
                cells.append(Cell(*_rc(pos), "0", "pad", mark=mark))
        wpos = list(window)
        per_axis = [(min(p[d] for p in wpos), max(p[d] for p in wpos) + 1) for d in range(g.rank)]
        dims = "x".join(map(str, in_shape))
        pads = ", ".join(f"{a.pad_lo}/{a.pad_hi}" for a in g.axes)
        padded = Panel("padded", f"input x ({dims}), padding {pads}", *_span(ranges), tuple(cells),
                       (Box(*_span(per_axis), "window"),))
        out_cells = []
        for m, oo in enumerate(outputs):
            role = "done" if m < n else "current" if m == n else "todo"
            text = "" if m > n else _fmt(out_values[oo]) if vals else f"y{m}"
            out_cells.append(Cell(*_rc(oo), text, role))
        out = Panel("output", "output y (" + "x".join(str(a.out) for a in g.axes) + ")",
                    *_span([(0, a.out) for a in g.axes]), tuple(out_cells))
        label = _fmt(out_values[o]) if vals else f"y{n}"
        caption = (f"{'y' + str(n) if vals else label} = " + (" + ".join(terms) if terms else "0")
                   + (f" = {label}" if vals else "") + f"   (window {_where(o)} at stride {_strides(g)})")
        frames.append(Frame((padded, kernel, out), caption, "step", _FIRST_MS if n == 0 else _STEP_MS))
    return Scene("", "conv", tuple(frames), g, 0, static_frame=0)


# ------------------------------------------------------------------------ matrix

def _matrix(g: Geometry, vals: _Values | None) -> Scene:
    """C (forward convolution, out x size) and C^T (the transposed one), from ``tap_pairs``."""
    size_shape = tuple(a.size for a in g.axes)
    out_shape = tuple(a.out for a in g.axes)
    n_size, n_out = _count(size_shape), _count(out_shape)
    if n_size * n_out > MAX_MATRIX:
        raise TconvError("view", "matrix", f"needs a small case: C would be {n_out}x{n_size} entries, "
                         f"more than {MAX_MATRIX}")
    _check_size([(0, n_out), (0, n_size)], "matrix")
    k_shape = g.kernel_shape
    entries: dict[tuple[int, int], tuple[int, ...]] = {}
    for tap in _cells_of([(0, k) for k in k_shape]):
        for pairs in itertools.product(*(tap_pairs(a, t) for a, t in zip(g.axes, tap))):
            o = tuple(p[0] for p in pairs)
            i = tuple(p[1] for p in pairs)
            entries[(_flat(o, out_shape), _flat(i, size_shape))] = tap

    def text(tap):
        return _fmt(vals.w[tap]) if vals else f"w{_flat(tap, k_shape)}"

    c_cells = [Cell(r, c, text(entries[(r, c)]) if (r, c) in entries else "",
                    "entry" if (r, c) in entries else "blank")
               for r in range(n_out) for c in range(n_size)]
    ct_cells = [Cell(c, r, cell.text, cell.role) for cell in c_cells for r, c in [(cell.row, cell.col)]]
    if g.transposed:
        xin, xlen, yout, ylen = "x", n_out, "y", n_size
        x_shape, y_shape = out_shape, size_shape
        op_g = _one_channel(g.axes, True)
    else:
        xin, xlen, yout, ylen = "x", n_size, "y", n_out
        x_shape, y_shape = size_shape, out_shape
        op_g = _one_channel(g.axes, False)
    yv = vals.run(op_g) if vals else None
    x_cells = [Cell(r, 0, _fmt(vals.x[idx]) if vals else f"x{r}", "vector")
               for r, idx in enumerate(_cells_of([(0, n) for n in x_shape]))]
    y_cells = [Cell(r, 0, _fmt(yv[idx]) if vals else f"y{r}", "vector")
               for r, idx in enumerate(_cells_of([(0, n) for n in y_shape]))]
    c_panel = Panel("C", f"C: forward convolution ({n_out}x{n_size})", (0, n_out), (0, n_size), tuple(c_cells))
    ct_panel = Panel("CT", f"C^T: transposed convolution ({n_size}x{n_out})", (0, n_size), (0, n_out),
                     tuple(ct_cells))
    x_panel = Panel("x", xin, (0, xlen), (0, 1), tuple(x_cells))
    y_panel = Panel("y", yout, (0, ylen), (0, 1), tuple(y_cells))
    if g.transposed:
        panels = (c_panel, ct_panel, x_panel, y_panel)
        caption = ("y = C^T x: the transposed convolution is the transpose of C, the forward convolution "
                   "it is the adjoint of (inputs and outputs flattened row-major)")
    else:
        panels = (c_panel, x_panel, y_panel, ct_panel)
        caption = "y = C x; C^T is the transposed convolution with the same arguments (adjoint)"
    return Scene("", "matrix", (Frame(panels, caption, "static"),), g, 0)


def _count(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# ------------------------------------------------------------------------ build

def build(geometry: Geometry, view: str = "scatter", *, x: Any = None, kernel: Any = None,
          title: str = "") -> Scene:
    """The :class:`Scene` of ``view`` for a one- or two-axis ``geometry``.

    Views of the transposed convolution (scatter, zeros, overlap) draw ``geometry`` as a
    transposed convolution, and ``conv`` as the forward one, whichever direction the
    layer runs (they share one Geometry: each is the other's adjoint). ``x`` and
    ``kernel`` (one channel: the drawn input's shape, and the kernel's spatial shape in
    the forward convolution's tap order) switch symbolic labels to numbers.

    >>> from tconv.geometry import AxisGeometry, Geometry
    >>> g = Geometry((AxisGeometry(16, 3, 2, 1, 0, 1),), 1, 1, 1, True)
    >>> s = build(g, "scatter")
    >>> len(s.frames), s.frames[-1].panel("output").width
    (9, 16)
    """
    if view not in VIEWS:
        raise TconvError("view", view, f"must be one of {', '.join(VIEWS)}")
    if geometry.rank not in (1, 2):
        raise TconvError("axes", geometry.rank, "a drawing shows 1 or 2 spatial axes (choose a 2-D slice)")
    g = geometry
    if (x is None) != (kernel is None):
        raise TconvError("x" if x is None else "kernel", None, "must be given together with "
                         + ("kernel" if x is None else "x") + " to draw values")
    if view == "conv" or (view == "matrix" and not g.transposed):
        in_shape = tuple(a.size for a in g.axes)
    else:
        in_shape = tuple(a.out for a in g.axes)
    vals = _Values(x, kernel, in_shape, g.kernel_shape) if x is not None else None
    if view in ("scatter", "overlap"):
        full = [(min(0, k0), max(a.full, k1)) for a, (k0, k1) in zip(g.axes, (kept_window(a) for a in g.axes))]
        _check_size(full, view)
    builders = {"scatter": _scatter, "zeros": _zeros, "overlap": _overlap, "matrix": _matrix, "conv": _conv}
    scene = builders[view](g, vals)
    return Scene(title, scene.view, scene.frames, scene.geometry, scene.heat_max, scene.static_frame)
