"""Synchronous successive halving (Jamieson & Talwalkar, AISTATS 2016).

Trials are grouped into brackets of ``num_trials``; every trial trains to the first rung
(``min_resource``, in units of ``time_attr``) and PAUSES; once the rung is full the best
``floor(n / reduction_factor)`` resume from their checkpoints and train to the next rung
(``min_resource * eta**k``), the rest are stopped; the last rung is ``max_resource``.
Further trials open new brackets, which progress independently.
"""

from __future__ import annotations

from typing import Any

from rafiki_ray._errors import invalid
from rafiki_ray.schedulers._brackets import SyncBracketScheduler
from rafiki_ray.schedulers._rungs import check_count, check_positive, resolve_args, rung_milestones

__all__ = ["SuccessiveHalving", "rung_milestones"]

#: Accepted alternative argument names (Ray / paper) -> our name.
ALIASES = {
    "grace_period": "min_resource",
    "max_t": "max_resource",
    "eta": "reduction_factor",
    "n": "num_trials",
}


class SuccessiveHalving(SyncBracketScheduler):
    """Synchronous SHA with pause/resume from checkpoints.

    Args:
        min_resource: first rung, in ``time_attr`` units (alias ``grace_period``).
        max_resource: last rung; trials stop there (alias ``max_t``).
        reduction_factor: eta > 1; a rung keeps ``floor(n / eta)`` (alias ``eta``).
        num_trials: trials per bracket (alias ``n``); default ``eta**(rungs - 1)`` so that
            exactly one trial reaches ``max_resource``.
        metric, mode, time_attr, seed, persist: see :class:`RafikiScheduler`.
    """

    def __init__(
        self,
        *,
        min_resource: float | None = None,
        max_resource: float | None = None,
        reduction_factor: float | None = None,
        num_trials: int | None = None,
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        seed: int | None = None,
        persist: bool = True,
        **aliases: Any,
    ) -> None:
        name = type(self).__name__
        values = resolve_args(
            name, ALIASES, aliases,
            {"min_resource": min_resource, "max_resource": max_resource,
             "reduction_factor": reduction_factor, "num_trials": num_trials},
            {"min_resource": 1, "max_resource": 81, "reduction_factor": 3},
        )
        r, big_r = values["min_resource"], values["max_resource"]
        eta = values["reduction_factor"]
        check_positive(f"{name}.min_resource", r)
        check_positive(f"{name}.max_resource", big_r)
        check_positive(f"{name}.reduction_factor", eta, minimum=1.0)
        if big_r < r:
            raise invalid(f"{name}.max_resource", f"must be >= min_resource ({r})", big_r)
        super().__init__(reduction_factor=eta, metric=metric, mode=mode, time_attr=time_attr,
                         seed=seed, persist=persist)
        self._milestones = rung_milestones(r, big_r, eta)
        n = values["num_trials"]
        if n is None:
            n = max(1, int(round(eta ** (len(self._milestones) - 1))))
        check_count(f"{name}.num_trials", n)
        self._num_trials = n
        self._min_resource, self._max_resource = r, big_r

    @property
    def milestones(self) -> list[float]:
        return list(self._milestones)

    def rung_sizes(self) -> list[int]:
        """Planned number of trials at each rung of a full bracket."""
        sizes = [self._num_trials]
        for _ in self._milestones[1:]:
            sizes.append(max(1, int(sizes[-1] // self._eta)))
        return sizes

    def _next_bracket_spec(self) -> tuple[list[float], int, Any]:
        return list(self._milestones), self._num_trials, None
