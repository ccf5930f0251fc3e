"""Vectorised kernels on BLAS: one large matrix product per chunk, no loop over pixels.

Transposed convolution, "GEMM then col2im": multiply every input cell by every kernel
tap at once, ``Z = Y @ W`` with ``Y`` the input as ``(cells, C_in)`` and ``W`` as
``(C_in, taps * C_out)``; then each tap's slice of ``Z`` is added into the strided
block of the output it reaches (:meth:`~tconv.geometry.AxisGeometry.tap_span`). No
zero is ever inserted or multiplied, and cells outside the kept window are never
computed, so a crop costs nothing and a zero extension is simply never written.

Forward convolution, "im2col then GEMM": gather each tap's strided input block into
a ``(cells, taps * C_in)`` matrix (zeros where a window reads padding) and multiply by
the kernel as ``(taps * C_in, C_out)``.

The matrix products run on BLAS's own threads; the gathers and scatters around them
are memory-bound NumPy copies and adds, one core each, so they are spread over a small
thread pool (NumPy releases the GIL inside them). No two threads ever write the same
cell: im2col taps fill disjoint columns, and col2im taps are grouped by the output
lattice (phase) they land on, which differs between groups when the stride exceeds 1.

Both work through the *same* tap spans, so the pair is an exact adjoint. Temporary
memory is bounded: ``Z`` and the im2col matrix are built for a group of taps (and,
only where one tap is too much, a chunk of batch items and rows) at a time, at most
:data:`CHUNK_FRACTION` of the
output's size, taking as many kernel taps at once as fit.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tconv.geometry import Geometry

#: the chunk buffers (the product ``Z``, the im2col matrix, a partial product) hold at
#: most this fraction of the output's element count; at least one row and one tap
CHUNK_FRACTION = 1.0


#: a chunk of rows is worth its own matrix product when it has at least this many cells
MIN_CHUNK_CELLS = 1024

#: threads for the gathers and scatters (0 or 1: none); TCONV_NUM_THREADS overrides
THREADS = int(os.environ.get("TCONV_NUM_THREADS", os.cpu_count() or 1))
#: below this many elements moved, threads cost more than they save
MIN_PARALLEL_ELEMENTS = 1 << 16


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="tconv")


def _run_parts(parts: list[list], work, elements: int) -> None:
    """Call ``work(part)`` for each part, on the pool when it pays; parts never share output cells."""
    parts = [p for p in parts if p]
    if THREADS < 2 or len(parts) < 2 or elements < MIN_PARALLEL_ELEMENTS:
        for part in parts:
            work(part)
        return
    for future in [_pool().submit(work, part) for part in parts]:
        future.result()


def _split(items: list, count: int, weight=lambda item: 1) -> list[list]:
    """``items`` dealt into ``count`` lists of about equal total weight (largest first)."""
    bins: list[list] = [[] for _ in range(max(1, count))]
    loads = [0] * len(bins)
    for item in sorted(items, key=weight, reverse=True):
        i = loads.index(min(loads))
        bins[i].append(item)
        loads[i] += weight(item)
    return bins


def _plan(batch: int, rows: int, row_cells: int, taps: int, per_tap: int, fixed: int, budget: int):
    """Chunks ``(n0, n1, r0, r1)`` of batch items and first-axis rows, and how many taps to
    multiply at once, so that ``cells * (taps_at_once * per_tap + fixed) <= budget``.

    In order of preference: everything at once; all taps over chunks of rows that are
    still large (>= MIN_CHUNK_CELLS cells); groups of taps over everything; one tap over
    chunks of rows (never less than one row)."""
    cells = batch * rows * row_cells
    all_taps = taps * per_tap + fixed
    if cells * all_taps <= budget:
        return [(0, batch, 0, rows)], taps
    if budget // all_taps >= MIN_CHUNK_CELLS:
        return _row_chunks(batch, rows, row_cells * all_taps, budget), taps
    at_once = (budget // max(1, cells) - fixed) // max(1, per_tap)
    if at_once >= 1:
        return [(0, batch, 0, rows)], at_once
    return _row_chunks(batch, rows, row_cells * (per_tap + fixed), budget), 1


def _row_chunks(batch: int, rows: int, row_elements: int, budget: int):
    item = rows * row_elements
    if item <= budget:
        step = max(1, budget // item)
        return [(n0, min(batch, n0 + step), 0, rows) for n0 in range(0, batch, step)]
    step = max(1, budget // row_elements)
    return [(n, n + 1, r0, min(rows, r0 + step)) for n in range(batch) for r0 in range(0, rows, step)]


@functools.lru_cache(maxsize=256)
def _tap_blocks(geometry: Geometry, r0: int, r1: int, t0: int, t1: int) -> tuple:
    """For each tap with flat index in ``[t0, t1)``: its index relative to ``t0``, the block of
    forward-output cells (rows limited to ``[r0, r1)``, relative to ``r0``) and the strided
    block of forward-input cells it reaches. Cached: a layer runs the same plan again and again."""
    return tuple(_tap_blocks_uncached(geometry, r0, r1, t0, t1))


def _tap_blocks_uncached(geometry: Geometry, r0: int, r1: int, t0: int, t1: int):
    shape = geometry.kernel_shape
    for tap, spans in geometry.taps():
        flat = 0
        for t, k in zip(tap, shape):  # row-major flat index of the tap
            flat = flat * k + t
        if not t0 <= flat < t1:
            continue
        (start, stop, first), rest = spans[0], spans[1:]
        lo, hi = max(start, r0), min(stop, r1)
        if hi <= lo:
            continue
        first += (lo - start) * geometry.axes[0].stride
        spans = ((lo - r0, hi - r0, first),) + tuple(rest)
        out_block = tuple(slice(s, e) for s, e, _ in spans)
        in_block = tuple(slice(f, f + (e - s - 1) * a.stride + 1, a.stride)
                         for (s, e, f), a in zip(spans, geometry.axes))
        yield flat - t0, out_block, in_block


@functools.lru_cache(maxsize=256)
def _phases(geometry: Geometry, r0: int, r1: int, t0: int, t1: int) -> tuple:
    """The tap blocks of :func:`_tap_blocks`, grouped by the lattice of input cells they
    write (``start mod stride`` per axis): blocks of different groups never share a cell."""
    groups: dict[tuple, list] = {}
    for block in _tap_blocks(geometry, r0, r1, t0, t1):
        key = tuple(sl.start % a.stride for sl, a in zip(block[2], geometry.axes))
        groups.setdefault(key, []).append(block)
    return tuple(groups.items())


def conv(x: np.ndarray, kernel: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Forward convolution. ``x``: ``(N, *size, C_in)``; returns ``(N, *out, C_out)``."""
    g = geometry
    dtype = np.result_type(x, kernel)
    batch, groups = x.shape[0], g.groups
    taps = math.prod(g.kernel_shape)
    cin, cout = g.in_channels // groups, g.out_channels // groups
    out_spatial = tuple(a.out for a in g.axes)
    y = np.zeros((batch,) + out_spatial + (g.out_channels,), dtype)
    # (taps, cin, G, cout) -> per group (taps*cin, cout)
    w = kernel.reshape(taps, cin, groups, cout).transpose(2, 0, 1, 3).reshape(groups, taps * cin, cout)
    row_cells = math.prod(out_spatial[1:])
    chunks, at_once = _plan(batch, out_spatial[0], row_cells, taps, g.in_channels, g.out_channels,
                            int(y.size * CHUNK_FRACTION))
    for n0, n1, r0, r1 in chunks:
        lead = (n1 - n0, r1 - r0) + out_spatial[1:]
        cells = math.prod(lead)
        for t0 in range(0, taps, at_once):
            t1 = min(taps, t0 + at_once)
            cols = np.zeros(lead + (t1 - t0, g.in_channels), dtype)

            def gather(blocks, cols=cols, n0=n0, n1=n1):
                for t, out_block, in_block in blocks:
                    cols[(slice(None),) + out_block + (t,)] = x[(slice(n0, n1),) + in_block]
            blocks = list(_tap_blocks(g, r0, r1, t0, t1))
            _run_parts(_split(blocks, THREADS), gather, cols.size)
            if groups == 1:
                prod = cols.reshape(cells, (t1 - t0) * cin) @ w[0, t0 * cin:t1 * cin]
            else:
                grouped = cols.reshape(cells, t1 - t0, groups, cin).transpose(2, 0, 1, 3)
                prod = np.matmul(grouped.reshape(groups, cells, (t1 - t0) * cin),
                                 w[:, t0 * cin:t1 * cin]).transpose(1, 0, 2)
            y[n0:n1, r0:r1] += prod.reshape(lead + (g.out_channels,))
            del cols, prod, gather  # free before the next chunk allocates its own (gather holds cols)
    return y


def conv_transpose(y: np.ndarray, kernel: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Transposed convolution. ``y``: ``(N, *out, C_out)``; returns ``(N, *size, C_in)``."""
    g = geometry
    dtype = np.result_type(y, kernel)
    batch, groups = y.shape[0], g.groups
    taps = math.prod(g.kernel_shape)
    cin, cout = g.in_channels // groups, g.out_channels // groups
    in_spatial = tuple(a.out for a in g.axes)
    x = np.zeros((batch,) + tuple(a.size for a in g.axes) + (g.in_channels,), dtype)
    x_grouped = x.reshape(x.shape[:-1] + (groups, cin))
    # (taps, cin, G, cout) -> per group (cout, taps*cin): a view, BLAS takes it transposed
    w = kernel.reshape(taps, cin, groups, cout).transpose(2, 3, 0, 1).reshape(groups, cout, taps * cin)
    row_cells = math.prod(in_spatial[1:])
    chunks, at_once = _plan(batch, in_spatial[0], row_cells, taps, g.in_channels, 0,
                            int(x.size * CHUNK_FRACTION))
    for n0, n1, r0, r1 in chunks:
        block = y[n0:n1, r0:r1]
        lead = (n1 - n0, r1 - r0) + in_spatial[1:]
        cells = math.prod(lead)
        for t0 in range(0, taps, at_once):
            t1 = min(taps, t0 + at_once)
            if groups == 1:
                z = (block.reshape(cells, cout) @ w[0, :, t0 * cin:t1 * cin]).reshape(lead + (t1 - t0, 1, cin))
            else:
                grouped = block.reshape(cells, groups, cout).transpose(1, 0, 2)
                z = np.matmul(grouped, w[:, :, t0 * cin:t1 * cin]).reshape((groups,) + lead + (t1 - t0, cin))
                z = np.moveaxis(z, 0, -2)
            def scatter(phases, z=z, n0=n0, n1=n1):
                for _, blocks in phases:
                    for t, out_block, in_block in blocks:
                        x_grouped[(slice(n0, n1),) + in_block] += z[(slice(None),) + out_block + (t,)]
            phases = _phases(g, r0, r1, t0, t1)
            _run_parts(_split(phases, THREADS, weight=lambda p: len(p[1])), scatter, z.size)
            del z, scatter  # free before the next chunk allocates its own (scatter holds z)
    return x
