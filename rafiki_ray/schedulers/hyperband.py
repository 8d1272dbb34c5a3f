"""Hyperband (Li et al., JMLR 2018) with Polyaxon v0.x ``hyperband`` semantics.

Polyaxon's definition (``polyaxon/hpsearch/search_managers/hyperband.py``):
``s_max = floor(log_eta(max_iter))``, ``B = (s_max + 1) * max_iter``; bracket ``s`` runs
``n = ceil((B / max_iter) * eta**s / (s + 1))`` configurations with
``r = max_iter * eta**-s`` resources; rung ``i`` uses ``r * eta**i`` and keeps
``int(n * eta**-i / eta)`` configurations. Brackets are opened in the order
``s = s_max, ..., 0`` and then again from ``s_max`` (a new Hyperband iteration) as long as
trials arrive; each bracket is a synchronous successive-halving run, and brackets progress
independently of each other (asynchronously).

Decisions (differences from Polyaxon):

* ``s_max`` is computed with exact arithmetic (the largest ``s`` with ``eta**s <= max_iter``):
  Polyaxon's ``int(log(243) / log(3))`` is 4 through float error, here it is 5.
* The resource is passed to the trial in its config: before a trial starts (or resumes
  after a promotion) the scheduler sets ``trial.config[resource["name"]]`` to the rung's
  budget, cast to ``resource["type"]`` (``"int"`` truncates as Polyaxon's cast does; default
  ``"float"``). The trial reports ``time_attr`` (default ``training_iteration``) and is
  paused when it reaches the budget; it should keep training when asked to continue rather
  than return at its budget (a returned trial cannot be promoted). Every promotion goes
  through a pause and a resume, even for the trial that completes a rung, so that the
  trainable always starts a stage with the new budget in its config.
* ``resume=True``: promoted trials continue from their checkpoint. ``resume=False``
  (Polyaxon's default): promoted trials restart from scratch with the larger budget (the
  scheduler drops the trial's checkpoint before Tune resumes it), so no checkpoint is needed.
* A rung keeps at least one trial (Polyaxon's ``int(...)`` may give 0 for small brackets).
* Polyaxon's ``metric{name, optimization}`` is accepted as ``metric={"name": ...,
  "optimization": "maximize"|"minimize"}``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ray.tune.experiment import Trial

from rafiki_ray import _tune_seam
from rafiki_ray._args import POSITIVE, check_number, resolve_aliases
from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.schedulers._brackets import SyncBracketScheduler

__all__ = ["Hyperband", "bracket_table", "s_max"]

_TYPES = {"int": int, "float": float}
_OPTIMIZATION = {"maximize": "max", "minimize": "min"}


def s_max(max_iter: float, eta: float) -> int:
    """The largest ``s`` with ``eta**s <= max_iter`` (exact for integers; 243, 3 -> 5)."""
    s = 0
    if isinstance(max_iter, int) and isinstance(eta, int):
        while eta ** (s + 1) <= max_iter:
            s += 1
        return s
    while eta ** (s + 1) <= max_iter or math.isclose(eta ** (s + 1), max_iter, rel_tol=1e-12):
        s += 1
    return s


def bracket_table(max_iter: float, eta: float, cast: type = float) -> list[dict[str, Any]]:
    """Polyaxon's bracket plan: one dict per bracket ``s`` with its rung sizes and budgets."""
    top = s_max(max_iter, eta)
    out = []
    for s in range(top, -1, -1):
        n = math.ceil((top + 1) * eta**s / (s + 1) - 1e-12)
        r = max_iter * eta ** (-s)
        sizes = [max(0, int(n * eta ** (-i) + 1e-12)) for i in range(s + 1)]
        budgets = [cast(r * eta**i + (1e-9 if cast is int else 0.0)) for i in range(s + 1)]
        out.append({"s": s, "n": n, "r": cast(r + (1e-9 if cast is int else 0.0)),
                    "sizes": sizes, "budgets": budgets})
    return out


class Hyperband(SyncBracketScheduler):
    """Hyperband brackets of synchronous successive halving, Polyaxon semantics.

    Args:
        max_iter: the largest budget (alias ``max_t``).
        eta: reduction factor > 1 (alias ``reduction_factor``).
        resource: ``{"name": str, "type": "int" | "float"}`` or just the name; the trial's
            budget is written to ``config[name]``. Default ``{"name": "resource"}``.
        resume: continue promoted trials from their checkpoints (True) or restart them
            (False, Polyaxon's default).
        metric: a result key, or Polyaxon's ``{"name": ..., "optimization": ...}``.
        mode, time_attr, seed, persist: see :class:`RafikiScheduler`.
        **aliases: source argument names, see :attr:`ALIASES`.
    """

    #: Source argument names (Ray) -> our (Polyaxon) name.
    ALIASES: ClassVar[dict[str, str | None]] = {"max_t": "max_iter", "reduction_factor": "eta"}

    def __init__(
        self,
        *,
        max_iter: float | None = None,
        eta: float | None = None,
        resource: dict[str, Any] | str | None = None,
        resume: bool = False,
        metric: str | dict[str, Any] | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        seed: int | None = None,
        persist: bool = True,
        **aliases: Any,
    ) -> None:
        name = type(self).__name__
        values = resolve_aliases(type(self), aliases, {"max_iter": max_iter, "eta": eta},
                                 defaults={"max_iter": 81, "eta": 3})
        big_r = check_number(f"{name}.max_iter", values["max_iter"], **POSITIVE)
        e = check_number(f"{name}.eta", values["eta"], low=1, low_open=True)
        if isinstance(metric, dict):
            if "name" not in metric:
                raise invalid(f"{name}.metric", "a dict needs 'name'", metric)
            opt = metric.get("optimization", "maximize")
            if opt not in _OPTIMIZATION:
                raise invalid(f"{name}.metric.optimization", "must be maximize or minimize", opt)
            if mode is not None and mode != _OPTIMIZATION[opt]:
                raise invalid(f"{name}.mode", f"contradicts metric.optimization={opt}", mode)
            metric, mode = metric["name"], _OPTIMIZATION[opt]
        if resource is None:
            resource = {"name": "resource", "type": "float"}
        elif isinstance(resource, str):
            resource = {"name": resource, "type": "float"}
        if not isinstance(resource, dict) or not isinstance(resource.get("name"), str) \
                or not resource["name"]:
            raise invalid(f"{name}.resource", "must be a name or {'name': str, 'type': ...}",
                          resource)
        rtype = resource.get("type", "float")
        if rtype not in _TYPES:
            raise invalid(f"{name}.resource.type", "must be 'int' or 'float'", rtype)
        if not isinstance(resume, bool):
            raise invalid_type(f"{name}.resume", "must be a bool", resume)
        super().__init__(reduction_factor=e, metric=metric, mode=mode, time_attr=time_attr,
                         seed=seed, persist=persist)
        self._max_iter = big_r
        self._resource_name = resource["name"]
        self._resource_type = rtype
        self._resume = resume
        self._in_place_ok = False  # every promotion goes through PAUSE so config[name] is seen
        self._needs_checkpoint = resume
        self._table = bracket_table(big_r, e, _TYPES[rtype])
        self._next = 0  # index into the table of the next bracket to open

    @property
    def table(self) -> list[dict[str, Any]]:
        """The bracket plan (``s``, ``n``, ``r``, rung ``sizes`` and ``budgets``)."""
        return [dict(row) for row in self._table]

    def _get_state(self) -> dict[str, Any]:
        state = super()._get_state()
        state["next"] = self._next
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self._next = int(state["next"])

    def _next_bracket_spec(self) -> tuple[list[float], int, Any, list[int]]:
        row = self._table[self._next % len(self._table)]
        self._next += 1
        return list(row["budgets"]), int(row["n"]), row["s"], list(row["sizes"])

    def _set_budget(self, trial: Trial, budget: float) -> None:
        trial.config[self._resource_name] = _TYPES[self._resource_type](budget)

    def _on_assign(self, trial: Trial, bracket: dict) -> None:
        self._set_budget(trial, bracket["milestones"][0])

    def _on_promote(self, trial: Trial, bracket: dict) -> None:
        self._set_budget(trial, bracket["milestones"][bracket["cur"]])

    def _before_resume(self, trial: Trial) -> None:
        if self._resume:
            return
        _tune_seam.forget_checkpoint(trial)  # restart from scratch
