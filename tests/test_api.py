"""The public API contract of DESIGN.md section 2: names exist, signatures match the frameworks'."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from oracles.harness import require

CONTRACT = {
    "torch": ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"],
    "tf": ["convolution", "conv1d", "conv2d", "conv3d", "conv_transpose", "conv1d_transpose",
           "conv2d_transpose", "conv3d_transpose"],
    "keras": ["Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"],
    "jax": ["conv_general_dilated", "conv_transpose"],
    "onnx": ["conv", "conv_transpose"],
}

# torch's functional convolutions are builtins without an inspectable signature; these are
# their documented signatures (torch.nn.functional docs, 2.x)
TORCH = {
    "conv": ["input", "weight", "bias", "stride", "padding", "dilation", "groups"],
    "conv_transpose": ["input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"],
}


@pytest.mark.parametrize("dialect", sorted(CONTRACT))
def test_names_exist_and_are_exported(dialect):
    module = importlib.import_module(f"tconv.dialects.{dialect}")
    for name in CONTRACT[dialect]:
        assert callable(getattr(module, name)), name
        assert name in module.__all__, name
    assert hasattr(module, "REFUSALS") and hasattr(module, "DIVERGENCES")


def test_torch_signatures():
    from tconv.dialects import torch

    for name in CONTRACT["torch"]:
        params = list(inspect.signature(getattr(torch, name)).parameters)
        assert params == TORCH["conv_transpose" if "transpose" in name else "conv"], name


def _same_parameters(ours, theirs, skip=()):
    a = {k: v.default for k, v in inspect.signature(ours).parameters.items() if k not in skip}
    b = {k: v.default for k, v in inspect.signature(theirs).parameters.items() if k not in skip}
    assert list(a) == list(b), (list(a), list(b))
    for k in a:
        if b[k] is not inspect.Parameter.empty:
            assert a[k] == b[k], (k, a[k], b[k])


@pytest.mark.oracle
def test_tf_signatures_match_tensorflow():
    tf = require("tensorflow")
    from tconv.dialects import tf as ours

    for name in CONTRACT["tf"]:
        _same_parameters(getattr(ours, name), getattr(tf.nn, name))


@pytest.mark.oracle
def test_jax_signatures_match_lax():
    jax = require("jax")
    from tconv.dialects import jax as ours

    for name in CONTRACT["jax"]:
        _same_parameters(getattr(ours, name), getattr(jax.lax, name))


@pytest.mark.oracle
def test_keras_constructor_arguments_match_keras():
    keras = require("keras")
    from tconv.dialects import keras as ours

    for name in CONTRACT["keras"]:
        theirs = inspect.signature(getattr(keras.layers, name).__init__).parameters
        mine = inspect.signature(getattr(ours, name).__init__).parameters
        for param, value in theirs.items():
            if param in ("self", "kwargs"):
                continue
            assert param in mine, f"{name} lacks {param}"
            if value.default is not inspect.Parameter.empty:
                assert mine[param].default == value.default, (name, param)


ALLOWED = {  # DESIGN.md section 3: which part may import which
    "geometry": set(), "layout": set(), "errors": set(), "_args": set(),
    # spec resolves a spec by asking its dialect (a call on placeholders inside ops.planning()),
    # imported lazily inside LayerSpec.resolve, so that `import tconv` stays NumPy-only
    "spec": {"geometry", "layout", "_args", "dialects", "ops"},
    "kernels": {"geometry", "layout"},
    "ops": {"kernels", "geometry", "layout", "_args", "padding_modes"},
    "grad": {"kernels", "geometry", "layout", "_args", "ops", "padding_modes"},
    "padding_modes": {"kernels", "geometry", "layout", "_args", "ops"},
    "dialects": {"ops", "grad", "spec", "geometry", "layout", "_args", "dialects"},
    # explain lists each layer's equivalents in the other frameworks (lazily, from translation)
    "explain": {"spec", "geometry", "layout", "_args", "solve", "translation"},
    "translation": {"spec", "geometry", "layout", "_args", "dialects", "ops", "weights"},
    "weights": {"geometry", "layout", "_args"},
    "draw": {"spec", "geometry", "layout", "_args", "ops", "draw"},
    "nn": {"ops", "dialects", "spec", "geometry", "_args", "nn"},
    "tiling": {"nn", "geometry"},
}


def _tconv_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for n in names:
            parts = n.split(".")
            if parts[0] == "tconv" and len(parts) > 1:
                found.add(parts[1])
    # errors and budget (the memory budget, standard library only) may be imported everywhere
    return found - {"errors", "budget"}


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_import_layering(part):
    root = Path(__import__("tconv").__file__).parent
    paths = [root / f"{part}.py"] if (root / f"{part}.py").exists() else sorted((root / part).glob("*.py"))
    assert paths, part
    for path in paths:
        bad = _tconv_imports(path) - ALLOWED[part] - {part}
        assert not bad, f"{path.name} imports {sorted(bad)}, outside DESIGN.md's layering"


def test_dialects_never_import_each_other():
    root = Path(__import__("tconv").__file__).parent / "dialects"
    names = {"torch", "tf", "keras", "jax", "onnx"}
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "tconv.dialects":
                imported = {a.name for a in node.names} & names
                own = {path.stem, path.stem.replace("_grad", "")}
                assert imported <= own, f"{path.name} imports dialect(s) {imported - own}"
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tconv.dialects."):
                other = node.module.split(".")[2]
                assert other in ("_common", path.stem, path.stem + "_grad"), f"{path.name} imports {node.module}"


def test_side_by_side_tasks_see_the_callers_context():
    """``ops.side_by_side`` (``threads.run``) runs each helper in a copy of the caller's context: NumPy's
    errstate (a context variable in NumPy 2) and tconv's planning hold on the helper too."""
    import threading

    import numpy as np

    from tconv import ops
    from tconv.kernels import threads

    if ops.cores() < 2:
        pytest.skip("one core, or no threadpoolctl/OpenBLAS: nothing runs side by side")
    meet = threading.Barrier(2, timeout=10)  # each thread takes one task
    seen = {}

    def work(task):
        seen[task] = (np.geterr()["over"], ops._PLANS.get() is not None, threading.get_native_id())
        meet.wait()

    with np.errstate(over="raise"), ops.planning():
        ops.side_by_side(["a", "b"], work)
    assert {v[:2] for v in seen.values()} == {("raise", True)}
    assert len({v[2] for v in seen.values()}) == 2 and threads.workers() >= 2
