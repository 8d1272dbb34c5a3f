"""Multi-fidelity schedulers side by side on a recorded learning-curve table (simulated clock).

    python benchmarks/multi_fidelity.py            # full: W = 4 and 16, 20 seeds, RESULTS.md
    python benchmarks/multi_fidelity.py --quick    # smoke test: seconds, writes nothing

Every method is a REAL scheduler object (Ray's or ours) driven through Tune's scheduler
interface by ``benchmarks/_simulator.py`` over the table of ``benchmarks/lc_table/`` (500 MLPs
x 30 epochs on mnist1d, really trained; per-epoch validation accuracy and wall time).

Two settings (one dataclass each):

* :class:`Race` — configurations arrive in a random order (per seed) until the table is used
  up; reports the simulated time until a trial trained to the last epoch has a final metric
  within 1 % of the table's best final metric (median over seeds; ``inf`` if never), the best
  final metric of fully trained trials by a fixed budget, and the epochs used until the target.
* :class:`Savings` — the same ``n`` random configurations (per seed) for every method, run to
  the end: total epochs trained and the best final metric among fully trained trials, relative
  to FIFO on the same configurations (the early-stopping target: >= 40 % fewer epochs with
  <= 0.5 % loss in the best final metric).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._simulator import DEFAULT_TABLE, LCTable, SimResult, simulate  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
SECTION = "multi_fidelity"

Factory = Callable[[LCTable, int], tuple[Any, Any]]  # (table, seed) -> (scheduler, searcher)


# ------------------------------------------------------------------------------- methods
def _ray_asha(t: LCTable, seed: int) -> tuple[Any, Any]:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(metric=t.metric, mode=t.mode, max_t=t.epochs, grace_period=1,
                         reduction_factor=3), None


def _ray_hyperband(t: LCTable, seed: int) -> tuple[Any, Any]:
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(metric=t.metric, mode=t.mode, max_t=t.epochs,
                              reduction_factor=3), None


def _ray_median(t: LCTable, seed: int) -> tuple[Any, Any]:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(metric=t.metric, mode=t.mode, time_attr="training_iteration",
                              grace_period=1, min_samples_required=3), None


def _fifo(t: LCTable, seed: int) -> tuple[Any, Any]:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler(), None


def _asha(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import ASHA

    return ASHA(metric=t.metric, mode=t.mode, max_t=t.epochs, grace_period=1,
                reduction_factor=3, seed=seed, persist=False), None


def _sha(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import SuccessiveHalving

    return SuccessiveHalving(metric=t.metric, mode=t.mode, min_resource=1,
                             max_resource=t.epochs, reduction_factor=3, num_trials=81,
                             seed=seed, persist=False), None


def _hyperband(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import Hyperband

    return Hyperband(metric=t.metric, mode=t.mode, max_iter=t.epochs, eta=3, resume=True,
                     seed=seed, persist=False), None


def _hyperband_tpe(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.searchers import TPESearch

    sched, _ = _hyperband(t, seed)
    return sched, TPESearch(t.search_space(), metric=t.metric, mode=t.mode, seed=seed)


def _median(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import MedianStopping

    return MedianStopping(metric=t.metric, mode=t.mode, seed=seed, persist=False), None


def _curve(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import CurveFitting

    return CurveFitting(metric=t.metric, mode=t.mode, epoch_num=t.epochs, seed=seed,
                        persist=False), None


METHODS: dict[str, Factory] = {
    "FIFO random": _fifo,
    "Ray ASHAScheduler": _ray_asha,
    "Ray HyperBandScheduler": _ray_hyperband,
    "Ray MedianStoppingRule": _ray_median,
    "ASHA": _asha,
    "SuccessiveHalving": _sha,
    "Hyperband": _hyperband,
    "Hyperband + TPESearch": _hyperband_tpe,
    "MedianStopping": _median,
    "CurveFitting": _curve,
}


def available_methods() -> dict[str, Factory]:
    """Methods whose classes exist in this checkout (TPESearch comes from another issue)."""
    out = {}
    for name, make in METHODS.items():
        try:
            make(LCTable((({"lr": 0.1},)), np.zeros((1, 3)), np.ones((1, 3)),
                         space_spec={"lr": ["log", 1e-4, 0.3]}), 0)
        except (ImportError, AttributeError) as exc:
            print(f"# skipping {name}: {exc}", file=sys.stderr)
            continue
        out[name] = make
    return out


# ------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class Race:
    """Time to a configuration within ``rel`` of the table's best final metric."""

    workers: int
    seeds: int
    rel: float = 0.01
    budget_fraction: float = 0.1  # fixed budget = this x (exhaustive FIFO time on W workers)
    name: str = "race"

    def budget(self, table: LCTable) -> float:
        return float(table.epoch_time.sum()) / self.workers * self.budget_fraction


@dataclass(frozen=True)
class Savings:
    """The same ``n_trials`` random configurations for every method, run to the end."""

    workers: int
    seeds: int
    n_trials: int = 100
    name: str = "savings"


@dataclass
class Cell:
    values: dict[str, list[float]] = field(default_factory=dict)
    cpu_s: float = 0.0
    decisions: int = 0

    def add(self, key: str, v: float) -> None:
        self.values.setdefault(key, []).append(v)


def run_race(table: LCTable, s: Race, methods: dict[str, Factory]) -> dict[str, Cell]:
    target, budget = table.target(s.rel), s.budget(table)
    out: dict[str, Cell] = {}
    for name, make in methods.items():
        cell = out.setdefault(name, Cell())
        for seed in range(s.seeds):
            sched, searcher = make(table, seed)
            c0 = time.process_time()
            r = simulate(table, sched, workers=s.workers, seed=seed, searcher=searcher,
                         target=target, min_time=budget)
            cell.cpu_s += time.process_time() - c0
            cell.decisions += len(r.events)
            t_hit = r.time_to(table, target)
            cell.add("time", t_hit)
            cell.add("best_at_budget", r.best_final(table, budget))
            cell.add("epochs_to_target", r.epochs_by(t_hit) if math.isfinite(t_hit) else math.nan)
            cell.add("stranded", r.stranded)
    return out


def run_savings(table: LCTable, s: Savings, methods: dict[str, Factory]) -> dict[str, Cell]:
    out: dict[str, Cell] = {}
    for name, make in methods.items():
        cell = out.setdefault(name, Cell())
        for seed in range(s.seeds):
            sched, searcher = make(table, seed)
            c0 = time.process_time()
            r = simulate(table, sched, workers=s.workers, seed=seed, searcher=searcher,
                         max_trials=s.n_trials)
            cell.cpu_s += time.process_time() - c0
            cell.decisions += len(r.events)
            cell.add("epochs", r.total_epochs)
            cell.add("best_final", r.best_final(table))
            cell.add("time", r.end_time)
            cell.add("stranded", r.stranded)
    return out


# ------------------------------------------------------------------------------- report
def _med(xs: list[float]) -> float:
    a = np.asarray(xs, dtype=float)
    a = a[~np.isnan(a)]
    return float(np.median(a)) if len(a) else math.nan


def _fmt(x: float, nd: int = 1) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "never"
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    return f"{x:.{nd}f}"


def race_table(table: LCTable, s: Race, cells: dict[str, Cell]) -> list[str]:
    fifo = _med(cells["FIFO random"].values["time"]) if "FIFO random" in cells else math.nan
    lines = [
        f"**Race, W = {s.workers}** ({s.seeds} seeds): target final {table.metric} >= "
        f"{table.target(s.rel):.4f} (1 % below the table's best final {table.best_final():.4f}); "
        f"fixed budget {s.budget(table):.0f} simulated s.",
        "",
        "| method | median time to target (s) | speed-up vs FIFO | seeds reaching it | "
        "median epochs to target | median best final at budget | ms CPU per decision |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in cells.items():
        times = np.asarray(c.values["time"], dtype=float)
        med = float(np.median(times))
        hit = int(np.isfinite(times).sum())
        lines.append(
            f"| {name} | {_fmt(med)} | {_fmt(fifo / med, 2) if math.isfinite(med) else 'n/a'} "
            f"| {hit}/{len(times)} | {_fmt(_med(c.values['epochs_to_target']), 0)} "
            f"| {_fmt(_med(c.values['best_at_budget']), 4)} "
            f"| {_fmt(1e3 * c.cpu_s / max(c.decisions, 1), 3)} |")
    return lines


def savings_table(table: LCTable, s: Savings, cells: dict[str, Cell]) -> list[str]:
    f = cells["FIFO random"].values
    lines = [
        f"**Savings, W = {s.workers}** ({s.seeds} seeds x the same {s.n_trials} random "
        "configurations per seed for every method): epochs and best final metric vs FIFO.",
        "",
        "| method | median epochs | median epochs saved vs FIFO | median loss in best final "
        "vs FIFO | worst-seed loss | median simulated time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in cells.items():
        v = c.values
        saved = [1 - e / fe for e, fe in zip(v["epochs"], f["epochs"])]
        sign = 1.0 if table.mode == "max" else -1.0
        loss = [sign * (fb - b) / abs(fb) if not math.isnan(b) else math.inf
                for b, fb in zip(v["best_final"], f["best_final"])]
        lines.append(
            f"| {name} | {_fmt(_med(v['epochs']), 0)} | {100 * _med(saved):.1f} % "
            f"| {100 * _med(loss):.2f} % | {100 * max(loss):.2f} % | {_fmt(_med(v['time']))} |")
    return lines


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores (`nproc`), {cpu}, {platform.platform()}"


def write_section(text: str) -> None:
    begin, end = f"<!-- BEGIN {SECTION} -->", f"<!-- END {SECTION} -->"
    with open(RESULTS) as fh:
        doc = fh.read()
    if begin not in doc or end not in doc:
        doc = doc.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    tmp = RESULTS + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(head + begin + "\n" + text.rstrip("\n") + "\n" + end + tail)
    os.replace(tmp, RESULTS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, W=4, no file")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--table", default=DEFAULT_TABLE)
    p.add_argument("--methods", nargs="*", default=None, help="subset of method names")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    table = LCTable.load(args.table)
    methods = available_methods()
    if args.methods:
        methods = {k: v for k, v in methods.items() if k in args.methods or k == "FIFO random"}
    if args.quick:
        settings: list[Any] = [Race(workers=4, seeds=2), Savings(workers=4, seeds=2, n_trials=30)]
    else:
        settings = [Race(workers=w, seeds=args.seeds) for w in (4, 16)]
        settings += [Savings(workers=w, seeds=args.seeds) for w in (4, 16)]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    wall0 = time.perf_counter()
    loads = [os.getloadavg()[0]]
    blocks: list[str] = []
    for s in settings:
        t0 = time.perf_counter()
        if isinstance(s, Race):
            lines = race_table(table, s, run_race(table, s, methods))
        else:
            lines = savings_table(table, s, run_savings(table, s, methods))
        loads.append(os.getloadavg()[0])
        print("\n".join(lines), f"\n({time.perf_counter() - t0:.1f} s wall)\n", flush=True)
        blocks.append("\n".join(lines))
    wall = time.perf_counter() - wall0
    if args.quick or args.no_write:
        return 0
    meta = table.meta
    header = [
        "### Multi-fidelity schedulers on a recorded learning-curve table",
        "",
        f"- Command: `python benchmarks/multi_fidelity.py --seeds {args.seeds}`; run {started}, "
        f"{wall:.0f} s wall; machine: {machine()}; 1-min load average while it ran "
        f"{min(loads):.1f}-{max(loads):.1f} (a shared machine: the simulated times below do "
        "not depend on it, the CPU ms per decision do).",
        f"- Table: `{os.path.relpath(args.table, os.path.dirname(RESULTS))}`, {table.n} "
        f"configurations x {table.epochs} epochs, really trained by `{meta.get('command')}` "
        f"(seed {meta.get('seed')}, {meta.get('model')}); metric `{table.metric}` ({table.mode}); "
        f"per-epoch wall times as measured while recording on {meta.get('machine', {}).get('nproc')}"
        " shared cores.",
        "- Simulator: `benchmarks/_simulator.py` (real scheduler objects, Tune's scheduler "
        "interface, real `Trial`s; paused trials resume where they stopped; no pause/resume "
        "overhead). Settings: rungs 1, 3, 9, 27(, 30), eta 3 for every successive-halving "
        "method; Ray's MedianStoppingRule with grace_period 1 iteration, min_samples 3; NNI "
        "defaults for MedianStopping (start_step 0) and CurveFitting (start_step 6, threshold "
        "0.95, gap 1, epoch_num 30); SuccessiveHalving brackets of 81; Hyperband max_iter 30, "
        "eta 3, resume=True.",
        "",
    ]
    write_section("\n".join(header) + "\n" + "\n\n".join(blocks) + "\n")
    print(f"wrote the {SECTION} section of {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
