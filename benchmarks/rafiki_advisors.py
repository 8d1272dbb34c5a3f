"""Rafiki advisors on Tune vs the original Rafiki's choices vs Optuna, on sklearn's digits.

For each example model (``examples/models``) and seed, ``tune_model`` runs the same trial
budget (``MODEL_TRIAL_COUNT``, one trial at a time as one Rafiki worker did) with:

* ``auto``: the advisor rafiki-ray chooses (GPSearch; with SHARE_PARAMS, GLOBAL_BEST sharing;
  with EARLY_STOP, a FINAL_TRAIN window that re-trains the best configurations in full);
* ``random``: rafiki-ray's RANDOM advisor (``is_exp`` honoured);
* ``rafiki-skopt``: the original's BO (skopt GP, 10 initial points, integer ``is_exp`` ignored);
* ``rafiki-random``: the original's RANDOM (``is_exp`` ignored);
* ``optuna``: Ray's ``OptunaSearch`` (TPE, seeded).

Reported per model and method (median over seeds): the best validation accuracy, the test
accuracy of the best trial, of the deployed ensemble (``deploy(result, k=3)``: greedy selection
among the top 3 on the validation data, so it may be the best trial alone), and the wall time
of the tuning run (trials plus Tune's own overhead, equal for all methods).

    python benchmarks/rafiki_advisors.py --quick            # smoke test: SkDt, 4 trials, 1 seed
    python benchmarks/rafiki_advisors.py --write            # full: 3 models x 20 trials x 3 seeds

``--write`` replaces the ``rafiki_advisors`` section of ``benchmarks/RESULTS.md`` (or of the
page given by ``--results``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._report import RESULTS, Report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("auto", "random", "rafiki-skopt", "rafiki-random", "optuna")
SECTION = "rafiki_advisors"
FULL_COMMAND = "python benchmarks/rafiki_advisors.py --write"


def _data() -> tuple[Any, Any, Any]:
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    X, y = d.images[order], d.target[order]
    return (X[:900], y[:900]), (X[900:1300], y[900:1300]), (X[1300:], y[1300:])


def _accuracy(predictor: Any, X: np.ndarray, y: np.ndarray) -> float:
    probs = np.asarray(predictor.predict(X.tolist()))
    return float((probs.argmax(1) == y).mean())


def run_one(model: str, method: str, seed: int, trials: int, storage: str) -> dict[str, Any]:
    from ray.tune.search.optuna import OptunaSearch

    from benchmarks._rafiki_baselines import RafikiRandomSearch, RafikiSkoptSearch
    from rafiki_ray.models import deploy, load_model_class, tune_model

    cls = load_model_class(os.path.join(ROOT, "examples", "models", f"{model}.py"), model)
    train, val, (Xt, yt) = _data()
    knobs = cls.get_knob_config()
    kw: dict[str, Any] = {}
    if method == "random":
        kw["advisor"] = "RANDOM"
    elif method == "rafiki-skopt":
        kw["search_alg"] = RafikiSkoptSearch(knobs, seed=seed)
    elif method == "rafiki-random":
        kw["search_alg"] = RafikiRandomSearch(knobs, seed=seed)
    elif method == "optuna":
        import optuna

        kw["search_alg"] = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed))
    t0 = time.perf_counter()
    result = tune_model(cls, train, val, {"MODEL_TRIAL_COUNT": trials, "TIME_HOURS": 2},
                        seed=seed, storage_path=storage, name=f"{model}-{method}-{seed}",
                        max_concurrent_trials=1, progress=False, **kw)
    wall = time.perf_counter() - t0
    single = deploy(result, k=1)
    ensemble = deploy(result, k=3)
    return {"model": model, "method": method, "seed": seed, "advisor": result.advisor.name,
            "val": result.best_score, "test_best": _accuracy(single, Xt, yt),
            "test_top3": _accuracy(ensemble, Xt, yt), "wall_s": wall}


#: What each model cell of :func:`table` holds (medians over seeds).
CELL = ("val acc / test acc of the best trial / test acc of the deployed ensemble (k=3) / "
        "wall s")


def table(rows: list[dict[str, Any]]) -> str:
    """One row per method, one column per model; each cell is :data:`CELL`. A method's advisor
    is named in its row when it is the same for every model, else in each of its cells."""
    models = sorted({r["model"] for r in rows})
    methods = sorted({r["method"] for r in rows}, key=METHODS.index)
    lines = ["| method | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for method in methods:
        advisors = sorted({r["advisor"] for r in rows if r["method"] == method})
        uniform = len(advisors) == 1
        cells = [f"{method} ({advisors[0]})" if uniform else method]
        for model in models:
            rs = [r for r in rows if (r["model"], r["method"]) == (model, method)]
            if not rs:
                cells.append("-")
                continue

            def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
                return statistics.median(r[key] for r in rs)

            cell = (f"{med('val'):.4f} / {med('test_best'):.4f} / {med('test_top3'):.4f} / "
                    f"{med('wall_s'):.1f}")
            if not uniform:
                cell += f" ({rs[0]['advisor']})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ensemble_summary(rows: list[dict[str, Any]]) -> str:
    """One generated sentence: in how many runs the deployed ensemble scored at least as well
    on the test split as the single best trial, and the runs where it did not."""
    worse = [r for r in rows if r["test_top3"] < r["test_best"]]
    text = (f"Deployed ensemble >= best single trial on the test split in "
            f"{len(rows) - len(worse)} of {len(rows)} runs")
    if worse:
        text += "; below it in: " + ", ".join(
            f"{r['model']} {r['method']} seed {r['seed']} ({r['test_top3']:.4f} < "
            f"{r['test_best']:.4f})" for r in worse)
    return text + "."


def section(rows: list[dict[str, Any]], trials: int, seeds: int) -> list[str]:
    """The section's lines after the report header: what was run, the table, the ensemble."""
    return [(f"{trials} trials per run (one at a time), {seeds} seed(s), medians over seeds; "
             f"accuracy on a held-out test split of digits. Each cell: {CELL}."), "",
            table(rows), "", ensemble_summary(rows)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="SkDt, 4 trials, 1 seed")
    ap.add_argument("--models", nargs="+", default=["SkDt", "SkSvm", "PyFeedForward"])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--write", action="store_true",
                    help="write the rafiki_advisors section of the results page")
    ap.add_argument("--results", default=str(RESULTS), help="the results page to write")
    args = ap.parse_args(argv)
    report = Report(SECTION, argv, quick=args.quick, full_command=FULL_COMMAND)
    if args.quick:
        args.models, args.trials, args.seeds = ["SkDt"], 4, 1
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    init = {"address": "local", "num_cpus": 2, "include_dashboard": False,
            "log_to_driver": False, "configure_logging": False}
    ray.init(**init)
    rows = []
    with tempfile.TemporaryDirectory() as storage:
        for model in args.models:
            for seed in range(args.seeds):
                for method in args.methods:
                    report.check_ray(init, f"{model} {method} seed {seed}")
                    r = run_one(model, method, seed, args.trials, storage)
                    print(f"{model} {method} seed {seed}: val {r['val']:.4f} "
                          f"test {r['test_best']:.4f} top3 {r['test_top3']:.4f} "
                          f"{r['wall_s']:.1f} s", flush=True)
                    rows.append(r)
    ray.shutdown()
    print(table(rows))
    if args.write:
        report.write("\n".join(report.header() + section(rows, args.trials, args.seeds)),
                     Path(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
