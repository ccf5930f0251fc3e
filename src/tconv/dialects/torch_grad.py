"""``torch.nn.grad`` on NumPy arrays: the gradients of ``conv*d`` and ``conv_transpose*d``.

Reached as ``tconv.dialects.torch.grad``. The six ``conv{1,2,3}d_{input,weight}``
functions have PyTorch's signatures; ``conv_transpose{1,2,3}d_{input,weight}`` are
tconv's additions with the same pattern, their options in ``F.conv_transpose*d``'s
order ``(stride, padding, output_padding, groups, dilation)``. Layouts are PyTorch's:
data ``(N, C, *spatial)``; weights ``(out, in/groups, *k)`` for ``conv*d`` and
``(in, out/groups, *k)`` for ``conv_transpose*d``. ``input_size`` and ``weight_size``
are full shapes (a ``torch.Size`` or any sequence of ints), and, as in PyTorch, the
``grad_output`` must have exactly the shape the convolution gives for them.

The input gradient of ``conv*d`` is ``conv_transpose*d`` with the same geometry; the
input gradient of ``conv_transpose*d`` is ``conv*d``; the weight gradient of
``conv_transpose*d`` is that of ``conv*d`` with ``grad_output`` as the input.

>>> import numpy as np
>>> x = np.arange(5.0).reshape(1, 1, 5)
>>> w = np.array([1.0, 10.0]).reshape(1, 1, 2)
>>> dy = np.array([0.0, 0.0, 0.0, 1.0]).reshape(1, 1, 4)
>>> conv1d_input(x.shape, w, dy)[0, 0]
array([ 0.,  0.,  0.,  1., 10.])
>>> conv1d_weight(x, w.shape, dy)[0, 0]
array([3., 4.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tconv import _args, grad as neutral
from tconv.dialects import torch as _functional  # loaded: torch.py imports this module last
from tconv.dialects._common import Refusal, as_array, refuse, same_dtype
from tconv.geometry import Geometry

__all__ = [f"conv{t}{r}d_{w}" for t in ("", "_transpose") for r in (1, 2, 3) for w in ("input", "weight")]

_T = "tests/test_grad.py"
#: what ``torch.nn.grad`` refuses beyond ``F.conv*d``'s own checks (those are
#: :data:`tconv.dialects.torch.REFUSALS`)
REFUSALS = {
    **_functional.REFUSALS,
    "size": Refusal("{name}", "must be a sequence of {want} integers, the full shape (batch, channels, "
                    "*spatial) or (out, in/groups, *kernel)",
                    "Convolution.cpp: 'Expected {want}-dimensional input for {want}-dimensional weight'", _T),
    "grad_output": Refusal("grad_output", "expected a tensor of shape {want}, the convolution's output "
                           "for these sizes, but got {got}",
                           "ConvUtils.h check_dim_size: 'Expected a tensor of dimension ... and tensor.size'",
                           _T),
    "batched": Refusal("{name}", "expected a {want}-dimensional (batched) tensor; torch.nn.grad has no "
                       "unbatched form", "Convolution.cpp: 'Expected 4-dimensional input for 4-dimensional "
                       "weight'", _T),
    "grad_padding": Refusal("padding", "must be an int or a tuple of {rank} ints; torch.nn.grad has no "
                            "'same'/'valid'", "torch/nn/grad.py: aten::convolution_backward takes int[] padding",
                            _T),
}


def _size(value: Any, rank: int, name: str, context: str) -> tuple[int, ...]:
    try:
        size = _args.int_tuple(tuple(value), rank + 2, name, minimum=None, context=context)
    except (TypeError, ValueError):
        raise refuse(REFUSALS, "size", value, context, name=name, want=rank + 2) from None
    return size


def _conv_geometry(name, rank, input_size, weight_size, stride, padding, dilation, groups) -> Geometry:
    """The forward plan of ``F.conv{rank}d``; ``torch.nn.grad`` takes integer padding only."""
    if isinstance(padding, str):
        raise refuse(REFUSALS, "grad_padding", padding, name, rank=rank)
    return _functional._plan_conv(name, rank, input_size, weight_size, stride, padding, dilation, groups)


def _transpose_geometry(name, rank, input_size, weight_size, stride, padding, output_padding, groups,
                        dilation) -> Geometry:
    """The plan of ``F.conv_transpose{rank}d`` on an input of ``input_size`` with a weight of ``weight_size``."""
    return _functional._plan_conv_transpose(name, rank, input_size, weight_size, stride, padding,
                                            output_padding, groups, dilation)


def _check_grad_output(name, geometry: Geometry, batch: int, grad_output: np.ndarray) -> None:
    want = (batch, geometry.output_channels) + geometry.output_spatial
    if grad_output.shape != want:
        raise refuse(REFUSALS, "grad_output", grad_output, name, want=want, got=tuple(grad_output.shape))


def _neutral(weight: np.ndarray) -> np.ndarray:
    """PyTorch ``(out, in/g, *k)`` (or transposed ``(in, out/g, *k)``) -> neutral ``(*k, in/g, out)``."""
    return np.moveaxis(weight, (0, 1), (-1, -2))


def _input(rank, transposed, input_size, weight, grad_output, *options):
    name = f"torch.nn.grad.conv{'_transpose' if transposed else ''}{rank}d_input"
    w = as_array(weight, "weight", name)
    dy = as_array(grad_output, "grad_output", name)
    same_dtype(name, weight=w, grad_output=dy)
    if w.ndim != rank + 2:
        raise refuse(REFUSALS, "weight_rank", w, name, want=rank + 2)
    if dy.ndim != rank + 2:
        raise refuse(REFUSALS, "batched", dy, name, name="grad_output", want=rank + 2)
    size = _size(input_size, rank, "input_size", name)
    plan = _transpose_geometry if transposed else _conv_geometry
    geometry = plan(name, rank, size, w.shape, *options)
    _check_grad_output(name, geometry, size[0], dy)
    return neutral.input_vjp(geometry, _neutral(w), dy, data_format="channels_first")


def _weight(rank, transposed, input, weight_size, grad_output, *options):
    name = f"torch.nn.grad.conv{'_transpose' if transposed else ''}{rank}d_weight"
    x = as_array(input, "input", name)
    dy = as_array(grad_output, "grad_output", name)
    same_dtype(name, input=x, grad_output=dy)
    if dy.ndim != rank + 2:
        raise refuse(REFUSALS, "batched", dy, name, name="grad_output", want=rank + 2)
    if x.ndim != rank + 2:
        raise refuse(REFUSALS, "batched", x, name, name="input", want=rank + 2)
    size = _size(weight_size, rank, "weight_size", name)
    plan = _transpose_geometry if transposed else _conv_geometry
    geometry = plan(name, rank, x.shape, size, *options)
    _check_grad_output(name, geometry, x.shape[0], dy)
    dw = neutral.weight_vjp(geometry, x, dy, data_format="channels_first")
    return np.ascontiguousarray(np.moveaxis(dw, (-1, -2), (0, 1)))


def conv1d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """``torch.nn.grad.conv1d_input``: gradient of ``conv1d`` in its input, shape ``input_size``."""
    return _input(1, False, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv1d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """``torch.nn.grad.conv1d_weight``: gradient of ``conv1d`` in its weight, shape ``weight_size``."""
    return _weight(1, False, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """``torch.nn.grad.conv2d_input``: gradient of ``conv2d`` in its input, shape ``input_size``."""
    return _input(2, False, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """``torch.nn.grad.conv2d_weight``: gradient of ``conv2d`` in its weight, shape ``weight_size``."""
    return _weight(2, False, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv3d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """``torch.nn.grad.conv3d_input``: gradient of ``conv3d`` in its input, shape ``input_size``."""
    return _input(3, False, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv3d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """``torch.nn.grad.conv3d_weight``: gradient of ``conv3d`` in its weight, shape ``weight_size``."""
    return _weight(3, False, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv_transpose1d_input(input_size, weight, grad_output, stride=1, padding=0, output_padding=0, groups=1,
                           dilation=1) -> np.ndarray:
    """Gradient of ``conv_transpose1d`` in its input (a ``conv1d`` of ``grad_output``), shape ``input_size``."""
    return _input(1, True, input_size, weight, grad_output, stride, padding, output_padding, groups, dilation)


def conv_transpose1d_weight(input, weight_size, grad_output, stride=1, padding=0, output_padding=0, groups=1,
                            dilation=1) -> np.ndarray:
    """Gradient of ``conv_transpose1d`` in its weight ``(in, out/groups, k)``, shape ``weight_size``."""
    return _weight(1, True, input, weight_size, grad_output, stride, padding, output_padding, groups, dilation)


def conv_transpose2d_input(input_size, weight, grad_output, stride=1, padding=0, output_padding=0, groups=1,
                           dilation=1) -> np.ndarray:
    """Gradient of ``conv_transpose2d`` in its input (a ``conv2d`` of ``grad_output``), shape ``input_size``."""
    return _input(2, True, input_size, weight, grad_output, stride, padding, output_padding, groups, dilation)


def conv_transpose2d_weight(input, weight_size, grad_output, stride=1, padding=0, output_padding=0, groups=1,
                            dilation=1) -> np.ndarray:
    """Gradient of ``conv_transpose2d`` in its weight ``(in, out/groups, kH, kW)``, shape ``weight_size``."""
    return _weight(2, True, input, weight_size, grad_output, stride, padding, output_padding, groups, dilation)


def conv_transpose3d_input(input_size, weight, grad_output, stride=1, padding=0, output_padding=0, groups=1,
                           dilation=1) -> np.ndarray:
    """Gradient of ``conv_transpose3d`` in its input (a ``conv3d`` of ``grad_output``), shape ``input_size``."""
    return _input(3, True, input_size, weight, grad_output, stride, padding, output_padding, groups, dilation)


def conv_transpose3d_weight(input, weight_size, grad_output, stride=1, padding=0, output_padding=0, groups=1,
                            dilation=1) -> np.ndarray:
    """Gradient of ``conv_transpose3d`` in its weight ``(in, out/groups, kD, kH, kW)``, shape ``weight_size``."""
    return _weight(3, True, input, weight_size, grad_output, stride, padding, output_padding, groups, dilation)
