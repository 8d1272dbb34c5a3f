"""PBT with in-memory exploit through the ParamStore: contract, the paper's toy problem,
a real PyTorch model in Tune, lineage / schedule / replay, explore rules."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
from ray import tune
from ray.tune.experiment import Trial

from rafiki_ray.schedulers import PBT
from rafiki_ray.schedulers._pbt_explore import add_weight_noise, mutate
from rafiki_ray.schedulers.pbt import PBTReplay, PBTSession, config_at
from rafiki_ray.spaces import Float, SearchSpace
from rafiki_ray.testing._driver import SimController, make_trials
from rafiki_ray.testing.schedulers import SchedulerContract


# ----------------------------------------------------------------------------- contract
class TestPBTContract(SchedulerContract):
    # Async PBT time-shares (PAUSE) only members that report checkpoints, so it never needs
    # one; synch mode does (see test_synch_needs_checkpoints).
    pauses = False
    scheduler_path = "rafiki_ray.schedulers:PBT"
    cost_full_history = True
    crash_kwargs: ClassVar[dict] = {"perturbation_interval": 2, "hyperparam_mutations": {"lr": [0.001, 0.01, 0.1, 1.0]}}

    @pytest.fixture
    def scheduler_factory(self):
        def make(*, horizon=9, **kw):
            interval = max(1.0, horizon / 9 * 2)
            return PBT({"lr": tune.loguniform(1e-3, 1.0)}, perturbation_interval=interval, **kw)

        return make

    def test_pause_without_checkpoint_is_a_clear_error(self, scheduler_factory):
        """A population that neither checkpoints nor publishes cannot exploit: the first
        exploit decision says what to add (never a silent random search)."""
        from rafiki_ray.schedulers._base import CheckpointRequiredError
        from rafiki_ray.testing._driver import drive

        sched = scheduler_factory(metric="loss", mode="min", seed=0, horizon=9)
        with pytest.raises(CheckpointRequiredError,
                           match=r"nothing to copy.*tune\.report\(metrics, checkpoint=.*"
                                 r"tune\.get_checkpoint\(\).*PBTSession"):
            drive(sched, n_trials=10, horizon=9, checkpoint=False)


# ----------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        ({"fraction": 0.7}, ValueError, r"PBT.fraction: must be in \(0, 0.5\]"),
        ({"quantile_fraction": 0}, ValueError, "PBT.fraction"),
        ({"perturbation_interval": 0}, ValueError, "PBT.perturbation_interval"),
        ({"resample_probability": 2}, ValueError, "PBT.resample_probability"),
        ({"weight_noise": -1}, ValueError, "PBT.weight_noise"),
        ({"population_size": 1}, ValueError, "PBT.population_size"),
        ({"optimize_mode": "up"}, ValueError, "PBT.optimize_mode"),
        ({"optimize_mode": "maximize", "mode": "min"}, ValueError,
         "PBT.optimize_mode: given together with mode"),
        ({"quantile_fraction": 0.25, "fraction": 0.3}, ValueError,
         "PBT.quantile_fraction: given together with fraction"),
        ({"hyperparam_mutations": {"lr": 3}}, TypeError, "hyperparam_mutations.lr"),
        ({"custom_explore_fn": 3}, TypeError, "custom_explore_fn"),
        ({"bogus": 1}, TypeError, r"PBT.bogus: is not an argument \(known: .*quantile_fraction"),
        ({"store": 5}, TypeError, "PBT.store"),
    ],
)
def test_bad_arguments(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        PBT({"lr": tune.uniform(0, 1)}, metric="acc", **kwargs)


def test_nni_and_ray_argument_names():
    nni = PBT({"lr": tune.uniform(0, 1)}, metric="acc", optimize_mode="maximize", population_size=8,
              factor=0.3, resample_probability=0.1, fraction=0.3, all_checkpoint_dir="/ignored")
    assert nni.mode == "max" and nni._fraction == 0.3 and nni._population_size == 8
    ray_style = PBT(metric="acc", mode="max", quantile_fraction=0.25, perturbation_interval=4,
                    hyperparam_mutations={"lr": tune.uniform(0, 1)}, synch=True)
    assert ray_style._fraction == 0.25 and ray_style._synch


def test_ray_style_mutations():
    rng = np.random.default_rng(0)
    muts = {"lr": tune.loguniform(1e-4, 1e-1), "bs": [16, 32, 64], "opt": {"mom": lambda: 0.5},
            "layers": tune.randint(1, 10)}
    cfg = {"lr": 1e-2, "bs": 32, "opt": {"mom": 0.9}, "layers": 4, "keep": "x"}
    seen = {"lr": set(), "bs": set(), "layers": set()}
    for _ in range(200):
        out = mutate(cfg, muts, rng, resample_probability=0.0, perturbation_factors=(1.2, 0.8))
        for k, values in seen.items():
            values.add(round(out[k], 9) if isinstance(out[k], float) else out[k])
        assert out["keep"] == "x" and out["opt"]["mom"] in (0.9 * 1.2, 0.9 * 0.8)
        assert isinstance(out["layers"], int)
    assert seen["lr"] == {0.012, 0.008} and seen["bs"] == {16, 64} and seen["layers"] == {5, 3}
    out = mutate(cfg, muts, rng, resample_probability=1.0, perturbation_factors=(1.2, 0.8))
    assert out["opt"]["mom"] == 0.5 and 1e-4 <= out["lr"] <= 1e-1


def test_weight_noise_scales_with_each_tensor_std():
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(0, 3.0, (200, 50)).astype(np.float32), "b": np.zeros(50, np.float32),
              "n": np.arange(5), "step": 7}
    same = add_weight_noise(params, 0.0, seed=1)
    assert same["w"] is params["w"]  # classic PBT: no copy
    noisy = add_weight_noise(params, 0.1, seed=1)
    diff = noisy["w"] - params["w"]
    assert noisy["w"].dtype == np.float32
    assert abs(float(diff.std()) - 0.1 * float(params["w"].std())) < 0.01
    assert np.array_equal(noisy["b"], params["b"]) and np.array_equal(noisy["n"], params["n"])
    assert noisy["step"] == 7
    assert np.array_equal(add_weight_noise(params, 0.1, seed=1)["w"], noisy["w"])


def _exploit(params, noise=0.0, seed=None):
    from rafiki_ray.schedulers.pbt import Exploit

    frozen = {}
    for k, v in params.items():  # read-only, as arrays read from the object store are
        if isinstance(v, np.ndarray):
            v = v.copy()
            v.setflags(write=False)
        frozen[k] = v
    return Exploit(config={}, source="src", source_step=2, instruction_id=1, decision_time=0.0,
                   loaded_time=0.0, source_params=frozen, weight_noise=noise, noise_seed=seed)


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_exploit_loads_in_place_with_the_same_values_as_params(noise):
    """load_into writes straight into the model's tensors (one copy, noise in the same pass)
    and gives exactly the weights ``params`` describes."""
    import torch

    from rafiki_ray.schedulers._pbt_explore import copy_weights
    from rafiki_ray.sharing import params_to_torch, torch_to_params

    def net(seed):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.BatchNorm1d(4),
                                   torch.nn.Linear(4, 2).to(torch.float64))

    src = torch_to_params(net(0))
    ex = _exploit(src, noise, seed=7)
    a, b = net(1), net(2)
    ptrs = {k: v.data_ptr() for k, v in a.state_dict().items()}
    assert ex.load_into(a) is a
    assert {k: v.data_ptr() for k, v in a.state_dict().items()} == ptrs  # in place
    params_to_torch(ex.params, b)
    got, want = torch_to_params(a), torch_to_params(b)
    assert all(np.array_equal(got[k], want[k]) for k in want)
    assert (ex.params is ex.source_params) == (noise == 0)
    diff = got["0.weight"] - src["0.weight"]
    assert (np.abs(diff).max() == 0) == (noise == 0)
    assert np.array_equal(got["1.num_batches_tracked"], src["1.num_batches_tracked"])
    # a dict of numpy arrays works the same way, and copy_weights matches add_weight_noise
    arrays = {k: np.zeros_like(v) for k, v in src.items()}
    ex.load_into(arrays)
    assert all(np.array_equal(arrays[k], want[k]) for k in want)
    again = {k: np.zeros_like(v) for k, v in src.items()}
    copy_weights(src, again, noise, 7)
    assert all(np.array_equal(again[k], ex.params[k]) for k in want)


def test_exploit_load_into_errors():
    ex = _exploit({"w": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="shape does not match"):
        ex.load_into({"w": np.zeros(4, np.float32)})
    with pytest.raises(ValueError, match="target has no array 'w'"):
        ex.load_into({})
    with pytest.raises(ValueError, match="target key 'v' has no copied array"):
        ex.load_into({"w": np.zeros(3, np.float32), "v": np.zeros(1)})
    ro = np.zeros(3, np.float32)
    ro.setflags(write=False)
    with pytest.raises(TypeError, match="writable numpy array"):
        ex.load_into({"w": ro})
    out = {"w": np.zeros(3, np.float32), "v": np.zeros(1)}
    ex.load_into(out, strict=False)
    assert out["w"].tolist() == [1.0, 1.0, 1.0]
    ex.source_params = None
    with pytest.raises(ValueError, match="carries no weights"):
        ex.load_into(out)


# ----------------------------------------------------------------------------- toy problem
# Jaderberg et al. 2017, Figure 2: Q(theta) = 1.2 - theta0^2 - theta1^2, workers ascend the
# surrogate Qhat(theta | h) = 1.2 - h0 theta0^2 - h1 theta1^2 from theta = (0.9, 0.9) with
# h = (1, 0) and (0, 1); exploit/explore every 4 steps.
TOY_SPACE = SearchSpace({"h0": Float(0.0, 1.0), "h1": Float(0.0, 1.0)})
TOY_STEPS, TOY_ETA, TOY_INTERVAL = 110, 0.02, 4


def _q(theta):
    return 1.2 - float(np.sum(theta**2))


def toy_run(variant: str, seed: int, store: str, steps: int = TOY_STEPS):
    """Drive the real PBT scheduler (real Trial objects, no Tune run) on the toy problem.

    ``pbt``: exploit + explore; ``exploit``: copies only (no perturbation); ``explore``:
    each worker perturbs its own h (same rules), never copies. Returns (best Q, scheduler).
    """
    kw = {"factor": 0.0, "resample_probability": 0.0} if variant == "exploit" else {}
    sched = PBT(TOY_SPACE, metric="q", mode="max", seed=seed, perturbation_interval=TOY_INTERVAL,
                fraction=0.5, store=store, persist=False, **kw)
    ctrl = SimController(sched)
    trials = make_trials(2)
    for tr, h in zip(trials, ({"h0": 1.0, "h1": 0.0}, {"h0": 0.0, "h1": 1.0})):
        tr.set_config(h)
        ctrl.add_trial(tr)
        tr.set_status(Trial.RUNNING)
    sessions = [PBTSession(tr.config, store=store, trial_id=tr.trial_id) for tr in trials]
    theta = [np.array([0.9, 0.9]), np.array([0.9, 0.9])]
    best = -math.inf
    for t in range(1, steps + 1):
        for i, (tr, sess) in enumerate(zip(trials, sessions)):
            h = np.array([sess.config["h0"], sess.config["h1"]])
            theta[i] = theta[i] - TOY_ETA * 2 * h * theta[i]  # gradient ascent on Qhat
            q = _q(theta[i])
            best = max(best, q)
            boundary = t % TOY_INTERVAL == 0
            if variant == "explore":
                if boundary:
                    sess.config = sched.explore(sess.config)
                continue
            metrics = sess.prepare({"q": q, "training_iteration": t},
                                   params={"theta": theta[i]} if boundary else None)
            assert sched.on_trial_result(ctrl, tr, metrics) == "CONTINUE"
            if boundary:
                ex = sess.poll()
                if ex is not None:
                    assert ex.source == trials[1 - i].trial_id
                    theta[i] = np.array(ex.params["theta"])  # the copied weights
                    # the session's history pins no weights in the object store
                    assert sess.exploits[-1].params is None
                    assert sess.exploits[-1].instruction_id == ex.instruction_id
                    assert tr.config == sess.config  # driver bookkeeping follows
    return best, sched


@pytest.fixture(scope="module")
def toy_results(ray_session):
    from rafiki_ray.sharing import ParamStore

    store = ParamStore.create("pbt_toy_store")
    try:
        out = {v: [toy_run(v, s, "pbt_toy_store") for s in range(5)] for v in ("pbt", "exploit", "explore")}
    finally:
        store.shutdown()
    return out


def test_toy_pbt_beats_exploit_only_and_explore_only(toy_results):
    best = {v: [b for b, _ in runs] for v, runs in toy_results.items()}
    # median over the same 5 seeds: PBT reaches 1.19, neither ablation does
    assert np.median(best["pbt"]) >= 1.19, best
    assert all(b < 1.19 for b in best["exploit"]), best  # copies h too: diversity collapses
    assert np.median(best["explore"]) < 1.19, best  # a random walk on h is slower
    assert sum(p > e for p, e in zip(best["pbt"], best["explore"])) >= 3, best


def test_toy_lineage_and_schedule(toy_results):
    _, sched = toy_results["pbt"][0]
    df = sched.lineage()
    assert set(df["event"]) == {"start", "exploit"}
    starts, exploits = df[df.event == "start"], df[df.event == "exploit"]
    assert len(starts) == 2 and len(exploits) == sched.num_exploits > 5
    assert (exploits["step"] % TOY_INTERVAL == 0).all()
    assert set(exploits["source"]) <= set(starts["trial_id"])
    assert (exploits["source"] != exploits["trial_id"]).all()
    assert exploits["applied"].all()  # every instruction was confirmed by the trial
    assert {"config/h0", "config/h1"} <= set(df.columns)
    assert (exploits["source_score"] >= exploits["score"]).all()  # copies a better member
    # every explored config stays in the space
    assert all(TOY_SPACE.contains(c) for c in df["config"])
    best = sched.best_trial_id()
    sch = sched.schedule(best)
    assert sch[0]["step"] == 0 and [e["step"] for e in sch] == sorted(e["step"] for e in sch)
    own = sched.schedule(best, inherited=False)
    assert own[0]["trial_id"] == best and all(e["trial_id"] == best for e in own)
    # the last change of the schedule is in force at the end; the start config before step 1
    assert config_at(sch, TOY_STEPS) == sch[-1]["config"]
    assert config_at(sch, 0.5) == sch[0]["config"]
    with pytest.raises(ValueError, match="unknown trial id"):
        sched.schedule("nope")


def test_state_round_trip_keeps_lineage(toy_results, tmp_path):
    _, sched = toy_results["pbt"][1]
    sched.save(str(tmp_path / "pbt.pkl"))
    other = PBT()
    other.restore(str(tmp_path / "pbt.pkl"))
    assert other.lineage().drop(columns=["config"]).equals(sched.lineage().drop(columns=["config"]))
    assert other.space == TOY_SPACE and other.num_exploits == sched.num_exploits
    assert other.explore({"h0": 0.5, "h1": 0.5}) == sched.explore({"h0": 0.5, "h1": 0.5})


# ----------------------------------------------------------------------------- Tune runs
def _toy_trainable(config):
    sess = PBTSession(config, store=config["store"])
    theta = np.array([0.9, 0.9])
    ex = sess.start()
    if ex is not None and ex.params is not None:
        theta = np.array(ex.params["theta"])
    for t in range(1, TOY_STEPS + 1):
        h = np.array([sess.config["h0"], sess.config["h1"]])
        theta = theta - TOY_ETA * 2 * h * theta
        ex = sess.report({"q": _q(theta)}, params={"theta": theta} if t % TOY_INTERVAL == 0 else None)
        if ex is not None:
            theta = np.array(ex.params["theta"])


@pytest.mark.slow
def test_toy_end_to_end_in_tune_with_a_searcher(ray_session, storage):
    """The toy problem as a real Tune run; a searcher (HyperOpt) makes the population."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    space = {"h0": tune.uniform(0, 1), "h1": tune.uniform(0, 1)}
    sched = PBT(space, perturbation_interval=TOY_INTERVAL, fraction=0.5, seed=0, store="pbt_toy_e2e")
    searcher = ConcurrencyLimiter(HyperOptSearch(random_state_seed=0), 4)
    grid = tune.Tuner(
        tune.with_resources(_toy_trainable, {"cpu": 0.5}),
        param_space={**space, "store": "pbt_toy_e2e"},
        tune_config=tune.TuneConfig(metric="q", mode="max", scheduler=sched, search_alg=searcher,
                                    num_samples=4, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    sched.store.shutdown()
    assert grid.num_errors == 0
    assert sched.num_exploits > 0
    best = max(r.metrics_dataframe["q"].max() for r in grid)
    assert best >= 1.19
    assert sched.lineage()["applied"].all()


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def _barrier(store, trial_id, epoch, n, timeout=300.0):
    """Wait until all ``n`` members reached ``epoch`` (each posts its own marker).

    Members then report each epoch in lockstep: when one reports epoch e, every other member
    has reported e - 1 (``tune.report`` returns only after the driver processed the result),
    so each PBT decision ranks the whole population and the bottom half at the first boundary
    is always the two small learning rates, whatever the machine's load. (Without it, on a
    loaded machine one member could run two epochs ahead and be ranked against stale or
    missing scores: the lr=3e-4 member was then sometimes never exploited.)
    """
    import time

    store.post(f"test/epoch/{trial_id}", epoch)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys = [k for k in store.stats()["messages"] if k.startswith("test/epoch/")]
        if len(keys) >= n and all(store.peek(k, -1) >= epoch for k in keys):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{trial_id}: the population did not reach epoch {epoch}")


def _digits_trainable(config, data=None):
    """A small MLP on sklearn's digits; publishes its weights every epoch through PBTSession."""
    import torch

    from rafiki_ray.sharing import torch_to_params

    torch.set_num_threads(1)
    x, y = data
    xt, yt = torch.from_numpy(x[:1400]), torch.from_numpy(y[:1400])
    xv, yv = torch.from_numpy(x[1400:]), torch.from_numpy(y[1400:])
    gen = torch.Generator().manual_seed(int(config["seed"]))
    torch.manual_seed(int(config["seed"]))
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    sess = PBTSession(config, store=config["store"])
    opt = torch.optim.SGD(model.parameters(), lr=sess.config["lr"], momentum=0.9)
    noise_rel = []

    def apply(ex):
        ex.load_into(model)  # in place: one copy from the object store (+ noise)
        for g in opt.param_groups:
            g["lr"] = sess.config["lr"]
        w, src = model[0].weight.detach().numpy(), ex.source_params["0.weight"]
        noise_rel.append(float(np.std(w - src) / np.std(src)))

    ex = sess.start()
    if ex is not None and ex.params is not None:
        apply(ex)
    for epoch in range(1, 7):
        _barrier(sess.store, sess.trial_id, epoch, 4)
        perm = torch.randperm(len(xt), generator=gen)
        for k in range(0, len(xt), 64):
            idx = perm[k:k + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        with torch.no_grad():
            acc = float((model(xv).argmax(1) == yv).float().mean())
        ex = sess.report({"acc": acc, "noise_rel": noise_rel[-1] if noise_rel else -1.0},
                         params=lambda: torch_to_params(model))
        if ex is not None:
            apply(ex)


@pytest.mark.parametrize(
    # Slow: ~25 s each on the shared 2 cores, nearly all of it starting 4 trial processes that
    # import torch (the 6 epochs take ~1 s). Deterministic in what it asserts (lockstep epochs).
    "weight_noise", [pytest.param(0.0, marks=pytest.mark.slow), pytest.param(0.05, marks=pytest.mark.slow)]
)
def test_pytorch_digits_end_to_end(ray_session, storage, weight_noise):
    name = f"pbt_digits_{int(weight_noise * 100)}"
    # resample_probability=0: a copied lr is the source's x1.2 or x0.8, never a fresh draw that
    # could be 1.0 (divergence) or 1e-4 (the decision order, hence the RNG stream, varies)
    sched = PBT(perturbation_interval=2, fraction=0.5, seed=1, weight_noise=weight_noise, store=name,
                resample_probability=0.0, hyperparam_mutations={"lr": tune.loguniform(1e-4, 1.0)})
    grid = tune.Tuner(
        tune.with_resources(tune.with_parameters(_digits_trainable, data=_digits()), {"cpu": 0.5}),
        param_space={"lr": tune.grid_search([1e-4, 3e-4, 0.03, 0.1]), "seed": 0, "store": name},
        tune_config=tune.TuneConfig(metric="acc", mode="max", scheduler=sched, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    stats = sched.store.stats()
    sched.store.shutdown()
    assert grid.num_errors == 0, [r.error for r in grid if r.error]
    df = sched.lineage()
    trace = "\n".join(
        r.metrics_dataframe[["training_iteration", "acc", "pbt_applied", "config/lr"]].to_string()
        for r in grid
    ) + "\n" + df[["trial_id", "event", "step", "source", "score", "config/lr"]].to_string()
    assert sched.num_exploits >= 2, trace
    exploits = df[df.event == "exploit"]
    # every exploit was applied in place, except those decided at a trial's last report
    assert (exploits["applied"] | exploits["dropped"]).all(), trace
    assert not exploits[exploits.step < 6]["dropped"].any(), trace
    # the worst initial members (lr 1e-4, 3e-4) copied better members. Not always at the first
    # boundary: by Ray's rule a top member can be copied only after its own decision in the top
    # quantile, and at step 2 the bottom members may decide first (lockstep epochs, any order)
    starts = df[df.event == "start"]
    small = set(starts[starts["config/lr"] < 1e-3]["trial_id"])
    assert len(small) == 2 and small <= set(exploits["trial_id"]), trace
    assert set(exploits[exploits.step == 2]["source"]).isdisjoint(small), trace
    assert all(r.metrics["training_iteration"] == 6 for r in grid)
    final = sorted(r.metrics["acc"] for r in grid)
    assert final[0] > 0.8, trace  # nobody is left behind with a tiny learning rate
    assert stats["published"] >= 4 * 6
    rel = [v for r in grid for v in r.metrics_dataframe["noise_rel"] if v >= 0]
    assert rel, "no trial reported a copy"
    if weight_noise == 0:
        assert max(rel) == 0.0  # an exact copy
    else:
        assert all(abs(v - weight_noise) < 0.02 for v in rel), rel


def _replay_trainable(config):
    sess = PBTSession(config, store="pbt_replay_store")
    for _ in range(6):
        sess.report({"lr_seen": sess.config["lr"]})


def test_replay_applies_a_schedule_in_place(ray_session, storage):
    schedule = [{"step": 0, "config": {"lr": 0.1}}, {"step": 2, "config": {"lr": 0.05}},
                {"step": 4, "config": {"lr": 0.01}}]
    grid = tune.Tuner(
        _replay_trainable, param_space=schedule[0]["config"],
        tune_config=tune.TuneConfig(scheduler=PBTReplay(schedule, store="pbt_replay_store")),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    from rafiki_ray.sharing import ParamStore

    ParamStore.get("pbt_replay_store").shutdown()
    seen = list(grid[0].metrics_dataframe["lr_seen"])
    # the config changes right after the report at the scheduled step
    assert seen == [config_at(schedule, s)["lr"] for s in range(6)]
    with pytest.raises(ValueError, match="must not decrease"):
        PBTReplay([{"step": 2, "config": {}}, {"step": 1, "config": {}}])


# ----------------------------------------------------------------------------- synch mode
def test_synch_generations_wait_at_the_boundary():
    from rafiki_ray.schedulers._base import CheckpointRequiredError
    from rafiki_ray.testing._driver import drive

    def make():
        return PBT({"lr": tune.loguniform(1e-3, 1.0)}, metric="loss", mode="min", seed=0,
                   perturbation_interval=3, synch=True, persist=False, population_size=6)

    log = drive(make(), n_trials=6, horizon=9, workers=2)
    assert all(s == "TERMINATED" for s in log.statuses.values()), log.statuses
    paused_at = sorted({t for _, t, d in log.decisions if d == "PAUSE"})
    assert paused_at and set(paused_at) <= {3, 6, 9}, paused_at  # only at generation boundaries
    with pytest.raises(CheckpointRequiredError):
        drive(make(), n_trials=6, horizon=9, workers=2, checkpoint=False)


def _toy_ckpt_trainable(config):
    """The toy with checkpoints, for time-sharing (more members than slots) and synch mode."""
    import json
    import os
    import tempfile

    sess = PBTSession(config, store=config["store"])
    theta, start = np.array([0.9, 0.9]), 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "s.json")) as f:
            saved = json.load(f)
        theta, start = np.array(saved["theta"]), saved["t"]
    ex = sess.start()  # an exploit decided while this member was paused wins over its own state
    if ex is not None and ex.params is not None:
        theta = np.array(ex.params["theta"])
    for t in range(start + 1, 41):
        h = np.array([sess.config["h0"], sess.config["h1"]])
        theta = theta - 0.05 * 2 * h * theta
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "s.json"), "w") as f:
                json.dump({"theta": theta.tolist(), "t": t}, f)
            ex = sess.report({"q": _q(theta), "start": start},
                             params={"theta": theta} if t % TOY_INTERVAL == 0 else None,
                             checkpoint=tune.Checkpoint.from_directory(d))
        if ex is not None:
            theta = np.array(ex.params["theta"])


@pytest.mark.slow
@pytest.mark.parametrize("synch", [False, True])
def test_time_sharing_and_synch_in_tune(ray_session, storage, synch):
    """4 members on 2 slots: paused members pick up exploits in PBTSession.start()."""
    name = f"pbt_share_{synch}"
    space = {"h0": tune.uniform(0, 1), "h1": tune.uniform(0, 1)}
    sched = PBT(space, perturbation_interval=TOY_INTERVAL, fraction=0.5, seed=0, store=name,
                synch=synch)
    grid = tune.Tuner(
        _toy_ckpt_trainable,
        param_space={**space, "store": name},
        tune_config=tune.TuneConfig(metric="q", mode="max", scheduler=sched, num_samples=4,
                                    reuse_actors=True, search_alg=tune.search.BasicVariantGenerator(
                                        random_state=0)),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    sched.store.shutdown()
    assert grid.num_errors == 0, [r.error for r in grid if r.error]
    assert sched.num_exploits > 0
    for r in grid:
        its = list(r.metrics_dataframe["training_iteration"])
        info = r.metrics_dataframe[["training_iteration", "q", "start", "pbt_applied"]].to_string()
        assert its == sorted(its) and len(set(its)) == len(its), info  # never from scratch
        # (progress.csv may miss rows after several pause/resume cycles; the final result not)
        assert r.metrics["training_iteration"] == 40, info
    assert any(r.metrics_dataframe["start"].max() > 0 for r in grid)  # some were resumed
    df = sched.lineage()
    ex = df[df.event == "exploit"]
    assert (ex["applied"] | ex["dropped"]).all(), df
    # The paper's Q >= 1.19 bar is checked deterministically by the toy tests above; in a real
    # asynchronous Tune run the outcome depends on timing, so only require progress here.
    first = max(r.metrics_dataframe["q"].iloc[0] for r in grid)
    assert max(r.metrics_dataframe["q"].max() for r in grid) > first


# ----------------------------------------------------------------------------- overhead
def _short_trial(config):
    """Ray's PBT style, as in benchmarks/overhead.py: 9 reports, each with a checkpoint."""
    import os
    import tempfile

    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "it")) as f:
            start = int(f.read())
    for it in range(start + 1, 10):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "it"), "w") as f:
                f.write(str(it))
            tune.report({"score": -config["x"] ** 2 * (1 - 0.5 ** it)},
                        checkpoint=tune.Checkpoint.from_directory(d))


def test_decisions_are_journaled_not_full_state_writes(ray_session, storage):
    """Issue 17 (overhead): a pause, exploit or completion appends one journal line with
    what changed, O(1) in the history, instead of rewriting (and deep-copying) every member
    and the whole lineage; the state file plus the journal restore the exact state."""
    import os
    import pickle

    from rafiki_ray.schedulers._base import JOURNAL_FILE, STATE_FILE

    def make():
        return PBT({"x": tune.uniform(-5, 5)}, perturbation_interval=3, seed=0)

    sched = make()
    sched.persist_interval_s = 3600.0  # no throttled full write after the first one
    n = 6  # more members than the 2 slots: time-sharing pauses as well
    grid = tune.Tuner(
        tune.with_resources(_short_trial, {"cpu": 1}),
        param_space={"x": tune.uniform(-5, 5)},
        tune_config=tune.TuneConfig(metric="score", mode="max", num_samples=n,
                                    scheduler=sched, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, name="journal", verbose=0),
    ).fit()
    assert not grid.errors
    assert sched.num_exploits > 0
    folder = os.path.dirname(sched.state_path)
    decisions = sched._file._seq  # journal lines written (sequence numbers; none is reused)
    # a line per decision (each exploit and completion at least)
    assert decisions >= sched.num_exploits + n
    # not a full write per decision: what was written (snapshots when the journal outgrows
    # the last one, plus the lines) stays below one full state per decision (0.26-0.45 of it
    # measured in runs of 24-84 decisions, where snapshots are still a large share)
    full = len(pickle.dumps(sched.get_state()))
    assert sched._file.bytes_written < 0.75 * decisions * full, (sched._file.bytes_written, full)
    with open(os.path.join(folder, JOURNAL_FILE), encoding="utf-8") as f:
        lines = f.read().splitlines()
    # each line carries the members and rows changed since the previous one, not the history
    sizes = sorted(len(x) for x in lines)
    assert sizes and sizes[len(sizes) // 2] < full / 2
    assert os.path.exists(os.path.join(folder, STATE_FILE))
    # a restore (Tuner.restore after a driver crash) rebuilds the exact state
    other = make()
    assert other._load_persisted(folder, grid[0].metrics["trial_id"])
    assert other.get_state() == sched.get_state()


def test_a_pickled_pbt_keeps_its_runtime_maps_apart():
    """Tune pickles its scheduler with the experiment; the unpickled PBT starts with empty
    runtime maps of trials and of pinned checkpoints, two dicts: pinning a checkpoint must not
    put it among the trials (it once shared one dict between both)."""
    import pickle

    sched = pickle.loads(pickle.dumps(PBT({"x": tune.uniform(0, 1)}, metric="s", mode="max")))
    assert sched._trials == {} and sched._pinned == {}
    sched._pinned["t"] = ("checkpoint", {})
    assert "t" not in sched._trials


def test_finished_members_stay_sources_but_are_never_exploited():
    """As in Ray's PBT, a finished member still ranks: a member retried or restored after the
    others finished is compared with them (it used to be ranked alone and never exploited:
    the slow suite's flaky retry and node-failure PBT tests), but only live members are
    exploited."""
    from rafiki_ray.schedulers import PBT

    sched = PBT(perturbation_interval=2, fraction=0.5, seed=0,
                hyperparam_mutations={"lr": [0.1, 0.2]})
    sched._members = {"a": {"score": 1.0, "finished": False},
                      "b": {"score": 5.0, "finished": True}}
    assert sched._quantiles() == (["a"], ["b"])
    sched._members["a"]["score"] = 9.0
    assert sched._quantiles() == ([], ["a"])
    sched._members["a"]["finished"] = True
    assert sched._quantiles() == ([], [])


def test_a_top_members_older_worse_checkpoint_is_not_copied():
    """Members rank by their latest results, but a top member is copied as it was at its last
    decision in the top quantile. When that record scored below the bottom member's latest
    result (a top rank earned between decisions), copying it would make the member worse:
    the slow suite's Ray-style digits test once copied 0.8589 into a member at 0.8640. Such a
    member is no source; published weights (read when applied) always are."""
    sched = PBT(metric="acc", mode="max", perturbation_interval=2, fraction=0.5, seed=0,
                hyperparam_mutations={"lr": [0.1, 0.2]}, persist=False)

    def member(score, top_value=None, published=None, session=False):
        top = None if top_value is None else {"step": 4.0, "checkpoint_step": 4.0,
                                              "published": published, "score": top_value,
                                              "value": top_value}
        return {"score": score, "raw": score, "top": top, "session": session,
                "finished": False}

    bottom = member(0.864)
    sched._members = {"low": bottom, "worse": member(0.87, top_value=0.8589),
                      "better": member(0.88, top_value=0.87), "tie": member(0.9, 0.864),
                      "none": member(0.9)}
    assert [t for t in ("worse", "better", "tie", "none") if sched._may_copy(bottom, t)] == [
        "better", "tie", "none"]  # "none": drawn, then nothing to copy (Ray: goes on)
    sched._members["worse"]["top"]["published"] = 3
    assert not sched._may_copy(bottom, "worse")  # a checkpoint member copies the checkpoint
    assert sched._may_copy(member(0.864, session=True), "worse")  # its latest weights
    old = dict(sched._members["better"]["top"])
    del old["value"]  # state written before the rule: as before
    sched._members["better"]["top"] = old
    assert sched._may_copy(bottom, "better")
