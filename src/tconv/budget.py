"""The memory budget: tconv refuses, by name and size, a computation that cannot fit.

Before it allocates an output or a large temporary, tconv asks :func:`check` whether
the bytes fit the budget. A stride of 10^7 or an input of 10^5 x 10^5 is then a
:class:`~tconv.errors.TconvError` that states the sizes, never a ``MemoryError`` (or
the operating system's out-of-memory killer) half-way through.

The budget is, in order of precedence:

1. :func:`set_memory_budget` (``tconv.set_memory_budget(bytes)``; ``None`` restores the default);
2. the ``TCONV_MEMORY_BUDGET`` environment variable: bytes, optionally with a suffix
   ``K``/``M``/``G``/``T`` (powers of 1024), e.g. ``TCONV_MEMORY_BUDGET=2G``;
3. the default, :data:`DEFAULT_FRACTION` (50%) of the machine's physical memory
   (``os.sysconf``, else ``/proc/meminfo``) and, where the process runs under an
   address-space limit (``RLIMIT_AS``), of the address space still free under it.

The budget bounds one computation's output and temporaries, not the process: the
inputs already exist and are not counted.

>>> with memory_budget(1000):
...     check(8000, "output", (10, 100), "as float64")
Traceback (most recent call last):
...
tconv.errors.TconvError: output=(10, 100) as float64 needs 7.8 KiB, more than the memory budget of 1000 B...
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import Any, Iterator

try:
    import resource
except ImportError:  # not on Unix: no address-space limit to read
    resource = None

from tconv.errors import TconvError

__all__ = ["DEFAULT_FRACTION", "ENV", "physical_memory", "memory_budget", "set_memory_budget", "shared",
           "get_memory_budget", "allowance", "check", "format_bytes"]

#: the default budget as a fraction of physical memory (and of free address space)
DEFAULT_FRACTION = 0.5
#: the environment variable that sets the budget in bytes
ENV = "TCONV_MEMORY_BUDGET"
_FALLBACK_MEMORY = 8 << 30  # where the machine's memory cannot be read
_SUFFIX = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

_override: int | None = None
_sharing = 1  # computations running at once that share the budget (:func:`shared`)
_SHARING_LOCK = threading.Lock()


def _environment() -> str | None:
    """``os.environ.get(ENV)``. Every call's budget check reads it: on CPython, straight
    from the mapping's own dict (one lookup of the encoded name instead of four Python
    frames and a KeyError, about 7 us after a kernel's run has evicted them)."""
    data = getattr(os.environ, "_data", None)
    if type(data) is not dict:
        return os.environ.get(ENV)
    raw = data.get(_ENV_KEY)
    return None if raw is None else os.environ.decodevalue(raw)


_ENV_KEY = os.environ.encodekey(ENV) if hasattr(os.environ, "encodekey") else ENV


@functools.lru_cache(maxsize=1)
def physical_memory() -> int:
    """The machine's physical memory in bytes (8 GiB where it cannot be read; read once:
    every call's budget check asks for it)."""
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and page > 0:
            return int(pages) * int(page)
    except (AttributeError, ValueError, OSError):
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return _FALLBACK_MEMORY


def _free_address_space() -> int | None:
    """Address space left under ``RLIMIT_AS``, or None where there is no such limit."""
    if resource is None:
        return None
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return None
    used = 0
    try:
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    return max(0, soft - used)


def _parse(text: str) -> int:
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*", text, re.IGNORECASE)
    value = int(float(match.group(1)) * _SUFFIX[match.group(2).upper()]) if match else 0
    if value <= 0:
        raise TconvError(ENV, text, "must be a positive number of bytes, optionally with a suffix "
                         "K, M, G or T (e.g. 2G)")
    return value


def get_memory_budget() -> int:
    """The budget in bytes now in force (see the module docstring for its sources)."""
    if _override is not None:
        return _override
    env = _environment()
    if env:
        return _parse(env)
    budget = int(physical_memory() * DEFAULT_FRACTION)
    free = _free_address_space()
    if free is not None:
        budget = min(budget, int(free * DEFAULT_FRACTION))
    return budget


def set_memory_budget(nbytes: int | None) -> None:
    """Set the memory budget of every later computation, in bytes; ``None`` restores the default.

    >>> set_memory_budget(1 << 30); get_memory_budget()
    1073741824
    >>> set_memory_budget(None)
    """
    global _override
    if nbytes is not None:
        import numbers

        if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Integral) or nbytes < 1:
            raise TconvError("nbytes", nbytes, "must be a positive integer number of bytes, or None")
        nbytes = int(nbytes)
    _override = nbytes


@contextlib.contextmanager
def memory_budget(nbytes: int | None) -> Iterator[None]:
    """Within this block the budget is ``nbytes`` (restored after)."""
    global _override
    before = _override
    set_memory_budget(nbytes)
    try:
        yield
    finally:
        _override = before


@contextlib.contextmanager
def shared(count: int) -> Iterator[None]:
    """Within this block each computation may hold ``1/count`` of the budget
    (:func:`allowance`, which :func:`check` and the convolutions' own check ask):
    ``count`` of them run at once (a model's shares of a batch, side by side), so that
    together they stay within it. Blocks nested or on other threads divide it further."""
    global _sharing
    with _SHARING_LOCK:
        _sharing *= count
    try:
        yield
    finally:
        with _SHARING_LOCK:
            _sharing //= count


def allowance() -> int:
    """The bytes one computation may hold now: the budget, divided among the computations
    running at once where a :func:`shared` block says so."""
    return get_memory_budget() // _sharing


def format_bytes(n: int | float) -> str:
    """``1536`` -> ``'1.5 KiB'``; beyond pebibytes, a power of ten (``'~10^30 B'``).

    >>> format_bytes(1536), format_bytes(10 ** 30)
    ('1.5 KiB', '~10^30 B')
    """
    n = int(n)
    if n >= 1 << 60:
        return f"~10^{len(str(n)) - 1} B"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            break
    return f"{value:.1f} {unit}"


def check(nbytes: int, argument: str, value: Any, what: str = "", *, temporaries: int = 0,
          context: str | None = None) -> None:
    """Refuse ``nbytes`` (+ ``temporaries``) over the budget, naming ``argument=value`` and the sizes.

    ``what`` says what the bytes are for (``"as float32 from input (1, 8, 8, 3), stride (10000000,)"``).
    """
    total = int(nbytes) + int(temporaries)
    if total <= allowance():
        return
    budget, sharing = get_memory_budget(), _sharing
    extra = f" (+ {format_bytes(temporaries)} of temporaries)" if temporaries else ""
    share = f"1/{sharing} of " if sharing > 1 else ""
    rule = (f"{what + ' ' if what else ''}needs {format_bytes(nbytes)}{extra}, more than {share}the memory "
            f"budget of {format_bytes(budget)}; allow more with tconv.set_memory_budget(bytes) or "
            f"the {ENV} environment variable")
    raise TconvError(argument, value, rule, context=context)
