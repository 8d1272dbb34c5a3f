"""Promotion-based ASHA tuning a small PyTorch MLP on scikit-learn's digits, with checkpoints.

    python examples/asha_pytorch.py            # 24 configurations, up to 27 epochs
    python examples/asha_pytorch.py --quick    # a smoke test (8 configurations, 9 epochs)

Trials report their validation loss with a checkpoint every epoch; ASHA (Li et al., MLSys
2020, Algorithm 2) pauses a trial at each rung (1, 3, 9, 27 epochs) and, whenever a worker
is free, promotes the best paused trial of the highest rung that has one in its top third,
which resumes from its checkpoint; otherwise a new configuration starts. The configurations
come from rafiki_ray's TPESearch. At the end the script prints the best trial and a pandas
table of the rungs. Under two minutes on 2 idle cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import pandas as pd
import ray
import torch
from ray import tune
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from rafiki_ray.schedulers import ASHA
from rafiki_ray.searchers import TPESearch


def _data() -> tuple[torch.Tensor, ...]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return (torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_va),
            torch.from_numpy(y_va))


def train_mlp(config: dict) -> None:
    """One trial: an MLP trained for up to ``max_epochs``; reports with a checkpoint."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_tr, y_tr, x_va, y_va = _data()
    model = torch.nn.Sequential(
        torch.nn.Linear(64, int(config["hidden"])), torch.nn.ReLU(),
        torch.nn.Dropout(float(config["dropout"])), torch.nn.Linear(int(config["hidden"]), 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=float(config["lr"]),
                           weight_decay=float(config["weight_decay"]))
    epoch = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # resumed after a pause: continue where it stopped
        with checkpoint.as_directory() as d:
            saved = torch.load(os.path.join(d, "state.pt"))
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        epoch = saved["epoch"]
    gen = torch.Generator().manual_seed(epoch)
    while epoch < int(config["max_epochs"]):
        epoch += 1
        model.train()
        for idx in torch.randperm(len(x_tr), generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_va)
            val_loss = float(torch.nn.functional.cross_entropy(logits, y_va))
            val_acc = float((logits.argmax(1) == y_va).float().mean())
        with tempfile.TemporaryDirectory() as d:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch},
                       os.path.join(d, "state.pt"))
            tune.report({"val_loss": val_loss, "val_acc": val_acc, "epoch": epoch},
                        checkpoint=tune.Checkpoint.from_directory(d))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--storage", default=None, help="Tune storage_path")
    args = parser.parse_args()
    max_t = 9 if args.quick else 27
    samples = args.samples or (8 if args.quick else 24)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    param_space = {
        "lr": tune.loguniform(1e-4, 3e-1),
        "hidden": tune.choice([16, 32, 64, 128]),
        "dropout": tune.uniform(0.0, 0.5),
        "weight_decay": tune.loguniform(1e-6, 1e-2),
        "max_epochs": max_t,
    }
    search_alg = TPESearch(metric="val_loss", mode="min", seed=0, n_startup_trials=6)
    scheduler = ASHA(metric="val_loss", mode="min", max_t=max_t, grace_period=1,
                     reduction_factor=3, seed=0)
    tuner = tune.Tuner(
        train_mlp,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg, scheduler=scheduler, num_samples=samples,
            max_concurrent_trials=2, reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=args.storage or tempfile.mkdtemp(), verbose=0,
                                  name="asha_pytorch"),
    )
    results = tuner.fit()
    best = results.get_best_result(metric="val_loss", mode="min")
    print("best trial:", {k: best.config[k] for k in ("lr", "hidden", "dropout", "weight_decay")})
    print(f"  val_loss={best.metrics['val_loss']:.4f} val_acc={best.metrics['val_acc']:.4f} "
          f"epochs={best.metrics['epoch']}")
    # The scheduler's own state (persisted next to Tune's experiment state) holds the rungs.
    state_file = os.path.join(results.experiment_path, "rafiki_scheduler_state.pkl")
    rungs = ASHA(max_t=max_t, grace_period=1, reduction_factor=3)
    rungs.restore(state_file)
    table = pd.DataFrame(rungs.rungs()).drop(columns=["bracket"])
    epochs = sum(int(r.metrics["epoch"]) for r in results)
    print(table.to_string(index=False))
    print(f"{len(results)} trials, {epochs} epochs in total "
          f"(running every trial to {max_t} epochs would take {len(results) * max_t})")
    ray.shutdown()


if __name__ == "__main__":
    main()
