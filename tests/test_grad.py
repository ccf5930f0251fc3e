"""Gradients and padding modes: three oracles (torch autograd, jax.vjp, identities and finite differences).

Every neutral geometry the strategies draw (negative pads, any crop pair, groups, all
ranks) is expressed in the frameworks through explicit padding/cropping around a
padding-free convolution, so the oracles see exactly tconv's plan.
"""

from __future__ import annotations

import doctest
import inspect
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tconv
from tconv import grad, ops, padding_modes
from tconv.errors import TconvError
from tconv.geometry import Geometry
from tconv.kernels import grad as grad_kernels, reference

from oracles.harness import require
from oracles.jax import exact_negative_padding
from strategies import arrays_for, geometries

ROOT = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=150, deadline=None)
ORACLE = settings(max_examples=60, deadline=None)
MODES = padding_modes.MODES
NUMPY_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
RTOL = 1e-10


def _close(got, want, what="", rtol=RTOL):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def _forward(geometry: Geometry) -> Geometry:
    return geometry.flip() if geometry.transposed else geometry


def _operands(geometry: Geometry, seed: int, batch: int = 2):
    """x (this op's input), neutral kernel, bias and an output gradient."""
    x, w, b = arrays_for(geometry, seed, batch=batch)
    rng = np.random.default_rng(seed + 7)
    dy = rng.standard_normal((batch,) + geometry.output_spatial + (geometry.output_channels,))
    return x, w, b, dy


def _run(geometry, x, w, b=None, mode="zeros"):
    return padding_modes.run(geometry, x, w, b, padding_mode=mode)


def _repro(geometry, mode="zeros", seed=None):
    return f"repro: geometry={geometry!r}, padding_mode={mode!r}, seed={seed}"


# ------------------------------------------------------------------ identities


@FAST
@given(geometries(), st.sampled_from(MODES), st.integers(0, 2**32 - 1))
def test_vjp_is_the_bilinear_form(geometry, mode, seed):
    """f = <op(x, w) + b, dy> is linear in x, in w and in b: f == <dx, x> == <dw, w>, and db·b."""
    x, w, b, dy = _operands(geometry, seed)
    dx, dw, db = grad.vjp(geometry, x, w, dy, padding_mode=mode)
    f = np.vdot(_run(geometry, x, w, None, mode), dy)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert np.isclose(np.vdot(dx, x), f, rtol=RTOL, atol=RTOL), _repro(geometry, mode, seed)
    assert np.isclose(np.vdot(dw, w), f, rtol=RTOL, atol=RTOL), _repro(geometry, mode, seed)
    fb = np.vdot(_run(geometry, x, w, b, mode), dy) - f
    assert np.isclose(np.vdot(db, b), fb, rtol=RTOL, atol=RTOL), _repro(geometry, mode, seed)


@FAST
@given(geometries(), st.integers(0, 2**32 - 1), st.sampled_from([1 << 22, 1]),
       st.sampled_from(["channels_last", "channels_first"]))
def test_transposed_vjp_one_gather_matches_the_numpy_paths(geometry, seed, chunk, data_format):
    """The compiled path of a transposed convolution's backward (one gather of dy for
    dx and dw; tiles down to one row of one item) against the NumPy paths and the
    reference kernels."""
    from tconv.kernels import compiled

    geometry = geometry if geometry.transposed else geometry.flip()
    x, w, _, dy = _operands(geometry, seed)
    if data_format == "channels_first":
        x, dy = np.moveaxis(x, -1, 1), np.moveaxis(dy, -1, 1)
    assert grad_kernels.transposed_vjp_ready(geometry) == (geometry.groups == 1)
    old = grad_kernels.VJP_TILE_ELEMENTS
    grad_kernels.VJP_TILE_ELEMENTS = chunk
    try:
        fast = grad.vjp(geometry, x, w, dy, data_format=data_format)
    finally:
        grad_kernels.VJP_TILE_ELEMENTS = old
    compiled.ENABLED = False
    try:
        numpy_paths = grad.vjp(geometry, x, w, dy, data_format=data_format)
    finally:
        compiled.ENABLED = True
    reference_ = grad.vjp(geometry, x, w, dy, data_format=data_format, impl="reference")
    for got, a, b, what in zip(fast, numpy_paths, reference_, ("dx", "dw", "db")):
        _close(got, a, f"{what} vs NumPy paths, {_repro(geometry, seed=seed)}", rtol=1e-11)
        _close(got, b, f"{what} vs reference, {_repro(geometry, seed=seed)}", rtol=1e-11)


@FAST
@given(geometries(), st.sampled_from(MODES), st.integers(0, 2**32 - 1))
def test_padding_mode_adjoint_identity(geometry, mode, seed):
    """<conv_mode(x), y> == <x, conv_transpose_mode(y)> for every geometry and mode."""
    forward = _forward(geometry)
    x, w, _ = arrays_for(forward, seed)
    y, _, _ = arrays_for(forward.flip(), seed + 1)
    lhs = np.vdot(_run(forward, x, w, None, mode), y)
    rhs = np.vdot(x, _run(forward.flip(), y, w, None, mode))
    assert np.isclose(lhs, rhs, rtol=RTOL, atol=RTOL), _repro(forward, mode, seed)


@FAST
@given(geometries(max_rank=2), st.sampled_from(MODES), st.integers(0, 2**32 - 1))
def test_weight_grad_gemm_matches_reference(geometry, mode, seed):
    x, w, _, dy = _operands(geometry, seed)
    fast = grad.weight_vjp(geometry, x, dy, padding_mode=mode)
    slow = grad.weight_vjp(geometry, x, dy, padding_mode=mode, impl="reference")
    _close(fast, slow, _repro(geometry, mode, seed), rtol=1e-11)


@pytest.mark.parametrize("spatial, k, stride, cin, cout, batch", [
    ((12, 16), 3, 2, 64, 32, 2),      # a U-Net up layer
    ((6, 8), 3, 2, 128, 256, 4),      # wide
    ((24, 32), 4, 2, 16, 8, 1),       # even kernel
    ((9,), 5, 3, 8, 4, 3),            # 1-D
    ((4, 5, 6), 3, 2, 8, 4, 2),       # 3-D
])
def test_transposed_vjp_temporaries_stay_within_the_stated_bound(spatial, k, stride, cin, cout, batch):
    """The bound the gradient's budget check uses (transposed_vjp_temporary_elements) holds:
    peak traced memory beyond dx and dw on a second call, the scratch buffer dropped so it
    counts; and it is not vacuous."""
    import tracemalloc

    from tconv.kernels import compiled, workspace

    if not compiled.available():
        pytest.skip("the one-gather backward needs the compiled im2col (Numba)")
    g = ops.plan_conv_transpose(spatial, (k,) * len(spatial), cin, cout, stride=stride, crop="same")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch,) + g.input_spatial + (cin,)).astype(np.float32)
    w = rng.standard_normal(g.neutral_kernel_shape).astype(np.float32)
    dy = rng.standard_normal((batch,) + g.output_spatial + (cout,)).astype(np.float32)
    grad_kernels.transposed_vjp(x, w, dy, g)
    workspace.release()
    tracemalloc.start()
    dx, dw = grad_kernels.transposed_vjp(x, w, dy, g)
    peak = tracemalloc.get_traced_memory()[1] - dx.nbytes - dw.nbytes
    tracemalloc.stop()
    bound = grad_kernels.transposed_vjp_temporary_elements(g, batch) * x.itemsize
    assert peak <= bound + 131072, (peak, bound)  # + Python's own bookkeeping of the call
    assert peak >= bound // 4, (peak, bound)      # and the bound is not vacuous


def test_weight_grad_chunks_the_batch(monkeypatch):
    """A tiny chunk budget splits the batch; the sum is unchanged."""
    g = ops.plan_conv((9, 7), (3, 2), 4, 6, stride=(2, 1), padding=((1, 2), (0, 1)), groups=2)
    x, w, _, dy = _operands(g, 3, batch=5)
    whole = grad_kernels.conv_weight_grad(x, dy, g)
    monkeypatch.setattr(grad_kernels, "CHUNK_ELEMENTS", 1)
    _close(grad_kernels.conv_weight_grad(x, dy, g), whole)
    _close(whole, reference.conv_weight_grad(x, dy, g))


@FAST
@given(geometries(), st.integers(0, 2**32 - 1))
def test_transpose_weight_grad_is_conv_weight_grad_with_roles_swapped(geometry, seed):
    """For y = T(x, w): dW = conv_weight_grad(dy, x) — dy read as the forward input."""
    g = geometry if geometry.transposed else geometry.flip()
    x, w, _, dy = _operands(g, seed)
    _close(grad.vjp(g, x, w, dy)[1], grad_kernels.conv_weight_grad(dy, x, g.flip()))
    # and its input gradient is the forward convolution with the same plan
    _close(grad.vjp(g, x, w, dy)[0], ops.run(g.flip(), dy, w))


def _fd_check(geometry, mode, seed, h=1e-3):
    """Central differences of f(x, w, b) = <op(x, w) + b, dy> along random directions."""
    x, w, b, dy = _operands(geometry, seed)
    rng = np.random.default_rng(seed + 11)
    vx, vw, vb = (rng.standard_normal(a.shape) for a in (x, w, b))
    dx, dw, db = grad.vjp(geometry, x, w, dy, padding_mode=mode)

    def f(t_x, t_w, t_b):
        return np.vdot(_run(geometry, x + t_x * vx, w + t_w * vw, b + t_b * vb, mode), dy)

    for (tx, tw, tb), analytic in (((h, 0, 0), np.vdot(dx, vx)), ((0, h, 0), np.vdot(dw, vw)),
                                   ((0, 0, h), np.vdot(db, vb)),
                                   ((h, h, h), np.vdot(dx, vx) + np.vdot(dw, vw) + np.vdot(db, vb))):
        numeric = (f(tx, tw, tb) - f(-tx, -tw, -tb)) / (2 * h)
        assert np.isclose(numeric, analytic, rtol=1e-7, atol=1e-7), (_repro(geometry, mode, seed),
                                                                     numeric, analytic)


@settings(max_examples=80, deadline=None)
@given(geometries(), st.sampled_from(MODES), st.integers(0, 2**32 - 1))
def test_central_finite_differences(geometry, mode, seed):
    _fd_check(geometry, mode, seed)


def test_finite_differences_elementwise():
    """Each partial derivative of a small 2-D strided, dilated, grouped case, one by one."""
    g = ops.plan_conv((6, 5), (3, 2), 4, 2, stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)
    for geometry in (g, g.flip()):
        x, w, b, dy = _operands(geometry, 5, batch=1)
        dx, dw, _ = grad.vjp(geometry, x, w, dy, padding_mode="reflect")
        for array, analytic in ((x, dx), (w, dw)):
            numeric = np.zeros_like(array)
            for i in np.ndindex(array.shape):
                old = array[i]
                array[i] = old + 1e-4
                up = np.vdot(_run(geometry, x, w, b, "reflect"), dy)
                array[i] = old - 1e-4
                down = np.vdot(_run(geometry, x, w, b, "reflect"), dy)
                array[i] = old
                numeric[i] = (up - down) / 2e-4
            _close(analytic, numeric, repr(geometry), rtol=1e-8)


# ------------------------------------------------------------------ padding modes


@given(st.integers(1, 6), st.integers(0, 13), st.integers(0, 13), st.sampled_from(MODES))
def test_source_index_is_numpy_pad(size, lo, hi, mode):
    """Each mode is numpy.pad's (reflect and wrap continue past one period)."""
    expected = np.pad(np.arange(size), (lo, hi), mode=NUMPY_MODE[mode],
                      **({"constant_values": -1} if mode == "zeros" else {}))
    np.testing.assert_array_equal(padding_modes.source_index(size, lo, hi, mode), expected)


def test_padding_mode_zeros_is_the_plain_geometry():
    g = ops.plan_conv((7,), (3,), 2, 3, stride=2, padding=((2, -1),))
    x, w, b = arrays_for(g, 1)
    _close(padding_modes.pad(x, g, "zeros")[:, :, :], np.pad(x, ((0, 0), (2, 0), (0, 0)))[:, :8])
    valid = padding_modes.valid_geometry(g)
    _close(ops.run(valid, padding_modes.pad(x, g, "zeros"), w, b), ops.run(g, x, w, b))
    y = ops.run(g, x, w)
    _close(padding_modes.fold(ops.run(valid.flip(), y, w), g, "zeros"), ops.run(g.flip(), y, w))


def test_neutral_api_padding_mode():
    x = np.arange(4.0).reshape(1, 4, 1)
    w = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    y = tconv.conv(x, w, padding=1, padding_mode="reflect")
    # reflect pads [1 | 0 1 2 3 | 2]
    np.testing.assert_array_equal(y[0, :, 0], [1 + 0 + 100, 0 + 10 + 200, 1 + 20 + 300, 2 + 30 + 200])
    # the transposed convolution folds the border back: its value on x is <y, conv_mode(x)>
    yt = tconv.conv_transpose(y, w, crop=1, padding_mode="reflect", data_format="channels_last")
    assert np.isclose(np.vdot(yt, x), np.vdot(y, y))
    # channels_first and bias
    cf = tconv.conv_transpose(np.moveaxis(y, -1, 1), w, np.array([0.5]), crop=1, padding_mode="reflect",
                              data_format="channels_first")
    _close(np.moveaxis(cf, 1, -1), yt + 0.5)
    with pytest.raises(TconvError, match="padding_mode"):
        tconv.conv(x, w, padding=1, padding_mode="mirror")


@settings(max_examples=60, deadline=None)
@given(geometries(), st.sampled_from(MODES[1:]), st.integers(0, 2**32 - 1))
def test_forward_padding_modes_equal_numpy_pad(geometry, mode, seed):
    """Any pads, negative and past one period included: numpy.pad, then crop, then a valid conv."""
    g = _forward(geometry)
    x, w, b = arrays_for(g, seed)
    widths = [(0, 0)] + [(max(a.pad_lo, 0), max(a.pad_hi, 0)) for a in g.axes] + [(0, 0)]
    padded = np.pad(x, widths, mode=NUMPY_MODE[mode])
    crop = (slice(None),) + tuple(slice(max(-a.pad_lo, 0), padded.shape[i + 1] - max(-a.pad_hi, 0))
                                  for i, a in enumerate(g.axes))
    expected = ops.run(padding_modes.valid_geometry(g), padded[crop], w, b, impl="reference")
    _close(_run(g, x, w, b, mode), expected, _repro(g, mode, seed))


# ------------------------------------------------------------------ torch


def _torch_layout(w):
    """Neutral (*k, in/g, out) -> torch conv (out, in/g, *k); the same move gives the
    ConvTranspose weight (in_T, out_T/g, *k) of the adjoint."""
    return np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1)))


def _torch_pads(pairs):
    """Per-axis (lo, hi) -> F.pad's flat list, last axis first."""
    return [v for lo, hi in reversed(pairs) for v in (lo, hi)]


def _torch_grads(geometry, x, w, b, dy, mode="zeros"):
    """torch autograd of tconv's plan: explicit pad/crop around a padding-free convolution."""
    torch = require("torch")
    F = torch.nn.functional
    rank, g = geometry.rank, _forward(geometry)
    conv = getattr(F, f"conv{rank}d")
    conv_t = getattr(F, f"conv_transpose{rank}d")
    tx = torch.tensor(np.moveaxis(x, -1, 1), requires_grad=True)
    tw = torch.tensor(_torch_layout(w), requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    kw = dict(stride=[a.stride for a in g.axes], dilation=[a.dilation for a in g.axes], groups=g.groups)
    if geometry.transposed:
        full = conv_t(tx, tw, None, **kw)
        # the bias is added everywhere, on the zero extension too
        out = F.pad(full, _torch_pads([(-a.crop_lo, -a.crop_hi) for a in g.axes])) \
            + tb.reshape((-1,) + (1,) * rank)
        if mode != "zeros":
            pytest.skip("torch has no padding_mode for transposed convolutions")
    elif mode == "zeros":
        out = conv(F.pad(tx, _torch_pads([(a.pad_lo, a.pad_hi) for a in g.axes])), tw, tb, **kw)
    else:
        out = conv(F.pad(tx, _torch_pads([(a.pad_lo, a.pad_hi) for a in g.axes]), mode=mode), tw, tb, **kw)
    tdy = torch.tensor(np.moveaxis(dy, -1, 1))
    out.backward(tdy)
    return (np.moveaxis(out.detach().numpy(), 1, -1), np.moveaxis(tx.grad.numpy(), 1, -1),
            np.moveaxis(tw.grad.numpy(), (0, 1), (-1, -2)), tb.grad.numpy())


@ORACLE
@given(geometries(), st.integers(0, 2**32 - 1))
def test_gradients_equal_torch_autograd(geometry, seed):
    x, w, b, dy = _operands(geometry, seed)
    y, dx, dw, db = _torch_grads(geometry, x, w, b, dy)
    what = _repro(geometry, "zeros", seed)
    _close(ops.run(geometry, x, w, b), y, what)
    ours = grad.vjp(geometry, x, w, dy)
    for name, got, want in zip(("dx", "dw", "db"), ours, (dx, dw, db)):
        _close(got, want, f"{name} {what}")


@st.composite
def torch_mode_configs(draw):
    """Configurations torch's Conv*d(padding_mode=...) accepts (reflect: pad < size; circular: pad <= size)."""
    rank = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    groups = draw(st.sampled_from([1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    spatial = tuple(draw(st.integers(2, 6)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    limit = {"reflect": -1, "circular": 0}.get(mode, 2)
    padding = tuple(draw(st.integers(0, max(0, min(n + limit, 3)))) for n in spatial)
    if any(n + 2 * p < d * (k - 1) + 1 for n, p, k, d in zip(spatial, padding, kernel, dilation)):
        kernel = (1,) * rank
    return rank, mode, groups, cin, cout, spatial, kernel, dilation, stride, padding


@ORACLE
@given(torch_mode_configs(), st.integers(0, 2**32 - 1))
def test_padding_modes_equal_torch_modules(config, seed):
    """Forward values and all three gradients equal torch's nn.Conv*d(padding_mode=...)."""
    torch = require("torch")
    rank, mode, groups, cin, cout, spatial, kernel, dilation, stride, padding = config
    module = getattr(torch.nn, f"Conv{rank}d")(cin, cout, kernel, stride=stride, padding=padding,
                                               dilation=dilation, groups=groups, padding_mode=mode,
                                               dtype=torch.float64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, cin) + spatial)
    tx = torch.tensor(x, requires_grad=True)
    out = module(tx)
    dy = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(dy))
    w = module.weight.detach().numpy()
    b = module.bias.detach().numpy()
    neutral_w = np.moveaxis(w, (0, 1), (-1, -2))
    what = f"repro: torch.nn.Conv{rank}d{(cin, cout, kernel)}, stride={stride}, padding={padding}, " \
           f"dilation={dilation}, groups={groups}, padding_mode={mode!r}, input={x.shape}"
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode,
              data_format="channels_first")
    _close(tconv.conv(x, neutral_w, b, **kw), out.detach().numpy(), what)
    dx, dw, db = grad.conv_vjp(x, neutral_w, dy, **kw)
    _close(dx, tx.grad.numpy(), "dx " + what)
    _close(np.moveaxis(dw, (-1, -2), (0, 1)), module.weight.grad.numpy(), "dw " + what)
    _close(db, module.bias.grad.numpy(), "db " + what)


# ------------------------------------------------------------------ jax


def _jax_specs(rank):
    s = {1: "W", 2: "HW", 3: "DHW"}[rank]
    return ("N" + s + "C", s + "IO", "N" + s + "C")


def _jax_vjp(geometry, x, w, b, dy):
    """jax.vjp of tconv's plan written the jax way: padding pairs forward; for the transposed
    convolution, lhs_dilation=stride with the flipped, group-transposed kernel."""
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    lax, jnp = jax.lax, jax.numpy
    g, rank = _forward(geometry), geometry.rank
    dn = _jax_specs(rank)
    if not geometry.transposed:
        def op(x, w, b):
            return lax.conv_general_dilated(
                x, w, [a.stride for a in g.axes], [(a.pad_lo, a.pad_hi) for a in g.axes],
                rhs_dilation=[a.dilation for a in g.axes], dimension_numbers=dn,
                feature_group_count=g.groups, precision=lax.Precision.HIGHEST) + b
    else:
        groups, k = g.groups, g.kernel_shape
        cin, cout = g.in_channels // groups, g.out_channels // groups

        def op(x, w, b):
            # (*k, cin/g, G, cout/g) -> (*k, cout/g, G, cin/g) -> (*k, cout/g, cin): per group, I<->O
            wt = w.reshape(k + (cin, groups, cout))
            wt = jnp.moveaxis(wt, (rank, rank + 2), (rank + 2, rank)).reshape(k + (cout, groups * cin))
            wt = wt[tuple(slice(None, None, -1) for _ in range(rank))]
            pads = [(a.dilated_kernel - 1 - a.crop_lo, a.dilated_kernel - 1 - a.crop_hi) for a in g.axes]
            return lax.conv_general_dilated(
                x, wt, (1,) * rank, pads, lhs_dilation=[a.stride for a in g.axes],
                rhs_dilation=[a.dilation for a in g.axes], dimension_numbers=dn,
                feature_group_count=groups, precision=lax.Precision.HIGHEST) + b
    @jax.jit  # one compilation per case instead of one per primitive
    def value_and_vjp(x, w, b, dy):
        y, pullback = jax.vjp(op, x, w, b)
        return (y,) + pullback(dy)

    with exact_negative_padding():  # traced inside: negative padding (crops) computed exactly
        return tuple(np.asarray(a) for a in value_and_vjp(*(jnp.asarray(a) for a in (x, w, b, dy))))


@settings(max_examples=40, deadline=None)
@given(geometries(), st.integers(0, 2**32 - 1))
def test_gradients_equal_jax_vjp(geometry, seed):
    x, w, b, dy = _operands(geometry, seed)
    y, dx, dw, db = _jax_vjp(geometry, x, w, b, dy)
    what = _repro(geometry, "zeros", seed)
    _close(ops.run(geometry, x, w, b), y, what)
    for name, got, want in zip(("dx", "dw", "db"), grad.vjp(geometry, x, w, dy), (dx, dw, db)):
        _close(got, want, f"{name} {what}")


# ------------------------------------------------------------------ the torch dialect


def test_torch_grad_signatures():
    torch = require("torch")
    from tconv.dialects import torch as dialect

    for rank in (1, 2, 3):
        for which in ("input", "weight"):
            name = f"conv{rank}d_{which}"
            ours = inspect.signature(getattr(dialect.grad, name))
            theirs = inspect.signature(getattr(torch.nn.grad, name))
            assert list(ours.parameters) == list(theirs.parameters), name
            assert [p.default for p in ours.parameters.values()] == \
                   [p.default for p in theirs.parameters.values()], name
            t = inspect.signature(getattr(dialect.grad, f"conv_transpose{rank}d_{which}"))
            first = list(theirs.parameters)[:3]
            assert list(t.parameters) == first + ["stride", "padding", "output_padding", "groups", "dilation"]


@st.composite
def torch_configs(draw):
    rank = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    spatial = tuple(draw(st.integers(1, 6 if rank < 3 else 4)) for _ in range(rank))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    return rank, transposed, groups, cin, cout, kernel, stride, dilation, spatial, padding, output_padding


@ORACLE
@given(torch_configs(), st.integers(0, 2**32 - 1))
def test_torch_grad_dialect_equals_torch(config, seed):
    """conv*d_input/_weight equal torch.nn.grad; conv_transpose*d_input/_weight equal autograd of
    F.conv_transpose*d; tconv refuses exactly where torch does."""
    torch = require("torch")
    from tconv.dialects import torch as dialect

    rank, transposed, groups, cin, cout, kernel, stride, dilation, spatial, padding, output_padding = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, cin) + spatial)
    if transposed:
        w = rng.standard_normal((cin, cout // groups) + kernel)
        kw = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
        fn = getattr(torch.nn.functional, f"conv_transpose{rank}d")
    else:
        w = rng.standard_normal((cout, cin // groups) + kernel)
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        fn = getattr(torch.nn.functional, f"conv{rank}d")
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    prefix = "conv_transpose" if transposed else "conv"
    ours_input = getattr(dialect.grad, f"{prefix}{rank}d_input")
    ours_weight = getattr(dialect.grad, f"{prefix}{rank}d_weight")
    what = f"repro: {prefix}{rank}d x={x.shape} w={w.shape} {kw}"
    try:
        out = fn(tx, tw, **kw)
    except RuntimeError:
        for call in (lambda: ours_input(x.shape, w, np.zeros((2, 1) + spatial), **kw),
                     lambda: ours_weight(x, w.shape, np.zeros((2, 1) + spatial), **kw)):
            with pytest.raises(TconvError) as refused:
                call()
            assert refused.value.argument != "grad_output", what  # refused for the plan itself
        return
    dy = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(dy))
    _close(ours_input(x.shape, w, dy, **kw), tx.grad.numpy(), "input " + what)
    _close(ours_weight(x, w.shape, dy, **kw), tw.grad.numpy(), "weight " + what)
    if not transposed:
        _close(ours_input(torch.Size(x.shape), w, dy, **kw),
               getattr(torch.nn.grad, f"conv{rank}d_input")(x.shape, tw.detach(), torch.tensor(dy), **kw).numpy())
        _close(ours_weight(x, list(w.shape), dy, **kw),
               getattr(torch.nn.grad, f"conv{rank}d_weight")(tx.detach(), w.shape, torch.tensor(dy), **kw).numpy())
    # a grad_output of the wrong size: torch refuses, so does tconv
    bad = np.zeros(dy.shape[:-1] + (dy.shape[-1] + 1,))
    with pytest.raises(TconvError, match="grad_output"):
        ours_input(x.shape, w, bad, **kw)
    with pytest.raises(TconvError, match="grad_output"):
        ours_weight(x, w.shape, bad, **kw)


def test_torch_grad_refusals_match_torch():
    torch = require("torch")
    from tconv.dialects import torch as dialect

    w = np.ones((4, 3, 3))
    dy = np.ones((2, 4, 6))
    for call, kwargs in (((2, 3, 9), {}), ((2, 3, 9), {"stride": 2}), ((3, 8), {}),
                         ((2, 3, 8), {"padding": -1}), ((2, 2, 8), {})):
        with pytest.raises(Exception):
            torch.nn.grad.conv1d_input(call, torch.tensor(w), torch.tensor(dy), **kwargs)
        with pytest.raises(TconvError):
            dialect.grad.conv1d_input(call, w, dy, **kwargs)
    with pytest.raises(TconvError, match="padding"):
        dialect.grad.conv1d_input((2, 3, 8), w, dy, padding="same")
    with pytest.raises(TconvError, match="output_padding"):
        dialect.grad.conv_transpose1d_input((2, 4, 6), w, np.ones((2, 3, 9)), stride=2, output_padding=2)
    with pytest.raises(TconvError, match="dtype"):
        dialect.grad.conv1d_input((2, 3, 8), w.astype(np.float32), dy)


def test_float32_preserved():
    from tconv.dialects import torch as dialect

    w = np.ones((4, 3, 3), np.float32)
    dy = np.ones((2, 4, 6), np.float32)
    assert dialect.grad.conv1d_input((2, 3, 8), w, dy).dtype == np.float32
    assert dialect.grad.conv1d_weight(np.ones((2, 3, 8), np.float32), w.shape, dy).dtype == np.float32
    dx, dw, db = grad.conv_vjp(np.ones((2, 8, 3), np.float32), np.ones((3, 3, 4), np.float32),
                               np.ones((2, 6, 4), np.float32), padding_mode="zeros")
    assert dx.dtype == dw.dtype == db.dtype == np.float32


def test_torch_dialect_keeps_the_transposed_padding_mode_refusal():
    """torch's F.conv_transpose*d has no padding_mode (its modules refuse anything but 'zeros');
    the dialect is the same function, so the keyword is refused the same way."""
    torch = require("torch")
    from tconv.dialects import torch as dialect

    x, w = np.ones((1, 2, 5, 5)), np.ones((2, 3, 3, 3))
    with pytest.raises(TypeError):
        torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), padding_mode="reflect")
    with pytest.raises(TypeError):
        dialect.conv_transpose2d(x, w, padding_mode="reflect")
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported'):
        torch.nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect")


def test_geometry_argument():
    g = ops.plan_conv((7, 5), (3, 3), 2, 4, stride=2, padding=1)
    x, w, b, dy = _operands(g, 0)
    by_geometry = grad.conv_vjp(x, w, dy, geometry=g)
    by_args = grad.conv_vjp(x, w, dy, stride=2, padding=1)
    for a, c in zip(by_geometry, by_args):
        _close(a, c)
    with pytest.raises(TconvError, match="geometry"):
        grad.conv_vjp(x, w, dy, geometry=g.flip())
    with pytest.raises(TconvError, match="dy"):
        grad.conv_vjp(x, w, dy[:, :-1])
    t = g.flip()
    y, w2, _, dyt = _operands(t, 1)
    for a, c in zip(grad.conv_transpose_vjp(y, w2, dyt, geometry=t),
                    grad.conv_transpose_vjp(y, w2, dyt, stride=2, crop=1)):
        _close(a, c)
    # channels_first is the same computation, axes moved
    dx_cf, dw_cf, db_cf = grad.conv_vjp(np.moveaxis(x, -1, 1), w, np.moveaxis(dy, -1, 1), geometry=g,
                                        data_format="channels_first")
    _close(np.moveaxis(dx_cf, 1, -1), by_geometry[0])
    _close(dw_cf, by_geometry[1])


def test_docs_gradients_examples_run():
    path = ROOT / "docs" / "gradients.md"
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_transposed_vjp_tiles_hold_at_most_their_columns_budget():
    """The one-gather backward gathers at most VJP_TILE_ELEMENTS elements of columns a tile
    (rows of items, cut where needed), so that its two products read them from cache: the
    U-Net's widest backward at batch 8 takes several tiles, none over the budget, and
    every input cell lies in exactly one."""
    assert grad_kernels.VJP_TILE_ELEMENTS * 4 <= 4 << 20  # float32 columns of a tile within 4 MiB (measured)
    g = ops.plan_conv_transpose((48, 64), (3, 3), 64, 32, stride=2, crop="same")
    per_cell = 9 * 32
    tiles = grad_kernels._vjp_tiles(g, 8)
    assert len(tiles) > 1
    assert all((n1 - n0) * (r1 - r0) * 64 * per_cell <= grad_kernels.VJP_TILE_ELEMENTS for n0, n1, r0, r1 in tiles)
    covered = sorted((n, r) for n0, n1, r0, r1 in tiles for n in range(n0, n1) for r in range(r0, r1))
    assert covered == [(n, r) for n in range(8) for r in range(48)]
