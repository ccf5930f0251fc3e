"""JAX's dialect: ``jax.lax.conv_general_dilated`` and ``jax.lax.conv_transpose`` on NumPy arrays.

Same names, positional order, defaults and layouts as ``jax.lax`` (JAX 0.10):

- ``conv_general_dilated`` defaults to ``('NCHW', 'OIHW', 'NCHW')`` (and the 1-D/3-D
  forms); ``conv_transpose`` to TensorFlow's ``('NHWC', 'HWIO', 'NHWC')``.
- ``dimension_numbers`` may be three layout strings with any letters for the spatial
  axes (matched by letter; ``window_strides``, ``padding`` and the dilations follow the
  order of the spatial letters in the *kernel* spec), or a ``ConvDimensionNumbers``
  (three tuples of axis indices: ``(batch, feature, *spatial)``, ``(out, in, *spatial)``,
  ``(batch, feature, *spatial)``).
- ``padding``: 'SAME', 'SAME_LOWER' (odd cell at the start), 'VALID', or ``(lo, hi)``
  pairs; negative pads crop.

``lhs_dilation`` inserts ``lhs_dilation - 1`` zeros between input cells (a
fractionally strided convolution). tconv computes it as the transposed convolution of
the spatially flipped kernel (:func:`~tconv.geometry.lhs_dilated_axis`) and keeps
every ``window_strides``-th cell of it.

``conv_transpose`` is JAX's fractionally strided convolution: it does **not** flip the
kernel unless ``transpose_kernel=True``, and explicit pairs pad the stride-dilated input
(they are not PyTorch's crops) unless ``use_consistent_padding=True``. With
``transpose_kernel=True`` and 'SAME' it equals Keras' ``Conv*DTranspose(padding='same')``:
the odd cell is cut at the end.

>>> import numpy as np
>>> x = np.arange(1.0, 5.0).reshape(1, 4, 1)                 # NWC
>>> w = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)        # WIO
>>> conv_transpose(x, w, (2,), "SAME", transpose_kernel=True)[0, :, 0]   # crop (0, 1)
array([  1.,  10., 102.,  20., 203.,  30., 304.,  40.])
>>> conv_transpose(x, w, (2,), "SAME")[0, :, 0]              # unflipped kernel
array([100.,  10., 201.,  20., 302.,  30., 403.,  40.])

``precision`` is accepted and ignored: tconv always accumulates in the arrays' own
floating dtype (or ``preferred_element_type``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tconv import _args, ops
from tconv.dialects._common import Divergence, Refusal, as_array, refuse, same_dtype
from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, Geometry, conv_output_length, jax_transpose_pads,
                            lhs_dilated_axis, lhs_dilated_length, same_pads)

__all__ = ["conv_general_dilated", "conv_transpose"]

#: the conventions table of the docs is generated from these entries (docs/conventions.py)
CONVENTIONS = {
    "framework": "JAX (jax.lax)",
    "data_format": "conv_general_dilated: NCHW/OIHW; conv_transpose: NHWC/HWIO (any via dimension_numbers)",
    "conv_kernel": "(out, in/groups, *k) by default",
    "transpose_kernel": "(*k, in, out), spatially unflipped unless transpose_kernel=True ((*k, out, in), flipped)",
    "transpose_crop": "pairs pad the stride-dilated input: crop = d*(k-1) - pad per side; "
                      "'SAME'/'VALID' follow Keras",
    "same": "'SAME': as Keras (n*stride, odd cell cut at the end); 'SAME_LOWER' forward only",
    "output_size": "no output_padding/output_shape: choose explicit pads",
}


_T = "tests/test_dialect_jax.py"
_SRC = "jax/_src/lax/convolution.py"
#: what jax.lax refuses, in its own words
REFUSALS = {
    "ndim": Refusal("rhs", "convolution requires lhs and rhs ndim to be equal, got {lhs} and {rhs}",
                    f"{_SRC} conv_dimension_numbers", _T),
    "dimension_numbers": Refusal("dimension_numbers", "{why}",
                                 f"{_SRC} conv_dimension_numbers, conv_general_permutations", _T),
    "no_default": Refusal("dimension_numbers", "No 4+ dimensional dimension_number defaults.",
                          f"{_SRC} conv_transpose", _T),
    "window_strides": Refusal("{name}", "must be a sequence of {rank} positive integers "
                              "(one per spatial dimension of the kernel)",
                              f"{_SRC} _conv_general_dilated_shape_rule; XLA verifier "
                              "'expects window to have positive stride'", _T),
    "dilation": Refusal("{name}", "must be None or a sequence of {rank} positive integers "
                        "('All dilations must be positive')",
                        "jax/_src/lax/lax.py _dilate_shape; XLA verifier", _T),
    "padding_string": Refusal("padding", "Unrecognized padding type: expected 'VALID', 'SAME', "
                              "or 'SAME_LOWER'", "jax/_src/lax/lax.py padtype_to_pads", _T),
    "padding_lhs_dilation": Refusal(
        "padding", "String padding is not implemented for transposed convolution using this op "
                   "(lhs_dilation={lhs_dilation}); give (low, high) pairs or use conv_transpose",
        f"{_SRC} conv_general_dilated", _T),
    "padding_pairs": Refusal("padding", "must be a string or a sequence of {rank} (low, high) "
                             "integer pairs", f"{_SRC} conv_general_dilated, conv_shape_tuple", _T),
    "padding_mode": Refusal("padding", "Invalid padding mode: with use_consistent_padding=True "
                            "padding is 'SAME', 'VALID' or a sequence of (low, high) tuples",
                            f"{_SRC} _conv_transpose_padding", _T),
    "negative_padding": Refusal(
        "padding", "Negative padding is larger than the size of the corresponding dimension "
                   "(lhs spatial shape {shape})", f"{_SRC} conv_shape_tuple", _T),
    "feature_group_count": Refusal("feature_group_count", "{why}",
                                   f"{_SRC} _conv_general_dilated_shape_rule", _T),
    "batch_group_count": Refusal("batch_group_count", "{why}",
                                 f"{_SRC} _conv_general_dilated_shape_rule", _T),
    "channels": Refusal("lhs", "lhs feature dimension size divided by feature_group_count must "
                        "equal the rhs input feature dimension size, but {c} // {g} != {i}",
                        f"{_SRC} _conv_general_dilated_shape_rule", _T),
    "kernel_size": Refusal("rhs", "expects window to have positive value in every spatial "
                           "dimension", "XLA verifier (Cannot lower jaxpr)", _T),
    "dtype": Refusal("rhs", "lax.conv_general_dilated requires arguments to have the same dtypes",
                     "jax/_src/lax/lax.py check_same_dtypes", _T),
    "preferred_element_type": Refusal(
        "preferred_element_type", "`preferred_element_type` must be a floating dtype not "
                                  "narrower than the original type ({dtype})",
        f"{_SRC} _conv_general_dilated_dtype_rule", _T),
    "conv_transpose_rank": Refusal("lhs", "conv_transpose needs lhs and rhs of the same rank >= 2 "
                                   "(AssertionError in JAX)", f"{_SRC} conv_transpose", _T),
}
DIVERGENCES = {
    "rank": Divergence(
        "0 or more than 3 spatial dimensions",
        "JAX computes them (XLA convolutions of any rank)",
        "refuses: tconv's geometry has 1 to 3 spatial axes", _T),
    "integer": Divergence(
        "integer (or complex) operands", "JAX computes integer convolutions",
        "refuses non-floating arrays, as every tconv dialect does", _T),
}


# ------------------------------------------------------------------ arguments


def _dimension_numbers(ndim: int, dimension_numbers: Any, context: str):
    """``(lhs_perm, rhs_perm, out_perm)``: axis indices of ``(N, C, *spatial)``,
    ``(O, I, *spatial)`` and ``(N, C, *spatial)``, spatial axes in the rhs spec's order."""
    def bad(why):
        return refuse(REFUSALS, "dimension_numbers", dimension_numbers, context, why=why)

    if dimension_numbers is None:
        iota = tuple(range(ndim))
        return iota, iota, iota
    if not isinstance(dimension_numbers, (tuple, list)) or len(dimension_numbers) != 3:
        raise bad("must be None, a ConvDimensionNumbers or a tuple of 3 strings")
    if all(isinstance(spec, str) for spec in dimension_numbers):
        lhs_spec, rhs_spec, out_spec = dimension_numbers
        pairs = (("N", "C"), ("O", "I"), ("N", "C"))
        for i, (spec, (a, b)) in enumerate(zip(dimension_numbers, pairs)):
            if len(spec) != ndim:
                raise bad(f"element {i} ({spec!r}) must have {ndim} characters, the ndim of lhs and rhs")
            if spec.count(a) != 1 or spec.count(b) != 1 or len(set(spec)) != len(spec):
                raise bad(f"element {i} ({spec!r}) must contain '{a}' and '{b}' exactly once "
                          "and no duplicate characters")
        if not set(lhs_spec) - {"N", "C"} == set(rhs_spec) - {"O", "I"} == set(out_spec) - {"N", "C"}:
            raise bad("elements must each have the same set of spatial characters")
        spatial = [c for c in rhs_spec if c not in "OI"]

        def perm(spec, pair):
            return (spec.index(pair[0]), spec.index(pair[1])) + tuple(spec.index(c) for c in spatial)

        return perm(lhs_spec, "NC"), perm(rhs_spec, "OI"), perm(out_spec, "NC")
    perms = []
    for spec in dimension_numbers:  # ConvDimensionNumbers: three tuples of axis indices
        if isinstance(spec, str) or not isinstance(spec, (tuple, list)) \
                or sorted(_args.is_int(v) and int(v) for v in spec) != list(range(ndim)):
            raise bad(f"each spec must be a permutation of range({ndim}) (or all three strings)")
        perms.append(tuple(int(v) for v in spec))
    return tuple(perms)


def _ints(value: Any, rank: int, name: str, context: str, key: str, default: int | None = None):
    if value is None and default is not None:
        return (default,) * rank
    value = _args.scalar(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray)) \
            or len(value) != rank or not all(_args.is_int(v) and v > 0 for v in value):
        raise refuse(REFUSALS, key, value, context, name=name, rank=rank)
    return tuple(int(v) for v in value)


def _pad_pairs(padding: Any, rank: int, context: str) -> tuple[tuple[int, int], ...]:
    pairs = []
    try:
        for pair in padding:
            lo, hi = pair
            if not (_args.is_int(lo) and _args.is_int(hi)):
                raise TypeError
            pairs.append((int(lo), int(hi)))
    except (TypeError, ValueError):
        raise refuse(REFUSALS, "padding_pairs", padding, context, rank=rank) from None
    if len(pairs) != rank:
        raise refuse(REFUSALS, "padding_pairs", padding, context, rank=rank)
    return tuple(pairs)


def _result_dtype(lhs: np.ndarray, preferred: Any, context: str) -> np.dtype:
    if preferred is None:
        return lhs.dtype
    try:
        dtype = np.dtype(preferred)
    except TypeError:
        raise refuse(REFUSALS, "preferred_element_type", repr(preferred), context,
                     dtype=lhs.dtype) from None
    if dtype.kind != "f" or dtype.itemsize < lhs.dtype.itemsize:
        raise refuse(REFUSALS, "preferred_element_type", dtype.name, context, dtype=lhs.dtype)
    return dtype


# ------------------------------------------------------------------ compute


def _neutral_kernel(w: np.ndarray, groups: int, flipped: bool) -> np.ndarray:
    """JAX's ``(O, I, *k)`` kernel in tconv's neutral layout.

    Forward: ``(*k, I, O)``. Lhs-dilated (a transposed convolution of the flipped
    kernel from ``groups*I`` to ``O`` channels): the forward kernel of its adjoint,
    ``(*k, O/groups, groups*I)``, where group ``g`` owns outputs ``g*O/groups...`` and
    inputs ``g*I...``.
    """
    rank = w.ndim - 2
    spatial = tuple(range(2, 2 + rank))
    if not flipped:
        return w.transpose(spatial + (1, 0))
    o, i = w.shape[:2]
    w = np.flip(w, spatial).reshape((groups, o // groups, i) + w.shape[2:])
    w = w.transpose(tuple(range(3, 3 + rank)) + (1, 0, 2))  # (*k, O/g, g, I)
    return w.reshape(w.shape[:rank] + (o // groups, groups * i))


def _conv_canonical(x, w, strides, pads, lhs_dil, rhs_dil, groups, out_spatial):
    """Channels-last ``x`` ``(N, *n, C)`` and ``(O, I, *k)`` ``w``; a non-empty output."""
    spatial, kernel = x.shape[1:-1], w.shape[2:]
    if all(d == 1 for d in lhs_dil):
        axes = tuple(AxisGeometry(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                     in zip(spatial, kernel, strides, rhs_dil, pads))
        geometry = Geometry(axes, x.shape[-1], w.shape[0], groups)
        return ops.run(geometry, x, _neutral_kernel(w, groups, flipped=False))
    # correlation of the lhs-dilated input = transposed conv of the flipped kernel,
    # at window stride 1; the window stride then keeps every s-th cell
    axes = tuple(lhs_dilated_axis(n, k, ld, d, lo, hi) for n, k, ld, d, (lo, hi)
                 in zip(spatial, kernel, lhs_dil, rhs_dil, pads))
    geometry = Geometry(axes, w.shape[0], x.shape[-1], groups, transposed=True)
    y = ops.run(geometry, x, _neutral_kernel(w, groups, flipped=True))
    y = y[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
    return ops.contiguous(y)


def _general(context, lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
             dimension_numbers, feature_group_count, batch_group_count, preferred_element_type,
             dnums=None):
    """``conv_general_dilated`` on arrays; ``dnums`` skips parsing (conv_transpose did it)."""
    if lhs.ndim != rhs.ndim:
        raise refuse(REFUSALS, "ndim", rhs, context, lhs=lhs.ndim, rhs=rhs.ndim)
    lhs_perm, rhs_perm, out_perm = dnums or _dimension_numbers(lhs.ndim, dimension_numbers, context)
    rank = lhs.ndim - 2
    if lhs_dilation is not None:
        lhs_dil = _ints(lhs_dilation, rank, "lhs_dilation", context, "dilation")
    if isinstance(padding, str) and lhs_dilation is not None and any(d != 1 for d in lhs_dil):
        raise refuse(REFUSALS, "padding_lhs_dilation", padding, context, lhs_dilation=lhs_dilation)
    lhs_dil = (1,) * rank if lhs_dilation is None else lhs_dil
    rhs_dil = _ints(rhs_dilation, rank, "rhs_dilation", context, "dilation", default=1)
    strides = _ints(window_strides, rank, "window_strides", context, "window_strides")
    if not 1 <= rank <= 3:
        raise TconvError("lhs", lhs, f"has {rank} spatial dimensions; tconv computes 1 to 3 "
                         "(DIVERGENCES['rank'])", context=context)
    if lhs.dtype != rhs.dtype:
        raise refuse(REFUSALS, "dtype", rhs, context)
    same_dtype(context, lhs=lhs, rhs=rhs)
    dtype = _result_dtype(lhs, preferred_element_type, context)

    # canonical views: lhs (N, C, *n), rhs (O, I, *k), spatial in the rhs spec's order
    x, w = lhs.transpose(lhs_perm), rhs.transpose(rhs_perm)
    (batch, channels), spatial = x.shape[:2], x.shape[2:]
    (out_channels, in_per_group), kernel = w.shape[:2], w.shape[2:]
    for key, count in (("feature_group_count", feature_group_count),
                       ("batch_group_count", batch_group_count)):
        if not _args.is_int(count) or count < 1:
            raise refuse(REFUSALS, key, count, context, why="must be a positive integer")
    groups, bgroups = int(feature_group_count), int(batch_group_count)
    if channels % groups:
        raise refuse(REFUSALS, "feature_group_count", groups, context,
                     why=f"must divide lhs feature dimension size {channels}")
    if channels // groups != in_per_group:
        raise refuse(REFUSALS, "channels", lhs, context, c=channels, g=groups, i=in_per_group)
    if out_channels % groups:
        raise refuse(REFUSALS, "feature_group_count", groups, context,
                     why=f"must divide the rhs output feature dimension size {out_channels}")
    if bgroups > 1 and batch % bgroups:
        raise refuse(REFUSALS, "batch_group_count", bgroups, context,
                     why=f"must divide lhs batch dimension size {batch}")
    if out_channels % bgroups:
        raise refuse(REFUSALS, "batch_group_count", bgroups, context,
                     why=f"must divide the rhs output feature dimension size {out_channels}")
    if bgroups > 1 and groups > 1:
        raise refuse(REFUSALS, "batch_group_count", bgroups, context,
                     why=f"and feature_group_count={groups} may not both be > 1")
    if any(k < 1 for k in kernel):
        raise refuse(REFUSALS, "kernel_size", rhs, context)

    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "SAME_LOWER", "VALID"):
            raise refuse(REFUSALS, "padding_string", padding, context)
        pads = tuple((0, 0) if mode == "VALID" else
                     same_pads(n, k, s, d, extra_at="end" if mode == "SAME" else "start")
                     for n, k, s, d in zip(spatial, kernel, strides, rhs_dil))
    else:
        pads = _pad_pairs(padding, rank, context)
    dilated = tuple(lhs_dilated_length(n, ld) for n, ld in zip(spatial, lhs_dil))
    if any(n + lo + hi < 0 for n, (lo, hi) in zip(dilated, pads)):
        raise refuse(REFUSALS, "negative_padding", padding, context, shape=spatial)
    out_spatial = tuple(conv_output_length(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                        in zip(dilated, kernel, strides, rhs_dil, pads))

    out_batch = batch // bgroups
    if out_batch == 0 or 0 in out_spatial or 0 in spatial:
        y = np.zeros((out_batch,) + out_spatial + (out_channels,), dtype)  # JAX gives empty/zero outputs
    else:
        x = np.moveaxis(x, 1, -1).astype(dtype, copy=False)
        w = w.astype(dtype, copy=False)
        # batch_group_count: batch slice g meets output features g*O/bg... (weight gradients)
        per_o = out_channels // bgroups
        parts = [_conv_canonical(x[g * out_batch:(g + 1) * out_batch], w[g * per_o:(g + 1) * per_o],
                                 strides, pads, lhs_dil, rhs_dil, groups, out_spatial)
                 for g in range(bgroups)]
        y = parts[0] if bgroups == 1 else np.concatenate(parts, axis=-1)
    # canonical (N, *spatial, C) -> (N, C, *spatial) -> the out spec's layout
    y = np.moveaxis(y, -1, 1)
    return ops.contiguous(y.transpose(np.argsort(out_perm)))


def _prepare(context: str, lhs: Any, rhs: Any):
    return as_array(lhs, "lhs", context), as_array(rhs, "rhs", context)


# ------------------------------------------------------------------ public


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None, out_sharding=None) -> np.ndarray:
    """``jax.lax.conv_general_dilated``: lhs ``(N, C, *spatial)`` and rhs ``(O, I, *k)`` by
    default, any layout through ``dimension_numbers``.

    ``lhs_dilation`` > 1 is a transposed convolution (explicit pairs only, as in JAX);
    ``feature_group_count`` groups channels; ``batch_group_count`` splits the batch
    into contiguous slices, slice ``g`` meeting output features ``g*O/bg ... (g+1)*O/bg``
    (XLA's semantics, used for weight gradients of grouped convolutions).

    >>> x = np.arange(5.0).reshape(1, 1, 5)
    >>> w = np.array([1.0, 10.0]).reshape(1, 1, 2)
    >>> conv_general_dilated(x, w, (1,), "VALID")[0, 0]
    array([10., 21., 32., 43.])
    >>> conv_general_dilated(x, w, (1,), [(0, 0)], lhs_dilation=(2,))[0, 0]   # zeros between
    array([ 0., 10.,  1., 20.,  2., 30.,  3., 40.])
    """
    del precision, out_sharding  # tconv accumulates in the result dtype, on one host
    context = "jax.lax.conv_general_dilated"
    x, w = _prepare(context, lhs, rhs)
    return _general(context, x, w, window_strides, padding, lhs_dilation, rhs_dilation,
                    dimension_numbers, feature_group_count, batch_group_count,
                    preferred_element_type)


_TRANSPOSE_DEFAULTS = {2: ("NC", "IO", "NC"), 3: ("NHC", "HIO", "NHC"), 4: ("NHWC", "HWIO", "NHWC"),
                       5: ("NHWDC", "HWDIO", "NHWDC")}


def conv_transpose(lhs, rhs, strides, padding, rhs_dilation=None, dimension_numbers=None,
                   transpose_kernel=False, precision=None, preferred_element_type=None,
                   use_consistent_padding=False) -> np.ndarray:
    """``jax.lax.conv_transpose``: lhs ``(N, *spatial, C)`` and rhs ``(*k, I, O)`` by default.

    A correlation of the ``strides``-dilated input with the kernel, padded by
    :func:`~tconv.geometry.jax_transpose_pads`: 'SAME' gives ``n*stride`` cells and
    'VALID' ``(n-1)*stride + max(k_eff, stride)``, as Keras; pairs pad the dilated input
    as they are (``use_consistent_padding=False``) or are the forward convolution's
    padding (``True``, PyTorch's meaning). ``transpose_kernel=True`` flips the spatial
    axes and swaps I and O, making this the gradient-style transposed convolution of
    TensorFlow/Keras (rhs then holds ``(*k, out, in)``).
    """
    del precision
    context = "jax.lax.conv_transpose"
    x, w = _prepare(context, lhs, rhs)
    if x.ndim != w.ndim or x.ndim < 2:
        raise refuse(REFUSALS, "conv_transpose_rank", x, context)
    if dimension_numbers is None:
        if x.ndim not in _TRANSPOSE_DEFAULTS:
            raise refuse(REFUSALS, "no_default", dimension_numbers, context)
        dimension_numbers = _TRANSPOSE_DEFAULTS[x.ndim]
    dnums = _dimension_numbers(x.ndim, dimension_numbers, context)
    rank = x.ndim - 2
    rhs_perm = dnums[1]
    kernel = tuple(w.shape[a] for a in rhs_perm[2:])
    rhs_dil = _ints(rhs_dilation, rank, "rhs_dilation", context, "dilation", default=1)
    lhs_dil = _ints(strides, rank, "strides", context, "window_strides")
    if use_consistent_padding or (isinstance(padding, str) and padding in ("SAME", "VALID")):
        if isinstance(padding, str):
            if padding not in ("SAME", "VALID"):
                raise refuse(REFUSALS, "padding_mode", padding, context)
            per_axis = [padding] * rank
        else:
            per_axis = list(padding) if isinstance(padding, (tuple, list)) else None
            if per_axis is None or len(per_axis) != rank or not all(
                    isinstance(p, tuple) and len(p) == 2 and all(_args.is_int(v) for v in p)
                    for p in per_axis):
                raise refuse(REFUSALS, "padding_mode", padding, context)
        pads = [jax_transpose_pads(0, k, s, d, p, use_consistent_padding=use_consistent_padding)
                for k, s, d, p in zip(kernel, lhs_dil, rhs_dil, per_axis)]
    else:
        pads = padding  # pairs pad the dilated input; other strings meet conv_general_dilated's rules
    if transpose_kernel:
        w = np.flip(w, rhs_perm[2:]).swapaxes(rhs_perm[0], rhs_perm[1])
    return _general(context, x, w, (1,) * rank, pads, lhs_dil, rhs_dil, None, 1, 1,
                    preferred_element_type, dnums=dnums)
