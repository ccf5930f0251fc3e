"""``tconv explain``: a layer's arithmetic, rule and pitfalls, in words.

Run with no arguments to explain the seed question's layer,
``keras.Conv2DTranspose(512, 3, strides=2, padding='same')`` on 8x8x1024.
"""

from __future__ import annotations

import argparse
import sys

from tconv.errors import TconvError

HELP = "explain a layer: sizes, padding and cropping per axis, the framework's rule, pitfalls"
DESCRIPTION = HELP + "."
SEED_SPEC = "keras.Conv2DTranspose(512, 3, strides=2, padding='same')"
SEED_INPUT = "8x8x1024"
EPILOG = f"""\
SHAPE is in the framework's own data format, batch axis optional: 8x8x1024 or 8,8,1024.

examples:
  tconv explain                                   # the seed: {SEED_SPEC} on {SEED_INPUT}
  tconv explain "keras.Conv2DTranspose(512, 3, strides=2, padding='same')" --input 8x8x1024
  tconv explain "torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1, output_padding=1)" --input 1024x8x8
  tconv explain "tf.nn.conv2d_transpose(filters=(3,3,512,1024), output_shape=[1,16,16,512], strides=2, padding='SAME')" --input 1x8x8x1024
  tconv explain "jax.lax.conv_transpose(rhs=(3,3,1024,512), strides=(2,2), padding='SAME')" --input 1x8x8x1024
  tconv explain "onnx.ConvTranspose(W=(1024,512,3,3), strides=[2,2], auto_pad='SAME_UPPER')" --input 1x1024x8x8
  tconv explain "keras.Conv2D(64, 3, strides=2, padding='same')" --input 16x16x3 --json
  tconv explain --solve 8 16 --kernel 3 --stride 2   # which settings map 8 cells to 16?

Exit status: 0 explained, 1 the framework refuses the configuration (the reason is printed),
2 the text or shape could not be read.
"""


def parse_shape(text: str) -> tuple[int, ...]:
    """``'8x8x1024'`` or ``'8,8,1024'`` (spaces and brackets tolerated) -> ``(8, 8, 1024)``."""
    cleaned = text.strip().strip("()[]").replace(" ", "")
    parts = [p for p in cleaned.replace("x", ",").replace("X", ",").split(",") if p != ""]
    if not parts or len(parts) > 6 or not all(p.isdigit() and len(p) <= 7 for p in parts):
        raise TconvError("--input", text, "must be lengths separated by 'x' or ',', e.g. 8x8x1024")
    return tuple(int(p) for p in parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", metavar="TEXT", help="the layer, as the framework writes it")
    parser.add_argument("--input", "-i", metavar="SHAPE", help="input shape, e.g. 8x8x1024")
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the explanation as Markdown")
    parser.add_argument("--solve", nargs=2, type=int, metavar=("INPUT", "OUTPUT"),
                        help="list the settings per framework mapping INPUT cells to OUTPUT cells")
    parser.add_argument("--kernel", type=int, help="with --solve: the kernel size")
    parser.add_argument("--stride", type=int, help="with --solve: the stride")


def run(args: argparse.Namespace) -> int:
    from tconv.explain import explain

    if args.solve:
        from tconv.solve import solve

        rows = solve(args.solve[0], args.solve[1], kernel=args.kernel, stride=args.stride)
        if args.json:
            import json

            print(json.dumps([r.__dict__ for r in rows], indent=2))
        else:
            print("\n".join(str(r) for r in rows) or "no setting found")
        return 0
    if args.spec is None and args.input is None:
        args.spec, args.input = SEED_SPEC, SEED_INPUT
    if args.spec is None:
        raise TconvError("TEXT", None, "is missing: give the layer, e.g. \"keras.Conv2DTranspose(512, 3, strides=2)\"")
    shape = parse_shape(args.input) if args.input else None
    e = explain(args.spec, shape)
    if args.json:
        print(e.to_json(indent=2))
    elif args.markdown:
        print(e.to_markdown())
    else:
        print(e.render(colour=sys.stdout.isatty()))
    return 1 if e.refusal else 0


if __name__ == "__main__":
    from tconv.cli import main

    sys.exit(main(["explain", *sys.argv[1:]]))
