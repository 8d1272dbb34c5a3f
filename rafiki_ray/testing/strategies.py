"""Hypothesis strategies for search-space input, valid and extreme (needs ``hypothesis``).

Valid specs of every source format (NNI, Polyaxon, RapidFire, Rafiki knobs) and
:class:`SearchSpace` objects built directly, plus :func:`extreme_values` and
:func:`corrupt` that turn a valid spec into an invalid or borderline one. With
:func:`check_space` they make the property tests of ``tests/spaces/test_properties.py``: a
valid spec builds, samples inside itself, round-trips through dict/JSON and Tune, and Tune's
own sampling stays inside it; anything else raises only ValueError/TypeError naming the path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

from rafiki_ray.spaces._params import (
    Arch,
    Categorical,
    Conditional,
    Fixed,
    Float,
    Int,
    Normal,
    Option,
    Policy,
    Subset,
)
from rafiki_ray.spaces._space import SearchSpace

__all__ = [
    "check_space",
    "corrupt",
    "extreme_values",
    "knob_configs",
    "names",
    "nni_specs",
    "polyaxon_matrices",
    "rapidfire_configs",
    "scalars",
    "spaces",
]

names = st.text("abcdefghij_", min_size=1, max_size=6).filter(lambda s: s != "_name")
_finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
#: Plain JSON scalars (NaN included: a choice may hold one).
scalars = st.one_of(
    st.integers(-(10**6), 10**6), _finite, st.text(max_size=5), st.booleans(), st.none(),
    st.just(math.nan),
)
_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(st.integers(-5, 5), max_size=3),
        st.dictionaries(st.text("xyz", min_size=1, max_size=2), inner, max_size=2),
    ),
    max_leaves=6,
)


def extreme_values() -> st.SearchStrategy[Any]:
    """Numbers and non-numbers at the edges: beyond float range, beyond int64, inf/NaN,
    sub-normal, wrong types (strings, bools, None, containers)."""
    return st.sampled_from(
        [10**400, -(10**400), 2**64, -(2**63) - 1, math.inf, -math.inf, math.nan, 1e308,
         -1e308, 5e-324, -5e-324, 0, -1, 0.0, "1", "false", True, None, [], {}, [1, 2], 1e-320]
    )


# -- direct SearchSpace -------------------------------------------------------------------
@st.composite
def _float_param(draw: Any) -> Float:
    lo = draw(st.floats(-1e6, 1e6))
    hi = lo + draw(st.floats(0, 1e6))
    log = draw(st.booleans()) and lo > 0
    q = draw(st.none() | st.floats(1e-3, 10.0))
    return Float(lo, hi, log=log, q=q, rounding=draw(st.sampled_from(["round", "floor"])),
                 clip=draw(st.booleans()))


@st.composite
def _int_param(draw: Any) -> Int:
    lo = draw(st.integers(-(2**40), 2**40))
    hi = lo + draw(st.integers(0, 2**40))
    log = draw(st.booleans()) and lo > 0
    q = draw(st.none() | st.integers(1, 5))
    if q is not None and -((-lo) // q) > hi // q:
        q = None
    return Int(lo, hi, log=log, q=q)


@st.composite
def _normal_param(draw: Any) -> Normal:
    log = draw(st.booleans())
    mu = draw(st.floats(-50, 50))
    sigma = draw(st.floats(1e-3, 20))
    q = draw(st.none() | st.floats(1e-2, 5))
    return Normal(mu, sigma, log=log, q=q, rounding=draw(st.sampled_from(["round", "floor"])))


_leaf_params = st.one_of(
    _float_param(),
    _int_param(),
    _normal_param(),
    st.lists(_values, min_size=1, max_size=4).map(lambda v: Categorical(tuple(v))),
    _values.map(Fixed),
    st.sampled_from(["SHARE_PARAMS", "EARLY_STOP"]).map(Policy),
    st.lists(st.lists(scalars, min_size=1, max_size=3), min_size=1, max_size=3).map(
        lambda items: Arch(tuple(tuple(c) for c in items))
    ),
    st.lists(st.integers(0, 20), min_size=1, max_size=4, unique=True).flatmap(
        lambda c: st.integers(0, len(c)).map(lambda n: Subset(tuple(c), n))
    ),
)


def spaces(max_depth: int = 2) -> st.SearchStrategy[SearchSpace]:
    """SearchSpaces of every parameter type, sub-spaces and conditionals included."""

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        sub = st.dictionaries(names, inner, min_size=1, max_size=3).map(SearchSpace)
        cond = st.lists(sub, min_size=1, max_size=3).map(
            lambda opts: Conditional(tuple(Option(i, s) for i, s in enumerate(opts)))
        )
        return st.one_of(sub, cond)

    nodes = st.recursive(_leaf_params, extend, max_leaves=3 * max_depth)
    return st.dictionaries(names, nodes, min_size=1, max_size=4).map(SearchSpace)


# -- NNI --------------------------------------------------------------------------------------
@st.composite
def _nni_numeric(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["randint", "uniform", "quniform", "loguniform", "qloguniform",
                                 "normal", "qnormal", "lognormal", "qlognormal"]))
    if kind == "randint":
        lo = draw(st.integers(-(10**9), 10**9))
        return {"_type": kind, "_value": [lo, lo + draw(st.integers(1, 10**9))]}
    if "normal" in kind:
        args: list[Any] = [draw(st.floats(-20, 20)), draw(st.floats(1e-3, 5))]
    else:
        lo = draw(st.floats(1e-6, 1e3) if "log" in kind else st.floats(-1e3, 1e3))
        args = [lo, lo + draw(st.floats(1e-3, 1e3))]
    if kind.startswith("q"):
        args.append(draw(st.floats(1e-3, 10)))
    return {"_type": kind, "_value": args}


def nni_specs(max_depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """NNI search spaces: the ten types, NAS layer/input choices and nested choices."""
    leaf = st.one_of(
        _nni_numeric(),
        st.lists(scalars, min_size=1, max_size=4).map(lambda v: {"_type": "choice", "_value": v}),
        st.lists(scalars, min_size=1, max_size=3).map(lambda v: {"_type": "layer_choice", "_value": v}),
        st.lists(st.integers(), min_size=1, max_size=4, unique=True).flatmap(
            lambda c: st.integers(0, len(c)).map(
                lambda n: {"_type": "input_choice", "_value": {"candidates": c, "n_chosen": n}}
            )
        ),
    )

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        option = st.dictionaries(names, inner, max_size=2)
        return st.lists(option, min_size=1, max_size=3).map(
            lambda opts: {"_type": "choice", "_value": [{"_name": f"o{i}", **o} for i, o in enumerate(opts)]}
        )

    return st.dictionaries(names, st.recursive(leaf, extend, max_leaves=2 * max_depth), min_size=1, max_size=4)


# -- Polyaxon -----------------------------------------------------------------------------------
@st.composite
def _polyaxon_option(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["values", "pvalues", "range", "linspace", "logspace", "geomspace",
                                 "uniform", "quniform", "loguniform", "qloguniform", "normal",
                                 "qnormal", "lognormal", "qlognormal"]))
    if kind == "values":
        return {kind: draw(st.lists(scalars.filter(lambda x: x is not None), min_size=1, max_size=4))}
    if kind == "pvalues":
        n = draw(st.integers(1, 3))
        return {kind: [[f"v{i}", round(0.9 / n, 3)] for i in range(n)]}
    form = draw(st.sampled_from(["str", "list"]))
    if kind == "range":
        a = draw(st.integers(-100, 100))
        args: list[Any] = [a, a + draw(st.integers(1, 200)), draw(st.integers(1, 10))]
    elif kind in ("linspace", "logspace", "geomspace"):
        a = draw(st.floats(0.5, 3) if kind == "geomspace" else st.floats(-3, 3))
        args = [a, a + draw(st.floats(0.1, 3)), draw(st.integers(1, 20))]
    elif "normal" in kind:
        args = [draw(st.floats(-5, 5)), draw(st.floats(0.01, 3))]
    else:
        a = draw(st.floats(-10, 5))
        args = [a, a + draw(st.floats(0.01, 5))]
    if kind.startswith("q"):
        args.append(draw(st.floats(0.01, 2)))
    value = ":".join(repr(a) for a in args) if form == "str" else args
    return {kind: value}


@st.composite
def polyaxon_matrices(draw: Any) -> dict[str, Any]:
    """Polyaxon v0 hptuning sections (random_search, or grid_search over discrete options)."""
    matrix = draw(st.dictionaries(names, _polyaxon_option(), min_size=1, max_size=4))
    discrete = all(next(iter(o)) in ("values", "range", "linspace", "logspace", "geomspace")
                   for o in matrix.values())
    section: dict[str, Any] = {"matrix": matrix, "seed": draw(st.integers(0, 100))}
    if discrete and draw(st.booleans()):
        section["grid_search"] = {"n_experiments": draw(st.integers(1, 5))}
    else:
        section["random_search"] = {"n_experiments": draw(st.integers(1, 5))}
    return section


# -- RapidFire ------------------------------------------------------------------------------------
@st.composite
def _range(draw: Any) -> Any:
    from rafiki_ray.spaces.adapters.rapidfire import Range

    kind = draw(st.sampled_from(["int", "float", "log", "step_int", "step_float"]))
    if kind == "int":
        a = draw(st.integers(-1000, 1000))
        return Range(a, a + draw(st.integers(0, 1000)))
    if kind == "float":
        a = draw(st.floats(-1e3, 1e3))
        return Range(a, a + draw(st.floats(0, 1e3)), dtype="float")
    if kind == "log":
        a = draw(st.floats(1e-6, 1e3))
        return Range(a, a * draw(st.floats(1, 1e3)), log=True)
    if kind == "step_int":
        a = draw(st.integers(-100, 100))
        return Range(a, a + draw(st.integers(0, 100)), step=draw(st.integers(1, 10)))
    a = draw(st.floats(-10, 10))
    return Range(a, a + draw(st.floats(0, 10)), step=draw(st.floats(0.05, 5)))


def rapidfire_configs(max_depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """RapidFire configs: plain values, List, Range and nested dicts (lists of dicts too)."""
    from rafiki_ray.spaces.adapters.rapidfire import List

    leaf = st.one_of(
        scalars,
        _range(),
        st.lists(scalars, min_size=1, max_size=4).map(List),
    )

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        sub = st.dictionaries(names, inner, min_size=1, max_size=3)
        return st.one_of(sub, st.lists(sub, min_size=1, max_size=2).map(List))

    return st.dictionaries(names, st.recursive(leaf, extend, max_leaves=3 * max_depth), min_size=1, max_size=4)


# -- Rafiki knobs -----------------------------------------------------------------------------------
@st.composite
def _knob(draw: Any) -> Any:
    from rafiki_ray import knobs as k

    kind = draw(st.sampled_from(["fixed", "cat", "int", "float", "policy", "arch"]))
    if kind == "fixed":
        return k.FixedKnob(draw(st.one_of(st.integers(), _finite, st.text(max_size=4), st.booleans())))
    if kind == "cat":
        elem = draw(st.sampled_from([st.integers(-9, 9), _finite, st.text(max_size=3), st.booleans()]))
        return k.CategoricalKnob(draw(st.lists(elem, min_size=1, max_size=4)))
    if kind == "int":
        is_exp = draw(st.booleans())
        lo = draw(st.integers(1 if is_exp else -(10**6), 10**6))
        return k.IntegerKnob(lo, lo + draw(st.integers(0, 10**6)), is_exp=is_exp)
    if kind == "float":
        is_exp = draw(st.booleans())
        lo = draw(st.floats(1e-8, 1e3) if is_exp else st.floats(-1e3, 1e3))
        return k.FloatKnob(lo, lo + draw(st.floats(0, 1e3)), is_exp=is_exp)
    if kind == "policy":
        return k.PolicyKnob(draw(st.sampled_from(list(k.POLICIES))))
    return k.ArchKnob(draw(st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=3), min_size=1, max_size=4)))


def knob_configs() -> st.SearchStrategy[dict[str, Any]]:
    """Rafiki knob configs ``{name: knob}``."""
    return st.dictionaries(names, _knob(), min_size=1, max_size=5)


# -- corrupting a valid spec ----------------------------------------------------------------------
@st.composite
def corrupt(draw: Any, spec: Any) -> Any:
    """``spec`` with one leaf, list or dict replaced by an extreme value (or dropped)."""
    spec = json.loads(json.dumps(spec, default=repr)) if not _plain(spec) else _copy(spec)
    paths = list(_paths(spec, ()))
    path = draw(st.sampled_from(paths))
    parent = spec
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()) and len(path) > 1:
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(extreme_values())
    return spec


def _plain(x: Any) -> bool:
    if isinstance(x, Mapping):
        return all(isinstance(k, str) and _plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_plain(v) for v in x)
    return x is None or isinstance(x, (bool, int, float, str))


def _copy(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_copy(v) for v in x]
    return x


def _paths(x: Any, prefix: tuple[Any, ...]) -> Any:
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
    for k, v in items:
        yield (*prefix, k)
        yield from _paths(v, (*prefix, k))


# -- the property ------------------------------------------------------------------------------
def _text(space: SearchSpace) -> str:
    return space.to_json()


def check_space(space: SearchSpace, *, seeds: int = 3, tune: bool = True) -> None:
    """Assert the properties every built space has: its samples lie inside it (and have
    plain Python types), it round-trips exactly through dict, JSON and a Tune param_space,
    and Tune's own sampling of ``to_tune()`` stays inside it."""
    from rafiki_ray.testing.spaces import check_sample_types

    for seed in range(seeds):
        cfg = space.sample(seed)
        space.validate(cfg)
        check_sample_types(space, cfg)
    text = _text(space)
    json.loads(text, parse_constant=_no_constant)
    assert _text(SearchSpace.from_json(text)) == text
    assert _text(SearchSpace.from_dict(space.to_dict())) == text
    if tune:
        from ray.tune.search.variant_generator import generate_variants

        param_space = space.to_tune()
        assert _text(SearchSpace.from_tune(param_space)) == text
        rng = np.random.RandomState(0)
        for _ in range(seeds):
            for _, cfg in generate_variants({"c": param_space}, random_state=rng):
                space.validate(cfg["c"])


def _no_constant(name: str) -> Any:
    raise AssertionError(f"to_json wrote the non-standard constant {name}")
