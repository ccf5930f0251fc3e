"""Convolution arithmetic: the single home of every size, padding and crop rule.

Everything in tconv that needs a length, a pad or a crop asks this module; nothing
else derives one. It imports only the standard library.

One axis of a convolution is described in *forward* terms by :class:`AxisGeometry`:
``(size, kernel, stride, dilation, pad_lo, pad_hi)``. The forward convolution maps
``size`` to ``out``::

    out = floor((size + pad_lo + pad_hi - dilated_kernel) / stride) + 1
    dilated_kernel = dilation * (kernel - 1) + 1

The transposed convolution on the same axis is its adjoint: it maps ``out`` back to
``size``. Seen as "scatter, then crop", every input cell stamps the dilated kernel
onto a grid of ``full = (out - 1) * stride + dilated_kernel`` cells at stride steps,
and the result is that grid with ``crop_lo = pad_lo`` cells cut from the start and
``crop_hi = pad_hi - extra`` from the end, where ``extra`` (``0 <= extra < stride``)
is the tail of the forward input that no strided window reached. A negative crop
is zero extension. Every framework's transposed convolution is this one operation
with a different ``(crop_lo, crop_hi)``; the ``*_transpose_*`` functions below give
each framework's rule for choosing it.

A negative pad of the forward convolution crops its input; that is what makes
every (crop_lo, crop_hi) pair expressible as the adjoint of some forward geometry.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Iterator, Sequence

from tconv.errors import TconvError

__all__ = [
    "AxisGeometry",
    "Geometry",
    "dilated_kernel",
    "conv_output_length",
    "full_length",
    "same_pads",
    "causal_pads",
    "onnx_conv_pads",
    "tf_transpose_crops",
    "tf_valid_outputs",
    "keras_transpose_length",
    "keras_transpose_crops",
    "torch_transpose_crops",
    "torch_output_padding_for_size",
    "jax_transpose_pads",
    "lhs_dilated_axis",
    "onnx_transpose_crops",
    "as_axes",
    "phase_tap_counts",
    "torch_args_for_crops",
    "symmetric_reading",
    "jax_pads_for_crops",
    "lhs_dilated_length",
    "tf_conv3d_same_pads",
    "scatter_position",
    "window_position",
    "kept_window",
    "tap_pairs",
    "flipped_tap",
]


# --------------------------------------------------------------------------- basics


def dilated_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``dilation * (kernel - 1) + 1``.

    >>> dilated_kernel(3, 2)
    5
    """
    return dilation * (kernel - 1) + 1


def conv_output_length(size: int, kernel: int, stride: int = 1, dilation: int = 1,
                       pad_lo: int = 0, pad_hi: int = 0) -> int:
    """Forward convolution output length; ``<= 0`` means no window fits.

    ``floor((size + pad_lo + pad_hi - dilation*(kernel-1) - 1) / stride) + 1``

    >>> conv_output_length(16, 3, 2, 1, 0, 1)   # TF 'same' on 16: ceil(16/2)
    8
    >>> conv_output_length(2, 3)                 # kernel larger than input
    0
    """
    span = size + pad_lo + pad_hi - dilated_kernel(kernel, dilation)
    return span // stride + 1 if span >= 0 else 0


def full_length(input: int, kernel: int, stride: int = 1, dilation: int = 1) -> int:
    """Length of a transposed convolution's full scatter: ``(input-1)*stride + d*(k-1) + 1``.

    >>> full_length(8, 3, 2)   # the seed's case: 8 -> 17, before the crop
    17
    """
    return (input - 1) * stride + dilated_kernel(kernel, dilation)


# ---------------------------------------------------------------- the plan objects


@dataclass(frozen=True)
class AxisGeometry:
    """One spatial axis, in forward terms (see the module docstring).

    Parameters
    ----------
    size : int
        Forward input length, which is the transposed convolution's output length.
    kernel, stride, dilation : int
        Positive integers.
    pad_lo, pad_hi : int
        Forward padding before and after (negative: the input is cropped there).
        For the transposed convolution these are ``crop_lo`` and ``crop_hi + extra``.

    Examples
    --------
    The seed's case, Keras ``Conv2DTranspose(512, 3, strides=2, padding='same')``
    on 8 cells, is the adjoint of TF's 'same' convolution of 16 cells:

    >>> ax = AxisGeometry(16, 3, 2, 1, 0, 1)
    >>> ax.out, ax.full, ax.crop_lo, ax.crop_hi
    (8, 17, 0, 1)
    """

    size: int
    kernel: int
    stride: int = 1
    dilation: int = 1
    pad_lo: int = 0
    pad_hi: int = 0

    def __post_init__(self) -> None:
        for name in ("size", "kernel", "stride", "dilation", "pad_lo", "pad_hi"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TconvError(name, value, "must be an integer")
        for name in ("kernel", "stride", "dilation"):
            if getattr(self, name) < 1:
                raise TconvError(name, getattr(self, name), "must be a positive integer")
        if self.size < 1:
            raise TconvError("size", self.size, "must be at least 1")
        padded = self.size + self.pad_lo + self.pad_hi
        if padded < self.dilated_kernel:
            raise TconvError(
                "kernel", self.kernel,
                f"spans {self.dilated_kernel} cells (dilation {self.dilation}), more than the "
                f"padded input ({self.size} + {self.pad_lo} + {self.pad_hi} = {padded}); "
                "the output would be empty")

    @classmethod
    def transposed(cls, input: int, kernel: int, stride: int = 1, dilation: int = 1,
                   crop_lo: int = 0, crop_hi: int = 0) -> "AxisGeometry":
        """The axis of a transposed convolution of ``input`` cells cropped by ``(crop_lo, crop_hi)``.

        >>> AxisGeometry.transposed(8, 3, 2, 1, 1, 0).size   # torch p=1, output_padding=1
        16
        """
        for name, value in (("input", input), ("crop_lo", crop_lo), ("crop_hi", crop_hi)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TconvError(name, value, "must be an integer")
        if input < 1:
            raise TconvError("input", input, "must be at least 1")
        full = full_length(input, kernel, stride, dilation)
        size = full - crop_lo - crop_hi
        if size < 1:
            raise TconvError("output", size,
                             f"must be at least 1: full scatter length {full} minus crops "
                             f"({crop_lo}, {crop_hi})")
        return cls(size, kernel, stride, dilation, crop_lo, crop_hi)

    # forward view (derived lengths are cached: the kernels ask for them on every call)
    @functools.cached_property
    def dilated_kernel(self) -> int:
        return dilated_kernel(self.kernel, self.dilation)

    @functools.cached_property
    def out(self) -> int:
        """Forward output length (= the transposed convolution's input length)."""
        return conv_output_length(self.size, self.kernel, self.stride, self.dilation,
                                  self.pad_lo, self.pad_hi)

    @property
    def extra(self) -> int:
        """Cells at the end of the padded forward input that no strided window reached."""
        return (self.size + self.pad_lo + self.pad_hi - self.dilated_kernel) % self.stride

    # transposed view
    @property
    def full(self) -> int:
        """Full scatter length of the transposed convolution, before any crop."""
        return full_length(self.out, self.kernel, self.stride, self.dilation)

    @property
    def crop_lo(self) -> int:
        """Cells the transposed convolution cuts from the start of the full scatter."""
        return self.pad_lo

    @property
    def crop_hi(self) -> int:
        """Cells cut from the end of the full scatter (negative: zero extension)."""
        return self.pad_hi - self.extra

    def tap_span(self, tap: int) -> tuple[int, int, int]:
        """Which outputs kernel tap ``tap`` reaches, without leaving the input.

        Returns ``(out_start, out_stop, in_start)``: forward output cells
        ``out_start <= o < out_stop`` read input cell ``in_start + (o - out_start) * stride``
        through this tap. The transposed convolution runs the same map backwards.
        An empty span has ``out_start == out_stop``.
        """
        offset = tap * self.dilation - self.pad_lo  # input cell read by output 0
        start = max(0, -(offset // self.stride))  # first o with offset + o*stride >= 0
        last = self.size - 1 - offset              # o*stride must not pass it
        stop = min(self.out, last // self.stride + 1) if last >= 0 else 0
        stop = max(stop, start)
        return start, stop, offset + start * self.stride


@dataclass(frozen=True)
class Geometry:
    """The whole plan: one :class:`AxisGeometry` per spatial axis, channels and groups.

    ``in_channels``/``out_channels`` are the *forward* convolution's; when
    ``transposed`` is true the operation maps ``out_channels`` back to ``in_channels``
    and ``out`` spatial lengths back to ``size``.
    """

    axes: tuple[AxisGeometry, ...]
    in_channels: int
    out_channels: int
    groups: int = 1
    transposed: bool = False

    def __post_init__(self) -> None:
        if not 1 <= len(self.axes) <= 3:
            raise TconvError("rank", len(self.axes), "must be 1, 2 or 3 spatial axes")
        for name in ("in_channels", "out_channels", "groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TconvError(name, value, "must be a positive integer")
        for name in ("in_channels", "out_channels"):
            if getattr(self, name) % self.groups:
                raise TconvError(name, getattr(self, name),
                                 f"must be divisible by groups={self.groups}")

    def __hash__(self) -> int:
        # computed once: the kernels' caches are keyed by the plan, looked up on every call
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = self.__dict__["_hash"] = hash(
                (self.axes, self.in_channels, self.out_channels, self.groups, self.transposed))
        return cached

    @property
    def rank(self) -> int:
        return len(self.axes)

    # derived shapes are cached: the kernels ask for them on every call
    @functools.cached_property
    def kernel_shape(self) -> tuple[int, ...]:
        return tuple(a.kernel for a in self.axes)

    @functools.cached_property
    def input_spatial(self) -> tuple[int, ...]:
        """Spatial shape of this operation's input."""
        return tuple(a.out if self.transposed else a.size for a in self.axes)

    @functools.cached_property
    def output_spatial(self) -> tuple[int, ...]:
        """Spatial shape of this operation's output."""
        return tuple(a.size if self.transposed else a.out for a in self.axes)

    @property
    def input_channels(self) -> int:
        return self.out_channels if self.transposed else self.in_channels

    @property
    def output_channels(self) -> int:
        return self.in_channels if self.transposed else self.out_channels

    @functools.cached_property
    def neutral_kernel_shape(self) -> tuple[int, ...]:
        """Kernel shape in tconv's neutral layout: ``(*kernel, in_channels/groups, out_channels)``
        of the forward convolution (TF's HWIO), for both directions."""
        return self.kernel_shape + (self.in_channels // self.groups, self.out_channels)

    def taps(self) -> Iterator[tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]]:
        """Each kernel tap with a non-empty reach, and its :meth:`AxisGeometry.tap_span` per axis.

        Taps that reach nothing are dropped per axis before the product, and the list is
        cached per plan: a 'same' kernel of 10^4 taps on 5 cells reaches only a few, and the
        kernels and the weight gradient ask for them on every call."""
        return iter(_reaching_taps(self.axes))

    def multiply_adds(self, batch: int = 1) -> int:
        """Multiply-adds of the dense computation (every tap at every forward output)."""
        count = batch * self.out_channels * (self.in_channels // self.groups)
        for a in self.axes:
            count *= a.out * a.kernel
        return count

    def flip(self) -> "Geometry":
        """The same plan in the other direction (conv <-> conv_transpose)."""
        return Geometry(self.axes, self.in_channels, self.out_channels, self.groups,
                        not self.transposed)

    def mirrored(self) -> "Geometry":
        """The forward convolution a transposed one of unit strides is: the same taps read
        mirrored (tap ``t`` becomes ``kernel - 1 - t``), channels the other way, each axis
        padded by the dilated kernel's span less one, less the forward padding
        (:func:`tconv.layout.mirrored_kernel` turns the kernel). A transposed convolution
        of unit strides scatters input cell ``o`` through tap ``t`` onto output cell
        ``o + t*d - pad_lo``; read from the output's side, output cell ``i`` gathers input
        cell ``i + t'*d - ((k-1)*d - pad_lo)`` through tap ``t' = k-1-t``.

        >>> g = Geometry((AxisGeometry(8, 3, 1, 2, 1, 0),), 5, 4, transposed=True)
        >>> m = g.mirrored()
        >>> m.transposed, m.input_spatial == g.input_spatial, m.output_spatial == g.output_spatial
        (False, True, True)
        >>> m.axes[0].pad_lo, m.axes[0].pad_hi, m.in_channels, m.out_channels
        (3, 4, 4, 5)
        """
        if not self.transposed or any(a.stride != 1 for a in self.axes):
            raise TconvError("geometry", self, "must be a transposed convolution of unit strides to be mirrored")
        axes = tuple(AxisGeometry(a.out, a.kernel, 1, a.dilation, a.dilated_kernel - 1 - a.pad_lo,
                                  a.dilated_kernel - 1 - a.pad_hi) for a in self.axes)
        return Geometry(axes, self.out_channels, self.in_channels, self.groups)

    def extended(self, pads: tuple[tuple[int, int], ...]) -> "Geometry":
        """The forward convolution read from its input extended by ``pads`` (per axis,
        ``(lo, hi)`` zero cells before and after), its padding less by as much: the same
        output, cell for cell, since a zero read from the input and one of the padding are
        alike. Each pad from 0 to the padding it replaces (0 where that side is cropped).

        >>> g = Geometry((AxisGeometry(8, 5, 1, 1, 4, 4),), 3, 2)        # 'full': 8 -> 12
        >>> e = g.extended(((2, 2),))
        >>> e.input_spatial, e.output_spatial == g.output_spatial, (e.axes[0].pad_lo, e.axes[0].pad_hi)
        ((12,), True, (2, 2))
        """
        if (self.transposed or len(pads) != self.rank
                or any(not (0 <= lo <= max(a.pad_lo, 0) and 0 <= hi <= max(a.pad_hi, 0))
                       for (lo, hi), a in zip(pads, self.axes))):
            raise TconvError("pads", pads, "must give each axis of a forward convolution (lo, hi), each "
                                           "from 0 to that side's padding")
        axes = tuple(AxisGeometry(a.size + lo + hi, a.kernel, a.stride, a.dilation, a.pad_lo - lo, a.pad_hi - hi)
                     for (lo, hi), a in zip(pads, self.axes))
        return Geometry(axes, self.in_channels, self.out_channels, self.groups)

    def padded_more(self, pads: tuple[tuple[int, int], ...]) -> "Geometry":
        """The forward convolution of unit strides with its padding larger by ``pads`` (per
        axis, ``(lo, hi)``, at least 0): an output of ``lo + hi`` more cells an axis, whose
        cells ``lo .. lo + out`` are this one's output, cell for cell (each reads the same
        input cells through the same taps; the cells added read zeros beyond them).

        >>> g = Geometry((AxisGeometry(8, 3, 1, 1, 0, 0),), 3, 2)        # 'valid': 8 -> 6
        >>> p = g.padded_more(((0, 2),))
        >>> p.input_spatial, p.output_spatial, (p.axes[0].pad_lo, p.axes[0].pad_hi)
        ((8,), (8,), (0, 2))
        """
        if (self.transposed or len(pads) != self.rank or any(a.stride != 1 for a in self.axes)
                or any(lo < 0 or hi < 0 for lo, hi in pads)):
            raise TconvError("pads", pads, "must give each axis of a forward convolution of unit strides "
                                           "(lo, hi), each at least 0")
        axes = tuple(AxisGeometry(a.size, a.kernel, 1, a.dilation, a.pad_lo + lo, a.pad_hi + hi)
                     for (lo, hi), a in zip(pads, self.axes))
        return Geometry(axes, self.in_channels, self.out_channels, self.groups)


@functools.lru_cache(maxsize=16)
def _reaching_taps(axes: tuple[AxisGeometry, ...]) -> tuple:
    per_axis = [[(t, span) for t in range(a.kernel) for span in (a.tap_span(t),) if span[1] > span[0]]
                for a in axes]
    return tuple((tuple(t for t, _ in combo), tuple(span for _, span in combo))
                 for combo in itertools.product(*per_axis))


# ------------------------------------------------------------- forward padding rules


def same_pads(size: int, kernel: int, stride: int = 1, dilation: int = 1,
              *, extra_at: str = "end") -> tuple[int, int]:
    """'SAME' padding of a forward convolution: output ``ceil(size/stride)``.

    TensorFlow, Keras, JAX 'SAME', ONNX 'SAME_UPPER' and PyTorch ``padding='same'``
    (stride 1 only) put the odd unit at the end; JAX 'SAME_LOWER' and ONNX
    'SAME_LOWER' at the start (``extra_at='start'``). Source: TensorFlow
    ``kernel_shape_util.cc`` (``GetWindowedOutputSizeVerbose``).

    >>> same_pads(16, 3, 2)
    (0, 1)
    >>> same_pads(15, 3, 2)
    (1, 1)
    >>> same_pads(16, 3, 2, extra_at="start")
    (1, 0)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilated_kernel(kernel, dilation) - size, 0)
    small = total // 2
    return (small, total - small) if extra_at == "end" else (total - small, small)


def causal_pads(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """Keras ``padding='causal'`` (Conv1D): all of ``d*(k-1)`` before, none after."""
    return dilated_kernel(kernel, dilation) - 1, 0


def onnx_conv_pads(size: int, kernel: int, stride: int, dilation: int, auto_pad: str,
                   pads: tuple[int, int]) -> tuple[int, int]:
    """ONNX ``Conv`` padding: ``auto_pad`` SAME_UPPER/SAME_LOWER/VALID, or explicit ``pads``.

    onnxruntime (1.32) does not clamp a negative SAME total ``p = (ceil(n/s)-1)*s + k_eff - n``
    (a kernel shorter than the stride, whose last window ends before the input does):
    it pads ``(trunc((p+1)/2), rest)`` for SAME_UPPER and ``(trunc((p+2)/2), rest)`` for
    SAME_LOWER, i.e. it crops the input's start, where the spec and TensorFlow pad
    ``(0, 0)``. Checked on every 1-D case with n < 30, k <= 3 < s <= 13.

    >>> onnx_conv_pads(8, 3, 2, 1, "SAME_LOWER", (0, 0))
    (1, 0)
    >>> onnx_conv_pads(4, 1, 4, 1, "SAME_UPPER", (0, 0))   # p = -3: starts at cell 1
    (-1, -2)
    """
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        total = (-(-size // stride) - 1) * stride + dilated_kernel(kernel, dilation) - size
        if total < 0:
            lo = -((-total - (1 if auto_pad == "SAME_UPPER" else 2)) // 2)
            lo = min(lo, 0)
            return lo, total - lo
    if auto_pad == "SAME_UPPER":
        return same_pads(size, kernel, stride, dilation, extra_at="end")
    if auto_pad == "SAME_LOWER":
        return same_pads(size, kernel, stride, dilation, extra_at="start")
    if auto_pad == "VALID":
        return 0, 0
    return pads


# ---------------------------------------------------------- transposed crop rules


def tf_transpose_crops(input: int, kernel: int, stride: int, dilation: int, output: int,
                       padding: str | tuple[int, int]) -> tuple[int, int]:
    """TensorFlow ``conv*_transpose``: validate ``output`` and give ``(crop_lo, crop_hi)``.

    TF takes ``output_shape`` from the caller and checks that the forward convolution
    with the same ``padding`` maps it back to ``input`` ("Conv2DSlowBackpropInput: Size
    of out_backprop doesn't match computed"; ``conv_grad_shape_utils.cc``). The crop is
    that forward convolution's ``pad_before``: 'SAME' puts the odd cell at the end,
    'VALID' crops nothing, an explicit pair crops ``pad_before``.

    >>> tf_transpose_crops(8, 3, 2, 1, 16, "SAME")
    (0, 1)
    >>> tf_transpose_crops(8, 3, 2, 1, 15, "SAME")
    (1, 1)
    """
    if isinstance(padding, str):
        pads = same_pads(output, kernel, stride, dilation) if padding == "SAME" else (0, 0)
    else:
        pads = padding
    computed = conv_output_length(output, kernel, stride, dilation, *pads)
    if computed != input:
        raise TconvError(
            "output_shape", output,
            f"is inconsistent with the input: a {padding!r} convolution of length {output} "
            f"(kernel {kernel}, stride {stride}, dilation {dilation}) has length {computed}, "
            f"not {input}", valid=tf_valid_outputs(input, kernel, stride, dilation, padding))
    return pads[0], full_length(input, kernel, stride, dilation) - output - pads[0]


def tf_valid_outputs(input: int, kernel: int, stride: int, dilation: int,
                     padding: str | tuple[int, int]) -> list[int]:
    """Every ``output_shape`` entry TensorFlow accepts for ``input`` (for messages and solvers).

    They are always one run of consecutive lengths (``stride`` of them, fewer where the
    run would start below 1): a list for small strides, a lazy ``range`` beyond 64, so
    that a stride of 2**63 costs nothing.
    """
    if padding == "SAME":  # ceil(o / stride) == input
        valid = range((input - 1) * stride + 1, input * stride + 1)
    else:
        pads = (0, 0) if isinstance(padding, str) else padding
        base = full_length(input, kernel, stride, dilation) - pads[0] - pads[1]
        # o = base + j (0 <= j < stride) gives floor(((input-1)*stride + j) / stride) + 1 == input
        valid = range(max(1, base), base + stride)
    return list(valid) if stride <= 64 else valid


def keras_transpose_length(input: int, kernel: int, stride: int, dilation: int,
                           padding: str, output_padding: int | None) -> int:
    """Keras' output length of ``Conv*DTranspose`` (``compute_conv_transpose_output_shape``).

    'same' without ``output_padding`` gives ``input * stride``; with it,
    ``(input-1)*stride + k_eff % 2 + output_padding`` (so ``output_padding=0`` is not
    ``None``). 'valid' gives ``(input-1)*stride + k_eff + output_padding`` where a
    missing ``output_padding`` is ``max(k_eff, stride) - k_eff``.
    Source: keras/src/backend/common/backend_utils.py, ``_get_output_shape_given_tf_padding``.

    >>> keras_transpose_length(8, 3, 2, 1, "same", None)
    16
    >>> keras_transpose_length(8, 3, 2, 1, "same", 0)
    15
    """
    k_eff = dilated_kernel(kernel, dilation)
    if padding == "valid":
        if output_padding is None:
            output_padding = max(k_eff, stride) - k_eff
        return (input - 1) * stride + k_eff + output_padding
    if output_padding is None:
        return input * stride
    return (input - 1) * stride + k_eff % 2 + output_padding


def keras_transpose_crops(input: int, kernel: int, stride: int, dilation: int,
                          padding: str, output_padding: int | None) -> tuple[int, int]:
    """``(crop_lo, crop_hi)`` of Keras' ``Conv*DTranspose`` on the TensorFlow backend.

    Keras picks the length with :func:`keras_transpose_length` and hands it to
    TensorFlow as ``output_shape``; TensorFlow checks and crops it like its own
    'SAME'/'VALID' transposed convolution (:func:`tf_transpose_crops`), so a length
    TensorFlow's check refuses (e.g. 'same', ``output_padding=0``, k=2, s=2) is refused.

    >>> keras_transpose_crops(8, 3, 2, 1, "same", None)
    (0, 1)
    >>> keras_transpose_crops(8, 3, 2, 1, "same", 0)   # 15 cells: crop (1, 1)
    (1, 1)
    """
    output = keras_transpose_length(input, kernel, stride, dilation, padding, output_padding)
    return tf_transpose_crops(input, kernel, stride, dilation, output, padding.upper())


def torch_transpose_crops(padding: int, output_padding: int) -> tuple[int, int]:
    """PyTorch ``ConvTranspose*d``: crop ``padding`` at the start, ``padding - output_padding`` at the end.

    ``H_out = (H_in-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1``.
    """
    return padding, padding - output_padding


def torch_output_padding_for_size(input: int, kernel: int, stride: int, dilation: int,
                                  padding: int, output_size: int) -> int:
    """PyTorch ``ConvTranspose*d.forward(x, output_size=...)``: the ``output_padding`` it implies.

    Valid sizes run from ``min_size`` to ``min_size + stride - 1``
    (``_ConvTransposeNd._output_padding``).
    """
    min_size = full_length(input, kernel, stride, dilation) - 2 * padding
    max_size = min_size + stride - 1
    if not min_size <= output_size <= max_size:
        raise TconvError("output_size", output_size,
                         f"is not reachable: valid sizes range from {min_size} to {max_size}")
    return output_size - min_size


def jax_transpose_pads(input: int, kernel: int, stride: int, dilation: int,
                       padding: str | tuple[int, int], *,
                       use_consistent_padding: bool = False) -> tuple[int, int]:
    """``jax.lax.conv_transpose`` padding of the stride-dilated input (lo, hi).

    Strings follow Keras ('SAME' -> ``input*stride``, 'VALID' -> ``(input-1)*stride +
    max(k_eff, stride)``); pairs are used as they are (``use_consistent_padding=False``)
    or, with ``use_consistent_padding=True``, read as the forward convolution's padding
    (PyTorch's meaning): ``(k_eff - 1 - lo, k_eff - 1 - hi)``.
    Source: jax/_src/lax/convolution.py, ``_conv_transpose_padding``.

    >>> jax_transpose_pads(8, 3, 2, 1, "SAME")
    (2, 1)
    >>> jax_transpose_pads(8, 3, 2, 1, (1, 0), use_consistent_padding=True)
    (1, 2)
    """
    k_eff = dilated_kernel(kernel, dilation)
    if use_consistent_padding and not isinstance(padding, str):
        return k_eff - 1 - padding[0], k_eff - 1 - padding[1]
    if padding == "SAME":
        pad_len = k_eff + stride - 2
        lo = k_eff - 1 if stride > k_eff - 1 else -(-pad_len // 2)
    elif padding == "VALID":
        pad_len = k_eff + stride - 2 + max(k_eff - stride, 0)
        lo = k_eff - 1
    else:
        return padding
    return lo, pad_len - lo


def lhs_dilated_axis(input: int, kernel: int, lhs_dilation: int, rhs_dilation: int,
                     pad_lo: int, pad_hi: int) -> AxisGeometry:
    """A correlation of the ``lhs_dilation``-dilated input, as a transposed convolution.

    JAX's ``conv_general_dilated`` with ``lhs_dilation`` slides the kernel, unflipped,
    over the input with ``lhs_dilation - 1`` zeros between cells and ``(pad_lo, pad_hi)``
    padding (negative crops). That equals the transposed convolution of the
    spatially flipped kernel with stride ``lhs_dilation`` and crops
    ``(k_eff - 1 - pad_lo, k_eff - 1 - pad_hi)``, at window stride 1.
    """
    k_eff = dilated_kernel(kernel, rhs_dilation)
    return AxisGeometry.transposed(input, kernel, lhs_dilation, rhs_dilation,
                                   k_eff - 1 - pad_lo, k_eff - 1 - pad_hi)


def onnx_transpose_crops(input: int, kernel: int, stride: int, dilation: int,
                         auto_pad: str, pads: tuple[int, int], output_padding: int,
                         output_shape: int | None) -> tuple[int, int]:
    """ONNX ``ConvTranspose`` crops, as onnxruntime (1.32) applies them.

    With ``output_shape`` (or ``auto_pad`` SAME_*, whose target is ``input*stride``),
    the total ``T = stride*(input-1) + output_padding + k_eff - target`` is split
    ``T//2`` first for SAME_UPPER and ``T - T//2`` first otherwise (NOTSET, VALID,
    SAME_LOWER), as the ONNX spec states and onnxruntime >= 1.13 does. Otherwise
    ``pads`` crop ``(pads_begin, pads_end - output_padding)``.

    onnxruntime clamps a negative ``T`` to 0 (the spec does not say): an
    ``output_shape`` beyond the full scatter is zero-extended at the end only, and
    SAME_* without ``output_shape`` then gives ``full + output_padding`` cells, not
    ``input*stride``. It then checks that the forward convolution with those pads maps
    the output back to ``input`` ("output_shape is inconsistent with input spatial
    dimensions"; this refuses ``output_padding >= stride`` and an ``output_shape``
    past ``full + stride - 1``) and refuses an empty output. Checked against
    onnxruntime 1.32 on every 1-D case with input <= 4, kernel <= 3, stride in
    (1, 2, 3, 5), dilation <= 3, pads <= 3 and each output_padding/output_shape.

    >>> onnx_transpose_crops(8, 3, 2, 1, "SAME_UPPER", (0, 0), 0, None)
    (0, 1)
    >>> onnx_transpose_crops(8, 3, 2, 1, "NOTSET", (0, 0), 0, 16)
    (1, 0)
    >>> onnx_transpose_crops(4, 3, 5, 1, "NOTSET", (0, 0), 0, 20)   # T = -2
    (0, -2)
    """
    full = full_length(input, kernel, stride, dilation)
    if output_shape is None and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        lo, hi = (0, 0) if auto_pad == "VALID" else pads
        total, output = lo + hi, full + output_padding - lo - hi
    else:
        target = input * stride if output_shape is None else output_shape
        total = max(0, full + output_padding - target)
        lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        output = full + output_padding - total if output_shape is None else output_shape
    name = "pads" if output_shape is None else "output_shape"
    if output <= 0:
        raise TconvError(name, output_shape if output_shape is not None else pads,
                         f"gives an output length of {output}; it must be positive")
    if conv_output_length(output, kernel, stride, dilation, lo, total - lo) != input:
        raise TconvError(
            "output_shape" if output_shape is not None else "output_padding",
            output_shape if output_shape is not None else output_padding,
            f"is inconsistent with the input: the convolution of length {output} with pads "
            f"({lo}, {total - lo}) (kernel {kernel}, stride {stride}, dilation {dilation}) "
            f"does not have length {input}")
    return lo, full - output - lo


def as_axes(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    """Broadcast an int to ``rank`` entries (a sequence passes through)."""
    return (value,) * rank if isinstance(value, int) else tuple(value)


# ------------------------------------------------ explain / solve helpers (issue 4)


def phase_tap_counts(kernel: int, stride: int, dilation: int = 1) -> tuple[int, ...]:
    """Kernel taps landing on each output phase ``j % stride`` of a transposed convolution's full scatter.

    Tap ``t`` of an input cell at ``i`` lands on ``i*stride + t*dilation``, so phase
    ``r`` collects the taps with ``t*dilation % stride == r``. Unequal counts are the
    uneven overlap behind checkerboard artefacts.

    >>> phase_tap_counts(3, 2)   # the seed's case: even cells get 2 taps, odd cells 1
    (2, 1)
    >>> phase_tap_counts(4, 2)
    (2, 2)
    """
    counts = [0] * stride
    for tap in range(kernel):
        counts[tap * dilation % stride] += 1
    return tuple(counts)


def torch_args_for_crops(crop_lo: int, crop_hi: int, stride: int,
                         dilation: int = 1) -> tuple[int, int] | None:
    """PyTorch ``(padding, output_padding)`` cropping exactly ``(crop_lo, crop_hi)``, or None.

    PyTorch crops ``(padding, padding - output_padding)`` with ``padding >= 0`` and
    ``0 <= output_padding < max(stride, dilation)``, so only ``crop_lo >= crop_hi`` fits.

    >>> torch_args_for_crops(1, 0, 2), torch_args_for_crops(0, 1, 2)
    ((1, 1), None)
    """
    output_padding = crop_lo - crop_hi
    if crop_lo < 0 or not 0 <= output_padding < max(stride, dilation):
        return None
    return crop_lo, output_padding


def symmetric_reading(crop_lo: int, crop_hi: int) -> tuple[int, int]:
    """The "pad p on each side" reading of a total crop: PyTorch ``(padding, output_padding)``.

    The same total ``crop_lo + crop_hi`` as ``padding = ceil(total/2)`` cut from both
    ends, ``output_padding`` giving one back at the end when the total is odd: the
    crops ``(ceil(total/2), floor(total/2))``.

    >>> symmetric_reading(0, 1)   # Keras 'same', k=3, s=2 -> torch padding=1, output_padding=1
    (1, 1)
    """
    total = crop_lo + crop_hi
    padding = -(-total // 2)
    return padding, 2 * padding - total


def jax_pads_for_crops(kernel: int, dilation: int, crop_lo: int, crop_hi: int) -> tuple[int, int]:
    """``lax.conv_transpose`` explicit padding (default mode) that crops ``(crop_lo, crop_hi)``.

    The inverse of :func:`lhs_dilated_axis`'s crops, ``k_eff - 1 - crop`` at each end;
    the map is its own inverse, so it also turns ``use_consistent_padding=True`` pairs
    (PyTorch-style crops) into the pads JAX applies.

    >>> jax_pads_for_crops(3, 1, 0, 1)   # Keras 'same' k=3, s=2 is padding ((2, 1),)
    (2, 1)
    """
    k_eff = dilated_kernel(kernel, dilation)
    return k_eff - 1 - crop_lo, k_eff - 1 - crop_hi


def lhs_dilated_length(size: int, lhs_dilation: int) -> int:
    """Length of an input with ``lhs_dilation - 1`` zeros between its cells (0 stays 0).

    JAX/XLA's base dilation (``conv_general_dilated(..., lhs_dilation=...)``).

    >>> lhs_dilated_length(8, 2), lhs_dilated_length(0, 2)
    (15, 0)
    """
    return (size - 1) * lhs_dilation + 1 if size > 0 else 0


def tf_conv3d_same_pads(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow ``Conv3D`` 'SAME' padding: :func:`same_pads` without the clamp at zero.

    ``tf.nn.conv3d`` (Eigen's ``CuboidConvolution``, and its XLA kernel alike) splits
    ``(out-1)*stride + k_eff - size`` even when it is negative (kernel shorter than
    the stride), with C++ division truncating toward zero, so the windows start
    ``-pad_lo`` cells in. ``conv1d``/``conv2d`` and every transposed op clamp at zero.
    Checked live on TensorFlow 2.21 (n=3, k=1, s=3 reads cell 1, not cell 0).

    >>> tf_conv3d_same_pads(3, 1, 3), same_pads(3, 1, 3)
    ((-1, -1), (0, 0))
    >>> tf_conv3d_same_pads(16, 3, 2)
    (0, 1)
    """
    out = -(-size // stride)
    total = (out - 1) * stride + dilated_kernel(kernel, dilation) - size
    lo = int(total / 2)  # C++ division truncates toward zero
    return lo, total - lo


# ----------------------------------------------------------- draw helpers (issue 5)


def scatter_position(index: int, tap: int, stride: int = 1, dilation: int = 1) -> int:
    """Cell of a transposed convolution's full scatter that input ``index`` reaches through ``tap``.

    >>> [scatter_position(1, t, 2) for t in range(3)]   # the seed: input 1 stamps cells 2, 3, 4
    [2, 3, 4]
    """
    return index * stride + tap * dilation


def window_position(out_index: int, tap: int, stride: int = 1, dilation: int = 1,
                    pad_lo: int = 0) -> int:
    """Input cell a forward convolution's output ``out_index`` reads through ``tap`` (negative or
    past the end: padding).

    >>> [window_position(0, t, 2, 1, 1) for t in range(3)]
    [-1, 0, 1]
    """
    return out_index * stride + tap * dilation - pad_lo


def kept_window(axis: AxisGeometry) -> tuple[int, int]:
    """``(start, stop)`` of a transposed convolution's output in its full scatter's cells.

    Reaches outside ``[0, full)`` where a crop is negative (zero extension).

    >>> kept_window(AxisGeometry(16, 3, 2, 1, 0, 1))   # Keras 'same': cells 0..15 of 17
    (0, 16)
    """
    return axis.crop_lo, axis.full - axis.crop_hi


def tap_pairs(axis: AxisGeometry, tap: int) -> tuple[tuple[int, int], ...]:
    """``(forward output, forward input)`` cells joined by kernel ``tap`` (see :meth:`AxisGeometry.tap_span`).

    For the transposed convolution the pair reads ``(input cell, output cell)``.

    >>> tap_pairs(AxisGeometry(16, 3, 2, 1, 0, 1), 0)[:3]
    ((0, 0), (1, 2), (2, 4))
    """
    start, stop, in_start = axis.tap_span(tap)
    return tuple((o, in_start + (o - start) * axis.stride) for o in range(start, stop))


def flipped_tap(tap: int, kernel: int) -> int:
    """The tap of the spatially flipped kernel that sits where ``tap`` sat: ``kernel - 1 - tap``."""
    return kernel - 1 - tap


# ------------------------------------------------------- nn layer helpers (issue 8)


def pool_axis(size: int, pool: int, stride: int, padding: str) -> AxisGeometry:
    """A pooling window's axis: Keras/TF 'valid' (floor) or 'same' (``ceil(size/stride)``).

    Pooling slides a ``pool``-cell window like a convolution; 'same' pads are TF's
    (:func:`same_pads`), read as "ignore" cells by max pooling.

    >>> pool_axis(97, 2, 2, "valid").out, pool_axis(97, 2, 2, "same").out
    (48, 49)
    """
    pads = same_pads(size, pool, stride) if padding == "same" else (0, 0)
    return AxisGeometry(size, pool, stride, 1, *pads)


def upsampling_axis(size: int, factor: int, interpolation: str = "nearest") -> AxisGeometry:
    """UpSampling by an integer ``factor`` as the transposed convolution it equals (``size*factor`` cells).

    Nearest: kernel ``factor``, stride ``factor``, no crop. Bilinear with half-pixel
    centres (TF ``resize_bilinear``, PyTorch ``align_corners=False``): a triangle kernel
    of ``2*factor`` taps (``2*factor - 1`` for odd factors) cropped evenly; the edge
    cells clamp (replicate) instead of reading zeros, which changes values, not reach.

    >>> upsampling_axis(8, 2).size, upsampling_axis(8, 2, "bilinear").crop_lo
    (16, 1)
    """
    if interpolation == "nearest":
        return AxisGeometry.transposed(size, factor, factor)
    kernel = 2 * factor - factor % 2
    crop = (kernel - factor) // 2
    return AxisGeometry.transposed(size, kernel, factor, 1, crop, kernel - factor - crop)


def bilinear_source(out_index: int, factor: int, size: int) -> tuple[int, int, float]:
    """``(lower, upper, weight of upper)`` that bilinear upsampling reads for ``out_index``.

    Half-pixel centres: ``src = (out + 0.5) / factor - 0.5``, clamped into the input
    (TensorFlow ``ResizeBilinear(half_pixel_centers=True)``, ``image_resizer_state.h``).

    >>> bilinear_source(0, 2, 4), bilinear_source(3, 2, 4), bilinear_source(7, 2, 4)
    ((0, 0, 0.0), (1, 2, 0.25), (3, 3, 0.0))
    """
    src = (out_index + 0.5) / factor - 0.5
    lower = int(src // 1)
    weight = src - lower
    upper = min(lower + 1, size - 1)
    lower = min(max(lower, 0), size - 1)
    if src < 0 or upper == lower:
        upper, weight = lower, 0.0
    return lower, upper, weight


def cropped_length(size: int, crop_lo: int, crop_hi: int) -> int:
    """Length left after cropping (negative: zero padding) ``(crop_lo, crop_hi)``."""
    return size - crop_lo - crop_hi


def centre_crop(size: int, target: int) -> tuple[int, int]:
    """``(crop_lo, crop_hi)`` cutting ``size`` to ``target``, the odd cell at the end
    (the U-Net paper's skip cropping).

    >>> centre_crop(64, 56), centre_crop(17, 16)
    ((4, 4), (0, 1))
    """
    total = size - target
    return total // 2, total - total // 2


def keras_transpose_args_for_length(input: int, kernel: int, stride: int, dilation: int,
                                    length: int) -> list[tuple[str, int | None]]:
    """Every Keras ``Conv*DTranspose`` ``(padding, output_padding)`` giving ``length`` cells
    from ``input`` that TensorFlow accepts (:func:`keras_transpose_length`).

    >>> keras_transpose_args_for_length(48, 3, 2, 1, 97)
    [('valid', None), ('valid', 0)]
    """
    found = []
    for padding in ("same", "valid"):
        for output_padding in (None, *range(stride)):
            if keras_transpose_length(input, kernel, stride, dilation, padding,
                                      output_padding) != length:
                continue
            try:
                keras_transpose_crops(input, kernel, stride, dilation, padding, output_padding)
            except TconvError:
                continue
            if (padding, output_padding) not in found:
                found.append((padding, output_padding))
    return found


def torch_transpose_args_for_length(input: int, kernel: int, stride: int, dilation: int,
                                    length: int) -> list[tuple[int, int]]:
    """Every PyTorch ``ConvTranspose*d`` ``(padding, output_padding)`` giving ``length`` cells.

    ``length = full - 2*padding + output_padding`` with ``0 <= output_padding < max(stride, dilation)``.

    >>> torch_transpose_args_for_length(48, 3, 2, 1, 97), torch_transpose_args_for_length(48, 3, 2, 1, 96)
    ([(0, 0)], [(1, 1)])
    """
    full = full_length(input, kernel, stride, dilation)
    found = []
    for output_padding in range(max(stride, dilation)):
        twice = full + output_padding - length
        if twice >= 0 and twice % 2 == 0:
            found.append((twice // 2, output_padding))
    return found


__all__ += ["pool_axis", "upsampling_axis", "bilinear_source", "cropped_length", "centre_crop",
            "keras_transpose_args_for_length", "torch_transpose_args_for_length"]


# ------------------------------------------------------ tiled inference (issue 11)


def forward_input_window(axis: AxisGeometry, lo: int, hi: int) -> tuple[int, int]:
    """Input cells ``[start, stop)`` that forward outputs ``lo <= o < hi`` read.

    Output ``o`` reads ``o*stride + tap*dilation - pad_lo`` (:func:`window_position`), so
    the window runs from ``lo``'s first tap to ``hi - 1``'s last. Cells outside
    ``[0, size)`` are the padding. A 'valid' convolution of those cells gives exactly
    outputs ``lo..hi-1``.

    >>> forward_input_window(AxisGeometry(16, 3, 1, 1, 1, 1), 4, 8)   # 'same' 3x3
    (3, 9)
    >>> forward_input_window(AxisGeometry(16, 2, 2), 4, 8)           # 2x2 pooling
    (8, 16)
    """
    return (window_position(lo, 0, axis.stride, axis.dilation, axis.pad_lo),
            window_position(hi - 1, axis.kernel - 1, axis.stride, axis.dilation, axis.pad_lo) + 1)


def transposed_input_window(axis: AxisGeometry, lo: int, hi: int) -> tuple[int, int]:
    """Input cells ``[start, stop)`` whose full scatter covers outputs ``lo <= y < hi`` of
    the transposed operation on ``axis`` (whose output has ``axis.size`` cells).

    Output ``y`` is full-scatter cell ``y + crop_lo``, which input ``i`` reaches through
    tap ``t`` when ``i*stride + t*dilation == y + crop_lo``. The window holds every input
    reaching ``[lo, hi)``; where the dilated kernel is shorter than the stride it starts
    at the input whose stamp starts at or before ``lo`` (the gap cells between stamps
    are covered too), so the full scatter of the window spans all of ``[lo, hi)``.

    >>> transposed_input_window(AxisGeometry(16, 3, 2, 1, 0, 1), 4, 8)   # Keras 'same' 3x3/2
    (1, 4)
    >>> transposed_input_window(AxisGeometry.transposed(8, 2, 2), 5, 6)  # nearest x2
    (2, 3)
    """
    first, last = lo + axis.crop_lo, hi - 1 + axis.crop_lo
    reach = max(axis.dilated_kernel, axis.stride)
    return -((reach - 1 - first) // axis.stride), last // axis.stride + 1


def transposed_output_offset(axis: AxisGeometry, start: int, local_crop_lo: int) -> int:
    """Output cell, in the whole axis, of cell 0 of a transposed operation run on the
    input cells from ``start`` on with crop ``local_crop_lo`` (0 for a full scatter).

    Input ``start`` stamps at full-scatter cell ``start*stride``; the whole axis crops
    ``crop_lo`` and the local run ``local_crop_lo``.

    >>> transposed_output_offset(AxisGeometry(16, 3, 2, 1, 0, 1), 3, 0)
    6
    """
    return start * axis.stride - axis.crop_lo + local_crop_lo


def stride_scale(axis: AxisGeometry, transposed: bool = False):
    """Input cells per output cell of one axis: ``stride`` forward, ``1/stride`` transposed
    (a :class:`fractions.Fraction`). Multiplied along a network, it gives each layer's
    cell size in input pixels.

    >>> stride_scale(AxisGeometry(16, 2, 2)), stride_scale(AxisGeometry(16, 2, 2), True)
    (Fraction(2, 1), Fraction(1, 2))
    """
    from fractions import Fraction

    return Fraction(1, axis.stride) if transposed else Fraction(axis.stride)


__all__ += ["forward_input_window", "transposed_input_window", "transposed_output_offset",
            "stride_scale"]
