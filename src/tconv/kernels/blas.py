"""NumPy's own BLAS, asked for the one thing ``np.matmul`` cannot ask of it: a product
added into an array in place (GEMM's ``beta = 1``), on rows of any stride.

Why: a forward convolution of unit strides whose output rows are as wide as its input
rows ("same" along the rows) is, per kernel tap, one product of the input's cells as they
lie with the tap's weights, added to the output's cells a fixed offset away. With
``np.matmul`` each product lands in a scratch buffer and is added after (``shift``), or the
taps of a kernel row are gathered first (``rows``); with ``beta = 1`` the products add
straight into the output: no gather, no scratch, no second pass (:mod:`tconv.kernels.gemm`,
"accumulate").

The arithmetic stays NumPy's BLAS: the library is the OpenBLAS that NumPy loaded, found
through threadpoolctl (the ``fast`` extra) as :mod:`tconv.kernels.threads` finds it, and
called through its CBLAS ``sgemm``/``dgemm`` with ctypes (the GIL released during the call,
BLAS's threads as NumPy's products get them). Where that library, its symbols or the width
of its integers are not known for certain, or where a product on a small case does not give
what NumPy gives, :func:`available` is False and the kernels keep to their other paths.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
from pathlib import Path

import numpy as np

from tconv.errors import TconvError

#: set False to keep the kernels off this module (tests, comparisons)
ENABLED = True

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@functools.lru_cache(maxsize=1)
def _library() -> tuple | None:
    """``(sgemm, dgemm)`` of NumPy's OpenBLAS, arguments declared, or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    found = [c for c in ThreadpoolController().lib_controllers
             if c.user_api == "blas" and c.internal_api == "openblas"]
    # NumPy's own: the one its wheel ships (numpy.libs), else the only OpenBLAS loaded
    # (other libraries bring their own: which one NumPy calls is then not known)
    ours = [c for c in found if "numpy" in Path(c.filepath).parent.name] or found
    if len(ours) != 1:
        return None
    library = ctypes.CDLL(ours[0].filepath)
    for prefix, suffix in itertools.product(("scipy_", ""), ("64_", "_64", "")):
        sgemm = getattr(library, f"{prefix}cblas_sgemm{suffix}", None)
        dgemm = getattr(library, f"{prefix}cblas_dgemm{suffix}", None)
        config = getattr(library, f"{prefix}openblas_get_config{suffix}", None)
        if sgemm is None or dgemm is None or config is None:
            continue
        config.restype = ctypes.c_char_p
        wide = b"USE64BITINT" in (config() or b"")
        if wide != (suffix != ""):
            return None  # the integers' width and the symbols' names disagree: not called
        integer = ctypes.c_int64 if wide else ctypes.c_int
        for function, real in ((sgemm, ctypes.c_float), (dgemm, ctypes.c_double)):
            function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer, real,
                                 ctypes.c_void_p, integer, ctypes.c_void_p, integer, real, ctypes.c_void_p, integer]
            function.restype = None
        copies = [getattr(library, f"{prefix}cblas_{letter}omatcopy{suffix}", None) for letter in "sd"]
        for function, real in zip(copies, (ctypes.c_float, ctypes.c_double)):
            if function is not None:
                function.argtypes = [ctypes.c_int, ctypes.c_int, integer, integer, real, ctypes.c_void_p, integer,
                                     ctypes.c_void_p, integer]
                function.restype = None
        return sgemm, dgemm, *copies
    return None


@functools.lru_cache(maxsize=1)
def _checked() -> bool:
    """Whether the functions found add a product in place as NumPy computes it, on a small
    case of strided rows in both precisions."""
    functions = _library()
    if functions is None:
        return False
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((5, 6)).astype(dtype)
        b = rng.standard_normal((3, 4)).astype(dtype)
        c = rng.standard_normal((5, 7)).astype(dtype)
        want = c.copy()
        want[::2, :4] += a[::2, 1:4] @ b
        add_product(a[::2, 1:4], b, c[::2, :4], functions=functions)
        if not np.allclose(c, want, rtol=1e-5, atol=1e-5):
            return False
    return True


def available() -> bool:
    """Whether :func:`add_product` runs here (NumPy's BLAS found and checked, :data:`ENABLED`)."""
    return ENABLED and _checked()


@functools.lru_cache(maxsize=1)
def _transpose_checked() -> bool:
    """Whether OpenBLAS's out-of-place transpose (``cblas_?omatcopy``) was found and gives
    NumPy's transpose, bit for bit, on a small case in both precisions (infinities, NaN and
    signed zeros among the values)."""
    functions = _library()
    if functions is None or None in functions[2:]:
        return False
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((5, 7)).astype(dtype)
        a[0, :4] = np.inf, -np.inf, np.nan, -0.0
        b = np.zeros((9, 5), dtype)
        transpose(a[:, 1:], b[1:7], functions)  # rows of a stride, into a block of rows
        want = np.zeros((9, 5), dtype)
        want[1:7] = a[:, 1:].T
        if b.tobytes() != want.tobytes():
            return False
    return True


def transpose_available() -> bool:
    """Whether :func:`transpose` runs here (OpenBLAS's transpose found and checked, :data:`ENABLED`)."""
    return ENABLED and _transpose_checked()


def transpose(a: np.ndarray, b: np.ndarray, functions: tuple | None = None) -> None:
    """``b[...] = a.T`` by OpenBLAS's ``cblas_?omatcopy`` (``alpha = 1``: the values as they
    are), on 2-D arrays of one dtype (float32 or float64) whose rows may have any stride but
    whose elements within a row are adjacent; one thread. 2-5x faster than a compiled blocked
    loop on the channels-first data :func:`tconv.ops.moved_channels` moves (8x64x3072 float32
    0.9 against 2.6 ms on the AMD machine). A :class:`~tconv.errors.TconvError` naming the
    array that breaks that. ``functions``: :func:`_library`'s, before
    :func:`transpose_available` may be asked."""
    rows, columns = a.shape
    if b.shape != (columns, rows):
        raise TconvError("b", b, f"must have shape {(columns, rows)} to take the transpose of {a.shape}")
    _one_float_dtype(("a", a), ("b", b))
    if not a.size:
        return
    lda, ldb = _leading(a, "a"), _leading(b, "b")
    function = (functions or _library())[2 if a.dtype == np.float32 else 3]
    function(_ROW_MAJOR, _TRANS, rows, columns, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb)


def gemm(dtype: np.dtype, functions: tuple | None = None):
    """The raw CBLAS GEMM of ``dtype`` (float32 or float64) for callers that compute their
    own addresses (:func:`tconv.kernels.gemm._accumulate_run`): ``f(101, 111, 111, M, N, K,
    alpha, A, lda, B, ldb, beta, C, ldc)``, row-major, leading dimensions in elements.
    ``functions``: :func:`_library`'s, before :func:`available` may be asked."""
    return (functions or _library())[0 if np.dtype(dtype) == np.float32 else 1]


def add_product(a: np.ndarray, b: np.ndarray, c: np.ndarray, alpha: float = 1.0, beta: float = 1.0,
                functions: tuple | None = None) -> None:
    """``c = alpha * a @ b + beta * c`` in place, on 2-D arrays of one dtype (float32 or
    float64) whose rows may have any stride but whose elements within a row are adjacent;
    a :class:`~tconv.errors.TconvError` naming the array that breaks that."""
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or c.shape != (m, n):
        raise TconvError("b" if b.shape[0] != k else "c", b if b.shape[0] != k else c,
                         f"does not fit: shapes {a.shape} @ {b.shape} into {c.shape}")
    _one_float_dtype(("a", a), ("b", b), ("c", c))
    gemm(a.dtype, functions)(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, n, k, alpha, a.ctypes.data, _leading(a, "a"),
                             b.ctypes.data, _leading(b, "b"), beta, c.ctypes.data, _leading(c, "c"))


def _one_float_dtype(*named: tuple[str, np.ndarray]) -> None:
    """A TconvError naming the first array that is not float32 or float64 of the first's dtype."""
    dtypes = ", ".join(str(array.dtype) for _, array in named)
    for name, array in named:
        if array.dtype not in (np.float32, np.float64) or array.dtype != named[0][1].dtype:
            raise TconvError(name, array, f"must be float32 or float64 like the other{'s' if len(named) > 2 else ''} "
                                          f"(dtypes {dtypes})")


def _leading(array: np.ndarray, name: str) -> int:
    """The row stride of 2-D ``array`` (the argument ``name``) in elements, as BLAS takes it
    (at least the row's length); TconvError where its elements within a row are not adjacent."""
    rows, columns = array.shape
    size = array.itemsize
    if columns > 1 and array.strides[1] != size:
        raise TconvError(name, array, f"has strides {array.strides}: a row's elements must be adjacent")
    if rows <= 1:
        return max(1, columns)
    if array.strides[0] % size or array.strides[0] < columns * size:
        raise TconvError(name, array, f"has strides {array.strides}: its rows must not overlap")
    return max(1, array.strides[0] // size)
