"""Kernel and bias conversion between the frameworks' layouts, exactly.

Every framework stores the same numbers in a different order. tconv goes through one
neutral layout, the *forward* convolution's ``(*kernel, in/groups, out)`` (TensorFlow's
HWIO), for both directions: a transposed convolution's kernel is the kernel of the
forward convolution it is the adjoint of, ``(*kernel, out/groups, in)`` in the layer's
own terms.

A framework's kernel is described by a :class:`KernelFormat`:

- ``layout``: one letter per axis, spatial letters plus ``I`` (this layer's input
  channels) and ``O`` (its output channels);
- ``flipped``: the spatial axes are reversed relative to the neutral kernel
  (``jax.lax.conv_transpose`` without ``transpose_kernel``, and ``conv_general_dilated``
  with ``lhs_dilation``, correlate the stride-dilated input with the kernel as it is);
- ``per_group``: which channel axis holds ``channels / groups`` entries.

=========================  ==================  ============================
framework                  forward             transposed
=========================  ==================  ============================
keras, tf                  ``(*k, in/g, out)``  ``(*k, out/g, in)``
torch, onnx                ``(out, in/g, *k)``  ``(in, out/g, *k)``
jax (``conv_general``)     ``(out, in/g, *k)``  lhs-dilated: ``(out, in/g, *k)``, flipped
jax (``conv_transpose``)   --                  ``transpose_kernel=True``: ``(*k, out, in)``;
                                               ``False``: ``(*k, in, out)``, flipped
=========================  ==================  ============================

>>> import numpy as np
>>> k = np.arange(3 * 3 * 4 * 2.0).reshape(3, 3, 4, 2)       # keras Conv2DTranspose: (kH, kW, out, in)
>>> convert(k, from_="keras", to="torch", transposed=True).shape   # torch: (in, out, kH, kW)
(2, 4, 3, 3)
>>> back = convert(convert(k, "keras", "jax", transposed=True, jax_transpose_kernel=False),
...                "jax", "keras", transposed=True, jax_transpose_kernel=False)
>>> bool((back == k).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tconv import _args
from tconv.errors import TconvError
from tconv.layout import SPATIAL

__all__ = ["KernelFormat", "kernel_format", "convert", "convert_bias", "to_neutral", "from_neutral",
           "expand_groups", "dilate_kernel", "FRAMEWORKS"]

FRAMEWORKS = ("keras", "tf", "torch", "jax", "onnx")


@dataclass(frozen=True)
class KernelFormat:
    """How one framework lays out a kernel (see the module docstring)."""

    layout: str
    flipped: bool = False
    per_group: str = "I"

    @property
    def rank(self) -> int:
        return len(self.layout) - 2


def _neutral_format(rank: int, transposed: bool) -> KernelFormat:
    s = SPATIAL[rank]
    return KernelFormat(s + "OI", False, "O") if transposed else KernelFormat(s + "IO", False, "I")


def kernel_format(framework: str, rank: int, transposed: bool = False, *,
                  jax_transpose_kernel: bool = True, jax_lhs_dilated: bool = False,
                  layout: str | None = None) -> KernelFormat:
    """The :class:`KernelFormat` of ``framework``'s default kernel for this kind of layer.

    For JAX: a transposed layer is ``lax.conv_transpose`` (rhs ``HWIO`` by default, with
    ``transpose_kernel`` semantics) unless ``jax_lhs_dilated`` (``conv_general_dilated``
    with ``lhs_dilation``, rhs ``OIHW``, flipped); ``layout`` overrides the rhs letters
    (``dimension_numbers[1]``, in the op's own I/O naming).
    """
    if framework not in FRAMEWORKS:
        raise TconvError("framework", framework, f"must be one of {', '.join(FRAMEWORKS)}")
    if rank not in (1, 2, 3):
        raise TconvError("rank", rank, "must be 1, 2 or 3")
    s = SPATIAL[rank]
    if framework in ("keras", "tf"):
        return _neutral_format(rank, transposed)
    if framework in ("torch", "onnx"):
        return KernelFormat("IO" + s, False, "O") if transposed else KernelFormat("OI" + s, False, "I")
    # jax
    if not transposed:
        return KernelFormat(layout or "OI" + s, False, "I")
    if jax_lhs_dilated:
        return KernelFormat(layout or "OI" + s, True, "I")
    rhs = layout or s + "IO"
    if jax_transpose_kernel:  # rhs's "I" axis holds the outputs: (*k, out, in) by default
        swapped = rhs.replace("I", "i").replace("O", "I").replace("i", "O")
        return KernelFormat(swapped, False, "O")
    return KernelFormat(rhs, True, "O")


def _groups(groups) -> int:
    if not _args.is_int(groups) or groups < 1:
        raise TconvError("groups", groups, "must be a positive integer")
    return int(groups)


def _check(kernel: np.ndarray, fmt: KernelFormat) -> None:
    if kernel.ndim != len(fmt.layout):
        raise TconvError("kernel", kernel, f"must have {len(fmt.layout)} axes laid out as {fmt.layout}")


def _regroup(array: np.ndarray, full_axis: int, group_axis: int, groups: int) -> np.ndarray:
    """Move the group split from ``full_axis`` to ``group_axis``: ``(X, Y/g) -> (X/g, Y)``.

    Group ``g`` owns entries ``g*X/groups ...`` of the full axis and all of the per-group
    axis; afterwards it owns all of ``full_axis``'s per-group slice and entries
    ``g*Y/groups ...`` of ``group_axis``.
    """
    if groups == 1:
        return array
    a = np.moveaxis(array, (full_axis, group_axis), (-2, -1))
    x, y = a.shape[-2:]
    if x % groups:
        raise TconvError("groups", groups, f"must divide the kernel's channel axis of {x}")
    a = a.reshape(a.shape[:-2] + (groups, x // groups, y))
    a = np.moveaxis(a, -3, -2).reshape(a.shape[:-3] + (x // groups, groups * y))
    return np.moveaxis(a, (-2, -1), (full_axis, group_axis))


def to_neutral(kernel, fmt: KernelFormat, *, transposed: bool, groups: int = 1) -> np.ndarray:
    """``kernel`` in ``fmt`` -> tconv's neutral ``(*k, fwd_in/groups, fwd_out)``."""
    kernel = _args.as_array(kernel, "kernel")
    groups = _groups(groups)
    _check(kernel, fmt)
    neutral = _neutral_format(fmt.rank, transposed)
    spatial = [c for c in fmt.layout if c not in "IO"]
    rename = dict(zip(spatial, SPATIAL[fmt.rank]))
    src = "".join(rename.get(c, c) for c in fmt.layout)
    out = kernel.transpose(tuple(src.index(c) for c in neutral.layout))
    if fmt.per_group != neutral.per_group:
        full = neutral.layout.index(neutral.per_group)
        out = _regroup(out, full, neutral.layout.index(fmt.per_group), groups)
    if fmt.flipped:
        out = np.flip(out, tuple(range(fmt.rank)))
    return np.array(out, order="C")  # a copy with positive strides, even on length-1 flipped axes


def from_neutral(neutral, fmt: KernelFormat, *, transposed: bool, groups: int = 1) -> np.ndarray:
    """tconv's neutral kernel -> ``fmt`` (the inverse of :func:`to_neutral`)."""
    out = _args.as_array(neutral, "neutral")
    groups = _groups(groups)
    base = _neutral_format(fmt.rank, transposed)
    _check(out, base)
    if fmt.flipped:
        out = np.flip(out, tuple(range(fmt.rank)))
    if fmt.per_group != base.per_group:
        out = _regroup(out, base.layout.index(fmt.per_group), base.layout.index(base.per_group), groups)
    spatial = [c for c in fmt.layout if c not in "IO"]
    rename = dict(zip(SPATIAL[fmt.rank], spatial))
    src = "".join(rename.get(c, c) for c in base.layout)
    return np.array(out.transpose(tuple(src.index(c) for c in fmt.layout)), order="C")


def convert(kernel, from_: str, to: str, transposed: bool = False, groups: int = 1, *,
            jax_transpose_kernel: bool = True, from_format: KernelFormat | None = None,
            to_format: KernelFormat | None = None) -> np.ndarray:
    """Convert a kernel from ``from_``'s layout to ``to``'s (keras, tf, torch, jax, onnx).

    Parameters
    ----------
    kernel : array in ``from_``'s layout (see the module table)
    transposed : whether the layer is a transposed convolution
    groups : the layer's groups (moves the group split where two formats disagree)
    jax_transpose_kernel : for JAX's ``conv_transpose``: True (TensorFlow's kernel, no
        flip) or False (Flax's default: ``(*k, in, out)``, spatially flipped)
    from_format, to_format : explicit :class:`KernelFormat` overriding the defaults

    Examples
    --------
    >>> w = np.arange(2 * 4 * 3.0).reshape(2, 4, 3)    # torch ConvTranspose1d: (in, out, k)
    >>> convert(w, "torch", "keras", transposed=True).shape   # (k, out, in)
    (3, 4, 2)
    >>> flax = convert(w, "torch", "jax", transposed=True, jax_transpose_kernel=False)
    >>> bool((flax[::-1] == w.transpose(2, 0, 1)).all())   # (k, in, out), flipped
    True
    """
    kernel = _args.as_array(kernel, "kernel")
    groups = _groups(groups)
    rank = kernel.ndim - 2
    src = from_format or kernel_format(from_, rank, transposed, jax_transpose_kernel=jax_transpose_kernel)
    dst = to_format or kernel_format(to, rank, transposed, jax_transpose_kernel=jax_transpose_kernel)
    if groups > 1 and ((from_ == "jax" and transposed and from_format is None)
                       or (to == "jax" and transposed and to_format is None)):
        raise TconvError("groups", groups, "jax.lax.conv_transpose has no groups; pass "
                         "from_format/to_format=kernel_format('jax', rank, True, jax_lhs_dilated=True) "
                         "for conv_general_dilated with lhs_dilation")
    return from_neutral(to_neutral(kernel, src, transposed=transposed, groups=groups), dst,
                        transposed=transposed, groups=groups)


def convert_bias(bias, from_: str | None = None, to: str | None = None):
    """Every framework's bias is ``(out_channels,)``: a copy (``None`` stays ``None``)."""
    if bias is None:
        return None
    bias = _args.as_array(bias, "bias")
    if bias.ndim != 1:
        raise TconvError("bias", bias, "must have one axis, (out_channels,)")
    return bias.copy()


def expand_groups(neutral, groups: int) -> np.ndarray:
    """A grouped neutral kernel ``(*k, in/g, out)`` as the dense block-diagonal ``(*k, in, out)``.

    Exact (the off-diagonal blocks are zeros): how a framework without grouped (transposed)
    convolutions runs a grouped layer.
    """
    neutral = _args.as_array(neutral, "neutral")
    if groups == 1:
        return neutral
    if neutral.ndim < 3:
        raise TconvError("neutral", neutral, "must have 3 to 5 axes: (*kernel, in/groups, out)")
    *k, ig, o = neutral.shape
    if o % _groups(groups):
        raise TconvError("groups", groups, f"must divide the kernel's {o} output channels")
    og = o // groups
    dense = np.zeros(tuple(k) + (ig * groups, o), neutral.dtype)
    for g in range(groups):
        dense[..., g * ig:(g + 1) * ig, g * og:(g + 1) * og] = neutral[..., g * og:(g + 1) * og]
    return dense


def dilate_kernel(neutral, dilation) -> np.ndarray:
    """A neutral kernel with ``dilation - 1`` zeros between taps, to run undilated (exact)."""
    neutral = _args.as_array(neutral, "neutral")
    rank = neutral.ndim - 2
    if rank < 1:
        raise TconvError("neutral", neutral, "must have 3 to 5 axes: (*kernel, in/groups, out)")
    dilation = _args.int_tuple(dilation, rank, "dilation")
    if all(d == 1 for d in dilation):
        return neutral
    span = tuple(d * (k - 1) + 1 for d, k in zip(dilation, neutral.shape[:rank]))
    from tconv import budget

    budget.check(int(np.prod(span + neutral.shape[rank:], dtype=object)) * neutral.dtype.itemsize,
                 "dilation", dilation, f"(a dilated kernel of shape {span + neutral.shape[rank:]})")
    out = np.zeros(span + neutral.shape[rank:], neutral.dtype)
    out[tuple(slice(None, None, d) for d in dilation)] = neutral
    return out
