"""Exact tiled inference of :mod:`tconv.nn` models on dask: the whole-image result, tile by tile.

Sliding-window inference cuts an image into overlapping tiles, runs the network on each
and blends the seams; the result differs from the network run on the whole image,
because near a tile's edge the network pads with zeros where the image has pixels. tconv
knows every layer's :class:`~tconv.geometry.Geometry`, so it tiles *exactly*:

- **Backwards, per tile** (:meth:`_Graph.windows`): the output tile is a box of output
  cells. Each layer maps the box of its output cells that are needed to the box of input
  cells they read: a convolution or pooling window reads ``o*stride + tap*dilation -
  pad_lo`` (:func:`~tconv.geometry.forward_input_window`); a transposed convolution or
  upsampling is read through its full scatter and the whole image's crop
  (:func:`~tconv.geometry.transposed_input_window`). Boxes are clipped to the layer's
  whole-image size and, where a tensor feeds several layers (a U-Net's skips), joined.
- **Forwards, per tile** (:meth:`_Graph.run`): each layer computes exactly its box of the
  whole-image feature map. Its input is the neighbouring data where the window lies
  inside the image, and the network's own padding only where it lies outside (zeros for
  convolutions, ``-inf`` for max pooling, the replicated edge for bilinear upsampling's
  clamp); the layer then runs 'valid' on it. A transposed convolution runs as a full
  scatter of its window, and the cells of the whole image's crop phase are kept
  (:func:`~tconv.geometry.transposed_output_offset`).

Every output cell therefore sums the same products as in the whole-image computation;
only the summation blocking of the GEMM kernels differs, so tiled and whole-image outputs
agree to float rounding (in float32, at most ``1.1e-6`` of the output's largest magnitude
over 300 random models of the example below), whatever the tile size. An element-wise tolerance is the
wrong test: cells near zero carry the rounding of the large products summed into them.

Alignment is not needed for exactness, only for uniform tiles: :func:`plan` rounds the
tile to a multiple of the network's total stride (a 4-level U-Net: 16), so every
interior tile meets every layer on the same phase, with the same shapes and the same
halo. :func:`predict` runs the tiles as dask tasks: the threaded scheduler by default,
a ``dask.distributed`` cluster when a Client is active (a :class:`~tconv.nn.Model`
pickles as its config and weights), and any ``scheduler=`` dask accepts.

>>> import numpy as np
>>> from tconv.nn import unet
>>> model = unet(input_size=(64, 64, 3), n_filters=2, n_classes=3, depth=2)
>>> image = np.random.default_rng(0).random((64, 80, 3), dtype=np.float32)
>>> tiled = predict(model, image, tile=16, scheduler="synchronous")
>>> whole = model(image[None])[0]
>>> bool(np.abs(tiled - whole).max() <= 1e-5 * np.abs(whole).max())   # float rounding only
True
>>> plan(model, 16).halo
((26, 22), (26, 22))

Requires the ``tiling`` extra (``pip install 'tconv[tiling]'``: dask, distributed, zarr).
"""

from __future__ import annotations

import copy
import math
import threading
import uuid
from dataclasses import dataclass
from fractions import Fraction
import numpy as np

from tconv.errors import TconvError
from tconv.geometry import (forward_input_window, stride_scale, transposed_input_window,
                            transposed_output_offset)
from tconv.nn import layers as L
from tconv.nn.model import Model

__all__ = ["plan", "predict", "lazy", "TilingPlan"]

Box = tuple  # ((lo, hi), (lo, hi)): cells of the two spatial axes

_POINTWISE = (L.Dropout, L.BatchNormalization, L.Activation, L.ReLU, L.Softmax)


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError:  # pragma: no cover - depends on the environment
        raise TconvError("dask", None, "is needed for tiled inference: "
                         "pip install 'tconv[tiling]'") from None
    return dask, da


# ----------------------------------------------------------------- boxes


def _clip(box: Box, size: tuple) -> Box:
    return tuple((max(lo, 0), min(hi, n)) for (lo, hi), n in zip(box, size))


def _empty(box: Box) -> bool:
    return any(hi <= lo for lo, hi in box)


def _join(a: Box | None, b: Box) -> Box:
    if a is None:
        return b
    return tuple((min(x[0], y[0]), max(x[1], y[1])) for x, y in zip(a, b))


def _area(box: Box) -> int:
    return math.prod(hi - lo for lo, hi in box)


def _pair(value, name: str) -> tuple[int, int]:
    items = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(int(v) for v in items)
        ok = len(items) == 2 and min(items) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise TconvError(name, value, "must be a positive integer or a pair (height, width)")
    return items


# ----------------------------------------------------------------- the graph


def _kind(layer: L.Layer) -> str:
    """How tiling reads a layer: 'input', 'forward', 'transposed', 'crop', 'pad', 'concat'
    or 'pointwise'; anything else is refused by name."""
    if isinstance(layer, L.InputLayer):
        return "input"
    context = f"tconv.tiling: layer {layer.name!r} ({layer.keras_class})"
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise TconvError("data_format", layer.data_format, "must be 'channels_last' to tile",
                         context=context)
    if isinstance(layer, (L.Conv2D, L.MaxPooling2D)):
        return "forward"
    if isinstance(layer, (L.Conv2DTranspose, L.UpSampling2D)):
        return "transposed"
    if isinstance(layer, L.Cropping2D):
        return "crop"
    if isinstance(layer, L.ZeroPadding2D):
        return "pad"
    if isinstance(layer, L.Concatenate):
        if layer.axis not in (-1, 3):
            raise TconvError("axis", layer.axis, "must be the channel axis (-1) to tile",
                             context=context)
        return "concat"
    if isinstance(layer, (L.Softmax, L.BatchNormalization)) and layer.axis not in (-1, 3):
        raise TconvError("axis", layer.axis, "must be the channel axis (-1) to tile",
                         context=context)
    if isinstance(layer, _POINTWISE):
        return "pointwise"
    raise TconvError("layer", f"{layer.name} ({layer.keras_class})",
                     "cannot be tiled: tconv.tiling reads 2-D convolutions, transposed "
                     "convolutions, pooling, upsampling, cropping, padding, concatenation and "
                     "pointwise layers", context="tconv.tiling")


def _valid_clone(layer: L.Layer, kind: str) -> L.Layer:
    """The layer's computation with no padding of its own (tiling supplies the true
    neighbours and the true padding): a shallow copy sharing the weights."""
    if isinstance(layer, L.MaxPooling2D):
        clone = copy.copy(layer)
        clone.padding = "valid"
        return clone
    if isinstance(layer, (L.Conv2D, L.Conv2DTranspose)):
        clone = copy.copy(layer)
        clone.op = copy.copy(layer.op)
        clone.op.padding = "valid"
        if kind == "transposed":
            clone.op.output_padding = None  # Keras 'valid' keeps the whole full scatter
        return clone
    return layer


class _Graph:
    """A model traced on one whole-image input shape ``(1, H, W, C)``: every layer's kind,
    whole-image Geometry, output size and parents; computes any box of the output."""

    def __init__(self, model: Model, input_shape: tuple) -> None:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise TconvError("model", model.name, "must have one input and one output to tile",
                             context="tconv.tiling")
        if len(model.inputs[0].shape) != 4:
            raise TconvError("model", model.name, "must take images (batch, height, width, "
                             "channels) to tile", context="tconv.tiling")
        self.model = model
        self.input_shape = tuple(input_shape)
        self.steps = model.trace(self.input_shape)
        self.kinds = [_kind(s.layer) for s in self.steps]
        self.sizes = [tuple(s.output_shape[1:3]) for s in self.steps]
        self.channels = [s.output_shape[-1] for s in self.steps]
        self.parents = [s.inputs for s in self.steps]
        self.clones = [_valid_clone(s.layer, k) for s, k in zip(self.steps, self.kinds)]
        out_layer = model.outputs[0].node.layer
        self.output = next(i for i, s in enumerate(self.steps) if s.layer is out_layer)
        self.output_dtype = self.steps[self.output].layer.dtype
        self.consumers = [0] * len(self.steps)
        for parents in self.parents:
            for p in parents:
                self.consumers[p] += 1

    # -- arithmetic

    def read_window(self, i: int, box: Box) -> Box:
        """Cells of step ``i``'s input(s) that its output cells ``box`` read (unclipped)."""
        kind, step = self.kinds[i], self.steps[i]
        if kind == "forward":
            return tuple(forward_input_window(ax, lo, hi)
                         for ax, (lo, hi) in zip(step.geometry.axes, box))
        if kind == "transposed":
            return tuple(transposed_input_window(ax, lo, hi)
                         for ax, (lo, hi) in zip(step.geometry.axes, box))
        if kind == "crop":
            return tuple((lo + c, hi + c) for (lo, hi), (c, _) in zip(box, step.layer.cropping))
        if kind == "pad":
            return tuple((lo - p, hi - p) for (lo, hi), (p, _) in zip(box, step.layer.padding))
        return box

    def windows(self, out_box: Box) -> tuple[list, list]:
        """``need[i]``: the box of step ``i``'s output a tile computes (None: not at all);
        ``reads[i]``: the box of its input(s) it reads, padding included."""
        n = len(self.steps)
        need: list = [None] * n
        reads: list = [None] * n
        need[self.output] = _clip(out_box, self.sizes[self.output])
        for i in reversed(range(n)):
            if need[i] is None or self.kinds[i] == "input":
                continue
            reads[i] = self.read_window(i, need[i])
            for p in self.parents[i]:
                inside = _clip(reads[i], self.sizes[p])
                if not _empty(inside):
                    need[p] = _join(need[p], inside)
        return need, reads

    def scales(self) -> list[tuple[Fraction, Fraction]]:
        """Input pixels per cell of every step, per axis."""
        scales: list = []
        for i, step in enumerate(self.steps):
            if self.kinds[i] == "input":
                scales.append((Fraction(1), Fraction(1)))
                continue
            base = scales[self.parents[i][0]]
            if self.kinds[i] in ("forward", "transposed"):
                transposed = self.kinds[i] == "transposed"
                base = tuple(b * stride_scale(ax, transposed)
                             for b, ax in zip(base, step.geometry.axes))
            scales.append(base)
        return scales

    # -- compute

    def _prepare(self, value, have: Box | None, want: Box, parent: int, fill, dtype) -> np.ndarray:
        """Cells ``want`` of step ``parent``'s output: the computed ones where inside the
        image, the layer's padding ``fill`` outside it ('edge': the clamped edge)."""
        inside = _clip(want, self.sizes[parent])
        if _empty(inside):
            shape = (value.shape[0] if value is not None else 1,
                     *(hi - lo for lo, hi in want), self.channels[parent])
            return np.full(shape, 0 if fill == "edge" else fill, dtype)
        part = value[:, inside[0][0] - have[0][0]: inside[0][1] - have[0][0],
                     inside[1][0] - have[1][0]: inside[1][1] - have[1][0]]
        pads = [(a - lo, hi - b) for (lo, hi), (a, b) in zip(want, inside)]
        if not any(p for pair in pads for p in pair):
            return part
        widths = ((0, 0), *pads, (0, 0))
        if fill == "edge":
            return np.pad(part, widths, mode="edge")
        return np.pad(part, widths, constant_values=fill)

    def _fill(self, i: int):
        layer = self.steps[i].layer
        if isinstance(layer, L.MaxPooling2D):
            return -np.inf
        if isinstance(layer, L.UpSampling2D) and layer.interpolation == "bilinear":
            return "edge"
        return 0

    def run(self, region: np.ndarray, out_box: Box, windows=None) -> np.ndarray:
        """The model's output cells ``out_box`` from ``region``, the input cells
        ``windows[0][input]`` (a ``(batch, h, w, C)`` array)."""
        need, reads = windows or self.windows(out_box)
        values: dict[int, np.ndarray] = {}
        left = list(self.consumers)
        for i, step in enumerate(self.steps):
            if need[i] is None:
                continue
            kind = self.kinds[i]
            if kind == "input":
                values[i] = np.asarray(region, dtype=step.layer.dtype)
                continue
            dtype = step.layer.dtype
            fill = self._fill(i)
            xs = [self._prepare(values.get(p), need[p], reads[i], p, fill, dtype)
                  for p in self.parents[i]]
            for p in self.parents[i]:
                left[p] -= 1
                if left[p] == 0 and p != self.output:
                    values.pop(p, None)
            if kind == "forward":
                y = self.clones[i].call(xs[0])
            elif kind == "transposed":
                full = self.clones[i].call(xs[0])
                local = self.clones[i].geometry(xs[0].shape).axes
                offsets = [transposed_output_offset(ax, start, loc.crop_lo)
                           for ax, loc, (start, _) in zip(step.geometry.axes, local, reads[i])]
                (r0, r1), (c0, c1) = need[i]
                y = full[:, r0 - offsets[0]: r1 - offsets[0], c0 - offsets[1]: c1 - offsets[1]]
            elif kind in ("crop", "pad"):
                y = xs[0]
            elif kind == "concat":
                y = step.layer.call(xs)
            else:
                y = step.layer.call(xs[0])
            if tuple(y.shape[1:3]) != tuple(hi - lo for lo, hi in need[i]):  # pragma: no cover
                raise TconvError("tile", need[i], f"layer {step.layer.name!r} computed "
                                 f"{tuple(y.shape[1:3])} cells: a tconv.tiling bug")
            values[i] = y
        return np.ascontiguousarray(values[self.output])


# ----------------------------------------------------------------- the plan


@dataclass(frozen=True)
class TilingPlan:
    """How a model is tiled: alignment, receptive field, halo, and (given an image) the grid.

    Sizes are ``(height, width)``; the tile is in output cells, the halo and receptive
    field in input pixels. ``halo = ((above, below), (left, right))`` is what an
    interior, aligned tile reads beyond its own output box mapped to input pixels (output
    cell ``o`` at input pixel ``o * output_scale``). A 'valid' network, whose output cell
    ``o`` sits at input pixel ``o + shrink/2``, shows that shift as an uneven halo.
    ``interior_overhead``: input pixels an interior tile reads per input pixel of its box;
    ``read_overhead``: input pixels read over the whole grid per image pixel;
    ``work_overhead``: multiply-adds of all tiles per multiply-add of the whole image.
    """

    model: str
    tile: tuple[int, int]
    requested_tile: tuple[int, int]
    alignment: tuple[int, int]
    total_stride: tuple[int, int]
    output_scale: tuple[str, str]
    coarsest_layer: str
    receptive_field: tuple[int, int]
    halo: tuple[tuple[int, int], tuple[int, int]]
    input_tile: tuple[int, int]
    interior_overhead: float
    layers: tuple[dict, ...]
    image: tuple[int, int] | None = None
    output: tuple[int, int] | None = None
    grid: tuple[int, int] | None = None
    read_overhead: float | None = None
    work_overhead: float | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        out = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            out[key] = [dict(v) for v in value] if key == "layers" else \
                (list(map(list, value)) if key == "halo" else
                 (list(value) if isinstance(value, tuple) else value))
        return out

    def __str__(self) -> str:
        th, tw = self.tile
        (above, below), (left, right) = self.halo
        lines = [
            f"Tiled inference of {self.model!r} with {th}x{tw} output tiles"
            + (f" (asked {self.requested_tile[0]}x{self.requested_tile[1]})"
               if self.requested_tile != self.tile else "") + ".",
            f"Alignment: the coarsest layer, {self.coarsest_layer!r}, has cells of "
            f"{self.total_stride[0]}x{self.total_stride[1]} input pixels, so tile origins and "
            f"sizes are multiples of {self.alignment[0]}x{self.alignment[1]} output cells: every "
            "interior tile meets every layer on the same phase, with the same shapes.",
            f"Receptive field: {self.receptive_field[0]}x{self.receptive_field[1]} input pixels "
            "per output cell.",
            f"Halo: an interior tile reads {above} pixels above, {below} below, {left} left and "
            f"{right} right of its {th}x{tw} box, {self.input_tile[0]}x{self.input_tile[1]} "
            f"input pixels in all ({self.interior_overhead:.2f} input pixels per output cell kept).",
            "Exactness: each layer of each tile computes exactly the cells of the whole-image "
            "computation that the tile needs. Inside the image its windows read the "
            "neighbouring tiles' real values; only outside the image does the network's own "
            "padding apply (zeros for convolutions, -inf for max pooling, the clamped edge for "
            "bilinear upsampling). Transposed convolutions and upsampling run as a full scatter "
            "of their window and keep the cells of the whole image's crop phase. Tiled output "
            "equals whole-image output up to float rounding.",
        ]
        if self.image is not None:
            lines.append(
                f"Image {self.image[0]}x{self.image[1]} -> output {self.output[0]}x{self.output[1]}: "
                f"{self.grid[0]}x{self.grid[1]} tiles; input pixels read per image pixel "
                f"{self.read_overhead:.2f}; multiply-adds computed per whole-image multiply-add "
                f"{self.work_overhead:.2f}.")
        return "\n".join(lines)


def _spatial_of(image_shape) -> tuple[int, int] | None:
    if image_shape is None:
        return None
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 4:
        return shape[1:3]
    if len(shape) in (2, 3):
        return shape[:2]
    raise TconvError("image_shape", image_shape, "must be (H, W), (H, W, C) or (N, H, W, C)")


def _channels(model: Model) -> int:
    c = model.inputs[0].shape[-1]
    if c is None:
        raise TconvError("model", model.name, "must fix its input channels to tile")
    return int(c)


def _alignment(graph: _Graph) -> tuple[tuple[int, int], tuple[int, int], tuple[Fraction, Fraction], str]:
    scales = graph.scales()
    out_scale = scales[graph.output]
    strides, units = [], []
    for axis in range(2):
        period = 1
        for s in scales:
            period = math.lcm(period, s[axis].numerator)
        strides.append(period)
        units.append((Fraction(period) / out_scale[axis]).numerator)
    coarsest = max(range(len(scales)), key=lambda i: (scales[i][0] * scales[i][1], -i))
    return tuple(strides), tuple(units), out_scale, graph.steps[coarsest].layer.name


def _grid(output: tuple[int, int], tile: tuple[int, int]) -> list[Box]:
    rows = [(r, min(r + tile[0], output[0])) for r in range(0, output[0], tile[0])]
    cols = [(c, min(c + tile[1], output[1])) for c in range(0, output[1], tile[1])]
    return [(r, c) for r in rows for c in cols]


def _macs_per_cell(graph: _Graph) -> list[float]:
    weights = []
    for step in graph.steps:
        g = step.geometry
        weights.append(g.multiply_adds() / math.prod(g.output_spatial) if g is not None else 0.0)
    return weights


def _virtual_graph(model: Model, tile: tuple[int, int]) -> tuple[_Graph, Box]:
    """A whole image large enough that a middle tile is interior at every layer, of a size
    the model accepts (its own input size plus whole total strides)."""
    channels = _channels(model)
    default = [s if s is not None else 0 for s in model.inputs[0].shape[1:3]]
    try:  # the total stride (strides depend on no size), from the model's own input size
        step = list(_alignment(_Graph(model, (1, *[d or 256 for d in default], channels)))[0])
    except TconvError:
        step = [16, 16]
    last_error = None
    for attempt in range(12):
        sizes = []
        for axis in range(2):
            base = default[axis] or step[axis]
            grow = max(8 * tile[axis], 512) * 2 ** attempt
            sizes.append(base + step[axis] * -(-grow // step[axis]))
        try:
            graph = _Graph(model, (1, *sizes, channels))
        except TconvError as exc:
            last_error = exc
            continue
        strides, units, out_scale, _ = _alignment(graph)
        out = graph.sizes[graph.output]
        box = []
        for axis in range(2):
            t = max(units[axis], tile[axis] // units[axis] * units[axis])
            origin = (out[axis] // 2) // t * t
            box.append((origin, origin + t))
        box = tuple(box)
        need, reads = graph.windows(box)
        clipped = any(reads[i] is not None and any(_clip(reads[i], graph.sizes[p]) != reads[i]
                                                    for p in graph.parents[i])
                      for i in range(len(graph.steps)))
        if not clipped and all(b[1] <= o for b, o in zip(box, out)):
            return graph, box
    raise TconvError("model", model.name, "has no input size tconv could tile around "
                     f"(last refusal: {last_error})", context="tconv.tiling.plan")


def plan(model: Model, tile, image_shape=None) -> TilingPlan:
    """How ``model`` is tiled with ``tile`` (output cells, an int or ``(height, width)``).

    The tile is rounded down to a multiple of the alignment (at least one alignment
    unit). With ``image_shape`` ((H, W), (H, W, C) or (N, H, W, C)) the plan also gives the
    tile grid and the overheads for that image.

    >>> from tconv.nn import unet
    >>> p = plan(unet(n_filters=4, n_classes=2), 500, image_shape=(1024, 1024, 3))
    >>> p.tile, p.alignment, p.halo, p.grid
    ((496, 496), (16, 16), ((110, 94), (110, 94)), (3, 3))
    """
    requested = _pair(tile, "tile")
    graph, box = _virtual_graph(model, requested)
    strides, units, out_scale, coarsest = _alignment(graph)
    tile_hw = tuple(max(u, t // u * u) for t, u in zip(requested, units))
    need, _ = graph.windows(box)
    input_index = graph.kinds.index("input")
    inp = need[input_index]
    halo = tuple((int(lo * sc) - a, b - int(hi * sc))
                 for (lo, hi), (a, b), sc in zip(box, inp, out_scale))
    field = []
    for axis in range(2):
        widest = 0
        for phase in range(units[axis]):
            cell = list(box)
            cell[axis] = (box[axis][0] + phase, box[axis][0] + phase + 1)
            other = 1 - axis
            cell[other] = (box[other][0], box[other][0] + 1)
            n, _ = graph.windows(tuple(cell))
            lo, hi = n[input_index][axis]
            widest = max(widest, hi - lo)
        field.append(widest)
    scales = graph.scales()
    layers = tuple({"name": s.layer.name, "class": s.layer.keras_class, "kind": k,
                    "cell_pixels": [str(sc) for sc in scales[i]],
                    "interior_tile_cells": None if need[i] is None else
                    [hi - lo for lo, hi in need[i]]}
                   for i, (s, k) in enumerate(zip(graph.steps, graph.kinds)))
    fields = dict(
        model=model.name, tile=tile_hw, requested_tile=requested, alignment=units,
        total_stride=strides, output_scale=tuple(str(s) for s in out_scale),
        coarsest_layer=coarsest, receptive_field=tuple(field), halo=halo,
        input_tile=tuple(b - a for a, b in inp),
        interior_overhead=_area(inp) / (_area(box) * float(out_scale[0] * out_scale[1])),
        layers=layers)
    spatial = _spatial_of(image_shape)
    if spatial is not None:
        whole = _Graph(model, (1, *spatial, _channels(model)))
        fields.update(_image_overheads(whole, tile_hw))
    return TilingPlan(**fields)


def _image_overheads(graph: _Graph, tile: tuple[int, int]) -> dict:
    output = graph.sizes[graph.output]
    boxes = _grid(output, tile)
    macs = _macs_per_cell(graph)
    input_index = graph.kinds.index("input")
    whole = sum(m * math.prod(size) for m, size in zip(macs, graph.sizes))
    read = work = 0.0
    for box in boxes:
        need, _ = graph.windows(box)
        read += _area(need[input_index])
        work += sum(m * _area(n) for m, n in zip(macs, need) if n is not None)
    spatial = graph.sizes[input_index]
    return dict(image=tuple(spatial), output=tuple(output),
                grid=(len({b[0] for b in boxes}), len({b[1] for b in boxes})),
                read_overhead=read / math.prod(spatial),
                work_overhead=work / whole if whole else 1.0)


# ----------------------------------------------------------------- sources


class _MemmapReader:
    """A NumPy memory map by file name: pickles as its path, so worker processes map the
    file themselves instead of receiving its contents."""

    def __init__(self, array: np.memmap) -> None:
        if array.filename is None:  # pragma: no cover - anonymous maps have no file
            raise TconvError("image", "memmap", "must be backed by a file")
        self.filename, self.offset = str(array.filename), int(array.offset)
        self.shape, self.dtype = tuple(array.shape), array.dtype
        self.order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
        if not (array.flags.c_contiguous or array.flags.f_contiguous):
            raise TconvError("image", "memmap", "must be a whole, contiguous map (not a view)")
        self.ndim = len(self.shape)
        self._map = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_map"] = None
        return state

    def __getitem__(self, index):
        if self._map is None:
            self._map = np.memmap(self.filename, self.dtype, "r", self.offset, self.shape, self.order)
        return np.asarray(self._map[index])


class _Batched:
    """A (H, W, C) source read as (1, H, W, C)."""

    def __init__(self, source) -> None:
        self.source = source
        self.shape = (1, *source.shape)
        self.dtype = source.dtype
        self.ndim = 4

    def __getitem__(self, index):
        n, *rest = index
        return np.asarray(self.source[tuple(rest)])[None]


def _run_tile(graph_holder: "_Executor", source, n: int, out_box: Box, read_box: Box | None):
    """One dask task: read the tile's input window (unless dask already did) and compute."""
    graph = graph_holder.graph
    windows = graph.windows(out_box)
    if read_box is None:  # the source is a reader: slice it here, nothing else is held
        (r0, r1), (c0, c1) = windows[0][graph.kinds.index("input")]
        region = np.asarray(source[n: n + 1, r0:r1, c0:c1, :])
    else:
        region = np.asarray(source)
    if graph_holder.scale is not None:
        dtype = graph.steps[graph.kinds.index("input")].layer.dtype
        region = region.astype(dtype) * dtype.type(graph_holder.scale)
    return graph.run(region, out_box, windows)


class _Executor:
    """What every task receives: the model (pickled as config + weights) and the whole
    image's shape; the traced graph is rebuilt once per process."""

    def __init__(self, model: Model, input_shape: tuple, graph: _Graph | None = None,
                 scale: float | None = None) -> None:
        self.model = model
        self.input_shape = tuple(input_shape)
        self.scale = scale
        self._token = uuid.uuid4().hex
        self._graph = graph
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"model": self.model, "input_shape": self.input_shape, "scale": self.scale,
                "_token": self._token}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._graph = None
        self._lock = threading.Lock()

    def __dask_tokenize__(self):
        return ("tconv.tiling._Executor", self._token)

    @property
    def graph(self) -> _Graph:
        with self._lock:
            if self._graph is None:
                self._graph = _Graph(self.model, self.input_shape)
            return self._graph


def _is_dask(image) -> bool:
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover
        return False
    return isinstance(image, da.Array)


def _as_reader(image):
    """A picklable, sliceable ``(N, H, W, C)`` view of a NumPy array, memory map or zarr
    (or any array-like with shape, dtype and slicing)."""
    if isinstance(image, np.memmap):
        source = _MemmapReader(image)
    elif isinstance(image, np.ndarray) or all(hasattr(image, a) for a in ("shape", "dtype", "__getitem__")):
        source = image
    else:
        source = np.asarray(image)
    if len(source.shape) == 3:
        return _Batched(source), True
    if len(source.shape) == 4:
        return source, False
    raise TconvError("image", tuple(source.shape), "must be (H, W, C) or (N, H, W, C)",
                     context="tconv.tiling.predict")


def lazy(model: Model, image, tile=512, *, scale: float | None = None):
    """``model(image)`` as a lazy dask array, one chunk per output tile (nothing computed).

    ``image`` as for :func:`predict`. The chunks are the output tiles of :func:`plan`;
    reduce them lazily (``.argmax(-1)``) or store them (``dask.array.store``) to keep
    memory bounded by the tile. ``scale`` multiplies each input window after the cast to
    the model's dtype (``1/255`` for ``uint8`` pictures), inside the tile's task.
    """
    dask, da = _import_dask()
    squeeze = False
    if _is_dask(image):
        if image.ndim == 3:
            image, squeeze = image[None], True
        if image.ndim != 4:
            raise TconvError("image", image.shape, "must be (H, W, C) or (N, H, W, C)",
                             context="tconv.tiling.predict")
        source, shape = image, tuple(image.shape)
    else:
        source, squeeze = _as_reader(image)
        shape = tuple(source.shape)
    if any(isinstance(s, float) and math.isnan(s) for s in shape):
        raise TconvError("image", shape, "must have known dimensions (compute_chunk_sizes())",
                         context="tconv.tiling.predict")
    channels = _channels(model)
    if shape[-1] != channels:
        raise TconvError("image", shape, f"must have {channels} channels on the last axis",
                         context="tconv.tiling.predict")
    graph = _Graph(model, (1, *shape[1:3], channels))
    units = _alignment(graph)[1]
    tile_hw = tuple(max(u, t // u * u) for t, u in zip(_pair(tile, "tile"), units))
    executor = _Executor(model, graph.input_shape, graph, scale)
    token = executor._token
    ex = dask.delayed(executor, name=f"tconv-model-{token}", traverse=False)
    reader = None if _is_dask(source) else dask.delayed(source, name=f"tconv-image-{token}",
                                                       traverse=False)
    output = graph.sizes[graph.output]
    k = graph.channels[graph.output]
    dtype = graph.output_dtype
    input_index = graph.kinds.index("input")
    rows = [(r, min(r + tile_hw[0], output[0])) for r in range(0, output[0], tile_hw[0])]
    cols = [(c, min(c + tile_hw[1], output[1])) for c in range(0, output[1], tile_hw[1])]
    run = dask.delayed(_run_tile, pure=True)
    batch = []
    for n in range(shape[0]):
        grid = []
        for i, rb in enumerate(rows):
            line = []
            for j, cb in enumerate(cols):
                box = (rb, cb)
                key = f"tconv-tile-{token}-{n}-{i}-{j}"
                if reader is None:
                    (r0, r1), (c0, c1) = graph.windows(box)[0][input_index]
                    task = run(ex, source[n: n + 1, r0:r1, c0:c1, :], n, box, ((r0, r1), (c0, c1)),
                               dask_key_name=key)
                else:
                    task = run(ex, reader, n, box, None, dask_key_name=key)
                line.append([da.from_delayed(task, (1, rb[1] - rb[0], cb[1] - cb[0], k), dtype)])
            grid.append(line)
        batch.append(grid)
    result = da.block(batch)
    return result[0] if squeeze else result


def _aligned(blocks, chunks) -> bool:
    """Whether every block boundary of a dask array falls on a chunk boundary."""
    for sizes, chunk in zip(blocks, chunks):
        edge = 0
        for size in sizes[:-1]:
            edge += size
            if edge % int(chunk):
                return False
    return True


def predict(model: Model, image, tile=(512, 512), out=None, scheduler=None):
    """``model(image)``, computed tile by tile on dask: the same array up to float rounding.

    Parameters
    ----------
    model : tconv.nn.Model
        One image input, one output; 2-D layers, channels last.
    image : array (H, W, C) or (N, H, W, C)
        A NumPy array, a memory map, a zarr array (or any sliceable array with shape and
        dtype), or a dask array. For (H, W, C) the result has no batch axis either.
    tile : int or (height, width)
        Output cells per tile, rounded down to the model's alignment (:func:`plan`).
        Memory per task grows with the tile plus its halo, not with the image.
    out : zarr array, optional
        Written in place (rechunked to its chunks when they do not divide the tile), for
        results larger than memory; then ``out`` is returned.
    scheduler : optional
        Any dask ``scheduler=``: 'threads', 'processes', 'synchronous', a
        ``distributed.Client``. None: the active distributed Client if there is one,
        else the threaded scheduler.

    Returns
    -------
    A lazy dask array when ``image`` is one; ``out`` when given; otherwise a NumPy array.
    """
    _, da = _import_dask()
    result = lazy(model, image, tile)
    if _is_dask(image):
        return result
    if out is None:
        return result.compute(scheduler=scheduler)
    if tuple(out.shape) != tuple(result.shape):
        raise TconvError("out", tuple(out.shape), f"must have the output's shape {tuple(result.shape)}",
                         context="tconv.tiling.predict")
    chunks = getattr(out, "chunks", None)
    if chunks is not None and not _aligned(result.chunks, chunks):
        # two tasks must never write into one zarr chunk
        result = result.rechunk(tuple(int(c) for c in chunks))
    da.store(result, out, lock=False, scheduler=scheduler)
    return out

