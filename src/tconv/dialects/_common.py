"""What every dialect shares: declared refusal tables and small normalisers (private).

A dialect opens with ``REFUSALS`` (what the framework refuses as invalid, with the
message tconv raises, the framework's own source and the test that pins it) and
``DIVERGENCES`` (where tconv deliberately computes what the framework cannot). Code
raises through :func:`refuse`, so the docs' conventions table is generated from the
same data the code obeys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from tconv import _args
from tconv.errors import TconvError

__all__ = ["Refusal", "Divergence", "refuse", "as_array", "same_dtype", "DIALECTS"]

#: the dialect modules, by name (import them from tconv.dialects)
DIALECTS = ("keras", "tf", "torch", "jax", "onnx")


@dataclass(frozen=True)
class Refusal:
    """A configuration the framework refuses; ``rule`` is tconv's message, in the framework's words."""

    argument: str
    rule: str
    source: str
    test: str


@dataclass(frozen=True)
class Divergence:
    """A configuration the framework's CPU kernel refuses but tconv computes, and why."""

    condition: str
    framework_says: str
    tconv_does: str
    test: str


def refuse(table: Mapping[str, Refusal], key: str, value: Any, context: str, **fields: Any) -> TconvError:
    """Build the :class:`TconvError` declared as ``table[key]`` (``rule`` formatted with ``fields``)."""
    entry = table[key]
    return TconvError(entry.argument.format(**fields), value, entry.rule.format(**fields),
                      context=context)


def as_array(value: Any, name: str, context: str) -> np.ndarray:
    return _args.as_array(value, name, context=context)


def same_dtype(context: str, **arrays: np.ndarray | None) -> None:
    """Frameworks refuse mixed input/weight/bias dtypes; so does the dialect."""
    present = {k: v for k, v in arrays.items() if v is not None}
    dtypes = {k: v.dtype for k, v in present.items()}
    if len(set(dtypes.values())) > 1:
        name, array = next(iter(present.items()))
        raise TconvError(name, array, "must have the same dtype as the other operands "
                         f"(got {', '.join(f'{k}: {d}' for k, d in dtypes.items())})",
                         context=context)
    for k, v in present.items():
        if v.dtype.kind != "f":
            raise TconvError(k, v, f"must be a floating array, not {v.dtype}", context=context)
