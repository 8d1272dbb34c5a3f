"""The NNI / T9k trial API (rafiki_ray.trial) in a command trial's environment, in standalone
mode, and through the ``nni`` / ``t9k.tuner`` / ``polyaxon_client`` shims in a fresh process,
as an unmodified trial script imports them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rafiki_ray import trial
from rafiki_ray.specs._command import _check_record

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def session(tmp_path, monkeypatch):
    """A command trial's environment (as rafiki_ray.specs sets it); yields the report file."""
    report = tmp_path / "reports.jsonl"
    monkeypatch.setenv(trial.ENV_PARAMS, json.dumps({"lr": 0.1, "layers": 2}))
    monkeypatch.setenv(trial.ENV_REPORT_FILE, str(report))
    monkeypatch.setenv(trial.ENV_TRIAL_ID, "t-1")
    monkeypatch.setenv(trial.ENV_EXPERIMENT_ID, "exp")
    previous = trial._activate(None)
    yield report
    trial._activate(previous)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_parameters_come_once_and_reports_are_json_lines(session):
    assert trial.get_next_parameter() == {"lr": 0.1, "layers": 2}
    assert trial.get_next_parameter() is None  # not multi-phase
    assert trial.get_current_parameter("lr") == 0.1
    assert trial.get_trial_id() == "t-1" and trial.get_experiment_id() == "exp"
    trial.report_intermediate_result(0.5)
    trial.report_intermediate_result({"default": 0.6, "loss": 1.5}, step=7)  # T9k's step
    trial.report_final_result(0.9)
    trial.report_final_result(0.1)  # ignored: the first final result counts
    lines = _lines(session)
    assert [r["kind"] for r in lines] == ["intermediate", "intermediate", "final"]
    assert [r["step"] for r in lines[:2]] == [1, 7]
    assert lines[1]["metric"] == {"default": 0.6, "loss": 1.5}
    assert lines[2]["metric"] == {"default": 0.9}
    assert [_check_record(r)[1]["default"] for r in lines] == [0.5, 0.6, 0.9]


@pytest.mark.parametrize("bad", ["0.5", None, [1.0], {"loss": 0.1}, {"default": "x"}, True,
                                 {"default": 1, 2: 3}])
def test_non_numbers_are_refused_at_the_call(session, bad):
    with pytest.raises(TypeError):
        trial.report_final_result(bad)
    with pytest.raises(TypeError):
        trial.report_intermediate_result(bad)
    assert not session.exists() or session.read_text() == ""


@given(st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                 st.dictionaries(st.text(min_size=1, max_size=5), st.floats(allow_nan=False),
                                 max_size=3).map(lambda d: {**d, "default": 1.0})))
def test_metric_dict_accepts_numbers_and_default_dicts(metric):
    out = trial.metric_dict(metric)
    assert isinstance(out["default"], float)
    assert all(isinstance(v, float) for v in out.values())


@given(st.one_of(st.text(), st.none(), st.lists(st.floats()), st.booleans(),
                 st.dictionaries(st.text(), st.text(), min_size=1)))
def test_metric_dict_refuses_anything_else_with_type_error(metric):
    with pytest.raises(TypeError):
        trial.metric_dict(metric)


def test_standalone_mode(monkeypatch, caplog):
    for var in (trial.ENV_PARAMS, trial.ENV_REPORT_FILE, trial.ENV_TRIAL_ID):
        monkeypatch.delenv(var, raising=False)
    previous = trial._activate(None)
    try:
        assert trial.get_next_parameter() == {}
        trial.report_final_result(1.0)  # logged only
        assert trial.get_trial_id() == "STANDALONE"
    finally:
        trial._activate(previous)


def test_unmodified_scripts_import_the_shims(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import nni\n"
        "from t9k import tuner\n"
        "from polyaxon_client.tracking import Experiment\n"
        "p = nni.get_next_parameter()\n"
        "assert tuner.get_next_parameter() is None\n"
        "nni.report_intermediate_result(p['x'])\n"
        "tuner.report_intermediate_result(p['x'] * 2, step=5)\n"
        "Experiment().log_metrics(loss=0.25, step=6)\n"
        "assert Experiment().get_params() == {'x': 0.5, 'd': 1}\n"
        "tuner.report_final_result({'default': 0.75, 'other': 1})\n"
    )
    report = tmp_path / "r.jsonl"
    env = dict(os.environ)
    env.update({trial.ENV_PARAMS: json.dumps({"x": 0.5}), trial.ENV_REPORT_FILE: str(report),
                "POLYAXON_DECLARATIONS": json.dumps({"x": 0.5, "d": 1}),
                "PYTHONPATH": os.pathsep.join([trial.SHIM_DIR, str(ROOT)])})
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = _lines(report)
    assert [(r["kind"], r["step"], r["metric"]["default"]) for r in lines] == [
        ("intermediate", 1, 0.5), ("intermediate", 5, 1.0), ("intermediate", 6, 0.25),
        ("final", None, 0.75)]
    assert lines[2]["metric"] == {"default": 0.25, "loss": 0.25}


def test_install_shims_in_process():
    path = trial.install_shims()
    try:
        assert path == trial.SHIM_DIR and sys.path[0] == path
        import t9k.tuner

        assert t9k.tuner.report_final_result is trial.report_final_result
    finally:
        sys.path.remove(path)
        for name in [m for m in sys.modules if m.split(".")[0] in ("nni", "t9k")]:
            del sys.modules[name]
