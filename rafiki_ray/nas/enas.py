"""``ENASSearch``: the ENAS controller (Pham et al. 2018, "Efficient Neural Architecture
Search via Parameter Sharing"; Rafiki's ENAS advisor) as a Tune searcher.

One central controller per experiment (this searcher lives in Tune's driver); every trial's
architecture is sampled from its current policy, so many trials sample concurrently. The
search space is compiled into positions (:mod:`rafiki_ray.nas._plan`: Rafiki ``ArchKnob``
positions, NNI ``layer_choice`` / ``input_choice``, plain categorical knobs, conditional
choices, and numeric knobs split into ``bins`` slices); the LSTM controller
(:mod:`rafiki_ray.nas._controller`) samples them in order and learns by REINFORCE from every
``update_every`` scored results (reward = the metric, negated when ``mode="min"``).

With ``schedule=RafikiSchedule(...)`` the searcher emits Rafiki's directives (TRAIN / EVAL
periods on shared supergraph weights, then FINAL_EVAL of ``n_final_eval`` architectures
sampled from the trained controller and one FINAL_TRAIN from scratch of the best;
:mod:`rafiki_ray.nas._schedule`); only SEARCH and EVAL scores teach the controller.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from rafiki_ray._args import POSITIVE, check_number
from rafiki_ray._errors import invalid
from rafiki_ray.nas._base import NASSearcher
from rafiki_ray.nas._controller import Controller
from rafiki_ray.nas._plan import Plan
from rafiki_ray.nas._schedule import RafikiSchedule
from rafiki_ray.searchers._base import RafikiSearcher

__all__ = ["ENAS_DEFAULTS", "ENASSearch"]

logger = logging.getLogger(__name__)

#: The controller's hyperparameters (Pham et al. 2018; Rafiki ``advisor/tf.py``).
ENAS_DEFAULTS: dict[str, Any] = {
    "hidden_size": 32,
    "num_layers": 2,
    "tanh_constant": 1.1,
    "temperature": None,
    "lr": 0.0035,
    "beta1": 0.0,
    "eps": 1e-3,
    "entropy_weight": 1e-4,
    "baseline_decay": 0.99,
    "baseline": None,
}


class ENASSearch(NASSearcher):
    """ENAS architecture search as a ``ray.tune.search.Searcher``.

    Args:
        space, metric, mode, seed, points_to_evaluate, max_concurrent: as
            :class:`~rafiki_ray.searchers.RafikiSearcher`.
        constant_liar_type: accepted for a uniform interface; the controller keeps no
            surrogate, so it has no effect (duplicates among pending trials are redrawn).
        schedule: a :class:`~rafiki_ray.nas.RafikiSchedule` (or its dict) to emit Rafiki's
            TRAIN / EVAL / FINAL_EVAL / FINAL_TRAIN directives; ``None`` (default) for plain
            search.
        update_every: REINFORCE step after this many scored results (Rafiki 10).
        bins: slices of a numeric parameter with more than ``bins`` values.
        hidden_size, num_layers, tanh_constant, temperature, lr, beta1, eps, entropy_weight,
            baseline_decay: the controller (defaults in :data:`ENAS_DEFAULTS`: 2 x 32 LSTM,
            1.1 tanh, Adam(0.0035, beta1 0, eps 1e-3), entropy 1e-4, EMA 0.99).
        baseline: the initial baseline; ``None`` (default) starts it at the first reward so
            that rewards of any scale work (ENAS starts at 0.0; pass ``baseline=0.0``).
    """

    ALIASES: ClassVar[dict[str, str]] = {
        **RafikiSearcher.ALIASES,
        "controller_lr": "lr",
        "lstm_size": "hidden_size",
        "lstm_num_layers": "num_layers",
        "bl_dec": "baseline_decay",
        "controller_entropy_weight": "entropy_weight",
    }

    def __init__(
        self,
        space: Any = None,
        *,
        metric: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        constant_liar_type: str | None = "min",
        max_concurrent: int | None = None,
        schedule: RafikiSchedule | Mapping[str, Any] | None = None,
        update_every: int = 10,
        bins: int = 8,
        hidden_size: int = ENAS_DEFAULTS["hidden_size"],
        num_layers: int = ENAS_DEFAULTS["num_layers"],
        tanh_constant: float | None = ENAS_DEFAULTS["tanh_constant"],
        temperature: float | None = ENAS_DEFAULTS["temperature"],
        lr: float = ENAS_DEFAULTS["lr"],
        beta1: float = ENAS_DEFAULTS["beta1"],
        eps: float = ENAS_DEFAULTS["eps"],
        entropy_weight: float = ENAS_DEFAULTS["entropy_weight"],
        baseline_decay: float = ENAS_DEFAULTS["baseline_decay"],
        baseline: float | None = ENAS_DEFAULTS["baseline"],
    ) -> None:
        hp = {
            "hidden_size": check_number("hidden_size", hidden_size, integer=True, low=1),
            "num_layers": check_number("num_layers", num_layers, integer=True, low=1),
            "tanh_constant": check_number("tanh_constant", tanh_constant, none_ok=True,
                                          **POSITIVE),
            "temperature": check_number("temperature", temperature, none_ok=True, **POSITIVE),
            "lr": check_number("lr", lr, **POSITIVE),
            "beta1": check_number("beta1", beta1, low=0, high=1, high_open=True),
            "eps": check_number("eps", eps, **POSITIVE),
            "entropy_weight": check_number("entropy_weight", entropy_weight, low=0),
            "baseline_decay": check_number("baseline_decay", baseline_decay, low=0, high=1,
                                           high_open=True),
            "baseline": check_number("baseline", baseline, none_ok=True),
        }
        self._hp = hp
        self._update_every = check_number("update_every", update_every, integer=True, low=1)
        self._bins = check_number("bins", bins, integer=True, low=2)
        # the controller's seed is drawn here (not from the searcher's generator) so that
        # setting a space later does not shift the searcher's own draws
        self._controller_seed = int(np.random.default_rng(seed).integers(2**31 - 1))
        self._plan: Plan | None = None
        self._controller: Controller | None = None
        self._buffer: list[dict[str, Any]] = []
        super().__init__(
            space,
            metric=metric,
            mode=mode,
            seed=seed,
            points_to_evaluate=points_to_evaluate,
            constant_liar_type=constant_liar_type,
            max_concurrent=max_concurrent,
            schedule=schedule,
        )

    # ------------------------------------------------------------------ controller
    def _on_space(self) -> None:
        plan = Plan(self.space, bins=self._bins)
        if not plan.positions:
            raise invalid("space", "has no choice for the controller (only fixed values)",
                          self.space.to_dict())
        self._plan = plan
        self._controller = Controller(
            tokens=[p.tokens for p in plan.positions],
            n_tokens=plan.n_tokens,
            seed=self._controller_seed,
            **self._hp,
        )
        self._buffer = []

    @property
    def controller(self) -> Controller:
        if self._controller is None:
            raise RuntimeError("ENASSearch: no search space set yet")
        return self._controller

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            raise RuntimeError("ENASSearch: no search space set yet")
        return self._plan

    def sample_architecture(self) -> dict[str, Any]:
        """One configuration drawn from the controller's current policy."""
        return self.plan.build(self.controller.sampler(), self.rng)

    def probability(self, config: Mapping[str, Any]) -> float:
        """The controller's probability of ``config``'s decisions (numeric slices, not
        values inside them)."""
        dec = self.plan.decisions(config)
        return self.controller.probability(dec, self.plan.masks(dec))

    def _propose(self, trial_id: str) -> dict[str, Any]:
        return self._distinct(self.sample_architecture)

    def _final_candidates(self, n: int) -> list[dict[str, Any]]:
        """Rafiki: FINAL_EVAL architectures are sampled from the trained controller."""
        return [self.sample_architecture() for _ in range(n)]

    def _learn(self, config: dict[str, Any], loss: float) -> None:
        self._buffer.append({"config": copy.deepcopy(config), "reward": -float(loss)})
        if len(self._buffer) >= self._update_every:
            batch = []
            for item in self._buffer:
                dec = self.plan.decisions(item["config"])
                batch.append((dec, self.plan.masks(dec), item["reward"]))
            loss_value = self.controller.update(batch)
            logger.debug("controller update %d: loss %.4g baseline %.4g",
                         self.controller.n_updates, loss_value, self.controller.baseline)
            self._buffer = []

    # ------------------------------------------------------------------ state
    def _get_extra_state(self) -> dict[str, Any]:
        return {
            **super()._get_extra_state(),
            "hp": dict(self._hp),
            "update_every": self._update_every,
            "bins": self._bins,
            "controller_seed": self._controller_seed,
            "buffer": copy.deepcopy(self._buffer),
            "controller": self._controller.get_state() if self._controller is not None else None,
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        super()._set_extra_state(state)
        self._hp = dict(state["hp"])
        self._update_every = state["update_every"]
        self._bins = state["bins"]
        self._controller_seed = state["controller_seed"]
        if self._space is not None:
            self._on_space()  # rebuild with the restored settings, then load the weights
            self._controller.set_state(state["controller"])  # type: ignore[union-attr]
        self._buffer = copy.deepcopy(state["buffer"])
