"""Constructor arguments of searchers and schedulers: one alias mechanism, one number check.

Source argument names
---------------------
Each searcher and scheduler class has one table ``ALIASES: {source name: our keyword}`` for
the names its users bring from NNI (``classArgs``), Polyaxon or Ray (``None`` as the keyword:
accepted for compatibility and unused, with a warning). :func:`resolve_aliases` applies it,
the same way everywhere, whether the names arrive as a dict (``Class.from_args(args,
**kwargs)``, see :func:`from_args`) or as keyword arguments of a constructor that takes
``**aliases``:

* a source name becomes our keyword; a source name for the mode (``optimize_mode``) takes
  NNI's ``"maximize"`` / ``"minimize"`` (``"max"`` / ``"min"`` too);
* a name that is neither ours nor in the table: :class:`UnknownArgumentError`
  ``"{Class}.{name}: is not an argument (known: [...]), got {value!r}"`` (a ``TypeError``, as
  Python's own unexpected keyword, and a ``ValueError``, as for any bad value in a file);
* one keyword given twice (a source name with our name, or two source names for it):
  ``ValueError`` ``"{Class}.{name}: given together with {other}, got {value!r}"``. A keyword
  counts as given when its value is neither ``None`` nor the constructor's default. The same
  name in ``from_args``'s dict and in its keywords is accepted when both values are equal
  (else ``"{Class}.{name}: given twice, also as {other value!r}, got {value!r}"``).

Numbers
-------
:func:`check_number` is the one check of a numeric argument: an ``int`` (``integer=True``;
``numpy`` integers and integral floats accepted, returned as ``int``) or a finite real number
(an integer returned as ``int``, so that exact integer arithmetic such as rung milestones stays
exact; any other number as ``float``), with optional bounds, each inclusive or strict, and ``None`` allowed
on request. ``bool`` is never a number here. A value of the wrong type is a ``TypeError``, one
out of bounds (or not finite) a ``ValueError``; both through :mod:`rafiki_ray._errors`, e.g.
``"TPESearch.gamma: must be in (0, 1.0], got 1.5"``, ``"n_candidates: must be an int >= 1,
got 0"``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from rafiki_ray._errors import invalid, invalid_type

__all__ = ["POSITIVE", "UnknownArgumentError", "check_number", "from_args", "resolve_aliases"]

#: ``check_number(path, value, **POSITIVE)``: a number > 0.
POSITIVE: dict[str, Any] = {"low": 0, "low_open": True}

logger = logging.getLogger(__name__)

_NNI_MODES = {"maximize": "max", "minimize": "min", "max": "max", "min": "min"}
_EMPTY = inspect.Parameter.empty


class UnknownArgumentError(TypeError, ValueError):
    """A name that is neither a keyword of the class nor in its ``ALIASES`` table."""


# ----------------------------------------------------------------------------- aliases


@functools.lru_cache(maxsize=256)
def _keywords(cls: type) -> dict[str, Any]:
    """The named keyword arguments of ``cls.__init__`` and their defaults (``_EMPTY``)."""
    params = inspect.signature(cls.__init__).parameters
    return {
        name: p.default
        for name, p in params.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def _given(value: Any, default: Any) -> bool:
    """Whether a keyword's value counts as given: not ``None`` and not its default."""
    if value is None:
        return False
    if default is _EMPTY:
        return True
    try:
        return bool(value is not default and value != default)
    except (TypeError, ValueError):  # e.g. numpy arrays compared elementwise
        return True


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):
        return False


def resolve_aliases(
    cls: type,
    source: Mapping[str, Any],
    given: Mapping[str, Any] | None = None,
    *,
    owner: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Map ``source`` (source names or ours) onto ``cls``'s keywords through ``cls.ALIASES``.

    ``given``: the keywords already at hand (a constructor's own arguments, or the keywords
    of ``from_args``); the result is ``given`` updated with the mapped ``source``. Raises
    :class:`UnknownArgumentError` for an unknown name and ``ValueError`` for a keyword given
    twice (see the module docstring). ``owner`` names the class in messages (default
    ``cls.__name__``); ``defaults`` fill the keywords that are still ``None`` at the end.
    """
    owner = owner or cls.__name__
    table: Mapping[str, str | None] = getattr(cls, "ALIASES", {}) or {}
    keywords = _keywords(cls)
    out = dict(given or {})
    via: dict[str, str] = {}  # keyword -> the source name that set it
    for name, value in source.items():
        new = value
        if name in table:
            target = table[name]
            if target is None:
                logger.warning("%s: argument %r is accepted for compatibility and unused",
                               owner, name)
                continue
            if target == "mode" and name != "mode":
                if not isinstance(value, str) or value not in _NNI_MODES:
                    raise invalid(f"{owner}.{name}", "must be 'maximize' or 'minimize'", value)
                new = _NNI_MODES[value]
        elif name in keywords:
            target = name
            if target == "mode" and value in ("maximize", "minimize"):
                new = _NNI_MODES[value]
        else:
            known = sorted(set(keywords) | set(table))
            raise UnknownArgumentError(
                str(invalid(f"{owner}.{name}", f"is not an argument (known: {known})", value))
            )
        if target in via:
            raise invalid(f"{owner}.{name}", f"given together with {via[target]}", value)
        if target in out and _given(out[target], keywords.get(target, None)):
            if name != target:
                raise invalid(f"{owner}.{name}", f"given together with {target}", value)
            if not _same(out[target], new):  # from_args: the same name in args and kwargs
                raise invalid(f"{owner}.{name}", f"given twice, also as {out[target]!r}", value)
        via[target] = name
        out[target] = new
    for key, default in (defaults or {}).items():
        if out.get(key) is None:
            out[key] = default
    return out


def from_args(cls: type, args: Mapping[str, Any], kwargs: Mapping[str, Any]) -> Any:
    """``cls(**resolve_aliases(cls, args, kwargs))``: what every ``Class.from_args`` does
    once its source-specific nesting (e.g. NNI's ``tpe_args``) is flattened."""
    if not isinstance(args, Mapping):
        raise invalid_type(f"{cls.__name__}.args", "must be a mapping", args)
    return cls(**resolve_aliases(cls, args, kwargs))


# ----------------------------------------------------------------------------- numbers


def _fmt(x: float) -> str:
    return str(x)


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_fmt(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_fmt(high)}"
    return ""


def check_number(
    path: str,
    value: Any,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    none_ok: bool = False,
) -> Any:
    """Check a numeric argument and return it as ``int`` / ``float`` (see the module docstring).

    ``low`` / ``high``: bounds, inclusive unless ``low_open`` / ``high_open``; ``none_ok``:
    ``None`` passes (and is returned).
    """
    if value is None and none_ok:
        return None
    bounds = _bounds(low, high, low_open, high_open)
    if integer:
        rule = f"must be an int {bounds}".rstrip()
        if isinstance(value, Integral) and not isinstance(value, bool):
            v: Any = int(value)
        elif isinstance(value, float) and value.is_integer():
            v = int(value)
        else:
            raise invalid_type(path, rule, value)
    else:
        if isinstance(value, bool) or not isinstance(value, Real):
            rule = f"must be a number {bounds}".rstrip()
            raise invalid_type(path, rule, value)
        v = int(value) if isinstance(value, Integral) else float(value)
        rule = f"must be {bounds}" if bounds else "must be a finite number"
        if not math.isfinite(v):
            raise invalid(path, rule if bounds else "must be a finite number", value)
    if (
        (low is not None and (v <= low if low_open else v < low))
        or (high is not None and (v >= high if high_open else v > high))
    ):
        raise invalid(path, rule, value)
    return v
