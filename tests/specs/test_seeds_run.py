"""Every example spec of the seed documents runs end to end with real command trials on the
small PyTorch digits model (examples/specs/digits_model.py), fixed where the seeds have
documented typos (tests/specs/seeds.py lists each fix). Sizes are cut for the test (trial
counts, Hyperband's max_iter), never the semantics. Slow: each trial starts a process that
imports torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from rafiki_ray.specs import load_experiment, read_status
from tests.specs import seeds
from tests.specs.conftest import write

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


@pytest.fixture
def code(workdir: Path) -> Path:
    # the seed's T9k command is "python3 dist_mnist.py"; the Polyaxon one "python3 train.py"
    shutil.copy(workdir / "train_t9k.py", workdir / "dist_mnist.py")
    shutil.copy(workdir / "train_polyaxon.py", workdir / "train.py")
    return workdir


def _finished(out) -> list:
    return [r for r in out.results if r.error is None]


@pytest.mark.parametrize("section", [None, "anneal_medianstop", "evolution", "batch", "grid",
                                     "metis", "gp", "curvefitting"])
def test_t9k_seed_examples_run(code: Path, storage: str, section):
    text = seeds.t9k_spec(section, working_dir=str(code), trials=2)
    data = yaml.safe_load(text)
    data["spec"]["trialConcurrency"] = 2
    if section == "batch":  # Batch: the 4 listed learning rates, whole parameter sets
        data["spec"]["maxTrialNum"] = 4
    exp = load_experiment(write(code, "exp.yaml", yaml.safe_dump(data)))
    out = exp.run(storage_path=storage)
    assert out.phase == "DONE"
    assert len(out.results) == exp.expected_trials and not out.results.errors
    for r in out.results:
        assert r.metrics["final"] is True and 0.0 <= r.metrics["default"] <= 1.0
        assert r.metrics["training_iteration"] == 4  # 3 epochs (step 1..3) + the final result
    assert read_status(out.path)["best"]["value"] == (
        max if exp.mode == "max" else min)(r.metrics["default"] for r in out.results)


def test_t9k_pbt_example_runs_generations_with_checkpoint_dirs(code: Path, storage: str):
    write(code, "pbt_trial.py", """
import json, os
from t9k import tuner
p = tuner.get_next_parameter()
prev = os.path.join(p["load_checkpoint_dir"], "state.json")
start = json.load(open(prev))["acc"] if os.path.exists(prev) else 0.0
acc = start + p["learning_rate"]
os.makedirs(p["save_checkpoint_dir"], exist_ok=True)
json.dump({"acc": acc}, open(os.path.join(p["save_checkpoint_dir"], "state.json"), "w"))
tuner.report_final_result(acc)
""")
    data = yaml.safe_load(seeds.t9k_spec("pbt", working_dir=str(code), trials=6))
    args = json.loads(data["spec"]["tuner"]["classArgs"])
    args["population_size"] = 2
    data["spec"]["tuner"]["classArgs"] = json.dumps(args)
    data["spec"]["trialConcurrency"] = 2
    container = data["spec"]["trainingConfig"]["tasks"][0]["template"]["spec"]["containers"][0]
    container["command"] = ["python3", "pbt_trial.py"]
    exp = load_experiment(write(code, "exp.yaml", yaml.safe_dump(data)))
    assert exp.num_samples == 2 and exp.trial.pbt_generations == 3
    out = exp.run(storage_path=storage)
    assert out.phase == "DONE" and not out.results.errors
    for r in out.results:
        assert r.metrics["generation"] == 3
        # each generation continued from a checkpoint: the accuracy accumulates
        assert r.metrics["default"] > max(0.0001, r.config["learning_rate"]) - 1e-12


@pytest.mark.parametrize("name", ["POLYAXON_GRID", "POLYAXON_GRID_N", "POLYAXON_RANDOM",
                                  "POLYAXON_BO", "POLYAXON_BO_ES"])
def test_polyaxon_seed_examples_run(code: Path, storage: str, name: str):
    text = seeds.polyaxon_spec(getattr(seeds, name))
    data = yaml.safe_load(text)
    hp = data["hptuning"]
    if "random_search" in hp:
        hp["random_search"]["n_experiments"] = 2
    elif "bo" in hp:
        hp["bo"].update(n_initial_trials=1, n_iterations=1)
    else:
        hp["grid_search"] = {"n_experiments": 2}
    hp["early_stopping"] = [r for r in hp.get("early_stopping", []) if r["metric"] == "loss"]
    data["run"]["cmd"] += " --epochs=2" if "epochs" not in data["run"]["cmd"] else ""
    data.setdefault("declarations", {})["num_steps"] = 2  # bo's command passes num_steps
    exp = load_experiment(write(code, "polyaxonfile.yml", yaml.safe_dump(data)))
    out = exp.run(storage_path=storage)
    assert out.phase == "DONE" and not out.results.errors
    assert len(out.results) == 2
    for r in out.results:  # the last logged metrics are the trial's result
        assert 0.0 <= r.metrics["accuracy"] <= 1.0 and r.metrics["loss"] > 0


def test_polyaxon_hyperband_runs_brackets_with_the_resource(code: Path, storage: str):
    data = yaml.safe_load(seeds.polyaxon_spec(seeds.POLYAXON_HYPERBAND_ES))
    hb = data["hptuning"]["hyperband"]
    hb["max_iter"] = 3  # brackets s=1: 3 configs at 1 epoch, 1 promoted to 3; s=0: 2 at 3
    data["hptuning"]["early_stopping"] = [{"metric": "loss", "value": 0.0001,
                                           "optimization": "minimize"}]
    data["hptuning"]["seed"] = 0
    exp = load_experiment(write(code, "polyaxonfile.yml", yaml.safe_dump(data)))
    assert exp.num_samples == 5
    out = exp.run(storage_path=storage)
    assert out.phase == "DONE" and not out.results.errors
    assert len(out.results) == 5
    budgets = sorted(r.config["num_steps"] for r in out.results)
    assert set(budgets) == {1, 3} and budgets.count(3) >= 3  # two at s=0, promotions from s=1
    for r in out.results:
        assert r.metrics["step"] == r.config["num_steps"]  # trained for its (last) budget
    # a promoted trial restarted (resume: False) with the larger budget injected
    histories = [r.metrics_dataframe for r in out.results]
    assert any(list(h["config/num_steps"])[:2] == [1, 3] for h in histories)
