"""PBT with the trainables Ray's PBT users already have (checkpoint exploit), and with
PBTSession, through real Tune runs: the paper's toy problem (Jaderberg et al. 2017, Fig. 2)
and a digits MLP written exactly as for Ray's ``PopulationBasedTraining``."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time

import numpy as np
import pytest
from ray import tune

from rafiki_ray.schedulers import PBT
from rafiki_ray.schedulers.pbt import PBTSession
from rafiki_ray.spaces import Float, SearchSpace
from tests.schedulers.test_pbt import _short_trial

# The toy problem: theta in R^2, Q = 1.2 - ||theta||^2, each member ascends the surrogate
# Qhat = 1.2 - (h0 theta0^2 + h1 theta1^2); the two members start with h = (1, 0) and (0, 1),
# so neither reaches Q = 1.2 alone (it stays at 0.39) and only exploit + explore combine them.
STEPS, ETA, INTERVAL, STEP_S = 60, 0.1, 4, 0.05
H_STARTS = [{"h0": 1.0, "h1": 0.0}, {"h0": 0.0, "h1": 1.0}]
# explore: NNI's rule on the space (a step of 0.2 x the range, or a resample with p = 0.25)
SPACE = SearchSpace({"h0": Float(0.0, 1.0), "h1": Float(0.0, 1.0)})


def _q(theta: np.ndarray) -> float:
    return 1.2 - float(np.sum(theta**2))


def _step(theta: np.ndarray, config: dict) -> np.ndarray:
    import time

    time.sleep(STEP_S)  # members advance at comparable speeds, as in the paper's figure
    h = np.array([config["h0"], config["h1"]])
    return theta - ETA * 2 * h * theta  # gradient ascent on Qhat


def toy_ray_style(config):
    """Written for Ray's PopulationBasedTraining: state in checkpoints, nothing else."""
    theta, start = np.array([0.9, 0.9]), 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "state.json")) as f:
            saved = json.load(f)
        theta, start = np.array(saved["theta"]), saved["t"]
    for t in range(start + 1, STEPS + 1):
        theta = _step(theta, config)
        if t % INTERVAL == 0:
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "state.json"), "w") as f:
                    json.dump({"theta": theta.tolist(), "t": t}, f)
                tune.report({"q": _q(theta)}, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report({"q": _q(theta)})


def toy_session_style(config):
    """PBTSession: weights published in memory; checkpoints only for time-sharing."""
    sess = PBTSession(config, store=config["store"])
    theta, start = np.array([0.9, 0.9]), 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "state.json")) as f:
            saved = json.load(f)
        theta, start = np.array(saved["theta"]), saved["t"]
    ex = sess.start()  # an exploit decided while this member was paused
    if ex is not None and ex.params is not None:
        theta = np.array(ex.params["theta"])
    for t in range(start + 1, STEPS + 1):
        theta = _step(theta, sess.config)
        boundary = t % INTERVAL == 0
        with tempfile.TemporaryDirectory() as d:
            ckpt = None
            if boundary:
                with open(os.path.join(d, "state.json"), "w") as f:
                    json.dump({"theta": theta.tolist(), "t": t}, f)
                ckpt = tune.Checkpoint.from_directory(d)
            ex = sess.report({"q": _q(theta)}, params={"theta": theta} if boundary else None,
                             checkpoint=ckpt)
        if ex is not None:
            theta = np.array(ex.params["theta"])


def toy_tune_run(style: str, seed: int, *, members: int, slots: int, storage: str):
    """One real Tune run of the toy; returns (best final Q of any member, scheduler, grid).

    ``slots`` members run at a time (each asks for 2 / slots of the session's 2 CPUs), so with
    more members than slots all are PENDING from the start and PBT time-shares.
    """
    store = f"pbt_toy_{style}_{seed}_{members}_{slots}"
    sched = PBT(SPACE, perturbation_interval=INTERVAL, fraction=0.5, seed=seed, store=store,
                persist=False)
    starts = [H_STARTS[i % 2] for i in range(members)]
    trainable = toy_ray_style if style == "checkpoint" else toy_session_style
    space = {"start": tune.grid_search(list(range(members))),
             "h0": tune.sample_from(lambda spec: starts[spec.config["start"]]["h0"]),
             "h1": tune.sample_from(lambda spec: starts[spec.config["start"]]["h1"])}
    if style == "session":
        space["store"] = store
    try:
        grid = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 2 / slots}),
            param_space=space,
            tune_config=tune.TuneConfig(metric="q", mode="max", scheduler=sched,
                                        reuse_actors=True),
            run_config=tune.RunConfig(storage_path=storage, name=store, verbose=0),
        ).fit()
    finally:
        if sched._store is not None:
            sched.store.shutdown()
    assert grid.num_errors == 0, [r.error for r in grid if r.error]
    # the final result (progress.csv may miss rows of a member restarted several times)
    best = max(r.metrics["q"] for r in grid)
    return best, sched, grid


def _check_lineage(sched: PBT, grid, via: str) -> None:
    df = sched.lineage()
    ex = df[df.event == "exploit"]
    assert len(ex) == sched.num_exploits > 0
    assert set(ex["via"]) == {via}, df[["trial_id", "event", "via"]]
    assert (ex["source"] != ex["trial_id"]).all()
    assert (ex["applied"] | ex["dropped"]).all(), df
    for tid in set(df.trial_id):  # every member's schedule starts at 0 and never goes back
        steps = [e["step"] for e in sched.schedule(tid)]
        assert steps[0] == 0 and steps == sorted(steps), (tid, steps)


@pytest.mark.parametrize("style, members, slots", [
    ("checkpoint", 4, 2),
    pytest.param("checkpoint", 2, 4, marks=pytest.mark.slow),
    pytest.param("session", 2, 4, marks=pytest.mark.slow),
    pytest.param("session", 4, 2, marks=pytest.mark.slow)])
def test_toy_in_tune_exploits_and_records_it(ray_session, storage, style, members, slots):
    """One seed per setting: exploits happen, the lineage says how, Q improves on the 0.39
    a member reaches alone."""
    best, sched, grid = toy_tune_run(style, 0, members=members, slots=slots, storage=storage)
    _check_lineage(sched, grid, "checkpoint" if style == "checkpoint" else "store")
    # Q improves on the 0.39 a member reaches alone. (Not the paper's 1.19, which the 5-seed
    # median below checks: under Ray's rule a member copies only one that was top at its own
    # last decision, so with 2 members in lockstep only the one deciding second in a round
    # copies after a tie, and a single run may spend most exploits on one start's h:
    # best 0.78 in 1 of 4 runs of seed 0 here, 1.19-1.2 in the others.)
    assert best > 0.5, best
    if style == "checkpoint":
        # a restarted member goes on from the copied member's step, never from scratch
        for r in grid:
            assert r.metrics["training_iteration"] == STEPS, r.metrics


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 5 Tune runs: 2-5 min in all on an idle machine, more when loaded
@pytest.mark.parametrize("style, members, slots", [
    ("checkpoint", 2, 4), ("checkpoint", 4, 2), ("session", 2, 4), ("session", 4, 2)])
def test_toy_in_tune_reaches_the_papers_q(ray_session, storage, style, members, slots):
    """Jaderberg et al. 2017, Fig. 2: PBT reaches Q >= 1.19 (median of 5 seeds)."""
    bests = [toy_tune_run(style, seed, members=members, slots=slots, storage=storage)[0]
             for seed in range(5)]
    assert np.median(bests) >= 1.19, bests


# ----------------------------------------------------------------------------- digits MLP
def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def _start_together(barrier, n):
    """Test harness: wait (up to 120 s) until ``n`` members have started. A member's 6 epochs
    take ~1 s, less than a trial process's start (importing torch), so without it the first
    members can finish before the last start, and a finished member is in no quantile (as in
    Ray's PBT): PBT then has nobody to compare with (0 exploits in one run). A folder, not
    ``test_pbt._barrier``'s ParamStore: this trainable uses nothing of rafiki_ray."""
    if barrier is None:
        return
    with open(os.path.join(barrier, tune.get_context().get_trial_id()), "w"):
        pass
    deadline = time.monotonic() + 120
    while len(os.listdir(barrier)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(os.listdir(barrier))} of {n} members started in 120 s")
        time.sleep(0.05)


def digits_ray_style(config, data=None, barrier=None):
    """A digits MLP written exactly as for Ray's PopulationBasedTraining (no rafiki_ray);
    ``barrier``: a folder in which the first start of every member waits for the others."""
    import torch

    torch.set_num_threads(1)
    x, y = data
    xt, yt = torch.from_numpy(x[:1400]), torch.from_numpy(y[:1400])
    xv, yv = torch.from_numpy(x[1400:]), torch.from_numpy(y[1400:])
    torch.manual_seed(int(config["seed"]))
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = torch.load(os.path.join(d, "model.pt"))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"]
        for g in opt.param_groups:  # the explored learning rate
            g["lr"] = config["lr"]
    if start == 0:
        _start_together(barrier, 4)
    gen = torch.Generator().manual_seed(int(config["seed"]) + start)
    for epoch in range(start + 1, 7):
        perm = torch.randperm(len(xt), generator=gen)
        for k in range(0, len(xt), 64):
            idx = perm[k:k + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        with torch.no_grad():
            acc = float((model(xv).argmax(1) == yv).float().mean())
        with tempfile.TemporaryDirectory() as d:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch},
                       os.path.join(d, "model.pt"))
            tune.report({"acc": acc, "epoch": epoch},
                        checkpoint=tune.Checkpoint.from_directory(d))


@pytest.mark.slow  # ~40 s here: 4 trial processes import torch
def test_digits_mlp_written_for_rays_pbt_exploits(ray_session, storage, tmp_path):
    """The issue's reproduction: a Ray-PBT-style trainable under rafiki_ray's PBT with Ray's
    arguments exploits (it exploited 0 times before) and ends better than its worst start."""
    sched = PBT(perturbation_interval=2, time_attr="epoch", quantile_fraction=0.25, seed=0,
                hyperparam_mutations={"lr": tune.loguniform(1e-4, 0.1)}, persist=False)
    grid = tune.Tuner(
        tune.with_resources(tune.with_parameters(digits_ray_style, data=_digits(),
                                                 barrier=str(tmp_path)), {"cpu": 0.5}),
        param_space={"lr": tune.grid_search([1e-4, 3e-4, 0.03, 0.1]), "seed": 0},
        tune_config=tune.TuneConfig(metric="acc", mode="max", scheduler=sched,
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    assert grid.num_errors == 0, [r.error for r in grid if r.error]
    df = sched.lineage()
    ex = df[df.event == "exploit"]
    assert sched.num_exploits > 0 and len(ex) == sched.num_exploits, df
    assert set(ex["via"]) == {"checkpoint"}
    # the copied member was better; a restarted member goes on from the copied epoch
    assert (ex["source_score"] >= ex["score"]).all(), ex
    for r in grid:
        assert r.metrics["epoch"] == 6, r.metrics
    assert max(r.metrics["acc"] for r in grid) > 0.85, [r.metrics["acc"] for r in grid]
    # a member that copied another ends better than the copied-into member's score then
    last = ex.groupby("trial_id").tail(1)
    # by the trial's folder: a member restarted from a checkpoint at the last epoch ends
    # without reporting again, and its last metrics are the copied member's (its trial_id too).
    # Tune's id is 5 hex digits, "_", 5 digits ("[0-9a-f]+_" would match "e_56435" in
    # "digits_ray_style_56435_00000" when the hex part is all digits)
    trial_id = re.compile(r"[0-9a-f]{5}_\d{5}(?=_|$)")
    final = {trial_id.search(os.path.basename(r.path)).group(0): r.metrics["acc"] for r in grid}
    assert any(final[t] > s for t, s in zip(last["trial_id"], last["score"])), (last, final)


# ----------------------------------------------------------------------------- replay
def _replay_ray_style(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "s.json")) as f:
            start = json.load(f)["t"]
    for t in range(start + 1, 7):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "s.json"), "w") as f:
                json.dump({"t": t}, f)
            tune.report({"lr_seen": config["lr"], "start": start},
                        checkpoint=tune.Checkpoint.from_directory(d))


def test_replay_restarts_a_ray_style_trainable_with_the_scheduled_config(ray_session, storage):
    """PBTReplay on a trainable without PBTSession: at each scheduled step the trial restarts
    from its latest checkpoint with the entry's config (as Ray's replay does)."""
    from rafiki_ray.schedulers.pbt import PBTReplay

    schedule = [{"step": 0, "config": {"lr": 0.1}}, {"step": 2, "config": {"lr": 0.05}},
                {"step": 4, "config": {"lr": 0.01}}]
    sched = PBTReplay(schedule)
    grid = tune.Tuner(
        _replay_ray_style, param_space=schedule[0]["config"],
        tune_config=tune.TuneConfig(scheduler=sched, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    assert grid.num_errors == 0, grid[0].error
    r = grid[0]
    assert r.metrics["training_iteration"] == 6 and r.metrics["lr_seen"] == 0.01, r.metrics
    assert r.metrics["start"] > 0  # restarted from a checkpoint, not from scratch
    assert r.config["lr"] == 0.01


def _ends_at_four(config):
    """Both members start before either reports. Member "start" 1 scores 1 and reaches step 4
    (a decision in the top quantile: it waits for member 0's first score), then lingers until
    member 0 restarted (a running member, not a finished one, is a source); member 0 scores 0
    and reports step 2 (its decision, in the bottom) only after that, so the checkpoint it
    copies is already at the last step. A wait that times out fails the trial."""
    import time

    def wait(name: str) -> None:
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(config["marks"], name)):
            if time.time() > deadline:  # the choreography broke: fail, never pass on a timeout
                raise TimeoutError(f"waited 60 s for {name!r}")
            time.sleep(0.05)

    def mark(name: str) -> None:
        time.sleep(1.0)  # the driver has seen the report
        open(os.path.join(config["marks"], name), "w").close()

    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "state.json")) as f:
            start = json.load(f)["t"]
    one, fresh = config["start"] == 1, start == 0
    if fresh:  # both run before either reports: no decision meets a PENDING member, so no
        # member is paused to time-share (the only restart is member 0's exploit)
        open(os.path.join(config["marks"], f"started{config['start']}"), "w").close()
        wait(f"started{1 - config['start']}")
    else:  # member 0 restarted: its explored config copied member 1's "start" too
        mark("restarted")
    for t in range(start + 1, 5):
        if fresh and (one, t) == (True, 4):
            wait("zero_scored")
        if fresh and (one, t) == (False, 2):
            wait("one_top")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"t": t}, f)
            tune.report({"q": float(config["start"])}, checkpoint=tune.Checkpoint.from_directory(d))
        if fresh and (one, t) == (False, 1):
            mark("zero_scored")
        if fresh and (one, t) == (True, 4):
            mark("one_top")
    if one and fresh:
        wait("restarted")


def test_an_exploit_from_a_checkpoint_at_the_last_step_is_recorded_as_dropped(ray_session,
                                                                             storage):
    """The bottom member restarts from a checkpoint that is already at the last step, so it
    ends without reporting again: the exploit is neither lost nor claimed applied."""
    sched = PBT(SPACE, perturbation_interval=2, fraction=0.5, seed=0, persist=False)
    grid = tune.Tuner(
        tune.with_resources(_ends_at_four, {"cpu": 1}),
        param_space={"start": tune.grid_search([0, 1]), "h0": 0.5, "h1": 0.5,
                     "marks": os.path.dirname(storage)},
        tune_config=tune.TuneConfig(metric="q", mode="max", scheduler=sched),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    assert grid.num_errors == 0, [r.error for r in grid if r.error]
    df = sched.lineage()
    ex = df[df.event == "exploit"]
    assert len(ex) >= 1, df
    # member 1 had finished (checkpoint at step 4) when member 0 reported step 2
    last = ex.iloc[-1]
    assert last["via"] == "checkpoint" and not last["applied"] and last["dropped"], df
    assert (ex["applied"] | ex["dropped"]).all(), df


# ----------------------------------------------------------------------------- time-sharing
class _Recorded(PBT):
    """PBT that logs, in order, each decision (member, step, in the top quantile) and each
    exploit (member, source, the copied checkpoint's step): an outside view of the rule."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = []
        self._deciding = None

    def on_trial_result(self, tune_controller, trial, result):
        self._deciding = (trial.trial_id, result.get("training_iteration"))
        n = self.num_exploits
        decision = super().on_trial_result(tune_controller, trial, result)
        if self.num_exploits > n:
            row = self._lineage[-1]
            self.log.append(("exploit", row["trial_id"], row["source"], row["step"]))
        return decision

    def _quantiles(self):
        lower, upper = super()._quantiles()
        tid, step = self._deciding
        self.log.append(("decision", tid, step, tid in upper))
        return lower, upper


def test_time_sharing_copies_only_what_a_top_member_saved_at_its_decision(ray_session, storage):
    """Ray's rule (``_checkpoint_or_exploit``), 6 members on 2 slots: a bottom member copies
    only the checkpoint a source recorded at its own last decision while in the top quantile.
    Copying a top member's *latest* checkpoint (the rule before) copied members that were
    never ranked top at a decision, and the checkpoints they had just copied themselves: 120
    exploits in one run for 6 members of 3 decisions each (now 5)."""
    sched = _Recorded({"x": tune.uniform(-5, 5)}, perturbation_interval=3, seed=0,
                      persist=False)
    n = 6
    grid = tune.Tuner(
        tune.with_resources(_short_trial, {"cpu": 1}),
        param_space={"x": tune.grid_search([3.0, 0.5, 2.0, 1.0, 2.5, 1.5][:n])},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=sched,
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, name="ray_rule", verbose=0),
    ).fit()
    assert not grid.errors
    for r in grid:
        assert r.metrics["training_iteration"] == 9, r.metrics
    exploits = [e for e in sched.log if e[0] == "exploit"]
    assert 0 < len(exploits) == sched.num_exploits, sched.log
    for i, (kind, member, source, step) in enumerate(sched.log):
        if kind != "exploit":
            continue
        # the source's last decision before this exploit: in the top quantile, at the step
        # of the checkpoint copied
        last = [e for e in sched.log[:i] if e[0] == "decision" and e[1] == source][-1:]
        assert last and last[0][3] and last[0][2] == step, (member, source, step, last)
    # at most one exploit per member and decision interval (9 steps, every 3; old rule: 120)
    assert sched.num_exploits <= n * (9 // 3), exploits
