"""Live control of ``tune_model`` trials (:mod:`rafiki_ray.control` around the advisor).

A Rafiki model trial trains in one call (``model.train``) and reports once, so of the
RapidFire operations (formats.md section 4):

* ``delete`` applies: a running trial is stopped at its report, its score is dropped from the
  trials table and it is never among the best (``rafiki_best``);
* ``clone`` applies: a new trial with the parent's knobs and the edits (``--set knob=value``,
  checked against the model's knob config), cold, or ``--warm`` with the parent's dumped
  parameters handed to ``model.train(shared_params=...)`` (Rafiki's parameter sharing); the
  advisor does not learn from clones;
* ``stop`` and ``resume`` are refused with the reason: there is no chunk boundary to stop at
  and no partial state to resume from.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from rafiki_ray._errors import invalid
from rafiki_ray.control.protocol import CONTROL_KEY
from rafiki_ray.models.advisors import DIRECTIVE_KEY

__all__ = ["MODEL_TRIAL_REFUSALS", "attach_control", "clone_directive"]

_ONE_CALL = ("a Rafiki model trial trains in one call (model.train) and reports once: "
             "there is no chunk boundary to {} and no partial state to resume from; "
             "delete it or clone it instead")
#: Operations refused for model trials, with the reason.
MODEL_TRIAL_REFUSALS = {"stop": _ONE_CALL.format("stop at"),
                        "resume": _ONE_CALL.format("resume from")}


class _KnobValidator:
    """``fn(config)``: the edited knobs of a clone must be knobs of the model, in range."""

    def __init__(self, knob_config: Mapping[str, Any]) -> None:
        self.knob_config = knob_config

    def __call__(self, config: Mapping[str, Any]) -> None:
        from rafiki_ray.spaces import from_knobs

        space = from_knobs(self.knob_config)
        if DIRECTIVE_KEY in config and not isinstance(config[DIRECTIVE_KEY], Mapping):
            raise invalid(f"clone.{DIRECTIVE_KEY}", "is managed by the advisor",
                          config[DIRECTIVE_KEY])
        knobs = {k: v for k, v in config.items() if k not in (DIRECTIVE_KEY, CONTROL_KEY)}
        unknown = sorted(set(knobs) - set(space))
        if unknown:
            raise invalid("clone", f"edits unknown knobs (the model's: {sorted(space)})",
                          unknown)
        space.validate({k: v for k, v in knobs.items() if k in space}, "clone")


def clone_directive(directive: dict[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    """The directive of a cloned trial: evaluated, not published, no sharing from the store
    (a warm clone gets its parent's parameters instead)."""
    if not run.get("clone_of"):
        return directive
    out = dict(directive)
    out.update(params_type=None, to_eval=True, to_cache_params=False)
    return out


def attach_control(exp: Any, experiment_dir: str, knob_config: Mapping[str, Any]) -> Any:
    """Put :class:`rafiki_ray.control.LiveControl` around the experiment's advisor search:
    its searcher serves clones first, its callback polls the journal, its stopper ends deleted
    trials. Returns the ``LiveControl``."""
    from ray.tune.stopper import CombinedStopper

    from rafiki_ray.control.controller import LiveControl

    tune_config = exp.tuner_kwargs["tune_config"]
    run_config = exp.tuner_kwargs["run_config"]
    count = exp.budget.trial_count
    control = LiveControl(experiment_dir, searcher=tune_config.search_alg,
                          num_samples=count if count is not None else 2**31 - 1,
                          validate=_KnobValidator(copy.deepcopy(dict(knob_config))),
                          refuse=MODEL_TRIAL_REFUSALS, seed=0)
    tune_config.search_alg = control.searcher
    tune_config.num_samples = -1  # control adds trials; the advisor's count is LiveControl's
    stop = run_config.stop
    exp.tuner_kwargs["run_config"] = dataclasses.replace(
        run_config, stop=control.stopper if stop is None else CombinedStopper(
            stop, control.stopper),
        callbacks=[control.callback, *(run_config.callbacks or [])])
    return control


def deleted_trials(experiment_dir: str) -> set[str]:
    """Trial ids of deleted runs, from the control status file (empty without control)."""
    from rafiki_ray.control.journal import read_status

    status = read_status(experiment_dir) or {}
    out: set[str] = set()
    for run in (status.get("runs") or {}).values():
        if run.get("status") == "deleted":
            out.update(run.get("trials") or [])
    return out


def warm_parameters(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parent's parameters of a warm clone (``params.npz`` of its pinned checkpoint)."""
    path = run.get("warm_from")
    if not path:
        return None
    from rafiki_ray.models._trial import PARAMS_FILE
    from rafiki_ray.models.model import load_parameters

    return load_parameters(os.path.join(path, PARAMS_FILE))
