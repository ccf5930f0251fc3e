"""Text specs of a layer: the safe parser, :class:`LayerSpec`, and its resolution to a Geometry.

A text spec is one call, written as the framework writes it::

    keras.Conv2DTranspose(512, 3, strides=2, padding='same')
    torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1, output_padding=1)
    torch.nn.functional.conv_transpose2d(stride=2, padding=1, weight=(1024, 512, 3, 3))
    tf.nn.conv2d_transpose(output_shape=[1, 16, 16, 512], strides=2, padding='SAME', filters=(3, 3, 512, 1024))
    jax.lax.conv_transpose(strides=(2, 2), padding='SAME', rhs=(3, 3, 1024, 512))
    onnx.ConvTranspose(strides=[2, 2], auto_pad='SAME_UPPER', W=(1024, 512, 3, 3))

It is parsed with :mod:`ast` and only literal nodes are read (numbers, strings,
tuples/lists, ``None``, ``True``/``False``, a unary minus); nothing is ever
evaluated. Array arguments (``weight``, ``filters``, ``rhs``, ``W``, ``input``...)
are written as their *shape*. Functional forms, whose kernel lives in the weight,
also take ``kernel_size=`` and ``out_channels=`` instead of a weight shape.

:meth:`LayerSpec.resolve` turns a spec and an input shape (the framework's own data
format, with or without the batch axis) into a :class:`Resolved` plan: the neutral
:class:`~tconv.geometry.Geometry`, built with the same geometry functions the
dialects use, plus the framework's view (kernel layout, output shape). Where the
framework refuses the configuration, it raises :class:`Refused` (a
:class:`~tconv.errors.TconvError`) with the framework's reason.

>>> spec = parse("keras.layers.Conv2DTranspose(512, 3, strides=2, padding='same')")
>>> spec
keras.Conv2DTranspose(512, 3, strides=2, padding='same')
>>> spec.resolve((8, 8, 1024)).output_shape
(16, 16, 512)
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any

from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, Geometry, causal_pads, full_length,
                            jax_transpose_pads, keras_transpose_crops, lhs_dilated_axis,
                            onnx_conv_pads, onnx_transpose_crops, same_pads, tf_transpose_crops,
                            torch_output_padding_for_size, torch_transpose_crops)
from tconv.layout import SPATIAL

__all__ = ["LayerSpec", "Resolved", "Refused", "parse", "FRAMEWORKS", "MAX_TEXT"]

FRAMEWORKS = ("keras", "tf", "torch", "jax", "onnx")
#: longest text spec accepted, in characters
MAX_TEXT = 2000
#: largest magnitude of a numeric literal
MAX_NUMBER = 10 ** 6
_MAX_DEPTH = 3      # nested tuples/lists: output_shape, [[0,0],[1,1]], dimension_numbers
_MAX_ITEMS = 16


class Refused(TconvError):
    """The framework itself refuses this configuration (the message gives its reason)."""


# ------------------------------------------------------------------- the op table


@dataclass(frozen=True)
class _Op:
    framework: str
    module: str                 # canonical dotted prefix
    name: str
    transposed: bool | None     # None: decided by the arguments (jax conv_general_dilated)
    rank: int | None            # None: from the arguments or the input
    params: tuple[str, ...]     # accepted names; the first ``positional`` may be positional
    positional: int
    arrays: tuple[str, ...] = ()  # parameters that are arrays, written as their shapes

    @property
    def callee(self) -> str:
        return f"{self.module}.{self.name}"


_KERAS_EXTRA = ("activation", "use_bias", "kernel_initializer", "bias_initializer",
                "kernel_regularizer", "bias_regularizer", "activity_regularizer",
                "kernel_constraint", "bias_constraint", "name", "dtype", "trainable")
_TORCH_EXTRA = ("bias", "padding_mode", "device", "dtype")
_FUNCTIONAL_EXTRA = ("kernel_size", "in_channels", "out_channels")


def _op_table() -> dict[tuple[str, str], _Op]:
    ops: list[_Op] = []
    for r in (1, 2, 3):
        ops.append(_Op("keras", "keras", f"Conv{r}D", False, r,
                       ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                        "groups") + _KERAS_EXTRA, 9))
        ops.append(_Op("keras", "keras", f"Conv{r}DTranspose", True, r,
                       ("filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
                        "dilation_rate") + _KERAS_EXTRA, 9))
        ops.append(_Op("torch", "torch.nn", f"Conv{r}d", False, r,
                       ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                        "groups") + _TORCH_EXTRA, 11))
        ops.append(_Op("torch", "torch.nn", f"ConvTranspose{r}d", True, r,
                       ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                        "groups", "bias", "dilation", "padding_mode", "device", "dtype", "output_size"), 12))
        ops.append(_Op("torch", "torch.nn.functional", f"conv{r}d", False, r,
                       ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
                       + _FUNCTIONAL_EXTRA, 0, ("input", "weight", "bias")))
        ops.append(_Op("torch", "torch.nn.functional", f"conv_transpose{r}d", True, r,
                       ("input", "weight", "bias", "stride", "padding", "output_padding", "groups",
                        "dilation") + _FUNCTIONAL_EXTRA, 0, ("input", "weight", "bias")))
        stride = "stride" if r == 1 else "strides"
        ops.append(_Op("tf", "tf.nn", f"conv{r}d", False, r,
                       ("input", "filters", stride, "padding", "data_format", "dilations", "name")
                       + _FUNCTIONAL_EXTRA, 0, ("input", "filters")))
        ops.append(_Op("tf", "tf.nn", f"conv{r}d_transpose", True, r,
                       ("input", "filters", "output_shape", "strides", "padding", "data_format",
                        "dilations", "name") + _FUNCTIONAL_EXTRA, 0, ("input", "filters")))
    ops.append(_Op("tf", "tf.nn", "convolution", False, None,
                   ("input", "filters", "strides", "padding", "data_format", "dilations", "name")
                   + _FUNCTIONAL_EXTRA, 0, ("input", "filters")))
    ops.append(_Op("tf", "tf.nn", "conv_transpose", True, None,
                   ("input", "filters", "output_shape", "strides", "padding", "data_format",
                    "dilations", "name") + _FUNCTIONAL_EXTRA, 0, ("input", "filters")))
    ops.append(_Op("jax", "jax.lax", "conv_transpose", True, None,
                   ("lhs", "rhs", "strides", "padding", "rhs_dilation", "dimension_numbers",
                    "transpose_kernel", "precision", "preferred_element_type", "use_consistent_padding")
                   + _FUNCTIONAL_EXTRA, 0, ("lhs", "rhs")))
    ops.append(_Op("jax", "jax.lax", "conv_general_dilated", None, None,
                   ("lhs", "rhs", "window_strides", "padding", "lhs_dilation", "rhs_dilation",
                    "dimension_numbers", "feature_group_count", "batch_group_count", "precision",
                    "preferred_element_type") + _FUNCTIONAL_EXTRA, 0, ("lhs", "rhs")))
    ops.append(_Op("onnx", "onnx", "Conv", False, None,
                   ("X", "W", "B", "auto_pad", "dilations", "group", "kernel_shape", "pads", "strides",
                    "out_channels"), 0, ("X", "W", "B")))
    ops.append(_Op("onnx", "onnx", "ConvTranspose", True, None,
                   ("X", "W", "B", "auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                    "output_shape", "pads", "strides", "out_channels"), 0, ("X", "W", "B")))
    return {(op.module, op.name): op for op in ops}


_OPS = _op_table()
_KNOWN = ("keras.Conv1D..Conv3D, keras.Conv1DTranspose..Conv3DTranspose, torch.nn.Conv1d..Conv3d, "
          "torch.nn.ConvTranspose1d..3d, torch.nn.functional.conv1d..3d / conv_transpose1d..3d, "
          "tf.nn.conv1d..3d / conv1d_transpose..conv3d_transpose / convolution / conv_transpose, "
          "jax.lax.conv_transpose / conv_general_dilated, onnx.Conv / onnx.ConvTranspose")
#: accepted spellings of each canonical module prefix
_ALIASES = {
    "keras": "keras", "keras.layers": "keras", "tf.keras.layers": "keras",
    "tensorflow.keras.layers": "keras", "tf.keras": "keras", "layers": "keras",
    "torch.nn": "torch.nn", "nn": "torch.nn",
    "torch.nn.functional": "torch.nn.functional", "F": "torch.nn.functional",
    "nn.functional": "torch.nn.functional",
    "tf.nn": "tf.nn", "tensorflow.nn": "tf.nn",
    "jax.lax": "jax.lax", "lax": "jax.lax",
    "onnx": "onnx",
}
#: positional arguments a repr writes positionally (the layers' required ones)
_REPR_POSITIONAL = {"keras": 2, "torch.nn": 3}


# --------------------------------------------------------------------- LayerSpec


@dataclass(frozen=True, repr=False)
class LayerSpec:
    """One layer or call of one framework, with its arguments normalised.

    ``args`` holds ``(name, value)`` pairs in the framework's signature order, every
    positional argument named, lists turned into tuples. ``repr`` is the canonical
    text spec, which :func:`parse` reads back to an equal spec.

    >>> s = parse("nn.ConvTranspose2d(1024, 512, 3, 2, 1, 1)")
    >>> s
    torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1, output_padding=1)
    >>> s.framework, s.transposed, s.rank, s.get("stride")
    ('torch', True, 2, 2)
    """

    framework: str
    op: str
    transposed: bool
    rank: int | None
    args: tuple[tuple[str, Any], ...] = field(default=())
    module: str = ""

    def __repr__(self) -> str:
        leading = _REPR_POSITIONAL.get(self.module, 0)
        params = _OPS[(self.module, self.op)].params
        parts = []
        for name, value in self.args:
            if params.index(name) < leading and len(parts) == params.index(name):
                parts.append(repr(value))
            else:
                parts.append(f"{name}={value!r}")
        return f"{self.callee}({', '.join(parts)})"

    @property
    def callee(self) -> str:
        """The canonical dotted name, e.g. ``'keras.Conv2DTranspose'``."""
        return f"{self.module}.{self.op}"

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.args)

    def get(self, name: str, default: Any = None) -> Any:
        for key, value in self.args:
            if key == name:
                return value
        return default

    def resolve(self, input_shape) -> "Resolved":
        """Plan this layer on ``input_shape`` (framework data format, batch axis optional).

        Raises :class:`Refused` where the framework refuses, :class:`TconvError` where the
        spec lacks something tconv needs (a kernel size, a channel count).
        """
        return _RESOLVERS[self.framework](self, _shape_tuple(input_shape))


# ------------------------------------------------------------------------ parsing


def parse(text: str) -> LayerSpec:
    """Read a text spec into a :class:`LayerSpec`, safely (literal nodes only, never eval).

    >>> parse("F.conv_transpose2d(stride=2, padding=1, kernel_size=3, out_channels=8)").callee
    'torch.nn.functional.conv_transpose2d'
    >>> parse("keras.Conv2D(8, 3, activation=relu)")
    Traceback (most recent call last):
    ...
    tconv.errors.TconvError: spec='relu' at column 31: a name is not a literal; write values as numbers, strings, tuples, None, True or False
    """
    if not isinstance(text, str):
        raise TconvError("spec", text, "must be a string such as \"keras.Conv2DTranspose(512, 3, strides=2)\"")
    if len(text) > MAX_TEXT:
        raise TconvError("spec", text, f"is {len(text)} characters long; at most {MAX_TEXT} are read")
    stripped = text.strip()
    if not stripped:
        raise TconvError("spec", text, "is empty; write a call such as \"keras.Conv2DTranspose(512, 3, strides=2)\"")
    depth = 0
    for col, char in enumerate(stripped):
        depth += char in "([{"
        depth -= char in ")]}"
        if depth > _MAX_DEPTH + 2:
            raise TconvError("spec", stripped[max(0, col - 10):col + 1],
                             f"at column {col + 1}: brackets nest deeper than {_MAX_DEPTH + 2}")
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        col = exc.offset or 0
        raise TconvError("spec", stripped, f"is not valid Python call syntax at column {col}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise TconvError("spec", stripped, f"cannot be parsed: {exc}") from None
    call = tree.body
    if not isinstance(call, ast.Call):
        raise TconvError("spec", stripped, "must be a single call, e.g. keras.Conv2DTranspose(512, 3, strides=2)")
    op = _callee(call.func, stripped)
    if len(call.args) > op.positional:
        node = call.args[op.positional]
        where = f"at column {node.col_offset + 1}"
        if op.positional == 0:
            raise TconvError("spec", _segment(stripped, node),
                             f"{where}: {op.callee} takes keyword arguments here (arrays as their shapes, "
                             f"e.g. {op.arrays[1] if len(op.arrays) > 1 else op.params[0]}=(...))")
        raise TconvError("spec", _segment(stripped, node),
                         f"{where}: {op.callee} takes at most {op.positional} positional arguments")
    values: dict[str, Any] = {}
    for i, node in enumerate(call.args):
        if isinstance(node, ast.Starred):
            raise TconvError("spec", _segment(stripped, node),
                             f"at column {node.col_offset + 1}: *arguments are not allowed")
        values[op.params[i]] = _literal(node, stripped, 0)
    for kw in call.keywords:
        if kw.arg is None:
            raise TconvError("spec", _segment(stripped, kw.value),
                             f"at column {kw.value.col_offset + 1}: **arguments are not allowed")
        if kw.arg not in op.params:
            raise TconvError("spec", kw.arg, f"at column {kw.col_offset + 1}: "
                             f"{op.callee} has no argument {kw.arg!r}",
                             valid=", ".join(op.params))
        if kw.arg in values:
            raise TconvError("spec", kw.arg, f"at column {kw.col_offset + 1}: "
                             f"argument {kw.arg!r} given twice (positionally and by name)")
        values[kw.arg] = _literal(kw.value, stripped, 0)
    args = tuple((name, values[name]) for name in op.params if name in values)
    transposed = op.transposed
    if transposed is None:  # conv_general_dilated: an lhs_dilation > 1 makes it transposed
        lhs_dilation = values.get("lhs_dilation")
        transposed = isinstance(lhs_dilation, tuple) and any(
            isinstance(v, int) and v > 1 for v in lhs_dilation)
    rank = op.rank if op.rank is not None else _infer_rank(op, values)
    return LayerSpec(op.framework, op.name, transposed, rank, args, op.module)


def _segment(text: str, node: ast.AST) -> str:
    segment = ast.get_source_segment(text, node) or ""
    return segment if len(segment) <= 60 else segment[:57] + "..."


def _callee(func: ast.AST, text: str) -> _Op:
    parts = []
    node = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise TconvError("spec", _segment(text, func), "at column 1: the callee must be a dotted name "
                         "such as keras.Conv2DTranspose or torch.nn.ConvTranspose2d")
    parts.append(node.id)
    dotted = ".".join(reversed(parts))
    module, _, name = dotted.rpartition(".")
    if module:
        canonical = _ALIASES.get(module)
        if canonical is None or (canonical, name) not in _OPS:
            raise TconvError("spec", dotted, "at column 1: is not a known convolution",
                             valid=_KNOWN)
        return _OPS[(canonical, name)]
    matches = [op for (mod, nm), op in _OPS.items() if nm == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise TconvError("spec", dotted, "at column 1: is not a known convolution; name the framework, "
                         "e.g. keras.Conv2DTranspose, torch.nn.ConvTranspose2d, tf.nn.conv2d_transpose")
    raise TconvError("spec", dotted, "at column 1: is ambiguous; name the framework",
                     valid=", ".join(op.callee for op in matches))


def _literal(node: ast.AST, text: str, depth: int) -> Any:
    where = f"at column {getattr(node, 'col_offset', 0) + 1}"
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, (bool, str)):
            if isinstance(value, str) and len(value) > 64:
                raise TconvError("spec", value, f"{where}: strings longer than 64 characters are not read")
            return value
        if isinstance(value, (int, float)):
            if not math.isfinite(value) or abs(value) > MAX_NUMBER:
                raise TconvError("spec", _segment(text, node), f"{where}: numbers must be finite and at "
                                 f"most {MAX_NUMBER} in magnitude")
            return value
        raise TconvError("spec", _segment(text, node), f"{where}: {type(value).__name__} literals are not allowed")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
        value = _literal(node.operand, text, depth)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Tuple, ast.List)):
        if depth >= _MAX_DEPTH:
            raise TconvError("spec", _segment(text, node), f"{where}: tuples nest deeper than {_MAX_DEPTH}")
        if len(node.elts) > _MAX_ITEMS:
            raise TconvError("spec", _segment(text, node), f"{where}: more than {_MAX_ITEMS} items")
        return tuple(_literal(e, text, depth + 1) for e in node.elts)
    kinds = {ast.Name: "a name is not a literal", ast.Call: "calls are not allowed",
             ast.Attribute: "attribute access is not allowed", ast.JoinedStr: "f-strings are not allowed",
             ast.BinOp: "arithmetic is not allowed", ast.Lambda: "lambdas are not allowed",
             ast.Subscript: "subscripts are not allowed", ast.Dict: "dicts are not allowed",
             ast.Set: "sets are not allowed", ast.Starred: "*arguments are not allowed"}
    reason = next((msg for cls, msg in kinds.items() if isinstance(node, cls)),
                  f"{type(node).__name__} is not allowed")
    raise TconvError("spec", _segment(text, node),
                     f"{where}: {reason}; write values as numbers, strings, tuples, None, True or False")


def _infer_rank(op: _Op, values: dict[str, Any]) -> int | None:
    """Spatial rank of a rank-generic call (tf.nn.convolution, jax.lax, onnx) from its arguments."""
    candidates = []
    for name in ("filters", "rhs", "W", "weight"):
        if isinstance(values.get(name), tuple):
            candidates.append(len(values[name]) - 2)
    for name in ("X", "lhs", "input"):
        if isinstance(values.get(name), tuple):
            candidates.append(len(values[name]) - 2)
    for name in ("kernel_shape", "window_strides", "lhs_dilation", "rhs_dilation", "kernel_size"):
        if isinstance(values.get(name), tuple):
            candidates.append(len(values[name]))
    if op.framework in ("jax", "onnx"):
        for name in ("strides", "dilations", "output_padding"):
            if isinstance(values.get(name), tuple):
                candidates.append(len(values[name]))
        if op.framework == "jax" and isinstance(values.get("padding"), tuple):
            candidates.append(len(values["padding"]))
        if op.framework == "onnx" and isinstance(values.get("pads"), tuple):
            candidates.append(len(values["pads"]) // 2)
    if op.framework == "tf" and isinstance(values.get("output_shape"), tuple):
        candidates.append(len(values["output_shape"]) - 2)
    if op.framework == "jax" and isinstance(values.get("dimension_numbers"), tuple) \
            and values["dimension_numbers"] and isinstance(values["dimension_numbers"][0], str):
        candidates.append(len(values["dimension_numbers"][0]) - 2)
    good = [c for c in candidates if 1 <= c <= 3]
    return good[0] if good else None


# ----------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Resolved:
    """A spec planned on an input shape: the neutral geometry and the framework's view of it.

    ``kernel_layout`` names the framework kernel's axes: spatial letters, ``I`` for this
    layer's input channels (per group where the framework stores them so) and ``O``
    for its output channels. ``rules`` holds each spatial axis' framework arguments
    (e.g. ``{'padding': 'same', 'output_padding': None}``) for the words of explain.
    """

    spec: LayerSpec
    geometry: Geometry
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    batched: bool
    channels_first: bool
    kernel_shape: tuple[int, ...]
    kernel_layout: str
    bias: bool
    rules: tuple[dict, ...]
    flipped: bool = False
    notes: tuple[str, ...] = ()

    @property
    def spatial_letters(self) -> str:
        return SPATIAL[self.geometry.rank]


def _shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, str):
        raise TconvError("input_shape", shape, "must be a sequence of integers (use tconv.cli for '8x8x1024')")
    try:
        items = tuple(shape)
    except TypeError:
        raise TconvError("input_shape", shape, "must be a sequence of integers") from None
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise TconvError("input_shape", shape, "must be a sequence of integers")
    if any(v < 0 for v in items):
        raise TconvError("input_shape", shape, "must not contain negative lengths")
    return items


def _need_int(value: Any, name: str, spec: LayerSpec, *, minimum: int | None = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(name, value, "must be an integer", context=spec.callee)
    if minimum is not None and value < minimum:
        raise Refused(name, value, f"must be at least {minimum}", context=spec.callee)
    return value


def _ints(value: Any, rank: int, name: str, spec: LayerSpec, *, minimum: int | None = 1,
          full_rank: bool = False) -> tuple[int, ...]:
    """An int or ``rank`` ints (``full_rank``: also ``rank + 2`` with the N and C entries, TF style)."""
    if isinstance(value, int) and not isinstance(value, bool):
        items = (value,) * rank
    elif isinstance(value, tuple) and len(value) == rank:
        items = value
    elif full_rank and isinstance(value, tuple) and len(value) == rank + 2:
        items = value[1:-1]  # channels-last order; callers with NC* order re-slice
    elif full_rank and isinstance(value, tuple) and len(value) == 1:
        items = value * rank
    else:
        raise Refused(name, value, f"must be an integer or {rank} integers", context=spec.callee)
    return tuple(_need_int(v, name, spec, minimum=minimum) for v in items)


def _split_input(spec: LayerSpec, shape: tuple[int, ...], rank: int, channels_first: bool,
                 *, batch_optional: bool = True) -> tuple[bool, tuple[int, ...], int]:
    """``(batched, spatial, channels)`` of an input in the framework's data format."""
    if len(shape) == rank + 2:
        core, batched = shape[1:], True
    elif len(shape) == rank + 1 and batch_optional:
        core, batched = shape, False
    else:
        raise TconvError("input_shape", shape, f"must have {rank + 1} or {rank + 2} axes for {spec.callee} "
                         f"({'C, ' if channels_first else ''}{', '.join(SPATIAL[rank])}"
                         f"{'' if channels_first else ', C'}, optionally batch first)")
    spatial, channels = (core[1:], core[0]) if channels_first else (core[:-1], core[-1])
    if any(n < 1 for n in spatial) or channels < 1:
        raise Refused("input_shape", shape, "has an empty axis", context=spec.callee)
    return batched, tuple(spatial), channels


def _compose(batched: bool, batch: int, spatial, channels: int, channels_first: bool) -> tuple[int, ...]:
    core = (channels,) + tuple(spatial) if channels_first else tuple(spatial) + (channels,)
    return ((batch,) if batched else ()) + core


def _rank_of(spec: LayerSpec, shape: tuple[int, ...]) -> int:
    if spec.rank is not None:
        return spec.rank
    rank = len(shape) - 2  # rank-generic calls take batched arrays
    if not 1 <= rank <= 3:
        raise TconvError("input_shape", shape, f"must have 3 to 5 axes (batch, channels, spatial) for "
                         f"{spec.callee}, whose rank the spec does not fix")
    return rank


def _axes(spec: LayerSpec, build) -> tuple[AxisGeometry, ...]:
    """Geometry construction errors (kernel larger than input, empty output) are refusals."""
    try:
        return tuple(build())
    except Refused:
        raise
    except TconvError as exc:
        raise Refused(exc.argument, exc.value, exc.rule, valid=exc.valid, context=spec.callee) from None


def _geometry(spec: LayerSpec, axes, in_channels: int, out_channels: int, groups: int) -> Geometry:
    """``in/out_channels`` of *this* layer; Geometry stores the forward convolution's."""
    try:
        if spec.transposed:
            return Geometry(axes, out_channels, in_channels, groups, transposed=True)
        return Geometry(axes, in_channels, out_channels, groups)
    except TconvError as exc:
        raise Refused(exc.argument, exc.value, exc.rule, valid=exc.valid, context=spec.callee) from None


def _kernel_from(spec: LayerSpec, rank: int, *, shape_arg: str | None, layout: str,
                 in_channels: int, groups: int) -> tuple[tuple[int, ...], int]:
    """Kernel size and output channels of a functional call, from its weight shape or the extras."""
    shape = spec.get(shape_arg) if shape_arg else None
    if shape is not None:
        if not isinstance(shape, tuple) or len(shape) != rank + 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in shape):
            raise Refused(shape_arg, shape, f"must be the shape of a {rank + 2}-axis kernel ({layout})",
                          context=spec.callee)
        spatial = tuple(v for v, c in zip(shape, layout) if c not in "IO")
        i, o = shape[layout.index("I")], shape[layout.index("O")]
        return spatial, (i, o)
    kernel = spec.get("kernel_size")
    if kernel is None:
        names = f"{shape_arg}=(... {layout} ...) or kernel_size=" if shape_arg else "kernel_size="
        raise TconvError("spec", repr(spec), f"does not say the kernel size: {spec.callee} keeps it in its "
                         f"weight; add {names}...")
    kernel = _ints(kernel, rank, "kernel_size", spec)
    out = spec.get("out_channels")
    if out is None:
        raise TconvError("spec", repr(spec), f"does not say the output channels: add out_channels=... "
                         f"(or {shape_arg}=(...) with the weight's shape)" if shape_arg else
                         "does not say the output channels: add out_channels=...")
    return kernel, None


def _bias_flag(value: Any) -> bool:
    return value is not None and value is not False


# .................................................................... keras


def _resolve_keras(spec: LayerSpec, shape: tuple[int, ...]) -> Resolved:
    rank = spec.rank
    fmt = spec.get("data_format") or "channels_last"
    if fmt not in ("channels_last", "channels_first"):
        raise Refused("data_format", fmt, "must be 'channels_last' or 'channels_first'", context=spec.callee)
    cf = fmt == "channels_first"
    batched, spatial, cin = _split_input(spec, shape, rank, cf)
    filters = spec.get("filters")
    kernel = spec.get("kernel_size")
    if filters is None or kernel is None:
        raise TconvError("spec", repr(spec), f"{spec.callee} needs filters and kernel_size, "
                         f"e.g. {spec.callee}(512, 3)")
    if not isinstance(filters, int) or isinstance(filters, bool) or filters <= 0:
        raise Refused("filters", filters, "Invalid value for argument `filters`. Expected a strictly "
                      "positive value", context=spec.callee)
    kernel = _ints(kernel, rank, "kernel_size", spec)
    strides = _ints(spec.get("strides", 1), rank, "strides", spec)
    dilation = _ints(spec.get("dilation_rate", 1), rank, "dilation_rate", spec)
    padding = spec.get("padding", "valid")
    padding = padding.lower() if isinstance(padding, str) else padding
    allowed = ("valid", "same") + (("causal",) if rank == 1 and not spec.transposed else ())
    if padding not in allowed:
        raise Refused("padding", spec.get("padding"), f"must be one of {allowed}", context=spec.callee)
    if max(strides) > 1 and max(dilation) > 1:
        raise Refused("strides", strides, f"`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                      f"Received: strides={strides} and dilation_rate={dilation}", context=spec.callee)
    groups = 1
    if spec.transposed:
        op = spec.get("output_padding")
        out_pad = (None,) * rank if op is None else _ints(op, rank, "output_padding", spec, minimum=0)
        for i, (p, s) in enumerate(zip(out_pad, strides)):
            if p is not None and p >= s:
                raise Refused("output_padding", op, "Invalid `output_padding` argument. Each value in "
                              f"`output_padding` must be strictly less than the corresponding stride "
                              f"(dimension {i}: output_padding {p}, stride {s})", context=spec.callee)
        rules = tuple({"padding": padding, "output_padding": p} for p in out_pad)
        axes = _axes(spec, lambda: (AxisGeometry.transposed(
            n, k, s, d, *keras_transpose_crops(n, k, s, d, padding, p))
            for n, k, s, d, p in zip(spatial, kernel, strides, dilation, out_pad)))
        kernel_shape, layout = kernel + (filters, cin), SPATIAL[rank] + "OI"
    else:
        groups = _need_int(spec.get("groups", 1), "groups", spec)
        if filters % groups:
            raise Refused("groups", groups, f"The number of filters must be evenly divisible by the number of "
                          f"groups. Received: groups={groups}, filters={filters}", context=spec.callee)
        if cin % groups:
            raise Refused("groups", groups, f"The number of input channels must be evenly divisible by the "
                          f"number of groups. Received groups={groups}, but the input has {cin} channels",
                          context=spec.callee)

        def pads(n, k, s, d):
            if padding == "same":
                return same_pads(n, k, s, d)
            return causal_pads(k, d) if padding == "causal" else (0, 0)
        rules = tuple({"padding": padding} for _ in range(rank))
        axes = _axes(spec, lambda: (AxisGeometry(n, k, s, d, *pads(n, k, s, d))
                                    for n, k, s, d in zip(spatial, kernel, strides, dilation)))
        kernel_shape, layout = kernel + (cin // groups, filters), SPATIAL[rank] + "IO"
    geometry = _geometry(spec, axes, cin, filters, groups)
    return Resolved(spec, geometry, shape, _compose(batched, shape[0], geometry.output_spatial, filters, cf),
                    batched, cf, kernel_shape, layout, spec.get("use_bias", True) is not False, rules)


# .................................................................... torch


def _resolve_torch(spec: LayerSpec, shape: tuple[int, ...]) -> Resolved:
    rank = spec.rank
    batched, spatial, cin = _split_input(spec, shape, rank, True)
    functional = spec.module == "torch.nn.functional"
    groups = _need_int(spec.get("groups", 1), "groups", spec)
    strides = _ints(spec.get("stride", 1), rank, "stride", spec, minimum=None)
    if any(s <= 0 for s in strides):
        raise Refused("stride", strides, "non-positive stride is not supported", context=spec.callee)
    dilation = _ints(spec.get("dilation", 1), rank, "dilation", spec, minimum=None)
    if any(d <= 0 for d in dilation):
        raise Refused("dilation", dilation, "dilation should be greater than zero", context=spec.callee)
    if functional:
        layout = ("IO" if spec.transposed else "OI") + SPATIAL[rank]
        kernel, io = _kernel_from(spec, rank, shape_arg="weight", layout=layout, in_channels=cin, groups=groups)
        if io is None:
            cout = _need_int(spec.get("out_channels"), "out_channels", spec)
            declared_in = spec.get("in_channels")
            if declared_in is not None and declared_in != cin:
                raise Refused("input", shape, f"expected input to have {declared_in} channels, but got {cin} "
                              "channels instead", context=spec.callee)
        elif spec.transposed:
            if io[0] != cin:
                raise Refused("input", shape, f"expected input to have {io[0]} channels, but got {cin} "
                              "channels instead", context=spec.callee)
            cout = io[1] * groups
        else:
            if cin != io[0] * groups:
                raise Refused("input", shape, f"expected input to have {io[0] * groups} channels, but got "
                              f"{cin} channels instead", context=spec.callee)
            cout = io[1]
        bias = _bias_flag(spec.get("bias"))
    else:
        layout = ("IO" if spec.transposed else "OI") + SPATIAL[rank]
        declared_in, cout = spec.get("in_channels"), spec.get("out_channels")
        if declared_in is None or cout is None or spec.get("kernel_size") is None:
            raise TconvError("spec", repr(spec), f"{spec.callee} needs in_channels, out_channels and kernel_size, "
                             f"e.g. {spec.callee}(1024, 512, 3)")
        declared_in = _need_int(declared_in, "in_channels", spec)
        cout = _need_int(cout, "out_channels", spec)
        kernel = _ints(spec.get("kernel_size"), rank, "kernel_size", spec)
        for name, value in (("in_channels", declared_in), ("out_channels", cout)):
            if value % groups:
                raise Refused(name, value, "must be divisible by groups", context=spec.callee)
        if declared_in != cin:
            raise Refused("input", shape, f"expected input to have {declared_in} channels, but got {cin} "
                          "channels instead", context=spec.callee)
        bias = spec.get("bias", True) is not False
        mode = spec.get("padding_mode", "zeros")
        if mode not in ("zeros", "reflect", "replicate", "circular"):
            raise Refused("padding_mode", mode, "must be one of 'zeros', 'reflect', 'replicate', 'circular'",
                          context=spec.callee)
        if spec.transposed and mode != "zeros":
            raise Refused("padding_mode", mode, f'Only "zeros" padding mode is supported for {spec.op}',
                          context=spec.callee)
    if any(k < 1 for k in kernel):
        raise Refused("weight", kernel, "kernel size should be greater than zero", context=spec.callee)
    padding = spec.get("padding", 0)
    if spec.transposed:
        if isinstance(padding, str):
            raise Refused("padding", padding, "conv_transpose takes integer padding only; PyTorch has no "
                          "'same'/'valid' for transposed convolutions", context=spec.callee)
        pad = _ints(padding, rank, "padding", spec, minimum=0)
        if spec.get("output_size") is not None:
            size = spec.get("output_size")
            size = size[-rank:] if isinstance(size, tuple) and len(size) > rank else size
            sizes = _ints(size, rank, "output_size", spec)
            try:
                out_pad = tuple(torch_output_padding_for_size(n, k, s, d, p, o) for n, k, s, d, p, o
                                in zip(spatial, kernel, strides, dilation, pad, sizes))
            except TconvError as exc:
                raise Refused(exc.argument, exc.value, exc.rule, context=spec.callee) from None
        else:
            out_pad = _ints(spec.get("output_padding", 0), rank, "output_padding", spec, minimum=0)
        if any(op >= max(s, d) for op, s, d in zip(out_pad, strides, dilation)):
            raise Refused("output_padding", out_pad, "output padding must be smaller than either stride or "
                          f"dilation (stride={strides}, dilation={dilation})", context=spec.callee)
        rules = tuple({"padding": p, "output_padding": op} for p, op in zip(pad, out_pad))
        crops = [torch_transpose_crops(p, op) for p, op in zip(pad, out_pad)]
        sizes = tuple(full_length(n, k, s, d) - lo - hi for n, k, s, d, (lo, hi)
                      in zip(spatial, kernel, strides, dilation, crops))
        if any(v <= 0 for v in sizes):
            raise Refused("output size", sizes, f"is too small: the calculated output size per channel is "
                          f"{sizes}", context=spec.callee)
        axes = _axes(spec, lambda: (AxisGeometry.transposed(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                                    in zip(spatial, kernel, strides, dilation, crops)))
        kernel_shape = (cin, cout // groups) + kernel
    else:
        if isinstance(padding, str):
            if padding == "valid":
                pads = ((0, 0),) * rank
            elif padding == "same":
                if any(s != 1 for s in strides):
                    raise Refused("padding", padding, "padding='same' is not supported for strided "
                                  "convolutions", context=spec.callee)
                pads = tuple(same_pads(n, k, 1, d) for n, k, d in zip(spatial, kernel, dilation))
            else:
                raise Refused("padding", padding, f"must be 'same', 'valid', an int or a tuple of {rank} ints",
                              context=spec.callee)
        else:
            pad = _ints(padding, rank, "padding", spec, minimum=None)
            if any(p < 0 for p in pad):
                raise Refused("padding", padding, "negative padding is not supported", context=spec.callee)
            pads = tuple((p, p) for p in pad)
        for n, k, d, (lo, hi) in zip(spatial, kernel, dilation, pads):
            if n + lo + hi < d * (k - 1) + 1:
                raise Refused("weight", kernel, f"Kernel size can't be greater than actual input size: padded "
                              f"input {n + lo + hi}, dilated kernel {d * (k - 1) + 1}", context=spec.callee)
        rules = tuple({"padding": padding if isinstance(padding, str) else lo} for lo, _ in pads)
        axes = _axes(spec, lambda: (AxisGeometry(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                                    in zip(spatial, kernel, strides, dilation, pads)))
        kernel_shape = (cout, cin // groups) + kernel
    geometry = _geometry(spec, axes, cin, cout, groups)
    return Resolved(spec, geometry, shape, _compose(batched, shape[0], geometry.output_spatial, cout, True),
                    batched, True, kernel_shape, layout, bias, rules)


# ....................................................................... tf


def _tf_format(spec: LayerSpec, rank: int) -> bool:
    fmt = spec.get("data_format")
    if fmt is None:
        return False
    last, first = "N" + SPATIAL[rank] + "C", "NC" + SPATIAL[rank]
    if fmt not in (last, first):
        raise Refused("data_format", fmt, f"must be '{last}' or '{first}'", context=spec.callee)
    return fmt == first


def _tf_per_axis(value: Any, rank: int, name: str, spec: LayerSpec, cf: bool) -> tuple[int, ...]:
    if isinstance(value, tuple) and len(value) == rank + 2:
        if value[0] != 1 or value[1 if cf else -1] != 1:
            raise Refused(name, value, "must be 1 in the batch and depth dimensions", context=spec.callee)
        value = value[2:] if cf else value[1:-1]
    return _ints(value, rank, name, spec, full_rank=True)


def _resolve_tf(spec: LayerSpec, shape: tuple[int, ...]) -> Resolved:
    rank = _rank_of(spec, shape)
    cf = _tf_format(spec, rank)
    batched, spatial, cin = _split_input(spec, shape, rank, cf)
    strides = _tf_per_axis(spec.get("stride" if spec.op == "conv1d" else "strides", 1), rank, "strides", spec, cf)
    dilation = _tf_per_axis(spec.get("dilations", 1) or 1, rank, "dilations", spec, cf)
    layout = SPATIAL[rank] + ("OI" if spec.transposed else "IO")
    kernel, io = _kernel_from(spec, rank, shape_arg="filters", layout=layout, in_channels=cin, groups=1)
    groups = 1
    notes = []
    if spec.get("padding") is None and spec.op in ("conv1d", "conv2d", "conv3d"):
        raise TconvError("padding", None, f"is required by {spec.callee}: 'SAME', 'VALID' or explicit pairs")
    padding = spec.get("padding", "SAME" if spec.transposed else "VALID")
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise Refused("padding", padding, "must be 'SAME', 'VALID' (upper case) or a list of (before, after) "
                          "pairs", context=spec.callee)
        pads_given = None
    else:
        if not isinstance(padding, tuple) or len(padding) != rank + 2 or not all(
                isinstance(p, tuple) and len(p) == 2 for p in padding):
            raise Refused("padding", padding, f"explicit padding must be {rank + 2} (before, after) pairs, "
                          "one per dimension of the data format", context=spec.callee)
        outer = (padding[0], padding[1]) if cf else (padding[0], padding[-1])
        if any(v != 0 for pair in outer for v in pair):
            raise Refused("padding", padding, "must be 0 in the batch and depth dimensions", context=spec.callee)
        inner = padding[2:] if cf else padding[1:-1]
        pads_given = tuple((_need_int(lo, "padding", spec, minimum=0), _need_int(hi, "padding", spec, minimum=0))
                           for lo, hi in inner)
    if spec.transposed:
        out_shape = spec.get("output_shape")
        if io is None:
            cout = _need_int(spec.get("out_channels"), "out_channels", spec)
        else:
            if io[0] != cin:
                raise Refused("filters", spec.get("filters"), f"has {io[0]} input channels (last axis) but the "
                              f"input has {cin}", context=spec.callee)
            cout = io[1]
        if out_shape is None:
            raise TconvError("output_shape", None, f"is required by {spec.callee}: TensorFlow does not choose the "
                             "output length, it checks the one you give")
        if not isinstance(out_shape, tuple) or len(out_shape) not in (rank, rank + 2):
            raise Refused("output_shape", out_shape, f"must have {rank + 2} entries (batch, spatial, channels)",
                          context=spec.callee)
        if len(out_shape) == rank + 2:
            out_c = out_shape[1] if cf else out_shape[-1]
            if out_c != cout:
                raise Refused("output_shape", out_shape, f"has {out_c} channels but filters give {cout}",
                              context=spec.callee)
            out_spatial = out_shape[2:] if cf else out_shape[1:-1]
        else:
            out_spatial = out_shape
        out_spatial = tuple(_need_int(v, "output_shape", spec) for v in out_spatial)
        pad_arg = [padding] * rank if pads_given is None else list(pads_given)
        try:
            crops = [tf_transpose_crops(n, k, s, d, o, p) for n, k, s, d, o, p
                     in zip(spatial, kernel, strides, dilation, out_spatial, pad_arg)]
        except TconvError as exc:
            raise Refused(exc.argument, out_shape, f"Conv2DSlowBackpropInput: Size of out_backprop doesn't match "
                          f"computed: {exc.rule}", valid=exc.valid, context=spec.callee) from None
        rules = tuple({"padding": p, "output_shape": o} for p, o in zip(pad_arg, out_spatial))
        axes = _axes(spec, lambda: (AxisGeometry.transposed(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                                    in zip(spatial, kernel, strides, dilation, crops)))
        if max(dilation) > 1:
            notes.append("TensorFlow's CPU kernel refuses transposed convolutions with dilations > 1 "
                         "('Current CPU implementations do not yet support dilation rates larger than 1'); "
                         "tconv computes the mathematically defined result")
        kernel_shape = kernel + (cout, cin)
    else:
        if io is None:
            cout = _need_int(spec.get("out_channels"), "out_channels", spec)
            filter_in = cin
        else:
            filter_in, cout = io
        if filter_in < 1 or cin % filter_in:
            raise Refused("filters", spec.get("filters"), f"input depth {cin} must be a multiple of the filter's "
                          f"input depth {filter_in}", context=spec.callee)
        groups = cin // filter_in
        if cout % groups:
            raise Refused("filters", spec.get("filters"), f"output depth {cout} must be a multiple of the number "
                          f"of groups {groups}", context=spec.callee)
        pads = [same_pads(n, k, s, d) if padding == "SAME" else (0, 0) for n, k, s, d
                in zip(spatial, kernel, strides, dilation)] if pads_given is None else list(pads_given)
        rules = tuple({"padding": padding if pads_given is None else p} for p in pads)
        axes = _axes(spec, lambda: (AxisGeometry(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                                    in zip(spatial, kernel, strides, dilation, pads)))
        kernel_shape = kernel + (filter_in, cout)
    geometry = _geometry(spec, axes, cin, cout, groups)
    return Resolved(spec, geometry, shape, _compose(batched, shape[0], geometry.output_spatial, cout, cf),
                    batched, cf, kernel_shape, layout, False, rules, notes=tuple(notes))


# ...................................................................... jax


def _jax_numbers(spec: LayerSpec, rank: int) -> tuple[str, str, str]:
    dn = spec.get("dimension_numbers")
    if dn is None:
        s = SPATIAL[rank]
        if spec.op == "conv_transpose":
            return "N" + s + "C", s + "IO", "N" + s + "C"
        return "NC" + s, "OI" + s, "NC" + s
    if not (isinstance(dn, tuple) and len(dn) == 3 and all(isinstance(v, str) for v in dn)):
        raise Refused("dimension_numbers", dn, "must be three layout strings such as ('NHWC', 'HWIO', 'NHWC')",
                      context=spec.callee)
    lhs, rhs, out = dn
    spatial_rhs = rhs.replace("I", "").replace("O", "")
    ok = (len(lhs) == len(rhs) == len(out) == rank + 2 and sorted(lhs) == sorted(out)
          and {"N", "C"} <= set(lhs) and {"I", "O"} <= set(rhs) and len(set(lhs)) == len(lhs)
          and sorted(lhs.replace("N", "").replace("C", "")) == sorted(spatial_rhs))
    if not ok:
        raise Refused("dimension_numbers", dn, f"must name N, C and {rank} spatial axes for lhs/out and I, O and "
                      "the same spatial axes for rhs, each once", context=spec.callee)
    return lhs, rhs, out


def _resolve_jax(spec: LayerSpec, shape: tuple[int, ...]) -> Resolved:
    rank = _rank_of(spec, shape)
    lhs, rhs, out = _jax_numbers(spec, rank)
    order = rhs.replace("I", "").replace("O", "")  # JAX matches spatial axes in rhs order
    if len(shape) != rank + 2:
        raise TconvError("input_shape", shape, f"must have {rank + 2} axes laid out as {lhs} (jax.lax takes "
                         "batched arrays)")
    spatial = tuple(shape[lhs.index(c)] for c in order)
    cin = shape[lhs.index("C")]
    if any(n < 1 for n in spatial) or cin < 1:
        raise Refused("lhs", shape, "has an empty axis", context=spec.callee)
    kernel, io = _kernel_from(spec, rank, shape_arg="rhs", layout=rhs, in_channels=cin, groups=1)
    if io is not None:
        kernel = tuple(spec.get("rhs")[rhs.index(c)] for c in order)
    tk = spec.op == "conv_transpose" and spec.get("transpose_kernel", False) is True
    groups = 1
    if io is None:
        cout = _need_int(spec.get("out_channels"), "out_channels", spec)
        rhs_i = cin
    else:
        rhs_i, rhs_o = io
        if tk:
            rhs_i, rhs_o = rhs_o, rhs_i
        cout = rhs_o
    notes = []
    padding = spec.get("padding")
    if padding is None:
        raise TconvError("padding", None, f"is required by {spec.callee}: 'SAME', 'VALID' or (low, high) pairs")
    if isinstance(padding, tuple):
        if len(padding) != rank or not all(isinstance(p, tuple) and len(p) == 2 for p in padding):
            raise Refused("padding", padding, f"must be a string or {rank} (low, high) pairs", context=spec.callee)
        padding = tuple((_need_int(lo, "padding", spec, minimum=None), _need_int(hi, "padding", spec, minimum=None))
                        for lo, hi in padding)
    if spec.op == "conv_transpose":
        if rhs_i != cin:
            raise Refused("rhs", spec.get("rhs"), f"has {rhs_i} input features but lhs has {cin}", context=spec.callee)
        strides = _ints(spec.get("strides", 1), rank, "strides", spec)
        dilation = _ints(spec.get("rhs_dilation", 1) or 1, rank, "rhs_dilation", spec)
        consistent = spec.get("use_consistent_padding", False) is True
        if isinstance(padding, str) and padding not in ("SAME", "VALID") and not consistent:
            raise Refused("padding", padding, "must be 'SAME', 'VALID' or (low, high) pairs", context=spec.callee)
        per_axis = [padding] * rank if isinstance(padding, str) else list(padding)
        pads = [jax_transpose_pads(n, k, s, d, p, use_consistent_padding=consistent) for n, k, s, d, p
                in zip(spatial, kernel, strides, dilation, per_axis)]
        rules = tuple({"padding": p, "pads": pd, "use_consistent_padding": consistent}
                      for p, pd in zip(per_axis, pads))
        axes = _axes(spec, lambda: (lhs_dilated_axis(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                                    in zip(spatial, kernel, strides, dilation, pads)))
        flipped = not tk
        kernel_layout = rhs.replace("I", "i").replace("O", "o")
        kernel_layout = kernel_layout.replace("i", "O" if tk else "I").replace("o", "I" if tk else "O")
    else:
        groups = _need_int(spec.get("feature_group_count", 1), "feature_group_count", spec)
        if _need_int(spec.get("batch_group_count", 1), "batch_group_count", spec) != 1:
            raise TconvError("batch_group_count", spec.get("batch_group_count"),
                             "other than 1 is not explained by tconv (it is a gradient-of-weights device)")
        if rhs_i * groups != cin:
            raise Refused("rhs", spec.get("rhs"), f"has {rhs_i} input features; lhs has {cin} = "
                          f"{rhs_i} x feature_group_count={groups} is required", context=spec.callee)
        if cout % groups:
            raise Refused("feature_group_count", groups, f"must divide the output features {cout}",
                          context=spec.callee)
        strides = _ints(spec.get("window_strides", 1), rank, "window_strides", spec)
        dilation = _ints(spec.get("rhs_dilation", 1) or 1, rank, "rhs_dilation", spec)
        lhs_dil = _ints(spec.get("lhs_dilation", 1) or 1, rank, "lhs_dilation", spec)
        if spec.transposed:
            if isinstance(padding, str):
                raise Refused("padding", padding, "String padding is not implemented for transposed convolution "
                              "using this op. Please either exactly specify the required padding or use "
                              "conv_transpose.", context=spec.callee)
            if any(s != 1 for s in strides):
                raise TconvError("window_strides", strides, "other than 1 together with lhs_dilation > 1 is not "
                                 "explained by tconv (it is not one transposed convolution)")
            rules = tuple({"padding": p, "pads": p, "lhs_dilation": ld} for p, ld in zip(padding, lhs_dil))
            axes = _axes(spec, lambda: (lhs_dilated_axis(n, k, ld, d, lo, hi) for n, k, d, ld, (lo, hi)
                                        in zip(spatial, kernel, dilation, lhs_dil, padding)))
            flipped = True
        else:
            if isinstance(padding, str):
                if padding not in ("SAME", "SAME_LOWER", "VALID"):
                    raise Refused("padding", padding, "must be 'SAME', 'SAME_LOWER', 'VALID' or (low, high) "
                                  "pairs", context=spec.callee)
                pads = [(0, 0) if padding == "VALID" else
                        same_pads(n, k, s, d, extra_at="start" if padding == "SAME_LOWER" else "end")
                        for n, k, s, d in zip(spatial, kernel, strides, dilation)]
            else:
                pads = list(padding)
            rules = tuple({"padding": padding if isinstance(padding, str) else p, "pads": p} for p in pads)
            axes = _axes(spec, lambda: (AxisGeometry(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                                        in zip(spatial, kernel, strides, dilation, pads)))
            flipped = False
        kernel_layout = rhs
    geometry = _geometry(spec, axes, cin, cout, groups)
    out_sizes = dict(zip(order, geometry.output_spatial))
    out_shape = tuple(shape[lhs.index("N")] if c == "N" else cout if c == "C" else out_sizes[c] for c in out)
    kshape = spec.get("rhs")
    if kshape is None:
        sizes = dict(zip(order, kernel))
        ki, ko = (cout, cin) if tk else (cin // groups, cout)
        kshape = tuple(ki if c == "I" else ko if c == "O" else sizes[c] for c in rhs)
    return Resolved(spec, geometry, shape, out_shape, True, lhs.index("C") < lhs.index(order[0]), tuple(kshape),
                    kernel_layout, False, rules, flipped=flipped, notes=tuple(notes))


# ..................................................................... onnx


def _resolve_onnx(spec: LayerSpec, shape: tuple[int, ...]) -> Resolved:
    rank = _rank_of(spec, shape)
    batched, spatial, cin = _split_input(spec, shape, rank, True)
    groups = _need_int(spec.get("group", 1), "group", spec)
    layout = ("IO" if spec.transposed else "OI") + SPATIAL[rank]
    w = spec.get("W")
    if w is not None:
        kernel, io = _kernel_from(spec, rank, shape_arg="W", layout=layout, in_channels=cin, groups=groups)
    else:
        ks = spec.get("kernel_shape")
        if ks is None:
            raise TconvError("spec", repr(spec), f"does not say the kernel size: add W=(...) with the weight's "
                             "shape, or kernel_shape=[...] and out_channels=...")
        kernel, io = _ints(ks, rank, "kernel_shape", spec), None
    if spec.get("kernel_shape") is not None and _ints(spec.get("kernel_shape"), rank, "kernel_shape", spec) != kernel:
        raise Refused("kernel_shape", spec.get("kernel_shape"), f"does not match W's spatial shape {kernel}",
                      context=spec.callee)
    if io is None:
        cout = _need_int(spec.get("out_channels"), "out_channels", spec)
    elif spec.transposed:
        if io[0] != cin:
            raise Refused("X", shape, f"has {cin} channels but W has {io[0]}", context=spec.callee)
        cout = io[1] * groups
    else:
        if io[0] * groups != cin:
            raise Refused("X", shape, f"has {cin} channels but W expects {io[0]} x group={groups}",
                          context=spec.callee)
        cout = io[1]
    strides = _ints(spec.get("strides", 1), rank, "strides", spec)
    dilation = _ints(spec.get("dilations", 1), rank, "dilations", spec)
    auto_pad = spec.get("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise Refused("auto_pad", auto_pad, "must be NOTSET, SAME_UPPER, SAME_LOWER or VALID", context=spec.callee)
    flat = spec.get("pads", (0,) * (2 * rank))
    if not isinstance(flat, tuple) or len(flat) != 2 * rank:
        raise Refused("pads", flat, f"must have {2 * rank} entries [x1_begin, x2_begin, ..., x1_end, x2_end, ...]",
                      context=spec.callee)
    flat = tuple(_need_int(v, "pads", spec, minimum=0) for v in flat)
    pairs = list(zip(flat[:rank], flat[rank:]))
    if spec.transposed:
        out_pad = _ints(spec.get("output_padding", 0), rank, "output_padding", spec, minimum=0)
        out_shape = spec.get("output_shape")
        if out_shape is not None:
            if isinstance(out_shape, tuple) and len(out_shape) == rank + 2:
                out_shape = out_shape[2:]
            out_shape = _ints(out_shape, rank, "output_shape", spec)
        targets = out_shape or (None,) * rank
        try:
            crops = [onnx_transpose_crops(n, k, s, d, auto_pad, p, op, o) for n, k, s, d, p, op, o
                     in zip(spatial, kernel, strides, dilation, pairs, out_pad, targets)]
        except TconvError as exc:
            raise Refused(exc.argument, exc.value, exc.rule, valid=exc.valid, context=spec.callee) from None
        rules = tuple({"auto_pad": auto_pad, "pads": p, "output_padding": op, "output_shape": o}
                      for p, op, o in zip(pairs, out_pad, targets))
        axes = _axes(spec, lambda: (AxisGeometry.transposed(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                                    in zip(spatial, kernel, strides, dilation, crops)))
        kernel_shape = (cin, cout // groups) + kernel
    else:
        pads = [onnx_conv_pads(n, k, s, d, auto_pad, p) for n, k, s, d, p
                in zip(spatial, kernel, strides, dilation, pairs)]
        rules = tuple({"auto_pad": auto_pad, "pads": p} for p in pads)
        axes = _axes(spec, lambda: (AxisGeometry(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi)
                                    in zip(spatial, kernel, strides, dilation, pads)))
        kernel_shape = (cout, cin // groups) + kernel
    geometry = _geometry(spec, axes, cin, cout, groups)
    return Resolved(spec, geometry, shape, _compose(batched, shape[0], geometry.output_spatial, cout, True),
                    batched, True, kernel_shape, layout, spec.get("B") is not None, rules)


_RESOLVERS = {"keras": _resolve_keras, "torch": _resolve_torch, "tf": _resolve_tf, "jax": _resolve_jax,
              "onnx": _resolve_onnx}
