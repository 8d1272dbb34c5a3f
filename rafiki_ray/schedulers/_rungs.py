"""Pieces shared by the rung-based schedulers (``ASHA``, ``SuccessiveHalving``, ``Hyperband``).

* argument helpers: alias resolution with defaults, number and count checks;
* :func:`rung_milestones`, the geometric rung ladder;
* :class:`RungScheduler`, the Tune hooks common to schedulers that place each new trial in a
  bracket (``self._bracket_of``) and decide in ``_decide`` / clean up in ``_forget``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ray.tune.experiment import Trial

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.schedulers._base import RafikiScheduler

if TYPE_CHECKING:
    from rafiki_ray._tune_seam import TuneController


def resolve_args(
    cls: str, aliases: dict[str, str], kwargs: dict[str, Any], values: dict[str, Any],
    defaults: dict[str, Any],
) -> dict[str, Any]:
    """Move alias arguments from ``kwargs`` into ``values`` and fill ``None`` with ``defaults``.

    Raises on an alias given together with its target and on any other leftover argument.
    """
    for alias, target in aliases.items():
        if alias in kwargs:
            if values.get(target) is not None:
                raise invalid(f"{cls}.{alias}", f"given together with {target}", kwargs[alias])
            values[target] = kwargs.pop(alias)
    if kwargs:
        raise invalid_type(cls, "unexpected arguments", sorted(kwargs))
    for key, default in defaults.items():
        if values.get(key) is None:
            values[key] = default
    return values


def check_positive(path: str, value: Any, *, minimum: float = 0.0, strict: bool = True) -> None:
    """A finite number ``> minimum`` (``>=`` when not ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_type(path, "must be a number", value)
    if not math.isfinite(value) or (value <= minimum if strict else value < minimum):
        raise invalid(path, f"must be {'>' if strict else '>='} {minimum}", value)


def check_count(path: str, value: Any) -> None:
    """An ``int >= 1`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(path, "must be an int >= 1", value)


def rung_milestones(min_resource: float, max_resource: float, eta: float) -> list[float]:
    """``[r, r*eta, r*eta**2, ..., max_resource]`` (exact for integer inputs)."""
    out: list[float] = []
    m = min_resource
    while m < max_resource and not math.isclose(m, max_resource, rel_tol=1e-9):
        out.append(m)
        m = m * eta
    out.append(max_resource)
    return out


class RungScheduler(RafikiScheduler):
    """Tune hooks shared by the rung-based schedulers.

    Subclasses keep ``_bracket_of`` (trial id -> bracket) and ``_trials`` (runtime only) and
    define :meth:`_place`, :meth:`_decide`, :meth:`_forget`, :meth:`_was_stopped` and
    :meth:`_was_waiting`.
    """

    _bracket_of: dict[str, int]
    _trials: dict[str, Trial]

    # ------------------------------------------------------------ to override
    def _place(self, trial: Trial) -> None:
        """Put a new trial into a bracket."""
        raise NotImplementedError

    def _decide(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        raise NotImplementedError

    def _forget(self, controller: Any, trial: Trial) -> None:
        """The trial ended (completed, errored or removed)."""
        raise NotImplementedError

    def _was_stopped(self, tid: str) -> bool:
        """The restored state had already stopped ``tid``."""
        raise NotImplementedError

    def _was_waiting(self, tid: str) -> bool:
        """The restored state had ``tid`` paused (waiting at a rung or for a resume)."""
        raise NotImplementedError

    # ------------------------------------------------------------ shared
    def _known_trial_ids(self) -> set[str]:
        return set(self._bracket_of)

    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        retry = self._take_retry(trial)
        super().on_trial_add(tune_controller, trial)
        tid = trial.trial_id
        self._trials[tid] = trial
        if retry:  # Tune retries it from its checkpoint: it keeps its bracket and rung
            return
        if tid in self._bracket_of:  # seen before a driver restore
            if trial.status == Trial.PENDING:
                if self._was_stopped(tid):
                    self._restop.add(tid)
                elif self._was_waiting(tid):
                    self._repause.add(tid)
            return
        if trial.status in (Trial.TERMINATED, Trial.ERROR):
            return
        self._place(trial)

    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        super().on_trial_result(tune_controller, trial, result)
        return self._track(trial, self._decide(tune_controller, trial, result))

    def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        self._forget(tune_controller, trial)

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        if self._retry(tune_controller, trial):
            return
        self._forget(tune_controller, trial)

    def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        self._forget(tune_controller, trial)
