"""Keras 3's dialect: ``keras.layers.Conv{1,2,3}D`` and ``Conv{1,2,3}DTranspose`` on NumPy arrays.

Same constructor arguments, defaults and weight layouts as Keras 3 (checked against
keras 3.15 on the TensorFlow backend):

- data ``(batch, *spatial, channels)`` (``data_format='channels_last'``, the default) or
  ``(batch, channels, *spatial)``;
- ``ConvND`` kernel ``(*kernel_size, in_channels/groups, filters)``;
- ``ConvNDTranspose`` kernel ``(*kernel_size, filters, in_channels)`` (no ``groups``);
- ``padding`` ``'valid'`` or ``'same'`` (any case), and ``'causal'`` for ``Conv1D``;
- a transposed layer's output length is Keras' own rule
  (:func:`~tconv.geometry.keras_transpose_length`): 'same' without ``output_padding``
  gives ``input * strides``, but ``output_padding=0`` gives
  ``(input-1)*strides + k_eff % 2`` -- 0 is not None. TensorFlow then crops its 'SAME'
  way (the odd cell at the end) and refuses lengths its check rejects.

The layer works as a Keras layer does: ``build(input_shape)`` creates ``kernel`` and
``bias`` (Glorot-uniform and zeros, drawn with NumPy), ``set_weights``/``get_weights``
exchange them, and calling the layer on an array returns an array of the layer's
``dtype`` (float32 unless ``dtype=`` says otherwise; inputs are cast, as Keras does).

The seed case, ``Conv2DTranspose(512, 3, strides=2, padding='same')`` on ``8x8x1024``:

>>> import numpy as np
>>> layer = Conv2DTranspose(512, 3, strides=2, padding="same")
>>> layer.build((1, 8, 8, 1024))
>>> layer.kernel.shape, layer.compute_output_shape((1, 8, 8, 1024))
((3, 3, 512, 1024), (1, 16, 16, 512))
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from tconv import _args, ops
from tconv.dialects._common import Divergence, Refusal, as_array, refuse
from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, Geometry, causal_pads, conv_output_length,
                            dilated_kernel, keras_transpose_length, same_pads,
                            tf_conv3d_same_pads, tf_transpose_crops)

__all__ = ["Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"]

#: the conventions table of the docs is generated from these entries (docs/conventions.py)
CONVENTIONS = {
    "framework": "Keras 3 (keras.layers, TensorFlow backend)",
    "data_format": "channels_last (N, *spatial, C) by default",
    "conv_kernel": "(*k, in/groups, filters)",
    "transpose_kernel": "(*k, filters, in)",
    "transpose_crop": "TensorFlow's 'SAME'/'VALID' crop of the length Keras picks",
    "same": "'same': output n*stride (output_padding=None), TF's crop: the odd cell at the end",
    "output_size": "`output_padding < strides`; None and 0 differ ('same', odd k: 2n vs 2n-1)",
}


_T = "tests/test_dialect_keras.py"
_BASE = "keras/src/layers/convolutional/base_conv.py"
_BASE_T = "keras/src/layers/convolutional/base_conv_transpose.py"
_UTILS = "keras/src/utils/argument_validation.py standardize_tuple"
#: what Keras refuses, in its own words (keras 3.15, TensorFlow backend, checked live)
REFUSALS = {
    "filters": Refusal("filters", "Invalid value for argument `filters`. Expected a strictly "
                       "positive integer", _BASE, _T),
    "tuple": Refusal("{name}", "must be a tuple of {rank} integers, each {rule}", _UTILS, _T),
    "groups": Refusal("groups", "The number of groups must be a positive integer", _BASE, _T),
    "filters_groups": Refusal("filters", "The number of filters must be evenly divisible by the "
                              "number of groups (groups={groups})", _BASE, _T),
    "channels_groups": Refusal("input_shape", "The number of input channels ({channels}) must be "
                               "evenly divisible by the number of groups ({groups})", _BASE, _T),
    "padding": Refusal("padding", "must be one of {valid}",
                       "keras/src/backend/common/backend_utils.py standardize_padding", _T),
    "data_format": Refusal("data_format", "must be one of {{'channels_first', 'channels_last'}}",
                           "keras/src/backend/config.py standardize_data_format", _T),
    "strides_dilation": Refusal("strides", "`strides > 1` not supported in conjunction with "
                                "`dilation_rate > 1` (dilation_rate={dilation})",
                                f"{_BASE}, {_BASE_T}", _T),
    "output_padding": Refusal("output_padding", "must be strictly less than `strides` for all "
                              "dimensions (strides={strides})", _BASE_T, _T),
    "activation": Refusal("activation", "Could not interpret activation function identifier "
                          "(tconv knows {valid}, or a callable)", "keras/src/activations", _T),
    "initializer": Refusal("{name}", "Could not interpret initializer identifier (tconv knows "
                           "{valid}, or a callable (shape, dtype) -> array)",
                           "keras/src/initializers", _T),
    "kwargs": Refusal("kwargs", "Unrecognized keyword arguments passed to {layer}",
                      "keras/src/layers/layer.py", _T),
    "dtype": Refusal("dtype", "must be a floating dtype ('float16', 'float32', 'float64')",
                     "keras/src/dtype_policies", _T),
    "input_rank": Refusal("input", "is incompatible with the layer: expected ndim={want}",
                          "keras/src/layers/input_spec.py", _T),
    "input_channels": Refusal("input", "is incompatible with the layer: expected axis {axis} of "
                              "input shape to have value {want}", "keras/src/layers/input_spec.py", _T),
    "channels_unknown": Refusal("input_shape", "must give the channel dimension (axis {axis})",
                                _BASE, _T),
    "output_size": Refusal("input", "is too small: Computed output size would be zero or "
                           "negative ({sizes})", "keras/src/ops/operation_utils.py "
                           "compute_conv_output_shape", _T),
    "transpose_size": Refusal("output_padding", "{rule}", "TensorFlow's check of the length Keras "
                              "asks for: conv_grad_shape_utils.cc 'Size of out_backprop doesn't "
                              "match computed'", _T),
    "weights_count": Refusal("weights", "You called `set_weights(weights)` with a weight list "
                             "of length {got}, but the layer was expecting {want} weights",
                             "keras/src/layers/layer.py set_weights", _T),
    "weights_shape": Refusal("weights", "weight shape {want} is not compatible with provided "
                             "weight shape {got}", "keras/src/layers/layer.py set_weights", _T),
}
_XLA = "what Keras computes where XLA runs it (tf.function(jit_compile=True)) and on GPU"
DIVERGENCES = {
    "cpu_channels_first": Divergence(
        "data_format='channels_first' for Conv1D/Conv2D (ungrouped) and every ConvNDTranspose",
        "TensorFlow's CPU kernel: 'The Conv2D op currently only supports the NHWC tensor "
        "format on the CPU' (Keras routes only Conv3D and grouped convolutions through XLA)",
        f"computes it: {_XLA}", "tests/oracles/keras.py::run_framework"),
    "xla_channels_first": Divergence(
        "data_format='channels_first' for Conv3D and grouped layers, which Keras runs "
        "through XLA",
        "XLA's CPU build (TF 2.21) adds the bias along the last spatial axis after an NCHW "
        "convolution (where the shapes broadcast), and clamps a negative Conv3D 'same' pad "
        "that the channels-last kernel keeps",
        "computes channels-first data exactly as channels-last data, transposed: the layout "
        "never changes the numbers", "tests/oracles/keras.py::run_framework"),
    "cpu_transpose_dilation": Divergence(
        "ConvNDTranspose with dilation_rate > 1",
        "'Current CPU implementations do not yet support dilation rates larger than 1'",
        f"computes it: {_XLA}", "tests/oracles/keras.py::run_framework"),
}
#: reproduced, not diverging: Keras' TensorFlow backend runs grouped Conv3D under XLA,
#: which clamps a negative 'same' pad at zero, and ungrouped Conv3D on the CPU kernel,
#: which does not (geometry.tf_conv3d_same_pads).

_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x, out=None: x,
    "relu": lambda x, out=None: np.maximum(x, 0, out=out),
    "relu6": lambda x, out=None: np.clip(x, 0, 6, out=out),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softplus": lambda x: np.logaddexp(x, 0),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "exponential": np.exp,
    "softmax": lambda x: _softmax(x),
}


#: activations that can write their result into their argument, ``fn(y, out=y)``: a
#: convolution layer's output is its own (new from the kernels), and writing over it saves
#: an array of the output's size. On this machine a new 1.5 MB array (96x128x32 float32)
#: can cost about a millisecond of page faults: the course U-Net's first layer took 2.2 ms
#: with its ReLU out of place (736 minor faults) against 1.1 in place, its convolution alone 1.0
#: (matched by identity: a user's callable need not be hashable)
_IN_PLACE = tuple(_ACTIVATIONS[name] for name in ("linear", "relu", "relu6", "tanh", "exponential"))


def _softmax(x: np.ndarray) -> np.ndarray:
    # keras.activations.softmax: always the last axis, whatever the data_format
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _glorot_uniform(shape, dtype, rng):
    # keras compute_fans: receptive field = prod(kernel_size); fan_in/out = axes -2/-1
    receptive = math.prod(shape[:-2])
    limit = math.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def _he_uniform(shape, dtype, rng):
    limit = math.sqrt(6.0 / (math.prod(shape[:-2]) * shape[-2]))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def _lecun_uniform(shape, dtype, rng):
    limit = math.sqrt(3.0 / (math.prod(shape[:-2]) * shape[-2]))
    return rng.uniform(-limit, limit, shape).astype(dtype)


_INITIALIZERS = {
    "glorot_uniform": _glorot_uniform,
    "he_uniform": _he_uniform,
    "lecun_uniform": _lecun_uniform,
    "zeros": lambda shape, dtype, rng: np.zeros(shape, dtype),
    "ones": lambda shape, dtype, rng: np.ones(shape, dtype),
}
#: Layer keyword arguments Keras accepts besides the convolution's own
_LAYER_KWARGS = {"name", "dtype", "trainable", "autocast", "input_shape", "input_dim",
                 "batch_input_shape", "batch_size"}


class _BaseConv:
    """Shared by every layer: argument validation, weights, and the call."""

    rank: int
    transposed: bool

    def _setup(self, filters, kernel_size, strides, padding, data_format, dilation_rate, groups,
               output_padding, activation, use_bias, kernel_initializer, bias_initializer,
               kwargs) -> None:
        name = type(self).__name__
        self._context = f"keras.layers.{name}"
        unknown = sorted(set(kwargs) - _LAYER_KWARGS)
        if unknown:
            raise refuse(REFUSALS, "kwargs", {k: kwargs[k] for k in unknown}, self._context,
                         layer=name)
        rank = self.rank
        if not _args.is_int(filters) or filters <= 0:
            raise refuse(REFUSALS, "filters", filters, self._context)
        self.filters = int(filters)
        self.groups = groups
        if not self.transposed:
            if not _args.is_int(groups) or groups <= 0:
                raise refuse(REFUSALS, "groups", groups, self._context)
            if self.filters % groups:
                raise refuse(REFUSALS, "filters_groups", filters, self._context, groups=groups)
            self.groups = int(groups)
        self.kernel_size = self._tuple("kernel_size", kernel_size, positive=True)
        self.strides = self._tuple("strides", strides, positive=True)
        self.dilation_rate = self._tuple("dilation_rate", dilation_rate, positive=True)
        # Keras lower-cases padding and data_format before checking them
        valid = {"valid", "same"} | ({"causal"} if rank == 1 and not self.transposed else set())
        if not isinstance(padding, str) or padding.lower() not in valid:
            raise refuse(REFUSALS, "padding", padding, self._context, valid=sorted(valid))
        self.padding = padding.lower()
        data_format = "channels_last" if data_format is None else data_format
        if not isinstance(data_format, str) or \
                data_format.lower() not in ("channels_first", "channels_last"):
            raise refuse(REFUSALS, "data_format", data_format, self._context)
        self.data_format = data_format.lower()
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise refuse(REFUSALS, "strides_dilation", strides, self._context,
                         dilation=self.dilation_rate)
        self.output_padding = None
        if self.transposed and output_padding is not None:
            self.output_padding = self._tuple("output_padding", output_padding, positive=False)
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise refuse(REFUSALS, "output_padding", output_padding, self._context,
                             strides=self.strides)
        self.activation = self._activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = self._initializer("kernel_initializer", kernel_initializer)
        self.bias_initializer = self._initializer("bias_initializer", bias_initializer)
        dtype = kwargs.get("dtype")
        try:
            self.dtype = np.dtype("float32" if dtype is None else dtype)
        except TypeError:
            raise refuse(REFUSALS, "dtype", dtype, self._context) from None
        if self.dtype.kind != "f":
            raise refuse(REFUSALS, "dtype", dtype, self._context)
        self.name = kwargs.get("name")
        self.kernel: np.ndarray | None = None
        self.bias: np.ndarray | None = None
        self.built = False
        self._channels: int | None = None

    # ------------------------------------------------------------- argument helpers

    def _tuple(self, name: str, value: Any, *, positive: bool) -> tuple[int, ...]:
        rule = "> 0" if positive else ">= 0"
        items = (value,) * self.rank if _args.is_int(value) else value
        if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)) \
                or len(items) != self.rank or not all(_args.is_int(v) for v in items) \
                or any(v < (1 if positive else 0) for v in items):
            raise refuse(REFUSALS, "tuple", value, self._context, name=name, rank=self.rank,
                         rule=rule)
        return tuple(int(v) for v in items)

    def _activation(self, activation: Any) -> Callable[[np.ndarray], np.ndarray]:
        if activation is None:
            return _ACTIVATIONS["linear"]
        if callable(activation):
            return activation
        if isinstance(activation, str) and activation in _ACTIVATIONS:
            return _ACTIVATIONS[activation]
        raise refuse(REFUSALS, "activation", activation, self._context, valid=sorted(_ACTIVATIONS))

    def _initializer(self, name: str, value: Any):
        if callable(value):
            return lambda shape, dtype, rng: np.asarray(value(shape, dtype), dtype)
        if isinstance(value, str) and value in _INITIALIZERS:
            return _INITIALIZERS[value]
        raise refuse(REFUSALS, "initializer", value, self._context, name=name,
                     valid=sorted(_INITIALIZERS))

    @property
    def _channel_axis(self) -> int:
        return 1 if self.data_format == "channels_first" else -1

    # ------------------------------------------------------------------- weights

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        if self.transposed:
            return self.kernel_size + (self.filters, channels)
        return self.kernel_size + (channels // self.groups, self.filters)

    def build(self, input_shape) -> None:
        """Create ``kernel`` (and ``bias``) for inputs of ``input_shape`` (batch axis included;
        spatial entries may be None)."""
        shape = tuple(input_shape)
        if len(shape) != self.rank + 2:
            raise refuse(REFUSALS, "input_rank", shape, self._context, want=self.rank + 2)
        channels = shape[self._channel_axis]
        if not _args.is_int(channels) or channels < 1:
            raise refuse(REFUSALS, "channels_unknown", shape, self._context, axis=self._channel_axis)
        channels = int(channels)
        if not self.transposed and channels % self.groups:
            raise refuse(REFUSALS, "channels_groups", shape, self._context, channels=channels,
                         groups=self.groups)
        kernel_shape = self._kernel_shape(channels)
        from tconv import budget  # initializers draw in float64, then cast

        budget.check(math.prod(kernel_shape) * (8 + self.dtype.itemsize), "kernel", kernel_shape,
                     f"(the weights of {type(self).__name__} with filters={self.filters} on "
                     f"{channels} input channels)", context=self._context)
        rng = np.random.default_rng()
        self.kernel = self.kernel_initializer(kernel_shape, self.dtype, rng)
        self.bias = self.bias_initializer((self.filters,), self.dtype, rng) if self.use_bias else None
        self._channels = channels
        self.built = True

    def get_weights(self) -> list[np.ndarray]:
        """``[kernel, bias]`` (or ``[kernel]`` without bias); ``[]`` before ``build``."""
        if not self.built:
            return []
        return [self.kernel.copy()] + ([self.bias.copy()] if self.use_bias else [])

    def set_weights(self, weights) -> None:
        """Replace ``kernel`` (and ``bias``); shapes must match, values are cast to ``dtype``."""
        current = self.get_weights()
        if isinstance(weights, (str, bytes, np.ndarray)) or not isinstance(weights, (list, tuple)):
            raise TconvError("weights", weights, "must be a list of arrays ([kernel, bias])",
                             context=self._context)
        weights = list(weights)
        if not current and not weights:  # an unbuilt layer has no weights to set (as Keras)
            return
        if len(weights) != len(current):
            raise refuse(REFUSALS, "weights_count", weights, self._context, got=len(weights),
                         want=len(current))
        arrays = [as_array(w, "weights", self._context) for w in weights]
        for old, new in zip(current, arrays):
            if old.shape != new.shape:
                raise refuse(REFUSALS, "weights_shape", new, self._context, want=old.shape,
                             got=new.shape)
        self.kernel = arrays[0].astype(self.dtype)
        if self.use_bias:
            self.bias = arrays[1].astype(self.dtype)

    # ---------------------------------------------------------------------- call

    def _geometry(self, spatial: tuple[int, ...], channels: int) -> Geometry:
        """The layer's Geometry on an input of ``spatial`` sizes and ``channels``
        (:func:`_plan`, planned once per input shape and arguments)."""
        return _plan(self._context, int(self.transposed), spatial, channels, self.filters,  # a bool is not plain
                     self.kernel_size, self.strides, self.dilation_rate, self.padding, self.output_padding,
                     self.groups)

    def compute_output_shape(self, input_shape) -> tuple:
        """The output shape for ``input_shape`` (all entries known)."""
        shape = tuple(input_shape)
        if len(shape) != self.rank + 2:
            raise refuse(REFUSALS, "input_rank", shape, self._context, want=self.rank + 2)
        first = self.data_format == "channels_first"
        spatial = shape[2:] if first else shape[1:-1]
        out = self._geometry(tuple(int(n) for n in spatial), int(shape[self._channel_axis]))
        size = out.output_spatial
        return (shape[0], self.filters) + size if first else (shape[0],) + size + (self.filters,)

    def __call__(self, inputs) -> np.ndarray:
        x = as_array(inputs, "input", self._context)
        if x.ndim != self.rank + 2:
            raise refuse(REFUSALS, "input_rank", x, self._context, want=self.rank + 2)
        if not self.built:
            self.build(x.shape)
        channels = x.shape[self._channel_axis]
        if channels != self._channels:
            raise refuse(REFUSALS, "input_channels", x, self._context, axis=self._channel_axis,
                         want=self._channels)
        x = x.astype(self.dtype, copy=False)  # Keras casts inputs to the layer's dtype
        first = self.data_format == "channels_first"
        geometry = self._geometry(tuple(x.shape[2:] if first else x.shape[1:-1]), channels)
        y = ops.run(geometry, x, self.kernel, self.bias,
                    data_format="channels_first" if first else "channels_last")
        if any(self.activation is fn for fn in _IN_PLACE) and y.dtype == self.dtype:
            return self.activation(y, out=y)  # y is new: the activation writes over it
        return np.asarray(self.activation(y), dtype=self.dtype)

    def __repr__(self) -> str:
        args = [repr(self.filters), repr(self.kernel_size)]
        for key in ("strides", "padding", "dilation_rate", "data_format"):
            args.append(f"{key}={getattr(self, key)!r}")
        if self.transposed:
            args.append(f"output_padding={self.output_padding!r}")
        elif self.groups != 1:
            args.append(f"groups={self.groups!r}")
        return f"keras.layers.{type(self).__name__}({', '.join(args)})"


@_args.memo_plain
def _plan(context: str, transposed: int, spatial: tuple[int, ...], channels: int, filters: int,
          kernel_size: tuple[int, ...], strides: tuple[int, ...], dilation_rate: tuple[int, ...],
          padding: str, output_padding: tuple[int, ...] | None, groups: int) -> Geometry:
    """A Keras convolution layer's Geometry on an input of ``spatial`` sizes and
    ``channels``, from the layer's arguments; refused as Keras refuses, in ``context``.
    Planned once per input shape and arguments (:func:`tconv._args.memo_plain`): a network
    calls each layer on one shape again and again, and building and checking a Geometry
    took about 40 us a call (a kept one also keeps its cached properties)."""
    rank = len(kernel_size)
    if transposed:
        axes = []
        out_pad = output_padding or (None,) * rank
        for i, (n, k, s, d, op) in enumerate(zip(spatial, kernel_size, strides, dilation_rate, out_pad)):
            length = keras_transpose_length(n, k, s, d, padding, op)
            try:  # Keras hands that length to tf.nn.conv_transpose, which checks it
                lo, hi = tf_transpose_crops(n, k, s, d, length, padding.upper())
            except TconvError as exc:
                raise refuse(REFUSALS, "transpose_size", output_padding, context,
                             rule=f"gives length {length} on axis {i}, which TensorFlow "
                                  f"refuses: {exc.rule}") from None
            axes.append(AxisGeometry.transposed(n, k, s, d, lo, hi))
        return Geometry(tuple(axes), filters, channels, 1, transposed=True)
    # Keras' TF backend runs grouped Conv3D under XLA, which clamps a negative 'same'
    # total at zero; ungrouped Conv3D keeps it (tf_conv3d_same_pads). Channels-first
    # data are the channels-last computation transposed (DIVERGENCES).
    cpu_conv3d = rank == 3 and groups == 1
    same = tf_conv3d_same_pads if cpu_conv3d else same_pads
    pads = []
    for n, k, s, d in zip(spatial, kernel_size, strides, dilation_rate):
        pads.append((0, 0) if padding == "valid" else causal_pads(k, d)
                    if padding == "causal" else same(n, k, s, d))
    sizes = [conv_output_length(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
             in zip(spatial, kernel_size, strides, dilation_rate, pads)]
    if any(n + lo + hi < dilated_kernel(k, d) for n, k, d, (lo, hi)
           in zip(spatial, kernel_size, dilation_rate, pads)):
        raise refuse(REFUSALS, "output_size", spatial, context, sizes=sizes)
    axes = tuple(AxisGeometry(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                 in zip(spatial, kernel_size, strides, dilation_rate, pads))
    return Geometry(axes, channels, filters, groups)


class _Conv(_BaseConv):
    transposed = False

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        # regularizers and constraints act in training only; a forward pass ignores them
        self._setup(filters, kernel_size, strides, padding, data_format, dilation_rate, groups,
                    None, activation, use_bias, kernel_initializer, bias_initializer, kwargs)


class _ConvTranspose(_BaseConv):
    transposed = True

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        self._setup(filters, kernel_size, strides, padding, data_format, dilation_rate, 1,
                    output_padding, activation, use_bias, kernel_initializer, bias_initializer,
                    kwargs)


class Conv1D(_Conv):
    """``keras.layers.Conv1D``: input ``(batch, steps, channels)``; kernel ``(k, in/groups, filters)``;
    ``padding`` 'valid', 'same' or 'causal'."""

    rank = 1


class Conv2D(_Conv):
    """``keras.layers.Conv2D``: input ``(batch, H, W, channels)``; kernel ``(kH, kW, in/groups, filters)``."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, kernel_initializer, bias_initializer,
                         **kwargs)


class Conv3D(_Conv):
    """``keras.layers.Conv3D``: input ``(batch, D, H, W, channels)``; kernel
    ``(kD, kH, kW, in/groups, filters)``."""

    rank = 3

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, kernel_initializer, bias_initializer,
                         **kwargs)


class Conv1DTranspose(_ConvTranspose):
    """``keras.layers.Conv1DTranspose``: input ``(batch, steps, channels)``; kernel ``(k, filters, in)``."""

    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """``keras.layers.Conv2DTranspose``: input ``(batch, H, W, channels)``; kernel ``(kH, kW, filters, in)``."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format,
                         dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, **kwargs)


class Conv3DTranspose(_ConvTranspose):
    """``keras.layers.Conv3DTranspose``: input ``(batch, D, H, W, channels)``; kernel
    ``(kD, kH, kW, filters, in)``. Note Keras' order here: ``data_format`` before
    ``output_padding``."""

    rank = 3

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid", data_format=None,
                 output_padding=None, dilation_rate=(1, 1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format,
                         dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, **kwargs)
