"""Live control of running experiments (RapidFire IC ops): stop, resume, delete, clone."""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports

_LAZY = {
    "CONTROL_KEY": "rafiki_ray.control.protocol",
    "start_checkpoint": "rafiki_ray.control.protocol",
    "decide": "rafiki_ray.control.protocol",
    "Journal": "rafiki_ray.control.journal",
    "Control": "rafiki_ray.control.client",
    "RefusedError": "rafiki_ray.control.client",
    "LiveControl": "rafiki_ray.control.controller",
}
__all__ = list(_LAZY)
__getattr__: Any = lazy_exports(__name__, _LAZY)
