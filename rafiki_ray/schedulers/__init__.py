"""Schedulers (subclasses of Tune's ``FIFOScheduler``): when to stop, pause, promote, exploit."""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports

_LAZY = {
    "RafikiScheduler": "rafiki_ray.schedulers._base",
    "SuccessiveHalving": "rafiki_ray.schedulers.successive_halving",
    "ASHA": "rafiki_ray.schedulers.asha",
    "Hyperband": "rafiki_ray.schedulers.hyperband",
    "MedianStopping": "rafiki_ray.schedulers.median_stopping",
    "CurveFitting": "rafiki_ray.schedulers.curve_fitting",
    "PBT": "rafiki_ray.schedulers.pbt",
    "RoundRobin": "rafiki_ray.schedulers.round_robin",
}
__all__ = list(_LAZY)
__getattr__: Any = lazy_exports(__name__, _LAZY)
