"""Argument normalisation shared by the neutral API and the dialects (private).

Each helper turns one user argument into per-axis values in axis order, or raises
:class:`TconvError` naming the argument. Flat and reversed padding lists exist only
at the dialect edge; what leaves here is always per-axis ``(lo, hi)``.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, Sequence

import numpy as np

from tconv.errors import TconvError

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def plain(value: Any) -> bool:
    """Whether ``value`` is built only of exact ``int``, ``str`` and ``None``, in tuples: such
    values are equal only where their types match (unlike ``2 == 2.0 == True``, or a list and
    a tuple), so they can key a cache."""
    if type(value) is tuple:
        return all(plain(v) for v in value)
    return value is None or type(value) in (int, str)


def memo_plain(function):
    """``function`` (pure, returning an immutable value) cached for the calls whose arguments
    are all plain (:func:`plain`). Any other call (a float, a list, a NumPy integer) runs
    uncached, so a cached result never stands in for an argument that would be read
    differently or refused; refusals raise and are never cached."""
    cached = functools.lru_cache(maxsize=1024)(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if all(map(plain, args)) and all(map(plain, kwargs.values())):
            return cached(*args, **kwargs)
        return function(*args, **kwargs)

    wrapper.cache_clear = cached.cache_clear
    return wrapper


def choice(value: Any, name: str, choices: tuple[str, ...], *, context: str | None = None) -> str:
    """One of ``choices`` (strings), compared only once ``value`` is known to be a string: an
    array compared with ``==``/``in`` has no single truth value."""
    if not isinstance(value, str) or value not in choices:
        raise TconvError(name, value, f"must be one of {', '.join(map(repr, choices))}", context=context)
    return value


def scalar(value: Any) -> Any:
    """A 0-d NumPy array as its Python scalar (it has no length to take); anything else as is."""
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value


def int_tuple(value: Any, rank: int, name: str, *, minimum: int | None = 1,
              context: str | None = None) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` ints, as a tuple of Python ints."""
    value = scalar(value)
    items = (value,) * rank if is_int(value) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, np.ndarray)):
        raise TconvError(name, value, f"must be an integer or a sequence of {rank} integers",
                         context=context)
    items = tuple(items)
    if len(items) != rank or not all(is_int(v) for v in items):
        raise TconvError(name, value, f"must be an integer or a sequence of {rank} integers",
                         context=context)
    items = tuple(int(v) for v in items)
    if minimum is not None and any(v < minimum for v in items):
        word = "positive" if minimum == 1 else f">= {minimum}"
        raise TconvError(name, value, f"must be {word} in every entry", context=context)
    return items


def pad_pairs(value: Any, rank: int, name: str, *, minimum: int | None = 0,
              context: str | None = None) -> tuple[tuple[int, int], ...]:
    """An int, ``rank`` ints (symmetric) or ``rank`` ``(lo, hi)`` pairs, as pairs."""
    value = scalar(value)
    if is_int(value) or (isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str)
                         and len(value) == rank and all(is_int(v) for v in value)):
        single = int_tuple(value, rank, name, minimum=minimum, context=context)
        return tuple((v, v) for v in single)
    rule = f"must be an integer, {rank} integers or {rank} (before, after) pairs"
    if isinstance(value, str) or not isinstance(value, (Sequence, np.ndarray)) or len(value) != rank:
        raise TconvError(name, value, rule, context=context)
    pairs = []
    for pair in value:
        if isinstance(pair, str) or not isinstance(pair, (Sequence, np.ndarray)) or len(pair) != 2 \
                or not all(is_int(v) for v in pair):
            raise TconvError(name, value, rule, context=context)
        pairs.append((int(pair[0]), int(pair[1])))
    if minimum is not None and any(v < minimum for p in pairs for v in p):
        raise TconvError(name, value, f"must be >= {minimum} in every entry", context=context)
    return tuple(pairs)


def as_array(value: Any, name: str, *, context: str | None = None) -> np.ndarray:
    """A real floating or integer NumPy array; anything else is refused by name."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TconvError(name, value, "must be a numeric array", context=context)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists and the like
        raise TconvError(name, value, f"must be a numeric array ({exc})", context=context) from None
    if array.dtype.kind not in "fiu":
        raise TconvError(name, value, f"must hold real numbers, not dtype {array.dtype}",
                         context=context)
    return array


def result_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """The floating dtype of a computation: NumPy promotion, integers as float64."""
    dtype = np.result_type(*[a for a in arrays if a is not None])
    return dtype if dtype.kind == "f" else np.dtype(np.float64)
