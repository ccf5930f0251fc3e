"""JAX oracle: random ``jax.lax.conv_general_dilated`` / ``conv_transpose`` calls, valid and invalid.

Layouts are drawn as random ``dimension_numbers`` (strings with arbitrary spatial
letters, or ConvDimensionNumbers index tuples, which ``run_framework`` wraps), so the
arrays are built axis by axis from the drawn specs.
"""

from __future__ import annotations

import contextlib

import numpy as np

from oracles.harness import Case, channels_per_group
from tconv.dialects import jax as dialect

DIALECT = "jax"
FRAMEWORK = "jax"

_LETTERS = "HWDXYZ"
_FLAWS = ["channels", "groups", "stride", "dilation", "padding_string", "padding_negative",
          "strides_length", "dimension_numbers", "dtype", "string_lhs_dilation", "preferred",
          "batch_group", "ndim"]


def _perm(spec: str, pair: str, spatial: list[str]) -> tuple[int, ...]:
    return (spec.index(pair[0]), spec.index(pair[1])) + tuple(spec.index(c) for c in spatial)


def random_case(rng: np.random.Generator) -> Case:
    rank = int(rng.integers(1, 4))
    transpose = bool(rng.random() < 0.45)
    flaw = str(rng.choice(_FLAWS)) if rng.random() < 0.25 else "none"
    dtype = np.float32 if rng.random() < 0.5 else np.float64
    letters = [str(c) for c in rng.choice(list(_LETTERS), rank, replace=False)]
    size = {c: int(rng.integers(1, 8 if rank < 3 else 5)) for c in letters}
    ksize = {c: int(rng.integers(1, 5 if rank < 3 else 4)) for c in letters}
    rhs_letters = [str(c) for c in rng.permutation(letters)]

    groups = 1 if transpose else int(rng.choice([1, 1, 2, 3]))
    bgroups = 2 if not transpose and groups == 1 and rng.random() < 0.12 else 1
    batch = int(rng.integers(1, 3)) * bgroups
    cin = groups * channels_per_group(rng)
    cout = max(groups, bgroups) * channels_per_group(rng)
    if flaw == "batch_group" and not transpose:
        bgroups, batch = 2, 3

    # layout: default, permuted strings, or ConvDimensionNumbers
    kind = rng.choice(["default", "strings", "strings", "tuples"])
    if kind == "default":
        rhs_letters = letters
        if transpose:
            lhs_spec, rhs_spec, out_spec = ("N" + "".join(letters) + "C", "".join(letters) + "IO",
                                            "N" + "".join(letters) + "C")
        else:
            lhs_spec, rhs_spec, out_spec = ("NC" + "".join(letters), "OI" + "".join(letters),
                                            "NC" + "".join(letters))
        dimension_numbers = None
    else:
        lhs_spec = "".join(rng.permutation(["N", "C"] + letters))
        rhs_spec = "".join(rng.permutation(["O", "I"] + letters))
        out_spec = "".join(rng.permutation(["N", "C"] + letters))
        rhs_letters = [c for c in rhs_spec if c not in "OI"]
        if kind == "strings":
            dimension_numbers = (lhs_spec, rhs_spec, out_spec)
        else:
            dimension_numbers = (_perm(lhs_spec, "NC", rhs_letters), _perm(rhs_spec, "OI", rhs_letters),
                                 _perm(out_spec, "NC", rhs_letters))
    if flaw == "dimension_numbers" and kind == "strings":
        dimension_numbers = (lhs_spec, rhs_spec.replace("O", "I", 1) if rng.random() < 0.5
                             else rhs_spec[::-1], out_spec + "Q")

    transpose_kernel = bool(rng.random() < 0.5) if transpose else False
    # kernel axis sizes: O/I positions hold (out, in/g), swapped under transpose_kernel
    o_size, i_size = (cin, cout) if transpose_kernel else (cout, cin // groups)
    if flaw == "channels":
        i_size += 1
    lhs_shape = tuple(batch if c == "N" else cin if c == "C" else size[c] for c in lhs_spec)
    rhs_shape = tuple(o_size if c == "O" else i_size if c == "I" else ksize[c] for c in rhs_spec)
    lhs = rng.standard_normal(lhs_shape).astype(dtype)
    rhs_dtype = (np.float64 if dtype == np.float32 else np.float32) if flaw == "dtype" else dtype
    rhs = rng.standard_normal(rhs_shape).astype(rhs_dtype)
    if flaw == "ndim":
        rhs = rhs[..., None] if rng.random() < 0.5 else rhs.reshape(rhs.shape[:-2] + (-1,))

    strides = tuple(int(rng.integers(1, 4)) for _ in range(rank))
    rhs_dilation = tuple(int(rng.integers(1, 3)) for _ in range(rank)) if rng.random() < 0.6 else None
    if flaw == "stride":
        strides = (0,) + strides[1:]
    if flaw == "strides_length":
        strides = strides + (1,)
    if flaw == "dilation":
        rhs_dilation = (0,) * rank

    kwargs: dict = {}
    if transpose:
        choice = rng.random()
        if choice < 0.3:
            padding = "SAME"
        elif choice < 0.5:
            padding = "VALID"
        else:
            padding = tuple((int(rng.integers(-1, 4)), int(rng.integers(-1, 4))) for _ in range(rank))
            if rng.random() < 0.3:
                kwargs["use_consistent_padding"] = True
        if flaw == "padding_string":
            padding = str(rng.choice(["FULL", "same", "SAME_LOWER"]))  # valid only at stride 1
        kwargs.update(strides=strides, padding=padding, rhs_dilation=rhs_dilation,
                      dimension_numbers=dimension_numbers, transpose_kernel=transpose_kernel)
    else:
        lhs_dilation = (tuple(int(rng.integers(1, 4)) for _ in range(rank))
                        if rng.random() < 0.35 else None)
        choice = rng.random()
        if choice < 0.4 and (lhs_dilation is None or flaw == "string_lhs_dilation"):
            padding = str(rng.choice(["SAME", "SAME_LOWER", "VALID", "same", "valid"]))
        else:
            padding = tuple((int(rng.integers(-2, 4)), int(rng.integers(-2, 4))) for _ in range(rank))
        if flaw == "string_lhs_dilation":
            lhs_dilation, padding = (2,) * rank, "SAME"
        if flaw == "padding_string":
            padding = "FULL"
        kwargs.update(window_strides=strides, padding=padding, lhs_dilation=lhs_dilation,
                      rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers)
        if groups > 1 or rng.random() < 0.2:
            kwargs["feature_group_count"] = groups + (flaw == "groups")
        if bgroups > 1:
            kwargs["batch_group_count"] = bgroups
    if flaw == "padding_negative":
        kwargs["padding"] = tuple((-8, 0) for _ in range(rank))
    if flaw == "preferred":
        kwargs["preferred_element_type"] = "float16"
    elif dtype == np.float32 and flaw != "dtype" and rng.random() < 0.1:
        kwargs["preferred_element_type"] = "float64"
    fn = "conv_transpose" if transpose else "conv_general_dilated"
    return Case(DIALECT, fn, {"lhs": lhs, "rhs": rhs}, kwargs)


def run_tconv(case: Case):
    return getattr(dialect, case.fn)(**case.arrays, **case.kwargs)


def _exact_conv_general_dilated(original):
    """``original`` (``lax.conv_general_dilated``), with negative padding computed as JAX
    defines it, by cropping the lhs-dilated input (``lax.pad``, exact) and convolving with
    zero padding. XLA:CPU (jaxlib 0.10) gets negative conv padding wrong two ways: it
    sometimes reads uninitialised memory (repeated identical calls return different
    values, garbage of 1e25), and for some windows its algebraic simplifier fails a CHECK
    and aborts the process ("Window dimensions do not match RHS shape"; the oracle's seed
    377739517415397090, a conv_transpose with use_consistent_padding and a transposed
    kernel, killed a CI worker)."""
    from jax import lax
    from jax._src.lax.convolution import conv_dimension_numbers

    def conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
             dimension_numbers=None, **kwargs):
        rank = lhs.ndim - 2
        if (isinstance(padding, str) or all(p >= 0 for pair in padding for p in pair)
                or any(v is not None and len(v) != rank for v in (window_strides, padding, lhs_dilation))):
            # as it is; mismatched lengths reach XLA's verifier, which refuses them (cleanly)
            return original(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                            dimension_numbers, **kwargs)
        dn = conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        dilation = lhs_dilation or (1,) * rank
        config = [(0, 0, 0)] * lhs.ndim
        for i, axis in enumerate(dn.lhs_spec[2:]):
            config[axis] = (padding[i][0], padding[i][1], dilation[i] - 1)
        cropped = lax.pad(lhs, np.zeros((), lhs.dtype), config)
        return original(cropped, rhs, window_strides, ((0, 0),) * rank, None, rhs_dilation,
                        dimension_numbers, **kwargs)
    return conv


@contextlib.contextmanager
def exact_negative_padding():
    """Within the block, ``jax.lax.conv_general_dilated`` (and what ``lax.conv_transpose``
    and the convolutions' transpose rules call) computes negative padding the exact way
    (:func:`_exact_conv_general_dilated`): every live JAX convolution of the tests runs
    inside it, so that no drawn configuration can abort the test process in XLA."""
    try:
        import jax
        from jax._src.lax import convolution
    except ImportError:  # no JAX, no JAX convolution to guard
        yield
        return
    original = convolution.conv_general_dilated
    exact = _exact_conv_general_dilated(original)
    convolution.conv_general_dilated = jax.lax.conv_general_dilated = exact
    try:
        yield
    finally:
        convolution.conv_general_dilated = jax.lax.conv_general_dilated = original


def run_framework(case: Case):
    import functools

    import jax
    from jax import lax

    jax.config.update("jax_enable_x64", True)
    kwargs = dict(case.kwargs)
    dn = kwargs.get("dimension_numbers")
    if dn is not None and not all(isinstance(s, str) for s in dn):
        kwargs["dimension_numbers"] = lax.ConvDimensionNumbers(*dn)
    lhs, rhs = case.arrays["lhs"], case.arrays["rhs"]
    # JAX's own refusals and shapes, from its shape rules: nothing compiled yet
    jax.eval_shape(functools.partial(getattr(lax, case.fn), **kwargs), lhs, rhs)
    with exact_negative_padding():
        return np.asarray(getattr(lax, case.fn)(lhs, rhs, **kwargs))
