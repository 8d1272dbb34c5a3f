"""Property-based tests (hypothesis) for every adapter, the knobs, the dict/JSON round trip
and ``to_tune()`` + Tune sampling (issue 17).

Generated valid specs build, sample inside themselves, round-trip and ``contains()`` their
samples (:func:`rafiki_ray.testing.strategies.check_space`); generated invalid and extreme
specs raise only ValueError/TypeError, naming the path. The default run checks
:data:`DEFAULT` examples per property (the same ones every run: tests/conftest.py
loads a derandomized profile), the slow suite :data:`SLOW` fresh ones.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rafiki_ray import knobs
from rafiki_ray.spaces import SearchSpace, from_knobs, from_nni
from rafiki_ray.spaces.adapters.load import load_space
from rafiki_ray.spaces.adapters.polyaxon import from_polyaxon
from rafiki_ray.spaces.adapters.rapidfire import List, RandomSearch, Range, from_rapidfire
from rafiki_ray.testing.strategies import (
    check_space,
    corrupt,
    extreme_values,
    knob_configs,
    nni_specs,
    polyaxon_matrices,
    rapidfire_configs,
    spaces,
)

DEFAULT = 200
SLOW = 2000


def _both(*strategies: Any) -> Any:
    """Decorate a property body: returns the test with DEFAULT examples and a slow-suite
    copy with SLOW examples."""
    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

    def wrap(body: Any) -> tuple[Any, Any]:
        fast = settings(max_examples=DEFAULT, **common)(given(*strategies)(body))
        slow = settings(max_examples=SLOW, derandomize=False, **common)(given(*strategies)(body))
        return fast, pytest.mark.slow(slow)

    return wrap


def _only_clear_errors(build: Any, root: str | tuple[str, ...]) -> Any:
    """Run ``build``: it returns, or raises a ValueError/TypeError whose message starts
    with ``root`` (the path of the input)."""
    try:
        return build()
    except (ValueError, TypeError) as exc:
        assert str(exc).startswith(root), f"{root!r} does not start {str(exc)!r}"
        return None


# -- SearchSpace itself --------------------------------------------------------------------
@_both(spaces())
def _space_round_trips(space: SearchSpace) -> None:
    check_space(space)



@_both(spaces(), st.data())
def _corrupted_serialized_space(space: SearchSpace, data: st.DataObject) -> None:
    bad = data.draw(corrupt(space.to_dict()))
    built = _only_clear_errors(lambda: SearchSpace.from_dict(bad), "space")
    if built is not None:
        check_space(built, tune=False)
    text = json.dumps(bad, default=repr)
    _only_clear_errors(lambda: SearchSpace.from_json(text), "space")



# -- NNI ----------------------------------------------------------------------------------------
@_both(nni_specs())
def _nni_valid(spec: dict[str, Any]) -> None:
    check_space(from_nni(spec))
    assert from_nni(json.dumps(spec)).to_json() == from_nni(spec).to_json()



@_both(nni_specs(), st.data())
def _nni_extreme(spec: dict[str, Any], data: st.DataObject) -> None:
    bad = data.draw(corrupt(spec))
    built = _only_clear_errors(lambda: from_nni(bad), "searchSpace")
    if built is not None:
        check_space(built, tune=False)



# -- Polyaxon -------------------------------------------------------------------------------------
@_both(polyaxon_matrices())
def _polyaxon_valid(section: dict[str, Any]) -> None:
    m = from_polyaxon(section)
    check_space(m.space)
    # a quantised space may hold fewer distinct configurations than n_experiments: a clear
    # error naming n_experiments, never an endless loop
    for cfg in _only_clear_errors(m.configs, "hptuning") or []:
        m.space.validate(cfg)



@_both(polyaxon_matrices(), st.data())
def _polyaxon_extreme(section: dict[str, Any], data: st.DataObject) -> None:
    bad = data.draw(corrupt(section))
    built = _only_clear_errors(lambda: from_polyaxon(bad), "hptuning")
    if built is not None:
        check_space(built.space, tune=False)
        if built.algorithm in ("grid_search", "random_search"):
            _only_clear_errors(built.configs, "hptuning")



# -- RapidFire -------------------------------------------------------------------------------------
@_both(rapidfire_configs(), st.integers(1, 4))
def _rapidfire_valid(config: dict[str, Any], num_runs: int) -> None:
    space = from_rapidfire(config)
    check_space(space)
    rs = _only_clear_errors(lambda: RandomSearch(config, num_runs=num_runs, seed=0), "num_runs")
    if rs is not None:
        assert len(rs.configs()) == num_runs
        for cfg in rs.configs():
            space.validate(cfg)



@_both(extreme_values(), extreme_values(), st.sampled_from([None, "int", "float", "x", 3]),
       st.one_of(st.booleans(), extreme_values()), st.one_of(st.none(), extreme_values()))
def _rapidfire_extreme(start: Any, end: Any, dtype: Any, log: Any, step: Any) -> None:
    def build() -> Any:
        return from_rapidfire({"k": Range(start, end, dtype=dtype, log=log, step=step), "l": List([start])})

    # the Range itself ("Range.start: ...") or the config holding it ("config.k: ...")
    built = _only_clear_errors(build, ("Range", "config.k", "config.l"))
    if built is not None:
        check_space(built, tune=False)



# -- Rafiki knobs ------------------------------------------------------------------------------------
@_both(knob_configs())
def _knobs_valid(config: dict[str, Any]) -> None:
    check_space(from_knobs(config))



@_both(st.sampled_from(["IntegerKnob", "FloatKnob", "CategoricalKnob", "FixedKnob", "ArchKnob"]),
       extreme_values(), extreme_values(), st.one_of(st.booleans(), extreme_values()))
def _knobs_extreme(kind: str, a: Any, b: Any, is_exp: Any) -> None:
    cls = getattr(knobs, kind)

    def build() -> Any:
        if kind in ("IntegerKnob", "FloatKnob"):
            knob = cls(a, b, is_exp=is_exp)
        elif kind == "ArchKnob":
            knob = cls([[a, b]])
        elif kind == "CategoricalKnob":
            knob = cls([a, b])
        else:
            knob = cls(a)
        return knob

    knob = _only_clear_errors(build, kind)
    if knob is not None:
        space = _only_clear_errors(lambda: from_knobs({"k": knob}), "knob_config.k")
        if space is not None:
            check_space(space, tune=False)



# -- load_space --------------------------------------------------------------------------------------
@_both(st.one_of(nni_specs(), spaces().map(lambda s: s.to_dict())), st.sampled_from([".json", ".yaml"]))
def _load_space_valid(doc: dict[str, Any], suffix: str) -> None:
    expected = (
        SearchSpace.from_dict(doc)
        if all(isinstance(v, dict) and "type" in v for v in doc.values())
        else from_nni(doc)
    )
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"space{suffix}"
        text = json.dumps(doc) if suffix == ".json" else yaml.safe_dump(doc, sort_keys=False)
        f.write_text(text)
        assert load_space(f).to_json() == expected.to_json()



@_both(nni_specs(), st.data(), st.sampled_from([".json", ".yaml", ".txt"]))
def _load_space_extreme(spec: dict[str, Any], data: st.DataObject, suffix: str) -> None:
    bad = data.draw(corrupt(spec))
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"space{suffix}"
        f.write_text(json.dumps(bad, default=repr))
        built = _only_clear_errors(lambda: load_space(f), str(f))
        if built is not None:
            check_space(built, tune=False)



# the tests pytest collects: each property with DEFAULT examples, and a slow copy
test_space_round_trips, test_space_round_trips_slow = _space_round_trips
test_corrupted_serialized_space, test_corrupted_serialized_space_slow = _corrupted_serialized_space
test_nni_valid, test_nni_valid_slow = _nni_valid
test_nni_extreme, test_nni_extreme_slow = _nni_extreme
test_polyaxon_valid, test_polyaxon_valid_slow = _polyaxon_valid
test_polyaxon_extreme, test_polyaxon_extreme_slow = _polyaxon_extreme
test_rapidfire_valid, test_rapidfire_valid_slow = _rapidfire_valid
test_rapidfire_extreme, test_rapidfire_extreme_slow = _rapidfire_extreme
test_knobs_valid, test_knobs_valid_slow = _knobs_valid
test_knobs_extreme, test_knobs_extreme_slow = _knobs_extreme
test_load_space_valid, test_load_space_valid_slow = _load_space_valid
test_load_space_extreme, test_load_space_extreme_slow = _load_space_extreme
