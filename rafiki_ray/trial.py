"""The NNI / T9k trial API, for command trials and Python function trials.

Trial scripts written for NNI (``import nni``) or T9k (``from t9k import tuner``) run unchanged
when the shim directory is importable (:func:`install_shims` in a Python process, or
:data:`SHIM_DIR` on ``PYTHONPATH``; command trials started by :mod:`rafiki_ray.specs` get it by
default). The same functions work in three settings:

* **command trial** (a process started by ``rafiki_ray.specs``): the parameters come from the
  environment (``RAFIKI_TRIAL_PARAMS``, JSON) and every report is appended as one JSON line to
  the file ``RAFIKI_REPORT_FILE``, which the Tune trial tails and turns into ``tune.report``;
* **function trial** (a Python function run by a Tune trial through ``rafiki_ray.specs``): the
  parameters are the Tune config, reports go straight to ``tune.report``;
* **standalone** (neither): ``get_next_parameter()`` returns ``{}`` and reports are only
  logged, as NNI's standalone mode does.

Behaviour (NNI ``nni/trial.py`` and T9k ``t9k.tuner``; formats.md sections 2 and 5):

* ``get_next_parameter()`` returns the trial's parameters on the first call and ``None`` on
  later calls (no multi-phase experiments);
* a metric is a number or a dict with a numeric ``"default"`` (the other entries are kept as
  extra metrics); anything else raises ``TypeError`` at the call, so the script fails and the
  trial fails with the message in its stderr;
* ``report_intermediate_result(metric, step=None)``: T9k's ``step`` argument, optional (NNI has
  none; the steps are then counted from 1);
* ``report_final_result(metric)``: the trial's result; a second call is ignored with a
  warning (NNI uses the first final result of a non-multi-phase trial);
* PBT-style tuners give ``load_checkpoint_dir`` / ``save_checkpoint_dir`` in the parameters,
  as NNI's PBTTuner does (``<all_checkpoint_dir>/<member>/<generation>``).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rafiki_ray._errors import invalid_type

__all__ = [
    "SHIM_DIR",
    "get_current_parameter",
    "get_experiment_id",
    "get_next_parameter",
    "get_sequence_id",
    "get_trial_id",
    "install_shims",
    "metric_dict",
    "report_final_result",
    "report_intermediate_result",
]

logger = logging.getLogger(__name__)

#: Directory holding the ``nni``, ``t9k`` and ``polyaxon_client`` shim packages.
SHIM_DIR = str(Path(__file__).resolve().parent / "_shims")

#: Environment of a command trial (set by :mod:`rafiki_ray.specs`).
ENV_PARAMS = "RAFIKI_TRIAL_PARAMS"
ENV_REPORT_FILE = "RAFIKI_REPORT_FILE"
ENV_TRIAL_ID = "RAFIKI_TRIAL_ID"
ENV_EXPERIMENT_ID = "RAFIKI_EXPERIMENT_ID"
ENV_SEQUENCE_ID = "RAFIKI_SEQUENCE_ID"


class _Session:
    """Where parameters come from and where reports go, for the current trial."""

    def __init__(
        self,
        params: Any,
        *,
        trial_id: str,
        experiment_id: str,
        sequence_id: int,
        sink: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.params = params
        self.trial_id = trial_id
        self.experiment_id = experiment_id
        self.sequence_id = sequence_id
        self.sink = sink
        self.handed_out = False
        self.final_sent = False
        self.steps = 0
        self.lock = threading.Lock()


_session: _Session | None = None


def _from_env() -> _Session:
    raw = os.environ.get(ENV_PARAMS)
    report_file = os.environ.get(ENV_REPORT_FILE)
    params = json.loads(raw) if raw else {}
    sink = None
    if report_file:
        def sink(record: dict[str, Any], _path: str = report_file) -> None:
            line = json.dumps(record, allow_nan=True) + "\n"
            with open(_path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
    else:
        logger.warning(
            "rafiki_ray.trial: no trial context (%s unset); standalone mode, reports are logged",
            ENV_REPORT_FILE,
        )
    return _Session(
        params,
        trial_id=os.environ.get(ENV_TRIAL_ID, "STANDALONE"),
        experiment_id=os.environ.get(ENV_EXPERIMENT_ID, "STANDALONE"),
        sequence_id=int(os.environ.get(ENV_SEQUENCE_ID, "0") or 0),
        sink=sink,
    )


def _current() -> _Session:
    global _session
    if _session is None:
        _session = _from_env()
    return _session


def _activate(session: _Session | None) -> _Session | None:
    """Install ``session`` as the current one (function trials); returns the previous one."""
    global _session
    previous, _session = _session, session
    return previous


def metric_dict(metric: Any, path: str = "metric") -> dict[str, float]:
    """A reported metric as a dict with a float ``"default"`` (NNI's rule), else TypeError.

    >>> metric_dict(0.5)
    {'default': 0.5}
    >>> metric_dict({"default": 1, "loss": 0.2})
    {'default': 1.0, 'loss': 0.2}
    """
    if _is_number(metric):
        return {"default": float(metric)}
    if isinstance(metric, Mapping):
        if "default" not in metric:
            raise invalid_type(path, "a dict metric needs a numeric 'default' entry", metric)
        out: dict[str, float] = {}
        for key, value in metric.items():
            if not isinstance(key, str):
                raise invalid_type(f"{path} keys", "must be strings", key)
            if not _is_number(value):
                raise invalid_type(f"{path}[{key!r}]", "must be a number", value)
            out[key] = float(value)
        return out
    raise invalid_type(path, "must be a number or a dict with a numeric 'default'", metric)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def get_next_parameter() -> Any:
    """The trial's parameters (a dict) on the first call, ``None`` afterwards."""
    s = _current()
    with s.lock:
        if s.handed_out:
            return None
        s.handed_out = True
        return s.params


def get_current_parameter(tag: str | None = None) -> Any:
    """NNI's ``get_current_parameter``: the parameters (or one of them) without consuming."""
    s = _current()
    if tag is None:
        return s.params
    return s.params[tag]


def report_intermediate_result(metric: Any, step: int | None = None) -> None:
    """Report an intermediate result (a number or a dict with a numeric ``"default"``)."""
    values = metric_dict(metric, "report_intermediate_result.metric")
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
        raise invalid_type("report_intermediate_result.step", "must be an int or None", step)
    s = _current()
    with s.lock:
        s.steps += 1
        record = {"kind": "intermediate", "metric": values,
                  "step": s.steps if step is None else int(step), "time": time.time()}
    _send(s, record)


def report_final_result(metric: Any) -> None:
    """Report the trial's final result (a number or a dict with a numeric ``"default"``)."""
    values = metric_dict(metric, "report_final_result.metric")
    s = _current()
    with s.lock:
        if s.final_sent:
            logger.warning("report_final_result: a final result was already reported; ignored")
            return
        s.final_sent = True
    _send(s, {"kind": "final", "metric": values, "step": None, "time": time.time()})


def _send(s: _Session, record: dict[str, Any]) -> None:
    if any(not math.isfinite(v) for v in record["metric"].values()):
        logger.warning("reported a non-finite metric: %s", record["metric"])
    if s.sink is None:
        logger.info("standalone %s result: %s", record["kind"], record["metric"])
        return
    s.sink(record)


def get_trial_id() -> str:
    """The trial's id (the Tune trial id; ``"STANDALONE"`` outside a trial)."""
    return _current().trial_id


def get_experiment_id() -> str:
    """The experiment's id (its name; ``"STANDALONE"`` outside a trial)."""
    return _current().experiment_id


def get_sequence_id() -> int:
    """NNI's sequence id: the trial's index in the experiment (0 outside a trial)."""
    return _current().sequence_id


def install_shims() -> str:
    """Make ``import nni``, ``from t9k import tuner`` and ``polyaxon_client.tracking`` resolve
    to this API in the current process (opt-in; shadows real installs). Returns the shim dir."""
    if SHIM_DIR not in sys.path:
        sys.path.insert(0, SHIM_DIR)
    import importlib

    importlib.invalidate_caches()
    return SHIM_DIR
