"""``RafikiScheduler``: the base of every rafiki_ray scheduler (a Tune ``FIFOScheduler``).

What the base gives a subclass
------------------------------
* ``metric`` / ``mode`` / ``time_attr`` / ``seed`` validation, ``set_search_properties`` and
  ``self._score(result)``: the metric signed so that **higher is better** (``None`` for a
  missing or NaN metric; ``+inf``/``-inf`` kept). ``self._time(result)`` reads ``time_attr``.
* One private ``numpy.random.Generator`` (``self._rng``) built from ``seed``.
* Explicit plain-data state: ``get_state()`` / ``set_state()`` (the subclass adds its own dict
  through ``_get_state()`` / ``_set_state()``), ``save(path)`` / ``restore(path)``.
* **Driver-crash persistence** (:class:`~rafiki_ray.schedulers._persistence.StateFile`):
  the state is written to ``<experiment_dir>/rafiki_scheduler_state.pkl`` by
  ``self._persist()`` (throttled to one write per ``persist_interval_s`` unless
  ``force=True``; subclasses force it on pause / promote / complete), changes that must not
  wait go to a journal through ``self._journal(entry)`` and come back through
  :meth:`RafikiScheduler._replay`; the first trial ``on_trial_add`` sees restores a state of
  the same run after ``Tuner.restore``. State is keyed by ``trial.trial_id``, which is stable
  across restore. A subclass whose state is per trial can instead implement
  ``_trial_row(tid)`` / ``_set_trial_row(tid, row)`` and call ``self._persist_trial(tid)``
  after each decision: one journal line of O(1) size instead of a full write of O(trials)
  (the journal is compacted into a new snapshot as it outgrows the last one).
* ``self._check_checkpoint(trial, result)``: call it right before returning ``PAUSE``. The first
  time a function trainable that never reported a checkpoint would be paused it raises
  :class:`CheckpointRequiredError` (Ray would silently restart the trial from scratch,
  ray issue 27170).
* Concurrency slots (:class:`~rafiki_ray.schedulers._slots.Slots`): ``_release_slot`` (on
  pause) and ``_claim_slot`` (before resuming or stopping a paused trial) keep Tune's
  ``max_concurrent_trials`` meaning "running trials".
* Restored trials that were paused before the crash come back from Tune as PENDING;
  a subclass lists them in ``self._repause`` from ``on_trial_add`` and the base sets them back
  to PAUSED at the next ``choose_trial_to_run`` (Tune would otherwise start them all); trials
  the scheduler had stopped after Tune's last snapshot go into ``self._restop`` and are
  stopped there instead of being restarted; trials Tune's snapshot has finished but the
  scheduler's (older: Tune uploads the two files separately) state has live go into
  ``self._reend`` and get ``on_trial_remove`` there.
* Retries (``FailureConfig(max_failures=...)``): Tune announces a retry through
  ``on_trial_error`` and then adds the trial again, PENDING, through ``on_trial_add``; it goes
  on from its last checkpoint. A subclass that overrides ``on_trial_error`` calls
  ``if self._retry(tune_controller, trial): return`` first (the trial has not ended: keep
  its state), and one that overrides ``on_trial_add`` takes ``self._take_retry(trial)``
  before calling ``super().on_trial_add`` (the trial is not new, nor restored).

Everything that touches Tune's private state is in :mod:`rafiki_ray._tune_seam`.

Subclass hooks: override Tune's public hooks (``on_trial_add`` etc.) and call
``super().on_trial_add(...)`` first (it validates metric/mode and performs the restore), or
leave them and implement the ``_get_state`` / ``_set_state`` pair only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from rafiki_ray import _args, _tune_seam
from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import check_seed, make_rng, rng_state, set_rng_state
from rafiki_ray._state import load_state, save_state
from rafiki_ray._tune_seam import DEFAULT_METRIC
from rafiki_ray.schedulers._persistence import JOURNAL_FILE, STATE_FILE, StateFile
from rafiki_ray.schedulers._slots import Slots

if TYPE_CHECKING:
    from rafiki_ray._tune_seam import TuneController

__all__ = ["JOURNAL_FILE", "STATE_FILE", "CheckpointRequiredError", "RafikiScheduler"]

logger = logging.getLogger(__name__)

_MODES = ("min", "max")
_ROW = "~row"  # journal entries of _persist_trial (a trial id never starts with "~")


class CheckpointRequiredError(RuntimeError):
    """A pausing scheduler was about to pause a trial that never reported a checkpoint."""


class RafikiScheduler(FIFOScheduler):
    """Base scheduler: validated metric/mode, signed scores, explicit state, crash persistence.

    Args:
        metric: result key to optimise; may come later from ``set_search_properties``.
        mode: ``"min"`` or ``"max"``.
        time_attr: monotonically increasing result key measuring the resource
            (``training_iteration``, ``epoch``, ``time_total_s``, samples, ...).
        seed: seed of the private generator (``None``: OS entropy).
        persist: write ``rafiki_scheduler_state.pkl`` into the experiment directory so that
            ``Tuner.restore`` after a driver crash continues with the same state.
    """

    #: Whether the scheduler may return PAUSE (subclasses that pause set True).
    pauses: bool = False
    #: Minimum seconds between two unforced state writes.
    persist_interval_s: float = 0.5
    #: Source argument names (NNI classArgs, Polyaxon, Ray) -> keyword, applied by
    #: :meth:`from_args` and by constructors that take ``**aliases`` (:mod:`rafiki_ray._args`).
    ALIASES: ClassVar[dict[str, str | None]] = {}

    def __init__(
        self,
        *,
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        seed: int | None = None,
        persist: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if metric is not None and (not isinstance(metric, str) or not metric):
            raise invalid_type(f"{name}.metric", "must be None or a non-empty str", metric)
        if mode is not None and mode not in _MODES:
            raise invalid(f"{name}.mode", "must be None, 'min' or 'max'", mode)
        if not isinstance(time_attr, str) or not time_attr:
            raise invalid_type(f"{name}.time_attr", "must be a non-empty str", time_attr)
        if not isinstance(persist, bool):
            raise invalid_type(f"{name}.persist", "must be a bool", persist)
        self._metric: str | None = metric
        self._mode: str | None = mode
        self._time_attr = time_attr
        self._seed = check_seed(seed, f"{name}.seed")
        self._rng = make_rng(self._seed)
        self._persist_enabled = persist
        # Runtime-only (not part of the state):
        self._file = StateFile(name, interval_s=self.persist_interval_s)
        self._slots = Slots()  # paused trials whose concurrency slot we freed (in the state)
        self._checkpointed: set[str] = set()  # trial ids that reported a checkpoint
        self._repause: set[str] = set()  # restored trials to put back into PAUSED
        self._restop: set[str] = set()  # restored trials the scheduler had already stopped
        self._reend: dict[str, Trial] = {}  # restored trials Tune ended after our last write
        self._maybe_running: dict[str, Trial] = {}  # pending/running, for O(live) scans
        self._retried: set[str] = set()  # errored trials Tune is about to add again (retry)

    @classmethod
    def from_args(cls, args: Mapping[str, Any], **kwargs: Any) -> RafikiScheduler:
        """Build from a source's argument names (e.g. NNI ``classArgs``) plus keywords,
        through the class's :attr:`ALIASES` (:func:`rafiki_ray._args.resolve_aliases`)."""
        return _args.from_args(cls, args, kwargs)

    # ------------------------------------------------------------------ metric / mode
    @property
    def mode(self) -> str | None:
        return self._mode

    @property
    def time_attr(self) -> str:
        return self._time_attr

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Accept metric/mode from ``TuneConfig``; False if already set to something else."""
        if metric and self._metric and metric != self._metric:
            return False
        if mode and self._mode and mode != self._mode:
            return False
        if mode is not None and mode not in _MODES:
            raise invalid(f"{type(self).__name__}.mode", "must be None, 'min' or 'max'", mode)
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        if self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC
        return True

    def _require_metric(self) -> None:
        if not self._metric or self._mode not in _MODES:
            raise invalid(
                type(self).__name__,
                "needs a metric and a mode ('min' or 'max'): pass them to the scheduler or "
                "to tune.TuneConfig(metric=..., mode=...)",
                {"metric": self._metric, "mode": self._mode},
            )

    def _score(self, result: dict[str, Any]) -> float | None:
        """The metric signed so that higher is better; None when missing or NaN."""
        value = result.get(self._metric) if self._metric else None
        if value is None or isinstance(value, bool):
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        if math.isnan(value):
            return None
        return -value if self._mode == "min" else value

    def _time(self, result: dict[str, Any]) -> float | None:
        """The value of ``time_attr`` in a result (None when missing or not a number)."""
        value = result.get(self._time_attr)
        if value is None or isinstance(value, bool):
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return None if math.isnan(value) else value

    # ------------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        """Subclass state (plain data). Override together with :meth:`_set_state`."""
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_get_state` returned."""

    def get_state(self) -> dict[str, Any]:
        """Plain-data state: metric, mode, time_attr, RNG state and the subclass's state."""
        return self._state_with(self._get_state())

    def _persisted_sub_state(self) -> dict[str, Any]:
        """The subclass state for a state-file write, pickled at once: a subclass whose
        :meth:`_get_state` copies large structures may return them uncopied here."""
        return self._get_state()

    def _state_with(self, sub: dict[str, Any]) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "metric": self._metric,
            "mode": self._mode,
            "time_attr": self._time_attr,
            "seed": self._seed,
            "rng": rng_state(self._rng),
            "checkpointed": sorted(self._checkpointed),
            "released": sorted(self._slots.released),
            "sub": sub,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`get_state` (the decisions that follow are identical)."""
        if state.get("class") != type(self).__name__:
            raise invalid(
                f"{type(self).__name__}.set_state", "state of another class", state.get("class")
            )
        self._metric = state["metric"]
        self._mode = state["mode"]
        self._time_attr = state["time_attr"]
        self._seed = state["seed"]
        set_rng_state(self._rng, state["rng"])
        self._checkpointed = set(state.get("checkpointed", ()))
        self._slots.released = set(state.get("released", ()))
        self._set_state(state["sub"])

    def save(self, checkpoint_path: str) -> None:
        """Write :meth:`get_state` atomically to ``checkpoint_path``."""
        save_state(checkpoint_path, self.get_state(), kind=type(self).__name__)

    def restore(self, checkpoint_path: str) -> None:
        """Load a file written by :meth:`save`, or the state file a run persisted
        (:attr:`state_path`) together with the journal of the decisions made after it."""
        state = load_state(checkpoint_path, kind=type(self).__name__)
        self.set_state(state)
        StateFile(type(self).__name__, interval_s=0.0).replay_after(
            checkpoint_path, state, self._replay_entry)

    def _known_trial_ids(self) -> set[str]:
        """Trial ids the subclass state knows (used to recognise our own persisted file)."""
        return set()

    # ------------------------------------------------------------------ persistence
    @property
    def state_path(self) -> str | None:
        """``<experiment_dir>/rafiki_scheduler_state.pkl`` once a trial has been seen."""
        return self._file.path

    @property
    def _restored(self) -> bool:
        """Whether a persisted state of this run was restored (after ``Tuner.restore``)."""
        return self._file.restored

    def _attach(self, trial: Trial) -> None:
        """Learn the experiment directory from the first trial; restore a persisted state."""
        if self._file.attached or not self._persist_enabled:
            return
        self._file.attach(trial, apply_state=self.set_state, replay=self._replay_entry)

    def _load_persisted(self, directory: str, trial_id: str) -> bool:
        """Restore from the state file and journal in ``directory`` if they are of this run."""
        return self._file.load(directory, trial_id, apply_state=self.set_state,
                               replay=self._replay_entry)

    def _replay(self, entry: list[Any]) -> None:
        """Re-apply one entry written by :meth:`_journal` (override together with it)."""

    def _replay_entry(self, entry: list[Any]) -> None:
        if entry and entry[0] == _ROW:  # written by _persist_trial
            _, tid, row, (checkpointed, released), *rng = entry
            self._set_trial_row(tid, row)
            for flag, ids in ((checkpointed, self._checkpointed),
                              (released, self._slots.released)):
                if flag:
                    ids.add(tid)
                else:
                    ids.discard(tid)
            if rng:
                set_rng_state(self._rng, rng[0])
            return
        self._replay(entry)

    def _trial_row(self, tid: str) -> Any:
        """Everything the subclass state holds about ``tid``, as JSON values (with
        :meth:`_set_trial_row`, for :meth:`_persist_trial`)."""
        raise NotImplementedError

    def _set_trial_row(self, tid: str, row: Any) -> None:
        """Make the subclass state hold ``row`` (from :meth:`_trial_row`) for ``tid``."""
        raise NotImplementedError

    def _persist_trial(self, tid: str, *, rng: bool = False) -> None:
        """Journal the state of one trial after a decision about it: its row, the base's
        flags for it (checkpointed, slot released) and, with ``rng``, the generator's state.
        A replayed row replaces the trial's state, so replaying is idempotent."""
        if not self._file.path:
            return
        entry = [_ROW, tid, self._trial_row(tid),
                 [int(tid in self._checkpointed), int(tid in self._slots.released)]]
        if rng:
            entry.append(rng_state(self._rng))
        self._journal(entry)

    def _full_state(self) -> dict[str, Any]:
        state = self._state_with(self._persisted_sub_state())
        state["trial_ids"] = sorted(self._known_trial_ids())
        return state

    def _journal(self, entry: list[Any]) -> None:
        """Record a change at once and cheaply: one journal line (a new snapshot once the
        journal outgrows the last one).

        ``entry`` is a list of JSON values; a restore hands it back to :meth:`_replay`.
        """
        self._file.interval_s = self.persist_interval_s
        self._file.journal(entry, self._full_state)

    def _persist(self, force: bool = False) -> bool:
        """Write the state to the experiment directory (throttled unless ``force``); whether
        it was written (else it is marked dirty, for the next write)."""
        self._file.interval_s = self.persist_interval_s
        return self._file.write(self._full_state, force=force)

    # ------------------------------------------------------------------ checkpoints
    def _note_checkpoint(self, trial: Trial, result: dict[str, Any]) -> None:
        if result.get("should_checkpoint"):
            self._checkpointed.add(trial.trial_id)

    def _check_checkpoint(self, trial: Trial, result: dict[str, Any] | None = None) -> None:
        """Raise if ``trial`` is about to be paused without any checkpoint to resume from."""
        if trial.trial_id in self._checkpointed:
            return
        if result is not None and result.get("should_checkpoint"):
            self._checkpointed.add(trial.trial_id)
            return
        if getattr(trial, "latest_checkpoint_result", None) is not None:
            self._checkpointed.add(trial.trial_id)
            return
        if _tune_seam.is_function_trainable(trial) is False:
            return  # class trainables save_checkpoint() when paused
        raise CheckpointRequiredError(
            f"{type(self).__name__}: trial {trial.trial_id} would be paused but has never "
            f"reported a checkpoint, so Ray would restart it from scratch (ray issue 27170). "
            f"Report one with tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d)) "
            f"and resume from tune.get_checkpoint(), or stop instead of pausing: "
            f"ASHA(promotion=\"stop\") behaves as Ray's ASHAScheduler and needs no checkpoint."
        )

    # ------------------------------------------------------------------ concurrency slots
    @property
    def _released(self) -> set[str]:
        return self._slots.released

    def _release_slot(self, controller: Any, trial: Trial) -> None:
        """A trial is being paused: its concurrency slot goes to another trial."""
        self._slots.release(controller, trial.trial_id)

    def _claim_slot(self, controller: Any, trial: Trial, *, force: bool = False) -> bool:
        """Take a slot back before resuming (or stopping) a paused trial; False when full."""
        return self._slots.claim(controller, trial.trial_id, force=force)

    def _slots_free(self, controller: Any) -> bool:
        """Whether a paused trial may be resumed without exceeding max_concurrent_trials."""
        return self._slots.free(controller)

    def _hand_over(self, controller: Any, trial: Trial) -> Trial:
        """Return the PAUSED ``trial`` for Tune to resume (see
        :func:`rafiki_ray._tune_seam.unmark_staged`: a stale "staged" mark is dropped first;
        :func:`rafiki_ray._tune_seam.upload_trial_logs`: its result.json keeps every row)."""
        _tune_seam.upload_trial_logs(trial)
        if _tune_seam.unmark_staged(controller, trial):
            logger.debug("%s: trial %s was marked staged without an actor; unmarked",
                         type(self).__name__, trial.trial_id)
        return trial

    def _stop_paused(self, controller: Any, trial: Trial) -> None:
        """Stop a PAUSED/PENDING trial through Tune (the searcher hears of its completion)."""
        self._claim_slot(controller, trial, force=True)
        controller.stop_trial(trial)

    def _apply_repause(self, controller: Any) -> None:
        """Put restored trials that were paused before the crash back into PAUSED, stop those
        stopped before it, and end those listed in ``self._reend`` (via ``on_trial_remove``).

        Also writes a state whose last write was throttled (called at every
        ``choose_trial_to_run``, i.e. at every step of Tune's loop).
        """
        if self._file.dirty:
            self._persist()
        if not self._repause and not self._restop and not self._reend:
            return
        for trial in list(controller.get_trials()):
            if trial.status != Trial.PENDING:
                continue
            if trial.trial_id in self._restop:  # stopped before the crash, after the snapshot
                controller.stop_trial(trial)
            elif trial.trial_id in self._repause:
                _tune_seam.repause(controller, trial)
        self._repause.clear()
        self._restop.clear()
        # finished in Tune's snapshot, live in our older state: they end now, as if Tune had
        # just reported it (rung schedulers: the rung stops waiting for them)
        ended, self._reend = list(self._reend.values()), {}
        for trial in ended:
            self.on_trial_remove(controller, trial)

    # ------------------------------------------------------------------ retries
    def _retry(self, controller: Any, trial: Trial) -> bool:
        """Call first in ``on_trial_error``: True when Tune is about to retry the trial from
        its last checkpoint (:func:`rafiki_ray._tune_seam.retrying`), so that it has not
        ended. The trial runs again: it takes back a concurrency slot that a pause freed."""
        if not _tune_seam.retrying(trial):
            return False
        tid = trial.trial_id
        self._retried.add(tid)
        self._slots.claim(controller, tid, force=True)
        logger.info("%s: trial %s failed and is retried from its last checkpoint",
                    type(self).__name__, tid)
        return True

    def _take_retry(self, trial: Trial) -> bool:
        """In ``on_trial_add``: whether this is a retried trial coming back (once)."""
        if trial.trial_id in self._retried:
            self._retried.discard(trial.trial_id)
            return True
        return False

    # ------------------------------------------------------------------ live-trial tracking
    def _track(self, trial: Trial, decision: str | None = None) -> str | None:
        """Note that ``trial`` runs (or may start) unless ``decision`` is PAUSE or STOP.

        Pausing schedulers call it with every decision and when they hand a trial to Tune,
        so that :meth:`_first_pending` and :meth:`_anything_running` scan only the trials
        that may be pending or running instead of the whole experiment.
        """
        if decision in (TrialScheduler.PAUSE, TrialScheduler.STOP):
            self._maybe_running.pop(trial.trial_id, None)
        else:
            self._maybe_running[trial.trial_id] = trial
        return decision

    def _untrack(self, trial: Trial) -> None:
        self._maybe_running.pop(trial.trial_id, None)

    def _first_pending(self) -> Trial | None:
        """The first tracked PENDING trial (FIFO), dropping finished ones on the way."""
        for tid, trial in list(self._maybe_running.items()):
            if trial.status == Trial.PENDING:
                return trial
            if trial.status in (Trial.TERMINATED, Trial.ERROR):
                del self._maybe_running[tid]
        return None

    def _anything_running(self) -> bool:
        return any(t.status == Trial.RUNNING for t in self._maybe_running.values())

    # ------------------------------------------------------------------ Tune hooks
    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        self._require_metric()
        self._retried.discard(trial.trial_id)
        self._attach(trial)
        if trial.status not in (Trial.TERMINATED, Trial.ERROR):
            self._maybe_running[trial.trial_id] = trial

    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        self._note_checkpoint(trial, result)
        return TrialScheduler.CONTINUE

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        self._retry(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        self._apply_repause(tune_controller)
        return super().choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        return f"Using {type(self).__name__} (metric={self._metric!r}, mode={self._mode!r})."
