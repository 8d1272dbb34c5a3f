"""Config-driven PyTorch runs (RapidFire AI's ``MLSpec`` + config knobs + ``run_fit``).

A run config has the sections ``train`` / ``named_metrics`` / ``user_knobs``
(:func:`parse_config`); config groups (a dict, ``GridSearch``, ``RandomSearch``,
``SuccessiveHalving``, or a list of them) expand to runs that train chunk by chunk on Ray Tune
under live control (:mod:`rafiki_ray.control`).
"""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports

_LAZY = {
    "parse_config": "rafiki_ray.runs._config",
    "RESERVED_SECTIONS": "rafiki_ray.runs._config",
    "MLSpec": "rafiki_ray.runs.spec",
    "named_metric": "rafiki_ray.runs.spec",
    "GridSearch": "rafiki_ray.runs.groups",
    "RandomSearch": "rafiki_ray.runs.groups",
    "List": "rafiki_ray.runs.groups",
    "Range": "rafiki_ray.runs.groups",
    "SuccessiveHalving": "rafiki_ray.runs.groups",
    "plan": "rafiki_ray.runs.groups",
    "run_fit": "rafiki_ray.runs.fit",
    "prepare": "rafiki_ray.runs.fit",
    "restore_fit": "rafiki_ray.runs.fit",
    "runs_of": "rafiki_ray.runs.fit",
}
__all__ = list(_LAZY)
__getattr__: Any = lazy_exports(__name__, _LAZY)
