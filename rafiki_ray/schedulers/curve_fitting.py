"""``CurveFitting``: NNI's Curvefitting assessor (learning-curve extrapolation) as a scheduler.

Domhan, Springenberg & Hutter, "Speeding up Automatic Hyperparameter Optimization of Deep
Neural Networks by Extrapolation of Learning Curves", IJCAI 2015, as reduced by NNI's
``CurvefittingAssessor`` (``nni/algorithms/hpo/curvefitting_assessor``): once some trial has
completed, a running trial with at least ``start_step`` results is re-judged every ``gap`` new
results: an ensemble of 12 parametric curves (fitted by least squares, filtered, weights
sampled by a short Metropolis chain; see :mod:`rafiki_ray.schedulers._curves`) predicts its
metric at ``epoch_num``, and the trial is stopped iff the prediction is at most
``threshold x`` the best final metric of the completed trials. Fewer than 4 agreeing curves:
no judgement (continue).

NNI quirks fixed (decisions, documented):

* NNI keeps the fitted curve parameters in module globals shared by every trial (a failed fit
  reuses another trial's parameters): here fits are pure functions of one trial's history.
* NNI's "best final" is the last value of the most recently *assessed* history when a trial
  ends, not the completed trial's own result: here it is the best final value (last usable
  result) over the trials that completed successfully (not stopped by this scheduler, not
  errored).
* NNI maximises only. ``mode="min"`` works through the signed score (higher is better: the
  negated metric is fitted) and a sign-safe bar: stop iff ``prediction <= best - (1 -
  threshold) * |best|`` in signed space. For a positive metric under ``mode="max"`` this is
  exactly NNI's ``prediction <= threshold * best``; for a positive loss under ``mode="min"``
  it stops a trial whose predicted loss is at least ``(2 - threshold) x`` the best loss.
* ``epoch_num`` is in units of ``time_attr``; fits use ``x = 1..n`` over the usable results
  (as NNI) and predict at ``x = epoch_num * n / time_attr_now`` (``= epoch_num`` for
  ``training_iteration``). Results with a missing, NaN or infinite metric are ignored.

Cost: a judgement fits 12 families in closed form on fixed grids (instead of 12 ``curve_fit``
runs) and runs the chains only when the decision depends on them (the prediction is a convex
combination of the kept curves, so when all of them lie on one side of the bar the chains
cannot change the outcome); every other decision is a few dict look-ups.
It never pauses, so trainables need no checkpoints.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ray.tune.schedulers import TrialScheduler

from rafiki_ray._args import POSITIVE, check_number
from rafiki_ray.schedulers._curves import predict
from rafiki_ray.schedulers._history import _HistoryScheduler

__all__ = ["CurveFitting"]


class CurveFitting(_HistoryScheduler):
    """Stop trials whose extrapolated learning curve will not reach ``threshold`` x the best.

    Args:
        epoch_num: where the final metric is predicted, in ``time_attr`` units (required;
            typically the number of epochs a trial runs).
        start_step: judge a trial only once it has this many results (NNI default 6).
        threshold: fraction of the best completed final metric a trial must be predicted to
            reach (NNI default 0.95).
        gap: re-judge a trial only every ``gap`` new results (NNI default 1).
        metric, mode, time_attr, seed, persist: as :class:`RafikiScheduler`; ``seed`` seeds the
            Metropolis chains.
    """

    #: NNI ``classArgs`` names -> constructor arguments (Curvefitting's own names are ours;
    #: ``from_args`` takes ``epoch_num``, ``start_step``, ``threshold``, ``gap``)
    ALIASES: ClassVar[dict[str, str | None]] = {"optimize_mode": "mode"}

    def __init__(
        self,
        *,
        epoch_num: int,
        metric: str | None = None,
        mode: str | None = None,
        start_step: int = 6,
        threshold: float = 0.95,
        gap: int = 1,
        time_attr: str = "training_iteration",
        seed: int | None = None,
        persist: bool = True,
    ) -> None:
        super().__init__(metric=metric, mode=mode, time_attr=time_attr, seed=seed,
                         persist=persist)
        self._epoch_num = float(check_number("CurveFitting.epoch_num", epoch_num, **POSITIVE))
        self._start_step = check_number("CurveFitting.start_step", start_step, integer=True, low=0)
        self._threshold = float(check_number("CurveFitting.threshold", threshold, low=0))
        self._gap = check_number("CurveFitting.gap", gap, integer=True, low=1)
        self._judged: dict[str, int] = {}  # trial -> history length at its last judgement
        self._finals: dict[str, float] = {}  # successfully completed trial -> final score
        self._best_final = -math.inf
        self.n_judgements = 0  # fits made (runtime statistic, not state)

    # ------------------------------------------------------------------ decisions
    def _usable(self, score: float) -> bool:
        return math.isfinite(score)

    def _truncated(self, tid: str, hist: list[float], keep: int) -> None:
        if self._judged.get(tid, 0) > keep:
            self._judged[tid] = keep

    def _decide(self, tid: str, hist: list[float], score: float, t: float | None) -> str:
        return self._judge(tid, hist, t)

    def _journal_extra(self, tid: str) -> Any:
        return self._judged.get(tid)

    def _replayed(self, tid: str, hist: list[float], extra: Any) -> None:
        # the Metropolis RNG is not journaled: after a restore it continues from the last
        # snapshot (the restored run's judgements are not replicas of the lost run's anyway)
        if extra is not None:
            self._judged[tid] = int(extra)

    def _judge(self, tid: str, hist: list[float], t: float | None) -> str:
        n = len(hist)
        if not self._finals or n < self._start_step:
            return TrialScheduler.CONTINUE
        last = self._judged.get(tid)
        if last is not None and n - last < self._gap:
            return TrialScheduler.CONTINUE
        self._judged[tid] = n
        self.n_judgements += 1
        best = self._best_final
        bar = best - (1.0 - self._threshold) * abs(best)
        pred = predict(hist, self._target(n, t), self._rng, bar=bar)
        if pred.value is None:
            return TrialScheduler.CONTINUE
        return TrialScheduler.STOP if pred.value <= bar else TrialScheduler.CONTINUE

    def _target(self, n: int, t: float | None) -> float:
        """``epoch_num`` as a position on the ``x = 1..n`` axis of the usable results."""
        if t is None or t <= 0:
            return self._epoch_num
        return max(1.0, round(self._epoch_num * n / t, 9))

    def _completed(self, tid: str, hist: list[float]) -> None:
        self._finals[tid] = hist[-1]
        self._best_final = max(self._best_final, hist[-1])

    def _forget(self, tid: str) -> None:
        self._judged.pop(tid, None)

    @property
    def best_final(self) -> float | None:
        """Best final metric (in the metric's own sign) of successfully completed trials."""
        if not self._finals:
            return None
        return -self._best_final if self._mode == "min" else self._best_final

    # ------------------------------------------------------------------ state
    def _known_trial_ids(self) -> set[str]:
        return super()._known_trial_ids() | set(self._finals)

    def _get_state(self) -> dict[str, Any]:
        return {
            "epoch_num": self._epoch_num,
            "start_step": self._start_step,
            "threshold": self._threshold,
            "gap": self._gap,
            **super()._get_state(),
            "judged": dict(self._judged),
            "finals": dict(self._finals),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self._epoch_num = float(state["epoch_num"])
        self._start_step = int(state["start_step"])
        self._threshold = float(state["threshold"])
        self._gap = int(state["gap"])
        self._judged = {k: int(v) for k, v in state["judged"].items()}
        self._finals = {k: float(v) for k, v in state["finals"].items()}
        self._best_final = max(self._finals.values(), default=-math.inf)

    def debug_string(self) -> str:
        return (f"Using CurveFitting (metric={self._metric!r}, mode={self._mode!r}, "
                f"epoch_num={self._epoch_num:g}, threshold={self._threshold}): "
                f"{len(self._finals)} completed, {len(self._stopped)} stopped.")
