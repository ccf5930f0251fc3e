"""tconv.explain, tconv.solve and the explain/shape commands.

The property tests drive explain and a dialect on the same random configuration and
check explain's numbers against where an impulse actually lands in the dialect's
output: input cells coded 1..N, a kernel that is one-hot at one tap, so each nonzero
output names the input cell it came from and reveals the crop (or pad).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tconv.cli import main
from tconv.errors import TconvError
from tconv.explain import explain
from tconv.solve import solve

ROOT = Path(__file__).resolve().parent.parent
SEED = "keras.Conv2DTranspose(512, 3, strides=2, padding='same')"


# ----------------------------------------------------------------- the seed


def test_seed_explanation():
    e = explain(SEED, (8, 8, 1024))
    assert e.output_shape == (16, 16, 512)
    d = e.to_dict()
    assert d["output_shape"] == [16, 16, 512]
    for axis in d["axes"]:
        assert (axis["input"], axis["kernel"], axis["stride"], axis["dilation"]) == (8, 3, 2, 1)
        assert (axis["full"], axis["crop_lo"], axis["crop_hi"], axis["output"]) == (17, 0, 1, 16)
    assert d["kernel_shape"] == [3, 3, 512, 1024]
    text = str(e)
    assert "(3, 3, 512, 1024)" in text and "17" in text
    assert "crops 0 at the start" in text and "1 at the end" in text
    assert "padding=1, output_padding=1" in text and "shifted by 1 cell" in text
    assert "checkerboard" in text and "2 or 1 taps" in text
    json.dumps(d)
    assert "<table>" in e._repr_html_()


def test_seed_with_batch_axis_and_json_keys():
    d = explain(SEED, (4, 8, 8, 1024)).to_dict()
    assert d["output_shape"] == [4, 16, 16, 512]
    fwd = explain("keras.Conv2D(8, 3, strides=2, padding='same')", (16, 16, 3)).to_dict()
    assert {"input", "kernel", "stride", "dilation", "output", "pad_lo", "pad_hi"} <= set(fwd["axes"][0])
    assert (fwd["axes"][0]["pad_lo"], fwd["axes"][0]["pad_hi"], fwd["axes"][0]["output"]) == (0, 1, 8)
    assert "floor((16 + 0 + 1 - 3)/2) + 1 = 8" in str(explain("keras.Conv2D(8, 3, strides=2, padding='same')",
                                                               (16, 16, 3)))


@pytest.mark.parametrize("text, shape, out, crops", [
    ("torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1, output_padding=1)", (1024, 8, 8),
     (512, 16, 16), (1, 0)),
    ("tf.nn.conv2d_transpose(filters=(3, 3, 512, 1024), output_shape=[1, 16, 16, 512], strides=2, padding='SAME')",
     (1, 8, 8, 1024), (1, 16, 16, 512), (0, 1)),
    ("jax.lax.conv_transpose(rhs=(3, 3, 1024, 512), strides=(2, 2), padding='SAME')", (1, 8, 8, 1024),
     (1, 16, 16, 512), (0, 1)),
    ("onnx.ConvTranspose(W=(1024, 512, 3, 3), strides=[2, 2], auto_pad='SAME_UPPER')", (1, 1024, 8, 8),
     (1, 512, 16, 16), (0, 1)),
    ("onnx.ConvTranspose(W=(1024, 512, 3, 3), strides=[2, 2], auto_pad='SAME_LOWER')", (1, 1024, 8, 8),
     (1, 512, 16, 16), (1, 0)),
    ("F.conv_transpose1d(stride=3, dilation=2, padding=1, kernel_size=3, out_channels=2)", (4, 5), (2, 15), (1, 1)),
])
def test_five_frameworks(text, shape, out, crops):
    e = explain(text, shape)
    assert e.output_shape == out
    assert (e.axes[0].crop_lo, e.axes[0].crop_hi) == crops


def test_refusals_are_reported_not_raised():
    e = explain("torch.nn.ConvTranspose2d(8, 4, 3, stride=2, output_padding=2)", (8, 5, 5))
    assert e.refusal and "output padding must be smaller" in e.refusal and e.output_shape is None
    assert e.to_dict()["refused"]
    assert "Refused" in str(e)
    e = explain("keras.Conv2DTranspose(4, 3, strides=2, dilation_rate=2)", (5, 5, 1))
    assert "`strides > 1` not supported" in e.refusal
    e = explain("tf.nn.conv2d_transpose(filters=(3, 3, 4, 1), output_shape=[1, 18, 18, 4], strides=2)", (1, 8, 8, 1))
    assert e.refusal and "is inconsistent with the input" in e.refusal  # the tf dialect's words
    e = explain("torch.nn.Conv2d(1, 1, 3, stride=2, padding='same')", (1, 8, 8))
    assert "strided" in e.refusal


def test_missing_information_raises():
    with pytest.raises(TconvError, match="kernel"):
        explain("F.conv_transpose2d(stride=2)", (1, 8, 8))
    with pytest.raises(TconvError, match="output_shape"):
        explain("tf.nn.conv2d_transpose(filters=(3, 3, 4, 1), strides=2)", (1, 8, 8, 1))
    with pytest.raises(TconvError, match="axes"):
        explain(SEED, (8, 1024))


def test_input_from_the_spec():
    assert explain("onnx.ConvTranspose(X=(1, 2, 5), W=(2, 1, 4), strides=[2])").output_shape == (1, 1, 12)


# ------------------------------------------------------------------ solve


def test_solve_marks_keras_same():
    rows = solve(8, 16, kernel=3, stride=2)
    marked = {(r.framework, r.crop_lo, r.crop_hi) for r in rows if r.same_as_keras_same}
    assert ("keras", 0, 1) in marked and ("tf", 0, 1) in marked and ("onnx", 0, 1) in marked
    torch_rows = [r for r in rows if r.framework == "torch"]
    assert any("padding=1, output_padding=1" in r.call and not r.same_as_keras_same for r in torch_rows)
    assert any("then [..., 0:16]" in r.call and r.same_as_keras_same for r in torch_rows)
    for r in rows:  # every listed call really gives 16 cells
        if "then" not in r.call:
            shape = (1, 8, 1) if r.framework in ("keras", "tf", "jax") else (1, 1, 8)
            assert 16 in explain(r.call, shape).output_shape


def test_solve_k4():
    rows = solve(8, 16, kernel=4, stride=2)
    assert all(r.same_as_keras_same for r in rows if r.framework == "torch" and "padding=1," in r.call)


# ------------------------------------------------------ impulse responses


def _impulse_crops(run, geometry, spatial_in, transposed):
    """Run ``run(x, taps)`` on coded input, return (observed per-axis crop_lo / pad_lo, output spatial shape)."""
    taps = []
    for a in geometry.axes:
        taps.append(next((t for t in range(a.kernel) if a.tap_span(t)[1] > a.tap_span(t)[0]), None))
    x = np.arange(1, int(np.prod(spatial_in)) + 1, dtype=np.float64).reshape(spatial_in)
    if None in taps:  # no tap reaches the output (e.g. the crop keeps only gaps): all zeros
        y = run(x, tuple(t or 0 for t in taps))
        assert not np.any(y)
        return None, y.shape
    y = run(x, tuple(taps))
    nz = np.argwhere(y != 0)
    assert len(nz), "no impulse reached the output"
    q = nz[0]
    p = np.unravel_index(int(round(y[tuple(q)])) - 1, spatial_in)
    lows = []
    for a, t, qi, pi in zip(geometry.axes, taps, q, p):
        if transposed:
            lows.append(int(pi * a.stride + t * a.dilation - qi))
        else:
            lows.append(int(qi * a.stride + t * a.dilation - pi))
    return lows, y.shape


def _onehot(kernel, taps):
    w = np.zeros(kernel)
    w[taps] = 1.0
    return w


configs = st.fixed_dictionaries({
    "rank": st.integers(1, 3), "transposed": st.booleans(), "data": st.data()})


def _axis_values(data, rank, lo, hi):
    return tuple(data.draw(st.integers(lo, hi)) for _ in range(rank))


def _check(e, run, spatial):
    assert e.refusal is None, e.refusal
    g = e.resolved.geometry
    lows, shape = _impulse_crops(run, g, spatial, e.transposed)
    expected = [a.crop_lo if e.transposed else a.pad_lo for a in e.axes]
    assert lows is None or lows == expected, f"{e.spec!r} on {spatial}: impulse says {lows}, explain says {expected}"
    assert shape == tuple(a.output for a in e.axes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_explain_matches_torch_dialect(cfg):
    """explain and tconv.dialects.torch agree on refusals, shapes and where an impulse lands."""
    from tconv.dialects import torch as dialect

    rank, transposed, data = cfg["rank"], cfg["transposed"], cfg["data"]
    k = _axis_values(data, rank, 1, 4)
    s = _axis_values(data, rank, 1, 3)
    d = _axis_values(data, rank, 1, 2)
    n = _axis_values(data, rank, 1, 6)
    if transposed:
        p = _axis_values(data, rank, 0, 3)
        op = _axis_values(data, rank, 0, 2)
        text = f"torch.nn.ConvTranspose{rank}d(1, 1, {k}, stride={s}, padding={p}, output_padding={op}, dilation={d})"
        fn = getattr(dialect, f"conv_transpose{rank}d")
        call = dict(stride=s, padding=p, output_padding=op, dilation=d)
    else:
        p = data.draw(st.sampled_from(["same", "valid"]) | st.just(_axis_values(data, rank, 0, 3)))
        text = f"torch.nn.Conv{rank}d(1, 1, {k}, stride={s}, padding={p!r}, dilation={d})"
        fn = getattr(dialect, f"conv{rank}d")
        call = dict(stride=s, padding=p, dilation=d)
    e = explain(text, (1,) + n)

    def run(x, taps):
        return fn(x[None, None], _onehot(k, taps)[None, None], **call)[0, 0]

    try:
        run(np.ones(n), (0,) * rank)
    except TconvError as exc:
        assert e.refusal is not None, f"{text} on {n}: the dialect refuses ({exc}) but explain does not"
        return
    assert e.refusal is None, f"{text} on {n}: explain refuses ({e.refusal}) but the dialect computes"
    _check(e, run, n)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_explain_matches_tf_dialect(cfg):
    """Where the tf dialect computes a transposed convolution, explain's numbers match its impulse response."""
    dialect = importlib.import_module("tconv.dialects.tf")
    rank, data = cfg["rank"], cfg["data"]
    k = _axis_values(data, rank, 1, 4)
    s = _axis_values(data, rank, 1, 3)
    n = _axis_values(data, rank, 1, 5)
    padding = data.draw(st.sampled_from(["SAME", "VALID"]))
    o = tuple(data.draw(st.integers(max(1, (ni - 1) * si), ni * si + ki)) for ni, si, ki in zip(n, s, k))
    fn = getattr(dialect, f"conv{rank}d_transpose")
    text = (f"tf.nn.conv{rank}d_transpose(filters={k + (1, 1)}, output_shape={(1,) + o + (1,)}, "
            f"strides={s}, padding='{padding}')")
    e = explain(text, (1,) + n + (1,))

    def run(x, taps):
        return fn(x[None, ..., None], _onehot(k, taps)[..., None, None], (1,) + o + (1,), list(s), padding)[0, ..., 0]

    try:
        y = run(np.ones(n), (0,) * rank)
    except TconvError as exc:
        assert e.refusal is not None, f"{text} on {n}: the dialect refuses ({exc}) but explain does not"
        return
    if 0 in y.shape:  # JAX returns empty arrays where other frameworks refuse
        assert e.refusal is not None and "empty" in e.refusal
        return
    assert e.refusal is None, f"{text}: explain refuses ({e.refusal}) but the dialect computes"
    _check(e, run, n)


@pytest.mark.oracle
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 2), st.data())
def test_explain_matches_live_torch(rank, data):
    """The LIVE framework: torch.nn.functional.conv_transpose*d's impulse lands where explain's crop says."""
    torch = pytest.importorskip("torch")
    k = _axis_values(data, rank, 1, 4)
    s = _axis_values(data, rank, 1, 3)
    d = _axis_values(data, rank, 1, 2)
    n = _axis_values(data, rank, 1, 6)
    p = _axis_values(data, rank, 0, 2)
    op = tuple(data.draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
    text = f"torch.nn.ConvTranspose{rank}d(1, 1, {k}, stride={s}, padding={p}, output_padding={op}, dilation={d})"
    e = explain(text, (1,) + n)
    fn = getattr(torch.nn.functional, f"conv_transpose{rank}d")

    def run(x, taps):
        w = torch.from_numpy(_onehot(k, taps)[None, None])
        return fn(torch.from_numpy(x[None, None]), w, stride=s, padding=p, output_padding=op,
                  dilation=d)[0, 0].numpy()

    try:
        run(np.ones(n), (0,) * rank)
    except RuntimeError:
        assert e.refusal is not None
        return
    _check(e, run, n)


@pytest.mark.oracle
def test_seed_against_live_keras():
    """The seed's crops (0, 1) against Keras itself (TensorFlow backend)."""
    keras = pytest.importorskip("keras")
    e = explain("keras.Conv1DTranspose(1, 3, strides=2, padding='same', use_bias=False)", (8, 1))
    layer = keras.layers.Conv1DTranspose(1, 3, strides=2, padding="same", use_bias=False)
    layer.build((None, 8, 1))

    def run(x, taps):
        layer.set_weights([_onehot((3,), taps)[:, None, None]])
        return np.asarray(layer(x[None, :, None].astype("float32")))[0, :, 0].astype(np.float64)

    _check(e, run, (8,))


# --------------------------------------------------------------- commands


def test_cli_default_is_the_seed(capsys):
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(SEED) and "(16, 16, 512)" in out and "\033[" not in out


def test_cli_json_and_shape(capsys):
    assert main(["explain", "keras.Conv2D(8, 3, strides=2, padding='same')", "--input", "16,16,3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["output_shape"] == [8, 8, 8] and d["axes"][0]["pad_hi"] == 1
    assert main(["shape", SEED, "--input", "8x8x1024"]) == 0
    assert capsys.readouterr().out.strip() == "16x16x512"


def test_cli_errors_are_one_line(capsys):
    assert main(["explain", "keras.Conv2D(8, x)", "--input", "8x8x3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "column" in err
    assert main(["shape", "torch.nn.ConvTranspose1d(1, 1, 3, stride=2, output_padding=2)", "--input", "1x4"]) == 2
    assert main(["explain", SEED, "--input", "8xbig"]) == 2
    assert main(["explain", "torch.nn.ConvTranspose1d(1, 1, 3, stride=2, output_padding=2)", "--input", "1x4"]) == 1


def test_cli_solve(capsys):
    assert main(["explain", "--solve", "8", "16", "--kernel", "3", "--stride", "2"]) == 0
    assert "Keras 'same' values" in capsys.readouterr().out


def test_import_tconv_stays_numpy_only():
    code = ("import sys, tconv; tconv.explain; import tconv.solve, tconv.commands.explain, tconv.commands.shape; "
            "bad = [m for m in ('torch', 'tensorflow', 'jax', 'keras', 'onnxruntime') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -------------------------------------------------------------------- docs


def test_docs_seed_is_generated():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "seed.md").read_text() == module.render(), \
        "docs/seed.md is out of date: run python docs/generate.py"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_explain_matches_jax_dialect(cfg):
    """jax.lax.conv_transpose (transpose_kernel=True, so taps are not flipped) against explain."""
    dialect = importlib.import_module("tconv.dialects.jax")
    rank, data = cfg["rank"], cfg["data"]
    k = _axis_values(data, rank, 1, 4)
    s = _axis_values(data, rank, 1, 3)
    d = _axis_values(data, rank, 1, 2)
    n = _axis_values(data, rank, 1, 5)
    padding = data.draw(st.sampled_from(["SAME", "VALID"])
                        | st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=rank,
                                   max_size=rank).map(tuple))
    consistent = data.draw(st.booleans()) and not isinstance(padding, str)
    text = (f"jax.lax.conv_transpose(rhs={k + (1, 1)}, strides={s}, padding={padding!r}, rhs_dilation={d}, "
            f"transpose_kernel=True, use_consistent_padding={consistent})")
    e = explain(text, (1,) + n + (1,))

    def run(x, taps):
        return dialect.conv_transpose(x[None, ..., None], _onehot(k, taps)[..., None, None], s, padding,
                                      rhs_dilation=d, transpose_kernel=True,
                                      use_consistent_padding=consistent)[0, ..., 0]

    try:
        y = run(np.ones(n), (0,) * rank)
    except TconvError as exc:
        assert e.refusal is not None, f"{text} on {n}: the dialect refuses ({exc}) but explain does not"
        return
    if 0 in y.shape:  # JAX returns empty arrays where other frameworks refuse
        assert e.refusal is not None and "empty" in e.refusal
        return
    assert e.refusal is None, f"{text}: explain refuses ({e.refusal}) but the dialect computes"
    _check(e, run, n)


# ------------------------------------------------- explain asks the dialects


def _recorded(call):
    """The Geometry and output shape a dialect call plans (tconv.ops.planning)."""
    from tconv import ops

    with ops.planning() as plans:
        y = call()
    return plans[0][0], y.shape


def _random_call(framework, rank, transposed, data):
    """A random configuration as (text spec, input shape, the same dialect call on placeholders)."""
    from tconv import ops
    from tconv.dialects import jax, keras, onnx, tf, torch

    k, s, d = (_axis_values(data, rank, lo, hi) for lo, hi in ((1, 4), (1, 3), (1, 2)))
    n = _axis_values(data, rank, 1, 6)
    cin, cout = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    z = ops.shape_only
    if framework == "keras":
        padding = data.draw(st.sampled_from(["same", "valid"]))
        op = data.draw(st.none() | st.just(_axis_values(data, rank, 0, 2))) if transposed else None
        name = f"Conv{rank}D{'Transpose' if transposed else ''}"
        kwargs = dict(strides=s, padding=padding, dilation_rate=d, **({"output_padding": op} if transposed else {}))
        text = f"keras.{name}({cout}, {k}, {', '.join(f'{a}={v!r}' for a, v in kwargs.items())})"
        return text, (1,) + n + (cin,), lambda: getattr(keras, name)(cout, k, **kwargs)(z((1,) + n + (cin,)))
    if framework == "torch":
        p = _axis_values(data, rank, 0, 3)
        if transposed:
            op = _axis_values(data, rank, 0, 2)
            text = (f"F.conv_transpose{rank}d(weight={(cin, cout) + k}, stride={s}, padding={p}, "
                    f"output_padding={op}, dilation={d})")
            fn, kwargs, w = getattr(torch, f"conv_transpose{rank}d"), dict(output_padding=op), (cin, cout) + k
        else:
            text = f"F.conv{rank}d(weight={(cout, cin) + k}, stride={s}, padding={p}, dilation={d})"
            fn, kwargs, w = getattr(torch, f"conv{rank}d"), {}, (cout, cin) + k
        return text, (1, cin) + n, lambda: fn(z((1, cin) + n), z(w), stride=s, padding=p, dilation=d, **kwargs)
    if framework == "tf":
        padding = data.draw(st.sampled_from(["SAME", "VALID"]))
        o = tuple(data.draw(st.integers(max(1, (ni - 1) * si), ni * si + ki)) for ni, si, ki in zip(n, s, k))
        text = (f"tf.nn.conv{rank}d_transpose(filters={k + (cout, cin)}, output_shape={(1,) + o + (cout,)}, "
                f"strides={s}, padding='{padding}', dilations={d})")
        fn = getattr(tf, f"conv{rank}d_transpose")
        return text, (1,) + n + (cin,), lambda: fn(z((1,) + n + (cin,)), z(k + (cout, cin)), (1,) + o + (cout,),
                                                    s, padding, dilations=d)
    if framework == "jax":
        padding = data.draw(st.sampled_from(["SAME", "VALID"]))
        tk = data.draw(st.booleans())
        text = (f"jax.lax.conv_transpose(rhs={k + (cin, cout)}, strides={s}, padding='{padding}', "
                f"rhs_dilation={d}, transpose_kernel={tk})")
        return text, (1,) + n + (cin,), lambda: jax.conv_transpose(z((1,) + n + (cin,)), z(k + (cin, cout)), s,
                                                                   padding, rhs_dilation=d, transpose_kernel=tk)
    auto = data.draw(st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    attrs = dict(strides=list(s), dilations=list(d), auto_pad=auto)
    if transposed and auto == "NOTSET":
        attrs["output_padding"] = list(_axis_values(data, rank, 0, 2))
    w = ((cin, cout) if transposed else (cout, cin)) + k
    fn = onnx.conv_transpose if transposed else onnx.conv
    text = f"onnx.{'ConvTranspose' if transposed else 'Conv'}(W={w}, {', '.join(f'{a}={v!r}' for a, v in attrs.items())})"
    return text, (1, cin) + n, lambda: fn(z((1, cin) + n), z(w), **attrs)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["keras", "torch", "tf", "jax", "onnx"]), st.integers(1, 3), st.booleans(), st.data())
def test_explain_geometry_is_the_dialect_plan(framework, rank, transposed, data):
    """explain's Geometry is the one the dialect call records; a dialect refusal is explain's, verbatim."""
    text, shape, call = _random_call(framework, rank, transposed or framework in ("tf", "jax"), data)
    e = explain(text, shape)
    try:
        geometry, out = _recorded(call)
    except TconvError as exc:
        assert e.refusal is not None and str(exc) in e.refusal, (text, shape, str(exc), e.refusal)
        return
    assert e.refusal is None, (text, shape, e.refusal)
    if geometry.transposed == e.resolved.geometry.transposed:  # jax at stride 1: a correlation, see spec
        assert e.resolved.geometry == geometry, text
    assert e.output_shape == tuple(out) and tuple(a.output for a in e.axes) == e.resolved.geometry.output_spatial


def test_dialect_refusal_appears_verbatim():
    from tconv.dialects import keras, torch

    with pytest.raises(TconvError) as info:
        keras.Conv2DTranspose(4, 3, strides=2, output_padding=2)
    e = explain("keras.Conv2DTranspose(4, 3, strides=2, output_padding=2)", (5, 5, 1))
    assert e.refusal == f"Keras refuses this: {info.value}"
    x, w = np.zeros((1, 8, 5, 5), np.float32), np.zeros((8, 4, 3, 3), np.float32)
    with pytest.raises(TconvError) as info:
        torch.conv_transpose2d(x, w, stride=2, output_padding=(2, 2))
    e = explain("F.conv_transpose2d(weight=(8, 4, 3, 3), stride=2, output_padding=(2, 2))", (1, 8, 5, 5))
    assert e.refusal == f"PyTorch refuses this: {info.value}"


def test_torch_module_forms_map_onto_the_functional_dialect():
    e = explain("torch.nn.ConvTranspose1d(2, 4, 3, stride=2, padding=1, output_size=(16,))", (2, 8))
    assert e.output_shape == (4, 16) and (e.axes[0].crop_lo, e.axes[0].crop_hi) == (1, 0)
    assert "valid sizes range from 15 to 16" in explain("torch.nn.ConvTranspose1d(2, 4, 3, stride=2, padding=1, "
                                                       "output_size=(17,))", (2, 8)).refusal
    assert '"zeros"' in explain("torch.nn.ConvTranspose1d(2, 4, 3, padding_mode='reflect')", (2, 8)).refusal
    assert "divisible by groups" in explain("torch.nn.ConvTranspose1d(2, 3, 3, groups=2)", (2, 8)).refusal
    assert explain("torch.nn.Conv1d(2, 4, 3, padding=1, padding_mode='circular')", (2, 8)).output_shape == (4, 8)


def test_not_one_convolution_is_not_explained():
    with pytest.raises(TconvError, match="2 convolutions"):
        explain("lax.conv_general_dilated(rhs=(2, 2, 3), window_strides=(1,), padding=((2, 2),), batch_group_count=2)",
                (2, 2, 6))
    with pytest.raises(TconvError, match="subsamples"):
        explain("lax.conv_general_dilated(rhs=(1, 1, 3), window_strides=(2,), padding=((2, 2),), lhs_dilation=(2,))",
                (1, 1, 6))
