"""One shape for every user-facing error: ``"{path}: {rule}, got {value!r}"``."""

from __future__ import annotations

from typing import Any

__all__ = ["invalid", "invalid_type", "MISSING"]


class _Missing:
    def __repr__(self) -> str:  # pragma: no cover - trivial
        return "<missing>"


MISSING: Any = _Missing()


def _message(path: str, rule: str, value: Any) -> str:
    if value is MISSING:
        return f"{path}: {rule}"
    return f"{path}: {rule}, got {value!r}"


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
