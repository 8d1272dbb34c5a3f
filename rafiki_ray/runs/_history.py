"""``ResultHistory``: every result of a trial, kept across pauses (``rafiki_result.json``).

Tune's ``result.json`` loses the rows written since its last upload to storage whenever a
paused trial starts again (its JSON logger copies the storage file back over the driver's,
see :func:`rafiki_ray._tune_seam.trial_driver_dir`); with runs taking turns chunk by chunk
(:class:`rafiki_ray.schedulers.RoundRobin`) that is most rows. This driver callback appends
each result to ``rafiki_result.json`` in the trial folder instead, fetching the file from
storage once per driver (after ``Tuner.restore``) and never overwriting it afterwards.
:func:`rafiki_ray.experiment_data.load_experiment` reads it in preference to
``result.json``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ray import tune

from rafiki_ray import _tune_seam

__all__ = ["HISTORY_FILE", "ResultHistory"]

HISTORY_FILE = "rafiki_result.json"


class ResultHistory(tune.Callback):
    """Appends each result (JSON lines, Tune's fields included) to ``rafiki_result.json``."""

    def __init__(self) -> None:
        self._fetched: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {"_fetched": set()}  # a restored driver fetches the files again

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        local = _tune_seam.trial_driver_dir(trial)
        if local is None:
            return
        if trial.trial_id not in self._fetched:
            self._fetched.add(trial.trial_id)
            _tune_seam.download_trial_file(trial, HISTORY_FILE)
        os.makedirs(local, exist_ok=True)
        with open(os.path.join(local, HISTORY_FILE), "a") as f:
            f.write(json.dumps(result, default=_plain) + "\n")


def _plain(x: Any) -> Any:
    try:
        return x.item()  # numpy scalars
    except AttributeError:
        return str(x)
