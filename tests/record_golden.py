"""Record golden vectors from the real frameworks: ``python tests/record_golden.py [DIALECT ...]``.

Each dialect's oracle draws ``--count`` random cases from ``--seed``; the framework's
output (or its refusal) is stored with the case in ``tests/golden/<dialect>.npz``,
together with the framework versions, so that ``test_golden_vectors`` checks tconv
where no framework is installed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_ENABLE_X64", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from oracles.harness import run_live, save_golden  # noqa: E402

PACKAGES = {"torch": ["torch"], "tf": ["tensorflow-cpu", "tensorflow"], "keras": ["keras", "tensorflow-cpu"],
            "jax": ["jax", "jaxlib"], "onnx": ["onnx", "onnxruntime"]}


def versions(dialect: str) -> dict:
    out = {"numpy": np.__version__}
    for name in PACKAGES.get(dialect, []):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dialects", nargs="*", default=["torch", "tf", "keras", "jax", "onnx"])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    for dialect in args.dialects:
        mod = importlib.import_module(f"oracles.{dialect}")
        rng = np.random.default_rng([args.seed, sum(map(ord, dialect))])
        cases = []
        for _ in range(args.count):
            case = mod.random_case(rng)
            cases.append((case, *run_live(mod, case)))
        save_golden(dialect, cases, versions(dialect))
        refused = sum(r for _, _, r, _ in cases)
        print(f"{dialect}: {len(cases)} cases ({refused} refused) -> tests/golden/{dialect}.npz")


if __name__ == "__main__":
    main()
