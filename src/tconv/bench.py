"""Side-by-side speed: tconv against torch, TensorFlow, JAX and onnxruntime, one run.

Each framework runs in a worker process of its own (``python -m tconv.bench worker
NAME``): loaded together, the frameworks' thread pools interfere. The parent drives the
workers in turns, workload by workload, repeat by repeat, so that a slow minute of the
machine hits every framework alike; it reports the median and minimum of each, tconv's
speed ratio against each (>1: tconv faster), achieved GFLOP/s, the share of the
machine's float32 GEMM throughput measured in the same run (at the start and once a
repeat, in a turn of its own: the median), and tconv's peak temporary memory
(tracemalloc, beyond the result) as a multiple of the output. The summary gives the
geometric mean and the lowest of the speed ratios with how far the run's own noise moves
them (the repeats resampled, :func:`_intervals`).

Every framework computes the same logical layer in its own native layout: tconv and
TensorFlow/JAX channels-last, PyTorch and onnxruntime channels-first, all float32, all
at the machine's core count.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from tconv.geometry import Geometry

FRAMEWORKS = ("tconv", "torch", "tf", "jax", "onnxruntime")
_SPATIAL_LETTERS = {1: "W", 2: "HW", 3: "DHW"}


@dataclass(frozen=True)
class Workload:
    """One layer: ``kind`` is 'transpose' (k, stride, 'same' -> spatial*stride), 'conv'
    (k, stride 1, 'same') or 'transpose-grad' (the backward pass of the transposed
    convolution: input and weight gradients, timed against torch's autograd kernel) or
    'unet' (whole-network inference of the course U-Net, 96x128x3, n_filters=32, 23 classes,
    against Keras (in the tf worker) and the equivalent PyTorch model)."""

    name: str
    kind: str
    batch: int
    spatial: tuple[int, ...]
    cin: int
    cout: int
    kernel: int
    stride: int = 1

    @property
    def rank(self) -> int:
        return len(self.spatial)

    @property
    def output_spatial(self) -> tuple[int, ...]:
        return tuple(n * self.stride for n in self.spatial) if self.kind != "conv" else self.spatial


def _unet_decoder(batch: int) -> list[Workload]:
    shapes = [((6, 8), 512, 256), ((12, 16), 256, 128), ((24, 32), 128, 64), ((48, 64), 64, 32)]
    return [Workload(f"unet-up {h}x{w}x{ci}->{2*h}x{2*w}x{co} b{batch}", "transpose", batch, (h, w), ci, co, 3, 2)
            for (h, w), ci, co in shapes]


def default_workloads() -> list[Workload]:
    """The fixed list of the speed issue: the course U-Net's decoder at batch 1 and 8, the
    seed's layer, a large 2-D layer, 1-D and 3-D, and the U-Net's forward 3x3 convolutions."""
    out = _unet_decoder(1) + _unet_decoder(8)
    out += [Workload(f"seed 8x8x1024->16x16x512 b{b}", "transpose", b, (8, 8), 1024, 512, 3, 2) for b in (1, 8)]
    out.append(Workload("large 256x256x64->512x512x32 k4", "transpose", 1, (256, 256), 64, 32, 4, 2))
    out.append(Workload("1-D 4096x64->8192x32 k4", "transpose", 1, (4096,), 64, 32, 4, 2))
    out.append(Workload("3-D 16^3x32->32^3x16 k3", "transpose", 1, (16, 16, 16), 32, 16, 3, 2))
    out += [Workload(w.name.replace("unet-up", "unet-up-grad"), "transpose-grad", w.batch, w.spatial, w.cin,
                     w.cout, w.kernel, w.stride) for w in _unet_decoder(1) + _unet_decoder(8)]
    out += [Workload(f"unet-net 96x128x3 b{b}", "unet", b, (96, 128), 3, 23, 3) for b in (1, 8)]
    convs = [((96, 128), 3, 32), ((96, 128), 32, 32), ((48, 64), 64, 64), ((24, 32), 128, 128),
             ((12, 16), 256, 256), ((6, 8), 512, 512), ((12, 16), 512, 256), ((96, 128), 64, 32)]
    out += [Workload(f"unet-conv {h}x{w}x{ci}->{co}", "conv", 1, (h, w), ci, co, 3, 1) for (h, w), ci, co in convs]
    return out


def multiply_adds(w: Workload) -> int:
    """Dense multiply-adds of the layer, from tconv's own Geometry."""
    from tconv.ops import plan_conv, plan_conv_transpose

    k = (w.kernel,) * w.rank
    if w.kind == "unet":
        from tconv.nn.bench_support import COURSE
        from tconv.nn.unet import unet

        steps = unet(**COURSE).trace((w.batch,) + w.spatial + (w.cin,))
        # convolutions only: pooling and upsampling steps carry a Geometry too, but multiply nothing
        return sum(s.geometry.multiply_adds(w.batch) for s in steps
                   if isinstance(s.geometry, Geometry) and "Conv" in type(s.layer).__name__)
    if w.kind == "conv":
        g = plan_conv(w.spatial, k, w.cin, w.cout, stride=w.stride, padding="same")
    else:
        g = plan_conv_transpose(w.spatial, k, w.cin, w.cout, stride=w.stride, crop="same")
    # the backward pass is two convolutions of the forward's size (input and weight gradients)
    return g.multiply_adds(w.batch) * (2 if w.kind == "transpose-grad" else 1)


# ----------------------------------------------------------------------- workers


def _torch_pads(w: Workload) -> tuple[int, int]:
    """PyTorch padding/output_padding giving the 'same' output length (n*stride) at the same cost."""
    pad = max(0, -(-(w.kernel - w.stride) // 2))
    return pad, 2 * pad - (w.kernel - w.stride)


class _Worker:
    """Builds one framework's callables; ``setup`` may raise ImportError (reported as absent)."""

    def __init__(self, name: str, threads: int):
        self.name, self.threads, self.fns = name, threads, []

    def setup(self, workloads: list[Workload]) -> dict:
        import numpy as np

        rng = np.random.default_rng(0)
        build = getattr(self, f"_build_{self.name}")
        info = build(None, None, None, setup=True) or {}
        for w in workloads:
            if w.kind == "unet":
                framework = {"tf": "keras"}.get(self.name, self.name)
                if framework in ("tconv", "keras", "torch"):
                    from tconv.nn.bench_support import unet_inference

                    self.fns.append(unet_inference(framework, w.batch)[0])
                else:
                    self.fns.append(None)
                continue
            x = rng.standard_normal((w.batch,) + w.spatial + (w.cin,)).astype(np.float32)
            shape = (w.kernel,) * w.rank + ((w.cin, w.cout) if w.kind == "conv" else (w.cout, w.cin))
            k = (rng.standard_normal(shape) / math.sqrt(w.cin * w.kernel ** w.rank)).astype(np.float32)
            if w.kind == "transpose-grad":
                dy = rng.standard_normal((w.batch,) + w.output_spatial + (w.cout,)).astype(np.float32)
                self.fns.append(build(w, x, k, dy=dy) if self.name in ("tconv", "torch") else None)
            else:
                self.fns.append(build(w, x, k))
        return info

    # tconv: the neutral channels-last API, exactly what the Keras dialect runs
    def _build_tconv(self, w, x, k, setup=False, dy=None):
        if setup:
            return _machine_info()
        import tconv

        if w.kind == "transpose-grad":
            from tconv.grad import conv_transpose_vjp

            return lambda: conv_transpose_vjp(x, k, dy, stride=w.stride, crop="same")[0]
        if w.kind == "transpose":
            return lambda: tconv.conv_transpose(x, k, stride=w.stride, crop="same")
        return lambda: tconv.conv(x, k, padding="same")

    def _build_torch(self, w, x, k, setup=False, dy=None):
        import numpy as np
        import torch

        if setup:
            torch.set_num_threads(self.threads)
            return {"torch": torch.__version__, "threads": torch.get_num_threads()}
        f = torch.nn.functional
        tx = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
        if w.kind == "transpose-grad":
            # autograd's own backward kernel for ConvTranspose: the input, weight and bias
            # gradients, the three that tconv's vjp returns
            tk = torch.from_numpy(np.ascontiguousarray(np.moveaxis(k, (-1, -2), (0, 1))))
            tdy = torch.from_numpy(np.ascontiguousarray(np.moveaxis(dy, -1, 1)))
            pad, out_pad = _torch_pads(w)
            r = w.rank
            return _no_grad(torch, lambda: torch.ops.aten.convolution_backward(
                tdy, tx, tk, [w.cout], [w.stride] * r, [pad] * r, [1] * r, True, [out_pad] * r, 1,
                (True, True, True))[0])
        if w.kind == "transpose":
            tk = torch.from_numpy(np.ascontiguousarray(np.moveaxis(k, (-1, -2), (0, 1))))  # (in, out, k..)
            op = [None, f.conv_transpose1d, f.conv_transpose2d, f.conv_transpose3d][w.rank]
            pad, out_pad = _torch_pads(w)
            return _no_grad(torch, lambda: op(tx, tk, stride=w.stride, padding=pad, output_padding=out_pad))
        tk = torch.from_numpy(np.ascontiguousarray(np.moveaxis(k, (-1, -2), (0, 1))))     # (out, in, k..)
        op = [None, f.conv1d, f.conv2d, f.conv3d][w.rank]
        return _no_grad(torch, lambda: op(tx, tk, padding="same"))

    def _build_tf(self, w, x, k, setup=False):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        if setup:
            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            return {"tensorflow": tf.__version__}
        tx, tk = tf.constant(x), tf.constant(k)
        if w.kind == "transpose":
            shape = [w.batch, *w.output_spatial, w.cout]
            fn = tf.function(lambda a, b: tf.nn.conv_transpose(a, b, shape, w.stride, "SAME"))
        else:
            fn = tf.function(lambda a, b: tf.nn.convolution(a, b, padding="SAME"))
        return lambda: fn(tx, tk).numpy()

    def _build_jax(self, w, x, k, setup=False):
        import jax

        if setup:
            return {"jax": jax.__version__, "devices": str(jax.devices())}
        lax = jax.lax
        letters = _SPATIAL_LETTERS[w.rank]
        dn = ("N" + letters + "C", letters + "IO", "N" + letters + "C")
        if w.kind == "transpose":
            fn = jax.jit(lambda a, b: lax.conv_transpose(a, b, (w.stride,) * w.rank, "SAME",
                                                         dimension_numbers=dn, transpose_kernel=True))
        else:
            fn = jax.jit(lambda a, b: lax.conv_general_dilated(a, b, (1,) * w.rank, "SAME", dimension_numbers=dn))
        jx, jk = jax.device_put(x), jax.device_put(k)
        return lambda: fn(jx, jk).block_until_ready()

    def _build_onnxruntime(self, w, x, k, setup=False):
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper

        if setup:
            return {"onnxruntime": ort.__version__}
        xc = np.ascontiguousarray(np.moveaxis(x, -1, 1))
        if w.kind == "transpose":
            kc = np.ascontiguousarray(np.moveaxis(k, (-1, -2), (0, 1)))  # (in, out, k..)
            node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], strides=[w.stride] * w.rank,
                                    auto_pad="SAME_UPPER")
        else:
            kc = np.ascontiguousarray(np.moveaxis(k, (-1, -2), (0, 1)))  # (out, in, k..)
            node = helper.make_node("Conv", ["X", "W"], ["Y"], auto_pad="SAME_UPPER")
        graph = helper.make_graph(
            [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(xc.shape))],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
            initializer=[onnx.numpy_helper.from_array(kc, "W")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return lambda: session.run(None, {"X": xc})[0]


def _no_grad(torch, fn):
    def run():
        with torch.no_grad():
            return fn()
    return run


def _machine_info() -> dict:
    """BLAS, threads and the machine's float32 GEMM throughput, measured now."""
    import numpy as np

    info = {"numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "processor": _cpu_name(), "cores": os.cpu_count()}
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                        for p in threadpool_info()]
    except ImportError:
        info["blas"] = "threadpoolctl not installed (pip install tconv[bench])"
    from tconv.kernels import compiled

    info["compiled_col2im"] = (f"numba {compiled.version()}" if compiled.available() else
                               "absent: the NumPy paths ran (pip install tconv[fast])")
    from tconv.kernels import gemm as kernels

    # tiles side by side (where a layer's rules say so), only onto idle CPUs unless told otherwise
    info["side_by_side"] = bool(kernels.SIDE_BY_SIDE)
    info["side_by_side_if_idle"] = bool(kernels.SIDE_BY_SIDE_IF_IDLE)
    info["openblas_thread_timeout"] = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    from tconv.nn import model

    # the network workloads: a batch as one share of whole items per core
    info["share_batch"] = bool(model.SHARE_BATCH)
    info["gemm_gflops"] = _gemm_gflops(timed=3)
    return info


#: the square float32 products whose throughput the ``% GEMM`` column divides by
GEMM_SIZES = (2048, 4096)


def _gemm_gflops(timed: int) -> dict[str, float]:
    """The machine's float32 GEMM throughput now, GFLOP/s per size of :data:`GEMM_SIZES`
    (NumPy's ``a @ a``): after one untimed product of the smallest, the best of ``timed``
    products of each."""
    import numpy as np

    out = {}
    for k, n in enumerate(GEMM_SIZES):
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        if k == 0:
            a @ a
        times = []
        for _ in range(timed):
            start = time.perf_counter()
            a @ a
            times.append(time.perf_counter() - start)
        out[str(n)] = 2 * n ** 3 / min(times) / 1e9
    return out


def _gemm_summary(samples: list[dict[str, float]]) -> dict[str, float]:
    """Per size, the median of the GEMM throughputs measured through the run (one at the
    tconv worker's setup, one a repeat: :func:`run`)."""
    return {size: statistics.median(s[size] for s in samples) for size in samples[0]}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _peak_memory(fn) -> float:
    """Peak bytes allocated during ``fn()`` beyond its result, as a multiple of the result.
    tconv's kernels keep a scratch buffer between calls (:mod:`tconv.kernels.workspace`):
    it is dropped first, so the call allocates it again and it is counted."""
    import tracemalloc

    from tconv.kernels import workspace

    workspace.release()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    if not hasattr(result, "nbytes"):
        return None  # whole networks keep their result inside; no per-layer ratio to give
    return (peak - result.nbytes) / result.nbytes


def _timed(fn, warm: float, block: float) -> tuple[float, int]:
    """Untimed calls of ``fn`` for ``warm`` seconds (at least one; none if 0), then timed
    calls back to back for ``block`` seconds (at least one): their mean seconds, and how
    many they were."""
    clock = time.perf_counter
    if warm > 0:
        start = clock()
        fn()
        while clock() - start < warm:
            fn()
    calls, start = 0, clock()
    while True:
        fn()
        calls += 1
        elapsed = clock() - start
        if elapsed >= block:
            return elapsed / calls, calls


def worker_main(name: str) -> None:
    """The worker loop: JSON requests on stdin, JSON replies on stdout."""
    threads = int(os.environ.get("TCONV_BENCH_THREADS", os.cpu_count() or 1))
    out = sys.stdout
    sys.stdout = sys.stderr  # frameworks' chatter must not corrupt the protocol
    worker = _Worker(name, threads)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "setup":
                workloads = [Workload(**{**w, "spatial": tuple(w["spatial"])}) for w in request["workloads"]]
                reply = {"ok": True, "info": worker.setup(workloads)}
            elif request["op"] == "warm":
                for fn in worker.fns:
                    if fn is not None:
                        fn()
                        fn()
                reply = {"ok": True}
            elif request["op"] == "time":
                fn = worker.fns[request["index"]]
                if fn is None:
                    raise NotImplementedError("not measured for this framework")
                seconds, calls = _timed(fn, request.get("warm", 0), request.get("block", 0))
                reply = {"ok": True, "seconds": seconds, "calls": calls}
            elif request["op"] == "gemm":
                reply = {"ok": True, "gflops": _gemm_gflops(timed=1)}
            elif request["op"] == "memory":
                reply = {"ok": True, "ratios": [_peak_memory(fn) if fn else None for fn in worker.fns]}
            else:
                break
        except ImportError as exc:
            reply = {"ok": False, "absent": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # a framework refusing a workload is reported, not fatal
            reply = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


class _Client:
    def __init__(self, name: str):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-m", "tconv.bench", "worker", name],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"ok": False, "error": f"worker {self.name} died"}
        return json.loads(line)

    def close(self) -> None:
        try:
            self.ask(op="quit")
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=30)


#: seconds of quiet before each turn: BLAS and OpenMP pools spin for a while after
#: their last task, and on a small machine one worker's spinning threads would slow the next
SETTLE_SECONDS = 0.15
#: seconds of untimed calls at the start of each turn, after the quiet (at least one call;
#: 0: none, ``--cold``). A call that follows idling is slow for every framework: on the
#: shared 2-core VM the first call after 0.15 s of quiet takes about twice as long on the
#: small layers, and the machine comes back to speed only after some 10 ms of work (the
#: thirteenth session measured the fifth to eighth calls still 1.6x slower than calls
#: back to back). Warm calls time the layer as it runs inside a network, its framework's
#: thread pool awake.
WARM_SECONDS = 0.02
#: seconds of timed calls per turn, back to back (at least one call); the turn's time is
#: their mean, as :func:`timeit` and ``torch.utils.benchmark``'s blocked timing do. 0: one
#: timed call per turn, the protocol before the fourteenth session.
BLOCK_SECONDS = 0.02


def run(workloads: list[Workload] | None = None, frameworks=FRAMEWORKS, repeats: int = 7,
        progress=None, settle: float = SETTLE_SECONDS, warm: float = WARM_SECONDS,
        block: float = BLOCK_SECONDS) -> dict:
    """Run the benchmark; returns a JSON-able report (see :func:`format_table`).

    Each repeat, each workload, the workers take turns: quiet for ``settle`` seconds,
    untimed calls for ``warm`` seconds (none if 0), then timed calls back to back for
    ``block`` seconds (at least one): the turn's time is their mean. After each repeat's
    workloads, the tconv worker measures the machine's GEMM again (after the quiet): the
    ``% GEMM`` column divides by the median of those and the one at its setup. Measured
    at the setup alone, a slow moment of the machine there set the share of every
    workload: two runs six minutes apart read 2048^3 at 191 and 122 GFLOP/s, and the
    same layer's 6.2 and 6.4 ms (12x16x256->24x32x128 b8) as 76% and 104%."""
    workloads = workloads or default_workloads()
    say = progress or (lambda text: None)
    clients, status, info = {}, {}, {}
    for name in frameworks:
        say(f"starting {name} worker")
        client = _Client(name)
        reply = client.ask(op="setup", workloads=[asdict(w) for w in workloads])
        if reply.get("ok"):
            clients[name], info[name] = client, reply["info"]
            status[name] = "ok"
            client.ask(op="warm")
        else:
            status[name] = reply.get("absent") or reply.get("error")
            client.close()
    times = {name: [[] for _ in workloads] for name in clients}
    calls = {name: [[] for _ in workloads] for name in clients}
    errors = {name: [None] * len(workloads) for name in clients}
    names = list(clients)
    gemm_samples = [info["tconv"]["gemm_gflops"]] if "tconv" in clients else []
    for rep in range(repeats):
        say(f"repeat {rep + 1}/{repeats}")
        # the workers take turns, the order rotated each repeat: whatever one framework
        # leaves behind (spinning threads, a flushed cache) falls on each of the others in turn
        order = names[rep % len(names):] + names[:rep % len(names)] if names else []
        for i in range(len(workloads)):
            for name in order:
                client = clients[name]
                if errors[name][i] is not None and not times[name][i]:
                    continue  # refused on the first repeat: do not ask again
                time.sleep(settle)
                reply = client.ask(op="time", index=i, warm=warm, block=block)
                if reply.get("ok"):
                    times[name][i].append(reply["seconds"])
                    calls[name][i].append(reply["calls"])
                else:
                    errors[name][i] = reply.get("error")
        if "tconv" in clients:  # the machine's GEMM again, a turn of its own each repeat
            time.sleep(settle)
            gemm_samples.append(clients["tconv"].ask(op="gemm")["gflops"])
    memory = clients["tconv"].ask(op="memory")["ratios"] if "tconv" in clients else None
    for client in clients.values():
        client.close()
    if "tconv" in clients:
        info["tconv"]["gemm_gflops_measured"] = gemm_samples
        info["tconv"]["gemm_gflops"] = _gemm_summary(gemm_samples)
    gemm = max(info.get("tconv", {}).get("gemm_gflops", {"0": float("nan")}).values())
    rows = []
    for i, w in enumerate(workloads):
        flops = 2 * multiply_adds(w)
        row = {"workload": w.name, "spec": asdict(w), "gflop": flops / 1e9, "frameworks": {}}
        for name in clients:
            t = times[name][i]
            row["frameworks"][name] = ({"median_ms": statistics.median(t) * 1e3, "min_ms": min(t) * 1e3,
                                        "timed_calls_per_turn": statistics.median(calls[name][i]),
                                        "turns_ms": [s * 1e3 for s in t]}
                                       if t else {"error": errors[name][i]})
        ours = row["frameworks"].get("tconv", {})
        if "median_ms" in ours:
            row["tconv_gflops"] = flops / (ours["median_ms"] / 1e3) / 1e9
            row["tconv_gemm_share"] = row["tconv_gflops"] / gemm
            for key, stat in (("ratios", "median_ms"), ("ratios_of_minimums", "min_ms")):
                row[key] = {name: r[stat] / ours[stat]
                            for name, r in row["frameworks"].items() if name != "tconv" and stat in r}
        if memory is not None:
            row["tconv_temp_memory_x_output"] = memory[i]
        rows.append(row)
    return {"frameworks": status, "info": info, "repeats": repeats, "settle_seconds": settle,
            "warm_seconds": warm, "block_seconds": block, "rows": rows, "interval": INTERVAL,
            "resamples": RESAMPLES, "summary": _summary(rows, [n for n in clients if n != "tconv"])}


def protocol_words(warm: float, block: float) -> str:
    """What a turn does after its quiet, in words (the table's protocol line)."""
    first = f"untimed calls for {warm:g} s (at least one), then " if warm else ""
    timed = (f"timed calls back to back for {block:g} s (at least one), the turn's time their mean" if block
             else "one timed call")
    return first + timed + ("" if warm else " (cold)")


#: resamples of the repeats behind each summary's interval (:func:`_intervals`), the share
#: of them the interval spans, and the seed that makes a report's intervals reproducible
RESAMPLES = 2000
INTERVAL = 0.9
RESAMPLE_SEED = 0


def _geomean(values) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def _summary(rows: list[dict], others: list[str], resamples: int = RESAMPLES) -> dict:
    """Per kind of workload and framework: the geometric mean and the lowest of tconv's speed
    ratios from medians (``geomean``, ``min``) and from minimums (``geomean_of_minimums``);
    where the rows keep each turn's time, how far the run's own noise moves the first two
    (``geomean_interval``, ``min_interval``: :func:`_intervals`)."""
    out = {}
    for kind in ("transpose", "conv", "transpose-grad", "unet"):
        picked = [r for r in rows if r["spec"]["kind"] == kind and "ratios" in r]
        minimums = _by_framework([r["ratios_of_minimums"] for r in picked], others)
        entry = {name: {"geomean": _geomean(ratios), "min": min(ratios),
                        "geomean_of_minimums": _geomean(minimums[name])}
                 for name, ratios in _by_framework([r["ratios"] for r in picked], others).items()}
        for name, interval in _intervals(picked, others, resamples).items():
            if name in entry:
                entry[name].update(interval)
        out[kind] = entry
    return out


def _by_framework(row_ratios: list[dict[str, float]], others: list[str]) -> dict[str, list[float]]:
    """The rows' speed ratios (one ``{framework: ratio}`` a row) per framework of ``others``
    that has any, and as ``fastest_of_others`` each row's lowest: what the summary and each
    of its resamples (:func:`_intervals`) take the geometric mean and the lowest of."""
    out = {name: [r[name] for r in row_ratios if name in r] for name in others}
    out["fastest_of_others"] = [min(r.values()) for r in row_ratios if r]
    return {name: ratios for name, ratios in out.items() if ratios}


def _intervals(rows: list[dict], others: list[str], resamples: int, seed: int = RESAMPLE_SEED) -> dict:
    """A percentile bootstrap over the repeats: per framework (and ``fastest_of_others``), the
    interval spanning the middle :data:`INTERVAL` of the geometric mean and of the lowest of
    tconv's speed ratios from medians, each of ``resamples`` times recomputed from the
    rows' turns drawn again with replacement. A repeat's turns are drawn together for every
    framework of a row: they ran within a second of each other, so a slow moment of the
    machine slows them alike and cancels in their ratio. It shows how far this run's own
    noise moves the summary, not how far the next run's may (the machine's speed moves
    between runs too, for every framework: docs/benchmarks.md, "Reading it"). Empty where a
    row lacks its turns (reports written before they were kept)."""
    turns = [{name: f.get("turns_ms") for name, f in r.get("frameworks", {}).items()} for r in rows]
    if not rows or any(not t.get("tconv") for t in turns):
        return {}
    rng = random.Random(seed)
    drawn = {name: ([], []) for name in others + ["fastest_of_others"]}  # per resample, mean and lowest
    for _ in range(resamples):
        row_ratios = []
        for row, times in zip(rows, turns):
            ours = times["tconv"]
            picks = [rng.randrange(len(ours)) for _ in ours]
            mine = statistics.median([ours[i] for i in picks])
            ratios = {}
            for name in others:
                theirs = times.get(name)
                if not theirs or name not in row["ratios"]:
                    continue
                # paired by repeat; a framework whose turns do not line up is drawn alone
                own = picks if len(theirs) == len(ours) else [rng.randrange(len(theirs)) for _ in theirs]
                ratios[name] = statistics.median([theirs[i] for i in own]) / mine
            row_ratios.append(ratios)
        for name, values in _by_framework(row_ratios, others).items():
            drawn[name][0].append(_geomean(values))
            drawn[name][1].append(min(values))
    tail = (1 - INTERVAL) / 2
    return {name: {"geomean_interval": _percentiles(means, tail), "min_interval": _percentiles(lowest, tail)}
            for name, (means, lowest) in drawn.items() if means}


def _percentiles(values: list[float], tail: float) -> list[float]:
    """The ``tail`` and ``1 - tail`` percentiles of ``values`` (linear between neighbours)."""
    ordered = sorted(values)

    def at(q: float) -> float:
        position = q * (len(ordered) - 1)
        below = math.floor(position)
        above = min(below + 1, len(ordered) - 1)
        return ordered[below] + (ordered[above] - ordered[below]) * (position - below)

    return [at(tail), at(1 - tail)]


def format_table(report: dict) -> str:
    """The report as a Markdown table, with the machine and the summary."""
    names = [n for n, s in report["frameworks"].items() if s == "ok"]
    others = [n for n in names if n != "tconv"]
    lines = []
    machine = report["info"].get("tconv", {})
    if machine:
        lines.append(f"Machine: {machine.get('processor')} ({machine.get('cores')} cores), "
                     f"Python {machine.get('python')}, NumPy {machine.get('numpy')}")
        lines.append(f"BLAS: {machine.get('blas')}")
        measured = machine.get("gemm_gflops_measured") or [machine["gemm_gflops"]]
        lines.append("float32 GEMM: " + ", ".join(
            f"{n}^3 {v:.0f} GFLOP/s" + (f" (median of {len(measured)}: {min(m[n] for m in measured):.0f}-"
                                         f"{max(m[n] for m in measured):.0f})" if len(measured) > 1 else "")
            for n, v in machine["gemm_gflops"].items()))
    lines.append(f"Protocol: {report.get('repeats')} repeats; each turn {report.get('settle_seconds')} s quiet, "
                 + protocol_words(report.get("warm_seconds", 0), report.get("block_seconds", 0)))
    for name, s in report["frameworks"].items():
        extra = {k: v for k, v in report["info"].get(name, {}).items()
                 if k not in ("blas", "gemm_gflops", "gemm_gflops_measured")}
        lines.append(f"- {name}: {'ok ' + json.dumps(extra) if s == 'ok' else 'ABSENT (' + str(s) + ')'}")
    lines.append("")
    head = ["workload"] + [f"{n} ms" for n in names] + [f"x {n}" for n in others] + ["GFLOP/s", "% GEMM", "temp/out"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in report["rows"]:
        cells = [r["workload"]]
        for n in names:
            f = r["frameworks"].get(n, {})
            cells.append(f"{f['median_ms']:.2f} (min {f['min_ms']:.2f})" if "median_ms" in f else "-")
        for n in others:
            ratio = r.get("ratios", {}).get(n)
            cells.append(f"{ratio:.2f}" if ratio else "-")
        cells.append(f"{r['tconv_gflops']:.0f}" if "tconv_gflops" in r else "-")
        cells.append(f"{100 * r['tconv_gemm_share']:.0f}%" if "tconv_gemm_share" in r else "-")
        mem = r.get("tconv_temp_memory_x_output")
        mem = None if r["spec"]["kind"] in ("transpose-grad", "unet") else mem
        cells.append(f"{mem:.2f}" if mem is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for kind, entry in report["summary"].items():
        for name, s in entry.items():
            spans = ""
            if "geomean_interval" in s:
                spans = (f"; over the repeats resampled ({report.get('interval', INTERVAL):.0%} interval): "
                         + ", ".join(f"{label} {lo:.2f}-{hi:.2f}" for label, (lo, hi)
                                     in (("mean", s["geomean_interval"]), ("lowest", s["min_interval"]))))
            lines.append(f"- {kind}: tconv vs {name}: geometric-mean speed ratio {s['geomean']:.2f}, "
                         f"lowest {s['min']:.2f} (from minimums: {s['geomean_of_minimums']:.2f}){spans}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        worker_main(sys.argv[2])
