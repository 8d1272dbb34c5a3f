"""One numeric encoding of a ``SearchSpace`` shared by every model-based searcher.

A configuration becomes a vector ``x`` with one entry per :class:`Dim` and a boolean
``active`` mask:

* ``real`` and ``int`` dims hold a position in the unit interval (log scale, quantisation
  and normal priors are folded into the map, so every numeric dim is uniform on [0, 1]
  under the source's own prior: normals go through their CDF);
* ``cat`` dims hold the category index as a float (``n`` categories);
* a :class:`Conditional` contributes a ``cat`` dim for the option, then its options' dims,
  which are active only under their option (``parent``/``parent_option``);
* an :class:`Arch` contributes one ``cat`` dim per position, a :class:`Subset` one ``real``
  score per candidate (the top ``n_chosen`` scores are chosen);
* fixed values and policies contribute no dim.

Inactive entries hold a neutral value (0.5, or category 0) so that models that cannot use
masks still see finite numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rafiki_ray.spaces._params import (
    Arch,
    Categorical,
    Conditional,
    Fixed,
    Float,
    Int,
    Normal,
    Param,
    Policy,
    Subset,
)
from rafiki_ray.spaces._space import SearchSpace, as_space

__all__ = ["Dim", "Encoder"]

DimKind = Literal["real", "int", "cat"]


@dataclass(frozen=True)
class Dim:
    """One coordinate of the encoding."""

    name: str  # "a/b" path, with "[i]" suffixes for arch positions / subset candidates
    kind: DimKind
    n: int  # categories for "cat"; distinct values for "int" (0 when huge); 0 for "real"
    parent: int | None = None  # index of the conditional's cat dim that gates this one
    parent_option: int | None = None
    prior: tuple[float, ...] | None = None  # category weights, when the source has them


class Encoder:
    """Encode/decode configurations of a space to/from vectors (see module docstring)."""

    def __init__(self, space: Any) -> None:
        self.space: SearchSpace = as_space(space)
        self.dims: list[Dim] = []
        self._plan = self._build(self.space, "", None, None)

    # -- structure ------------------------------------------------------------------------
    @property
    def n_dims(self) -> int:
        return len(self.dims)

    def kinds(self) -> np.ndarray:
        return np.array([d.kind for d in self.dims], dtype=object)

    def cardinalities(self) -> np.ndarray:
        """Categories per dim (0 for numeric dims)."""
        return np.array([d.n if d.kind == "cat" else 0 for d in self.dims], dtype=int)

    def _add(self, dim: Dim) -> int:
        self.dims.append(dim)
        return len(self.dims) - 1

    def _build(self, space: SearchSpace, prefix: str, parent: int | None, opt: int | None) -> list[Any]:
        plan: list[Any] = []
        for key, p in space.items():
            name = f"{prefix}{key}"
            if isinstance(p, SearchSpace):
                plan.append((key, "space", self._build(p, name + "/", parent, opt)))
            else:
                plan.append((key, "param", self._param_plan(p, name, parent, opt)))
        return plan

    def _param_plan(self, p: Param, name: str, parent: int | None, opt: int | None) -> Any:
        if isinstance(p, (Fixed, Policy)):
            return (p, None)
        if isinstance(p, (Float, Normal)):
            return (p, self._add(Dim(name, "real", 0, parent, opt)))
        if isinstance(p, Int):
            return (p, self._add(Dim(name, "int", p.size if p.size < 10**9 else 0, parent, opt)))
        if isinstance(p, Categorical):
            return (p, self._add(Dim(name, "cat", len(p.choices), parent, opt, p.weights)))
        if isinstance(p, Arch):
            idx = [self._add(Dim(f"{name}[{i}]", "cat", len(c), parent, opt)) for i, c in enumerate(p.items)]
            return (p, idx)
        if isinstance(p, Subset):
            idx = [self._add(Dim(f"{name}[{i}]", "real", 0, parent, opt)) for i in range(len(p.candidates))]
            return (p, idx)
        if isinstance(p, Conditional):
            d = self._add(Dim(name, "cat", len(p.options), parent, opt, p.weights))
            subs = [self._build(o.space, f"{name}/{i}/", d, i) for i, o in enumerate(p.options)]
            return (p, (d, subs))
        raise TypeError(f"{name}: cannot encode parameter type {type(p).__name__}")

    # -- encode ---------------------------------------------------------------------------
    def neutral(self) -> np.ndarray:
        return np.array([0.0 if d.kind == "cat" else 0.5 for d in self.dims], dtype=float)

    def encode(self, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(x, active)`` for a configuration of the space."""
        x = self.neutral()
        active = np.zeros(self.n_dims, dtype=bool)
        self._encode_plan(self._plan, config, x, active)
        return x, active

    def _encode_plan(self, plan: list[Any], cfg: dict[str, Any], x: np.ndarray, active: np.ndarray) -> None:
        for key, kind, sub in plan:
            if kind == "space":
                self._encode_plan(sub, cfg[key], x, active)
                continue
            p, idx = sub
            value = cfg[key]
            if idx is None:
                continue
            if isinstance(p, (Float, Normal, Int)):
                x[idx], active[idx] = p.to_unit(value), True
            elif isinstance(p, Categorical):
                x[idx], active[idx] = p.index(value), True
            elif isinstance(p, Arch):
                for pos, i in enumerate(idx):
                    x[i], active[i] = p.index(pos, value[pos]), True
            elif isinstance(p, Subset):
                chosen = set(p.indices(value))
                for c, i in enumerate(idx):
                    x[i], active[i] = (1.0 if c in chosen else 0.0), True
            elif isinstance(p, Conditional):
                d, subs = idx
                o = p.which(value)
                x[d], active[d] = o, True
                self._encode_plan(subs[o], p.sub_value(value), x, active)

    # -- decode ---------------------------------------------------------------------------
    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """The configuration for a vector (numeric entries are clipped to [0, 1])."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.n_dims,):
            raise ValueError(f"x: needs shape ({self.n_dims},), got {x.shape}")
        return self._decode_plan(self._plan, x)

    def active_mask(self, x: np.ndarray) -> np.ndarray:
        """Which dims of ``x`` are active (from its conditional choices)."""
        return self.encode(self.decode(x))[1]

    def _decode_plan(self, plan: list[Any], x: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, kind, sub in plan:
            if kind == "space":
                out[key] = self._decode_plan(sub, x)
                continue
            p, idx = sub
            if idx is None:
                out[key] = p.sample(np.random.default_rng(0))  # Fixed / Policy: constant
            elif isinstance(p, (Float, Normal, Int)):
                out[key] = p.from_unit(float(x[idx]))
            elif isinstance(p, Categorical):
                out[key] = p.pick(_cat(x[idx], len(p.choices)))
            elif isinstance(p, Arch):
                out[key] = [
                    p.items[pos][_cat(x[i], len(p.items[pos]))] for pos, i in enumerate(idx)
                ]
            elif isinstance(p, Subset):
                scores = np.asarray([x[i] for i in idx])
                order = np.argsort(-scores, kind="stable")[: p.n_chosen]
                out[key] = p.pick(list(order))
            elif isinstance(p, Conditional):
                d, subs = idx
                o = _cat(x[d], len(p.options))
                out[key] = p.make(o, self._decode_plan(subs[o], x))
        return out

    # -- helpers for searchers -----------------------------------------------------------
    def sample_vector(self, rng: np.random.Generator) -> np.ndarray:
        """A vector drawn from the space's own prior (sample a config, then encode it)."""
        return self.encode(self.space.sample(rng))[0]

    def round_trip(self, x: np.ndarray) -> np.ndarray:
        """Snap a vector onto the values the space can produce (decode then encode)."""
        return self.encode(self.decode(x))[0]


def _cat(v: float, n: int) -> int:
    return int(min(max(int(round(float(v))), 0), n - 1))
