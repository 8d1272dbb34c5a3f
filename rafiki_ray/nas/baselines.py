"""Architecture-search baselines on the same shared weights and schedule as ENAS (NNI offers
both): ``RandomNAS`` (Li & Talwalkar 2019, "Random Search and Reproducibility for Neural
Architecture Search": uniform architectures, weight sharing, the best of the evaluated ones
re-evaluated at the end) and ``RegularizedEvolutionNAS`` (Real et al. 2019, "Regularized
Evolution for Image Classifier Architecture Search": a tournament of ``sample_size`` among
the ``population_size`` most recent scored architectures, the winner mutated in one
position, the oldest member leaves).

Both are :class:`~rafiki_ray.nas._base.NASSearcher` s: with ``schedule=`` they emit the same
TRAIN / EVAL / FINAL_EVAL / FINAL_TRAIN directives as ENAS; FINAL_EVAL re-evaluates the best
distinct architectures seen. Only SEARCH and EVAL scores count as fitness.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rafiki_ray._errors import invalid
from rafiki_ray.nas._base import NASSearcher
from rafiki_ray.nas._schedule import RafikiSchedule
from rafiki_ray.searchers.evolution import mutable_params
from rafiki_ray.spaces import Arch, SearchSpace

__all__ = ["RandomNAS", "RegularizedEvolutionNAS", "mutate_position"]


def mutate_position(space: SearchSpace, config: Mapping[str, Any], rng: np.random.Generator
                    ) -> dict[str, Any]:
    """Resample ONE position: one item of an ``Arch`` parameter (to another candidate), or
    one other active parameter (a conditional with fresh sub-parameters), uniformly over positions."""
    child = copy.deepcopy(dict(config))
    slots: list[tuple[tuple[str, ...], Any, int | None]] = []
    for path, p in mutable_params(space, child):
        if isinstance(p, Arch):
            slots.extend((path, p, i) for i in range(len(p.items)))
        else:
            slots.append((path, p, None))
    if not slots:
        return child
    path, p, item = slots[int(rng.integers(len(slots)))]
    node = child
    for key in path[:-1]:
        node = node[key]
    if item is None:
        node[path[-1]] = p.sample(rng)
    else:
        value = list(node[path[-1]])
        others = [i for i in range(len(p.items[item])) if i != p.index(item, value[item])]
        if others:  # a different candidate at that position
            value[item] = copy.deepcopy(p.items[item][others[int(rng.integers(len(others)))]])
        node[path[-1]] = value
    return child


class RandomNAS(NASSearcher):
    """Uniform architectures (each parameter from its prior), as a Tune searcher."""

    def _propose(self, trial_id: str) -> dict[str, Any]:
        return self._distinct(lambda: self.space.sample(self.rng))


class RegularizedEvolutionNAS(NASSearcher):
    """Regularized (aging) evolution over architectures.

    Args:
        space, metric, mode, seed, points_to_evaluate, constant_liar_type, max_concurrent,
            schedule: as :class:`~rafiki_ray.nas.ENASSearch`.
        population_size: scored members kept (the most recent; Real et al. 100).
        sample_size: tournament size (Real et al. 25).
    """

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
        population_size: int = 20,
        sample_size: int = 5,
    ) -> None:
        for name, v in (("population_size", population_size), ("sample_size", sample_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise invalid(name, "must be an int >= 1", v)
        if sample_size > population_size:
            raise invalid("sample_size", f"must be <= population_size={population_size}",
                          sample_size)
        self._population_size, self._sample_size = int(population_size), int(sample_size)
        self._population: list[dict[str, Any]] = []
        super().__init__(
            space, metric=metric, mode=mode, seed=seed, points_to_evaluate=points_to_evaluate,
            constant_liar_type=constant_liar_type, max_concurrent=max_concurrent,
            schedule=schedule,
        )

    @property
    def population(self) -> list[dict[str, Any]]:
        """``{"config", "loss"}`` members, oldest first (loss: lower is better)."""
        return copy.deepcopy(self._population)

    def _propose(self, trial_id: str) -> dict[str, Any]:
        if len(self._population) < self._population_size:
            return self._distinct(lambda: self.space.sample(self.rng))
        pop = self._population
        idx = self.rng.choice(len(pop), size=self._sample_size, replace=False)
        parent = pop[int(min(idx, key=lambda i: (pop[i]["loss"], i)))]["config"]
        return self._distinct(lambda: mutate_position(self.space, parent, self.rng))

    def _learn(self, config: dict[str, Any], loss: float) -> None:
        self._population.append({"config": copy.deepcopy(config), "loss": float(loss)})
        if len(self._population) > self._population_size:
            self._population.pop(0)  # the oldest leaves

    def _get_extra_state(self) -> dict[str, Any]:
        return {**super()._get_extra_state(), "population_size": self._population_size,
                "sample_size": self._sample_size, "population": copy.deepcopy(self._population)}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        super()._set_extra_state(state)
        self._population_size = state["population_size"]
        self._sample_size = state["sample_size"]
        self._population = copy.deepcopy(state["population"])
