"""Pieces shared by the rung-based schedulers (``ASHA``, ``SuccessiveHalving``, ``Hyperband``).

* :func:`rung_milestones`, the geometric rung ladder;
* :class:`RungScheduler`, the Tune hooks common to schedulers that place each new trial in a
  bracket (``self._bracket_of``) and decide in ``_decide`` / clean up in ``_forget``.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from ray.tune.experiment import Trial

from rafiki_ray.schedulers._base import RafikiScheduler

if TYPE_CHECKING:
    from rafiki_ray._tune_seam import TuneController

logger = logging.getLogger(__name__)


def rung_milestones(min_resource: float, max_resource: float, eta: float) -> list[float]:
    """``[r, r*eta, r*eta**2, ..., max_resource]`` (exact for integer inputs)."""
    out: list[float] = []
    m = min_resource
    while m < max_resource and not math.isclose(m, max_resource, rel_tol=1e-9):
        out.append(m)
        m = m * eta
    out.append(max_resource)
    return out


class RungScheduler(RafikiScheduler):
    """Tune hooks shared by the rung-based schedulers.

    Subclasses keep ``_bracket_of`` (trial id -> bracket) and ``_trials`` (runtime only) and
    define :meth:`_place`, :meth:`_decide`, :meth:`_forget`, :meth:`_was_stopped` and
    :meth:`_was_waiting`.
    """

    _bracket_of: dict[str, int]
    _trials: dict[str, Trial]

    # ------------------------------------------------------------ to override
    def _place(self, trial: Trial) -> None:
        """Put a new trial into a bracket."""
        raise NotImplementedError

    def _decide(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        raise NotImplementedError

    def _forget(self, controller: Any, trial: Trial) -> None:
        """The trial ended (completed, errored or removed)."""
        raise NotImplementedError

    def _was_stopped(self, tid: str) -> bool:
        """The restored state had already stopped ``tid``."""
        raise NotImplementedError

    def _was_waiting(self, tid: str) -> bool:
        """The restored state had ``tid`` paused (waiting at a rung or for a resume)."""
        raise NotImplementedError

    # ------------------------------------------------------------ shared
    def _known_trial_ids(self) -> set[str]:
        return set(self._bracket_of)

    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        retry = self._take_retry(trial)
        super().on_trial_add(tune_controller, trial)
        tid = trial.trial_id
        self._trials[tid] = trial
        if retry:  # Tune retries it from its checkpoint: it keeps its bracket and rung
            return
        if tid in self._bracket_of:  # seen before a driver restore
            if trial.status == Trial.PENDING:
                if self._was_stopped(tid):
                    self._restop.add(tid)
                elif self._was_waiting(tid):
                    self._repause.add(tid)
            elif trial.status in (Trial.TERMINATED, Trial.ERROR) and not self._was_stopped(tid):
                # Tune's snapshot is newer than our state file: Tune uploads the two
                # separately, so a driver crash can keep its experiment_state-*.json of after
                # a halving and our file of before it. The trial ended after our last write;
                # it ends here too (at the first choose_trial_to_run, once every trial is
                # back), else its rung would wait for it and the trials paused there would be
                # stopped as the run goes dry (the crash-restore test's rare failure)
                logger.debug("restored trial %s is %s in Tune's snapshot, live in ours: ended",
                             tid, trial.status)
                self._reend[tid] = trial
            return
        if trial.status in (Trial.TERMINATED, Trial.ERROR):
            return
        self._place(trial)

    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        super().on_trial_result(tune_controller, trial, result)
        return self._track(trial, self._decide(tune_controller, trial, result))

    def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        self._forget(tune_controller, trial)

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        if self._retry(tune_controller, trial):
            return
        self._forget(tune_controller, trial)

    def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        self._forget(tune_controller, trial)
