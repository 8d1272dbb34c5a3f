"""TPESearch does not spend a small budget on configurations indistinguishable from known
points (issue 17: 3 of 16 digits trials went to alpha 1.15e-6, 1.18e-6, 1.47e-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ray import tune

from rafiki_ray.searchers import TPESearch
from rafiki_ray.searchers._near import is_near, near_threshold
from rafiki_ray.spaces import Encoder, SearchSpace

SPACE = {
    "alpha": tune.loguniform(1e-7, 1e-1),
    "loss": tune.choice(["hinge", "log_loss"]),
    "penalty": tune.choice(["l2", "l1"]),
}


def _score(cfg):
    # a plateau: every alpha below 1e-4 scores the same (as a linear model on digits does)
    a = max(cfg["alpha"], 1e-4)
    return round(0.95 - 0.02 * abs(math.log10(a) + 4) + (0.01 if cfg["loss"] == "hinge" else 0), 3)


def _run(seed, min_distance, n=16):
    s = TPESearch(SPACE, metric="acc", mode="max", seed=seed, n_startup_trials=5,
                  min_distance=min_distance)
    configs = []
    for i in range(n):
        cfg = s.suggest(str(i))
        configs.append(cfg)
        s.on_trial_complete(str(i), {"acc": _score(cfg)})
    return configs


def _closest_pair(configs):
    enc = Encoder(SearchSpace.from_tune(SPACE))
    xs = [enc.encode(c) for c in configs]
    best = math.inf
    for i in range(len(xs)):
        for j in range(i):
            (x, a), (y, b) = xs[i], xs[j]
            if (a == b).all() and np.array_equal(x[1:], y[1:]):  # same categories
                best = min(best, float(np.abs(x - y).max()))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_small_budget_never_repeats_a_point_up_to_the_threshold(seed):
    configs = _run(seed, 0.02)
    # with 16 points in 1 numeric dimension the threshold is at least 0.02 / 17
    assert _closest_pair(configs) >= 0.02 / 17


def test_threshold_and_nearness():
    assert near_threshold(0.05, 0, 1) == pytest.approx(0.05)
    assert near_threshold(0.05, 15, 2) == pytest.approx(0.0125)
    X = np.array([[0.5, 1.0], [0.2, 0.0]])
    A = np.ones_like(X, dtype=bool)
    assert is_near(np.array([0.505, 1.0]), np.array([True, True]), X, A, 0.01)
    assert not is_near(np.array([0.505, 0.0]), np.array([True, True]), X, A, 0.01)  # category
    assert not is_near(np.array([0.53, 1.0]), np.array([True, True]), X, A, 0.01)
    assert not is_near(np.array([0.5, 1.0]), np.array([True, False]), X, A, 0.01)  # activity


def test_min_distance_is_validated():
    with pytest.raises(ValueError, match="min_distance"):
        TPESearch(SPACE, metric="acc", mode="max", min_distance=-1)
