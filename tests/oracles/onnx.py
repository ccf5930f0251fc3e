"""ONNX oracle: random ``Conv`` / ``ConvTranspose`` nodes run in onnxruntime, valid and invalid.

Each case becomes a one-node model (opset 22) run by onnxruntime's CPU provider.
Only float32: the CPU provider has no double kernels (DIVERGENCES['float64']), and
Conv SAME_* with dilation > 1 is not drawn (DIVERGENCES['same_dilated']); both are
pinned by hand in tests/test_dialect_onnx.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from oracles.harness import Case, channels_per_group
from tconv.dialects import onnx as dialect
from tconv.geometry import full_length

DIALECT = "onnx"
FRAMEWORK = "onnxruntime"
OPSET = 22

_FLAWS = ["channels", "groups", "pads_negative", "pads_with_auto_pad", "stride", "kernel_shape",
          "auto_pad", "output_shape_rank", "attribute", "output_padding", "bias", "pads_length"]


def random_case(rng: np.random.Generator) -> Case:
    rank = int(rng.integers(1, 4))
    transposed = bool(rng.random() < 0.6)
    flaw = str(rng.choice(_FLAWS)) if rng.random() < 0.25 else "none"
    group = int(rng.choice([1, 1, 2, 3]))
    cin = group * channels_per_group(rng)
    cout = group * channels_per_group(rng)
    kernel = tuple(int(v) for v in rng.integers(1, 5 if rank < 3 else 4, rank))
    spatial = tuple(int(v) for v in rng.integers(1, 8 if rank < 3 else 5, rank))
    strides = [int(v) for v in rng.choice([1, 1, 2, 2, 3, 5], rank)]
    dilations = [int(v) for v in rng.integers(1, 3, rank)]
    batch = int(rng.integers(1, 3))
    if not transposed and rng.random() < 0.85:  # mostly a kernel that fits the input
        spatial = tuple(max(n, min(7, d * (k - 1) + 1)) for n, k, d in zip(spatial, kernel, dilations))

    x = rng.standard_normal((batch, cin + (flaw == "channels")) + spatial).astype(np.float32)
    if transposed:
        w = rng.standard_normal((cin, cout // group) + kernel).astype(np.float32)
    else:
        w = rng.standard_normal((cout, cin // group) + kernel).astype(np.float32)
    attrs: dict = {}
    if rng.random() < 0.8 or flaw == "stride":
        attrs["strides"] = [0] + strides[1:] if flaw == "stride" else strides
    else:
        strides = [1] * rank
    if rng.random() < 0.7:
        attrs["dilations"] = dilations
    else:
        dilations = [1] * rank
    if group > 1 or flaw == "groups" or rng.random() < 0.2:
        attrs["group"] = group + (flaw == "groups")
    if rng.random() < 0.3 or flaw == "kernel_shape":
        attrs["kernel_shape"] = [k + (flaw == "kernel_shape") for k in kernel]

    auto_pad = str(rng.choice(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    if not transposed and auto_pad.startswith("SAME") and any(d > 1 for d in dilations):
        auto_pad = "NOTSET"  # onnxruntime's CPU Conv lacks it: DIVERGENCES['same_dilated']
    if auto_pad != "NOTSET" or rng.random() < 0.2:
        attrs["auto_pad"] = auto_pad
    if flaw == "auto_pad":
        attrs["auto_pad"] = "SAME"
    if (auto_pad == "NOTSET" and rng.random() < 0.6) or flaw == "pads_with_auto_pad":
        attrs["pads"] = [int(v) for v in rng.integers(0, 4, 2 * rank)]
    if flaw == "pads_negative":
        attrs["pads"] = [-1] * (2 * rank)
    if flaw == "pads_length":
        attrs["pads"] = [1] * rank
    if transposed:
        if rng.random() < 0.4:
            # onnxruntime refuses output_padding >= stride: draw that rarely
            attrs["output_padding"] = [int(rng.integers(0, max(s, d) if rng.random() < 0.1 else s))
                                       for s, d in zip(strides, dilations)]
        if flaw == "output_padding":
            attrs["output_padding"] = [max(s, d) for s, d in zip(strides, dilations)]
        if rng.random() < 0.3 or flaw == "output_shape_rank":
            fulls = [full_length(n, k, s, d) for n, k, s, d in zip(spatial, kernel, strides, dilations)]
            attrs["output_shape"] = [max(1, f + int(rng.integers(-3, s + (rng.random() < 0.2))))
                                     for f, s in zip(fulls, strides)]
            if flaw == "output_shape_rank":
                attrs["output_shape"] = [batch, cout] + attrs["output_shape"]
    elif flaw == "attribute":
        attrs["output_padding"] = [0] * rank
    arrays = {"X": x, "W": w}
    if rng.random() < 0.6 or flaw == "bias":
        arrays["B"] = rng.standard_normal(cout + (flaw == "bias")).astype(np.float32)
    return Case(DIALECT, "conv_transpose" if transposed else "conv", arrays, {k: v for k, v in attrs.items()})


def run_tconv(case: Case):
    return getattr(dialect, case.fn)(**case.arrays, **case.kwargs)


@lru_cache(maxsize=256)
def _session(op: str, names: tuple[str, ...], shapes: tuple[tuple[int, ...], ...], attrs_key: str):
    import json

    import onnxruntime as ort
    from onnx import TensorProto, helper

    attrs = json.loads(attrs_key)
    node = helper.make_node(op, list(names), ["Y"], **attrs)
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in zip(names, shapes)]
    output = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph([node], "tconv_oracle", inputs, [output]),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_framework(case: Case):
    import json

    op = "ConvTranspose" if case.fn == "conv_transpose" else "Conv"
    names = tuple(case.arrays)
    shapes = tuple(tuple(a.shape) for a in case.arrays.values())
    attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in case.kwargs.items()}
    session = _session(op, names, shapes, json.dumps(attrs, sort_keys=True))
    return session.run(None, dict(case.arrays))[0]
