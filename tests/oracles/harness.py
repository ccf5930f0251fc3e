"""The shared machinery of the oracle tests: cases, comparison, golden files."""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from tconv.errors import TconvError

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


@dataclass
class Case:
    """One call: ``fn`` of a dialect with named ``arrays`` and JSON-able ``kwargs``."""

    dialect: str
    fn: str
    arrays: dict[str, Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def repro(self) -> str:
        """A one-line reproducer (shapes and dtypes for the arrays, seeds elsewhere)."""
        arrays = ", ".join(f"{k}={_describe(v)}" for k, v in self.arrays.items())
        kwargs = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"tconv.dialects.{self.dialect}.{self.fn}({arrays}{', ' if kwargs else ''}{kwargs})"


def _describe(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"array{tuple(v.shape)}:{v.dtype}"
    return repr(v)


def oracle(name: str):
    return importlib.import_module(f"oracles.{name}")


def require(module: str):
    """Import a framework, or skip, unless TCONV_REQUIRE_ORACLES is set (CI), where absence fails."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("TCONV_REQUIRE_ORACLES"):
            pytest.fail(f"{module} is required (TCONV_REQUIRE_ORACLES is set) but not importable: {exc}")
        pytest.skip(f"{module} not installed: pip install -e '.[oracles]'")


def assert_refuses(call: Callable[[], Any], argument: str, *, exact: bool = False) -> TconvError:
    """``call()`` must raise the package's ValueError naming ``argument`` in its message
    (and as ``.argument`` when ``exact``); the dialects' refusal tests share this."""
    with pytest.raises(TconvError) as info:
        call()
    assert isinstance(info.value, ValueError)
    if exact:
        assert info.value.argument == argument
    assert argument in str(info.value), (argument, str(info.value))
    return info.value


def channels_per_group(rng: np.random.Generator) -> int:
    """Channels per group of a drawn case: mostly 1 or 2 (small cases, quick to run), and
    one case in four 4 to 40, enough for the kernels' fast paths (accumulate takes layers
    of 4 input channels and more, col 8 per group, shift 32). Drawn from 1-2 only, no live
    framework ever checked those paths through a dialect's layouts, and a stride-1
    transposed layer written channels-first (torch's ``conv_transpose2d(x, w, padding=1)``)
    raised KeyError for a session unseen."""
    return int(rng.integers(4, 41)) if rng.random() < 0.25 else int(rng.integers(1, 3))


def tolerance(dtype) -> dict:
    return dict(rtol=1e-4, atol=1e-4) if np.dtype(dtype) == np.float32 else dict(rtol=1e-9, atol=1e-9)


def compare(case: Case, run_tconv: Callable[[Case], Any], expected: Any, refused: bool,
            framework_error: str = "", accepts_refusal: Callable[[Case, Any], bool] | None = None) -> None:
    """tconv must refuse exactly where the framework refused, else match shape and values.

    ``accepts_refusal(case, expected)`` names the framework results tconv declares it
    refuses on purpose (each a documented DIVERGENCE of the dialect).
    """
    try:
        got = run_tconv(case)
    except TconvError as exc:
        if refused or (accepts_refusal is not None and accepts_refusal(case, expected)):
            return
        pytest.fail(f"tconv refused what the framework computes: {exc}\n  repro: {case.repro()}")
    except Exception as exc:  # anything but TconvError is a bug
        pytest.fail(f"tconv raised {type(exc).__name__} (not TconvError): {exc}\n  repro: {case.repro()}")
    if refused:
        pytest.fail(f"tconv computed {np.shape(got)} where the framework refused: {framework_error}\n"
                    f"  repro: {case.repro()}")
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}\n  repro: {case.repro()}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}\n  repro: {case.repro()}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    tol = tolerance(expected.dtype)
    np.testing.assert_allclose(got, expected, rtol=tol["rtol"], atol=tol["atol"] * scale,
                               err_msg=f"repro: {case.repro()}")


#: a directory where each test process notes the live case it is about to run (CI sets it):
#: a framework that aborts the process (XLA once did) leaves its case behind, which the
#: test's own report, lost with the process, would have named
LAST_CASE_DIR = "TCONV_ORACLE_LAST_CASE_DIR"


def note_case(dialect: str, seed: int, case: Case) -> None:
    """Note the case about to run in ``$TCONV_ORACLE_LAST_CASE_DIR/<worker>`` (replacing the
    last one); nothing where the variable is unset."""
    directory = os.environ.get(LAST_CASE_DIR)
    if not directory:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(directory, worker).write_text(
        f"test_live_framework[{dialect}] seed={seed}\n  repro: {case.repro()}\n"
        f"  rerun: cd tests && ../.venv/bin/python -c \"import numpy as np; from oracles.harness import "
        f"oracle, run_live; m = oracle('{dialect}'); print(run_live(m, m.random_case("
        f"np.random.default_rng({seed}))))\"\n")


def run_live(mod, case: Case) -> tuple[Any, bool, str]:
    """Run the framework: ``(output, refused, message)``."""
    try:
        return np.asarray(mod.run_framework(case)), False, ""
    except Exception as exc:  # the framework's own refusal, whatever its type
        return None, True, f"{type(exc).__name__}: {str(exc)[:300]}"


# ------------------------------------------------------------------ golden files


def golden_path(dialect: str) -> Path:
    return GOLDEN / f"{dialect}.npz"


def save_golden(dialect: str, cases: list[tuple[Case, Any, bool, str]], versions: dict) -> None:
    arrays, manifest = {}, []
    for i, (case, out, refused, msg) in enumerate(cases):
        for k, v in case.arrays.items():
            arrays[f"{i}/{k}"] = v
        if not refused:
            arrays[f"{i}/__output__"] = out
        manifest.append({"fn": case.fn, "kwargs": _encode(case.kwargs), "arrays": list(case.arrays),
                         "refused": refused, "message": msg})
    arrays["__manifest__"] = np.frombuffer(json.dumps({"versions": versions, "cases": manifest}).encode(),
                                           dtype=np.uint8)
    np.savez_compressed(golden_path(dialect), **arrays)


def load_golden(dialect: str) -> tuple[dict, list[tuple[Case, Any, bool, str]]]:
    data = np.load(golden_path(dialect))
    meta = json.loads(data["__manifest__"].tobytes().decode())
    out = []
    for i, entry in enumerate(meta["cases"]):
        arrays = {k: data[f"{i}/{k}"] for k in entry["arrays"]}
        case = Case(dialect, entry["fn"], arrays, _decode(entry["kwargs"]))
        expected = None if entry["refused"] else data[f"{i}/__output__"]
        out.append((case, expected, entry["refused"], entry["message"]))
    return meta["versions"], out


def _encode(value: Any) -> Any:
    """JSON keeps lists but not tuples; frameworks may treat them differently, so mark tuples."""
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
