"""Per-trial overhead of rafiki_ray's searchers and schedulers against vanilla Ray Tune.

The same short trials (a function trainable that computes a cheap score and reports it
``--iters`` times, each report with a tiny checkpoint, so that pausing schedulers can resume
it) run, one configuration after the other in one Ray instance, under:

* vanilla Tune: ``FIFOScheduler`` + Tune's random search (``BasicVariantGenerator``);
* each of our searchers (``GPSearch``, ``TPESearch``, ``EvolutionSearch``) with FIFO, with
  Tune's defaults and again with ``max_concurrent_trials=4`` (twice the 2 slots): Tune keeps
  one trial pending for any ``Searcher`` unless that is set, and then that many;
* each of our schedulers (``ASHA``, ``SuccessiveHalving``, ``Hyperband``, ``MedianStopping``,
  ``CurveFitting``, ``PBT``) with Tune's random search; every one with its defaults
  (``ASHA`` pauses and resumes; ``persist=True`` writes its crash state);
* a reference row, not ours: Ray's own ``PopulationBasedTraining`` (the scheduler ``PBT`` is a
  drop-in for) with the same ``perturbation_interval``, quantile fraction and mutations (the
  space's Tune domains), so that PBT's cost shows against what Ray's PBT costs as well. Both
  time-share 2 slots between 200 members (pause at every decision while trials wait) and
  restart exploited members from a top member's checkpoint; that much is PBT, not overhead;
* a reference random ``Searcher`` at no cost of its own (both settings): Tune's searcher path
  itself, which every searcher pays (vanilla Tune's ``BasicVariantGenerator`` pre-generates
  its trials).

All use the same space, ``reuse_actors=True``, 1 CPU per trial; a short unrecorded vanilla
run first starts Ray's worker processes, so that no configuration pays for that. The costs are
compared with vanilla Tune's per trial (the issue's unit; schedulers that stop trials early
also report fewer results) and per reported result: wall time, and the driver's CPU time (where
Tune's controller, the searcher and the scheduler run). The last column is the time spent
inside the searcher's and the scheduler's own methods that Tune calls (``suggest``,
``on_trial_result``, ``choose_trial_to_run``, ``save``, ...), timed in the same run: the part
of the overhead that is the component's own code rather than Tune's path or the machine's noise.
With ``--repeats R`` the configurations run in R rounds, each round in its own shuffled order
(seeded), so that a slow spell of the machine does not always fall on the same configuration; a
"vs" column is then the median over rounds of the ratio to the reference *in the same round*
(paired: the machine's drift between rounds cancels), the other columns are medians.

    python benchmarks/overhead.py --quick     # smoke test: 16 trials each, about 3 minutes
    python benchmarks/overhead.py             # 200 trials each, writes RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import RESULTS, Report

NAME = "overhead"
FULL_COMMAND = "python benchmarks/overhead.py --trials 200 --repeats 5"
VANILLA = "vanilla Tune (FIFO + random)"
#: Ray's PopulationBasedTraining: shown for reference, not one of ours (no verdict).
RAY_PBT = "Ray PBT (reference)"
#: A random searcher with no cost of its own, through Tune's ``Searcher`` path (its
#: ``SearchGenerator``): the reference for our searchers' wall time, where vanilla Tune's
#: ``BasicVariantGenerator`` pre-generates its trials.
SEARCHER_PATH = "random Searcher (reference)"
#: Our searchers, each run with Tune's FIFO (and compared with the searcher-path reference).
SEARCHERS = ("GPSearch", "TPESearch", "EvolutionSearch")
#: Tune keeps one trial pending for a ``Searcher`` (Ray's and ours alike) unless
#: ``TuneConfig(max_concurrent_trials=N)`` is set, and then N (the ConcurrencyLimiter it wraps
#: the searcher in): the searcher rows run again with N = twice the 2 slots, so that a
#: suggestion is ready when a slot frees.
AHEAD = 4
AHEAD_SUFFIX = f", max_concurrent_trials={AHEAD}"
SEARCHER_PATH_AHEAD = f"random Searcher{AHEAD_SUFFIX} (reference)"
REFERENCES = (RAY_PBT, SEARCHER_PATH, SEARCHER_PATH_AHEAD)
#: PBT's decision interval (``training_iteration`` units), the same for ours and Ray's.
PBT_INTERVAL = 3
#: The issue's target: our cost per result within 10 % of vanilla Tune's.
TARGET = 0.10


def space() -> Any:
    """The space every configuration searches (a rafiki_ray ``SearchSpace``)."""
    from rafiki_ray import CategoricalKnob, FloatKnob, IntegerKnob, from_knobs

    return from_knobs({
        "x": FloatKnob(-5.0, 5.0),
        "lr": FloatKnob(1e-4, 1.0, is_exp=True),
        "width": IntegerKnob(8, 64),
        "act": CategoricalKnob(["relu", "tanh", "gelu"]),
    })


def trainable(config: dict[str, Any], iters: int = 9) -> None:
    """A short trial: a cheap deterministic score, reported ``iters`` times with a checkpoint;
    resumes from its checkpoint (pausing schedulers, PBT)."""
    import math

    from ray import tune

    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "it")) as f:
            start = int(f.read())
    quality = (1.0 - (config["x"] - 1.0) ** 2 / 36.0 - abs(math.log10(config["lr"]) + 2) / 8
               + config["width"] / 640 + (0.05 if config["act"] == "gelu" else 0.0))
    for it in range(start + 1, iters + 1):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "it"), "w") as f:
                f.write(str(it))
            tune.report({"score": quality * (1 - 0.5 ** it)},
                        checkpoint=tune.Checkpoint.from_directory(d))


Factory = Callable[[int, int], tuple[Any, Any]]  # (iters, seed) -> (searcher, scheduler)


def _searcher(cls_name: str) -> Factory:
    def make(iters: int, seed: int) -> tuple[Any, Any]:
        import rafiki_ray.searchers as S

        return getattr(S, cls_name)(seed=seed), None

    return make


def _scheduler(cls_name: str, **kw: Any) -> Factory:
    def make(iters: int, seed: int) -> tuple[Any, Any]:
        import rafiki_ray.schedulers as S

        sub = {"ITERS": iters, "SPACE": space()}
        args = {k: sub.get(v, v) if isinstance(v, str) else v for k, v in kw.items()}
        return None, getattr(S, cls_name)(seed=seed, **args)

    return make


def _ray_pbt(iters: int, seed: int) -> tuple[Any, Any]:
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search.sample import Categorical

    # Ray's documented form: numeric domains, categorical choices as a list (Ray perturbs a
    # categorical Domain by multiplying it)
    mutations = {k: list(d.categories) if isinstance(d, Categorical) else d
                 for k, d in space().to_tune().items()}

    # time_attr and quantile_fraction as our PBT's defaults (Ray's are time_total_s, under
    # which 3 s would never be reached here, and 0.25); Ray's PBT draws from Python's global
    # random module, it takes no seed
    return None, PopulationBasedTraining(time_attr="training_iteration",
                                         perturbation_interval=PBT_INTERVAL,
                                         hyperparam_mutations=mutations,
                                         quantile_fraction=0.2)


def _searcher_path(iters: int, seed: int) -> tuple[Any, Any]:
    import numpy as np
    from ray.tune.search import Searcher

    class RandomSearcher(Searcher):
        """Configurations drawn from :func:`space` by a seeded generator, nothing else."""

        def __init__(self) -> None:
            super().__init__(metric="score", mode="max")
            self.rng, self.space = np.random.default_rng(seed), space()

        def set_search_properties(self, metric: Any, mode: Any, config: Any, **spec: Any) -> bool:
            return True  # the space is its own; Tune's param_space is the same one

        def suggest(self, trial_id: str) -> dict[str, Any]:
            return self.space.sample(self.rng)

        def on_trial_complete(self, trial_id: str, result: Any = None, error: bool = False) -> None:
            pass

    return RandomSearcher(), None


CONFIGS: dict[str, Factory] = {
    VANILLA: lambda iters, seed: (None, None),
    SEARCHER_PATH: _searcher_path,
    **{name: _searcher(name) for name in SEARCHERS},
    SEARCHER_PATH_AHEAD: _searcher_path,
    **{name + AHEAD_SUFFIX: _searcher(name) for name in SEARCHERS},
    "ASHA": _scheduler("ASHA", max_t="ITERS", grace_period=1, reduction_factor=3),
    "SuccessiveHalving": _scheduler("SuccessiveHalving", min_resource=1, max_resource="ITERS",
                                    reduction_factor=3),
    "Hyperband": _scheduler("Hyperband", max_iter="ITERS", eta=3),
    "MedianStopping": _scheduler("MedianStopping"),
    "CurveFitting": _scheduler("CurveFitting", epoch_num="ITERS"),
    "PBT": _scheduler("PBT", space="SPACE", perturbation_interval=PBT_INTERVAL),
    RAY_PBT: _ray_pbt,
}
#: Extra ``TuneConfig`` arguments of a configuration.
TUNE_CONFIG = {name: {"max_concurrent_trials": AHEAD} for name in CONFIGS
               if name.endswith(AHEAD_SUFFIX) or name == SEARCHER_PATH_AHEAD}


#: The methods Tune calls on a searcher or a scheduler, timed as the component's own cost.
TIMED = ("suggest", "on_trial_result", "on_trial_complete", "on_trial_add", "on_trial_error",
         "on_trial_remove", "choose_trial_to_run", "save", "restore", "set_search_properties")


class _Timed:
    """One bound method that adds its wall time to ``clock[0]`` (outermost calls only:
    ``clock[1]`` is the nesting depth, so a method calling another is counted once)."""

    def __init__(self, fn: Callable[..., Any], clock: list[float]) -> None:
        self.fn, self.clock = fn, clock

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.clock[1] += 1
        t = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.clock[1] -= 1
            if not self.clock[1]:
                self.clock[0] += time.perf_counter() - t


def time_calls(*components: Any) -> list[float]:
    """Time the :data:`TIMED` methods of ``components`` (those not ``None``) into one clock,
    ``[seconds, depth]``, by wrapping them on the instances."""
    clock = [0.0, 0.0]
    for obj in components:
        for name in TIMED if obj is not None else ():
            fn = getattr(obj, name, None)
            if callable(fn):
                setattr(obj, name, _Timed(fn, clock))
    return clock


def run_one(name: str, trials: int, iters: int, seed: int, storage: str) -> dict[str, Any]:
    """One configuration: ``trials`` trials; wall and driver CPU seconds, results, errors."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    searcher, scheduler = CONFIGS[name](iters, seed)
    clock = time_calls(searcher, scheduler) if name != VANILLA else None
    if searcher is None:
        searcher = BasicVariantGenerator(random_state=seed)
    param_space = space().to_tune()
    run_dir = tempfile.mkdtemp(prefix="overhead_", dir=storage)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, iters=iters), {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(metric="score", mode="max", num_samples=trials,
                                    search_alg=searcher, scheduler=scheduler,
                                    reuse_actors=True, **TUNE_CONFIG.get(name, {})),
        run_config=tune.RunConfig(storage_path=run_dir, name="run", verbose=0),
    )
    c0, t0 = time.process_time(), time.perf_counter()
    grid = tuner.fit()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    results = sum(int(r.metrics.get("training_iteration", 0)) for r in grid if r.metrics)
    exploits = _exploits(scheduler)
    store = getattr(scheduler, "store", None)
    if store is not None:  # PBT's ParamStore: one per run, not left behind
        store.shutdown()
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"name": name, "trials": len(grid), "results": results, "wall": wall, "cpu": cpu,
            "errors": sum(1 for r in grid if r.error), "exploits": exploits,
            "own": clock[0] if clock is not None else None}


def _exploits(scheduler: Any) -> int | None:
    """How many exploits a PBT scheduler made (ours: ``num_exploits``; Ray's: the
    "N perturbs" of its public ``debug_string()``), else None."""
    n = getattr(scheduler, "num_exploits", None)
    if n is not None:
        return int(n)
    found = re.search(r"(\d+) perturbs", scheduler.debug_string()) if scheduler else None
    return int(found.group(1)) if found else None


def _median(runs: list[dict[str, Any]], key: str, per: str) -> float:
    return statistics.median(r[key] / max(r[per], 1) for r in runs)


def _ratio(rs: list[dict[str, Any]], ref: list[dict[str, Any]], key: str, per: str) -> float:
    """Median over rounds of ``rs``'s ``key`` per ``per`` over ``ref``'s in the same round."""
    return statistics.median((r[key] / max(r[per], 1)) / (b[key] / max(b[per], 1))
                             for r, b in zip(rs, ref))


def _rel(x: float, vanilla: bool = False) -> str:
    """A ratio as a signed percentage ("-" for vanilla's own row)."""
    return "-" if vanilla else f"{100 * (x - 1):+.0f} %"


def table(runs: dict[str, list[dict[str, Any]]], trials: int, iters: int) -> list[str]:
    """The Markdown table and the target check, from the runs of every configuration."""
    base = runs[VANILLA]
    paired = " (median of the ratios in each round)" if len(base) > 1 else ""
    out = [
        (f"{trials} trials x up to {iters} results each (1 CPU per trial, reuse_actors=True), "
         f"{len(base)} round(s), medians; relative to vanilla Tune{paired}:"),
        "",
        ("| configuration | trials | results | errors | wall s | wall ms per trial | vs vanilla "
         "| wall ms per result | vs vanilla | driver CPU ms per result | vs vanilla "
         "| own calls ms per trial |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for name, rs in runs.items():
        v = name == VANILLA
        t, r, c = (_median(rs, "wall", "trials"), _median(rs, "wall", "results"),
                   _median(rs, "cpu", "results"))
        vt = _ratio(rs, base, "wall", "trials")
        out.append(
            f"| {name} | {rs[0]['trials']} | {statistics.median(x['results'] for x in rs):.0f} "
            f"| {sum(x['errors'] for x in rs)} | {statistics.median(x['wall'] for x in rs):.1f} "
            f"| {1e3 * t:.0f} | {_rel(vt, v)} | {1e3 * r:.0f} "
            f"| {_rel(_ratio(rs, base, 'wall', 'results'), v)} "
            f"| {1e3 * c:.1f} | {_rel(_ratio(rs, base, 'cpu', 'results'), v)} | {_own(rs)} |")
        if not v and name not in REFERENCES:  # a reference is not ours: no verdict
            verdicts.append((name, vt - 1))
    ok = [n for n, x in verdicts if x <= TARGET]
    miss = [f"{n} ({100 * x:+.0f} %)" for n, x in verdicts if x > TARGET]
    out += ["", (f"Within {100 * TARGET:.0f} % of vanilla Tune's wall time per trial: "
                 f"{', '.join(ok) or 'none'}; beyond it: {', '.join(miss) or 'none'}.")]
    for path, suffix in ((SEARCHER_PATH, ""), (SEARCHER_PATH_AHEAD, AHEAD_SUFFIX)):
        searchers = [n + suffix for n in SEARCHERS if n + suffix in runs]
        if path in runs and searchers:
            ref = runs[path]
            out += ["", (f"Against the {path}, the same Tune searcher path at no cost of its "
                         f"own ({_rel(_ratio(ref, base, 'wall', 'trials'))} against vanilla), "
                         "wall per trial: " + ", ".join(
                             f"{n} {_rel(_ratio(runs[n], ref, 'wall', 'trials'))}"
                             for n in searchers) + ".")]
    if len(base) > 1:
        out += ["", _noise(runs)]
    pbt = [n for n in ("PBT", RAY_PBT) if n in runs]
    if pbt:
        out += ["", "Exploits (median): " + "; ".join(
            f"{n} {_median_exploits(runs[n])}" for n in pbt) + "."]
    if len(pbt) == 2:
        ours, ray_ = runs["PBT"], runs[RAY_PBT]
        out[-1] += (f" PBT against {RAY_PBT}: wall per trial "
                    f"{_rel(_ratio(ours, ray_, 'wall', 'trials'))}, driver CPU per result "
                    f"{_rel(_ratio(ours, ray_, 'cpu', 'results'))}.")
    return out


def _noise(runs: dict[str, list[dict[str, Any]]]) -> str:
    """How much the machine moved between rounds: vanilla's wall time in each, and each
    configuration's wall time over vanilla's in the same round (lowest to highest)."""
    base = [r["wall"] for r in runs[VANILLA]]
    spans = []
    for name, rs in runs.items():
        if name != VANILLA:
            ratios = [r["wall"] / b for r, b in zip(rs, base)]
            spans.append(f"{name} {min(ratios):.2f}-{max(ratios):.2f}")
    return ("Round to round: vanilla Tune's wall " + ", ".join(f"{b:.1f}" for b in base)
            + " s; each configuration's wall over vanilla's in the same round: " + "; ".join(spans)
            + ". Where these spans are wide, the wall columns carry the machine's noise; the "
            "own-calls column does not.")


def _own(runs: list[dict[str, Any]]) -> str:
    """Median ms per trial spent in the component's own methods ("-" when not timed)."""
    found = [r["own"] / max(r["trials"], 1) for r in runs if r.get("own") is not None]
    return f"{1e3 * statistics.median(found):.1f}" if found else "-"


def _median_exploits(runs: list[dict[str, Any]]) -> str:
    found = [r["exploits"] for r in runs if r.get("exploits") is not None]
    return f"{statistics.median(found):.0f}" if found else "-"


#: Short names for ``--only``.
ONLY_ALIASES = {"vanilla": VANILLA, "RayPBT": RAY_PBT, "RandomSearcher": SEARCHER_PATH,
                "RandomSearcherAhead": SEARCHER_PATH_AHEAD,
                **{f"{n}Ahead": n + AHEAD_SUFFIX for n in SEARCHERS}}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 16 trials each, 1 repeat; writes only with --write")
    ap.add_argument("--trials", type=int, default=None, help="trials per configuration (200)")
    ap.add_argument("--iters", type=int, default=9, help="results per trial at most (9)")
    ap.add_argument("--repeats", type=int, default=None, help="rounds, each in a shuffled order (1)")
    ap.add_argument("--only", default="",
                    help=(f"comma-separated configurations (vanilla always runs): "
                          f"{', '.join(CONFIGS)}; short names: {', '.join(ONLY_ALIASES)}"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", default=str(RESULTS), help="the results page to write")
    ap.add_argument("--write", action="store_true", help="write the results page even with --quick")
    ap.add_argument("--no-write", action="store_true", help="do not write the results page")
    args = ap.parse_args(argv)
    trials = args.trials or (16 if args.quick else 200)
    repeats = args.repeats or 1
    names = list(CONFIGS)
    if args.only:
        wanted = [ONLY_ALIASES.get(n.strip(), n.strip()) for n in args.only.split(",")
                  if n.strip()]
        unknown = [n for n in wanted if n not in CONFIGS]
        if unknown:
            ap.error(f"--only: unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
        names = [VANILLA] + [n for n in CONFIGS if n in wanted and n != VANILLA]
    if trials < 2 or args.iters < 1 or repeats < 1:
        ap.error(f"--trials must be >= 2, --iters and --repeats >= 1, got {trials}, "
                 f"{args.iters}, {repeats}")
    report = Report(NAME, argv, quick=args.quick, full_command=FULL_COMMAND)

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    started_ray = not ray.is_initialized()
    init = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False}
    if started_ray:
        ray.init(**init)
    storage = tempfile.mkdtemp(prefix="rafiki_overhead_")
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    try:
        run_one(VANILLA, min(trials, 4), args.iters, args.seed, storage)  # warm-up, not recorded
        order = random.Random(args.seed)
        for rep in range(repeats):
            # each round in its own order: a slow spell does not always hit the same ones
            for name in order.sample(names, len(names)) if repeats > 1 else names:
                # every configuration on all of Ray's CPUs (a slot leaked by an earlier one
                # would slow down every later one)
                if report.check_ray(init if started_ray else None, f"{name}, round {rep + 1}"):
                    run_one(VANILLA, min(trials, 4), args.iters, args.seed, storage)  # warm-up
                r = run_one(name, trials, args.iters, args.seed + rep, storage)
                runs[name].append(r)
                report.sample_load()
                print(f"{name}: {r['trials']} trials, {r['results']} results, {r['wall']:.1f} s "
                      f"wall, {r['cpu']:.1f} s driver CPU, {r['errors']} errors", file=sys.stderr,
                      flush=True)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        if started_ray:
            ray.shutdown()
    text = "\n".join(report.header() + table(runs, trials, args.iters))
    print(text)
    if not args.no_write and (not args.quick or args.write):
        report.write(text, Path(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
