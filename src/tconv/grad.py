"""Gradients (vector-Jacobian products) of convolution and transposed convolution.

Three identities, all exact, on the one :class:`~tconv.geometry.Geometry`:

1. the gradient of ``conv`` in its input is the transposed convolution with the same
   geometry, ``dx = conv_transpose(dy, w)`` (``run(geometry.flip(), dy, w)``);
2. the gradient of ``conv_transpose`` in its input is the forward convolution with the
   same geometry, ``dx = conv(dy, w)``;
3. the weight gradient is a correlation of the input with the output gradient,
   ``dW[tap] = sum over cells of x_block^T @ dy_block``; for ``conv_transpose`` the roles
   swap: its output gradient is read as the forward input and its input as the forward
   output gradient (:mod:`tconv.kernels.grad`).

The bias gradient is the output gradient summed over batch and space. A padding mode
other than 'zeros' (:mod:`tconv.padding_modes`) enters as the gather ``P`` before a
valid convolution, and its adjoint, the fold ``P^T``, after the transposed one.

Examples
--------
A 1-D convolution ``y = x * [1, 10]`` of ``x = [0, 1, 2, 3, 4]``; the output gradient
is 1 on the last output cell only:

>>> import numpy as np
>>> x = np.arange(5.0).reshape(1, 5, 1)
>>> w = np.array([1.0, 10.0]).reshape(2, 1, 1)
>>> dy = np.array([0.0, 0.0, 0.0, 1.0]).reshape(1, 4, 1)
>>> dx, dw, db = conv_vjp(x, w, dy)
>>> dx[0, :, 0]          # y[3] = x[3] + 10 x[4]
array([ 0.,  0.,  0.,  1., 10.])
>>> dw[:, 0, 0]          # dy[3] read x[3] with tap 0 and x[4] with tap 1
array([3., 4.])
>>> db
array([1.])

The input gradient of ``conv`` is ``conv_transpose`` with the same arguments:

>>> from tconv import conv_transpose
>>> bool(np.array_equal(dx, conv_transpose(dy, w)))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tconv import _args, ops, padding_modes
from tconv.errors import TconvError
from tconv.geometry import Geometry
from tconv.kernels import grad as grad_kernels, reference

__all__ = ["conv_vjp", "conv_transpose_vjp", "vjp", "input_vjp", "weight_vjp"]

_WEIGHT_GRAD = {"gemm": grad_kernels.conv_weight_grad, "reference": reference.conv_weight_grad}


def vjp(geometry: Geometry, x: Any, kernel: Any, dy: Any, *, padding_mode: str = "zeros",
        data_format: str = "channels_last", impl: str = "gemm"):
    """The gradients of ``padding_modes.run(geometry, x, kernel, bias)`` at output gradient ``dy``.

    ``geometry`` says the direction. ``x`` and ``dy`` are this operation's input and output
    gradient in ``data_format``; ``kernel`` is neutral, ``(*kernel, in/groups, out)`` of the
    forward convolution. Returns ``(dx, dkernel, dbias)``, each of its argument's shape and
    layout (``dbias``: ``(output_channels,)``), in the floating dtype of the operands.
    """
    x, kernel, dy = _arrays(geometry, x, kernel, dy, padding_mode, data_format, impl)
    _check_input_shape(geometry, x, dy, data_format)
    if (impl == "gemm" and padding_mode == "zeros" and dy.shape[0] > 0 and x.dtype in (np.float32, np.float64)
            and grad_kernels.transposed_vjp_ready(geometry)):  # its compiled gather has no float16
        # one gather of dy serves both gradients (tconv.kernels.grad.transposed_vjp)
        _check_transposed_vjp_budget(geometry, x)
        dx, dkernel = grad_kernels.transposed_vjp(x, kernel, dy, geometry)
        return _layout(dx, data_format), dkernel, grad_kernels.bias_grad(dy)
    dx = _input_grad(geometry, x, kernel, dy, padding_mode, impl)
    dkernel = _weight_grad(geometry, x, dy, padding_mode, impl)
    dbias = grad_kernels.bias_grad(dy)
    return _layout(dx, data_format), dkernel, dbias


def input_vjp(geometry: Geometry, kernel: Any, dy: Any, *, padding_mode: str = "zeros",
              data_format: str = "channels_last", impl: str = "gemm") -> np.ndarray:
    """The input gradient alone: ``geometry.flip()`` run on ``dy`` (see :func:`vjp`)."""
    kernel, dy = _arrays(geometry, None, kernel, dy, padding_mode, data_format, impl)[1:]
    return _layout(_input_grad(geometry, None, kernel, dy, padding_mode, impl), data_format)


def weight_vjp(geometry: Geometry, x: Any, dy: Any, *, padding_mode: str = "zeros",
               data_format: str = "channels_last", impl: str = "gemm") -> np.ndarray:
    """The kernel gradient alone, neutral layout ``(*kernel, in/groups, out)`` (see :func:`vjp`)."""
    x, _, dy = _arrays(geometry, x, None, dy, padding_mode, data_format, impl)
    _check_input_shape(geometry, x, dy, data_format)
    return _weight_grad(geometry, x, dy, padding_mode, impl)


def _check_input_shape(g: Geometry, x: np.ndarray, dy: np.ndarray, data_format: str) -> None:
    """``x`` (channels last here) must be the input of the operation ``dy`` is the output of."""
    expected = (dy.shape[0],) + g.input_spatial + (g.input_channels,)
    if x.shape != expected:
        raise TconvError("input", x, f"must have shape {_shape(expected, data_format)}")


def _arrays(g, x, kernel, dy, padding_mode, data_format, impl):
    """Checked arrays, channels last, in the floating dtype of the operands (None stays None)."""
    padding_modes.check_mode(padding_mode)
    _args.choice(data_format, "data_format", ops.DATA_FORMATS)
    if not isinstance(impl, str) or impl not in _WEIGHT_GRAD:
        raise TconvError("impl", impl, f"must be one of {sorted(_WEIGHT_GRAD)}")
    x = None if x is None else _args.as_array(x, "input")
    kernel = None if kernel is None else _args.as_array(kernel, "kernel")
    dy = _args.as_array(dy, "dy")
    if dy.ndim != g.rank + 2:
        raise TconvError("dy", dy, f"must have {g.rank + 2} axes (batch, spatial x{g.rank}, channels)")
    if data_format == "channels_first":
        x = None if x is None else np.moveaxis(x, 1, -1)
        dy = np.moveaxis(dy, 1, -1)
    out_shape = dy.shape[:1] + g.output_spatial + (g.output_channels,)
    if dy.shape != out_shape:
        raise TconvError("dy", dy, f"must have the output's shape {_shape(out_shape, data_format)}")
    if x is not None and x.ndim != g.rank + 2:
        raise TconvError("input", x, f"must have {g.rank + 2} axes (batch, spatial x{g.rank}, channels)")
    if kernel is not None and kernel.shape != g.neutral_kernel_shape:
        raise TconvError("kernel", kernel, f"must have shape {g.neutral_kernel_shape} "
                         "(*kernel, in_channels/groups, out_channels)")
    dtype = _args.result_dtype(*(a for a in (x, kernel, dy) if a is not None))
    from tconv import budget  # the casts below copy every operand of another dtype

    budget.check(sum(a.size * dtype.itemsize for a in (x, kernel, dy) if a is not None and a.dtype != dtype),
                 "input", x if x is not None else dy, f"(operands cast to {dtype})")
    return tuple(None if a is None else a.astype(dtype, copy=False) for a in (x, kernel, dy))


def _input_grad(g, x, kernel, dy, padding_mode, impl):
    # the same plan run the other way: conv <-> conv_transpose, padding mode included
    return padding_modes.run(g.flip(), dy, kernel, padding_mode=padding_mode, impl=impl)


def _weight_grad(g, x, dy, padding_mode, impl):
    forward = g.flip() if g.transposed else g
    # in forward terms: the forward input and the gradient at the forward output
    fwd_in, fwd_out = (dy, x) if g.transposed else (x, dy)
    if x.shape[0] == 0:
        return np.zeros(g.neutral_kernel_shape, x.dtype)
    _check_weight_grad_budget(forward, fwd_in, fwd_out, padding_mode)
    if padding_mode != "zeros":
        fwd_in = padding_modes.pad(fwd_in, forward, padding_mode)
        forward = padding_modes.valid_geometry(forward)
    return _WEIGHT_GRAD[impl](fwd_in, fwd_out, forward)


def _check_transposed_vjp_budget(g: Geometry, x: np.ndarray) -> None:
    """dx (x's size) and the gathered columns, the tables and the weight gradient."""
    from tconv import budget

    temporaries = grad_kernels.transposed_vjp_temporary_elements(g, x.shape[0]) * x.dtype.itemsize
    budget.check(x.nbytes, "input", x, "(input gradient of a transposed convolution, with its gathered "
                 "output gradient)", temporaries=temporaries)


def _check_weight_grad_budget(forward: Geometry, fwd_in: np.ndarray, fwd_out: np.ndarray,
                              padding_mode: str) -> None:
    """The weight gradient copies each tap's strided blocks of the input and the output
    gradient, a chunk of batch items at a time (at least one item, :mod:`tconv.kernels.grad`);
    a padding mode first builds the padded input. Both must fit the memory budget."""
    import math

    from tconv import budget

    item = fwd_in[0].size + fwd_out[0].size
    chunk = min(item * fwd_in.shape[0], max(item, grad_kernels.CHUNK_ELEMENTS)) * fwd_in.dtype.itemsize
    padded = 0
    if padding_mode != "zeros":
        padded = (fwd_in.shape[0] * math.prod(a.size + a.pad_lo + a.pad_hi for a in forward.axes)
                  * fwd_in.shape[-1] * fwd_in.dtype.itemsize)
    budget.check(chunk + padded, "input", fwd_in,
                 f"(weight gradient: blocks of {item} elements per batch item"
                 f"{', a padded input of ' + budget.format_bytes(padded) if padded else ''})")


def _layout(a, data_format):
    return np.ascontiguousarray(np.moveaxis(a, -1, 1)) if data_format == "channels_first" else a


def _shape(shape, data_format):
    shape = tuple(shape)
    if data_format == "channels_first":
        shape = shape[:1] + shape[-1:] + shape[1:-1]
    return "(" + ", ".join(map(str, shape)) + ")"


def conv_vjp(x: Any, kernel: Any, dy: Any, *, geometry: Geometry | None = None, stride=1,
             padding="valid", dilation=1, groups: int = 1, data_format: str = "channels_last",
             padding_mode: str = "zeros", impl: str = "gemm"):
    """Gradients of :func:`tconv.conv` at output gradient ``dy``: ``(dx, dkernel, dbias)``.

    Parameters
    ----------
    x : the input, ``(N, *spatial, C_in)`` or ``(N, C_in, *spatial)``
    kernel : ``(*kernel, C_in/groups, C_out)``
    dy : the gradient at the output, ``y``'s shape
    geometry : a forward :class:`~tconv.geometry.Geometry`; when given, ``stride``,
        ``padding``, ``dilation`` and ``groups`` are not read
    stride, padding, dilation, groups, data_format, padding_mode : as :func:`tconv.conv`

    Returns
    -------
    dx : ``x``'s shape, ``conv_transpose(dy, kernel)`` with the same arguments
    dkernel : ``kernel``'s shape
    dbias : ``(C_out,)``, ``dy`` summed over batch and space (whether or not a bias was used)

    Examples
    --------
    With 'circular' padding the window at the start reads the last cell too:

    >>> x = np.arange(4.0).reshape(1, 4, 1)
    >>> w = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    >>> dy = np.array([1.0, 0.0, 0.0, 0.0]).reshape(1, 4, 1)
    >>> dx, dw, db = conv_vjp(x, w, dy, padding=1, padding_mode="circular")
    >>> dx[0, :, 0]                       # y[0] = x[3] + 10 x[0] + 100 x[1]
    array([ 10., 100.,   0.,   1.])
    >>> dw[:, 0, 0]
    array([3., 0., 1.])
    """
    if geometry is None:
        geometry = _plan(ops.plan_conv, x, kernel, "in", data_format, groups,
                         stride=stride, padding=padding, dilation=dilation)
    elif geometry.transposed:
        raise TconvError("geometry", geometry, "must be a forward convolution's (transposed=False); "
                         "use conv_transpose_vjp")
    return vjp(geometry, x, kernel, dy, padding_mode=padding_mode, data_format=data_format, impl=impl)


def conv_transpose_vjp(x: Any, kernel: Any, dy: Any, *, geometry: Geometry | None = None, stride=1,
                       crop="valid", dilation=1, groups: int = 1, data_format: str = "channels_last",
                       padding_mode: str = "zeros", impl: str = "gemm"):
    """Gradients of :func:`tconv.conv_transpose` at output gradient ``dy``: ``(dx, dkernel, dbias)``.

    ``dx`` is the forward convolution ``conv(dy, kernel)`` with the same geometry (and
    padding mode); ``dkernel`` is the forward convolution's weight gradient with the
    roles swapped, ``dy`` as its input and ``x`` as its output gradient.

    Parameters
    ----------
    x : the input, ``(N, *spatial, C_in)`` or ``(N, C_in, *spatial)``
    kernel : ``(*kernel, C_out/groups, C_in)``, the forward convolution's kernel
    dy : the gradient at the output
    geometry : a transposed :class:`~tconv.geometry.Geometry`; when given, ``stride``,
        ``crop``, ``dilation`` and ``groups`` are not read
    stride, crop, dilation, groups, data_format, padding_mode : as :func:`tconv.conv_transpose`

    Examples
    --------
    >>> x = np.array([1.0, 2.0]).reshape(1, 2, 1)
    >>> w = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    >>> dy = np.array([0.0, 0.0, 1.0, 0.0, 0.0]).reshape(1, 5, 1)   # y[2] = 100 x[0] + x[1]
    >>> dx, dw, db = conv_transpose_vjp(x, w, dy, stride=2)
    >>> dx[0, :, 0], dw[:, 0, 0]
    (array([100.,   1.]), array([2., 0., 1.]))
    """
    if geometry is None:
        geometry = _plan(ops.plan_conv_transpose, x, kernel, "out", data_format, groups,
                         stride=stride, crop=crop, dilation=dilation)
    elif not geometry.transposed:
        raise TconvError("geometry", geometry, "must be a transposed convolution's (transposed=True); "
                         "use conv_vjp")
    return vjp(geometry, x, kernel, dy, padding_mode=padding_mode, data_format=data_format, impl=impl)


def _plan(planner, x, kernel, reads: str, data_format, groups, **kwargs) -> Geometry:
    """The geometry :func:`tconv.conv` (``reads='in'``) or :func:`tconv.conv_transpose` would plan."""
    x = _args.as_array(x, "input")
    kernel = _args.as_array(kernel, "kernel")
    rank = kernel.ndim - 2
    if rank not in (1, 2, 3):
        raise TconvError("kernel", kernel, "must have 3 to 5 axes: (*kernel, in/groups, out)")
    _args.choice(data_format, "data_format", ops.DATA_FORMATS)
    spatial, channels = ops._spatial_and_channels(x, rank, data_format)
    if not _args.is_int(groups) or groups < 1:
        raise TconvError("groups", groups, "must be a positive integer")
    if reads == "in":
        if channels != kernel.shape[-2] * groups:
            raise TconvError("input", x, f"has {channels} channels; the kernel expects "
                             f"{kernel.shape[-2]} x groups={groups}")
        return planner(spatial, kernel.shape[:-2], channels, kernel.shape[-1], groups=groups, **kwargs)
    if channels != kernel.shape[-1]:
        raise TconvError("input", x, f"has {channels} channels; the kernel expects {kernel.shape[-1]}")
    return planner(spatial, kernel.shape[:-2], channels, kernel.shape[-2] * groups, groups=groups, **kwargs)
