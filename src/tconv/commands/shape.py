"""``tconv shape``: the output shape of a layer on an input shape."""

from __future__ import annotations

import argparse
import sys

from tconv.commands.explain import parse_shape

HELP = "print a layer's output shape for an input shape"
DESCRIPTION = HELP + " (in the framework's own data format, batch axis optional)."
EPILOG = """\
examples:
  tconv shape "keras.Conv2DTranspose(512, 3, strides=2, padding='same')" --input 8x8x1024    # 16x16x512
  tconv shape "torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1)" --input 1,1024,8,8
  tconv shape "keras.Conv1D(8, 5, padding='causal')" --input 100x1 --json

A configuration the framework refuses is an error (exit 2) naming the reason.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="TEXT", help="the layer, as the framework writes it")
    parser.add_argument("--input", "-i", metavar="SHAPE", required=True, help="input shape, e.g. 8x8x1024")
    parser.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    from tconv.spec import parse

    spec = parse(args.spec)
    shape = spec.resolve(parse_shape(args.input)).output_shape  # a refusal raises (exit 2)
    if args.json:
        print(list(shape))
    else:
        print("x".join(map(str, shape)))
    return 0


if __name__ == "__main__":
    from tconv.cli import main

    sys.exit(main(["shape", *sys.argv[1:]]))
