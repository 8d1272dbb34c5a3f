"""Search quality of rafiki_ray's searchers against Optuna, hyperopt (through Ray), skopt and random.

All methods run side by side through the same ask/tell loop (``_methods.py``) on:

1. synthetic problems with known optima (``_problems.py``): Branin, Hartmann6 and a mixed
   integer / categorical / conditional problem; 50 sequential evaluations; median simple
   regret over the seeds;
2. parallel: each method with batches of 8 (its default batch strategy) and with 8
   asynchronous workers (each suggestion asked with 7 trials pending, as in Tune) vs
   sequential, regret after 48;
3. milliseconds per suggestion (tell + ask) at 50 and 200 observations (Hartmann6);
4. a bayesmark-style suite (scikit-learn models x bundled data sets x metrics, 16 iterations
   x batch 8); score = 100 * (1 - mean normalised regret), normalised per problem by the
   best loss any method found (opt) and the median loss of a random evaluation (clip).

    python benchmarks/search_quality.py --quick        # smoke test, seconds
    python benchmarks/search_quality.py --jobs 2       # the default run (writes RESULTS.md)
    python benchmarks/search_quality.py --full-bayesmark   # all 9 models x 5 data sets

The tables are printed and written between the ``search_quality`` markers of RESULTS.md
(a ``--quick`` run only with ``--write``, marked as quick-mode figures).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._methods import available_methods
from benchmarks._problems import DATASETS, MODELS, sklearn_problems, synthetic_problems
from benchmarks._report import RESULTS, Report, write_section

SECTION = "search_quality"
FULL_COMMAND = ("python benchmarks/search_quality.py --jobs 2 "
                "--method-seeds skopt-gp_minimize=3,optuna-GP=5,bayes_opt-GP=5")


# ----------------------------------------------------------------------------- one run


def run_one(method: str, problem: Any, seed: int, budget: int, batch: int) -> list[float]:
    """Losses in evaluation order (NaN losses reported to the method as a large value)."""
    m = available_methods()[method]
    drv = m.make(problem.space, seed)
    losses: list[float] = []
    while len(losses) < budget:
        k = min(batch, budget - len(losses))
        asked = [drv.ask() for _ in range(k)] if not hasattr(drv, "ask_batch") else drv.ask_batch(k)
        for token, cfg in asked:
            v = float(problem.loss(cfg))
            losses.append(v)
            drv.tell(token, v if np.isfinite(v) else 1e6)
    return losses


def run_async(method: str, problem: Any, seed: int, budget: int, workers: int) -> list[float]:
    """Losses in completion order with ``workers`` asynchronous workers, as Tune drives a
    searcher under ``max_concurrent_trials=workers``: ``workers`` trials start at once, and each
    time one completes its result is told and the next suggestion is asked while the others are
    still pending (``budget`` trials in all). Trial durations are i.i.d. U(0.5, 1.5) from a
    generator seeded by ``seed`` alone, so every method sees the same durations in launch order."""
    drv = available_methods()[method].make(problem.space, seed)
    dur = np.random.default_rng([seed, 1])
    running: list[tuple[float, int, Any, float]] = []
    losses: list[float] = []
    launched = 0

    def launch(now: float) -> None:
        nonlocal launched
        token, cfg = drv.ask()
        heapq.heappush(running, (now + float(dur.uniform(0.5, 1.5)), launched, token, float(problem.loss(cfg))))
        launched += 1

    for _ in range(min(workers, budget)):
        launch(0.0)
    while running:
        now, _, token, v = heapq.heappop(running)
        losses.append(v)
        drv.tell(token, v if np.isfinite(v) else 1e6)
        if launched < budget:
            launch(now)
    return losses


def run(method: str, problem: Any, seed: int, budget: int, batch: int) -> list[float]:
    """:func:`run_one` with batches of ``batch``; ``batch < 0``: :func:`run_async` with
    ``-batch`` asynchronous workers."""
    if batch < 0:
        return run_async(method, problem, seed, budget, -batch)
    return run_one(method, problem, seed, budget, batch)


def _job(args: tuple[str, str, int, int, int, str]) -> tuple[str, str, int, int, list[float], float]:
    method, pname, seed, budget, batch, kind = args
    problem = _problem(pname, kind, seed)
    t0 = time.process_time()
    losses = run(method, problem, seed, budget, batch)
    return method, pname, seed, batch, losses, time.process_time() - t0


_SKL_CACHE: dict[tuple[str, int], Any] = {}


def _problem(name: str, kind: str, seed: int) -> Any:
    """Synthetic problems by name; bayesmark-style ones with the repeat's train/test split."""
    if kind == "synthetic":
        return {p.name: p for p in synthetic_problems()}[name]
    if (name, seed) not in _SKL_CACHE:
        model, dataset, metric = name.split("-")[0:-2], name.split("-")[-2], name.split("-")[-1]
        from benchmarks._problems import SklearnProblem

        _SKL_CACHE[(name, seed)] = SklearnProblem("-".join(model), dataset, metric, split_seed=seed)
    return _SKL_CACHE[(name, seed)]


#: Methods whose jobs take longest: started first, so the pool does not end on one of them.
_SLOW_METHODS = ("skopt-gp_minimize", "bayes_opt-GP", "optuna-GP")


def run_jobs(jobs: list[tuple[Any, ...]], n_jobs: int) -> list[tuple[Any, ...]]:
    """Run the jobs, slowest methods first (in worker processes when ``n_jobs > 1``), logging
    progress to stderr."""
    jobs = sorted(jobs, key=lambda j: j[0] not in _SLOW_METHODS)
    out = []
    if n_jobs <= 1:
        it: Any = map(_job, jobs)
        ex = None
    else:
        ex = ProcessPoolExecutor(n_jobs)
        it = ex.map(_job, jobs, chunksize=1)
    t0 = time.time()
    for i, r in enumerate(it, 1):
        out.append(r)
        print(f"[{time.time() - t0:6.0f}s] {i}/{len(jobs)} {r[0]} {r[1]} seed {r[2]}", file=sys.stderr, flush=True)
    if ex is not None:
        ex.shutdown()
    return out


# ----------------------------------------------------------------------------- timing


def time_suggestion(method: str, n_obs: int, reps: int = 3) -> float:
    """Median CPU-ms of ``tell(last) + ask()`` after ``n_obs`` random Hartmann6 observations."""
    problem = {p.name: p for p in synthetic_problems()}["hartmann6"]
    rng = np.random.default_rng(0)
    cfgs = [problem.space.sample(rng) for _ in range(n_obs + reps)]
    losses = [problem.loss(c) for c in cfgs]
    drv = available_methods()[method].make(problem.space, 0)
    try:
        drv.inject(cfgs[: n_obs - 1], losses[: n_obs - 1])
        pending = None
    except NotImplementedError:  # run the loop instead (cheap methods only)
        for _ in range(n_obs - 1):
            tok, cfg = drv.ask()
            drv.tell(tok, problem.loss(cfg))
        pending = None
    out = []
    tok, cfg = drv.ask()
    pending = (tok, problem.loss(cfg))
    for _ in range(reps):
        t0 = time.process_time()
        drv.tell(*pending)
        tok, cfg = drv.ask()
        out.append(time.process_time() - t0)
        pending = (tok, problem.loss(cfg))
    return 1000 * float(np.median(out))


def _time_job(args: tuple[str, int]) -> float:
    return time_suggestion(*args)


# ----------------------------------------------------------------------------- scoring


def bayesmark_scores(results: dict[tuple[str, str, int], list[float]], random_name: str = "random") -> dict[str, float]:
    """100 * (1 - mean over problems and repeats of the normalised regret after the last
    batch, clipped to [-1, 1]); per (problem, repeat): opt = best loss any method saw,
    clip = median loss of the random method's evaluations."""
    methods = sorted({m for m, _, _ in results})
    per: dict[str, list[float]] = {m: [] for m in methods}
    for p, r in sorted({(p, r) for _, p, r in results}):
        runs = {m: np.asarray(v, dtype=float) for (m, q, k), v in results.items() if (q, k) == (p, r)}
        allv = np.concatenate(list(runs.values()))
        allv = allv[np.isfinite(allv)]
        if not allv.size:
            raise ValueError(f"bayesmark problem {p} (repeat {r}): every loss of every method is "
                             "NaN or infinite; the problem is broken")
        opt = float(allv.min())
        rand = runs.get(random_name, allv)
        rand = rand[np.isfinite(rand)]
        clip = float(np.median(rand if rand.size else allv))
        for m, v in runs.items():
            best = float(np.min(np.where(np.isfinite(v), v, np.inf)))
            norm = (best - opt) / (clip - opt) if clip > opt else 0.0
            per[m].append(float(np.clip(norm, -1.0, 1.0)))
    return {m: 100.0 * (1.0 - float(np.mean(v))) for m, v in per.items() if v}


# ----------------------------------------------------------------------------- report


def fmt(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.2g}" if abs(x) < 0.01 and x != 0 else f"{x:.3g}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, short budgets, tiny suite")
    ap.add_argument("--seeds", type=int, default=10, help="seeds for the synthetic problems")
    ap.add_argument(
        "--method-seeds", default="",
        help="fewer seeds for slow methods, e.g. skopt-gp_minimize=3,optuna-GP=5",
    )
    ap.add_argument("--methods", default="", help="comma-separated subset of methods")
    ap.add_argument(
        "--par-methods", default="GPSearch,TPESearch,optuna-TPE,optuna-GP,skopt-gp_minimize",
        help="methods of the parallel part (only those also in --methods)",
    )
    ap.add_argument("--no-async", action="store_true", help="parallel part: batches only, no asynchronous workers")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--bm-models", default="kNN,SVM,DT,linear", help="bayesmark models")
    ap.add_argument("--bm-datasets", default="iris,wine,diabetes", help="bayesmark data sets")
    ap.add_argument("--bm-repeats", type=int, default=2)
    ap.add_argument("--full-bayesmark", action="store_true", help="all 9 models x 5 data sets x 2 metrics")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: synthetic,parallel,timing,bayesmark")
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    ap.add_argument("--write", action="store_true", help="write RESULTS.md even with --quick")
    ap.add_argument("--results", default=str(RESULTS), help="the results page to write")
    ap.add_argument("--save-text", default="", help="also save this run's text to a file")
    ap.add_argument(
        "--write-from", nargs="+", default=None,
        help="write RESULTS.md's section from texts saved by earlier runs (parts run concurrently)",
    )
    args = ap.parse_args(argv)
    if args.write_from:
        text = "\n\n".join(Path(f).read_text().rstrip() for f in args.write_from)
        write_section(SECTION, text, Path(args.results))
        print(text)
        return 0

    named = available_methods()
    methods = [name for name, m in named.items() if not m.by_name_only]
    if args.methods:
        methods = [m for m in args.methods.split(",") if m]
    skip = set(filter(None, args.skip.split(",")))
    budget = 50
    seeds = list(range(2 if args.quick else args.seeds))
    if args.quick:
        budget = 12
        if not args.methods:
            methods = [m for m in methods if m != "skopt-gp_minimize"]
    report = Report(SECTION, argv, quick=args.quick, full_command=FULL_COMMAND)
    lines: list[str] = []
    out = lines.append

    # 1. synthetic ---------------------------------------------------------------------
    synth = [p.name for p in synthetic_problems()]
    reg: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    if "synthetic" not in skip:
        n_seeds = {m: len(seeds) for m in methods}
        for item in filter(None, args.method_seeds.split(",")):
            name, n = item.split("=")
            n_seeds[name] = min(int(n), len(seeds))
        jobs = [(m, p, s, budget, 1, "synthetic") for p in synth for m in methods for s in seeds[: n_seeds[m]]]
        opt = {p.name: p for p in synthetic_problems()}
        for m, p, s, _, losses, t in run_jobs(jobs, args.jobs):
            reg.setdefault((m, p), []).append(opt[p].regret(float(np.nanmin(losses))))
            cpu.setdefault((m, p), []).append(1000 * t / budget)
        out(
            f"### Synthetic: median simple regret after {budget} evaluations, {len(seeds)} seeds "
            + "".join(f"({n} for {m}) " for m, n in n_seeds.items() if n != len(seeds))
            + "(IQR in brackets)"
            + ("" if "timing" in skip else
               "; CPU milliseconds per suggestion (tell + ask, Hartmann6, median of 3)")
            + "\n"
        )
        synth_table = len(lines)  # the timing part adds its columns to this table
        out("| method | " + " | ".join(synth) + " | CPU ms per trial (loop, median) |")
        out("|---|" + "---|" * (len(synth) + 1))
        for m in methods:
            cells = []
            for p in synth:
                r = np.asarray(reg[(m, p)])
                cells.append(f"{fmt(np.median(r))} [{fmt(np.percentile(r, 25))}, {fmt(np.percentile(r, 75))}]")
            c = np.median([np.median(cpu[(m, p)]) for p in synth])
            out(f"| {m} | " + " | ".join(cells) + f" | {c:.1f} |")
        out("")

    # 2. parallel ----------------------------------------------------------------------
    par_methods = [m for m in args.par_methods.split(",")
                   if m in methods or (m in named and named[m].by_name_only)]
    if "parallel" not in skip and par_methods:
        pb = 16 if args.quick else 48
        modes = (1, 8) if args.no_async else (1, 8, -8)
        jobs = [
            (m, p, s, pb, b, "synthetic")
            for m in par_methods for p in ("branin", "hartmann6") for b in modes for s in seeds
            if b > 0 or named[m].async_ok
        ]
        opt = {p.name: p for p in synthetic_problems()}
        par: dict[tuple[str, str, int], list[float]] = {}
        for m, p, s, b, losses, _t in run_jobs(jobs, args.jobs):
            par.setdefault((m, p, b), []).append(opt[p].regret(float(np.nanmin(losses))))
        out(
            f"### Parallel: median regret after {pb} evaluations, {len(seeds)} seeds, sequential vs batches of 8 "
            + ("" if args.no_async else "vs 8 asynchronous workers ")
            + "(each method's default batch strategy; peers: Optuna 5's TPESampler has "
            "constant_liar=True by default, optuna-GP handles running trials as Optuna does, "
            "skopt-gp_minimize asks its batch with its default constant liar cl_min"
            + ("" if args.no_async else
               "; asynchronous: each trial takes U(0.5, 1.5) time units and each completion is told "
               "before the next suggestion is asked with the other 7 still pending, as Tune does "
               "with max_concurrent_trials=8; skopt's ask/tell has no pending trials, so n/a")
            + ")\n"
        )
        if args.no_async:
            out("| method | problem | sequential | batch 8 | ratio (target <= 1.5) |")
            out("|---|---|---|---|---|")
        else:
            out("| method | problem | sequential | batch 8 | ratio (target <= 1.5) | async 8 | ratio |")
            out("|---|---|---|---|---|---|---|")
        for m in par_methods:
            for p in ("branin", "hartmann6"):
                a, b8 = float(np.median(par[(m, p, 1)])), float(np.median(par[(m, p, 8)]))
                row = f"| {m} | {p} | {fmt(a)} | {fmt(b8)} | {b8 / a if a > 0 else float('nan'):.2f} |"
                if not args.no_async:
                    if (m, p, -8) in par:
                        a8 = float(np.median(par[(m, p, -8)]))
                        row += f" {fmt(a8)} | {a8 / a if a > 0 else float('nan'):.2f} |"
                    else:
                        row += " n/a | n/a |"
                out(row)
        out("")

    # 3. timing ------------------------------------------------------------------------
    if "timing" not in skip:
        sizes = (20, 50) if args.quick else (50, 200)
        tjobs = [(m, n) for m in methods for n in sizes]
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs) as ex:
                tres = list(ex.map(_time_job, tjobs))
        else:
            tres = [_time_job(j) for j in tjobs]
        tt = dict(zip(tjobs, tres))
        cols = [f"ms per suggestion at {n} obs" for n in sizes]
        if "synthetic" not in skip:  # two more columns of the synthetic table
            lines[synth_table] += f" {cols[0]} | {cols[1]} |"
            lines[synth_table + 1] += "---|---|"
            for i, m in enumerate(methods):
                lines[synth_table + 2 + i] += f" {tt[(m, sizes[0])]:.1f} | {tt[(m, sizes[1])]:.1f} |"
        else:
            out("### CPU milliseconds per suggestion\n")
            out(f"| method | {cols[0]} | {cols[1]} |")
            out("|---|---|---|")
            for m in methods:
                out(f"| {m} | {tt[(m, sizes[0])]:.1f} | {tt[(m, sizes[1])]:.1f} |")
            out("")

    # 4. bayesmark-style ---------------------------------------------------------------
    if "bayesmark" not in skip:
        if args.full_bayesmark:
            models, datasets = MODELS, DATASETS
        elif args.quick:
            models, datasets = ("kNN",), ("iris",)
        else:
            models, datasets = tuple(args.bm_models.split(",")), tuple(args.bm_datasets.split(","))
        probs = sklearn_problems(models, datasets)
        if args.quick:
            probs = probs[:1]
        iters, bsz = (2, 4) if args.quick else (16, 8)
        reps = list(range(1 if args.quick else args.bm_repeats))
        bm_methods = methods if "random" in methods else methods + ["random"]
        jobs = [(m, p.name, r, iters * bsz, bsz, "sklearn") for p in probs for m in bm_methods for r in reps]
        res: dict[tuple[str, str, int], list[float]] = {}
        for m, p, r, _b, losses, _t in run_jobs(jobs, args.jobs):
            res[(m, p, r)] = losses
        if args.save_text:  # the raw losses survive a failure in the scoring below
            raw = [{"method": m, "problem": p, "repeat": r, "losses": v} for (m, p, r), v in res.items()]
            Path(args.save_text + ".bayesmark.json").write_text(json.dumps(raw))
        scores = bayesmark_scores(res)
        out(
            f"### bayesmark-style score ({len(probs)} problems: models {', '.join(models)} x data sets "
            f"{', '.join(datasets)} x their 2 metrics; {iters} iterations x batch {bsz}; {len(reps)} repeats)\n"
        )
        out("Score (100 = best seen, 0 = median random draw): " + ", ".join(
            f"{m} {scores[m]:.1f}" for m in sorted(scores, key=lambda k: -scores[k])) + ".")
        out("")

    header = report.header() + [
        ("Regret = best loss - known optimum. Methods: ours = rafiki_ray searchers with defaults; "
        "optuna TPESampler / GPSampler defaults; Ray's HyperOptSearch (hyperopt TPE); "
        "skopt Optimizer with gp_minimize's defaults; bayes_opt-GP = bayesian-optimization's "
        "BayesianOptimization with its defaults; random = the space's prior."),
        "",
    ]
    text = "\n".join(header + lines)
    print(text)
    if args.save_text:
        Path(args.save_text).write_text(text)
    if not args.no_write and (not args.quick or args.write):
        report.write(text, Path(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
