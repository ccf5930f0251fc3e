"""The one exception type of tconv.

Every refusal, whether tconv's own or a framework's reproduced by a dialect, is a
:class:`TconvError`. It subclasses :class:`ValueError`, so ``except ValueError``
keeps working, and it carries what was wrong as data: the argument's name, the
value it had, the rule it broke and, where known, the valid values.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TconvError"]


class TconvError(ValueError):
    """Invalid input, named: ``argument=value`` breaks ``rule``.

    Parameters
    ----------
    argument : str
        The argument's name as the caller spelled it (``"output_padding"``).
    value : object
        The value it had.
    rule : str
        What it must satisfy, in the caller's vocabulary.
    valid : object, optional
        The valid values or range, when they can be stated.
    context : str, optional
        Where it happened (``"torch.conv_transpose2d"``), prefixed to the message.

    Examples
    --------
    >>> err = TconvError("stride", 0, "must be a positive integer")
    >>> str(err)
    'stride=0 must be a positive integer'
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, argument: str, value: Any, rule: str, *, valid: Any = None,
                 context: str | None = None) -> None:
        self.argument = argument
        self.value = value
        self.rule = rule
        self.valid = valid
        self.context = context
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.argument}={_short(self.value)} {self.rule}"
        if self.valid is not None:
            text += f" (valid: {self.valid})"
        if self.context:
            text = f"{self.context}: {text}"
        return text

    def with_context(self, context: str) -> "TconvError":
        """Return a copy whose message is prefixed by ``context`` (the user's call)."""
        outer = context if not self.context else f"{context}; {self.context}"
        return TconvError(self.argument, self.value, self.rule, valid=self.valid, context=outer)


def _short(value: Any, limit: int = 120) -> str:
    """repr of ``value``, shortened so that a huge array never floods a message."""
    shape = None if isinstance(value, type) else getattr(value, "shape", None)
    if isinstance(shape, tuple) and getattr(value, "dtype", None) is not None:
        return f"<array shape={shape} dtype={value.dtype}>"
    text = _REPR.repr(value)  # bounded work: a tuple of a million arrays must not take minutes
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounded_repr() -> "reprlib.Repr":
    import reprlib

    r = reprlib.Repr()
    r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 16
    r.maxdict = 8
    r.maxlevel = 4
    r.maxstring = r.maxother = r.maxlong = 400
    return r


_REPR = _bounded_repr()
