"""Concurrency slots for pausing schedulers.

Tune's ``max_concurrent_trials`` (a ``ConcurrencyLimiter``, the ``BasicVariantGenerator``
limit, or a rafiki_ray searcher, which takes the limit over from Tune's then inert
``ConcurrencyLimiter``: ``RafikiSearcher.slots``) counts a PAUSED trial as live, so a pausing
scheduler would deadlock once every slot holds a paused trial. :class:`Slots` frees a trial's
slot when it is paused and takes it back before the trial is resumed or stopped, so that the
limit means "running trials", as workers do in the ASHA paper (Li et al. 2020). The ids of
the trials whose slot it freed are part of the scheduler's state (a restore must know which
paused trials hold no slot).
"""

from __future__ import annotations

from typing import Any

from rafiki_ray import _tune_seam

__all__ = ["Slots"]


class Slots:
    """Which paused trials had their ``max_concurrent_trials`` slot freed."""

    def __init__(self) -> None:
        self.released: set[str] = set()

    def release(self, controller: Any, trial_id: str) -> None:
        """A trial is being paused: its concurrency slot goes to another trial."""
        if _tune_seam.free_slot(controller, trial_id):
            self.released.add(trial_id)

    def claim(self, controller: Any, trial_id: str, *, force: bool = False) -> bool:
        """Take a slot back before resuming (or stopping) a paused trial; False when full.

        Asks the limiter whether the trial is counted rather than trusting ``released``
        alone: after a driver crash our state file can be older than the searcher's
        snapshot (the pause happened between the two uploads), and a trial the limiter no
        longer counts would finish unheard (``ConcurrencyLimiter.on_trial_complete`` ignores
        trials it does not count, so the searcher never learns the result)."""
        if not _tune_seam.take_slot(controller, trial_id, force=force):
            return False
        self.released.discard(trial_id)
        return True

    def forget(self, trial_id: str) -> None:
        self.released.discard(trial_id)

    @staticmethod
    def free(controller: Any) -> bool:
        """Whether a paused trial may be resumed without exceeding max_concurrent_trials."""
        found = _tune_seam.concurrency_slots(controller)
        return found is None or len(found[0]) < found[1]
