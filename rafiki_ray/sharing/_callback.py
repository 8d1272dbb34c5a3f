"""``RetireEndedTrials``: a Tune callback that retires each ended trial's sets in a ParamStore.

A :class:`~rafiki_ray.sharing.ParamStore` protects the most recent set of every trial, so
in a long experiment (thousands of trials) it would hold one set per trial ever run. Passed
to ``tune.RunConfig(callbacks=[RetireEndedTrials(store)])`` it calls
:meth:`ParamStore.retire_trial` when Tune completes a trial or gives up on it (a trial that
Tune retries has not ended): the store then holds the sets of the live trials plus the
top-``keep_top_k`` and the global slots, however many trials ran.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune import Callback

from rafiki_ray._errors import invalid_type

__all__ = ["RetireEndedTrials"]

logger = logging.getLogger(__name__)


class RetireEndedTrials(Callback):
    """Retire the ParamStore sets of every trial Tune ends (completed, stopped or errored).

    Args:
        store: the :class:`~rafiki_ray.sharing.ParamStore` the trials publish to.
    """

    def __init__(self, store: Any) -> None:
        from rafiki_ray.sharing.param_store import ParamStore

        if not isinstance(store, ParamStore):
            raise invalid_type("RetireEndedTrials.store", "must be a ParamStore", store)
        self._store = store
        self.retired = 0  # trials retired so far
        self.released = 0  # sets released so far

    def _retire(self, trial: Any) -> None:
        try:
            self.released += self._store.retire_trial(trial.trial_id)
            self.retired += 1
        except Exception:  # the store gone must not fail the experiment
            logger.warning("RetireEndedTrials: could not retire trial %s", trial.trial_id,
                           exc_info=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._retire(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._retire(trial)
