"""tconv.dialects.tf: hand-written cases, every declared refusal, and live TensorFlow checks."""

from __future__ import annotations

import numpy as np
import pytest

from oracles.harness import require
from tconv.dialects import tf as dialect
from tconv.errors import TconvError
from oracles.harness import assert_refuses

F = np.float32


def arr(*shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


X2 = arr(1, 5, 5, 4)          # NHWC
W2 = arr(3, 3, 4, 6)          # (kH, kW, in, out)
XT = arr(1, 4, 4, 6)          # transposed input, 6 channels
WT = arr(3, 3, 4, 6)          # (kH, kW, out, in)


# ------------------------------------------------------------------------ arithmetic


def test_transpose_same_crops_the_odd_cell_at_the_end():
    x = np.arange(4.0).reshape(1, 4, 1)
    w = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    np.testing.assert_array_equal(dialect.conv1d_transpose(x, w, [1, 8, 1], 2)[0, :, 0],
                                  [0, 0, 1, 10, 102, 20, 203, 30])
    np.testing.assert_array_equal(dialect.conv1d_transpose(x, w, [1, 7, 1], 2)[0, :, 0],
                                  [0, 1, 10, 102, 20, 203, 30])
    np.testing.assert_array_equal(dialect.conv1d_transpose(x, w, [1, 9, 1], 2, "VALID")[0, :, 0],
                                  [0, 0, 1, 10, 102, 20, 203, 30, 300])


def test_conv3d_same_keeps_a_negative_pad():
    """TF's Conv3D reads cell 1 of 3 with k=1, s=3 'SAME'; conv2d reads cell 0."""
    x = np.arange(3.0)
    y3 = dialect.conv3d(x.reshape(1, 3, 1, 1, 1), np.ones((1, 1, 1, 1, 1)), [1, 3, 1, 1, 1], "SAME")
    y2 = dialect.conv2d(x.reshape(1, 3, 1, 1), np.ones((1, 1, 1, 1)), [3, 1], "SAME")
    assert y3.ravel().tolist() == [1.0] and y2.ravel().tolist() == [0.0]


def test_grouped_conv_is_inferred_from_channels():
    x, w = arr(2, 5, 4), arr(3, 2, 6)  # 4 channels, filter depth 2: groups = 2
    y = dialect.conv1d(x, w, 1, "SAME")
    halves = [dialect.conv1d(x[..., 2 * g:2 * g + 2], w[..., 3 * g:3 * g + 3], 1, "SAME") for g in (0, 1)]
    np.testing.assert_allclose(y, np.concatenate(halves, -1))


def test_channels_first_is_the_transposed_computation():
    y_last = dialect.conv2d(X2, W2, 2, "SAME")
    y_first = dialect.conv2d(np.moveaxis(X2, -1, 1), W2, [1, 1, 2, 2], "SAME", data_format="NCHW")
    np.testing.assert_allclose(np.moveaxis(y_first, 1, -1), y_last)


def test_extra_batch_axes():
    y = dialect.conv2d(arr(2, 3, 5, 5, 4), W2, 1, "VALID")
    assert y.shape == (2, 3, 3, 3, 6)


def test_conv2d_transpose_takes_a_two_entry_output_shape():
    np.testing.assert_array_equal(dialect.conv2d_transpose(XT, WT, [8, 8], 2),
                                  dialect.conv2d_transpose(XT, WT, [1, 8, 8, 4], 2))


def test_conv1d_ignores_the_dummy_stride_entry():
    x, w = arr(1, 7, 2), arr(3, 2, 2)
    np.testing.assert_array_equal(dialect.conv1d(x, w, [3, 2, 1], "SAME"), dialect.conv1d(x, w, 2, "SAME"))


def test_dtype_is_preserved():
    assert dialect.conv2d(X2.astype(F), W2.astype(F), 1, "SAME").dtype == F


# ------------------------------------------------------------------------ refusals

R = dialect.REFUSALS
CASES = {
    "data_format": lambda: dialect.conv2d(X2, W2, 1, "SAME", data_format="NWC"),
    "input_rank": lambda: dialect.conv2d(X2[0], W2, 1, "SAME"),
    "filters_rank": lambda: dialect.conv2d(X2, W2[0], 1, "SAME"),
    "filters_empty": lambda: dialect.conv2d(X2, W2[:0], 1, "SAME"),
    "sequence_length": lambda: dialect.conv2d(X2, W2, [1, 2, 1], "SAME"),
    "sequence_type": lambda: dialect.conv2d(X2, W2, 2.0, "SAME"),
    "conv3d_list": lambda: dialect.conv3d(arr(1, 3, 3, 3, 1), arr(1, 1, 1, 1, 1), 1, "SAME"),
    "positive": lambda: dialect.conv2d(X2, W2, 0, "SAME"),
    "batch_depth": lambda: dialect.conv2d(X2, W2, [2, 1, 1, 1], "SAME"),
    "padding_string": lambda: dialect.conv2d(X2, W2, 1, "same"),
    "padding_explicit_rank": lambda: dialect.conv1d(arr(1, 5, 4), arr(3, 4, 2), 1, [[0, 0], [1, 1], [0, 0]]),
    "padding_explicit_convolution": lambda: dialect.convolution(X2, W2, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]),
    "padding_explicit_shape": lambda: dialect.conv2d(X2, W2, 1, [[1, 1], [1, 1]]),
    "padding_negative": lambda: dialect.conv2d(X2, W2, 1, [[0, 0], [-1, 1], [1, 1], [0, 0]]),
    "padding_batch_depth": lambda: dialect.conv2d(X2, W2, 1, [[1, 0], [1, 1], [1, 1], [0, 0]]),
    "channels": lambda: dialect.conv2d(X2, arr(3, 3, 3, 6), 1, "SAME"),
    "groups_out": lambda: dialect.conv2d(X2, arr(3, 3, 2, 5), 1, "SAME"),
    "output_size": lambda: dialect.conv2d(X2, arr(7, 7, 4, 6), 1, "VALID"),
    "dilated_strided": lambda: dialect.convolution(X2, W2, 2, "SAME", dilations=2),
    "output_shape_length": lambda: dialect.conv2d_transpose(XT, WT, [1, 8, 8], 2),
    "output_shape_batch": lambda: dialect.conv2d_transpose(XT, WT, [2, 8, 8, 4], 2),
    "output_shape_spatial": lambda: dialect.conv2d_transpose(XT, WT, [1, 9, 8, 4], 2),
    "transpose_channels": lambda: dialect.conv2d_transpose(XT[..., :5], WT, [1, 8, 8, 4], 2),
    "transpose_depth": lambda: dialect.conv2d_transpose(XT, WT, [1, 8, 8, 5], 2),
    "transpose_groups": lambda: dialect.conv2d_transpose(XT[..., :3], WT[..., :3], [1, 8, 8, 8], 2),
}


def test_every_refusal_is_pinned():
    assert set(CASES) == set(R)


@pytest.mark.parametrize("key", sorted(CASES))
def test_refusal(key):
    assert_refuses(CASES[key], R[key].argument.split("{")[0])


@pytest.mark.parametrize("call", [
    lambda: dialect.conv2d(arr(1, 2, 2, 4), W2, 1, "VALID"),          # empty output
    lambda: dialect.conv2d(X2.astype(F), W2, 1, "SAME"),             # mixed dtypes
    lambda: dialect.conv2d(np.ones((1, 5, 5, 4), int), np.ones((3, 3, 4, 6), int), 1, "SAME"),
])
def test_declared_divergences_refuse(call):
    with pytest.raises(TconvError):
        call()


# ------------------------------------------------------------------------ live TensorFlow


@pytest.fixture(scope="module")
def tf():
    return require("tensorflow")


def test_seed_case_values_match_tensorflow(tf):
    x, w = arr(1, 8, 8, 6, dtype=F), arr(3, 3, 4, 6, dtype=F)
    for size in (16, 15):
        expected = tf.nn.conv2d_transpose(x, w, [1, size, size, 4], 2).numpy()
        np.testing.assert_allclose(dialect.conv2d_transpose(x, w, [1, size, size, 4], 2), expected,
                                   rtol=1e-5, atol=1e-5)


def test_conv3d_negative_same_pad_matches_tensorflow(tf):
    x, w = arr(1, 7, 3, 6, 2), arr(1, 2, 1, 2, 3)
    strides = [1, 4, 3, 5, 1]
    np.testing.assert_allclose(dialect.conv3d(x, w, strides, "SAME"),
                               tf.nn.conv3d(x, w, strides, "SAME").numpy(), rtol=1e-12)


def test_explicit_padding_matches_tensorflow(tf):
    pad = [[0, 0], [2, 0], [1, 3], [0, 0]]
    np.testing.assert_allclose(dialect.conv2d(X2, W2, [2, 1], pad, dilations=[1, 2]),
                               tf.nn.conv2d(X2, W2, [2, 1], pad, dilations=[1, 2]).numpy(), rtol=1e-12)
    np.testing.assert_allclose(dialect.conv2d_transpose(XT, WT, [1, 7, 6, 4], [2, 2], [[0, 0], [1, 1], [2, 1], [0, 0]]),
                               tf.nn.conv2d_transpose(XT, WT, [1, 7, 6, 4], [2, 2],
                                                      [[0, 0], [1, 1], [2, 1], [0, 0]]).numpy(), rtol=1e-12)


def test_dilated_transpose_matches_the_zero_filled_kernel(tf):
    """TF's CPU refuses dilations in conv*_transpose (DIVERGENCES); the same kernel with
    zeros between its taps, undilated, is what a dilated kernel means."""
    w = arr(2, 2, 4, 6)
    wide = np.zeros((3, 3, 4, 6))
    wide[::2, ::2] = w
    expected = tf.nn.conv2d_transpose(XT, wide, [1, 6, 6, 4], 1, "VALID").numpy()
    np.testing.assert_allclose(dialect.conv2d_transpose(XT, w, [1, 6, 6, 4], 1, "VALID", dilations=2),
                               expected, rtol=1e-12)
