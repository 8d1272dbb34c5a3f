"""Rafiki's knob language (Wang et al., "Rafiki: Machine Learning as an Analytics Service
System", VLDB 2018; SINGA-Auto): declare a model's hyperparameters once.

Differences from the original, on purpose:

* ``bool`` is its own type: ``CategoricalKnob([1, True])`` is refused (the original checks
  ``int`` first, so ``True`` counted as an int and the mix passed).
* ``IntegerKnob(..., is_exp=True)`` is honoured (log-uniform integers); the original
  ignored ``is_exp`` for integers.
* Every error names the knob field, the rule and the value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rafiki_ray._constants import POLICIES
from rafiki_ray._errors import invalid, invalid_type

__all__ = [
    "POLICIES",
    "ArchKnob",
    "BaseKnob",
    "CategoricalKnob",
    "FixedKnob",
    "FloatKnob",
    "IntegerKnob",
    "KnobValue",
    "PolicyKnob",
]

_SCALARS = (bool, int, float, str)


def _dtype(value: Any, path: str) -> type:
    for t in _SCALARS:  # bool before int: bool is its own type here
        if isinstance(value, t):
            return t
    raise invalid_type(path, "must be an int, float, bool or str", value)


class KnobValue:
    """A scalar knob value; one object used at several ArchKnob positions means the same
    candidate (the controller may share its embedding)."""

    __slots__ = ("dtype", "value")

    def __init__(self, value: Any) -> None:
        self.dtype = _dtype(value, "KnobValue.value")
        self.value = value

    def __repr__(self) -> str:
        return f"KnobValue({self.value!r})"


def _unwrap(v: Any) -> Any:
    return v.value if isinstance(v, KnobValue) else v


class BaseKnob:
    """Base of every knob."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields)
        return f"{type(self).__name__}({fields})"

    _fields: tuple[str, ...] = ()


class FixedKnob(BaseKnob):
    """A constant passed to the model as is."""

    _fields = ("value",)

    def __init__(self, value: Any) -> None:
        value = _unwrap(value)
        _dtype(value, "FixedKnob.value")
        self.value = value


class CategoricalKnob(BaseKnob):
    """One of ``values`` (all of one type: int, float, bool or str)."""

    _fields = ("values",)

    def __init__(self, values: Sequence[Any]) -> None:
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise invalid_type("CategoricalKnob.values", "must be a list", values)
        vals = [_unwrap(v) for v in values]
        if not vals:
            raise invalid("CategoricalKnob.values", "must not be empty", vals)
        types = {_dtype(v, f"CategoricalKnob.values[{i}]") for i, v in enumerate(vals)}
        if len(types) > 1:
            raise invalid_type(
                "CategoricalKnob.values", "must all be of one type (bool is not int)", vals
            )
        self.values = vals


class _RangeKnob(BaseKnob):
    _fields = ("value_min", "value_max", "is_exp")


class IntegerKnob(_RangeKnob):
    """An integer in ``[value_min, value_max]`` (inclusive); log-uniform if ``is_exp``."""

    def __init__(self, value_min: int, value_max: int, is_exp: bool = False) -> None:
        for name, v in (("value_min", value_min), ("value_max", value_max)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise invalid_type(f"IntegerKnob.{name}", "must be an int", v)
            if not -(2**63) <= v <= 2**63 - 2:
                raise invalid(f"IntegerKnob.{name}", "must lie in [-2**63, 2**63 - 2] (int64)", v)
        if value_min > value_max:
            raise invalid("IntegerKnob", "needs value_min <= value_max", [value_min, value_max])
        if not isinstance(is_exp, bool):
            raise invalid_type("IntegerKnob.is_exp", "must be a bool", is_exp)
        if is_exp and value_min <= 0:
            raise invalid("IntegerKnob", "is_exp needs 0 < value_min", [value_min, value_max])
        self.value_min, self.value_max, self.is_exp = value_min, value_max, is_exp


class FloatKnob(_RangeKnob):
    """A float in ``[value_min, value_max]``; log-uniform if ``is_exp`` (needs min > 0)."""

    def __init__(self, value_min: float, value_max: float, is_exp: bool = False) -> None:
        bounds = []
        for name, v in (("value_min", value_min), ("value_max", value_max)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise invalid_type(f"FloatKnob.{name}", "must be an int or float", v)
            try:
                f = float(v)
            except OverflowError:  # an int beyond float range
                f = math.inf
            if not math.isfinite(f):
                raise invalid(f"FloatKnob.{name}", "must be finite (within float range)", v)
            bounds.append(f)
        value_min, value_max = bounds
        if not math.isfinite(value_max - value_min):
            raise invalid("FloatKnob", "needs value_max - value_min within float range", bounds)
        if value_min > value_max:
            raise invalid("FloatKnob", "needs value_min <= value_max", [value_min, value_max])
        if not isinstance(is_exp, bool):
            raise invalid_type("FloatKnob.is_exp", "must be a bool", is_exp)
        if is_exp and value_min <= 0:
            raise invalid("FloatKnob", "is_exp needs 0 < value_min", [value_min, value_max])
        self.value_min, self.value_max, self.is_exp = value_min, value_max, is_exp


class PolicyKnob(BaseKnob):
    """A policy the model supports; the advisor sets it to True or False per trial."""

    _fields = ("policy",)

    def __init__(self, policy: str) -> None:
        if policy not in POLICIES:
            raise invalid("PolicyKnob.policy", f"must be one of {list(POLICIES)}", policy)
        self.policy = policy


class ArchKnob(BaseKnob):
    """An architecture: ``items[i]`` lists the candidates at position ``i``; the value is a
    list with one candidate per position."""

    _fields = ("items",)

    def __init__(self, items: Sequence[Sequence[Any]]) -> None:
        if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
            raise invalid_type("ArchKnob.items", "must be a list of candidate lists", items)
        out = []
        for i, cands in enumerate(items):
            if isinstance(cands, (str, bytes)) or not hasattr(cands, "__iter__"):
                raise invalid_type(f"ArchKnob.items[{i}]", "must be a list of candidates", cands)
            cands = list(cands)
            if not cands:
                raise invalid(f"ArchKnob.items[{i}]", "must not be empty", cands)
            for j, c in enumerate(cands):
                _dtype(_unwrap(c), f"ArchKnob.items[{i}][{j}]")
            out.append(cands)
        if not out:
            raise invalid("ArchKnob.items", "must not be empty", [])
        self.items = out

    def values(self) -> list[list[Any]]:
        """The candidates with KnobValue wrappers removed."""
        return [[_unwrap(c) for c in cands] for cands in self.items]
