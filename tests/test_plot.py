"""Figures rendered from real experiment directories (SHA and PBT runs on Ray), checked for
what they hold: lines per trial, milestone lines and counts, exploit arrows, axes labels."""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import numpy as np
import pytest
from ray import tune

from rafiki_ray import plot
from rafiki_ray.experiment_data import load_experiment

# Two small Ray experiments (SHA, PBT) feed every test: 164 s on the shared 2-core machine.
pytestmark = pytest.mark.slow

LRS = [0.05, 0.1, 0.2, 0.4]


def _curve(config):
    """score rises with lr; resumes from its checkpoint (SHA pauses at rungs)."""
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "s.json")) as f:
            start = json.load(f)["t"]
    for t in range(start + 1, 5):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "s.json"), "w") as f:
                json.dump({"t": t}, f)
            tune.report({"score": 1 - np.exp(-config["lr"] * t), "opt": config["opt"]},
                        checkpoint=tune.Checkpoint.from_directory(d))


@pytest.fixture(scope="module")
def sha_dir(ray_session, tmp_path_factory):
    from rafiki_ray.schedulers import SuccessiveHalving

    storage = str(tmp_path_factory.mktemp("plot_sha"))
    sched = SuccessiveHalving(min_resource=1, max_resource=4, reduction_factor=2, num_trials=4,
                              metric="score", mode="max", seed=0)
    tune.Tuner(tune.with_resources(_curve, {"cpu": 0.5}),
               param_space={"lr": tune.grid_search(LRS), "opt": tune.grid_search(["sgd"])},
               tune_config=tune.TuneConfig(scheduler=sched, reuse_actors=True),
               run_config=tune.RunConfig(storage_path=storage, name="sha", verbose=0)).fit()
    return os.path.join(storage, "sha")


TOY_STEPS, TOY_INTERVAL = 24, 4


def _toy(config):
    from rafiki_ray.schedulers.pbt import PBTSession

    sess = PBTSession(config, store=config["store"])
    theta = np.array([0.9, 0.9])
    ex = sess.start()
    if ex is not None and ex.params is not None:
        theta = np.array(ex.params["theta"])
    for t in range(1, TOY_STEPS + 1):
        h = np.array([sess.config["h0"], sess.config["h1"]])
        theta = theta - 0.02 * 2 * h * theta
        ex = sess.report({"q": 1.2 - float(np.sum(theta**2))},
                         params={"theta": theta} if t % TOY_INTERVAL == 0 else None)
        if ex is not None:
            theta = np.array(ex.params["theta"])


@pytest.fixture(scope="module")
def pbt_dir(ray_session, tmp_path_factory):
    from rafiki_ray.schedulers import PBT

    storage = str(tmp_path_factory.mktemp("plot_pbt"))
    space = {"h0": tune.uniform(0, 1), "h1": tune.uniform(0, 1)}
    sched = PBT(space, perturbation_interval=TOY_INTERVAL, fraction=0.5, seed=0,
                store="h22_plot_pbt")
    tune.Tuner(tune.with_resources(_toy, {"cpu": 0.5}),
               param_space={**space, "store": "h22_plot_pbt"},
               tune_config=tune.TuneConfig(metric="q", mode="max", scheduler=sched,
                                           num_samples=4, reuse_actors=True),
               run_config=tune.RunConfig(storage_path=storage, name="pbt", verbose=0)).fit()
    sched.store.shutdown()
    return os.path.join(storage, "pbt")


def test_learning_curves_one_line_per_trial(sha_dir):
    data = load_experiment(sha_dir)
    fig = plot.learning_curves(data, "score")
    ax = fig.axes[0]
    assert len(ax.lines) == len(data.trials) == 4
    assert ax.get_xlabel() == "training_iteration" and ax.get_ylabel() == "score"
    # the line of each trial holds exactly its reported values
    for line in ax.lines:
        t = data.trials[line.get_label()]
        assert list(line.get_ydata()) == t.series("score")[1]
    # SHA kept the two best at rung 1 and one at rung 2: 4, 2, 1 trials past 1, 2, 4
    lengths = sorted(len(line.get_xdata()) for line in ax.lines)
    assert lengths == [1, 1, 2, 4]


def test_rungs_show_milestones_and_counts(sha_dir):
    fig = plot.rungs(sha_dir)
    ax = fig.axes[0]
    vlines = [line for line in ax.lines if line.get_label() == "_rung"]
    assert sorted(v.get_xdata()[0] for v in vlines) == [1, 2, 4]
    assert sorted(t.get_text() for t in ax.texts) == ["n=1", "n=2", "n=4"]
    assert "SuccessiveHalving" in ax.get_title()
    assert len([line for line in ax.lines if line.get_label() == "_trial"]) == 4


def test_parallel_coordinates_and_regret(sha_dir):
    fig = plot.parallel_coordinates(sha_dir, "score", mode="max")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lr", "score"]  # opt is constant
    assert len(ax.lines) == 4
    # lr and score are both normalised; the trial with the largest lr sits at the top of lr
    tops = [line for line in ax.lines if line.get_ydata()[0] == 1.0]
    assert len(tops) == 1
    fig = plot.regret(sha_dir, "score", mode="max")
    ys = list(fig.axes[0].lines[0].get_ydata())
    assert len(ys) == 4 and ys == sorted(ys)  # best so far never gets worse
    fig = plot.regret(sha_dir, "score", mode="max", optimum=1.0)
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="metric: is not reported"):
        plot.regret(sha_dir, "acc")


def test_pbt_lineage_and_schedules(pbt_dir):
    data = load_experiment(pbt_dir)
    lineage = data.scheduler_state["sub"]["lineage"]
    exploits = [r for r in lineage if r["event"] == "exploit"]
    fig = plot.pbt_lineage(data)
    top = fig.axes[0]
    assert len(fig.axes) == 3  # lineage + the two explored hyperparameters h0, h1
    assert fig.axes[1].get_ylabel() == "h0" and fig.axes[2].get_ylabel() == "h1"
    assert len(top.texts) == len(exploits) > 0  # one arrow per exploit
    assert top.get_title() == f"PBT lineage: 4 members, {len(exploits)} exploits"
    assert len(fig.axes[1].lines) == 4
    with pytest.raises(ValueError, match="has no PBT lineage"):
        plot.pbt_lineage(load_experiment(pbt_dir).__class__(pbt_dir, {}, None, None))


def test_plot_cli_writes_every_figure(sha_dir, pbt_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    plot.add_parser(parser.add_subparsers())
    args = parser.parse_args(["plot", sha_dir, "--out", str(tmp_path / "sha")])
    assert args.func(args) == 0
    names = sorted(os.listdir(tmp_path / "sha"))
    assert names == ["best_so_far.png", "learning_curves.png", "parallel_coordinates.png",
                     "rungs.png"]
    args = parser.parse_args(["plot", pbt_dir, "--out", str(tmp_path / "pbt")])
    assert args.func(args) == 0
    assert "pbt_lineage.png" in os.listdir(tmp_path / "pbt")
    args = parser.parse_args(["plot", sha_dir, "--metric", "nope"])
    assert args.func(args) == 1 and "metric: is not reported" in capsys.readouterr().out
