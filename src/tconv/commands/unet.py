"""``tconv unet``: the course U-Net's shapes (``plan``), a segmentation demo (``demo``) and
exact tiled segmentation of images of any size (``segment``).

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
  tconv unet segment scan.tif --tile 512 -o labels.zarr        # tiled, exact, on dask
  tconv unet segment big.png --model m.keras --scheduler tcp://10.0.0.5:8786 -o labels.png

Exit status: plan 0 ok, 1 the network breaks at that size; demo and segment 0.
"""

SUBCOMMANDS = ("plan", "demo", "segment")


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


# ------------------------------------------------------------------- segment

_PICTURES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_TIFFS = (".tif", ".tiff")


def add_segment(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="PNG (or another Pillow picture), TIFF, zarr or .npy")
    p.add_argument("--model", default=None, help="a .keras file (default: the shipped model)")
    p.add_argument("--tile", default="512", metavar="N|HxW",
                   help="output tile, rounded down to the network's alignment (default 512)")
    p.add_argument("--output", "-o", required=True, metavar="OUT",
                   help="labels (uint8 argmax): .png, .tif/.tiff, .zarr or .npy")
    p.add_argument("--scheduler", default="threads", metavar="threads|processes|ADDRESS",
                   help="dask's threaded or process scheduler, or a dask.distributed scheduler "
                        "address such as tcp://127.0.0.1:8786 (default threads)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _read_image(path: str, channels: int, scheduler: str):
    """``(array-like (H, W, C), scale)``: read lazily where the format allows (zarr, .npy,
    uncompressed TIFF by memory map; any TIFF through its zarr view on threads)."""
    import numpy as np
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if not Path(path).exists():
        raise TconvError("IMAGE", path, "does not exist")
    if suffix in _PICTURES:
        try:
            from PIL import Image
        except ImportError:
            raise TconvError("Pillow", None, "is needed to read the image: pip install 'tconv[tiling]'") from None
        Image.MAX_IMAGE_PIXELS = None  # huge images are the point
        with Image.open(path) as picture:
            array = np.asarray(picture.convert({1: "L", 3: "RGB", 4: "RGBA"}.get(channels, "RGB")))
    elif suffix in _TIFFS:
        import tifffile

        try:
            array = tifffile.memmap(path, mode="r")
        except (ValueError, OSError):  # compressed or tiled: not a plain memory map
            if scheduler == "threads":
                import zarr

                array = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
            else:
                array = tifffile.imread(path)
    elif suffix == ".zarr" or Path(path).is_dir():
        import zarr

        array = zarr.open_array(path, mode="r")
    elif suffix == ".npy":
        array = np.load(path, mmap_mode="r")
    else:
        raise TconvError("IMAGE", path, "must be a PNG (or JPEG, BMP...), TIFF, zarr or .npy file")
    shape = tuple(array.shape)
    if len(shape) == 2:
        array = np.asarray(array)[:, :, None]
        shape = array.shape
    if len(shape) != 3:
        raise TconvError("IMAGE", shape, "must be (height, width) or (height, width, channels)")
    if shape[-1] != channels:
        if shape[-1] > channels and channels in (1, 3):  # drop alpha (or keep the first band)
            array = np.asarray(array)[:, :, :channels]
        else:
            raise TconvError("IMAGE", shape, f"must have {channels} channels for this model")
    dtype = np.dtype(array.dtype)
    scale = 1.0 / np.iinfo(dtype).max if dtype.kind in "ui" else None
    return array, scale


def _scheduler(value: str):
    if value in ("threads", "processes", "synchronous"):
        return value, None
    try:
        from distributed import Client
    except ImportError:
        raise TconvError("--scheduler", value, "names a dask.distributed scheduler, which needs "
                         "pip install 'tconv[tiling]'") from None
    try:
        client = Client(value, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise TconvError("--scheduler", value, f"must be threads, processes or the address of a "
                         f"running dask scheduler ({type(exc).__name__}: {exc})") from None
    return client, client


def _compute(collection, scheduler, client, progress: bool):
    """Compute with a progress bar: dask's for local schedulers, distributed's for a cluster."""
    import dask

    if client is not None:
        future = client.compute(collection)
        if progress:
            from distributed import progress as show

            show(future)
            print(file=sys.stderr)
        return future.result()
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            return dask.compute(collection, scheduler=scheduler)[0]
    return dask.compute(collection, scheduler=scheduler)[0]


def _write_labels(path: str, labels, tile, scheduler, client, progress: bool) -> None:
    import numpy as np
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if suffix == ".zarr":
        import zarr

        target = zarr.open_array(path, mode="w", shape=labels.shape, dtype="uint8",
                                 chunks=tuple(int(t) for t in tile))
        _compute(labels.store(target, lock=False, compute=False), scheduler, client, progress)
        return
    if suffix not in _PICTURES[:1] + _TIFFS + (".npy",):
        raise TconvError("--output", path, "must end in .png, .tif, .tiff, .zarr or .npy")
    array = np.asarray(_compute(labels, scheduler, client, progress), dtype=np.uint8)
    if suffix == ".png":
        try:
            from PIL import Image
        except ImportError:
            raise TconvError("Pillow", None, "is needed to write a PNG: pip install 'tconv[tiling]'") from None
        Image.fromarray(array).save(path)
    elif suffix in _TIFFS:
        import tifffile

        tifffile.imwrite(path, array, compression="zlib")
    else:
        np.save(path, array)


def run_segment(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from tconv import tiling
    from tconv.commands.explain import parse_shape
    from tconv.nn import io

    model = io.load_keras(args.model) if args.model else io.load_shipped()
    try:
        tile = parse_shape(args.tile)
    except TconvError:
        raise TconvError("--tile", args.tile, "must be N or HxW, e.g. 512 or 512x768") from None
    if len(tile) == 1:
        tile = (tile[0], tile[0])
    if len(tile) != 2:
        raise TconvError("--tile", args.tile, "must be N or HxW")
    n_classes = model.output_shape[-1]
    if n_classes > 256:
        raise TconvError("--model", args.model, f"has {n_classes} classes; uint8 labels hold 256")
    scheduler, client = _scheduler(args.scheduler)
    try:
        channels = int(model.input_shape[-1])
        image, scale = _read_image(args.image, channels, args.scheduler)
        height, width = image.shape[:2]
        plan = tiling.plan(model, tile, image_shape=image.shape)
        logits = tiling.lazy(model, image, plan.tile, scale=scale)
        labels = logits.argmax(axis=-1).astype(np.uint8)
        print(f"{args.image}: {height}x{width}x{channels} -> {plan.output[0]}x{plan.output[1]} "
              f"labels of {n_classes} classes; {plan.grid[0]}x{plan.grid[1]} tiles of "
              f"{plan.tile[0]}x{plan.tile[1]}, halo {plan.halo}, work overhead "
              f"{plan.work_overhead:.2f}x; scheduler {args.scheduler}", file=sys.stderr)
        start = time.perf_counter()
        _write_labels(args.output, labels, plan.tile, scheduler, client, not args.no_progress)
        seconds = time.perf_counter() - start
    finally:
        if client is not None:
            client.close()
    print(f"wrote {args.output} in {seconds:.1f} s ({height * width / seconds / 1e6:.3f} "
          "megapixels/s)")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="unet_command", metavar="SUBCOMMAND")
    module = sys.modules[__name__]
    helps = {"plan": "shapes per level for an input size; the first failing level and fixes",
             "demo": "segment fresh synthetic images with the shipped model; per-class IoU and a PNG",
             "segment": "label an image of any size tile by tile on dask, exactly as the whole "
                        "image (PNG, TIFF, zarr)"}
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
