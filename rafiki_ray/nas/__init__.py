"""Architecture search: the ENAS controller as a Tune searcher, baselines on the same shared
weights, and Rafiki's TRAIN / EVAL / FINAL schedule (Pham et al. 2018)."""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports

_LAZY = {
    "ENASSearch": "rafiki_ray.nas.enas",
    "ENAS_DEFAULTS": "rafiki_ray.nas.enas",
    "RandomNAS": "rafiki_ray.nas.baselines",
    "RegularizedEvolutionNAS": "rafiki_ray.nas.baselines",
    "NASSearcher": "rafiki_ray.nas._base",
    "run_directive": "rafiki_ray.nas.trial",
    "directive_trainable": "rafiki_ray.nas.trial",
    "RafikiSchedule": "rafiki_ray.nas._schedule",
    "directive": "rafiki_ray.nas._schedule",
    "Controller": "rafiki_ray.nas._controller",
    "Plan": "rafiki_ray.nas._plan",
    "MicroDigits": "rafiki_ray.nas.micro",
    "Supergraph": "rafiki_ray.nas.micro",
}
__all__ = list(_LAZY)
__getattr__: Any = lazy_exports(__name__, _LAZY)
