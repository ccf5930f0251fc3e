"""The transposed-convolution paths of tconv.kernels.gemm side by side, in one process.

Each workload of ``tconv bench``'s transposed list runs under every path (gemm.MODE forced),
the paths interleaved call by call, back to back, at the machine's BLAS threads; prints the
median and minimum in ms. This is how the paths were chosen (docs/benchmarks.md, "How the
kernels were chosen"); ``tconv bench`` is the side-by-side with the frameworks.

    python benchmarks/kernel_paths.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tconv
from tconv import bench
from tconv.kernels import compiled, gemm

PATHS = ("per_tap", "flat", "col")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    if not compiled.available():
        raise SystemExit("Numba is not installed: pip install -e '.[fast]'")
    rng = np.random.default_rng(0)
    print("| workload | " + " | ".join(f"{p} ms" for p in PATHS) + " | picked |")
    print("|---|" + "---:|" * len(PATHS) + "---|")
    for w in bench.default_workloads():
        if w.kind != "transpose":
            continue
        x = rng.standard_normal((w.batch,) + w.spatial + (w.cin,)).astype(np.float32)
        k = (rng.standard_normal((w.kernel,) * w.rank + (w.cout, w.cin)) / 30).astype(np.float32)
        times = {p: [] for p in PATHS}
        for rep in range(args.repeats + 2):
            for p in PATHS:
                gemm.MODE = p
                start = time.perf_counter()
                tconv.conv_transpose(x, k, stride=w.stride, crop="same")
                if rep >= 2:  # the first two: warm-up
                    times[p].append(time.perf_counter() - start)
        gemm.MODE = None
        geometry = tconv.ops.plan_conv_transpose(w.spatial, (w.kernel,) * w.rank, w.cin, w.cout,
                                                 stride=w.stride, crop="same")
        cells = [f"{statistics.median(times[p]) * 1e3:.2f} ({min(times[p]) * 1e3:.2f})" for p in PATHS]
        print(f"| {w.name} | " + " | ".join(cells) + f" | {gemm._mode(geometry)} |", flush=True)


if __name__ == "__main__":
    main()
