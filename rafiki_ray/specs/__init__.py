"""Experiment files -> one :class:`Experiment` -> an ordinary ``tune.Tuner`` run.

:func:`load_experiment` reads a T9k ``AutoTuneExperiment``, an NNI experiment config or a
Polyaxon v0 polyaxonfile (formats.md sections 2, 3 and 5); trials are shell commands (with the
NNI / T9k trial API, :mod:`rafiki_ray.trial`) or Python functions. ``rafiki-ray run FILE``
(:mod:`rafiki_ray.cli`) is the command-line front end.
"""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports

_LAZY = {
    "Experiment": "rafiki_ray.specs._experiment",
    "RunOutcome": "rafiki_ray.specs._experiment",
    "CommandTrial": "rafiki_ray.specs._command",
    "FunctionTrial": "rafiki_ray.specs._command",
    "TrialCommandError": "rafiki_ray.specs._command",
    "Component": "rafiki_ray.specs._mapping",
    "map_tuner": "rafiki_ray.specs._mapping",
    "map_assessor": "rafiki_ray.specs._mapping",
    "map_advisor": "rafiki_ray.specs._mapping",
    "SpecError": "rafiki_ray.specs._common",
    "load_experiment": "rafiki_ray.specs._load",
    "validate_experiment": "rafiki_ray.specs._load",
    "PHASES": "rafiki_ray.specs._status",
    "read_status": "rafiki_ray.specs._status",
}
__all__ = list(_LAZY)
__getattr__: Any = lazy_exports(__name__, _LAZY)
