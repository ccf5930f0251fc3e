"""Hypothesis strategies over the neutral geometry (shared by the core and gradient tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, strategies as st

from tconv.errors import TconvError
from tconv.geometry import AxisGeometry, Geometry


@st.composite
def axis_geometries(draw, transposed: bool | None = None) -> AxisGeometry:
    kernel = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 4))
    dilation = draw(st.integers(1, 3))
    k_eff = dilation * (kernel - 1) + 1
    if draw(st.booleans()) if transposed is None else transposed:
        # any crop pair, negative ones (zero extension) included
        n = draw(st.integers(1, 5))
        lo = draw(st.integers(-2, k_eff))
        hi = draw(st.integers(-2, k_eff))
        try:
            return AxisGeometry.transposed(n, kernel, stride, dilation, lo, hi)
        except TconvError:
            assume(False)
    size = draw(st.integers(1, 8))
    lo = draw(st.integers(-2, k_eff))
    hi = draw(st.integers(-2, k_eff))
    assume(size + lo + hi >= k_eff)
    return AxisGeometry(size, kernel, stride, dilation, lo, hi)


@st.composite
def geometries(draw, max_rank: int = 3) -> Geometry:
    rank = draw(st.integers(1, max_rank))
    axes = tuple(draw(axis_geometries()) for _ in range(rank))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    # channels per group: few, or enough for the fast paths the kernels pick by default
    # (accumulate from 4 input channels, col from 8 per group, shift from 32)
    per_group = st.one_of(st.integers(1, 3), st.integers(4, 40))
    cin = groups * draw(per_group)
    cout = groups * draw(per_group)
    return Geometry(axes, cin, cout, groups, transposed=draw(st.booleans()))


def arrays_for(geometry: Geometry, seed: int, dtype=np.float64, batch: int = 2):
    """Input, neutral kernel and bias for ``geometry``: random, never degenerate."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + geometry.input_spatial + (geometry.input_channels,)).astype(dtype)
    w = rng.standard_normal(geometry.neutral_kernel_shape).astype(dtype)
    b = rng.standard_normal(geometry.output_channels).astype(dtype)
    return x, w, b
