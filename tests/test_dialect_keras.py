"""tconv.dialects.keras: the seed case, output_padding None vs 0, every declared refusal,
and live Keras checks (Keras 3 on the TensorFlow backend, set by tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from oracles.harness import require
from tconv.dialects import keras as dialect
from tconv.errors import TconvError
from oracles.harness import assert_refuses


def arr(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def layer_with(cls, x, *args, seed=1, **kwargs):
    """A built tconv layer with reproducible weights, and those weights."""
    layer = cls(*args, **kwargs)
    layer.build(x.shape)
    weights = [arr(*w.shape, dtype=w.dtype, seed=seed + i) for i, w in enumerate(layer.get_weights())]
    layer.set_weights(weights)
    return layer, weights


def live(keras, name, x, weights, *args, **kwargs):
    layer = getattr(keras.layers, name)(*args, **kwargs)
    layer.build(x.shape)
    layer.set_weights(weights)
    return np.asarray(layer(x))


# ------------------------------------------------------------------------ the seed case


def test_seed_case_shapes():
    layer = dialect.Conv2DTranspose(512, 3, strides=2, padding="same")
    assert layer.get_weights() == []
    x = arr(1, 8, 8, 1024)
    y = layer(x)
    assert y.shape == (1, 16, 16, 512) and y.dtype == np.float32
    assert layer.kernel.shape == (3, 3, 512, 1024) and layer.bias.shape == (512,)
    assert [w.shape for w in layer.get_weights()] == [(3, 3, 512, 1024), (512,)]
    # glorot_uniform on the kernel, zeros on the bias; the draw is rounded to float32, and
    # rounding is monotone, so the bound is the float32-rounded limit (not the float64 one)
    limit = np.float32(np.sqrt(6 / (9 * (512 + 1024))))
    assert np.abs(layer.kernel).max() <= limit and not layer.bias.any()


def test_seed_case_keeps_the_first_cells_of_the_full_scatter():
    """'same', stride 2, k=3 on 8: the 17-cell full scatter with its last cell cut."""
    x = arr(1, 8, 8, 4)
    layer, _ = layer_with(dialect.Conv2DTranspose, x, 3, 3, strides=2, padding="same", use_bias=False)
    full, _ = layer_with(dialect.Conv2DTranspose, x, 3, 3, strides=2, padding="valid", use_bias=False)
    np.testing.assert_allclose(layer(x), full(x)[:, :16, :16])


def test_a_layer_called_on_several_shapes_plans_each():
    """A layer keeps the Geometry of each input shape it meets (a network calls it on one
    shape again and again): another shape gets its own, a refused one is refused each time
    (nothing kept), and arguments changed after a call are planned afresh."""
    layer = dialect.Conv2D(3, 3, padding="valid", use_bias=False)
    small, large = arr(1, 2, 2, 4), arr(1, 9, 7, 4)
    assert layer(large).shape == (1, 7, 5, 3)
    for _ in range(2):
        with pytest.raises(TconvError, match="too small"):
            layer(small)
    assert layer(arr(1, 5, 6, 4)).shape == (1, 3, 4, 3) and layer(large).shape == (1, 7, 5, 3)
    fresh = dialect.Conv2D(3, 3, padding="valid", use_bias=False)
    fresh.build(large.shape)
    fresh.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(large), fresh(large))
    layer.strides = (2, 2)
    assert layer(large).shape == (1, 4, 3, 3)


def test_output_padding_none_is_not_zero():
    x = arr(1, 8, 8, 2)
    shapes = {op: dialect.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=op)
              .compute_output_shape(x.shape) for op in (None, 0, 1)}
    assert shapes == {None: (1, 16, 16, 3), 0: (1, 15, 15, 3), 1: (1, 16, 16, 3)}
    assert dialect.Conv2DTranspose(3, 3, strides=2, padding="valid").compute_output_shape(x.shape) \
        == (1, 17, 17, 3)


def test_softmax_takes_the_last_axis_even_channels_first():
    x = arr(1, 2, 5)
    layer, _ = layer_with(dialect.Conv1D, x, 3, 2, data_format="channels_first", activation="softmax")
    np.testing.assert_allclose(layer(x).sum(axis=-1), 1, rtol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "relu6", "tanh", "linear", "exponential", "sigmoid", "elu",
                                        lambda x: x * 2])
def test_activations_write_over_the_layers_own_output(activation):
    """The activations that can (relu, relu6, tanh, linear, exponential) write over the
    convolution's own new output instead of making another array of its size; the others,
    and a callable of the user's, run as they are. The values are those of the activation
    applied to the bare convolution, and the input is never written."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64, 64, 3)).astype(np.float32)
    keep = x.copy()
    layer = dialect.Conv2D(32, 3, padding="same", activation=activation)
    y = layer(x)
    bare = dialect.Conv2D(32, 3, padding="same")
    bare.build(x.shape)
    bare.kernel, bare.bias = layer.kernel, layer.bias
    fn = dialect._ACTIVATIONS[activation] if isinstance(activation, str) else activation
    np.testing.assert_array_equal(y, np.asarray(fn(bare(x)), np.float32))
    np.testing.assert_array_equal(x, keep)
    tracemalloc.start()
    layer(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    in_place = any(fn is f for f in dialect._IN_PLACE)
    assert in_place == (activation in ("relu", "relu6", "tanh", "linear", "exponential"))
    assert (peak < 2 * y.nbytes) == in_place, (peak, y.nbytes)  # the output, and a second one or not


def test_an_activation_that_is_not_hashable_still_runs():
    """A user's callable activation need not be hashable (a class with ``__eq__`` and no
    ``__hash__``): the in-place activations are found by identity, not by a set lookup."""
    class Twice:
        def __eq__(self, other):
            return False

        def __call__(self, x):
            return x * 2

    x = arr(1, 5, 5, 2)
    layer = dialect.Conv2D(4, 3, activation=Twice())
    bare = dialect.Conv2D(4, 3)
    bare.build(x.shape)
    y = layer(x)
    bare.kernel, bare.bias = layer.kernel, layer.bias
    np.testing.assert_array_equal(y, bare(x) * 2)


def test_dtype_casts_inputs_and_weights():
    layer = dialect.Conv1D(2, 3, dtype="float64")
    y = layer(arr(1, 5, 2))
    assert y.dtype == np.float64 and layer.kernel.dtype == np.float64


# ------------------------------------------------------------------------ refusals

R = dialect.REFUSALS
X = arr(1, 5, 5, 4)


def _set(weights, use_bias=True):
    layer = dialect.Conv2D(6, 3, use_bias=use_bias)
    layer.build(X.shape)
    layer.set_weights(weights)


CASES = {
    "filters": lambda: dialect.Conv2D(0, 3),
    "tuple": lambda: dialect.Conv2D(4, (3, 3, 3)),
    "groups": lambda: dialect.Conv2D(4, 3, groups=0),
    "filters_groups": lambda: dialect.Conv2D(4, 3, groups=3),
    "channels_groups": lambda: dialect.Conv2D(6, 3, groups=3).build(X.shape),
    "padding": lambda: dialect.Conv2D(4, 3, padding="causal"),
    "data_format": lambda: dialect.Conv2D(4, 3, data_format="NHWC"),
    "strides_dilation": lambda: dialect.Conv2DTranspose(4, 3, strides=2, dilation_rate=2),
    "output_padding": lambda: dialect.Conv2DTranspose(4, 3, strides=2, output_padding=2),
    "activation": lambda: dialect.Conv2D(4, 3, activation="foo"),
    "initializer": lambda: dialect.Conv2D(4, 3, kernel_initializer="foo"),
    "kwargs": lambda: dialect.Conv2D(4, 3, output_padding=1),
    "dtype": lambda: dialect.Conv2D(4, 3, dtype="int32"),
    "input_rank": lambda: dialect.Conv2D(4, 3)(X[0]),
    "input_channels": lambda: (lambda l: (l.build(X.shape), l(X[..., :3])))(dialect.Conv2D(4, 3)),
    "channels_unknown": lambda: dialect.Conv2D(4, 3).build((None, 5, 5, None)),
    "output_size": lambda: dialect.Conv2D(4, 7)(X),
    "transpose_size": lambda: dialect.Conv1DTranspose(3, 2, strides=2, padding="same",
                                                      output_padding=0)(arr(1, 5, 4)),
    "weights_count": lambda: _set([np.zeros((3, 3, 4, 6))]),
    "weights_shape": lambda: _set([np.zeros((3, 3, 4, 5)), np.zeros(6)]),
}


def test_every_refusal_is_pinned():
    assert set(CASES) == set(R)


@pytest.mark.parametrize("key", sorted(CASES))
def test_refusal(key):
    assert_refuses(CASES[key], R[key].argument.split("{")[0])


# ------------------------------------------------------------------------ live Keras


@pytest.fixture(scope="module")
def keras():
    require("tensorflow")
    return require("keras")


def test_seed_case_matches_keras_on_fewer_channels(keras):
    x = arr(1, 8, 8, 16)
    layer, weights = layer_with(dialect.Conv2DTranspose, x, 8, 3, strides=2, padding="same")
    expected = live(keras, "Conv2DTranspose", x, weights, 8, 3, strides=2, padding="same")
    assert expected.shape == (1, 16, 16, 8)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("output_padding", [None, 0, 1])
def test_output_padding_matches_keras(keras, output_padding):
    x = arr(2, 5, 6, 3)
    kwargs = dict(strides=2, padding="same", output_padding=output_padding, activation="relu")
    layer, weights = layer_with(dialect.Conv2DTranspose, x, 4, 3, **kwargs)
    expected = live(keras, "Conv2DTranspose", x, weights, 4, 3, **kwargs)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, kwargs", [
    ("Conv1D", dict(padding="causal", dilation_rate=2)),
    ("Conv2D", dict(strides=2, padding="same", groups=2)),
    ("Conv3D", dict(strides=(3, 2, 1), padding="same")),   # a kernel shorter than the stride
    ("Conv3DTranspose", dict(strides=(2, 1, 2), padding="valid", output_padding=(1, 0, 0))),
])
def test_layers_match_keras(keras, name, kwargs):
    rank = int(name[4])
    x = arr(2, *(5,) * rank, 4)
    kernel = 1 if name == "Conv3D" else 3
    layer, weights = layer_with(getattr(dialect, name), x, 4, kernel, **kwargs)
    expected = live(keras, name, x, weights, 4, kernel, **kwargs)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)
