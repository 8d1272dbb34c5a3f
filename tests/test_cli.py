"""``rafiki-ray`` as a shell user meets it: --help, exit statuses, validate, status, results;
``run`` in its own process with its own embedded Ray; Ctrl-C (SIGINT) during ``run``, then
``resume``, completes the experiment with nothing lost (slow)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rafiki_ray.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_help_and_usage_errors(capsys, tmp_path):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "status", "results", "resume", "validate"):
        assert command in out
    assert main([]) == 2  # no sub-command: help on stderr
    assert main(["run"]) == 2  # FILE missing
    assert main(["results", str(tmp_path), "--format", "xml"]) == 2
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["status", str(tmp_path)]) == 2  # not an experiment directory
    assert len(COMMANDS) == 7 and build_parser().prog == "rafiki-ray"


def test_validate_prints_every_error_with_its_path(capsys, tmp_path):
    spec = _write(tmp_path / "bad.yml", """
searchSpace: {lr: {_type: uniform, _value: [1, 0]}}
trialCommand: python t.py
trialConcurrency: two
tuner: {name: TPE, classArgs: {optimize_mode: maximise}}
advisor: {name: Hyperband}
""")
    assert main(["validate", str(spec)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4, out
    for path in ("searchSpace.lr._value", "trialConcurrency", "advisor",
                 "tuner.classArgs.optimize_mode"):
        assert any(f"bad.yml:{path}:" in line for line in out), (path, out)
    good = _write(tmp_path / "good.yml", "searchSpace: {lr: {_type: uniform, _value: [0, 1]}}\n"
                  "trialCommand: python t.py\ntuner: {name: Random}\n")
    assert main(["validate", str(good)]) == 0


def test_status_and_results_of_a_finished_experiment(ray_session, storage, capsys, tmp_path):
    from rafiki_ray import trial
    from rafiki_ray.specs import load_experiment

    spec = _write(tmp_path / "exp.yml", """
experimentName: cli
searchSpace: {x: {_type: choice, _value: [1, 2]}}
trialCommand: python never_run.py
tuner: {name: GridSearch, classArgs: {optimize_mode: minimize}}
""")

    def objective():
        x = trial.get_next_parameter()["x"]
        trial.report_final_result({"default": x / 10, "size": x})

    out = load_experiment(spec, trial=objective).run(storage_path=storage)
    assert out.phase == "DONE"
    capsys.readouterr()
    assert main(["status", out.path]) == 0
    text = capsys.readouterr().out
    assert "phase: DONE" in text and "trials: 2 of 2" in text and "best default: 0.1" in text
    assert main(["results", out.path, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["param.x"], r["default"], r["state"]) for r in rows] == [
        (1, 0.1, "TERMINATED"), (2, 0.2, "TERMINATED")]  # best first (minimize)
    assert main(["results", out.path, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["param.x"] for row in table] == ["1", "2"]
    assert main(["results", out.path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["trial_id", "state", "default"] and len(lines) == 3


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["HOME"] = str(tmp_path)
    env.pop("RAY_ADDRESS", None)
    env.setdefault("RAY_worker_niceness", "0")
    return env


@pytest.mark.slow
def test_sigint_during_run_then_resume_loses_nothing(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    _write(code / "step.py", """
import time, nni
p = nni.get_next_parameter()
time.sleep(p["t"])
nni.report_final_result(p["t"])
""")
    spec = _write(code / "exp.yml", """
experimentName: interrupted
searchSpace: {t: {_type: choice, _value: [1, 2, 3, 4, 5, 6]}}
trialCommand: python step.py
trialConcurrency: 1
tuner: {name: GridSearch}
""")
    storage = tmp_path / "results"
    exp_dir = storage / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rafiki_ray.cli", "run", str(spec), "--storage", str(storage),
         "--num-cpus", "2", "--interval", "0.5"],
        env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    status_file = exp_dir / "rafiki_status.json"
    deadline = time.time() + 300
    while time.time() < deadline:  # wait until two trials have finished
        time.sleep(0.5)
        try:
            states = json.loads(status_file.read_text()).get("trials", {})
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        if list(states.values()).count("TERMINATED") >= 2:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (out, err[-3000:])
    assert "phase: INTERRUPTED" in out and f"rafiki-ray resume {exp_dir}" in out
    before = json.loads(status_file.read_text())
    assert before["phase"] == "INTERRUPTED"
    done_before = {t for t, s in before["trials"].items() if s == "TERMINATED"}
    assert 2 <= len(done_before) < 6

    res = subprocess.run([sys.executable, "-m", "rafiki_ray.cli", "resume", str(exp_dir),
                          "--num-cpus", "2"], env=_env(tmp_path), cwd=tmp_path,
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, (res.stdout, res.stderr[-3000:])
    after = json.loads(status_file.read_text())
    assert after["phase"] == "DONE"
    assert done_before <= {t for t, s in after["trials"].items() if s == "TERMINATED"}
    rows = json.loads(subprocess.run(
        [sys.executable, "-m", "rafiki_ray.cli", "results", str(exp_dir), "--format", "json"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=True).stdout)
    # every configuration ran to its final result exactly once
    assert sorted(r["param.t"] for r in rows) == [1, 2, 3, 4, 5, 6]
    assert sorted(r["default"] for r in rows) == [1, 2, 3, 4, 5, 6]
    assert all(r["state"] == "TERMINATED" for r in rows)


def test_ctl_and_plot_are_registered_subcommands():
    from rafiki_ray.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["ctl", "some/dir", "stop", "run-0001"])
    assert callable(args.func)
    args = parser.parse_args(["plot", "some/dir"])
    assert callable(args.func)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local_cluster(tmp_path):
    """A real Ray cluster of one head node (2 CPUs) started by ``ray start --block`` in its own
    process group, with its own short temp dir (socket paths are limited to 107 bytes);
    stopped (that group only) at the end. Yields (address, temp_dir, env)."""
    import shutil
    import socket
    import tempfile

    temp_dir = tempfile.mkdtemp(prefix="rr_cluster_", dir="/tmp")
    port = _free_port()
    env = _env(tmp_path)
    # `ray start` finds no token in the test's HOME (ray.init creates one, `ray start` does
    # not): a private test cluster runs without token authentication, and so does its client
    env["RAY_AUTH_MODE"] = "disabled"
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
         f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=0",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            assert head.poll() is None, head.stdout.read()[-3000:]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.time() < deadline, "the Ray head did not come up in 120 s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", Path(temp_dir), env
    finally:
        head.send_signal(signal.SIGTERM)  # ray start --block stops its node on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # anything of that group left behind
        except ProcessLookupError:
            pass
        head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_run_with_address_uses_the_given_cluster(local_cluster, tmp_path):
    address, temp_dir, env = local_cluster
    code = tmp_path / "code"
    code.mkdir()
    _write(code / "square.py", """
import nni
x = nni.get_next_parameter()["x"]
nni.report_final_result(x * x)
""")
    spec = _write(code / "exp.yml", """
experimentName: on_cluster
searchSpace: {x: {_type: choice, _value: [1, 2, 3]}}
trialCommand: python square.py
trialConcurrency: 2
tuner: {name: GridSearch}
""")
    storage = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rafiki_ray.cli", "run", str(spec), "--storage", str(storage),
         "--address", address, "--interval", "0.5"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, (out, err[-3000:])
    assert "phase: DONE" in out and 'best: 9 {"x": 3}' in out
    assert "trials 3/3 done, 0 running" in err  # the progress display's final line
    status = json.loads((storage / "on_cluster" / "rafiki_status.json").read_text())
    assert sorted(status["trials"].values()) == ["TERMINATED"] * 3
    # the driver joined the cluster started above (an embedded Ray would have its own session
    # under the default temp dir): its core-driver log is in this cluster's session
    logs = temp_dir / "session_latest" / "logs"
    assert list(logs.glob(f"python-core-driver-*_{proc.pid}.log")), sorted(
        p.name for p in logs.iterdir())[:50]
