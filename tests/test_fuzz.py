"""Every public entry point under fuzzing (issue 12).

The rule, for any input: a valid result (whose shape is checked against an independent
formula wherever the configuration was valid by construction) or a :class:`TconvError`
whose message names the argument. Never a ``TypeError``/``IndexError``/``ZeroDivisionError``
from deep inside NumPy, never a ``MemoryError`` or ``RecursionError``, never a hang (each
call runs under an alarm), never a silent wrong shape.

Strategies draw a *valid* configuration first and then, half of the time, replace one
argument by a hostile value (zero, negative and huge sizes, wrong ranks and lengths,
wrong dtypes, NaN and inf, empty arrays, strings where numbers go, ``None``, nested
junk), so that the fuzzing reaches deep into each entry point rather than stopping at
the first check.

Profiles: ``ci`` (the default: a bounded number of examples, well under a minute in
all) and ``long`` (``TCONV_FUZZ_PROFILE=long``; ``TCONV_FUZZ_EXAMPLES`` sets the
examples per test). Each test counts its examples in ``COUNTS``; with
``TCONV_FUZZ_REPORT=path`` the counts are written there as JSON at the end (``{worker}`` in
the path becomes the pytest-xdist worker's name).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st

import tconv
from tconv import budget
from tconv.errors import TconvError

# ----------------------------------------------------------------------------- profiles

_LONG_EXAMPLES = int(os.environ.get("TCONV_FUZZ_EXAMPLES", "4000"))
settings.register_profile("fuzz-ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=list(HealthCheck), database=None)
_PHASES = ([Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
           if os.environ.get("TCONV_FUZZ_NOSHRINK") else list(Phase))
settings.register_profile("fuzz-long", max_examples=_LONG_EXAMPLES, deadline=None, phases=_PHASES,
                          suppress_health_check=list(HealthCheck), database=None)
PROFILE = "fuzz-long" if os.environ.get("TCONV_FUZZ_PROFILE") == "long" else "fuzz-ci"
fuzz = settings(settings.get_profile(PROFILE))
#: seconds one call may take before it counts as a hang
TIME_LIMIT = 20 if PROFILE == "fuzz-long" else 10
COUNTS: Counter = Counter()
OUTCOMES: Counter = Counter()

FORBIDDEN = (TypeError, IndexError, KeyError, AttributeError, ZeroDivisionError, MemoryError,
             RecursionError, OverflowError, AssertionError)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    path = os.environ.get("TCONV_FUZZ_REPORT")
    if path:  # "{worker}" in the path: one file per pytest-xdist worker (they run at once)
        path = path.replace("{worker}", os.environ.get("PYTEST_XDIST_WORKER", "main"))
        data = {"profile": PROFILE, "examples": dict(COUNTS), "outcomes": dict(OUTCOMES),
                "total": sum(COUNTS.values())}
        previous = {}
        with contextlib.suppress(OSError, ValueError):
            previous = json.loads(Path(path).read_text())
        if previous.get("profile") == PROFILE:  # runs of parts of the file add up
            for key in ("examples", "outcomes"):
                for k, v in previous.get(key, {}).items():
                    data[key][k] = data[key].get(k, 0) + v
            data["total"] = sum(data["examples"].values())
        Path(path).write_text(json.dumps(data, indent=1, sort_keys=True))


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(name: str, fn, /, *args, **kwargs):
    """Call ``fn``; return its result, or None where it raised a TconvError naming an argument."""
    COUNTS[name] += 1
    try:
        with time_limit(TIME_LIMIT), budget.memory_budget(256 << 20):
            result = fn(*args, **kwargs)
    except TconvError as exc:
        OUTCOMES[name + ":refused"] += 1
        assert isinstance(exc, ValueError)
        assert isinstance(exc.argument, str) and exc.argument, repr(exc)
        assert str(exc).split(": ")[-1] or str(exc)
        assert exc.argument in str(exc), str(exc)
        return None
    OUTCOMES[name + ":ok"] += 1
    return result


# ----------------------------------------------------------------------- hostile values

JUNK = st.one_of(
    st.none(), st.booleans(), st.text(max_size=4), st.binary(max_size=3),
    st.floats(allow_nan=True, allow_infinity=True), st.complex_numbers(max_magnitude=5),
    st.sampled_from([0, -1, -7, 2 ** 31, 10 ** 7, 10 ** 12, 2 ** 63, 2 ** 64, 10 ** 30,
                     float("nan"), float("inf"), -float("inf"), 1.5, "2", "same", "SAME", "valid",
                     [], (), {}, [[]], [None], [1, [2]], [[1, 2], [3]], [1.5, 2], ("a", "b"),
                     [[0, 0]] * 5, [-1, -1], [0, 0], [10 ** 9] * 3, {"a": 1}, {1, 2}, object(),
                     np.array(2), np.array([1, 2, 3]), np.int64(-3), np.float32("nan"), Ellipsis,
                     slice(1), type, range(3)]),
    st.lists(st.integers(-3, 5), max_size=6),
    st.lists(st.lists(st.integers(-2, 3), max_size=3), max_size=5),
)

ARRAY_JUNK = st.one_of(
    JUNK,
    st.sampled_from([np.zeros((0,)), np.zeros((1, 0, 3)), np.zeros((0, 3, 3, 1)),
                     np.array(["a", "b"]), np.array([1 + 2j]), np.array([True, False]),
                     np.array([None, 1], dtype=object), np.full((1, 2, 2, 1), np.nan),
                     np.full((1, 1, 3), np.inf), np.zeros((1, 1, 1, 1, 1, 1, 1)),
                     np.zeros((2, 3), np.float16), np.zeros((1, 2, 3), np.int8),
                     [[1.0, 2.0], [3.0]], [[[1.0]]], np.zeros((1, 1, 4), ">f8"),
                     np.zeros((1, 1, 4), np.uint64), np.zeros((1, 2, 2), np.float32)[:, ::-1],
                     np.datetime64("2020-01-01"), np.zeros(3, dtype=[("a", "f4")])]),
)


def huge(shape, dtype=np.float32):
    """An array of any shape that allocates nothing (a broadcast view of one zero)."""
    return np.broadcast_to(np.zeros((), dtype), shape)


HUGE_ARRAYS = st.sampled_from([
    ("x", (1, 100_000, 100_000, 1)), ("x", (1, 1, 100_000, 100_000)), ("x", (10 ** 6, 4, 4, 3)),
    ("w", (3, 3, 10 ** 5, 10 ** 5)), ("w", (10 ** 5, 10 ** 5, 3, 3)),
    ("x", (1, 2 ** 31, 1)), ("x", (1, 1, 2 ** 31)), ("x", (2 ** 20, 2 ** 20, 1)),
])


BIG = st.sampled_from([10 ** 4, 10 ** 7, 10 ** 9, 2 ** 31, 2 ** 63, 10 ** 30, -10 ** 9, 0, -1])
HOSTILE = st.one_of(BIG, JUNK)


def maybe(draw, valid, junk=HOSTILE, p: float = 0.15):
    """``valid``, or a hostile value with probability ``p``."""
    return draw(junk) if draw(st.floats(0, 1)) < p else valid


def real_array(draw, shape, dtype=None):
    dtype = dtype or draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    a = rng.standard_normal(shape).astype(dtype)
    if draw(st.integers(0, 9)) == 0 and a.size:
        a.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return a


# ------------------------------------------------------------- neutral conv / conv_transpose


def _axis_out(n, k, s, d, lo, hi):
    span = n + lo + hi - (d * (k - 1) + 1)
    return span // s + 1 if span >= 0 else 0


@st.composite
def neutral_calls(draw, transposed: bool):
    """(args, kwargs, expected output shape or None where the call must be refused)."""
    rank = draw(st.integers(1, 3))
    batch = draw(st.sampled_from([1, 2, 0]))
    groups = draw(st.sampled_from([1, 1, 2]))
    per_group = st.one_of(st.integers(1, 2), st.integers(4, 40))  # and enough for the fast paths
    cin, cout = groups * draw(per_group), groups * draw(per_group)
    sizes = [draw(st.integers(1, 6)) for _ in range(rank)]
    kernel = [draw(st.integers(1, 3)) for _ in range(rank)]
    stride = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 2)) for _ in range(rank)]
    data_format = draw(st.sampled_from(["channels_last", "channels_first"]))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    kind = draw(st.sampled_from(["valid", "same", "int", "pairs"]))
    if kind in ("valid", "same"):
        pad = kind
        pairs = None
    elif kind == "int":
        pad = draw(st.integers(-1, 2))
        pairs = [(pad, pad)] * rank
    else:
        pairs = [(draw(st.integers(-2, 3)), draw(st.integers(-2, 3))) for _ in range(rank)]
        pad = pairs
    dk = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if not transposed:
        if pad == "valid":
            out = [_axis_out(n, k, s, d, 0, 0) for n, k, s, d in zip(sizes, kernel, stride, dilation)]
        elif pad == "same":
            out = [-(-n // s) for n, s in zip(sizes, stride)]
        else:
            out = [_axis_out(n, k, s, d, lo, hi) if n + lo + hi >= e else 0
                   for n, k, s, d, (lo, hi), e in zip(sizes, kernel, stride, dilation, pairs, dk)]
    else:
        if pad == "valid":
            out = [(n - 1) * s + e for n, s, e in zip(sizes, stride, dk)]
        elif pad == "same":
            out = [n * s for n, s in zip(sizes, stride)]
        else:
            out = [(n - 1) * s + e - lo - hi for n, s, e, (lo, hi) in zip(sizes, stride, dk, pairs)]
    valid = all(o >= 1 for o in out)
    x_shape = (batch, cin, *sizes) if data_format == "channels_first" else (batch, *sizes, cin)
    w_shape = (*kernel, cin // groups, cout) if not transposed else (*kernel, cout // groups, cin)
    out_c = cout if not transposed else cout
    x = real_array(draw, x_shape)
    w = real_array(draw, w_shape, x.dtype)
    b = real_array(draw, (out_c,), x.dtype) if draw(st.booleans()) else None
    expected = ((batch, out_c, *out) if data_format == "channels_first" else (batch, *out, out_c)) if valid else None
    kwargs = {"stride": stride if draw(st.booleans()) else stride[0] if len(set(stride)) == 1 else stride,
              ("crop" if transposed else "padding"): pad, "dilation": dilation, "groups": groups,
              "data_format": data_format, "padding_mode": mode}
    args = [x, w, b]
    mutated = draw(st.integers(0, 3)) == 0
    if mutated:
        which = draw(st.sampled_from(["x", "w", "b", "huge"] + list(kwargs)))
        if which == "huge":
            where, shape = draw(HUGE_ARRAYS)
            args[0 if where == "x" else 1] = huge(shape)
        elif which in ("x", "w", "b"):
            args["xwb".index(which)] = draw(ARRAY_JUNK)
        else:
            kwargs[which] = draw(HOSTILE)
        expected = "?"
    return args, kwargs, expected


def _check_expected(result, expected, what):
    if expected == "?":
        if result is not None:
            assert isinstance(result, np.ndarray), type(result)
        return
    if expected is None:
        assert result is None, f"{what}: accepted an invalid configuration, gave {result.shape}"
        return
    assert result is not None, f"{what}: refused a valid configuration"
    assert result.shape == expected, f"{what}: shape {result.shape}, expected {expected}"


@fuzz
@given(neutral_calls(False))
def test_fuzz_neutral_conv(call):
    args, kwargs, expected = call
    y = outcome("tconv.conv", tconv.conv, *args, **kwargs)
    _check_expected(y, expected, f"tconv.conv(**{kwargs})")
    if y is not None and expected != "?":
        assert y.dtype == args[0].dtype


@fuzz
@given(neutral_calls(True))
def test_fuzz_neutral_conv_transpose(call):
    args, kwargs, expected = call
    y = outcome("tconv.conv_transpose", tconv.conv_transpose, *args, **kwargs)
    _check_expected(y, expected, f"tconv.conv_transpose(**{kwargs})")


@fuzz
@given(neutral_calls(False), st.booleans())
def test_fuzz_grad(call, transposed):
    from tconv import grad

    args, kwargs, expected = call
    x, w, b = args
    if transposed:
        kwargs["crop"] = kwargs.pop("padding")
    fn = grad.conv_transpose_vjp if transposed else grad.conv_vjp
    # dy: the output's shape where known, else something drawn from the input
    if expected not in (None, "?") and not transposed:
        dy = np.ones(expected, getattr(x, "dtype", np.float64))
    else:
        dy = x
    res = outcome("tconv.grad", fn, x, w, dy, **kwargs)
    if res is not None and expected not in (None, "?") and not transposed:
        dx, dw, db = res
        assert dx.shape == np.shape(x) and dw.shape == np.shape(w)


@fuzz
@given(st.data())
def test_fuzz_geometry(data):
    """AxisGeometry/Geometry with any integers, huge ones included: built or refused, never
    an allocation (the sizes are only numbers)."""
    from tconv.geometry import AxisGeometry, Geometry

    ints = st.one_of(st.integers(-3, 8), st.sampled_from([10 ** 7, 10 ** 12, 2 ** 63, 10 ** 30]), JUNK)
    values = [data.draw(ints) for _ in range(6)]
    ax = outcome("tconv.AxisGeometry", AxisGeometry, *values)
    if ax is None:
        return
    assert ax.out >= 1 and ax.size >= 1
    g = outcome("tconv.Geometry", Geometry, (ax,) * data.draw(st.integers(0, 4)),
                data.draw(ints), data.draw(ints), data.draw(ints), data.draw(st.booleans()))
    if g is not None:
        assert g.neutral_kernel_shape[-1] == g.out_channels


# ------------------------------------------------------------------------------ dialects


@st.composite
def dialect_config(draw, max_rank=3):
    rank = draw(st.integers(1, max_rank))
    return dict(rank=rank, batch=draw(st.sampled_from([1, 2])), groups=draw(st.sampled_from([1, 1, 2])),
                cin=draw(st.integers(1, 2)), cout=draw(st.integers(1, 2)),
                sizes=[draw(st.integers(1, 6)) for _ in range(rank)],
                kernel=[draw(st.integers(1, 3)) for _ in range(rank)],
                stride=[draw(st.integers(1, 3)) for _ in range(rank)],
                dilation=[draw(st.integers(1, 2)) for _ in range(rank)],
                pad=[draw(st.integers(0, 2)) for _ in range(rank)], dtype=draw(st.sampled_from([np.float32, np.float64])))


def _mutate(draw, args: list, kwargs: dict):
    """Half of the time: one argument (positional or keyword) becomes hostile."""
    if draw(st.booleans()):
        return args, kwargs, False
    slots = [("a", i) for i in range(len(args))] + [("k", k) for k in kwargs] + [("huge", None)]
    kind, key = draw(st.sampled_from(slots))
    if kind == "a":
        args[key] = draw(st.one_of(ARRAY_JUNK, HOSTILE))
    elif kind == "k":
        kwargs[key] = draw(HOSTILE)
    else:
        where, shape = draw(HUGE_ARRAYS)
        args[0 if where == "x" or len(args) < 2 else 1] = huge(shape)
    return args, kwargs, True


def _dialect_check(name, fn, args, kwargs, expected, mutated):
    y = outcome(name, fn, *args, **kwargs)
    if y is not None:
        assert isinstance(y, np.ndarray), f"{name} returned {type(y)}"
        if not mutated and expected is not None:
            assert y.shape == tuple(expected), f"{name}(**{kwargs}): shape {y.shape}, expected {expected}"


@fuzz
@given(dialect_config(), st.booleans(), st.data())
def test_fuzz_torch(c, transposed, data):
    from tconv.dialects import torch as T

    r, g = c["rank"], c["groups"]
    cin, cout = c["cin"] * g, c["cout"] * g
    op = c["pad"] if data.draw(st.booleans()) else [0] * r
    x = real_array(data.draw, (c["batch"], cin, *c["sizes"]), c["dtype"])
    if transposed:
        op = [min(o, max(s, d) - 1) for o, s, d in zip(op, c["stride"], c["dilation"])]
        w = real_array(data.draw, (cin, cout // g, *c["kernel"]), c["dtype"])
        out = [(n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o
               in zip(c["sizes"], c["stride"], c["pad"], c["dilation"], c["kernel"], op)]
        kwargs = dict(stride=c["stride"], padding=c["pad"], output_padding=op, groups=g, dilation=c["dilation"])
        fn = getattr(T, f"conv_transpose{r}d")
    else:
        w = real_array(data.draw, (cout, cin // g, *c["kernel"]), c["dtype"])
        out = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, s, p, d, k
               in zip(c["sizes"], c["stride"], c["pad"], c["dilation"], c["kernel"])]
        kwargs = dict(stride=c["stride"], padding=c["pad"], dilation=c["dilation"], groups=g)
        fn = getattr(T, f"conv{r}d")
    b = real_array(data.draw, (cout,), c["dtype"]) if data.draw(st.booleans()) else None
    expected = (c["batch"], cout, *out) if min(out) >= 1 else None
    args, kwargs, mutated = _mutate(data.draw, [x, w, b], kwargs)
    _dialect_check(f"torch.{fn.__name__}", fn, args, kwargs, expected, mutated)


@fuzz
@given(dialect_config(), st.booleans(), st.data())
def test_fuzz_tf(c, transposed, data):
    from tconv.dialects import tf as T

    r = c["rank"]
    padding = data.draw(st.sampled_from(["SAME", "VALID"]))
    x = real_array(data.draw, (c["batch"], *c["sizes"], c["cin"]), c["dtype"])
    stride = c["stride"] if data.draw(st.booleans()) else [1] * r
    dil = [1] * r if any(s > 1 for s in stride) else c["dilation"]
    if transposed:
        w = real_array(data.draw, (*c["kernel"], c["cout"], c["cin"]), c["dtype"])
        out = [n * s if padding == "SAME" else (n - 1) * s + max(d * (k - 1) + 1, s)
               for n, s, k, d in zip(c["sizes"], stride, c["kernel"], dil)]
        expected = (c["batch"], *out, c["cout"])
        fn = getattr(T, f"conv{r}d_transpose")
        args = [x, w, list(expected)]
        kwargs = dict(strides=stride, padding=padding, dilations=dil)
    else:
        w = real_array(data.draw, (*c["kernel"], c["cin"], c["cout"]), c["dtype"])
        out = [-(-n // s) if padding == "SAME" else -(-(n - d * (k - 1)) // s)
               for n, s, k, d in zip(c["sizes"], stride, c["kernel"], dil)]
        expected = (c["batch"], *out, c["cout"]) if min(out) >= 1 else None
        fn = getattr(T, f"conv{r}d")
        args = [x, w]
        kwargs = {("stride" if r == 1 else "strides"): stride, "padding": padding, "dilations": dil}
    args, kwargs, mutated = _mutate(data.draw, args, kwargs)
    _dialect_check(f"tf.{fn.__name__}", fn, args, kwargs, expected, mutated)


@fuzz
@given(dialect_config(), st.booleans(), st.data())
def test_fuzz_jax(c, transposed, data):
    from tconv.dialects import jax as J

    if transposed:
        padding = data.draw(st.sampled_from(["SAME", "VALID"]))
        x = real_array(data.draw, (c["batch"], *c["sizes"], c["cin"]), c["dtype"])
        w = real_array(data.draw, (*c["kernel"], c["cin"], c["cout"]), c["dtype"])
        out = [n * s if padding == "SAME" else (n - 1) * s + max(d * (k - 1) + 1, s)
               for n, s, k, d in zip(c["sizes"], c["stride"], c["kernel"], c["dilation"])]
        expected = (c["batch"], *out, c["cout"])
        fn, args = J.conv_transpose, [x, w, c["stride"], padding]
        kwargs = dict(rhs_dilation=c["dilation"])
    else:
        g = c["groups"]
        x = real_array(data.draw, (c["batch"], c["cin"] * g, *c["sizes"]), c["dtype"])
        w = real_array(data.draw, (c["cout"] * g, c["cin"], *c["kernel"]), c["dtype"])
        pads = [(p, data.draw(st.integers(-1, 2))) for p in c["pad"]]
        out = [(n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), s, k, d
               in zip(c["sizes"], pads, c["stride"], c["kernel"], c["dilation"])]
        expected = (c["batch"], c["cout"] * g, *out) if min(out) >= 1 else None
        fn, args = J.conv_general_dilated, [x, w, c["stride"], pads]
        kwargs = dict(rhs_dilation=c["dilation"], feature_group_count=g)
    args, kwargs, mutated = _mutate(data.draw, args, kwargs)
    _dialect_check(f"jax.{fn.__name__}", fn, args, kwargs, expected, mutated)


@fuzz
@given(dialect_config(), st.booleans(), st.data())
def test_fuzz_onnx(c, transposed, data):
    from tconv.dialects import onnx as O

    r, g = c["rank"], c["groups"]
    cin, cout = c["cin"] * g, c["cout"] * g
    x = real_array(data.draw, (c["batch"], cin, *c["sizes"]), c["dtype"])
    pads = c["pad"] + [data.draw(st.integers(0, 2)) for _ in range(r)]
    attrs = dict(strides=c["stride"], dilations=c["dilation"], pads=pads, group=g)
    if transposed:
        w = real_array(data.draw, (cin, cout // g, *c["kernel"]), c["dtype"])
        out = [s * (n - 1) + d * (k - 1) + 1 - pads[i] - pads[i + r] for i, (n, s, k, d)
               in enumerate(zip(c["sizes"], c["stride"], c["kernel"], c["dilation"]))]
        fn = O.conv_transpose
    else:
        w = real_array(data.draw, (cout, cin // g, *c["kernel"]), c["dtype"])
        out = [(n + pads[i] + pads[i + r] - d * (k - 1) - 1) // s + 1 for i, (n, s, k, d)
               in enumerate(zip(c["sizes"], c["stride"], c["kernel"], c["dilation"]))]
        fn = O.conv
    expected = (c["batch"], cout, *out) if min(out) >= 1 else None
    args, attrs, mutated = _mutate(data.draw, [x, w, None], attrs)
    if data.draw(st.integers(0, 5)) == 0:  # unknown or misspelt attributes
        attrs[data.draw(st.sampled_from(["auto_pad", "kernel_shape", "output_shape", "output_padding",
                                         "foo", "stride"]))] = data.draw(HOSTILE)
        mutated = True
    _dialect_check(f"onnx.{fn.__name__}", fn, args, attrs, expected, mutated)


@fuzz
@given(dialect_config(), st.booleans(), st.data())
def test_fuzz_keras(c, transposed, data):
    from tconv.dialects import keras as K

    r = c["rank"]
    padding = data.draw(st.sampled_from(["same", "valid"]))
    stride = c["stride"] if data.draw(st.booleans()) else [1] * r
    dil = [1] * r if any(s > 1 for s in stride) else c["dilation"]
    cls = getattr(K, f"Conv{r}D{'Transpose' if transposed else ''}")
    kwargs = dict(filters=c["cout"], kernel_size=c["kernel"], strides=stride, padding=padding,
                  dilation_rate=dil)
    if transposed:
        out = [n * s if padding == "same" else (n - 1) * s + max(d * (k - 1) + 1, s)
               for n, s, k, d in zip(c["sizes"], stride, c["kernel"], dil)]
    else:
        out = [-(-n // s) if padding == "same" else -(-(n - d * (k - 1)) // s)
               for n, s, k, d in zip(c["sizes"], stride, c["kernel"], dil)]
    expected = (c["batch"], *out, c["cout"]) if min(out) >= 1 else None
    x = real_array(data.draw, (c["batch"], *c["sizes"], c["cin"]), c["dtype"])
    args, kwargs, mutated = _mutate(data.draw, [x], kwargs)
    layer = outcome(f"keras.{cls.__name__}()", cls, **kwargs)
    if layer is None:
        return
    _dialect_check(f"keras.{cls.__name__}", layer, args, {}, expected, mutated)
    if data.draw(st.booleans()):
        weights = data.draw(st.one_of(st.just(layer.get_weights()) if layer.built else st.just([]),
                                      st.lists(ARRAY_JUNK, max_size=3), HOSTILE))
        outcome("keras.set_weights", layer.set_weights, weights)


@fuzz
@given(dialect_config(), st.booleans(), st.data())
def test_fuzz_torch_grad(c, transposed, data):
    from tconv.dialects import torch_grad as G

    r, g = c["rank"], c["groups"]
    cin, cout = c["cin"] * g, c["cout"] * g
    sizes = (c["batch"], cin, *c["sizes"])
    if transposed:
        w_shape = (cin, cout // g, *c["kernel"])
        out = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k
               in zip(c["sizes"], c["stride"], c["pad"], c["dilation"], c["kernel"])]
        kwargs = dict(stride=c["stride"], padding=c["pad"], groups=g, dilation=c["dilation"])
        prefix = f"conv_transpose{r}d"
    else:
        w_shape = (cout, cin // g, *c["kernel"])
        out = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, s, p, d, k
               in zip(c["sizes"], c["stride"], c["pad"], c["dilation"], c["kernel"])]
        kwargs = dict(stride=c["stride"], padding=c["pad"], dilation=c["dilation"], groups=g)
        prefix = f"conv{r}d"
    assume(min(out) >= 1)
    dy = real_array(data.draw, (c["batch"], cout, *out), c["dtype"])
    if data.draw(st.booleans()):
        fn, args, expected = getattr(G, prefix + "_input"), [sizes, real_array(data.draw, w_shape, c["dtype"]), dy], sizes
    else:
        fn, args, expected = getattr(G, prefix + "_weight"), [real_array(data.draw, sizes, c["dtype"]), w_shape, dy], w_shape
    args, kwargs, mutated = _mutate(data.draw, args, kwargs)
    _dialect_check(f"torch_grad.{fn.__name__}", fn, args, kwargs, expected, mutated)


# ------------------------------------------------------------- text specs and the views

_CALLEES = ["keras.Conv{r}D", "keras.Conv{r}DTranspose", "keras.layers.Conv{r}DTranspose",
            "torch.nn.Conv{r}d", "torch.nn.ConvTranspose{r}d", "torch.nn.functional.conv_transpose{r}d",
            "tf.nn.conv{r}d", "tf.nn.conv{r}d_transpose", "tf.nn.conv_transpose", "jax.lax.conv_transpose",
            "jax.lax.conv_general_dilated", "onnx.Conv", "onnx.ConvTranspose", "os.system", "__import__",
            "keras.Lambda", "torch.nn.Conv{r}d.__class__", "eval", "keras.Conv9D"]
_KEYS = ["filters", "kernel_size", "strides", "stride", "padding", "output_padding", "dilation",
         "dilation_rate", "groups", "data_format", "output_shape", "weight", "filters", "rhs", "W",
         "lhs", "X", "input", "auto_pad", "pads", "dilations", "group", "kernel_shape", "in_channels",
         "out_channels", "padding_mode", "dimension_numbers", "transpose_kernel", "use_bias", "bogus",
         "__class__"]
_LITERALS = st.one_of(
    st.integers(-3, 12).map(str), st.sampled_from(["10**7", "10000000", "1000000", "1e308", "-0",
                                                    "999999999999999999999999", "1.5", "nan", "True",
                                                    "None", "'same'", "'valid'", "'SAME'", "'VALID'",
                                                    "'causal'", "'SAME_LOWER'", "'NOTSET'", "'full'",
                                                    "'channels_first'", "'NCHW'", "x", "x.y", "f()",
                                                    "lambda: 0", "[1,2]", "(2, 2)", "(1, 2, 3)",
                                                    "[[0, 0], [1, 1], [1, 1], [0, 0]]", "((1, 1),)",
                                                    "(((((1,),),),),)", "[" * 40 + "]" * 40,
                                                    "(1, 4, 8, 8)", "(8, 8, 4, 4)", "(4, 4, 3, 3)",
                                                    "[1, 16, 16, 4]", "{'a': 1}", "b'x'", "...",
                                                    "'a' * 10", "1 if 1 else 2", "(1,) * 999",
                                                    "'" + "x" * 300 + "'", "__import__('os')"]))


@st.composite
def spec_texts(draw):
    if draw(st.integers(0, 9)) == 0:  # raw text
        return draw(st.one_of(st.text(max_size=60), st.sampled_from(["", "(", "keras.Conv2D(", "a" * 5000,
                                                                    "keras.Conv2D(1, 3)" * 200, "\x00",
                                                                    "keras.Conv2D(1, 3); import os"])))
    r = draw(st.integers(1, 3))
    callee = draw(st.sampled_from(_CALLEES)).format(r=r)
    positional = [draw(_LITERALS) for _ in range(draw(st.integers(0, 3)))]
    keywords = [f"{draw(st.sampled_from(_KEYS))}={draw(_LITERALS)}" for _ in range(draw(st.integers(0, 4)))]
    return f"{callee}({', '.join(positional + keywords)})"


SHAPES = st.one_of(
    st.lists(st.integers(1, 9), min_size=2, max_size=5).map(tuple),
    st.lists(st.sampled_from([0, 1, 4, 8, 10 ** 5, 10 ** 7, 2 ** 40, -1]), min_size=1, max_size=6).map(tuple),
    JUNK,
)


@fuzz
@given(spec_texts())
def test_fuzz_parse(text):
    spec = outcome("tconv.parse", tconv.parse, text)
    if spec is not None:  # a LayerSpec's repr is its text spec, and parses back to itself
        assert tconv.parse(repr(spec)) == spec


@fuzz
@given(spec_texts(), SHAPES, st.booleans())
def test_fuzz_explain(text, shape, equivalents):
    e = outcome("tconv.explain", tconv.explain, text, shape, equivalents=equivalents)
    if e is not None:
        assert isinstance(e.text() if hasattr(e, "text") else str(e), str)


@fuzz
@given(spec_texts(), SHAPES, st.data())
def test_fuzz_draw(text, shape, data):
    from tconv.draw import draw

    view = data.draw(st.sampled_from(["scatter", "zeros", "overlap", "matrix", "conv", "x", None]))
    fmt = data.draw(st.sampled_from(["svg", "tty", "svg", "png", "gif", "bogus", 3]))
    kwargs = {}
    if data.draw(st.booleans()):
        kwargs[data.draw(st.sampled_from(["frame", "axes", "cell", "colour", "x", "kernel"]))] = data.draw(
            st.one_of(HOSTILE, ARRAY_JUNK))
    out = outcome("tconv.draw", draw, text, shape, view, fmt, **kwargs)
    if out is not None:
        assert isinstance(out, (str, bytes))


@fuzz
@given(spec_texts(), SHAPES, st.sampled_from(["keras", "tf", "torch", "jax", "onnx", "caffe", None, 1]))
def test_fuzz_translate(text, shape, to):
    t = outcome("tconv.translate", tconv.translate, text, to, shape)
    if t is not None:
        assert t.target == to
        assert isinstance(t.code, str) and t.code  # a property: runnable source for the target


@fuzz
@given(st.sampled_from(["keras", "tf", "torch", "jax", "onnx", "x"]), st.sampled_from(["keras", "tf", "torch", "jax", "onnx", None]),
       st.one_of(st.lists(st.integers(0, 4), min_size=1, max_size=6).map(lambda s: np.zeros(s)), ARRAY_JUNK),
       st.booleans(), st.one_of(st.integers(-1, 3), HOSTILE))
def test_fuzz_weights(src, dst, kernel, transposed, groups):
    from tconv import weights

    outcome("tconv.weights.convert", weights.convert, kernel, src, dst, transposed, groups)
    outcome("tconv.weights.convert_bias", weights.convert_bias, kernel)


# ---------------------------------------------------------------------------- tconv.nn


@fuzz
@given(st.data())
def test_fuzz_nn_layers(data):
    from tconv import nn

    name = data.draw(st.sampled_from(["Conv2D", "Conv2DTranspose", "Conv1D", "MaxPooling2D",
                                      "UpSampling2D", "Cropping2D", "ZeroPadding2D", "Concatenate",
                                      "Dropout", "BatchNormalization", "Activation", "ReLU", "Softmax"]))
    cls = getattr(nn, name)
    valid = {"Conv2D": [2, 3], "Conv2DTranspose": [2, 3], "Conv1D": [2, 3], "Activation": ["relu"],
             "Dropout": [0.5]}.get(name, [])
    keys = {"Conv2D": ["strides", "padding", "dilation_rate", "groups", "data_format"],
            "Conv2DTranspose": ["strides", "padding", "dilation_rate", "data_format", "output_padding"],
            "Conv1D": ["strides", "padding", "dilation_rate", "groups"],
            "MaxPooling2D": ["pool_size", "strides", "padding", "data_format"],
            "UpSampling2D": ["size", "interpolation", "data_format"], "Cropping2D": ["cropping", "data_format"],
            "ZeroPadding2D": ["padding", "data_format"], "Concatenate": ["axis"], "Dropout": ["noise_shape"],
            "BatchNormalization": ["axis", "momentum", "epsilon"], "Activation": [],
            "ReLU": ["max_value", "negative_slope", "threshold"], "Softmax": ["axis"]}[name] + ["dtype", "name", "bogus"]
    args = [data.draw(st.one_of(st.just(v), HOSTILE)) if data.draw(st.integers(0, 3)) == 0 else v for v in valid]
    kwargs = {}
    if data.draw(st.booleans()):
        kwargs[data.draw(st.sampled_from(keys))] = data.draw(HOSTILE)
    layer = outcome(f"nn.{name}()", cls, *args, **kwargs)
    if layer is None:
        return
    x = data.draw(st.one_of(
        st.lists(st.integers(1, 5), min_size=3, max_size=4).map(lambda s: real_array(data.draw, (1, *s))),
        ARRAY_JUNK, HUGE_ARRAYS.map(lambda ws: huge(ws[1]))))
    inputs = [x, x] if name == "Concatenate" else x
    outcome(f"nn.{name}", layer, inputs)


@fuzz
@given(st.data())
def test_fuzz_nn_model(data):
    """A small functional model called on fuzzed arrays, and the U-Net builder's arguments."""
    from tconv import nn

    inp = nn.Input((None, None, 2))
    h = nn.Conv2D(3, 3, padding="same")(inp)
    h = nn.MaxPooling2D(2)(h)
    out = nn.Conv2DTranspose(2, 3, strides=2, padding="same")(h)
    model = nn.Model(inp, out)
    x = data.draw(st.one_of(
        st.lists(st.integers(1, 9), min_size=2, max_size=2).map(lambda s: real_array(data.draw, (1, *s, 2))),
        ARRAY_JUNK, HUGE_ARRAYS.map(lambda ws: huge(ws[1])), st.just(huge((1, 50_000, 50_000, 2)))))
    y = outcome("nn.Model", model, x)
    if y is not None and isinstance(x, np.ndarray) and x.ndim == 4 and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0:
        assert y.shape == x.shape[:3] + (2,)
    import inspect

    keys = [p for p in inspect.signature(nn.unet).parameters if p not in ("args", "kwargs")]
    kwargs = {data.draw(st.sampled_from(keys)): data.draw(st.one_of(HOSTILE, SHAPES))}
    outcome("nn.unet", nn.unet, **kwargs)
    outcome("nn.plan_unet", nn.plan_unet, data.draw(SHAPES))


# ------------------------------------------------------------------------------ loaders


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """A small model saved as .keras, .weights.h5 and .safetensors (tconv's own writers)."""
    pytest.importorskip("h5py")
    from tconv import nn
    from tconv.nn import io

    root = tmp_path_factory.mktemp("weights")
    inp = nn.Input((None, None, 2))
    h = nn.Conv2D(3, 3, padding="same", name="c1")(inp)
    out = nn.Conv2DTranspose(2, 3, strides=2, padding="same", name="t1")(h)
    model = nn.Model(inp, out)
    files = {}
    for suffix in (".keras", ".weights.h5", ".safetensors"):
        path = root / f"m{suffix}"
        (io.save_keras if suffix == ".keras" else model.save_weights)(*((model, path) if suffix == ".keras" else (path,)))
        files[suffix] = path.read_bytes()
    return model, files, root


@st.composite
def damaged(draw, data: bytes):
    kind = draw(st.sampled_from(["truncate", "flip", "flip", "overwrite", "append", "empty"]))
    b = bytearray(data)
    if kind == "truncate":
        b = b[: draw(st.integers(0, len(b) - 1))]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "overwrite":
        i = draw(st.integers(0, len(b) - 1))
        junk = draw(st.binary(min_size=1, max_size=64))
        b[i:i + len(junk)] = junk
    elif kind == "append":
        b += draw(st.binary(min_size=1, max_size=64))
    else:
        b = bytearray()
    return bytes(b)


@settings(settings.get_profile(PROFILE), max_examples=min(settings.get_profile(PROFILE).max_examples, 500))  # h5py is slow
@given(st.sampled_from([".keras", ".weights.h5", ".safetensors"]), st.data(),
       st.sampled_from([".keras", ".weights.h5", ".safetensors", ".pt", ".h5", ".bin"]))
def test_fuzz_loaders(weight_files, source, data, label):
    """Truncated, bit-flipped, overwritten and mislabelled files: loaded or refused, never
    another exception (and nothing is unpickled: .pt goes through weights_only)."""
    from tconv import nn

    model, files, root = weight_files
    blob = data.draw(damaged(files[source]))
    path = root / f"fuzz_{os.getpid()}{label}"
    path.write_bytes(blob)
    if label == ".keras":
        outcome("nn.load_keras", nn.load_keras, path)
    else:
        outcome("Model.load_weights", model.load_weights, path)


def test_loader_zip_bomb_refused_by_declared_size(tmp_path, weight_files):
    """A .keras whose weights inflate past the budget is refused before inflating."""
    from tconv import nn

    _, files, _ = weight_files
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with zipfile.ZipFile(__import__("io").BytesIO(files[".keras"])) as src:
            z.writestr("config.json", src.read("config.json"))
        z.writestr("model.weights.h5", b"\0" * (4 << 20))
    with budget.memory_budget(1 << 20), pytest.raises(TconvError, match="inflates"):
        nn.load_keras(path)


def test_loader_lambda_and_custom_objects_refused_by_name(tmp_path, weight_files):
    from tconv import nn

    _, files, _ = weight_files
    import io as _io

    with zipfile.ZipFile(_io.BytesIO(files[".keras"])) as src:
        config = json.loads(src.read("config.json"))
        weights = src.read("model.weights.h5")
    for cls, module in (("Lambda", "keras.layers"), ("MyLayer", "my_package.layers")):
        changed = json.loads(json.dumps(config))
        entry = next(e for e in changed["config"]["layers"] if e["class_name"] == "Conv2D")
        entry["class_name"], entry["module"] = cls, module
        if cls == "Lambda":
            entry["config"]["function"] = {"class_name": "__lambda__", "config": {"code": "print('ran')"}}
        bad = json.dumps(changed)
        path = tmp_path / f"{cls}.keras"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("config.json", bad)
            z.writestr("model.weights.h5", weights)
        with pytest.raises(TconvError, match=cls):
            nn.load_keras(path)


# ---------------------------------------------------------------------------------- CLI


def _cli(argv, debug=False):
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    import io as _io
    from contextlib import redirect_stderr, redirect_stdout

    from tconv import cli

    out, err = _io.StringIO(), _io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), time_limit(TIME_LIMIT), budget.memory_budget(256 << 20):
        try:
            code = cli.main((["--debug"] if debug else []) + list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return code, out.getvalue(), err.getvalue()


_ARGS = st.one_of(spec_texts(), st.sampled_from(["--input", "-i", "8x8x4", "1,4,8,8", "0x0", "99999999x9",
                                                 "--json", "--view", "scatter", "--format", "png", "--to",
                                                 "torch", "--solve", "8", "16", "-o", "/nonexistent/dir/x.svg",
                                                 "--frame", "-1", "--bogus", "", "x" * 300, "--help-me",
                                                 "--depth", "99", "--input-size", "abc"]),
                  st.text(max_size=12))


@fuzz
@given(st.sampled_from(["explain", "shape", "draw", "translate", "unet", "bench", "nope", ""]),
       st.lists(_ARGS, max_size=5))
def test_fuzz_cli(command, argv):
    COUNTS["cli"] += 1
    if command == "bench":  # bench runs timings: only its argument errors are fuzzed here
        argv = argv + ["--bogus-flag"]
    code, out, err = _cli([command] + argv if command else argv)
    assert isinstance(code, int)
    if code != 0:
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, f"stderr must be one line, got {err!r}"


def test_cli_errors_are_one_line_and_debug_shows_traceback():
    code, _, err = _cli(["shape", "keras.Conv2D(1, 3)", "--input", "1x1x1"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = _cli(["shape", "keras.Conv2D(1, 3)"])          # argparse: a required option
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--input" in err
    code, _, err = _cli(["frobnicate"])
    assert code == 2 and len(err.strip().splitlines()) == 1
    with pytest.raises(TconvError):
        _cli(["shape", "keras.Conv2D(1, 3)", "--input", "1x1x1"], debug=True)


def test_cli_draw_unwritable_output_is_one_line(tmp_path):
    code, _, err = _cli(["draw", "keras.Conv1DTranspose(1, 3, strides=2)", "--input", "4x1",
                         "-o", str(tmp_path / "missing" / "dir" / "x.svg")])
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ------------------------------------------------------------------ under an address-space limit

_UNDER_LIMIT = r"""
import os, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import numpy as np
import tconv
import tconv.ops
from tconv import TconvError, budget
from tconv.dialects import torch as T, onnx as O
from tconv import nn

assert "tensorflow" not in sys.modules and "jax" not in sys.modules
rng = np.random.default_rng(int(sys.argv[2]))
H = tconv.ops.shape_only  # a TconvError where even a view cannot exist
BIG = [1, 2, 3, 10 ** 3, 10 ** 4, 10 ** 5, 10 ** 7, 10 ** 9]
count = 0

def pick(values):
    return values[rng.integers(len(values))]

def calls():
    x = np.ones((1, 8, 8, 2), np.float32)
    w = np.ones((3, 3, 2, 2), np.float32)
    s, p, d = pick(BIG), pick(BIG), pick(BIG)
    yield lambda: tconv.conv_transpose(x, w, stride=s)
    yield lambda: tconv.conv_transpose(x, w, crop=-p)
    yield lambda: tconv.conv(x, w, padding=p, padding_mode=pick(["zeros", "reflect", "circular"]))
    yield lambda: tconv.conv_transpose(x, w, dilation=d, padding_mode=pick(["zeros", "replicate"]))
    n = pick(BIG)
    yield lambda: tconv.conv(H((1, n, n, 2)), w)
    yield lambda: tconv.conv(H((1, 4, n, n)), H((1, 3, n, 2)))
    yield lambda: T.conv_transpose2d(H((1, 2, n, n)), np.ones((2, 2, 3, 3), np.float32), stride=s)
    yield lambda: O.conv_transpose(np.ones((1, 2, 4, 4), np.float32), np.ones((2, 2, 3, 3), np.float32),
                                   strides=[s, s])
    yield lambda: tconv.explain(f"torch.nn.ConvTranspose2d(2, 2, 3, stride={min(s, 10 ** 6)})", (1, 2, n, n))
    yield lambda: tconv.draw(f"keras.Conv2DTranspose(1, 3, strides={min(s, 10 ** 6)})", (n, n, 1))
    yield lambda: nn.UpSampling2D(size=(s, s))(x)
    yield lambda: nn.ZeroPadding2D(padding=p)(x)
    yield lambda: nn.Conv2D(min(n, 10 ** 6), 3)(x)

for _ in range(int(sys.argv[3])):
    for call in calls():
        count += 1
        try:
            call()
        except TconvError:
            pass
        except MemoryError as exc:
            print("MemoryError", repr(exc)[:300]); sys.exit(3)
print("ok", count)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_no_memoryerror_under_address_space_limit():
    """Entry points under a 3 GiB address-space limit, on inputs whose outputs would need
    terabytes: every one refuses with a TconvError, none dies of MemoryError (the default
    budget follows the free address space)."""
    rounds = 400 if PROFILE == "fuzz-long" else 6
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("TCONV_MEMORY_BUDGET", None)
    proc = subprocess.run([sys.executable, "-c", _UNDER_LIMIT, str(3 << 30), "12", str(rounds)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stdout + proc.stderr[-3000:]
    COUNTS["under_rlimit"] += int(proc.stdout.split()[1])


# ------------------------------------------------------------------ regressions (one per bug found)


def _x():
    return np.ones((1, 4, 4, 1), np.float32), np.ones((3, 3, 1, 1), np.float32)


def test_regression_conv_transpose_huge_stride_memoryerror():
    x, w = _x()
    with budget.memory_budget(256 << 20), pytest.raises(TconvError, match=r"stride \(10000000, 10000000\).*budget"):
        tconv.conv_transpose(x, w, stride=10 ** 7)


def test_regression_gemm_phase_length_overflowerror():
    """dilation 2**63: the phase lattice's length went through range(), whose len() overflows
    C ssize_t (OverflowError from the kernels' memory estimate); now the budget refuses."""
    x = np.full((1, 1, 1, 1, 1), np.nan, np.float32)
    w = np.array([0.12573022, -0.13210486], np.float32).reshape(1, 1, 2, 1, 1)
    with budget.memory_budget(256 << 20), pytest.raises(TconvError, match="budget"):
        tconv.conv_transpose(x, w, dilation=2 ** 63)


def test_regression_conv_huge_input_view_refused_by_budget():
    _, w = _x()
    with budget.memory_budget(256 << 20), pytest.raises(TconvError, match=r"input \(1, 100000, 100000, 1\)"):
        tconv.conv(huge((1, 100_000, 100_000, 1)), w)


def test_regression_conv_gemm_row_chunk_exceeds_budget():
    """A small output whose one-row, one-tap im2col chunk is huge (10^5 channels x 10^5 cells)."""
    with budget.memory_budget(256 << 20), pytest.raises(TconvError, match="temporaries"):
        tconv.conv(huge((1, 1, 100_000, 100_000)), huge((1, 3, 100_000, 1)))


def test_regression_padding_mode_huge_pad_numpy_valueerror():
    """padding_modes built a 10^9-long index vector just to count it, then NumPy's 'array is too big'."""
    x, w = _x()
    for call in (lambda: tconv.conv(x, w, padding=10 ** 9, padding_mode="reflect"),
                 lambda: tconv.conv_transpose(x, w, crop=-10 ** 9, padding_mode="circular"),
                 lambda: tconv.conv(x, w, padding=10 ** 4, padding_mode="replicate")):
        with budget.memory_budget(256 << 20), pytest.raises(TconvError):
            call()


def test_regression_zero_batch_unrepresentable_output_valueerror():
    x, w = _x()
    with pytest.raises(TconvError, match="NumPy"):
        tconv.conv(x[:0], w, padding=10 ** 9)


def test_regression_shape_only_too_big_valueerror():
    from tconv import ops

    with pytest.raises(ops.TooLarge, match="NumPy"):
        ops.shape_only((10 ** 10, 10 ** 10))


def test_regression_explain_huge_output_not_called_framework_refusal():
    """A planned output NumPy cannot even view is tconv's limit, not 'PyTorch refuses this'."""
    with pytest.raises(TconvError, match="cannot be planned") as info:
        tconv.explain("torch.nn.ConvTranspose2d(1, 1, 3, stride=1000000)", (1, 1, 10 ** 6, 10 ** 6))
    assert "refuses" not in str(info.value)


def test_regression_tconv_explain_module_not_callable_typeerror():
    """``import tconv.explain`` bound the module over the lazy function: the second call failed."""
    import importlib

    importlib.import_module("tconv.explain")
    for _ in range(2):
        assert tconv.explain("keras.Conv1DTranspose(1, 3, strides=2)", (4, 1)).output_shape == (9, 1)


def test_regression_translate_huge_stride_hang():
    """translate searched every output size within a stride (quadratically): stride 10^6 never ended."""
    with time_limit(10):
        with pytest.raises(TconvError, match="stride"):
            tconv.translate("torch.nn.ConvTranspose2d(1, 1, 3, stride=1000000)", "tf", (1, 1, 4, 4))
        e = tconv.explain("torch.nn.ConvTranspose2d(1, 1, 3, stride=1000)", (1, 1, 4, 4))
        assert e.output_shape == (1, 1, 3003, 3003)


def test_regression_error_message_huge_tuple_hang():
    """The message's repr of a tuple of 2^20 arrays took minutes (torch_grad input_size)."""
    from tconv.dialects import torch_grad

    with time_limit(10), pytest.raises(TconvError, match="input_size"):
        torch_grad.conv2d_input(huge((2 ** 20, 2 ** 20, 1)), np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)))


def test_regression_keras_build_huge_filters_valueerror():
    from tconv.dialects import keras

    layer = keras.Conv2D(10 ** 9, 3)
    with budget.memory_budget(256 << 20), pytest.raises(TconvError, match="kernel.*budget"):
        layer(np.ones((1, 4, 4, 2), np.float32))


def test_regression_keras_set_weights_none_typeerror_and_unbuilt_indexerror():
    from tconv.dialects import keras

    layer = keras.Conv2D(2, 3)
    with pytest.raises(TconvError, match="weights"):
        layer.set_weights(None)
    layer.set_weights([])  # unbuilt: nothing to set, as Keras
    with pytest.raises(TconvError, match="weights"):
        layer.set_weights([np.ones((3, 3, 1, 2))])


def test_regression_weights_convert_ragged_valueerror_and_groups_none_typeerror():
    from tconv import weights

    with pytest.raises(TconvError, match="kernel"):
        weights.convert([[1.0, 2.0], [3.0]], "torch", "keras")
    with pytest.raises(TconvError, match="groups"):
        weights.convert(np.zeros((2, 2, 3)), "torch", "keras", groups=None)
    with pytest.raises(TconvError, match="dilation"):
        weights.dilate_kernel(np.zeros((3, 1, 1)), "2")


@pytest.mark.parametrize("make, call", [
    (lambda nn: nn.Concatenate(axis=10 ** 4), lambda layer, x: layer([x, x])),          # AxisError
    (lambda nn: nn.Softmax(axis=7), lambda layer, x: layer(x)),                         # AxisError
    (lambda nn: nn.ReLU(max_value="a"), None),                                          # ValueError
    (lambda nn: nn.Dropout([0.5]), None),                                               # TypeError
    (lambda nn: nn.BatchNormalization(axis=(1, 2)), None),                              # TypeError
    (lambda nn: nn.Conv2D(2, 3, dtype="1e+16"), None),                                  # numpy ValueError
    (lambda nn: nn.MaxPooling2D(), lambda layer, x: layer(x[0])),                       # IndexError
    (lambda nn: nn.ZeroPadding2D(), lambda layer, x: layer([[1.0, 2.0], [3.0]])),       # ragged ValueError
    (lambda nn: nn.UpSampling2D(size=(10 ** 5, 10 ** 5)), lambda layer, x: layer(x)),   # MemoryError
])
def test_regression_nn_layer_arguments_typeerror_indexerror_axiserror(make, call):
    from tconv import nn

    x = np.ones((1, 4, 4, 2), np.float32)
    with budget.memory_budget(256 << 20), pytest.raises(TconvError):
        layer = make(nn)
        call(layer, x)


def test_regression_nn_model_ragged_input_and_unet_sizes_typeerror():
    from tconv import nn

    inp = nn.Input((None, None, 2))
    model = nn.Model(inp, nn.Conv2D(2, 3, padding="same")(inp))
    with pytest.raises(TconvError, match="inputs"):
        model([[1.0, 2.0], [3.0]])
    with pytest.raises(TconvError, match="input"):
        nn.plan_unet(None)
    with pytest.raises(TconvError, match="input"):
        nn.plan_unet((96, "a", 3))
    with pytest.raises(TconvError, match="input_size"):
        nn.unet(input_size=None)
    with pytest.raises(TconvError, match="dropout"):
        nn.unet(dropout="x")
    with pytest.raises(TconvError, match="batch_norm"):
        nn.unet(batch_norm=np.array([1, 2, 3]))
    with pytest.raises(TconvError, match="shape"):
        nn.Input((":", 3))


def test_budget_env_and_setter(monkeypatch):
    monkeypatch.setenv("TCONV_MEMORY_BUDGET", "2G")
    assert budget.get_memory_budget() == 2 << 30
    monkeypatch.setenv("TCONV_MEMORY_BUDGET", "lots")
    with pytest.raises(TconvError, match="TCONV_MEMORY_BUDGET"):
        budget.get_memory_budget()
    monkeypatch.delenv("TCONV_MEMORY_BUDGET")
    assert 0 < budget.get_memory_budget() <= budget.physical_memory()
    tconv.set_memory_budget(1 << 20)
    try:
        assert budget.get_memory_budget() == 1 << 20
        with pytest.raises(TconvError, match="budget"):
            tconv.conv(np.ones((1, 600, 600, 1)), np.ones((1, 1, 1, 1)))
    finally:
        tconv.set_memory_budget(None)
    with pytest.raises(TconvError, match="nbytes"):
        tconv.set_memory_budget(-5)


def test_regression_zero_d_array_arguments_typeerror():
    """``padding=np.array(2)`` (a 0-d array) reached ``len()``: TypeError in _args, jax, onnx and tf."""
    from tconv.dialects import jax as J, onnx as O, tf as TF

    x = np.ones((1, 5, 1))
    w = np.ones((3, 1, 1))
    assert tconv.conv(x, w, padding=np.array(2), stride=np.array(1)).shape == (1, 7, 1)
    with pytest.raises(TconvError, match="rhs_dilation"):
        J.conv_general_dilated(np.ones((1, 1, 5)), np.ones((1, 1, 3)), (1,), "VALID", rhs_dilation=np.array(2))
    with pytest.raises(TconvError, match="strides"):
        O.conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), strides=np.array(2))
    with pytest.raises(TconvError, match="output_shape"):
        TF.conv_transpose(np.ones((1, 5, 1)), np.ones((3, 1, 1)), np.array(3), 1)
    assert TF.conv1d(np.ones((1, 5, 1)), np.ones((3, 1, 1)), np.array(1), "VALID").shape == (1, 3, 1)


def test_regression_tf_transpose_huge_stride_hang():
    """An inconsistent output_shape listed every valid length in its message: 2**63 of them."""
    from tconv.dialects import tf as TF

    with time_limit(10), pytest.raises(TconvError, match="output_shape"):
        TF.conv1d_transpose(np.ones((1, 4, 1), np.float32), np.ones((3, 1, 1), np.float32), [1, 9, 1],
                            2 ** 63, "VALID")


def test_regression_weight_grad_huge_input_view_memoryerror():
    """The weight gradient copied one batch item's blocks of a 10^5 x 10^5 input before any check."""
    from tconv.dialects import torch_grad

    with budget.memory_budget(256 << 20), pytest.raises(TconvError, match="weight gradient"):
        torch_grad.conv2d_weight(huge((1, 1, 100_000, 100_000)), (1, 1, 3, 3), huge((1, 1, 99_998, 99_998)))


def test_regression_array_padding_ambiguous_truth_value():
    """``padding=np.array([1, 2])`` met ``padding in ('valid', 'same')``: NumPy's ambiguous truth value."""
    x, w = np.ones((1, 5, 5, 1)), np.ones((3, 3, 1, 1))
    assert tconv.conv(x, w, padding=np.array([1, 1])).shape == (1, 5, 5, 1)
    assert tconv.conv_transpose(x, w, crop=np.array([1, 1])).shape == (1, 5, 5, 1)
    from tconv import grad

    dx, dw, db = grad.conv_vjp(x, w, np.ones((1, 5, 5, 1)), padding=np.array([1, 1]))
    assert dx.shape == x.shape and dw.shape == w.shape
    with pytest.raises(TconvError, match="upsampling"):
        from tconv import nn

        nn.unet(upsampling=np.array(["a", "b"]))


def test_regression_gemm_many_unreaching_taps_hang():
    """A 'same' kernel of 10^4 taps on 5 cells: the kernels asked for every tap once per chunk
    of taps, quadratic in the kernel; only the few taps that reach are listed now (cached)."""
    from tconv.dialects import keras

    with time_limit(20):
        y = keras.Conv1D(2, 10_000, strides=3, padding="same")(np.ones((1, 5, 3), np.float32))
    assert y.shape == (1, 2, 2)


def test_regression_draw_translate_complex_input_shape_typeerror():
    from tconv.draw import draw

    with pytest.raises(TconvError, match="input_shape"):
        draw("keras.Conv1DTranspose(1, 3, strides=2)", 1j)
    with pytest.raises(TconvError, match="input_shape"):
        tconv.translate("keras.Conv1DTranspose(1, 3, strides=2)", "torch", 1j)


def test_regression_draw_axes_not_a_sequence_typeerror():
    """The long profile's ``test_fuzz_draw`` (seventeenth session): ``axes=10000`` raised
    ``TypeError: 'int' object is not iterable``; a list among the axes, ``TypeError:
    unhashable type``; ``(True,)`` drew axis 1; ``(0, -2)`` of a 2-D layer named one axis
    twice and passed."""
    from tconv.draw import draw

    one_d, two_d = ("keras.Conv1D(1, 1)", (1, 1)), ("keras.Conv2DTranspose(1, 3, strides=2)", (2, 3, 1))
    for layer, axes in ((one_d, 10000), (one_d, [[0]]), (one_d, (True,)), (one_d, "0"), (one_d, ()),
                        (two_d, (0, -2)), (two_d, (0, 1, 0)), (two_d, (0.0,)), (two_d, np.array([[0, 1]]))):
        with pytest.raises(TconvError, match=r"axes=.*must be one or two distinct spatial axes of the \d-D layer"):
            draw(*layer, axes=axes)
    # an int is one axis; NumPy ints and negative axes are the axes they name
    assert "spatial axes (1,)" in draw(*two_d, axes=-1) == draw(*two_d, axes=(np.int64(1),))
    assert draw(*one_d, axes=0) == draw(*one_d) == draw(*one_d, axes=np.array([0]))


def test_regression_softmax_empty_array_valueerror():
    from tconv import nn

    assert nn.Softmax()(np.zeros((0, 3), np.float32)).shape == (0, 3)


def test_regression_cli_argument_with_form_feed_two_lines():
    code, _, err = _cli(["explain", "a\x0cb", "--bogus"])
    assert code == 2 and len(err.splitlines()) == 1


def test_regression_array_data_format_and_padding_mode_ambiguous_truth_value():
    """``data_format=np.array([1, 2, 3])`` met ``data_format == 'channels_first'``: ambiguous truth value."""
    from tconv import grad

    x, w = np.ones((1, 5, 1)), np.ones((3, 1, 1))
    for kwargs in ({"data_format": np.array([1, 2, 3])}, {"padding_mode": np.array(["a", "b"])}):
        for call in (tconv.conv, tconv.conv_transpose):
            with pytest.raises(TconvError, match=next(iter(kwargs))):
                call(x, w, **kwargs)
        with pytest.raises(TconvError, match=next(iter(kwargs))):
            grad.conv_vjp(x, w, np.ones((1, 3, 1)), **kwargs)


def test_regression_array_interpolation_and_auto_pad_ambiguous_truth_value():
    """``UpSampling2D(interpolation=np.array([1, 2, 3]))`` (found by the long fuzz profile) and
    ONNX's ``auto_pad=np.array(...)`` met ``value not in (...)``: ambiguous truth value."""
    from tconv import nn
    from tconv.dialects import onnx

    with pytest.raises(TconvError, match="interpolation"):
        nn.UpSampling2D(interpolation=np.array([1, 2, 3]))
    for op in (onnx.conv, onnx.conv_transpose):
        with pytest.raises(TconvError, match="auto_pad"):
            op(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32), auto_pad=np.array([1, 2]))


def test_regression_nn_layer_array_name_ambiguous_truth_value():
    from tconv import nn

    with pytest.raises(TconvError, match="name"):
        nn.Activation("relu", name=np.array([1, 2, 3]))


def test_regression_grad_cast_of_huge_view_memoryerror():
    """The gradient cast a float32 view of 2^31 cells to float64 (16 GiB) before any check."""
    from tconv import grad

    with budget.memory_budget(256 << 20), pytest.raises(TconvError, match="cast"):
        grad.conv_vjp(huge((1, 2 ** 31, 1)), np.ones((1, 1, 1)), huge((1, 2 ** 31, 1), np.float64),
                      padding_mode="replicate")


def test_regression_batchnorm_huge_channels_memoryerror():
    from tconv import nn

    with budget.memory_budget(256 << 20), pytest.raises(TconvError, match="BatchNormalization"):
        nn.BatchNormalization()(huge((1, 1, 2 ** 31)))


_CRASHES = Path(__file__).resolve().parent.parent / "fuzz" / "crashes"

_LOAD_WEIGHTS = r"""
import sys
import h5py
import numpy as np
from tconv import TconvError, nn

inp = nn.Input((None, None, 2))  # the weight_files fixture's model
h = nn.Conv2D(3, 3, padding="same", name="c1")(inp)
model = nn.Model(inp, nn.Conv2DTranspose(2, 3, strides=2, padding="same", name="t1")(h))
try:
    model.load_weights(sys.argv[1])
except TconvError as exc:
    print("refused", exc.argument)
else:
    with h5py.File(sys.argv[1], "r") as f:  # the numeric datasets only, never an attribute
        want = [f[f"layers/{k}/vars/{i}"][()] for k in ("conv2d", "conv2d_transpose") for i in (0, 1)]
    got = model.layers[1].get_weights() + model.layers[2].get_weights()
    print("loaded", all(np.array_equal(a, b) for a, b in zip(got, want)))
"""


def test_regression_h5_vlen_name_attribute_hang():
    """A bit-flipped .weights.h5 (one flip makes a global-heap object 26 bytes long instead
    of 10; the global heap holds the variable-length ``name`` attributes) made HDF5 loop
    forever in C reading the ``vars`` group's ``name``; no signal interrupts that, so the load
    runs in a child process under a timeout. The reader now never reads attributes or
    variable-length data (Keras' loader does not read ``name`` either); the file's datasets
    are intact and load."""
    pytest.importorskip("h5py")
    path = _CRASHES / "h5py_vlen_attribute_hang.weights.h5"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-c", _LOAD_WEIGHTS, str(path)], capture_output=True,
                              text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Model.load_weights({path.name!r}) did not end within 60 s (hang inside HDF5)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() in (["loaded", "True"], ["refused", "path"]), proc.stdout + proc.stderr[-3000:]


def test_regression_h5_strings_links_and_huge_datasets_refused_unread(tmp_path, weight_files):
    """What the h5 reader refuses before reading: a variable-length string dataset where a
    weight goes, soft and external links (never followed), and a declared size over the budget."""
    h5py = pytest.importorskip("h5py")
    model, files, _ = weight_files
    before = [w.copy() for w in model.get_weights()]
    source = tmp_path / "ok.weights.h5"
    source.write_bytes(files[".weights.h5"])

    def variant(name, change):
        path = tmp_path / f"{name}.weights.h5"
        path.write_bytes(files[".weights.h5"])
        with h5py.File(path, "a") as f:
            change(f)
        return path

    def strings(f):
        del f["layers/conv2d/vars/0"]
        f.create_dataset("layers/conv2d/vars/0", data=["a", "b"], dtype=h5py.string_dtype())

    def soft(f):
        del f["layers/conv2d/vars/1"]
        f["layers/conv2d/vars/1"] = h5py.SoftLink("/layers/conv2d_transpose/vars/1")

    def external(f):
        del f["layers/conv2d"]
        f["layers/conv2d"] = h5py.ExternalLink(str(source), "/layers/conv2d")

    def huge_dataset(f):
        del f["layers/conv2d/vars/0"]
        f.create_dataset("layers/conv2d/vars/0", shape=(100_000, 100_000), dtype="f4", chunks=(100, 100))

    for name, change, match in (("strings", strings, "vars/0 of type object"),
                                ("soft", soft, "soft or external link at layers/conv2d/vars/1"),
                                ("external", external, "soft or external link at layers/conv2d"),
                                ("huge", huge_dataset, r"shape \(100000, 100000\).*budget")):
        path = variant(name, change)
        with time_limit(TIME_LIMIT), budget.memory_budget(256 << 20), \
                pytest.raises(TconvError, match=match) as info:
            model.load_weights(path)
        assert info.value.argument == "path"
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))  # nothing changed


_ZERO_BATCH_MODES = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import numpy as np
import tconv

x, w = np.zeros((0, 6, 2), np.float32), np.ones((2, 2, 1), np.float32)
for mode in ("reflect", "replicate", "circular"):
    y = tconv.conv(x, w, padding="same", dilation=2 ** 31, padding_mode=mode)
    assert y.shape == (0, 6, 1) and y.dtype == np.float32, (y.shape, y.dtype)
    y = tconv.conv_transpose(np.zeros((0, 1, 6)), np.ones((2, 1, 1)), crop="same", dilation=2 ** 31,
                             padding_mode=mode, data_format="channels_first")
    assert y.shape == (0, 1, 6) and y.dtype == np.float64, (y.shape, y.dtype)
print("ok")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_regression_padding_mode_zero_batch_huge_pad_memoryerror():
    """A padding mode on an empty batch still built the per-axis index vectors (the budget
    skips an empty batch): 'same' padding with dilation 2^31 is a 2^31-long int64 vector,
    16 GiB, a MemoryError. Run under a 3 GiB address-space limit so that it fails cleanly."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _ZERO_BATCH_MODES], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr[-3000:]


def test_regression_padding_mode_fold_huge_pad_hang(monkeypatch):
    """The transposed convolution with a padding mode folded each border cell back in a
    Python step: crop='same' with dilation 2^24 (2^24 padded cells for a one-cell output)
    took 18 s within the memory budget, and 2^28 minutes. The fold is np.add.at in chunks,
    in the same order (the same sums, bit for bit)."""
    from tconv import padding_modes
    from tconv.geometry import AxisGeometry, Geometry

    x, w = np.ones((1, 1, 1), np.float32), np.ones((2, 1, 1), np.float32)
    with time_limit(10), budget.memory_budget(1 << 30):
        y = tconv.conv_transpose(x, w, crop="same", dilation=2 ** 24, padding_mode="reflect")
    assert y.shape == (1, 1, 1) and y[0, 0, 0] == 2.0
    g = Geometry((AxisGeometry(3, 1, 1, 1, 40, 37), AxisGeometry(2, 1, 1, 1, 5, -1)), 2, 3, 1, True)
    z = np.random.default_rng(0).standard_normal((2, 80, 6, 3)).astype(np.float32)
    for mode in ("reflect", "circular", "replicate", "zeros"):
        whole = padding_modes.fold(z, g, mode)
        monkeypatch.setattr(padding_modes, "_FOLD_CHUNK", 5)
        assert padding_modes.fold(z, g, mode).tobytes() == whole.tobytes(), mode
        monkeypatch.undo()


def test_regression_padding_mode_transposed_output_not_budgeted_memoryerror():
    """conv_transpose with a padding mode budgeted only the padded plan that ops.run sees;
    the fold onto the output was not: crop=-10^9 on one cell is an output of 2*10^9 + 1
    cells (7.5 GiB as float32), a MemoryError under `ulimit -v 8 GB` (found by the long
    profile)."""
    x, w = np.full((1, 1, 1), np.nan, np.float32), np.full((1, 1, 1), np.nan, np.float32)
    for crop, data_format in ((-10 ** 9, "channels_last"), (-10 ** 8, "channels_first")):
        with budget.memory_budget(256 << 20), pytest.raises(TconvError, match=r"folded .* budget"):
            tconv.conv_transpose(x, w, crop=crop, data_format=data_format, padding_mode="reflect")
    with budget.memory_budget(256 << 20):  # within the budget: computed, its shape exact
        y = tconv.conv_transpose(np.ones((1, 1, 1)), np.ones((1, 1, 1)), crop=-10 ** 6, padding_mode="circular")
    assert y.shape == (1, 2 * 10 ** 6 + 1, 1) and y.sum() == y[0, 10 ** 6, 0] == 1  # the adjoint of a crop
