"""``SpaceAdapterContract``: the tests every search-space adapter must pass.

In the style of Optuna's ``optuna/testing/pytest_samplers.py``: a test module subclasses the
contract and supplies three fixtures; pytest then runs every ``test_*`` method below over
every spec the subclass lists.

* ``adapter``: a callable ``spec -> SearchSpace`` (anything with a ``.space`` attribute is
  unwrapped, so adapters returning a richer object work too);
* ``valid_spec``: parametrised over representative specs of the format;
* ``invalid_spec``: parametrised over ``(spec, expected)`` pairs, where ``expected`` is a
  substring (usually the path of the offending field) the error message must contain.

The Tune test requests the fixtures ``ray_session`` (Ray started once per session) and
``storage`` (a temporary Tune ``storage_path``) from the project's ``tests/conftest.py``;
a third-party project provides its own fixtures with those names.

Example::

    import pytest
    from rafiki_ray.spaces import from_nni
    from rafiki_ray.testing import SpaceAdapterContract

    class TestNNIContract(SpaceAdapterContract):
        @pytest.fixture
        def adapter(self):
            return from_nni

        @pytest.fixture(params=[{"lr": {"_type": "loguniform", "_value": [1e-4, 0.1]}}])
        def valid_spec(self, request):
            return request.param

        @pytest.fixture(params=[({"lr": {"_type": "loguniform", "_value": [0, 0.1]}},
                                 "searchSpace.lr._value")])
        def invalid_spec(self, request):
            return request.param

Each Tune run costs a few seconds; to keep the default test run short, override the
``tune_spec`` fixture with a few specs (mark the rest ``pytest.mark.slow``)::

        @pytest.fixture(params=[SPEC_A, pytest.param(SPEC_B, marks=pytest.mark.slow)])
        def tune_spec(self, request):
            return request.param

Class attributes tune the cost: ``n_seeds`` (seeds checked for types/bounds),
``tune_samples`` (trials in the Tune run) and ``grid_check_limit`` (largest grid enumerated).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from rafiki_ray.spaces._encoding import Encoder
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
)
from rafiki_ray.spaces._space import SearchSpace

__all__ = ["SpaceAdapterContract", "check_sample_types", "is_constant"]


def _as_space(obj: Any) -> SearchSpace:
    space = getattr(obj, "space", obj)
    if not isinstance(space, SearchSpace):
        msg = f"adapter must return a SearchSpace (or have .space), got {obj!r}"
        raise AssertionError(msg)  # noqa: TRY004 - a failed contract, not a bad argument
    return space


def is_constant(space: SearchSpace) -> bool:
    """Whether every sample of ``space`` is the same configuration."""
    return space.is_finite() and space.grid_size() == 1


def _type_name(v: Any) -> str:
    return type(v).__name__


def _check_param(p: Param, v: Any, path: str) -> None:
    def fail(rule: str) -> None:
        raise AssertionError(f"{path}: {rule}, got {v!r} ({_type_name(v)}) from {p!r}")

    if isinstance(p, (Float, Normal)):
        if type(v) is not float:
            fail("must be a Python float")
    elif isinstance(p, Int):
        if type(v) is not int:
            fail("must be a Python int")
    elif isinstance(p, Policy):
        if type(v) is not bool:
            fail("must be a bool")
    elif isinstance(p, Fixed):
        if type(v) is not type(p.value):
            fail(f"must have the fixed value's type {_type_name(p.value)}")
    elif isinstance(p, Categorical):
        choice = p.choices[p.index(v)]
        if p.emit == "nni":
            if not isinstance(v, dict) or set(v) != {"_value", "_idx"} or type(v["_idx"]) is not int:
                fail("must be {'_value': choice, '_idx': int}")
            v = v["_value"]
        if type(v) is not type(choice):
            fail(f"must have the choice's type {_type_name(choice)}")
    elif isinstance(p, Arch):
        if type(v) is not list:
            fail("must be a list")
        for i, (c, cands) in enumerate(zip(v, p.items)):
            if type(c) is not type(cands[p.index(i, c)]):
                fail(f"position {i} must have its candidate's type")
    elif isinstance(p, Subset):
        if p.emit == "nni":
            if not isinstance(v, dict) or set(v) != {"_value", "_idx"}:
                fail("must be {'_value': [...], '_idx': [...]}")
            if type(v["_value"]) is not list or any(type(i) is not int for i in v["_idx"]):
                fail("must hold a list of values and a list of int indices")
        elif type(v) is not list:
            fail("must be a list")
    elif isinstance(p, Conditional):
        if type(v) is not dict:
            fail("must be a dict")
        i = p.which(v)
        check_sample_types(p.options[i].space, p.sub_value(v), path)


def check_sample_types(space: SearchSpace, config: Mapping[str, Any], path: str = "config") -> None:
    """Assert that every value of ``config`` has the plain Python type its parameter implies."""
    for key, p in space.items():
        where = f"{path}.{key}"
        if isinstance(p, SearchSpace):
            if type(config[key]) is not dict:
                raise AssertionError(f"{where}: must be a dict, got {config[key]!r}")
            check_sample_types(p, config[key], where)
        else:
            _check_param(p, config[key], where)


def _close(a: Any, b: Any) -> bool:
    """Equality, with a relative tolerance for floats (log/CDF maps lose the last bits)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _trainable(config: dict[str, Any]) -> None:
    from ray import tune

    tune.report({"score": 1.0})


class SpaceAdapterContract:
    """Contract tests for an adapter ``spec -> SearchSpace`` (see the module docstring)."""

    n_seeds: int = 25
    tune_samples: int = 3
    grid_check_limit: int = 2000

    # Fixtures the subclass must provide ----------------------------------------------
    @pytest.fixture
    def adapter(self) -> Callable[[Any], Any]:  # pragma: no cover - must be overridden
        raise NotImplementedError("subclass SpaceAdapterContract and define an `adapter` fixture")

    @pytest.fixture
    def valid_spec(self) -> Any:  # pragma: no cover - must be overridden
        raise NotImplementedError("define a `valid_spec` fixture parametrised over specs")

    @pytest.fixture
    def invalid_spec(self) -> tuple[Any, str]:  # pragma: no cover - must be overridden
        raise NotImplementedError("define an `invalid_spec` fixture of (spec, expected) pairs")

    @pytest.fixture
    def space(self, adapter: Callable[[Any], Any], valid_spec: Any) -> SearchSpace:
        return _as_space(adapter(valid_spec))

    @pytest.fixture
    def tune_spec(self, valid_spec: Any) -> Any:
        """Specs run through a real Tune experiment (each costs seconds): every valid spec
        unless the subclass overrides this fixture with fewer (or ``slow``-marked) params."""
        return valid_spec

    # Sampling ------------------------------------------------------------------------
    def test_samples_lie_inside_and_have_python_types(self, space: SearchSpace) -> None:
        for seed in range(self.n_seeds):
            cfg = space.sample(seed)
            space.validate(cfg)  # raises with the path of the first bad key
            check_sample_types(space, cfg)

    def test_same_seed_same_samples(self, space: SearchSpace) -> None:
        assert space.samples(5, seed=123) == space.samples(5, seed=123)

    def test_different_seeds_differ(self, space: SearchSpace) -> None:
        if is_constant(space):
            pytest.skip("constant space")
        assert space.samples(10, seed=0) != space.samples(10, seed=1)

    def test_grid_matches_grid_size(self, space: SearchSpace) -> None:
        if not space.is_finite() or space.grid_size() > self.grid_check_limit:
            pytest.skip("space is not finite (or its grid is too large to enumerate here)")
        configs = list(space.grid())
        assert len(configs) == space.grid_size()
        for cfg in configs:
            space.validate(cfg)

    # Plain data ----------------------------------------------------------------------
    def test_dict_and_json_round_trip(self, space: SearchSpace) -> None:
        data = space.to_dict()
        json.dumps(data)  # plain JSON types only
        assert SearchSpace.from_dict(data) == space
        assert SearchSpace.from_dict(data).to_dict() == data
        assert SearchSpace.from_json(space.to_json()) == space

    def test_encoding_round_trip(self, space: SearchSpace) -> None:
        enc = Encoder(space)
        for seed in range(5):
            cfg = space.sample(seed)
            x, active = enc.encode(cfg)
            assert x.shape == active.shape == (enc.n_dims,)
            back = enc.decode(x)
            space.validate(back)
            assert _close(back, cfg), (cfg, back)

    # Ray Tune ------------------------------------------------------------------------
    def test_tune_round_trip(self, space: SearchSpace) -> None:
        assert SearchSpace.from_tune(space.to_tune()) == space

    def test_tune_variant_generator_resolves_into_the_space(self, space: SearchSpace) -> None:
        """Tune's own resolution (BasicVariantGenerator's ``generate_variants``, no cluster)."""
        import numpy as np
        from ray.tune.search.variant_generator import generate_variants

        rng = np.random.RandomState(0)
        param_space = space.to_tune()
        for _ in range(self.n_seeds):
            for _, spec in generate_variants({"config": param_space}, random_state=rng):
                space.validate(spec["config"])
        if space.is_finite() and space.grid_size() <= self.grid_check_limit:
            grid = [s["config"] for _, s in generate_variants({"config": space.to_tune(grid=True)})]
            assert len(grid) == space.grid_size()
            for cfg in grid:
                space.validate(cfg)

    def test_to_tune_runs_in_tune(
        self, adapter: Callable[[Any], Any], tune_spec: Any, ray_session: Any, storage: str
    ) -> None:
        from ray import tune
        from ray.tune.search import BasicVariantGenerator

        space = _as_space(adapter(tune_spec))
        tuner = tune.Tuner(
            _trainable,
            param_space=space.to_tune(),
            tune_config=tune.TuneConfig(
                # one trial at a time: one actor, reused, 2-3x faster on 2 busy cores (Tune
                # ignores TuneConfig.max_concurrent_trials when given a generator instance)
                search_alg=BasicVariantGenerator(random_state=0, max_concurrent=1),
                num_samples=self.tune_samples,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        results = tuner.fit()
        assert len(results) == self.tune_samples
        assert not results.errors
        for r in results:
            space.validate(r.config)

    # Bad input -----------------------------------------------------------------------
    def test_invalid_spec_names_the_field(
        self, adapter: Callable[[Any], Any], invalid_spec: tuple[Any, str]
    ) -> None:
        spec, expected = invalid_spec
        with pytest.raises((ValueError, TypeError)) as info:
            adapter(spec)
        assert expected in str(info.value), f"{expected!r} not in {str(info.value)!r}"
