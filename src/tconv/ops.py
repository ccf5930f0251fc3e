"""The neutral operations: normalise, plan a Geometry, run the kernels, add the bias.

Data are ``(N, *spatial, C)`` (``data_format='channels_last'``, the default) or
``(N, C, *spatial)`` (``'channels_first'``). Kernels are always in the neutral layout
of the *forward* convolution, ``(*kernel, in_channels/groups, out_channels)``, for both
directions: the transposed convolution takes the kernel of the convolution it is the
adjoint of, which is TensorFlow's ``(*kernel, out, in)`` filter of ``conv_transpose``.

The dialects build their :class:`~tconv.geometry.Geometry` from their own arguments
and call :func:`run`; :func:`conv` and :func:`conv_transpose` are tconv's own spelling.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from tconv import _args, budget
from tconv.errors import TconvError
from tconv.geometry import AxisGeometry, Geometry, same_pads, tf_transpose_crops
from tconv.kernels import blas, compiled, gemm, reference, threads, workspace

__all__ = ["contiguous", "conv", "conv_transpose", "cores", "plan_conv", "plan_conv_transpose", "planning",
           "run", "shape_only", "side_by_side"]

_KERNELS = {"gemm": gemm, "reference": reference}
_PLANS: contextvars.ContextVar[list | None] = contextvars.ContextVar("tconv_plans", default=None)


@contextlib.contextmanager
def planning() -> Iterator[list]:
    """Within this block :func:`run` validates and records ``(geometry, data_format)``
    instead of computing, and returns a zero placeholder of the output's shape that
    allocates nothing.

    This is how the views learn *exactly* the plan a dialect call makes, its refusals
    included, without a second copy of the dialect's rules: they call the dialect on
    :func:`shape_only` arrays inside this block.

    >>> from tconv.dialects import torch
    >>> with planning() as plans:
    ...     y = torch.conv_transpose2d(shape_only((1, 4, 8, 8)), shape_only((4, 2, 3, 3)), stride=2,
    ...                                padding=1, output_padding=1)
    >>> y.shape, plans[0][0].output_spatial, [(a.crop_lo, a.crop_hi) for a in plans[0][0].axes]
    ((1, 2, 16, 16), (16, 16), [(1, 0), (1, 0)])
    """
    token = _PLANS.set([])
    try:
        yield _PLANS.get()
    finally:
        _PLANS.reset(token)


class TooLarge(TconvError):
    """A shape that cannot exist as a NumPy array, not even a zero-allocation view: tconv's
    limit, not a framework's refusal (views say so rather than "the framework refuses")."""


def contiguous(array: np.ndarray) -> np.ndarray:
    """``np.ascontiguousarray``, except that a :func:`planning` placeholder stays one (no copy)."""
    return array if _PLANS.get() is not None else np.ascontiguousarray(array)


def cores() -> int:
    """How many tasks :func:`side_by_side` would run at once now: the cores the process may
    use, at most BLAS's thread count (1: one after another)."""
    return threads.workers()


def side_by_side(tasks, work) -> None:
    """``work(task)`` for every task, one per core at once on the kernels' own threads,
    BLAS on one thread each (:func:`tconv.kernels.threads.run`; one after another where
    that cannot be: one core, or another call already side by side). The tasks must write
    disjoint outputs; calls to :func:`run` within them run their own tiles one after
    another. The helpers run in copies of the caller's context, so what the caller set
    there holds in every task (NumPy's ``errstate``, :func:`planning`). For work above the
    kernels: a model's shares of a batch."""
    threads.run(tasks, work)


def moved_channels(array: np.ndarray, last: bool, out: np.ndarray | None = None) -> np.ndarray:
    """A C-contiguous copy of batched data with its channels moved: from axis 1 to the last
    (``last``), or back; written into ``out`` where given (C-contiguous, of the moved shape
    and the array's dtype), else into a new array. Where ``array`` is C-contiguous float32
    or float64: per item a transpose of ``(C, cells)``, by OpenBLAS's
    (:func:`tconv.kernels.blas.transpose`; large arrays a share of items or cells per idle
    core: 8x64x3072 float32 2.6 ms compiled, 0.9 on one core, 0.45 on two) or else compiled (a
    blocked transpose) where Numba is installed; else NumPy's copy (other dtypes too)."""
    source = 1 if last else -1
    view = np.moveaxis(array, source, -1 if last else 1)
    if out is None:
        out = np.empty(view.shape, array.dtype)
    elif out.shape != view.shape or out.dtype != array.dtype or not out.flags.c_contiguous:
        raise TconvError("out", out, f"must be a C-contiguous {array.dtype} array of shape {view.shape} "
                                     "to take the moved copy")
    if not array.size:
        return out
    blas_ready = blas.transpose_available()
    if not (array.ndim >= 3 and array.flags.c_contiguous and array.dtype.isnative
            and array.dtype in (np.float32, np.float64) and (blas_ready or compiled.available())):
        np.copyto(out, view)
        return out
    n, c = array.shape[0], array.shape[source]
    cells = array.size // (n * c)
    src = array.reshape((n, c, cells) if last else (n, cells, c))
    dst = out.reshape((n, cells, c) if last else (n, c, cells))
    if not blas_ready:
        compiled.transpose(src, dst)
        return out
    shared = array.size >= MOVE_SHARED_ELEMENTS and threads.idle(threads.workers() - 1)
    parts = min(threads.workers(), n * cells) if shared else 1
    per_item = -(-parts // n)  # blocks of cells per item, so that every core has a share
    tasks = [(k, cells * i // per_item, cells * (i + 1) // per_item) for k in range(n) for i in range(per_item)]

    def move(task: tuple) -> None:
        k, j0, j1 = task
        if last:
            blas.transpose(src[k, :, j0:j1], dst[k, j0:j1])
        else:
            blas.transpose(src[k, j0:j1], dst[k, :, j0:j1])

    threads.run(tasks, move, parts > 1)
    return out


#: batched data of at least this many elements is moved a share per core, where the other
#: cores are idle (:func:`tconv.kernels.threads.idle`). Beside OpenBLAS's worker, which
#: spins after each product on its threads, a share moved on its core was 0-7% slower than
#: the whole move on one (the U-Net's channels-first layers called back to back, fifteenth
#: session)
MOVE_SHARED_ELEMENTS = 1 << 18


def contiguous_kernel(kernel: np.ndarray) -> np.ndarray:
    """``kernel`` C-contiguous, copied where it is not. A dialect's kernel whose two leading
    axes were moved last (PyTorch's and ONNX's ``(O, I/groups, *spatial)`` as the neutral
    ``(*spatial, I/groups, O)``, :func:`numpy.moveaxis`, no copy) is copied by a compiled
    loop where Numba is installed (:func:`tconv.kernels.compiled.unmoved`: the seed's
    1024x512x3x3 5 ms against NumPy's 22-27); any other layout by NumPy."""
    if kernel.flags.c_contiguous:
        return kernel
    if kernel.ndim < 3:
        return np.ascontiguousarray(kernel)
    base = np.moveaxis(kernel, (-1, -2), (0, 1))  # the dialect's own array, where it was moved
    if not (base.flags.c_contiguous and compiled.available() and kernel.dtype.isnative
            and kernel.dtype in (np.float32, np.float64)):  # Numba has no float16
        return np.ascontiguousarray(kernel)
    out = np.empty(kernel.shape, kernel.dtype)
    if out.size:
        a, b = base.shape[:2]
        src, dst = base.reshape(a, b, -1), out.reshape(-1, b, a)
        # memory-bound: a share of the rows of `src` per core where it is large (the seed's
        # 7-9 -> 4-4.5 ms on 2 cores, caches cold)
        parts = min(threads.workers(), a) if out.size >= KERNEL_COPY_SHARED_ELEMENTS else 1
        bounds = [a * i // parts for i in range(parts + 1)]
        threads.run(list(zip(bounds, bounds[1:])),
                    lambda part: compiled.unmoved(src[part[0]:part[1]], dst[:, :, part[0]:part[1]]))
    return out


#: kernels of at least this many elements are copied to the neutral layout a share per core
KERNEL_COPY_SHARED_ELEMENTS = 1 << 18


def shape_only(shape, dtype=np.float32) -> np.ndarray:
    """A read-only array of ``shape`` that allocates nothing (all zeros), for :func:`planning`.

    A shape whose non-zero sizes multiply past what NumPy can index (e.g. 10^10 x 10^10)
    cannot exist even as a view: refused by name rather than NumPy's "array is too big"."""
    shape = tuple(shape)
    if math.prod(n for n in shape if n) * np.dtype(dtype).itemsize > np.iinfo(np.intp).max:
        raise TooLarge("shape", shape, "has more elements than a NumPy array can hold "
                         f"(at most {np.iinfo(np.intp).max} bytes)")
    return np.broadcast_to(np.zeros((), dtype), shape)


def run(geometry: Geometry, x: Any, kernel: Any, bias: Any = None, *,
        data_format: str = "channels_last", impl: str = "gemm") -> np.ndarray:
    """Run ``geometry`` on ``x`` with a neutral-layout ``kernel``; returns an array of the
    input's floating dtype (float32 in, float32 out; integers compute in float64).

    Checks every shape against the plan first, so a mismatch is a :class:`TconvError`
    naming the argument, never a broadcasting error from inside NumPy. A call like one
    that passed them (:func:`_signature`) skips to the budget and the kernels.
    """
    key = _signature(geometry, x, kernel, bias, data_format, impl)
    settings = None if key is None else key[-1]
    if key is not None:
        prepared = _PREPARED.get(key)
        if prepared is not None and prepared.required <= budget.allowance():
            return _execute(geometry, x, kernel, bias, prepared)
    x = _args.as_array(x, "input")
    kernel = _args.as_array(kernel, "kernel")
    bias = None if bias is None else _args.as_array(bias, "bias")
    _args.choice(data_format, "data_format", DATA_FORMATS)
    if not isinstance(impl, str) or impl not in _KERNELS:
        raise TconvError("impl", impl, f"must be one of {sorted(_KERNELS)}")
    g = geometry
    expected = ((g.input_channels,) + g.input_spatial if data_format == "channels_first"
                else g.input_spatial + (g.input_channels,))
    if x.ndim != g.rank + 2 or x.shape[1:] != expected:
        raise TconvError("input", x, f"must have shape (batch, {', '.join(map(str, expected))})")
    if kernel.shape != g.neutral_kernel_shape:
        raise TconvError("kernel", kernel, f"must have shape {g.neutral_kernel_shape} "
                         "(*kernel, in_channels/groups, out_channels)")
    if bias is not None and bias.shape != (g.output_channels,):
        raise TconvError("bias", bias, f"must have shape ({g.output_channels},)")
    dtype = _args.result_dtype(x, kernel, bias)
    if impl == "gemm" and dtype not in (np.float32, np.float64) and _PLANS.get() is None:
        return _run_other_float(g, x, kernel, bias, data_format, dtype)
    out_shape = ((x.shape[0], g.output_channels) + g.output_spatial if data_format == "channels_first"
                 else (x.shape[0],) + g.output_spatial + (g.output_channels,))
    plans = _PLANS.get()
    if plans is not None:
        plans.append((g, data_format))
        try:
            return shape_only(out_shape, dtype)
        except TconvError:
            raise TooLarge("output", out_shape, "has more elements than a NumPy array can hold "
                             f"(input {x.shape}, kernel {g.kernel_shape}, stride "
                             f"{tuple(a.stride for a in g.axes)})") from None
    if x.shape[0] == 0:
        if math.prod(out_shape[1:]) * dtype.itemsize > np.iinfo(np.intp).max:
            raise TconvError("output", out_shape, "has more bytes per batch item than NumPy can "
                             f"address (input {x.shape}, kernel {g.kernel_shape}, stride "
                             f"{tuple(a.stride for a in g.axes)})")
        return np.zeros(out_shape, dtype)
    if settings is None:  # a call no prepared call stands for: read them once, here
        settings = gemm.settings()
    kernels = None
    if impl == "gemm":  # a kernel in PyTorch's layout, of the call's dtype, may be multiplied as it lies
        lies = kernel.dtype == dtype and gemm.kernel_lies(kernel)
        kernels = gemm.prepare(g, x.shape[0], settings, lies=lies)
    required = _check_budget(g, x, kernel, dtype, settings, data_format == "channels_first" and impl == "gemm",
                             kernels)
    prepared = _Prepared(required, out_shape, dtype, data_format == "channels_first", impl,
                         tuple(a is not None and a.dtype != dtype for a in (x, kernel, bias)), kernels)
    if key is not None:
        _remember(_PREPARED, key, prepared)
    return _execute(g, x, kernel, bias, prepared)


def _run_other_float(g: Geometry, x: np.ndarray, kernel: np.ndarray, bias, data_format: str,
                     dtype: np.dtype) -> np.ndarray:
    """A call of the gemm kernels in a floating dtype that BLAS and the compiled loops do not
    have (they raised Numba's NotImplementedError, thirteenth session): float16 computed in
    float32 and rounded once at the end, the output float16 (the budget counts both outputs);
    wider ones (``np.longdouble``) by the reference loops, in their own precision."""
    if dtype != np.float16:
        return run(g, x, kernel, bias, data_format=data_format, impl="reference")
    wide = np.dtype(np.float32)
    out_elements = x.shape[0] * math.prod(g.output_spatial) * g.output_channels
    _check_budget(g, x, kernel, wide, None, data_format == "channels_first", extra=out_elements * 2)
    y = run(g, x.astype(wide), kernel.astype(wide), None if bias is None else bias.astype(wide),
            data_format=data_format, impl="gemm")
    return y.astype(dtype)


@dataclass(frozen=True)
class _Prepared:
    """What a call of :func:`run` that passed every check needs to run: the bytes it holds
    at most (the output and the kernels' temporaries: the budget), the output's shape and
    dtype, the layout, the kernels and what they worked out (:func:`gemm.prepare`)."""
    required: int
    out_shape: tuple[int, ...]
    dtype: np.dtype
    channels_first: bool
    impl: str
    cast: tuple[bool, bool, bool]  # whether the input, kernel and bias are of another dtype
    kernels: gemm.Prepared | None  # the gemm kernels' own (path, tiles, tables); None for the reference


#: prepared calls of :func:`run` by :func:`_signature`, and the plans of :func:`conv` and
#: :func:`conv_transpose` by their arguments (:func:`_call_key`); each cleared when full
_PREPARED: dict = {}
_PLANNED: dict = {}
_REMEMBERED = 512


def _remember(cache: dict, key, value) -> None:
    if len(cache) >= _REMEMBERED:
        cache.clear()
    cache[key] = value


def _call_key(op: str, x, kernel, arguments: tuple) -> tuple | None:
    """The key of a :func:`conv` or :func:`conv_transpose` call's plan: the op, both arrays'
    shapes and the arguments' ``repr``, which tells ``2`` from ``2.0``, ``True``, ``np.int64(2)``
    and ``[2]`` (plans are remembered only for plain arguments, :func:`tconv._args.plain`,
    whose ``repr`` no other value of a builtin or NumPy type shares). None for arrays that
    are not exactly ndarrays."""
    if type(x) is not np.ndarray or type(kernel) is not np.ndarray:
        return None
    return (op, x.shape, kernel.shape, repr(arguments))


def _signature(geometry, x, kernel, bias, data_format, impl) -> tuple | None:
    """The key of a call of :func:`run` that a prepared call stands for: everything its
    checks, its output and its temporaries follow from (the plan, the arrays' shapes and
    dtypes, the kernel's strides (its layout), the names, the kernels' settings now).
    None where the call must take the checks: an argument that is not exactly an ndarray
    or a str, or inside :func:`planning`."""
    if (type(x) is not np.ndarray or type(kernel) is not np.ndarray or type(data_format) is not str
            or type(impl) is not str or not (bias is None or type(bias) is np.ndarray)
            or _PLANS.get() is not None):
        return None
    return (geometry, x.shape, x.dtype, kernel.shape, kernel.dtype, kernel.strides,
            None if bias is None else (bias.shape, bias.dtype), data_format, impl, gemm.settings())


def _execute(g: Geometry, x: np.ndarray, kernel: np.ndarray, bias, prepared: _Prepared) -> np.ndarray:
    dtype = prepared.dtype
    cast_x, cast_kernel, cast_bias = prepared.cast
    if cast_x:
        x = x.astype(dtype)
    if cast_kernel:
        kernel = kernel.astype(dtype)
    if cast_bias:
        bias = bias.astype(dtype)
    if prepared.impl == "gemm":
        compute = gemm.conv_transpose if g.transposed else gemm.conv
        if prepared.kernels.lies is None:  # else multiplied as it lies (gemm._col_lies_run, _im2col_lies_run)
            kernel = contiguous_kernel(kernel)  # a dialect's moved axes: once, here, not per path
        if prepared.channels_first:
            # the kernels run channels-last: the input is moved there once, the output computed
            # there and moved back (moved_channels). Written channels-first in
            # place, the kernels' writes and reads were strided: 1.2-5x slower on the
            # benchmark's layers (48x64x64->96x128x32 b8 transposed 27.7 against 5.5 ms)
            n, c, *spatial = prepared.out_shape
            y = _kept((n, *spatial, c), dtype, workspace.MOVED_OUTPUT)
            if x.flags.c_contiguous and gemm.reads_channels_first(g, prepared.kernels, kernel, n):
                # col and accumulate read the data in place and move each finished block back
                first = np.empty(prepared.out_shape, dtype)
                compute(x, kernel, g, bias, y, prepared=prepared.kernels, first=first)
                return first
            moved = moved_channels(x, last=True, out=_kept(x.shape[:1] + x.shape[2:] + x.shape[1:2], dtype,
                                                           workspace.MOVED_INPUT))
            compute(moved, kernel, g, bias, y, prepared=prepared.kernels)
            return moved_channels(y, last=False)
        y = np.empty(prepared.out_shape, dtype)
        compute(x, kernel, g, bias, y, prepared=prepared.kernels)
        return y
    if prepared.channels_first:
        x = np.moveaxis(x, 1, -1)
    compute = reference.conv_transpose if g.transposed else reference.conv
    y = compute(x, kernel, g)
    if bias is not None:
        y += bias
    if prepared.channels_first:
        y = np.ascontiguousarray(np.moveaxis(y, -1, 1))
    return y


#: channels-first data of at most this many bytes is moved channels-last into, and computed
#: channels-last in, buffers this thread keeps between calls (:mod:`tconv.kernels.workspace`),
#: not new arrays: each new array's pages were mapped afresh on every call (and unmapped
#: after it, across the cores that OpenBLAS's threads run on). Measured on the AMD machine
#: (in process, alternating, ms): 96x128x32->32 3x3 'same' b1 3.7 -> 1.8 (channels-last
#: 1.5); 48x64x64->64 b8 16.2 -> 13.1; 24x32x128->128 b1 2.0 -> 1.8. Larger data gets new
#: arrays, so that a call on a large image does not leave its copies held
MOVED_KEPT_MAX_BYTES = 1 << 25


def _kept(shape: tuple[int, ...], dtype: np.dtype, slot: int) -> np.ndarray:
    """An uninitialised C-contiguous array for a copy :func:`_execute` holds during a call
    and never hands back: this thread's kept buffer ``slot`` up to
    :data:`MOVED_KEPT_MAX_BYTES`, else a new array."""
    if math.prod(shape) * dtype.itemsize <= MOVED_KEPT_MAX_BYTES:
        return workspace.scratch(shape, dtype, slot)
    return np.empty(shape, dtype)


def _check_budget(g: Geometry, x: np.ndarray, kernel: np.ndarray, dtype: np.dtype,
                  settings: tuple | None = None, moved: bool = False,
                  kernels: gemm.Prepared | None = None, extra: int = 0) -> int:
    """Refuse, before allocating, an output whose bytes plus the temporaries exceed the
    budget; else the bytes they hold (``settings``: :func:`tconv.kernels.gemm.settings`,
    where the caller has read them; ``kernels``: the call's :func:`tconv.kernels.gemm.prepare`;
    ``extra``: bytes the caller holds beside, counted with the temporaries).

    The GEMM kernels hold one tile at a time and, by path, a padded copy of the input or a
    weight matrix (:func:`tconv.kernels.gemm.temporary_elements` states the bound); they
    write the output in place. Channels-first data (``moved``) is moved channels-last for
    them: a copy of the input and the output computed channels-last, both held until the
    output is moved back (at most: col and accumulate read the input where it lies,
    :func:`tconv.kernels.gemm.reads_channels_first`, so that their peak holds no copy of
    it). Operands of another dtype are cast (copied) first, and a kernel that is not
    C-contiguous (a dialect's moved axes) is copied C-contiguous
    (:func:`contiguous_kernel`), after its cast where it has one: two copies then; unless
    the kernels multiply it as it lies (``kernels.lies``)."""
    input_shape = x.shape
    out_shape = (input_shape[0],) + g.output_spatial + (g.output_channels,)
    nbytes = math.prod(out_shape) * dtype.itemsize
    temporaries = gemm.temporary_elements(g, input_shape[0], settings, kernels) * dtype.itemsize + extra
    if moved:
        temporaries += x.size * dtype.itemsize + nbytes
    if x.dtype != dtype:  # cast (copied) first
        temporaries += x.size * dtype.itemsize
    # cast, and copied C-contiguous (contiguous_kernel)
    copied = not kernel.flags.c_contiguous and (kernels is None or kernels.lies is None)
    temporaries += kernel.size * dtype.itemsize * ((kernel.dtype != dtype) + copied)
    if nbytes + temporaries <= budget.allowance():
        return nbytes + temporaries  # the common case, without building the message
    strides = tuple(a.stride for a in g.axes)
    budget.check(nbytes, "output", out_shape,
                 f"({'transposed ' if g.transposed else ''}convolution of input {tuple(input_shape)} "
                 f"with kernel {g.kernel_shape}, stride {strides}) as {dtype}", temporaries=temporaries)
    return nbytes + temporaries


#: the data formats every entry point takes
DATA_FORMATS = ("channels_last", "channels_first")
#: every padding mode tconv knows ('zeros' is the plain geometry; tconv.padding_modes runs the rest)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _spatial_and_channels(x: np.ndarray, rank: int, data_format: str) -> tuple[tuple[int, ...], int]:
    _args.choice(data_format, "data_format", DATA_FORMATS)
    if x.ndim != rank + 2:
        raise TconvError("input", x, f"must have {rank + 2} axes (batch, spatial x{rank}, channels) "
                         f"to match a kernel with {rank} spatial axes")
    if data_format == "channels_first":
        return tuple(x.shape[2:]), x.shape[1]
    return tuple(x.shape[1:-1]), x.shape[-1]


@_args.memo_plain  # planned once per shape and arguments: a layer called again only checks its arrays
def plan_conv(input_spatial, kernel_shape, in_channels: int, out_channels: int, *,
              stride=1, padding="valid", dilation=1, groups: int = 1) -> Geometry:
    """The Geometry of a forward convolution.

    ``padding``: ``'valid'``, ``'same'`` (output ``ceil(n/stride)``, odd cell at the end),
    an int, one int per axis, or one ``(before, after)`` pair per axis (negative crops).
    """
    rank = len(kernel_shape)
    strides = _args.int_tuple(stride, rank, "stride")
    dilations = _args.int_tuple(dilation, rank, "dilation")
    if isinstance(padding, str) and padding in ("valid", "same"):
        pads = tuple((0, 0) if padding == "valid" else same_pads(n, k, s, d)
                     for n, k, s, d in zip(input_spatial, kernel_shape, strides, dilations))
    else:
        pads = _args.pad_pairs(padding, rank, "padding", minimum=None)
    axes = tuple(AxisGeometry(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                 in zip(input_spatial, kernel_shape, strides, dilations, pads))
    return Geometry(axes, in_channels, out_channels, groups, transposed=False)


@_args.memo_plain
def plan_conv_transpose(input_spatial, kernel_shape, in_channels: int, out_channels: int, *,
                        stride=1, crop="valid", dilation=1, groups: int = 1) -> Geometry:
    """The Geometry of a transposed convolution from ``in_channels`` to ``out_channels``.

    ``crop``: ``'valid'`` (keep the full scatter), ``'same'`` (output ``n*stride``,
    TensorFlow's crop: the odd cell at the end), an int, one int per axis, or one
    ``(before, after)`` pair per axis; a negative crop extends with zeros.
    """
    rank = len(kernel_shape)
    strides = _args.int_tuple(stride, rank, "stride")
    dilations = _args.int_tuple(dilation, rank, "dilation")
    if isinstance(crop, str) and crop in ("valid", "same"):
        crops = [(0, 0) if crop == "valid" else tf_transpose_crops(n, k, s, d, n * s, "SAME")
                 for n, k, s, d in zip(input_spatial, kernel_shape, strides, dilations)]
    else:
        crops = _args.pad_pairs(crop, rank, "crop", minimum=None)
    axes = tuple(AxisGeometry.transposed(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                 in zip(input_spatial, kernel_shape, strides, dilations, crops))
    return Geometry(axes, out_channels, in_channels, groups, transposed=True)


def conv(x: Any, kernel: Any, bias: Any = None, *, stride=1, padding="valid", dilation=1,
         groups: int = 1, data_format: str = "channels_last", padding_mode: str = "zeros") -> np.ndarray:
    """Forward convolution (cross-correlation, as every framework computes it).

    Parameters
    ----------
    x : array, ``(N, *spatial, C_in)`` or ``(N, C_in, *spatial)``
    kernel : array, ``(*kernel, C_in/groups, C_out)``
    bias : array ``(C_out,)``, optional
    stride, dilation : int or one int per spatial axis
    padding : 'valid', 'same', int, ints, or ``(before, after)`` pairs
    groups : int
    data_format : 'channels_last' or 'channels_first'
    padding_mode : 'zeros', 'reflect', 'replicate' or 'circular' (PyTorch's ``Conv*d``
        modules: pad the input with that mode, then convolve; :mod:`tconv.padding_modes`)

    Examples
    --------
    >>> x = np.arange(5.0).reshape(1, 5, 1)
    >>> w = np.array([1.0, 10.0]).reshape(2, 1, 1)
    >>> conv(x, w)[0, :, 0]
    array([10., 21., 32., 43.])
    """
    arguments = (stride, padding, dilation, groups, data_format, padding_mode)
    key = _call_key("conv", x, kernel, arguments)
    if key is not None and (geometry := _PLANNED.get(key)) is not None:
        return run(geometry, x, kernel, bias, data_format=data_format)
    x = _args.as_array(x, "input")
    kernel = _args.as_array(kernel, "kernel")
    rank = kernel.ndim - 2
    if rank not in (1, 2, 3):
        raise TconvError("kernel", kernel, "must have 3 to 5 axes: (*kernel, in/groups, out)")
    spatial, channels = _spatial_and_channels(x, rank, data_format)
    if not _args.is_int(groups) or groups < 1:
        raise TconvError("groups", groups, "must be a positive integer")
    if channels != kernel.shape[-2] * groups:
        raise TconvError("input", x, f"has {channels} channels; the kernel expects "
                         f"{kernel.shape[-2]} x groups={groups}")
    geometry = plan_conv(spatial, kernel.shape[:-2], channels, kernel.shape[-1], stride=stride,
                         padding=padding, dilation=dilation, groups=groups)
    if _args.choice(padding_mode, "padding_mode", PADDING_MODES) != "zeros":
        from tconv import padding_modes
        return padding_modes.run(geometry, x, kernel, bias, padding_mode=padding_mode,
                                 data_format=data_format)
    if key is not None and _args.plain(arguments):
        _remember(_PLANNED, key, geometry)
    return run(geometry, x, kernel, bias, data_format=data_format)


def conv_transpose(x: Any, kernel: Any, bias: Any = None, *, stride=1, crop="valid",
                   dilation=1, groups: int = 1, data_format: str = "channels_last",
                   padding_mode: str = "zeros") -> np.ndarray:
    """Transposed convolution: full scatter of the (dilated) kernel at stride steps, then crop.

    Parameters
    ----------
    x : array, ``(N, *spatial, C_in)`` or ``(N, C_in, *spatial)``
    kernel : array, ``(*kernel, C_out/groups, C_in)``, the kernel of the forward
        convolution this is the adjoint of (TensorFlow's ``conv_transpose`` filter)
    bias : array ``(C_out,)``, optional
    stride, dilation : int or one int per spatial axis
    crop : 'valid', 'same', int, ints, or ``(before, after)`` pairs (negative extends)
    groups : int
    data_format : 'channels_last' or 'channels_first'
    padding_mode : 'zeros', 'reflect', 'replicate' or 'circular': the exact adjoint of
        :func:`conv` with that mode (the crop's cells are folded back onto the cells
        the forward padding read; tconv's own, PyTorch refuses it)

    Examples
    --------
    Each input cell stamps the kernel ``[1, 10, 100]`` two cells further on; the
    stamps overlap by one cell and add:

    >>> x = np.array([1.0, 2.0]).reshape(1, 2, 1)
    >>> w = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    >>> conv_transpose(x, w, stride=2)[0, :, 0]
    array([  1.,  10., 102.,  20., 200.])
    >>> conv_transpose(x, w, stride=2, crop="same")[0, :, 0]   # TF/Keras 'same': 2*2 cells
    array([  1.,  10., 102.,  20.])
    """
    arguments = (stride, crop, dilation, groups, data_format, padding_mode)
    key = _call_key("conv_transpose", x, kernel, arguments)
    if key is not None and (geometry := _PLANNED.get(key)) is not None:
        return run(geometry, x, kernel, bias, data_format=data_format)
    x = _args.as_array(x, "input")
    kernel = _args.as_array(kernel, "kernel")
    rank = kernel.ndim - 2
    if rank not in (1, 2, 3):
        raise TconvError("kernel", kernel, "must have 3 to 5 axes: (*kernel, out/groups, in)")
    spatial, channels = _spatial_and_channels(x, rank, data_format)
    if channels != kernel.shape[-1]:
        raise TconvError("input", x, f"has {channels} channels; the kernel expects {kernel.shape[-1]}")
    if not _args.is_int(groups) or groups < 1:
        raise TconvError("groups", groups, "must be a positive integer")
    geometry = plan_conv_transpose(spatial, kernel.shape[:-2], channels, kernel.shape[-2] * groups,
                                   stride=stride, crop=crop, dilation=dilation, groups=groups)
    if _args.choice(padding_mode, "padding_mode", PADDING_MODES) != "zeros":
        from tconv import padding_modes
        return padding_modes.run(geometry, x, kernel, bias, padding_mode=padding_mode,
                                 data_format=data_format)
    if key is not None and _args.plain(arguments):
        _remember(_PLANNED, key, geometry)
    return run(geometry, x, kernel, bias, data_format=data_format)
