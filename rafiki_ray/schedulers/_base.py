"""``RafikiScheduler``: the base of every rafiki_ray scheduler (a Tune ``FIFOScheduler``).

What the base gives a subclass
------------------------------
* ``metric`` / ``mode`` / ``time_attr`` / ``seed`` validation, ``set_search_properties`` and
  ``self._score(result)``: the metric signed so that **higher is better** (``None`` for a
  missing or NaN metric; ``+inf``/``-inf`` kept). ``self._time(result)`` reads ``time_attr``.
* One private ``numpy.random.Generator`` (``self._rng``) built from ``seed``.
* Explicit plain-data state: ``get_state()`` / ``set_state()`` (the subclass adds its own dict
  through ``_get_state()`` / ``_set_state()``), ``save(path)`` / ``restore(path)``.
* **Driver-crash persistence.** Tune does not save scheduler state (ray issue 30838): after
  ``Tuner.restore`` the scheduler is unpickled in its construction-time state and
  ``on_trial_add`` is called again for every trial. The base learns the experiment directory
  from the first trial it sees (``trial.storage.experiment_driver_staging_path``: Tune
  uploads that folder to the storage path together with its own experiment snapshot, so the
  scheduler state on storage always matches Tune's trial states, and downloads its ``*.pkl``
  files back before a restore), loads
  ``<experiment_dir>/rafiki_scheduler_state.pkl`` if it exists *and* knows that trial (so a
  stale file of an earlier run under the same name is ignored), and ``self._persist()`` writes
  it atomically (throttled to one write per ``persist_interval_s`` unless ``force=True``;
  subclasses force it on pause / promote / complete). State is keyed by ``trial.trial_id``,
  which is stable across restore.
* **Journal.** A throttled write can leave results that Tune's snapshot already holds out of
  the file (Tune's snapshot follows the result in the same loop step, with no scheduler call
  in between), and Tune restores the trial from a checkpoint *after* them, so they are never
  replayed. Changes that must not wait for the next full write are appended, one JSON line
  each, to ``<experiment_dir>/rafiki_scheduler_journal.json`` by ``self._journal(entry)``
  (O(1) instead of a full write; ``.json`` so that Tune downloads it back as well). Each line
  carries the run's token and a sequence number; a full write records the sequence number it
  covers, and a restore re-applies the later lines of the same run through
  :meth:`RafikiScheduler._replay`. The journal is not truncated during a run: Tune copies the
  folder file by file while the driver goes on, so the state file it copies may be older than
  the journal it copies.
* ``self._check_checkpoint(trial, result)``: call it right before returning ``PAUSE``. The first
  time a function trainable that never reported a checkpoint would be paused it raises
  :class:`CheckpointRequiredError` (Ray would silently restart the trial from scratch,
  ray issue 27170).
* Concurrency slots. Tune's ``max_concurrent_trials`` (a ``ConcurrencyLimiter`` or the
  ``BasicVariantGenerator`` limit) counts a PAUSED trial as live, so a pausing scheduler would
  deadlock once every slot holds a paused trial. ``_release_slot`` (on pause) and
  ``_claim_slot`` (before resuming or stopping a paused trial) keep the limit meaning "running
  trials", as workers do in the ASHA paper.
* Restored trials that were paused before the crash come back from Tune as PENDING;
  a subclass lists them in ``self._repause`` from ``on_trial_add`` and the base sets them back
  to PAUSED at the next ``choose_trial_to_run`` (Tune would otherwise start them all); trials
  the scheduler had stopped after Tune's last snapshot go into ``self._restop`` and are
  stopped there instead of being restarted.

Subclass hooks: override Tune's public hooks (``on_trial_add`` etc.) and call
``super().on_trial_add(...)`` first (it validates metric/mode and performs the restore), or
leave them and implement the ``_get_state`` / ``_set_state`` pair only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from ray.tune.experiment import Trial
from ray.tune.result import DEFAULT_METRIC
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import check_seed, make_rng, rng_state, set_rng_state
from rafiki_ray._state import load_state, save_state

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController

__all__ = ["JOURNAL_FILE", "STATE_FILE", "CheckpointRequiredError", "RafikiScheduler"]

logger = logging.getLogger(__name__)

STATE_FILE = "rafiki_scheduler_state.pkl"
#: JSON lines; the suffix matters: Tune downloads ``*.json`` and ``*.pkl`` back on restore
JOURNAL_FILE = "rafiki_scheduler_journal.json"
_MODES = ("min", "max")


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
        self._experiment_dir: str | None = None
        self._state_path: str | None = None
        self._journal_path: str | None = None
        self._journal_token: str | None = None  # identifies this run's journal lines
        self._journal_seq = 0  # journal lines written by this run (restored on restore)
        self._restored = False
        self._last_persist = -math.inf  # the first write is never throttled
        self._dirty = False
        self._checkpointed: set[str] = set()  # trial ids that reported a checkpoint
        self._repause: set[str] = set()  # restored trials to put back into PAUSED
        self._restop: set[str] = set()  # restored trials the scheduler had already stopped
        self._released: set[str] = set()  # paused trials whose concurrency slot we freed
        self._maybe_running: dict[str, Trial] = {}  # pending/running, for O(live) scans

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
        return {
            "class": type(self).__name__,
            "metric": self._metric,
            "mode": self._mode,
            "time_attr": self._time_attr,
            "seed": self._seed,
            "rng": rng_state(self._rng),
            "checkpointed": sorted(self._checkpointed),
            "released": sorted(self._released),
            "sub": self._get_state(),
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
        self._released = set(state.get("released", ()))
        self._set_state(state["sub"])

    def save(self, checkpoint_path: str) -> None:
        """Write :meth:`get_state` atomically to ``checkpoint_path``."""
        save_state(checkpoint_path, self.get_state(), kind=type(self).__name__)

    def restore(self, checkpoint_path: str) -> None:
        """Load a file written by :meth:`save`."""
        self.set_state(load_state(checkpoint_path, kind=type(self).__name__))

    def _known_trial_ids(self) -> set[str]:
        """Trial ids the subclass state knows (used to recognise our own persisted file)."""
        return set()

    # ------------------------------------------------------------------ persistence
    @property
    def state_path(self) -> str | None:
        """``<experiment_dir>/rafiki_scheduler_state.pkl`` once a trial has been seen."""
        return self._state_path

    def _attach(self, trial: Trial) -> None:
        """Learn the experiment directory from the first trial; restore a persisted state."""
        if self._experiment_dir is not None or not self._persist_enabled:
            return
        logger.debug("%s: attaching to the experiment of trial %s", type(self).__name__, trial)
        storage = getattr(trial, "storage", None)
        if storage is None:  # a stub trial outside Tune (unit tests, simulators)
            return
        try:
            # The driver's staging copy of the experiment folder: Tune uploads it to the
            # storage path with its own experiment snapshot (so both stay consistent) and
            # downloads every *.pkl of it back before a restore.
            path = storage.experiment_driver_staging_path
        except Exception:  # pragma: no cover - unusual storage
            path = None
        if not path:
            logger.warning("%s: no experiment folder; scheduler state is not persisted",
                           type(self).__name__)
            self._experiment_dir = ""
            return
        self._experiment_dir = path
        self._state_path = os.path.join(path, STATE_FILE)
        self._journal_path = os.path.join(path, JOURNAL_FILE)
        if not self._load_persisted(path, trial.trial_id):
            # a new run: a journal left by an earlier run under the same name is dropped
            self._journal_token = uuid.uuid4().hex
            self._journal_seq = 0
            if os.path.exists(self._journal_path):
                os.remove(self._journal_path)

    def _load_persisted(self, directory: str, trial_id: str) -> bool:
        """Restore from the state file and journal in ``directory`` if they are of this run.

        ``trial_id`` is any trial of the run (as seen by ``on_trial_add`` after
        ``Tuner.restore``). Returns whether a state was restored.
        """
        state_path = os.path.join(directory, STATE_FILE)
        if not os.path.exists(state_path):
            return False
        try:
            state = load_state(state_path, kind=type(self).__name__)
        except Exception as exc:
            logger.warning("%s: cannot read %s (%s); starting fresh",
                           type(self).__name__, state_path, exc)
            return False
        saved_ids = set(state.get("trial_ids", ()))
        # Tune's trial ids are "<experiment run id>_<counter>": a trial created just
        # before the crash (after the last write) still shares the run's prefix.
        prefixes = {t.rsplit("_", 1)[0] for t in saved_ids if "_" in t}
        prefix = trial_id.rsplit("_", 1)[0] if "_" in trial_id else None
        if trial_id not in saved_ids and prefix not in prefixes:
            logger.warning(
                "%s: ignoring %s, it belongs to another run (trial %s unknown)",
                type(self).__name__, state_path, trial_id,
            )
            return False
        self.set_state(state)
        token, seq = state.get("journal") or (uuid.uuid4().hex, 0)
        self._journal_token, self._journal_seq = token, int(seq)
        replayed = self._replay_journal(os.path.join(directory, JOURNAL_FILE), int(seq))
        self._restored = True
        logger.info("%s: restored scheduler state from %s (+%d journal entries)",
                    type(self).__name__, state_path, replayed)
        return True

    def _replay_journal(self, path: str, covered: int) -> int:
        """Re-apply this run's journal lines after sequence number ``covered``."""
        if not os.path.exists(path):
            return 0
        entries = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    token, seq, *entry = json.loads(line)
                except (ValueError, TypeError):
                    continue  # a line torn by the crash
                if token == self._journal_token:
                    self._journal_seq = max(self._journal_seq, int(seq))
                    if seq > covered:
                        entries.append((int(seq), entry))
        for _, entry in sorted(entries, key=lambda e: e[0]):
            self._replay(entry)
        return len(entries)

    def _replay(self, entry: list[Any]) -> None:
        """Re-apply one entry written by :meth:`_journal` (override together with it)."""

    def _journal(self, entry: list[Any]) -> None:
        """Record a change at once and cheaply: a full write if one is due, else a journal line.

        ``entry`` is a list of JSON values; a restore hands it back to :meth:`_replay`.
        """
        if not self._state_path or self._persist():  # a full write was due: it covers this
            return
        self._journal_seq += 1
        line = json.dumps([self._journal_token, self._journal_seq, *entry])
        with open(self._journal_path, "a", encoding="utf-8") as f:  # type: ignore[arg-type]
            f.write(line + "\n")

    def _persist(self, force: bool = False) -> bool:
        """Write the state to the experiment directory (throttled unless ``force``); whether
        it was written (else it is marked dirty, for the next write)."""
        if not self._state_path:
            return False
        now = time.monotonic()
        if not force and now - self._last_persist < self.persist_interval_s:
            self._dirty = True
            return False
        state = self.get_state()
        state["trial_ids"] = sorted(self._known_trial_ids())
        state["journal"] = [self._journal_token, self._journal_seq]  # lines it covers
        save_state(self._state_path, state, kind=type(self).__name__)
        self._last_persist = now
        self._dirty = False
        return True

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
        try:
            from ray.tune.trainable.function_trainable import FunctionTrainable

            cls = trial.get_trainable_cls()
            if cls is not None and not issubclass(cls, FunctionTrainable):
                return  # class trainables save_checkpoint() when paused
        except Exception:  # stub trials without a registered trainable
            pass
        raise CheckpointRequiredError(
            f"{type(self).__name__}: trial {trial.trial_id} would be paused but has never "
            f"reported a checkpoint, so Ray would restart it from scratch (ray issue 27170). "
            f"Report one with tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d)) "
            f"and resume from tune.get_checkpoint(), or stop instead of pausing: "
            f"ASHA(promotion=\"stop\") behaves as Ray's ASHAScheduler and needs no checkpoint."
        )

    # ------------------------------------------------------------------ concurrency slots
    @staticmethod
    def _limiter(controller: Any) -> tuple[Any, str, int] | None:
        """The object counting live trials for ``max_concurrent_trials`` (if any)."""
        try:
            alg = controller.search_alg
        except Exception:
            return None
        if alg is None:
            return None
        if hasattr(alg, "_live_trials") and getattr(alg, "max_concurrent", 0):
            return alg, "_live_trials", int(alg.max_concurrent)
        from ray.tune.search import ConcurrencyLimiter

        inner = getattr(alg, "searcher", None)
        while inner is not None:
            if isinstance(inner, ConcurrencyLimiter):
                if getattr(inner, "batch", False):
                    return None
                return inner, "live_trials", int(inner.max_concurrent)
            inner = getattr(inner, "searcher", None)
        return None

    def _release_slot(self, controller: Any, trial: Trial) -> None:
        """A trial is being paused: its concurrency slot goes to another trial."""
        found = self._limiter(controller)
        if found is None:
            return
        obj, attr, _ = found
        live = getattr(obj, attr)
        if trial.trial_id in live:
            live.discard(trial.trial_id)
            if attr == "live_trials":
                obj.num_unfinished_live_trials -= 1
            self._released.add(trial.trial_id)

    def _claim_slot(self, controller: Any, trial: Trial, *, force: bool = False) -> bool:
        """Take a slot back before resuming (or stopping) a paused trial; False when full."""
        if trial.trial_id not in self._released:
            return True
        found = self._limiter(controller)
        if found is None:
            self._released.discard(trial.trial_id)
            return True
        obj, attr, limit = found
        live = getattr(obj, attr)
        if trial.trial_id in live:  # e.g. a limiter restored from before the release
            self._released.discard(trial.trial_id)
            return True
        if not force and len(live) >= limit:
            return False
        if trial.trial_id not in live:
            live.add(trial.trial_id)
            if attr == "live_trials":
                obj.num_unfinished_live_trials += 1
        self._released.discard(trial.trial_id)
        return True

    def _slots_free(self, controller: Any) -> bool:
        """Whether a paused trial may be resumed without exceeding max_concurrent_trials."""
        found = self._limiter(controller)
        if found is None:
            return True
        obj, attr, limit = found
        return len(getattr(obj, attr)) < limit

    def _hand_over(self, controller: Any, trial: Trial) -> Trial:
        """Return the PAUSED ``trial`` for Tune to resume, dropping a stale "staged" mark first.

        Tune's ``_maybe_add_actors`` (its step 3: a cached actor given to a PENDING trial) adds
        the trial to ``_staged_trials`` *after* the trial has started, and nothing removes it
        before that trial's next actor start. When such a trial is later paused and chosen
        here, Tune's step 1 takes it for staged and only tries a cached actor; with none cached
        it never starts and the experiment hangs. A PAUSED trial without an actor has no actor
        request in flight, so the mark is dropped and Tune stages the trial as usual.
        """
        tc = getattr(controller, "_tune_controller", controller)
        staged = getattr(tc, "_staged_trials", None)
        to_actor = getattr(tc, "_trial_to_actor", None)
        if (staged is not None and to_actor is not None and trial.status == Trial.PAUSED
                and trial in staged and trial not in to_actor):
            staged.discard(trial)
            cache = getattr(tc, "_actor_cache", None)
            if cache is not None:
                cache.decrease_max(trial.placement_group_factory)
            logger.debug("%s: trial %s was marked staged without an actor; unmarked",
                         type(self).__name__, trial.trial_id)
        return trial

    def _stop_paused(self, controller: Any, trial: Trial) -> None:
        """Stop a PAUSED/PENDING trial through Tune (the searcher hears of its completion)."""
        self._claim_slot(controller, trial, force=True)
        controller.stop_trial(trial)

    def _apply_repause(self, controller: Any) -> None:
        """Put restored trials that were paused before the crash back into PAUSED.

        Also writes a state whose last write was throttled (called at every
        ``choose_trial_to_run``, i.e. at every step of Tune's loop).
        """
        if self._dirty:
            self._persist()
        if not self._repause and not self._restop:
            return
        for trial in list(controller.get_trials()):
            if trial.status != Trial.PENDING:
                continue
            if trial.trial_id in self._restop:  # stopped before the crash, after the snapshot
                controller.stop_trial(trial)
            elif trial.trial_id in self._repause:
                try:
                    controller._set_trial_status(trial, Trial.PAUSED)
                except Exception as exc:  # already staged by Tune: let it run
                    logger.debug("cannot re-pause %s: %s", trial, exc)
        self._repause.clear()
        self._restop.clear()

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
        self._attach(trial)
        if trial.status not in (Trial.TERMINATED, Trial.ERROR):
            self._maybe_running[trial.trial_id] = trial

    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        self._note_checkpoint(trial, result)
        return TrialScheduler.CONTINUE

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        self._apply_repause(tune_controller)
        return super().choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        return f"Using {type(self).__name__} (metric={self._metric!r}, mode={self._mode!r})."
