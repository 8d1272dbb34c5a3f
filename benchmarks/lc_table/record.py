"""Record a learning-curve table by REAL training: MLPs on mnist1d, per-epoch validation curves.

Every configuration is trained from scratch for ``--epochs`` epochs on the mnist1d training split
(4,000 signals, generated offline by ``mnist1d.make_dataset``; ``get_dataset`` would download) and
evaluated after every epoch on the 1,000 held-out signals. The table stores, per configuration:
the hyperparameters, validation accuracy and loss, training loss and the time of every epoch.

The epoch time is the CPU time of the training thread (``--clock thread``, the default; torch
runs with one intra-op and one inter-op thread, so that is the epoch's work): on a machine shared
with other jobs the wall clock measures their load, not the configuration's cost (the first table
was recorded with ``--clock wall`` under a load of 20-50 and its times spread from 1 s to 174 s
per configuration). CPU time still grows somewhat under heavy load (shared caches): rows timed
at a load of 3 and again at 17 differed by a median factor of 1.27.

    python benchmarks/lc_table/record.py --n-configs 500 --epochs 30 --seed 0

The run is resumable: partial results are flushed to ``<out>.partial.npz`` every few configurations
and picked up again with the same arguments. The final table is ``<out>`` (compressed ``.npz``),
with the command, seed, library versions and machine in its ``meta`` JSON string.

Randomness: configurations come from ``numpy.random.default_rng(seed)``; configuration ``i`` is
trained with ``torch.manual_seed(seed * 100003 + i)`` (a script, so the global torch RNG is fine:
weight init and dropout read it) and a seeded ``torch.Generator`` for the batch order.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from benchmarks._machine import cpu_model

log = logging.getLogger("lc_table.record")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "mnist1d_mlp.npz")

# The configuration space (the searchers' view of the table; see ``load_table``).
WIDTHS = (16, 32, 64, 128, 256)
DEPTHS = (1, 2, 3)
BATCH_SIZES = (32, 64, 128, 256)
OPTIMIZERS = ("adam", "sgd")
LR_RANGE = (1e-4, 3e-1)
WD_RANGE = (1e-6, 1e-2)
DROPOUT_RANGE = (0.0, 0.5)


def sample_configs(n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` configurations drawn i.i.d. from the space above with a private generator."""
    rng = np.random.default_rng(seed)
    return {
        "lr": np.exp(rng.uniform(np.log(LR_RANGE[0]), np.log(LR_RANGE[1]), n)),
        "width": rng.choice(np.array(WIDTHS), n),
        "depth": rng.choice(np.array(DEPTHS), n),
        "batch_size": rng.choice(np.array(BATCH_SIZES), n),
        "weight_decay": np.exp(rng.uniform(np.log(WD_RANGE[0]), np.log(WD_RANGE[1]), n)),
        "dropout": rng.uniform(*DROPOUT_RANGE, n),
        "optimizer": rng.integers(0, len(OPTIMIZERS), n),
    }


def make_data() -> dict[str, Any]:
    from mnist1d import data as mnist1d

    args = mnist1d.get_dataset_args()
    data = mnist1d.make_dataset(args)  # offline generation (seed in args: 42)
    return {"data": data, "args": {k: v for k, v in vars(args).items() if k != "url"}}


CLOCKS = {
    # CPU time of the recording thread: torch runs with 1 intra-op thread, so this is the work an
    # epoch costs, whatever else loads the machine (the wall clock counted other processes' load)
    "thread": time.thread_time,
    "wall": time.perf_counter,
}


CLOCK_DOC = {
    "thread": "seconds of CPU time of the training thread (time.thread_time; train + "
              "validation; torch with 1 intra-op and 1 inter-op thread)",
    "wall": "seconds of wall time (train + validation), torch 1 thread",
}


def train_one(cfg: dict[str, Any], data: dict[str, Any], epochs: int, seed: int,
              clock: str = "thread") -> dict[str, np.ndarray]:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(data["x"], dtype=torch.float32)
    y = torch.as_tensor(data["y"], dtype=torch.long)
    xv = torch.as_tensor(data["x_test"], dtype=torch.float32)
    yv = torch.as_tensor(data["y_test"], dtype=torch.long)
    layers: list[nn.Module] = []
    d_in = x.shape[1]
    for _ in range(int(cfg["depth"])):
        layers += [nn.Linear(d_in, int(cfg["width"])), nn.ReLU(), nn.Dropout(float(cfg["dropout"]))]
        d_in = int(cfg["width"])
    layers.append(nn.Linear(d_in, 10))
    model = nn.Sequential(*layers)
    if OPTIMIZERS[int(cfg["optimizer"])] == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"])
        )
    else:
        opt = torch.optim.SGD(
            model.parameters(), lr=float(cfg["lr"]), momentum=0.9,
            weight_decay=float(cfg["weight_decay"]),
        )
    loss_fn = nn.CrossEntropyLoss()
    bs = int(cfg["batch_size"])
    out = {k: np.full(epochs, np.nan) for k in ("val_acc", "val_loss", "train_loss", "epoch_time")}
    now = CLOCKS[clock]
    for ep in range(epochs):
        t0 = now()
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(y), bs):
            idx = perm[i : i + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        model.eval()
        with torch.no_grad():
            logits = model(xv)
            vloss = float(loss_fn(logits, yv))
            vacc = float((logits.argmax(1) == yv).float().mean())
        out["epoch_time"][ep] = now() - t0
        out["train_loss"][ep] = total / max(count, 1)
        # a diverged run (NaN loss) is recorded as such: accuracy of a NaN net is chance level
        out["val_loss"][ep] = vloss
        out["val_acc"][ep] = vacc
    return out


def _machine() -> dict[str, Any]:
    cpu = cpu_model()
    return {"nproc": os.cpu_count(), "cpu": cpu, "platform": platform.platform()}


def _save(path: str, configs: dict[str, np.ndarray], curves: dict[str, np.ndarray], done: int,
          meta: dict[str, Any]) -> None:
    tmp = path + ".tmp.npz"
    arrays = {f"cfg_{k}": v[:done] for k, v in configs.items()}
    arrays.update({k: v[:done] for k, v in curves.items()})
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, path)


def merge(paths: list[str], out: str) -> int:
    """Join a partial run and shards into ``out``: rows are placed at their index (found from
    the seed's configurations); where parts overlap the first part given wins."""
    parts = [dict(np.load(p)) for p in paths]
    meta = json.loads(str(parts[0]["meta"]))
    n = int(meta["command"].split("--n-configs ")[1].split()[0])
    configs = sample_configs(n, meta["seed"])
    keys = [k for k in parts[0] if k != "meta" and not k.startswith("cfg_")]
    arrays = {k: np.full((n,) + parts[0][k].shape[1:], np.nan) for k in keys}
    filled = np.zeros(n, dtype=bool)
    for path, part in zip(paths, parts):
        m = len(part["cfg_lr"])
        if m == 0:
            continue
        start = int(np.flatnonzero(configs["lr"] == part["cfg_lr"][0])[0])
        for k, v in configs.items():  # every row is the configuration the seed says it is
            if not np.array_equal(part[f"cfg_{k}"], v[start:start + m]):
                raise ValueError(f"{path}: {k} does not line up with seed {meta['seed']}")
        rows = np.arange(start, start + m)
        new = ~filled[rows]
        for k in keys:
            arrays[k][rows[new]] = part[k][new]
        filled[rows] = True
    if not filled.all():
        raise ValueError(f"missing configurations: {np.flatnonzero(~filled).tolist()[:20]}...")
    arrays.update({f"cfg_{k}": v for k, v in configs.items()})
    meta["parts"] = [os.path.basename(p) for p in paths]
    if meta.get("clock", "wall") == "wall":
        meta["note"] = ("trained in parallel processes of the same run (--shard START STOP), joined "
                        "with --merge; per-epoch times were measured under the machine's load then")
    else:
        meta["note"] = ("trained in parallel processes of the same run (--shard START STOP), joined "
                        "with --merge; per-epoch times are CPU time of the training thread")
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta["total_train_seconds"] = float(np.nansum(arrays["epoch_time"]))
    tmp = out + ".tmp.npz"
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, out)
    print(f"wrote {out}: {n} configurations ({os.path.getsize(out) / 1e6:.1f} MB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-configs", type=int, default=500)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--flush-every", type=int, default=10)
    p.add_argument("--shard", type=int, nargs=2, metavar=("START", "STOP"), default=None,
                   help="train only configurations START..STOP-1 into <out>.shard-START-STOP.npz "
                        "(same configurations and seeds as the full run; --merge joins them)")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="thread",
                   help="clock of the per-epoch times: 'thread' = CPU time of the (1-thread) "
                        "training thread, insensitive to other load (default); 'wall' = wall time")
    p.add_argument("--merge", nargs="+", default=None, metavar="NPZ",
                   help="join a partial run and shards (in index order) into <out>")
    args = p.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)

    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    configs = sample_configs(args.n_configs, args.seed)
    bundle = make_data()
    data = bundle["data"]
    n, e = args.n_configs, args.epochs
    curves = {k: np.full((n, e), np.nan) for k in ("val_acc", "val_loss", "train_loss", "epoch_time")}
    start = 0
    partial = args.out + ".partial.npz"
    first, stop = 0, n
    if args.shard:
        first, stop = args.shard
        partial = f"{args.out}.shard-{first}-{stop}.npz"
        start = first
    if os.path.exists(partial):
        with np.load(partial) as old:
            done = old["val_acc"].shape[0]
            same = all(np.array_equal(old[f"cfg_{k}"], v[first:first + done])
                       for k, v in configs.items())
            if same and old["val_acc"].shape[1] == e:
                for k, arr in curves.items():
                    arr[first:first + done] = old[k]
                start = first + done
                log.info("resuming after %d configurations", start)
    meta = {
        "name": "mnist1d_mlp",
        "command": "python benchmarks/lc_table/record.py " + " ".join(
            [f"--n-configs {n}", f"--epochs {e}", f"--seed {args.seed}", f"--clock {args.clock}"]),
        "seed": args.seed,
        "torch_seed_rule": "torch.manual_seed(seed * 100003 + i) for configuration i",
        "dataset": "mnist1d.make_dataset(mnist1d.get_dataset_args()) (offline), "
                   "train = x/y (4000), validation = x_test/y_test (1000)",
        "dataset_args": bundle["args"],
        "model": "MLP: depth x [Linear(width), ReLU, Dropout(dropout)] + Linear(10); CrossEntropy",
        "optimizers": list(OPTIMIZERS),
        "sgd_momentum": 0.9,
        "space": {"lr": ["log", *LR_RANGE], "width": list(WIDTHS), "depth": list(DEPTHS),
                  "batch_size": list(BATCH_SIZES), "weight_decay": ["log", *WD_RANGE],
                  "dropout": ["uniform", *DROPOUT_RANGE], "optimizer": list(OPTIMIZERS)},
        "metrics": {"val_acc": "max", "val_loss": "min", "train_loss": "min",
                    "epoch_time": CLOCK_DOC[args.clock]},
        "clock": args.clock,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": _machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    t_start = time.perf_counter()
    for i in range(start, stop):
        cfg = {k: v[i] for k, v in configs.items()}
        res = train_one(cfg, data, e, args.seed * 100003 + i, clock=args.clock)
        for k, arr in curves.items():
            arr[i] = res[k]
        done = i + 1
        if done % args.flush_every == 0 or done == stop:
            _save(partial, {k: v[first:] for k, v in configs.items()},
                  {k: v[first:] for k, v in curves.items()}, done - first, meta)
            rate = (time.perf_counter() - t_start) / (done - start)
            log.info("%d/%d configs, %.2f s/config, eta %.1f min, load %s, last acc %.3f",
                     done, stop, rate, rate * (stop - done) / 60, os.getloadavg(),
                     res["val_acc"][-1])
    if args.shard:
        return 0
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta["total_train_seconds"] = float(np.nansum(curves["epoch_time"]))
    _save(args.out, configs, curves, n, meta)
    os.unlink(partial)
    log.info("wrote %s (%.1f MB)", args.out, os.path.getsize(args.out) / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
