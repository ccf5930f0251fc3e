"""The inverse question: which settings turn ``input`` cells into ``output`` cells?

:func:`solve` lists, per framework, the transposed-convolution settings that map an
input length to a desired output length (for given or small kernels and strides),
each with its crop pair. Settings with the same kernel, stride and crops compute
the same values, not only the same shape; those equal to Keras ``padding='same'``
are marked.

>>> rows = solve(8, 16, kernel=3, stride=2)
>>> print(rows[0])
keras  keras.Conv1DTranspose(1, 3, strides=2, padding='same')   crops (0, 1)  = Keras 'same' values
>>> [r.call for r in rows if r.framework == "torch"]
['torch.nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1, output_padding=1)', 'torch.nn.ConvTranspose1d(1, 1, 3, stride=2, padding=0, output_padding=0)  then [..., 0:16]']
"""

from __future__ import annotations

from dataclasses import dataclass

from tconv.errors import TconvError
from tconv.geometry import (AxisGeometry, full_length, jax_pads_for_crops, jax_transpose_pads,
                            keras_transpose_crops, keras_transpose_length, lhs_dilated_axis,
                            onnx_transpose_crops, tf_transpose_crops, torch_args_for_crops,
                            torch_transpose_crops)
from tconv.spec import parse

__all__ = ["Setting", "solve"]


@dataclass(frozen=True)
class Setting:
    """One way to get the output: ``call`` is a 1-D text spec (apply it per axis)."""

    framework: str
    call: str
    kernel: int
    stride: int
    crop_lo: int
    crop_hi: int
    same_as_keras_same: bool

    def __str__(self) -> str:
        mark = "  = Keras 'same' values" if self.same_as_keras_same else ""
        return f"{self.framework:6} {self.call}   crops ({self.crop_lo}, {self.crop_hi}){mark}"


def solve(input: int, output: int, kernel: int | None = None, stride: int | None = None,
          dilation: int = 1) -> list[Setting]:
    """Settings of each framework mapping ``input`` to ``output`` cells by a transposed convolution.

    Without ``kernel``/``stride`` it tries kernels 1..5 and strides 1..4. Each
    setting's crops come from :mod:`tconv.geometry`, the functions the dialects use.
    """
    for name, value in (("input", input), ("output", output), ("dilation", dilation)):
        if not isinstance(value, int) or value < 1:
            raise TconvError(name, value, "must be a positive integer")
    kernels = [kernel] if kernel is not None else range(1, 6)
    strides = [stride] if stride is not None else range(1, 5)
    found: list[Setting] = []
    for k in kernels:
        for s in strides:
            found += _one(input, output, k, s, dilation)
    return found


def _one(n: int, o: int, k: int, s: int, d: int) -> list[Setting]:
    full = full_length(n, k, s, d)
    rows: list[tuple[str, str, tuple[int, int]]] = []
    dil = "" if d == 1 else f", dilation_rate={d}"
    reference = None
    if keras_transpose_length(n, k, s, d, "same", None) == o:
        reference = keras_transpose_crops(n, k, s, d, "same", None)
    if not (s > 1 and d > 1):  # Keras layers refuse strides > 1 with dilation_rate > 1
        for padding in ("same", "valid"):
            for op in (None,) + tuple(range(s)):
                if keras_transpose_length(n, k, s, d, padding, op) == o:
                    extra = "" if op is None else f", output_padding={op}"
                    rows.append(("keras", f"keras.Conv1DTranspose(1, {k}, strides={s}, padding='{padding}'{extra}{dil})",
                                 keras_transpose_crops(n, k, s, d, padding, op)))
    for padding in ("SAME", "VALID"):
        try:
            crops = tf_transpose_crops(n, k, s, d, o, padding)
        except TconvError:
            continue
        rows.append(("tf", f"tf.nn.conv1d_transpose(filters=({k}, 1, 1), output_shape=(1, {o}, 1), strides={s}, "
                           f"padding='{padding}'{'' if d == 1 else f', dilations={d}'})", crops))
    tdil = "" if d == 1 else f", dilation={d}"
    for p in range(0, full):
        for op in range(max(s, d)):
            crops = torch_transpose_crops(p, op)
            if full - sum(crops) == o:
                rows.append(("torch", f"torch.nn.ConvTranspose1d(1, 1, {k}, stride={s}, padding={p}, "
                                      f"output_padding={op}{tdil})", crops))
    if reference is not None and torch_args_for_crops(*reference, s, d) is None:
        rows.append(("torch", f"torch.nn.ConvTranspose1d(1, 1, {k}, stride={s}, padding=0, output_padding=0{tdil})"
                              f"  then [..., {reference[0]}:{full - reference[1]}]", reference))
    jdil = "" if d == 1 else f", rhs_dilation=({d},)"
    seen_jax = set()
    for padding in ("SAME", "VALID"):
        ax = lhs_dilated_axis(n, k, s, d, *jax_transpose_pads(n, k, s, d, padding))
        if ax.size == o:
            seen_jax.add((ax.crop_lo, ax.crop_hi))
            rows.append(("jax", f"jax.lax.conv_transpose(rhs=({k}, 1, 1), strides=({s},), padding='{padding}'"
                                f"{jdil}, transpose_kernel=True)", (ax.crop_lo, ax.crop_hi)))
    for crops in sorted({c for _, _, c in rows}):
        if crops not in seen_jax:
            pads = jax_pads_for_crops(k, d, *crops)
            rows.append(("jax", f"jax.lax.conv_transpose(rhs=({k}, 1, 1), strides=({s},), padding=({pads},)"
                                f"{jdil}, transpose_kernel=True)", crops))
    odil = "" if d == 1 else f", dilations=[{d}]"
    for auto in ("SAME_UPPER", "SAME_LOWER"):
        if n * s == o:
            try:
                crops = onnx_transpose_crops(n, k, s, d, auto, (0, 0), 0, None)
            except TconvError:
                continue
            rows.append(("onnx", f"onnx.ConvTranspose(W=(1, 1, {k}), strides=[{s}], auto_pad='{auto}'{odil})", crops))
    for lo in range(0, full):
        for op in range(max(s, d)):
            hi = full + op - o - lo
            if hi < 0:
                continue
            try:
                crops = onnx_transpose_crops(n, k, s, d, "NOTSET", (lo, hi), op, None)
            except TconvError:
                continue
            if crops in {c for _, _, c in rows}:
                rows.append(("onnx", f"onnx.ConvTranspose(W=(1, 1, {k}), strides=[{s}], pads=[{lo}, {hi}]"
                                     f"{'' if op == 0 else f', output_padding=[{op}]'}{odil})", crops))
    out = []
    for framework, call, (lo, hi) in rows:
        if full - lo - hi != o and "then" not in call:
            continue  # a rule whose length differs here (e.g. ONNX SAME_* when the scatter is short)
        # each row must be a spec tconv reads back with the same crops: the solver proves itself
        spec = parse(call.split("  then")[0])
        ax: AxisGeometry = spec.resolve(_probe_shape(spec, n)).geometry.axes[0]
        if call.endswith("]") and "then" in call:
            assert (ax.crop_lo, ax.crop_hi) == (0, 0) and ax.size == full
        else:
            assert (ax.crop_lo, ax.crop_hi, ax.size) == (lo, hi, o), (call, ax)
        out.append(Setting(framework, call, k, s, lo, hi, reference is not None and (lo, hi) == reference))
    return out


def _probe_shape(spec, n: int) -> tuple[int, ...]:
    return (1, n, 1) if spec.framework in ("keras", "tf", "jax") else (1, 1, n)
