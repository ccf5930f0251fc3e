"""The weight gradient, vectorised on BLAS: one matrix product per kernel tap.

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

Memory: a tap's blocks are at most the size of ``x`` and ``dy``; chunks of the batch
keep each copied block under :data:`CHUNK_ELEMENTS` elements.
"""

from __future__ import annotations

import numpy as np

from tconv.geometry import Geometry

__all__ = ["conv_weight_grad", "bias_grad"]

#: a tap's copied input and output blocks hold at most this many elements per chunk
#: of the batch (at least one batch item)
CHUNK_ELEMENTS = 1 << 24


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


def bias_grad(dy: np.ndarray) -> np.ndarray:
    """Gradient of ``<op(...) + b, dy>`` in ``b``: ``dy`` summed over batch and space.

    ``dy``: ``(N, *spatial, C)``, channels last; returns ``(C,)``.
    """
    return dy.reshape(-1, dy.shape[-1]).sum(axis=0)
