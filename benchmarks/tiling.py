"""Tiled U-Net inference on a 4096 x 4096 RGB image: speed, peak memory, halo overhead.

    python benchmarks/tiling.py                      # the table in docs/tiling.md
    python benchmarks/tiling.py --size 2048 --filters 4 --tiles 256 512

Every measured run is a fresh subprocess (``--run``) that reads the image from a zarr
array on disk (uint8, chunks of 512, scaled to [0, 1] inside each tile's task), computes
the logits tile by tile with :func:`tconv.tiling.lazy`, reduces each tile to uint8 labels
(argmax) and stores them into a zarr array: nothing of image size is ever held in memory.
A ``whole`` run (``model(image)`` on the smaller image, no tiling) gives the reference
speed and memory. Peak memory is the peak resident set: ``ru_maxrss`` of the subprocess on the threaded
scheduler; on a ``dask.distributed`` LocalCluster of worker processes, the peak of the sum
of the resident sets of the subprocess and all its children (scheduler, nannies, workers),
sampled every 20 ms, and each worker's own peak. BLAS runs one thread per dask thread
(``OPENBLAS_NUM_THREADS=1`` and friends), so the cores are shared by tiles, not by BLAS.

The overheads need no run: :func:`tconv.tiling.plan` gives, per tile size, the input
pixels an interior tile reads per output pixel it keeps, the input pixels read per image
pixel over the whole grid, and the multiply-adds computed per whole-image multiply-add.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SINGLE_THREAD_BLAS = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def make_image(path: Path, size: int) -> None:
    """A synthetic RGB scene (uint8): blobs and stripes, written chunk by chunk."""
    import zarr

    z = zarr.open_array(str(path), mode="w", shape=(size, size, 3), chunks=(512, 512, 3), dtype="uint8")
    rng = np.random.default_rng(size)
    for r in range(0, size, 512):
        for c in range(0, size, 512):
            yy, xx = np.mgrid[r: r + 512, c: c + 512].astype(np.float32)
            base = 0.5 + 0.25 * np.sin(yy / 37.0)[..., None] * np.cos(xx / 53.0)[..., None] * \
                np.array([1.0, -0.6, 0.3], np.float32)
            noise = rng.normal(0, 0.05, (512, 512, 3)).astype(np.float32)
            z[r: r + 512, c: c + 512] = np.clip((base + noise) * 255, 0, 255).astype(np.uint8)


def _tree_rss(root) -> tuple[int, dict]:
    import psutil

    total, per = 0, {}
    for proc in [root] + root.children(recursive=True):
        try:
            rss = proc.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        per[proc.pid] = rss
    return total, per


def run_one(args) -> dict:
    """One measured run (inside a fresh subprocess)."""
    import dask
    import psutil
    import zarr

    from tconv import tiling
    from tconv.nn import io

    model = io.load_keras(args.model)
    image = zarr.open_array(args.image, mode="r")
    out = zarr.open_array(args.out, mode="w", shape=image.shape[:2], chunks=(args.tile, args.tile),
                          dtype="uint8")
    labels = tiling.lazy(model, image, args.tile, scale=1 / 255).argmax(axis=-1).astype(np.uint8)
    store = labels.store(out, lock=False, compute=False)
    me = psutil.Process()
    peak_total, peak_workers, stop = [0], {}, threading.Event()

    def sample():
        while not stop.is_set():
            total, per = _tree_rss(me)
            peak_total[0] = max(peak_total[0], total)
            for pid, rss in per.items():
                if pid != me.pid:
                    peak_workers[pid] = max(peak_workers.get(pid, 0), rss)
            time.sleep(0.02)

    cluster = client = None
    if args.scheduler == "whole":  # no tiling: model(image) on the whole image, for reference
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        x = np.asarray(image[:], dtype=np.float32)[None] * np.float32(1 / 255)
        out[:] = model(x)[0].argmax(axis=-1).astype(np.uint8)
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        return {"scheduler": "whole", "workers": 1, "size": image.shape[0], "tile": image.shape[0],
                "seconds": seconds, "mpix_per_s": image.shape[0] * image.shape[1] / seconds / 1e6,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_tree_mb": peak_total[0] / 2**20, "peak_worker_mb": 0}
    if args.scheduler == "distributed":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, worker_dashboard_address=None)
        client = Client(cluster)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    if client is not None:
        client.compute(store).result()
    else:
        dask.compute(store, scheduler="threads", num_workers=args.workers)
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    worker_pids = set()
    if client is not None:
        worker_pids = set(client.run(os.getpid).values())
        client.close()
        cluster.close()
    counts = np.bincount(np.asarray(out[:: 64, :: 64]).ravel(), minlength=1)
    return {"scheduler": args.scheduler, "workers": args.workers, "size": image.shape[0],
            "tile": args.tile, "seconds": seconds,
            "mpix_per_s": image.shape[0] * image.shape[1] / seconds / 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_tree_mb": peak_total[0] / 2**20,
            "peak_worker_mb": max((v for k, v in peak_workers.items() if k in worker_pids),
                                  default=0) / 2**20,
            "label_classes_seen": int((counts > 0).sum())}


def measure(model_path, image_path, out_path, scheduler, tile, workers) -> dict:
    cmd = [sys.executable, __file__, "--run", "--model", str(model_path), "--image", str(image_path),
           "--out", str(out_path), "--scheduler", scheduler, "--tile", str(tile),
           "--workers", str(workers)]
    env = dict(os.environ, **SINGLE_THREAD_BLAS)
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=4096, help="image side (default 4096)")
    p.add_argument("--small", type=int, default=2048, help="the smaller image for the memory check")
    p.add_argument("--filters", type=int, default=32, help="n_filters of the course U-Net (default 32, the course)")
    p.add_argument("--tiles", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--memory-tile", type=int, default=512, help="tile of the memory-vs-image check")
    p.add_argument("--workers", type=int, default=2, help="threads, or worker processes (default 2)")
    p.add_argument("--json", default=None, help="also write the results here")
    # one measured run (internal)
    p.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--image", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--scheduler", default="threads", help=argparse.SUPPRESS)
    p.add_argument("--tile", type=int, default=512, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run:
        print(json.dumps(run_one(args)))
        return 0

    from tconv import nn, tiling

    model = nn.unet(input_size=(96, 128, 3), n_filters=args.filters, n_classes=23)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                          f"{platform.python_version()}, {platform.platform()}",
               "model": f"course U-Net (depth 4, n_filters={args.filters}, 23 classes, random "
                        f"weights), {model.count_params():,} parameters",
               "command": "python benchmarks/tiling.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "overheads": [], "runs": []}
    for tile in sorted(set(args.tiles + [args.memory_tile])):
        pl = tiling.plan(model, tile, image_shape=(args.size, args.size, 3))
        results["overheads"].append({"tile": pl.tile[0], "halo": pl.halo, "input_tile": pl.input_tile[0],
                                     "interior": pl.interior_overhead, "read": pl.read_overhead,
                                     "work": pl.work_overhead, "grid": pl.grid})
        print(f"tile {pl.tile[0]}: halo {pl.halo}, interior {pl.interior_overhead:.2f}, "
              f"read {pl.read_overhead:.2f}, work {pl.work_overhead:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_path = tmp / "unet.keras"
        model.save(model_path)
        images = {}
        for size in sorted({args.size, args.small}):
            images[size] = tmp / f"image{size}.zarr"
            make_image(images[size], size)
        plan = [("whole", args.small, args.small), ("threads", args.small, args.memory_tile)]
        plan += [("threads", args.size, t) for t in args.tiles]
        plan += [("distributed", args.small, args.memory_tile), ("distributed", args.size, args.memory_tile)]
        for scheduler, size, tile in plan:
            r = measure(model_path, images[size], tmp / "labels.zarr", scheduler, tile, args.workers)
            results["runs"].append(r)
            print(f"{scheduler:>11} {size}^2 tile {tile}: {r['seconds']:.1f} s, "
                  f"{r['mpix_per_s']:.3f} MP/s, peak RSS {r['peak_rss_mb']:.0f} MB, "
                  f"tree {r['peak_tree_mb']:.0f} MB, worker {r['peak_worker_mb']:.0f} MB", flush=True)
    for scheduler in ("threads", "distributed"):
        key = "peak_rss_mb" if scheduler == "threads" else "peak_tree_mb"
        pick = {r["size"]: r[key] for r in results["runs"]
                if r["scheduler"] == scheduler and r["tile"] == args.memory_tile}
        if args.size in pick and args.small in pick:
            ratio = pick[args.size] / pick[args.small]
            results[f"memory_ratio_{scheduler}"] = ratio
            print(f"{scheduler}: peak memory {args.size}^2 / {args.small}^2 at tile "
                  f"{args.memory_tile} = {ratio:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
