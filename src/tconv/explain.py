"""Explain a layer: its arithmetic per axis, the framework's rule in words, and what to watch for.

:func:`explain` takes a :class:`~tconv.spec.LayerSpec` (or its text) and an input shape
in the framework's own data format (batch axis optional) and returns an
:class:`Explanation`. Every number in it is the plan the spec's dialect itself makes
(:meth:`LayerSpec.resolve` calls it on placeholders), and a refusal is the dialect's
message, verbatim; this module only puts them into words.

>>> e = explain("keras.Conv2DTranspose(512, 3, strides=2, padding='same')", (8, 8, 1024))
>>> e.output_shape
(16, 16, 512)
>>> [(a.full, a.crop_lo, a.crop_hi) for a in e.axes]
[(17, 0, 1), (17, 0, 1)]
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, keras_transpose_length, phase_tap_counts, same_pads,
                            symmetric_reading, tf_valid_outputs, torch_args_for_crops,
                            torch_transpose_crops)
from tconv.spec import LayerSpec, Refused, Resolved, parse, shape_tuple

__all__ = ["explain", "Explanation", "AxisExplanation"]

_AXIS_NAMES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_LETTER_WORDS = {"I": "input channels", "O": "output channels"}


@dataclass(frozen=True)
class AxisExplanation:
    """The numbers of one spatial axis, and their story."""

    name: str
    input: int
    kernel: int
    dilated_kernel: int
    stride: int
    dilation: int
    output: int
    transposed: bool
    full: int | None = None
    crop_lo: int | None = None
    crop_hi: int | None = None
    pad_lo: int | None = None
    pad_hi: int | None = None
    formula: str = ""
    rule: str = ""
    phase_taps: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        d = {"name": self.name, "input": self.input, "kernel": self.kernel,
             "dilated_kernel": self.dilated_kernel, "stride": self.stride, "dilation": self.dilation,
             "output": self.output}
        if self.transposed:
            d.update(full=self.full, crop_lo=self.crop_lo, crop_hi=self.crop_hi,
                     phase_taps=list(self.phase_taps))
        else:
            d.update(pad_lo=self.pad_lo, pad_hi=self.pad_hi)
        d.update(formula=self.formula, rule=self.rule)
        return d


@dataclass
class Explanation:
    """What :func:`explain` returns. ``str()`` for a terminal, :meth:`to_dict` for JSON,
    :meth:`to_markdown` for documents and ``_repr_html_`` for Jupyter."""

    spec: LayerSpec
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    axes: tuple[AxisExplanation, ...] = ()
    refusal: str | None = None
    channels: str = ""
    kernel: str = ""
    kernel_shape: tuple[int, ...] = ()
    kernel_layout: str = ""
    parameters: int | None = None
    multiply_adds: int | None = None
    misreading: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resolved: Resolved | None = None
    equivalents: list[str] = field(default_factory=list)

    @property
    def transposed(self) -> bool:
        return self.spec.transposed

    # ............................................................ renderings

    def sections(self) -> list[tuple[str, list[str]]]:
        """``(title, lines)`` pairs, shared by every rendering."""
        if self.refusal:
            return [("Refused", [self.refusal])]
        out = [("Per axis", self._table()),
               ("How the numbers come about", [f"{a.name}: {a.formula}" for a in self.axes]),
               ("The rule, in words", _dedupe([a.rule for a in self.axes], self.axes))]
        if self.misreading:
            out.append(("The likely misreading", self.misreading))
        out.append(("Channels and kernel", [self.channels, self.kernel,
                                            f"parameters: {self.parameters:,}",
                                            f"multiply-adds: {self.multiply_adds:,} "
                                            f"(FLOPs ~ {2 * self.multiply_adds:,}; dense count, "
                                            f"every tap at every position)"]))
        if self.warnings:
            out.append(("Warnings", self.warnings))
        if self.equivalents:
            out.append(("Equivalents in other frameworks", self.equivalents))
        return out

    def headline(self) -> str:
        arrow = "refused" if self.refusal else str(self.output_shape)
        return f"{self.spec!r}  on input {self.input_shape} -> {arrow}"

    def _table(self) -> list[str]:
        if self.transposed:
            cols = ("axis", "input", "kernel", "dilated", "stride", "dilation", "full", "crop_lo", "crop_hi",
                    "output")
            rows = [(a.name, a.input, a.kernel, a.dilated_kernel, a.stride, a.dilation, a.full, a.crop_lo,
                     a.crop_hi, a.output) for a in self.axes]
        else:
            cols = ("axis", "input", "kernel", "dilated", "stride", "dilation", "pad_lo", "pad_hi", "output")
            rows = [(a.name, a.input, a.kernel, a.dilated_kernel, a.stride, a.dilation, a.pad_lo, a.pad_hi,
                     a.output) for a in self.axes]
        widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(cols)]
        fmt = "  ".join(f"{{:>{w}}}" for w in widths)
        return [fmt.format(*cols)] + [fmt.format(*map(str, r)) for r in rows]

    def render(self, colour: bool = False) -> str:
        bold = (lambda s: f"\033[1m{s}\033[0m") if colour else (lambda s: s)
        warn = (lambda s: f"\033[33m{s}\033[0m") if colour else (lambda s: s)
        lines = [bold(self.headline())]
        for title, body in self.sections():
            lines += ["", bold(title)]
            for line in body:
                text = ("  ! " + line) if title in ("Warnings", "Refused", "The likely misreading") else "  " + line
                lines.append(warn(text) if title in ("Warnings", "Refused") else text)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render(colour=False)

    def to_markdown(self) -> str:
        lines = [f"`{self.spec!r}` on input `{self.input_shape}` -> "
                 + ("**refused**" if self.refusal else f"**`{self.output_shape}`**")]
        for title, body in self.sections():
            lines += ["", f"**{title}**", ""]
            if title == "Per axis":
                head, *rows = body
                cells = [r.split() for r in body]
                lines.append("| " + " | ".join(cells[0]) + " |")
                lines.append("|" + "---|" * len(cells[0]))
                lines += ["| " + " | ".join(c) + " |" for c in cells[1:]]
            else:
                lines += [f"- {line}" for line in body]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"spec": repr(self.spec), "framework": self.spec.framework,
                             "transposed": self.transposed, "input_shape": list(self.input_shape),
                             "output_shape": None if self.output_shape is None else list(self.output_shape)}
        if self.refusal:
            d["refused"] = self.refusal
            return d
        d.update(axes=[a.to_dict() for a in self.axes], kernel_shape=list(self.kernel_shape),
                 kernel_layout=self.kernel_layout, parameters=self.parameters,
                 multiply_adds=self.multiply_adds, flops=2 * self.multiply_adds,
                 channels=self.channels, kernel=self.kernel, misreading=list(self.misreading),
                 warnings=list(self.warnings), equivalents=list(self.equivalents))
        return d

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def _repr_html_(self) -> str:
        parts = [f"<div class='tconv-explain'><p><b>{html.escape(self.headline())}</b></p>"]
        for title, body in self.sections():
            parts.append(f"<h4>{html.escape(title)}</h4>")
            if title == "Per axis":
                cells = [r.split() for r in body]
                parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells[0]) + "</tr>"
                             + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                                       for row in cells[1:]) + "</table>")
            else:
                parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in body) + "</ul>")
        return "".join(parts) + "</div>"


def _dedupe(lines: list[str], axes) -> list[str]:
    """One line for all axes when they say the same."""
    if len(set(lines)) == 1 and len(lines) > 1:
        return [f"each axis: {lines[0]}"]
    return [f"{a.name}: {line}" for a, line in zip(axes, lines)]


# ----------------------------------------------------------------- explain


def explain(spec_or_text: LayerSpec | str, input_shape=None, *, equivalents: bool = True) -> Explanation:
    """Explain ``spec_or_text`` on ``input_shape`` (the framework's data format, batch optional).

    ``input_shape`` may be omitted when the spec writes the input's shape itself
    (``input=``, ``lhs=`` or ``X=``). A configuration the framework refuses gives an
    Explanation whose ``refusal`` holds the reason; a spec tconv cannot read raises
    :class:`~tconv.errors.TconvError`.
    ``equivalents`` adds the exact equivalent in every other framework
    (:func:`tconv.translation.translate`).

    >>> print(explain("torch.nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1, output_padding=1)", (1, 8)).output_shape)
    (1, 16)
    """
    spec = parse(spec_or_text) if isinstance(spec_or_text, str) else spec_or_text
    if not isinstance(spec, LayerSpec):
        raise TconvError("spec", spec_or_text, "must be a LayerSpec or its text")
    if input_shape is None:
        input_shape = next((spec.get(n) for n in ("input", "lhs", "X") if spec.get(n) is not None), None)
        if input_shape is None:
            raise TconvError("input_shape", None, f"is needed to explain {spec!r} (or write input=(...) in the spec)")
    shape = shape_tuple(input_shape)
    try:
        r = spec.resolve(shape)
    except Refused as exc:
        if spec.framework == "jax" and exc.argument in ("output", "kernel"):
            # JAX does not refuse an empty result; it returns an array with a zero-length axis
            return Explanation(spec, shape, None, refusal=f"the output is empty (JAX returns a zero-length "
                               f"axis; tconv plans no empty outputs): {exc}")
        return Explanation(spec, shape, None, refusal=f"{_framework_name(spec)} refuses this: {exc}")
    e = _build(spec, shape, r)
    if equivalents:
        # the exact equivalents come from tconv.translation (issue 6), which plans them with the dialects
        from tconv.translation import equivalents as _equivalents

        e.equivalents = _equivalents(spec, shape)
    return e


def _framework_name(spec: LayerSpec) -> str:
    return {"keras": "Keras", "tf": "TensorFlow", "torch": "PyTorch", "jax": "JAX", "onnx": "ONNX"}[spec.framework]


def _build(spec: LayerSpec, shape: tuple[int, ...], r: Resolved) -> Explanation:
    g = r.geometry
    names = _AXIS_NAMES[g.rank]
    axes = []
    for name, ax, rule in zip(names, g.axes, r.rules):
        if g.transposed:
            formula = (f"full = (n-1)*s + d*(k-1) + 1 = ({ax.out}-1)*{ax.stride} + {ax.dilation}*({ax.kernel}-1) + 1"
                       f" = {ax.full}; output = full - crop_lo - crop_hi = {ax.full} - {_p(ax.crop_lo)} - "
                       f"{_p(ax.crop_hi)} = {ax.size}")
            axes.append(AxisExplanation(name, ax.out, ax.kernel, ax.dilated_kernel, ax.stride, ax.dilation, ax.size,
                                        True, full=ax.full, crop_lo=ax.crop_lo, crop_hi=ax.crop_hi,
                                        formula=formula, rule=_transposed_rule(spec, ax, rule),
                                        phase_taps=phase_tap_counts(ax.kernel, ax.stride, ax.dilation)))
        else:
            pad = (f"2*{ax.pad_lo}" if ax.pad_lo == ax.pad_hi else f"{_p(ax.pad_lo)} + {_p(ax.pad_hi)}")
            course = "floor((n + 2p - f)/s) + 1" if ax.pad_lo == ax.pad_hi else "floor((n + p_lo + p_hi - f)/s) + 1"
            formula = (f"{course} = floor(({ax.size} + {pad} - {ax.dilated_kernel})/{ax.stride}) + 1 = {ax.out}"
                       + (f"  (f = d*(k-1) + 1 = {ax.dilated_kernel}, the dilated kernel)" if ax.dilation > 1 else ""))
            axes.append(AxisExplanation(name, ax.size, ax.kernel, ax.dilated_kernel, ax.stride, ax.dilation, ax.out,
                                        False, pad_lo=ax.pad_lo, pad_hi=ax.pad_hi, formula=formula,
                                        rule=_forward_rule(spec, ax, rule)))
    e = Explanation(spec, shape, r.output_shape, tuple(axes), resolved=r)
    _channels(e, r)
    e.multiply_adds = g.multiply_adds(shape[0] if r.batched else 1)
    if g.transposed:
        e.misreading = _misreading(spec, g.axes)
    e.warnings = _warnings(spec, r, axes)
    return e


def _p(v: int) -> str:
    return f"({v})" if v < 0 else str(v)


# ................................................................ the rules


def _transposed_rule(spec: LayerSpec, ax: AxisGeometry, rule: dict) -> str:
    n, k, s, d = ax.out, ax.kernel, ax.stride, ax.dilation
    lo, hi, out, full = ax.crop_lo, ax.crop_hi, ax.size, ax.full
    crop = _crop_words(lo, hi)
    fw = spec.framework
    if fw == "keras":
        padding, op = rule["padding"], rule["output_padding"]
        length = keras_transpose_length(n, k, s, d, padding, op)
        if padding == "same":
            if op is None:
                pick = f"'same' with output_padding=None picks the output length n*stride = {n}*{s} = {length}"
            else:
                pick = (f"'same' with output_padding={op} picks (n-1)*s + k_eff%2 + output_padding = "
                        f"({n}-1)*{s} + {ax.dilated_kernel}%2 + {op} = {length}")
            pads = same_pads(out, k, s, d)
            return (f"Keras {pick} (the input is not padded; 'same' only names this length). The full scatter has "
                    f"{full} cells; TensorFlow's 'SAME' rule crops the padding of the forward 'same' convolution "
                    f"that maps {out} back to {n}: total {sum(pads)}, {pads[0]} before and {pads[1]} after (an odd "
                    f"cell goes to the end), so it {crop}")
        pick = ("output_padding=None adds max(k_eff, stride) - k_eff" if op is None else f"output_padding={op} adds it")
        return (f"Keras 'valid' keeps the whole scatter: length (n-1)*s + k_eff + output_padding = {length} "
                f"({pick}); it {crop}")
    if fw == "tf":
        padding, o = rule["padding"], rule["output_shape"]
        valid = tf_valid_outputs(n, k, s, d, padding)
        word = f"'{padding}'" if isinstance(padding, str) else f"explicit padding {padding}"
        return (f"TensorFlow does not choose the length: it takes output_shape {o} from you and checks that a "
                f"forward {word} convolution maps {o} back to {n} (it accepts {_list(valid)}). It then crops "
                f"that convolution's padding: it {crop}")
    if fw == "torch":
        p, op = rule["padding"], rule["output_padding"]
        return (f"PyTorch's padding={p} is not padding of the input: it crops {p} cells from each end of the "
                f"full scatter, and output_padding={op} gives {op} back at the end, so it {crop}. "
                f"H_out = (n-1)*s - 2p + d*(k-1) + output_padding + 1 = ({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 "
                f"= {out}")
    if fw == "jax":
        pads = rule["pads"]
        if "lhs_dilation" in rule:
            how = f"explicit padding {pads}"
        elif rule.get("use_consistent_padding"):
            how = f"padding {rule['padding']} (use_consistent_padding=True: PyTorch-style crops)"
        else:
            how = (f"'{rule['padding']}' (the Keras convention)" if isinstance(rule["padding"], str)
                   else f"explicit padding {rule['padding']} (padding of the dilated input, not crops)")
        return (f"JAX inserts {s}-1 zeros between input cells, pads the result {pads} and slides the kernel over "
                f"it ({how}). As a scatter: {full} cells, of which it {crop} (crop = k_eff-1-pad = "
                f"{ax.dilated_kernel}-1-pad)")
    auto, op, target = rule["auto_pad"], rule["output_padding"], rule["output_shape"]
    if auto in ("SAME_UPPER", "SAME_LOWER") or target is not None:
        which = "floor(T/2) at the start" if auto == "SAME_UPPER" else "ceil(T/2) at the start"
        aim = f"output_shape {target}" if target is not None else f"input*stride = {n}*{s} = {n * s}"
        return (f"ONNX {auto} aims at {aim}; the total crop T = {lo + hi} is split {which} "
                f"(as the ONNX spec and onnxruntime >= 1.13 do), so it {crop}")
    return f"ONNX pads={rule['pads']} crop the full scatter (output_padding={op} gives cells back at the end): it {crop}"


def _crop_words(lo: int, hi: int) -> str:
    def one(v, where):
        return f"crops {v} at the {where}" if v >= 0 else f"extends {-v} zero cell(s) at the {where}"
    return f"{one(lo, 'start')} and {one(hi, 'end')}"


def _list(values) -> str:
    values = values if isinstance(values, range) else list(values)  # a range stays lazy
    return " or ".join(map(str, values)) if len(values) <= 4 else f"{values[0]}..{values[-1]}"


def _forward_rule(spec: LayerSpec, ax: AxisGeometry, rule: dict) -> str:
    n, s = ax.size, ax.stride
    lo, hi = ax.pad_lo, ax.pad_hi
    padding = rule.get("padding")
    if spec.framework == "onnx":
        padding = rule["auto_pad"] if rule["auto_pad"] != "NOTSET" else rule["pads"]
    if isinstance(padding, str) and padding.upper().startswith("SAME"):
        still = sum(same_pads(n, ax.kernel, 1, ax.dilation))
        stride_note = (f"So 'same' keeps the length only at stride 1; at stride {s} it keeps ceil({n}/{s}) = "
                       f"{ax.out}. The padding depends on the stride too: {lo + hi} here, where stride 1 would "
                       f"pad {still}. " if s > 1 else "At stride 1 that keeps the length. ")
        end = "start" if padding.upper() in ("SAME_LOWER",) else "end"
        return (f"'{padding}' pads so that the output has ceil(n/stride) cells: total {lo + hi}, {lo} before and "
                f"{hi} after (an odd cell goes to the {end}). {stride_note}".strip())
    if isinstance(padding, str) and padding.lower() == "valid":
        return "'valid' adds no padding: only windows that fit inside the input count"
    if padding == "causal":
        return f"'causal' pads d*(k-1) = {lo} cells before and none after, so no output sees the future"
    return f"explicit padding: {lo} before and {hi} after"


# ............................................................ misreading


def _misreading(spec: LayerSpec, axes) -> list[str]:
    out = []
    for i, ax in enumerate(axes):
        lo, hi = ax.crop_lo, ax.crop_hi
        p, op = symmetric_reading(lo, hi)
        if torch_transpose_crops(p, op) == (lo, hi) or ax.stride == 1:
            continue
        shift = torch_transpose_crops(p, op)[0] - lo
        if spec.framework in ("keras", "tf", "jax", "onnx"):
            out.append(
                f"'Pad {p} on each side ({ax.size} + 2*{p} = {ax.size + 2 * p} cells), then crop the border' is "
                f"not what happens: nothing is padded, the full scatter is {ax.full} cells ((n-1)*s + k_eff = "
                f"({ax.out}-1)*{ax.stride} + {ax.dilated_kernel}), and {_framework(spec)} crops {lo} at the start and {hi} at the end, "
                f"not a symmetric border.")
            out.append(
                f"'Pad {p} on each side' is PyTorch's padding={p}, output_padding={op}: the same length "
                f"{ax.size}, but crops {torch_transpose_crops(p, op)}, so its output equals this one shifted by "
                f"{shift} cell{'s' if shift != 1 else ''} (y_torch[i] = y[i + {shift}]) - not the same function.")
            exact = torch_args_for_crops(lo, hi, ax.stride, ax.dilation)
            if exact is None:
                out.append(
                    f"PyTorch cannot crop more at the end than at the start; to match exactly use padding=0, "
                    f"output_padding=0 and slice [{lo}:{ax.full - hi}] of the {ax.full} cells.")
        break  # one axis tells the story; the others repeat it
    return out


def _framework(spec: LayerSpec) -> str:
    return {"keras": "Keras (TensorFlow's rule)", "tf": "TensorFlow", "jax": "JAX",
            "onnx": "ONNX", "torch": "PyTorch"}[spec.framework]


# ............................................................. channels


def _channels(e: Explanation, r: Resolved) -> None:
    g = r.geometry
    e.kernel_shape, e.kernel_layout = r.kernel_shape, r.kernel_layout
    cin, cout = g.input_channels, g.output_channels
    e.channels = (f"channels: {cin} in -> {cout} out" + (f", groups={g.groups}" if g.groups > 1 else "")
                  + f"; data format {'channels first' if r.channels_first else 'channels last'}"
                  + ("" if r.batched else " (no batch axis given)"))
    spatial = [c for c in r.kernel_layout if c not in "IO"]
    words = []
    names = dict(zip(spatial, (f"kernel {n}" for n in _AXIS_NAMES[g.rank])))
    for c, v in zip(r.kernel_layout, r.kernel_shape):
        if c in "IO":
            per_group = g.groups > 1 and ((c == "I") != g.transposed)
            words.append(f"{v} = {_LETTER_WORDS[c]}{' per group' if per_group else ''}")
        else:
            words.append(f"{v} = {names[c]}")
    flip = ("; note JAX correlates with this kernel unflipped, which equals the other frameworks' transposed "
            "convolution with the kernel flipped in space (pass transpose_kernel=True for theirs)"
            if r.flipped and r.spec.op == "conv_transpose" else
            "; the kernel slides unflipped over the dilated input: as a transposed convolution its taps are "
            "flipped in space" if r.flipped else "")
    e.kernel = f"kernel {r.kernel_shape} laid out as ({', '.join(r.kernel_layout)}): {', '.join(words)}{flip}"
    size = 1
    for v in r.kernel_shape:
        size *= v
    e.parameters = size + (cout if r.bias else 0)
    if r.bias:
        e.kernel += f"; plus a bias of {cout}"


# ............................................................. warnings


def _warnings(spec: LayerSpec, r: Resolved, axes) -> list[str]:
    g = r.geometry
    out = []
    if g.transposed:
        ax, rule, name = next(((a, rl, e.name) for a, rl, e in zip(g.axes, r.rules, axes) if a.stride > 1),
                              (None, None, None))
        if ax is not None:
            out.append(_ambiguity(spec, ax, rule, name))
        for a, e in zip(g.axes, axes):
            counts = e.phase_taps
            if len(set(counts)) > 1:
                out.append(f"{e.name}: uneven overlap (checkerboard risk): kernel {a.kernel} at stride {a.stride}"
                           f"{f' (dilation {a.dilation})' if a.dilation > 1 else ''} gives the cells of the full "
                           f"scatter {_list(counts)} taps by phase (full index mod {a.stride} = 0..{a.stride - 1}); "
                           f"output cell j is full index j + {a.crop_lo}")
                break
        for a, e in zip(g.axes, axes):
            if a.crop_lo != a.crop_hi:
                out.append(f"{e.name}: asymmetric crop ({a.crop_lo} at the start, {a.crop_hi} at the end)")
                break
        if any(a.crop_lo < 0 or a.crop_hi < 0 for a in g.axes):
            out.append("a negative crop is zero extension: those output cells get no input (bias only)")
    else:
        for a, e in zip(g.axes, axes):
            if a.pad_lo != a.pad_hi:
                out.append(f"{e.name}: asymmetric padding ({a.pad_lo} before, {a.pad_hi} after); PyTorch's integer "
                           "padding is symmetric and cannot express it")
                break
        unused = [e.name for a, e in zip(g.axes, axes) if a.extra]
        if unused:
            out.append(f"{', '.join(unused)}: the last {g.axes[[e.name for e in axes].index(unused[0])].extra} "
                       "cell(s) of the padded input are never read by a window (stride does not divide evenly)")
    out += list(r.notes)
    return out


def _ambiguity(spec: LayerSpec, ax: AxisGeometry, rule: dict, name: str) -> str:
    n, k, s, d = ax.out, ax.kernel, ax.stride, ax.dilation
    head = (f"{name}: ambiguous output size: with stride {s} a forward convolution maps several lengths to {n}, "
            f"so the transposed convolution must be told which one. ")
    fw = spec.framework
    if fw == "keras":
        padding = rule["padding"]
        options = [(None, keras_transpose_length(n, k, s, d, padding, None))]
        options += [(op, keras_transpose_length(n, k, s, d, padding, op)) for op in range(s)]
        said = ", ".join(f"output_padding={op} -> {length}" for op, length in options)
        return head + f"Keras pins it with output_padding ({said})"
    if fw == "tf":
        valid = tf_valid_outputs(n, k, s, d, rule["padding"])
        return head + f"TensorFlow requires output_shape and accepts {_list(valid)} here"
    if fw == "torch":
        p = rule["padding"]
        lengths = [(op, ax.full - sum(torch_transpose_crops(p, op))) for op in range(max(s, d))]
        return head + ("PyTorch pins it with output_padding (" + ", ".join(f"{op} -> {length}"
                                                                          for op, length in lengths)
                       + ") or forward(x, output_size=...)")
    if fw == "jax":
        return head + ("jax.lax has no output-size argument: 'SAME' gives n*stride, 'VALID' the whole scatter, "
                       "explicit pads anything else")
    return head + "ONNX pins it with output_padding, output_shape or auto_pad SAME_* (n*stride)"


class _CallableModule(__import__("types").ModuleType):
    """This module, callable as :func:`explain`: importing ``tconv.explain`` makes Python bind the
    module itself to ``tconv.explain``, where ``tconv.explain(...)`` must keep calling the function."""

    def __call__(self, *args, **kwargs):
        return explain(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
