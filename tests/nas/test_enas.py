"""ENASSearch: the searcher contract, the controller learning (REINFORCE), and Rafiki's
TRAIN / EVAL / FINAL_EVAL / FINAL_TRAIN schedule."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from rafiki_ray.knobs import ArchKnob, PolicyKnob
from rafiki_ray.nas import Controller, ENASSearch, RafikiSchedule
from rafiki_ray.nas._plan import Plan
from rafiki_ray.spaces import Arch, Categorical, SearchSpace, Subset, from_knobs
from rafiki_ray.testing.searchers import SearcherContract, check_types


class TestENASContract(SearcherContract):
    searcher_path = "rafiki_ray.nas:ENASSearch"
    searcher_kwargs: ClassVar[dict[str, Any]] = {"update_every": 2}

    @pytest.fixture
    def searcher_factory(self):
        def make(**kw):
            # the contract's budgets are 16-40 results: learn from every 2 with a faster
            # step than Rafiki's (10, 0.0035), which needs hundreds of results to move
            kw.setdefault("update_every", 2)
            kw.setdefault("lr", 0.05)
            return ENASSearch(**kw)

        return make


OPS = ("conv3", "conv5", "pool", "id")
ARCH10 = SearchSpace({"arch": Arch(tuple(OPS for _ in range(10)))})
BEST10 = [OPS[i % 4] for i in range(10)]


def _score(c: dict[str, Any]) -> float:
    return sum(a == b for a, b in zip(c["arch"], BEST10)) / 10


def test_controller_learns_the_best_of_a_10_position_architecture():
    """Synthetic reward (fraction of positions right): P(best) > 0.5 within 40 updates.
    tanh_constant 2.5 (ENAS micro): with Rafiki's 1.1 a 4-way position is capped at
    p = 0.75, so P(best) could never pass 0.75**10 = 0.056."""
    s = ENASSearch(ARCH10, metric="score", mode="max", seed=0, tanh_constant=2.5, lr=0.02)
    p0 = s.probability({"arch": BEST10})
    assert p0 < 1e-4
    for i in range(400):
        c = s.suggest(f"t{i}")
        s.on_trial_complete(f"t{i}", {"score": _score(c)})
    assert s.controller.n_updates == 40
    assert s.probability({"arch": BEST10}) > 0.5


def test_tanh_constant_caps_the_probability():
    plan = Plan(SearchSpace({"a": Categorical(OPS)}))
    c = Controller(tokens=[p.tokens for p in plan.positions], n_tokens=plan.n_tokens, seed=0,
                   lr=0.1, baseline=0.25)
    for _ in range(100):
        c.update([([(0, i)], [None], float(i == 2)) for i in range(4)])
    cap = math.exp(1.1) / (math.exp(1.1) + 3 * math.exp(-1.1))
    assert cap - 0.05 < c.probability([(0, 2)], [None]) <= cap + 1e-6


@pytest.mark.parametrize("reward, up", [(1.0, True), (-1.0, False)])
def test_reinforce_gradient_sign_on_one_position(reward, up):
    plan = Plan(SearchSpace({"a": Categorical(("x", "y", "z"))}))
    c = Controller(tokens=[p.tokens for p in plan.positions], n_tokens=plan.n_tokens, seed=3,
                   baseline=0.0)
    before = c.probability([(0, 1)], [None])
    # the gradient itself: d loss / d bias is -(adv) * (onehot - p) through tanh (> 0 slope)
    logp, _ = c.log_prob_entropy([(0, 1)], [None])
    adv = reward - 0.01 * reward  # baseline 0 moves 1 % towards the reward first
    c.optimizer.zero_grad()
    (-adv * logp).backward()
    g = c.heads[0].bias.grad.numpy()
    assert (g[1] < 0) == up and (g[0] > 0) == up and (g[2] > 0) == up
    c.optimizer.zero_grad()
    c.update([([(0, 1)], [None], reward)])
    after = c.probability([(0, 1)], [None])
    assert (after > before) == up
    assert c.baseline == pytest.approx(0.01 * reward)


def test_baseline_is_an_ema_and_entropy_bonus_flattens():
    plan = Plan(SearchSpace({"a": Categorical(OPS)}))
    mk = lambda w: Controller(tokens=[p.tokens for p in plan.positions],
                              n_tokens=plan.n_tokens, seed=1, entropy_weight=w, lr=0.05)
    c = mk(0.0)
    c.update([([(0, 0)], [None], 2.0), ([(0, 1)], [None], 4.0)])
    b = 2.0  # starts at the first reward
    b -= 0.01 * (b - 2.0)
    b -= 0.01 * (b - 4.0)
    assert c.baseline == pytest.approx(b)
    # with zero advantages only the entropy term acts: the policy gets flatter
    flat = mk(1.0)
    probs = lambda k: [k.probability([(0, i)], [None]) for i in range(4)]
    before = np.std(probs(flat))
    for _ in range(20):
        flat.update([([(0, 0)], [None], 1.0)])
    assert np.std(probs(flat)) < before


def test_shared_embeddings_for_equal_values():
    space = from_knobs({"cell": ArchKnob([[0, 1], ["conv", "pool"], [0, 1, 2], ["pool", "conv"]])})
    plan = Plan(space)
    toks = [p.tokens for p in plan.positions]
    assert toks[0] == toks[2][:2] and toks[1] == toks[3][::-1]
    assert plan.n_tokens == 5
    # Categorical positions never share
    plan2 = Plan(SearchSpace({"a": Categorical(("x", "y")), "b": Categorical(("x", "y"))}))
    assert set(plan2.positions[0].tokens).isdisjoint(plan2.positions[1].tokens)


def test_input_choice_picks_are_ascending_and_encode_back():
    space = SearchSpace({"skip": Subset(("a", "b", "c", "d"), 2, emit="nni")})
    s = ENASSearch(space, metric="m", mode="max", seed=0)
    for i in range(30):
        c = s.suggest(f"t{i}")
        check_types(space, c)
        dec = s.plan.decisions(c)
        assert [d[1] for d in dec] == c["skip"]["_idx"]
        masks = s.plan.masks(dec)
        assert masks[1][: dec[0][1] + 1].sum() == 0  # the second pick comes after the first
        s.on_trial_complete(f"t{i}", {"m": float(len(c["skip"]["_idx"]))})
    assert s.controller.n_updates == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="update_every"):
        ENASSearch(update_every=0)
    with pytest.raises(ValueError, match="lr"):
        ENASSearch(lr=-1.0)
    with pytest.raises(ValueError, match="beta1"):
        ENASSearch(beta1=1.0)
    with pytest.raises(ValueError, match="bins"):
        ENASSearch(bins=1)
    with pytest.raises(TypeError, match="schedule"):
        ENASSearch(schedule="rafiki")
    with pytest.raises(ValueError, match="n_train"):
        RafikiSchedule(n_train=0)
    with pytest.raises(ValueError, match="params_type"):
        RafikiSchedule(params_type="NONE")
    with pytest.raises(ValueError, match="no choice"):
        ENASSearch(SearchSpace({"p": from_knobs({"p": PolicyKnob("EARLY_STOP")})["p"]}))


def test_source_argument_names():
    s = ENASSearch.from_args({"optimize_mode": "maximize", "controller_lr": 0.01,
                              "lstm_size": 16, "bl_dec": 0.9})
    assert s.mode == "max" and s._hp["lr"] == 0.01 and s._hp["hidden_size"] == 16


# ---------------------------------------------------------------------------------------
# the Rafiki schedule

KNOBS = from_knobs({
    "cell": ArchKnob([OPS, OPS, OPS]),
    **{p.lower(): PolicyKnob(p) for p in
       ("SHARE_PARAMS", "EARLY_STOP", "SKIP_TRAIN", "QUICK_EVAL", "DOWNSCALE")},
})


def _policies(c: dict[str, Any]) -> set[str]:
    return {k.upper() for k in ("share_params", "early_stop", "skip_train", "quick_eval",
                                "downscale") if c[k]}


def test_schedule_periods_then_final_eval_then_one_final_train():
    sched = RafikiSchedule(n_train=1, n_eval=2, n_final_eval=3, final_after_trials=6)
    s = ENASSearch(KNOBS, metric="score", mode="max", seed=0, schedule=sched, update_every=2)
    phases = []
    for i in range(6):
        c = s.suggest(f"t{i}")
        d = c.pop("_rafiki")
        check_types(KNOBS, c)
        phases.append(d["phase"])
        if d["phase"] == "TRAIN":
            assert d == {"phase": "TRAIN", "params_type": "GLOBAL_RECENT", "to_eval": False,
                         "to_cache_params": True}
            assert _policies(c) == {"DOWNSCALE", "EARLY_STOP"}
            s.on_trial_complete(f"t{i}", {"score": float("nan")})
        else:
            assert d == {"phase": "EVAL", "params_type": "GLOBAL_RECENT", "to_eval": True,
                         "to_cache_params": False}
            assert _policies(c) == {"DOWNSCALE", "QUICK_EVAL", "SKIP_TRAIN"}
            s.on_trial_complete(f"t{i}", {"score": 0.1 * i})
    assert phases == ["TRAIN", "EVAL", "EVAL"] * 2
    assert s.controller.n_updates == 2  # 4 EVAL scores, TRAIN's NaN never counts
    finals = [s.suggest(f"f{i}") for i in range(3)]
    for c in finals:
        assert c["_rafiki"]["phase"] == "FINAL_EVAL" and c["_rafiki"]["to_eval"]
        assert _policies(c) == {"DOWNSCALE", "SKIP_TRAIN"}
    assert s.suggest("early") is None  # waits for the FINAL_EVAL results
    state = s.get_state()
    for i, score in enumerate([0.3, 0.9, float("nan")]):
        s.on_trial_complete(f"f{i}", {"score": score})
    assert s.controller.n_updates == 2  # final-phase scores do not teach
    ft = s.suggest("final")
    assert ft["_rafiki"] == {"phase": "FINAL_TRAIN", "params_type": None, "to_eval": True,
                             "to_cache_params": False}
    assert _policies(ft) == set()
    assert ft["cell"] == finals[1]["cell"] == s.final_architecture()["cell"]
    assert s.suggest("after") == s.FINISHED
    # restored mid-way through the final phase: same decision
    blank = ENASSearch()
    blank.set_state(state)
    for i, score in enumerate([0.3, 0.9, float("nan")]):
        blank.on_trial_complete(f"f{i}", {"score": score})
    assert blank.suggest("final") == ft


def test_final_phase_by_time_and_without_final_eval():
    sched = RafikiSchedule(n_train=1, n_eval=1, n_final_eval=0, final_after_s=0.0)
    s = ENASSearch(KNOBS, metric="score", mode="max", seed=0, schedule=sched)
    # the time budget is spent at once and nothing was scored: nothing to train
    assert s.suggest("a") == s.FINISHED
    s = ENASSearch(KNOBS, metric="score", mode="max", seed=0,
                   schedule={"n_train": 1, "n_eval": 1, "n_final_eval": 0,
                             "final_after_trials": 2})
    s.on_trial_complete("x", None)
    assert s.suggest("t0")["_rafiki"]["phase"] == "TRAIN"
    c = s.suggest("t1")
    s.on_trial_complete("t1", {"score": 0.5})
    ft = s.suggest("t2")
    assert ft["_rafiki"]["phase"] == "FINAL_TRAIN" and ft["cell"] == c["cell"]


def test_controller_state_round_trips_exactly():
    s = ENASSearch(ARCH10, metric="score", mode="max", seed=5, update_every=3)
    for i in range(10):
        c = s.suggest(f"t{i}")
        s.on_trial_complete(f"t{i}", {"score": _score(c)})
    state = s.get_state()
    ctl = state["extra"]["controller"]
    assert ctl["n_updates"] == 3 and len(state["extra"]["buffer"]) == 1
    assert isinstance(ctl["weights"]["heads.0.weight"], np.ndarray)
    assert any(isinstance(v["exp_avg"], np.ndarray) for v in ctl["optimizer"]["state"].values())
    blank = ENASSearch()
    blank.set_state(state)
    for k, v in s.controller.module.state_dict().items():
        assert torch.equal(v, blank.controller.module.state_dict()[k])
    for i in range(10, 16):
        a, b = s.suggest(f"t{i}"), blank.suggest(f"t{i}")
        assert a == b
        s.on_trial_complete(f"t{i}", {"score": _score(a)})
        blank.on_trial_complete(f"t{i}", {"score": _score(b)})
    assert s.probability({"arch": BEST10}) == blank.probability({"arch": BEST10})
