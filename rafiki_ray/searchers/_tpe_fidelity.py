"""Per-budget observations for BOHB-style multi-fidelity TPE (Falkner et al. 2018, "BOHB:
robust and efficient hyperparameter optimization at scale", section 3.2).

Every intermediate result a trial reports (``on_trial_result``) is kept under its budget (the
value of the result's ``budget_attr``, e.g. ``training_iteration``); a later result of the same
trial at the same budget replaces the earlier one. The model is fitted on the largest budget
that holds at least ``n_min`` observations (BOHB's ``min_points_in_model``, default
``dims + 1``), so that trials stopped at the lowest rungs inform the model only until enough
trials have been trained further.

The history is plain data (``to_state`` / ``from_state``); encoded vectors are a cache rebuilt
from the configurations.
"""

from __future__ import annotations

import bisect
import copy
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from rafiki_ray.searchers._rows import Rows

__all__ = ["BudgetHistory"]


class BudgetHistory:
    """Observations per budget: ``budget -> {trial_id: loss}`` plus each trial's config."""

    def __init__(self) -> None:
        self._losses: dict[float, dict[str, float]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._enc: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._order: dict[str, int] = {}  # trial -> rank in first-seen order
        # budget -> the rows data() returns, kept up to date as records arrive (a cache)
        self._rows: dict[float, _BudgetRows] = {}

    # -- recording --------------------------------------------------------------------------
    def has_config(self, trial_id: str) -> bool:
        return trial_id in self._configs

    def record(
        self, trial_id: str, budget: float, loss: float, config: dict[str, Any] | None = None
    ) -> None:
        """Keep ``loss`` at ``budget``; a trial's first record must bring its config."""
        if trial_id not in self._configs:
            if config is None:
                raise ValueError(f"trial {trial_id!r}: first record needs its config, got None")
            self._configs[trial_id] = copy.deepcopy(config)
            self._order[trial_id] = len(self._order)
        at = self._losses.setdefault(float(budget), {})
        rows = self._rows.get(float(budget))
        if rows is not None:
            if trial_id in at:
                rows.update(self._order[trial_id], float(loss))
            else:
                rows.new.append(trial_id)
        at[trial_id] = float(loss)

    # -- queries ----------------------------------------------------------------------------
    @property
    def budgets(self) -> list[float]:
        return sorted(self._losses)

    def is_multi_fidelity(self) -> bool:
        """Whether results arrived at two or more budgets (else TPE runs as usual)."""
        return len(self._losses) >= 2

    def count(self, budget: float) -> int:
        return len(self._losses.get(float(budget), {}))

    def model_budget(self, n_min: int) -> float | None:
        """The largest budget with at least ``n_min`` observations (``None``: none has)."""
        for b in sorted(self._losses, reverse=True):
            if len(self._losses[b]) >= n_min:
                return b
        return None

    def trials_at(self, budget: float) -> set[str]:
        return set(self._losses.get(float(budget), {}))

    def seen(self) -> set[str]:
        return set(self._configs)

    def n_seen_with(self, others: Iterable[str]) -> int:
        """``len(seen() | set(others))`` without copying the seen trials."""
        return len(self._configs) + sum(1 for t in set(others) if t not in self._configs)

    def data(
        self, budget: float, encode: Callable[[dict[str, Any]], tuple[np.ndarray, np.ndarray]], d: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, active, losses)`` at ``budget`` in the order the trials were first seen,
        ``±inf`` clipped to the finite range."""
        at = self._losses.get(float(budget), {})
        rows = self._rows.get(float(budget))
        if rows is None:
            rows = self._rows[float(budget)] = _BudgetRows(d)
            rows.new = [t for t in self._configs if t in at]
        for t in sorted(rows.new, key=self._order.__getitem__):  # O(new), not O(all)
            if t not in self._enc:
                self._enc[t] = encode(self._configs[t])
            rows.insert(self._order[t], *self._enc[t], at[t])
        rows.new = []
        y = rows.y.view()[:, 0]
        finite = y[np.isfinite(y)]
        if not finite.size:
            return np.zeros((0, d)), np.zeros((0, d), dtype=bool), np.zeros(0)
        y = np.clip(y, finite.min(), finite.max())
        n = len(y)
        return rows.X.view().reshape(n, d).copy(), rows.A.view().reshape(n, d).copy(), y

    # -- state ------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "configs": copy.deepcopy(self._configs),
            "losses": [[b, dict(v)] for b, v in sorted(self._losses.items())],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> BudgetHistory:
        h = cls()
        if not state:
            return h
        h._configs = copy.deepcopy(dict(state["configs"]))
        h._order = {t: i for i, t in enumerate(h._configs)}
        for b, losses in state["losses"]:
            h._losses[float(b)] = {str(t): float(v) for t, v in losses.items()}
        return h


class _BudgetRows:
    """The observations at one budget in first-seen order: ranks, ``X``, ``A``, losses."""

    __slots__ = ("A", "X", "new", "ranks", "y")

    def __init__(self, d: int) -> None:
        self.ranks: list[int] = []
        self.X, self.A, self.y = Rows(d, float), Rows(d, bool), Rows(1, float)
        self.new: list[str] = []  # trials recorded at this budget, not inserted yet

    def insert(self, rank: int, x: np.ndarray, a: np.ndarray, loss: float) -> None:
        i = bisect.bisect_left(self.ranks, rank)
        self.ranks.insert(i, rank)
        self.X.insert(i, x)
        self.A.insert(i, a)
        self.y.insert(i, loss)

    def update(self, rank: int, loss: float) -> None:
        """A later result of an inserted trial at this budget replaces its loss."""
        i = bisect.bisect_left(self.ranks, rank)
        if i < len(self.ranks) and self.ranks[i] == rank:
            self.y.set(i, loss)


def budget_of(result: Mapping[str, Any], attr: str) -> float | None:
    """The result's budget (a finite number under ``attr``), else ``None``."""
    v = result.get(attr)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None
