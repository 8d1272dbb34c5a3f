"""PBT helpers without Ray state: Ray-style mutations, weight noise, the exploit message.

The *explore* step for ``hyperparam_mutations`` follows Ray Tune's ``PopulationBasedTraining``
(``ray/tune/schedulers/pbt.py`` ``_explore``): lists shift one index left or right (or are
resampled), domains and callables are resampled with ``resample_probability`` or multiplied by
one of ``perturbation_factors``; integers stay integers. Unlike Ray, every draw comes from the
scheduler's own ``numpy.random.Generator``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.sharing._copy import copy_into

__all__ = [
    "add_weight_noise",
    "changed_keys",
    "check_mutations",
    "copy_weights",
    "flatten_config",
    "instruction_key",
    "mutate",
]

#: Prefix of the ParamStore message slot that carries an exploit instruction to one trial.
INSTRUCTION_PREFIX = "rafiki_pbt/exploit/"


def instruction_key(trial_id: str) -> str:
    return f"{INSTRUCTION_PREFIX}{trial_id}"


def _is_domain(x: Any) -> bool:
    from ray.tune.search.sample import Domain

    return isinstance(x, Domain)


def check_mutations(mutations: Any, path: str = "hyperparam_mutations") -> dict[str, Any]:
    """Validate Ray's ``hyperparam_mutations`` (lists, Tune domains, callables, nested dicts)."""
    if not isinstance(mutations, Mapping) or not mutations:
        raise invalid_type(path, "must be a non-empty dict", mutations)
    for key, spec in mutations.items():
        where = f"{path}.{key}"
        if isinstance(spec, Mapping):
            check_mutations(spec, where)
        elif isinstance(spec, (list, tuple)):
            if not spec:
                raise invalid(where, "a list of values must not be empty", list(spec))
        elif not (_is_domain(spec) or callable(spec)):
            raise invalid_type(where, "must be a list, a Tune domain, a callable or a dict", spec)
    return dict(mutations)


def mutate(
    config: Mapping[str, Any],
    mutations: Mapping[str, Any],
    rng: np.random.Generator,
    *,
    resample_probability: float,
    perturbation_factors: tuple[float, ...],
    path: str = "config",
) -> dict[str, Any]:
    """Ray's explore rules applied to a copy of ``config`` (see the module docstring)."""
    out = copy.deepcopy(dict(config))
    for key, spec in mutations.items():
        where = f"{path}.{key}"
        if isinstance(spec, Mapping):
            sub = config.get(key, {})
            if not isinstance(sub, Mapping):
                raise invalid_type(where, "must be a dict (hyperparam_mutations nests here)", sub)
            out[key] = mutate(
                sub, spec, rng, resample_probability=resample_probability,
                perturbation_factors=perturbation_factors, path=where,
            )
            continue
        old = config.get(key)
        if isinstance(spec, (list, tuple)):
            values = list(spec)
            if key not in config or rng.random() < resample_probability or old not in values:
                out[key] = copy.deepcopy(values[int(rng.integers(len(values)))])
            else:
                j = values.index(old) + (1 if rng.random() < 0.5 else -1)
                out[key] = copy.deepcopy(values[min(max(j, 0), len(values) - 1)])
            continue
        if key not in config or rng.random() < resample_probability:
            new = spec.sample(random_state=rng) if _is_domain(spec) else spec()
        else:
            if isinstance(old, bool) or not isinstance(old, (int, float, np.integer, np.floating)):
                raise invalid_type(where, "can only be multiplied when it is a number", old)
            new = old * perturbation_factors[int(rng.integers(len(perturbation_factors)))]
        if isinstance(old, bool):
            new = bool(new)
        elif isinstance(old, (int, np.integer)):
            new = int(round(new))
        elif isinstance(new, np.generic):
            new = new.item()
        out[key] = new
    return out


_STD_CHUNK = 1 << 20


def _std(value: np.ndarray) -> float:
    """Standard deviation in float64, in chunks (``np.std`` makes full-size temporaries)."""
    flat = value.reshape(-1)
    mean = float(flat.mean(dtype=np.float64))
    acc = 0.0
    for i in range(0, flat.size, _STD_CHUNK):
        d = flat[i:i + _STD_CHUNK].astype(np.float64) - mean
        acc += float(np.dot(d, d))
    return math.sqrt(acc / flat.size)


def _noisy_into(rng: np.random.Generator, value: np.ndarray, out: np.ndarray, scale: float) -> None:
    """``out[...] = value + scale * std(value) * N(0, 1)`` for floating arrays with a positive
    std, else ``out[...] = value``; written straight into ``out`` when it is a C-contiguous
    array of the generated dtype (no temporary), else through one temporary."""
    if np.issubdtype(value.dtype, np.floating) and value.size:
        std = _std(value)
        if std > 0 and math.isfinite(std):
            gen = value.dtype if value.dtype in (np.float32, np.float64) else np.dtype(np.float32)
            direct = out.dtype == gen and out.flags.c_contiguous and out.flags.writeable
            buf = out if direct else np.empty(value.shape, gen)
            rng.standard_normal(dtype=gen, out=buf.reshape(-1))
            buf *= gen.type(scale * std)
            buf += value
            if not direct:
                np.copyto(out, buf, casting="unsafe")
            return
    np.copyto(out, value, casting="unsafe")


def add_weight_noise(params: Mapping[str, Any], scale: float, seed: int) -> dict[str, Any]:
    """Copy ``params`` adding Gaussian noise with standard deviation ``scale * std(tensor)``.

    Floating-point arrays get the noise (an array whose std is 0, e.g. a constant bias,
    is left as it is); integer arrays and plain scalars are copied unchanged. ``scale=0``
    returns ``params`` itself (no copy: classic PBT). :func:`copy_weights` writes the same
    values into existing arrays instead.
    """
    if scale == 0:
        return dict(params)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for key in sorted(params):
        value = params[key]
        if isinstance(value, np.ndarray):
            out[key] = np.empty(value.shape, value.dtype)
            _noisy_into(rng, value, out[key], scale)
        else:
            out[key] = value
    return out


def copy_weights(params: Mapping[str, Any], targets: Mapping[str, Any], scale: float,
                 seed: int | None) -> None:
    """Write ``params`` (plus the noise of :func:`add_weight_noise` with the same seed, which
    gives the same values) into the existing arrays ``targets[key]``; one pass per array, no
    intermediate copy when dtypes agree. Keys without a target are skipped (their noise is
    still drawn, so every other array gets the same noise as with :func:`add_weight_noise`).
    Shapes must already have been checked by the caller."""
    rng = np.random.default_rng(seed) if scale > 0 else None
    for key in sorted(params):
        value = params[key]
        if not isinstance(value, np.ndarray):
            continue
        out = targets.get(key)
        if rng is None:
            if out is not None:
                copy_into(out, value)  # threads for large arrays: see rafiki_ray.sharing._copy
            continue
        _noisy_into(rng, value, np.empty(value.shape, value.dtype) if out is None else out, scale)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}`` (Tune's separator)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and not {"_value", "_idx"} >= set(value):
            out.update(flatten_config(value, name + "/"))
        else:
            out[name] = value
    return out


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    a, b = flatten_config(before), flatten_config(after)
    return sorted(k for k in set(a) | set(b) if a.get(k, object()) != b.get(k, object()))


def call_explore_fn(fn: Callable[[dict[str, Any]], Any], config: dict[str, Any]) -> dict[str, Any]:
    new = fn(copy.deepcopy(config))
    if not isinstance(new, Mapping):
        raise invalid_type("custom_explore_fn", "must return the new config dict", new)
    return dict(new)
