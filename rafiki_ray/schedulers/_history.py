"""``_HistoryScheduler``: per-trial metric histories for the NNI-assessor schedulers.

Shared by :class:`~rafiki_ray.schedulers.median_stopping.MedianStopping` and
:class:`~rafiki_ray.schedulers.curve_fitting.CurveFitting`: both record each running trial's
signed scores (and ``time_attr`` values, to recognise results replayed after
``Tuner.restore``), judge it after every usable result, and learn only from the trials that
completed successfully (not stopped by the scheduler, not errored, not removed).

Subclass hooks: :meth:`_usable` (which scores are recorded), :meth:`_truncated` (a replay cut the
history), :meth:`_decide` (the decision after a new score), :meth:`_completed` (a trial
completed successfully), :meth:`_forget` (drop per-trial extras), :meth:`_journal_extra` /
:meth:`_replayed` (per-trial extras of a result that are journaled and re-applied after a
restore: every result, stop and end is one journal line at once, see :mod:`._persistence`;
an end is replayed through :meth:`_completed`, so that hook must depend only on the
history). Subclasses extend ``_get_state`` / ``_set_state`` / ``_known_trial_ids`` through
``super()``; the persisted keys ``running``, ``times``, ``stopped`` and ``ended`` are written
here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from rafiki_ray.schedulers._base import RafikiScheduler

if TYPE_CHECKING:
    from rafiki_ray._tune_seam import TuneController

__all__ = ["_HistoryScheduler"]

_END = "~end"  # journal line of a trial's end (a trial id never starts with "~")


class _HistoryScheduler(RafikiScheduler):
    """A never-pausing scheduler that judges each trial on its own history of signed scores.

    Keyword arguments go to :class:`RafikiScheduler` (subclasses spell them out).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hist: dict[str, list[float]] = {}  # running trials: usable signed scores
        self._times: dict[str, list[float | None]] = {}  # their time_attr values
        self._stopped: set[str] = set()  # trials this scheduler stopped
        self._ended: set[str] = set()  # every trial that ended (any way)

    # ------------------------------------------------------------------ hooks
    def _usable(self, score: float) -> bool:
        """Whether a (non-NaN) signed score is recorded (default: all, ``inf`` included)."""
        return True

    def _truncated(self, tid: str, hist: list[float], keep: int) -> None:
        """A replayed result cut the history of ``tid`` back to ``keep`` entries."""

    def _decide(self, tid: str, hist: list[float], score: float, t: float | None) -> str:
        """The decision after ``score`` (at ``time_attr`` ``t``) was appended to ``hist``."""
        return TrialScheduler.CONTINUE

    def _completed(self, tid: str, hist: list[float]) -> None:
        """``tid`` completed successfully (not stopped by us) with a non-empty ``hist``."""

    def _forget(self, tid: str) -> None:
        """Drop the subclass's per-trial bookkeeping of a trial that ended."""

    # ------------------------------------------------------------------ Tune hooks
    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        super().on_trial_result(tune_controller, trial, result)
        score = self._score(result)
        if score is None or not self._usable(score):
            return TrialScheduler.CONTINUE
        tid = trial.trial_id
        t = self._time(result)
        hist = self._record(tid, score, t)
        decision = self._decide(tid, hist, score, t)
        stop = decision == TrialScheduler.STOP
        if stop:
            self._stopped.add(tid)
        # on disk at once, one journal line (Tune's snapshot may include this result, see
        # _base); the last field says whether it stopped the trial
        self._journal([tid, score, t, self._journal_extra(tid), int(stop)])
        return decision

    def _record(self, tid: str, score: float, t: float | None) -> list[float]:
        """Append ``score`` at ``t`` to the history of ``tid`` (a replayed ``t`` cuts it)."""
        hist = self._hist.setdefault(tid, [])
        times = self._times.setdefault(tid, [])
        if t is not None and times and times[-1] is not None and t <= times[-1]:
            keep = sum(1 for x in times if x is None or x < t)  # replay after a restore
            del hist[keep:], times[keep:]
            self._truncated(tid, hist, keep)
        hist.append(score)
        times.append(t)
        return hist

    def _journal_extra(self, tid: str) -> Any:
        """JSON value journaled with a result and handed back to :meth:`_replayed`."""
        return None

    def _replayed(self, tid: str, hist: list[float], extra: Any) -> None:
        """A journaled result was re-applied after a restore (``hist`` already holds it)."""

    def _replay(self, entry: list[Any]) -> None:
        if entry[0] == _END:
            _, tid, completed = entry
            self._end(tid, completed=bool(completed))
            return
        tid, score, t, extra, *stop = entry  # format 1 lines have no stop flag
        if tid in self._ended:  # pragma: no cover - the end line follows every result line
            return
        self._replayed(tid, self._record(tid, float(score), t), extra)
        if stop and stop[0]:
            self._stopped.add(tid)

    def _end(self, tid: str, *, completed: bool) -> None:
        """``tid`` ended: it completed (learned from unless we stopped it) or was dropped."""
        hist = self._hist.pop(tid, None)
        self._times.pop(tid, None)
        self._forget(tid)
        self._ended.add(tid)
        if completed and hist and tid not in self._stopped:
            self._completed(tid, hist)

    def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        self._end(trial.trial_id, completed=True)
        self._journal([_END, trial.trial_id, 1])  # replayed through _end: O(1), not a write

    def _drop(self, trial: Trial) -> None:
        self._end(trial.trial_id, completed=False)
        self._journal([_END, trial.trial_id, 0])

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        if self._retry(tune_controller, trial):  # its history goes on (replays are cut)
            return
        self._drop(trial)

    def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        self._drop(trial)

    # ------------------------------------------------------------------ state
    def _known_trial_ids(self) -> set[str]:
        return set(self._hist) | self._ended

    def _get_state(self) -> dict[str, Any]:
        return {
            "running": {k: list(v) for k, v in self._hist.items()},
            "times": {k: list(v) for k, v in self._times.items()},
            "stopped": sorted(self._stopped),
            "ended": sorted(self._ended),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._hist = {k: [float(x) for x in v] for k, v in state["running"].items()}
        self._times = {k: list(v) for k, v in state["times"].items()}
        self._stopped = set(state["stopped"])
        self._ended = set(state["ended"])
