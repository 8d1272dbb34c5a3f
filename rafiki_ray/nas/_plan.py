"""The decision plan of a search space: the ordered choice positions an architecture
controller samples, and the map between a configuration and its decisions.

Every parameter of a :class:`~rafiki_ray.spaces.SearchSpace` becomes zero or more *positions*
(one discrete choice each), visited in the space's key order:

* ``Categorical`` (plain or NNI ``layer_choice``): one position over its choices;
* ``Arch`` (Rafiki ``ArchKnob``): one position per item;
* ``Subset`` (NNI ``input_choice``): ``n_chosen`` positions over the candidates, picked in
  ascending candidate order (pick ``j`` may only take a candidate after pick ``j-1`` and
  leaving room for the rest), so every subset has exactly one decision sequence;
* ``Conditional``: one position over the options, then the chosen option's positions;
* numeric parameters (``Float``, ``Int``, ``Normal``): their exact values when at most
  ``bins`` exist, otherwise ``bins`` equal slices of the unit interval of
  ``from_unit``/``to_unit``, the value drawn uniformly inside the chosen slice;
* ``Fixed`` and ``Policy``: no position (their value, or the policy's default).

Every choice of every position has a *token* (the controller's input embedding for the next
step). Within one ``Arch`` or ``Subset`` parameter, equal candidates share a token: the same
value at several positions has the same meaning (Rafiki reuses one ``KnobValue`` object for
that; its identity does not survive ``from_knobs``, equality does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rafiki_ray.spaces import (
    Arch,
    Categorical,
    Conditional,
    Fixed,
    Float,
    Int,
    Normal,
    Policy,
    SearchSpace,
    Subset,
)

__all__ = ["Plan", "Position"]

#: ``decide(position_id, allowed_mask_or_None) -> index``
Decide = Callable[[int, "np.ndarray | None"], int]


@dataclass(frozen=True)
class Position:
    """One discrete decision: ``tokens[i]`` is the embedding id of choice ``i``."""

    path: str
    tokens: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.tokens)


def _key(value: Any) -> str:
    return f"{type(value).__name__}:{value!r}"


class Plan:
    """Compile ``space`` into positions; :meth:`build` samples, :meth:`decisions` encodes."""

    def __init__(self, space: SearchSpace, *, bins: int = 8) -> None:
        self.space = space
        self.bins = int(bins)
        self.positions: list[Position] = []
        self.n_tokens = 0
        self._tree = self._compile(space, "")

    # ------------------------------------------------------------------ compile
    def _new_tokens(self, n: int) -> tuple[int, ...]:
        out = tuple(range(self.n_tokens, self.n_tokens + n))
        self.n_tokens += n
        return out

    def _add(self, path: str, tokens: tuple[int, ...]) -> int:
        self.positions.append(Position(path, tokens))
        return len(self.positions) - 1

    def _compile(self, space: SearchSpace, prefix: str) -> list[tuple[str, str, Any, Any]]:
        nodes: list[tuple[str, str, Any, Any]] = []
        for key, p in space.items():
            path = f"{prefix}{key}"
            if isinstance(p, SearchSpace):
                nodes.append((key, "space", p, self._compile(p, path + ".")))
            elif isinstance(p, (Fixed, Policy)):
                nodes.append((key, "const", p, None))
            elif isinstance(p, Categorical):
                nodes.append((key, "cat", p, self._add(path, self._new_tokens(len(p.choices)))))
            elif isinstance(p, Arch):
                shared: dict[str, int] = {}
                pos = []
                for i, cands in enumerate(p.items):
                    toks = []
                    for c in cands:
                        if _key(c) not in shared:
                            shared[_key(c)] = self._new_tokens(1)[0]
                        toks.append(shared[_key(c)])
                    pos.append(self._add(f"{path}[{i}]", tuple(toks)))
                nodes.append((key, "arch", p, pos))
            elif isinstance(p, Subset):
                toks = self._new_tokens(len(p.candidates))
                pos = [self._add(f"{path}[{j}]", toks) for j in range(p.n_chosen)]
                nodes.append((key, "subset", p, pos))
            elif isinstance(p, Conditional):
                pid = self._add(path, self._new_tokens(len(p.options)))
                subs = [self._compile(o.space, f"{path}.{o.label}.") for o in p.options]
                nodes.append((key, "cond", p, (pid, subs)))
            elif isinstance(p, (Float, Int, Normal)):
                grid = None if isinstance(p, Normal) else p.grid_values()
                if grid is not None and len(grid) <= self.bins:
                    nodes.append((key, "grid", p, (self._add(path, self._new_tokens(len(grid))), grid)))
                else:
                    nodes.append((key, "bins", p, self._add(path, self._new_tokens(self.bins))))
            else:  # pragma: no cover - every Param type is listed above
                raise TypeError(f"{path}: no controller positions for {type(p).__name__}")
        return nodes

    # ------------------------------------------------------------------ sample
    def build(self, decide: Decide, rng: np.random.Generator) -> dict[str, Any]:
        """A configuration from ``decide`` (one call per visited position, in order);
        ``rng`` draws values inside numeric slices."""
        return self._build(self._tree, decide, rng)

    def _build(self, nodes: list, decide: Decide, rng: np.random.Generator) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, kind, p, info in nodes:
            if kind == "space":
                out[key] = self._build(info, decide, rng)
            elif kind == "const":
                out[key] = p.sample(rng) if isinstance(p, Fixed) else p.default
            elif kind == "cat":
                out[key] = p.pick(decide(info, None))
            elif kind == "arch":
                out[key] = [p.items[i][decide(pid, None)] for i, pid in enumerate(info)]
            elif kind == "subset":
                n, k = len(p.candidates), p.n_chosen
                picks: list[int] = []
                for j, pid in enumerate(info):
                    mask = np.zeros(n, dtype=bool)
                    lo = picks[-1] + 1 if picks else 0
                    mask[lo : n - k + j + 1] = True
                    picks.append(decide(pid, mask))
                out[key] = p.pick(picks)
            elif kind == "cond":
                pid, subs = info
                i = decide(pid, None)
                out[key] = p.make(i, self._build(subs[i], decide, rng))
            elif kind == "grid":
                pid, grid = info
                out[key] = grid[decide(pid, None)]
            else:  # bins
                b = decide(info, None)
                out[key] = p.from_unit((b + float(rng.random())) / self.bins)
        return out

    # ------------------------------------------------------------------ encode
    def decisions(self, config: Mapping[str, Any]) -> list[tuple[int, int]]:
        """The ``(position, choice)`` sequence that :meth:`build` follows to ``config``."""
        out: list[tuple[int, int]] = []
        self._encode(self._tree, config, out)
        return out

    def _encode(self, nodes: list, config: Mapping[str, Any], out: list) -> None:
        for key, kind, p, info in nodes:
            v = config[key]
            if kind == "space":
                self._encode(info, v, out)
            elif kind == "cat":
                out.append((info, p.index(v)))
            elif kind == "arch":
                out.extend((pid, p.index(i, v[i])) for i, pid in enumerate(info))
            elif kind == "subset":
                out.extend(zip(info, p.indices(v)))
            elif kind == "cond":
                pid, subs = info
                i = p.which(v)
                out.append((pid, i))
                self._encode(subs[i], p.sub_value(v), out)
            elif kind == "grid":
                pid, grid = info
                out.append((pid, _nearest(grid, v)))
            elif kind == "bins":
                u = p.to_unit(v)
                out.append((info, min(int(u * self.bins), self.bins - 1)))

    def masks(self, decisions: list[tuple[int, int]]) -> list[np.ndarray | None]:
        """The allowed-choice mask of each decision (``None``: all allowed), as :meth:`build`
        applies them (subset picks are ascending)."""
        out: list[np.ndarray | None] = []
        prev: dict[int, tuple[int, int]] = {}  # subset positions: previous pick of its group
        groups = self._subset_groups()
        for pid, idx in decisions:
            g = groups.get(pid)
            if g is None:
                out.append(None)
                continue
            first, j, n, k = g
            lo = prev[first][1] + 1 if j > 0 and first in prev else 0
            mask = np.zeros(n, dtype=bool)
            mask[lo : n - k + j + 1] = True
            out.append(mask)
            prev[first] = (j, idx)
        return out

    def _subset_groups(self) -> dict[int, tuple[int, int, int, int]]:
        groups: dict[int, tuple[int, int, int, int]] = {}

        def walk(nodes: list) -> None:
            for _, kind, p, info in nodes:
                if kind == "space":
                    walk(info)
                elif kind == "subset":
                    for j, pid in enumerate(info):
                        groups[pid] = (info[0], j, len(p.candidates), p.n_chosen)
                elif kind == "cond":
                    for sub in info[1]:
                        walk(sub)

        walk(self._tree)
        return groups


def _nearest(grid: list[Any], v: Any) -> int:
    for i, g in enumerate(grid):
        if g == v:
            return i
    return int(np.argmin([abs(float(g) - float(v)) for g in grid]))
