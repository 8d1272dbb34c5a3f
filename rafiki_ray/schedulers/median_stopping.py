"""``MedianStopping``: NNI's Medianstop assessor as a Tune scheduler.

Golovin et al., "Google Vizier: A Service for Black-Box Optimization", KDD 2017 (median
stopping rule), in the exact form of NNI's ``MedianstopAssessor``
(``nni/algorithms/hpo/medianstop_assessor.py``):

* a trial's *history* is the list of its reported metric values; at step ``S = len(history)``
  with ``S >= start_step`` the trial's best value so far is compared with the median, at step
  ``S``, of the running averages of the **successfully completed** trials that have at least
  ``S`` points;
* ``mode="max"`` takes the lower median ``sorted[(n - 1) // 2]`` and stops the trial if its best
  is below it; ``mode="min"`` takes ``sorted[n // 2]`` and stops it if its best is above it;
* no comparable completed trial: continue.

Tune specifics (decisions, documented):

* "successfully completed" = ``on_trial_complete`` for a trial this scheduler did not stop
  (NNI's ``trial_end(success=True)``); errored trials, trials this scheduler stopped and trials
  removed while paused/pending never enter the medians;
* steps count the results that carry a usable metric: a result with the metric missing or NaN
  is ignored (continue); ``+inf``/``-inf`` are kept (a running average that becomes NaN from
  ``inf - inf`` is left out of the medians);
* ``time_attr`` is only used to recognise results replayed after ``Tuner.restore`` (a result
  whose ``time_attr`` does not exceed the last recorded one truncates the history there);
* it never pauses, so trainables need no checkpoints.

Arguments under NNI's names go through :attr:`MedianStopping.ALIASES` (``optimize_mode``
``"maximize"``/``"minimize"``), e.g. ``MedianStopping.from_args({"optimize_mode": "minimize",
"start_step": 3}, metric="loss")``.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, ClassVar

from ray.tune.schedulers import TrialScheduler

from rafiki_ray._args import check_number
from rafiki_ray.schedulers._history import _HistoryScheduler

__all__ = ["MedianStopping"]


class MedianStopping(_HistoryScheduler):
    """Stop a trial whose best-so-far is worse than the median of completed trials' running
    averages at the same step (NNI Medianstop; see the module docstring).

    Args:
        metric, mode, time_attr, seed, persist: as :class:`RafikiScheduler`.
        start_step: judge a trial only once it has at least this many results (NNI default 0).
    """

    #: NNI ``classArgs`` name -> constructor argument (``from_args``: NNI ``classArgs``
    #: ``optimize_mode``, ``start_step``, plus keywords)
    ALIASES: ClassVar[dict[str, str | None]] = {"optimize_mode": "mode"}

    def __init__(
        self,
        *,
        metric: str | None = None,
        mode: str | None = None,
        start_step: int = 0,
        time_attr: str = "training_iteration",
        seed: int | None = None,
        persist: bool = True,
    ) -> None:
        super().__init__(metric=metric, mode=mode, time_attr=time_attr, seed=seed,
                         persist=persist)
        self._start_step = check_number("MedianStopping.start_step", start_step, integer=True,
                                        low=0)
        self._best: dict[str, float] = {}  # running trials: best signed score so far
        self._avgs: dict[str, list[float]] = {}  # completed trials: running averages (signed)
        self._by_step: list[list[float]] = []  # step S-1 -> sorted averages of completed trials

    @property
    def start_step(self) -> int:
        return self._start_step

    # ------------------------------------------------------------------ decisions
    def _truncated(self, tid: str, hist: list[float], keep: int) -> None:
        self._best[tid] = max(hist) if hist else -math.inf

    def _decide(self, tid: str, hist: list[float], score: float, t: float | None) -> str:
        best = max(self._best.get(tid, -math.inf), score)
        self._best[tid] = best
        return self._judge(len(hist), best)

    def _replayed(self, tid: str, hist: list[float], extra: Any) -> None:
        self._best[tid] = max(hist)

    def _judge(self, step: int, best: float) -> str:
        if step < self._start_step or step > len(self._by_step):
            return TrialScheduler.CONTINUE
        col = self._by_step[step - 1]
        if not col:
            return TrialScheduler.CONTINUE
        # in signed (higher-is-better) space NNI's max rule and min rule are both the lower median
        median = col[(len(col) - 1) // 2]
        return TrialScheduler.STOP if best < median else TrialScheduler.CONTINUE

    def _completed(self, tid: str, hist: list[float]) -> None:
        if tid not in self._avgs:
            self._add_completed(tid, _running_averages(hist))

    def _forget(self, tid: str) -> None:
        self._best.pop(tid, None)

    def _add_completed(self, tid: str, avgs: list[float]) -> None:
        self._avgs[tid] = avgs
        while len(self._by_step) < len(avgs):
            self._by_step.append([])
        for i, a in enumerate(avgs):
            if not math.isnan(a):
                bisect.insort(self._by_step[i], a)

    # ------------------------------------------------------------------ state
    def _known_trial_ids(self) -> set[str]:
        return super()._known_trial_ids() | set(self._avgs)

    def _get_state(self) -> dict[str, Any]:
        return {
            "start_step": self._start_step,
            **super()._get_state(),
            "completed": {k: list(v) for k, v in self._avgs.items()},
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self._start_step = int(state["start_step"])
        self._best = {k: max(v) for k, v in self._hist.items() if v}
        self._avgs, self._by_step = {}, []
        for k, v in state["completed"].items():
            self._add_completed(k, [float(x) for x in v])

    def debug_string(self) -> str:
        return (f"Using MedianStopping (metric={self._metric!r}, mode={self._mode!r}, "
                f"start_step={self._start_step}): {len(self._avgs)} completed, "
                f"{len(self._stopped)} stopped.")


def _running_averages(values: list[float]) -> list[float]:
    out, total = [], 0.0
    with_nan = False
    for i, v in enumerate(values, 1):
        if not with_nan:
            total += v
            if math.isnan(total):
                with_nan = True
        out.append(math.nan if with_nan else total / i)
    return out
