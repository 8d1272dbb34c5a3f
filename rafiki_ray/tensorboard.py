"""TensorBoard event files with HParams plugin data for every trial, whatever it trains.

Tune's own TensorBoard logger leaves the HParams dashboard empty for many PyTorch users (the
blog seed 003); this ``tune.Callback`` runs in the driver, so PyTorch, TensorFlow and plain
function trainables are treated alike. Per trial it writes ``<dir>/tensorboard/<name>/``:

* at the start, HParams ``session_start_info`` with the flattened config (numbers, strings and
  bools as themselves, other values as JSON text; ``__``-prefixed keys are skipped);
* per result, one scalar per numeric metric at step ``training_iteration``;
* at the end, the HParams ``experiment`` (hparam and metric names) and ``session_end_info``
  (success, or failure for an errored trial).

``exclude(trial_id)``: trials for which it returns True at the end (e.g. deleted runs of live
control) have their event files removed. Uses ``tensorboardX`` (no torch or TF needed).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ray.tune import Callback

from rafiki_ray._errors import invalid_type

__all__ = ["HParamsCallback", "flat_hparams"]

_SKIP_METRICS = {"training_iteration", "timestamp", "time_this_iter_s", "time_total_s",
                 "pid", "time_since_restore", "iterations_since_restore", "done"}


def flat_hparams(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train/optimizer/args/lr": 0.01, ...}``: scalars kept, other leaves as JSON text."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if str(k).startswith("__"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flat_hparams(v, key + "/"))
        elif isinstance(v, (bool, str, int, float)):
            out[key] = v
        elif hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
            out[key] = v.item()
        else:
            out[key] = json.dumps(v, default=str, sort_keys=True)
    return out


class HParamsCallback(Callback):
    """See the module docstring. ``metrics``: metric names listed first in the HParams table
    (every numeric metric is written as a scalar either way)."""

    def __init__(self, experiment_dir: str, *, metrics: Sequence[str] = (),
                 exclude: Callable[[str], bool] | None = None, subdir: str = "tensorboard"):
        if not isinstance(experiment_dir, (str, os.PathLike)):
            raise invalid_type("HParamsCallback.experiment_dir", "must be a path",
                               experiment_dir)
        self.logdir = os.path.join(os.path.abspath(os.fspath(experiment_dir)), subdir)
        self.metrics = list(dict.fromkeys(metrics))
        self.exclude = exclude
        self._writers: dict[str, Any] = {}
        self._seen: dict[str, list[str]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_writers": {}}

    def _dir(self, trial: Any) -> str:
        run = (trial.config.get("__rafiki_run") or {}).get("id")
        name = f"{run}_{trial.trial_id}" if run else str(trial.trial_id)
        return os.path.join(self.logdir, name)

    def _writer(self, trial: Any) -> Any:
        w = self._writers.get(trial.trial_id)
        if w is None:
            from tensorboardX import SummaryWriter
            from tensorboardX.summary import hparams

            w = SummaryWriter(self._dir(trial), flush_secs=5)
            _, ssi, _ = hparams(flat_hparams(trial.config), {})
            w.file_writer.add_summary(ssi)
            self._writers[trial.trial_id] = w
            self._seen.setdefault(trial.trial_id, [])
        return w

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._writer(trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        w = self._writer(trial)
        step = int(result.get("training_iteration", 0))
        seen = self._seen[trial.trial_id]
        for k, v in result.items():
            if k in _SKIP_METRICS or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            w.add_scalar(k, float(v), step)
            if k not in seen:
                seen.append(k)

    def _end(self, trial: Any, ok: bool) -> None:
        from tensorboardX.proto.api_pb2 import Status
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.summary import hparams

        w = self._writer(trial)
        names = [m for m in self.metrics if m in self._seen[trial.trial_id]]
        names += [m for m in self._seen[trial.trial_id] if m not in names]
        exp, _, _ = hparams(flat_hparams(trial.config), {m: 0.0 for m in names})
        w.file_writer.add_summary(exp)
        status = Status.Value("STATUS_SUCCESS" if ok else "STATUS_FAILURE")
        content = HParamsPluginData(session_end_info=SessionEndInfo(status=status), version=0)
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="hparams", content=content.SerializeToString()))
        w.file_writer.add_summary(
            Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=meta)]))
        w.close()
        del self._writers[trial.trial_id]
        if self.exclude is not None and self.exclude(trial.trial_id):
            shutil.rmtree(self._dir(trial), ignore_errors=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, ok=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, ok=False)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for w in list(self._writers.values()):
            w.close()
        self._writers.clear()
        if self.exclude is not None:  # runs deleted after their trial had ended
            for t in trials:
                if self.exclude(t.trial_id):
                    shutil.rmtree(self._dir(t), ignore_errors=True)
