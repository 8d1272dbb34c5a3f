"""Searchers (subclasses of ``ray.tune.search.Searcher``): what configuration to try next."""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports

_LAZY = {
    "RafikiSearcher": "rafiki_ray.searchers._base",
    "GPSearch": "rafiki_ray.searchers.gp",
    "TPESearch": "rafiki_ray.searchers.tpe",
    "EvolutionSearch": "rafiki_ray.searchers.evolution",
    "ProgressiveGridSearch": "rafiki_ray.searchers.grid",
}
__all__ = list(_LAZY)
__getattr__: Any = lazy_exports(__name__, _LAZY)
