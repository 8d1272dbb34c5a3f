"""rafiki-ray: Rafiki-style knobs, search-space adapters, searchers, schedulers and weight
sharing for Ray Tune.

Importing ``rafiki_ray`` is light: Ray, torch and tensorflow load only when used.
"""

from __future__ import annotations

from typing import Any

from rafiki_ray import _log_notes
from rafiki_ray._lazy import lazy_exports
from rafiki_ray.knobs import (
    ArchKnob,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    KnobValue,
    PolicyKnob,
)
from rafiki_ray.spaces import SearchSpace, from_knobs

__version__ = "0.1.0"

_log_notes.install()  # Ray log lines that are harmless here: explained once

_LAZY = {
    "from_nni": "rafiki_ray.spaces",
    "from_polyaxon": "rafiki_ray.spaces",
    "from_rapidfire": "rafiki_ray.spaces",
    "load_space": "rafiki_ray.spaces",
    "tune_model": "rafiki_ray.models",
    "deploy": "rafiki_ray.models",
    "check_model": "rafiki_ray.models",
    "BaseModel": "rafiki_ray.models",
}

__all__ = [
    "__version__",
    "SearchSpace",
    "from_knobs",
    "FixedKnob",
    "CategoricalKnob",
    "IntegerKnob",
    "FloatKnob",
    "PolicyKnob",
    "ArchKnob",
    "KnobValue",
    *_LAZY,
]

__getattr__: Any = lazy_exports(__name__, _LAZY)
