"""Experiments run end to end on the session's Ray: command trials that fail in every way a
command can (the experiment goes on), Polyaxon early stopping, Python function trials."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from rafiki_ray.specs import load_experiment, read_status
from tests.specs.conftest import write

pytestmark = pytest.mark.usefixtures("ray_session")


def _alive(pid: int) -> bool:
    """Running (a zombie left to an init that does not reap, as in containers, is dead)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state not in ("Z", "X")


def _running_commands(fragment: str) -> list[int]:
    """Pids of live processes whose command line contains ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmd and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _trial_dirs(path: str) -> dict[str, Path]:
    out = {}
    for d in Path(path).iterdir():
        if (d / "params.json").is_file():
            params = json.loads((d / "params.json").read_text())
            params.pop("__config_index__", None)
            out[json.dumps(params.get("__parameters__", params), sort_keys=True)] = d
    return out


def test_failed_commands_fail_their_trials_not_the_experiment(workdir: Path, storage: str):
    # Batch tuner: each listed dict is one trial's whole parameter set (NNI's BatchTuner)
    modes = ["ok", "exit", "silent", "api_bad", "raw_bad"]
    spec = write(workdir, "nni.yaml", f"""
experimentName: failures
searchSpace:
  combos: {{_type: choice, _value: {json.dumps([{"mode": m} for m in modes])}}}
trialCommand: python behave.py
trialConcurrency: 2
tuner: {{name: Batch}}
""")
    exp = load_experiment(spec)
    assert exp.configs == tuple({"mode": m} for m in modes)
    out = exp.run(storage_path=storage)
    assert out.phase == "DONE"
    errors = {r.config["mode"]: str(r.error or "") for r in out.results}
    metrics = {r.config["mode"]: r.metrics for r in out.results}
    assert errors["ok"] == "" and metrics["ok"]["default"] == 0.75
    assert metrics["ok"]["loss"] == 0.5 and metrics["ok"]["final"] is True
    assert "exited with status 3" in errors["exit"]
    assert "boom: the data file is missing" in errors["exit"]  # the stderr tail is kept
    assert "no final result" in errors["silent"]
    assert "must be a number" in errors["api_bad"]  # the API refused it in the script
    assert "bad result" in errors["raw_bad"]  # the reader refused a raw bad line
    status = read_status(out.path)
    assert sorted(status["trials"].values()) == ["ERROR"] * 4 + ["TERMINATED"]
    # a refused trial's command is killed, not left running
    dirs = _trial_dirs(out.path)
    pid = int((dirs[json.dumps({"mode": "raw_bad"})] / "work" / "pid").read_text())
    assert not _alive(pid)
    err = (dirs[json.dumps({"mode": "exit"})] / "work" / "stderr.log").read_text()
    assert "boom" in err


def test_polyaxon_early_stopping_stops_the_experiment(workdir: Path, storage: str):
    spec = write(workdir, "polyaxonfile.yml", """
version: 1
kind: group
declarations:
  batch_size: 16
hptuning:
  concurrency: 2
  matrix:
    value:
      values: [0.1, 0.9, 0.2, 0.3, 0.4]
  early_stopping:
    - metric: accuracy
      value: 0.8
      optimization: maximize
run:
  cmd: python threshold.py --value={{ value }} --batch-size={{ batch_size }}
""")
    exp = load_experiment(spec)
    assert exp.metric == "accuracy" and exp.mode == "max"
    out = exp.run(storage_path=storage)
    assert out.phase == "DONE"
    assert out.early_stopped["metric"] == "accuracy" and out.early_stopped["reached"] == 0.9
    # 0.1 was running (training for a minute) when 0.9 reached the value: it was stopped,
    # its process killed; 0.2, 0.3 and 0.4 never started. Tune may already have created one of
    # them (PENDING) when the experiment stopped: its Result has no config and no metrics
    started = [r for r in out.results if r.config is not None]
    assert all(not r.metrics for r in out.results if r.config is None)
    values = sorted(r.config["value"] for r in started)
    assert values == [0.1, 0.9]
    # (its work/pid file need not have reached the storage folder: Tune syncs a trial's files
    # when it checkpoints or ends, and this one was killed; so look for the process itself)
    # Ray ends the stopped trial's actor asynchronously; its death (PDEATHSIG) or our kill
    # of the process group ends the command soon after, not necessarily before fit() returns
    deadline = time.monotonic() + 30
    while _running_commands("threshold.py --value=0.1 ") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _running_commands("threshold.py --value=0.1 ") == []
    dirs = _trial_dirs(out.path)
    rendered = next(d for k, d in dirs.items() if json.loads(k)["value"] == 0.9)
    # the command was rendered with the parameter and the declaration
    assert (rendered / "work" / "command.txt").read_text() == \
        "python threshold.py --value=0.9 --batch-size=16"
    assert read_status(out.path)["early_stopped"]["trial_id"]


def test_python_function_trial_with_the_trial_api(tmp_path: Path, storage: str):
    from rafiki_ray import trial

    spec = write(tmp_path, "t9k.yaml", """
apiVersion: tensorstack.dev/v1beta1
kind: AutoTuneExperiment
metadata: {name: fn}
spec:
  maxTrialNum: 3
  trialConcurrency: 1
  searchSpace: '{"x": {"_type": "choice", "_value": [1, 2, 3]}}'
  tuner: {builtinTunerName: GridSearch}
""")

    def objective():
        params = trial.get_next_parameter()
        for step in (1, 2):
            trial.report_intermediate_result(params["x"] * step / 10, step=step)
        trial.report_final_result({"default": params["x"] / 10, "id": 7})

    exp = load_experiment(spec, trial=objective)
    out = exp.run(storage_path=storage)
    assert out.phase == "DONE"
    assert sorted(r.metrics["default"] for r in out.results) == [0.1, 0.2, 0.3]
    assert out.best["value"] == 0.3 and out.best["config"] == {"x": 3}


def test_t9k_max_exec_seconds_ends_in_timeout(tmp_path: Path, storage: str):
    import time

    from rafiki_ray import trial

    spec = write(tmp_path, "t9k.yaml", """
apiVersion: tensorstack.dev/v1beta1
kind: AutoTuneExperiment
metadata: {name: slow}
spec:
  maxExecSeconds: 6
  maxTrialNum: 20
  trialConcurrency: 1
  searchSpace: '{"x": {"_type": "randint", "_value": [0, 100]}}'
  tuner: {builtinTunerName: Random}
""")

    def objective(params):
        time.sleep(2)
        trial.report_final_result(params["x"])

    out = load_experiment(spec, trial=objective).run(storage_path=storage)
    assert out.phase == "TIMEOUT"
    status = read_status(out.path)
    assert status["phase"] == "TIMEOUT" and len(status["trials"]) < 20


def test_nni_max_trial_duration_stops_an_overrunning_command(workdir: Path, storage: str):
    # NNI v2 maxTrialDuration: a trial past it is killed and marked EARLY_STOPPED (NNI's
    # nnimanager cancels it with isEarlyStopped); what it reported is kept; the experiment goes on
    spec = write(workdir, "nni.yaml", """
experimentName: overrun
searchSpace:
  mode: {_type: choice, _value: [hang, quick]}
trialCommand: python overrun.py
trialConcurrency: 2
maxTrialDuration: 3s
tuner: {name: GridSearch}
""")
    exp = load_experiment(spec)
    assert exp.max_trial_duration_s == 3.0
    assert not any("maxTrialDuration" in n for n in exp.notes)
    out = exp.run(storage_path=storage)
    assert out.phase == "DONE"
    by_mode = {r.config["mode"]: r for r in out.results}
    hang, quick = by_mode["hang"], by_mode["quick"]
    assert hang.error is None and quick.error is None  # stopped, not failed
    assert hang.metrics["default"] == 0.5 and hang.metrics["final"] is False  # report kept
    assert quick.metrics["default"] == 0.25 and quick.metrics["final"] is True
    status = read_status(out.path)
    assert sorted(status["trials"].values()) == ["EARLY_STOPPED", "TERMINATED"]
    assert out.best["value"] == 0.25  # NNI / T9k: only final results count
    dirs = _trial_dirs(out.path)
    hang_dir = dirs[json.dumps({"mode": "hang"})]
    mark = json.loads((hang_dir / "rafiki_trial_timeout.json").read_text())
    assert mark["limit_s"] == 3.0 and 3.0 <= mark["elapsed_s"] < 20.0  # not the 60 s sleep
    assert not _alive(int((hang_dir / "work" / "pid").read_text()))  # the command was killed


def test_trial_time_limit_stops_a_function_trial_at_its_next_report(tmp_path: Path,
                                                                    storage: str):
    import time

    from rafiki_ray import trial
    from rafiki_ray.spaces import SearchSpace
    from rafiki_ray.specs import Experiment

    def objective():
        for step in range(100):
            time.sleep(0.1)
            trial.report_intermediate_result(step, step=step)
        trial.report_final_result(100)

    exp = Experiment(name="fn_limit", space=SearchSpace.from_tune({}), trial=objective,
                     max_trial_duration_s=1.0)
    out = exp.run(storage_path=storage)
    (result,) = list(out.results)
    assert result.error is None
    assert 5 <= result.metrics["default"] < 60 and result.metrics["final"] is False
    assert list(read_status(out.path)["trials"].values()) == ["EARLY_STOPPED"]
    with pytest.raises(ValueError, match="max_trial_duration_s"):
        exp.replace(max_trial_duration_s=0)
