"""Synchronous successive halving (Jamieson & Talwalkar, AISTATS 2016).

Trials are grouped into brackets of ``num_trials``; every trial trains to the first rung
(``min_resource``, in units of ``time_attr``) and PAUSES; once the rung is full the best
``floor(n / reduction_factor)`` resume from their checkpoints and train to the next rung
(``min_resource * eta**k``), the rest are stopped; the last rung is ``max_resource``.
Further trials open new brackets, which progress independently.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rafiki_ray._args import POSITIVE, check_number, resolve_aliases
from rafiki_ray._errors import invalid
from rafiki_ray.schedulers._brackets import SyncBracketScheduler
from rafiki_ray.schedulers._rungs import rung_milestones

__all__ = ["SuccessiveHalving", "rung_milestones"]

class SuccessiveHalving(SyncBracketScheduler):
    """Synchronous SHA with pause/resume from checkpoints.

    Args:
        min_resource: first rung, in ``time_attr`` units (alias ``grace_period``).
        max_resource: last rung; trials stop there (alias ``max_t``).
        reduction_factor: eta > 1; a rung keeps ``floor(n / eta)`` (alias ``eta``).
        num_trials: trials per bracket (alias ``n``); default ``eta**(rungs - 1)`` so that
            exactly one trial reaches ``max_resource``.
        metric, mode, time_attr, seed, persist: see :class:`RafikiScheduler`.
        **aliases: source argument names, see :attr:`ALIASES`.
    """

    #: Source argument names (Ray / paper) -> our name.
    ALIASES: ClassVar[dict[str, str | None]] = {
        "grace_period": "min_resource",
        "max_t": "max_resource",
        "eta": "reduction_factor",
        "n": "num_trials",
    }

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
        values = resolve_aliases(
            type(self), aliases,
            {"min_resource": min_resource, "max_resource": max_resource,
             "reduction_factor": reduction_factor, "num_trials": num_trials},
            defaults={"min_resource": 1, "max_resource": 81, "reduction_factor": 3},
        )
        r = check_number(f"{name}.min_resource", values["min_resource"], **POSITIVE)
        big_r = check_number(f"{name}.max_resource", values["max_resource"], **POSITIVE)
        eta = check_number(f"{name}.reduction_factor", values["reduction_factor"], low=1,
                           low_open=True)
        if big_r < r:
            raise invalid(f"{name}.max_resource", f"must be >= min_resource ({r})", big_r)
        super().__init__(reduction_factor=eta, metric=metric, mode=mode, time_attr=time_attr,
                         seed=seed, persist=persist)
        self._milestones = rung_milestones(r, big_r, eta)
        n = values["num_trials"]
        if n is None:
            n = max(1, int(round(eta ** (len(self._milestones) - 1))))
        self._num_trials = check_number(f"{name}.num_trials", n, integer=True, low=1)
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
