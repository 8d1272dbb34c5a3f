"""``Experiment``: one validated, frozen description of an experiment that runs as an ordinary
``tune.Tuner`` (see :meth:`Experiment.tuner`), whichever file it came from.

``Experiment.run()`` adds what the file formats promise on top of the Tuner: the T9k phases
(``rafiki_status.json``, :mod:`._status`), Polyaxon's experiment-wide early stopping (a Tune
``Stopper`` whose ``stop_all`` ends every trial), and a directory that ``resume`` continues.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces import SearchSpace
from rafiki_ray.specs._command import (
    CommandTrial,
    FunctionTrial,
    run_command_trial,
    run_function_trial,
)
from rafiki_ray.specs._mapping import Component
from rafiki_ray.specs._status import (
    FINISHED_STATES,
    STATUS_FILE,
    EarlyStopper,
    StatusTracker,
    write_status,
)

__all__ = ["EXPERIMENT_FILE", "Experiment", "RunOutcome"]

logger = logging.getLogger(__name__)

#: Written into the experiment directory: where the spec file is (``resume`` reloads it).
EXPERIMENT_FILE = "rafiki_experiment.json"


@dataclass(frozen=True)
class RunOutcome:
    """What :meth:`Experiment.run` returns."""

    phase: str
    path: str
    results: Any  # ray.tune.ResultGrid
    best: dict[str, Any] | None
    early_stopped: dict[str, Any] | None = None


@dataclass(frozen=True)
class Experiment:
    """A validated experiment (build it with :func:`rafiki_ray.specs.load_experiment` or by
    hand).

    Args:
        name: the experiment's name (its directory under ``storage_path``).
        space: the search space.
        trial: a :class:`CommandTrial` or :class:`FunctionTrial` (a plain callable is wrapped).
        metric, mode: the metric the trials report and its direction (``"default"`` for
            NNI / T9k, whose trials report one number).
        searcher, scheduler: components to build fresh for each run (``None``: Tune's
            random / grid variant generation, FIFO).
        configs: a fixed list of trial parameters (GridSearch, Batch, Polyaxon grid / random),
            run in order instead of sampling the space.
        num_samples: the number of trials (``-1``: until the time limit; ``None``: 1, or
            every configuration of ``configs``); with ``configs`` a cap.
        max_concurrent: trials at a time.
        time_budget_s: the experiment's time limit.
        max_trial_duration_s: each trial's time limit (NNI ``maxTrialDuration``): a trial
            running longer is stopped, its command killed, its reported results kept, and it
            counts as finished (``EARLY_STOPPED`` in the status, as NNI marks it).
        early_stopping: Polyaxon rules ``{metric, value, optimization}``.
        resources: per trial, ``{"cpu": n, "gpu": m}``.
        seed: seed for searchers and schedulers (``None``: fresh entropy).
        source, spec_path: where it came from (``"t9k"``, ``"nni"``, ``"polyaxon"``, ...).
        notes: what the mapping changed (logged when the Tuner is built).
        storage_path: default parent directory of experiment directories.
    """

    name: str
    space: SearchSpace
    trial: Any
    metric: str | None = "default"
    mode: str = "max"
    searcher: Component | None = None
    scheduler: Component | None = None
    configs: tuple[Mapping[str, Any], ...] | None = None
    num_samples: int | None = None
    max_concurrent: int = 1
    time_budget_s: float | None = None
    max_trial_duration_s: float | None = None
    early_stopping: tuple[Mapping[str, Any], ...] = ()
    resources: Mapping[str, float] = field(default_factory=lambda: {"cpu": 1})
    seed: int | None = None
    source: str = "python"
    spec_path: str | None = None
    notes: tuple[str, ...] = ()
    storage_path: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise invalid("Experiment.name", "must be a non-empty name without '/'", self.name)
        if not isinstance(self.space, SearchSpace):
            raise invalid_type("Experiment.space", "must be a SearchSpace", self.space)
        if callable(self.trial) and not isinstance(self.trial, (CommandTrial, FunctionTrial)):
            object.__setattr__(self, "trial", FunctionTrial(self.trial, experiment_id=self.name))
        if not isinstance(self.trial, (CommandTrial, FunctionTrial)):
            raise invalid_type("Experiment.trial", "must be a CommandTrial, a FunctionTrial or "
                               "a callable", self.trial)
        if self.mode not in ("max", "min"):
            raise invalid("Experiment.mode", "must be 'max' or 'min'", self.mode)
        if self.num_samples is not None and (
                isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int)
                or (self.num_samples < 1 and self.num_samples != -1)):
            raise invalid("Experiment.num_samples", "must be None, an int >= 1 or -1",
                          self.num_samples)
        if isinstance(self.max_concurrent, bool) or not isinstance(self.max_concurrent, int) \
                or self.max_concurrent < 1:
            raise invalid("Experiment.max_concurrent", "must be an int >= 1",
                          self.max_concurrent)
        if self.time_budget_s is not None and (
                isinstance(self.time_budget_s, bool)
                or not isinstance(self.time_budget_s, (int, float)) or self.time_budget_s <= 0):
            raise invalid("Experiment.time_budget_s", "must be None or > 0", self.time_budget_s)
        if self.max_trial_duration_s is not None and (
                isinstance(self.max_trial_duration_s, bool)
                or not isinstance(self.max_trial_duration_s, (int, float))
                or not self.max_trial_duration_s > 0):
            raise invalid("Experiment.max_trial_duration_s", "must be None or > 0",
                          self.max_trial_duration_s)
        if self.configs is not None:
            if not self.configs:
                raise invalid("Experiment.configs", "must not be empty", self.configs)
            object.__setattr__(self, "configs", tuple(dict(c) for c in self.configs))
        object.__setattr__(self, "early_stopping", tuple(dict(r) for r in self.early_stopping))
        object.__setattr__(self, "notes", tuple(self.notes))
        for key, value in dict(self.resources).items():
            if key not in ("cpu", "gpu") or isinstance(value, bool) \
                    or not isinstance(value, (int, float)) or value < 0:
                raise invalid(f"Experiment.resources.{key}", "must be cpu / gpu >= 0", value)

    # ------------------------------------------------------------------ derived
    @property
    def expected_trials(self) -> int | None:
        """How many trials the experiment plans (None: until the time limit)."""
        if self.configs is not None:
            n = len(self.configs)
            return n if not self.num_samples or self.num_samples < 1 else min(n, self.num_samples)
        return None if self.num_samples == -1 else (self.num_samples or 1)

    def replace(self, **changes: Any) -> Experiment:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def trainable(self) -> Any:
        """The Tune trainable: the command or function trial with its resources."""
        from ray import tune

        body = run_command_trial if isinstance(self.trial, CommandTrial) else run_function_trial
        fn = tune.with_parameters(body, spec=self.trial,
                                  max_duration_s=self.max_trial_duration_s)
        res = {k: float(v) for k, v in dict(self.resources).items() if v}
        return tune.with_resources(fn, res or {"cpu": 1})

    def param_space(self) -> dict[str, Any]:
        """The Tuner's ``param_space`` (a fixed list of configurations, or the space)."""
        from rafiki_ray.spaces.adapters._configlist import config_list_param_space

        if self.configs is not None:
            configs = list(self.configs)[: self.expected_trials]
            keys = {tuple(sorted(c)) for c in configs}
            wrap = None if len(keys) == 1 else "__parameters__"
            return config_list_param_space(configs, wrap_key=wrap, path="configs")
        if self.searcher is not None:
            return {}  # the searcher holds the space
        return self.space.to_tune()

    def build_components(self) -> tuple[Any, Any]:
        """Fresh (searcher, scheduler) instances."""
        searcher = scheduler = None
        if self.searcher is not None:
            kwargs: dict[str, Any] = {"space": self.space}
            if self.metric is not None and "metric" not in self.searcher.kwargs:
                kwargs["metric"] = self.metric
            kwargs["max_concurrent"] = None
            searcher = self.searcher.build(**kwargs)
        if self.scheduler is not None:
            extra: dict[str, Any] = {}
            if self.metric is not None and "metric" not in self.scheduler.kwargs:
                extra["metric"] = self.metric
            scheduler = self.scheduler.build(**extra)
        return searcher, scheduler

    def tuner(self, *, storage_path: str | None = None, name: str | None = None,
              callbacks: Sequence[Any] = (), verbose: int | None = None,
              stop: Any = None) -> Any:
        """An ordinary ``tune.Tuner`` for this experiment."""
        from ray import tune
        from ray.tune.search import ConcurrencyLimiter

        for note in self.notes:
            logger.info("%s: %s", self.name, note)
        searcher, scheduler = self.build_components()
        if searcher is not None and self.max_concurrent:
            searcher = ConcurrencyLimiter(searcher, max_concurrent=self.max_concurrent)
        num_samples = 1 if self.configs is not None else (self.num_samples or 1)
        if stop is None and self.early_stopping:
            stop = EarlyStopper(list(self.early_stopping))
        return tune.Tuner(
            self.trainable(),
            param_space=self.param_space(),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=num_samples,
                max_concurrent_trials=None if searcher is not None else self.max_concurrent,
                time_budget_s=self.time_budget_s,
            ),
            run_config=tune.RunConfig(
                name=name or self.name,
                storage_path=str(Path(storage_path or self.storage_path
                                      or "~/ray_results").expanduser().resolve()),
                stop=stop,
                callbacks=list(callbacks),
                verbose=verbose,
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )

    # ------------------------------------------------------------------ run
    def experiment_dir(self, storage_path: str | None = None, name: str | None = None) -> Path:
        root = Path(storage_path or self.storage_path or "~/ray_results").expanduser()
        return root.resolve() / (name or self.name)

    def run(self, *, storage_path: str | None = None, name: str | None = None,
            callbacks: Sequence[Any] = (), progress: Any = None,
            verbose: int | None = 0) -> RunOutcome:
        """Run to the end; the phase is DONE, TIMEOUT, ERROR or INTERRUPTED.

        ``progress``: a callable ``(tracker) -> Callback`` for a live display (the CLI's).
        """
        exp_dir = self.experiment_dir(storage_path, name)
        exp_dir.mkdir(parents=True, exist_ok=True)
        (exp_dir / EXPERIMENT_FILE).write_text(json.dumps({
            "name": name or self.name, "source": self.source, "spec_path": self.spec_path,
            "storage_path": str(exp_dir.parent),
        }, indent=1), encoding="utf-8")
        tracker = StatusTracker(str(exp_dir), metric=self.metric, mode=self.mode,
                                final_only=self.trial.final == "explicit", base={
            "phase": "PENDING", "name": name or self.name, "source": self.source,
            "spec_path": self.spec_path, "metric": self.metric, "mode": self.mode,
            "expected_trials": self.expected_trials, "time_budget_s": self.time_budget_s,
            "started": None,
        })
        tracker.set_phase("PENDING")
        stopper = EarlyStopper(list(self.early_stopping)) if self.early_stopping else None
        cbs = [tracker, *callbacks]
        if progress is not None:
            cbs.append(progress(tracker))
        tuner = self.tuner(storage_path=str(exp_dir.parent), name=exp_dir.name, callbacks=cbs,
                           verbose=verbose, stop=stopper)
        return _finish(tuner, stopper, self.time_budget_s, self.expected_trials,
                       str(exp_dir))

    @staticmethod
    def resume(path: str | os.PathLike[str], experiment: Experiment) -> RunOutcome:
        """Continue the experiment in directory ``path`` (after Ctrl-C or a crash): finished
        trials are kept, unfinished ones run again, the searcher continues from its state.
        The callbacks (status, progress display) are the run's own, restored by Tune."""
        from ray import tune

        exp_dir = Path(path).resolve()
        status = json.loads((exp_dir / STATUS_FILE).read_text(encoding="utf-8"))
        # the param_space again: Tune stores tune.sample_from functions as placeholders
        tuner = tune.Tuner.restore(str(exp_dir), trainable=experiment.trainable(),
                                   param_space=experiment.param_space(),
                                   resume_unfinished=True, resume_errored=False,
                                   restart_errored=False)
        # the restored run's callbacks are the pickled ones; refresh the tracker through them
        status["resumed"] = time.time()
        write_status(exp_dir, status)
        return _finish(tuner, None, experiment.time_budget_s, experiment.expected_trials,
                       str(exp_dir))


def _finish(tuner: Any, stopper: EarlyStopper | None,
            budget: float | None, expected: int | None, exp_dir: str) -> RunOutcome:
    from rafiki_ray.specs._status import read_status

    try:
        results = tuner.fit()
    except BaseException as exc:
        status = read_status(exp_dir)
        phase = "INTERRUPTED" if isinstance(exc, KeyboardInterrupt) else "ERROR"
        write_status(exp_dir, {**status, "phase": phase, "ended": time.time(),
                               "error": f"{type(exc).__name__}: {exc}"})
        raise
    # a restored run's tracker is the copy Tune unpickled: read what it wrote
    status = read_status(exp_dir)
    done = sum(1 for s in status.get("trials", {}).values() if s in FINISHED_STATES)
    triggered = stopper.triggered if stopper is not None else None
    triggered = triggered or status.get("early_stopped")
    started = status.get("started") or time.time()
    if status.get("interrupted"):
        phase = "INTERRUPTED"
    elif triggered:
        phase = "DONE"
    elif budget and time.time() - started >= 0.98 * budget and (
            expected is None or done < expected):
        phase = "TIMEOUT"
    else:
        phase = "DONE"
    status.update(phase=phase, ended=time.time(), early_stopped=triggered)
    write_status(exp_dir, status)
    return RunOutcome(phase=phase, path=exp_dir, results=results, best=status.get("best"),
                      early_stopped=triggered)
