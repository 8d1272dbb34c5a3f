"""NNI v2's grid search: categoricals enumerated, numeric parameters refined epoch by epoch.

:class:`ProgressiveGridSearch` reproduces ``nni/algorithms/hpo/gridsearch_tuner.py`` (NNI v2,
``GridSearchTuner``) on a :class:`~rafiki_ray.spaces.SearchSpace`, in NNI's order:

* every parameter is a *dimension*. Categorical ones (``choice``, ``randint``, anything with
  a finite list of values) have their values as grid; a numeric one (``uniform``,
  ``quniform``, ``loguniform``, ``qloguniform``, ``normal``, ``qnormal``, ``lognormal``,
  ``qlognormal``) has positions ``u`` in (0, 1) of its quantile function: ``low + (high -
  low) * u`` (in log space for log types), ``mu + sigma * sqrt(2) * erfinv(2u - 1)`` for the
  normal types, then exp / ``round(v / q) * q`` / clip as the type says;
* epoch 1 has ``u = 1/2`` for every numeric dimension; each later epoch halves every interval
  whose ends still give different values, adding the midpoints (1/4, 3/4, then 1/8, ...);
* within an epoch the configurations are the odometer over the grid, the last dimension
  fastest, skipping those whose every position was already in the previous epochs' grid;
  a nested choice's sub-parameters count only under their option;
* a configuration equal to an earlier one (after rounding) is skipped; when no interval can
  be halved any more the search is complete (:data:`Searcher.FINISHED`). Spaces with an
  unquantised numeric parameter never complete: bound the run with a trial number or time.

The order does not depend on results, so the searcher's state is how many configurations it
has given (replayed on restore). :func:`grid_points` gives the same sequence without Tune.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from rafiki_ray._errors import invalid
from rafiki_ray.searchers._base import RafikiSearcher
from rafiki_ray.spaces import SearchSpace
from rafiki_ray.spaces._params import Conditional, Float, Normal

__all__ = ["ProgressiveGridSearch", "grid_points", "is_finite_grid"]


@dataclass(frozen=True)
class _Dim:
    path: tuple[str, ...]  # where the value goes in the configuration
    param: Any
    parent: tuple[int, int] | None  # (dimension, option) under which it is active
    values: tuple[Any, ...] | None  # categorical values (labels for a nested choice)


def _dims(space: SearchSpace, prefix: tuple[str, ...] = (),
          parent: tuple[int, int] | None = None, out: list[_Dim] | None = None) -> list[_Dim]:
    """NNI's formatted order: each parameter, a nested choice followed by its options'
    sub-parameters, option by option."""
    out = [] if out is None else out
    for key, p in space.items():
        path = (*prefix, key)
        if isinstance(p, SearchSpace):
            _dims(p, path, parent, out)
        elif isinstance(p, Conditional):
            index = len(out)
            out.append(_Dim(path, p, parent, tuple(o.label for o in p.options)))
            for j, option in enumerate(p.options):
                _dims(option.space, path, (index, j), out)
        elif isinstance(p, (Float, Normal)):
            out.append(_Dim(path, p, parent, None))
        else:
            values = p.grid_values()
            if values is None:
                raise invalid("/".join(path), "grid search needs a finite list of values or a "
                              "numeric range", p)
            out.append(_Dim(path, p, parent, tuple(values)))
    return out


def _inverse_cdf(u: float, p: Float | Normal) -> float:
    """NNI's ``_cdf_inverse`` (before exp / q / clip)."""
    if isinstance(p, Normal):
        from scipy.special import erfinv

        return float(p.mu + p.sigma * math.sqrt(2) * erfinv(2 * u - 1))
    lo, hi = (math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)
    return lo + (hi - lo) * u


def _value(u: float, p: Float | Normal) -> float:
    """The parameter's value at position ``u`` (±inf at the ends of a normal's range, as in
    NNI's ``_deformat_single_parameter``)."""
    v = _inverse_cdf(u, p)
    if math.isinf(v):
        return v
    if p.log:
        v = math.exp(v)
    if p.q is not None:
        k = round(v / p.q) if p.rounding == "round" else math.floor(v / p.q + 1e-9)
        v = float(np.round(k * p.q, 12))  # the space's own quantisation (trims 0.1*3 noise)
        if isinstance(p, Float) and p.clip:
            v = min(max(v, p.low), p.high)
    return float(v)


def _less(a: float, b: float, p: Float | Normal) -> bool:
    return _value(a, p) < _value(b, p)


class _Grid:
    """The generator (NNI's ``GridSearchTuner`` state)."""

    def __init__(self, space: SearchSpace) -> None:
        self.dims = _dims(space)
        if not self.dims:
            raise invalid("space", "has no parameter to search", space.to_dict())
        self.grid: list[list[Any]] | None = []
        self.divisions: dict[int, list[tuple[float, float]]] = {}
        self.epoch_bar = [0] * len(self.dims)
        self.vector: list[int] | None = None
        self.history: set[str] = set()
        for i, d in enumerate(self.dims):
            if d.values is not None:
                self.grid.append(list(range(len(d.values))))
            else:
                self.grid.append([0.5])
                self.divisions[i] = [div for div in ((0.0, 0.5), (0.5, 1.0))
                                     if _less(div[0], div[1], d.param)]

    def _active(self) -> list[bool]:
        assert self.vector is not None
        on: list[bool] = []
        for d in self.dims:
            on.append(d.parent is None or (on[d.parent[0]]
                                           and self.vector[d.parent[0]] == d.parent[1]))
        return on

    def _config(self) -> dict[str, Any]:
        assert self.vector is not None and self.grid is not None
        out: dict[str, Any] = {}
        for i, (d, on) in enumerate(zip(self.dims, self._active())):
            if not on:
                continue
            x = self.grid[i][self.vector[i]]
            node = out
            for part in d.path[:-1]:
                node = node.setdefault(part, {})
            if isinstance(d.param, Conditional):
                sub = node.setdefault(d.path[-1], {})
                if d.param.label_key is not None:
                    sub[d.param.label_key] = d.values[x] if d.values else None
            elif d.values is not None:
                node[d.path[-1]] = d.values[x]
            else:
                node[d.path[-1]] = _value(x, d.param)
        return out

    def _next_vector(self) -> None:
        if self.vector is None:
            self.vector = [0] * len(self.dims)
            return
        assert self.grid is not None
        for i in reversed([i for i, on in enumerate(self._active()) if on]):
            if self.vector[i] + 1 < len(self.grid[i]):
                self.vector[i] += 1
                return
            self.vector[i] = 0
        self.vector = None  # the epoch is over

    def _next_grid(self) -> None:
        assert self.grid is not None
        updated = False
        for i, d in enumerate(self.dims):
            self.epoch_bar[i] = len(self.grid[i])
            if d.values is not None:
                continue
            new_vals, new_divs = [], []
            for lo, hi in self.divisions[i]:
                mid = (lo + hi) / 2
                diff_l, diff_r = _less(lo, mid, d.param), _less(mid, hi, d.param)
                # 0 and 1 are never grid points (a normal's are infinite)
                if (diff_l or lo == 0.0) and (diff_r or hi == 1.0):
                    new_vals.append(mid)
                    updated = True
                if diff_l:
                    new_divs.append((lo, mid))
                    updated = updated or lo == 0.0
                if diff_r:
                    new_divs.append((mid, hi))
                    updated = updated or hi == 1.0
            self.grid[i] += new_vals
            self.divisions[i] = new_divs
        if not updated:
            self.grid = None  # fully explored

    def _suggest(self) -> dict[str, Any] | None:
        while True:
            if self.grid is None:
                return None
            self._next_vector()
            if self.vector is None:
                self._next_grid()
                continue
            if all(v < bar for v, bar in zip(self.vector, self.epoch_bar)):
                continue  # explored in an earlier epoch
            return self._config()

    def next(self) -> dict[str, Any] | None:
        """The next new configuration, or ``None`` when the space is fully explored."""
        while True:
            config = self._suggest()
            if config is None:
                return None
            key = json.dumps(config, sort_keys=True, default=repr)
            if key not in self.history:
                self.history.add(key)
                return config


def grid_points(space: Any, n: int | None = None) -> Iterator[dict[str, Any]]:
    """NNI v2 grid search's configurations of ``space`` in order (the first ``n``)."""
    from rafiki_ray.spaces._space import as_space

    grid = _Grid(as_space(space, "space"))
    count = 0
    while n is None or count < n:
        config = grid.next()
        if config is None:
            return
        count += 1
        yield config


def is_finite_grid(space: SearchSpace) -> bool:
    """Whether the refinement ends: every numeric parameter is a quantised (or one-point)
    ``Float``; a normal or unquantised range refines without end."""
    return all(d.values is not None or (isinstance(d.param, Float)
                                        and (d.param.q is not None or d.param.low == d.param.high))
               for d in _dims(space))


class ProgressiveGridSearch(RafikiSearcher):
    """NNI v2's ``GridSearch`` tuner as a Tune searcher (see the module docstring).

    Args: as :class:`~rafiki_ray.searchers._base.RafikiSearcher`; ``seed`` has no effect
    (the order is fixed). NNI's ``optimize_mode`` is accepted as ``mode``.
    """

    def _on_space(self) -> None:
        assert self._space is not None
        self._grid = _Grid(self._space)
        self._given = 0
        self._ahead: dict[str, Any] | None = None
        self._finished = False

    def _peek(self) -> dict[str, Any] | None:
        if self._ahead is None and not self._finished:
            self._ahead = self._grid.next()
            self._finished = self._ahead is None
        return self._ahead

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._space is not None and not self._queued and self._peek() is None:
            return Searcher.FINISHED
        return super().suggest(trial_id)

    def _propose(self, trial_id: str) -> dict[str, Any]:
        config = self._peek()
        if config is None:  # pragma: no cover - suggest returned FINISHED before
            raise RuntimeError("grid exhausted")
        self._ahead = None
        self._given += 1
        return config

    def _get_extra_state(self) -> dict[str, Any]:
        return {"given": getattr(self, "_given", 0)}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        if self._space is None:
            return
        self._on_space()
        for _ in range(int(state.get("given", 0))):  # the order is fixed: replay it
            if self._grid.next() is None:
                self._finished = True
                break
            self._given += 1
