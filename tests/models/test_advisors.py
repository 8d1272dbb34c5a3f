"""Advisor choice in Rafiki's order, the original's advisor bugs fixed, and the directives the
advisors emit (driven directly through Tune's Searcher protocol, no Ray cluster)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ray.tune.search import Searcher

from rafiki_ray.knobs import (
    ArchKnob,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    PolicyKnob,
)
from rafiki_ray.models import AdvisorSearch, choose_advisor, parse_budget
from rafiki_ray.models.advisors import DIRECTIVE_KEY, build_inner, check_advisor
from rafiki_ray.spaces import from_knobs

ALL_POLICIES = {p.lower(): PolicyKnob(p) for p in
                ("SHARE_PARAMS", "EARLY_STOP", "SKIP_TRAIN", "QUICK_EVAL", "DOWNSCALE")}
ARCH = ArchKnob([[0, 1], ["conv", "pool"]])


@pytest.mark.parametrize("knobs,hours,expected", [
    ({"a": FixedKnob(1), "e": PolicyKnob("EARLY_STOP")}, 1, "FIXED"),
    ({"lr": FloatKnob(1e-3, 1, is_exp=True), "s": PolicyKnob("SHARE_PARAMS")}, 1,
     "BAYES_OPT_WITH_PARAM_SHARING"),
    ({"lr": FloatKnob(1e-3, 1), "n": IntegerKnob(1, 3), "c": CategoricalKnob(["a", "b"]),
      "e": PolicyKnob("EARLY_STOP")}, 1, "BAYES_OPT"),
    ({"arch": ARCH, **ALL_POLICIES}, 12, "ENAS"),
    ({"arch": ARCH, **ALL_POLICIES}, 11.9, "RANDOM"),  # the budget is too small for ENAS
    ({"arch": ARCH, "e": PolicyKnob("EARLY_STOP")}, 24, "RANDOM"),  # policies missing
    ({"arch": ARCH, "lr": FloatKnob(0.1, 1), **ALL_POLICIES}, 24, "RANDOM"),  # mixed kinds
    # Fixed + SHARE_PARAMS only: FIXED comes first in the original's order
    ({"a": FixedKnob(1), "s": PolicyKnob("SHARE_PARAMS")}, 1, "FIXED"),
])
def test_advisor_choice_follows_the_original_order(knobs, hours, expected):
    choice = choose_advisor(knobs, parse_budget({"TIME_HOURS": hours}))
    assert choice.name == expected
    assert choice.reason  # the why is given


def test_advisor_override_is_checked_against_the_knobs():
    knobs = {"lr": FloatKnob(0.1, 1)}
    assert check_advisor("random", knobs) == "RANDOM"
    with pytest.raises(ValueError, match="FIXED needs only Fixed/Policy knobs"):
        check_advisor("FIXED", knobs)
    with pytest.raises(ValueError, match="needs a SHARE_PARAMS policy"):
        check_advisor("BAYES_OPT_WITH_PARAM_SHARING", knobs)
    with pytest.raises(ValueError, match="ENAS needs an ArchKnob"):
        check_advisor("ENAS", knobs)
    with pytest.raises(ValueError, match="advisor: must be one of"):
        check_advisor("GRID", knobs)


def _search(knobs, advisor, *, count=None, seed=0, inner_advisor=None, **kw):
    budget = parse_budget({"MODEL_TRIAL_COUNT": count or -1})
    inner = build_inner(inner_advisor or advisor, from_knobs(knobs), seed=seed, budget=budget,
                        n_initial=kw.pop("n_initial", None))
    policies = {k: v.policy for k, v in knobs.items() if isinstance(v, PolicyKnob)}
    return AdvisorSearch(inner, advisor=advisor, policies=policies, trial_count=count,
                         seed=seed, **kw)


def test_fixed_proposes_one_trial_with_plain_policy_booleans():
    """The original's FIXED advisor read ``knob.value.value`` on PolicyKnobs, which have no
    value: it crashed. Here the one trial gets the fixed values and False policies."""
    knobs = {"a": FixedKnob(3), "b": FixedKnob("x"), "e": PolicyKnob("EARLY_STOP")}
    s = _search(knobs, "FIXED")
    config = s.suggest("t1")
    assert {k: v for k, v in config.items() if k != DIRECTIVE_KEY} == {"a": 3, "b": "x",
                                                                       "e": False}
    assert config[DIRECTIVE_KEY]["phase"] == "SEARCH"
    assert s.suggest("t2") == Searcher.FINISHED


@pytest.mark.parametrize("advisor", ["RANDOM", "BAYES_OPT"])
def test_log_scaled_knobs_are_sampled_in_log_space(advisor):
    """The original's RANDOM advisor ignored is_exp for floats and integers, and its skopt BO
    ignored it for integers: uniform over [1, 1024] puts 3% of the draws below 32. In log
    space half of them are below 32 (sqrt(1 * 1024))."""
    knobs = {"n": IntegerKnob(1, 1024, is_exp=True), "lr": FloatKnob(1e-5, 1e-1, is_exp=True)}
    s = _search(knobs, advisor, n_initial=64)
    configs = []
    for i in range(64):
        c = s.suggest(f"t{i}")
        configs.append(c)
        if advisor == "BAYES_OPT":
            s.on_trial_complete(f"t{i}", {"score": 0.0})
    ns = np.array([c["n"] for c in configs])
    lrs = np.array([c["lr"] for c in configs])
    assert 0.3 < np.mean(ns < 32) < 0.7
    assert 0.3 < np.mean(lrs < 1e-3) < 0.7


@pytest.mark.parametrize("advisor", ["BAYES_OPT", "BAYES_OPT_WITH_PARAM_SHARING"])
def test_bayes_opt_early_stop_searches_then_final_trains_the_best(advisor):
    """Both BO advisors: SEARCH trials with EARLY_STOP, then FINAL_TRAIN re-trains the best
    SEARCH configurations in full. The original's BayesOptWithParamSharingAdvisor had no
    final phase: every trial, the deployed best one too, trained early-stopped."""
    sharing = advisor == "BAYES_OPT_WITH_PARAM_SHARING"
    knobs = {"x": FloatKnob(0.0, 1.0), "early": PolicyKnob("EARLY_STOP"),
             "quick": PolicyKnob("QUICK_EVAL")}
    if sharing:
        knobs["share"] = PolicyKnob("SHARE_PARAMS")
    s = _search(knobs, advisor, count=8, final_fraction=0.25, n_initial=3)
    assert s.has_final_phase()
    search = []
    for i in range(6):
        c = s.suggest(f"s{i}")
        d = c[DIRECTIVE_KEY]
        assert d["phase"] == "SEARCH" and c["early"] is True
        assert c["quick"] is False
        if sharing:  # the search itself shares as before: SHARE_PARAMS on, publishing
            assert c["share"] is True and d["to_cache_params"] is True
        search.append(c)
        s.on_trial_complete(f"s{i}", {"score": c["x"]})
    best_first = sorted(search, key=lambda c: -c["x"])
    finals = [s.suggest(f"f{i}") for i in range(2)]
    for f, want in zip(finals, best_first):
        assert f[DIRECTIVE_KEY] == {"phase": "FINAL_TRAIN", "params_type": None,
                                    "to_eval": True, "to_cache_params": False}
        assert f["x"] == want["x"]  # the best SEARCH configurations, best first
        assert f["early"] is False and f["quick"] is False  # every policy off
        assert f.get("share", False) is False  # from scratch: no shared parameters
    assert s.suggest("f2") == Searcher.FINISHED  # MODEL_TRIAL_COUNT reached


def test_param_sharing_without_early_stop_has_no_final_phase():
    """Without an EARLY_STOP policy the search trials already train in full: no window."""
    knobs = {"x": FloatKnob(0.0, 1.0), "share": PolicyKnob("SHARE_PARAMS")}
    s = _search(knobs, "BAYES_OPT_WITH_PARAM_SHARING", count=4, inner_advisor="RANDOM")
    assert not s.has_final_phase()
    for i in range(4):
        c = s.suggest(f"t{i}")
        assert c[DIRECTIVE_KEY]["phase"] == "SEARCH" and c["share"] is True
        s.on_trial_complete(f"t{i}", {"score": c["x"]})
    assert s.suggest("t4") == Searcher.FINISHED


def test_param_sharing_is_epsilon_greedy_and_always_publishes():
    knobs = {"x": FloatKnob(0.0, 1.0), "share": PolicyKnob("SHARE_PARAMS"),
             "early": PolicyKnob("EARLY_STOP")}
    # the coin is the wrapper's; a random inner searcher keeps 200 suggestions cheap
    # (no final window here: final_fraction 0 keeps all 200 trials in the search phase)
    s = _search(knobs, "BAYES_OPT_WITH_PARAM_SHARING", count=200, inner_advisor="RANDOM",
                final_fraction=0.0)
    kinds = []
    for i in range(200):
        c = s.suggest(f"t{i}")
        d = c[DIRECTIVE_KEY]
        assert c["share"] is True and c["early"] is True
        assert d["to_cache_params"] is True  # the fix: the GLOBAL_BEST cache fills
        kinds.append(d["params_type"])
        s.on_trial_complete(f"t{i}", {"score": c["x"]})
    # P(no sharing) = exp(-4 * used): ~0.8 of the first 20 trials, ~0.03 of the last 50
    assert kinds[0] is None
    assert sum(k is None for k in kinds[:20]) >= 12
    assert sum(k == "GLOBAL_BEST" for k in kinds[150:]) >= 45


def test_advisor_search_state_round_trips():
    knobs = {"x": FloatKnob(0.0, 1.0), "n": IntegerKnob(1, 64, is_exp=True),
             "early": PolicyKnob("EARLY_STOP")}
    a = _search(knobs, "BAYES_OPT", count=10, n_initial=3)
    for i in range(5):
        c = a.suggest(f"t{i}")
        a.on_trial_complete(f"t{i}", {"score": -abs(c["x"] - 0.3)})
    b = _search(knobs, "BAYES_OPT", count=10, seed=123, n_initial=3)
    b.set_state(a.get_state())
    assert a.suggest("t5") == b.suggest("t5")


def test_enas_is_chosen_and_runs_rafikis_schedule():
    """ENAS builds rafiki_ray.nas.ENASSearch on Rafiki's schedule: TRAIN then EVAL trials with
    their directives and policies, the final phase (FINAL_EVAL x10, one FINAL_TRAIN) 11 trials
    before MODEL_TRIAL_COUNT; the advisor keeps the directive the searcher emits."""
    from rafiki_ray.nas import ENASSearch

    knobs = {"arch": ARCH, **ALL_POLICIES}
    budget = parse_budget({"TIME_HOURS": 24, "MODEL_TRIAL_COUNT": 13})
    assert choose_advisor(knobs, budget).name == "ENAS"
    inner = build_inner("ENAS", from_knobs(knobs), seed=7, budget=budget)
    assert isinstance(inner, ENASSearch)
    s = AdvisorSearch(inner, advisor="ENAS", policies={k: v.policy for k, v in
                                                       ALL_POLICIES.items()})
    phases = []
    for i in range(13):
        c = s.suggest(f"t{i}")
        if not isinstance(c, dict):
            break
        phases.append(c[DIRECTIVE_KEY]["phase"])
        if i == 0:
            assert c["downscale"] is True and c["early_stop"] is True
            assert c[DIRECTIVE_KEY]["to_cache_params"] is True
        s.on_trial_complete(f"t{i}", {"score": 0.1 * i})
    assert phases[:2] == ["TRAIN", "EVAL"]
    assert phases.count("FINAL_EVAL") == 10 and phases[-1] == "FINAL_TRAIN", phases


def test_time_budget_ends_suggestions():
    from rafiki_ray.models import BudgetClock

    clock = BudgetClock(budget_s=100.0, grace_s=5.0)
    s = _search({"x": FloatKnob(0.0, 1.0)}, "RANDOM", clock=clock)
    assert clock.get_state()["restored_from_s"] is None
    clock.set_state({"elapsed_s": 42.0})
    assert clock.get_state()["restored_from_s"] == 42.0
    assert isinstance(s.suggest("t0"), dict)
    assert 42.0 <= s.created_s["t0"] < 43.0  # when in the budget each trial was suggested
    assert s.get_state()["created_s"] == s.created_s
    clock.set_state({"elapsed_s": 100.5})  # as Tune hands it back after a restore
    assert s.suggest("t1") == Searcher.FINISHED and list(s.created_s) == ["t0"]
    assert not clock.grace_over()
    clock.set_state({"elapsed_s": 105.0})
    assert clock.grace_over() and math.isclose(clock.fraction_used(), 1.0)


@pytest.mark.parametrize("advisor", ["BAYES_OPT", "BAYES_OPT_WITH_PARAM_SHARING"])
@pytest.mark.parametrize("hours, search_until", [(10.0, 9.0), (2.0, 1.5), (0.1, 0.075)])
def test_final_window_is_the_last_hour_or_the_last_quarter_of_a_short_budget(hours,
                                                                             search_until,
                                                                             advisor):
    """Rafiki's BayesOptAdvisor (EARLY_STOP) turned to FINAL_TRAIN once <= 1 h was left, so
    under its default 0.1 h budget (and any budget <= 1 h) every trial was FINAL_TRAIN:
    no search, no early stopping. Here the window is min(1 h, final_fraction * TIME_HOURS):
    the original's last hour for budgets >= 4 h (final_fraction 0.25), the last quarter
    below."""
    from rafiki_ray.models import BudgetClock

    knobs = {"x": FloatKnob(0.0, 1.0), "early": PolicyKnob("EARLY_STOP"),
             "share": PolicyKnob("SHARE_PARAMS")}
    clock = BudgetClock(budget_s=hours * 3600, grace_s=0.0)
    s = _search(knobs, advisor, clock=clock)
    margin = 0.002 * hours * 3600
    clock.set_state({"elapsed_s": search_until * 3600 - margin})
    assert not s.in_final_window()
    c = s.suggest("a")
    assert c[DIRECTIVE_KEY]["phase"] == "SEARCH" and c["early"] is True
    s.on_trial_complete("a", {"score": 0.5})
    clock.set_state({"elapsed_s": search_until * 3600 + margin})
    assert s.in_final_window()
    f = s.suggest("b")
    assert f[DIRECTIVE_KEY]["phase"] == "FINAL_TRAIN" and f["early"] is False
    assert f["share"] is False  # every policy off: from scratch
    assert f["x"] == c["x"]  # the best SEARCH configuration, re-trained in full


def test_advisor_search_passes_the_inner_searchers_concurrency_slots():
    """Pausing schedulers free a paused trial's max_concurrent slot through the seam; the
    advisor answers for its inner searcher. It has no ``.searcher`` attribute: Tune's
    SearchGenerator.save_to_dir treats any searcher with one as a wrapper (saves it with
    get_state, the inner one apart), which broke the model crash-restore tests."""
    from ray.tune.search import ConcurrencyLimiter, SearchGenerator

    from rafiki_ray import _tune_seam as seam

    s = _search({"x": FloatKnob(0.0, 1.0)}, "BAYES_OPT")
    assert not hasattr(s, "searcher")
    limiter = ConcurrencyLimiter(s, max_concurrent=1)  # hands the limit to the inner searcher
    ctrl = type("Ctrl", (), {"search_alg": SearchGenerator(limiter)})()
    assert limiter.suggest("a") is not None and limiter.suggest("b") is None
    assert seam.concurrency_slots(ctrl) == ({"a"}, 1)
    assert seam.free_slot(ctrl, "a")  # a paused
    assert limiter.suggest("b") is not None
    assert not seam.take_slot(ctrl, "a") and seam.take_slot(ctrl, "a", force=True)
    unlimited = type("Ctrl", (), {"search_alg": SearchGenerator(_search(
        {"x": FloatKnob(0.0, 1.0)}, "BAYES_OPT"))})()
    assert seam.concurrency_slots(unlimited) is None
