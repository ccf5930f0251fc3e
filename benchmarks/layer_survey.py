"""Layers beyond ``tconv bench``'s fixed list, against PyTorch: where tconv is slow.

``tconv bench`` times the speed issue's workloads (the course U-Net, channels-last, no
groups). This probe covers what they leave out, a fixed list of layers a user meets:
grouped (depthwise, ResNeXt's 4 channels a group, 2 groups), strided and dilated forward
convolutions, stride-1 transposed convolutions cropped less than 'same' (torch's
``padding=0``), 1-D and 3-D, and channels-first data through the torch dialect (what a
PyTorch user calls). Each layer runs in tconv and in ``torch.nn.functional``, in this one
process (torch on the machine's cores), each a block of calls after a warm-up call and a
pause (interleaved call by call, each ran 2-6x slower: OpenBLAS' threads and torch's
spinning for work on the same two cores); it prints the medians, tconv's speed ratio
(> 1: tconv faster) and the path tconv's kernels took, and checks the two agree.

    python benchmarks/layer_survey.py [--repeats 15] [--markdown FILE]

It is a probe, not the issue's benchmark: one process, back to back, torch only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import tconv
from tconv import ops
from tconv.dialects import torch as torch_dialect

# (name, transposed, spatial, C_in, C_out, kernel, stride, dilation, groups, batch, padding,
# channels_first): padding is 'same' (forward) / crop 'same' (transposed), or 0 (torch's
# padding=0: 'valid' forward, no crop transposed)
LAYERS = [
    ("depthwise 3x3", False, (56, 56), 128, 128, 3, 1, 1, 128, 1, "same", False),
    ("depthwise 3x3 s2", False, (56, 56), 128, 128, 3, 2, 1, 128, 1, "same", False),
    ("ResNeXt 3x3, 4 a group", False, (56, 56), 128, 128, 3, 1, 1, 32, 1, "same", False),
    ("grouped 3x3, 2 groups", False, (28, 28), 64, 128, 3, 1, 1, 2, 1, "same", False),
    ("grouped 3x3, 8 groups", False, (28, 28), 256, 256, 3, 1, 1, 8, 1, "same", False),
    ("grouped 3x3 s2, 2 groups", False, (28, 28), 64, 64, 3, 2, 1, 2, 1, "same", False),
    ("grouped 3-D, 4 groups", False, (12, 12, 12), 128, 16, 3, 1, 1, 4, 4, 0, False),
    ("grouped transposed, 4 a group", True, (40, 40), 16, 128, 3, 1, 1, 4, 4, 0, False),
    ("stem 7x7 s2", False, (224, 224), 3, 64, 7, 2, 1, 1, 1, "same", False),
    ("3x3 s2", False, (56, 56), 64, 128, 3, 2, 1, 1, 1, "same", False),
    ("5x5 s2", False, (40, 40), 16, 64, 5, 2, 1, 1, 4, "same", False),
    ("3x3 s2 wide", False, (14, 14), 256, 512, 3, 2, 1, 1, 1, "same", False),
    ("3x3 dilated 2", False, (48, 64), 64, 64, 3, 1, 2, 1, 1, "same", False),
    ("3x3 'valid'", False, (64, 64), 64, 64, 3, 1, 1, 1, 1, 0, False),
    ("1-D k5 s2", False, (2048,), 64, 32, 5, 2, 1, 1, 4, "same", False),
    ("1-D k3", False, (2048,), 16, 64, 3, 1, 1, 1, 4, 0, False),
    ("3-D 3x3x3", False, (16, 16, 16), 64, 32, 3, 1, 1, 1, 1, "same", False),
    ("transposed k5 s1 'valid'", True, (40, 40), 128, 128, 5, 1, 1, 1, 1, 0, False),
    ("transposed k3 s1 'valid'", True, (40, 40), 32, 64, 3, 1, 1, 1, 4, 0, False),
    ("transposed k3 s1 'same'", True, (48, 64), 64, 64, 3, 1, 1, 1, 1, "same", False),
    ("transposed k4 s1, 1x1 in (DCGAN)", True, (1, 1), 512, 256, 4, 1, 1, 1, 8, 0, False),
    ("transposed k4 s2 (DCGAN)", True, (8, 8), 256, 128, 4, 2, 1, 1, 8, "same", False),
    ("transposed 3-D k3 s1 'valid'", True, (12, 12, 12), 32, 32, 3, 1, 1, 1, 4, 0, False),
    ("transposed 3-D k3 s2", True, (16, 16, 16), 64, 16, 3, 2, 1, 1, 1, "same", False),
    ("transposed 1-D k4 s2", True, (2048,), 64, 32, 4, 2, 1, 1, 4, "same", False),
    ("U-Net up b8, channels-first", True, (48, 64), 64, 32, 3, 2, 1, 1, 8, "same", True),
    ("U-Net up b1, channels-first", True, (12, 16), 256, 128, 3, 2, 1, 1, 1, "same", True),
    ("U-Net conv b1, channels-first", False, (96, 128), 32, 32, 3, 1, 1, 1, 1, "same", True),
    ("seed b1, channels-first", True, (8, 8), 1024, 512, 3, 2, 1, 1, 1, "same", True),
    ("U-Net bottom conv b1, channels-first", False, (6, 8), 512, 512, 3, 1, 1, 1, 1, "same", True),
]


def _torch_pads(layer) -> tuple[int, int]:
    """torch's padding (and output_padding) for the layer, which tconv is given too: 'same'
    (forward: half the dilated kernel each side, as torch's ``padding='same'`` at stride 1;
    transposed: an output of input x stride)."""
    _, transposed, _, _, _, k, s, d, _, _, padding, _ = layer
    if padding == 0:
        return 0, 0
    if transposed:  # crop 'same': output = input * stride
        total = d * (k - 1) + 1 - s
        return total // 2 + total % 2, total % 2
    return d * (k - 1) // 2, 0


def _calls(layer, rng):
    """(tconv call, torch call, tconv's plan) on the same data."""
    import torch

    name, transposed, spatial, cin, cout, k, s, d, groups, batch, padding, first = layer
    rank = len(spatial)
    x = rng.standard_normal((batch, cin) + spatial).astype(np.float32)  # torch's layout
    shape = ((cin, cout // groups) if transposed else (cout, cin // groups)) + (k,) * rank
    w = (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    pad, out_pad = _torch_pads(layer)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    f = torch.nn.functional
    if transposed:
        op = [None, f.conv_transpose1d, f.conv_transpose2d, f.conv_transpose3d][rank]
        theirs = lambda: op(tx, tw, stride=s, padding=pad, output_padding=out_pad, groups=groups, dilation=d)
    else:
        op = [None, f.conv1d, f.conv2d, f.conv3d][rank]
        theirs = lambda: op(tx, tw, stride=s, padding=pad, groups=groups, dilation=d)
    if first:  # the torch dialect: torch's own arguments and layouts
        fn = getattr(torch_dialect, ("conv_transpose" if transposed else "conv") + f"{rank}d")
        extra = {"output_padding": out_pad} if transposed else {}
        ours = lambda: fn(x, w, stride=s, padding=pad, groups=groups, dilation=d, **extra)
        unwrap = lambda y: y
    else:  # the neutral channels-last API
        xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        wl = np.ascontiguousarray(np.moveaxis(w, (0, 1), (-1, -2)))  # (*k, C_out/g, C_in) or (*k, C_in/g, C_out)
        if transposed:  # torch's padding crops both sides, its output_padding gives back at the end
            crop = ((pad, pad - out_pad),) * rank
            ours = lambda: tconv.conv_transpose(xl, wl, stride=s, crop=crop, dilation=d, groups=groups)
        else:
            ours = lambda: tconv.conv(xl, wl, stride=s, padding=pad, dilation=d, groups=groups)
        unwrap = lambda y: np.moveaxis(y, -1, 1)
    return ours, theirs, unwrap


def _path() -> str:
    """The path the kernels took on the last call (ops' prepared calls, newest last)."""
    prepared = list(ops._PREPARED.values())
    if not prepared or not prepared[-1].kernels:
        return "-"
    kernels = prepared[-1].kernels
    if kernels.lies is None:
        return kernels.mode
    # a kernel in PyTorch's layout multiplied as it lies: col's (transposed: its tiles are
    # the mode's) or the (channel, tap) gather's (forward: the mode is the one it stands for)
    return ("col" if kernels.mode == "col" else "im2col") + ", kernel as it lies"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    lines = ["| layer | batch | tconv ms | torch ms | x torch | tconv's path |", "|---|---|---|---|---|---|"]
    print(lines[0])
    ratios = []
    with torch.no_grad():
        for layer in LAYERS:
            ours, theirs, unwrap = _calls(layer, rng)
            got, want = unwrap(ours()), theirs().numpy()
            path = _path()
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * scale, err_msg=layer[0])
            times = {"tconv": [], "torch": []}
            for who, fn in (("tconv", ours), ("torch", theirs)):
                time.sleep(0.2)  # the other's threads (OpenBLAS', torch's) done spinning
                fn()
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    fn()
                    times[who].append(time.perf_counter() - start)
            a, b = (statistics.median(times[w]) * 1e3 for w in ("tconv", "torch"))
            ratios.append(b / a)
            line = f"| {layer[0]} | {layer[9]} | {a:.2f} | {b:.2f} | {b / a:.2f} | {path} |"
            lines.append(line)
            print(line, flush=True)
    geomean = float(np.exp(np.mean(np.log(ratios))))
    summary = f"geometric mean x torch {geomean:.2f}, lowest {min(ratios):.2f} ({len(ratios)} layers)"
    print(summary)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n\n" + summary + "\n")


if __name__ == "__main__":
    main()
