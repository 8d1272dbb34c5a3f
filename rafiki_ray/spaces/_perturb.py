"""NNI-style perturbation of a configuration (the *explore* step of PBT).

Jaderberg et al. 2017, "Population Based Training of Neural Networks": after a member copies
a better one (*exploit*), its hyperparameters are perturbed (*explore*). The per-type rules
follow NNI's ``PBTTuner`` (``nni/algorithms/hpo/pbt_tuner.py``): each hyperparameter is
resampled from its prior with probability ``resample_probability``; otherwise it moves up or
down (50/50)

- by ``factor * (high - low)`` for a uniform float, by ``factor * log(high / low)`` in log
  space for a log-uniform one;
- by one step (``q``, or 1) for a quantised float or an integer, and by one index for a
  categorical (and for every position of an :class:`Arch`);
- by ``factor * sigma`` for a normal (in log space for a log-normal), or by ``q`` when it is
  quantised;

then it is clipped to the parameter's bounds (normals have none). Types NNI does not have
are handled in the same spirit: a :class:`Subset` swaps one chosen candidate for an unchosen
one; a :class:`Conditional` resamples its option with probability ``resample_probability``
and otherwise perturbs the parameters of the active option; :class:`Fixed` and
:class:`Policy` values never change.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces._params import (
    Arch,
    Categorical,
    Conditional,
    Fixed,
    Float,
    Int,
    Normal,
    Param,
    Policy,
    Subset,
    _quantize,
)
from rafiki_ray.spaces._space import SearchSpace, as_space

__all__ = ["perturb", "perturb_value"]


def _check_args(factor: Any, resample_probability: Any) -> tuple[float, float]:
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)):
        raise invalid_type("perturb.factor", "must be a number", factor)
    if not math.isfinite(float(factor)) or float(factor) < 0:
        raise invalid("perturb.factor", "must be finite and >= 0", factor)
    p = resample_probability
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise invalid_type("perturb.resample_probability", "must be a number", p)
    if not 0.0 <= float(p) <= 1.0:
        raise invalid("perturb.resample_probability", "must be in [0, 1]", p)
    return float(factor), float(p)


def perturb(
    space: Any,
    config: Mapping[str, Any],
    rng: np.random.Generator,
    *,
    factor: float = 0.2,
    resample_probability: float = 0.25,
) -> dict[str, Any]:
    """A perturbed copy of ``config`` (NNI's PBT explore rules, see the module docstring).

    ``space`` is a :class:`SearchSpace` or a Tune ``param_space``; keys of ``config`` that
    the space does not define are copied unchanged (Tune adds some), keys the space defines
    must be present. ``rng`` is the caller's ``numpy.random.Generator``.
    """
    space = as_space(space)
    if not isinstance(rng, np.random.Generator):
        raise invalid_type("perturb.rng", "must be a numpy.random.Generator", rng)
    factor, p = _check_args(factor, resample_probability)
    if not isinstance(config, Mapping):
        raise invalid_type("perturb.config", "must be a dict", config)
    return _perturb_space(space, config, rng, factor, p, "config")


def _perturb_space(
    space: SearchSpace, config: Mapping[str, Any], rng: np.random.Generator,
    factor: float, p: float, path: str,
) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise invalid_type(path, "must be a dict", config)
    missing = [k for k in space if k not in config]
    if missing:
        raise invalid(path, f"is missing {missing}", sorted(config))
    out = {k: copy.deepcopy(v) for k, v in config.items()}
    for key, sub in space.items():
        if isinstance(sub, SearchSpace):
            out[key] = _perturb_space(sub, config[key], rng, factor, p, f"{path}.{key}")
        else:
            out[key] = _perturb_param(sub, config[key], rng, factor, p, f"{path}.{key}")
    return out


def perturb_value(
    param: Param, value: Any, rng: np.random.Generator, *, factor: float = 0.2,
    resample_probability: float = 0.25,
) -> Any:
    """Perturb one value of one parameter (the per-type rule :func:`perturb` applies)."""
    factor, p = _check_args(factor, resample_probability)
    return _perturb_param(param, value, rng, factor, p, "value")


def _direction(rng: np.random.Generator) -> int:
    return 1 if rng.random() < 0.5 else -1


def _perturb_param(
    param: Param, value: Any, rng: np.random.Generator, factor: float, p: float, path: str
) -> Any:
    if isinstance(param, (Fixed, Policy)):
        return copy.deepcopy(value)
    if isinstance(param, Conditional):
        if rng.random() < p:
            return param.sample(rng)
        i = param.which(value)
        sub = _perturb_space(param.options[i].space, param.sub_value(value), rng, factor, p, path)
        return param.make(i, sub)
    if isinstance(param, Arch):
        if not param.contains(value):
            raise invalid(path, f"is outside {param!r}", value)
        out = []
        for pos, cands in enumerate(param.items):
            if rng.random() < p:
                out.append(copy.deepcopy(cands[int(rng.integers(len(cands)))]))
            else:
                j = param.index(pos, value[pos]) + _direction(rng)
                out.append(copy.deepcopy(cands[min(max(j, 0), len(cands) - 1)]))
        return out
    if rng.random() < p:
        return param.sample(rng)
    step = _direction(rng)
    if isinstance(param, Categorical):
        j = param.index(value) + step
        return param.pick(min(max(j, 0), len(param.choices) - 1))
    if isinstance(param, Subset):
        return _swap_subset(param, value, rng, path)
    if isinstance(param, Float):
        return _move_float(param, _number(value, path), step, factor)
    if isinstance(param, Int):
        return _move_int(param, _number(value, path), step, factor)
    if isinstance(param, Normal):
        return _move_normal(param, _number(value, path), step, factor)
    raise invalid_type(path, "has a parameter type perturb does not know", param)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise invalid_type(path, "must be a number", value)
    if not math.isfinite(float(value)):
        raise invalid(path, "must be finite", value)
    return float(value)


def _move_float(param: Float, v: float, step: int, factor: float) -> float:
    lo, hi = param.low, param.high
    if lo == hi:
        return lo
    if param.q is not None:  # NNI quniform / qloguniform: one quantum up or down
        v = (round(v / param.q) + step) * param.q
        v = float(np.round(v, 12))
    elif param.log:
        v = max(v, lo)
        v = math.exp(math.log(v) + step * factor * (math.log(hi) - math.log(lo)))
    else:
        v = v + step * factor * (hi - lo)
    return float(min(max(v, lo), hi))


def _move_int(param: Int, v: float, step: int, factor: float) -> int:
    q = param.q or 1
    if param.log:
        # A log-uniform integer moves like a log-uniform float, at least one step.
        lo, hi = math.log(param.low), math.log(param.high + 1)
        moved = math.exp(math.log(max(v, param.low)) + step * factor * (hi - lo))
        k = round(moved / q)
        if k == round(v / q):
            k += step
    else:
        k = round(v / q) + step
    lo_k, hi_k = param._q_range()
    return int(min(max(k, lo_k), hi_k) * q)


def _move_normal(param: Normal, v: float, step: int, factor: float) -> float:
    if param.q is not None:  # NNI qnormal / qlognormal: one quantum
        return _quantize(v + step * param.q, param.q, "round")
    if param.log:
        return float(math.exp(math.log(max(v, 1e-300)) + step * factor * param.sigma))
    return float(v + step * factor * param.sigma)


def _swap_subset(param: Subset, value: Any, rng: np.random.Generator, path: str) -> Any:
    idx = param.indices(value)
    free = [i for i in range(len(param.candidates)) if i not in idx]
    if not idx or not free:
        return param.pick(idx)
    out = list(idx)
    out[int(rng.integers(len(out)))] = free[int(rng.integers(len(free)))]
    return param.pick(out)
