"""Vectorised kernels: one BLAS matrix product per kernel tap, no loop over pixels.

For each tap the geometry gives the block of output cells it reaches and the
strided block of input cells they read (:meth:`~tconv.geometry.AxisGeometry.tap_span`).
The forward convolution gathers that input block and multiplies it into the output
block; the transposed convolution runs the same map backwards, multiplying the
output-gradient block by the transposed tap and adding it into the strided input
block. Using one map for both makes the pair an exact adjoint, and a crop or a
zero extension needs no buffer: cells outside the kept window are never touched.
Temporary memory is one tap's product, the size of the smaller side.
"""

from __future__ import annotations

import numpy as np

from tconv.geometry import Geometry


def _blocks(geometry: Geometry, spans):
    """Slices of the forward output block and the strided forward input block of one tap."""
    out_block = (slice(None),) + tuple(slice(start, stop) for start, stop, _ in spans) + (slice(None),)
    in_block = (slice(None),) + tuple(
        slice(first, first + (stop - start - 1) * a.stride + 1, a.stride)
        for (start, stop, first), a in zip(spans, geometry.axes)) + (slice(None),)
    return out_block, in_block


def _grouped_matmul(a: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """``a @ w`` per channel group. ``a``: ``(..., G*ci)``, ``w``: ``(G*ci, G*co)`` block-diagonal
    given as ``(ci, G*co)`` (the neutral tap layout); returns ``(..., G*co)``."""
    lead = a.shape[:-1]
    a2 = a.reshape(-1, a.shape[-1])
    if groups == 1:
        return (a2 @ w).reshape(lead + (w.shape[1],))
    ci, co = a.shape[-1] // groups, w.shape[1] // groups
    ag = a2.reshape(-1, groups, ci).transpose(1, 0, 2)              # (G, M, ci)
    wg = w.reshape(w.shape[0], groups, co).transpose(1, 0, 2)       # (G, ci, co)
    return np.matmul(ag, wg).transpose(1, 0, 2).reshape(lead + (groups * co,))


def _grouped_matmul_t(b: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """``b @ w.T`` per group. ``b``: ``(..., G*co)``; ``w`` as in :func:`_grouped_matmul`;
    returns ``(..., G*ci)``."""
    lead = b.shape[:-1]
    b2 = b.reshape(-1, b.shape[-1])
    if groups == 1:
        return (b2 @ w.T).reshape(lead + (w.shape[0],))
    ci, co = w.shape[0], b.shape[-1] // groups
    bg = b2.reshape(-1, groups, co).transpose(1, 0, 2)              # (G, M, co)
    wg = w.reshape(ci, groups, co).transpose(1, 2, 0)               # (G, co, ci)
    return np.matmul(bg, wg).transpose(1, 0, 2).reshape(lead + (groups * ci,))


def conv(x: np.ndarray, kernel: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Forward convolution. ``x``: ``(N, *size, C_in)``; returns ``(N, *out, C_out)``."""
    g = geometry
    dtype = np.result_type(x, kernel)
    y = np.zeros((x.shape[0],) + tuple(a.out for a in g.axes) + (g.out_channels,), dtype)
    for tap, spans in g.taps():
        out_block, in_block = _blocks(g, spans)
        y[out_block] += _grouped_matmul(x[in_block], kernel[tap], g.groups)
    return y


def conv_transpose(y: np.ndarray, kernel: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Transposed convolution. ``y``: ``(N, *out, C_out)``; returns ``(N, *size, C_in)``."""
    g = geometry
    dtype = np.result_type(y, kernel)
    x = np.zeros((y.shape[0],) + tuple(a.size for a in g.axes) + (g.in_channels,), dtype)
    for tap, spans in g.taps():
        out_block, in_block = _blocks(g, spans)
        x[in_block] += _grouped_matmul_t(y[out_block], kernel[tap], g.groups)
    return x
