"""``tconv draw``: pictures of a layer's computation (SVG, PNG, GIF, APNG or the terminal)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tconv.errors import TconvError

HELP = "draw a layer: scatter, zero insertion, overlap map, matrix or forward window"
DESCRIPTION = HELP + ", from the same Geometry the kernels run."
SEED_SPEC = "keras.Conv2DTranspose(512, 3, strides=2, padding='same')"
SEED_INPUT = "8x8x1024"
EPILOG = f"""\
The format follows the suffix of -o: .svg, .png, .gif, .apng; without -o the picture is
drawn in the terminal (colour when it is one). PNG, GIF and APNG need Pillow:
pip install tconv[draw].

examples:
  tconv draw                                      # the seed: {SEED_SPEC} on {SEED_INPUT}
  tconv draw "{SEED_SPEC}" --input {SEED_INPUT} -o seed.gif
  tconv draw "torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1, output_padding=1)" --input 1024x8x8 -o torch.svg
  tconv draw "torch.nn.ConvTranspose1d(1, 1, 4, stride=2, padding=1)" --input 1x6 --view overlap
  tconv draw "keras.Conv1DTranspose(1, 3, strides=2, padding='same')" --input 4x1 --view matrix
  tconv draw "keras.Conv3DTranspose(8, 3, strides=2)" --input 4x4x4x1 --axes 0,2 --view zeros --frame 5
"""

_SUFFIXES = {".svg": "svg", ".png": "png", ".gif": "gif", ".apng": "apng"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tconv.draw.scene import VIEWS

    parser.add_argument("spec", nargs="?", metavar="TEXT", help="the layer, as the framework writes it")
    parser.add_argument("--input", "-i", metavar="SHAPE", help="input shape, e.g. 8x8x1024")
    parser.add_argument("--view", default="scatter", choices=VIEWS, help="what to draw (default: scatter)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write FILE (.svg .png .gif .apng)")
    parser.add_argument("--frame", metavar="N", help="frame number, or 'all' (an SVG strip)")
    parser.add_argument("--axes", metavar="A,B", help="the spatial axes drawn (default: the last two of 3-D)")
    parser.add_argument("--cell", type=int, metavar="PX", help="pixels per cell (default 24)")
    colour = parser.add_mutually_exclusive_group()
    colour.add_argument("--colour", "--color", dest="colour", action="store_true", default=None,
                        help="ANSI colour in the terminal (default: when it is one)")
    colour.add_argument("--no-colour", "--no-color", dest="colour", action="store_false")


def run(args: argparse.Namespace) -> int:
    from tconv.commands.explain import parse_shape
    from tconv.draw import draw

    if args.spec is None and args.input is None:
        args.spec, args.input = SEED_SPEC, SEED_INPUT
    if args.spec is None:
        raise TconvError("TEXT", None, "is missing: give the layer, e.g. \"keras.Conv2DTranspose(512, 3, strides=2)\"")
    shape = parse_shape(args.input) if args.input else None
    frame = None
    if args.frame is not None:
        frame = "all" if args.frame == "all" else _int(args.frame, "--frame")
    axes = None
    if args.axes:
        axes = tuple(_int(a, "--axes") for a in args.axes.replace("x", ",").split(",") if a.strip())
    if args.output is None:
        colour = sys.stdout.isatty() if args.colour is None else args.colour
        sys.stdout.write(draw(args.spec, shape, view=args.view, format="tty", axes=axes, frame=frame,
                              colour=colour))
        return 0
    path = Path(args.output)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise TconvError("-o", args.output, f"must end in one of {', '.join(_SUFFIXES)}")
    picture = draw(args.spec, shape, view=args.view, format=fmt, axes=axes, frame=frame, cell=args.cell)
    picture.save(path)
    print(f"wrote {path} ({len(picture.encode() if isinstance(picture, str) else picture):,} bytes)")
    return 0


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TconvError(name, text, "must be an integer") from None


if __name__ == "__main__":
    from tconv.cli import main

    sys.exit(main(["draw", *sys.argv[1:]]))
