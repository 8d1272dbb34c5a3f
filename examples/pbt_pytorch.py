"""PBT with weight perturbation on a small PyTorch network (sklearn's digits).

Eight members train an MLP; every 2 epochs the bottom quarter copies a top member's weights
through the ParamStore (Ray's object store, no checkpoint files), adds Gaussian noise of 2%
of each tensor's standard deviation, and perturbs the copied learning rate and momentum with
NNI's rules. Prints the lineage of the best member and saves a plot of every member's
hyperparameter schedule into the experiment directory (or ``--out``), whose path it prints.

    python examples/pbt_pytorch.py [--epochs 12] [--storage DIR] [--out schedule.png]

Needs ``pip install -e ".[torch]"`` (torch, scikit-learn, matplotlib).

Run time on 2 shared cores: 60-80 s at load averages of 8-20 (measured 2026-11-23), of which the
12 epochs of training take about 2 s per member: the rest is Ray starting, and 8 trial
processes each booting a Ray worker and importing Tune and torch (3-4 s of CPU each).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's bundled digits (no download), shuffled once with a fixed seed."""
    from sklearn.datasets import load_digits

    d = load_digits()
    perm = np.random.default_rng(0).permutation(len(d.target))
    return (d.data[perm] / 16.0).astype(np.float32), d.target[perm].astype(np.int64)


def train(config: dict, data=None, epochs: int = 12) -> None:
    """One PBT member: an MLP on digits (1000 train / 400 validation / 397 test rows).

    Reports the validation accuracy ``acc`` (the metric PBT ranks members by) and the test
    accuracy ``test_acc`` each epoch, publishing the weights with each report. The ParamStore
    is named by ``config["store"]``. ``benchmarks/pbt_exploit.py`` runs this same trainable
    for its PBT-vs-random comparison.
    """
    import torch

    from rafiki_ray.schedulers.pbt import PBTSession
    from rafiki_ray.sharing import torch_to_params

    torch.set_num_threads(1)
    x, y = data
    xt, yt = torch.from_numpy(x[:1000]), torch.from_numpy(y[:1000])
    xv, yv = torch.from_numpy(x[1000:1400]), torch.from_numpy(y[1000:1400])
    xs, ys = torch.from_numpy(x[1400:]), torch.from_numpy(y[1400:])
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    sess = PBTSession(config, store=config["store"])  # the scheduler's ParamStore
    opt = torch.optim.SGD(model.parameters(), lr=sess.config["lr"], momentum=sess.config["momentum"])

    def load(ex) -> None:  # an exploit: the better member's (noisy) weights + new hyperparameters
        ex.load_into(model)  # one copy from the object store into the model's tensors, + noise
        for group in opt.param_groups:
            group["lr"], group["momentum"] = sess.config["lr"], sess.config["momentum"]

    ex = sess.start()
    if ex is not None and ex.params is not None:
        load(ex)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for k in range(0, len(xt), 100):
            idx = perm[k:k + 100]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        with torch.no_grad():
            acc = float((model(xv).argmax(1) == yv).float().mean())
            test_acc = float((model(xs).argmax(1) == ys).float().mean())
        ex = sess.report({"acc": acc, "test_acc": test_acc}, params=lambda: torch_to_params(model))
        if ex is not None and ex.params is not None:
            load(ex)


def plot(sched, path: str, epochs: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = sorted(sched.lineage()["trial_id"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for tid in members:
        sch = sched.schedule(tid, inherited=False)
        steps = [e["step"] for e in sch] + [epochs]
        for ax, key in zip(axes, ("lr", "momentum")):
            vals = [e["config"][key] for e in sch]
            ax.step(steps, vals + [vals[-1]], where="post", label=tid)
    axes[0].set_yscale("log")
    for ax, key in zip(axes, ("learning rate", "momentum")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle("PBT hyperparameter schedule of each member")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None,
                    help="plot file (default: pbt_schedule.png in the experiment directory)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--storage", default=None, help="Tune storage_path (default: a temp dir)")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from rafiki_ray.schedulers import PBT

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    space = {"lr": tune.loguniform(1e-4, 1.0), "momentum": tune.uniform(0.0, 0.99)}
    sched = PBT(space, perturbation_interval=2, fraction=0.25, weight_noise=0.02, seed=0,
                store="pbt_example")
    storage = args.storage or tempfile.mkdtemp(prefix="rafiki_ray_pbt_")
    grid = tune.Tuner(
        # the 8 members train at once on 2 CPUs (Ray logs, in its own gcs_server.out, that it
        # started 4x more worker processes than CPUs: expected here, nothing to act on)
        tune.with_resources(tune.with_parameters(train, data=load_data(), epochs=args.epochs),
                            {"cpu": 0.25}),
        param_space={**space, "store": "pbt_example"},
        # seeded initial configurations (Tune's own sampling is unseeded): the same 8
        # members every run; which member exploits which still follows the timing
        tune_config=tune.TuneConfig(metric="acc", mode="max", num_samples=8, scheduler=sched,
                                    search_alg=BasicVariantGenerator(random_state=0),
                                    reuse_actors=True),
        run_config=tune.RunConfig(name="pbt_pytorch", storage_path=storage, verbose=0),
    ).fit()
    best = grid.get_best_result()
    tid = best.metrics["trial_id"]
    print(f"best member {tid}: validation accuracy {best.metrics['acc']:.4f}, "
          f"{sched.num_exploits} exploits in the population")
    df = sched.lineage()
    print("\nlineage of the best member (its own events):")
    print(df[df.trial_id == tid][["event", "step", "source", "source_score", "score",
                                  "config/lr", "config/momentum"]].to_string(index=False))
    print("\nits full hyperparameter schedule (with what it inherited by copying):")
    for e in sched.schedule(tid):
        print(f"  from epoch {e['step']:>4}: lr={e['config']['lr']:.5f} "
              f"momentum={e['config']['momentum']:.3f}  (set in member {e['trial_id']})")
    out = args.out or os.path.join(grid.experiment_path, "pbt_schedule.png")
    plot(sched, out, args.epochs)
    print(f"\nschedule plot saved to {out}; results in {grid.experiment_path}")
    sched.store.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
