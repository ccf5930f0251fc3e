"""ONNX's dialect: the ``Conv`` and ``ConvTranspose`` operators on NumPy arrays, as onnxruntime runs them.

Attributes by their ONNX names, as keyword arguments: ``auto_pad`` (NOTSET, SAME_UPPER,
SAME_LOWER, VALID), ``dilations``, ``group``, ``kernel_shape``, ``pads``
(``[x1_begin, x2_begin, ..., x1_end, x2_end]``), ``strides`` and, for ConvTranspose,
``output_padding`` and ``output_shape`` (spatial entries only). Data are
``(N, C, *spatial)``; the Conv weight is ``(M, C/group, *k)``, the ConvTranspose
weight ``(C, M/group, *k)``; ``B`` is ``(M,)``.

ConvTranspose crops its full scatter by :func:`~tconv.geometry.onnx_transpose_crops`:
SAME_UPPER cuts the odd cell at the end (= TensorFlow/Keras 'same'), SAME_LOWER and
``output_shape`` without SAME_UPPER cut it at the start (= PyTorch ``padding=1,
output_padding=1``), as the spec says and onnxruntime >= 1.13 does.

>>> import numpy as np
>>> x = np.arange(1.0, 5.0, dtype=np.float32).reshape(1, 1, 4)
>>> w = np.array([1.0, 10.0, 100.0], dtype=np.float32).reshape(1, 1, 3)
>>> conv_transpose(x, w, strides=[2], auto_pad="SAME_UPPER")[0, 0]
array([  1.,  10., 102.,  20., 203.,  30., 304.,  40.], dtype=float32)
>>> conv_transpose(x, w, strides=[2], auto_pad="SAME_LOWER")[0, 0]
array([ 10., 102.,  20., 203.,  30., 304.,  40., 400.], dtype=float32)

Where onnxruntime 1.32 departs from the ONNX spec text (tconv follows onnxruntime,
checked against it case by case):

- ConvTranspose clamps a negative total padding ``T`` to 0: SAME_* with
  ``stride > k_eff + output_padding`` gives ``full + output_padding`` cells, not the
  spec's ``input * stride``, and an ``output_shape`` beyond the full scatter is
  zero-extended at the end only (the spec's split would extend both ends).
- ConvTranspose checks that the forward convolution maps its output back to the
  input, so ``output_padding >= stride`` is refused even where the spec (and the
  ``< max(stride, dilation)`` check) allows it, as is ``output_shape > full + stride - 1``.
- Conv SAME_* with a negative total padding (kernel shorter than the stride) crops the
  input's start instead of padding ``(0, 0)`` (see :func:`~tconv.geometry.onnx_conv_pads`).
- ``pads`` together with any ``auto_pad`` other than NOTSET is refused, even all-zero.
- ``output_shape`` must list the spatial axes only; the spec's N+2-entry form is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tconv import _args, ops
from tconv.dialects._common import Divergence, Refusal, as_array, refuse, same_dtype
from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, Geometry, conv_output_length, dilated_kernel,
                            onnx_conv_pads, onnx_transpose_crops)

__all__ = ["conv", "conv_transpose"]

#: the conventions table of the docs is generated from these entries (docs/conventions.py)
CONVENTIONS = {
    "framework": "ONNX (as onnxruntime 1.32 runs it)",
    "data_format": "(N, C, *spatial)",
    "conv_kernel": "(M, C/group, *k)",
    "transpose_kernel": "(C, M/group, *k)",
    "transpose_crop": "`pads` crop (begin, end - output_padding); with output_shape/auto_pad the total "
                      "is split, SAME_UPPER odd cell at the end, NOTSET/SAME_LOWER at the start",
    "same": "SAME_UPPER = TF/Keras; SAME_LOWER = the other side (PyTorch-like)",
    "output_size": "`output_padding` or `output_shape` (checked; a negative total is clamped)",
}


_T = "tests/test_dialect_onnx.py"
_ORT = "onnxruntime 1.32"
#: what onnxruntime refuses, in its own words
REFUSALS = {
    "attribute": Refusal("{name}", "Unrecognized attribute: {name} for operator {op}",
                         f"{_ORT} model checker", _T),
    "input_rank": Refusal("X", "Input tensor must have at least 3 dimensions",
                          f"{_ORT} shape inference", _T),
    "weight_rank": Refusal("W", "Number of spatial dimensions in the weight tensor ({w}) does not "
                           "match the number of spatial dimensions in the input tensor ({x})",
                           f"{_ORT} shape inference", _T),
    "auto_pad": Refusal("auto_pad", "Unknown AutoPadType String: must be NOTSET, SAME_UPPER, "
                        "SAME_LOWER or VALID", f"{_ORT} providers/common.h StringToAutoPadType", _T),
    "pads_with_auto_pad": Refusal("pads", "The pads attribute cannot be used simultaneously with "
                                  "auto_pad attribute ({auto_pad})", f"{_ORT} shape inference", _T),
    "length": Refusal("{name}", "Attribute {name} has incorrect size: {want} entries expected",
                      f"{_ORT} shape inference", _T),
    "positive": Refusal("{name}", "Attribute {name} must only contain positive values",
                        f"{_ORT} shape inference", _T),
    "negative_pads": Refusal("{name}", "Attribute {name} must not contain negative values",
                             f"{_ORT} shape inference", _T),
    "kernel_shape": Refusal("kernel_shape", "kernel_shape is not compatible with W shape {w}",
                            f"{_ORT} conv_attributes.h", _T),
    "group": Refusal("group", "{why}", f"{_ORT} conv_attributes.h ValidateInputShape", _T),
    "bias": Refusal("B", "must have shape ({want},)", f"{_ORT} Conv/ConvTranspose kernels", _T),
    "output_padding": Refusal("output_padding", "output_padding must be less than "
                              "max(stride, dilation) (stride={stride}, dilation={dilation})",
                              f"{_ORT} conv_transpose_attributes.h", _T),
    "transpose_shape": Refusal("{name}", "{why}",
                               f"{_ORT} conv_transpose_attributes.h (Computed output shape is "
                               "inconsistent with input spatial dimensions / <= 0)", _T),
    "output_empty": Refusal("X", "Invalid input shape: the output would be empty (padded input "
                            "{padded}, dilated kernel {kernel})", f"{_ORT} conv_attributes.h", _T),
    "empty_input": Refusal("X", "has an empty spatial axis", "tconv (DIVERGENCES['empty_spatial'])", _T),
}
DIVERGENCES = {
    "float64": Divergence(
        "float64 (double) tensors",
        "onnxruntime's CPU provider has no double Conv/ConvTranspose kernel (NOT_IMPLEMENTED)",
        "computes in float64", "tests/oracles/onnx.py (float32 cases only)"),
    "same_dilated": Divergence(
        "Conv with auto_pad SAME_UPPER/SAME_LOWER and dilations > 1",
        "'Dilation not supported for AutoPadType::SAME_UPPER or AutoPadType::SAME_LOWER'",
        "computes the spec's SAME padding with the dilated kernel span",
        "tests/oracles/onnx.py::accepts_refusal"),
    "rank": Divergence("more than 3 spatial axes", "onnxruntime computes them",
                       "refuses: tconv's geometry has 1 to 3 spatial axes", _T),
    "empty_spatial": Divergence("an input with an empty spatial axis",
                                "onnxruntime returns padding-only or oddly sized outputs",
                                "refuses", _T),
}

_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
_TRANSPOSE_ATTRS = _CONV_ATTRS + ("output_padding", "output_shape")


def _ints(attrs: dict, name: str, rank: int, context: str, default: int | None,
          minimum: int | None, count: int | None = None) -> tuple[int, ...] | None:
    """An ONNX ints attribute of ``count`` (default ``rank``) entries, or its default."""
    value = attrs.get(name)
    count = rank if count is None else count
    if value is None:
        return None if default is None else (default,) * count
    value = _args.scalar(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, np.ndarray)) \
            or not all(_args.is_int(v) for v in value):
        raise refuse(REFUSALS, "length", value, context, name=name, want=count)
    if len(value) != count:
        raise refuse(REFUSALS, "length", value, context, name=name, want=count)
    values = tuple(int(v) for v in value)
    if minimum == 1 and any(v < 1 for v in values):
        raise refuse(REFUSALS, "positive", value, context, name=name)
    if minimum == 0 and any(v < 0 for v in values):
        raise refuse(REFUSALS, "negative_pads", value, context, name=name)
    return values


def _prepare(op: str, X, W, B, attrs: dict, allowed: tuple[str, ...]):
    """Arrays and the attributes shared by both operators."""
    context = f"onnx.{op}"
    for name in attrs:
        if name not in allowed:
            raise refuse(REFUSALS, "attribute", attrs[name], context, name=name, op=op)
    x = as_array(X, "X", context)
    w = as_array(W, "W", context)
    b = None if B is None else as_array(B, "B", context)
    if x.ndim < 3:
        raise refuse(REFUSALS, "input_rank", x, context)
    if w.ndim != x.ndim:
        raise refuse(REFUSALS, "weight_rank", w, context, w=w.ndim - 2, x=x.ndim - 2)
    same_dtype(context, X=x, W=w, B=b)
    rank = x.ndim - 2
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if not isinstance(auto_pad, str) or auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise refuse(REFUSALS, "auto_pad", auto_pad, context)
    if auto_pad != "NOTSET" and attrs.get("pads") is not None:
        raise refuse(REFUSALS, "pads_with_auto_pad", attrs["pads"], context, auto_pad=auto_pad)
    strides = _ints(attrs, "strides", rank, context, 1, 1)
    dilations = _ints(attrs, "dilations", rank, context, 1, 1)
    flat = _ints(attrs, "pads", rank, context, 0, 0, count=2 * rank)
    pads = tuple(zip(flat[:rank], flat[rank:]))
    kernel_shape = _ints(attrs, "kernel_shape", rank, context, None, 1)
    if kernel_shape is not None and kernel_shape != w.shape[2:]:
        raise refuse(REFUSALS, "kernel_shape", kernel_shape, context, w=w.shape)
    group = attrs.get("group", 1)
    if not _args.is_int(group) or group < 1:
        raise refuse(REFUSALS, "group", group, context, why="must be a positive integer")
    if not 1 <= rank <= 3:
        raise TconvError("X", x, f"has {rank} spatial axes; tconv computes 1 to 3 "
                         "(DIVERGENCES['rank'])", context=context)
    if any(n < 1 for n in x.shape[2:]) or any(k < 1 for k in w.shape[2:]):
        raise refuse(REFUSALS, "empty_input", x, context)
    return context, x, w, b, auto_pad, strides, dilations, pads, int(group)


def conv(X: Any, W: Any, B: Any = None, **attrs: Any) -> np.ndarray:
    """ONNX ``Conv``: X ``(N, C, *spatial)``, W ``(M, C/group, *k)``, B ``(M,)``.

    >>> x = np.arange(1.0, 9.0, dtype=np.float32).reshape(1, 1, 8)
    >>> w = np.array([1.0, 10.0, 100.0], dtype=np.float32).reshape(1, 1, 3)
    >>> conv(x, w, strides=[2], auto_pad="SAME_UPPER")[0, 0]     # pads (0, 1)
    array([321., 543., 765.,  87.], dtype=float32)
    >>> conv(x, w, strides=[2], auto_pad="SAME_LOWER")[0, 0]     # pads (1, 0)
    array([210., 432., 654., 876.], dtype=float32)
    """
    context, x, w, b, auto_pad, strides, dilations, pads, group = _prepare(
        "Conv", X, W, B, attrs, _CONV_ATTRS)
    channels, out_channels = x.shape[1], w.shape[0]
    if channels != w.shape[1] * group:
        raise refuse(REFUSALS, "group", group, context,
                     why=f"Input channels C is not equal to kernel channels * group. "
                         f"C: {channels} kernel channels: {w.shape[1]}")
    if out_channels % group:
        raise refuse(REFUSALS, "group", group, context,
                     why=f"Output channels M is not divisible by group. M: {out_channels}")
    if b is not None and b.shape != (out_channels,):
        raise refuse(REFUSALS, "bias", b, context, want=out_channels)
    spatial, kernel = x.shape[2:], w.shape[2:]
    pads = tuple(onnx_conv_pads(n, k, s, d, auto_pad, p) for n, k, s, d, p
                 in zip(spatial, kernel, strides, dilations, pads))
    if any(conv_output_length(n, k, s, d, lo, hi) < 1 for n, k, s, d, (lo, hi)
           in zip(spatial, kernel, strides, dilations, pads)):
        raise refuse(REFUSALS, "output_empty", x, context,
                     padded=tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads)),
                     kernel=tuple(dilated_kernel(k, d) for k, d in zip(kernel, dilations)))
    axes = tuple(AxisGeometry(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                 in zip(spatial, kernel, strides, dilations, pads))
    geometry = Geometry(axes, channels, out_channels, group)
    # (M, C/g, *k) -> neutral (*k, C/g, M)
    return ops.run(geometry, x, np.moveaxis(w, (0, 1), (-1, -2)), b, data_format="channels_first")


def conv_transpose(X: Any, W: Any, B: Any = None, **attrs: Any) -> np.ndarray:
    """ONNX ``ConvTranspose``: X ``(N, C, *spatial)``, W ``(C, M/group, *k)``, B ``(M,)``.

    The full scatter ``stride*(n-1) + output_padding + k_eff`` cells long is cropped
    by ``pads``, or by the split of the total that ``output_shape`` / SAME_* ask for
    (:func:`~tconv.geometry.onnx_transpose_crops`).

    >>> x = np.arange(1.0, 5.0, dtype=np.float32).reshape(1, 1, 4)
    >>> w = np.array([1.0, 10.0, 100.0], dtype=np.float32).reshape(1, 1, 3)
    >>> conv_transpose(x, w, strides=[2], output_shape=[8])[0, 0]   # odd cell cut at the start
    array([ 10., 102.,  20., 203.,  30., 304.,  40., 400.], dtype=float32)
    """
    context, x, w, b, auto_pad, strides, dilations, pads, group = _prepare(
        "ConvTranspose", X, W, B, attrs, _TRANSPOSE_ATTRS)
    rank = x.ndim - 2
    output_padding = _ints(attrs, "output_padding", rank, context, 0, 0)
    output_shape = _ints(attrs, "output_shape", rank, context, None, None)
    channels = x.shape[1]
    if channels % group:
        raise refuse(REFUSALS, "group", group, context,
                     why=f"Input channels C must be divisible by group. C={channels}")
    if w.shape[0] != channels:
        raise refuse(REFUSALS, "group", group, context,
                     why=f"filter number not equal to input channel number. filter_number: "
                         f"{w.shape[0]} num_input_channels: {channels}")
    out_channels = w.shape[1] * group
    if b is not None and b.shape != (out_channels,):
        raise refuse(REFUSALS, "bias", b, context, want=out_channels)
    if any(op >= max(s, d) for op, s, d in zip(output_padding, strides, dilations)):
        raise refuse(REFUSALS, "output_padding", list(output_padding), context,
                     stride=strides, dilation=dilations)
    spatial, kernel = x.shape[2:], w.shape[2:]
    crops = []
    for i, (n, k, s, d, p, op) in enumerate(zip(spatial, kernel, strides, dilations, pads,
                                                output_padding)):
        try:
            crops.append(onnx_transpose_crops(n, k, s, d, auto_pad, p, op,
                                              None if output_shape is None else output_shape[i]))
        except TconvError as exc:  # onnxruntime's consistency check, axis i
            value = attrs.get(exc.argument)  # as a list, however it was given (explain passes tuples)
            value = list(value) if isinstance(value, (list, tuple, np.ndarray)) else value
            raise refuse(REFUSALS, "transpose_shape", value, context,
                         name=exc.argument, why=f"(spatial axis {i}) {exc.rule}") from None
    axes = tuple(AxisGeometry.transposed(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                 in zip(spatial, kernel, strides, dilations, crops))
    geometry = Geometry(axes, out_channels, channels, group, transposed=True)
    # (C, M/g, *k) -> neutral (*k, M/g, C): the forward kernel of the adjoint
    return ops.run(geometry, x, np.moveaxis(w, (0, 1), (-1, -2)), b, data_format="channels_first")
