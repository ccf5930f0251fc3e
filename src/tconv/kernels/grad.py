"""The weight gradient, vectorised on BLAS: one matrix product per kernel tap (and the
transposed convolution's whole backward from one gather).

For a forward convolution ``y = conv(x, w)`` with geometry ``g``, kernel tap ``t``
reads the strided block of ``x`` that :meth:`~tconv.geometry.AxisGeometry.tap_span`
names and writes the matching block of ``y``. The tap's weight matrix therefore
collects, over exactly those cells,

    dW[t][:, group] = x_block[..., group_in]^T @ dy_block[..., group_out]

a ``(C_in/g, cells) @ (cells, C_out/g)`` product per group. These are the *same* tap
spans that :mod:`tconv.kernels.gemm` runs forward and backward, so the three
kernels (forward, transposed, weight gradient) are one bilinear form read three ways.

Transposed convolution needs no kernel of its own: for ``y = T(x, w)`` (``T`` the
adjoint of ``conv`` in ``x``), ``<T(x, w), dy> = <x, conv(dy, w)>`` for every ``w``,
so its weight gradient is :func:`conv_weight_grad` with the roles swapped:
``conv_weight_grad(dy, x, g)`` — the output gradient is read as the forward input.

Where Numba is installed, a transposed convolution's backward (:func:`transposed_vjp`,
which :func:`tconv.grad.vjp` takes for transposed layers without groups and padding
modes) gathers ``dy`` once per input cell, every tap side by side (compiled im2col over
the same tap spans), and makes both gradients from it: ``dx = cols @ w`` and ``dw =
cols^T @ x``, two wide products with the kernel as it lies. Measured on the benchmark's
backward layers: 1.3-2.2x faster than the input gradient as a strided convolution plus
this module's per-tap weight gradient.

Memory: a tap's blocks are at most the size of ``x`` and ``dy``; chunks of the batch
keep each copied block under :data:`CHUNK_ELEMENTS` elements (the gathered columns of
:func:`transposed_vjp`: :data:`VJP_TILE_ELEMENTS`, at least one row of one item).
"""

from __future__ import annotations

import math

import numpy as np

from tconv.geometry import Geometry

__all__ = ["conv_weight_grad", "bias_grad", "transposed_vjp"]

#: a tap's copied input and output blocks hold at most this many elements per chunk
#: of the batch (at least one batch item)
CHUNK_ELEMENTS = 1 << 24
#: :func:`transposed_vjp` gathers at most this many elements of columns a tile (at least
#: one row of one item; float32: 4 MiB), so that its two products read them from cache
#: rather than memory. Against the quarter of CHUNK_ELEMENTS (4M elements) it was until the
#: fifteenth session (AMD machine, in process, alternating, medians of 20, dx allocated once
#: so that page faults do not blur it, the U-Net's backward at batch 8, ms, 4M / 1M / 512k):
#: 48x64x64->96x128x32 17.6 / 13.7 / 13.6, 24x32x128 12.9 / 11.5 / 11.3, 12x16x256 10.6 /
#: 10.1 / 10.3, 6x8x512 10.6 / 10.6 / 11.2 (wide kernels want more cells a product)
VJP_TILE_ELEMENTS = 1 << 20


def conv_weight_grad(x: np.ndarray, dy: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Gradient of ``<conv(x, w), dy>`` in ``w``, for the *forward* view of ``geometry``.

    Parameters
    ----------
    x : ``(N, *size, in_channels)``, the forward convolution's input
    dy : ``(N, *out, out_channels)``, the gradient at its output
    geometry : the plan; read in forward terms whatever ``geometry.transposed`` says

    Returns
    -------
    ``(*kernel, in_channels/groups, out_channels)``, the neutral kernel layout.
    """
    g = geometry
    groups = g.groups
    cin, cout = g.in_channels // groups, g.out_channels // groups
    dtype = np.result_type(x, dy)
    dw = np.zeros(g.kernel_shape + (cin, g.out_channels), dtype)
    # per group view (*kernel, cin, G, cout), written in place
    dw_grouped = dw.reshape(g.kernel_shape + (cin, groups, cout))
    batch = x.shape[0]
    per_item = (x[0].size + dy[0].size) or 1
    step = max(1, CHUNK_ELEMENTS // per_item)
    for tap, spans in g.taps():
        out_block = tuple(slice(start, stop) for start, stop, _ in spans)
        in_block = tuple(slice(first, first + (stop - start - 1) * a.stride + 1, a.stride)
                         for (start, stop, first), a in zip(spans, g.axes))
        for n0 in range(0, batch, step):
            xs = x[(slice(n0, n0 + step),) + in_block]
            ys = dy[(slice(n0, n0 + step),) + out_block]
            cells = xs.size // g.in_channels
            xs = xs.reshape(cells, g.in_channels)
            ys = ys.reshape(cells, g.out_channels)
            if groups == 1:
                dw[tap] += xs.T @ ys
            else:
                # (G, cin, cells) @ (G, cells, cout) -> (G, cin, cout)
                prod = np.matmul(xs.reshape(cells, groups, cin).transpose(1, 2, 0),
                                 ys.reshape(cells, groups, cout).transpose(1, 0, 2))
                dw_grouped[tap] += prod.transpose(1, 0, 2)
    return dw


def transposed_vjp_ready(geometry: Geometry) -> bool:
    """Whether :func:`transposed_vjp` runs this layer: a transposed convolution without
    groups, the compiled gather present (Numba), small tables."""
    from tconv.kernels import compiled, gemm

    g = geometry
    return (g.transposed and g.groups == 1 and compiled.available()
            and gemm._col_tables(g.flip()) is not None)


def transposed_vjp_temporary_elements(geometry: Geometry, batch: int) -> int:
    """The largest tile of gathered columns with its input block (copied where ``x`` is
    channels-first) and one more input block's worth, the int64 tables (two float32
    elements a cell) and the weight gradient's product. The extra block was the tile's
    input-gradient product, which now lands in ``dx`` itself: the bound is that much above
    the peak (test_transposed_vjp_temporaries_stay_within_the_stated_bound checks it holds)."""
    from tconv.kernels import gemm

    g = geometry
    per_cell = math.prod(g.kernel_shape) * g.output_channels
    tiles = _vjp_tiles(g, batch)
    rest = math.prod(g.input_spatial[1:])
    tile = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in tiles) * rest * (per_cell + 2 * g.input_channels)
    return tile + gemm._table_elements(g.flip()) + gemm._runs_elements(g.flip()) + per_cell * g.input_channels


def _vjp_tiles(g: Geometry, batch: int) -> list:
    from tconv.kernels import gemm

    lattice = tuple((0, 1, n) for n in g.input_spatial)
    return gemm._tiles(batch, lattice, math.prod(g.kernel_shape) * g.output_channels, VJP_TILE_ELEMENTS)


def transposed_vjp(x: np.ndarray, kernel: np.ndarray, dy: np.ndarray, geometry: Geometry):
    """Input and weight gradients of a transposed convolution, ``(dx, dkernel)``, from one
    gather of ``dy``: per input cell, the output cells its taps reach side by side
    (compiled im2col over the forward tables, zeros where a tap reaches nothing), then
    ``dx = cols @ kernel`` and ``dkernel += cols.T @ x`` with the kernel as it lies,
    ``(taps * C_out, C_in)``; a tile of input rows at a time.

    ``x``: ``(N, *in, C_in)``; ``kernel``: neutral ``(*k, C_out, C_in)``; ``dy``:
    ``(N, *out, C_out)``, all channels last, one dtype."""
    from tconv.kernels import gemm, workspace

    g = geometry
    forward = g.flip()  # its outputs are x's cells, its inputs dy's
    taps, cs, cd = math.prod(g.kernel_shape), g.input_channels, g.output_channels
    w = kernel.reshape(taps * cd, cs)
    dx = np.empty(x.shape, x.dtype)
    dx_cells = dx.reshape(-1, cs)  # a view: dx is new and C-contiguous
    dw = None
    gather = gemm._im2col_gather(dy, forward)
    rest = g.input_spatial[1:] + (1,) * (3 - g.rank)
    for n0, n1, r0, r1 in _vjp_tiles(g, x.shape[0]):
        cols = workspace.scratch((n1 - n0, r1 - r0) + rest + (taps, cd), x.dtype)
        gather(cols, n0, r0)
        cols = cols.reshape(-1, taps * cd)
        xs = x[n0:n1, r0:r1].reshape(-1, cs)
        # the product lands in dx itself (a tile is one run of cells), and the first tile's
        # weight product is dw: no zeroed (taps * C_out, C_in) matrix to add into, which on
        # wide layers cost a third of the call
        np.matmul(cols, w, out=dx_cells[gemm._cell_run(n0, n1, r0, r1, g.input_spatial)])
        if dw is None:
            dw = cols.T @ xs
        else:
            dw += cols.T @ xs
        del cols
    return dx, dw.reshape(g.neutral_kernel_shape)


def bias_grad(dy: np.ndarray) -> np.ndarray:
    """Gradient of ``<op(...) + b, dy>`` in ``b``: ``dy`` summed over batch and space.

    ``dy``: ``(N, *spatial, C)``, channels last; returns ``(C,)``. A C-contiguous floating
    ``dy`` is summed by BLAS, ``ones @ dy``: 2-4x faster than NumPy's sum over the leading
    axis (a row of adds per cell), and at least as accurate (blocked rather than running
    sums; measured on the benchmark's backward layers). Otherwise NumPy sums, without a copy.
    """
    if dy.flags.c_contiguous and dy.dtype in (np.float32, np.float64):
        cells = dy.reshape(-1, dy.shape[-1])
        return np.ones(cells.shape[0], dy.dtype) @ cells
    return dy.sum(axis=tuple(range(dy.ndim - 1)))
