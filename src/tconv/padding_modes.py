"""Padding modes beyond zeros: 'reflect', 'replicate', 'circular' (tconv's own, for both directions).

A forward convolution with a padding mode is PyTorch's ``Conv*d(padding_mode=...)``:
pad the input with that mode, then run a convolution without padding. Written as a
matrix, ``conv_mode(x) = conv_valid(P x)``, where ``P`` is a gather: padded cell ``j``
of an axis holds input cell ``source[j]`` (:func:`source_index`).

The transposed convolution with a padding mode is *defined* here as the exact adjoint
of that forward convolution, ``T_mode(y) = P^T T_valid(y)``: the full transposed
convolution over the padded length, then every padded cell's value is added back onto
the input cell the padding read ("folded", :func:`fold`). With 'zeros' the fold is the
ordinary crop, so this is the one definition for every mode. PyTorch refuses it ("Only
"zeros" padding mode is supported for ConvTranspose2d"; pytorch/pytorch#46027); its
torch dialect keeps that refusal, and the neutral core offers it.

Per axis, padded cell ``j`` (``0 <= j < pad_lo + size + pad_hi``) stands at input
position ``p = j - pad_lo``; a negative pad crops the input there. The modes, as
``numpy.pad`` names them, extend the input to any length (PyTorch refuses
``reflect`` with a pad >= the size and ``circular`` with a pad > the size; tconv
continues the reflection or the period):

========== ===================== ================
mode       source of position p  ``numpy.pad``
========== ===================== ================
zeros      p if inside, else 0   'constant'
replicate  nearest edge cell      'edge'
reflect    mirror about the edge  'reflect'
           cell (edge once)
circular   p modulo size          'wrap'
========== ===================== ================

>>> source_index(4, 2, 3, "reflect").tolist()
[2, 1, 0, 1, 2, 3, 2, 1, 0]
>>> source_index(4, 2, 3, "circular").tolist()
[2, 3, 0, 1, 2, 3, 0, 1, 2]
>>> source_index(4, -1, 1, "replicate").tolist()     # crop one cell first, pad one last
[1, 2, 3, 3]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tconv import _args, ops
from tconv.geometry import AxisGeometry, Geometry

__all__ = ["MODES", "source_index", "pad", "fold", "valid_geometry", "run"]

#: every padding mode tconv knows; 'zeros' is the plain geometry
MODES = ops.PADDING_MODES

#: elements of border cells :func:`fold` copies at a time (at least one cell)
_FOLD_CHUNK = 1 << 20


def check_mode(padding_mode: Any) -> str:
    return _args.choice(padding_mode, "padding_mode", MODES)


def source_index(size: int, pad_lo: int, pad_hi: int, mode: str) -> np.ndarray:
    """For each padded cell of one axis, the input cell it holds (``-1``: a zero).

    The padded axis runs over positions ``-pad_lo .. size + pad_hi - 1`` of the input.
    """
    check_mode(mode)
    p = np.arange(-pad_lo, size + pad_hi)
    if mode == "zeros":
        return np.where((p >= 0) & (p < size), p, -1)
    if mode == "replicate":
        return np.clip(p, 0, size - 1)
    if mode == "circular":
        return np.mod(p, size)
    if size == 1:  # a one-cell mirror reflects onto itself
        return np.zeros_like(p)
    period = 2 * (size - 1)
    q = np.mod(p, period)
    return np.where(q < size, q, period - q)


def valid_geometry(geometry: Geometry) -> Geometry:
    """The plan over the padded input: same kernel, stride and dilation, no padding.

    Its padded length is the number of padded cells :func:`source_index` lists, and its
    forward output equals ``geometry``'s (the windows are the same).
    """
    # the padded length is plain arithmetic (AxisGeometry keeps it >= 1): never build the
    # index just to count it, a pad of 10^9 would allocate gigabytes first
    axes = tuple(AxisGeometry(a.size + a.pad_lo + a.pad_hi, a.kernel, a.stride, a.dilation, 0, 0)
                 for a in geometry.axes)
    return Geometry(axes, geometry.in_channels, geometry.out_channels, geometry.groups,
                    geometry.transposed)


def pad(x: np.ndarray, geometry: Geometry, mode: str) -> np.ndarray:
    """``P x``: the channels-last forward input ``(N, *size, C)`` padded (or cropped) per axis."""
    for axis, a in enumerate(geometry.axes, start=1):
        index = source_index(a.size, a.pad_lo, a.pad_hi, mode)
        x = np.take(x, np.maximum(index, 0), axis=axis)
        if mode == "zeros" and (index < 0).any():
            shape = [1] * x.ndim
            shape[axis] = len(index)
            x = x * (index >= 0).reshape(shape)
    return x


def fold(z: np.ndarray, geometry: Geometry, mode: str) -> np.ndarray:
    """``P^T z``: a padded channels-last array ``(N, *padded, C)`` folded onto ``(N, *size, C)``.

    Each padded cell is added onto the input cell it was read from; the cells that map
    straight through are one slice per axis, and only the border cells are added one by one.
    """
    for axis, a in enumerate(geometry.axes, start=1):
        index = source_index(a.size, a.pad_lo, a.pad_hi, mode)
        moved = np.moveaxis(z, axis, 0)
        out = np.zeros((a.size,) + moved.shape[1:], moved.dtype)
        straight = np.flatnonzero((index == np.arange(len(index)) - a.pad_lo) & (index >= 0))
        done = np.zeros(len(index), bool)
        if straight.size:  # a contiguous run: the interior
            j0, j1 = straight[0], straight[-1] + 1
            out[index[j0]:index[j1 - 1] + 1] += moved[j0:j1]
            done[j0:j1] = True
        # the border cells: np.add.at adds in the order given, as one += per cell did (the
        # same sums, bit for bit), in C; one Python step per cell took 18 s for a pad of 2^24
        border = np.flatnonzero(~done & (index >= 0))
        step = max(1, _FOLD_CHUNK // max(1, math.prod(moved.shape[1:])))
        for c in range(0, border.size, step):
            j = border[c:c + step]
            np.add.at(out, index[j], moved[j])
        z = np.moveaxis(out, 0, axis)
    return z


def _check_budget(geometry: Geometry, valid: Geometry, x: np.ndarray, kernel: Any, bias: Any,
                  channels_first: bool) -> None:
    """What :func:`pad` or :func:`fold` builds must fit the memory budget before anything is.

    Both go one axis at a time, each step a new array while the previous one is alive:
    forward, from the input to ``P x`` (the padded lengths); transposed, from the full
    scatter over the padded lengths back to the output (which :func:`tconv.ops.run` never
    sees: it only runs the padded plan). Plus the per-axis index vectors and the fold's
    chunk of border cells, and a channels-first copy of the output.
    :func:`tconv.ops.run` then checks its own output and buffers.
    """
    from tconv import budget

    channels = valid.output_channels if valid.transposed else valid.input_channels
    padded = [a.size for a in valid.axes]
    plain = [a.size for a in geometry.axes]  # the forward input: the transposed output
    dims, end = (list(padded), plain) if geometry.transposed else (list(plain), padded)
    cells = [math.prod(dims)]
    for axis, n in enumerate(end):
        dims[axis] = n
        cells.append(math.prod(dims))
    alive = [cells[i] + cells[i + 1] for i in range(len(end))]
    if not geometry.transposed:
        alive[0] = cells[1]  # the input itself exists already
    dtype = _args.result_dtype(x, np.asarray(kernel), None if bias is None else np.asarray(bias))
    nbytes = max(alive) * x.shape[0] * channels * dtype.itemsize
    what = (f"(the full transposed convolution over the padded lengths {tuple(padded)}, folded "
            f"one axis at a time onto the output {tuple(plain)}, as {dtype})" if geometry.transposed else
            f"(the input padded with its padding mode one axis at a time, to {tuple(padded)} cells, "
            f"as {dtype})")
    temporaries = 4 * 8 * sum(padded) + (_FOLD_CHUNK * dtype.itemsize if geometry.transposed else 0)
    if channels_first:
        temporaries += (x.shape[0] * math.prod(geometry.output_spatial) * geometry.output_channels
                        * dtype.itemsize)
    budget.check(nbytes, "padding", (x.shape[0], *(padded if not geometry.transposed else plain), channels),
                 what, temporaries=temporaries)


def run(geometry: Geometry, x: Any, kernel: Any, bias: Any = None, *, padding_mode: str = "zeros",
        data_format: str = "channels_last", impl: str = "gemm") -> np.ndarray:
    """:func:`tconv.ops.run` with a padding mode (forward: pad then convolve; transposed: its adjoint)."""
    check_mode(padding_mode)
    if padding_mode == "zeros" or not isinstance(data_format, str) or data_format not in ops.DATA_FORMATS:
        return ops.run(geometry, x, kernel, bias, data_format=data_format, impl=impl)
    x = np.asarray(x)
    if x.ndim != geometry.rank + 2:  # let run() name the argument and the shape it needs
        return ops.run(geometry, x, kernel, bias, data_format=data_format, impl=impl)
    channels_first = data_format == "channels_first"
    if channels_first:
        x = np.moveaxis(x, 1, -1)
    # validate shapes and dtypes against the plan before moving any data
    with ops.planning():  # (validates like a real call, allocates nothing)
        ops.run(geometry, x, kernel, bias, impl=impl)
    if x.shape[0] == 0:
        # nothing to pad or fold: the empty output has the plan's shape (a mode changes no
        # shape). The per-axis index vectors are not built (with a pad of 2^31 they alone
        # are 16 GiB)
        y = ops.run(geometry, x, kernel, None if geometry.transposed else bias, impl=impl)
        return np.ascontiguousarray(np.moveaxis(y, -1, 1)) if channels_first else y
    valid = valid_geometry(geometry)
    _check_budget(geometry, valid, x, kernel, bias, channels_first)
    if geometry.transposed:
        y = fold(ops.run(valid, x, kernel, impl=impl), geometry, padding_mode)
        if bias is not None:
            y += np.asarray(bias).astype(y.dtype, copy=False)
    else:
        y = ops.run(valid, pad(x, geometry, padding_mode), kernel, bias, impl=impl)
    return np.ascontiguousarray(np.moveaxis(y, -1, 1)) if channels_first else y
