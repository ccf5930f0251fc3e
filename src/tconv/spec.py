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
format, with or without the batch axis) into a :class:`Resolved` plan by asking the
spec's dialect: it makes the call the spec describes on placeholder arrays inside
:func:`tconv.ops.planning` and keeps the :class:`~tconv.geometry.Geometry` that call
plans, plus the framework's view (kernel layout, output shape). Where the dialect
refuses the configuration, it raises :class:`Refused` (a
:class:`~tconv.errors.TconvError`) with the dialect's message unchanged.

>>> spec = parse("keras.layers.Conv2DTranspose(512, 3, strides=2, padding='same')")
>>> spec
keras.Conv2DTranspose(512, 3, strides=2, padding='same')
>>> spec.resolve((8, 8, 1024)).output_shape
(16, 16, 512)
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from tconv import _args
from tconv.errors import TconvError
from tconv.geometry import (Geometry, jax_pads_for_crops, lhs_dilated_axis, torch_args_for_crops,
                            torch_output_padding_for_size)
from tconv.layout import SPATIAL

__all__ = ["LayerSpec", "Resolved", "Refused", "parse", "shape_tuple", "FRAMEWORKS", "MAX_TEXT"]

FRAMEWORKS = ("keras", "tf", "torch", "jax", "onnx")
#: longest text spec accepted, in characters
MAX_TEXT = 2000
#: largest magnitude of a numeric literal
MAX_NUMBER = 10 ** 6
_MAX_DEPTH = 3      # nested tuples/lists: output_shape, [[0,0],[1,1]], dimension_numbers
_MAX_ITEMS = 16


class Refused(TconvError):
    """The framework refuses this configuration: the dialect's own :class:`TconvError`,
    message unchanged (so that views can tell it from a spec tconv cannot read)."""

    @classmethod
    def of(cls, exc: TconvError) -> "Refused":
        return cls(exc.argument, exc.value, exc.rule, valid=exc.valid, context=exc.context)


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
        return _resolve(self, shape_tuple(input_shape))


# ------------------------------------------------------------------------ parsing


#: one ``ast.parse`` at a time (:func:`parse_expression`)
_AST_LOCK = threading.Lock()


def parse_expression(text: str) -> ast.expr:
    """``ast.parse(text, mode="eval").body``, one thread at a time. CPython 3.11's AST
    builder keeps one recursion-depth count per interpreter, and threads parsing at once can
    trip it: "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905).
    The web page's server parses from many threads; one of its 200 concurrent requests
    failed so in a CI run."""
    with _AST_LOCK:
        return ast.parse(text, mode="eval").body


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
        call = parse_expression(stripped)
    except SyntaxError as exc:
        col = exc.offset or 0
        raise TconvError("spec", stripped, f"is not valid Python call syntax at column {col}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise TconvError("spec", stripped, f"cannot be parsed: {exc}") from None
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
#
# A spec is resolved by *asking its dialect*: the spec's arguments become the dialect
# call they describe, on zero-allocation placeholder arrays (ops.shape_only), inside
# ops.planning(), which records the Geometry that call plans. Every size, pad, crop and
# refusal therefore comes from the dialect; this section only builds the call (arrays
# written as their shapes, the batch axis a view may omit) and reads back, in the
# framework's vocabulary, what explain puts into words (kernel layout, per-axis rules).


@dataclass(frozen=True)
class Resolved:
    """A spec planned on an input shape: the neutral geometry and the framework's view of it.

    ``geometry`` is the plan the dialect call records; ``output_shape`` is that call's
    output shape (framework data format, without the batch axis if the input had none).
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


def _resolve(spec: LayerSpec, shape: tuple[int, ...]) -> Resolved:
    dialect = importlib.import_module(f"tconv.dialects.{spec.framework}")
    return _RESOLVERS[spec.framework](spec, shape, dialect)


def _plan(spec: LayerSpec, run: Callable[[], Any], batch: int) -> tuple[Geometry, str, tuple[int, ...]]:
    """Run the dialect call ``run`` in planning mode: ``(geometry, data_format, output shape)``.

    The dialect's :class:`TconvError` is the framework's refusal, re-raised as
    :class:`Refused` with its message unchanged. A call that plans no convolution (JAX's
    empty outputs), several (JAX's ``batch_group_count``) or post-processes its one
    (JAX's ``window_strides`` with ``lhs_dilation``) is not one convolution to explain.
    """
    from tconv import ops

    with ops.planning() as plans:
        try:
            y = run()
        except Refused:
            raise
        except ops.TooLarge as exc:  # tconv's limit (NumPy's index range), not the framework's refusal
            raise TconvError("spec", repr(spec), f"cannot be planned on this input: {exc}") from None
        except TconvError as exc:
            raise Refused.of(exc) from None
        except ValueError as exc:  # NumPy: a placeholder with more elements than it can index
            raise TconvError("spec", repr(spec), f"cannot be planned on this input: {exc}") from None
    out = tuple(y.shape)
    if not plans:  # JAX's dialect plans nothing for a zero-length input or output axis, as jax.lax
        if 0 in out:
            raise Refused("output", out, "has a zero-length axis", context=spec.callee)
        raise Refused("input", "a zero-length axis", f"leaves {spec.callee} nothing to convolve: it returns "
                      f"zeros of shape {out}", context=spec.callee)
    if len(plans) != 1:
        raise TconvError("spec", repr(spec), f"is {len(plans)} convolutions in {spec.callee} (e.g. one per "
                         "batch_group_count), not one; tconv explains a single convolution")
    geometry, data_format = plans[0]
    if math.prod(out) != batch * math.prod(geometry.output_spatial) * geometry.output_channels:
        raise TconvError("spec", repr(spec), f"is not a single convolution: {spec.callee} plans one with output "
                         f"{geometry.output_spatial} and then subsamples it to {out} (window_strides with "
                         "lhs_dilation); tconv explains a single convolution")
    return geometry, data_format, out


def _no_values(shape, dtype):
    """Keras ``*_initializer`` for planning: a zero-allocation placeholder, no random draws."""
    from tconv import ops

    return ops.shape_only(shape, dtype)


# ..................................................................... reading


def shape_tuple(shape) -> tuple[int, ...]:
    """An input shape as a tuple of ints (NumPy integers taken as theirs: ``x.shape`` of an
    array, or an array of lengths), or the TconvError that names it: the one check of the
    shapes that ``resolve``, ``translate``, ``explain`` and ``draw`` take."""
    if isinstance(shape, (str, bytes)):
        raise TconvError("input_shape", shape, "must be a sequence of integers (use tconv.cli for '8x8x1024')")
    try:  # a 0-d array has __iter__ but cannot be iterated
        items = tuple(shape)
    except TypeError:
        raise TconvError("input_shape", shape, "must be a sequence of integers") from None
    if not items or not all(_args.is_int(v) for v in items):
        raise TconvError("input_shape", shape, "must be a sequence of integers")
    items = tuple(int(v) for v in items)
    if any(v < 0 for v in items):
        raise TconvError("input_shape", shape, "must not contain negative lengths")
    return items


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rank_of(spec: LayerSpec, shape: tuple[int, ...]) -> int:
    if spec.rank is not None:
        return spec.rank
    rank = len(shape) - 2  # rank-generic calls take batched arrays
    if not 1 <= rank <= 3:
        raise TconvError("input_shape", shape, f"must have 3 to 5 axes (batch, channels, spatial) for "
                         f"{spec.callee}, whose rank the spec does not fix")
    return rank


def _with_batch(spec: LayerSpec, shape: tuple[int, ...], rank: int,
                channels_first: bool) -> tuple[bool, tuple[int, ...]]:
    """``(batched, shape with a batch axis)``: views may omit the batch axis; the call gets one of 1."""
    if len(shape) == rank + 2:
        return True, shape
    if len(shape) == rank + 1:
        return False, (1,) + shape
    raise TconvError("input_shape", shape, f"must have {rank + 1} or {rank + 2} axes for {spec.callee} "
                     f"({'C, ' if channels_first else ''}{', '.join(SPATIAL[rank])}"
                     f"{'' if channels_first else ', C'}, optionally batch first)")


def _unbatch(out: tuple[int, ...], batched: bool) -> tuple[int, ...]:
    return out if batched else out[1:]


def _array_shape(value: Any, name: str, spec: LayerSpec) -> tuple[int, ...]:
    """An array argument, written in the spec as its shape."""
    if not (isinstance(value, tuple) and all(_is_int(v) and v >= 0 for v in value)):
        raise TconvError(name, value, "must be written as the array's shape: a tuple of non-negative integers",
                         context=spec.callee)
    return value


def _placeholder(shape: tuple[int, ...], name: str, spec: LayerSpec):
    from tconv import ops

    try:
        return ops.shape_only(shape)
    except ValueError as exc:  # more elements than NumPy can index
        raise TconvError(name, shape, f"cannot be planned: {exc}", context=spec.callee) from None


@functools.lru_cache(maxsize=None)
def _required(fn: Callable) -> tuple[str, ...]:
    return tuple(p.name for p in inspect.signature(fn).parameters.values()
                 if p.default is inspect.Parameter.empty and p.name != "self"
                 and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def _require(spec: LayerSpec, fn: Callable, supplied: tuple[str, ...] = ()) -> None:
    """The call's required parameters (the dialect's signature) must be in the spec."""
    missing = [name for name in _required(fn) if name not in supplied and name not in spec.kwargs]
    if missing:
        raise TconvError(missing[0], None, f"is required by {spec.callee}"
                         + (f" (as {', '.join(missing[1:])} {'is' if len(missing) == 2 else 'are'})"
                            if len(missing) > 1 else ""))


def _per_group(channels: Any, groups: Any) -> Any:
    """``channels / groups`` where that is a whole count; otherwise ``channels`` (the dialect refuses)."""
    if _is_int(channels) and _is_int(groups) and groups > 0 and channels % groups == 0:
        return channels // groups
    return channels


def _weight_shape(spec: LayerSpec, rank: int, layout: str, *, given: str, i: Any, o: Any,
                  kernel_arg: str = "kernel_size") -> tuple[int, ...]:
    """The weight's shape: as the spec writes it (``given=``), or laid out from ``kernel_arg``
    and the channel counts ``i`` (the ``I`` axis) and ``o`` (the ``O`` axis)."""
    if spec.get(given) is not None:
        return _array_shape(spec.get(given), given, spec)
    kernel = spec.get(kernel_arg)
    if kernel is None:
        raise TconvError("spec", repr(spec), f"does not say the kernel size: {spec.callee} keeps it in its weight; "
                         f"add {given}=(... {layout} ...) or {kernel_arg}=... and out_channels=...")
    if i is None or o is None:
        raise TconvError("spec", repr(spec), f"does not say the output channels: add out_channels=... "
                         f"(or {given}=(...) with the weight's shape)")
    kernel = (kernel,) * rank if _is_int(kernel) else kernel
    sizes = kernel if isinstance(kernel, tuple) and len(kernel) == rank else None
    if sizes is None or not all(_is_int(v) and v >= 0 for v in sizes + (i, o)):
        raise TconvError(kernel_arg, kernel, f"and the channel counts must be non-negative integers ({rank} "
                         f"kernel sizes): tconv builds the {given} of shape ({layout}) from them", context=spec.callee)
    it = iter(sizes)
    return tuple(i if c == "I" else o if c == "O" else next(it) for c in layout)


def _call_kwargs(spec: LayerSpec, skip: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in spec.args if k not in skip + _FUNCTIONAL_EXTRA}


def _divergence_notes(dialect, geometry: Geometry) -> tuple[str, ...]:
    """The dialect's declared CPU divergence a plan meets (TF/Keras dilated transposed)."""
    d = getattr(dialect, "DIVERGENCES", {}).get("cpu_transpose_dilation")
    if d is None or not geometry.transposed or all(a.dilation == 1 for a in geometry.axes):
        return ()
    return (f"{d.condition}: TensorFlow's CPU kernel refuses it ({d.framework_says}); tconv {d.tconv_does}",)


# .................................................................... keras

#: constructor arguments that choose weight values or a pointwise function after the
#: convolution: they never change the plan, and the dialect knows only some of Keras'
#: names for them, so they are not passed to the planning call
_KERAS_UNPLANNED = ("activation", "kernel_initializer", "bias_initializer", "kernel_regularizer",
                    "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint",
                    "name", "dtype", "trainable")


def _resolve_keras(spec: LayerSpec, shape: tuple[int, ...], keras) -> Resolved:
    cls = getattr(keras, spec.op)
    _require(spec, cls.__init__)
    rank = spec.rank
    cf = str(spec.get("data_format")).lower() == "channels_first"
    batched, full = _with_batch(spec, shape, rank, cf)
    kwargs = {k: v for k, v in spec.args if k not in _KERAS_UNPLANNED}
    x, layers = _placeholder(full, "input_shape", spec), []

    def run():
        layers.append(cls(**kwargs, kernel_initializer=_no_values, bias_initializer=_no_values))
        return layers[0](x)

    g, data_format, out = _plan(spec, run, full[0])
    layer = layers[0]
    if spec.transposed:
        out_pad = layer.output_padding or (None,) * rank
        rules = tuple({"padding": layer.padding, "output_padding": op} for op in out_pad)
    else:
        rules = tuple({"padding": layer.padding} for _ in range(rank))
    return Resolved(spec, g, shape, _unbatch(out, batched), batched, data_format == "channels_first",
                    tuple(layer.kernel.shape), SPATIAL[rank] + ("OI" if spec.transposed else "IO"),
                    layer.use_bias, rules, notes=_divergence_notes(keras, g))


# .................................................................... torch

_TORCH_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _torch_module_checks(spec: LayerSpec) -> None:
    """What torch.nn.ConvNd / ConvTransposeNd refuse in their constructor, before the functional
    op (torch/nn/modules/conv.py, _ConvNd.__init__, _ConvTransposeNd.__init__); the functional
    op's own rules are the torch dialect's. tconv.dialects.torch is torch.nn.functional only,
    so the module layer's three checks live here, with the module's words."""
    context = spec.callee
    groups = spec.get("groups", 1)
    for name in ("in_channels", "out_channels"):
        if _is_int(groups) and groups > 0 and _is_int(spec.get(name)) and spec.get(name) % groups:
            raise Refused(name, spec.get(name), "must be divisible by groups", context=context)
    mode = spec.get("padding_mode", "zeros")
    if mode not in _TORCH_PADDING_MODES:
        raise Refused("padding_mode", mode, f"padding_mode must be one of {set(_TORCH_PADDING_MODES)}, but got "
                      f"padding_mode={mode!r}", context=context)
    if spec.transposed and mode != "zeros":
        raise Refused("padding_mode", mode, f'Only "zeros" padding mode is supported for {spec.op}',
                      context=context)


def _resolve_torch(spec: LayerSpec, shape: tuple[int, ...], torch) -> Resolved:
    from tconv import ops

    rank = spec.rank
    batched, full = _with_batch(spec, shape, rank, True)
    fn = getattr(torch, f"conv_transpose{rank}d" if spec.transposed else f"conv{rank}d")
    layout = ("IO" if spec.transposed else "OI") + SPATIAL[rank]
    groups = spec.get("groups", 1)
    module = spec.module == "torch.nn"
    if module:
        missing = [n for n in ("in_channels", "out_channels", "kernel_size") if spec.get(n) is None]
        if missing:
            raise TconvError("spec", repr(spec), f"{spec.callee} needs in_channels, out_channels and kernel_size, "
                             f"e.g. {spec.callee}(1024, 512, 3)")
        _torch_module_checks(spec)
    cin, cout = spec.get("in_channels", full[1]), spec.get("out_channels")
    i, o = (cin, _per_group(cout, groups)) if spec.transposed else (_per_group(cin, groups), cout)
    weight = _weight_shape(spec, rank, layout, given="weight", i=i, o=o)
    bias = spec.get("bias", module)
    kwargs = _call_kwargs(spec, ("input", "weight", "bias", "padding_mode", "device", "dtype", "output_size"))
    x, w = _placeholder(full, "input_shape", spec), _placeholder(weight, "weight", spec)
    b = _placeholder(_array_shape(bias, "bias", spec), "bias", spec) if isinstance(bias, tuple) else None
    output_size = spec.get("output_size") if module else None

    def run():
        if output_size is not None:
            # ConvTransposeNd.forward(x, output_size): the output_padding that reaches it, from
            # the plan without one (torch's _output_padding); its range check is geometry's
            with ops.planning() as first:
                fn(x, w, b, **{**kwargs, "output_padding": 0})
            axes = first[0][0].axes
            sizes = output_size[-rank:] if isinstance(output_size, tuple) else output_size
            sizes = (sizes,) * rank if _is_int(sizes) else sizes
            if not (isinstance(sizes, tuple) and len(sizes) == rank and all(_is_int(v) for v in sizes)):
                raise TconvError("output_size", output_size, f"must be {rank} integers (or the whole output shape)",
                                 context=spec.callee)
            try:
                kwargs["output_padding"] = tuple(
                    torch_output_padding_for_size(a.out, a.kernel, a.stride, a.dilation, a.crop_lo, n)
                    for a, n in zip(axes, sizes))
            except TconvError as exc:
                raise exc.with_context(spec.callee) from None
        return fn(x, w, b, **kwargs)

    g, _, out = _plan(spec, run, full[0])
    if g.transposed:
        rules = tuple(dict(zip(("padding", "output_padding"), torch_args_for_crops(a.crop_lo, a.crop_hi, a.stride,
                                                                                    a.dilation))) for a in g.axes)
    else:
        padding = spec.get("padding", 0)
        rules = tuple({"padding": padding if isinstance(padding, str) else a.pad_lo} for a in g.axes)
    return Resolved(spec, g, shape, _unbatch(out, batched), batched, True, weight, layout,
                    bias is not None and bias is not False, rules)


# ....................................................................... tf


def _resolve_tf(spec: LayerSpec, shape: tuple[int, ...], tf) -> Resolved:
    fn = getattr(tf, spec.op)
    _require(spec, fn, ("input", "filters"))
    rank = _rank_of(spec, shape)
    fmt = spec.get("data_format")
    cf = isinstance(fmt, str) and fmt.startswith("NC")
    batched, full = _with_batch(spec, shape, rank, cf)
    layout = SPATIAL[rank] + ("OI" if spec.transposed else "IO")
    cin = spec.get("in_channels", full[1] if cf else full[-1])
    filters = _weight_shape(spec, rank, layout, given="filters", i=cin, o=spec.get("out_channels"))
    kwargs = _call_kwargs(spec, ("input", "filters"))
    x, w = _placeholder(full, "input_shape", spec), _placeholder(filters, "filters", spec)

    def run():
        return fn(x, w, **kwargs)

    g, data_format, out = _plan(spec, run, full[0])
    padding = spec.get("padding", inspect.signature(fn).parameters["padding"].default)  # tf's own default
    rules = tuple({"padding": padding if isinstance(padding, str) else (a.pad_lo, a.pad_hi)}
                  | ({"output_shape": a.size} if g.transposed else {}) for a in g.axes)
    return Resolved(spec, g, shape, _unbatch(out, batched), batched, data_format == "channels_first", filters,
                    layout, False, rules, notes=_divergence_notes(tf, g))


# ...................................................................... jax


def _jax_layouts(spec: LayerSpec, rank: int) -> tuple[str, str, str] | None:
    """``(lhs, rhs, out)`` layout letters of ``dimension_numbers`` (None where unreadable)."""
    dn = spec.get("dimension_numbers")
    s = SPATIAL[rank]
    if dn is None:
        if spec.op == "conv_transpose":
            return "N" + s + "C", s + "IO", "N" + s + "C"
        return "NC" + s, "OI" + s, "NC" + s
    if not (isinstance(dn, tuple) and len(dn) == 3):
        return None
    if all(isinstance(v, str) and len(v) == rank + 2 for v in dn):
        return dn
    if all(isinstance(v, tuple) and sorted(v) == list(range(rank + 2)) for v in dn):
        # ConvDimensionNumbers: axis indices of (N, C, *spatial), (O, I, *spatial), (N, C, *spatial)
        def letters(perm, pair):
            named = dict(zip(perm, pair + s))
            return "".join(named[i] for i in range(rank + 2))
        return letters(dn[0], "NC"), letters(dn[1], "OI"), letters(dn[2], "NC")
    return None


def _resolve_jax(spec: LayerSpec, shape: tuple[int, ...], jax) -> Resolved:
    fn = getattr(jax, spec.op)
    _require(spec, fn, ("lhs", "rhs"))
    rank = _rank_of(spec, shape)
    layouts = _jax_layouts(spec, rank)
    if len(shape) != rank + 2:
        raise TconvError("input_shape", shape, f"must have {rank + 2} axes laid out as "
                         f"{layouts[0] if layouts else 'dimension_numbers says'} (jax.lax takes batched arrays)")
    transpose = spec.op == "conv_transpose"
    tk = transpose and spec.get("transpose_kernel", False) is True
    if spec.get("rhs") is None and layouts is None:
        raise TconvError("dimension_numbers", spec.get("dimension_numbers"), "must be three layout strings for "
                         "tconv to lay out the kernel from kernel_size; or give rhs=(...)", context=spec.callee)
    lhs_letters = layouts[0] if layouts else "NC" + SPATIAL[rank]
    cin = spec.get("in_channels", shape[lhs_letters.index("C")])
    cout = spec.get("out_channels")
    i, o = (cin, cout) if transpose else (_per_group(cin, spec.get("feature_group_count", 1)), cout)
    i, o = (o, i) if tk else (i, o)  # transpose_kernel: rhs holds the (*k, out, in) kernel
    rhs = _weight_shape(spec, rank, layouts[1] if layouts else "", given="rhs", i=i, o=o)
    kwargs = _call_kwargs(spec, ("lhs", "rhs"))
    x, w = _placeholder(shape, "input_shape", spec), _placeholder(rhs, "rhs", spec)

    def run():
        return fn(x, w, **kwargs)

    g, _, out = _plan(spec, run, shape[lhs_letters.index("N")])
    if transpose and not g.transposed:
        # at strides 1 the dialect runs conv_transpose as the plain correlation it is; as a
        # transposed convolution that is lhs_dilated_axis at lhs_dilation 1, the dialect's other path
        g = Geometry(tuple(lhs_dilated_axis(a.size, a.kernel, 1, a.dilation, a.pad_lo, a.pad_hi) for a in g.axes),
                     g.out_channels, g.in_channels, g.groups, transposed=True)
    lhs, rhs_letters, _ = _jax_layouts(spec, rank)  # the dialect accepted them: readable
    order = [c for c in rhs_letters if c not in "IO"]  # JAX matches spatial axes in rhs order
    padding = spec.get("padding")
    per_axis = [padding] * rank if isinstance(padding, str) else list(padding)
    if g.transposed:
        pads = [jax_pads_for_crops(a.kernel, a.dilation, a.crop_lo, a.crop_hi) for a in g.axes]
        if transpose:
            consistent = spec.get("use_consistent_padding", False) is True
            rules = tuple({"padding": p, "pads": pd, "use_consistent_padding": consistent}
                          for p, pd in zip(per_axis, pads))
        else:
            rules = tuple({"padding": pd, "pads": pd, "lhs_dilation": a.stride} for a, pd in zip(g.axes, pads))
    else:
        rules = tuple({"padding": p if isinstance(p, str) else (a.pad_lo, a.pad_hi), "pads": (a.pad_lo, a.pad_hi)}
                      for a, p in zip(g.axes, per_axis))
    layout = rhs_letters.translate(str.maketrans("IO", "OI")) if tk else rhs_letters
    return Resolved(spec, g, shape, out, True, lhs.index("C") < lhs.index(order[0]), rhs, layout, False, rules,
                    flipped=(not tk) if transpose else g.transposed)


# ..................................................................... onnx


def _resolve_onnx(spec: LayerSpec, shape: tuple[int, ...], onnx) -> Resolved:
    fn = onnx.conv_transpose if spec.transposed else onnx.conv
    rank = _rank_of(spec, shape)
    batched, full = _with_batch(spec, shape, rank, True)
    layout = ("IO" if spec.transposed else "OI") + SPATIAL[rank]
    group, cin, cout = spec.get("group", 1), full[1], spec.get("out_channels")
    i, o = (cin, _per_group(cout, group)) if spec.transposed else (_per_group(cin, group), cout)
    if spec.get("W") is None and spec.get("kernel_shape") is None:
        raise TconvError("spec", repr(spec), "does not say the kernel size: add W=(...) with the weight's "
                         "shape, or kernel_shape=[...] and out_channels=...")
    w = _weight_shape(spec, rank, layout, given="W", i=i, o=o, kernel_arg="kernel_shape")
    b = None if spec.get("B") is None else _placeholder(_array_shape(spec.get("B"), "B", spec), "B", spec)
    attrs = {k: v for k, v in spec.args if k not in ("X", "W", "B", "out_channels")}
    x, wp = _placeholder(full, "input_shape", spec), _placeholder(w, "W", spec)

    def run():
        return fn(x, wp, b, **attrs)

    g, _, out = _plan(spec, run, full[0])
    auto_pad = spec.get("auto_pad", "NOTSET")
    if g.transposed:
        flat = spec.get("pads") or (0,) * (2 * rank)
        out_pad = spec.get("output_padding") or (0,) * rank
        targets = spec.get("output_shape") or (None,) * rank
        rules = tuple({"auto_pad": auto_pad, "pads": p, "output_padding": op, "output_shape": t}
                      for p, op, t in zip(zip(flat[:rank], flat[rank:]), out_pad, targets))
    else:
        rules = tuple({"auto_pad": auto_pad, "pads": (a.pad_lo, a.pad_hi)} for a in g.axes)
    return Resolved(spec, g, shape, _unbatch(out, batched), batched, True, w, layout, b is not None, rules)


_RESOLVERS = {"keras": _resolve_keras, "torch": _resolve_torch, "tf": _resolve_tf, "jax": _resolve_jax,
              "onnx": _resolve_onnx}
