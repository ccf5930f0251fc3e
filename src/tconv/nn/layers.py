"""Inference layers with Keras 3's names, constructor arguments and weight layouts.

Data are channels-last ``(batch, *spatial, channels)`` unless a layer's
``data_format='channels_first'``. Every size a layer produces comes from
:mod:`tconv.geometry`; the convolutions are :mod:`tconv.dialects.keras`' layers,
wrapped, so their refusals and Keras' 'same'/'valid'/``output_padding`` rules are the
dialect's. Each layer reports its :meth:`Layer.geometry` for a given input shape
(``None`` for pointwise layers), which is what tiled inference reads.

A layer is called on NumPy arrays (it computes) or on the symbolic tensors of
:func:`tconv.nn.Input` (it records a node of a functional graph):

>>> import numpy as np
>>> pool = MaxPooling2D()
>>> pool(np.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]], dtype=float32)
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np

from tconv import _args
from tconv.dialects import keras as _keras
from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, Geometry, as_axes, bilinear_source, cropped_length,
                            pool_axis, upsampling_axis)

__all__ = [
    "Layer", "InputLayer", "Input", "KerasTensor",
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "MaxPooling2D", "UpSampling2D", "Concatenate", "Dropout", "BatchNormalization",
    "Activation", "ReLU", "Softmax", "Cropping2D", "ZeroPadding2D", "LAYERS",
]

#: keyword arguments every Keras layer takes that do not change inference
_COMMON = {"name", "dtype", "trainable", "autocast", "input_shape", "input_dim",
           "batch_input_shape", "batch_size"}


def snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``: the default layer name and the ``.weights.h5`` key.

    >>> snake_case("Conv2DTranspose"), snake_case("UpSampling2D"), snake_case("ReLU")
    ('conv2d_transpose', 'up_sampling2d', 're_lu')
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


_counters: dict[str, int] = {}


def _unique_name(stem: str) -> str:
    # Keras numbers default names per process: conv2d, conv2d_1, ...
    count = _counters.get(stem, 0)
    _counters[stem] = count + 1
    return stem if count == 0 else f"{stem}_{count}"


def _dtype_name(dtype: Any) -> str:
    """A Keras config's dtype: a string or a DTypePolicy dict."""
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", "float32")
    return "float32" if dtype is None else str(dtype)


class KerasTensor:
    """A symbolic tensor of a functional graph: a shape (``None`` = any) and where it came from."""

    def __init__(self, shape: tuple, dtype: str = "float32", node: "Node | None" = None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        origin = self.node.layer.name if self.node else "?"
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, from={origin!r}>"


class Node:
    """One call of a layer on symbolic tensors: ``inputs`` (flattened) -> ``output``."""

    def __init__(self, layer: "Layer", inputs: list[KerasTensor], nested: bool):
        self.layer = layer
        self.inputs = inputs
        self.nested = nested  # the layer takes a list (Concatenate)
        self.output: KerasTensor | None = None


class Layer:
    """Base of every tconv.nn layer: a name, weights, shapes, geometry, a call."""

    #: the class name Keras writes in a config
    keras_class: str = ""
    #: whether the call takes a list of tensors (Concatenate); others take one array
    multiple_inputs: bool = False
    #: the number of axes the layer's input must have (None: any)
    input_ndim: int | None = None
    #: whether the call computes each batch item's output from that item alone, whatever
    #: the rest of the batch holds (:meth:`acts_per_item`). A :class:`~tconv.nn.Model` runs
    #: shares of a batch side by side only where every layer does, so a layer that reads
    #: across the batch axis must leave it False
    per_item: bool = False
    #: whether the call itself checks its output (and temporaries) against the memory
    #: budget before computing (the convolutions: :func:`tconv.ops.run`); a
    #: :class:`~tconv.nn.Model` checks every other layer's output first
    #: (:func:`check_output_budget`)
    checks_budget: bool = False

    def __init__(self, name: str | None = None, dtype: Any = None, trainable: bool = True,
                 **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - _COMMON)
        if unknown:
            raise TconvError("kwargs", {k: kwargs[k] for k in unknown},
                             f"Unrecognized keyword arguments passed to {type(self).__name__}",
                             context=f"keras.layers.{type(self).__name__}")
        if name is not None and not isinstance(name, str):
            raise TconvError("name", name, "must be a string or None",
                             context=f"keras.layers.{type(self).__name__}")
        self.name = name or _unique_name(snake_case(type(self).__name__))
        try:
            self.dtype = np.dtype(_dtype_name(dtype))
        except (TypeError, ValueError):
            raise TconvError("dtype", dtype, "must name a floating dtype ('float32', 'float64')",
                             context=f"keras.layers.{type(self).__name__}") from None
        if self.dtype.kind != "f":
            raise TconvError("dtype", dtype, "must be a floating dtype",
                             context=f"keras.layers.{type(self).__name__}")
        self.trainable = trainable
        self.built = False
        self.inbound: list[Node] = []

    # ------------------------------------------------------------- weights

    @property
    def weights(self) -> list[np.ndarray]:
        return self.get_weights()

    def get_weights(self) -> list[np.ndarray]:
        return []

    def set_weights(self, weights) -> None:
        if list(weights):
            raise TconvError("weights", f"{len(list(weights))} arrays",
                             f"{type(self).__name__} {self.name!r} has no weights")

    def count_params(self) -> int:
        return int(sum(w.size for w in self.get_weights()))

    def build(self, input_shape) -> None:
        self.built = True

    # -------------------------------------------------------------- shapes

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def geometry(self, input_shape) -> Geometry | None:
        """The windowed operation this layer performs on ``input_shape``, or None (pointwise)."""
        return None

    def acts_per_item(self, rank: int) -> bool:
        """Whether, on inputs of ``rank`` axes, each batch item's output depends on that item
        alone (:attr:`per_item`; layers of an ``axis`` say False where it is the batch axis)."""
        return self.per_item

    # ---------------------------------------------------------------- call

    def call(self, x):
        raise NotImplementedError

    def __call__(self, inputs):
        flat = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if flat and all(isinstance(t, KerasTensor) for t in flat):
            node = Node(self, flat, isinstance(inputs, (list, tuple)))
            shapes = [t.shape for t in flat] if node.nested else flat[0].shape
            if not self.built:
                self.build(shapes)
            node.output = KerasTensor(self.compute_output_shape(shapes), self.dtype.name, node)
            self.inbound.append(node)
            return node.output
        if any(isinstance(t, KerasTensor) for t in flat):
            raise TconvError("inputs", inputs, "mixes symbolic tensors and arrays",
                             context=f"layer {self.name!r}")
        if not flat:
            raise TconvError("inputs", inputs, "must be an array or a list of arrays",
                             context=f"layer {self.name!r}")
        if not self.multiple_inputs:  # one array, however it is nested
            flat, inputs = [inputs], None
        arrays = [_args.as_array(a, "inputs", context=f"layer {self.name!r}") for a in flat]
        shapes = [a.shape for a in arrays] if isinstance(inputs, (list, tuple)) else arrays[0].shape
        if self.input_ndim is not None and any(a.ndim != self.input_ndim for a in arrays):
            raise TconvError("inputs", arrays[0], f"must have {self.input_ndim} axes "
                             "(batch, rows, cols, channels or channels first)",
                             context=f"keras.layers.{type(self).__name__}")
        if not self.built:
            self.build(shapes)
        check_output_budget(self, shapes)
        return self.call(arrays if isinstance(inputs, (list, tuple)) else arrays[0])

    # -------------------------------------------------------------- config

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def check_output_budget(layer: Layer, shapes) -> None:
    """The layer's output (and one temporary of its size) must fit the memory budget before
    it is computed: an UpSampling2D of 10^4 or a ZeroPadding2D of 10^6 is refused by size."""
    from tconv import budget

    out = layer.compute_output_shape(shapes)
    if isinstance(out, tuple) and all(_args.is_int(n) for n in out):
        nbytes = math.prod(out) * layer.dtype.itemsize
        budget.check(nbytes, "output", out, f"(of layer {layer.name!r}, {type(layer).__name__}, on "
                     f"{shapes})", temporaries=nbytes)


def _positive(value) -> int:
    if not _args.is_int(value) or value < 1:
        raise ValueError(value)
    return int(value)


def _axis(value, context: str) -> int:
    if not _args.is_int(value):
        raise TconvError("axis", value, "must be an integer", context=context)
    return int(value)


def _off_the_batch_axis(axis: int, ndim: int) -> bool:
    """Whether a layer's ``axis`` on inputs of ``ndim`` axes is one of them but not the batch
    axis (0): such a layer computes each item alone (:meth:`Layer.acts_per_item`)."""
    return -ndim <= axis < ndim and axis % ndim != 0


def _check_axis(axis: int, ndim: int, context: str) -> int:
    if not -ndim <= axis < ndim:
        raise TconvError("axis", axis, f"is out of range for inputs with {ndim} axes", context=context)
    return axis % ndim


def _float(value, name: str, context: str, *, low: float | None = None, high: float | None = None,
           rule: str = "must be a number") -> float:
    try:
        ok = not isinstance(value, (str, bytes, bool)) and math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or (low is not None and float(value) < low) or (high is not None and float(value) > high):
        raise TconvError(name, value, rule, context=context)
    return float(value)


def _spatial(shape, data_format: str) -> tuple:
    return tuple(shape[2:]) if data_format == "channels_first" else tuple(shape[1:-1])


def _with_spatial(shape, spatial, data_format: str, channels=None) -> tuple:
    shape = tuple(shape)
    if channels is None:
        channels = shape[1] if data_format == "channels_first" else shape[-1]
    if data_format == "channels_first":
        return (shape[0], channels) + tuple(spatial)
    return (shape[0],) + tuple(spatial) + (channels,)


def _data_format(value, context: str) -> str:
    value = "channels_last" if value is None else value
    if not isinstance(value, str) or value.lower() not in ("channels_first", "channels_last"):
        raise TconvError("data_format", value, "must be one of {'channels_first', 'channels_last'}",
                         context=context)
    return value.lower()


def _to_last(x: np.ndarray, data_format: str) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def _from_last(y: np.ndarray, data_format: str) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(y, -1, 1)) if data_format == "channels_first" else y


# ----------------------------------------------------------------------- input


class InputLayer(Layer):
    """``keras.layers.InputLayer``: where a functional graph starts."""

    keras_class = "InputLayer"
    per_item = True

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None,
                 sparse=None, ragged=None, optional=False, **kwargs):
        kwargs.pop("input_tensor", None)
        super().__init__(name=name, dtype=dtype, **kwargs)
        if batch_shape is None:
            if shape is None:
                raise TconvError("shape", shape, "must be given (or batch_shape)",
                                 context="keras.Input")
            batch_shape = (batch_size,) + tuple(shape)
        try:
            self.batch_shape = tuple(None if s is None else _positive(s) for s in batch_shape)
        except (TypeError, ValueError):
            raise TconvError("shape", batch_shape, "must be a tuple of positive integers or None",
                             context="keras.Input") from None
        self.output = KerasTensor(self.batch_shape, self.dtype.name, Node(self, [], False))
        self.output.node.output = self.output
        self.inbound.append(self.output.node)
        self.built = True

    def call(self, x):
        return x

    def get_config(self) -> dict:
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype.name, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, **kwargs) -> KerasTensor:
    """``keras.Input``: a symbolic tensor of ``(batch_size, *shape)`` (the batch is ``None``)."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape,
                      name=name, **kwargs).output


# ---------------------------------------------------------------- convolutions


def _initializer_name(value) -> str:
    """'he_normal' or a config dict ``{"class_name": "HeNormal", ...}`` -> snake-case name."""
    return snake_case(value.get("class_name", "")) if isinstance(value, dict) else value


def _truncated_normal(scale_of_fan_in: float):
    # Keras' VarianceScaling(distribution='truncated_normal', mode='fan_in'); only the
    # starting point of training depends on it, never a forward pass with loaded weights
    def draw(shape, dtype):
        fan_in = int(np.prod(shape[:-1]))
        std = np.sqrt(scale_of_fan_in / max(fan_in, 1)) / 0.87962566103423978
        rng = np.random.default_rng()
        return np.clip(rng.normal(0, std, shape), -2 * std, 2 * std).astype(dtype)
    return draw


_NORMAL = {"he_normal": _truncated_normal(2.0), "lecun_normal": _truncated_normal(1.0),
           "glorot_normal": _truncated_normal(1.0)}


class _ConvWrapper(Layer):
    """A :mod:`tconv.dialects.keras` layer inside the graph: Keras' arguments and weights."""

    dialect_class: type
    per_item = True
    checks_budget = True

    def __init__(self, *args, **kwargs):
        common = {k: kwargs.pop(k) for k in ("name", "dtype", "trainable") if k in kwargs}
        for k in ("input_shape", "batch_input_shape", "batch_size", "input_dim", "autocast"):
            kwargs.pop(k, None)
        super().__init__(**common)
        for key in ("kernel_initializer", "bias_initializer"):
            if isinstance(kwargs.get(key), (str, dict)) and _initializer_name(kwargs[key]) in _NORMAL:
                kwargs[key] = _NORMAL[_initializer_name(kwargs[key])]
            elif isinstance(kwargs.get(key), dict):
                kwargs[key] = _initializer_name(kwargs[key])
        self.op = self.dialect_class(*args, dtype=self.dtype.name, **kwargs)

    def __getattr__(self, item):  # filters, kernel_size, strides, padding, kernel, bias...
        if item == "op":
            raise AttributeError(item)
        return getattr(self.op, item)

    def build(self, input_shape) -> None:
        self.op.build(input_shape)
        self.built = True

    def get_weights(self):
        return self.op.get_weights()

    def set_weights(self, weights) -> None:
        self.op.set_weights(weights)

    def compute_output_shape(self, input_shape):
        spatial = _spatial(input_shape, self.op.data_format)
        if any(s is None for s in spatial):
            return _with_spatial(input_shape, (None,) * len(spatial), self.op.data_format,
                                 self.op.filters)
        shape = self.op.compute_output_shape((1,) + tuple(input_shape[1:]))
        return (input_shape[0],) + tuple(shape[1:])

    def geometry(self, input_shape) -> Geometry:
        channels = input_shape[1] if self.op.data_format == "channels_first" else input_shape[-1]
        return self.op._geometry(tuple(int(n) for n in _spatial(input_shape, self.op.data_format)),
                                 int(channels))

    def call(self, x):
        return self.op(x)

    def get_config(self) -> dict:
        op = self.op
        config = super().get_config()
        config.update(filters=op.filters, kernel_size=list(op.kernel_size),
                      strides=list(op.strides), padding=op.padding, data_format=op.data_format,
                      dilation_rate=list(op.dilation_rate), activation=self._activation_name,
                      use_bias=op.use_bias)
        if op.transposed:
            config["output_padding"] = None if op.output_padding is None else list(op.output_padding)
        else:
            config["groups"] = op.groups
        return config

    @property
    def _activation_name(self) -> str:
        for key, fn in _keras._ACTIVATIONS.items():
            if fn is self.op.activation:
                return key
        return "custom"


def _conv_class(name: str) -> type:
    dialect_class = getattr(_keras, name)
    return type(name, (_ConvWrapper,), {
        "dialect_class": dialect_class, "keras_class": name,
        "__doc__": f"``keras.layers.{name}`` (wraps :class:`tconv.dialects.keras.{name}`; "
                   "same arguments and weight layout).",
        "__module__": __name__})


Conv1D = _conv_class("Conv1D")
Conv2D = _conv_class("Conv2D")
Conv3D = _conv_class("Conv3D")
Conv1DTranspose = _conv_class("Conv1DTranspose")
Conv2DTranspose = _conv_class("Conv2DTranspose")
Conv3DTranspose = _conv_class("Conv3DTranspose")


# ------------------------------------------------------------ pooling, resizing


def _pair(value, name: str, context: str, *, allow_zero: bool = False) -> tuple[int, int]:
    items = as_axes(value, 2) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        items = tuple(int(v) for v in items)
        ok = len(items) == 2 and all(v >= (0 if allow_zero else 1) for v in items)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        rule = ">= 0" if allow_zero else "> 0"
        raise TconvError(name, value, f"must be a tuple of 2 integers, each {rule}", context=context)
    return items


def _crop_pairs(value, name: str, context: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras' Cropping2D/ZeroPadding2D argument: int, (sym_h, sym_w) or ((top, bottom), (left, right))."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        pairs = tuple(tuple(as_axes(int(v), 2)) if not isinstance(v, (list, tuple)) else
                      tuple(int(u) for u in v) for v in value)
        ok = len(pairs) == 2 and all(len(p) == 2 and min(p) >= 0 for p in pairs)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise TconvError(name, value, "must be an int, a tuple of 2 ints or a tuple of 2 tuples "
                         "of 2 ints, all >= 0", context=context)
    return pairs  # type: ignore[return-value]


class MaxPooling2D(Layer):
    """``keras.layers.MaxPooling2D``: the largest value of each window ('same' pads are ignored)."""

    keras_class = "MaxPooling2D"
    per_item = True
    input_ndim = 4

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        context = "keras.layers.MaxPooling2D"
        self.pool_size = _pair(pool_size, "pool_size", context)
        self.strides = self.pool_size if strides is None else _pair(strides, "strides", context)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise TconvError("padding", padding, "must be one of ['same', 'valid']", context=context)
        self.padding = padding.lower()
        self.data_format = _data_format(data_format, context)

    def _axes(self, spatial) -> tuple[AxisGeometry, ...]:
        try:
            return tuple(pool_axis(int(n), p, s, self.padding)
                         for n, p, s in zip(spatial, self.pool_size, self.strides))
        except TconvError as exc:
            raise TconvError("input", tuple(spatial),
                             f"is too small for pool_size={self.pool_size}: {exc}",
                             context=f"layer {self.name!r}") from None

    def compute_output_shape(self, input_shape):
        spatial = _spatial(input_shape, self.data_format)
        if any(n is None for n in spatial):
            return _with_spatial(input_shape, (None, None), self.data_format)
        return _with_spatial(input_shape, tuple(a.out for a in self._axes(spatial)), self.data_format)

    def geometry(self, input_shape) -> Geometry:
        c = int(input_shape[1] if self.data_format == "channels_first" else input_shape[-1])
        return Geometry(self._axes(_spatial(input_shape, self.data_format)), c, c, groups=c)

    def call(self, x):
        x = _to_last(np.asarray(x, dtype=self.dtype), self.data_format)
        axes = self._axes(x.shape[1:-1])
        (h, w) = axes
        pads = ((0, 0), (h.pad_lo, max(h.pad_hi, 0)), (w.pad_lo, max(w.pad_hi, 0)), (0, 0))
        # 'valid' reads the input as it lies; the windows' maximum builds in one array
        padded = np.pad(x, pads, constant_values=-np.inf) if any(map(any, pads)) else x
        y = None
        for i in range(h.kernel):
            for j in range(w.kernel):
                window = padded[:, i: i + h.stride * (h.out - 1) + 1: h.stride,
                                j: j + w.stride * (w.out - 1) + 1: w.stride]
                if y is None:
                    y = window.copy()
                else:
                    np.maximum(y, window, out=y)
        return _from_last(y, self.data_format)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), padding=self.padding,
                      strides=list(self.strides), data_format=self.data_format)
        return config


class UpSampling2D(Layer):
    """``keras.layers.UpSampling2D``: repeat rows and columns ('nearest') or interpolate
    ('bilinear', half-pixel centres, edges clamped: TensorFlow's ``resize_bilinear``)."""

    keras_class = "UpSampling2D"
    per_item = True
    input_ndim = 4

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        context = "keras.layers.UpSampling2D"
        self.size = _pair(size, "size", context)
        self.data_format = _data_format(data_format, context)
        if not isinstance(interpolation, str) or interpolation not in ("nearest", "bilinear"):
            raise TconvError("interpolation", interpolation,
                             "must be 'nearest' or 'bilinear' (tconv computes these two)",
                             context=context)
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        spatial = _spatial(input_shape, self.data_format)
        out = tuple(None if n is None else upsampling_axis(int(n), f).size
                    for n, f in zip(spatial, self.size))
        return _with_spatial(input_shape, out, self.data_format)

    def geometry(self, input_shape) -> Geometry:
        c = int(input_shape[1] if self.data_format == "channels_first" else input_shape[-1])
        spatial = _spatial(input_shape, self.data_format)
        axes = tuple(upsampling_axis(int(n), f, self.interpolation) for n, f in zip(spatial, self.size))
        return Geometry(axes, c, c, groups=c, transposed=True)

    def call(self, x):
        x = _to_last(np.asarray(x, dtype=self.dtype), self.data_format)
        for axis, factor in zip((1, 2), self.size):
            n = x.shape[axis]
            length = upsampling_axis(n, factor, self.interpolation).size
            if self.interpolation == "nearest":
                x = np.repeat(x, factor, axis=axis)
                continue
            lower, upper, weight = zip(*(bilinear_source(i, factor, n) for i in range(length)))
            shape = [1, 1, 1, 1]
            shape[axis] = length
            weight = np.asarray(weight, dtype=x.dtype).reshape(shape)
            lo = np.take(x, np.asarray(lower), axis=axis)
            hi = np.take(x, np.asarray(upper), axis=axis)
            x = lo + (hi - lo) * weight  # TF: top + (bottom - top) * y_lerp
        return _from_last(np.ascontiguousarray(x), self.data_format)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(size=list(self.size), data_format=self.data_format,
                      interpolation=self.interpolation)
        return config


class Cropping2D(Layer):
    """``keras.layers.Cropping2D``: cut ``((top, bottom), (left, right))`` cells."""

    keras_class = "Cropping2D"
    per_item = True
    input_ndim = 4

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        context = "keras.layers.Cropping2D"
        self.cropping = _crop_pairs(cropping, "cropping", context)
        self.data_format = _data_format(data_format, context)

    def _sizes(self, spatial):
        sizes = tuple(None if n is None else cropped_length(int(n), lo, hi)
                      for n, (lo, hi) in zip(spatial, self.cropping))
        if any(s is not None and s <= 0 for s in sizes):
            raise TconvError("cropping", self.cropping,
                             f"leaves no cells of the input's spatial shape {tuple(spatial)}",
                             context=f"layer {self.name!r}")
        return sizes

    def compute_output_shape(self, input_shape):
        return _with_spatial(input_shape, self._sizes(_spatial(input_shape, self.data_format)),
                             self.data_format)

    def call(self, x):
        x = _to_last(np.asarray(x, dtype=self.dtype), self.data_format)
        (h, w) = self._sizes(x.shape[1:-1])
        (top, _), (left, _) = self.cropping
        return _from_last(np.ascontiguousarray(x[:, top: top + h, left: left + w]), self.data_format)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(cropping=[list(p) for p in self.cropping], data_format=self.data_format)
        return config


class ZeroPadding2D(Layer):
    """``keras.layers.ZeroPadding2D``: add ``((top, bottom), (left, right))`` zero cells."""

    keras_class = "ZeroPadding2D"
    per_item = True
    input_ndim = 4

    def __init__(self, padding=(1, 1), data_format=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        context = "keras.layers.ZeroPadding2D"
        self.padding = _crop_pairs(padding, "padding", context)
        self.data_format = _data_format(data_format, context)

    def compute_output_shape(self, input_shape):
        spatial = _spatial(input_shape, self.data_format)
        out = tuple(None if n is None else cropped_length(int(n), -lo, -hi)
                    for n, (lo, hi) in zip(spatial, self.padding))
        return _with_spatial(input_shape, out, self.data_format)

    def call(self, x):
        x = _to_last(np.asarray(x, dtype=self.dtype), self.data_format)
        return _from_last(np.pad(x, ((0, 0), *self.padding, (0, 0))), self.data_format)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(padding=[list(p) for p in self.padding], data_format=self.data_format)
        return config


# ---------------------------------------------------------------- pointwise


class Concatenate(Layer):
    """``keras.layers.Concatenate``: join a list of tensors along ``axis`` (default: channels)."""

    keras_class = "Concatenate"
    multiple_inputs = True

    def __init__(self, axis=-1, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.axis = _axis(axis, "keras.layers.Concatenate")

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or not all(isinstance(s, tuple) for s in input_shape):
            raise TconvError("inputs", input_shape, "must be a list of at least 2 tensors",
                             context="keras.layers.Concatenate")
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2:
            raise TconvError("inputs", len(shapes), "must be a list of at least 2 tensors",
                             context="keras.layers.Concatenate")
        rank = len(shapes[0])
        axis = _check_axis(self.axis, rank, f"layer {self.name!r}")
        for shape in shapes[1:]:
            if len(shape) != rank or any(a != b and a is not None and b is not None
                                         for i, (a, b) in enumerate(zip(shapes[0], shape))
                                         if i != axis):
                raise TconvError(
                    "inputs", shapes, "A `Concatenate` layer requires inputs with matching shapes "
                    "except for the concatenation axis", context=f"layer {self.name!r}")
        joined = [s[axis] for s in shapes]
        out = list(shapes[0])
        out[axis] = None if None in joined else sum(joined)
        return tuple(out)

    def acts_per_item(self, rank: int) -> bool:
        return _off_the_batch_axis(self.axis, rank)

    def call(self, xs):
        self.compute_output_shape([x.shape for x in xs])
        return np.concatenate(xs, axis=self.axis)

    def get_config(self) -> dict:
        config = super().get_config()
        config["axis"] = self.axis
        return config


class Dropout(Layer):
    """``keras.layers.Dropout``: the identity at inference."""

    keras_class = "Dropout"
    per_item = True

    def __init__(self, rate, noise_shape=None, seed=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        _float(rate, "rate", "keras.layers.Dropout", low=0, high=1,
               rule="must be a float in the range [0, 1]")
        self.rate, self.noise_shape, self.seed = float(rate), noise_shape, seed

    def call(self, x):
        return x

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed, noise_shape=self.noise_shape)
        return config


class BatchNormalization(Layer):
    """``keras.layers.BatchNormalization`` at inference: ``(x - moving_mean) / sqrt(moving_variance + epsilon)
    * gamma + beta``; weights ``[gamma, beta, moving_mean, moving_variance]`` (those present)."""

    keras_class = "BatchNormalization"

    def __init__(self, axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True,
                 name=None, **kwargs):
        for key in list(kwargs):
            if key.endswith(("_initializer", "_regularizer", "_constraint")) or key in (
                    "synchronized", "renorm", "renorm_clipping", "renorm_momentum"):
                kwargs.pop(key)
        super().__init__(name=name, **kwargs)
        context = "keras.layers.BatchNormalization"
        if isinstance(axis, (list, tuple)) and len(axis) != 1:
            raise TconvError("axis", axis, "must be one integer (tconv normalises one axis)", context=context)
        self.axis = _axis(axis if not isinstance(axis, (list, tuple)) else axis[0], context)
        self.momentum = _float(momentum, "momentum", context)
        self.epsilon = _float(epsilon, "epsilon", context, low=0, rule="must be a number >= 0")
        self.center, self.scale = bool(center), bool(scale)

    def build(self, input_shape) -> None:
        if not isinstance(input_shape, tuple):
            raise TconvError("inputs", input_shape, "must be one tensor",
                             context="keras.layers.BatchNormalization")
        channels = input_shape[_check_axis(self.axis, len(input_shape), "keras.layers.BatchNormalization")]
        if channels is None:
            raise TconvError("input_shape", tuple(input_shape),
                             f"must give the normalised axis {self.axis}",
                             context="keras.layers.BatchNormalization")
        c = int(channels)
        from tconv import budget

        budget.check(4 * c * self.dtype.itemsize, "input_shape", tuple(input_shape),
                     f"(BatchNormalization weights for {c} channels)",
                     context="keras.layers.BatchNormalization")
        self.gamma = np.ones(c, self.dtype) if self.scale else None
        self.beta = np.zeros(c, self.dtype) if self.center else None
        self.moving_mean = np.zeros(c, self.dtype)
        self.moving_variance = np.ones(c, self.dtype)
        self.built = True

    def _present(self) -> list[str]:
        return (["gamma"] if self.scale else []) + (["beta"] if self.center else []) + \
            ["moving_mean", "moving_variance"]

    def get_weights(self):
        return [getattr(self, k).copy() for k in self._present()] if self.built else []

    def set_weights(self, weights) -> None:
        weights = list(weights)
        names = self._present()
        if len(weights) != len(names):
            raise TconvError("weights", f"{len(weights)} arrays",
                             f"must be {len(names)} arrays: {names}", context=f"layer {self.name!r}")
        for key, w in zip(names, weights):
            w = np.asarray(w)
            if w.shape != getattr(self, key).shape:
                raise TconvError("weights", w.shape, f"{key} must have shape {getattr(self, key).shape}",
                                 context=f"layer {self.name!r}")
            setattr(self, key, w.astype(self.dtype))

    def acts_per_item(self, rank: int) -> bool:
        return _off_the_batch_axis(self.axis, rank)

    def call(self, x):
        x = np.asarray(x, dtype=self.dtype)
        shape = [1] * x.ndim
        shape[self.axis] = x.shape[self.axis]
        inv = 1.0 / np.sqrt(self.moving_variance + np.asarray(self.epsilon, self.dtype))
        if self.scale:
            inv = inv * self.gamma
        shift = -self.moving_mean * inv + (self.beta if self.center else 0)
        return (x * inv.reshape(shape) + shift.reshape(shape)).astype(self.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon,
                      center=self.center, scale=self.scale)
        return config


class Activation(Layer):
    """``keras.layers.Activation``: 'relu', 'sigmoid', 'softmax' (last axis), 'tanh', ..."""

    keras_class = "Activation"
    per_item = True

    def __init__(self, activation, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if activation is None:
            activation = "linear"
        if not isinstance(activation, str) or activation not in _keras._ACTIVATIONS:
            raise TconvError("activation", activation,
                             f"is not one tconv knows ({sorted(_keras._ACTIVATIONS)})",
                             context="keras.layers.Activation")
        self.activation = activation
        self._fn: Callable = _keras._ACTIVATIONS[activation]

    def call(self, x):
        return np.asarray(self._fn(np.asarray(x, dtype=self.dtype)), dtype=self.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config["activation"] = self.activation
        return config


class ReLU(Layer):
    """``keras.layers.ReLU``: ``max_value``, ``negative_slope`` and ``threshold`` as Keras."""

    keras_class = "ReLU"
    per_item = True

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        context = "keras.layers.ReLU"
        self.max_value = None if max_value is None else _float(max_value, "max_value", context, low=0,
                                                               rule="must be a number >= 0 or None")
        self.negative_slope = _float(negative_slope, "negative_slope", context, low=0,
                                     rule="must be a number >= 0")
        self.threshold = _float(threshold, "threshold", context)

    def call(self, x):
        x = np.asarray(x, dtype=self.dtype)
        y = np.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold))
        if self.max_value is not None:
            y = np.minimum(y, self.max_value)
        return y.astype(self.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(max_value=self.max_value, negative_slope=self.negative_slope,
                      threshold=self.threshold)
        return config


class Softmax(Layer):
    """``keras.layers.Softmax`` along ``axis`` (default: the last)."""

    keras_class = "Softmax"

    def __init__(self, axis=-1, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.axis = _axis(axis, "keras.layers.Softmax")

    def acts_per_item(self, rank: int) -> bool:
        return _off_the_batch_axis(self.axis, rank)

    def call(self, x):
        x = np.asarray(x, dtype=self.dtype)
        _check_axis(self.axis, x.ndim, f"layer {self.name!r}")
        if x.size == 0:  # nothing to normalise (NumPy's max has no identity)
            return x.copy()
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)

    def get_config(self) -> dict:
        config = super().get_config()
        config["axis"] = self.axis
        return config


#: every layer class a ``.keras`` config may name, by Keras' class name
LAYERS: dict[str, type] = {cls.keras_class: cls for cls in (
    InputLayer, Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose, Conv3DTranspose,
    MaxPooling2D, UpSampling2D, Concatenate, Dropout, BatchNormalization, Activation, ReLU,
    Softmax, Cropping2D, ZeroPadding2D)}
