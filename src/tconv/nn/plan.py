"""The U-Net shape planner: every level's shapes for an input size, the first level that
breaks, why (in the framework's words), and concrete fixes with the shapes each yields.

Pure arithmetic on :mod:`tconv.geometry` (nothing is computed on data). The decoder runs
from the deepest level up, so the *first* failure a framework reports is the deepest
failing level; levels are numbered from 0 (the first encoder level) to ``depth``
(the bottleneck).

>>> p = plan_unet((97, 130, 3), depth=4)
>>> p.ok, p.failing_level
(False, 1)
>>> p.reason.split(':')[0]
'skip 48x65 and upsampled 48x64 differ at level 1'
>>> plan_unet((96, 128, 3)).output
(96, 128, 23)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from tconv.errors import TconvError
from tconv.geometry import (centre_crop, conv_output_length, keras_transpose_args_for_length,
                            keras_transpose_length, pool_axis, same_pads,
                            torch_transpose_args_for_length, upsampling_axis)

__all__ = ["plan_unet", "UNetPlan", "Level"]

FRAMEWORKS = ("keras", "torch")


@dataclass
class Level:
    """Shapes (channels-last ``(H, W, C)``) of one level; None where it was never reached."""

    level: int
    encoder_in: tuple | None = None
    skip: tuple | None = None          # after the two convolutions (what is concatenated)
    pooled: tuple | None = None
    upsampled: tuple | None = None     # decoder: the up convolution's output
    skip_used: tuple | None = None     # the skip after cropping ('valid' variant)
    concat: tuple | None = None
    decoder_out: tuple | None = None


@dataclass
class UNetPlan:
    """What :func:`plan_unet` found. ``str()`` is a table; :meth:`to_dict` is JSON-ready."""

    input: tuple
    depth: int
    framework: str
    padding: str
    upsampling: str
    levels: list[Level]
    bottleneck: tuple | None
    output: tuple | None
    ok: bool
    failing_level: int | None = None
    reason: str | None = None
    #: substrings of the framework's own error message (for tests and users searching it)
    framework_error: list[str] = field(default_factory=list)
    fixes: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["levels"] = [asdict(level) for level in self.levels]
        return d

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        fmt = self._fmt
        lines = [f"U-Net plan: input {fmt(self.input)}, depth {self.depth}, padding '{self.padding}', "
                 f"upsampling '{self.upsampling}', {self.framework} convention "
                 f"({'NHWC' if self.framework == 'keras' else 'NCHW'})", ""]
        rows = [("level", "encoder in", "skip", "pooled", "upsampled", "concat", "decoder out")]
        for lv in self.levels:
            skip = fmt(lv.skip) + (f" -> {fmt(lv.skip_used)}" if lv.skip_used and lv.skip_used != lv.skip else "")
            rows.append((str(lv.level), fmt(lv.encoder_in), skip, fmt(lv.pooled), fmt(lv.upsampled),
                         fmt(lv.concat), fmt(lv.decoder_out)))
        rows.append((f"{self.depth} (bottleneck)", "", fmt(self.bottleneck), "", "", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.append("")
        if self.ok:
            lines.append(f"ok: output {fmt(self.output)}")
        else:
            lines.append(f"fails at level {self.failing_level}: {self.reason}")
            if self.fixes:
                lines += ["", "fixes:"]
                for i, fix in enumerate(self.fixes, 1):
                    lines.append(f"  {i}. {fix['title']}: input {fmt(tuple(fix['input']))} -> output "
                                 f"{fmt(tuple(fix['output'])) if fix['output'] else '?'}")
                    lines += [f"       {line}" for line in fix["how"]]
        return "\n".join(lines)

    def _fmt(self, shape) -> str:
        if shape is None:
            return "-"
        shape = tuple(shape)
        if self.framework == "torch" and len(shape) == 3:
            shape = (shape[2], shape[0], shape[1])
        return "x".join(map(str, shape))


def _conv_same(n: int, k: int = 3) -> int:
    return conv_output_length(n, k, 1, 1, *same_pads(n, k))


class _Failure(Exception):
    def __init__(self, level: int, reason: str, evidence: list[str]):
        self.level, self.reason, self.evidence = level, reason, evidence


def _simulate(hw, channels, depth, padding, upsampling, up_kernel, n_filters, n_classes, framework,
              policy="fail"):
    """Walk the network; ``policy`` at a skip mismatch: 'fail', 'crop_skip', 'pad_up', 'exact_up'."""
    levels = [Level(level) for level in range(depth)]
    nchw = framework == "torch"

    def shape(sizes, c):
        return (sizes[0], sizes[1], c)

    def tshape(sizes, c):  # how the framework prints a tensor's shape
        return f"[1, {c}, {sizes[0]}, {sizes[1]}]" if nchw else str((None, sizes[0], sizes[1], c))

    def conv(sizes, c_in, c, level, k=3):
        if padding == "same":
            return tuple(_conv_same(n, k) for n in sizes)
        out = tuple(conv_output_length(n, k) for n in sizes)
        if min(out) <= 0:
            evidence = ["Kernel size can't be greater than actual input size"] if nchw else \
                [f"Computed output size would be zero or negative. Received `inputs shape="
                 f"{(None, sizes[0], sizes[1], c_in)}`"]
            raise _Failure(level, f"a {k}x{k} 'valid' convolution needs at least {k}x{k} cells, "
                           f"got {sizes[0]}x{sizes[1]}", evidence)
        return out

    sizes = tuple(hw)
    c = channels
    for level in range(depth + 1):
        f = n_filters * 2 ** level
        if level < depth:
            levels[level].encoder_in = shape(sizes, c)
        sizes = conv(sizes, c, f, level)
        sizes = conv(sizes, f, f, level)
        c = f
        if level == depth:
            break
        levels[level].skip = shape(sizes, c)
        pooled = tuple(pool_axis(n, 2, 2, "valid").out if n >= 2 else 0 for n in sizes)
        if min(pooled) <= 0:
            evidence = [f"Given input size: ({c}x{sizes[0]}x{sizes[1]})", "Output size is too small"] \
                if nchw else ["Computed output size would be zero or negative",
                              f"inputs.shape=[None {sizes[0]} {sizes[1]} {c}]"]
            raise _Failure(level, f"2x2 max pooling of {sizes[0]}x{sizes[1]} leaves no cells "
                           f"(the input must be at least {2 ** (depth - level)} times larger)", evidence)
        levels[level].pooled = shape(pooled, c)
        sizes = pooled
    bottleneck = shape(sizes, c)
    fixes_needed = []
    for level in reversed(range(depth)):
        f = n_filters * 2 ** level
        lv = levels[level]
        skip = lv.skip[:2]
        if upsampling == "transpose":
            pad = "same" if padding == "same" else "valid"
            up = tuple(keras_transpose_length(n, up_kernel, 2, 1, pad, None) for n in sizes)
        else:
            up = tuple(upsampling_axis(n, 2).size for n in sizes)
            up = tuple(_conv_same(n, up_kernel) for n in up)
        lv.upsampled = shape(up, f)
        used = skip
        if padding == "valid":
            crops = [centre_crop(s, u) for s, u in zip(skip, up)]
            if min(min(p) for p in crops) < 0:
                raise _Failure(level, f"the skip {skip[0]}x{skip[1]} is smaller than the upsampled "
                               f"{up[0]}x{up[1]}; it cannot be cropped to it", [])
            used = up
        elif skip != up:
            if policy == "fail":
                axis = 0 if skip[0] != up[0] else 1
                odd = skip[axis]
                why = (f"skip {skip[0]}x{skip[1]} and upsampled {up[0]}x{up[1]} differ at level "
                       f"{level}: the {'height' if axis == 0 else 'width'} {odd} is odd, 2x2 pooling "
                       f"floors it to {odd // 2} and the upsampling doubles that to {2 * (odd // 2)}")
                if nchw:
                    evidence = [f"Sizes of tensors must match except in dimension 1. Expected size "
                                f"{up[axis]} but got size {skip[axis]}"]
                    why += (f" (torch.cat: Sizes of tensors must match except in dimension 1. "
                            f"Expected size {up[axis]} but got size {skip[axis]})")
                else:
                    evidence = [str(shape_k) for shape_k in ((None, up[0], up[1], f),
                                                             (None, skip[0], skip[1], f))]
                    why += (" (Keras: A `Concatenate` layer requires inputs with matching shapes "
                            f"except for the concatenation axis: {(None, up[0], up[1], f)} and "
                            f"{(None, skip[0], skip[1], f)})")
                raise _Failure(level, why, evidence)
            fixes_needed.append((level, sizes, skip, up))
            if policy == "crop_skip":
                used = tuple(min(s, u) for s, u in zip(skip, up))
                up = used
            else:  # pad_up / exact_up: the decoder takes the skip's size
                up = skip
        lv.skip_used = shape(used, f)
        lv.concat = shape(used, 2 * f)
        sizes = conv(used, 2 * f, f, level)
        sizes = conv(sizes, f, f, level)
        lv.decoder_out = shape(sizes, f)
    sizes = conv(sizes, n_filters, n_filters, 0)
    return levels, bottleneck, shape(sizes, n_classes), fixes_needed


def plan_unet(input_size, depth: int = 4, framework: str = "keras", padding: str = "same",
              upsampling: str = "transpose", up_kernel: int | None = None, n_filters: int = 32,
              n_classes: int = 23) -> UNetPlan:
    """Plan :func:`tconv.nn.unet` (and its Keras and PyTorch twins) on ``input_size`` (H, W, C).

    Returns a :class:`UNetPlan`: per-level shapes; when the network breaks, the first
    failing level (0 = first encoder level, ``depth`` = bottleneck), the reason in the
    framework's words, and fixes with the shapes each yields.
    """
    if framework not in FRAMEWORKS:
        raise TconvError("framework", framework, f"must be one of {FRAMEWORKS}")
    if isinstance(input_size, (str, bytes)) or not isinstance(input_size, (tuple, list)) or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in input_size):
        raise TconvError("input", input_size, "must be (height, width, channels), all positive integers")
    if len(input_size) == 2:
        input_size = tuple(input_size) + (3,)
    if len(input_size) != 3 or min(input_size) < 1:
        raise TconvError("input", input_size, "must be (height, width, channels), all positive")
    if up_kernel is None:
        up_kernel = 3 if padding == "same" else 2
    hw, channels = tuple(int(n) for n in input_size[:2]), int(input_size[2])
    args = (channels, depth, padding, upsampling, up_kernel, n_filters, n_classes, framework)
    try:
        levels, bottleneck, output, _ = _simulate(hw, *args)
        return UNetPlan(tuple(input_size), depth, framework, padding, upsampling, levels,
                        bottleneck, output, True)
    except _Failure as failure:
        levels, bottleneck, output, fail = None, None, None, failure
    # re-walk to record the shapes up to the failure
    partial = _partial(hw, args, fail.level)
    plan = UNetPlan(tuple(input_size), depth, framework, padding, upsampling, partial[0],
                    partial[1], None, False, fail.level, fail.reason, fail.evidence)
    plan.fixes = _fixes(hw, args, framework, upsampling, up_kernel, depth, fail)
    return plan


def _partial(hw, args, failing_level):
    # the shapes a framework computes before it stops, the failing level included
    for policy in ("pad_up", "crop_skip"):
        try:
            levels, bottleneck, _, _ = _simulate(hw, *args, policy=policy)
            for lv in levels:
                if lv.level < failing_level:
                    lv.upsampled = lv.skip_used = lv.concat = lv.decoder_out = None
            lv = levels[failing_level] if failing_level < len(levels) else None
            if lv is not None:
                lv.skip_used = lv.concat = lv.decoder_out = None
            return levels, bottleneck
        except _Failure:
            continue
    return [Level(level) for level in range(args[1])], None


def _fixes(hw, args, framework, upsampling, up_kernel, depth, fail) -> list[dict]:
    channels = args[0]
    fixes = []
    if not fail.reason.startswith("skip "):  # too small for the network, not a skip mismatch
        need = 2 ** depth
        bigger = tuple(max(n, need * (4 if args[2] == "valid" else 1)) for n in hw)
        fixes.append(dict(name="larger_input", title="use a larger input",
                          input=list(bigger) + [channels], output=_output(bigger, args),
                          how=[f"each side must survive {depth} poolings: at least {need} cells "
                               "('same'); the 'valid' variant needs more (try the sizes above)"]))
        return fixes
    multiple = 2 ** depth
    padded = tuple(-(-n // multiple) * multiple for n in hw)
    cropped = tuple(n // multiple * multiple for n in hw)
    pads = tuple(p - n for p, n in zip(padded, hw))
    fixes.append(dict(
        name="pad_input", title=f"pad the input to a multiple of 2^{depth} = {multiple}",
        input=list(padded) + [channels], output=_output(padded, args),
        how=[f"pad {pads[0]} rows at the bottom and {pads[1]} columns at the right "
             f"(keras.layers.ZeroPadding2D((({0}, {pads[0]}), (0, {pads[1]}))) or "
             f"torch.nn.functional.pad(x, (0, {pads[1]}, 0, {pads[0]}))), then crop the output "
             f"back to {hw[0]}x{hw[1]}"]))
    if min(cropped) > 0:
        fixes.append(dict(name="crop_input", title=f"crop the input to a multiple of {multiple}",
                          input=list(cropped) + [channels], output=_output(cropped, args),
                          how=[f"drop the last {hw[0] - cropped[0]} rows and {hw[1] - cropped[1]} "
                               "columns (the output then covers only the cropped image)"]))
    try:
        levels, _, out, needed = _simulate(hw, *args, policy="exact_up")
    except _Failure:
        needed, out = [], None
    if upsampling == "transpose" and needed:
        how = []
        for level, sizes, skip, up in needed:
            k_args = [keras_transpose_args_for_length(n, up_kernel, 2, 1, s) for n, s in zip(sizes, skip)]
            common = [p for p in ("same", "valid") if all(any(a[0] == p for a in ax) for ax in k_args)]
            if common:
                pad = common[0]
                ops = tuple(next(a[1] for a in ax if a[0] == pad) for ax in k_args)
                ops_text = "None" if all(o is None for o in ops) else \
                    str(tuple(0 if o is None else o for o in ops)) if any(o is None for o in ops) else str(ops)
                keras_text = f"Conv2DTranspose(..., padding='{pad}', output_padding={ops_text})"
            else:
                keras_text = ("no single Keras Conv2DTranspose padding fits both axes; crop or pad instead")
            t_args = [torch_transpose_args_for_length(n, up_kernel, 2, 1, s)[0] for n, s in zip(sizes, skip)]
            torch_text = (f"ConvTranspose2d(..., padding={tuple(a[0] for a in t_args)}, "
                          f"output_padding={tuple(a[1] for a in t_args)})")
            how.append(f"level {level}: {sizes[0]}x{sizes[1]} -> {skip[0]}x{skip[1]}: "
                       + (keras_text if framework == "keras" else torch_text))
        fixes.append(dict(name="output_padding", title="per-level output_padding on the up convolution",
                          input=list(hw) + [channels], output=list(out) if out else None, how=how))
    for policy, name, title in (("crop_skip", "crop_skip", "crop the skip to the upsampled size"),
                                ("pad_up", "pad_upsampled", "zero-pad the upsampled tensor to the skip")):
        try:
            _, _, out, needed = _simulate(hw, *args, policy=policy)
        except _Failure:
            continue
        how = []
        for level, sizes, skip, up in needed:
            dh, dw = skip[0] - up[0], skip[1] - up[1]
            layer = (f"Cropping2D(((0, {dh}), (0, {dw}))) on the skip" if policy == "crop_skip"
                     else f"ZeroPadding2D(((0, {dh}), (0, {dw}))) on the upsampled tensor")
            if framework == "torch":
                layer = (f"skip[..., :{up[0]}, :{up[1]}]" if policy == "crop_skip"
                         else f"F.pad(up, (0, {dw}, 0, {dh}))")
            how.append(f"level {level}: {layer}")
        fixes.append(dict(name=name, title=title, input=list(hw) + [channels], output=list(out), how=how))
    return fixes


def _output(hw, args):
    try:
        return list(_simulate(hw, *args)[2])
    except _Failure:
        return None
