"""TensorFlow's dialect: ``tf.nn.convolution``, ``conv*d`` and ``conv*_transpose`` on NumPy arrays.

Same names, positional order, defaults and layouts as ``tf.nn`` in TensorFlow 2.x:

- data ``(N, *spatial, C)`` (``'NWC'``, ``'NHWC'``, ``'NDHWC'``, the default) or
  ``(N, C, *spatial)`` (``'NCW'``, ``'NCHW'``, ``'NCDHW'``); the forward ops also take
  several leading batch axes, as TensorFlow does;
- convolution ``filters`` ``(*kernel, in/groups, out)``: a grouped convolution is
  inferred from the channel counts (``groups = in / filters.shape[-2]``);
- transposed ``filters`` ``(*kernel, out/groups, in)``, the kernel of the forward
  convolution whose adjoint it is, and a mandatory ``output_shape`` that TensorFlow
  validates: the forward convolution with the same ``padding`` must map it back to
  the input's size (for stride 2, 'SAME' accepts both 15 and 16 for an input of 8);
- ``padding`` ``'SAME'``, ``'VALID'``, or (2-D only) an explicit list of
  ``(before, after)`` pairs, one per axis of the data, batch and channels ``(0, 0)``;
- ``strides`` and ``dilations`` an int, ``N`` ints or ``N + 2`` ints (batch and
  channel entries 1); ``conv1d`` calls it ``stride``, ``conv3d`` wants a list of 5.

A transposed 'SAME' convolution crops the odd cell of the full scatter at the *end*
(PyTorch's ``padding=1, output_padding=1`` crops it at the start):

>>> import numpy as np
>>> x = np.arange(4.0).reshape(1, 4, 1)
>>> w = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
>>> conv1d_transpose(x, w, [1, 8, 1], 2)[0, :, 0]          # crop (0, 1) of 9 cells
array([  0.,   0.,   1.,  10., 102.,  20., 203.,  30.])
>>> conv1d_transpose(x, w, [1, 7, 1], 2)[0, :, 0]          # 7 is valid too: crop (1, 1)
array([  0.,   1.,  10., 102.,  20., 203.,  30.])

Where TensorFlow's CPU kernels refuse only for want of an implementation (channels-first
data, dilated transposed convolutions, dilated 3-D convolutions, grouped 3-D and grouped
transposed convolutions), tconv computes what TensorFlow's XLA and GPU kernels compute:
see :data:`DIVERGENCES`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tconv import _args, ops
from tconv.dialects._common import Divergence, Refusal, as_array, refuse, same_dtype
from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, Geometry, dilated_kernel, same_pads,
                            tf_conv3d_same_pads, tf_transpose_crops)

__all__ = ["convolution", "conv1d", "conv2d", "conv3d", "conv_transpose", "conv1d_transpose",
           "conv2d_transpose", "conv3d_transpose"]

#: the conventions table of the docs is generated from these entries (docs/conventions.py)
CONVENTIONS = {
    "framework": "TensorFlow (tf.nn)",
    "data_format": "(N, *spatial, C) by default; NC... computed by tconv where TF's CPU refuses",
    "conv_kernel": "(*k, in/groups, out)",
    "transpose_kernel": "(*k, out, in)",
    "transpose_crop": "the `pad_before` of the forward convolution that maps `output_shape` back: "
                      "'SAME' puts the odd cell at the end, 'VALID' crops 0, explicit pads crop `pad_before`",
    "same": "'SAME': output ceil(n/stride) forward, the caller's `output_shape` transposed",
    "output_size": "`output_shape` is required and checked against the forward convolution",
}


_T = "tests/test_dialect_tf.py"
_SRC = "tensorflow/python/ops/nn_ops.py"
_KERNELS = "tensorflow/core/kernels/conv_ops.cc, conv_grad_shape_utils.cc"
#: what TensorFlow refuses as invalid, in its own words (TensorFlow 2.21, checked live)
REFUSALS = {
    "data_format": Refusal("data_format", "must be one of {valid}",
                           "op attr check: \"Value for attr 'data_format' ... is not in the list "
                           "of allowed values\"; nn_ops.py conv1d: \"`data_format` must be 'NWC' "
                           "or 'NCW'\"", _T),
    "input_rank": Refusal("input", "must have {want} dimensions",
                          "conv_ops.cc: 'convolution input must be 4-dimensional'", _T),
    "filters_rank": Refusal("filters", "must have {want} dimensions, (*kernel, in/groups, out) "
                            "or for conv_transpose (*kernel, out/groups, in)",
                            "conv_ops.cc: 'convolution filter must be 4-dimensional'", _T),
    "filters_empty": Refusal("filters", "must not have zero elements (i.e. all dimensions must "
                             "be non-zero)", "conv_ops.cc", _T),
    "sequence_length": Refusal("{name}", "should be of length {valid}",
                               f"{_SRC} _get_sequence: 'strides should be of length 1, 2 or 4'", _T),
    "sequence_type": Refusal("{name}", "must be an integer or a list of integers",
                             f"{_SRC} _get_sequence", _T),
    "conv3d_list": Refusal("{name}", "must be a list of 5 integers for tf.nn.conv3d",
                           "gen_nn_ops.conv3d: \"Expected list for 'strides'\"; "
                           "\"Length for attr 'strides' of 3 must be at least minimum 5\"", _T),
    "positive": Refusal("{name}", "should be larger than 0 in every spatial dimension",
                        "conv_ops.cc: 'Row and column strides should be larger than 0', "
                        "'Dilated rates should be larger than 0'", _T),
    "batch_depth": Refusal("{name}", "must be 1 in the batch and depth dimensions",
                           "conv_ops.cc: 'Current implementation does not yet support strides "
                           "in the batch and depth dimensions'", _T),
    "padding_string": Refusal("padding", "must be 'SAME', 'VALID' or a list of (before, after) "
                              "pairs", "op attr check: 'Value for attr 'padding' of \"same\" "
                              "is not in the list of allowed values: \"SAME\", \"VALID\", "
                              "\"EXPLICIT\"'", _T),
    "padding_explicit_rank": Refusal("padding", "explicit padding is supported for 2-D "
                                     "convolutions only; use 'SAME' or 'VALID'",
                                     "gen_nn_ops conv3d/Conv2D via conv1d: \"Expected string for "
                                     "argument 'padding'\"", _T),
    "padding_explicit_convolution": Refusal(
        "padding", "tf.nn.convolution takes an explicit padding list only with dilations > 1 "
        "(its undilated path passes padding to the op as a string); use tf.nn.conv2d",
        f"{_SRC} convolution_internal -> gen_nn_ops.conv2d: \"Expected string for argument "
        "'padding'\"", _T),
    "padding_explicit_shape": Refusal("padding", "must be a list of {want} (before, after) pairs",
                                      f"{_SRC} convert_padding", _T),
    "padding_negative": Refusal("padding", "All elements of explicit_paddings must be nonnegative",
                                "conv_ops.cc", _T),
    "padding_batch_depth": Refusal("padding", "Nonzero explicit padding in the batch or depth "
                                   "dimensions is not supported", "conv_ops.cc", _T),
    "channels": Refusal("input", "depth must be evenly divisible by filter depth: {got} vs {want}",
                        "conv_ops.cc: 'input depth must be evenly divisible by filter depth'", _T),
    "groups_out": Refusal("filters", "output depth must be evenly divisible by number of groups: "
                          "{got} vs {groups}", "conv_ops.cc", _T),
    "output_size": Refusal("input", "is too small: computed output size would be {size} "
                           "(input {input}, padded by {pads}, effective filter size {kernel}, "
                           "stride {stride})",
                           "kernel_shape_util.cc: 'Computed output size would be negative'", _T),
    "dilated_strided": Refusal("strides", "`strides > 1` not supported in conjunction with "
                               "`dilation_rate > 1` in tf.nn.convolution (dilations={dilations})",
                               f"{_SRC} _get_strides_and_dilation_rate", _T),
    "output_shape_length": Refusal("output_shape", "must have {want} entries",
                                   "conv_grad_input_ops.cc: 'Conv2DBackpropInput requires "
                                   "input_sizes to contain 4 values or 2 values'", _T),
    "output_shape_batch": Refusal("output_shape", "batch size {want} must equal the input's "
                                  "batch size {got}", "conv_grad_shape_utils.cc: 'input and "
                                  "out_backprop must have the same batch size'", _T),
    "output_shape_spatial": Refusal("output_shape", "{rule}", "conv_grad_shape_utils.cc: "
                                    "'Size of out_backprop doesn't match computed'", _T),
    "transpose_channels": Refusal("input", "has {got} channels; filter and out_backprop must have "
                                  "the same out_depth ({want}, filters.shape[-1])",
                                  "conv_grad_shape_utils.cc", _T),
    "transpose_depth": Refusal("output_shape", "depth {got} must be evenly divisible by filter "
                               "depth {want} (filters.shape[-2])",
                               "conv_grad_shape_utils.cc: 'input depth must be evenly divisible "
                               "by filter depth'", _T),
    "transpose_groups": Refusal("input", "has {got} channels, not divisible by the {groups} "
                                "groups implied by output_shape and filters",
                                "XLA: 'Reshape operation has mismatched element counts'", _T),
}
_XLA = "what TensorFlow computes under XLA (tf.function(jit_compile=True)) and on GPU"
DIVERGENCES = {
    "cpu_channels_first": Divergence(
        "data_format 'NCW'/'NCHW'/'NCDHW'",
        "'The Conv2D op currently only supports the NHWC tensor format on the CPU' "
        "(and 'Conv2DCustomBackpropInputOp only supports NHWC')",
        f"computes it: {_XLA}", "tests/oracles/tf.py::run_framework"),
    "cpu_transpose_dilation": Divergence(
        "conv*_transpose with dilations > 1",
        "'Current CPU implementations do not yet support dilation rates larger than 1'",
        f"computes it: {_XLA}", "tests/oracles/tf.py::run_framework"),
    "cpu_conv3d_dilation": Divergence(
        "conv3d with dilations > 1",
        "'CPU implementation of Conv3D currently only supports dilated rates of 1'",
        f"computes it: {_XLA} (tf.nn.convolution reaches it on CPU through space-to-batch)",
        "tests/oracles/tf.py::run_framework"),
    "cpu_grouped": Divergence(
        "grouped conv3d, and grouped conv*_transpose (filters.shape[-2] < output depth)",
        "'Number of channels in filter (2) must match last dimension of input (4)'; "
        "'Gradients for grouped convolutions are not supported on CPU'",
        f"computes it: {_XLA}", "tests/oracles/tf.py::run_framework"),
    "conv3d_same_xla": Divergence(
        "conv3d 'SAME' with a kernel shorter than the stride, channels-first or grouped",
        "the CPU kernel (channels-last) starts the windows -pad_lo cells in "
        "(geometry.tf_conv3d_same_pads); XLA does so too channels-last, but clamps the pad "
        "at zero for NCDHW and for grouped Conv3D",
        "uses the CPU kernel's rule for every layout and group count: data layout and "
        "grouping never change which cells a window reads",
        "tests/oracles/tf.py::run_framework"),
    "empty_output": Divergence(
        "an output with an axis of length 0 (kernel exactly one cell longer than the padded "
        "input, or an empty input axis)",
        "returns an empty tensor",
        "refuses (REFUSALS['output_size']): a convolution with an empty output is never meant",
        "tests/oracles/tf.py::accepts_refusal"),
    "mixed_dtypes": Divergence(
        "input and filters of different dtypes, or integer arrays",
        "eager NumPy conversion casts the second operand to the first's dtype (input for "
        "conv*d, filters for conv*_transpose); tf.nn.convolution refuses; int32 is computed "
        "in int32",
        "refuses: the operands must share one floating dtype",
        "tests/oracles/tf.py::accepts_refusal"),
    "dilated_batch_padding": Divergence(
        "tf.nn.convolution with dilations > 1 and explicit padding nonzero in the batch or "
        "channel pairs",
        "the space-to-batch path ignores those pairs",
        "refuses, as conv2d does (REFUSALS['padding_batch_depth'])", _T),
}

#: accepted data_format strings per rank: (channels-last names, channels-first names)
_FORMATS = {1: (("NWC",), ("NCW",)), 2: (("NHWC",), ("NCHW",)), 3: (("NDHWC",), ("NCDHW",))}
#: tf.nn.conv1d still takes the 2-D names (deprecated in favour of NWC/NCW)
_CONV1D_FORMATS = (("NWC", "NHWC"), ("NCW", "NCHW"))


# --------------------------------------------------------------------- argument parsing


def _channels_first(name: str, rank: int, data_format: Any, formats=None) -> bool:
    last, first = formats or _FORMATS[rank]
    if data_format is None or data_format in last:
        return False
    if data_format in first:
        return True
    raise refuse(REFUSALS, "data_format", data_format, name, valid=list(last + first))


def _sequence(name: str, arg: str, value: Any, rank: int, channels_first: bool, *,
              lengths: tuple[int, ...] | None = None, ignore_outer: bool = False) -> tuple[int, ...]:
    """TensorFlow's ``_get_sequence``: per-spatial-axis values of ``strides``/``dilations``.

    ``None`` is all ones; an int or a length-1 list broadcasts; ``rank`` entries are
    spatial; ``rank + 2`` entries include batch and channels, which must be 1.
    """
    if value is None:
        return (1,) * rank
    value = _args.scalar(value)
    items = [value] if _args.is_int(value) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, np.ndarray)) \
            or not all(_args.is_int(v) for v in items):
        raise refuse(REFUSALS, "sequence_type", value, name, name=arg)
    items = [int(v) for v in items]
    lengths = lengths or tuple(sorted({1, rank, rank + 2}))
    if len(items) not in lengths:
        raise refuse(REFUSALS, "sequence_length", value, name, name=arg,
                     valid=" or ".join(map(str, lengths)))
    if len(items) == rank + 2:
        outer = [items[0], items[1]] if channels_first else [items[0], items[-1]]
        spatial = items[2:] if channels_first else items[1:-1]
        if ignore_outer:  # tf.nn.convolution's dilated path slices the outer entries off
            outer = [1, 1]
        elif rank == 1:
            # conv1d*/conv1d_transpose prepend 1 and hand the list to the 2-D op, so the
            # batch entry (NWC) or the channel entry (NCW) lands on the height axis they
            # insert, of length 1, where any positive value has no effect
            dummy = outer.pop(1 if channels_first else 0)
            if dummy < 1:
                raise refuse(REFUSALS, "positive", value, name, name=arg)
            outer.append(1)
        if outer != [1, 1]:
            raise refuse(REFUSALS, "batch_depth", value, name, name=arg)
    else:
        spatial = items * rank if len(items) == 1 else items
    if any(v < 1 for v in spatial):
        raise refuse(REFUSALS, "positive", value, name, name=arg)
    return tuple(spatial)


def _padding(name: str, padding: Any, rank: int, channels_first: bool):
    """'SAME', 'VALID', or per-axis explicit ``(before, after)`` pairs (2-D only)."""
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise refuse(REFUSALS, "padding_string", padding, name)
        return padding
    if not isinstance(padding, (list, tuple)):
        raise refuse(REFUSALS, "padding_string", padding, name)
    if rank != 2:
        raise refuse(REFUSALS, "padding_explicit_rank", padding, name)
    if len(padding) != rank + 2 or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(_args.is_int(v) for v in p)
            for p in padding):
        raise refuse(REFUSALS, "padding_explicit_shape", padding, name, want=rank + 2)
    pairs = [(int(lo), int(hi)) for lo, hi in padding]
    if any(v < 0 for p in pairs for v in p):
        raise refuse(REFUSALS, "padding_negative", padding, name)
    outer = (pairs[0], pairs[1]) if channels_first else (pairs[0], pairs[-1])
    if outer != ((0, 0), (0, 0)):
        raise refuse(REFUSALS, "padding_batch_depth", padding, name)
    return tuple(pairs[2:] if channels_first else pairs[1:-1])


def _arrays(name: str, input: Any, filters: Any, rank: int, *, batch_axes: bool):
    x = as_array(input, "input", name)
    w = as_array(filters, "filters", name)
    if w.ndim != rank + 2:
        raise refuse(REFUSALS, "filters_rank", w, name, want=rank + 2)
    if x.ndim != rank + 2 and not (batch_axes and x.ndim > rank + 2):
        want = f"at least {rank + 2}" if batch_axes else rank + 2
        raise refuse(REFUSALS, "input_rank", x, name, want=want)
    same_dtype(name, input=x, filters=w)
    if w.size == 0:
        raise refuse(REFUSALS, "filters_empty", w, name)
    return x, w


# ------------------------------------------------------------------------ the two ops


def _conv(name: str, rank: int, input, filters, strides, padding, data_format, dilations, *,
          channels_first: bool, lengths=None, convolution: bool = False) -> np.ndarray:
    x, w = _arrays(name, input, filters, rank, batch_axes=True)
    # tf.nn.convolution takes its dilated (space-to-batch) path when any entry of
    # dilations is not 1, batch and channel entries included, and there it drops the
    # batch and channel entries of strides and dilations unchecked
    dilated = convolution and dilations is not None and any(
        v != 1 for v in ([dilations] if _args.is_int(dilations) else dilations))
    strides = _sequence(name, "strides" if rank != 1 else "stride", strides, rank,
                        channels_first, lengths=lengths, ignore_outer=dilated)
    dilations = _sequence(name, "dilations", dilations, rank, channels_first, lengths=lengths,
                          ignore_outer=dilated)
    if convolution and max(strides) > 1 and max(dilations) > 1:
        raise refuse(REFUSALS, "dilated_strided", strides, name, dilations=dilations)
    if convolution and not dilated and isinstance(padding, (list, tuple)):
        raise refuse(REFUSALS, "padding_explicit_convolution", padding, name)
    pads = _padding(name, padding, rank, channels_first)
    # Conv3D does not clamp a negative 'SAME' total at zero (see tf_conv3d_same_pads)
    same = tf_conv3d_same_pads if rank == 3 else same_pads
    # TensorFlow folds extra leading batch axes into one (squeeze_batch_dims)
    lead = x.shape[: x.ndim - rank - 1]
    x = x.reshape((int(np.prod(lead)),) + x.shape[x.ndim - rank - 1:])
    channels = x.shape[1] if channels_first else x.shape[-1]
    spatial = x.shape[2:] if channels_first else x.shape[1:-1]
    kernel, depth, out = w.shape[:-2], w.shape[-2], w.shape[-1]
    if channels % depth:
        raise refuse(REFUSALS, "channels", x, name, got=channels, want=depth)
    groups = channels // depth
    if out % groups:
        raise refuse(REFUSALS, "groups_out", w, name, got=out, groups=groups)
    axes = []
    for i, (n, k, s, d) in enumerate(zip(spatial, kernel, strides, dilations)):
        lo, hi = same(n, k, s, d) if pads == "SAME" else (0, 0) if pads == "VALID" else pads[i]
        if n + lo + hi < dilated_kernel(k, d):  # TensorFlow: negative refused, 0 is empty
            size = (n + lo + hi - dilated_kernel(k, d)) // s + 1
            raise refuse(REFUSALS, "output_size", tuple(spatial), name, size=size, input=n,
                         pads=(lo, hi), kernel=dilated_kernel(k, d), stride=s)
        axes.append(AxisGeometry(n, k, s, d, lo, hi))
    geometry = Geometry(tuple(axes), channels, out, groups)
    y = ops.run(geometry, x, w, data_format="channels_first" if channels_first else "channels_last")
    return y.reshape(lead + y.shape[1:])


def _conv_transpose(name: str, rank: int, input, filters, output_shape, strides, padding,
                    data_format, dilations, *, channels_first: bool, lengths=None,
                    spatial_output_shape: bool = False) -> np.ndarray:
    x, w = _arrays(name, input, filters, rank, batch_axes=False)
    strides = _sequence(name, "strides", strides, rank, channels_first, lengths=lengths)
    dilations = _sequence(name, "dilations", dilations, rank, channels_first, lengths=lengths)
    pads = _padding(name, padding, rank, channels_first)
    batch = x.shape[0]
    channels = x.shape[1] if channels_first else x.shape[-1]
    spatial = x.shape[2:] if channels_first else x.shape[1:-1]
    kernel, depth = w.shape[:-2], w.shape[-2]
    shape = _output_shape(name, output_shape, rank, spatial_output_shape)
    if len(shape) == rank:  # conv2d_transpose's 2-entry form: batch and depth from the operands
        out_batch, out_channels, out_spatial = batch, depth, shape
    else:
        out_batch = shape[0]
        out_channels = shape[1] if channels_first else shape[-1]
        out_spatial = shape[2:] if channels_first else shape[1:-1]
    if out_batch != batch:
        raise refuse(REFUSALS, "output_shape_batch", output_shape, name, want=out_batch, got=batch)
    if channels != w.shape[-1]:
        raise refuse(REFUSALS, "transpose_channels", x, name, got=channels, want=w.shape[-1])
    if out_channels < 1 or out_channels % depth:
        raise refuse(REFUSALS, "transpose_depth", output_shape, name, got=out_channels, want=depth)
    groups = out_channels // depth
    if channels % groups:
        raise refuse(REFUSALS, "transpose_groups", x, name, got=channels, groups=groups)
    axes = []
    for i, (n, k, s, d, o) in enumerate(zip(spatial, kernel, strides, dilations, out_spatial)):
        try:
            lo, hi = tf_transpose_crops(n, k, s, d, o, pads if isinstance(pads, str) else pads[i])
        except TconvError as exc:
            raise refuse(REFUSALS, "output_shape_spatial", output_shape, name,
                         rule=f"axis {i}: {exc.rule}") from None
        axes.append(AxisGeometry.transposed(n, k, s, d, lo, hi))
    geometry = Geometry(tuple(axes), out_channels, channels, groups, transposed=True)
    return ops.run(geometry, x, w, data_format="channels_first" if channels_first else "channels_last")


def _output_shape(name: str, output_shape: Any, rank: int, spatial_ok: bool) -> tuple[int, ...]:
    want = f"{rank} or {rank + 2}" if spatial_ok else f"{rank + 2}"
    if isinstance(output_shape, (str, bytes)) or not isinstance(output_shape, (Sequence, np.ndarray)):
        raise refuse(REFUSALS, "output_shape_length", output_shape, name, want=want)
    items = list(np.asarray(output_shape).reshape(-1)) if isinstance(output_shape, np.ndarray) \
        else list(output_shape)
    if not all(_args.is_int(v) for v in items) or \
            len(items) not in ((rank, rank + 2) if spatial_ok else (rank + 2,)):
        raise refuse(REFUSALS, "output_shape_length", output_shape, name, want=want)
    return tuple(int(v) for v in items)


# ------------------------------------------------------------------------ public names


def convolution(input, filters, strides=None, padding="VALID", data_format=None, dilations=None,
                name=None) -> np.ndarray:
    """``tf.nn.convolution``: rank from ``filters`` ``(*kernel, in/groups, out)``; input
    ``(..., *spatial, C)`` or, for an ``'NC...'`` data_format, ``(..., C, *spatial)``.

    Unlike ``conv2d``, it refuses ``strides > 1`` together with ``dilations > 1``, and it
    takes an explicit padding list only when dilated (2-D).
    """
    w = as_array(filters, "filters", "tf.nn.convolution")
    rank = w.ndim - 2
    context = "tf.nn.convolution"
    if rank not in (1, 2, 3):
        raise refuse(REFUSALS, "filters_rank", w, context, want="3, 4 or 5")
    formats = _CONV1D_FORMATS if rank == 1 else None
    channels_first = _channels_first(context, rank, data_format, formats)
    return _conv(context, rank, input, w, strides, padding, data_format, dilations,
                 channels_first=channels_first, convolution=True)


def conv1d(input, filters, stride, padding, data_format="NWC", dilations=None, name=None) -> np.ndarray:
    """``tf.nn.conv1d``: input ``(..., W, C)`` or ``(..., C, W)``, filters ``(k, in/groups, out)``.

    ``stride`` and ``dilations`` take 1 or 3 entries; padding 'SAME' or 'VALID'.
    """
    context = "tf.nn.conv1d"
    channels_first = _channels_first(context, 1, data_format, _CONV1D_FORMATS)
    return _conv(context, 1, input, filters, stride, padding, data_format, dilations,
                 channels_first=channels_first, lengths=(1, 3))


def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None, name=None) -> np.ndarray:
    """``tf.nn.conv2d``: input ``(..., H, W, C)`` or ``(..., C, H, W)``, filters ``(kH, kW, in/groups, out)``."""
    context = "tf.nn.conv2d"
    channels_first = _channels_first(context, 2, data_format)
    return _conv(context, 2, input, filters, strides, padding, data_format, dilations,
                 channels_first=channels_first)


def conv3d(input, filters, strides, padding, data_format="NDHWC", dilations=None, name=None) -> np.ndarray:
    """``tf.nn.conv3d``: input ``(..., D, H, W, C)`` or ``(..., C, D, H, W)``,
    filters ``(kD, kH, kW, in/groups, out)``; ``strides`` (and ``dilations``) a list of 5."""
    context = "tf.nn.conv3d"
    channels_first = _channels_first(context, 3, data_format)
    for arg, value in (("strides", strides), ("dilations", dilations)):
        if (value is not None or arg == "strides") and (
                not isinstance(value, (list, tuple)) or len(value) != 5):
            raise refuse(REFUSALS, "conv3d_list", value, context, name=arg)
    return _conv(context, 3, input, filters, strides, padding, data_format, dilations,
                 channels_first=channels_first, lengths=(5,))


def conv_transpose(input, filters, output_shape, strides, padding="SAME", data_format=None,
                   dilations=None, name=None) -> np.ndarray:
    """``tf.nn.conv_transpose``: the rank is ``len(output_shape) - 2``; see ``conv*d_transpose``."""
    context = "tf.nn.conv_transpose"
    output_shape = _args.scalar(output_shape)
    if isinstance(output_shape, (str, bytes)) or not isinstance(output_shape, (Sequence, np.ndarray)) \
            or not 3 <= len(output_shape) <= 5:
        raise refuse(REFUSALS, "output_shape_length", output_shape, context, want="3, 4 or 5")
    rank = len(output_shape) - 2
    fn = (conv1d_transpose, conv2d_transpose, conv3d_transpose)[rank - 1]
    return fn(input, filters, output_shape, strides, padding, data_format, dilations)


def conv1d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NWC",
                     dilations=None, name=None) -> np.ndarray:
    """``tf.nn.conv1d_transpose``: input ``(N, W, C_in)`` or ``(N, C_in, W)``, filters
    ``(k, C_out/groups, C_in)``, ``output_shape`` ``[N, W_out, C_out]`` (or NCW order)."""
    context = "tf.nn.conv1d_transpose"
    channels_first = _channels_first(context, 1, data_format)
    return _conv_transpose(context, 1, input, filters, output_shape, strides, padding, data_format,
                           dilations, channels_first=channels_first, lengths=(1, 3))


def conv2d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NHWC",
                     dilations=None, name=None) -> np.ndarray:
    """``tf.nn.conv2d_transpose``: input ``(N, H, W, C_in)`` or ``(N, C_in, H, W)``, filters
    ``(kH, kW, C_out/groups, C_in)``, ``output_shape`` of 4 entries, or 2 spatial ones."""
    context = "tf.nn.conv2d_transpose"
    channels_first = _channels_first(context, 2, data_format)
    return _conv_transpose(context, 2, input, filters, output_shape, strides, padding, data_format,
                           dilations, channels_first=channels_first, spatial_output_shape=True)


def conv3d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NDHWC",
                     dilations=None, name=None) -> np.ndarray:
    """``tf.nn.conv3d_transpose``: input ``(N, D, H, W, C_in)`` or ``(N, C_in, D, H, W)``,
    filters ``(kD, kH, kW, C_out/groups, C_in)``, ``output_shape`` of 5 entries."""
    context = "tf.nn.conv3d_transpose"
    channels_first = _channels_first(context, 3, data_format)
    return _conv_transpose(context, 3, input, filters, output_shape, strides, padding, data_format,
                           dilations, channels_first=channels_first)
