"""Spaces, objectives, drivers and Tune/crash fixtures used by :class:`SearcherContract`
(see :mod:`rafiki_ray.testing.searchers`)."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rafiki_ray.spaces import (
    Arch,
    Categorical,
    Conditional,
    Fixed,
    Float,
    Int,
    Normal,
    Option,
    Policy,
    SearchSpace,
    Subset,
)

__all__ = [
    "OPT_SPACE",
    "SPACES",
    "check_types",
    "crash_experiment",
    "crash_introspect",
    "drive",
    "objective",
    "opt_objective",
]

# ---------------------------------------------------------------------------------------
# spaces and objectives


def _tune_space() -> dict[str, Any]:
    from ray import tune

    return {
        "x": tune.uniform(-2.0, 2.0),
        "lr": tune.loguniform(1e-4, 1e-1),
        "n": tune.randint(1, 5),
        "q": tune.qrandint(0, 20, 5),
        "qf": tune.quniform(0.0, 1.0, 0.25),
        "act": tune.choice(["relu", "tanh", "gelu"]),
        "nested": {"y": tune.uniform(0.0, 1.0), "depth": tune.randint(2, 6)},
        "const": 7,
    }


def _conditional_space() -> SearchSpace:
    inner = Conditional(
        (
            Option("plain", SearchSpace({})),
            Option("warmup", SearchSpace({"steps": Int(10, 1000, log=True)})),
        )
    )
    return SearchSpace(
        {
            "x": Float(0.0, 1.0),
            "optimizer": Conditional(
                (
                    Option(
                        "sgd",
                        SearchSpace(
                            {"momentum": Float(0.0, 0.99), "nesterov": Categorical((True, False))}
                        ),
                    ),
                    Option("adam", SearchSpace({"beta1": Float(0.8, 0.999), "schedule": inner})),
                    Option("lbfgs", SearchSpace({})),
                ),
                weights=(0.5, 0.3, 0.2),
            ),
            "model": {"depth": Int(1, 4), "act": Categorical(("relu", "tanh"))},
            "seed": Fixed(3),
        }
    )


def _adapted_space() -> SearchSpace:
    """Parameters outside the plain set, as the adapters produce them: a Rafiki policy and
    architecture knob, an NNI nested choice (two levels) and ``input_choice``, and a Polyaxon
    ``logspace`` and ``values``."""
    from rafiki_ray.knobs import ArchKnob, PolicyKnob
    from rafiki_ray.spaces import from_knobs, from_nni, from_polyaxon

    def nni(kind: str, value: Any) -> dict[str, Any]:
        return {"_type": kind, "_value": value}

    knobs = from_knobs(
        {
            "early_stop": PolicyKnob("EARLY_STOP"),
            "cell": ArchKnob([["conv3", "conv5", "pool"], [1, 2], ["relu", "tanh", "gelu"]]),
        }
    )
    leaky = {"_name": "leaky", "slope": nni("uniform", [0.01, 0.3])}
    nested = from_nni(
        {
            "model": nni(
                "choice",
                [
                    {"_name": "cnn", "kernel": nni("choice", [3, 5]),
                     "dropout": nni("quniform", [0.0, 0.5, 0.1])},
                    {"_name": "mlp", "units": nni("randint", [16, 129]),
                     "act": nni("choice", [{"_name": "relu"}, leaky])},
                ],
            ),
            "skip": nni("input_choice", {"candidates": ["a", "b", "c"], "n_chosen": 2}),
        }
    )
    matrix = from_polyaxon({"lr": {"logspace": "-4:-1:4"}, "batch": {"values": [16, 32, 64]}})
    return SearchSpace({**knobs, **nested, **matrix.space})


#: Spaces every searcher must handle (name -> factory of a SearchSpace or Tune param_space).
SPACES: dict[str, Callable[[], Any]] = {
    "float": lambda: SearchSpace({"x": Float(-2.0, 3.0), "y": Float(5.0, 5.5)}),
    "int": lambda: SearchSpace({"n": Int(-3, 7), "m": Int(0, 1)}),
    "log": lambda: SearchSpace(
        {"lr": Float(1e-5, 1e-1, log=True), "units": Int(8, 512, log=True)}
    ),
    "quantised": lambda: SearchSpace(
        {
            "qf": Float(0.0, 1.0, q=0.25),
            "qi": Int(0, 100, q=10),
            "ql": Float(1.0, 1024.0, log=True, q=1.0),
        }
    ),
    "categorical": lambda: SearchSpace(
        {
            "act": Categorical(("relu", "tanh", "gelu")),
            "flag": Categorical((True, False)),
            "mixed": Categorical((1, "two", 3.5, None)),
            "skewed": Categorical(("a", "b"), weights=(0.9, 0.1)),
        }
    ),
    "normal": lambda: SearchSpace(
        {"z": Normal(0.0, 1.0), "ln": Normal(0.0, 0.5, log=True), "qn": Normal(10.0, 3.0, q=1.0)}
    ),
    "conditional": _conditional_space,
    "adapted": _adapted_space,
    "tune": _tune_space,
}


def check_types(space: SearchSpace, config: Mapping[str, Any], path: str = "config") -> None:
    """Assert that ``config`` has plain Python types matching ``space`` (float, int, the
    category's own type) and that the space contains it."""
    assert space.contains(config), f"{path}: {config!r} is outside the space"
    for key, p in space.items():
        v = config[key]
        where = f"{path}.{key}"
        if isinstance(p, SearchSpace):
            check_types(p, v, where)
        elif isinstance(p, (Float, Normal)):
            assert type(v) is float, f"{where}: expected float, got {type(v).__name__}"
        elif isinstance(p, Int):
            assert type(v) is int, f"{where}: expected int, got {type(v).__name__}"
        elif isinstance(p, Categorical):
            assert type(v) is type(p.choices[p.index(v)]), f"{where}: {v!r} has the wrong type"
        elif isinstance(p, Conditional):
            o = p.which(v)
            check_types(p.options[o].space, p.sub_value(v), where)
        elif isinstance(p, Policy):
            assert type(v) is bool, f"{where}: expected bool, got {type(v).__name__}"
        elif isinstance(p, Arch):
            assert type(v) is list, f"{where}: expected a list, got {type(v).__name__}"
            for i, c in enumerate(v):
                want = type(p.items[i][p.index(i, c)])
                assert type(c) is want, f"{where}[{i}]: {c!r} has the wrong type"
        elif isinstance(p, Subset):
            values = v["_value"] if p.emit == "nni" else v
            assert type(values) is list, f"{where}: expected a list, got {type(values).__name__}"
            for c, i in zip(values, p.indices(v)):
                assert type(c) is type(p.candidates[i]), f"{where}: {c!r} has the wrong type"
            if p.emit == "nni":
                assert all(type(i) is int for i in v["_idx"]), f"{where}: _idx holds non-ints"


def objective(space: SearchSpace, config: Mapping[str, Any]) -> float:
    """A deterministic, space-generic loss: distance of the encoded config to 0.3."""
    from rafiki_ray.spaces import Encoder

    x, active = Encoder(space).encode(dict(config))
    return float(np.sum(((x - 0.3) ** 2)[active]))


#: The optimisation problem: a shifted 4-D sphere plus a categorical penalty.
OPT_SPACE = SearchSpace(
    {
        "x0": Float(-5.0, 5.0),
        "x1": Float(-5.0, 5.0),
        "x2": Float(-5.0, 5.0),
        "n": Int(-5, 5),
        "kind": Categorical(("bad", "ok", "good", "worse")),
    }
)
_OPT_CENTRE = (1.3, -2.1, 3.2)
_OPT_PENALTY = {"bad": 4.0, "ok": 1.0, "good": 0.0, "worse": 6.0}


def opt_objective(config: Mapping[str, Any]) -> float:
    return (
        sum((config[f"x{i}"] - c) ** 2 for i, c in enumerate(_OPT_CENTRE))
        + 0.5 * (config["n"] - 2) ** 2
        + _OPT_PENALTY[config["kind"]]
    )


def drive(
    searcher: Any,
    n: int,
    loss: Callable[[Mapping[str, Any]], float],
    *,
    metric: str = "loss",
    prefix: str = "t",
    start: int = 0,
    poison: bool = False,
) -> list[dict[str, Any]]:
    """Suggest, evaluate and report ``n`` trials one after another; returns the configs.

    With ``poison``, one trial in ten fails and one in ten reports NaN, ``+inf`` or ``-inf``."""
    configs = []
    for i in range(start, start + n):
        tid = f"{prefix}{i}"
        cfg = searcher.suggest(tid)
        assert cfg is not None, f"suggest({tid!r}) returned None"
        configs.append(cfg)
        value = loss(cfg)
        if poison and i % 10 == 1:
            searcher.on_trial_complete(tid, None, error=True)
            continue
        if poison and i % 10 == 6:
            value = [float("nan"), float("inf"), -float("inf")][(i // 10) % 3]
        searcher.on_trial_complete(tid, {metric: value})
    return configs


def _run_in_child(searcher: Any, n: int) -> list[dict[str, Any]]:
    """Target of the spawned-process seeding case (module level so it pickles)."""
    return drive(searcher, n, lambda c: objective(searcher.space, c))


def _plain_data(x: Any, path: str = "state") -> None:
    """Assert ``x`` is plain data (JSON types, numpy arrays/scalars), not pickled objects."""
    if x is None or isinstance(x, (bool, int, float, str, np.generic, np.ndarray)):
        return
    if isinstance(x, Mapping):
        for k, v in x.items():
            assert isinstance(k, (str, int)), f"{path}: key {k!r} is not a str"
            _plain_data(v, f"{path}.{k}")
        return
    if isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            _plain_data(v, f"{path}[{i}]")
        return
    raise AssertionError(f"{path}: {type(x).__name__} is not plain data")


def _tune_trainable(config: dict[str, Any]) -> None:
    """Cheap Tune trainable for the end-to-end cases: NaN for one category, as Ray's
    InvalidValuesTest."""
    from ray import tune

    loss = (config["x"] - 0.5) ** 2 + 0.1 * config["n"] + config["nested"]["y"]
    if config["act"] == "gelu":
        loss = float("nan")
    tune.report({"loss": loss})


def _crash_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    for step in range(3):
        time.sleep(config["sleep"])
        tune.report({"loss": (config["x"] - 0.5) ** 2 + config["nested"]["y"] + 0.1 * step})


def crash_experiment(
    searcher: str, searcher_kwargs: dict[str, Any], num_samples: int = 8
) -> tuple[Any, dict[str, Any]]:
    """Factory for :func:`rafiki_ray.testing._crash.run_crash_restore`: a blank searcher
    (space, metric and mode come from the Tuner, so the restored run depends on the
    searcher's saved state for them)."""
    from ray import tune

    from rafiki_ray.testing._crash import load_factory

    space = _tune_space()
    space["sleep"] = 0.3
    return _crash_trainable, {
        "param_space": space,
        "tune_config": tune.TuneConfig(
            search_alg=load_factory(searcher)(seed=0, **searcher_kwargs),
            metric="loss",
            mode="min",
            num_samples=num_samples,
            max_concurrent_trials=2,
            reuse_actors=True,
        ),
    }


def crash_introspect(grid: Any, exp_dir: str) -> dict[str, Any]:
    """Read the searcher state Tune saved through ``Searcher.save`` (newest session)."""
    import glob
    import os

    files = glob.glob(os.path.join(exp_dir, "searcher-state-*.pkl"))
    if not files:
        return {"error": "no searcher-state file"}
    # newest session by name (as Searcher.restore_from_dir): Tune syncs the files from its
    # staging directory together, so their mtimes do not order the sessions
    with open(max(files), "rb") as f:
        payload = pickle.load(f)
    state = payload["state"]
    return {
        "kind": payload["kind"],
        "metric": state["metric"],
        "mode": state["mode"],
        "space": state["space"],
        "n_observations": len(state["observations"]),
        "n_failed": sum(o["loss"] is None for o in state["observations"]),
    }
