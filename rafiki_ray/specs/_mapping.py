"""NNI / T9k tuner, assessor and advisor names -> rafiki_ray searchers and schedulers.

One table per role (:data:`TUNERS`, :data:`ASSESSORS`, :data:`ADVISORS`); the source's class
arguments go, by name, through the alias tables of the target classes (``from_args`` /
``ALIASES``). Where the target is not the source's algorithm the plan carries a ``note``,
which is logged when the experiment is built:

===============  ======================================================================
NNI / T9k name   rafiki_ray
===============  ======================================================================
TPE              ``TPESearch(algo="tpe")``
Random           ``TPESearch(algo="random")``
Anneal           ``TPESearch(algo="anneal")``
Evolution        ``EvolutionSearch``
GridSearch       NNI v2's order (``searchers.grid``): a fixed list when the refinement ends,
                 else ``ProgressiveGridSearch`` (continuous parameters, refined without end)
Batch            the listed configurations of the single ``choice``, unwrapped
GPTuner          ``GPSearch``
Metis            ``GPSearch`` (noted: :data:`METIS_NOTE` lists what is not reproduced)
PBTTuner         ``PBT`` scheduler, random initial population, one run per generation
PPOTuner         ``rafiki_ray.nas.ENASSearch`` for layer_choice / input_choice spaces (noted)
Medianstop       ``MedianStopping`` scheduler
Curvefitting     ``CurveFitting`` scheduler
Hyperband        ``Hyperband`` scheduler (budget in ``TRIAL_BUDGET``) + random search
BOHB             ``Hyperband`` scheduler + ``TPESearch`` (multi-fidelity TPE)
===============  ======================================================================
"""

from __future__ import annotations

import difflib
import importlib
import itertools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces import Categorical, SearchSpace, Subset

__all__ = [
    "ADVISORS",
    "ASSESSORS",
    "TUNERS",
    "Component",
    "Plan",
    "map_advisor",
    "map_assessor",
    "map_tuner",
]

logger = logging.getLogger(__name__)

#: NNI's trial-parameter name for the Hyperband / BOHB budget.
BUDGET_KEY = "TRIAL_BUDGET"
_MODES = {"maximize": "max", "minimize": "min"}


@dataclass(frozen=True)
class Component:
    """A searcher or scheduler to build (fresh for every run): ``target`` is
    ``"module:Class"``; ``args`` (source names) go through ``Class.from_args`` when
    ``from_args`` is set, else straight to the constructor with ``kwargs``."""

    target: str
    args: Mapping[str, Any] = field(default_factory=dict)
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    from_args: bool = True
    path: str = ""

    @property
    def class_name(self) -> str:
        return self.target.rsplit(":", 1)[1]

    def build(self, **extra: Any) -> Any:
        module, name = self.target.split(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise invalid(self.path, f"needs {module}.{name}, which this installation of "
                          "rafiki_ray does not have", name) from exc
        kwargs = {**self.kwargs, **extra}
        try:
            if self.from_args and hasattr(cls, "from_args"):
                return cls.from_args(dict(self.args), **kwargs)
            return cls(**dict(self.args), **kwargs)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{self.path}: {exc}") from None


@dataclass(frozen=True)
class Plan:
    """What a tuner / advisor name means: components and how trials are produced."""

    searcher: Component | None = None
    scheduler: Component | None = None
    mode: str = "max"
    configs: tuple[Mapping[str, Any], ...] | None = None
    note: str | None = None
    pbt_population: int | None = None
    budget: Mapping[str, Any] | None = None


# ----------------------------------------------------------------------------- argument checks


def _args(args: Any, path: str) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args):
        raise invalid_type(path, "must be a dict of named arguments", args)
    return dict(args)


def _pop_mode(args: dict[str, Any], path: str, default: str) -> str:
    value = args.pop("optimize_mode", default)
    if value not in _MODES:
        raise invalid(f"{path}.optimize_mode", "must be 'maximize' or 'minimize'", value)
    return _MODES[value]


def _only(args: Mapping[str, Any], allowed: set[str], path: str, name: str) -> None:
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise invalid(f"{path}.{unknown[0]}",
                      f"is not an argument of {name} (known: {sorted(allowed)})", args[unknown[0]])


def _number(args: Mapping[str, Any], key: str, path: str, lo: float = -math.inf,
            hi: float = math.inf, integer: bool = False) -> None:
    if key not in args:
        return
    v = args[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if integer:
        ok = ok and float(v).is_integer()
    if not ok or not (lo <= v <= hi):
        kind = "an integer" if integer else "a number"
        raise invalid(f"{path}.{key}", f"must be {kind} in [{lo}, {hi}]", v)


def _bool(args: Mapping[str, Any], key: str, path: str) -> None:
    if key in args and not isinstance(args[key], bool):
        raise invalid_type(f"{path}.{key}", "must be true or false", args[key])


# ----------------------------------------------------------------------------- tuners


def _hyperopt(algo: str) -> Callable[..., Plan]:
    def plan(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
        mode = _pop_mode(args, path, "minimize")
        args = {**args, "algorithm_name": algo} if algo != "tpe" else args
        return Plan(searcher=Component("rafiki_ray.searchers.tpe:TPESearch", args,
                                       {"mode": mode, "seed": seed}, path=path), mode=mode)
    return plan


def _evolution(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
    mode = _pop_mode(args, path, "maximize")
    return Plan(searcher=Component("rafiki_ray.searchers.evolution:EvolutionSearch", args,
                                   {"mode": mode, "seed": seed}, path=path), mode=mode)


#: A finite GridSearch sequence up to this long becomes a fixed list of configurations
#: (known trial count); a longer or endless one runs through ProgressiveGridSearch.
_GRID_LIST_LIMIT = 10_000


def _grid(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
    from rafiki_ray.searchers.grid import grid_points, is_finite_grid

    mode = _pop_mode(args, path, "maximize")
    _only(args, set(), path, "GridSearch")
    if space is None:  # the space had errors of its own
        return Plan(mode=mode)
    try:
        finite = is_finite_grid(space)
        configs = tuple(itertools.islice(grid_points(space), _GRID_LIST_LIMIT + 1)) \
            if finite else ()
    except ValueError as exc:
        raise invalid(path, f"GridSearch cannot grid this space: {exc}") from None
    if finite and len(configs) <= _GRID_LIST_LIMIT:
        return Plan(configs=configs, mode=mode)
    return Plan(
        searcher=Component("rafiki_ray.searchers.grid:ProgressiveGridSearch", {},
                           {"mode": mode, "seed": seed}, path=path),
        mode=mode,
        note=None if finite else "GridSearch: the space has continuous parameters, refined "
        "epoch by epoch as NNI v2 does without end; maxTrialNumber or the time limit ends it")


def _batch(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
    mode = _pop_mode(args, path, "maximize")
    _only(args, set(), path, "Batch (it takes no classArgs)")
    if space is None:
        return Plan(mode=mode)
    if len(space) != 1:
        raise invalid(path, "Batch needs a search space of exactly one choice", list(space))
    (key, param), = space.items()
    if not isinstance(param, Categorical):
        raise invalid(path, f"Batch needs a choice; {key!r} is not one", param)
    configs = tuple(dict(v) if isinstance(v, Mapping) else {key: v} for v in param.choices)
    return Plan(configs=configs, mode=mode,
                note=None if all(isinstance(v, Mapping) for v in param.choices) else
                f"Batch: scalar choices of {key!r} are given as {{{key!r}: value}}")


def _gp(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
    mode = _pop_mode(args, path, "maximize")
    return Plan(searcher=Component("rafiki_ray.searchers.gp:GPSearch", args,
                                   {"mode": mode, "seed": seed}, path=path), mode=mode)


_METIS_ARGS = {"no_resampling", "no_candidates", "selection_num_starting_points",
               "cold_start_num", "exploration_probability"}


def _metis(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
    mode = _pop_mode(args, path, "maximize")
    _only(args, _METIS_ARGS, path, "Metis")
    _bool(args, "no_resampling", path)
    _bool(args, "no_candidates", path)
    _number(args, "exploration_probability", path, 0, 1)
    _number(args, "cold_start_num", path, 1, integer=True)
    _number(args, "selection_num_starting_points", path, 1, integer=True)
    gp_args = {k: int(args[k]) for k in ("cold_start_num", "selection_num_starting_points")
               if k in args}
    unused = sorted(set(args) - set(gp_args))
    note = METIS_NOTE + (f"; arguments {unused} have no effect" if unused else "")
    if args.get("no_resampling") is False:
        logger.warning("%s: no_resampling is false, but outlier re-sampling is not reproduced: "
                       "%s", path, METIS_NOTE)
    return Plan(searcher=Component("rafiki_ray.searchers.gp:GPSearch", gp_args,
                                   {"mode": mode, "seed": seed}, path=path), mode=mode,
                note=note)


#: What running NNI's Metis tuner as GPSearch does not reproduce (a GPSearch option cannot
#: provide the re-sampling cheaply: it needs one leave-one-out GP per configuration and a
#: searcher that proposes a configuration again).
METIS_NOTE = (
    "Metis runs as GPSearch (Gaussian-process BO with expected improvement after "
    "cold_start_num initial points). Not reproduced from NNI's MetisTuner: "
    "(1) outlier re-sampling (no_resampling: false): once 50 distinct configurations have "
    "results, one whose result lies more than 2.33 sigma from a GP fitted without it is "
    "proposed again, at most 3 runs per configuration, and several runs of one configuration "
    "are averaged; "
    "(2) the exploitation candidate drawn from Gaussian mixture models of the good and bad "
    "results (after 12 results); "
    "(3) the choice among the exploration, exploitation and re-sampling candidates by the "
    "lowest mean the GP would expect after running each (no_candidates: false); "
    "(4) exploration_probability: with that probability Metis takes that candidate, else the "
    "GP's current optimum"
)


_PBT_ARGS = {"population_size", "factor", "resample_probability", "fraction",
             "all_checkpoint_dir"}


def _pbt(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
    mode = _pop_mode(args, path, "maximize")
    _only(args, _PBT_ARGS, path, "PBTTuner")
    _number(args, "population_size", path, 2, integer=True)
    population = int(args.pop("population_size", 10))
    args.pop("all_checkpoint_dir", None)  # checkpoints live in the experiment directory
    return Plan(
        searcher=Component("rafiki_ray.searchers.tpe:TPESearch", {"algo": "random"},
                           {"mode": mode, "seed": seed}, path=path),
        scheduler=Component("rafiki_ray.schedulers.pbt:PBT", args,
                            {"mode": mode, "seed": seed, "space": space,
                             "time_attr": "generation", "perturbation_interval": 1},
                            path=path),
        mode=mode, pbt_population=population,
    )


_PPO_ARGS = {"trials_per_update", "epochs_per_update", "minibatch_size", "ent_coef", "lr",
             "vf_coef", "max_grad_norm", "gamma", "lam", "cliprange"}


def _ppo(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
    mode = _pop_mode(args, path, "maximize")
    _only(args, _PPO_ARGS, path, "PPOTuner")
    for key in _PPO_ARGS - {"trials_per_update", "epochs_per_update", "minibatch_size"}:
        _number(args, key, path)
    for key in ("trials_per_update", "epochs_per_update", "minibatch_size"):
        _number(args, key, path, 1, integer=True)
    plain = [k for k, p in (space or {}).items()
             if not (isinstance(p, Subset) or getattr(p, "emit", None) == "nni")]
    if plain:
        raise invalid(path, "PPOTuner searches architecture spaces only (layer_choice, "
                      "input_choice); these parameters are neither", plain)
    return Plan(
        searcher=Component("rafiki_ray.nas:ENASSearch", {}, {"mode": mode, "seed": seed},
                           from_args=False, path=path),
        mode=mode,
        note="PPOTuner runs as rafiki_ray.nas.ENASSearch (REINFORCE controller, ENAS; "
             f"PPO's arguments {sorted(args)} have no effect)",
    )


#: NNI / T9k tuner name -> plan builder. Aliases: NNI's class-style names.
TUNERS: dict[str, Callable[..., Plan]] = {
    "TPE": _hyperopt("tpe"),
    "Random": _hyperopt("random_search"),
    "Anneal": _hyperopt("anneal"),
    "Evolution": _evolution,
    "GridSearch": _grid,
    "Batch": _batch,
    "GPTuner": _gp,
    "Metis": _metis,
    "PBTTuner": _pbt,
    "PPOTuner": _ppo,
}
TUNER_ALIASES = {"BatchTuner": "Batch", "MetisTuner": "Metis", "GP": "GPTuner",
                 "PBT": "PBTTuner", "PPO": "PPOTuner", "RandomSearch": "Random",
                 "Grid": "GridSearch"}


def _lookup(name: Any, table: Mapping[str, Any], aliases: Mapping[str, str], path: str,
            what: str) -> str:
    if not isinstance(name, str) or not name:
        raise invalid_type(path, f"must be the name of a {what}", name)
    if name in table:
        return name
    if name in aliases:
        return aliases[name]
    known = sorted(table) + sorted(aliases)
    hint = difflib.get_close_matches(name, known, n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise invalid(path, f"is not a known {what}{extra}; known: {sorted(table)}", name)


def map_tuner(name: Any, args: Any, space: SearchSpace, path: str = "tuner",
              seed: int | None = None) -> Plan:
    """The plan for tuner ``name`` with class arguments ``args`` on ``space``."""
    key = _lookup(name, TUNERS, TUNER_ALIASES, f"{path}.name", "tuner")
    return TUNERS[key](_args(args, f"{path}.classArgs"), space, f"{path}.classArgs", seed)


# ----------------------------------------------------------------------------- assessors


def _medianstop(args: dict[str, Any], path: str, seed: int | None) -> Component:
    _only(args, {"optimize_mode", "start_step"}, path, "Medianstop")
    return Component("rafiki_ray.schedulers.median_stopping:MedianStopping", args,
                     {"metric": "default", "seed": seed,
                      **({} if "optimize_mode" in args else {"mode": "max"})}, path=path)


def _curvefitting(args: dict[str, Any], path: str, seed: int | None) -> Component:
    _only(args, {"epoch_num", "start_step", "threshold", "gap", "optimize_mode"}, path,
          "Curvefitting")
    if args.get("optimize_mode", "maximize") != "maximize":
        raise invalid(f"{path}.optimize_mode", "Curvefitting supports maximize only",
                      args["optimize_mode"])
    args.pop("optimize_mode", None)
    if "epoch_num" not in args:
        args["epoch_num"] = 20  # NNI's default
    return Component("rafiki_ray.schedulers.curve_fitting:CurveFitting", args,
                     {"metric": "default", "mode": "max", "seed": seed}, path=path)


ASSESSORS: dict[str, Callable[..., Component]] = {
    "Medianstop": _medianstop,
    "Curvefitting": _curvefitting,
}
ASSESSOR_ALIASES = {"MedianStop": "Medianstop", "CurveFitting": "Curvefitting"}


def map_assessor(name: Any, args: Any, path: str = "assessor",
                 seed: int | None = None) -> Component:
    key = _lookup(name, ASSESSORS, ASSESSOR_ALIASES, f"{path}.name", "assessor")
    return ASSESSORS[key](_args(args, f"{path}.classArgs"), f"{path}.classArgs", seed)


# ----------------------------------------------------------------------------- advisors


def _hyperband_plan(max_iter: Any, eta: Any, mode: str, path: str, seed: int | None,
                    searcher: Component) -> Plan:
    scheduler = Component(
        "rafiki_ray.schedulers.hyperband:Hyperband", {},
        {"max_iter": max_iter, "eta": eta, "resource": {"name": BUDGET_KEY, "type": "int"},
         "metric": "default", "mode": mode, "seed": seed}, from_args=False, path=path)
    return Plan(searcher=searcher, scheduler=scheduler, mode=mode,
                budget={"max_iter": max_iter, "eta": eta, "name": BUDGET_KEY})


def _hyperband(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
    mode = _pop_mode(args, path, "maximize")
    _only(args, {"R", "eta", "exec_mode"}, path, "Hyperband")
    _number(args, "R", path, 1)
    _number(args, "eta", path, 1.000001)
    if args.get("exec_mode", "parallelism") not in ("parallelism", "serial"):
        raise invalid(f"{path}.exec_mode", "must be 'parallelism' or 'serial'", args["exec_mode"])
    searcher = Component("rafiki_ray.searchers.tpe:TPESearch", {"algo": "random"},
                         {"mode": mode, "seed": seed, "metric": "default"}, path=path)
    return _hyperband_plan(args.get("R", 60), args.get("eta", 3), mode, path, seed, searcher)


_BOHB_TPE = {"min_points_in_model": "min_points_in_model", "random_fraction": "random_fraction"}
_BOHB_UNUSED = {"top_n_percent", "num_samples", "bandwidth_factor", "min_bandwidth",
                "config_space"}


def _bohb(args: dict[str, Any], space: SearchSpace, path: str, seed: int | None) -> Plan:
    mode = _pop_mode(args, path, "maximize")
    _only(args, {"min_budget", "max_budget", "eta", *_BOHB_TPE, *_BOHB_UNUSED}, path, "BOHB")
    _number(args, "min_budget", path, 0)
    _number(args, "max_budget", path, 0)
    _number(args, "eta", path, 1.000001)
    _number(args, "random_fraction", path, 0, 1)
    _number(args, "min_points_in_model", path, 1, integer=True)
    tpe = {_BOHB_TPE[k]: args[k] for k in _BOHB_TPE if k in args}
    if "min_points_in_model" in tpe:
        tpe["min_points_in_model"] = int(tpe["min_points_in_model"])
    searcher = Component("rafiki_ray.searchers.tpe:TPESearch", tpe,
                         {"mode": mode, "seed": seed, "metric": "default"}, path=path)
    plan = _hyperband_plan(args.get("max_budget", 3), args.get("eta", 3), mode, path, seed,
                           searcher)
    unused = sorted(set(args) & _BOHB_UNUSED)
    note = "BOHB runs as Hyperband + multi-fidelity TPESearch"
    if "min_budget" in args:
        note += "; min_budget follows from max_budget / eta**s_max (Hyperband's brackets)"
    if unused:
        note += f"; arguments {unused} have no effect"
    return Plan(searcher=plan.searcher, scheduler=plan.scheduler, mode=mode, budget=plan.budget,
                note=note)


ADVISORS: dict[str, Callable[..., Plan]] = {"Hyperband": _hyperband, "BOHB": _bohb}


def map_advisor(name: Any, args: Any, space: SearchSpace, path: str = "advisor",
                seed: int | None = None) -> Plan:
    key = _lookup(name, ADVISORS, {}, f"{path}.name", "advisor")
    return ADVISORS[key](_args(args, f"{path}.classArgs"), space, f"{path}.classArgs", seed)
