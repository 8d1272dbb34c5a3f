"""``LiveControl``: apply journaled operations to a running Tune experiment, with public APIs.

A *run* is a sequence of Tune trials sharing a run id (in the trial config under
:data:`CONTROL_KEY`): stop ends the run's trial at its next result (a ``tune.Stopper``), resume
starts a new trial from the run's last checkpoint, clone starts a new run (both through the
searcher wrapper :class:`ControlSearcher`, which also serves the wrapped searcher's or a fixed
list's configurations). A ``tune.Callback`` polls the journal at every controller step
(``on_step_begin``), decides each new operation by :func:`decide`, acts, and writes the outcome
back; the callback's ``get_state``/``set_state`` are saved with Tune's experiment snapshot, in
the same step as the trial list and the searcher, so after ``Tuner.restore`` every journaled
operation is applied exactly once: those in the snapshot are not applied again, later ones are.

Use ``ctl = LiveControl(experiment_dir, searcher=..., runs=[...])``, then
``TuneConfig(search_alg=ctl.searcher, num_samples=-1)`` and
``RunConfig(callbacks=[ctl.callback], stop=ctl.stopper)``; trainables start from
:func:`start_checkpoint`. The three share one controller also after pickling (Tune saves them
in ``tuner.pkl``): objects are looked up by a key in a per-process registry.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ray.tune import Callback, Stopper
from ray.tune.search import Searcher

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import check_seed
from rafiki_ray.control.journal import Journal, read_status, write_status
from rafiki_ray.control.protocol import CONTROL_KEY, apply_edits, decide

__all__ = ["ControlCallback", "ControlSearcher", "ControlStopper", "LiveControl"]

logger = logging.getLogger(__name__)

_REGISTRY: weakref.WeakValueDictionary[str, LiveControl] = weakref.WeakValueDictionary()
_NUMERIC = (int, float)


def _lookup(key: str, args: dict[str, Any]) -> LiveControl:
    obj = _REGISTRY.get(key)
    if obj is None:
        obj = LiveControl(**args, _key=key)
    return obj


class LiveControl:
    """The driver side of live control (see the module docstring).

    Args:
        experiment_dir: the Tune experiment directory (``storage_path/name``); the journal
            lives in its ``rafiki_control/``.
        searcher: a ``ray.tune.search.Searcher`` proposing new runs, or None.
        runs: fixed run configs served first (e.g. RapidFire's expanded config groups).
        validate: ``fn(config)`` raising ValueError/TypeError for a bad clone config.
        seed: base of the per-run seeds (run ``i`` gets ``seed + i``).
        num_samples: how many runs the searcher proposes (required with a searcher: Tune
            runs ``num_samples=-1`` so that control can add trials, and most searchers never
            say they are finished).
        refuse: ``{op: reason}``, operations this kind of run does not support (e.g. stop and
            resume of a Rafiki model trial, which trains in one call); they are refused with
            the reason, whatever the run's state.
    """

    def __init__(
        self,
        experiment_dir: str,
        *,
        searcher: Searcher | None = None,
        runs: Sequence[Mapping[str, Any]] | None = None,
        validate: Callable[[dict], Any] | None = None,
        seed: int | None = 0,
        num_samples: int | None = None,
        refuse: Mapping[str, str] | None = None,
        _key: str | None = None,
    ) -> None:
        if not isinstance(experiment_dir, (str, os.PathLike)):
            raise invalid_type("LiveControl.experiment_dir", "must be a path", experiment_dir)
        if searcher is not None and not isinstance(searcher, Searcher):
            raise invalid_type("LiveControl.searcher", "must be a ray.tune.search.Searcher "
                               "(wrap a param_space in a rafiki_ray searcher)", searcher)
        if runs is not None and (
                isinstance(runs, Mapping) or not all(isinstance(r, Mapping) for r in runs)):
            raise invalid_type("LiveControl.runs", "must be a list of config dicts", runs)
        if searcher is None and not runs:
            raise invalid("LiveControl", "needs a searcher or a non-empty list of runs")
        if searcher is not None and (isinstance(num_samples, bool) or not isinstance(
                num_samples, int) or num_samples < 1):
            raise invalid("LiveControl.num_samples", "must be an int >= 1 with a searcher (how "
                          "many runs it proposes)", num_samples)
        if refuse is not None and (not isinstance(refuse, Mapping) or not all(
                isinstance(v, str) for v in refuse.values())):
            raise invalid_type("LiveControl.refuse", "must be a dict {op: reason}", refuse)
        self.experiment_dir = os.path.abspath(os.fspath(experiment_dir))
        self._args = {"experiment_dir": self.experiment_dir, "searcher": searcher,
                      "runs": [copy.deepcopy(dict(r)) for r in runs or []],
                      "validate": validate, "seed": check_seed(seed),
                      "num_samples": num_samples, "refuse": dict(refuse or {})}
        self.refuse = dict(refuse or {})
        self.inner = searcher
        self.validate = validate
        self.seed = check_seed(seed) or 0
        self.journal = Journal(self.experiment_dir)
        self.key = _key or uuid.uuid4().hex
        _REGISTRY[self.key] = self
        self._journal_size = -1
        self.set_state({"runs": {}, "applied": {}, "queue": [], "trial_run": {},
                        "initial": [], "next": 0, "inner_done": searcher is None,
                        "inner_trials": []})
        # fixed runs get their ids now, so that they can be controlled before they start
        self.initial = [self._new_run(r, "initial")["id"] for r in runs or []]
        self.searcher = ControlSearcher(self)
        self.callback = ControlCallback(self)
        self.stopper = ControlStopper(self)

    def __reduce__(self) -> tuple:
        return (_lookup, (self.key, self._args))

    # ---- state -------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return copy.deepcopy({
            "runs": self.runs, "applied": self.applied, "queue": self.queue,
            "trial_run": self.trial_run, "initial": self.initial, "next": self.next,
            "inner_done": self.inner_done, "inner_trials": sorted(self.inner_trials)})

    def set_state(self, state: Mapping[str, Any]) -> None:
        state = copy.deepcopy(dict(state))
        self.runs: dict[str, dict[str, Any]] = state["runs"]
        self.applied: dict[str, dict[str, Any]] = state["applied"]
        self.queue: list[dict[str, Any]] = state["queue"]
        self.trial_run: dict[str, str] = state["trial_run"]
        self.initial: list[str] = state["initial"]  # fixed runs not started yet
        self.next: int = state["next"]
        self.inner_done: bool = state["inner_done"]
        self.inner_trials: set[str] = set(state["inner_trials"])
        self._journal_size = -1  # re-read the journal: ops after the snapshot apply now

    # ---- runs --------------------------------------------------------------------------
    def _new_run(self, config: Mapping[str, Any], origin: str, parent: str | None = None,
                 warm: bool = False) -> dict[str, Any]:
        rid = f"run-{self.next:04d}"
        run = {"id": rid, "status": "ongoing", "config": copy.deepcopy(dict(config)),
               "origin": origin, "parent": parent, "warm": warm, "seed": self.seed + self.next,
               "trials": [], "live": None, "checkpoint": None, "chunks": 0, "base": 0,
               "from_chunk": 0, "checkpoint_chunks": 0,
               "last": {}, "error": None}
        self.next += 1
        self.runs[rid] = run
        return run

    def _trial_config(self, run: dict[str, Any], **start: Any) -> dict[str, Any]:
        cfg = copy.deepcopy(run["config"])
        cfg[CONTROL_KEY] = {"id": run["id"], "seed": run["seed"], **start}
        return cfg

    def _assign(self, trial_id: str, run: dict[str, Any], config: dict[str, Any]) -> dict:
        self.trial_run[trial_id] = run["id"]
        run["trials"].append(trial_id)
        run["live"] = trial_id
        run["base"] = run["chunks"]
        self._write_status()
        return config

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        while self.queue:
            item = self.queue.pop(0)
            run = self.runs[item["run"]]
            if run["status"] == "ongoing" and run["live"] is None:
                return self._assign(trial_id, run, item["config"])
        while self.initial:
            run = self.runs[self.initial.pop(0)]
            if run["status"] == "ongoing":
                return self._assign(trial_id, run, self._trial_config(run))
        if not self.inner_done and len(self.inner_trials) >= self._args["num_samples"]:
            self.inner_done = True
        if not self.inner_done:
            s = self.inner.suggest(trial_id)
            if s == Searcher.FINISHED:
                self.inner_done = True
            elif s is not None:
                self.inner_trials.add(trial_id)
                run = self._new_run(s, "searcher")
                return self._assign(trial_id, run, self._trial_config(run))
            else:
                return None
        if self.queue or any(r["live"] is not None for r in self.runs.values()):
            return None
        return Searcher.FINISHED

    def on_result(self, trial_id: str, result: Mapping[str, Any]) -> None:
        run = self.runs.get(self.trial_run.get(trial_id, ""))
        if run is None or run["status"] == "deleted":
            return
        it = result.get("training_iteration", 0)
        run["chunks"] = int(result.get("chunks_done", run["base"] + it))
        run["last"] = {k: v for k, v in result.items()
                       if isinstance(v, _NUMERIC) and not isinstance(v, bool)}
        self._write_status()

    def on_checkpoint(self, trial_id: str, path: str) -> None:
        run = self.runs.get(self.trial_run.get(trial_id, ""))
        if run is not None and run["live"] == trial_id:
            # a checkpoint comes after the result it was reported with
            run["checkpoint"], run["checkpoint_chunks"] = path, run["chunks"]

    def on_complete(self, trial_id: str, error: bool) -> None:
        run = self.runs.get(self.trial_run.get(trial_id, ""))
        if run is None or run["live"] != trial_id:
            return
        run["live"] = None
        if run["status"] == "ongoing":
            run["status"] = "failed" if error else "completed"
        self._write_status()

    def is_deleted(self, trial_id: str) -> bool:
        run = self.runs.get(self.trial_run.get(trial_id, ""))
        return run is not None and run["status"] == "deleted"

    def has_waiting(self) -> bool:
        """Whether runs wait for a trial to be created (resumes, clones, fixed runs not
        started, a searcher with samples left): :class:`rafiki_ray.schedulers.RoundRobin`
        then lets a running trial yield its slot."""
        if any(self.runs[q["run"]]["status"] == "ongoing" for q in self.queue):
            return True
        if any(self.runs[r]["status"] == "ongoing" for r in self.initial):
            return True
        return not self.inner_done and len(self.inner_trials) < (self._args["num_samples"] or 0)

    def should_stop(self, trial_id: str) -> bool:
        run = self.runs.get(self.trial_run.get(trial_id, ""))
        return run is not None and run["status"] in ("stopped", "deleted")

    # ---- operations --------------------------------------------------------------------
    def poll(self) -> int:
        """Apply the journal's new operations; return how many were decided now."""
        try:
            size = os.path.getsize(self.journal.path)
        except OSError:
            return 0
        if size == self._journal_size:
            return 0
        # the size read *before* the lines: a line appended while we work (by a client, or
        # our own outcomes) makes the next poll read again; applied ops are skipped then
        self._journal_size = size
        n = 0
        for op in self.journal.ops():
            if op.get("id") in self.applied:
                continue
            outcome = self._apply(op)
            self.applied[op["id"]] = outcome
            self.journal.append({"kind": "outcome", "id": op["id"], "time": time.time(),
                                 **outcome})
            logger.info("control %s %s: %s %s", op.get("op"), op.get("run"),
                        outcome["outcome"], outcome.get("reason", ""))
            n += 1
        if n:
            self._write_status()
        return n

    def _apply(self, op: Mapping[str, Any]) -> dict[str, Any]:
        """Decide and act on one op; nothing changes unless every check passed."""
        kind, rid = op.get("op"), op.get("run")
        run = self.runs.get(rid) if isinstance(rid, str) else None
        if kind in self.refuse and run is not None:
            return {"outcome": "refused", "reason": self.refuse[kind], "new_run": None}
        outcome, reason = decide(kind, None if run is None else run["status"])
        if outcome != "apply":
            return {"outcome": outcome + "d", "reason": reason, "new_run": None}
        if kind == "stop":
            run["status"] = "stopped"
            self.queue = [q for q in self.queue if q["run"] != rid]
            self.initial = [r for r in self.initial if r != rid]
        elif kind == "resume":
            run["status"] = "ongoing"
            if run["live"] is None:
                run["chunks"] = run["checkpoint_chunks"]  # it goes on from its checkpoint
                start = {"resume_from": run["checkpoint"]} if run["checkpoint"] else {}
                self.queue.append({"run": rid, "config": self._trial_config(run, **start)})
        elif kind == "delete":
            run["status"] = "deleted"
            run["last"] = {}
            self.queue = [q for q in self.queue if q["run"] != rid]
            self.initial = [r for r in self.initial if r != rid]
        else:  # clone
            try:
                config = apply_edits(run["config"], op.get("edits") or {})
                if self.validate is not None:
                    self.validate(copy.deepcopy(config))
            except (ValueError, TypeError) as exc:
                return {"outcome": "refused", "reason": f"the edited config is invalid: {exc}",
                        "new_run": None}
            warm = bool(op.get("warm")) and run["checkpoint"] is not None
            pin = None
            if warm:  # Tune may delete the parent's checkpoint later: pin a copy now
                pin = os.path.join(self.journal.dir, "pins", f"run-{self.next:04d}")
                try:
                    shutil.rmtree(pin, ignore_errors=True)
                    shutil.copytree(run["checkpoint"], pin)
                except OSError as exc:
                    return {"outcome": "refused", "new_run": None, "reason": "cannot copy the "
                            f"parent's checkpoint {run['checkpoint']!r}: {exc}"}
            child = self._new_run(config, "clone", parent=rid, warm=warm)
            child["from_chunk"] = run["checkpoint_chunks"] if warm else 0
            start = {"warm_from": pin, "clone_of": rid} if warm else {"clone_of": rid}
            self.queue.append({"run": child["id"], "config": self._trial_config(child, **start)})
            note = "" if warm or not op.get("warm") else "parent has no checkpoint; cold clone"
            return {"outcome": "applied", "reason": note, "new_run": child["id"]}
        return {"outcome": "applied", "reason": "", "new_run": None}

    def discard_orphans(self, known: set[str]) -> list[str]:
        """Remove the folders of trials that Tune's restored snapshot does not know.

        A driver that crashed after a trial of a run had started (a clone, a resume, the next
        fixed run) but before Tune's next snapshot leaves that trial's folder (and its
        TensorBoard folder) behind; the restored experiment creates the trial again (the
        operation is applied again, once, from the journal), so the old folder would be a
        second, orphaned copy of the run. Only folders of this control's runs are touched
        (``params.json`` holding :data:`CONTROL_KEY`; TensorBoard folders named
        ``run-NNNN_<trial id>``). Returns the removed paths (also journaled).
        """
        removed = []
        for parent, marked in ((self.experiment_dir, True),
                               (os.path.join(self.experiment_dir, "tensorboard"), False)):
            try:
                entries = list(os.scandir(parent))
            except OSError:
                continue
            for entry in entries:
                if not entry.is_dir() or any(tid in entry.name for tid in known):
                    continue
                if marked and not _holds_control_config(entry.path):
                    continue
                if not marked and not (entry.name.startswith("run-") and "_" in entry.name):
                    continue
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
        for path in removed:
            logger.info("control: removed %s, a trial started after Tune's last snapshot "
                        "(the restored run starts it again)", path)
            self.journal.append({"kind": "discarded", "path": path, "time": time.time()})
        return removed

    def status(self) -> dict[str, Any]:
        runs = {}
        for rid, r in self.runs.items():
            runs[rid] = {k: r[k] for k in ("status", "origin", "parent", "warm", "from_chunk",
                                           "trials", "live", "checkpoint", "chunks", "last",
                                           "config")}
        return {"experiment": self.experiment_dir, "updated": time.time(), "runs": runs,
                "ops": copy.deepcopy(self.applied), "finished": False}

    def _write_status(self, finished: bool = False) -> None:
        st = self.status()
        st["finished"] = finished
        write_status(self.experiment_dir, st)


def _holds_control_config(trial_dir: str) -> bool:
    import json

    try:
        with open(os.path.join(trial_dir, "params.json")) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and CONTROL_KEY in config


class ControlSearcher(Searcher):
    """Serves control's resume/clone trials, then fixed runs, then the wrapped searcher's."""

    def __init__(self, control: LiveControl) -> None:
        inner = control.inner
        super().__init__(metric=getattr(inner, "metric", None), mode=getattr(inner, "mode", None))
        self.control = control

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        inner = self.control.inner
        if inner is not None:
            # the wrapped searcher keeps its own space when Tune hands none (param_space={})
            inner.set_search_properties(metric, mode, config, **spec)
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        return self.control.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.control.inner_trials:
            self.control.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.control.on_complete(trial_id, error)
        if trial_id in self.control.inner_trials:
            self.control.inner.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        blob = None
        if self.control.inner is not None:
            fd, tmp = tempfile.mkstemp()
            os.close(fd)
            try:
                self.control.inner.save(tmp)
                with open(tmp, "rb") as f:
                    blob = f.read()
            except NotImplementedError:
                blob = None
            finally:
                os.unlink(tmp)
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"format": "rafiki_ray.control/1", "inner": blob}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            data = pickle.load(f)
        if data.get("inner") is not None and self.control.inner is not None:
            fd, tmp = tempfile.mkstemp()
            with os.fdopen(fd, "wb") as f:
                f.write(data["inner"])
            try:
                self.control.inner.restore(tmp)
            finally:
                os.unlink(tmp)


class ControlCallback(Callback):
    """Polls the journal each step; its state rides in Tune's experiment snapshot."""

    def __init__(self, control: LiveControl) -> None:
        self.control = control
        self._restored = False

    def setup(self, **info: Any) -> None:
        # a restored experiment keeps the status its driver left until its state is back
        if read_status(self.control.experiment_dir) is None:
            self.control._write_status()

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self._restored:  # the first step after Tuner.restore: before any new trial
            self._restored = False
            self.control.discard_orphans({t.trial_id for t in trials})
        self.control.poll()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.control.on_result(trial.trial_id, result)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any,
                      **info: Any) -> None:
        self.control.on_checkpoint(trial.trial_id, checkpoint.path)

    # A ConcurrencyLimiter (max_concurrent_trials) passes on_trial_complete to the searcher
    # only for trials in its live set; a trial that yielded its slot before a driver crash
    # comes back outside that set, so the run also learns its end from Tune's callbacks
    # (on_complete ignores a second notice).
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.control.on_complete(trial.trial_id, False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.control.on_complete(trial.trial_id, True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.control.poll()
        self.control._write_status(finished=True)

    def get_state(self) -> dict | None:
        return self.control.get_state()

    def set_state(self, state: dict) -> None:
        self.control.set_state(state)
        self._restored = True


class ControlStopper(Stopper):
    """Stops the live trial of a run that was stopped or deleted, at its next result."""

    def __init__(self, control: LiveControl) -> None:
        self.control = control

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.control.should_stop(trial_id)

    def stop_all(self) -> bool:
        return False
