"""Every dialect against its live framework (hypothesis over random configurations)
and against golden vectors recorded from the frameworks (runs without them)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from oracles.harness import compare, golden_path, load_golden, note_case, oracle, require, run_live

HERE = Path(__file__).resolve().parent
DIALECTS = sorted(p.stem for p in (HERE / "oracles").glob("*.py")
                  if p.stem not in ("__init__", "harness"))
EXAMPLES = int(os.environ.get("TCONV_ORACLE_EXAMPLES", "150"))


@pytest.mark.oracle
@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**63 - 1))
def test_live_framework(dialect, seed):
    mod = oracle(dialect)
    require(mod.FRAMEWORK)
    case = mod.random_case(np.random.default_rng(seed))
    note_case(dialect, seed, case)
    expected, refused, message = run_live(mod, case)
    compare(case, mod.run_tconv, expected, refused, message, getattr(mod, "accepts_refusal", None))


@pytest.mark.oracle
@pytest.mark.parametrize("dialect", ["torch", "onnx"])
def test_live_framework_on_kernels_multiplied_as_they_lie(dialect, monkeypatch):
    """PyTorch's and ONNX's kernels, transposed ``(C_in, C_out/groups, *k)`` and forward
    ``(C_out, C_in/groups, *k)``, reach the kernels as the neutral layout's moved view; col
    (transposed) and the (channel, tap) gather (forward) multiply them as they lie
    (``gemm._col_lies_run``, ``gemm._im2col_lies_run``) where they are large. The drawn cases
    are small, so here every kernel counts as large: the live framework checks those paths
    on 80 drawn cases, of which some must take each (counted)."""
    from tconv.kernels import compiled, gemm

    mod = oracle(dialect)
    require(mod.FRAMEWORK)
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no col path")
    monkeypatch.setattr(gemm, "COL_LIES_MIN_KERNEL", 0)
    monkeypatch.setattr(gemm, "IM2COL_LIES_MIN_RATIO", 0)
    taken = []
    for name in ("_col_lies_run", "_im2col_lies_run"):
        real = getattr(gemm, name)
        monkeypatch.setattr(gemm, name, lambda *a, name=name, real=real: taken.append(name) or real(*a))
    for seed in range(80):
        case = mod.random_case(np.random.default_rng(seed))
        note_case(dialect, seed, case)
        expected, refused, message = run_live(mod, case)
        compare(case, mod.run_tconv, expected, refused, message, getattr(mod, "accepts_refusal", None))
    assert taken.count("_col_lies_run") >= 5 and taken.count("_im2col_lies_run") >= 5, taken


@pytest.mark.oracle
@pytest.mark.parametrize("transposed", [False, True])
def test_live_torch_on_many_groups_of_few_channels(transposed, monkeypatch):
    """ResNeXt-like layers (32 groups of 2-4 channels) take the grouped loop on the input
    permuted groups innermost (asserted taken); the drawn cases have fewer groups, so here
    PyTorch itself checks that path, forward and transposed, strided and padded, with a bias."""
    from tconv.dialects import torch as torch_dialect
    from tconv.kernels import compiled

    torch = require("torch")
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no grouped loop")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 128, 9, 10)).astype(np.float32)
    shape = (128, 2, 3, 3) if transposed else (128, 4, 3, 3)  # (C_in, C_out/g, *k) / (C_out, C_in/g, *k)
    w = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(64 if transposed else 128).astype(np.float32)
    kwargs = dict(stride=2, padding=1, groups=32)
    if transposed:
        kwargs["output_padding"] = 1
    taken = []
    real = compiled.grouped_permuted
    monkeypatch.setattr(compiled, "grouped_permuted", lambda *a: taken.append(1) or real(*a))
    got = (torch_dialect.conv_transpose2d if transposed else torch_dialect.conv2d)(x, w, b, **kwargs)
    f = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    want = f(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kwargs).numpy()
    assert taken
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_vectors(dialect):
    """Recorded by tests/record_golden.py from the real framework; no framework needed here."""
    path = golden_path(dialect)
    assert path.exists(), f"no golden file for {dialect}: run python tests/record_golden.py {dialect}"
    versions, cases = load_golden(dialect)
    mod = oracle(dialect)
    assert len(cases) >= 100
    assert any(refused for _, _, refused, _ in cases) and not all(r for _, _, r, _ in cases)
    for case, expected, refused, message in cases:
        compare(case, mod.run_tconv, expected, refused, message, getattr(mod, "accepts_refusal", None))


@pytest.mark.oracle
def test_jax_oracle_survives_the_xla_abort_on_negative_padding():
    """A drawn jax.lax.conv_transpose (use_consistent_padding, a transposed kernel, negative
    padding) makes XLA:CPU's algebraic simplifier fail a CHECK and abort the process; it
    killed a CI worker. The oracle computes negative padding the exact way
    (``oracles.jax.exact_negative_padding``); run in a child, so that an abort fails this
    test instead of the worker."""
    import subprocess
    import sys

    require("jax")
    # the case drawn from seed 377739517415397090 before the draws of channels changed
    code = ("import numpy as np\n"
            "from oracles.harness import Case, compare, oracle, run_live\n"
            "mod = oracle('jax')\n"
            "rng = np.random.default_rng(0)\n"
            "arrays = {'lhs': rng.standard_normal((1, 3, 2, 2, 1)), 'rhs': rng.standard_normal((2, 2, 1, 3, 1))}\n"
            "kwargs = dict(use_consistent_padding=True, strides=(2, 1, 3), padding=((1, 1), (-1, 1), (-1, 1)),\n"
            "              rhs_dilation=None, transpose_kernel=True,\n"
            "              dimension_numbers=((4, 2, 1, 0, 3), (1, 4, 0, 2, 3), (3, 4, 1, 2, 0)))\n"
            "case = Case('jax', 'conv_transpose', arrays, kwargs)\n"
            "expected, refused, message = run_live(mod, case)\n"
            "assert not refused, message\n"
            "compare(case, mod.run_tconv, expected, refused, message, None)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(HERE)}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_live_case_is_noted_before_the_framework_runs(tmp_path, monkeypatch):
    """Where ``TCONV_ORACLE_LAST_CASE_DIR`` is set (CI), the live test notes each case in a
    file of its process before the framework runs it: a process the framework aborts leaves
    the case behind (``.ci/run`` prints it), its seed and a command that reruns it."""
    from oracles.harness import LAST_CASE_DIR

    monkeypatch.setenv(LAST_CASE_DIR, str(tmp_path))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    mod = oracle("torch")
    seed = 12467459133
    case = mod.random_case(np.random.default_rng(seed))
    note_case("torch", seed, case)
    noted = (tmp_path / "gw7").read_text()
    assert f"seed={seed}" in noted and case.repro() in noted
    command = noted.split("rerun: cd tests && ../.venv/bin/python -c ")[1].strip()
    assert f"default_rng({seed})" in command and "oracle('torch')" in command
