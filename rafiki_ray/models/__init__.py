"""Rafiki's model API on Ray Tune: write a model class once, tune it under a budget, deploy
the best trials (``BaseModel``, dataset loaders, ``check_model``, ``tune_model``, ``deploy``,
``serve``)."""

from __future__ import annotations

from typing import Any

from rafiki_ray._lazy import lazy_exports

_LAZY = {
    "BaseModel": "rafiki_ray.models.model",
    "check_parameters": "rafiki_ray.models.model",
    "save_parameters": "rafiki_ray.models.model",
    "load_parameters": "rafiki_ray.models.model",
    "load_model_class": "rafiki_ray.models.model",
    "Dataset": "rafiki_ray.models.datasets",
    "load_dataset": "rafiki_ray.models.datasets",
    "as_images": "rafiki_ray.models.datasets",
    "write_image_dataset": "rafiki_ray.models.datasets",
    "write_tabular_dataset": "rafiki_ray.models.datasets",
    "check_model": "rafiki_ray.models.check",
    "ModelCheck": "rafiki_ray.models.check",
    "ADVISORS": "rafiki_ray.models.advisors",
    "AdvisorChoice": "rafiki_ray.models.advisors",
    "choose_advisor": "rafiki_ray.models.advisors",
    "AdvisorSearch": "rafiki_ray.models.advisors",
    "FixedSearch": "rafiki_ray.models.advisors",
    "RandomSearch": "rafiki_ray.models.advisors",
    "Budget": "rafiki_ray.models._budget",
    "parse_budget": "rafiki_ray.models._budget",
    "BudgetClock": "rafiki_ray.models._budget",
    "BudgetStopper": "rafiki_ray.models._budget",
    "tune_model": "rafiki_ray.models.tuning",
    "TuneModelResult": "rafiki_ray.models.tuning",
    "BestTrial": "rafiki_ray.models.tuning",
    "deploy": "rafiki_ray.models.deployment",
    "Predictor": "rafiki_ray.models.deployment",
    "serve": "rafiki_ray.models.serving",
    "shutdown_serve": "rafiki_ray.models.serving",
}

__all__ = list(_LAZY)
__getattr__: Any = lazy_exports(__name__, _LAZY)
