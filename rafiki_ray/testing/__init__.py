"""Contract test suites shipped with the package (Optuna's ``testing/pytest_samplers`` style).

Subclass a contract in a test module and give it a factory fixture; every searcher,
scheduler and space adapter in rafiki_ray passes them, and so can third-party ones.
"""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports

_LAZY = {
    "SpaceAdapterContract": "rafiki_ray.testing.spaces",
    "SearcherContract": "rafiki_ray.testing.searchers",
    "SchedulerContract": "rafiki_ray.testing.schedulers",
}
__all__ = list(_LAZY)
__getattr__: Any = lazy_exports(__name__, _LAZY)
