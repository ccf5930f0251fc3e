"""tconv.dialects.jax by hand: the seed case, kernel flips, layouts, and every REFUSALS entry."""

from __future__ import annotations

import numpy as np
import pytest

from oracles.harness import require
from tconv.dialects import jax as J
from tconv.errors import TconvError
from oracles.harness import assert_refuses


def _rng():
    return np.random.default_rng(1234)


def _lax():
    require("jax")
    from jax import lax

    return lax


# ------------------------------------------------------------------ the seed case


def test_seed_same_equals_keras_crop_0_1():
    """8x8 -> 16x16, k=3, s=2, 'SAME' with transpose_kernel=True: the full 17x17 scatter
    with its last row and column dropped (Keras' crop (0, 1))."""
    rng = _rng()
    x = rng.standard_normal((1, 8, 8, 2))
    w = rng.standard_normal((3, 3, 4, 2))  # HWIO slots; transpose_kernel: (k, out, in)
    y = J.conv_transpose(x, w, (2, 2), "SAME", transpose_kernel=True)
    assert y.shape == (1, 16, 16, 4)
    full = J.conv_transpose(x, w, (2, 2), "VALID", transpose_kernel=True)
    assert full.shape == (1, 17, 17, 4)
    np.testing.assert_allclose(y, full[:, :16, :16], atol=1e-12)
    # explicit pairs (2, 1) on the dilated input are the same crop (0, 1)
    np.testing.assert_allclose(
        J.conv_transpose(x, w, (2, 2), ((2, 1), (2, 1)), transpose_kernel=True), y, atol=1e-12)


def test_seed_against_jax():
    lax = _lax()
    rng = _rng()
    x = rng.standard_normal((1, 8, 8, 2))
    w = rng.standard_normal((3, 3, 4, 2))
    for tk, kernel in ((True, w), (False, w.swapaxes(2, 3))):  # HWIO: (k, in, out)
        want = np.asarray(lax.conv_transpose(x, kernel, (2, 2), "SAME", transpose_kernel=tk))
        np.testing.assert_allclose(J.conv_transpose(x, kernel, (2, 2), "SAME", transpose_kernel=tk),
                                   want, atol=1e-10)


def test_transpose_kernel_flips_and_swaps():
    """transpose_kernel=True equals False with the kernel flipped and I/O swapped."""
    rng = _rng()
    x = rng.standard_normal((2, 5, 3))
    w = rng.standard_normal((3, 4, 3))  # W, I-slot, O-slot
    flipped = np.flip(w, 0).swapaxes(1, 2)
    a = J.conv_transpose(x, w, (2,), "SAME", transpose_kernel=True)
    b = J.conv_transpose(x, flipped, (2,), "SAME")
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert not np.allclose(a, J.conv_transpose(x, w.swapaxes(1, 2), (2,), "SAME"))


def test_same_lower_puts_odd_pad_first():
    x = np.arange(1.0, 9.0).reshape(1, 1, 8)
    w = np.array([1.0, 10.0, 100.0]).reshape(1, 1, 3)
    upper = J.conv_general_dilated(x, w, (2,), "SAME")[0, 0]
    lower = J.conv_general_dilated(x, w, (2,), "SAME_LOWER")[0, 0]
    np.testing.assert_array_equal(upper, [321, 543, 765, 87])   # pads (0, 1)
    np.testing.assert_array_equal(lower, [210, 432, 654, 876])  # pads (1, 0)


def test_lhs_dilation_with_window_strides_against_jax():
    lax = _lax()
    rng = _rng()
    x = rng.standard_normal((2, 4, 5, 3))
    w = rng.standard_normal((6, 2, 3, 2))
    kw = dict(window_strides=(2, 3), padding=((1, -1), (2, 0)), lhs_dilation=(3, 2),
              rhs_dilation=(1, 2), feature_group_count=2)
    np.testing.assert_allclose(J.conv_general_dilated(x, w, **kw),
                               np.asarray(lax.conv_general_dilated(x, w, **kw)), atol=1e-10)


def test_dimension_numbers_letters_follow_the_rhs_spec():
    """Spatial dims are matched by letter; strides follow the kernel spec's letter order."""
    lax = _lax()
    rng = _rng()
    dn = ("NXCY", "YIOX", "CXNY")
    x = rng.standard_normal((2, 6, 3, 5))    # N X C Y
    w = rng.standard_normal((2, 3, 4, 3))    # Y I O X
    kw = dict(window_strides=(1, 2), padding="SAME", dimension_numbers=dn)
    want = np.asarray(lax.conv_general_dilated(x, w, **kw))
    np.testing.assert_allclose(J.conv_general_dilated(x, w, **kw), want, atol=1e-10)
    cdn = lax.conv_dimension_numbers(x.shape, w.shape, dn)
    np.testing.assert_allclose(J.conv_general_dilated(x, w, (1, 2), "SAME", dimension_numbers=tuple(cdn)),
                               want, atol=1e-10)


def test_batch_group_count_against_jax():
    lax = _lax()
    rng = _rng()
    x = rng.standard_normal((6, 2, 5))
    w = rng.standard_normal((6, 2, 3))
    want = np.asarray(lax.conv_general_dilated(x, w, (1,), "VALID", batch_group_count=3))
    np.testing.assert_allclose(J.conv_general_dilated(x, w, (1,), "VALID", batch_group_count=3),
                               want, atol=1e-10)


def test_use_consistent_padding_is_torch_padding():
    lax = _lax()
    rng = _rng()
    x = rng.standard_normal((1, 4, 2))
    w = rng.standard_normal((3, 3, 2))  # transpose_kernel: (k, out, in)
    kw = dict(strides=(2,), padding=((1, 0),), use_consistent_padding=True, transpose_kernel=True)
    np.testing.assert_allclose(J.conv_transpose(x, w, **kw),
                               np.asarray(lax.conv_transpose(x, w, **kw)), atol=1e-10)
    assert J.conv_transpose(x, w, **kw).shape == (1, 8, 3)  # torch p=1, output_padding=1


def test_empty_output_is_an_empty_array_as_in_jax():
    x = np.ones((1, 2, 2))
    w = np.ones((3, 2, 4))
    assert J.conv_general_dilated(x, w, (1,), "VALID").shape == (1, 3, 0)


def test_dtype_and_preferred_element_type():
    x = np.ones((1, 1, 4), np.float32)
    w = np.ones((1, 1, 2), np.float32)
    assert J.conv_general_dilated(x, w, (1,), "VALID").dtype == np.float32
    assert J.conv_general_dilated(x, w, (1,), "VALID", preferred_element_type=np.float64).dtype == np.float64


# ------------------------------------------------------------------ refusals

_X = np.ones((1, 2, 5))
_W = np.ones((3, 2, 2))

REFUSAL_CASES = {
    "ndim": (lambda: J.conv_general_dilated(_X, np.ones((3, 2, 2, 2)), (1,), "VALID"), "rhs"),
    "dimension_numbers": (lambda: J.conv_general_dilated(_X, _W, (1,), "VALID",
                                                         dimension_numbers=("NCW", "OIH", "NCW")),
                          "dimension_numbers"),
    "no_default": (lambda: J.conv_transpose(np.ones((1,) * 6), np.ones((1,) * 6), (1,) * 4, "SAME"),
                   "dimension_numbers"),
    "window_strides": (lambda: J.conv_general_dilated(_X, _W, (0,), "VALID"), "window_strides"),
    "dilation": (lambda: J.conv_general_dilated(_X, _W, (1,), "VALID", rhs_dilation=(0,)),
                 "rhs_dilation"),
    "padding_string": (lambda: J.conv_general_dilated(_X, _W, (1,), "FULL"), "padding"),
    "padding_lhs_dilation": (lambda: J.conv_general_dilated(_X, _W, (1,), "SAME", lhs_dilation=(2,)),
                             "padding"),
    "padding_pairs": (lambda: J.conv_general_dilated(_X, _W, (1,), [(0, 0), (0, 0)]), "padding"),
    "padding_mode": (lambda: J.conv_transpose(np.ones((1, 5, 2)), np.ones((2, 2, 3)), (2,), "SAME_LOWER",
                                              use_consistent_padding=True), "padding"),
    "negative_padding": (lambda: J.conv_general_dilated(_X, _W, (1,), [(-3, -3)]), "padding"),
    "feature_group_count": (lambda: J.conv_general_dilated(_X, _W, (1,), "VALID", feature_group_count=0),
                            "feature_group_count"),
    "batch_group_count": (lambda: J.conv_general_dilated(_X, _W, (1,), "VALID", batch_group_count=2),
                          "batch_group_count"),
    "channels": (lambda: J.conv_general_dilated(_X, np.ones((3, 1, 2)), (1,), "VALID"), "lhs"),
    "kernel_size": (lambda: J.conv_general_dilated(_X, np.ones((3, 2, 0)), (1,), "VALID"), "rhs"),
    "dtype": (lambda: J.conv_general_dilated(_X, _W.astype(np.float32), (1,), "VALID"), "rhs"),
    "preferred_element_type": (lambda: J.conv_general_dilated(_X, _W, (1,), "VALID",
                                                              preferred_element_type=np.float16),
                               "preferred_element_type"),
    "conv_transpose_rank": (lambda: J.conv_transpose(np.ones((1, 5, 2)), np.ones((2, 2)), (1,), "SAME"),
                            "lhs"),
}


def test_every_refusal_is_exercised():
    assert set(REFUSAL_CASES) == set(J.REFUSALS)


@pytest.mark.parametrize("key", sorted(REFUSAL_CASES))
def test_refusal(key):
    call, argument = REFUSAL_CASES[key]
    assert_refuses(call, argument, exact=True)


@pytest.mark.parametrize("key", sorted(REFUSAL_CASES))
def test_jax_refuses_too(key):
    """Each refusal mirrors one of JAX's (whatever exception type JAX uses)."""
    lax = _lax()
    call, _ = REFUSAL_CASES[key]
    with pytest.raises(Exception):
        _with_module(call, lax)


def _with_module(call, lax):
    """Re-run ``call`` with tconv's dialect replaced by jax.lax (the lambdas name ``J``)."""
    import types

    fn = types.FunctionType(call.__code__, {**call.__globals__, "J": lax})
    return np.asarray(fn())


def test_divergence_rank_and_integers():
    with pytest.raises(TconvError):
        J.conv_general_dilated(np.ones((1, 1, 2, 2, 2, 2)), np.ones((1, 1, 1, 1, 1, 1)), (1,) * 4, "VALID")
    with pytest.raises(TconvError):
        J.conv_general_dilated(np.ones((1, 1, 4), np.int32), np.ones((1, 1, 2), np.int32), (1,), "VALID")
