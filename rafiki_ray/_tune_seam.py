"""The one module of rafiki_ray that touches Ray Tune's private state (tested with Ray 2.60).

Tune's scheduler interface (``TrialScheduler`` hooks, ``get_trials``, ``pause_trial``,
``stop_trial``, ``search_alg``) is not enough for a scheduler that pauses trials, restores its
state after a driver crash or restarts a trial from another trial's checkpoint. Each thing
rafiki_ray needs beyond it is one named function here, and ``tests/test_tune_seam.py`` runs
each against real Tune, so that a Tune release that changes the behaviour fails there, naming
it, instead of somewhere deep in a scheduler. When a function fails at run time it raises
:class:`TuneSeamError` naming the Tune behaviour it relied on.

Behaviours (one function each):

* :func:`experiment_dir` -- where the experiment's files live on the driver (Tune uploads the
  folder with its experiment snapshot and downloads ``*.pkl`` / ``*.json`` back on restore);
* :func:`same_run` -- whether two trial ids belong to the same experiment run (id format);
* :func:`is_function_trainable` -- whether a trial's trainable is a function trainable;
* :func:`latest_checkpoint` / :func:`forget_checkpoint` -- a trial's latest checkpoint and
  metrics, and dropping it so that the trial restarts from scratch;
* :func:`saving_checkpoint` -- the checkpoint Tune is saving for a trial (reported with the
  result just decided on, not registered yet), waited for as Ray's PopulationBasedTraining does;
* :func:`restart_from_checkpoint` -- pause a running trial without saving it, so that it
  resumes from another trial's checkpoint (what Ray's PopulationBasedTraining does);
* :func:`repause` -- put a restored trial (PENDING after ``Tuner.restore``) back into PAUSED;
* :func:`retrying` -- whether ``on_trial_error`` announces a retry (``FailureConfig``) rather
  than the end of the trial;
* :func:`unmark_staged` -- hand a paused trial back although Tune still marks it as staged;
* :func:`concurrency_slots` / :func:`free_slot` / :func:`take_slot` -- the trials
  ``max_concurrent_trials`` counts, freeing and retaking one paused trial's slot;
* :func:`trial_driver_dir` / :func:`download_trial_file` -- a trial's folder on the driver
  and fetching one of its files back from storage (for a result log that a pause/resume
  does not cut, unlike Tune's ``result.json``);
* :func:`upload_trial_logs` -- bring a paused trial's ``progress.csv`` / ``result.json`` in
  storage up to date before it resumes, so that Tune's restore of them loses no row.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController  # noqa: F401
    from ray.tune.experiment import Trial

__all__ = [
    "DEFAULT_METRIC",
    "TESTED_RAY",
    "TuneSeamError",
    "concurrency_slots",
    "download_trial_file",
    "experiment_dir",
    "forget_checkpoint",
    "free_slot",
    "is_function_trainable",
    "latest_checkpoint",
    "repause",
    "restart_from_checkpoint",
    "retrying",
    "same_run",
    "saving_checkpoint",
    "take_slot",
    "trial_driver_dir",
    "unmark_staged",
    "upload_trial_logs",
]

logger = logging.getLogger(__name__)

#: The Ray release line these behaviours were verified with.
TESTED_RAY = "2.60"
#: Tune's placeholder metric name when only a mode is given (``ray.tune.result``).
DEFAULT_METRIC = "_metric"


class TuneSeamError(RuntimeError):
    """Tune no longer behaves as rafiki_ray relies on (the message names the behaviour)."""


def _broken(behaviour: str, detail: Any) -> TuneSeamError:
    import ray

    return TuneSeamError(
        f"rafiki_ray relies on Ray Tune {TESTED_RAY}: {behaviour}; with Ray {ray.__version__} "
        f"this no longer holds ({detail}). Install ray[tune]=={TESTED_RAY}.* or report it."
    )


def _controller(controller: Any) -> Any:
    """The ``TuneController`` behind the wrapper Tune hands to scheduler hooks."""
    return getattr(controller, "_tune_controller", controller)


# ----------------------------------------------------------------------------- storage
def experiment_dir(trial: Trial) -> str | None:
    """The driver's staging copy of the experiment folder (``None`` for a stub trial).

    Relies on: ``trial.storage.experiment_driver_staging_path`` is the folder Tune uploads to
    the storage path together with its experiment snapshot, and whose ``*.pkl`` / ``*.json``
    files ``Tuner.restore`` downloads back before the scheduler sees the first trial.
    """
    storage = getattr(trial, "storage", None)
    if storage is None:  # a stub trial outside Tune (unit tests, simulators)
        return None
    try:
        return str(storage.experiment_driver_staging_path)
    except AttributeError as exc:
        raise _broken("StorageContext.experiment_driver_staging_path names the experiment "
                      "folder on the driver", exc) from exc


def same_run(trial_id: str, other_ids: set[str] | list[str]) -> bool:
    """Whether ``trial_id`` belongs to the run that created ``other_ids``.

    Relies on: Tune's trial ids are ``"<run id>_<counter>"`` (``Trial.generate_id``), so a
    trial created after the last write of a state file still shares its run's prefix.
    """
    if trial_id in other_ids:
        return True
    if "_" not in trial_id:
        return False
    prefix = trial_id.rsplit("_", 1)[0]
    return any(t.rsplit("_", 1)[0] == prefix for t in other_ids if "_" in t)


# ----------------------------------------------------------------------------- trainables
def is_function_trainable(trial: Trial) -> bool | None:
    """Whether the trial runs a function trainable (``None``: no registered trainable).

    Relies on: function trainables are wrapped in ``ray.tune.trainable.function_trainable.
    FunctionTrainable`` (which saves only what the function reported), class trainables are
    not (Tune calls their ``save_checkpoint`` when it pauses them).
    """
    try:
        cls = trial.get_trainable_cls()
    except Exception:  # noqa: BLE001 - a trainable that is not registered
        return None
    if cls is None:
        return None
    try:
        from ray.tune.trainable.function_trainable import FunctionTrainable
    except ImportError as exc:
        raise _broken("function trainables subclass FunctionTrainable", exc) from exc
    return issubclass(cls, FunctionTrainable)


# ----------------------------------------------------------------------------- checkpoints
def latest_checkpoint(trial: Trial) -> tuple[Any, dict[str, Any]] | None:
    """``(checkpoint, metrics)`` of the trial's latest registered checkpoint, or ``None``.

    Relies on: ``Trial.latest_checkpoint_result`` holds the last checkpoint Tune registered
    for the trial (``.checkpoint``, ``.metrics``: the result reported with it).
    """
    result = getattr(trial, "latest_checkpoint_result", None)
    if result is None:
        return None
    try:
        checkpoint, metrics = result.checkpoint, result.metrics
    except AttributeError as exc:
        raise _broken("Trial.latest_checkpoint_result has .checkpoint and .metrics", exc) from exc
    if checkpoint is None:
        return None
    return checkpoint, dict(metrics or {})


def saving_checkpoint(trial: Trial) -> tuple[Any, dict[str, Any]] | None:
    """``(checkpoint, metrics)`` of the save Tune has in flight for the trial (waiting for
    it), or ``None`` when none is (or it brought no checkpoint).

    A checkpoint reported with a result is registered only after the schedulers' hooks ran:
    Tune schedules a save task for it and registers its outcome when the task returns.

    Relies on (as Ray's ``PopulationBasedTraining._checkpoint_or_exploit``): while that task
    runs ``trial.temporary_state.saving_to`` holds a ``_FutureTrainingResult`` whose
    ``resolve()`` waits for it and returns a ``_TrainingResult`` (``.checkpoint``,
    ``.metrics``).
    """
    state = getattr(trial, "temporary_state", None)
    if state is None or not hasattr(state, "saving_to"):
        raise _broken("Trial.temporary_state.saving_to holds a save in flight",
                      type(state).__name__)
    future = state.saving_to
    if future is None:
        return None
    if not hasattr(future, "resolve"):
        raise _broken("a save in flight is a _FutureTrainingResult with resolve()",
                      type(future).__name__)
    result = future.resolve()
    checkpoint = getattr(result, "checkpoint", None)
    if checkpoint is None:
        return None
    return checkpoint, dict(getattr(result, "metrics", None) or {})


def _manager(trial: Trial) -> Any:
    manager = getattr(getattr(trial, "run_metadata", None), "checkpoint_manager", None)
    if manager is not None and not hasattr(manager, "_latest_checkpoint_result"):
        raise _broken("a trial's checkpoint manager keeps its latest checkpoint in "
                      "_latest_checkpoint_result", type(manager).__name__)
    return manager


def forget_checkpoint(trial: Trial) -> None:
    """Make the trial's next start a start from scratch (its checkpoints stay on storage).

    Relies on: Tune restores a resumed trial from ``checkpoint_manager.
    _latest_checkpoint_result`` and starts it fresh when that is ``None``.
    """
    manager = _manager(trial)
    if manager is not None:
        manager._latest_checkpoint_result = None


def restart_from_checkpoint(controller: Any, trial: Trial, checkpoint: Any,
                            metrics: dict[str, Any]) -> None:
    """Pause the RUNNING (or PAUSED) ``trial`` without saving it; it resumes from
    ``checkpoint``.

    ``metrics`` is the result reported with ``checkpoint`` (its ``training_iteration`` etc.
    become the trial's counters). Call it from ``on_trial_result`` and return ``NOOP``.

    Relies on (as Ray's ``PopulationBasedTraining._exploit``): ``pause_trial(trial,
    should_checkpoint=False)`` stops the actor and sets the trial PAUSED at once, and a
    resumed trial is restored from ``checkpoint_manager._latest_checkpoint_result``
    (a ``_TrainingResult``).
    """
    manager = _manager(trial)
    try:
        from ray.train._internal.session import _TrainingResult
    except ImportError as exc:
        raise _broken("ray.train._internal.session._TrainingResult wraps a checkpoint and "
                      "its metrics", exc) from exc
    from ray.tune.experiment import Trial

    if trial.status != Trial.PAUSED:  # a paused trial (PBT's synch mode) only gets the pointer
        controller.pause_trial(trial, should_checkpoint=False)
    if manager is not None:
        manager._latest_checkpoint_result = _TrainingResult(checkpoint=checkpoint,
                                                            metrics=dict(metrics))


# ----------------------------------------------------------------------------- trial status
def repause(controller: Any, trial: Trial) -> bool:
    """Set a PENDING trial (restored by ``Tuner.restore``) back to PAUSED; whether it took.

    Relies on: ``TuneController._set_trial_status`` changes the status and Tune's
    bookkeeping of pending trials; it refuses (raises) once Tune has staged the trial.
    """
    from ray.tune.experiment import Trial

    setter = getattr(controller, "_set_trial_status", None)
    if setter is None:
        raise _broken("TuneController._set_trial_status sets a trial's status",
                      type(controller).__name__)
    try:
        setter(trial, Trial.PAUSED)
    except AssertionError as exc:  # Tune's status sets disagree: leave the trial to Tune
        logger.debug("cannot re-pause %s: %s", trial, exc)
        return False
    return True


def retrying(trial: Trial) -> bool:
    """Whether Tune calls ``on_trial_error`` for ``trial`` because it is about to retry it.

    Relies on: when a trial fails and ``FailureConfig(max_failures=...)`` allows another try
    (``Trial.should_recover()``), ``TuneController._try_recover`` first stops the trial with
    the error (status ERROR), then ``_requeue_trial`` calls the scheduler's ``on_trial_error``,
    sets the trial PENDING and calls ``on_trial_add`` again: the trial goes on from its last
    checkpoint. For a final error ``on_trial_error`` comes while the trial is still RUNNING
    or PENDING (``_process_trial_failure``), and no ``on_trial_add`` follows.
    """
    from ray.tune.experiment import Trial

    recover = getattr(trial, "should_recover", None)
    if recover is None:
        raise _broken("Trial.should_recover() says whether Tune retries a failed trial",
                      type(trial).__name__)
    return trial.status == Trial.ERROR and bool(recover())


def unmark_staged(controller: Any, trial: Trial) -> bool:
    """Drop a stale "staged" mark of a PAUSED trial with no actor; whether there was one.

    Relies on: Tune's ``_maybe_add_actors`` step 3 (a cached actor given to a PENDING trial)
    adds the trial to ``_staged_trials`` after it started and nothing removes it before the
    trial's next actor start; a staged trial is only offered a cached actor, so a paused
    trial handed back with that mark and no cached actor never starts.
    ``_actor_cache.decrease_max`` undoes the cache size the mark reserved.
    """
    from ray.tune.experiment import Trial

    tc = _controller(controller)
    staged = getattr(tc, "_staged_trials", None)
    to_actor = getattr(tc, "_trial_to_actor", None)
    if staged is None or to_actor is None:
        if type(tc).__name__ == "TuneController":
            raise _broken("TuneController keeps _staged_trials and _trial_to_actor",
                          sorted(k for k in vars(tc) if "trial" in k))
        return False  # a simulated controller
    if trial.status != Trial.PAUSED or trial not in staged or trial in to_actor:
        return False
    staged.discard(trial)
    cache = getattr(tc, "_actor_cache", None)
    if cache is not None:
        cache.decrease_max(trial.placement_group_factory)
    return True


# ----------------------------------------------------------------------------- slots
def concurrency_slots(controller: Any) -> tuple[set[str], int] | None:
    """``(ids of the trials max_concurrent_trials counts, the limit)``, or ``None``.

    Relies on: ``max_concurrent_trials`` is enforced either by ``BasicVariantGenerator``
    (its ``_live_trials`` set and ``max_concurrent``) or by a ``ConcurrencyLimiter``
    (``live_trials``, ``num_unfinished_live_trials``, ``max_concurrent``; none in batch mode,
    and none when ``_limit_concurrency`` is False: the searcher it wraps enforces the limit
    itself and the limiter neither adds nor removes live trials) somewhere in the
    ``.searcher`` chain of the controller's ``search_alg``; both count a PAUSED trial as live.
    A rafiki_ray searcher in that chain that enforces the limit itself answers for it
    (``RafikiSearcher.slots``; our code, not Tune's).
    """
    found = _limiter(controller)
    if found is None:
        return None
    obj, attr, limit = found
    if not attr:
        return obj.slots()
    return set(getattr(obj, attr)), limit


def _limiter(controller: Any) -> tuple[Any, str, int] | None:
    try:
        alg = controller.search_alg
    except Exception:  # noqa: BLE001 - a controller wrapper without one
        return None
    if alg is None:
        return None
    if getattr(alg, "max_concurrent", 0) and type(alg).__name__ == "BasicVariantGenerator":
        if not hasattr(alg, "_live_trials"):
            raise _broken("BasicVariantGenerator counts live trials in _live_trials",
                          sorted(vars(alg)))
        return alg, "_live_trials", int(alg.max_concurrent)
    if hasattr(alg, "_live_trials") and getattr(alg, "max_concurrent", 0):
        return alg, "_live_trials", int(alg.max_concurrent)
    from ray.tune.search import ConcurrencyLimiter

    inner = getattr(alg, "searcher", None)
    while inner is not None:
        if isinstance(inner, ConcurrencyLimiter):
            if getattr(inner, "batch", False):
                return None
            if getattr(inner, "_limit_concurrency", True):
                if not hasattr(inner, "live_trials") or not hasattr(
                        inner, "num_unfinished_live_trials"):
                    raise _broken("ConcurrencyLimiter counts live trials in live_trials and "
                                  "num_unfinished_live_trials", sorted(vars(inner)))
                return inner, "live_trials", int(inner.max_concurrent)
            # else the searcher below took max_concurrent (its set_max_concurrency returned
            # True): this limiter counts nothing, and a slot taken in it is never given back
        elif callable(getattr(inner, "slots", None)) and callable(
                getattr(inner, "release_slot", None)):
            # a rafiki_ray searcher that enforces max_concurrent itself (RafikiSearcher.slots)
            return (inner, "", 0) if inner.slots() is not None else None
        inner = getattr(inner, "searcher", None)
    return None


def free_slot(controller: Any, trial_id: str) -> bool:
    """Stop counting the (paused) trial toward ``max_concurrent_trials``; whether it was."""
    found = _limiter(controller)
    if found is None:
        return False
    obj, attr, _ = found
    if not attr:
        return bool(obj.release_slot(trial_id))
    live = getattr(obj, attr)
    if trial_id not in live:
        return False
    live.discard(trial_id)
    if attr == "live_trials":
        obj.num_unfinished_live_trials -= 1
    return True


def take_slot(controller: Any, trial_id: str, *, force: bool = False) -> bool:
    """Count the trial toward ``max_concurrent_trials`` again; False when all slots are taken
    (unless ``force``). True when no limit applies or the trial is already counted."""
    found = _limiter(controller)
    if found is None:
        return True
    obj, attr, limit = found
    if not attr:
        return bool(obj.claim_slot(trial_id, force=force))
    live = getattr(obj, attr)
    if trial_id in live:
        return True
    if not force and len(live) >= limit:
        return False
    live.add(trial_id)
    if attr == "live_trials":
        obj.num_unfinished_live_trials += 1
    return True


# ----------------------------------------------------------------------------- trial files
def trial_driver_dir(trial: Trial) -> str | None:
    """The trial's folder on the driver (``None`` for a stub trial).

    Relies on: ``Trial.local_path`` is the driver's staging copy of the trial folder, which
    Tune uploads to ``trial.storage.trial_fs_path`` with its experiment snapshots. (Tune's
    JSON logger copies the storage ``result.json`` back over the staging one whenever a
    trial with a checkpoint starts again, e.g. after a PAUSE, so the rows written since the
    last upload are lost from ``result.json``.)
    """
    if getattr(trial, "storage", None) is None:
        return None
    try:
        return str(trial.local_path)
    except AttributeError as exc:
        raise _broken("Trial.local_path names the trial's folder on the driver", exc) from exc


def _trial_storage(trial: Trial) -> tuple[str, Any]:
    """The trial's folder in storage and its ``pyarrow.fs.FileSystem``.

    Relies on: ``trial.storage.trial_fs_path`` is the trial folder on
    ``trial.storage.storage_filesystem``, as Tune's own ``LoggerCallback._restore_from_remote``
    uses them.
    """
    try:
        return str(trial.storage.trial_fs_path), trial.storage.storage_filesystem
    except AttributeError as exc:
        raise _broken("Trial.storage has trial_fs_path and storage_filesystem", exc) from exc


#: The trial log files Tune's CSV / JSON logger callbacks write and restore from storage.
TRIAL_LOG_FILES = ("progress.csv", "result.json")


def upload_trial_logs(trial: Trial) -> list[str]:
    """Copy the trial's ``progress.csv`` / ``result.json`` from the driver's folder to storage
    now; the names copied. Call it before handing a paused trial back to Tune.

    Relies on: when a trial with a checkpoint starts again, Tune's CSV and JSON logger
    callbacks copy these files from ``trial.storage.trial_fs_path`` over the driver's
    (``LoggerCallback._restore_from_remote``), so the rows written since Tune's last upload
    would vanish from ``result.json`` / ``metrics_dataframe``; uploaded first, the copy
    brought back is complete.
    """
    import os

    local = trial_driver_dir(trial)
    if local is None:
        return []
    remote, fs = _trial_storage(trial)
    import pyarrow.fs

    copied = []
    for name in TRIAL_LOG_FILES:
        src = os.path.join(local, name)
        if not os.path.isfile(src) or os.path.realpath(src) == os.path.realpath(
                os.path.join(remote, name)):
            continue
        fs.create_dir(remote, recursive=True)
        pyarrow.fs.copy_files(src, f"{remote}/{name}", destination_filesystem=fs)
        copied.append(name)
    return copied


def download_trial_file(trial: Trial, name: str) -> bool:
    """Copy the trial's file ``name`` from storage to the driver's folder if the driver has
    none (a driver restored after a crash starts with empty trial folders); whether it did.

    Relies on: ``trial.storage.trial_fs_path`` is the trial folder on
    ``trial.storage.storage_filesystem`` (a ``pyarrow.fs.FileSystem``), as Tune's own
    ``LoggerCallback._restore_from_remote`` uses them.
    """
    import os

    local = trial_driver_dir(trial)
    if local is None or os.path.exists(os.path.join(local, name)):
        return False
    folder, fs = _trial_storage(trial)
    remote = f"{folder}/{name}"
    import pyarrow.fs

    info = fs.get_file_info(remote)
    if info.type != pyarrow.fs.FileType.File:
        return False
    os.makedirs(local, exist_ok=True)
    pyarrow.fs.copy_files(remote, os.path.join(local, name), source_filesystem=fs)
    return True
