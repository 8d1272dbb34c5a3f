"""The choice parameter types: :class:`Categorical`, :class:`Fixed`, Rafiki's :class:`Policy`
and :class:`Arch` knobs, and :class:`Subset` (NNI ``input_choice``). Re-exported by
:mod:`rafiki_ray.spaces._params`, whose conventions they follow (sampling from a
``numpy.random.Generator``, membership, enumeration, plain-dict round trip)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rafiki_ray._constants import POLICIES
from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces._limits import check_value
from rafiki_ray.spaces._params import GRID_LIMIT, Emit, Param, _plain, _same, _weights

__all__ = ["Arch", "Categorical", "Fixed", "Policy", "Subset"]


def _find(options: tuple[Any, ...], value: Any) -> int | None:
    """Index of ``value`` among ``options``: an equal option of the same type first (so
    ``0.0`` finds ``0.0``, not an earlier ``0``), else the first equal one."""
    fallback = None
    for i, c in enumerate(options):
        if _same(c, value):
            if type(c) is type(value):
                return i
            if fallback is None:
                fallback = i
    return fallback


@dataclass(frozen=True, eq=True)
class Categorical(Param):
    """One of ``choices`` (any values, dicts and lists included), optionally weighted.

    ``emit="nni"`` returns ``{"_value": v, "_idx": i}`` (NNI's ``layer_choice`` format).
    """

    choices: tuple[Any, ...]
    weights: tuple[float, ...] | None = None
    emit: Emit = "value"
    type_name: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        if isinstance(self.choices, (str, bytes, dict)) or not hasattr(self.choices, "__iter__"):
            raise invalid_type("categorical.choices", "must be a list of values", self.choices)
        choices = tuple(_plain(c) for c in self.choices)
        if not choices:
            raise invalid("categorical.choices", "must not be empty", list(choices))
        check_value(list(choices), "categorical.choices")
        object.__setattr__(self, "choices", choices)
        if self.weights is not None:
            w = _weights(self.weights, len(choices), "categorical.weights")
            object.__setattr__(self, "weights", w)
        if self.emit not in ("value", "nni"):
            raise invalid("categorical.emit", "must be 'value' or 'nni'", self.emit)

    def __hash__(self) -> int:
        return hash((self.type_name, repr(self.choices), self.weights, self.emit))

    def index(self, value: Any) -> int:
        """Index of ``value`` (or of its NNI ``{"_value", "_idx"}`` form) in ``choices``."""
        if self.emit == "nni" and isinstance(value, dict) and "_idx" in value:
            return int(value["_idx"])
        i = _find(self.choices, value)
        if i is None:
            raise invalid("categorical", f"value is not one of {list(self.choices)!r}", value)
        return i

    def pick(self, i: int) -> Any:
        v = copy.deepcopy(self.choices[int(i)])
        if self.emit == "nni":
            return {"_value": v, "_idx": int(i)}
        return v

    def sample(self, rng: np.random.Generator) -> Any:
        if self.weights is None:
            i = int(rng.integers(len(self.choices)))
        else:
            i = int(rng.choice(len(self.choices), p=np.asarray(self.weights)))
        return self.pick(i)

    def contains(self, value: Any) -> bool:
        try:
            self.index(value)
        except ValueError:
            return False
        return True

    def grid_values(self) -> list[Any] | None:
        return [self.pick(i) for i in range(len(self.choices))]

    def grid_count(self) -> int | None:
        return len(self.choices)


@dataclass(frozen=True)
class Fixed(Param):
    """A constant."""

    value: Any
    type_name: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        check_value(self.value, "fixed.value")

    def __hash__(self) -> int:
        return hash((self.type_name, repr(self.value)))

    def sample(self, rng: np.random.Generator) -> Any:
        return copy.deepcopy(self.value)

    def contains(self, value: Any) -> bool:
        return _same(value, self.value)

    def grid_values(self) -> list[Any] | None:
        return [copy.deepcopy(self.value)]


@dataclass(frozen=True)
class Policy(Param):
    """A Rafiki policy switch (a bool the advisor sets; ``default`` when nothing does)."""

    policy: str
    default: bool = False
    type_name: ClassVar[str] = "policy"

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise invalid("policy", f"must be one of {list(POLICIES)}", self.policy)
        if not isinstance(self.default, bool):
            raise invalid_type("policy.default", "must be a bool", self.default)

    def sample(self, rng: np.random.Generator) -> bool:
        return self.default

    def contains(self, value: Any) -> bool:
        return isinstance(value, bool)

    def grid_values(self) -> list[Any] | None:
        return [self.default]


@dataclass(frozen=True)
class Arch(Param):
    """An architecture: one choice per position; the value is a list.

    ``items[i]`` holds the candidates at position ``i``. Candidates compare by value.
    """

    items: tuple[tuple[Any, ...], ...]
    type_name: ClassVar[str] = "arch"

    def __post_init__(self) -> None:
        if isinstance(self.items, (str, bytes, dict)) or not hasattr(self.items, "__iter__"):
            raise invalid_type("arch.items", "must be a list of candidate lists", self.items)
        items = []
        for i, cands in enumerate(self.items):
            if isinstance(cands, (str, bytes, dict)) or not hasattr(cands, "__iter__"):
                raise invalid_type(f"arch.items[{i}]", "must be a list of candidates", cands)
            cands = tuple(_plain(c) for c in cands)
            if not cands:
                raise invalid(f"arch.items[{i}]", "must not be empty", list(cands))
            items.append(cands)
        if not items:
            raise invalid("arch.items", "must not be empty", [])
        check_value(items, "arch.items")
        object.__setattr__(self, "items", tuple(items))

    def __hash__(self) -> int:
        return hash((self.type_name, repr(self.items)))

    def index(self, pos: int, value: Any) -> int:
        i = _find(self.items[pos], value)
        if i is not None:
            return i
        raise invalid(f"arch[{pos}]", f"value is not one of {list(self.items[pos])!r}", value)

    def sample(self, rng: np.random.Generator) -> list[Any]:
        return [copy.deepcopy(c[int(rng.integers(len(c)))]) for c in self.items]

    def contains(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) != len(self.items):
            return False
        try:
            for p, v in enumerate(value):
                self.index(p, v)
        except ValueError:
            return False
        return True

    def grid_values(self) -> list[Any] | None:
        n = math.prod(len(c) for c in self.items)
        if n > GRID_LIMIT:
            return None
        import itertools

        return [list(combo) for combo in itertools.product(*self.items)]


@dataclass(frozen=True)
class Subset(Param):
    """``n_chosen`` distinct candidates (NNI ``input_choice``), in candidate order.

    ``emit="nni"`` returns ``{"_value": [...], "_idx": [...]}``.
    """

    candidates: tuple[Any, ...]
    n_chosen: int
    emit: Emit = "value"
    type_name: ClassVar[str] = "subset"

    def __post_init__(self) -> None:
        if isinstance(self.candidates, (str, bytes, dict)) or not hasattr(self.candidates, "__iter__"):
            raise invalid_type("subset.candidates", "must be a list of values", self.candidates)
        cands = tuple(_plain(c) for c in self.candidates)
        object.__setattr__(self, "candidates", cands)
        if not cands:
            raise invalid("subset.candidates", "must not be empty", [])
        check_value(list(cands), "subset.candidates")
        n = self.n_chosen
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= len(cands):
            raise invalid("subset.n_chosen", f"must be an int in [0, {len(cands)}]", n)
        object.__setattr__(self, "n_chosen", int(n))
        if self.emit not in ("value", "nni"):
            raise invalid("subset.emit", "must be 'value' or 'nni'", self.emit)

    def __hash__(self) -> int:
        return hash((self.type_name, repr(self.candidates), self.n_chosen, self.emit))

    def pick(self, idx: list[int]) -> Any:
        idx = sorted(int(i) for i in idx)
        vals = [copy.deepcopy(self.candidates[i]) for i in idx]
        if self.emit == "nni":
            return {"_value": vals, "_idx": idx}
        return vals

    def indices(self, value: Any) -> list[int]:
        if self.emit == "nni" and isinstance(value, dict) and "_idx" in value:
            return sorted(int(i) for i in value["_idx"])
        out = []
        for v in value:
            for i, c in enumerate(self.candidates):
                if _same(c, v) and i not in out:
                    out.append(i)
                    break
            else:
                raise invalid("subset", f"value is not one of {list(self.candidates)!r}", v)
        return sorted(out)

    def sample(self, rng: np.random.Generator) -> Any:
        idx = rng.choice(len(self.candidates), size=self.n_chosen, replace=False)
        return self.pick(list(idx))

    def contains(self, value: Any) -> bool:
        try:
            idx = self.indices(value)
        except (ValueError, TypeError):
            return False
        return len(idx) == self.n_chosen and len(set(idx)) == len(idx)

    def grid_values(self) -> list[Any] | None:
        import itertools

        if math.comb(len(self.candidates), self.n_chosen) > GRID_LIMIT:
            return None
        return [self.pick(list(c)) for c in itertools.combinations(range(len(self.candidates)), self.n_chosen)]
