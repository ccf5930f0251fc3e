"""Translate a layer between frameworks, exactly, weights included.

:func:`translate` resolves the source spec to its :class:`~tconv.geometry.Geometry`
(per axis: the forward pads, or the transposed convolution's crops of its full
scatter) and looks for the target framework's arguments that produce the *same*
Geometry -- the same values, not merely the same shapes. Every candidate is checked by
calling the target dialect under :func:`tconv.ops.planning`, so the dialect's own rules
(and refusals) decide, not a second copy of them.

Where no single call is exact, the translation is the smallest exact composite: the
target layer plus an explicit zero-pad or crop of its input (forward) or of its output
(transposed), the amounts computed from the Geometry; where a zero extension follows
the layer, the bias moves after it (the frameworks add the bias on extended cells too).
A framework without a feature gets an exact rewrite of the kernel: grouped kernels
expanded to dense block-diagonal ones, dilated kernels with zeros between taps.

The translation is planned for one input shape; :attr:`Translation.validity` says for
which other input lengths the same recipe stays exact (checked, per axis).

>>> t = translate("keras.Conv2DTranspose(512, 3, strides=2, padding='same')", to="torch",
...               input_shape=(8, 8, 1024))
>>> t.spec
torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, bias=True)
>>> t.post
((0, 1), (0, 1))
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from tconv import weights as _weights
from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, Geometry, jax_pads_for_crops,
                            keras_transpose_crops, onnx_transpose_crops, symmetric_reading,
                            tf_transpose_crops, tf_valid_outputs, torch_args_for_crops)
from tconv.layout import SPATIAL, permutation
from tconv.spec import LayerSpec, parse, shape_tuple

__all__ = ["translate", "Translation", "DIALECTS", "equivalents"]

DIALECTS = ("keras", "tf", "torch", "jax", "onnx")
_NAMES = {"keras": "Keras", "tf": "TensorFlow", "torch": "PyTorch", "jax": "JAX", "onnx": "ONNX"}


# ------------------------------------------------------------------ the plan of a target call


@dataclass
class _Plan:
    """One candidate: a target call plus the composite around it (internal)."""

    framework: str
    fn: str                          # dialect function or Keras class
    kwargs: dict                     # the dialect's arguments (sizes excluded)
    text: str                        # target spec text
    data_layout: str                 # e.g. 'NCHW'
    kernel_format: _weights.KernelFormat
    pre: tuple | None = None         # per axis (lo, hi) zero-pad of the input (negative: crop)
    post: tuple | None = None        # per axis (lo, hi) crop of the output (negative: zero-extend)
    bias_after: bool = False         # bias added after the post step
    expand: bool = False             # grouped kernel expanded to a dense block-diagonal one
    dilate: tuple | None = None      # kernel dilated with zeros, target undilated
    layer_bias: bool = True          # the target call takes the bias itself
    notes: list = field(default_factory=list)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def single(self) -> bool:
        return not (self.pre or self.post or self.bias_after)


def _uniform(values):
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def _fmt(value) -> str:
    return repr(value)


# ------------------------------------------------------------------------ dialect calls


def _dialect(name: str):
    from tconv import dialects  # the registry: each dialect module loads on first use

    return getattr(dialects, name)


def _call(plan: _Plan, x: np.ndarray, kernel: np.ndarray, bias, out_spatial=None) -> np.ndarray:
    """Run ``plan``'s target call (no pre/post) in tconv's dialect; ``x`` in the target layout."""
    d = _dialect(plan.framework)
    kw = dict(plan.kwargs)
    b = bias if plan.layer_bias else None
    if plan.framework == "torch":
        return getattr(d, plan.fn)(x, kernel, b, **kw)
    if plan.framework == "onnx":
        return getattr(d, plan.fn)(x, kernel, b, **kw)
    if plan.framework == "keras":
        use_bias = b is not None
        planning = kernel.strides == (0,) * kernel.ndim  # a shape_only kernel: plan only
        key = ("keras", x.shape[-1], use_bias, kernel.dtype)
        layer = plan._cache.get(key) if planning else None
        if layer is None:
            init = {"kernel_initializer": "zeros"} if planning else {}  # planning needs no random draw
            layer = getattr(d, plan.fn)(**kw, use_bias=use_bias, dtype=kernel.dtype.name, **init)
            layer.build(x.shape)
            if planning:  # the built layer (random weights) serves every planning call
                plan._cache[key] = layer
            else:
                layer.set_weights([kernel] + ([b] if use_bias else []))
        return layer(x)
    if plan.framework == "tf":
        if plan.fn.endswith("transpose"):
            kw["output_shape"] = [x.shape[0], *out_spatial, kernel.shape[-2]]  # groups are expanded for TF
        return getattr(d, plan.fn)(x, kernel, **kw)
    if plan.framework == "jax":
        return getattr(d, plan.fn)(x, kernel, **kw)
    raise TconvError("to", plan.framework, f"must be one of {', '.join(DIALECTS)}")


def _spatial_axes(layout: str) -> tuple[int, ...]:
    return tuple(i for i, c in enumerate(layout) if c not in "NC")


def _pad_crop(y: np.ndarray, layout: str, pairs, *, crop: bool) -> np.ndarray:
    """Zero-pad (``crop=False``) or crop (``crop=True``) ``y``'s spatial axes by ``(lo, hi)``
    pairs; a negative amount does the other."""
    if not pairs:
        return y
    sign = -1 if crop else 1
    pads = [(0, 0)] * y.ndim
    index = [slice(None)] * y.ndim
    for axis, (lo, hi) in zip(_spatial_axes(layout), pairs):
        lo, hi = sign * lo, sign * hi  # now: positive pads, negative crops
        pads[axis] = (max(lo, 0), max(hi, 0))
        index[axis] = slice(max(-lo, 0), y.shape[axis] - max(-hi, 0))
    y = y[tuple(index)]
    if any(p != (0, 0) for p in pads):
        y = np.pad(y, pads)
    return np.ascontiguousarray(y)


def _add_bias(y: np.ndarray, layout: str, bias) -> np.ndarray:
    if bias is None:
        return y
    shape = [1] * y.ndim
    shape[layout.index("C")] = -1
    return y + np.asarray(bias, y.dtype).reshape(shape)


def _record(plan: _Plan, x_shape, kernel_shape, out_spatial=None) -> Geometry | None:
    """The Geometry the target dialect plans for ``plan`` on ``x_shape`` (after ``pre``),
    or None where the dialect refuses."""
    from tconv.ops import planning, shape_only

    if min(x_shape) < 1:  # a crop before the call leaves nothing
        return None
    try:
        with planning() as plans:
            _call(plan, shape_only(x_shape), shape_only(kernel_shape), None, out_spatial)
    except TconvError:
        return None
    return plans[0][0] if plans else None


# ------------------------------------------------------------------------- equivalence


def _axis_key(ax: AxisGeometry, transposed: bool):
    if transposed:
        return (ax.out, ax.dilated_kernel, ax.stride, ax.crop_lo, ax.crop_hi)
    return (ax.size, ax.dilated_kernel, ax.stride, ax.pad_lo, ax.out)


def _equivalent(want: Geometry, got: Geometry | None, plan: _Plan) -> bool:
    """Does ``plan`` (target call ``got`` plus its pre/post steps) compute ``want``?"""
    if want.transposed and got is not None and not got.transposed and all(a.stride == 1 for a in got.axes):
        # JAX runs a stride-1 transposed convolution as the correlation it is: the same map
        got = Geometry(tuple(AxisGeometry.transposed(a.size, a.kernel, 1, a.dilation, a.dilated_kernel - 1 - a.pad_lo,
                                                     a.dilated_kernel - 1 - a.pad_hi) for a in got.axes),
                       got.out_channels, got.in_channels, got.groups, transposed=True)
    if got is None or got.transposed != want.transposed or got.rank != want.rank:
        return False
    if (got.in_channels, got.out_channels) != (want.in_channels, want.out_channels):
        return False
    if got.groups != (1 if plan.expand else want.groups):
        return False
    for i, (w, g) in enumerate(zip(want.axes, got.axes)):
        if plan.dilate:
            if (g.kernel, g.dilation) != (w.dilated_kernel, 1):
                return False
        elif (g.kernel, g.dilation) != (w.kernel, w.dilation):
            return False
        if want.transposed:
            lo, hi = plan.post[i] if plan.post else (0, 0)
            # a zero extension after the call must not follow a crop of real cells
            if (lo < 0 and g.crop_lo > 0) or (hi < 0 and g.crop_hi > 0):
                return False
            if (g.out, g.stride, g.crop_lo + lo, g.crop_hi + hi) != (w.out, w.stride, w.crop_lo, w.crop_hi):
                return False
        else:
            lo, hi = plan.pre[i] if plan.pre else (0, 0)
            # a crop before the call must not meet the call's own padding on that side
            if (lo < 0 and g.pad_lo != 0) or (hi < 0 and g.pad_hi > 0):
                return False
            if (g.size - lo - hi, g.stride, g.pad_lo + lo, g.out) != (w.size, w.stride, w.pad_lo, w.out):
                return False
    return True


# ----------------------------------------------------------------- source description


def _with_batch(spec: LayerSpec, shape: tuple[int, ...]):
    r = spec.resolve(shape)
    if r.batched:
        return r, tuple(shape)
    shape = (1,) + tuple(shape)
    return spec.resolve(shape), shape


def _source_layout(r) -> str:
    spec, rank = r.spec, r.geometry.rank
    if spec.framework == "jax":
        dn = spec.get("dimension_numbers")
        if dn is None:
            return ("N" + SPATIAL[rank] + "C") if spec.op == "conv_transpose" else "NC" + SPATIAL[rank]
        lhs, rhs = dn[0], dn[1]
        order = [c for c in rhs if c not in "IO"]
        rename = dict(zip(order, SPATIAL[rank]))
        return "".join(rename.get(c, c) for c in lhs)
    return ("NC" + SPATIAL[rank]) if r.channels_first else ("N" + SPATIAL[rank] + "C")


def _source_format(r) -> _weights.KernelFormat:
    g = r.geometry
    per_group = "O" if g.transposed and not r.flipped else "I"
    return _weights.KernelFormat(r.kernel_layout, bool(r.flipped), per_group)


# --------------------------------------------------------------------- forward pads


def _hi_range(ax: AxisGeometry) -> range:
    """Every ``pad_hi`` giving the same output length (the last window's slack)."""
    hi_min = (ax.out - 1) * ax.stride + ax.dilated_kernel - ax.size - ax.pad_lo
    return range(hi_min, hi_min + ax.stride)


def _split(ax: AxisGeometry, mode: str):
    """``((target_lo, target_hi), (pre_lo, pre_hi))`` for one axis: what the target's own
    padding takes (``mode``: 'any', 'nonneg', 'sym', 'none') and what an explicit pad/crop
    before it must do."""
    best = None
    lo = ax.pad_lo
    for hi in _hi_range(ax):
        if mode == "any":
            t, p = (lo, hi), (0, 0)
        elif mode == "nonneg":
            t, p = (max(lo, 0), max(hi, 0)), (min(lo, 0), min(hi, 0))
        elif mode == "sym":
            q = max(0, min(lo, hi))
            t, p = (q, q), (lo - q, hi - q)
        else:
            t, p = (0, 0), (lo, hi)
        # the source's own pad_hi first: a fixed pad then holds for other input lengths too
        score = (p != (0, 0), abs(hi - ax.pad_hi), abs(p[0]) + abs(p[1]), abs(hi))
        if best is None or score < best[0]:
            best = (score, t, p)
    return best[1], best[2]


def _forward_pads(g: Geometry, mode: str):
    parts = [_split(ax, mode) for ax in g.axes]
    pads = tuple(t for t, _ in parts)
    pre = tuple(p for _, p in parts)
    return pads, (pre if any(p != (0, 0) for p in pre) else None)


# ------------------------------------------------------------------ transposed crops


def _residual_score(want, got):
    lo, hi = want[0] - got[0], want[1] - got[1]
    if (lo < 0 and got[0] > 0) or (hi < 0 and got[1] > 0):
        return None
    return ((lo != 0) + (hi != 0), (lo < 0) + (hi < 0), abs(lo) + abs(hi)), (lo, hi)


def _best_per_axis(g: Geometry, options_per_axis):
    """``options_per_axis[i]``: list of ``(args, crops)``; the best per axis, or None."""
    chosen, total = [], (0, 0, 0)
    for ax, options in zip(g.axes, options_per_axis):
        best = None
        for args, crops in options:
            scored = _residual_score((ax.crop_lo, ax.crop_hi), crops)
            if scored is None:
                continue
            if best is None or scored[0] < best[0]:
                best = (scored[0], args, scored[1])
        if best is None:
            return None
        chosen.append((best[1], best[2]))
        total = tuple(a + b for a, b in zip(total, best[0]))
    return total, chosen


def _post(chosen):
    post = tuple(res for _, res in chosen)
    return post if any(p != (0, 0) for p in post) else None


# ---------------------------------------------------------------------- target builders


def _geom_kernel(g: Geometry, dilate: bool):
    """Per axis (kernel, dilation) of the target call."""
    if dilate:
        return [(ax.dilated_kernel, 1) for ax in g.axes]
    return [(ax.kernel, ax.dilation) for ax in g.axes]


def _plans_torch(g: Geometry, bias: bool) -> list[_Plan]:
    rank, S = g.rank, SPATIAL[g.rank]
    cin, cout, groups = g.input_channels, g.output_channels, g.groups
    k = _uniform(ax.kernel for ax in g.axes)
    s = _uniform(ax.stride for ax in g.axes)
    d = _uniform(ax.dilation for ax in g.axes)
    fmt = _weights.kernel_format("torch", rank, g.transposed)
    plans = []

    def text(extra):
        cls = f"ConvTranspose{rank}d" if g.transposed else f"Conv{rank}d"
        parts = [str(cin), str(cout), _fmt(k)]
        if s != 1:
            parts.append(f"stride={s!r}")
        for name, value, default in extra:
            if value != default:
                parts.append(f"{name}={value!r}")
        if groups != 1:
            parts.append(f"groups={groups}")
        if d != 1:
            parts.append(f"dilation={d!r}")
        return f"torch.nn.{cls}({', '.join(parts)}, bias={bias})"

    if not g.transposed:
        fn = f"conv{rank}d"
        for mode in ("sym", "same"):
            if mode == "same":
                if any(ax.stride != 1 for ax in g.axes):
                    continue
                padding, pre = "same", None
            else:
                pads, pre = _forward_pads(g, "sym")
                padding = _uniform(p for p, _ in pads)
            kw = dict(stride=s, padding=padding, dilation=d, groups=groups)
            plans.append(_Plan("torch", fn, kw, text([("padding", padding, 0)]), "NC" + S, fmt, pre=pre))
        return plans
    fn = f"conv_transpose{rank}d"
    options = []
    for ax in g.axes:
        opts = []
        for p in range(0, max(ax.crop_lo, 0) + 1):
            for op in range(max(ax.stride, ax.dilation)):
                opts.append(((p, op), (p, p - op)))
        options.append(opts)
    _, chosen = _best_per_axis(g, options)
    padding = _uniform(a[0] for a, _ in chosen)
    output_padding = _uniform(a[1] for a, _ in chosen)
    post = _post(chosen)
    kw = dict(stride=s, padding=padding, output_padding=output_padding, groups=groups, dilation=d)
    plans.append(_Plan("torch", fn, kw, text([("padding", padding, 0), ("output_padding", output_padding, 0)]),
                       "NC" + S, fmt, post=post))
    return plans


def _plans_keras(g: Geometry, bias: bool) -> list[_Plan]:
    rank, S = g.rank, SPATIAL[g.rank]
    cout, groups = g.output_channels, g.groups
    strided = any(ax.stride > 1 for ax in g.axes)
    dilated = any(ax.dilation > 1 for ax in g.axes)
    # Keras refuses strides > 1 with dilation_rate > 1, and TensorFlow's CPU kernel has no
    # dilated transposed convolution: the dilated kernel, zeros between taps, runs undilated
    dilate = dilated and (strided or g.transposed)
    expand = g.transposed and groups > 1  # Conv*DTranspose has no groups
    kd = _geom_kernel(g, dilate)
    k = _uniform(a for a, _ in kd)
    dr = _uniform(b for _, b in kd)
    s = _uniform(ax.stride for ax in g.axes)
    fmt = _weights.kernel_format("keras", rank, g.transposed)
    notes = []
    if dilate:
        notes.append("the dilated kernel is written out with zeros between its taps and run undilated "
                     "(Keras refuses strides > 1 with dilation_rate > 1, and TensorFlow's CPU kernel "
                     "has no dilated transposed convolution); exact, at more multiply-adds")
    if expand:
        notes.append("Conv*DTranspose has no groups: the grouped kernel is expanded to a dense "
                     "block-diagonal one (exact; zeros between the groups)")

    def make(padding, output_padding=None, pre=None, post=None):
        cls = f"Conv{rank}DTranspose" if g.transposed else f"Conv{rank}D"
        kw = dict(filters=cout, kernel_size=k, strides=s, padding=padding, dilation_rate=dr)
        parts = [str(cout), _fmt(k)]
        if s != 1:
            parts.append(f"strides={s!r}")
        if padding != "valid":
            parts.append(f"padding={padding!r}")
        if g.transposed:
            if output_padding is not None:
                kw["output_padding"] = output_padding
                parts.append(f"output_padding={output_padding!r}")
        elif groups != 1:
            kw["groups"] = groups
            parts.append(f"groups={groups}")
        if dr != 1:
            parts.append(f"dilation_rate={dr!r}")
        bias_after = bool(post) and any(lo < 0 or hi < 0 for lo, hi in post) and bias
        if not bias or bias_after:
            parts.append("use_bias=False")
        return _Plan("keras", cls, kw, f"keras.{cls}({', '.join(parts)})", "N" + S + "C", fmt, pre=pre,
                     post=post, bias_after=bias_after, expand=expand,
                     dilate=tuple(ax.dilation for ax in g.axes) if dilate else None,
                     layer_bias=not bias_after, notes=list(notes))

    if not g.transposed:
        plans = [make(p) for p in ("valid", "same") + (("causal",) if rank == 1 else ())]
        pads, pre = _forward_pads(g, "none")
        plans.append(make("valid", pre=pre))
        return plans
    found = []
    for padding in ("same", "valid"):
        for op_none in (True, False):
            options = []
            for ax, (kk, dd) in zip(g.axes, kd):
                opts = []
                for op in ((None,) if op_none else range(ax.stride)):
                    try:
                        crops = keras_transpose_crops(ax.out, kk, ax.stride, dd, padding, op)
                    except TconvError:
                        continue
                    opts.append((op, crops))
                options.append(opts)
            best = _best_per_axis(g, options)
            if best is not None:
                score, chosen = best
                op = None if op_none else tuple(a for a, _ in chosen)
                found.append((score, make(padding, op, post=_post(chosen))))
    found.sort(key=lambda item: item[0])
    return [plan for _, plan in found]


def _plans_tf(g: Geometry, bias: bool) -> list[_Plan]:
    rank, S = g.rank, SPATIAL[g.rank]
    cin, cout, groups = g.input_channels, g.output_channels, g.groups
    strided = any(ax.stride > 1 for ax in g.axes)
    dilated = any(ax.dilation > 1 for ax in g.axes)
    # TensorFlow's CPU kernels: no dilated transposed or dilated 3-D convolution, no grouped
    # transposed or grouped 3-D convolution -- exact rewrites of the kernel instead
    dilate = dilated and (g.transposed or rank == 3 or strided)
    expand = groups > 1 and (g.transposed or rank == 3)
    kd = _geom_kernel(g, dilate)
    s = tuple(ax.stride for ax in g.axes)
    fmt = _weights.kernel_format("tf", rank, g.transposed)
    kshape = tuple(a for a, _ in kd)
    notes = ["tf.nn has no bias argument: the bias is added with tf.nn.bias_add"] if bias else []
    if dilate:
        notes.append("the dilated kernel is written out with zeros between its taps and run undilated "
                     "(TensorFlow's CPU kernels refuse this dilation); exact")
    if expand:
        notes.append("the grouped kernel is expanded to a dense block-diagonal one (TensorFlow's CPU "
                     "kernels refuse grouped transposed/3-D convolutions); exact")

    def seq(values):
        values = tuple(values)
        if rank == 3:
            return [1, *values, 1]
        return _uniform(values)

    def make(padding, out_spatial=None, pre=None, post=None):
        if g.transposed:
            fn = f"conv{rank}d_transpose"
            filters = kshape + ((cout if expand else cout // groups), cin)
        else:
            fn = f"conv{rank}d"
            filters = kshape + ((cin if expand else cin // groups), cout)
        kw = {("stride" if rank == 1 and not g.transposed else "strides"): seq(s), "padding": padding}
        dl = tuple(b for _, b in kd)
        if any(v != 1 for v in dl):
            kw["dilations"] = seq(dl)
        pad_text = padding if isinstance(padding, str) else [list(p) for p in padding]
        parts = [f"filters={filters!r}"]
        if g.transposed:
            parts.append(f"output_shape={[1, *out_spatial, cout]!r}")
        parts += [f"{name}={value!r}" for name, value in kw.items() if name != "padding"]
        parts.append(f"padding={pad_text!r}")
        if not isinstance(padding, str):
            kw["padding"] = [list(p) for p in padding]
        plan = _Plan("tf", fn, kw, f"tf.nn.{fn}({', '.join(parts)})", "N" + S + "C", fmt, pre=pre, post=post,
                     bias_after=False, expand=expand, dilate=tuple(ax.dilation for ax in g.axes) if dilate else None,
                     layer_bias=False, notes=list(notes))
        plan._cache["out_spatial"] = out_spatial
        return plan

    if not g.transposed:
        plans = [make("VALID"), make("SAME")]
        if rank == 2:
            pads, pre = _forward_pads(g, "nonneg")
            plans.append(make(((0, 0),) + pads + ((0, 0),), pre=pre))
        else:
            pads, pre = _forward_pads(g, "none")
            plans.append(make("VALID", pre=pre))
        return plans
    found = []
    modes = ["SAME", "VALID"] + (["explicit"] if rank == 2 else [])
    for mode in modes:
        options = []
        for ax, (kk, dd) in zip(g.axes, kd):
            opts = []
            n = ax.out
            pairs = [mode] if mode != "explicit" else [
                (plo, phi) for plo in sorted({0, max(ax.crop_lo, 0)})
                for phi in range(0, max(ax.crop_hi, 0) + ax.stride)]
            for pad in pairs:
                for o in tf_valid_outputs(n, kk, ax.stride, dd, pad):
                    try:
                        crops = tf_transpose_crops(n, kk, ax.stride, dd, o, pad)
                    except TconvError:
                        continue
                    opts.append(((pad, o), crops))
            options.append(opts)
        best = _best_per_axis(g, options)
        if best is None:
            continue
        score, chosen = best
        out_spatial = tuple(a[1] for a, _ in chosen)
        padding = mode if mode != "explicit" else ((0, 0),) + tuple(a[0] for a, _ in chosen) + ((0, 0),)
        found.append((score, make(padding, out_spatial, post=_post(chosen))))
    found.sort(key=lambda item: item[0])
    return [plan for _, plan in found]


def _plans_jax(g: Geometry, bias: bool) -> list[_Plan]:
    rank, S = g.rank, SPATIAL[g.rank]
    cin, cout, groups = g.input_channels, g.output_channels, g.groups
    k = tuple(ax.kernel for ax in g.axes)
    s = tuple(ax.stride for ax in g.axes)
    d = tuple(ax.dilation for ax in g.axes)
    notes = ["jax.lax has no bias argument: the bias is added after the call"] if bias else []
    plans = []
    if not g.transposed:
        fmt = _weights.kernel_format("jax", rank, False)
        pads, _ = _forward_pads(g, "any")
        for padding in ("SAME", "SAME_LOWER", "VALID", pads):
            kw = dict(window_strides=s, padding=padding)
            parts = [f"rhs={(cout, cin // groups) + k!r}", f"window_strides={s!r}", f"padding={padding!r}"]
            if any(v != 1 for v in d):
                kw["rhs_dilation"] = d
                parts.append(f"rhs_dilation={d!r}")
            if groups != 1:
                kw["feature_group_count"] = groups
                parts.append(f"feature_group_count={groups}")
            plans.append(_Plan("jax", "conv_general_dilated", kw,
                               f"jax.lax.conv_general_dilated({', '.join(parts)})", "NC" + S, fmt,
                               layer_bias=False, notes=list(notes)))
        return plans
    pads = tuple(jax_pads_for_crops(ax.kernel, ax.dilation, ax.crop_lo, ax.crop_hi) for ax in g.axes)
    if groups > 1:
        fmt = _weights.kernel_format("jax", rank, True, jax_lhs_dilated=True)
        kw = dict(window_strides=(1,) * rank, padding=pads, lhs_dilation=s, feature_group_count=groups)
        parts = [f"rhs={(cout, cin // groups) + k!r}", f"window_strides={(1,) * rank!r}", f"padding={pads!r}",
                 f"lhs_dilation={s!r}"]
        if any(v != 1 for v in d):
            kw["rhs_dilation"] = d
            parts.append(f"rhs_dilation={d!r}")
        parts.append(f"feature_group_count={groups}")
        notes = notes + ["lax.conv_transpose has no groups: conv_general_dilated with lhs_dilation (the "
                         "fractionally strided correlation) takes them, with the kernel spatially flipped"]
        return [_Plan("jax", "conv_general_dilated", kw, f"jax.lax.conv_general_dilated({', '.join(parts)})",
                      "NC" + S, fmt, layer_bias=False, notes=notes)]
    fmt = _weights.kernel_format("jax", rank, True, jax_transpose_kernel=True)
    for padding in ("SAME", "VALID", pads):
        kw = dict(strides=s, padding=padding, transpose_kernel=True)
        parts = [f"rhs={k + (cout, cin)!r}", f"strides={s!r}", f"padding={padding!r}"]
        if any(v != 1 for v in d):
            kw["rhs_dilation"] = d
            parts.append(f"rhs_dilation={d!r}")
        parts.append("transpose_kernel=True")
        plans.append(_Plan("jax", "conv_transpose", kw, f"jax.lax.conv_transpose({', '.join(parts)})",
                           "N" + S + "C", fmt, layer_bias=False, notes=list(notes)))
    return plans


def _plans_onnx(g: Geometry, bias: bool) -> list[_Plan]:
    rank, S = g.rank, SPATIAL[g.rank]
    cin, cout, groups = g.input_channels, g.output_channels, g.groups
    k = [ax.kernel for ax in g.axes]
    s = [ax.stride for ax in g.axes]
    d = [ax.dilation for ax in g.axes]
    fmt = _weights.kernel_format("onnx", rank, g.transposed)
    w = (cin, cout // groups) + tuple(k) if g.transposed else (cout, cin // groups) + tuple(k)

    def make(attrs, pre=None, post=None):
        attrs = dict(attrs)
        if any(v != 1 for v in s):
            attrs["strides"] = s
        if any(v != 1 for v in d):
            attrs["dilations"] = d
        if groups != 1:
            attrs["group"] = groups
        op = "ConvTranspose" if g.transposed else "Conv"
        bias_after = bool(post) and any(lo < 0 or hi < 0 for lo, hi in post) and bias
        parts = [f"W={w!r}"] + (["B=" + repr((cout,))] if bias and not bias_after else [])
        parts += [f"{name}={value!r}" for name, value in attrs.items()]
        attrs["kernel_shape"] = k
        return _Plan("onnx", "conv_transpose" if g.transposed else "conv", attrs,
                     f"onnx.{op}({', '.join(parts)})", "NC" + S, fmt, pre=pre, post=post,
                     bias_after=bias_after, layer_bias=not bias_after)

    if not g.transposed:
        pads, pre = _forward_pads(g, "nonneg")
        flat = [lo for lo, _ in pads] + [hi for _, hi in pads]
        plans = [make({"pads": flat}, pre=pre)]
        if all(v == 1 for v in d):  # onnxruntime refuses SAME_* with dilations
            plans = [make({"auto_pad": a}) for a in ("SAME_UPPER", "SAME_LOWER", "VALID")] + plans
        return plans
    found = []
    for auto_pad in ("SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"):
        options = []
        for ax in g.axes:
            opts = []
            n, kk, st, dd = ax.out, ax.kernel, ax.stride, ax.dilation
            if auto_pad != "NOTSET":
                cands = [((0, 0), 0)]
            else:
                cands = [((plo, phi), op) for op in range(st) for plo in sorted({0, max(ax.crop_lo, 0)})
                         for phi in sorted({0, max(ax.crop_hi + op, 0)})]
            for pads, op in cands:
                try:
                    crops = onnx_transpose_crops(n, kk, st, dd, auto_pad, pads, op, None)
                except TconvError:
                    continue
                opts.append(((pads, op), crops))
            options.append(opts)
        best = _best_per_axis(g, options)
        if best is None:
            continue
        score, chosen = best
        if auto_pad == "NOTSET":
            attrs = {"pads": [a[0][0] for a, _ in chosen] + [a[0][1] for a, _ in chosen]}
            ops_ = [a[1] for a, _ in chosen]
            if any(ops_):
                attrs["output_padding"] = ops_
        else:
            attrs = {"auto_pad": auto_pad}
        found.append((score, make(attrs, post=_post(chosen))))
    found.sort(key=lambda item: item[0])
    return [plan for _, plan in found]


_BUILDERS = {"torch": _plans_torch, "keras": _plans_keras, "tf": _plans_tf, "jax": _plans_jax,
             "onnx": _plans_onnx}


# ----------------------------------------------------------------------- kernel shapes


def _target_kernel_shape(plan: _Plan, g: Geometry) -> tuple[int, ...]:
    from tconv.ops import shape_only

    neutral = shape_only(g.neutral_kernel_shape)
    if plan.dilate:
        neutral = shape_only(tuple(ax.dilated_kernel for ax in g.axes) + neutral.shape[-2:])
    groups = g.groups
    if plan.expand:
        neutral = shape_only(neutral.shape[:-2] + (neutral.shape[-2] * groups, neutral.shape[-1]))
        groups = 1
    return _weights.from_neutral(neutral, plan.kernel_format, transposed=g.transposed, groups=groups).shape


def _target_input_shape(plan: _Plan, g: Geometry, batch: int, spatial=None) -> tuple[int, ...]:
    spatial = tuple(spatial if spatial is not None else g.input_spatial)
    if plan.pre:
        spatial = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, plan.pre))
    sizes = dict(zip(SPATIAL[g.rank], spatial))
    return tuple(batch if c == "N" else g.input_channels if c == "C" else sizes[c] for c in plan.data_layout)


def _layer_out_spatial(plan: _Plan, g: Geometry):
    """TensorFlow's output_shape: the wanted size, plus what the post step crops."""
    if not g.transposed:
        return None
    post = plan.post or ((0, 0),) * g.rank
    return tuple(ax.size + lo + hi for ax, (lo, hi) in zip(g.axes, post))


def _check(plan: _Plan, g: Geometry, batch: int = 1) -> bool:
    got = _record(plan, _target_input_shape(plan, g, batch), _target_kernel_shape(plan, g),
                  _layer_out_spatial(plan, g))
    return _equivalent(g, got, plan)


# ------------------------------------------------------------------------- validity


#: how far around the planned length the validity check looks, at most (two periods of the
#: stride, capped: a stride of 10^6 must not mean four million trial plans)
_TEST_REACH = 24


def _test_lengths(n: int, stride: int) -> list[int]:
    reach = min(2 * stride, _TEST_REACH)
    return sorted(set(range(1, 13)) | set(range(max(1, n - reach), n + reach + 1)))


def _validity(plan: _Plan, spec: LayerSpec, shape: tuple[int, ...], layout: str, g: Geometry):
    """Per spatial axis: ``(checked, exact)`` lengths when that axis' input length varies."""
    result = []
    spatial_axes = [i for i, c in enumerate(layout) if c not in "NC"]
    for i, (axis_index, ax) in enumerate(zip(spatial_axes, g.axes)):
        checked, exact = [], []
        for n in _test_lengths(g.input_spatial[i], ax.stride):
            trial = list(shape)
            trial[axis_index] = n
            try:
                want = spec.resolve(tuple(trial)).geometry
            except TconvError:
                continue
            checked.append(n)
            try:
                got = _record(plan, _target_input_shape(plan, want, shape[0]), _target_kernel_shape(plan, want),
                              _layer_out_spatial(plan, want))
            except TconvError:
                got = None
            if _equivalent(want, got, plan):
                exact.append(n)
        result.append((tuple(checked), tuple(exact)))
    return tuple(result)


def _describe_lengths(checked, exact) -> str:
    if not checked:
        return "no other length checked"
    if set(exact) == set(checked):
        return f"every input length (checked {min(checked)}..{max(checked)})"
    if not exact:
        return "only the planned input length"
    for m in range(2, 9):
        residues = {n % m for n in exact}
        if all((n % m in residues) == (n in exact) for n in checked):
            rs = ", ".join(str(r) for r in sorted(residues))
            return f"input lengths n with n % {m} in {{{rs}}} (checked {min(checked)}..{max(checked)})"
    lo = min(exact)
    if all((n >= lo) == (n in exact) for n in checked):
        return f"input lengths n >= {lo} (checked up to {max(checked)})"
    return f"input lengths {', '.join(map(str, exact))} (of {min(checked)}..{max(checked)} checked)"


# ------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class Translation:
    """An exact translation of ``source`` into framework ``target`` (see :func:`translate`).

    ``spec`` is the target layer or call (a :class:`~tconv.spec.LayerSpec`); ``pre`` and
    ``post`` the per-axis ``(lo, hi)`` zero-pad of the input (negative: crop) and crop of
    the output (negative: zero extension) around it, ``None`` where not needed.
    """

    source: LayerSpec
    target: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    spec: LayerSpec
    pre: tuple | None
    post: tuple | None
    bias_after: bool
    source_layout: str
    target_layout: str
    source_kernel_format: _weights.KernelFormat
    target_kernel_format: _weights.KernelFormat
    kernel_shape: tuple[int, ...]
    notes: tuple[str, ...]
    validity: tuple[str, ...]
    alternatives: tuple[str, ...]
    geometry: Geometry
    bias: bool
    _plan: _Plan = field(repr=False, compare=False)

    # ...................................................................... facts

    @property
    def single_call(self) -> bool:
        """True where the target call alone is exact (no pad, crop or moved bias)."""
        return self._plan.single

    @property
    def transposed(self) -> bool:
        return self.geometry.transposed

    @property
    def exact_for_all_lengths(self) -> bool:
        return all(v.startswith("every") for v in self.validity)

    @property
    def steps(self) -> tuple[str, ...]:
        """The composite, in order, in words."""
        names = _axis_names(self.geometry.rank)
        out = []
        if self.pre:
            out.append("input: " + _pairs_words(self.pre, names, crop=False))
        out.append(repr(self.spec))
        if self.post:
            out.append("output: " + _pairs_words(self.post, names, crop=True))
        if self.bias and (self.bias_after or not self._plan.layer_bias):
            out.append("add the bias per output channel")
        return tuple(out)

    # ..................................................................... weights

    def convert_kernel(self, kernel) -> np.ndarray:
        """``kernel`` in the source framework's layout -> the target call's kernel."""
        g = self.geometry
        neutral = _weights.to_neutral(kernel, self.source_kernel_format, transposed=g.transposed, groups=g.groups)
        groups = g.groups
        if self._plan.dilate:
            neutral = _weights.dilate_kernel(neutral, self._plan.dilate)
        if self._plan.expand:
            neutral = _weights.expand_groups(neutral, groups)
            groups = 1
        return _weights.from_neutral(neutral, self.target_kernel_format, transposed=g.transposed, groups=groups)

    def convert_bias(self, bias):
        return _weights.convert_bias(bias)

    def convert_input(self, x) -> np.ndarray:
        """An input in the source layout (batched) -> the target layout."""
        return np.ascontiguousarray(np.asarray(x).transpose(permutation(self.source_layout, self.target_layout)))

    def convert_output(self, y) -> np.ndarray:
        """An output in the target layout -> the source layout."""
        return np.ascontiguousarray(np.asarray(y).transpose(permutation(self.target_layout, self.source_layout)))

    def run(self, x, kernel, bias=None) -> np.ndarray:
        """The translation in tconv's target dialect: ``x`` in the target layout (batched),
        ``kernel`` already converted (:meth:`convert_kernel`)."""
        plan, g = self._plan, self.geometry
        x = _pad_crop(np.asarray(x), plan.data_layout, plan.pre, crop=False)
        out_spatial = None
        if g.transposed:
            post = plan.post or ((0, 0),) * g.rank
            out_spatial = tuple(n + lo + hi for n, (lo, hi) in zip(self.geometry.output_spatial, post))
        y = _call(plan, x, kernel, bias, out_spatial)
        y = _pad_crop(y, plan.data_layout, plan.post, crop=True)
        if not plan.layer_bias:
            y = _add_bias(y, plan.data_layout, bias)
        return y

    # ..................................................................... renderings

    @property
    def code(self) -> str:
        """Runnable source for the target framework.

        Executed with ``kernel`` and ``bias`` (NumPy arrays in the *source* framework's
        layout; ``bias`` may be None) bound, it defines ``layer``: a callable of the target
        framework taking its own tensors in its default data format (batched).
        """
        return _emit(self)

    def why(self) -> tuple[str, ...]:
        return self.notes

    def __str__(self) -> str:
        lines = [f"{self.source!r}  on input {self.input_shape} -> {self.output_shape}",
                 f"in {_NAMES[self.target]}: " + ("a single call, exact" if self.single_call
                                                  else "an exact composite")]
        lines += [f"  {i + 1}. {step}" for i, step in enumerate(self.steps)]
        lines.append(f"weights: kernel {self.source_kernel_format.layout} -> {self.target_kernel_format.layout} "
                     f"{self.kernel_shape}" + (", spatially flipped" if self.source_kernel_format.flipped
                                               != self.target_kernel_format.flipped else ""))
        names = _axis_names(self.geometry.rank)
        lines.append("exact for:")
        lines += [f"  {name}: {v}" for name, v in zip(names, self.validity)]
        if self.notes:
            lines.append("why:")
            lines += [f"  - {n}" for n in self.notes]
        if self.alternatives:
            lines.append("also exact:")
            lines += [f"  - {a}" for a in self.alternatives]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"source": repr(self.source), "target": self.target, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape), "spec": repr(self.spec),
                "single_call": self.single_call,
                "pre": None if self.pre is None else [list(p) for p in self.pre],
                "post": None if self.post is None else [list(p) for p in self.post],
                "bias_after": self.bias_after, "steps": list(self.steps),
                "source_layout": self.source_layout, "target_layout": self.target_layout,
                "source_kernel_layout": self.source_kernel_format.layout,
                "target_kernel_layout": self.target_kernel_format.layout,
                "kernel_shape": list(self.kernel_shape), "kernel_flipped":
                    self.source_kernel_format.flipped != self.target_kernel_format.flipped,
                "groups_expanded": self._plan.expand, "kernel_dilated": self._plan.dilate is not None,
                "validity": list(self.validity), "notes": list(self.notes),
                "alternatives": list(self.alternatives)}


def _axis_names(rank: int):
    return {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}[rank]


def _pairs_words(pairs, names, *, crop: bool) -> str:
    parts = []
    for name, (lo, hi) in zip(names, pairs):
        if (lo, hi) == (0, 0):
            continue
        words = []
        for v, where in ((lo, "start"), (hi, "end")):
            if v == 0:
                continue
            cut = (v > 0) == crop
            words.append(f"{'crop' if cut else 'zero-pad'} {abs(v)} at the {where}")
        parts.append(f"{name} " + " and ".join(words))
    return "; ".join(parts)


# ------------------------------------------------------------------------ translate


#: translate's search runs over every output size within one stride (some targets over pairs
#: of them); beyond this stride it refuses rather than run for minutes
MAX_SEARCH_STRIDE = 256


def translate(spec_or_text, to: str, input_shape=None) -> Translation:
    """The exact equivalent of ``spec_or_text`` in framework ``to``, on ``input_shape``.

    Parameters
    ----------
    spec_or_text : LayerSpec or str
        The source layer, as its framework writes it.
    to : 'keras', 'tf', 'torch', 'jax' or 'onnx'
    input_shape : the source's input shape in its own data format (batch optional; a
        missing batch axis is taken as 1). May be omitted where the spec writes it.

    Raises
    ------
    TconvError
        The source framework refuses the layer, or no exact translation exists.
    """
    spec = parse(spec_or_text) if isinstance(spec_or_text, str) else spec_or_text
    if not isinstance(spec, LayerSpec):
        raise TconvError("spec", spec_or_text, "must be a LayerSpec or its text")
    if to not in DIALECTS:
        raise TconvError("to", to, f"must be one of {', '.join(DIALECTS)}")
    if input_shape is None:
        input_shape = next((spec.get(n) for n in ("input", "lhs", "X") if spec.get(n) is not None), None)
        if input_shape is None:
            raise TconvError("input_shape", None, f"is needed to translate {spec!r}")
    r, shape = _with_batch(spec, shape_tuple(input_shape))
    g = r.geometry
    if any(ax.stride > MAX_SEARCH_STRIDE for ax in g.axes):
        raise TconvError("stride", tuple(ax.stride for ax in g.axes),
                         f"is larger than translate searches: it tries the target's arguments for every "
                         f"output size within one stride (quadratic in it), up to stride {MAX_SEARCH_STRIDE}",
                         context=f"translate({spec!r}, to={to!r})")
    has_bias = bool(r.bias)
    plans = _BUILDERS[to](g, has_bias)
    exact = [p for p in plans if _check(p, g)]
    if not exact:
        raise TconvError("to", to, f"tconv found no exact translation of {spec!r} on {shape} "
                         f"(candidates: {'; '.join(p.text for p in plans) or 'none'})")
    layout = _source_layout(r)
    singles = [p for p in exact if p.single]
    ranked = []
    for p in (singles or exact)[:4]:
        v = _validity(p, spec, shape, layout, g)
        ranked.append((p, v))
        if all(set(c) == set(e) for c, e in v):
            break
    everywhere = [(p, v) for p, v in ranked if all(set(c) == set(e) for c, e in v)]
    plan, valid = (everywhere or sorted(ranked, key=lambda pv: -sum(len(e) for _, e in pv[1])))[0]
    alternatives = []
    if not all(set(c) == set(e) for c, e in valid):
        for p in exact:
            if any(p is q for q, _ in ranked):
                continue
            v = _validity(p, spec, shape, layout, g)
            if all(set(c) == set(e) for c, e in v):
                alternatives.append(f"{_plan_words(p, g)}  (exact for every input length)")
                break
    target_spec = parse(plan.text)
    notes = list(plan.notes) + _why(spec, g, to, plan)
    t = Translation(
        source=spec, target=to, input_shape=shape, output_shape=r.output_shape, spec=target_spec,
        pre=plan.pre, post=plan.post, bias_after=plan.bias_after, source_layout=layout,
        target_layout=plan.data_layout, source_kernel_format=_source_format(r),
        target_kernel_format=plan.kernel_format, kernel_shape=_target_kernel_shape(plan, g),
        notes=tuple(notes), validity=tuple(_describe_lengths(c, e) for c, e in valid),
        alternatives=tuple(alternatives), geometry=g, bias=has_bias, _plan=plan)
    return t


def _plan_words(plan: _Plan, g: Geometry) -> str:
    names = _axis_names(g.rank)
    parts = []
    if plan.pre:
        parts.append("input " + _pairs_words(plan.pre, names, crop=False))
    parts.append(plan.text)
    if plan.post:
        parts.append("output " + _pairs_words(plan.post, names, crop=True))
    return " -> ".join(parts)


def _why(spec: LayerSpec, g: Geometry, to: str, plan: _Plan) -> list[str]:
    """Why the obvious single-call reading is (or is not) exact: the crops, in words."""
    notes = []
    if g.transposed:
        crops = [(ax.crop_lo, ax.crop_hi) for ax in g.axes]
        notes.append("the source crops its full scatter by " + ", ".join(f"({lo}, {hi})" for lo, hi in crops)
                     + " (start, end) per axis")
        if to == "torch" and not plan.single:
            per_axis = []
            for ax, name in zip(g.axes, _axis_names(g.rank)):
                if torch_args_for_crops(ax.crop_lo, ax.crop_hi, ax.stride, ax.dilation) is not None:
                    continue
                p, op = symmetric_reading(ax.crop_lo, ax.crop_hi)
                if p >= 0 and 0 <= op < max(ax.stride, ax.dilation):
                    per_axis.append(
                        f"{name}: padding={p}, output_padding={op} gives the same length ({ax.size}) but crops "
                        f"({p}, {p - op}): PyTorch cuts `padding` cells from the start and only gives "
                        f"`output_padding` back at the end, so its output is the source's shifted by "
                        f"{p - ax.crop_lo} cell(s) -- same shape, different values")
                else:
                    per_axis.append(f"{name}: PyTorch crops (padding, padding - output_padding) with "
                                 f"0 <= output_padding < max(stride, dilation); ({ax.crop_lo}, {ax.crop_hi}) "
                                 "is not of that form")
            names = _axis_names(g.rank)
            if len(per_axis) == len(names) and len({line.split(": ", 1)[1] for line in per_axis}) == 1:
                per_axis = ["each axis: " + per_axis[0].split(": ", 1)[1]]
            notes += per_axis
            notes.append("PyTorch crops at least as much at the start as at the end (output_padding only "
                         "gives cells back at the end); where the source crops more at the end, the exact "
                         "equivalent crops less in the layer and slices the rest off its output")
        if plan.post and to != "torch":
            layer_crops = ", ".join(f"({ax.crop_lo - lo}, {ax.crop_hi - hi})" for ax, (lo, hi) in zip(g.axes, plan.post))
            notes.append(f"no single {_NAMES[to]} call crops exactly that; the layer crops {layer_crops} and the "
                         "rest is cut from (or zero-padded onto) its output")
        if plan.bias_after:
            notes.append("the output is zero-extended after the layer, so the bias is added after that: the "
                         "source adds it on the extended cells too")
    elif plan.pre:
        notes.append("the source pads its input by " + ", ".join(f"({ax.pad_lo}, {ax.pad_hi})" for ax in g.axes)
                     + f"; {_NAMES[to]}'s padding argument cannot express that here, so the input is "
                     "padded (or cropped) explicitly first")
    return notes


def equivalents(spec_or_text, input_shape) -> list[str]:
    """One line per other framework: its exact equivalent (for :mod:`tconv.explain`)."""
    spec = parse(spec_or_text) if isinstance(spec_or_text, str) else spec_or_text
    lines = []
    for to in DIALECTS:
        if to == spec.framework:
            continue
        try:
            t = translate(spec, to, input_shape)
        except TconvError as exc:
            lines.append(f"{_NAMES[to]}: none found ({exc})")
            continue
        kind = "" if t.single_call else "  [composite]"
        lines.append(f"{_NAMES[to]}: {' -> '.join(t.steps)}{kind}")
    return lines


# ------------------------------------------------------------------------- code emission

_HELPERS = {
    "regroup": '''
def _regroup(w, full_axis, group_axis, groups):
    # move the group split from full_axis to group_axis: (X, Y/g) -> (X/g, Y)
    a = np.moveaxis(w, (full_axis, group_axis), (-2, -1))
    x, y = a.shape[-2:]
    a = a.reshape(a.shape[:-2] + (groups, x // groups, y))
    a = np.moveaxis(a, -3, -2).reshape(a.shape[:-3] + (x // groups, groups * y))
    return np.moveaxis(a, (-2, -1), (full_axis, group_axis))
''',
    "dilate": '''
def _dilate(w, dilation):
    # the dilated kernel written out, zeros between taps (neutral layout: spatial axes first)
    rank = len(dilation)
    span = tuple(d * (k - 1) + 1 for d, k in zip(dilation, w.shape[:rank]))
    out = np.zeros(span + w.shape[rank:], w.dtype)
    out[tuple(slice(None, None, d) for d in dilation)] = w
    return out
''',
    "expand": '''
def _expand_groups(w, groups):
    # grouped (*k, in/g, out) -> dense block-diagonal (*k, in, out): zeros between the groups
    ig, o = w.shape[-2:]
    og = o // groups
    dense = np.zeros(w.shape[:-2] + (ig * groups, o), w.dtype)
    for g in range(groups):
        dense[..., g * ig:(g + 1) * ig, g * og:(g + 1) * og] = w[..., g * og:(g + 1) * og]
    return dense
''',
}


def _layout_perm(fmt: _weights.KernelFormat, neutral: str, to_neutral: bool) -> tuple[int, ...]:
    spatial = [c for c in fmt.layout if c not in "IO"]
    rename = dict(zip(spatial, SPATIAL[fmt.rank]))
    src = "".join(rename.get(c, c) for c in fmt.layout)
    if to_neutral:
        return tuple(src.index(c) for c in neutral)
    return tuple(neutral.index(c) for c in src)


def _kernel_code(t: Translation) -> tuple[list[str], set[str]]:
    """NumPy lines turning ``kernel`` (source layout) into ``w`` (target layout)."""
    g, plan = t.geometry, t._plan
    rank = g.rank
    neutral = SPATIAL[rank] + ("OI" if g.transposed else "IO")
    neutral_group = "O" if g.transposed else "I"
    src, dst = t.source_kernel_format, t.target_kernel_format
    lines, helpers = [f"w = np.asarray(kernel)  # {t.source.framework} kernel, {src.layout}"], set()
    perm = _layout_perm(src, neutral, True)
    if perm != tuple(range(rank + 2)):
        lines.append(f"w = w.transpose({perm})  # {src.layout} -> {neutral} (tconv's neutral layout)")
    if src.per_group != neutral_group and g.groups > 1:
        helpers.add("regroup")
        lines.append(f"w = _regroup(w, {neutral.index(neutral_group)}, {neutral.index(src.per_group)}, "
                     f"{g.groups})")
    if src.flipped:
        lines.append(f"w = np.flip(w, {tuple(range(rank))})  # the source's kernel is spatially flipped")
    groups = g.groups
    if plan.dilate:
        helpers.add("dilate")
        lines.append(f"w = _dilate(w, {plan.dilate})")
    if plan.expand:
        helpers.add("expand")
        lines.append(f"w = _expand_groups(w, {groups})")
        groups = 1
    if dst.flipped:
        lines.append(f"w = np.flip(w, {tuple(range(rank))})  # the target correlates with the flipped kernel")
    if dst.per_group != neutral_group and groups > 1:
        helpers.add("regroup")
        lines.append(f"w = _regroup(w, {neutral.index(dst.per_group)}, {neutral.index(neutral_group)}, {groups})")
    perm = _layout_perm(dst, neutral, False)
    if perm != tuple(range(rank + 2)):
        lines.append(f"w = w.transpose({perm})  # {neutral} -> {dst.layout} ({t.target})")
    lines.append("w = np.array(w, dtype=np.float32, order=\"C\")  # a fresh copy, positive strides")
    lines.append("b = None if bias is None else np.asarray(bias, dtype=np.float32)")
    return lines, helpers


def _header(t: Translation, imports: list[str]) -> list[str]:
    lines = [f"# {t.source!r} on input {t.input_shape}, translated to {_NAMES[t.target]} by tconv:"]
    lines += [f"#   {i + 1}. {step}" for i, step in enumerate(t.steps)]
    lines += [f"# exact for ({name}): {v}" for name, v in zip(_axis_names(t.geometry.rank), t.validity)]
    lines.append(f"# input layout {t.target_layout} (batched); kernel and bias come in the source's layout")
    lines += imports
    body, helpers = _kernel_code(t)
    for name in sorted(helpers):
        lines += _HELPERS[name].rstrip().split("\n")
    lines.append("")
    return lines + body


def _spatial_slices(layout: str, pairs, var: str) -> str:
    """``var[..]`` cropping non-negative ``pairs`` on ``layout``'s spatial axes."""
    parts = []
    spatial = iter(pairs)
    for c in layout:
        if c in "NC":
            parts.append(":")
        else:
            lo, hi = next(spatial)
            parts.append(f"{lo or ''}:{-hi if hi else ''}")
    return f"{var}[{', '.join(parts)}]"


def _split_signs(pairs, *, crop: bool):
    """``(crops, pads)``: each ``(lo, hi)`` pair's crop part and zero-pad part (non-negative)."""
    sign = 1 if crop else -1
    crops = tuple((max(sign * lo, 0), max(sign * hi, 0)) for lo, hi in pairs)
    pads = tuple((max(-sign * lo, 0), max(-sign * hi, 0)) for lo, hi in pairs)
    return (crops if any(c != (0, 0) for c in crops) else None,
            pads if any(p != (0, 0) for p in pads) else None)


def _emit(t: Translation) -> str:
    return {"torch": _emit_torch, "keras": _emit_keras, "tf": _emit_tf, "jax": _emit_jax,
            "onnx": _emit_onnx}[t.target](t)


def _kwargs_text(kw: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kw.items())


def _emit_torch(t: Translation) -> str:
    plan, g = t._plan, t.geometry
    lines = _header(t, ["import numpy as np", "import torch", "import torch.nn.functional as F"])
    cls = f"ConvTranspose{g.rank}d" if g.transposed else f"Conv{g.rank}d"
    kw = {k: v for k, v in plan.kwargs.items()}
    kernel = _uniform(t.kernel_shape[2:])
    layer_bias = "b is not None" if plan.layer_bias else "False"
    lines += ["", "", "class Translated(torch.nn.Module):",
              f'    """{t.source!r} in PyTorch, exactly."""', "",
              "    def __init__(self):", "        super().__init__()",
              f"        self.conv = torch.nn.{cls}({g.input_channels}, {g.output_channels}, {kernel!r}, "
              f"{_kwargs_text(kw)}, bias={layer_bias})",
              "        with torch.no_grad():",
              "            self.conv.weight.copy_(torch.from_numpy(w))",
              "            if self.conv.bias is not None:",
              "                self.conv.bias.copy_(torch.from_numpy(b))"]
    if not plan.layer_bias:
        lines.append("        self.register_buffer('extra_bias', None if b is None else torch.from_numpy(b))")
    lines += ["", "    def forward(self, x):"]
    if plan.pre:
        flat = [v for lo, hi in reversed(plan.pre) for v in (lo, hi)]
        lines.append(f"        x = F.pad(x, {flat})  # (last axis first; negative crops)")
    lines.append("        y = self.conv(x)")
    if plan.post:
        crops, pads = _split_signs(plan.post, crop=True)
        if crops:
            lines.append(f"        y = {_spatial_slices(t.target_layout, crops, 'y')}")
        if pads:
            flat = [v for lo, hi in reversed(pads) for v in (lo, hi)]
            lines.append(f"        y = F.pad(y, {flat})  # zero extension")
    if not plan.layer_bias:
        shape = [1, -1] + [1] * g.rank
        lines += ["        if self.extra_bias is not None:",
                  f"            y = y + self.extra_bias.view({shape})"]
    lines += ["        return y", "", "", "layer = Translated()", ""]
    return "\n".join(lines)


def _emit_keras(t: Translation) -> str:
    plan, g = t._plan, t.geometry
    r = g.rank
    lines = _header(t, ["import numpy as np", "import keras"])
    kw = dict(plan.kwargs)
    layer_bias = "b is not None" if plan.layer_bias else "False"
    spatial_in = tuple(None for _ in range(r))
    lines += ["", "", "def _build():",
              f"    inputs = keras.Input(shape={spatial_in + (g.input_channels,)!r})", "    x = inputs"]

    def pad_crop(pairs, var, crop):
        out = []
        crops, pads = _split_signs(pairs, crop=crop)
        for kind, amounts in (("Cropping", crops), ("ZeroPadding", pads)):
            if amounts:
                arg = amounts[0] if r == 1 else tuple(amounts)
                out.append(f"    {var} = keras.layers.{kind}{r}D({arg!r})({var})")
        return out

    if plan.pre:
        lines += pad_crop(plan.pre, "x", False)
    lines.append(f"    conv = keras.layers.{plan.fn}({_kwargs_text(kw)}, use_bias={layer_bias})")
    lines.append("    y = conv(x)")
    if plan.post:
        lines += pad_crop(plan.post, "y", True)
    if not plan.layer_bias:
        lines += ["    if b is not None:", "        y = keras.layers.Lambda(lambda t: t + b)(y)  # bias on every cell"]
    lines += ["    model = keras.Model(inputs, y)",
              "    conv.set_weights([w] + ([b] if conv.use_bias else []))",
              "    return model", "", "", "layer = _build()", ""]
    return "\n".join(lines)


def _emit_tf(t: Translation) -> str:
    plan, g = t._plan, t.geometry
    r = g.rank
    lines = _header(t, ["import numpy as np", "import tensorflow as tf"])
    kw = {k: v for k, v in plan.kwargs.items()}
    lines += ["", "filters = tf.constant(w)", "bias_t = None if b is None else tf.constant(b)", "", "",
              "def layer(x):", "    x = tf.convert_to_tensor(x)"]
    if plan.pre:
        crops, pads = _split_signs(plan.pre, crop=False)
        if crops:
            lines.append(f"    x = {_spatial_slices(t.target_layout, crops, 'x')}")
        if pads:
            lines.append(f"    x = tf.pad(x, {[[0, 0]] + [list(p) for p in pads] + [[0, 0]]})")
    if g.transposed:
        post = plan.post or ((0, 0),) * r
        out_spatial = [n + lo + hi for n, (lo, hi) in zip(g.output_spatial, post)]
        lines.append(f"    # output_shape as planned for input {t.geometry.input_spatial}")
        lines.append(f"    output_shape = tf.stack([tf.shape(x)[0], *{out_spatial!r}, {g.output_channels}])")
        lines.append(f"    y = tf.nn.{plan.fn}(x, filters, output_shape, {_kwargs_text(kw)})")
    else:
        lines.append(f"    y = tf.nn.{plan.fn}(x, filters, {_kwargs_text(kw)})")
    if plan.post:
        crops, pads = _split_signs(plan.post, crop=True)
        if crops:
            lines.append(f"    y = {_spatial_slices(t.target_layout, crops, 'y')}")
        if pads:
            lines.append(f"    y = tf.pad(y, {[[0, 0]] + [list(p) for p in pads] + [[0, 0]]})")
    lines += ["    if bias_t is not None:", "        y = tf.nn.bias_add(y, bias_t)", "    return y", ""]
    return "\n".join(lines)


def _emit_jax(t: Translation) -> str:
    plan = t._plan
    lines = _header(t, ["import numpy as np", "import jax.numpy as jnp", "from jax import lax"])
    kw = {k: v for k, v in plan.kwargs.items()}
    lines += ["", "rhs = jnp.asarray(w)", "", "", "def layer(x):"]
    if plan.pre:
        crops, pads = _split_signs(plan.pre, crop=False)
        if crops:
            lines.append(f"    x = {_spatial_slices(t.target_layout, crops, 'x')}")
        if pads:
            full = [[0, 0] if c in "NC" else None for c in t.target_layout]
            it = iter(pads)
            full = [p if p is not None else list(next(it)) for p in full]
            lines.append(f"    x = jnp.pad(x, {full})")
    lines.append(f"    y = lax.{plan.fn}(x, rhs, {_kwargs_text(kw)})")
    if plan.post:
        crops, pads = _split_signs(plan.post, crop=True)
        if crops:
            lines.append(f"    y = {_spatial_slices(t.target_layout, crops, 'y')}")
        if pads:
            full = [[0, 0] if c in "NC" else None for c in t.target_layout]
            it = iter(pads)
            full = [p if p is not None else list(next(it)) for p in full]
            lines.append(f"    y = jnp.pad(y, {full})")
    shape = [1 if c != "C" else -1 for c in t.target_layout]
    lines += ["    if b is not None:", f"        y = y + jnp.asarray(b).reshape({shape})", "    return y", ""]
    return "\n".join(lines)


def _emit_onnx(t: Translation) -> str:
    plan, g = t._plan, t.geometry
    r = g.rank
    lines = _header(t, ["import numpy as np", "import onnxruntime as ort",
                        "from onnx import TensorProto, helper, numpy_helper"])
    op = "ConvTranspose" if g.transposed else "Conv"
    attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in plan.kwargs.items()}
    lines += ["", "nodes, inits = [], [numpy_helper.from_array(w, 'W')]", "current = 'X'"]

    def pad_node(pairs, sign, name):
        pads = [0, 0] + [sign * lo for lo, _ in pairs] + [0, 0] + [sign * hi for _, hi in pairs]
        return [f"inits.append(numpy_helper.from_array(np.array({pads}, np.int64), '{name}_pads'))",
                f"nodes.append(helper.make_node('Pad', [current, '{name}_pads'], ['{name}'], mode='constant'))"
                "  # negative pads crop",
                f"current = '{name}'"]

    if plan.pre:
        lines += pad_node(plan.pre, 1, "X_padded")
    if plan.layer_bias:
        lines += ["inputs = [current, 'W']", "if b is not None:",
                  "    inits.append(numpy_helper.from_array(b, 'B'))", "    inputs.append('B')"]
    else:
        lines += ["inputs = [current, 'W']"]
    lines += [f"nodes.append(helper.make_node('{op}', inputs, ['conv'], {_kwargs_text(attrs)}))",
              "current = 'conv'"]
    if plan.post:
        lines += pad_node(plan.post, -1, "cropped")
    if not plan.layer_bias:
        shape = [1, -1] + [1] * r
        lines += ["if b is not None:",
                  f"    inits.append(numpy_helper.from_array(b.reshape({shape}), 'B_cells'))",
                  "    nodes.append(helper.make_node('Add', [current, 'B_cells'], ['biased']))",
                  "    current = 'biased'"]
    lines += ["nodes.append(helper.make_node('Identity', [current], ['Y']))",
              f"x_info = helper.make_tensor_value_info('X', TensorProto.FLOAT, "
              f"[None, {g.input_channels}{', None' * r}])",
              "y_info = helper.make_tensor_value_info('Y', TensorProto.FLOAT, None)",
              "model = helper.make_model(helper.make_graph(nodes, 'tconv_translation', [x_info], [y_info], "
              "initializer=inits), opset_imports=[helper.make_opsetid('', 22)])",
              "model.ir_version = 10",
              "session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])",
              "", "",
              "def layer(x):",
              "    return session.run(None, {'X': np.asarray(x, np.float32)})[0]", ""]
    return "\n".join(lines)
