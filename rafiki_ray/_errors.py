"""One shape for every user-facing error: ``"{path}: {rule}, got {value!r}"``.

A long offending value is shortened in the message (its first :data:`REPR_LIMIT` characters,
then how long it was), and integers too large for Python's ``repr`` are described by their
size, so building an error never fails on the value it reports.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "REPR_LIMIT", "invalid", "invalid_type", "short_repr"]

#: Characters of a value's ``repr`` kept in an error message.
REPR_LIMIT = 200


class _Missing:
    def __repr__(self) -> str:  # pragma: no cover - trivial
        return "<missing>"


MISSING: Any = _Missing()


def short_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters (``...`` and the full length follow)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 600:
        return f"<int of {len(str(abs(value))) if value.bit_length() < 13000 else '>4000'} digits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # e.g. ints past sys.get_int_max_str_digits, deep nests
        return f"<{type(value).__name__} that cannot be shown>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _message(path: str, rule: str, value: Any) -> str:
    if value is MISSING:
        return f"{path}: {rule}"
    return f"{path}: {rule}, got {short_repr(value)}"


def invalid(path: str, rule: str, value: Any = MISSING) -> ValueError:
    """Build (do not raise) a ``ValueError`` naming the field, the rule and the value.

    >>> raise invalid("searchSpace.lr._value", "loguniform needs 0 < low < high", [0, 1])
    Traceback (most recent call last):
    ValueError: searchSpace.lr._value: loguniform needs 0 < low < high, got [0, 1]
    """
    return ValueError(_message(path, rule, value))


def invalid_type(path: str, rule: str, value: Any = MISSING) -> TypeError:
    """Like :func:`invalid` but a ``TypeError`` (wrong Python type of a user value)."""
    return TypeError(_message(path, rule, value))
