"""Rafiki's train-job budget (``rafiki/constants.py`` ``BudgetOption``) on Tune.

* ``TIME_HOURS`` (default 0.1): no trial is created once the experiment has run that long
  (:class:`AdvisorSearch <rafiki_ray.models.advisors.AdvisorSearch>` answers ``FINISHED``);
  running trials get a grace period (:class:`BudgetStopper`), then Tune stops them at their
  next report (or when the experiment ends), keeping what they reported: a model that calls
  :meth:`BaseModel.checkpoint <rafiki_ray.models.BaseModel.checkpoint>` between epochs keeps
  its last checkpoint's score and parameters (``partial=True`` in the result table); one
  that reports only at the end of ``train`` keeps nothing when stopped before it. Time is counted while a driver runs: :class:`BudgetClock` is a Tune
  ``Callback`` whose state (the elapsed seconds) Tune saves in every experiment snapshot and
  hands back on ``Tuner.restore``, so after a driver crash the budget continues where the last
  snapshot left it (the seconds between that snapshot and the crash, and the downtime, are not
  counted).
* ``MODEL_TRIAL_COUNT`` (default -1, unlimited): Tune's ``num_samples``, whose counter Tune
  keeps in its searcher snapshot, so it is exact across a restore.
* ``GPU_COUNT`` (default 0): GPUs for the whole job, split evenly over concurrent trials
  (fractional GPUs when there are more trials than GPUs).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray.tune import Callback, Stopper

from rafiki_ray._errors import invalid, invalid_type

__all__ = ["Budget", "BudgetClock", "BudgetStopper", "parse_budget"]

BUDGET_KEYS = ("TIME_HOURS", "MODEL_TRIAL_COUNT", "GPU_COUNT")


@dataclass(frozen=True)
class Budget:
    """A validated budget: hours, trial count (``None`` = unlimited) and GPUs."""

    time_hours: float = 0.1
    trial_count: int | None = None
    gpu_count: float = 0.0

    @property
    def time_s(self) -> float:
        return self.time_hours * 3600.0

    def to_dict(self) -> dict[str, Any]:
        return {"TIME_HOURS": self.time_hours,
                "MODEL_TRIAL_COUNT": -1 if self.trial_count is None else self.trial_count,
                "GPU_COUNT": self.gpu_count}


def parse_budget(budget: Any, path: str = "budget") -> Budget:
    """Validate ``{"TIME_HOURS": float > 0, "MODEL_TRIAL_COUNT": int >= 1 or -1,
    "GPU_COUNT": number >= 0}`` (any key may be left out; ``None`` is ``{}``)."""
    if budget is None:
        return Budget()
    if isinstance(budget, Budget):
        return budget
    if not isinstance(budget, Mapping):
        raise invalid_type(path, "must be a dict with TIME_HOURS, MODEL_TRIAL_COUNT, GPU_COUNT",
                           budget)
    unknown = [k for k in budget if k not in BUDGET_KEYS]
    if unknown:
        raise invalid(path, f"has unknown keys (known: {list(BUDGET_KEYS)})", unknown)
    hours = budget.get("TIME_HOURS", 0.1)
    if isinstance(hours, bool) or not isinstance(hours, numbers.Real):
        raise invalid_type(f"{path}.TIME_HOURS", "must be a number", hours)
    if not (math.isfinite(hours) and hours > 0):
        raise invalid(f"{path}.TIME_HOURS", "must be finite and > 0", hours)
    count = budget.get("MODEL_TRIAL_COUNT", -1)
    if isinstance(count, bool) or not isinstance(count, numbers.Integral):
        raise invalid_type(f"{path}.MODEL_TRIAL_COUNT", "must be an int", count)
    if count == 0 or count < -1:
        raise invalid(f"{path}.MODEL_TRIAL_COUNT", "must be >= 1, or -1 for no limit", count)
    gpus = budget.get("GPU_COUNT", 0)
    if isinstance(gpus, bool) or not isinstance(gpus, numbers.Real):
        raise invalid_type(f"{path}.GPU_COUNT", "must be a number", gpus)
    if not (math.isfinite(gpus) and gpus >= 0):
        raise invalid(f"{path}.GPU_COUNT", "must be finite and >= 0", gpus)
    return Budget(float(hours), None if count == -1 else int(count), float(gpus))


class BudgetClock(Callback):
    """Seconds the experiment has run, across driver restarts (a Tune ``Callback`` whose
    ``get_state`` / ``set_state`` Tune saves and restores with the experiment)."""

    def __init__(self, budget_s: float | None, grace_s: float = 0.0) -> None:
        self.budget_s = budget_s
        self.grace_s = float(grace_s)
        self._before = 0.0
        self._t0: float | None = None
        self._restored_from: float | None = None  # elapsed seconds set_state started from

    def start(self) -> None:
        if self._t0 is None:
            self._t0 = time.monotonic()

    def elapsed(self) -> float:
        """Seconds counted so far (the clock starts on first use)."""
        if self._t0 is None:
            self._t0 = time.monotonic()
        return self._before + time.monotonic() - self._t0

    def remaining(self) -> float | None:
        return None if self.budget_s is None else max(0.0, self.budget_s - self.elapsed())

    def fraction_used(self) -> float:
        return 0.0 if not self.budget_s else min(1.0, self.elapsed() / self.budget_s)

    def time_up(self) -> bool:
        return self.budget_s is not None and self.elapsed() >= self.budget_s

    def grace_over(self) -> bool:
        return self.budget_s is not None and self.elapsed() >= self.budget_s + self.grace_s

    # Tune callback hooks ------------------------------------------------------------
    def setup(self, **info: Any) -> None:
        self.start()

    def get_state(self) -> dict[str, Any]:
        """``elapsed_s``, the budget and grace, and ``restored_from_s``: the elapsed seconds
        this clock was restored with (``None`` in a driver session that did not restore)."""
        return {"elapsed_s": self.elapsed(), "budget_s": self.budget_s, "grace_s": self.grace_s,
                "restored_from_s": self._restored_from}

    def set_state(self, state: dict[str, Any]) -> None:
        self._before = float(state["elapsed_s"])
        self._restored_from = self._before
        self._t0 = None

    def __getstate__(self) -> dict[str, Any]:
        return {"budget_s": self.budget_s, "grace_s": self.grace_s,
                "_before": self.elapsed() if self._t0 is not None else self._before, "_t0": None,
                "_restored_from": self._restored_from}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_restored_from": None, **state})


class BudgetStopper(Stopper):
    """Stops every running trial once the clock has passed the budget plus the grace."""

    def __init__(self, clock: BudgetClock) -> None:
        self.clock = clock

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self.clock.grace_over()

    def stop_all(self) -> bool:
        return self.clock.grace_over()
