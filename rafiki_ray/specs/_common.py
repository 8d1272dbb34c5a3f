"""Shared helpers of the spec parsers: an error collector, durations, numbers, key checks."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rafiki_ray._errors import invalid, invalid_type

__all__ = ["Errors", "SpecError", "check_keys", "duration", "json_or_dict", "positive_int"]

T = TypeVar("T")


class SpecError(ValueError):
    """Several errors in one spec; ``errors`` holds each message (each names its path)."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__(f"{len(errors)} errors:\n" + "\n".join(f"  {e}" for e in errors))


class Errors:
    """Collects ValueError / TypeError messages so that every error is reported at once."""

    def __init__(self) -> None:
        self.items: list[BaseException] = []

    def run(self, fn: Callable[..., T], *args: Any, default: Any = None, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            if isinstance(exc, SpecError):
                self.items.extend(ValueError(e) for e in exc.errors)
            else:
                self.items.append(exc)
            return default

    def add(self, exc: BaseException) -> None:
        self.items.append(exc)

    def raise_if_any(self) -> None:
        if len(self.items) == 1:
            raise self.items[0]
        if self.items:
            raise SpecError([str(e) for e in self.items])


def check_keys(data: Mapping[str, Any], path: str, known: set[str], errors: Errors,
               ignored: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    for key in data:
        if key not in known and key not in ignored:
            errors.add(invalid(f"{path}.{key}" if path else str(key),
                               f"is not a known key (known: {sorted(known | ignored)})",
                               data[key]))


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: Any, path: str) -> float:
    """NNI durations: seconds as a number, or ``"90s"``, ``"30m"``, ``"1.5h"``, ``"2d"``."""
    if isinstance(value, bool):
        raise invalid_type(path, "must be a duration (seconds or '30m', '1h', '2d')", value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd])\s*", value)
        if m is None:
            raise invalid(path, "must be a duration (seconds or '30m', '1h', '2d')", value)
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise invalid_type(path, "must be a duration (seconds or '30m', '1h', '2d')", value)
    if not seconds > 0 or seconds == float("inf"):
        raise invalid(path, "must be > 0", value)
    return seconds


def positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(path, "must be an integer >= 1", value)
    return value


def json_or_dict(value: Any, path: str) -> dict[str, Any]:
    """T9k writes classArgs as a JSON string; NNI as a mapping. ``None`` is ``{}``."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise invalid(path, f"is not valid JSON ({exc.msg}, line {exc.lineno})",
                          value[:80]) from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise invalid_type(path, "must be a dict (or a JSON object string)", value)
    return dict(value)


def mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid_type(path, "must be a mapping", value)
    return dict(value)
