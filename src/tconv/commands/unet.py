"""``tconv unet``: the course U-Net's shapes (``plan``) and a segmentation demo (``demo``).

Subcommands live in :data:`SUBCOMMANDS`; each has ``add_<name>(parser)`` and
``run_<name>(args)``, so later ones (``segment``, tiled inference) slot in beside them.
"""

from __future__ import annotations

import argparse
import sys

from tconv.errors import TconvError

HELP = "U-Net: plan shapes per level for an input size, or run the shipped model (demo)"
DESCRIPTION = HELP + "."
EPILOG = """\
examples:
  tconv unet plan --input 96x128x3                 # the course U-Net: every level's shapes
  tconv unet plan --input 97x130x3 --depth 4       # fails: names the level, the reason, fixes
  tconv unet plan --input 97x130 --framework torch --json
  tconv unet plan --input 572x572x1 --padding valid --depth 4   # the paper's variant
  tconv unet demo -o demo.png                      # segment fresh synthetic shapes in NumPy

Exit status: plan 0 ok, 1 the network breaks at that size; demo 0.
"""

SUBCOMMANDS = ("plan", "demo")


def add_plan(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", "-i", required=True, metavar="SHAPE", help="HxW or HxWxC, e.g. 96x128x3")
    p.add_argument("--depth", type=int, default=4, help="pooling levels (default 4)")
    p.add_argument("--framework", choices=("keras", "torch"), default="keras",
                   help="whose shapes and error messages (default keras)")
    p.add_argument("--padding", choices=("same", "valid"), default="same")
    p.add_argument("--upsampling", choices=("transpose", "upsample"), default="transpose")
    p.add_argument("--filters", type=int, default=32, help="n_filters (default 32)")
    p.add_argument("--classes", type=int, default=23, help="n_classes (default 23)")
    p.add_argument("--json", action="store_true", help="print JSON (ok, failing_level, reason, levels, fixes)")


def run_plan(args: argparse.Namespace) -> int:
    from tconv.commands.explain import parse_shape
    from tconv.nn.plan import plan_unet

    shape = parse_shape(args.input)
    if len(shape) not in (2, 3):
        raise TconvError("--input", args.input, "must be HxW or HxWxC")
    plan = plan_unet(shape, depth=args.depth, framework=args.framework, padding=args.padding,
                     upsampling=args.upsampling, n_filters=args.filters, n_classes=args.classes)
    print(plan.to_json(indent=2) if args.json else plan)
    return 0 if plan.ok else 1


def add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", "-n", type=int, default=32, help="fresh synthetic images (default 32)")
    p.add_argument("--seed", type=int, default=1000, help="seed of the images (default 1000)")
    p.add_argument("--model", default=None, help="a .keras file (default: the shipped model)")
    p.add_argument("--output", "-o", default="unet_demo.png", help="PNG: input | prediction | truth")
    p.add_argument("--rows", type=int, default=4, help="images shown in the PNG (default 4)")


def run_demo(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from tconv.nn import data, io

    model = io.load_keras(args.model) if args.model else io.load_shipped()
    height, width = model.input_shape[1:3]
    images, labels = data.shapes(args.images, size=(height, width), seed=args.seed)
    start = time.perf_counter()
    prediction = np.argmax(model.predict(images, batch_size=8), axis=-1)
    seconds = time.perf_counter() - start
    n_classes = model.output_shape[-1]
    per_class = data.iou(prediction, labels, n_classes)
    print(f"{args.images} synthetic images {height}x{width} (seed {args.seed}), segmented in "
          f"NumPy by tconv in {seconds:.2f} s")
    for name, value in zip(data.CLASSES, per_class):
        print(f"  IoU {name:<10} {value:.3f}")
    print(f"  mean IoU   {np.nanmean(per_class):.3f}")
    _write_png(args.output, images[: args.rows], prediction[: args.rows], labels[: args.rows])
    print(f"wrote {args.output} (input | prediction | ground truth)")
    return 0


def _write_png(path, images, prediction, labels) -> None:
    import numpy as np

    try:
        from PIL import Image
    except ImportError:
        raise TconvError("Pillow", None, "is needed to write the PNG: pip install 'tconv[nn]'") from None
    palette = np.array([[0, 0, 0], [230, 80, 70], [80, 200, 90], [80, 120, 240], [240, 220, 60],
                        [200, 90, 220], [60, 210, 220], [255, 255, 255]], np.uint8)
    gap = np.full((images.shape[1], 4, 3), 255, np.uint8)
    rows = []
    for image, pred, truth in zip(images, prediction, labels):
        rows.append(np.concatenate([(image * 255).round().astype(np.uint8), gap,
                                    palette[pred % len(palette)], gap,
                                    palette[truth % len(palette)]], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    Image.fromarray(np.concatenate(rows[:-1], axis=0)).save(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="unet_command", metavar="SUBCOMMAND")
    module = sys.modules[__name__]
    helps = {"plan": "shapes per level for an input size; the first failing level and fixes",
             "demo": "segment fresh synthetic images with the shipped model; per-class IoU and a PNG"}
    for name in SUBCOMMANDS:
        p = sub.add_parser(name, help=helps.get(name, name))
        getattr(module, f"add_{name}")(p)
        p.set_defaults(_unet_run=getattr(module, f"run_{name}"))


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "_unet_run", None):
        raise TconvError("SUBCOMMAND", None, f"is missing: one of {', '.join(SUBCOMMANDS)}")
    return args._unet_run(args)


if __name__ == "__main__":
    from tconv.cli import main

    sys.exit(main(["unet", *sys.argv[1:]]))
