"""``EvolutionSearch``: NNI's Evolution tuner, with regularized (aging) evolution as an option.

NNI semantics (``nni/algorithms/hpo/evolution_tuner.py``; Real et al. 2017, "Large-scale
evolution of image classifiers"): the population starts as ``population_size`` random
members. Members without a result are handed out first. Then each suggestion shuffles the
population, compares the first two members, keeps the better, mutates ONE of its active
parameters by resampling it from its prior, and drops the worse from the population; the
mutant joins the population when its result arrives. A failed trial is replaced by a new
random member.

``regularized=True`` is regularized (aging) evolution (Real et al. 2019, "Regularized
evolution for image classifier architecture search"): a tournament of ``sample_size``
members drawn at random, the winner is mutated (one parameter), the child joins the
population and the OLDEST member is removed once the population exceeds
``population_size``.

Warm start (``add_evaluated_point``, :meth:`warm_start`) has no NNI counterpart (its
``import_data`` does nothing). Here such points join the population as evaluated members, in
place of random members not handed out yet; beyond ``population_size`` NNI mode keeps the
best members and regularized evolution the newest, so a warm start never leaves more than
``population_size`` members. NNI mode applies the same bound (NNI's own: it hands out at
most ``population_size`` trials at once) to every result, also when more trials run at once
than the population holds. Every point stays in the observations (``best()``, state).

Deviations, on purpose: a mutation that reproduces its parent or a configuration already
pending is redrawn (up to 16 times), so parallel trials do not evaluate the same point;
``±inf`` results are clipped to the finite range seen before comparing; NaN counts as a
failure. Evolution keeps no surrogate model, so ``constant_liar_type`` has no effect.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from rafiki_ray._args import check_number
from rafiki_ray._errors import invalid
from rafiki_ray.searchers._base import RafikiSearcher
from rafiki_ray.spaces import Conditional, Fixed, Policy, SearchSpace

__all__ = ["EvolutionSearch", "mutable_params", "mutate"]

logger = logging.getLogger(__name__)

_REDRAWS = 16


def mutable_params(
    space: SearchSpace, config: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    """``(path, param)`` of every parameter active in ``config`` that a mutation may
    resample: nested sub-spaces are walked, a conditional counts itself and the
    parameters of its chosen option; fixed values and policies are skipped."""
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, p in space.items():
        path = prefix + (key,)
        if isinstance(p, SearchSpace):
            out.extend(mutable_params(p, config[key], path))
        elif isinstance(p, (Fixed, Policy)):
            continue
        elif isinstance(p, Conditional):
            out.append((path, p))
            option = p.options[p.which(config[key])]
            out.extend(mutable_params(option.space, p.sub_value(config[key]), path))
        else:
            out.append((path, p))
    return out


def mutate(
    space: SearchSpace, config: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, Any]:
    """Resample ONE active parameter of ``config`` from its prior (a resampled conditional
    draws a fresh option with fresh sub-parameters, as NNI)."""
    child = copy.deepcopy(dict(config))
    params = mutable_params(space, child)
    if not params:
        return child
    path, param = params[int(rng.integers(len(params)))]
    node = child
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = param.sample(rng)
    return child


class EvolutionSearch(RafikiSearcher):
    """NNI's Evolution tuner (or regularized evolution) as a Tune searcher.

    Args:
        space, metric, mode, seed, points_to_evaluate, max_concurrent: as
            :class:`~rafiki_ray.searchers.RafikiSearcher`.
        constant_liar_type: accepted for a uniform interface; evolution has no model, so it
            has no effect (duplicates among pending trials are redrawn instead).
        population_size: members in the population (NNI default 32).
        regularized: use regularized (aging) evolution instead of NNI's pairwise scheme.
        sample_size: tournament size of regularized evolution (default ``population_size // 4``,
            Real et al.'s ratio 25/100).

    Source argument names (:meth:`from_args`): ``optimize_mode`` -> ``mode`` (NNI
    ``maximize``/``minimize``), ``random_state`` -> ``seed``; ``population_size`` and
    ``sample_size`` keep NNI's names.
    """

    ALIASES: ClassVar[dict[str, str]] = {**RafikiSearcher.ALIASES}

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
        population_size: int = 32,
        regularized: bool = False,
        sample_size: int | None = None,
    ) -> None:
        population_size = check_number("population_size", population_size, integer=True, low=2)
        if not isinstance(regularized, bool):
            raise invalid("regularized", "must be a bool", regularized)
        if sample_size is None:
            sample_size = max(2, population_size // 4)
        sample_size = check_number("sample_size", sample_size, integer=True, low=1)
        if sample_size > population_size:
            raise invalid("sample_size", f"must be <= population_size ({population_size})",
                          sample_size)
        self._population_size = int(population_size)
        self._regularized = regularized
        self._sample_size = int(sample_size)
        # members: {"config": dict, "loss": float | None}; loss None = not evaluated yet.
        # Order is insertion order, which is the age order regularized evolution needs.
        self._population: list[dict[str, Any]] = []
        self._initialised = False
        self._restoring = False
        super().__init__(
            space,
            metric=metric,
            mode=mode,
            seed=seed,
            points_to_evaluate=points_to_evaluate,
            constant_liar_type=constant_liar_type,
            max_concurrent=max_concurrent,
        )

    # ------------------------------------------------------------------ inspection
    @property
    def population(self) -> list[dict[str, Any]]:
        """A copy of the population: ``{"config", "loss"}`` (loss: lower is better; ``None``
        while not evaluated), oldest first."""
        return copy.deepcopy(self._population)

    # ------------------------------------------------------------------ proposals
    def _random_member(self) -> dict[str, Any]:
        return {"config": self.space.sample(self.rng), "loss": None}

    def _init_population(self) -> None:
        self._initialised = True
        n = self._population_size - len(self._population)
        self._population.extend(self._random_member() for _ in range(max(0, n)))

    def _propose(self, trial_id: str) -> dict[str, Any]:
        if not self._initialised:
            self._init_population()
        for i, member in enumerate(self._population):
            if member["loss"] is None:  # unevaluated members first (NNI)
                return self._population.pop(i)["config"]
        if not self._population:  # every member handed out and still running
            return self.space.sample(self.rng)
        parent = self._select_regularized() if self._regularized else self._select_nni()
        return self._child(parent)

    def _select_nni(self) -> dict[str, Any]:
        """Shuffle, keep the better of the first two in front, drop the worse."""
        pop = self._population
        order = self.rng.permutation(len(pop))
        pop[:] = [pop[i] for i in order]
        if len(pop) > 1 and self._key(pop[0]) > self._key(pop[1]):
            pop[0] = pop[1]
        parent = pop[0]["config"]
        if len(pop) > 1:
            pop.pop(1)
        return parent

    def _select_regularized(self) -> dict[str, Any]:
        """Tournament of ``sample_size`` members drawn without replacement."""
        pop = self._population
        k = min(self._sample_size, len(pop))
        idx = self.rng.choice(len(pop), size=k, replace=False)
        best = min(idx, key=lambda i: (self._key(pop[i]), i))
        return pop[int(best)]["config"]

    def _child(self, parent: dict[str, Any]) -> dict[str, Any]:
        pending = list(self._pending.values())
        child = mutate(self.space, parent, self.rng)
        for _ in range(_REDRAWS):
            if child != parent and child not in pending:
                break
            child = mutate(self.space, parent, self.rng)
        return child

    def _key(self, member: dict[str, Any]) -> float:
        """The member's loss with ``±inf`` clipped to the finite losses of the population."""
        loss = float(member["loss"])
        if math.isfinite(loss):
            return loss
        finite = [
            m["loss"]
            for m in self._population
            if m["loss"] is not None and math.isfinite(m["loss"])
        ]
        if not finite:
            return loss
        return max(finite) if loss > 0 else min(finite)

    # ------------------------------------------------------------------ results
    def _record(self, config: dict[str, Any], loss: float | None, trial_id: str | None) -> None:
        super()._record(config, loss, trial_id)
        if self._restoring:
            return
        if loss is None:
            if trial_id is not None:  # a failed trial: a new random member takes its place
                self._population.append(self._random_member())
            return
        self._population.append({"config": copy.deepcopy(config), "loss": float(loss)})
        if self._regularized:
            evaluated = [i for i, m in enumerate(self._population) if m["loss"] is not None]
            while len(evaluated) > self._population_size:  # remove the oldest
                self._population.pop(evaluated.pop(0))
                evaluated = [i - 1 for i in evaluated]
        if not self._regularized or trial_id is None:
            self._trim_population()

    def _trim_population(self) -> None:
        """Keep at most ``population_size`` members: random members not handed out yet give
        way first (a warm-start point takes one's place), then NNI drops the worst member,
        regularized evolution the oldest. The observations (``best()``) keep every point."""
        pop = self._population
        while len(pop) > self._population_size:
            idle = [i for i, m in enumerate(pop) if m["loss"] is None]
            if idle:
                drop = idle[-1]
            elif self._regularized:
                drop = 0
            else:  # the worst; of equal losses the newest
                drop = max(range(len(pop)), key=lambda i: (self._key(pop[i]), i))
            logger.debug("population above %d: member %d leaves it", self._population_size, drop)
            pop.pop(drop)

    # ------------------------------------------------------------------ state
    def set_state(self, state: dict[str, Any]) -> None:
        self._restoring = True
        try:
            super().set_state(state)
        finally:
            self._restoring = False

    def _get_extra_state(self) -> dict[str, Any]:
        return {
            "population_size": self._population_size,
            "regularized": self._regularized,
            "sample_size": self._sample_size,
            "initialised": self._initialised,
            "population": copy.deepcopy(self._population),
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self._population_size = state["population_size"]
        self._regularized = state["regularized"]
        self._sample_size = state["sample_size"]
        self._initialised = state["initialised"]
        self._population = copy.deepcopy(state["population"])
