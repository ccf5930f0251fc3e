"""PyTorch oracle: random ``torch.nn.functional.conv*`` calls, valid and invalid."""

from __future__ import annotations

import numpy as np

from oracles.harness import Case, channels_per_group
from tconv.dialects import torch as dialect

DIALECT = "torch"
FRAMEWORK = "torch"


def _small(rng, lo, hi, rank):
    return tuple(int(v) for v in rng.integers(lo, hi + 1, rank))


def random_case(rng: np.random.Generator) -> Case:
    rank = int(rng.integers(1, 4))
    transposed = bool(rng.random() < 0.65)
    groups = int(rng.choice([1, 1, 2, 3]))
    cin = groups * channels_per_group(rng)
    cout = groups * channels_per_group(rng)
    kernel = _small(rng, 1, 4 if rank < 3 else 3, rank)
    stride = _small(rng, 1, 3, rank)
    dilation = _small(rng, 1, 2, rank)
    spatial = _small(rng, 1, 7 if rank < 3 else 4, rank)
    dtype = rng.choice([np.float32, np.float64])
    batch = int(rng.integers(1, 3))
    # now and then, break something the framework checks
    flaw = rng.choice(["none"] * 8 + ["channels", "groups", "bias", "stride", "padding"])
    x_shape = (batch, cin + (flaw == "channels")) + spatial
    if rng.random() < 0.1:
        x_shape = x_shape[1:]  # unbatched
    x = rng.standard_normal(x_shape).astype(dtype)
    g = groups + (flaw == "groups")
    if transposed:
        w = rng.standard_normal((cin, cout // groups) + kernel).astype(dtype)
        nb = cout // groups * g
    else:
        w = rng.standard_normal((cout, cin // groups) + kernel).astype(dtype)
        nb = cout
    b = rng.standard_normal(nb + (flaw == "bias")).astype(dtype) if rng.random() < 0.7 else None
    kwargs = {"stride": stride if rng.random() < 0.8 else int(stride[0]), "groups": g}
    if flaw == "stride":
        kwargs["stride"] = 0
    kwargs["dilation"] = dilation if rng.random() < 0.8 else int(dilation[0])
    if transposed:
        kwargs["padding"] = tuple(int(rng.integers(0, d * (k - 1) // 2 + 2)) for k, d in zip(kernel, dilation))
        kwargs["output_padding"] = tuple(int(rng.integers(0, max(s, d) + (rng.random() < 0.1)))
                                         for s, d in zip(stride, dilation))
        if flaw == "padding":
            kwargs["padding"] = -1
    else:
        choice = rng.random()
        if choice < 0.15:
            kwargs["padding"] = "same"
        elif choice < 0.25:
            kwargs["padding"] = "valid"
        else:
            kwargs["padding"] = tuple(int(rng.integers(0, 3)) for _ in range(rank))
        if flaw == "padding":
            kwargs["padding"] = "full"
    arrays = {"input": x, "weight": w}
    if b is not None:
        arrays["bias"] = b
    fn = f"conv_transpose{rank}d" if transposed else f"conv{rank}d"
    return Case(DIALECT, fn, arrays, kwargs)


def run_tconv(case: Case):
    return getattr(dialect, case.fn)(**case.arrays, **case.kwargs)


def run_framework(case: Case):
    import torch

    torch.set_num_threads(1)
    fn = getattr(torch.nn.functional, case.fn)
    arrays = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in case.arrays.items()}
    with torch.no_grad():
        return fn(**arrays, **case.kwargs).numpy()


def accepts_refusal(case: Case, expected) -> bool:
    """torch's float32 oneDNN kernel returns an empty tensor where its reference kernel
    refuses "Output size is too small"; tconv refuses (DIVERGENCES['empty_output'])."""
    return case.fn.startswith("conv_transpose") and expected is not None and np.asarray(expected).size == 0
