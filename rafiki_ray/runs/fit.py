"""``run_fit``: launch a RapidFire config group on Ray Tune (RapidFire's ``Experiment.run_fit``).

Every run is parsed up front (errors name ``config[i]...``); the runs are served by
:class:`rafiki_ray.control.LiveControl` (so they can be stopped, resumed, deleted and cloned
while the experiment runs, from ``rafiki_ray.control.Control`` or ``rafiki-ray ctl``); a
:class:`SuccessiveHalving` group brings its scheduler; TensorBoard event files with HParams
data are written to ``<experiment>/tensorboard``. What is built is an ordinary ``tune.Tuner``
(:func:`prepare` returns its pieces); :func:`restore_fit` continues one after a driver crash.
"""

from __future__ import annotations

import os
from typing import Any

from ray import tune

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import check_seed
from rafiki_ray.runs._config import parse_config
from rafiki_ray.runs._trainable import train_run, user_config
from rafiki_ray.runs.groups import plan
from rafiki_ray.runs.spec import MLSpec

__all__ = ["prepare", "restore_fit", "run_fit", "trial_dirname"]


def trial_dirname(trial: Any) -> str:
    """``run-0003_<trial_id>``: short trial directories named by run."""
    run = (trial.config.get("__rafiki_run") or {}).get("id", "trial")
    return f"{run}_{trial.trial_id}"


def _check_metric(metric: str, runs: list[dict], spec: MLSpec, path: str) -> None:
    if metric == "loss" or metric in spec.metrics:
        return
    for i, r in enumerate(runs):
        if metric not in r["named_metrics"]:
            raise invalid(path, f"is neither 'loss', a custom metric of the spec, nor in "
                          f"config[{i}].named_metrics {r['named_metrics']}", metric)


def prepare(
    spec: MLSpec,
    config_group: Any,
    train_data: Any,
    eval_data: Any,
    *,
    storage_path: str,
    name: str,
    num_chunks: int = 4,
    seed: int | None = 42,
    metric: str = "loss",
    mode: str = "min",
    scheduler: Any = None,
    max_concurrent_trials: int | None = None,
    tensorboard: bool = True,
    callbacks: list | None = None,
    num_to_keep: int | None = None,
    verbose: int | None = None,
    cpus_per_run: float = 1.0,
    progress: Any = False,
    round_robin: bool = True,
) -> tuple[Any, dict[str, Any], Any]:
    """``(trainable, tuner_kwargs, control)`` for ``tune.Tuner(trainable, **tuner_kwargs)``.

    ``cpus_per_run`` below 1 lets more runs than cores train side by side, chunk by chunk
    (e.g. 0.25: eight runs on two cores, the operating system sharing the cores between them).

    ``num_to_keep``: checkpoints kept per trial (None: all). A run always keeps its latest,
    which resume needs; a warm clone copies its parent's checkpoint when it is made.

    ``progress``: ``True`` adds :class:`rafiki_ray.progress.ProgressCallback` (trials by
    state, best ``metric``, elapsed time; a notebook output or terminal line updated in place),
    a Tune callback is added as given, ``False`` shows nothing.

    ``round_robin`` (default): when more runs wait than there are slots, a run yields its slot
    after each chunk and the waiting run with the fewest chunks done trains next
    (:class:`rafiki_ray.schedulers.RoundRobin` around ``scheduler``, RapidFire's chunk-wise
    rotation); False: a run keeps its slot until it ends.
    """
    from rafiki_ray.control.controller import LiveControl

    if not isinstance(spec, MLSpec):
        raise invalid_type("spec", "must be an MLSpec", spec)
    if isinstance(num_chunks, bool) or not isinstance(num_chunks, int) or num_chunks < 1:
        raise invalid("num_chunks", "must be an int >= 1", num_chunks)
    seed = check_seed(seed)
    p = plan(config_group)
    parsed = [parse_config(r, f"config[{i}]") for i, r in enumerate(p.runs)]
    if p.sha is not None:
        if scheduler is not None:
            raise invalid("scheduler", "a SuccessiveHalving group brings its own scheduler",
                          scheduler)
        metric, mode = p.sha.metric, p.sha.direction
        scheduler = p.sha.scheduler(num_chunks, seed=seed)
    if mode not in ("min", "max"):
        raise invalid("mode", "must be 'min' or 'max'", mode)
    _check_metric(metric, parsed, spec, "metric" if p.sha is None else
                  "SuccessiveHalving.metric")
    n = len(train_data[0]) if isinstance(train_data, (tuple, list)) else len(train_data)
    if n < num_chunks:
        raise invalid("num_chunks", f"exceeds the {n} training rows", num_chunks)
    exp_dir = os.path.join(os.path.abspath(storage_path), name)
    control = LiveControl(exp_dir, runs=p.runs, validate=lambda c: parse_config(
        user_config(c), "clone"), seed=seed)
    if isinstance(cpus_per_run, bool) or not isinstance(cpus_per_run, (int, float)) or not (
            0 < cpus_per_run):
        raise invalid("cpus_per_run", "must be a number > 0", cpus_per_run)
    trainable = tune.with_resources(
        tune.with_parameters(train_run, spec=spec, train_data=train_data, eval_data=eval_data,
                             num_chunks=num_chunks, seed=seed or 0), {"cpu": cpus_per_run})
    from rafiki_ray.runs._history import ResultHistory

    cbs = [control.callback, ResultHistory(), *(callbacks or [])]
    if isinstance(progress, tune.Callback):
        cbs.append(progress)
    elif progress:
        from rafiki_ray.progress import ProgressCallback

        cbs.append(ProgressCallback(metric=metric, mode=mode))
    if tensorboard:
        from rafiki_ray.tensorboard import HParamsCallback

        cbs.append(HParamsCallback(exp_dir, exclude=control.is_deleted,
                                   metrics=[metric, "loss", "train_loss"]))
    if not isinstance(round_robin, bool):
        raise invalid_type("round_robin", "must be a bool", round_robin)
    inner = scheduler
    if round_robin:
        from rafiki_ray.schedulers.round_robin import RoundRobin

        scheduler = RoundRobin(inner, waiting=control.has_waiting, should_stop=control.should_stop)
    tune_config = tune.TuneConfig(search_alg=control.searcher, scheduler=scheduler,
                                  num_samples=-1, max_concurrent_trials=max_concurrent_trials,
                                  trial_dirname_creator=trial_dirname, reuse_actors=True)
    if inner is None:
        tune_config.metric, tune_config.mode = metric, mode
    run_config = tune.RunConfig(storage_path=os.path.abspath(storage_path), name=name,
                                callbacks=cbs, stop=control.stopper,
                                checkpoint_config=tune.CheckpointConfig(num_to_keep=num_to_keep),
                                **({} if verbose is None else {"verbose": verbose}))
    return trainable, {"tune_config": tune_config, "run_config": run_config}, control


def run_fit(spec: MLSpec, config_group: Any, train_data: Any, eval_data: Any,
            **kwargs: Any) -> Any:
    """Run the group to the end; returns Tune's ``ResultGrid``. See :func:`prepare`."""
    trainable, tuner_kwargs, _ = prepare(spec, config_group, train_data, eval_data, **kwargs)
    return tune.Tuner(trainable, **tuner_kwargs).fit()


def restore_fit(experiment_dir: str, spec: MLSpec, train_data: Any, eval_data: Any, *,
                num_chunks: int, seed: int | None = 42, cpus_per_run: float = 1.0) -> Any:
    """Continue an interrupted ``run_fit`` (``Tuner.restore``) with the same spec, data and
    ``num_chunks``/``seed``/``cpus_per_run``; journaled control operations that Tune's last
    snapshot had not applied are applied now, each once."""
    trainable = tune.with_resources(
        tune.with_parameters(train_run, spec=spec, train_data=train_data, eval_data=eval_data,
                             num_chunks=num_chunks, seed=check_seed(seed) or 0),
        {"cpu": cpus_per_run})
    return tune.Tuner.restore(experiment_dir, trainable, resume_unfinished=True).fit()


def runs_of(config_group: Any) -> list[dict[str, Any]]:
    """The parsed run configs a group launches."""
    return [parse_config(r, f"config[{i}]") for i, r in enumerate(plan(config_group).runs)]
