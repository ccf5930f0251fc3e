"""``tconv translate``: a layer's exact equivalent in another framework, weights and code included."""

from __future__ import annotations

import argparse

from tconv.errors import TconvError

HELP = "translate a layer to another framework exactly (arguments, composite, weights, code)"
DESCRIPTION = HELP + "."
SEED_SPEC = "keras.Conv2DTranspose(512, 3, strides=2, padding='same')"
EPILOG = f"""\
SHAPE is the source's input shape in its own data format, batch axis optional (8x8x1024).
Without --input the seed's 8x8x1024 is used for Keras/TF channels-last layers, else the
spec must write its input (input=, lhs=, X=) or --input is needed.

examples:
  tconv translate "{SEED_SPEC}" --to torch
  tconv translate "{SEED_SPEC}" --to torch --code      # an nn.Module, weights converted
  tconv translate "torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1, output_padding=1)" --to keras --input 1024x8x8
  tconv translate "onnx.ConvTranspose(W=(8,4,3,3), strides=[2,2], pads=[0,0,1,1])" --to jax --input 1x8x16x16 --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="TEXT", help="the layer, as its framework writes it")
    parser.add_argument("--to", required=True, choices=("keras", "tf", "torch", "jax", "onnx"),
                        help="the target framework")
    parser.add_argument("--input", "-i", metavar="SHAPE", help="the source's input shape, e.g. 8x8x1024")
    parser.add_argument("--code", action="store_true", help="print runnable source for the target framework")
    parser.add_argument("--json", action="store_true", help="print the translation as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from tconv.commands.explain import parse_shape
    from tconv.spec import parse
    from tconv.translation import translate

    spec = parse(args.spec)
    if args.input:
        shape = parse_shape(args.input)
    elif any(spec.get(n) is not None for n in ("input", "lhs", "X")):
        shape = None
    elif spec.framework == "keras" and spec.rank == 2 and (spec.get("data_format") or "channels_last") \
            == "channels_last":
        shape = (8, 8, 1024)  # the seed's input
    else:
        raise TconvError("--input", None, "is needed: the source's input shape, e.g. --input 1024x8x8")
    t = translate(spec, to=args.to, input_shape=shape)
    if args.json:
        d = t.to_dict()
        if args.code:
            d["code"] = t.code
        print(json.dumps(d, indent=2))
    elif args.code:
        print(t.code)
    else:
        print(t)
    return 0
