"""tconv.spec: the safe text parser and LayerSpec round trips."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings, strategies as st

from tconv.errors import TconvError
from tconv.spec import LayerSpec, parse

TEXTS = [
    "keras.Conv2DTranspose(512, 3, strides=2, padding='same')",
    "keras.layers.Conv2D(64, (3, 5), strides=(2, 1), padding='valid', use_bias=False)",
    "tf.keras.layers.Conv1DTranspose(8, 4, strides=2, padding='same', output_padding=1)",
    "keras.Conv3D(4, 3, data_format='channels_first', dilation_rate=2)",
    "torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1, output_padding=1)",
    "nn.Conv1d(3, 8, 5, 2, 1)",
    "torch.nn.Conv3d(2, 4, kernel_size=(1, 3, 3), padding='same', bias=False)",
    "torch.nn.functional.conv_transpose2d(stride=2, padding=1, weight=(1024, 512, 3, 3))",
    "F.conv2d(stride=2, padding=1, kernel_size=3, out_channels=8)",
    "tf.nn.conv2d_transpose(output_shape=[1, 16, 16, 512], strides=2, padding='SAME', filters=(3, 3, 512, 1024))",
    "tf.nn.conv2d(filters=(3, 3, 1024, 512), strides=[1, 2, 2, 1], padding=[[0, 0], [1, 1], [1, 1], [0, 0]])",
    "tf.nn.conv_transpose(filters=(3, 3, 3, 8, 4), output_shape=(1, 4, 4, 4, 8), strides=1)",
    "jax.lax.conv_transpose(strides=(2, 2), padding='SAME', rhs=(3, 3, 1024, 512), transpose_kernel=True)",
    "lax.conv_general_dilated(rhs=(8, 4, 3), window_strides=(1,), padding=((2, 1),), lhs_dilation=(2,))",
    "onnx.ConvTranspose(strides=[2, 2], auto_pad='SAME_UPPER', W=(1024, 512, 3, 3))",
    "onnx.Conv(W=(8, 3, 3, 3), pads=[1, 1, -1, 1], strides=[2, 2])",
]


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip(text):
    spec = parse(text)
    again = parse(repr(spec))
    assert again == spec and hash(again) == hash(spec)
    assert repr(again) == repr(spec)


def test_seed_repr_is_the_seed():
    text = "keras.Conv2DTranspose(512, 3, strides=2, padding='same')"
    spec = parse(text)
    assert repr(spec) == text
    assert (spec.framework, spec.op, spec.transposed, spec.rank) == ("keras", "Conv2DTranspose", True, 2)
    assert parse("keras.layers.Conv2DTranspose(filters=512, kernel_size=3, strides=2, padding='same')") == spec


def test_rank_and_direction():
    assert parse("lax.conv_general_dilated(window_strides=(1, 1), padding='SAME')").transposed is False
    assert parse("lax.conv_general_dilated(window_strides=(1,), padding=((1, 1),), lhs_dilation=(2,))").transposed
    assert parse("onnx.ConvTranspose(W=(4, 4, 3, 3, 3))").rank == 3
    assert parse("tf.nn.convolution(strides=1)").rank is None


HOSTILE = [
    ("keras.Conv2D(8, x)", "column 17"),
    ("keras.Conv2D(8, os.system('ls'))", "column 17"),
    ("keras.Conv2D(8, 3, padding=f'{x}')", "f-strings"),
    ("keras.Conv2D(8, 3, strides=a.b)", "attribute"),
    ("keras.Conv2D(8, 10**100)", "arithmetic"),
    ("keras.Conv2D(8, 99999999999)", "magnitude"),
    ("keras.Conv2D(8, 1e999)", "finite"),
    ("keras.Conv2D(8, ((((((3,),),),),),))", "nest"),
    ("keras.Conv2D(8, " + "(" * 300 + "3" + ")" * 300 + ")", "nest"),
    ("keras.Conv2D(8, 3, " + "strides=1, " * 400 + ")", "characters"),
    ("__import__('os').system('ls')", "dotted name"),
    ("os.system('rm -rf /')", "not a known"),
    ("keras.Conv2D(*args)", "column"),
    ("keras.Conv2D(**kw)", "column"),
    ("keras.Conv2D(8, 3, lambda: 1)", "lambda"),
    ("keras.Conv2D(8, 3, stridez=2)", "no argument"),
    ("keras.Conv2D(8, 3, filters=2)", "twice"),
    ("keras.Conv2D(8, b'3')", "bytes"),
    ("keras.Conv2D(8, 3) + 1", "single call"),
    ("keras.Conv2D(8, 3", "syntax"),
    ("conv2d(stride=2)", "ambiguous"),
    ("F.conv2d(x, w, stride=2)", "keyword"),
    ("", "empty"),
]


@pytest.mark.parametrize("text, words", HOSTILE)
def test_hostile_refused_quickly(text, words):
    start = time.perf_counter()
    with pytest.raises(TconvError) as info:
        parse(text)
    assert time.perf_counter() - start < 0.2
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_not_a_string():
    with pytest.raises(TconvError):
        parse(42)


_scalar = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
           | st.sampled_from(["same", "valid", "SAME", "SAME_UPPER", "it's \"q\""]))
_value = _scalar | st.lists(_scalar | st.lists(_scalar, max_size=3).map(tuple), max_size=4).map(tuple)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(TEXTS), st.data())
def test_round_trip_any_values(text, data):
    """Whatever literal values the arguments take, repr parses back to an equal spec."""
    spec = parse(text)
    from tconv.spec import _OPS

    params = _OPS[(spec.module, spec.op)].params
    names = data.draw(st.lists(st.sampled_from(params), unique=True, min_size=1, max_size=4))
    args = tuple((n, data.draw(_value)) for n in params if n in names)
    if spec.op == "conv_general_dilated":
        args = tuple(a for a in args if a[0] != "lhs_dilation")
    other = LayerSpec(spec.framework, spec.op, spec.transposed, spec.rank, args, spec.module)
    back = parse(repr(other))
    assert back.args == other.args


def test_expressions_are_parsed_one_thread_at_a_time(monkeypatch):
    """CPython 3.11's AST builder can fail when threads parse at once ("AST constructor
    recursion depth mismatch", gh-106905; seen in the web server's concurrency test):
    spec.parse_expression, which spec.parse and the web forms use, parses one thread at a
    time. ast.parse is replaced by one that records how many run at once."""
    import ast
    import threading

    from tconv import spec

    real, lock, state = ast.parse, threading.Lock(), {"now": 0, "most": 0}

    def counting(*args, **kwargs):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.002)  # long enough for another thread to enter, were it allowed
        with lock:
            state["now"] -= 1
        return real(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", counting)
    threads = [threading.Thread(target=lambda: [spec.parse("torch.nn.ConvTranspose2d(4, 2, 3)")
                                                for _ in range(5)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["most"] == 1


@pytest.mark.parametrize("entry", ["resolve", "translate", "explain", "draw"])
def test_input_shapes_are_checked_in_one_place(entry):
    """Every entry point that takes an input shape checks it alike (``spec.shape_tuple``): a
    0-d array (it has ``__iter__`` but cannot be iterated; the long fuzz profile found
    translate raising NumPy's TypeError on one), text, bools and negative lengths are
    refused by name; an array of lengths is taken as its ints."""
    import numpy as np

    import tconv
    from tconv.draw import draw

    text = "keras.Conv1D(2, 3)"
    call = {"resolve": lambda shape: parse(text).resolve(shape),
            "translate": lambda shape: tconv.translate(text, "torch", shape),
            "explain": lambda shape: tconv.explain(text, shape),
            "draw": lambda shape: draw(text, shape, format="svg")}[entry]
    for shape, rule in ((np.array(2), "must be a sequence of integers"), (5, "must be a sequence of integers"),
                        ("1x8x3", "use tconv.cli"), ((1, 8, True), "must be a sequence of integers"),
                        ((1, -8, 3), "must not contain negative lengths"), ((), "must be a sequence of integers")):
        with pytest.raises(TconvError, match=rf"input_shape=.*{rule}"):
            call(shape)
    assert call(np.array([1, 8, 3])) is not None
