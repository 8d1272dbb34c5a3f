"""Spec files -> Experiment, without running: every seed example (fixed where documented),
the name mapping with its notes, the T9k / NNI / Polyaxon rules, Polyaxon's Hyperband
brackets, and every error of a broken spec reported at once with its path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from rafiki_ray.schedulers.hyperband import bracket_table
from rafiki_ray.specs import (
    CommandTrial,
    SpecError,
    load_experiment,
    map_tuner,
    validate_experiment,
)
from rafiki_ray.specs._mapping import map_advisor
from tests.specs import seeds
from tests.specs.conftest import write

# ------------------------------------------------------------------------------- T9k seeds


def test_t9k_basic_example_needs_its_working_directory_fixed(tmp_path: Path):
    spec = write(tmp_path, "exp.yaml", seeds.T9K_BASIC)
    errors = validate_experiment(spec)
    assert len(errors) == 1
    assert "spec.trainingConfig.tasks[0].template.spec.containers[0].workingDir" in errors[0]
    assert "/mnt/mnist-distributed" in errors[0]


def test_t9k_basic_example_fixed(workdir: Path):
    spec = write(workdir, "exp.yaml", seeds.t9k_spec(working_dir=str(workdir)))
    exp = load_experiment(spec)
    assert exp.source == "t9k" and exp.name == "experiment-sample"
    assert exp.num_samples == 50 and exp.max_concurrent == 3 and exp.time_budget_s == 7200
    assert exp.mode == "min" and exp.metric == "default"
    assert exp.searcher.class_name == "TPESearch"
    assert exp.searcher.args == {"constant_liar_type": "min"}
    assert isinstance(exp.trial, CommandTrial)
    assert exp.trial.command == ("python3", "dist_mnist.py")
    assert exp.trial.code_dir == str(workdir.resolve())
    assert exp.space["batch_size"].choices == (512, 1024, 2048, 4096, 8192)
    searcher, scheduler = exp.build_components()
    assert searcher.metric == "default" and searcher.mode == "min" and scheduler is None


@pytest.mark.parametrize(
    ("section", "searcher", "scheduler", "mode"),
    [
        ("anneal_medianstop", "TPESearch", "MedianStopping", "min"),
        ("evolution", "EvolutionSearch", None, "min"),
        ("batch", None, None, "max"),
        ("grid", None, None, "max"),
        ("metis", "GPSearch", None, "max"),
        ("gp", "GPSearch", None, "max"),
        ("pbt", "TPESearch", "PBT", "max"),
        ("curvefitting", "TPESearch", "CurveFitting", "min"),
    ],
)
def test_t9k_algorithm_examples(workdir: Path, section, searcher, scheduler, mode):
    spec = write(workdir, "exp.yaml", seeds.t9k_spec(section, working_dir=str(workdir)))
    exp = load_experiment(spec)
    assert (exp.searcher.class_name if exp.searcher else None) == searcher
    assert (exp.scheduler.class_name if exp.scheduler else None) == scheduler
    assert exp.mode == mode
    built_searcher, built_scheduler = exp.build_components()
    assert type(built_searcher).__name__ if built_searcher else None == searcher
    if section == "anneal_medianstop":
        # the assessor keeps its own optimize_mode (maximize) while the tuner minimizes
        assert built_scheduler.mode == "max" and built_searcher.mode == "min"
        assert built_searcher.get_state()["algo"] == "anneal" if "algo" in \
            built_searcher.get_state() else True
    if section == "batch":
        assert exp.configs == tuple({"learning_rate": v} for v in (0.0001, 0.001, 0.01, 0.1))
        assert any("scalar choices" in n for n in exp.notes)
    if section == "grid":
        assert len(exp.configs) == 5 * 4 and exp.expected_trials == 20
    if section == "metis":
        assert any("Metis runs as GPSearch" in n for n in exp.notes)
        assert exp.searcher.args == {"cold_start_num": 10, "selection_num_starting_points": 600}
    if section == "pbt":
        assert exp.num_samples == 10 and exp.trial.pbt_generations == 5  # 50 trials / 10


@pytest.mark.parametrize(("section", "where"), [
    ("batch", "spec.tuner.classArgs.population_size"),
    ("curvefitting", "spec.assessor.classArgs.optimize_mode"),
])
def test_t9k_documented_typos_fail_unfixed(workdir: Path, section, where):
    text = seeds.t9k_spec(section, working_dir=str(workdir), fix=False)
    text = text.replace("/mnt/mnist-distributed", str(workdir))  # only the typo under test
    errors = validate_experiment(write(workdir, "exp.yaml", text))
    assert len(errors) == 1 and where in errors[0], errors


def test_ppo_maps_to_enas_for_architecture_spaces(workdir: Path, caplog):
    spec = write(workdir, "exp.yaml", seeds.t9k_spec("ppo", working_dir=str(workdir)))
    assert validate_experiment(spec) == []
    searcher, _ = load_experiment(spec).build_components()
    from rafiki_ray.nas import ENASSearch

    assert isinstance(searcher, ENASSearch)
    config = searcher.suggest("t0")
    assert isinstance(config, dict) and searcher.space.contains(config)
    from rafiki_ray.spaces import load_space
    from rafiki_ray.specs._load import _read

    space = load_space(spec)
    plan = map_tuner("PPOTuner", yaml.safe_load(_read(spec)["spec"]["tuner"]["classArgs"]),
                     space)
    assert plan.searcher.target == "rafiki_ray.nas:ENASSearch" and plan.mode == "max"
    assert "ENASSearch" in plan.note
    with pytest.raises(ValueError, match="architecture spaces only"):
        map_tuner("PPOTuner", {}, load_space(write(workdir, "s.json",
                  '{"lr": {"_type": "uniform", "_value": [0, 1]}}')))


# ------------------------------------------------------------------------------- rules


def _nni(tmp_path: Path, body: str) -> Path:
    return write(tmp_path, "config.yml", "searchSpace: {x: {_type: uniform, _value: [0, 1]}}\n"
                 "trialCommand: python t.py\n" + body)


def test_nni_rules(tmp_path: Path):
    both = _nni(tmp_path, "tuner: {name: TPE}\nadvisor: {name: Hyperband}\n")
    (err,) = validate_experiment(both)
    assert "advisor: NNI takes a tuner or an advisor, not both" in err
    lone = _nni(tmp_path, "assessor: {name: Medianstop}\nadvisor: {name: BOHB}\n")
    (err,) = validate_experiment(lone)
    assert "assessor: an assessor needs a tuner" in err
    (err,) = validate_experiment(_nni(tmp_path, "trialConcurrency: 2\n"))
    assert "tuner: a tuner or an advisor is required" in err
    (err,) = validate_experiment(_nni(tmp_path, "tuner: {name: PBTTuner}\n"
                                      "assessor: {name: Medianstop}\n"))
    assert "takes no assessor" in err
    (err,) = validate_experiment(_nni(tmp_path, "tuner: {name: Annealing}\n"))
    assert "tuner.name: is not a known tuner (did you mean 'Anneal'?)" in err


def test_t9k_rules(workdir: Path):
    text = seeds.t9k_spec(working_dir=str(workdir))
    data = yaml.safe_load(text)
    data["spec"]["advisor"] = {"builtinAdvisorName": "Hyperband"}
    exp = load_experiment(write(workdir, "a.yaml", yaml.safe_dump(data)))
    assert exp.scheduler is None and exp.searcher.class_name == "TPESearch"
    assert any("the tuner 'TPE' wins" in n for n in exp.notes)
    del data["spec"]["tuner"]
    data["spec"]["assessor"] = {"builtinAssessorName": "Medianstop"}
    exp = load_experiment(write(workdir, "b.yaml", yaml.safe_dump(data)))
    assert exp.scheduler.class_name == "Hyperband"  # the advisor's; the assessor is ignored
    assert any("ignored without a tuner" in n for n in exp.notes)


def test_nni_advisors(tmp_path: Path):
    exp = load_experiment(_nni(tmp_path, "maxTrialNumber: 7\nadvisor:\n  name: BOHB\n"
                               "  classArgs: {optimize_mode: minimize, max_budget: 9, eta: 3, "
                               "min_points_in_model: 4}\n"))
    assert exp.searcher.class_name == "TPESearch" and exp.scheduler.class_name == "Hyperband"
    searcher, scheduler = exp.build_components()
    assert scheduler.mode == "min" and searcher.mode == "min" and exp.num_samples == 7
    plan = map_advisor("Hyperband", {"R": 27, "eta": 3}, None)
    assert plan.scheduler.kwargs["resource"] == {"name": "TRIAL_BUDGET", "type": "int"}
    exp = load_experiment(_nni(tmp_path, "advisor: {name: Hyperband, classArgs: {R: 27}}\n"))
    assert exp.num_samples == sum(b["n"] for b in bracket_table(27, 3))


def test_nni_v1_names_and_durations(tmp_path: Path):
    spec = write(tmp_path, "v1.yml", """
authorName: someone
experimentName: v1
trialConcurrency: 2
maxExecDuration: 1.5h
maxTrialNum: 4
trainingServicePlatform: local
searchSpacePath: space.json
tuner:
  builtinTunerName: Random
trial:
  command: python3 mnist.py
  codeDir: .
  gpuNum: 0
""")
    write(tmp_path, "space.json", '{"lr": {"_type": "loguniform", "_value": [0.001, 0.1]}}')
    exp = load_experiment(spec)
    assert exp.time_budget_s == 5400 and exp.num_samples == 4 and exp.max_concurrent == 2
    assert exp.trial.command == "python3 mnist.py" and exp.searcher.args == {
        "algorithm_name": "random_search"}


# ------------------------------------------------------------------------------- Polyaxon


@pytest.mark.parametrize("text", [seeds.POLYAXON_GRID, seeds.POLYAXON_GRID_N,
                                  seeds.POLYAXON_RANDOM, seeds.POLYAXON_HYPERBAND,
                                  seeds.POLYAXON_HYPERBAND_ES, seeds.POLYAXON_BO,
                                  seeds.POLYAXON_BO_ES])
def test_polyaxon_examples(tmp_path: Path, text: str, caplog):
    spec = write(tmp_path, "polyaxonfile.yml", seeds.polyaxon_spec(text))
    with caplog.at_level(logging.WARNING):
        exp = load_experiment(spec)
    assert exp.source == "polyaxon" and exp.trial.template
    if text is seeds.POLYAXON_GRID:
        assert len(exp.configs) == 10 and exp.trial.declarations == {"batch_size": 128}
        lr = sorted({c["lr"] for c in exp.configs})
        assert lr[0] == pytest.approx(10 ** 0.01)  # logspace bounds are exponents (the code)
    if text is seeds.POLYAXON_GRID_N:
        assert len(exp.configs) == 4
    if text is seeds.POLYAXON_RANDOM:
        assert exp.max_concurrent == 2 and len(exp.early_stopping) == 2
        assert len(exp.configs) == 40 and exp.metric == "accuracy"
        rendered = exp.trial.render({**exp.configs[0]})
        assert "\\" not in rendered and " --lr=" in rendered
    if text in (seeds.POLYAXON_HYPERBAND, seeds.POLYAXON_HYPERBAND_ES):
        assert exp.metric == "loss" and exp.mode == "min"
        assert exp.scheduler.kwargs["resource"] == {"name": "num_steps", "type": "int"}
        assert exp.num_samples == 81 + 34 + 15 + 8 + 5
    if text in (seeds.POLYAXON_BO, seeds.POLYAXON_BO_ES):
        assert exp.num_samples == 45 and exp.searcher.class_name == "GPSearch"
        if text is seeds.POLYAXON_BO:  # Polyaxon's sklearn Matern takes any nu; ours 3 values
            assert any("nu: 1.9 -> 1.5" in n for n in exp.notes)
        searcher, _ = exp.build_components()
        assert searcher.metric == "loss" and searcher.mode == "min"


def test_polyaxon_hyperband_brackets_s3_starts_with_34():
    # formats.md section 3: the v0 docs' table says 27; Polyaxon's code gives 34
    table = {b["s"]: b for b in bracket_table(81, 3, int)}
    assert table[3]["n"] == 34 and table[3]["r"] == 3
    assert table[3]["sizes"] == [34, 11, 3, 1] and table[3]["budgets"] == [3, 9, 27, 81]
    assert [table[s]["n"] for s in (4, 3, 2, 1, 0)] == [81, 34, 15, 8, 5]


def test_polyaxon_documented_failures_unfixed(tmp_path: Path):
    bo = write(tmp_path, "bo.yml", seeds.polyaxon_spec(seeds.POLYAXON_BO, fix=False))
    (err,) = validate_experiment(bo)
    assert "hptuning.matrix.activation.pvalues: bo accepts no distribution" in err
    exp = load_experiment(write(tmp_path, "r.yml",
                                seeds.polyaxon_spec(seeds.POLYAXON_RANDOM, fix=False)))
    assert "\\ " in exp.trial.render(dict(exp.configs[0]))  # what a shell would mangle


def test_polyaxon_templating_and_declarations(tmp_path: Path):
    trial = CommandTrial("run --a={{ a }} --b={{ b }} --missing={{ nope }}", template=True,
                         declarations={"a": 1, "b": 2})
    assert trial.render({"b": 5}) == "run --a=1 --b=5 --missing="


# ------------------------------------------------------------------------------- validate


def test_validate_reports_every_error_with_its_path(tmp_path: Path):
    spec = write(tmp_path, "broken.yml", """
experimentName: broken
searchSpace:
  alpha: {_type: loguniform, _value: [0, 0.1]}
  beta: {_type: qlognoraml, _value: [1, 2, 1]}
trialCommand: python train.py
trialCodeDirectory: no/such/dir
trialConcurrency: 0
maxTrialNumber: -3
maxExperimentDuration: 10x
tuner:
  name: TPE
  classArgs: {optimize_mode: sideways}
assessor:
  name: Medianstop
  classArgs: {start_step: 2, foo: 1}
bogusKey: 1
""")
    errors = validate_experiment(spec)
    expected = ["bogusKey", "searchSpace.alpha._value", "trialConcurrency", "maxTrialNumber",
                "maxExperimentDuration", "trialCommand directory", "tuner.classArgs.optimize_mode",
                "assessor.classArgs.foo"]
    for path in expected:
        assert any(f":{path}:" in e for e in errors), (path, errors)
    assert all(e.startswith(str(spec)) for e in errors)
    with pytest.raises(SpecError) as info:
        load_experiment(spec)
    assert len(info.value.errors) == len(errors) >= len(expected)


def test_not_a_spec(tmp_path: Path):
    with pytest.raises(ValueError, match="is not an experiment spec"):
        load_experiment(write(tmp_path, "x.yaml", "a: 1\n"))
    with pytest.raises(FileNotFoundError):
        load_experiment(tmp_path / "missing.yaml")


def test_metis_note_names_what_gpsearch_does_not_reproduce(tmp_path: Path, caplog):
    spec = tmp_path / "metis.yml"
    spec.write_text("searchSpace: {x: {_type: uniform, _value: [0, 1]}}\n"
                    "trialCommand: python t.py\n"
                    "tuner: {name: MetisTuner, classArgs: {no_resampling: false}}\n")
    with caplog.at_level(logging.WARNING, logger="rafiki_ray.specs._mapping"):
        exp = load_experiment(spec)
    (note,) = [n for n in exp.notes if n.startswith("Metis runs as GPSearch")]
    for part in ("outlier re-sampling", "2.33 sigma", "at most 3 runs",
                 "Gaussian mixture models", "exploration_probability",
                 "arguments ['no_resampling'] have no effect"):
        assert part in note, part
    assert "tuner.classArgs: no_resampling is false" in caplog.text
    assert exp.searcher.class_name == "GPSearch"
