"""Keras oracle: random ``keras.layers.Conv*D`` / ``Conv*DTranspose`` layers, valid and invalid.

A case is ``fn`` (the layer class), ``kwargs`` (its constructor arguments) and the
arrays ``input``, ``kernel`` and, with ``use_bias``, ``bias``: the layer is built on
the input's shape, given the weights with ``set_weights`` and called on the input.
Keras 3 on the TensorFlow backend (tests/conftest.py sets KERAS_BACKEND).

Where TensorFlow's CPU kernel lacks a feature Keras asks of it (channels-first data,
dilated transposed layers), :func:`run_framework` gets the same numbers from Keras by an
equivalent route; see its docstring.
"""

from __future__ import annotations

import numpy as np

from oracles.harness import Case, channels_per_group
from tconv.dialects import keras as dialect

DIALECT = "keras"
FRAMEWORK = "keras"

CPU_LIMITATIONS = (
    "only supports the NHWC tensor format",
    "only supports NHWC",
    "only supports NDHWC",
    "do not yet support dilation rates larger than 1",
    "does not yet support dilation rates larger than 1",
)
ACTIVATIONS = [None, None, None, "linear", "relu", "sigmoid", "tanh", "softmax", "elu", "softplus"]


def _spell(rng, values):
    """An int where all entries agree (often), else a tuple or a list."""
    if len(set(values)) == 1 and rng.random() < 0.6:
        return int(values[0])
    return tuple(values) if rng.random() < 0.7 else list(values)


def random_case(rng: np.random.Generator) -> Case:
    rank = int(rng.integers(1, 4))
    transposed = bool(rng.random() < 0.55)
    fn = f"Conv{rank}DTranspose" if transposed else f"Conv{rank}D"
    channels_first = bool(rng.random() < 0.2)
    groups = 1 if transposed else int(rng.choice([1, 1, 1, 2, 3]))
    cin = groups * channels_per_group(rng)
    filters = groups * channels_per_group(rng)
    kmax, nmax = (3, 4) if rank == 3 else (4, 6)
    kernel = [int(v) for v in rng.integers(1, kmax + 1, rank)]
    strides = [int(v) for v in rng.integers(1, 4, rank)]
    dilation = [1] * rank
    if rng.random() < 0.3:
        dilation = [int(v) for v in rng.integers(1, 3, rank)]
        if rng.random() < 0.85:
            strides = [1] * rank  # Keras refuses strides > 1 with dilation_rate > 1
    spatial = [int(v) for v in rng.integers(1, nmax + 1, rank)]
    dtype = str(rng.choice(["float32", "float64"]))
    batch = int(rng.integers(1, 3))
    flaw = str(rng.choice(["none"] * 20 + ["channels_groups", "padding", "data_format",
                                           "output_padding", "stride0", "weights_shape",
                                           "filters0", "kernel_tuple"]))
    padding = str(rng.choice(["valid", "same", "same"] + (["causal"] if fn == "Conv1D" else [])))
    if rng.random() < 0.1:
        padding = padding.upper()  # Keras lower-cases it
    if flaw == "padding":
        padding = str(rng.choice(["full", "causal"]))
    kwargs: dict = {"filters": filters + (flaw == "filters0") * -filters,
                    "kernel_size": _spell(rng, kernel)}
    if max(strides) > 1 or rng.random() < 0.3:
        kwargs["strides"] = _spell(rng, strides) if flaw != "stride0" else 0
    elif flaw == "stride0":
        kwargs["strides"] = 0
    kwargs["padding"] = padding
    if transposed and (rng.random() < 0.6 or flaw == "output_padding"):
        if rng.random() < 0.2 and flaw != "output_padding":
            kwargs["output_padding"] = None
        else:
            pads = [int(rng.integers(0, s + (flaw == "output_padding"))) for s in strides]
            if flaw == "output_padding":
                pads[0] = strides[0]
            kwargs["output_padding"] = _spell(rng, pads)
    if channels_first or rng.random() < 0.2:
        kwargs["data_format"] = "channels_first" if channels_first else "channels_last"
    if flaw == "data_format":
        kwargs["data_format"] = "NHWC"
    if max(dilation) > 1 or rng.random() < 0.2:
        kwargs["dilation_rate"] = _spell(rng, dilation)
    if groups > 1 or (not transposed and rng.random() < 0.1):
        kwargs["groups"] = groups
    if flaw == "kernel_tuple":
        kwargs["kernel_size"] = tuple(kernel) + (2,)
    activation = ACTIVATIONS[int(rng.integers(0, len(ACTIVATIONS)))]
    if activation is not None:
        kwargs["activation"] = activation
    use_bias = bool(rng.random() < 0.7)
    if not use_bias:
        kwargs["use_bias"] = False
    if dtype == "float64" or rng.random() < 0.1:
        kwargs["dtype"] = dtype
    channels = cin + (flaw == "channels_groups")
    x_shape = (batch,) + ((channels,) + tuple(spatial) if channels_first else tuple(spatial) + (channels,))
    x = rng.standard_normal(x_shape).astype(dtype)
    if transposed:
        w_shape = tuple(kernel) + (filters, channels)
    else:
        w_shape = tuple(kernel) + (max(channels // groups, 1), filters)
    if flaw == "weights_shape":
        w_shape = w_shape[:-1] + (w_shape[-1] + 1,)
    arrays = {"input": x, "kernel": rng.standard_normal(w_shape).astype(dtype)}
    if use_bias:
        arrays["bias"] = rng.standard_normal(filters).astype(dtype)
    return Case(DIALECT, fn, arrays, kwargs)


def _weights(case: Case) -> list:
    return [case.arrays["kernel"]] + ([case.arrays["bias"]] if "bias" in case.arrays else [])


def run_tconv(case: Case):
    layer = getattr(dialect, case.fn)(**case.kwargs)
    layer.build(case.arrays["input"].shape)
    layer.set_weights(_weights(case))
    return layer(case.arrays["input"])


def run_framework(case: Case):
    return _run_layer(case.fn, dict(case.kwargs), case.arrays["input"], _weights(case))


def _run_layer(fn: str, kwargs: dict, x: np.ndarray, weights: list) -> np.ndarray:
    """Build, set weights, call -- with two detours around TensorFlow's CPU kernels:

    - channels-first data: the same layer channels-last on transposed data, then the
      activation on the channels-first result (softmax takes the last axis either way).
      Keras would run channels-first Conv1D/2D on a CPU kernel that refuses NCHW, and
      runs Conv3D and grouped layers through XLA, whose CPU build adds the bias along
      the wrong axis after an NCHW convolution (TF 2.21: ``ops.add(conv, bias.reshape(1,
      C, 1, 1))`` under ``jit_compile`` broadcasts along W) -- tconv's DIVERGENCES;
    - dilations in a transposed layer (the CPU kernel has none): the kernel with
      ``dilation - 1`` zeros between taps, undilated, which Keras sizes and crops alike.
    """
    import keras

    if kwargs.get("data_format") == "channels_first":
        activation = keras.activations.get(kwargs.pop("activation", None))
        kwargs["data_format"] = "channels_last"
        y = _run_layer(fn, kwargs, np.moveaxis(x, 1, -1), weights)
        return np.asarray(activation(np.moveaxis(y, -1, 1)))
    layer = getattr(keras.layers, fn)(**kwargs)
    layer.build(x.shape)
    layer.set_weights(weights)
    try:
        return np.asarray(layer(x))
    except Exception as exc:
        if not any(text in str(exc) for text in CPU_LIMITATIONS):
            raise
    rank = len(layer.kernel_size)
    d = layer.dilation_rate
    span = tuple(di * (k - 1) + 1 for di, k in zip(d, layer.kernel_size))
    kernel = np.zeros(span + weights[0].shape[-2:], weights[0].dtype)
    kernel[tuple(slice(None, None, di) for di in d)] = weights[0]
    kwargs = {**kwargs, "kernel_size": span, "dilation_rate": (1,) * rank}
    return _run_layer(fn, kwargs, x, [kernel] + weights[1:])
