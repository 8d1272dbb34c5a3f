"""``tune_model``: a Rafiki train job as one Tune experiment.

Each trial is a Tune trial running :func:`rafiki_ray.models._trial.run_trial` (one model
instance per trial). The advisor is chosen as Rafiki chose it
(:func:`rafiki_ray.models.advisors.choose_advisor`), or named with ``advisor=``, or replaced
by any Tune searcher (``search_alg=``); any Tune scheduler can be added. The budget is
enforced as described in :mod:`rafiki_ray.models._budget`. The best trials' parameters are
copied to ``<experiment>/rafiki_best/`` (``index.json`` plus one folder per rank), so
:func:`rafiki_ray.models.deploy` works from the directory after the driver is gone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray._rng import check_seed
from rafiki_ray.models._budget import Budget, BudgetClock, BudgetStopper, parse_budget
from rafiki_ray.models._trial import KNOBS_FILE, PARAMS_FILE, run_trial
from rafiki_ray.models.advisors import (
    AdvisorChoice,
    AdvisorSearch,
    _policies,
    build_inner,
    check_advisor,
    choose_advisor,
)

__all__ = ["BEST_DIR", "BestTrial", "TuneModelResult", "build_experiment", "tune_model"]

logger = logging.getLogger(__name__)

BEST_DIR = "rafiki_best"
TABLE_FILE = "rafiki_trials.csv"
_TABLE_COLUMNS = ("trial_id", "score", "phase", "partial", "params_type", "shared_from",
                  "train_time_s", "time_total_s")


@dataclass(frozen=True)
class BestTrial:
    """One of the best trials: its rank (0 = best), score, knobs and parameter file."""

    rank: int
    trial_id: str
    score: float
    knobs: dict[str, Any]
    params_path: str


@dataclass
class TuneModelResult:
    """What :func:`tune_model` returns."""

    result_grid: Any
    table: Any  # pandas.DataFrame, one row per trial
    best: list[BestTrial]
    advisor: AdvisorChoice
    experiment_path: str
    model_class: type | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    #: the validation data the trials were scored on (``deploy`` chooses members with it)
    val: Any = field(default=None, repr=False, compare=False)

    @property
    def best_score(self) -> float:
        return self.best[0].score if self.best else float("nan")

    @property
    def best_knobs(self) -> dict[str, Any] | None:
        return self.best[0].knobs if self.best else None


def _class_path(cls: type) -> str:
    from rafiki_ray.models.model import model_class_path

    return model_class_path(cls)


def _check_model_class(model_class: Any) -> dict[str, Any]:
    from rafiki_ray.models.model import BaseModel

    if not isinstance(model_class, type):
        raise invalid_type("model_class", "must be a class (a BaseModel subclass)", model_class)
    if not issubclass(model_class, BaseModel):
        missing = [m for m in ("get_knob_config", "train", "evaluate", "predict",
                               "dump_parameters", "load_parameters")
                   if not callable(getattr(model_class, m, None))]
        if missing:
            raise invalid_type("model_class", f"lacks the model methods {missing}",
                               model_class.__name__)
    config = model_class.get_knob_config()
    from rafiki_ray.spaces import from_knobs

    from_knobs(config, f"{model_class.__name__}.get_knob_config()")  # validates
    return config


@dataclass
class _Experiment:
    trainable: Any
    tuner_kwargs: dict[str, Any]
    choice: AdvisorChoice
    budget: Budget
    clock: BudgetClock
    store: Any


def build_experiment(
    model_class: type,
    train: Any,
    val: Any,
    budget: Any = None,
    *,
    advisor: str | None = None,
    search_alg: Any = None,
    scheduler: Any = None,
    seed: int | None = None,
    max_concurrent_trials: int | None = None,
    cpus_per_trial: float = 1.0,
    grace_period_s: float | None = None,
    progress: bool | Any = True,
    progress_interval_s: float = 10.0,
    store: Any = None,
    final_fraction: float = 0.25,
    share_decay: float = 4.0,
    n_initial: int | None = None,
) -> _Experiment:
    """The trainable and ``Tuner`` arguments of a ``tune_model`` run (Ray must be running
    when ``store`` is ``None`` and the advisor shares parameters)."""
    from ray import tune

    knob_config = _check_model_class(model_class)
    b = parse_budget(budget)
    seed = check_seed(seed)
    if advisor is not None and search_alg is not None:
        raise invalid("advisor", "give either advisor= or search_alg=, not both", advisor)
    from rafiki_ray.spaces import from_knobs

    space = from_knobs(knob_config)
    policies = _policies(knob_config)
    if search_alg is not None:
        from ray.tune.search import Searcher

        if not isinstance(search_alg, Searcher):
            raise invalid_type("search_alg", "must be a ray.tune.search.Searcher", search_alg)
        choice = AdvisorChoice("CUSTOM", f"search_alg={type(search_alg).__name__} given")
        inner = search_alg
    elif advisor is not None:
        name = check_advisor(advisor, knob_config)
        choice = AdvisorChoice(name, f"advisor={name!r} given")
        inner = build_inner(name, space, seed=seed, budget=b, n_initial=n_initial)
    else:
        choice = choose_advisor(knob_config, b)
        inner = build_inner(choice.name, space, seed=seed, budget=b, n_initial=n_initial)
    logger.info("advisor %s: %s", choice.name, choice.reason)
    if grace_period_s is None:
        grace_period_s = max(5.0, 0.1 * b.time_s)
    if isinstance(grace_period_s, bool) or not isinstance(grace_period_s, (int, float)) \
            or grace_period_s < 0:
        raise invalid("grace_period_s", "must be a number >= 0", grace_period_s)
    clock = BudgetClock(b.time_s, grace_period_s)
    search = AdvisorSearch(
        inner, advisor=choice.name, policies=policies, clock=clock, trial_count=b.trial_count,
        forward_space=search_alg is not None, final_fraction=final_fraction,
        share_decay=share_decay, seed=seed,
    )
    if max_concurrent_trials is not None and (
            isinstance(max_concurrent_trials, bool) or not isinstance(max_concurrent_trials, int)
            or max_concurrent_trials < 1):
        raise invalid("max_concurrent_trials", "must be None or an int >= 1",
                      max_concurrent_trials)
    resources: dict[str, float] = {"cpu": float(cpus_per_trial)}
    if b.gpu_count > 0:
        slots = max_concurrent_trials or max(1, math.ceil(b.gpu_count))
        resources["gpu"] = min(1.0, b.gpu_count / slots)
    if choice.name in ("BAYES_OPT_WITH_PARAM_SHARING", "ENAS", "CUSTOM") and store is None:
        raise invalid("store", f"advisor {choice.name} shares parameters: a ParamStore "
                          "is needed", None)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, model_class=model_class, train=train, val=val,
                             store=store, policies=policies),
        resources,
    )
    callbacks: list[Any] = [clock]
    if progress:
        if isinstance(progress, tune.Callback):
            callbacks.append(progress)
        else:
            from rafiki_ray.progress import ProgressCallback

            callbacks.append(ProgressCallback(
                metric="score", mode="max", total_trials=b.trial_count,
                time_budget_s=b.time_s, interval_s=progress_interval_s,
                write=logging.getLogger("rafiki_ray.progress").info
                if progress == "log" else None))
    param_space: dict[str, Any] = {}
    if search_alg is not None:
        # a plain Tune searcher needs the space; policies are the advisor's, here all off
        param_space = {k: (False if k in policies else v)
                       for k, v in space.to_tune().items()}
    tuner_kwargs = {
        "param_space": param_space,
        "tune_config": tune.TuneConfig(
            metric="score", mode="max", search_alg=search, scheduler=scheduler,
            num_samples=b.trial_count if b.trial_count is not None else -1,
            max_concurrent_trials=max_concurrent_trials, reuse_actors=True,
        ),
        # every checkpoint is kept (Tune's default): with num_to_keep, each model checkpoint()
        # beyond it forces an experiment snapshot (measured: a warning per PyFeedForward epoch)
        "run_config": tune.RunConfig(stop=BudgetStopper(clock), callbacks=callbacks, verbose=0),
    }
    return _Experiment(trainable, tuner_kwargs, choice, b, clock, store)


def tune_model(
    model_class: type,
    train: Any,
    val: Any,
    budget: dict[str, Any] | None = None,
    *,
    address: str | None = None,
    advisor: str | None = None,
    search_alg: Any = None,
    scheduler: Any = None,
    seed: int | None = None,
    storage_path: str | None = None,
    name: str | None = None,
    k: int = 3,
    resume: bool = False,
    **options: Any,
) -> TuneModelResult:
    """Tune ``model_class`` on ``train``, scored on ``val``, within ``budget``.

    Args:
        model_class: a :class:`~rafiki_ray.models.BaseModel` subclass.
        train, val: datasets (a path in Rafiki's formats or ``(X, y)``), passed as they are
            to ``model.train`` / ``model.evaluate`` (large arrays travel through Ray's object
            store once, via ``tune.with_parameters``).
        budget: ``{"TIME_HOURS": 0.1, "MODEL_TRIAL_COUNT": -1, "GPU_COUNT": 0}`` (defaults).
        address: a Ray cluster to connect to when Ray is not running yet (``None``: start
            an embedded one; ``"auto"``: the cluster this machine belongs to).
        advisor: force one of ``ADVISORS`` instead of Rafiki's choice.
        search_alg, scheduler: any Tune ``Searcher`` (instead of the advisor) / scheduler.
        seed: seeds the advisor's searcher and its sharing coin.
        storage_path, name: where Tune writes the experiment (``name`` is generated if None).
        k: how many best trials' parameters to keep in ``<experiment>/rafiki_best``.
        resume: continue the experiment at ``storage_path/name`` if there is one
            (``Tuner.restore``; the budget continues where its last snapshot left it).
        options: ``control`` (default True: the trials can be deleted and cloned while
            the job runs, from :class:`rafiki_ray.control.Control` or ``rafiki-ray ctl``;
            see :mod:`rafiki_ray.models._control`), ``max_concurrent_trials``,
            ``cpus_per_trial``, ``grace_period_s``,
            ``progress`` (True, False, ``"log"`` or a Tune callback), ``progress_interval_s``,
            ``final_fraction`` (BAYES_OPT, with or without parameter sharing, and
            EARLY_STOP: FINAL_TRAIN in the last
            ``min(1 h, final_fraction * TIME_HOURS)``; Rafiki used the last hour whatever the
            budget, see :mod:`rafiki_ray.models.advisors`), ``share_decay``, ``n_initial``
            (see :func:`build_experiment` and :class:`~rafiki_ray.models.AdvisorSearch`).

    Returns:
        :class:`TuneModelResult` with the ``ResultGrid``, a trials table, the best trials
        and the advisor chosen (name and reason).
    """
    import ray
    from ray import tune

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise invalid("k", "must be an int >= 1", k)
    knob_config = _check_model_class(model_class)
    parse_budget(budget)  # fail on a bad budget or advisor before Ray starts
    if advisor is not None:
        check_advisor(advisor, knob_config)
    if not ray.is_initialized():
        # None: an embedded Ray of our own, never another process's cluster on this machine
        ray.init(address=address or "local", log_to_driver=False, configure_logging=False)
    if name is None:
        import uuid

        name = f"rafiki_{model_class.__name__}_{uuid.uuid4().hex[:8]}"
    from rafiki_ray.sharing import ParamStore

    # a named namespace: Ray warns about detached actors in the driver's anonymous one
    store = ParamStore.get_or_create(f"rafiki_params_{name}", namespace="rafiki_ray",
                                     mode="max")
    control = options.pop("control", True)
    if not isinstance(control, bool):
        raise invalid_type("control", "must be a bool", control)
    try:
        exp = build_experiment(model_class, train, val, budget, advisor=advisor,
                               search_alg=search_alg, scheduler=scheduler, seed=seed,
                               store=store, **options)
        path = os.path.abspath(os.path.join(
            storage_path or os.path.expanduser("~/ray_results"), name))
        if control:
            from rafiki_ray.models._control import attach_control

            attach_control(exp, path, knob_config)
        run_config = dataclasses.replace(exp.tuner_kwargs.pop("run_config"),
                                         storage_path=storage_path, name=name)
        if resume and tune.Tuner.can_restore(path):
            logger.info("resuming the experiment at %s", path)
            tuner = tune.Tuner.restore(path, exp.trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            tuner = tune.Tuner(exp.trainable, run_config=run_config, **exp.tuner_kwargs)
        grid = tuner.fit()
    finally:
        store.shutdown()
    return collect_result(grid, model_class=model_class, choice=exp.choice, budget=exp.budget,
                          k=k, val=val)


def collect_result(grid: Any, *, model_class: type | None, choice: AdvisorChoice,
                   budget: Budget, k: int = 3, val: Any = None) -> TuneModelResult:
    """Build the result: trials table (also written as ``rafiki_trials.csv``) and the best
    ``k`` trials' parameters copied to ``<experiment>/rafiki_best`` (with the validation
    data's path in ``index.json`` when ``val`` is a path, for ``deploy``)."""
    import pandas as pd

    from rafiki_ray.models._control import deleted_trials

    exp_path = grid.experiment_path
    deleted = deleted_trials(exp_path)
    rows = []
    ranked = []
    for res in grid:
        m = res.metrics or {}
        tid = m.get("trial_id") or os.path.basename(res.path)
        if tid in deleted:  # live control deleted it: its metrics are dropped
            rows.append({**{c: None for c in _TABLE_COLUMNS}, "trial_id": tid,
                         "status": "DELETED"})
            continue
        row = {c: m.get(c) for c in _TABLE_COLUMNS}
        row["trial_id"] = tid
        row["status"] = "ERROR" if res.error else "OK"
        row.update({f"knob/{kk}": v for kk, v in (res.config or {}).items()
                    if not kk.startswith("_")})
        rows.append(row)
        score = m.get("score")
        if res.error is None and res.checkpoint is not None and score is not None \
                and math.isfinite(float(score)):
            ranked.append((float(score), tid, res))
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values("score", ascending=False, na_position="last",
                                  ignore_index=True)
    ranked.sort(key=lambda t: -t[0])
    best_dir = os.path.join(exp_path, BEST_DIR)
    shutil.rmtree(best_dir, ignore_errors=True)
    os.makedirs(best_dir)
    best: list[BestTrial] = []
    for rank, (score, tid, res) in enumerate(ranked[:k]):
        dest = os.path.join(best_dir, f"rank_{rank}")
        res.checkpoint.to_directory(dest)
        with open(os.path.join(dest, KNOBS_FILE)) as f:
            knobs = json.load(f)
        best.append(BestTrial(rank, tid, score, knobs, os.path.join(dest, PARAMS_FILE)))
    index = {
        "model_class": _class_path(model_class) if model_class is not None else None,
        "advisor": choice.to_dict(),
        "budget": budget.to_dict(),
        "val": os.path.abspath(os.fspath(val)) if isinstance(val, (str, os.PathLike)) else None,
        "best": [{"rank": b.rank, "trial_id": b.trial_id, "score": b.score, "knobs": b.knobs,
                  "params": os.path.relpath(b.params_path, best_dir)} for b in best],
    }
    with open(os.path.join(best_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    table.to_csv(os.path.join(exp_path, TABLE_FILE), index=False)
    return TuneModelResult(grid, table, best, choice, exp_path, model_class, budget.to_dict(),
                           val=val)
