"""PyTorch's dialect: ``torch.nn.functional.conv*d`` and ``conv_transpose*d`` on NumPy arrays.

Same names, positional order, defaults and layouts as PyTorch 2.x:

- data ``(N, C, *spatial)``, or unbatched ``(C, *spatial)``;
- ``conv*d`` weight ``(out, in/groups, *kernel)``;
- ``conv_transpose*d`` weight ``(in, out/groups, *kernel)``, and note the order
  ``(..., output_padding, groups, dilation)``, not ``conv*d``'s ``(..., dilation, groups)``.

A transposed convolution crops ``padding`` cells from the start of the full scatter
and ``padding - output_padding`` from the end: the odd cell of a stride-2 'same'-sized
output is cut at the *start*, where TensorFlow/Keras cut it at the end.

>>> import numpy as np
>>> x = np.arange(4.0).reshape(1, 1, 4)
>>> w = np.array([1.0, 10.0, 100.0]).reshape(1, 1, 3)
>>> conv_transpose1d(x, w, stride=2)[0, 0]          # the full scatter, 9 cells
array([  0.,   0.,   1.,  10., 102.,  20., 203.,  30., 300.])
>>> conv_transpose1d(x, w, stride=2, padding=1, output_padding=1)[0, 0]   # crop (1, 0)
array([  0.,   1.,  10., 102.,  20., 203.,  30., 300.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tconv import _args, ops
from tconv.dialects._common import Divergence, Refusal, as_array, refuse, same_dtype
from tconv.geometry import (AxisGeometry, Geometry, dilated_kernel, full_length, same_pads,
                            torch_transpose_crops)

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]

#: the conventions table of the docs is generated from these entries (docs/conventions.py)
CONVENTIONS = {
    "framework": "PyTorch (torch.nn.functional)",
    "data_format": "(N, C, *spatial); unbatched (C, *spatial) accepted",
    "conv_kernel": "(out, in/groups, *k)",
    "transpose_kernel": "(in, out/groups, *k)",
    "transpose_crop": "crop `padding` at the start and `padding - output_padding` at the end",
    "same": "forward only, stride 1 only; no 'same' for transposed convolutions",
    "output_size": "`output_padding < max(stride, dilation)` (or the module's `output_size=`)",
}


_T = "tests/test_dialect_torch.py"
#: what PyTorch refuses, in its own words (aten/src/ATen/native/Convolution.cpp and
#: NaiveConvolutionTranspose*.cpp; torch/nn/functional.py)
REFUSALS = {
    "input_rank": Refusal("input", "expected {batched}D (batched) or {unbatched}D (unbatched) input",
                          "Convolution.cpp: 'Expected 3D (unbatched) or 4D (batched) input'", _T),
    "weight_rank": Refusal("weight", "must have {want} dimensions, (out, in/groups, *kernel) "
                           "or for transposed (in, out/groups, *kernel)",
                           "Convolution.cpp: 'weight should have at least three dimensions'", _T),
    "stride": Refusal("stride", "non-positive stride is not supported",
                      "Convolution.cpp check_shape_forward", _T),
    "dilation": Refusal("dilation", "dilation should be greater than zero",
                        "Convolution.cpp check_shape_forward", _T),
    "padding_negative": Refusal("padding", "negative padding is not supported",
                                "Convolution.cpp check_shape_forward", _T),
    "padding_string": Refusal("padding", "must be 'same', 'valid', an int or a tuple of {rank} ints",
                              "Convolution.cpp: 'Invalid padding string'", _T),
    "same_strided": Refusal("padding", "padding='same' is not supported for strided convolutions",
                            "torch/nn/modules/conv.py, Convolution.cpp _convolution_mode", _T),
    "transpose_padding_string": Refusal(
        "padding", "conv_transpose takes integer padding only; PyTorch has no 'same'/'valid' "
        "for transposed convolutions", "pytorch/pytorch#80301, #95123", _T),
    "groups": Refusal("groups", "must be a positive integer", "Convolution.cpp", _T),
    "groups_weight": Refusal("weight", "expected weight to be divisible by groups={groups} at dimension 0",
                             "Convolution.cpp check_shape_forward", _T),
    "channels": Refusal("input", "expected input to have {want} channels, but got {got} channels instead",
                        "Convolution.cpp check_shape_forward", _T),
    "bias": Refusal("bias", "expected bias to be 1-dimensional with {want} elements",
                    "Convolution.cpp check_shape_forward", _T),
    "kernel_size": Refusal("weight", "kernel size should be greater than zero", "Convolution.cpp", _T),
    "kernel_too_large": Refusal(
        "weight", "Kernel size can't be greater than actual input size: padded input {padded}, "
                  "dilated kernel {kernel}", "Convolution.cpp check_shape_forward", _T),
    "output_padding": Refusal(
        "output_padding", "output padding must be smaller than either stride or dilation "
                          "(stride={stride}, dilation={dilation})",
        "NaiveConvolutionTranspose2d.cpp slow_conv_transpose2d_shape_check", _T),
    "output_too_small": Refusal("output size", "is too small: the calculated output size per channel is {size}",
                                "NaiveConvolutionTranspose2d.cpp", _T),
    "empty_input": Refusal("input", "has an empty spatial axis", "Convolution.cpp check_shape_forward", _T),
}
DIVERGENCES = {
    "empty_output": Divergence(
        "a transposed convolution whose output has an axis of length 0",
        "the reference (float64) kernel refuses: 'Output size is too small'; the oneDNN float32 "
        "kernel sometimes returns an empty tensor instead",
        "refuses, as the reference kernel does: a layer with an empty output is never meant",
        "tests/oracles/torch.py::accepts_refusal"),
}


def _prepare(name: str, rank: int, input: Any, weight: Any, bias: Any):
    """Arrays, batched; returns ``(x, weight, bias, unbatched)``."""
    x = as_array(input, "input", name)
    w = as_array(weight, "weight", name)
    b = None if bias is None else as_array(bias, "bias", name)
    if x.ndim not in (rank + 1, rank + 2):
        raise refuse(REFUSALS, "input_rank", x, name, batched=rank + 2, unbatched=rank + 1)
    if w.ndim != rank + 2:
        raise refuse(REFUSALS, "weight_rank", w, name, want=rank + 2)
    same_dtype(name, input=x, weight=w, bias=b)
    unbatched = x.ndim == rank + 1
    return (x[None] if unbatched else x), w, b, unbatched


def _check_positive(value, rank, name, context, key):
    values = _args.int_tuple(value, rank, name, minimum=None, context=context)
    if any(v <= 0 for v in values):
        raise refuse(REFUSALS, key, value, context)
    return values


def _plan_conv(name: str, rank: int, input_shape, weight_shape, stride, padding, dilation,
               groups) -> Geometry:
    """The plan of ``F.conv{rank}d`` for a batched input and a weight of these shapes, refusing
    as PyTorch does (shared with ``torch.nn.grad``, which sees only shapes)."""
    strides = _check_positive(stride, rank, "stride", name, "stride")
    dilations = _check_positive(dilation, rank, "dilation", name, "dilation")
    if not _args.is_int(groups) or groups < 1:
        raise refuse(REFUSALS, "groups", groups, name)
    kernel = tuple(weight_shape[2:])
    if any(k < 1 for k in kernel):
        raise refuse(REFUSALS, "kernel_size", weight_shape, name)
    if weight_shape[0] % groups:
        raise refuse(REFUSALS, "groups_weight", weight_shape, name, groups=groups)
    if input_shape[1] != weight_shape[1] * groups:
        raise refuse(REFUSALS, "channels", input_shape, name, want=weight_shape[1] * groups, got=input_shape[1])
    spatial = tuple(input_shape[2:])
    if any(n < 1 for n in spatial):
        raise refuse(REFUSALS, "empty_input", input_shape, name)
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * rank
        elif padding == "same":
            if any(s != 1 for s in strides):
                raise refuse(REFUSALS, "same_strided", padding, name)
            pads = tuple(same_pads(n, k, 1, d) for n, k, d in zip(spatial, kernel, dilations))
        else:
            raise refuse(REFUSALS, "padding_string", padding, name, rank=rank)
    else:
        pad = _args.int_tuple(padding, rank, "padding", minimum=None, context=name)
        if any(p < 0 for p in pad):
            raise refuse(REFUSALS, "padding_negative", padding, name)
        pads = tuple((p, p) for p in pad)
    if any(n + lo + hi < dilated_kernel(k, d) for n, k, d, (lo, hi) in zip(spatial, kernel, dilations, pads)):
        raise refuse(REFUSALS, "kernel_too_large", input_shape, name,
                     padded=tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads)),
                     kernel=tuple(dilated_kernel(k, d) for k, d in zip(kernel, dilations)))
    axes = tuple(AxisGeometry(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                 in zip(spatial, kernel, strides, dilations, pads))
    return Geometry(axes, input_shape[1], weight_shape[0], groups)


def _plan_conv_transpose(name: str, rank: int, input_shape, weight_shape, stride, padding, output_padding,
                         groups, dilation) -> Geometry:
    """The plan of ``F.conv_transpose{rank}d`` for a batched input and a weight of these shapes."""
    strides = _check_positive(stride, rank, "stride", name, "stride")
    dilations = _check_positive(dilation, rank, "dilation", name, "dilation")
    if isinstance(padding, str):
        raise refuse(REFUSALS, "transpose_padding_string", padding, name)
    pad = _args.int_tuple(padding, rank, "padding", minimum=None, context=name)
    out_pad = _args.int_tuple(output_padding, rank, "output_padding", minimum=None, context=name)
    if any(p < 0 for p in pad) or any(p < 0 for p in out_pad):
        raise refuse(REFUSALS, "padding_negative", padding if any(p < 0 for p in pad) else output_padding, name)
    if not _args.is_int(groups) or groups < 1:
        raise refuse(REFUSALS, "groups", groups, name)
    kernel = tuple(weight_shape[2:])
    if any(k < 1 for k in kernel):
        raise refuse(REFUSALS, "kernel_size", weight_shape, name)
    if weight_shape[0] % groups:
        raise refuse(REFUSALS, "groups_weight", weight_shape, name, groups=groups)
    if input_shape[1] != weight_shape[0]:
        raise refuse(REFUSALS, "channels", input_shape, name, want=weight_shape[0], got=input_shape[1])
    if any(op >= max(s, d) for op, s, d in zip(out_pad, strides, dilations)):
        raise refuse(REFUSALS, "output_padding", output_padding, name, stride=strides, dilation=dilations)
    spatial = tuple(input_shape[2:])
    if any(n < 1 for n in spatial):
        raise refuse(REFUSALS, "empty_input", input_shape, name)
    crops = [torch_transpose_crops(p, op) for p, op in zip(pad, out_pad)]
    sizes = tuple(full_length(n, k, s, d) - lo - hi for n, k, s, d, (lo, hi)
                  in zip(spatial, kernel, strides, dilations, crops))
    if any(size <= 0 for size in sizes):
        raise refuse(REFUSALS, "output_too_small", sizes, name, size=sizes)
    axes = tuple(AxisGeometry.transposed(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                 in zip(spatial, kernel, strides, dilations, crops))
    return Geometry(axes, weight_shape[1] * groups, input_shape[1], groups, transposed=True)


def _conv(rank: int, input, weight, bias, stride, padding, dilation, groups):
    name = f"torch.conv{rank}d"
    x, w, b, unbatched = _prepare(name, rank, input, weight, bias)
    geometry = _plan_conv(name, rank, x.shape, w.shape, stride, padding, dilation, groups)
    if b is not None and b.shape != (w.shape[0],):
        raise refuse(REFUSALS, "bias", b, name, want=w.shape[0])
    # torch (out, in/g, *k) -> neutral (*k, in/g, out)
    y = ops.run(geometry, x, np.moveaxis(w, (0, 1), (-1, -2)), b, data_format="channels_first")
    return y[0] if unbatched else y


def _conv_transpose(rank: int, input, weight, bias, stride, padding, output_padding, groups, dilation):
    name = f"torch.conv_transpose{rank}d"
    x, w, b, unbatched = _prepare(name, rank, input, weight, bias)
    geometry = _plan_conv_transpose(name, rank, x.shape, w.shape, stride, padding, output_padding, groups,
                                    dilation)
    if b is not None and b.shape != (geometry.output_channels,):
        raise refuse(REFUSALS, "bias", b, name, want=geometry.output_channels)
    # torch (in, out/g, *k) -> neutral (*k, out/g, in): the forward kernel of the adjoint
    y = ops.run(geometry, x, np.moveaxis(w, (0, 1), (-1, -2)), b, data_format="channels_first")
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """``torch.nn.functional.conv1d``: input ``(N, C_in, L)``, weight ``(C_out, C_in/groups, k)``."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """``torch.nn.functional.conv2d``: input ``(N, C_in, H, W)``, weight ``(C_out, C_in/groups, kH, kW)``."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """``torch.nn.functional.conv3d``: input ``(N, C_in, D, H, W)``, weight ``(C_out, C_in/groups, kD, kH, kW)``."""
    return _conv(3, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> np.ndarray:
    """``torch.nn.functional.conv_transpose1d``: input ``(N, C_in, L)``, weight ``(C_in, C_out/groups, k)``."""
    return _conv_transpose(1, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> np.ndarray:
    """``torch.nn.functional.conv_transpose2d``: input ``(N, C_in, H, W)``, weight ``(C_in, C_out/groups, kH, kW)``."""
    return _conv_transpose(2, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> np.ndarray:
    """``torch.nn.functional.conv_transpose3d``: input ``(N, C_in, D, H, W)``, weight ``(C_in, C_out/groups, kD, kH, kW)``."""
    return _conv_transpose(3, input, weight, bias, stride, padding, output_padding, groups, dilation)

from tconv.dialects import torch_grad as grad  # noqa: F401  (tconv.dialects.torch.grad)  # noqa: E402  (torch.nn.grad; needs REFUSALS above)
