"""ENAS against RandomNAS and regularized evolution on the digits micro space
(``rafiki_ray.nas.micro``), with Tune, the Rafiki schedule and shared weights.

Each search method runs the same schedule (periods of TRAIN + EVAL trials on the shared
supergraph, FINAL_EVAL, then one FINAL_TRAIN from scratch of the chosen architecture) with
the same number of trials, so the compute is equal. ``random-standalone`` is random search
without sharing: random architectures each trained from scratch, given ``--standalone-factor``
(5) times ENAS's CPU seconds; it chooses the one with the best validation accuracy.

Digits is split three ways per seed: 1,200 training images, a validation half of the rest that
every method selects on, and a test half that no method sees. The score of a method is the
chosen architecture trained from scratch again with ``--retrain`` (3) fresh training seeds,
median test accuracy: the best of 32 noisy validation scores would otherwise flatter the
method that tries most architectures. Target (issue 20): ENAS's score >= random-standalone's
with at most 1/5 of its compute (median over seeds). CPU hours are the trials' process CPU
time (the retraining is not counted).

    python benchmarks/nas.py --seeds 5 --write      # full: ~1-2 CPU hours on 2 cores
    python benchmarks/nas.py --quick                # smoke: 1 seed, tiny settings

``--rows FILE`` keeps every finished search as a JSON line and skips those already there, so
an interrupted full run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import Report

NAME = "nas"
FULL_COMMAND = "python benchmarks/nas.py --seeds 5 --write"

METHODS = ("ENAS", "RandomNAS", "RegEvo")
PROTOCOL = 2  # rows of another protocol (e.g. 1: scored on the selection split) are not reused


def load_micro() -> Any:
    from rafiki_ray.nas import micro

    return micro


def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"n_search": 6, "n_train": 1, "n_eval": 2, "n_final_eval": 2, "n_data": 300,
                "over": {"search_channels": 4, "channels": 8, "trial_epochs": 1, "epochs": 1,
                         "quick_eval_size": 100}}
    return {"n_search": 60, "n_train": 1, "n_eval": 4, "n_final_eval": 10, "n_data": 1200,
            "over": {}}


def splits(micro: Any, seed: int, n_data: int) -> tuple[tuple, tuple, tuple]:
    """``(train, val, test)``: the first ``n_data`` training images, then the held-out rest cut
    in two halves, validation (selection) and test (the score)."""
    (Xt, yt), (Xv, yv) = micro.load_digits_split(seed=seed)
    half = len(Xv) // 2
    return (Xt[:n_data], yt[:n_data]), (Xv[:half], yv[:half]), (Xv[half:], yv[half:])


def retrain(arch: list[Any], seed: int, quick: bool, n: int, **changes: Any) -> list[float]:
    """Test accuracies of ``arch`` trained from scratch with ``n`` fresh training seeds."""
    import torch

    micro = load_micro()
    cfg = {**settings(quick), **changes}
    train, _, test = splits(micro, seed, cfg["n_data"])
    from rafiki_ray.spaces import Fixed

    # trained from scratch as FINAL_TRAIN is: the fixed knobs, every policy off
    fixed = {k: (v.value if isinstance(v, Fixed) else False)
             for k, v in _space(micro, cfg["over"]).items() if k != "cell_arch"}
    accs = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for k in range(n):
            model = micro.MicroDigits(**{**fixed, "cell_arch": list(arch),
                                         "seed": 7919 * (seed + 1) + k})
            model.train(train)
            accs.append(model.evaluate(test))
            model.destroy()
    finally:
        torch.set_num_threads(threads)
    return accs


def _searcher(method: str, seed: int, schedule: Any) -> Any:
    from rafiki_ray.nas import ENASSearch, RandomNAS, RegularizedEvolutionNAS

    if method == "ENAS":
        # Rafiki's controller, learning from every 5 EVAL scores (short searches)
        return ENASSearch(seed=seed, schedule=schedule, update_every=5)
    if method == "RandomNAS":
        return RandomNAS(seed=seed, schedule=schedule)
    if method == "RegEvo":
        return RegularizedEvolutionNAS(seed=seed, schedule=schedule, population_size=10,
                                       sample_size=3)
    raise ValueError(f"--methods: must be in {list(METHODS)}, got {method!r}")


def _space(micro: Any, over: dict[str, Any]) -> dict[str, Any]:
    from rafiki_ray.spaces import SearchSpace, from_knobs

    space = from_knobs(micro.MicroDigits.get_knob_config())
    return SearchSpace({**dict(space.items()), **{k: _fixed(v) for k, v in over.items()}})


def _fixed(v: Any) -> Any:
    from rafiki_ray.spaces import Fixed

    return Fixed(v)


def run_search(method: str, seed: int, quick: bool, **changes: Any) -> dict[str, Any]:
    """One search with Tune; the FINAL_TRAIN accuracy, the architecture, CPU seconds.
    ``changes`` replace entries of :func:`settings`."""
    from ray import tune

    from rafiki_ray.nas import RafikiSchedule, directive_trainable
    from rafiki_ray.sharing import ParamStore

    micro = load_micro()
    cfg = {**settings(quick), **changes}
    train, val, _ = splits(micro, seed, cfg["n_data"])
    schedule = RafikiSchedule(n_train=cfg["n_train"], n_eval=cfg["n_eval"],
                              n_final_eval=cfg["n_final_eval"],
                              final_after_trials=cfg["n_search"])
    store_name = f"nas-bench-{uuid.uuid4().hex[:8]}"
    ParamStore.create(store_name)
    try:
        tuner = tune.Tuner(
            directive_trainable(micro.MicroDigits, train_data=train, eval_data=val,
                                store_name=store_name),
            param_space=_space(micro, cfg["over"]).to_tune(),
            tune_config=tune.TuneConfig(
                search_alg=_searcher(method, seed, schedule), metric="score", mode="max",
                num_samples=-1, max_concurrent_trials=2,
            ),
            run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="nasbench"),
                                      name=f"{method}-{seed}", verbose=0),
        )
        grid = tuner.fit()
    finally:
        ParamStore.get(store_name).shutdown()
    df = grid.get_dataframe()
    final = df[df["phase"] == "FINAL_TRAIN"]
    if len(final) != 1:
        raise RuntimeError(f"{method} seed {seed}: expected one FINAL_TRAIN trial, got {len(final)}")
    return {"method": method, "seed": seed, "final_acc": float(final["score"].iloc[0]),
            "cpu_s": float(df["cpu_s"].sum()), "n_trials": len(df),
            "arch": list(final["config/cell_arch"].iloc[0])}


def run_standalone(seed: int, quick: bool, cpu_budget_s: float, **changes: Any
                   ) -> dict[str, Any]:
    """Random architectures trained from scratch (no sharing) until ``cpu_budget_s``."""
    from ray import tune

    from rafiki_ray.nas import RandomNAS, directive_trainable

    micro = load_micro()
    cfg = {**settings(quick), **changes}
    train, val, _ = splits(micro, seed, cfg["n_data"])
    accs: list[float] = []
    archs: list[list[Any]] = []
    cpu = 0.0
    batch = 0
    while batch == 0 or cpu < cpu_budget_s:  # at least one batch of 2
        tuner = tune.Tuner(
            directive_trainable(micro.MicroDigits, train_data=train, eval_data=val),
            param_space=_space(micro, cfg["over"]).to_tune(),
            tune_config=tune.TuneConfig(search_alg=RandomNAS(seed=1000 * seed + batch),
                                        metric="score", mode="max",
                                        num_samples=2, max_concurrent_trials=2),
            run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="nasbench"),
                                      name=f"standalone-{seed}-{batch}", verbose=0),
        )
        df = tuner.fit().get_dataframe()
        accs += [float(a) for a in df["score"]]
        archs += [list(a) for a in df["config/cell_arch"]]
        cpu += float(df["cpu_s"].sum())
        batch += 1
    best = int(np.argmax(accs))
    return {"method": "random-standalone", "seed": seed, "final_acc": accs[best], "cpu_s": cpu,
            "n_trials": len(accs), "arch": archs[best]}


def _load_rows(path: Path | None) -> list[dict[str, Any]]:
    if path is None or not path.exists():
        return []
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by an interrupted run
                print(f"{path}:{i + 1}: ignoring a torn line", file=sys.stderr)
    return rows


def reusable(rows: list[dict[str, Any]], quick: bool, n_retrain: int) -> list[dict[str, Any]]:
    """The rows a rerun may keep: same mode, this protocol, as many retrainings."""
    return [r for r in rows if r.get("quick", False) == quick and r.get("protocol") == PROTOCOL
            and len(r.get("test_accs", ())) == n_retrain]


def table(rows: list[dict[str, Any]], methods: list[str]) -> list[str]:
    """The results table (medians over seeds) and the issue's target."""
    seeds = sorted({r["seed"] for r in rows})
    out = [("| method | median test accuracy (retrained) | per seed | median validation "
            "accuracy (search) | median CPU hours | trials |"), "|---|---|---|---|---|---|"]
    summary = {}
    for m in [*methods, "random-standalone"]:
        rs = sorted((r for r in rows if r["method"] == m), key=lambda r: r["seed"])
        if not rs:
            continue
        acc = float(np.median([r["test_acc"] for r in rs]))
        hours = float(np.median([r["cpu_s"] for r in rs])) / 3600
        summary[m] = (acc, hours)
        per_seed = " ".join(f"{r['test_acc']:.3f}" for r in rs)
        out.append(f"| {m} | {acc:.4f} | {per_seed} | "
                   f"{float(np.median([r['final_acc'] for r in rs])):.4f} | {hours:.4f} | "
                   f"{int(np.median([r['n_trials'] for r in rs]))} |")
    if "ENAS" in summary and "random-standalone" in summary:
        (ea, eh), (ra, rh) = summary["ENAS"], summary["random-standalone"]
        ok = ea >= ra and eh <= rh / 5
        out += ["", (f"Target (ENAS's architecture >= random-standalone's with <= 1/5 of its "
                     f"compute, medians over {len(seeds)} seed(s)): {'met' if ok else 'NOT met'} "
                     f"({ea:.4f} vs {ra:.4f}; {eh:.4f} vs {rh:.4f} CPU h).")]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--standalone-factor", type=float, default=5.0)
    ap.add_argument("--retrain", type=int, default=3,
                    help="fresh training seeds per chosen architecture (the test score)")
    ap.add_argument("--quick", action="store_true", help="1 seed, tiny settings (smoke test)")
    ap.add_argument("--rows", default=None,
                    help="JSON-lines file of finished searches: kept, and reused on a rerun")
    ap.add_argument("--write", action="store_true",
                    help="write the nas section of benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"--methods: must be in {list(METHODS)}, got {m!r}")
    if args.seeds < 1:
        raise ValueError(f"--seeds: must be >= 1, got {args.seeds}")
    if args.retrain < 1:
        raise ValueError(f"--retrain: must be >= 1, got {args.retrain}")
    report = Report(NAME, argv, quick=args.quick, full_command=FULL_COMMAND)
    seeds = 1 if args.quick else args.seeds
    rows_path = Path(args.rows) if args.rows else None
    rows = reusable(_load_rows(rows_path), args.quick, args.retrain)
    done = {(r["method"], r["seed"]) for r in rows}

    def keep(r: dict[str, Any]) -> None:
        r["quick"], r["protocol"] = args.quick, PROTOCOL
        r["test_accs"] = retrain(r["arch"], r["seed"], args.quick, args.retrain)
        r["test_acc"] = float(np.median(r["test_accs"]))
        rows.append(r)
        print(f"{r['method']} seed {r['seed']}: validation {r['final_acc']:.4f}, test (retrained) "
              f"{r['test_acc']:.4f}, {r['cpu_s']:.0f} CPU s, {r['n_trials']} trials", flush=True)
        if rows_path is not None:
            with rows_path.open("a") as f:
                f.write(json.dumps(r) + "\n")
                f.flush()
                os.fsync(f.fileno())

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    init = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False}
    if ray.is_initialized():
        init = None  # not ours: never restarted
    else:
        ray.init(**init)
    for seed in range(seeds):
        for m in methods:
            if (m, seed) not in done:
                report.check_ray(init, f"{m} seed {seed}")
                keep(run_search(m, seed, args.quick))
            report.sample_load()
        enas = [r for r in rows if r["method"] == "ENAS" and r["seed"] == seed]
        if enas and ("random-standalone", seed) not in done:
            budget = 0.0 if args.quick else args.standalone_factor * enas[0]["cpu_s"]
            report.check_ray(init, f"random-standalone seed {seed}")
            keep(run_standalone(seed, args.quick, budget))  # quick: one batch of 2
    shown = [r for r in rows if r["seed"] < seeds]  # the seeds asked for
    reused = sum((r["method"], r["seed"]) in done for r in shown)
    lines = table(shown, methods)
    print("\n".join(lines))
    if args.write:
        s = settings(args.quick)
        report.write("\n".join(report.header() + [
            (f"Digits micro space (`rafiki_ray.nas.micro`), {seeds} seed(s); each search method "
             f"runs {s['n_search']} search trials (periods of {s['n_train']} TRAIN + "
             f"{s['n_eval']} EVAL on the shared supergraph), {s['n_final_eval']} FINAL_EVAL and "
             "one FINAL_TRAIN from scratch of the chosen architecture, 2 trials at a time. "
             "random-standalone: random architectures each trained from scratch until "
             f"{args.standalone_factor:g}x ENAS's CPU time, the best on validation. Score: the "
             f"chosen architecture trained again from scratch with {args.retrain} fresh seeds, "
             "median accuracy on a test split that no method selects on (digits: 1,200 train, "
             "the rest halved into validation and test). CPU hours: the trials' process CPU "
             "time." + (f" {reused} of the {len(shown)} searches were run earlier and kept in "
                        "the --rows file (the wall time above is this run's)." if reused else "")),
            "", *lines]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
