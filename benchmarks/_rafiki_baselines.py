"""The original Rafiki's advisors, reproduced faithfully as Tune searchers (baselines only).

* :class:`RafikiSkoptSearch`: ``rafiki/advisor/skopt.py``: ``skopt.Optimizer(dims,
  n_initial_points=10, base_estimator="gp")``, ``tell(x, -score)``; ``Integer(min, max)`` with
  ``is_exp`` ignored, ``Real(min, max, "log-uniform" if is_exp else "uniform")`` with a zero
  bound replaced by 1e-12, ``Categorical``; Fixed and Policy knobs excluded (policies False).
* :class:`RafikiRandomSearch`: ``rafiki/advisor/random.py``: uniform floats and integers with
  ``is_exp`` ignored, uniform categories, policies False.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.tune.search import Searcher

from rafiki_ray.knobs import CategoricalKnob, FixedKnob, FloatKnob, IntegerKnob, PolicyKnob

__all__ = ["RafikiRandomSearch", "RafikiSkoptSearch"]


class _OwnSpace(Searcher):
    """Built with its own space: Tune's param_space (the same knobs) is not needed."""

    def set_search_properties(self, metric: str | None, mode: str | None,
                              config: dict[str, Any], **spec: Any) -> bool:
        return True


def _constants(knobs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, k in knobs.items():
        if isinstance(k, FixedKnob):
            out[name] = k.value
        elif isinstance(k, PolicyKnob):
            out[name] = False
    return out


class RafikiSkoptSearch(_OwnSpace):
    def __init__(self, knobs: dict[str, Any], *, seed: int | None = None,
                 metric: str = "score", mode: str = "max") -> None:
        from skopt import Optimizer
        from skopt.space import Categorical, Integer, Real

        super().__init__(metric=metric, mode=mode)
        self.knobs = knobs
        self.names, dims = [], []
        for name, k in knobs.items():
            if isinstance(k, CategoricalKnob):
                dims.append(Categorical(k.values))
            elif isinstance(k, IntegerKnob):
                dims.append(Integer(k.value_min, k.value_max))  # is_exp ignored (as Rafiki)
            elif isinstance(k, FloatKnob):
                lo = 1e-12 if (k.is_exp and k.value_min == 0) else k.value_min
                dims.append(Real(lo, k.value_max, "log-uniform" if k.is_exp else "uniform"))
            else:
                continue
            self.names.append(name)
        self.opt = Optimizer(dims, n_initial_points=10, base_estimator="gp", random_state=seed)
        self.pending: dict[str, list[Any]] = {}

    def suggest(self, trial_id: str) -> dict[str, Any]:
        x = self.opt.ask()
        self.pending[trial_id] = x
        config = {n: (v.item() if hasattr(v, "item") else v) for n, v in zip(self.names, x)}
        return {**config, **_constants(self.knobs)}

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        x = self.pending.pop(trial_id, None)
        if x is None or error or not result or result.get("score") is None:
            return
        score = float(result["score"])
        if np.isfinite(score):
            self.opt.tell(x, -score)


class RafikiRandomSearch(_OwnSpace):
    def __init__(self, knobs: dict[str, Any], *, seed: int | None = None,
                 metric: str = "score", mode: str = "max") -> None:
        super().__init__(metric=metric, mode=mode)
        self.knobs = knobs
        self.rng = np.random.default_rng(seed)

    def suggest(self, trial_id: str) -> dict[str, Any]:
        config = _constants(self.knobs)
        for name, k in self.knobs.items():
            if isinstance(k, CategoricalKnob):
                config[name] = k.values[int(self.rng.integers(len(k.values)))]
            elif isinstance(k, IntegerKnob):  # is_exp ignored (as Rafiki)
                config[name] = int(self.rng.integers(k.value_min, k.value_max + 1))
            elif isinstance(k, FloatKnob):  # is_exp ignored (as Rafiki)
                config[name] = float(self.rng.uniform(k.value_min, k.value_max))
        return config

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        pass
