"""Parameter sharing between trials through Ray's object store."""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports

_LAZY = {
    "ParamStore": "rafiki_ray.sharing.param_store",
    "SharePolicy": "rafiki_ray.sharing.param_store",
    "RetireEndedTrials": "rafiki_ray.sharing._callback",
    "torch_to_params": "rafiki_ray.sharing.convert",
    "params_to_torch": "rafiki_ray.sharing.convert",
    "keras_to_params": "rafiki_ray.sharing.convert",
    "params_to_keras": "rafiki_ray.sharing.convert",
}
__all__ = list(_LAZY)
__getattr__: Any = lazy_exports(__name__, _LAZY)
