"""``RoundRobin``: runs take turns at chunk boundaries (RapidFire's chunk-wise scheduling).

When there are more trials than slots, a plain Tune run keeps a trial in its slot until it
ends, so the last configurations start only when the first have finished. RapidFire instead
trains every configuration one chunk of the data at a time and rotates them, so all of them
make progress together. ``RoundRobin`` does that on Tune: after each result a trial yields
its slot (``PAUSE``; Tune keeps the checkpoint the trial reported with the result and resumes
from it) whenever another trial is waiting, and the waiting trial with the fewest chunks done
(``time_attr``; ties: who has waited longest) runs next. A trial never yields at its last
chunk (``total_attr`` in the result, when reported) nor when nothing waits.

It wraps another scheduler (``inner``: e.g. SuccessiveHalving or ASHA, which decide *whether*
a trial goes on; RoundRobin only decides *who runs now*): every hook is forwarded, the inner
decision wins unless it is ``CONTINUE``, and trials the inner scheduler wants to resume
(``resumable_trials()``, when it has one) compete with the yielded ones by chunks done.

``waiting``: optional ``fn() -> bool`` saying that trials not yet created are waiting (e.g.
``LiveControl.has_waiting``), needed when ``max_concurrent_trials`` keeps Tune from creating
them until a slot is free. ``should_stop``: optional ``fn(trial_id) -> bool``; a yielded trial
for which it holds is stopped where it waits instead of being resumed for one more chunk.

Yielded trials are runtime state: after a driver crash ``Tuner.restore`` brings them back
PENDING and they start again from their checkpoints in the order Tune chooses.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from rafiki_ray import _tune_seam
from rafiki_ray._errors import invalid_type
from rafiki_ray.schedulers._slots import Slots

__all__ = ["RoundRobin"]

logger = logging.getLogger(__name__)


class RoundRobin(FIFOScheduler):
    """Round-robin turns at every result, around an optional inner scheduler.

    Args:
        inner: the scheduler that decides continue/pause/stop (None: run every trial to its
            end, as FIFO).
        time_attr: result key counting the units done (chunks), the turn order key.
        total_attr: result key with the units a trial will do in all; a trial whose
            ``time_attr`` reached it does not yield (it is about to end).
        waiting: ``fn() -> bool``, whether trials not created yet wait for a slot.
        should_stop: ``fn(trial_id) -> bool``, whether a yielded trial is to be stopped.
    """

    def __init__(self, inner: TrialScheduler | None = None, *, time_attr: str = "chunks_done",
                 total_attr: str | None = "chunks_total",
                 waiting: Callable[[], bool] | None = None,
                 should_stop: Callable[[str], bool] | None = None) -> None:
        super().__init__()
        if inner is not None and not isinstance(inner, TrialScheduler):
            raise invalid_type("RoundRobin.inner", "must be a Tune TrialScheduler", inner)
        if not isinstance(time_attr, str) or not time_attr:
            raise invalid_type("RoundRobin.time_attr", "must be a non-empty str", time_attr)
        for name, fn in (("waiting", waiting), ("should_stop", should_stop)):
            if fn is not None and not callable(fn):
                raise invalid_type(f"RoundRobin.{name}", "must be callable or None", fn)
        self.inner = inner
        self.time_attr, self.total_attr = time_attr, total_attr
        self.waiting, self.should_stop = waiting, should_stop
        self._yielded: dict[str, int] = {}  # trial id -> turn number at which it yielded
        self._trials: dict[str, Trial] = {}
        self._turn = itertools.count()
        self._slots = Slots()
        #: ``(trial_id, chunks)`` of every yield, in order (for tests and progress displays).
        self.yields: list[tuple[str, float]] = []

    # ---- forwarding --------------------------------------------------------------------
    @property
    def metric(self) -> str | None:
        return getattr(self.inner, "metric", None) if self.inner is not None else self._metric

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if self.inner is not None:
            return self.inner.set_search_properties(metric, mode, **spec)
        return super().set_search_properties(metric, mode, **spec)

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        self._trials[trial.trial_id] = trial
        if self.inner is not None:
            self.inner.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self._drop(trial)
        if self.inner is not None:
            self.inner.on_trial_error(tune_controller, trial)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        self._drop(trial)
        if self.inner is not None:
            self.inner.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._drop(trial)
        if self.inner is not None:
            self.inner.on_trial_remove(tune_controller, trial)

    def _drop(self, trial: Trial) -> None:
        self._yielded.pop(trial.trial_id, None)
        self._trials.pop(trial.trial_id, None)
        self._slots.forget(trial.trial_id)

    def debug_string(self) -> str:
        inner = "" if self.inner is None else " around " + self.inner.debug_string()
        return f"RoundRobin ({len(self._yielded)} trials waiting for their turn){inner}"

    def save(self, checkpoint_path: str) -> None:
        if self.inner is not None:
            self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        if self.inner is not None:
            self.inner.restore(checkpoint_path)

    def __getattr__(self, name: str) -> Any:  # e.g. SuccessiveHalving.rungs()
        inner = self.__dict__.get("inner")
        if inner is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(inner, name)

    # ---- turns -------------------------------------------------------------------------
    def _chunks(self, trial: Trial) -> float:
        value = (trial.last_result or {}).get(self.time_attr, 0)
        try:
            return float(value)
        except (TypeError, ValueError):
            return 0.0

    def _inner_resumable(self) -> list[Trial]:
        fn = getattr(self.inner, "resumable_trials", None)
        return list(fn()) if fn is not None else []

    def _someone_waits(self, controller: Any, current: Trial) -> bool:
        if any(t.status == Trial.PAUSED for tid, t in self._trials.items()
               if tid in self._yielded):
            return True
        if any(t is not current and t.status == Trial.PENDING
               for t in controller.get_trials()):
            return True
        if any(t is not current for t in self._inner_resumable()):
            return True
        return bool(self.waiting is not None and self.waiting())

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        decision = TrialScheduler.CONTINUE
        if self.inner is not None:
            decision = self.inner.on_trial_result(tune_controller, trial, result)
        if decision != TrialScheduler.CONTINUE:
            return decision
        done, total = result.get(self.time_attr), result.get(self.total_attr or "")
        if done is None or (total is not None and done >= total):
            return decision
        if not result.get("should_checkpoint"):
            return decision  # without a checkpoint a pause would restart it from scratch
        if not self._someone_waits(tune_controller, trial):
            return decision
        self._yielded[trial.trial_id] = next(self._turn)
        self._slots.release(tune_controller, trial.trial_id)
        self.yields.append((trial.trial_id, float(done)))
        logger.debug("round robin: %s yields at %s=%s", trial.trial_id, self.time_attr, done)
        return TrialScheduler.PAUSE

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        mine = []
        for tid, turn in list(self._yielded.items()):
            trial = self._trials.get(tid)
            if trial is None or trial.status != Trial.PAUSED:
                continue
            if self.should_stop is not None and self.should_stop(tid):
                del self._yielded[tid]
                self._slots.claim(tune_controller, tid, force=True)
                tune_controller.stop_trial(trial)
                continue
            mine.append((self._chunks(trial), turn, trial))
        staged = any(t.status == Trial.PENDING for t in tune_controller.get_trials())
        if mine and not staged:
            best = min(mine, key=lambda m: (m[0], m[1]))
            others = [self._chunks(t) for t in self._inner_resumable()]
            if not others or best[0] <= min(others):
                trial = best[2]
                if self._slots.claim(tune_controller, trial.trial_id):
                    del self._yielded[trial.trial_id]
                    _tune_seam.upload_trial_logs(trial)  # its result.json keeps every row
                    return trial
                return None
        if self.inner is not None:
            chosen = self.inner.choose_trial_to_run(tune_controller)
        else:
            chosen = next((t for t in tune_controller.get_trials()
                           if t.status == Trial.PENDING), None)
        if chosen is not None and chosen.trial_id in self._yielded:
            if chosen.status == Trial.PAUSED and not self._slots.claim(
                    tune_controller, chosen.trial_id):
                return None
            del self._yielded[chosen.trial_id]
        return chosen
