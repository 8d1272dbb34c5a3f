"""Immutable, validated parameter types: the single model every format is converted into.

Each parameter knows how to sample itself from a ``numpy.random.Generator``, whether a value
belongs to it, how to enumerate itself when finite, and how to round-trip through a plain
dict. Quantisation is explicit (``q`` plus ``rounding`` and ``clip``) because the source
formats disagree: NNI rounds and clips (``clip(round(U/q)*q, lo, hi)``), Polyaxon floors
and does not clip (``floor(U/q)*q``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces._jsonvalue import encode_value
from rafiki_ray.spaces._limits import INT_MAX, INT_MIN

if TYPE_CHECKING:
    from rafiki_ray.spaces._space import SearchSpace

__all__ = [
    "GRID_LIMIT",
    "POLICIES",
    "Arch",
    "Categorical",
    "Conditional",
    "Fixed",
    "Float",
    "Int",
    "Normal",
    "Option",
    "Param",
    "Policy",
    "Subset",
]

from rafiki_ray._constants import POLICIES

#: Largest number of values a single parameter enumerates for grid search.
GRID_LIMIT = 100_000

Rounding = Literal["round", "floor"]
Emit = Literal["value", "nni"]


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _finite(x: Any, name: str, kind: str) -> float:
    if not _is_number(x):
        raise invalid_type(f"{kind}.{name}", "must be a number", x)
    try:
        f = float(x)
    except OverflowError:  # an int beyond float range, e.g. 10**400
        raise invalid(f"{kind}.{name}", "must be finite (within float range, about 1.8e308)", x) from None
    if not math.isfinite(f):
        raise invalid(f"{kind}.{name}", "must be finite", x)
    return f


def _flag(x: Any, path: str) -> bool:
    """A bool flag: refuse strings such as ``"false"`` (truthy) and numbers."""
    if not isinstance(x, (bool, np.bool_)):
        raise invalid_type(path, "must be a bool (true/false)", x)
    return bool(x)


def _check_q_reach(reach: float, q: float, path: str) -> None:
    """Quantising ``v`` computes ``v / q``: refuse a ``q`` so small that it overflows."""
    if not math.isfinite(reach / q) or reach / q > 2.0**1000:
        raise invalid(
            path, f"is too small for the values it quantises (up to {reach:.6g} in magnitude)", q
        )


def _quantize(v: float, q: float, rounding: Rounding) -> float:
    # floor with a 1e-9 tolerance: a value that is already a multiple of q, seen through a
    # log/CDF map (encode -> decode), must not drop to the multiple below.
    k = math.floor(v / q + 1e-9) if rounding == "floor" else round(v / q)
    # Multiply in a way that keeps 0.1 * 3 close to 0.3 (trim binary noise).
    return float(np.round(k * q, 12))


def _multiple(v: float, q: float) -> bool:
    """Whether ``v`` is a multiple of ``q`` up to float precision (beyond about 1e9 multiples
    a float cannot tell neighbouring multiples apart)."""
    k = v / q
    return abs(k - round(k)) <= 1e-6 + abs(k) * 1e-12


def _plain(value: Any) -> Any:
    """Convert numpy scalars to Python ones."""
    if isinstance(value, np.generic):
        return value.item()
    return value


class Param:
    """Base class of every parameter type (frozen dataclasses below)."""

    type_name: ClassVar[str] = "param"

    def sample(self, rng: np.random.Generator) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def contains(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def grid_values(self) -> list[Any] | None:
        """All values when the parameter is finite (and not too large), else ``None``."""
        return None

    def grid_count(self) -> int | None:
        """``len(grid_values())`` (``None`` alike), counted without listing where it can be."""
        vals = self.grid_values()
        return None if vals is None else len(vals)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; values are written with :mod:`rafiki_ray.spaces._jsonvalue`."""
        out: dict[str, Any] = {"type": self.type_name}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            level = VALUE_FIELDS.get(f.name)
            if level == 0:
                out[f.name] = encode_value(value)
            elif level == 1:
                out[f.name] = [encode_value(v) for v in value]
            elif level == 2:
                out[f.name] = [[encode_value(v) for v in vs] for vs in value]
            else:
                out[f.name] = _to_plain(value)
        return out


#: Fields holding user values (0: a value, 1: a list of values, 2: a list of lists of values).
VALUE_FIELDS = {"value": 0, "choices": 1, "candidates": 1, "items": 2}


def _to_plain(value: Any) -> Any:
    from rafiki_ray.spaces._space import SearchSpace

    if isinstance(value, SearchSpace):
        return {"type": "space", "params": value.to_dict()}
    if isinstance(value, Option):
        return {"label": encode_value(value.label), "space": value.space.to_dict()}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Float(Param):
    """A real number in ``[low, high]``, uniform or log-uniform, optionally quantised.

    ``q`` quantises the draw: ``round(v/q)*q`` (or ``floor`` with ``rounding="floor"``),
    then clips to ``[low, high]`` when ``clip`` is true.
    """

    low: float
    high: float
    log: bool = False
    q: float | None = None
    rounding: Rounding = "round"
    clip: bool = True
    type_name: ClassVar[str] = "float"

    def __post_init__(self) -> None:
        lo = _finite(self.low, "low", "float")
        hi = _finite(self.high, "high", "float")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "log", _flag(self.log, "float.log"))
        object.__setattr__(self, "clip", _flag(self.clip, "float.clip"))
        if lo > hi:
            raise invalid("float", "needs low <= high", [lo, hi])
        if not math.isfinite(hi - lo):
            raise invalid("float", "needs high - low within float range", [lo, hi])
        if self.log and lo <= 0:
            raise invalid("float", "log scale needs 0 < low <= high", [lo, hi])
        if self.q is not None:
            q = _finite(self.q, "q", "float")
            if q <= 0:
                raise invalid("float.q", "must be > 0", self.q)
            _check_q_reach(max(abs(lo), abs(hi), 1.0), q, "float.q")
            object.__setattr__(self, "q", q)
        if self.rounding not in ("round", "floor"):
            raise invalid("float.rounding", "must be 'round' or 'floor'", self.rounding)
        if self.q is None:  # rounding and clip only act on a quantised value: one spelling
            object.__setattr__(self, "rounding", "round")
            object.__setattr__(self, "clip", True)

    def from_unit(self, u: float) -> float:
        """Map ``u`` in [0, 1] to a value (the inverse of :meth:`to_unit`)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return self._finish(v)

    def to_unit(self, value: float) -> float:
        v = float(value)
        if self.high == self.low:
            return 0.5
        if self.log:
            v = max(v, self.low)
            u = (math.log(v) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        else:
            u = (v - self.low) / (self.high - self.low)
        return min(max(u, 0.0), 1.0)

    def _finish(self, v: float) -> float:
        if self.q is not None:
            v = _quantize(v, self.q, self.rounding)
        if self.clip:
            v = min(max(v, self.low), self.high)
        return float(v)

    def sample(self, rng: np.random.Generator) -> float:
        return self.from_unit(rng.random())

    def contains(self, value: Any) -> bool:
        if not _is_number(value) or not math.isfinite(float(value)):
            return False
        v = float(value)
        lo, hi = self.low, self.high
        if self.q is not None and not self.clip:
            # unclipped quantisation maps [low, high] onto [Q(low), Q(high)] (monotone Q)
            lo, hi = _quantize(lo, self.q, self.rounding), _quantize(hi, self.q, self.rounding)
        tol = 1e-12 + 1e-9 * max(abs(lo), abs(hi))
        if not (lo - tol <= v <= hi + tol):
            return False
        if self.q is not None and not (self.clip and v in (self.low, self.high)):
            return _multiple(v, self.q)
        return True

    def grid_values(self) -> list[Any] | None:
        if self.low == self.high:
            return [self.low]
        if self.q is None or self.log:
            return None
        lo_k = math.floor(self.low / self.q) if self.rounding == "floor" else round(self.low / self.q)
        hi_k = math.floor(self.high / self.q) if self.rounding == "floor" else round(self.high / self.q)
        if hi_k - lo_k + 1 > GRID_LIMIT:
            return None
        vals = sorted({self._finish(_quantize(k * self.q, self.q, "round")) for k in range(lo_k, hi_k + 1)})
        return vals


@dataclass(frozen=True)
class Int(Param):
    """An integer in ``[low, high]`` (both inclusive), uniform or log-uniform.

    Log-uniform integers are ``floor(exp(U(log low, log(high + 1))))``, the same law as
    Tune's ``lograndint(low, high + 1)``. With ``q``, only multiples of ``q`` are drawn.
    """

    low: int
    high: int
    log: bool = False
    q: int | None = None
    type_name: ClassVar[str] = "int"

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                if isinstance(v, (float, np.floating)) and float(v).is_integer():
                    v = int(v)
                else:
                    raise invalid_type(f"int.{name}", "must be an integer", v)
            if not INT_MIN <= int(v) <= INT_MAX:
                raise invalid(f"int.{name}", "must lie in [-2**63, 2**63 - 2] (int64)", v)
            object.__setattr__(self, name, int(v))
        object.__setattr__(self, "log", _flag(self.log, "int.log"))
        if self.low > self.high:
            raise invalid("int", "needs low <= high", [self.low, self.high])
        if self.log and self.low <= 0:
            raise invalid("int", "log scale needs 0 < low <= high", [self.low, self.high])
        if self.q is not None:
            if isinstance(self.q, bool) or not isinstance(self.q, (int, np.integer)) or self.q <= 0:
                raise invalid("int.q", "must be a positive integer", self.q)
            object.__setattr__(self, "q", int(self.q))
            if self._q_range()[0] > self._q_range()[1]:
                raise invalid("int", f"has no multiple of q={self.q} in [low, high]", [self.low, self.high])

    def _q_range(self) -> tuple[int, int]:
        q = self.q or 1
        return -((-self.low) // q), self.high // q

    @property
    def size(self) -> int:
        lo, hi = self._q_range()
        return hi - lo + 1

    def from_unit(self, u: float) -> int:
        u = min(max(float(u), 0.0), 1.0 - 1e-12)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high + 1)
            v = int(math.floor(math.exp(lo + u * (hi - lo))))
            v = min(max(v, self.low), self.high)
            if self.q:
                v = self._snap(v)
            return v
        lo_k, _ = self._q_range()
        k = lo_k + int(math.floor(u * self.size))
        return int(k * (self.q or 1))

    def to_unit(self, value: Any) -> float:
        v = float(value)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high + 1)
            v = min(max(v, self.low), self.high)
            return min(max((math.log(v + 0.5) - lo) / (hi - lo), 0.0), 1.0)
        lo_k, _ = self._q_range()
        k = v / (self.q or 1)
        return min(max((k - lo_k + 0.5) / self.size, 0.0), 1.0)

    def _snap(self, v: int) -> int:
        q = self.q or 1
        lo_k, hi_k = self._q_range()
        return int(min(max(round(v / q), lo_k), hi_k) * q)

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            return self.from_unit(rng.random())
        lo_k, hi_k = self._q_range()
        return int(rng.integers(lo_k, hi_k + 1)) * (self.q or 1)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return False
        return self.low <= value <= self.high and value % (self.q or 1) == 0

    def grid_values(self) -> list[Any] | None:
        if self.size > GRID_LIMIT:
            return None
        lo_k, hi_k = self._q_range()
        return [k * (self.q or 1) for k in range(lo_k, hi_k + 1)]

    def grid_count(self) -> int | None:
        return None if self.size > GRID_LIMIT else self.size


@dataclass(frozen=True)
class Normal(Param):
    """``N(mu, sigma)``; with ``log`` the value is ``exp(N(mu, sigma))`` (log-normal).

    With ``q``: ``round(v/q)*q`` (or ``floor``), never clipped (NNI's ``qnormal``).
    """

    mu: float
    sigma: float
    log: bool = False
    q: float | None = None
    rounding: Rounding = "round"
    type_name: ClassVar[str] = "normal"

    def __post_init__(self) -> None:
        mu = _finite(self.mu, "mu", "normal")
        object.__setattr__(self, "mu", mu)
        sigma = _finite(self.sigma, "sigma", "normal")
        if sigma <= 0:
            raise invalid("normal.sigma", "must be > 0", self.sigma)
        object.__setattr__(self, "sigma", sigma)
        log = _flag(self.log, "normal.log")
        object.__setattr__(self, "log", log)
        # decide at build time: a draw within 10 sigma of mu must be a finite float
        if log and mu + _SIGMAS * sigma > _LOG_MAX:
            raise invalid(
                "normal",
                f"lognormal needs mu + {_SIGMAS:g} sigma <= {_LOG_MAX:g} (exp overflows beyond)",
                [mu, sigma],
            )
        if not log and not math.isfinite(abs(mu) + _SIGMAS * sigma):
            raise invalid(
                "normal", f"needs |mu| + {_SIGMAS:g} sigma within float range", [mu, sigma]
            )
        if self.q is not None:
            q = _finite(self.q, "q", "normal")
            if q <= 0:
                raise invalid("normal.q", "must be > 0", self.q)
            reach = math.exp(mu + _SIGMAS * sigma) if log else abs(mu) + _SIGMAS * sigma
            _check_q_reach(max(reach, 1.0), q, "normal.q")
            object.__setattr__(self, "q", q)
        if self.rounding not in ("round", "floor"):
            raise invalid("normal.rounding", "must be 'round' or 'floor'", self.rounding)
        if self.q is None:
            object.__setattr__(self, "rounding", "round")

    def from_unit(self, u: float) -> float:
        from scipy.special import ndtri

        u = min(max(float(u), 1e-9), 1 - 1e-9)
        z = self.mu + self.sigma * float(ndtri(u))
        return self._finish(z)

    def to_unit(self, value: Any) -> float:
        from scipy.special import ndtr

        v = float(value)
        if self.log:
            v = math.log(max(v, 1e-300))
        return float(ndtr((v - self.mu) / self.sigma))

    def _finish(self, z: float) -> float:
        v = math.exp(z) if self.log else z
        if self.q is not None:
            v = _quantize(v, self.q, self.rounding)
        return float(v)

    def sample(self, rng: np.random.Generator) -> float:
        return self._finish(float(rng.normal(self.mu, self.sigma)))

    def contains(self, value: Any) -> bool:
        if not _is_number(value) or not math.isfinite(float(value)):
            return False
        if self.log and float(value) < 0:
            return False  # exp(N) >= 0 (0.0 when exp underflows)
        if self.q is not None:
            return _multiple(float(value), self.q)
        return True


def _weights(weights: Any, n: int, path: str) -> tuple[float, ...]:
    """Validated sampling weights: one finite number >= 0 per choice, summing to 1."""
    if isinstance(weights, (str, bytes, Mapping)) or not hasattr(weights, "__iter__"):
        raise invalid_type(path, "must be a list of numbers", weights)
    w = []
    for x in weights:
        if not _is_number(x):
            raise invalid_type(path, "must be a list of numbers", weights)
        try:
            w.append(float(x))
        except OverflowError:
            raise invalid(path, "must be finite and >= 0", weights) from None
    if len(w) != n:
        raise invalid(path, f"needs one weight per choice ({n})", w)
    if any(not math.isfinite(x) or x < 0 for x in w):
        raise invalid(path, "must be finite and >= 0", w)
    if abs(sum(w) - 1.0) > 1e-6:
        raise invalid(path, "must sum to 1", w)
    return tuple(w)


#: Normal draws beyond this many sigmas are treated as impossible (probability < 1e-22).
_SIGMAS = 10.0
#: Largest z with a finite exp(z).
_LOG_MAX = 709.0


def _same(a: Any, b: Any) -> bool:
    """Equality that does not equate ``True`` with ``1``, and equates NaN with NaN (a NaN
    choice must contain its own samples)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001  # pragma: no cover - exotic values
        return False



@dataclass(frozen=True)
class Option:
    """One branch of a :class:`Conditional`: a label and the sub-space active under it."""

    label: Any
    space: SearchSpace

    def __hash__(self) -> int:
        return hash((repr(self.label), id(self.space)))


@dataclass(frozen=True)
class Conditional(Param):
    """A choice between sub-spaces (NNI nested choice, RapidFire lists of config groups).

    The value is ``{label_key: label, **sub_config}``, or just ``sub_config`` when
    ``label_key`` is ``None``. Only the chosen option's parameters are active.
    """

    options: tuple[Option, ...]
    weights: tuple[float, ...] | None = None
    label_key: str | None = "_name"
    type_name: ClassVar[str] = "conditional"

    def __post_init__(self) -> None:
        from rafiki_ray.spaces._space import SearchSpace

        if self.label_key is not None and not isinstance(self.label_key, str):
            raise invalid_type("conditional.label_key", "must be a str or None", self.label_key)
        if isinstance(self.options, (str, bytes, Mapping)) or not hasattr(self.options, "__iter__"):
            raise invalid_type("conditional.options", "must be a list of options", self.options)
        opts = tuple(self.options)
        if not opts:
            raise invalid("conditional.options", "must not be empty", [])
        for i, o in enumerate(opts):
            if not isinstance(o, Option) or not isinstance(o.space, SearchSpace):
                raise invalid_type(f"conditional.options[{i}]", "must be an Option(label, SearchSpace)", o)
            if self.label_key is not None and self.label_key in o.space:
                raise invalid(
                    f"conditional.options[{i}]", f"sub-space must not define {self.label_key!r}", o.label
                )
            if self.label_key is not None:
                # a value names its option by label: two options with one label are ambiguous
                for j in range(i):
                    if _same(opts[j].label, o.label):
                        raise invalid(f"conditional.options[{i}].label",
                                      f"must differ from every other option's (options[{j}] has it)",
                                      o.label)
        object.__setattr__(self, "options", opts)
        if self.weights is not None:
            object.__setattr__(self, "weights", _weights(self.weights, len(opts), "conditional.weights"))

    def __hash__(self) -> int:
        return hash((self.type_name, tuple(repr(o.label) for o in self.options)))

    def make(self, i: int, sub: dict[str, Any]) -> dict[str, Any]:
        if self.label_key is None:
            return sub
        return {self.label_key: copy.deepcopy(self.options[i].label), **sub}

    def which(self, value: Any) -> int:
        """Index of the option that produced ``value``."""
        if not isinstance(value, dict):
            raise invalid("conditional", "value must be a dict", value)
        if self.label_key is not None:
            for i, o in enumerate(self.options):
                if self.label_key in value and _same(value[self.label_key], o.label):
                    return i
            raise invalid("conditional", f"{self.label_key!r} names no option", value.get(self.label_key))
        for i, o in enumerate(self.options):
            if set(value) == set(o.space.keys()) and o.space.contains(value):
                return i
        raise invalid("conditional", "value matches no option", value)

    def sub_value(self, value: dict[str, Any]) -> dict[str, Any]:
        if self.label_key is None:
            return value
        return {k: v for k, v in value.items() if k != self.label_key}

    def sample(self, rng: np.random.Generator) -> Any:
        if self.weights is None:
            i = int(rng.integers(len(self.options)))
        else:
            i = int(rng.choice(len(self.options), p=np.asarray(self.weights)))
        return self.make(i, self.options[i].space.sample(rng))

    def contains(self, value: Any) -> bool:
        try:
            i = self.which(value)
        except ValueError:
            return False
        if self.label_key is None:  # which() found it inside that option's space
            return True
        return self.options[i].space.contains(self.sub_value(value))

    def grid_values(self) -> list[Any] | None:
        # counted before it is listed: an option's grid can be a product far too large
        if self.grid_count() is None:
            return None
        return [self.make(i, c) for i, o in enumerate(self.options) for c in o.space.grid()]

    def grid_count(self) -> int | None:
        # from the options' counts, never their lists: nested choices stay linear in depth
        total = 0
        for o in self.options:
            n = o.space.grid_count()
            if n is None or total + n > GRID_LIMIT:
                return None
            total += n
        return total


# the choice types live in their own module; imported last (they build on Param above)
from rafiki_ray.spaces._choices import Arch, Categorical, Fixed, Policy, Subset
