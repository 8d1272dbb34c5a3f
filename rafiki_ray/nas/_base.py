"""``NASSearcher``: what the architecture searchers share (ENAS, random NAS, regularized
evolution): the optional Rafiki schedule (TRAIN / EVAL periods, then FINAL_EVAL and one
FINAL_TRAIN; :mod:`rafiki_ray.nas._schedule`), per-trial phases, and which results teach the
policy (SEARCH and EVAL scores; never TRAIN, whose score is NaN, nor the final phase).

A subclass implements ``_propose`` (one architecture) and ``_learn(config, loss)``; it may
override ``_final_candidates`` (default: the best distinct architectures observed).
Without a schedule the searcher is a plain Tune searcher (no ``"_rafiki"`` key).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rafiki_ray._errors import invalid_type
from rafiki_ray.nas._schedule import RafikiSchedule, directive, set_policies
from rafiki_ray.searchers._base import RafikiSearcher

__all__ = ["NASSearcher"]

logger = logging.getLogger(__name__)

_REDRAWS = 16
RAFIKI_KEY = "_rafiki"


class NASSearcher(RafikiSearcher):
    """Base of the architecture searchers (see the module docstring).

    Args:
        space, metric, mode, seed, points_to_evaluate, constant_liar_type, max_concurrent:
            as :class:`~rafiki_ray.searchers.RafikiSearcher`.
        schedule: a :class:`RafikiSchedule` (or its dict) to emit Rafiki's directives;
            ``None`` for plain search.
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
    ) -> None:
        if isinstance(schedule, Mapping):
            schedule = RafikiSchedule.from_dict(schedule)
        if schedule is not None and not isinstance(schedule, RafikiSchedule):
            raise invalid_type("schedule", "must be a RafikiSchedule, its dict or None", schedule)
        self._schedule = schedule
        self._phases: dict[str, str] = {}
        self._n_search = 0
        self._t0: float | None = None
        self._final: dict[str, Any] = {
            "started": False, "evals": {}, "chosen": False, "best": None, "train": None
        }
        self._restoring = False
        self._learning_phase = True
        super().__init__(
            space,
            metric=metric,
            mode=mode,
            seed=seed,
            points_to_evaluate=points_to_evaluate,
            constant_liar_type=constant_liar_type,
            max_concurrent=max_concurrent,
        )

    # ------------------------------------------------------------------ subclass API
    def _learn(self, config: dict[str, Any], loss: float) -> None:
        """A finite loss of a search architecture arrived (no-op by default)."""

    def _final_candidates(self, n: int) -> list[dict[str, Any]]:
        """Architectures for FINAL_EVAL: the ``n`` best distinct ones observed."""
        seen: list[dict[str, Any]] = []
        ok = sorted((o for o in self._obs if o["loss"] is not None), key=lambda o: o["loss"])
        for o in ok:
            if o["config"] not in seen:
                seen.append(o["config"])
            if len(seen) == n:
                break
        while len(seen) < n:
            seen.append(self._propose("final"))
        return seen

    def _distinct(self, draw: Any) -> dict[str, Any]:
        """``draw()`` again (up to 16 times) while it repeats a pending configuration."""
        pending = list(self._pending.values())
        config = draw()
        for _ in range(_REDRAWS):
            if config not in pending:
                break
            config = draw()
        return config

    # ------------------------------------------------------------------ inspection
    @property
    def schedule(self) -> RafikiSchedule | None:
        return self._schedule

    def phase_of(self, trial_id: str) -> str | None:
        """The phase this searcher gave ``trial_id`` (``None`` if it did not suggest it)."""
        return self._phases.get(trial_id)

    def final_architecture(self) -> dict[str, Any] | None:
        """The architecture chosen for FINAL_TRAIN (``None`` before it is chosen)."""
        return copy.deepcopy(self._final["best"])

    # ------------------------------------------------------------------ Tune protocol
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._schedule is None or self._space is None:
            config = super().suggest(trial_id)
            if config is not None:
                self._phases[trial_id] = "SEARCH"
            return config
        if self._t0 is None:
            self._t0 = time.time()
        sched = self._schedule
        final = self._final
        in_final = final["started"] or sched.final_due(
            self._n_search, time.time() - self._t0
        )
        if not in_final:
            phase = sched.search_phase(self._n_search)
            config = super().suggest(trial_id)
            if config is None:
                return None
            self._n_search += 1
        else:
            if not final["started"]:
                final["started"] = True
                n = sched.n_final_eval
                logger.info("final phase: %d FINAL_EVAL trials, then FINAL_TRAIN", n)
                final["evals"] = {f"#{i}": {"config": c, "loss": None, "done": False}
                                  for i, c in enumerate(self._final_candidates(n))}
            waiting = [k for k, e in final["evals"].items() if k.startswith("#")]
            if waiting:
                entry = final["evals"].pop(waiting[0])
                final["evals"][trial_id] = entry
                phase, config = "FINAL_EVAL", copy.deepcopy(entry["config"])
            else:
                if not final["chosen"]:
                    if not all(e["done"] for e in final["evals"].values()):
                        return None  # FINAL_EVAL results still to come
                    final["chosen"] = True
                    final["best"] = self._choose_final()
                if final["best"] is None or final["train"] is not None or not sched.final_train:
                    return self.FINISHED
                final["train"] = trial_id
                phase, config = "FINAL_TRAIN", copy.deepcopy(final["best"])
            self._pending[trial_id] = copy.deepcopy(config)
        self._phases[trial_id] = phase
        set_policies(self._space, config, phase)
        config[RAFIKI_KEY] = directive(phase, sched)
        return config

    def _best_config(self) -> dict[str, Any] | None:
        best = self.best()
        return best[0] if best is not None else None

    def _choose_final(self) -> dict[str, Any] | None:
        scored = [e for e in self._final["evals"].values() if e["loss"] is not None]
        if scored:
            return copy.deepcopy(min(scored, key=lambda e: e["loss"])["config"])
        if self._final["evals"]:
            logger.warning("no FINAL_EVAL trial scored; FINAL_TRAIN takes the best search result")
        return self._best_config()

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        phase = self._phases.get(trial_id, "SEARCH")
        entry = self._final["evals"].get(trial_id)
        if entry is not None:
            entry["done"] = True
            if not error and result is not None and self._metric is not None:
                loss = self._loss(result.get(self._metric))
                entry["loss"] = loss if loss is not None and math.isfinite(loss) else None
        self._learning_phase = phase in ("SEARCH", "EVAL")
        try:
            super().on_trial_complete(trial_id, result, error)
        finally:
            self._learning_phase = True

    def _config_from_result(self, result: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if result:
            result = {k: v for k, v in result.items() if not k.startswith(f"config/{RAFIKI_KEY}")}
            if isinstance(result.get("config"), Mapping):
                result["config"] = {k: v for k, v in result["config"].items() if k != RAFIKI_KEY}
        return super()._config_from_result(result)

    def _record(self, config: dict[str, Any], loss: float | None, trial_id: str | None) -> None:
        config = {k: v for k, v in config.items() if k != RAFIKI_KEY}
        super()._record(config, loss, trial_id)
        if self._restoring or not self._learning_phase or loss is None or not math.isfinite(loss):
            return
        self._learn(config, loss)

    def add_evaluated_point(self, parameters: dict[str, Any], value: float, error: bool = False,
                            pruned: bool = False, intermediate_values: list[float] | None = None
                            ) -> None:
        parameters = {k: v for k, v in parameters.items() if k != RAFIKI_KEY}
        super().add_evaluated_point(parameters, value, error, pruned, intermediate_values)

    # ------------------------------------------------------------------ state
    def set_state(self, state: dict[str, Any]) -> None:
        self._restoring = True
        try:
            super().set_state(state)
        finally:
            self._restoring = False

    def _get_extra_state(self) -> dict[str, Any]:
        return {
            "schedule": self._schedule.to_dict() if self._schedule is not None else None,
            "phases": dict(self._phases),
            "n_search": self._n_search,
            "t0": self._t0,
            "final": copy.deepcopy(self._final),
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        sched = state["schedule"]
        self._schedule = RafikiSchedule.from_dict(sched) if sched is not None else None
        self._phases = dict(state["phases"])
        self._n_search = int(state["n_search"])
        self._t0 = state["t0"]
        self._final = copy.deepcopy(state["final"])
