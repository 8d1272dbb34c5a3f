"""``SearcherContract``: the behaviour every rafiki_ray searcher must show (Optuna's
``testing/pytest_samplers.py`` style; cases adapted from Ray Tune's ``test_searchers.py``).

Use it from a test module::

    from rafiki_ray.testing import SearcherContract

    class TestMySearch(SearcherContract):
        @pytest.fixture
        def searcher_factory(self):
            def make(**kw):
                kw.setdefault("n_startup", 5)  # keep the warm-up short so the model is exercised
                return MySearch(**kw)
            return make

The factory takes the ``RafikiSearcher`` keyword arguments (``space``, ``metric``, ``mode``,
``seed``, ``points_to_evaluate``, ``constant_liar_type``, ``max_concurrent``) and must return a
blank searcher when called without any. Class attributes below tune the budget; cases that use
Ray request the session fixture ``ray_session`` and the ``storage`` fixture (a tmp Tune
``storage_path``) from ``tests/conftest.py``; a third-party suite must provide both.

Cases: metric/mode from the constructor and from ``set_search_properties``; float, int, log,
quantised, categorical, normal and nested conditional spaces, and one built by the Rafiki, NNI
and Polyaxon adapters (policy, architecture, nested choice, ``input_choice``) (right Python
type, inside the space) and Tune ``param_space`` input; no duplicate points among pending
suggestions (constant liar ``min | max | mean``); ``points_to_evaluate``; warm start
(``add_evaluated_point``, a Tune DataFrame); failed / NaN / ``±inf`` results; seeding (also in
a spawned process with ``PYTHONHASHSEED`` unset); plain-data ``save``/``restore`` into a blank
searcher and pickling; end to end in ``tune.Tuner`` with ``max_concurrent_trials`` and
``reuse_actors=True``; the searcher beats its own random-search baseline; and (``slow``) it
survives ``Tuner.restore`` after the driver is killed with SIGKILL (``searcher_path`` set). The
spaces, objectives and Tune/crash fixtures live in :mod:`rafiki_ray.testing._searcher_cases`
and are re-exported here.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import pickle
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

from rafiki_ray.spaces import Categorical, Float, SearchSpace, as_space
from rafiki_ray.testing._searcher_cases import (
    OPT_SPACE,
    SPACES,
    _conditional_space,
    _plain_data,
    _run_in_child,
    _tune_space,
    _tune_trainable,
    check_types,
    crash_experiment,
    crash_introspect,
    drive,
    objective,
    opt_objective,
)

__all__ = [
    "OPT_SPACE",
    "SPACES",
    "SearcherContract",
    "check_types",
    "crash_experiment",
    "crash_introspect",
    "drive",
    "objective",
    "opt_objective",
]


def _slow(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(*args, **kwargs)

    return pytest.mark.slow(wrapper)


# ---------------------------------------------------------------------------------------
# the contract


class SearcherContract:
    """Subclass in a test module and provide a ``searcher_factory`` fixture."""

    #: suggestions per space in the type/bounds cases (exceed the searcher's warm-up)
    n_steps: int = 16
    #: evaluations per seed in the optimisation case, and the seeds compared
    optimise_budget: int = 40
    optimise_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    #: observations before the pending-duplicates case suggests a batch
    n_before_batch: int = 12
    #: False: the Tune and spawned-process cases run only with ``-m slow`` (for a second
    #: variant of a searcher whose first variant already runs them by default)
    heavy_in_default_run: bool = True
    #: importable ``"module:Class"`` for the driver-crash case (``None`` skips it) and the
    #: keyword arguments it is built with there (next to ``seed``)
    searcher_path: str | None = None
    searcher_kwargs: ClassVar[dict[str, Any]] = {}

    _HEAVY: tuple[str, ...] = (
        "test_end_to_end_in_tuner",
        "test_same_sequence_in_a_spawned_process",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.heavy_in_default_run:
            for name in cls._HEAVY:
                if name not in cls.__dict__:
                    setattr(cls, name, _slow(getattr(cls, name)))

    @pytest.fixture
    def searcher_factory(self) -> Callable[..., Any]:  # pragma: no cover - must be overridden
        raise NotImplementedError(
            "a SearcherContract subclass must define a `searcher_factory` fixture"
        )

    # -- metric / mode ------------------------------------------------------------------
    def test_metric_mode_from_constructor(self, searcher_factory: Callable[..., Any]) -> None:
        space = SPACES["float"]()
        s = searcher_factory(space=space, metric="acc", mode="max", seed=0)
        assert s.metric == "acc" and s.mode == "max"
        drive(s, 3, lambda c: -objective(space, c), metric="acc")
        best_cfg, best_val = s.best()
        assert space.contains(best_cfg) and best_val <= 0

    def test_metric_mode_space_from_set_search_properties(
        self, searcher_factory: Callable[..., Any]
    ) -> None:
        s = searcher_factory(seed=0)
        assert s.set_search_properties("acc", "max", _tune_space()) is True
        assert s.metric == "acc" and s.mode == "max"
        space = as_space(_tune_space())
        for cfg in drive(s, 4, lambda c: -objective(space, c), metric="acc"):
            check_types(space, cfg)
        # a second space is refused (Tune then raises), metric/mode stay
        assert s.set_search_properties("other", "min", _tune_space()) is False

    def test_missing_metric_or_space_is_a_clear_error(
        self, searcher_factory: Callable[..., Any]
    ) -> None:
        with pytest.raises(RuntimeError, match="search space"):
            searcher_factory(metric="loss", mode="min").suggest("t0")
        with pytest.raises(ValueError, match="metric: is not set"):
            searcher_factory(space=SPACES["float"]()).suggest("t0")
        with pytest.raises(ValueError, match="mode: is not set"):  # as soon as Tune asks
            searcher_factory(space=SPACES["float"]()).set_search_properties("loss", None, {})
        with pytest.raises(ValueError, match="mode"):
            searcher_factory(space=SPACES["float"](), metric="loss", mode="maximize")

    # -- spaces -------------------------------------------------------------------------
    @pytest.mark.parametrize("space_name", list(SPACES))
    def test_suggestions_have_right_types_and_stay_in_space(
        self, searcher_factory: Callable[..., Any], space_name: str
    ) -> None:
        raw = SPACES[space_name]()
        space = as_space(raw)
        s = searcher_factory(space=raw, metric="loss", mode="min", seed=1)
        configs = drive(s, self.n_steps, lambda c: objective(space, c))
        for i, cfg in enumerate(configs):
            check_types(space, cfg, f"suggestion[{i}]")
        if space_name == "conditional":  # every branch is reachable
            assert {c["optimizer"]["_name"] for c in configs} >= {"sgd", "adam"}
        if space_name == "adapted":  # both NNI options, and more than one architecture
            assert {c["model"]["_name"] for c in configs} == {"cnn", "mlp"}
            assert len({repr(c["cell"]) for c in configs}) > 1

    # -- parallel trials ----------------------------------------------------------------
    @pytest.mark.parametrize("liar", ["min", "max", "mean"])
    def test_pending_suggestions_are_distinct(
        self, searcher_factory: Callable[..., Any], liar: str
    ) -> None:
        space = SearchSpace(
            {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "c": Categorical(("a", "b"))}
        )
        s = searcher_factory(
            space=space, metric="loss", mode="min", seed=2, constant_liar_type=liar
        )
        drive(s, self.n_before_batch, lambda c: objective(space, c))
        batch = [s.suggest(f"p{i}") for i in range(8)]
        keys = {(round(c["x"], 9), round(c["y"], 9), c["c"]) for c in batch}
        assert len(keys) == len(batch), f"duplicates among pending suggestions: {batch}"
        assert len(s.pending_configs()) == 8
        for i, c in enumerate(batch):  # pending trials complete normally
            s.on_trial_complete(f"p{i}", {"loss": objective(space, c)})
        assert s.n_observations == self.n_before_batch + 8

    def test_max_concurrent_limits_pending(self, searcher_factory: Callable[..., Any]) -> None:
        s = searcher_factory(
            space=SPACES["float"](), metric="loss", mode="min", seed=0, max_concurrent=2
        )
        assert s.suggest("a") is not None and s.suggest("b") is not None
        assert s.suggest("c") is None
        s.on_trial_complete("a", {"loss": 1.0})
        assert s.suggest("c") is not None

    # -- points to evaluate and warm start -----------------------------------------------
    def test_points_to_evaluate_come_first(self, searcher_factory: Callable[..., Any]) -> None:
        space = _conditional_space()
        full = space.sample(0)
        points = [full, {"x": 0.25}]
        s = searcher_factory(
            space=space, metric="loss", mode="min", seed=0, points_to_evaluate=points
        )
        first, second = s.suggest("t0"), s.suggest("t1")
        assert first == full
        assert second["x"] == 0.25 and space.contains(second)
        check_types(space, s.suggest("t2"))

    def test_warm_start_from_add_evaluated_point(
        self, searcher_factory: Callable[..., Any]
    ) -> None:
        space = OPT_SPACE
        s = searcher_factory(space=space, metric="loss", mode="min", seed=0)
        rng = np.random.default_rng(5)
        points = [space.sample(rng) for _ in range(20)]
        for p in points:
            s.add_evaluated_point(p, opt_objective(p))
        s.add_evaluated_point(points[0], 0.0, error=True)
        assert s.n_observations == 21
        assert s.best()[1] == min(opt_objective(p) for p in points)
        with pytest.raises(ValueError, match="parameters"):
            s.add_evaluated_point({"x0": 99.0}, 1.0)
        configs = drive(s, 5, opt_objective)
        for cfg in configs:
            check_types(space, cfg)
        assert s.n_observations == 26

    def test_warm_start_from_a_dataframe(self, searcher_factory: Callable[..., Any]) -> None:
        import pandas as pd

        space = as_space(_tune_space())
        rng = np.random.default_rng(3)
        rows = []
        for i in range(12):
            cfg = space.sample(rng)
            row = {"loss": objective(space, cfg), "trial_id": f"old{i}"}
            row.update({f"config/{k}": v for k, v in cfg.items() if not isinstance(v, dict)})
            row.update({f"config/nested/{k}": v for k, v in cfg["nested"].items()})
            rows.append(row)
        rows[3]["loss"] = float("nan")
        df = pd.DataFrame(rows)
        s = searcher_factory(space=_tune_space(), metric="loss", mode="min", seed=0)
        assert s.warm_start(df) == 12
        assert s.best()[1] == pytest.approx(np.nanmin(df["loss"].to_numpy()))
        for cfg in drive(s, 4, lambda c: objective(space, c)):
            check_types(space, cfg)

    # -- invalid values -----------------------------------------------------------------
    def test_failed_nan_and_inf_results_do_not_crash(
        self, searcher_factory: Callable[..., Any]
    ) -> None:
        space = _conditional_space()
        s = searcher_factory(space=space, metric="loss", mode="min", seed=4)
        configs = drive(s, self.n_steps + 5, lambda c: objective(space, c), poison=True)
        for cfg in configs:
            check_types(space, cfg)
        s.on_trial_complete("never-suggested", {"loss": 1.0})  # ignored, no crash
        s.suggest("only-inf")
        s.on_trial_complete("only-inf", {"loss": float("inf")})
        assert s.n_observations == len(configs) + 1

    @pytest.mark.parametrize("poison", [False, True], ids=["clean", "poisoned"])
    def test_beats_its_random_baseline(
        self, searcher_factory: Callable[..., Any], poison: bool
    ) -> None:
        ours, rand = [], []
        for seed in self.optimise_seeds:
            s = searcher_factory(space=OPT_SPACE, metric="loss", mode="min", seed=seed)
            configs = drive(s, self.optimise_budget, opt_objective, poison=poison)
            ours.append(min(opt_objective(c) for c in configs))
            rng = np.random.default_rng(seed)
            rand.append(
                min(opt_objective(OPT_SPACE.sample(rng)) for _ in range(self.optimise_budget))
            )
        assert np.median(ours) < np.median(rand), f"ours {ours} vs random {rand}"

    def test_mode_max_maximises(self, searcher_factory: Callable[..., Any]) -> None:
        ours, rand = [], []
        for seed in self.optimise_seeds[:3]:
            s = searcher_factory(space=OPT_SPACE, metric="score", mode="max", seed=seed)
            configs = drive(s, self.optimise_budget, lambda c: -opt_objective(c), metric="score")
            ours.append(min(opt_objective(c) for c in configs))
            rng = np.random.default_rng(seed)
            rand.append(
                min(opt_objective(OPT_SPACE.sample(rng)) for _ in range(self.optimise_budget))
            )
        assert np.median(ours) < np.median(rand), f"ours {ours} vs random {rand}"

    # -- seeding ------------------------------------------------------------------------
    def test_same_seed_same_sequence_different_seed_differs(
        self, searcher_factory: Callable[..., Any]
    ) -> None:
        space = _conditional_space()

        def run(seed: int) -> list[dict[str, Any]]:
            s = searcher_factory(space=space, metric="loss", mode="min", seed=seed)
            return drive(s, self.n_steps, lambda c: objective(space, c))

        a, b, c = run(7), run(7), run(8)
        assert a == b
        assert a != c

    def test_same_sequence_in_a_spawned_process(
        self, searcher_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("PYTHONHASHSEED", raising=False)
        space = _conditional_space()
        s = searcher_factory(space=space, metric="loss", mode="min", seed=11)
        blob = pickle.dumps(s)
        here = _run_in_child(pickle.loads(blob), self.n_steps)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            there = pool.apply(_run_in_child, (pickle.loads(blob), self.n_steps))
        assert here == there

    # -- state --------------------------------------------------------------------------
    def test_save_restore_into_a_blank_searcher(
        self, searcher_factory: Callable[..., Any], tmp_path: Any
    ) -> None:
        space = _conditional_space()
        loss = lambda c: objective(space, c)
        s = searcher_factory(
            space=space, metric="loss", mode="max", seed=3, constant_liar_type="mean"
        )
        drive(s, self.n_steps, loss)
        s.suggest("pending-1")  # a trial still running at save time
        state = s.get_state()
        _plain_data(state)
        assert state["metric"] == "loss" and state["mode"] == "max" and state["space"] is not None
        path = str(tmp_path / "searcher.state")
        s.save(path)
        blank = searcher_factory()
        blank.restore(path)  # no set_search_properties: metric, mode, space come from the state
        assert blank.metric == "loss" and blank.mode == "max"
        assert blank.space == s.space
        assert blank.suggest("next") == s.suggest("next")
        for t in (s, blank):
            t.on_trial_complete("pending-1", {"loss": 0.5})
            t.on_trial_complete("next", {"loss": 0.25})
        assert blank.n_observations == s.n_observations == self.n_steps + 2
        assert drive(blank, 3, loss, start=100) == drive(s, 3, loss, start=100)

    def test_result_of_a_trial_it_did_not_suggest_is_recorded(
        self, searcher_factory: Callable[..., Any]
    ) -> None:
        """After a restore from a snapshot older than a trial, Tune still reports the trial;
        its flattened ``config/...`` keys identify the configuration."""
        space = as_space(_tune_space())
        s = searcher_factory(space=_tune_space(), metric="loss", mode="min", seed=0)
        cfg = space.sample(1)
        flat = {f"config/{k}": v for k, v in cfg.items() if k != "nested"}
        flat.update({f"config/nested/{k}": v for k, v in cfg["nested"].items()})
        s.on_trial_complete("from-before-the-crash", {"loss": 0.125, **flat})
        assert s.n_observations == 1 and s.best() == (cfg, 0.125)
        s.on_trial_complete("unknown-without-config", {"loss": 1.0})
        assert s.n_observations == 1

    def test_pickles(self, searcher_factory: Callable[..., Any]) -> None:
        import cloudpickle

        space = SPACES["categorical"]()
        s = searcher_factory(space=space, metric="loss", mode="min", seed=0)
        drive(s, 5, lambda c: objective(space, c))
        for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
            copy = loads(dumps(s))
            assert copy.suggest("x") == s.suggest("x")
            s.on_trial_complete("x", {"loss": 1.0})

    # -- Ray Tune -----------------------------------------------------------------------
    def test_end_to_end_in_tuner(
        self, searcher_factory: Callable[..., Any], ray_session: Any, storage: str
    ) -> None:
        from ray import tune

        searcher = searcher_factory(seed=0)
        tuner = tune.Tuner(
            _tune_trainable,
            param_space=_tune_space(),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                metric="loss",
                mode="min",
                num_samples=6,
                max_concurrent_trials=2,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=storage, name="contract", verbose=0),
        )
        results = tuner.fit()
        assert len(results) == 6 and results.num_errors == 0
        space = as_space(_tune_space())
        configs = [r.config for r in results]
        for cfg in configs:
            check_types(space, cfg)
        assert len({repr(sorted(c.items())) for c in configs}) == 6
        df = results.get_dataframe()
        best = results.get_best_result()
        assert math.isfinite(best.metrics["loss"])
        # warm start a fresh searcher from the experiment's DataFrame
        fresh = searcher_factory(space=_tune_space(), metric="loss", mode="min", seed=1)
        assert fresh.warm_start(df) == 6
        assert fresh.best()[1] == pytest.approx(best.metrics["loss"])
        check_types(space, fresh.suggest("after"))

    @pytest.mark.slow
    def test_survives_tuner_restore_after_driver_sigkill(self, storage: str) -> None:
        if self.searcher_path is None:
            pytest.skip("no searcher_path for the driver-crash case")
        from rafiki_ray.testing._crash import run_crash_restore

        report = run_crash_restore(
            "rafiki_ray.testing.searchers:crash_experiment",
            storage=storage,
            name="crash",
            kill_after=4,
            factory_kwargs={
                "searcher": self.searcher_path,
                "searcher_kwargs": dict(self.searcher_kwargs),
            },
            introspect="rafiki_ray.testing.searchers:crash_introspect",
        )
        assert report["restore_error"] is None, report["restore_error"]
        assert report["survivors"] == []
        assert report["results_before_kill"] >= 4
        trials = report["trials"]
        assert len(trials) == 8, list(trials)
        space = as_space(dict(_tune_space(), sleep=0.3))
        for tid, info in trials.items():
            assert info["error"] is None, (tid, info["error"])
            assert space.contains(info["config"]), info["config"]
        seen = report["introspection"]
        assert seen["kind"] == self.searcher_path.rpartition(":")[2]
        assert seen["metric"] == "loss" and seen["mode"] == "min" and seen["space"] is not None
        assert seen["n_observations"] == 8 and seen["n_failed"] == 0, seen
