"""Polyaxon v0.x ``hptuning`` settings: algorithm sections, metrics and early stopping.

Private helpers of :mod:`rafiki_ray.spaces.adapters.polyaxon` (see its docstring for the
decisions). Each parser returns plain, validated data with Polyaxon's defaults filled in;
names (``optimization``, kernels, acquisition functions, resource types) accept Polyaxon's
``lower``/``UPPER``/``Capitalized`` spellings and are stored in lower case.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type

__all__ = ["ALGORITHM_PARSERS", "parse_declarations", "parse_early_stopping", "parse_int"]


def parse_declarations(value: Any, at: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise invalid_type(at, "must be a dict with string keys", value)
    return dict(value)


#: Largest count (n_experiments, max_iter, concurrency, ...) accepted: a run launches each.
MAX_COUNT = 10**6


def parse_int(value: Any, at: str, minimum: int, *, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise invalid(at, f"must be an integer >= {minimum}", value)
    if value > MAX_COUNT:
        raise invalid(at, f"must be at most {MAX_COUNT}", value)
    return int(value)


def _float(value: Any, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(at, "must be a finite number", value)
    try:
        f = float(value)
    except OverflowError:  # an int beyond float range
        f = math.inf
    if not math.isfinite(f):
        raise invalid(at, "must be a finite number (within float range)", value)
    return f


def _choice(value: Any, at: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value.lower() in allowed:
        return value.lower()
    raise invalid(at, f"must be one of {list(allowed)}", value)


def _section(
    value: Any, at: str, allowed: set[str], required: set[str] | frozenset[str] = frozenset()
) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid_type(at, "must be a dict", value)
    unknown = sorted(set(value) - allowed, key=str)
    if unknown:
        raise invalid(at, f"has unknown keys {unknown}; allowed: {sorted(allowed)}", unknown)
    missing = sorted(k for k in required if value.get(k) is None)
    if missing:
        raise invalid(at, f"is missing {missing}", dict(value))
    return value


def _metric(value: Any, at: str) -> dict[str, Any]:
    m = _section(value, at, {"name", "optimization"}, {"name"})
    if not isinstance(m["name"], str) or not m["name"]:
        raise invalid(f"{at}.name", "must be a non-empty string", m["name"])
    opt = _choice(
        m.get("optimization"), f"{at}.optimization", ("maximize", "minimize"), "maximize"
    )
    return {"name": m["name"], "optimization": opt}


def _n_experiments(value: Any, at: str, *, required: bool) -> dict[str, Any]:
    s = _section(value, at, {"n_experiments"}, {"n_experiments"} if required else set())
    n = s.get("n_experiments")
    return {"n_experiments": None if n is None else parse_int(n, f"{at}.n_experiments", 1)}


def _grid(value: Any, at: str) -> dict[str, Any]:
    return _n_experiments(value, at, required=False)


def _random(value: Any, at: str) -> dict[str, Any]:
    return _n_experiments(value, at, required=True)


def _hyperband(value: Any, at: str) -> dict[str, Any]:
    keys = {"max_iter", "eta", "resource", "metric", "resume"}
    s = _section(value, at, keys, keys - {"resume"})
    eta = _float(s["eta"], f"{at}.eta")
    if eta <= 1:
        raise invalid(f"{at}.eta", "must be > 1", s["eta"])
    res = _section(s["resource"], f"{at}.resource", {"name", "type"}, {"name"})
    if not isinstance(res["name"], str) or not res["name"]:
        raise invalid(f"{at}.resource.name", "must be a non-empty string", res["name"])
    resume = s.get("resume", False)
    if resume is None:
        resume = False
    if not isinstance(resume, bool):
        raise invalid_type(f"{at}.resume", "must be a bool", resume)
    return {
        "max_iter": parse_int(s["max_iter"], f"{at}.max_iter", 1),
        "eta": eta,
        "resource": {
            "name": res["name"],
            "type": _choice(res.get("type"), f"{at}.resource.type", ("int", "float"), "float"),
        },
        "metric": _metric(s["metric"], f"{at}.metric"),
        "resume": resume,
    }


def _bo(value: Any, at: str) -> dict[str, Any]:
    keys = {"n_initial_trials", "n_iterations", "metric", "utility_function"}
    s = _section(value, at, keys, keys)
    ua = f"{at}.utility_function"
    u = _section(
        s["utility_function"],
        ua,
        {"acquisition_function", "gaussian_process", "kappa", "eps", "n_warmup", "n_iter"},
    )
    acq = _choice(
        u.get("acquisition_function"), f"{ua}.acquisition_function", ("ucb", "ei", "poi"), "ucb"
    )
    needs = "kappa" if acq == "ucb" else "eps"
    if u.get(needs) is None:
        raise invalid(ua, f"acquisition_function {acq!r} needs {needs!r}", dict(u))
    ga = f"{ua}.gaussian_process"
    g = _section(
        u.get("gaussian_process") or {},
        ga,
        {"kernel", "length_scale", "nu", "n_restarts_optimizer"},
    )
    return {
        "n_initial_trials": parse_int(s["n_initial_trials"], f"{at}.n_initial_trials", 0),
        "n_iterations": parse_int(s["n_iterations"], f"{at}.n_iterations", 0),
        "metric": _metric(s["metric"], f"{at}.metric"),
        "utility_function": {
            "acquisition_function": acq,
            "kappa": None if u.get("kappa") is None else _float(u["kappa"], f"{ua}.kappa"),
            "eps": None if u.get("eps") is None else _float(u["eps"], f"{ua}.eps"),
            "n_warmup": parse_int(u.get("n_warmup"), f"{ua}.n_warmup", 1, default=5000),
            "n_iter": parse_int(u.get("n_iter"), f"{ua}.n_iter", 1, default=150),
            "gaussian_process": {
                "kernel": _choice(g.get("kernel"), f"{ga}.kernel", ("matern", "rbf"), "matern"),
                "length_scale": _float(g.get("length_scale", 1.0), f"{ga}.length_scale"),
                "nu": _float(g.get("nu", 1.5), f"{ga}.nu"),
                "n_restarts_optimizer": parse_int(
                    g.get("n_restarts_optimizer"), f"{ga}.n_restarts_optimizer", 0, default=0
                ),
            },
        },
    }


ALGORITHM_PARSERS = {
    "grid_search": _grid,
    "random_search": _random,
    "hyperband": _hyperband,
    "bo": _bo,
}

_POLICY_KEYS = {
    "median": {"evaluation_interval"},
    "average": {"evaluation_interval"},
    "truncation": {"evaluation_interval", "percent"},
}


def parse_early_stopping(value: Any, at: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise invalid_type(at, "must be a list of {metric, value, optimization, policy}", value)
    out = []
    for i, item in enumerate(value):
        ai = f"{at}[{i}]"
        s = _section(item, ai, {"metric", "value", "optimization", "policy"}, {"metric", "value"})
        if not isinstance(s["metric"], str) or not s["metric"]:
            raise invalid(f"{ai}.metric", "must be a non-empty string", s["metric"])
        rule: dict[str, Any] = {
            "metric": s["metric"],
            "value": _float(s["value"], f"{ai}.value"),
            "optimization": _choice(
                s.get("optimization"), f"{ai}.optimization", ("maximize", "minimize"), "maximize"
            ),
            "policy": None,
        }
        if s.get("policy") is not None:
            pa = f"{ai}.policy"
            kind = _choice(
                _section(s["policy"], pa, {"kind", "evaluation_interval", "percent"}).get("kind"),
                f"{pa}.kind",
                tuple(_POLICY_KEYS),
            )
            p = _section(s["policy"], pa, {"kind"} | _POLICY_KEYS[kind], _POLICY_KEYS[kind])
            rule["policy"] = {
                "kind": kind,
                **{k: parse_int(p[k], f"{pa}.{k}", 1) for k in sorted(_POLICY_KEYS[kind])},
            }
        out.append(rule)
    return out
