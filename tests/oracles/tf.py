"""TensorFlow oracle: random ``tf.nn`` convolution and transposed-convolution calls, valid and invalid.

TensorFlow's CPU kernels refuse some configurations only because they lack an
implementation (channels-first data, dilated transposed convolutions, dilated or
grouped 3-D convolutions, grouped transposed convolutions). For those,
:func:`run_framework` asks TensorFlow again under XLA (``tf.function(jit_compile=True)``),
which implements them; tconv's ``DIVERGENCES`` table names each case.
"""

from __future__ import annotations

import numpy as np

from oracles.harness import Case, channels_per_group
from tconv.dialects import tf as dialect

DIALECT = "tf"
FRAMEWORK = "tensorflow"

#: eager CPU refusals that are missing implementations, not invalid arguments
CPU_LIMITATIONS = (
    "only supports the NHWC tensor format",
    "only supports NHWC",
    "only supports NDHWC",
    "do not yet support dilation rates larger than 1",
    "does not yet support dilation rates larger than 1",
    "only supports dilated rates of 1",
    "Gradients for grouped convolutions are not supported on CPU",
    "must match last dimension of input",
    "must have the same number of channels",
)

_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def _ints(rng, lo, hi, n):
    return [int(v) for v in rng.integers(lo, hi + 1, n)]


def _sequence(rng, values, rank, channels_first, fn):
    """strides/dilations the way a user might spell them: int, [v], N values, N+2 values."""
    full = [1, 1] + values if channels_first else [1] + values + [1]
    if fn == "conv3d":
        return full
    choice = rng.random()
    if len(set(values)) == 1 and choice < 0.3:
        return int(values[0])
    if len(set(values)) == 1 and choice < 0.4:
        return [int(values[0])]
    if choice < 0.75 and not (rank == 1):
        return list(values)
    return full


def random_case(rng: np.random.Generator) -> Case:
    rank = int(rng.integers(1, 4))
    transposed = bool(rng.random() < 0.55)
    if transposed:
        fn = str(rng.choice(["conv_transpose", f"conv{rank}d_transpose"]))
    else:
        fn = str(rng.choice(["convolution", f"conv{rank}d"]))
    channels_first = bool(rng.random() < 0.25)
    data_format = _FORMATS[rank][channels_first]
    groups = int(rng.choice([1, 1, 1, 2, 3]))
    cin = groups * channels_per_group(rng)
    cout = groups * channels_per_group(rng)
    kmax, nmax = (3, 4) if rank == 3 else (4, 6)
    kernel = _ints(rng, 1, kmax, rank)
    stride = _ints(rng, 1, 3, rank)
    dilation = _ints(rng, 1, 2, rank) if rng.random() < 0.35 else [1] * rank
    if fn == "convolution" and max(dilation) > 1 and rng.random() < 0.8:
        stride = [1] * rank  # tf.nn.convolution refuses strides > 1 with dilations > 1
    spatial = _ints(rng, 1, nmax, rank)
    dtype = rng.choice([np.float32, np.float64])
    batch = int(rng.integers(1, 3))
    flaw = str(rng.choice(["none"] * 24 + ["channels", "data_format", "padding_case", "stride0",
                                           "batch_stride", "negative_pad", "explicit_rank",
                                           "output_batch", "output_length", "output_depth",
                                           "mixed_dtype"]))
    # padding
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    choice = rng.random()
    if choice < 0.25 and (rank == 2 or flaw == "explicit_rank"):
        pairs = [(int(rng.integers(0, e)), int(rng.integers(0, e))) for e in k_eff]
        if flaw == "negative_pad":
            pairs[0] = (-1, pairs[0][1])
        outer = [(0, 0), (0, 0)]
        padding = [list(p) for p in (outer + pairs if channels_first else outer[:1] + pairs + outer[1:])]
    else:
        padding = "SAME" if choice < 0.65 else "VALID"
        if flaw == "padding_case":
            padding = padding.lower()
    # data
    channels = cout if transposed else cin
    channels += flaw == "channels"
    x_shape = (batch,) + ((channels,) + tuple(spatial) if channels_first else tuple(spatial) + (channels,))
    x = rng.standard_normal(x_shape).astype(dtype)
    # the forward convolution's kernel, cin -> cout; conv_transpose maps cout back to cin
    w = rng.standard_normal(tuple(kernel) + (cin // groups, cout)).astype(dtype)
    if flaw == "mixed_dtype":
        w = w.astype(np.float64 if dtype == np.float32 else np.float32)
    kwargs: dict = {}
    strides = _sequence(rng, stride, rank, channels_first, fn)
    if flaw == "stride0":
        strides = [0] * rank if fn != "conv3d" else [1, 0, 1, 1, 1]
    if flaw == "batch_stride":
        strides = [2] + [1] * (rank + 1)
    kwargs["stride" if fn == "conv1d" else "strides"] = strides
    kwargs["padding"] = padding
    if data_format != _FORMATS[rank][0] or rng.random() < 0.5:
        kwargs["data_format"] = data_format
    if flaw == "data_format":
        kwargs["data_format"] = str(rng.choice(["channels_last", _FORMATS[1 + rank % 3][0], "NHCW"]))
    if max(dilation) > 1 or rng.random() < 0.3:
        kwargs["dilations"] = _sequence(rng, dilation, rank, channels_first, fn)
    if transposed:
        out_spatial = []
        for i, (n, s, e) in enumerate(zip(spatial, stride, k_eff)):
            extra = int(rng.integers(0, s))
            if padding in ("SAME", "same"):
                o = (n - 1) * s + 1 + extra
            elif isinstance(padding, list):
                lo, hi = padding[i + (2 if channels_first else 1)]
                o = (n - 1) * s + e - lo - hi + extra
            else:
                o = (n - 1) * s + e + extra
            if rng.random() < 0.12:  # now and then a size TF must refuse (or a neighbour it accepts)
                o += int(rng.choice([-2, -1, 1, s]))
            out_spatial.append(max(o, 0))
        out_batch = batch + (flaw == "output_batch")
        out_depth = cin + (flaw == "output_depth")
        shape = [out_batch] + ([out_depth] + out_spatial if channels_first else out_spatial + [out_depth])
        if flaw == "output_length":
            shape = shape[1:]
        if fn == "conv2d_transpose" and rng.random() < 0.1 and not channels_first:
            shape = out_spatial  # the 2-entry form conv2d_transpose also takes
        kwargs = {"output_shape": shape, **kwargs}
    return Case(DIALECT, fn, {"input": x, "filters": w}, kwargs)


def run_tconv(case: Case):
    return getattr(dialect, case.fn)(**case.arrays, **case.kwargs)


def run_framework(case: Case):
    return _call(case.fn, dict(case.arrays), dict(case.kwargs))


def _call(fn_name: str, arrays: dict, kwargs: dict) -> np.ndarray:
    """Eager TensorFlow; where its CPU kernel lacks a feature, the same numbers by another
    TensorFlow route, one missing feature at a time:

    - channels-first data: transpose to channels-last and back (XLA would do it, but XLA's
      channels-first Conv3D clamps a negative 'SAME' pad that its channels-last one keeps);
    - dilations: the same kernel with ``dilation - 1`` zeros between taps, undilated (XLA's
      Conv3D misplaces per-axis dilations);
    - grouped Conv3D: one call per group (XLA's grouped Conv3D clamps that pad too);
    - grouped transposed convolutions: XLA (``tf.function(jit_compile=True)``).
    """
    import tensorflow as tf

    fn = getattr(tf.nn, fn_name)
    try:
        return fn(**arrays, **kwargs).numpy()
    except Exception as exc:
        message = str(exc)
        if not any(text in message for text in CPU_LIMITATIONS):
            raise
    fmt = kwargs.get("data_format")
    if fmt is not None and fmt.startswith("NC"):
        return _channels_first_via_last(fn_name, arrays, kwargs)
    if "dilation" in message or "dilated" in message:
        return _call(fn_name, {**arrays, "filters": _dilate(arrays["filters"], kwargs)},
                     {**kwargs, "dilations": None})
    x, w = arrays["input"], arrays["filters"]
    if "transpose" not in fn_name and x.shape[-1] % w.shape[-2] == 0 \
            and w.shape[-1] % (x.shape[-1] // w.shape[-2]) == 0:
        # grouped Conv3D: one eager call per group (XLA's grouped Conv3D clamps a negative
        # 'SAME' pad that the CPU kernel keeps)
        groups = x.shape[-1] // w.shape[-2]
        parts = [_call(fn_name, {"input": xi, "filters": wi}, kwargs) for xi, wi in
                 zip(np.split(x, groups, axis=-1), np.split(w, groups, axis=-1))]
        return np.concatenate(parts, axis=-1)
    if fn_name == "conv2d_transpose" and len(kwargs["output_shape"]) == 2:
        # XLA lacks only conv2d_transpose's 2-entry output_shape; batch and depth from the operands
        kwargs = {**kwargs, "output_shape": [x.shape[0], *kwargs["output_shape"], w.shape[-2]]}
    return tf.function(lambda: fn(**arrays, **kwargs), jit_compile=True)().numpy()


def _to_last(seq):
    """An N+2-entry list in NC... order, in N...C order."""
    return [seq[0], *seq[2:], seq[1]]


def _channels_first_via_last(fn_name, arrays, kwargs):
    w = arrays["filters"]
    rank = w.ndim - 2
    kw = dict(kwargs)
    kw["data_format"] = _FORMATS[rank][0]
    for key in ("strides", "stride", "dilations", "output_shape"):
        if isinstance(kw.get(key), (list, tuple)) and len(kw[key]) == rank + 2:
            seq = list(kw[key])
            # 1-D ops prepend a 1 and hand the list to the 2-D op: NCW [b, c, w] puts b on
            # the channels and c on the dummy height, which NWC spells [c, w, b]
            kw[key] = seq[1:] + seq[:1] if rank == 1 and key != "output_shape" else _to_last(seq)
    if isinstance(kw.get("padding"), list):
        kw["padding"] = _to_last(kw["padding"])
    x = np.moveaxis(arrays["input"], 1, -1)
    return np.moveaxis(_call(fn_name, {**arrays, "input": x}, kw), -1, 1)


def _dilate(w: np.ndarray, kwargs: dict) -> np.ndarray:
    rank = w.ndim - 2
    d = kwargs["dilations"]
    fmt = kwargs.get("data_format") or ""
    if isinstance(d, int):
        d = [d] * rank
    elif len(d) == 1:
        d = list(d) * rank
    elif len(d) == rank + 2:
        d = d[2:] if fmt.startswith("NC") else d[1:-1]
    span = tuple(di * (k - 1) + 1 for di, k in zip(d, w.shape[:-2]))
    out = np.zeros(span + w.shape[-2:], w.dtype)
    out[tuple(slice(None, None, di) for di in d)] = w
    return out


def accepts_refusal(case: Case, expected) -> bool:
    """tconv refuses empty outputs (DIVERGENCES['empty_output']) and mixed or integer
    dtypes (DIVERGENCES['mixed_dtypes']) that TensorFlow computes."""
    if expected is not None and np.asarray(expected).size == 0:
        return True
    return len({a.dtype for a in case.arrays.values()}) > 1
