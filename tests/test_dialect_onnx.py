"""tconv.dialects.onnx by hand: the seed case, onnxruntime's departures from the spec,
and every REFUSALS entry."""

from __future__ import annotations

import numpy as np
import pytest

from oracles.harness import Case, require
from tconv.dialects import onnx as O
from tconv.errors import TconvError
from oracles.harness import assert_refuses


def _ort(fn: str, arrays: dict, **attrs):
    """Run one node in onnxruntime through the oracle module."""
    require("onnxruntime")
    require("onnx")
    from oracles import onnx as oracle

    return oracle.run_framework(Case("onnx", fn, arrays, attrs))


def _rng():
    return np.random.default_rng(99)


X4 = np.arange(1.0, 5.0, dtype=np.float32).reshape(1, 1, 4)
W3 = np.array([1.0, 10.0, 100.0], dtype=np.float32).reshape(1, 1, 3)
FULL = np.array([1, 10, 102, 20, 203, 30, 304, 40, 400], np.float32)  # stride 2 scatter


# ------------------------------------------------------------------ the seed case


def test_seed_same_upper_is_keras_crop_0_1_and_same_lower_is_1_0():
    rng = _rng()
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    full = O.conv_transpose(x, w, strides=[2, 2])
    assert full.shape == (1, 3, 17, 17)
    upper = O.conv_transpose(x, w, strides=[2, 2], auto_pad="SAME_UPPER")
    lower = O.conv_transpose(x, w, strides=[2, 2], auto_pad="SAME_LOWER")
    assert upper.shape == lower.shape == (1, 3, 16, 16)
    np.testing.assert_allclose(upper, full[..., :16, :16], atol=1e-5)  # Keras' crop (0, 1)
    np.testing.assert_allclose(lower, full[..., 1:, 1:], atol=1e-5)    # crop (1, 0)
    np.testing.assert_allclose(upper, _ort("conv_transpose", {"X": x, "W": w}, strides=[2, 2],
                                           auto_pad="SAME_UPPER"), atol=1e-5)
    np.testing.assert_allclose(lower, _ort("conv_transpose", {"X": x, "W": w}, strides=[2, 2],
                                           auto_pad="SAME_LOWER"), atol=1e-5)


@pytest.mark.parametrize("attrs, expected", [
    (dict(output_shape=[8]), FULL[1:]),                           # NOTSET: odd cell at the start
    (dict(output_shape=[8], auto_pad="SAME_UPPER"), FULL[:8]),    # SAME_UPPER: at the end
    (dict(output_shape=[8], auto_pad="VALID"), FULL[1:]),         # VALID + output_shape: as NOTSET
    (dict(output_shape=[9], output_padding=[1]), np.r_[FULL[1:], 0]),   # T=1 with output_padding
    (dict(output_padding=[1]), np.r_[FULL, 0]),
    (dict(output_padding=[1], auto_pad="SAME_UPPER"), FULL[1:]),  # T=2 -> crop (1, 0)
    (dict(pads=[1, 2]), FULL[1:7]),
])
def test_transpose_output_shape_and_output_padding(attrs, expected):
    got = O.conv_transpose(X4, W3, strides=[2], **attrs)[0, 0]
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(_ort("conv_transpose", {"X": X4, "W": W3}, strides=[2], **attrs)[0, 0],
                                  expected)


def test_negative_total_padding_is_clamped_unlike_the_spec():
    """stride 5 > k_eff: the spec's SAME asks for 4*5 = 20 cells; onnxruntime gives the full 18,
    and output_shape=20 zero-extends at the end only."""
    same = O.conv_transpose(X4, W3, strides=[5], auto_pad="SAME_LOWER")
    assert same.shape == (1, 1, 18)
    shaped = O.conv_transpose(X4, W3, strides=[5], output_shape=[20])[0, 0]
    np.testing.assert_array_equal(shaped[-2:], [0, 0])
    np.testing.assert_array_equal(shaped[:18], same[0, 0])
    np.testing.assert_array_equal(_ort("conv_transpose", {"X": X4, "W": W3}, strides=[5],
                                       output_shape=[20])[0, 0], shaped)


def test_conv_same_with_negative_total_crops_the_start():
    """Conv SAME_UPPER, k=1 < s=4 on 4 cells: onnxruntime reads cell 1, not cell 0."""
    x = np.arange(1.0, 5.0, dtype=np.float32).reshape(1, 1, 4)
    w = np.ones((1, 1, 1), np.float32)
    assert O.conv(x, w, strides=[4], auto_pad="SAME_UPPER")[0, 0, 0] == 2
    assert O.conv(x, w, strides=[4], auto_pad="SAME_LOWER")[0, 0, 0] == 1
    assert _ort("conv", {"X": x, "W": w}, strides=[4], auto_pad="SAME_UPPER")[0, 0, 0] == 2


def test_conv_grouped_with_bias_against_ort():
    rng = _rng()
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    attrs = dict(group=2, strides=[2, 1], dilations=[1, 2], pads=[1, 0, 2, 1])
    np.testing.assert_allclose(O.conv(x, w, b, **attrs),
                               _ort("conv", {"X": x, "W": w, "B": b}, **attrs), atol=1e-5)


def test_divergences_float64_and_same_dilated():
    """onnxruntime's CPU provider refuses both; tconv computes the defined result."""
    rng = _rng()
    x = rng.standard_normal((1, 2, 7)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3)).astype(np.float32)
    y64 = O.conv_transpose(x.astype(np.float64), w.reshape(2, 3, 3).astype(np.float64), strides=[2])
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, O.conv_transpose(x, w.reshape(2, 3, 3), strides=[2]), atol=1e-5)
    # SAME_UPPER with dilation 2 (k_eff = 5) on 7 cells at stride 1: pads (2, 2)
    np.testing.assert_allclose(O.conv(x, w, auto_pad="SAME_UPPER", dilations=[2]),
                               _ort("conv", {"X": x, "W": w}, dilations=[2], pads=[2, 2]), atol=1e-5)


# ------------------------------------------------------------------ refusals

_X = np.ones((1, 2, 5), np.float32)
_WC = np.ones((3, 2, 2), np.float32)   # Conv (M, C/g, k)
_WT = np.ones((2, 3, 2), np.float32)   # ConvTranspose (C, M/g, k)

REFUSAL_CASES = {
    "attribute": (lambda: O.conv(_X, _WC, output_padding=[0]), "output_padding"),
    "input_rank": (lambda: O.conv(np.ones((2, 5), np.float32), np.ones((3, 2), np.float32)), "X"),
    "weight_rank": (lambda: O.conv(_X, np.ones((3, 2, 2, 2), np.float32)), "W"),
    "auto_pad": (lambda: O.conv(_X, _WC, auto_pad="SAME"), "auto_pad"),
    "pads_with_auto_pad": (lambda: O.conv_transpose(_X, _WT, auto_pad="VALID", pads=[0, 0]), "pads"),
    "length": (lambda: O.conv(_X, _WC, strides=[1, 1]), "strides"),
    "positive": (lambda: O.conv(_X, _WC, dilations=[0]), "dilations"),
    "negative_pads": (lambda: O.conv(_X, _WC, pads=[-1, 0]), "pads"),
    "kernel_shape": (lambda: O.conv(_X, _WC, kernel_shape=[3]), "kernel_shape"),
    "group": (lambda: O.conv(_X, _WC, group=2), "group"),
    "bias": (lambda: O.conv(_X, _WC, np.ones(2, np.float32)), "B"),
    "output_padding": (lambda: O.conv_transpose(_X, _WT, strides=[2], output_padding=[2]),
                       "output_padding"),
    "transpose_shape": (lambda: O.conv_transpose(X4, W3, strides=[2], output_shape=[11]), "output_shape"),
    "output_empty": (lambda: O.conv(np.ones((1, 2, 1), np.float32), _WC), "X"),
    "empty_input": (lambda: O.conv(np.ones((1, 2, 0), np.float32), _WC, pads=[2, 2]), "X"),
}

#: entries where onnxruntime computes something (documented divergences)
_ORT_COMPUTES = {"empty_input"}


def test_every_refusal_is_exercised():
    assert set(REFUSAL_CASES) == set(O.REFUSALS)


@pytest.mark.parametrize("key", sorted(REFUSAL_CASES))
def test_refusal(key):
    call, argument = REFUSAL_CASES[key]
    assert_refuses(call, argument, exact=True)


def test_transpose_shape_refuses_output_padding_past_stride():
    """output_padding=3 < max(stride 2, dilation 4) passes the first check, then fails
    onnxruntime's consistency check."""
    with pytest.raises(TconvError, match="output_padding"):
        O.conv_transpose(X4, W3, strides=[2], dilations=[4], output_padding=[3])
    with pytest.raises(Exception):
        _ort("conv_transpose", {"X": X4, "W": W3}, strides=[2], dilations=[4], output_padding=[3])


@pytest.mark.parametrize("key", sorted(set(REFUSAL_CASES) - _ORT_COMPUTES))
def test_onnxruntime_refuses_too(key):
    import types

    from oracles import onnx as oracle

    require("onnxruntime")
    call, _ = REFUSAL_CASES[key]

    class Recorder:
        def __getattr__(self, fn):
            def record(X, W, B=None, **attrs):
                arrays = {"X": X, "W": W} if B is None else {"X": X, "W": W, "B": B}
                return oracle.run_framework(Case("onnx", fn, arrays, attrs))
            return record

    with pytest.raises(Exception):
        types.FunctionType(call.__code__, {**call.__globals__, "O": Recorder()})()
