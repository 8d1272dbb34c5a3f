"""``polyaxon_client.tracking`` shim (Polyaxon v0.x): metrics go to :mod:`rafiki_ray.trial`.

``Experiment().log_metrics(**metrics)`` reports an intermediate result whose entries are the
metrics (Polyaxon keeps the last value of each; the Tune trial does the same). ``step`` is
taken from the keyword ``step`` when given. ``get_params()`` returns the parameters merged
with the declarations, as ``POLYAXON_DECLARATIONS`` holds them.
"""

from __future__ import annotations

import json
import os
from typing import Any

from rafiki_ray import trial as _trial


class Experiment:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._steps = 0

    def get_params(self) -> dict[str, Any]:
        raw = os.environ.get("POLYAXON_DECLARATIONS")
        return json.loads(raw) if raw else dict(_trial.get_current_parameter() or {})

    def log_metrics(self, step: int | None = None, **metrics: Any) -> None:
        if not metrics:
            return
        values = {"default": next(iter(metrics.values())), **metrics}
        _trial.report_intermediate_result(values, step=step)

    def log_params(self, **params: Any) -> None:
        pass


def get_outputs_path() -> str:
    return os.environ.get("POLYAXON_RUN_OUTPUTS_PATH", os.getcwd())
