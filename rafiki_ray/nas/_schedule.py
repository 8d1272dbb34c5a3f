"""Rafiki's ENAS trial schedule (``rafiki/advisor/tf.py``) as directives for Tune trials.

Each suggestion carries the reserved key ``config["_rafiki"]`` (the directive shared with
``tune_model``: ``phase``, ``params_type``, ``to_eval``, ``to_cache_params``) and the policy
knobs of the space set for its phase:

==============  ==========================================  ============  =======  =====
phase           policies on                                 params_type   to_eval  cache
==============  ==========================================  ============  =======  =====
``TRAIN``       DOWNSCALE, EARLY_STOP                       shared        no       yes
``EVAL``        DOWNSCALE, QUICK_EVAL, SKIP_TRAIN           shared        yes      no
``FINAL_EVAL``  DOWNSCALE, SKIP_TRAIN                       shared        yes      no
``FINAL_TRAIN`` (none: train from scratch)                  ``None``      yes      no
==============  ==========================================  ============  =======  =====

The search repeats a period of ``n_train`` TRAIN then ``n_eval`` EVAL suggestions (Rafiki:
1 + 300 per worker; here the period counts suggestions of the whole experiment, because
Tune trials are not long-lived workers, and ``shared`` is ``GLOBAL_RECENT``: the supergraph
weights of the most recent TRAIN trial of any worker). Once ``final_after_trials`` search
suggestions were made or ``final_after_s`` seconds passed since the first one (Rafiki: the
last 12 hours of the budget), ``n_final_eval`` FINAL_EVAL trials evaluate candidate
architectures on the shared weights, then ONE FINAL_TRAIN trains the best of them from
scratch, and the searcher reports that it is finished.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces import Policy, SearchSpace

__all__ = ["PHASES", "RafikiSchedule", "directive", "set_policies"]

PHASES = ("SEARCH", "TRAIN", "EVAL", "FINAL_EVAL", "FINAL_TRAIN")

_POLICIES_ON: dict[str, frozenset[str]] = {
    "SEARCH": frozenset(),
    "TRAIN": frozenset({"DOWNSCALE", "EARLY_STOP"}),
    "EVAL": frozenset({"DOWNSCALE", "QUICK_EVAL", "SKIP_TRAIN"}),
    "FINAL_EVAL": frozenset({"DOWNSCALE", "SKIP_TRAIN"}),
    "FINAL_TRAIN": frozenset(),
}
_PARAMS_TYPES = (None, "LOCAL_RECENT", "LOCAL_BEST", "GLOBAL_RECENT", "GLOBAL_BEST")


def _count(value: Any, path: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise invalid(path, f"must be an int >= {low}", value)
    return int(value)


@dataclass(frozen=True)
class RafikiSchedule:
    """The period and the final phase of Rafiki's ENAS schedule (see the module docstring).

    Args:
        n_train: TRAIN suggestions at the start of each period (Rafiki 1).
        n_eval: EVAL suggestions after them (Rafiki 300).
        n_final_eval: FINAL_EVAL trials of the final phase (Rafiki 10; 0 skips straight to
            FINAL_TRAIN of the best architecture evaluated during the search).
        final_train: end with one FINAL_TRAIN of the best architecture.
        final_after_trials: start the final phase after this many search suggestions.
        final_after_s: ... or this many seconds after the first suggestion, whichever first.
            With neither, the search never enters the final phase (Tune's ``num_samples``
            or a stopper ends it).
        params_type: the share policy of TRAIN / EVAL / FINAL_EVAL trials.
    """

    n_train: int = 1
    n_eval: int = 300
    n_final_eval: int = 10
    final_train: bool = True
    final_after_trials: int | None = None
    final_after_s: float | None = None
    params_type: str = "GLOBAL_RECENT"

    def __post_init__(self) -> None:
        _count(self.n_train, "schedule.n_train", 1)
        _count(self.n_eval, "schedule.n_eval", 0)
        _count(self.n_final_eval, "schedule.n_final_eval", 0)
        if not isinstance(self.final_train, bool):
            raise invalid_type("schedule.final_train", "must be a bool", self.final_train)
        if self.final_after_trials is not None:
            _count(self.final_after_trials, "schedule.final_after_trials", 0)
        t = self.final_after_s
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0):
            raise invalid("schedule.final_after_s", "must be a number >= 0", self.final_after_s)
        if self.params_type not in _PARAMS_TYPES[1:]:
            raise invalid("schedule.params_type", f"must be one of {list(_PARAMS_TYPES[1:])}",
                          self.params_type)

    @property
    def period(self) -> int:
        return self.n_train + self.n_eval

    def search_phase(self, k: int) -> str:
        """Phase of the ``k``-th (0-based) search suggestion."""
        return "TRAIN" if k % self.period < self.n_train else "EVAL"

    def final_due(self, n_search: int, elapsed_s: float) -> bool:
        if self.final_after_trials is not None and n_search >= self.final_after_trials:
            return True
        return self.final_after_s is not None and elapsed_s >= self.final_after_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RafikiSchedule:
        return cls(**d)


def directive(phase: str, schedule: RafikiSchedule | None = None) -> dict[str, Any]:
    """The ``config["_rafiki"]`` value of a trial in ``phase``."""
    if phase not in PHASES:
        raise invalid("phase", f"must be one of {list(PHASES)}", phase)
    shared = schedule.params_type if schedule is not None else "GLOBAL_RECENT"
    return {
        "phase": phase,
        "params_type": shared if phase in ("TRAIN", "EVAL", "FINAL_EVAL") else None,
        "to_eval": phase != "TRAIN",
        "to_cache_params": phase == "TRAIN",
    }


def set_policies(space: SearchSpace, config: dict[str, Any], phase: str) -> dict[str, Any]:
    """Set every :class:`~rafiki_ray.spaces.Policy` knob of ``config`` (nested spaces
    included) for ``phase``; returns ``config`` (changed in place)."""
    on = _POLICIES_ON[phase]
    for key, p in space.items():
        if isinstance(p, Policy):
            config[key] = p.policy in on if phase != "SEARCH" else p.default
        elif isinstance(p, SearchSpace):
            set_policies(p, config[key], phase)
    return config
