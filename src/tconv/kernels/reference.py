"""Reference kernels: the definitions, written as loops. Slow; for tests and teaching.

``conv`` is cross-correlation, one output cell at a time. ``conv_transpose`` is the
scatter definition: every input cell stamps the kernel onto the full grid at stride
steps, then the grid is cropped (or zero-extended) by ``(crop_lo, crop_hi)``. Neither
shares code with the fast path, so each checks the other.
"""

from __future__ import annotations

import itertools

import numpy as np

from tconv.geometry import Geometry


def conv(x: np.ndarray, kernel: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Forward convolution. ``x``: ``(N, *size, C_in)``; returns ``(N, *out, C_out)``."""
    g = geometry
    cin, cout = g.in_channels // g.groups, g.out_channels // g.groups
    dtype = np.result_type(x, kernel)
    y = np.zeros((x.shape[0],) + g.output_spatial + (g.out_channels,), dtype)
    for o in itertools.product(*(range(a.out) for a in g.axes)):
        for tap in itertools.product(*(range(a.kernel) for a in g.axes)):
            pos = tuple(oi * a.stride + t * a.dilation - a.pad_lo
                        for oi, t, a in zip(o, tap, g.axes))
            if not all(0 <= p < a.size for p, a in zip(pos, g.axes)):
                continue  # the window reads padding here
            for grp in range(g.groups):
                xi = x[(slice(None),) + pos + (slice(grp * cin, (grp + 1) * cin),)]
                wi = kernel[tap][:, grp * cout:(grp + 1) * cout]
                y[(slice(None),) + o + (slice(grp * cout, (grp + 1) * cout),)] += xi @ wi
    return y


def conv_transpose(y: np.ndarray, kernel: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Transposed convolution. ``y``: ``(N, *out, C_out)``; returns ``(N, *size, C_in)``."""
    g = geometry
    cin, cout = g.in_channels // g.groups, g.out_channels // g.groups
    dtype = np.result_type(y, kernel)
    full = np.zeros((y.shape[0],) + tuple(a.full for a in g.axes) + (g.in_channels,), dtype)
    for i in itertools.product(*(range(a.out) for a in g.axes)):
        for tap in itertools.product(*(range(a.kernel) for a in g.axes)):
            pos = tuple(ii * a.stride + t * a.dilation for ii, t, a in zip(i, tap, g.axes))
            for grp in range(g.groups):
                yi = y[(slice(None),) + i + (slice(grp * cout, (grp + 1) * cout),)]
                wi = kernel[tap][:, grp * cout:(grp + 1) * cout]
                full[(slice(None),) + pos + (slice(grp * cin, (grp + 1) * cin),)] += yi @ wi.T
    # crop, or extend with zeros where a crop is negative
    out = np.zeros((y.shape[0],) + tuple(a.size for a in g.axes) + (g.in_channels,), dtype)
    dst, src = [slice(None)], [slice(None)]
    for a in g.axes:
        lo = max(0, -a.crop_lo)                      # first output cell inside the grid
        hi = min(a.size, a.full - a.crop_lo)         # one past the last
        dst.append(slice(lo, hi))
        src.append(slice(lo + a.crop_lo, hi + a.crop_lo))
    out[tuple(dst)] = full[tuple(src)]
    return out


def conv_weight_grad(x: np.ndarray, dy: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Weight gradient of the forward convolution, one output cell and one tap at a time.

    ``x``: ``(N, *size, C_in)``; ``dy``: ``(N, *out, C_out)``; returns the neutral kernel
    ``(*kernel, C_in/groups, C_out)`` holding ``d<conv(x, w), dy>/dw``: every product
    ``x[pos] * dy[o]`` that :func:`conv` forms with tap ``tap``, summed.
    """
    g = geometry
    cin, cout = g.in_channels // g.groups, g.out_channels // g.groups
    dw = np.zeros(g.neutral_kernel_shape, np.result_type(x, dy))
    for o in itertools.product(*(range(a.out) for a in g.axes)):
        for tap in itertools.product(*(range(a.kernel) for a in g.axes)):
            pos = tuple(oi * a.stride + t * a.dilation - a.pad_lo
                        for oi, t, a in zip(o, tap, g.axes))
            if not all(0 <= p < a.size for p, a in zip(pos, g.axes)):
                continue  # the window reads padding here: no weight sees it
            for grp in range(g.groups):
                xi = x[(slice(None),) + pos + (slice(grp * cin, (grp + 1) * cin),)]
                yi = dy[(slice(None),) + o + (slice(grp * cout, (grp + 1) * cout),)]
                dw[tap][:, grp * cout:(grp + 1) * cout] += xi.T @ yi
    return dw
