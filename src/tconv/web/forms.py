"""The page's form, computed on the server: fields, defaults and valid choices per layer.

The page renders what :func:`form` returns and nothing else. The fields are the text
spec's own argument names for the layer (:mod:`tconv.spec`'s op table), in the
framework's signature order; their defaults are read from the dialect's signature
(``inspect``), so the form says what the framework says. Which choices are *valid* is
not re-derived here either: every candidate value is tried by resolving the spec with
it (:meth:`tconv.spec.LayerSpec.resolve`, i.e. the dialect itself plans or refuses it),
holding the other arguments and the input shape fixed.

>>> f = form("keras.Conv2DTranspose(512, 3, strides=2, padding='same')", (8, 8, 1024))
>>> f["callee"], [x["name"] for x in f["fields"]][:4]
('keras.Conv2DTranspose', ['filters', 'kernel_size', 'strides', 'padding'])
>>> [o["label"] for o in _field(f, "output_padding")["options"]]
['default (None)', '0', '1']
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

from tconv.draw.scene import VIEWS
from tconv.errors import TconvError
from tconv.spec import _OPS, FRAMEWORKS, LayerSpec, parse, parse_expression

__all__ = ["form", "example", "build_spec", "KINDS", "RANKS", "VIEWS"]

KINDS = ("transposed", "forward")
#: the drawings the page offers: tconv.draw's views
RANKS = (1, 2, 3)

#: the layer the page shows for each framework, kind and rank: (spec, input shape); the
#: seed's layer in each framework's own words, channels-last or -first as it defaults
_EXAMPLES = {
    ("keras", "transposed"): ("keras.Conv{r}DTranspose(512, 3, strides=2, padding='same')", "{s8},1024"),
    ("keras", "forward"): ("keras.Conv{r}D(512, 3, strides=2, padding='same')", "{s16},1024"),
    ("torch", "transposed"): ("torch.nn.ConvTranspose{r}d(1024, 512, 3, stride=2, padding=1, output_padding=1)",
                              "1024,{s8}"),
    ("torch", "forward"): ("torch.nn.Conv{r}d(1024, 512, 3, stride=2, padding=1)", "1024,{s16}"),
    ("tf", "transposed"): ("tf.nn.conv{r}d_transpose(kernel_size=3, out_channels=512, output_shape={o16}, "
                           "strides=2, padding='SAME')", "1,{s8},1024"),
    ("tf", "forward"): ("tf.nn.conv{r}d(kernel_size=3, out_channels=512, {stride}=2, padding='SAME')",
                        "1,{s16},1024"),
    ("jax", "transposed"): ("jax.lax.conv_transpose(kernel_size={k3}, out_channels=512, strides={t2}, "
                            "padding='SAME')", "1,{s8},1024"),
    ("jax", "forward"): ("jax.lax.conv_general_dilated(kernel_size={k3}, out_channels=512, window_strides={t2}, "
                         "padding='SAME')", "1,1024,{s16}"),
    ("onnx", "transposed"): ("onnx.ConvTranspose(kernel_shape={k3}, out_channels=512, strides={t2}, "
                             "auto_pad='SAME_UPPER')", "1,1024,{s8}"),
    ("onnx", "forward"): ("onnx.Conv(kernel_shape={k3}, out_channels=512, strides={t2}, auto_pad='SAME_UPPER')",
                          "1,1024,{s16}"),
}

#: where each framework expects the channels of the input, in words (a hint beside the box)
_LAYOUT_HINT = {
    "keras": "{sp}, channels (batch optional; data_format='channels_first': channels first)",
    "torch": "channels, {sp} (batch optional)",
    "tf": "batch, {sp}, channels (data_format 'NC...': channels first)",
    "jax": "batch and channels as dimension_numbers says (conv_transpose: N, {sp}, C; "
           "conv_general_dilated: N, C, {sp})",
    "onnx": "batch, channels, {sp}",
}
_SPATIAL_WORDS = {1: "width", 2: "height, width", 3: "depth, height, width"}

#: arguments a form does not show: they change neither the plan nor the picture
#: (initializers, names, devices, numeric precision), or they are the arrays themselves
_HIDDEN = {"activation", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
           "activity_regularizer", "kernel_constraint", "bias_constraint", "name", "dtype", "trainable",
           "device", "precision", "preferred_element_type", "batch_group_count",
           "input", "weight", "filters_array", "lhs", "rhs", "X", "W", "B"}
_FIRST = ("in_channels", "out_channels", "filters", "kernel_size", "kernel_shape")

#: candidate values tried for each argument (the dialect decides which are valid)
_PER_AXIS = {
    "kernel_size": range(1, 8), "kernel_shape": range(1, 8),
    "strides": range(1, 5), "stride": range(1, 5), "window_strides": range(1, 5), "lhs_dilation": range(1, 5),
    "dilation_rate": range(1, 5), "dilation": range(1, 5), "dilations": range(1, 5), "rhs_dilation": range(1, 5),
    "output_padding": range(0, 4),
}
_GROUPS = ("groups", "group", "feature_group_count")
_CHANNELS = ("filters", "out_channels", "in_channels")
_BOOLS = ("use_bias", "bias", "transpose_kernel", "use_consistent_padding")
_CHOICES = {
    ("keras", "padding"): ("valid", "same", "causal"),
    ("tf", "padding"): ("SAME", "VALID"),
    ("jax", "padding"): ("SAME", "VALID", "SAME_LOWER"),
    ("torch", "padding"): (0, 1, 2, 3, 4, "same", "valid"),
    ("onnx", "auto_pad"): ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"),
    ("keras", "data_format"): ("channels_last", "channels_first"),
    ("torch", "padding_mode"): ("zeros", "reflect", "replicate", "circular"),
}
_TF_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
#: torch.nn modules' defaults, which the functional dialect's signature does not carry
#: (torch/nn/modules/conv.py: bias=True, padding_mode='zeros')
_TORCH_MODULE_DEFAULTS = {"bias": True, "padding_mode": "zeros"}
#: channel counts a form accepts (the same cap the API puts on input shapes)
MAX_CHANNELS = 4096
_MISSING = inspect.Parameter.empty   # required: the framework has no default
_UNSTATED = object()                 # optional, its default is not one value (ONNX's attributes)


def _field(f: dict, name: str) -> dict:
    return next(x for x in f["fields"] if x["name"] == name)


# ------------------------------------------------------------------------ examples


def callee_for(framework: str, kind: str, rank: int) -> str:
    """The layer a form shows for ``framework``, ``kind`` ('forward'/'transposed') and ``rank``."""
    return parse(example(framework, kind, rank)[0]).callee


def example(framework: str, kind: str, rank: int) -> tuple[str, str]:
    """``(spec text, input shape text)`` the page starts from for this framework, kind and rank."""
    if framework not in FRAMEWORKS:
        raise TconvError("framework", framework, f"must be one of {', '.join(FRAMEWORKS)}")
    if kind not in KINDS:
        raise TconvError("kind", kind, f"must be one of {', '.join(KINDS)}")
    if rank not in RANKS:
        raise TconvError("rank", rank, f"must be one of {', '.join(map(str, RANKS))}")
    text, shape = _EXAMPLES[(framework, kind)]
    words = {"r": rank, "s8": ",".join(["8"] * rank), "s16": ",".join(["16"] * rank),
             "o16": "[" + ", ".join(["1"] + ["16"] * rank + ["512"]) + "]",
             "k3": _tuple_text(3, rank), "t2": _tuple_text(2, rank), "stride": "stride" if rank == 1 else "strides"}
    return text.format(**words), shape.format(**words)


def _tuple_text(v: int, rank: int) -> str:
    return repr((v,) * rank)


# ------------------------------------------------------------------------ the form


def form(spec_or_text: LayerSpec | str, input_shape: tuple[int, ...]) -> dict:
    """Fields of ``spec``'s layer with their current values, defaults and valid choices.

    Each field: ``name``, ``kind`` ('select', 'int', 'bool' or 'text'), ``required``,
    ``default`` (literal text, or None where the framework's default is not a value),
    ``value`` (literal text; None where the spec leaves it out), ``valid`` (whether the
    current value is accepted), and for selects ``options`` [{value, label}] where
    ``value`` '' means "leave it out"; for ints ``min`` and ``max``.
    """
    spec = parse(spec_or_text) if isinstance(spec_or_text, str) else spec_or_text
    rank = spec.rank if spec.rank is not None else max(1, min(3, len(input_shape) - 2))
    op = _OPS[(spec.module, spec.op)]
    names = [p for p in op.params if p not in _HIDDEN and p not in op.arrays]
    if spec.module != "torch.nn":
        names = [p for p in names if p != "in_channels"]  # functional calls read it from the input
    names = sorted(names, key=lambda p: (_FIRST.index(p) if p in _FIRST else len(_FIRST)))
    defaults = _defaults(spec, rank)
    base_ok = _accepts(spec, input_shape)
    fields = [_describe(spec, name, defaults.get(name, _UNSTATED), rank, input_shape, base_ok) for name in names]
    return {"spec": repr(spec), "callee": spec.callee, "framework": spec.framework,
            "kind": "transposed" if spec.transposed else "forward", "rank": rank,
            "input": ",".join(map(str, input_shape)),
            "input_hint": _LAYOUT_HINT[spec.framework].format(sp=_SPATIAL_WORDS[rank]),
            "accepted": base_ok, "fields": fields,
            "choices": {"framework": list(FRAMEWORKS), "kind": list(KINDS), "rank": list(RANKS), "view": list(VIEWS)},
            "view": "scatter" if spec.transposed else "conv"}


def _defaults(spec: LayerSpec, rank: int) -> dict[str, Any]:
    """The framework's defaults, read from the dialect's signature of this layer."""
    dialect = importlib.import_module(f"tconv.dialects.{spec.framework}")
    if spec.framework == "keras":
        fn = getattr(dialect, spec.op).__init__
    elif spec.framework == "torch":
        fn = getattr(dialect, f"conv_transpose{rank}d" if spec.transposed else f"conv{rank}d")
    elif spec.framework == "onnx":
        # attributes by name (**attrs): ONNX's defaults are its spec text's, not a signature's
        return {} if spec.get("W") is not None else {"kernel_shape": _MISSING, "out_channels": _MISSING}
    else:
        fn = getattr(dialect, spec.op)
    out = {p.name: p.default for p in inspect.signature(fn).parameters.values()}
    if spec.module == "torch.nn":
        out.update(_TORCH_MODULE_DEFAULTS)
        out.update(in_channels=_MISSING, out_channels=_MISSING, kernel_size=_MISSING)
    if spec.module in ("torch.nn.functional", "tf.nn", "jax.lax") and spec.get(_WEIGHT[spec.module]) is None:
        # functional calls keep the kernel in the weight; the spec's kernel_size/out_channels name it
        out.update(kernel_size=_MISSING, out_channels=_MISSING)
    return out


_WEIGHT = {"torch.nn.functional": "weight", "tf.nn": "filters", "jax.lax": "rhs"}


def _kind(spec: LayerSpec, name: str) -> str:
    if name in _CHANNELS:
        return "int"
    if name in _BOOLS:
        return "bool"
    if name in _PER_AXIS or name in _GROUPS or (spec.framework, name) in _CHOICES or name == "data_format":
        return "select"
    return "text"


def _candidates(spec: LayerSpec, name: str, rank: int) -> list[Any]:
    tuples = spec.framework in ("jax", "onnx") or isinstance(spec.get(name), tuple)
    if name in _PER_AXIS:
        values = list(_PER_AXIS[name])
        return [(v,) * rank if tuples else v for v in values]
    if name in _GROUPS:
        return [1, 2, 4, 8, 16, 32]
    if name == "data_format" and spec.framework == "tf":
        return list(_TF_FORMATS[rank])
    return list(_CHOICES.get((spec.framework, name), ()))


def _label(value: Any) -> str:
    if isinstance(value, tuple) and value and len(set(value)) == 1 and not isinstance(value[0], tuple):
        return str(value[0])
    return value if isinstance(value, str) else repr(value)


def _describe(spec: LayerSpec, name: str, default: Any, rank: int, shape, base_ok: bool) -> dict:
    kind = _kind(spec, name)
    present = name in spec.kwargs
    required = default is _MISSING
    out: dict[str, Any] = {"name": name, "kind": kind, "required": required,
                           "default": None if default is _MISSING or default is _UNSTATED else repr(default),
                           "value": repr(spec.get(name)) if present else None}
    if kind == "int":
        out.update(min=1, max=MAX_CHANNELS)
    if kind == "select":
        options = []
        if not required:
            label = "default" if default is _UNSTATED else f"default ({_label(default)})"
            if not present or _accepts(_without(spec, name), shape):
                options.append({"value": "", "label": label})
        for value in _candidates(spec, name, rank):
            if present and spec.get(name) == value:
                ok = base_ok
            else:
                ok = _accepts(_with(spec, name, value), shape)
            if ok:
                options.append({"value": repr(value), "label": _label(value)})
        current = repr(spec.get(name)) if present else ""
        if not any(o["value"] == current for o in options):
            # the current value stays selectable. Marked "refused" where another value of this
            # argument is accepted (changing it is a way out); where none is, the refusal lies
            # in the other arguments and this one is left unmarked
            label = _label(spec.get(name)) if present else "default"
            blame = bool(options)
            options.insert(0, {"value": current, "label": label + (" (refused)" if blame else ""),
                               **({"refused": True} if blame else {})})
        out["options"] = options
    out["valid"] = base_ok
    return out


def _with(spec: LayerSpec, name: str, value: Any) -> LayerSpec:
    kwargs = dict(spec.args)
    kwargs[name] = value
    return _compose(spec.callee, kwargs)


def _without(spec: LayerSpec, name: str) -> LayerSpec:
    return _compose(spec.callee, {k: v for k, v in spec.args if k != name})


def _compose(callee: str, kwargs: dict[str, Any]) -> LayerSpec:
    return parse(f"{callee}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")


@functools.lru_cache(maxsize=4096)
def _accepts(spec: LayerSpec, shape: tuple[int, ...]) -> bool:
    """Whether the dialect plans ``spec`` on ``shape`` (it refuses: False)."""
    try:
        spec.resolve(shape)
    except (TconvError, ValueError):
        return False
    return True


# ------------------------------------------------------------------ values -> spec


def build_spec(callee: str, values: dict[str, str | list[str]]) -> LayerSpec:
    """The spec ``callee(name=value, ...)`` from a form's literal texts ('' leaves one out).

    Each value is a Python literal as text (``2``, ``'same'``, ``(2, 1)``); a list of
    texts makes a tuple (one per axis). Every value is read by :func:`tconv.spec.parse`
    alone first, so a value can never smuggle in another argument.
    """
    head = parse(f"{callee}()")
    kwargs: dict[str, Any] = {}
    for name, text in values.items():
        if isinstance(text, list):
            items = [_one(head.callee, name, t) for t in text if t != ""]
            if items:
                kwargs[name] = tuple(items)
            continue
        if text == "":
            continue
        kwargs[name] = _one(head.callee, name, text)
    return _compose(head.callee, kwargs)


def _one(callee: str, name: str, text: str) -> Any:
    if not name.isidentifier():
        raise TconvError("field", name, "must be an argument name")
    try:
        node = parse_expression(text.strip()) if len(text) <= 200 else None
    except SyntaxError:
        node = None
    if node is None:
        raise TconvError(name, text, "must be a single value: a number, a string in quotes, a tuple, "
                         "None, True or False")
    one = parse(f"{callee}({name}={text.strip()})")
    if [k for k, _ in one.args] != [name]:
        raise TconvError(name, text, "must be a single value, not several arguments")
    return one.get(name)
