"""Multi-fidelity schedulers side by side on a recorded learning-curve table (simulated clock).

    python benchmarks/multi_fidelity.py --jobs 2   # full: W = 4 and 16, 60 seeds, RESULTS.md
    python benchmarks/multi_fidelity.py --quick    # smoke test: seconds (RESULTS.md: --write)

Every method is a REAL scheduler object (Ray's or ours) driven through Tune's scheduler
interface by ``benchmarks/_simulator.py`` over the table of ``benchmarks/lc_table/`` (500 MLPs
x 30 epochs on mnist1d, really trained; per-epoch validation accuracy and CPU time).

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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._report import RESULTS, Report, pyplot
from benchmarks._simulator import DEFAULT_TABLE, LCTable, simulate

SECTION = "multi_fidelity"
FULL_COMMAND = "python benchmarks/multi_fidelity.py --seeds 60 --jobs 2"
#: Reduction factor of every successive-halving method, ours and Ray's (``--eta``).
ETA = 3

Factory = Callable[[LCTable, int], tuple[Any, Any]]  # (table, seed) -> (scheduler, searcher)


# ------------------------------------------------------------------------------- methods
def _ray_asha(t: LCTable, seed: int) -> tuple[Any, Any]:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(metric=t.metric, mode=t.mode, max_t=t.epochs, grace_period=1,
                         reduction_factor=ETA), None


def _ray_hyperband(t: LCTable, seed: int) -> tuple[Any, Any]:
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(metric=t.metric, mode=t.mode, max_t=t.epochs,
                              reduction_factor=ETA), None


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
                reduction_factor=ETA, seed=seed, persist=False), None


def _asha_tpe(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.searchers import TPESearch

    sched, _ = _asha(t, seed)
    return sched, TPESearch(t.search_space(), metric=t.metric, mode=t.mode, seed=seed)


def _sha(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import SuccessiveHalving

    return SuccessiveHalving(metric=t.metric, mode=t.mode, min_resource=1,
                             max_resource=t.epochs, reduction_factor=ETA, num_trials=81,
                             seed=seed, persist=False), None


def _hyperband(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import Hyperband

    return Hyperband(metric=t.metric, mode=t.mode, max_iter=t.epochs, eta=ETA, resume=True,
                     seed=seed, persist=False), None


def _hyperband_tpe(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.searchers import TPESearch

    sched, _ = _hyperband(t, seed)
    return sched, TPESearch(t.search_space(), metric=t.metric, mode=t.mode, seed=seed)


def _median(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import MedianStopping

    return MedianStopping(metric=t.metric, mode=t.mode, seed=seed, persist=False), None


def _median3(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import MedianStopping

    return MedianStopping(metric=t.metric, mode=t.mode, start_step=3, seed=seed,
                          persist=False), None


def _curve(t: LCTable, seed: int) -> tuple[Any, Any]:
    from rafiki_ray.schedulers import CurveFitting

    return CurveFitting(metric=t.metric, mode=t.mode, epoch_num=t.epochs, seed=seed,
                        persist=False), None


class _Oracle:
    """Not a method, a bound: a scheduler that KNOWS the table. It stops every trial whose final
    metric misses the race target after its first epoch (grace period 1, as for every rung
    method here) and trains target rows straight through. No scheduler that sees configurations
    in the same order and gives each at least one epoch can reach the target sooner."""

    def __new__(cls, t: LCTable, rel: float) -> Any:
        from ray.tune.schedulers import FIFOScheduler, TrialScheduler

        good = {i for i, v in enumerate(t.final()) if t.reaches(float(v), t.target(rel))}

        class Oracle(FIFOScheduler):
            def on_trial_result(self, controller: Any, trial: Any, result: dict) -> str:
                if int(trial.config["row"]) in good:
                    return TrialScheduler.CONTINUE
                return TrialScheduler.STOP

        return Oracle()


def _oracle(t: LCTable, seed: int) -> tuple[Any, Any]:
    return _Oracle(t, Race.rel), None


ORACLE = "Oracle bound (knows the table)"

METHODS: dict[str, Factory] = {
    "FIFO random": _fifo,
    "Ray ASHAScheduler": _ray_asha,
    "Ray HyperBandScheduler": _ray_hyperband,
    "Ray MedianStoppingRule": _ray_median,
    "ASHA": _asha,
    "ASHA + TPESearch": _asha_tpe,
    "SuccessiveHalving": _sha,
    "Hyperband": _hyperband,
    "Hyperband + TPESearch": _hyperband_tpe,
    "MedianStopping": _median,
    "MedianStopping (start_step=3)": _median3,
    "CurveFitting": _curve,
    ORACLE: _oracle,
}
#: Methods shown in the race only (the oracle's savings would be meaningless).
RACE_ONLY = {ORACLE}


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


def _one(table: LCTable, s: Race | Savings, name: str, seed: int) -> dict[str, Any]:
    """One simulated experiment of method ``name`` under setting ``s`` with ``seed``."""
    sched, searcher = METHODS[name](table, seed)
    c0 = time.process_time()
    if isinstance(s, Race):
        target, budget = table.target(s.rel), s.budget(table)
        r = simulate(table, sched, workers=s.workers, seed=seed, searcher=searcher,
                     target=target, min_time=budget)
        t_hit = r.time_to(table, target)
        values = {"time": t_hit, "best_at_budget": r.best_final(table, budget),
                  "epochs_to_target": r.epochs_by(t_hit) if math.isfinite(t_hit) else math.nan}
    else:
        r = simulate(table, sched, workers=s.workers, seed=seed, searcher=searcher,
                     max_trials=s.n_trials)
        values = {"epochs": r.total_epochs, "best_final": r.best_final(table),
                  "time": r.end_time}
    values["stranded"] = r.stranded
    return {"values": values, "cpu": time.process_time() - c0, "decisions": len(r.events)}


_TABLE: LCTable | None = None


def _rungs(max_t: int) -> str:
    """The rung milestones of grace period 1 and reduction factor ``ETA`` up to ``max_t``."""
    r = [1]
    while r[-1] * ETA < max_t:
        r.append(r[-1] * ETA)
    return ", ".join(map(str, r)) + (f"(, {max_t})" if r[-1] != max_t else "")


def _init_worker(path: str, eta: int = 3) -> None:
    global _TABLE, ETA
    _TABLE = LCTable.load(path)
    ETA = eta


def _task(args: tuple[Any, str, int]) -> dict[str, Any]:
    assert _TABLE is not None
    return _one(_TABLE, *args)


def run_setting(table: LCTable, s: Race | Savings, methods: dict[str, Factory],
                pool: Any = None) -> dict[str, Cell]:
    """All methods x seeds of one setting (in ``pool`` worker processes when given)."""
    if isinstance(s, Savings):
        methods = {k: v for k, v in methods.items() if k not in RACE_ONLY}
    tasks = [(s, name, seed) for name in methods for seed in range(s.seeds)]
    if pool is None:
        outs = [_one(table, *t) for t in tasks]
    else:
        outs = pool.map(_task, tasks, chunksize=1)
    cells: dict[str, Cell] = {name: Cell() for name in methods}
    for (_, name, _), o in zip(tasks, outs):
        cell = cells[name]
        cell.cpu_s += o["cpu"]
        cell.decisions += o["decisions"]
        for k, v in o["values"].items():
            cell.add(k, v)
    return cells


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
        (f"**Race, W = {s.workers}** ({s.seeds} seeds): target final {table.metric} >= "
         f"{table.target(s.rel):.4f} (1 % below the table's best final "
         f"{table.best_final():.4f}); fixed budget {s.budget(table):.0f} simulated s."),
        "",
        ("| method | median time to target (s) | speed-up vs FIFO | seeds reaching it | "
         "median epochs to target | median best final at budget | CPU ms per result |"),
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
    f = cells["FIFO random"]
    lines = [
        (f"**Savings, W = {s.workers}** ({s.seeds} seeds x the same {s.n_trials} random "
         "configurations per seed for every method): epochs and best final metric vs FIFO."),
        "",
        ("| method | median epochs | median epochs saved vs FIFO | median loss in best final "
         "vs FIFO | worst-seed loss | median simulated time (s) |"),
        "|---|---|---|---|---|---|",
    ]
    for name, c in cells.items():
        loss = _loss(table, c, f)
        lines.append(
            f"| {name} | {_fmt(_med(c.values['epochs']), 0)} | {100 * _saved(c, f):.1f} % "
            f"| {100 * _med(loss):.2f} % | {100 * max(loss):.2f} % "
            f"| {_fmt(_med(c.values['time']))} |")
    return lines


def _loss(table: LCTable, cell: Cell, fifo: Cell) -> list[float]:
    """Per seed: the relative loss in the best final metric against FIFO's (inf: none)."""
    sign = 1.0 if table.mode == "max" else -1.0
    return [sign * (fb - b) / abs(fb) if not math.isnan(b) else math.inf
            for b, fb in zip(cell.values["best_final"], fifo.values["best_final"])]


def _saved(cell: Cell, fifo: Cell) -> float:
    """The median fraction of FIFO's epochs a method saves."""
    return _med([1 - e / fe for e, fe in zip(cell.values["epochs"], fifo.values["epochs"])])


def page_table(table: LCTable, races: list[Race], savings: list[Savings],
               results: dict[tuple[str, int], dict[str, Cell]]) -> list[str]:
    """Every number of workers W in ONE table (the results page): per W, the race (median time
    to target with the speed-up vs FIFO, seeds reaching it, best final at the budget) and,
    where measured, the savings (epochs saved; loss in the best final, median / worst seed);
    the CPU ms per result of every W in one column."""
    sv = {s.workers: s for s in savings}
    seeds = sorted({r.seeds for r in races})
    budgets = " / ".join(f"{r.budget(table):.0f} s (W = {r.workers})" for r in races)
    head = (f"Race ({' / '.join(map(str, seeds))} seeds): median simulated time until a fully "
            f"trained trial reaches final {table.metric} >= {table.target(races[0].rel):.4f} "
            f"(1 % below the table's best, {table.best_final():.4f}), with its speed-up vs "
            f"FIFO, and the seeds reaching it; best final at a budget of {budgets}.")
    if savings:
        head += (f" Savings ({savings[0].seeds} seeds x the same {savings[0].n_trials} "
                 "configurations for "
                 "every method, run to the end): epochs saved vs FIFO; loss in the best "
                 "final vs FIFO, median / worst seed.")
    cols = ["method"]
    for r in races:
        cols += [f"W = {r.workers}: time to target s (speed-up)", "seeds", "best at budget"]
        if r.workers in sv:
            cols.append("saved; loss")
    cols.append(f"CPU ms per result (W = {' / '.join(str(r.workers) for r in races)})")
    lines = [head, "", "| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    names = list(dict.fromkeys(n for r in races for n in results[("race", r.workers)]))
    for name in names:
        cells, cpu = [name], []
        for r in races:
            rcells = results[("race", r.workers)]
            c = rcells.get(name)
            scells = results.get(("savings", r.workers)) if r.workers in sv else None
            if c is None:
                cells, cpu = cells + ["-"] * 3, cpu + ["-"]
            else:
                times = np.asarray(c.values["time"], dtype=float)
                med = float(np.median(times))
                fifo = _med(rcells["FIFO random"].values["time"])
                speed = _fmt(fifo / med, 2) + "x" if math.isfinite(med) else "n/a"
                cells += [f"{_fmt(med)} ({speed})",
                          f"{int(np.isfinite(times).sum())}/{len(times)}",
                          _fmt(_med(c.values["best_at_budget"]), 4)]
                cpu.append(_fmt(1e3 * c.cpu_s / max(c.decisions, 1), 3))
            if scells is not None and name in scells:
                loss = _loss(table, scells[name], scells["FIFO random"])
                cells.append(f"{100 * _saved(scells[name], scells['FIFO random']):.1f} %; "
                             f"{100 * _med(loss):.2f} / {100 * max(loss):.2f} %")
            elif scells is not None:
                cells.append("-")
        cells.append(" / ".join(cpu))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def _kind_line(text: str, cases: list[tuple[bool | None, str]]) -> str:
    """One bullet for one kind of target: the overall verdict, then every measured case."""
    judged = [ok for ok, _ in cases if ok is not None]
    overall = None if not judged else all(judged)
    count = f" ({sum(judged)} of {len(judged)} pass)" if len(cases) > 1 else ""
    return (f"- {_verdict(overall)}{count}: {text}: "
            + "; ".join(f"{c} {_verdict(ok)}" if len(cases) > 1 else c for ok, c in cases))


def targets(results: dict[tuple[str, int], dict[str, Cell]], table: LCTable, w: int) -> list[str]:
    """The issue's targets, checked against the measured medians (PASS / MISS with numbers):
    one line per kind of target, listing every measured case."""
    out = ["**Targets**, measured:"]
    race = results.get(("race", w), {})

    def t(name: str) -> float:
        return float(np.median(race[name].values["time"])) if name in race else math.nan

    fifo, asha, ray = t("FIFO random"), t("ASHA"), t("Ray ASHAScheduler")
    oracle = t(ORACLE)
    bound = (f"; the oracle bound, which knows the table, is {_fmt(fifo / oracle, 2)}x"
             if math.isfinite(oracle) else "")
    if race:
        out.append(_kind_line(
            f"ASHA reaches the target >= 4x sooner than FIFO at W = {w}",
            [(bool(fifo / asha >= 4) if math.isfinite(asha) else False,
              f"{_fmt(fifo / asha, 2)}x (median {_fmt(asha)} s vs {_fmt(fifo)} s{bound})")]))
        pairs = ""
        if "ASHA" in race and "Ray ASHAScheduler" in race:  # the same seeds, in the same order
            a = np.asarray(race["ASHA"].values["time"], dtype=float)
            b = np.asarray(race["Ray ASHAScheduler"].values["time"], dtype=float)
            same = np.isclose(a, b, rtol=1e-9, atol=1e-6) | (np.isinf(a) & np.isinf(b))
            pairs = (f" (seed by seed sooner in {int(((a < b) & ~same).sum())}, as soon "
                     f"in {int(same.sum())} and later in {int(((a > b) & ~same).sum())} of "
                     f"{len(a)})")
        hb, tpe = t("Hyperband"), t("Hyperband + TPESearch")
        vs_ray = f"ASHA no later than Ray's ASHAScheduler {_fmt(asha)} vs {_fmt(ray)}{pairs}"
        vs_hb = (f"Hyperband + TPESearch sooner than Hyperband with random sampling "
                 f"{_fmt(tpe)} vs {_fmt(hb)}")
        out.append(_kind_line(f"against the reference method at W = {w} (median s)", [
            (bool(asha <= ray), vs_ray), (None if math.isnan(tpe) else bool(tpe < hb), vs_hb)]))
    cases: list[tuple[bool | None, str]] = []
    for (kind, workers), cells in sorted(results.items()):
        if kind != "savings" or "FIFO random" not in cells:
            continue
        for name in ("MedianStopping", "MedianStopping (start_step=3)", "CurveFitting"):
            if name not in cells:
                continue
            saved = _saved(cells[name], cells["FIFO random"])
            loss = _med(_loss(table, cells[name], cells["FIFO random"]))
            cases.append((bool(saved >= 0.4 and loss <= 0.005),
                          f"{name} at W = {workers} {100 * saved:.1f} % / {100 * loss:.2f} %"))
    if cases:
        out.append(_kind_line("early stopping saves >= 40 % of FIFO's epochs with a median "
                              "loss <= 0.5 % in the best final metric (saved / loss)", cases))
    return out


def _clock_text(meta: dict[str, Any]) -> str:
    nproc = meta.get("machine", {}).get("nproc")
    if meta.get("clock", "wall") == "wall":
        return f"wall time as measured while recording on {nproc} shared cores"
    return (f"CPU time of the 1-thread training process (`time.{meta['clock']}_time()`, "
            f"recorded on {nproc} cores)")


def trace(table: LCTable, workers: int, seed: int, methods: dict[str, Factory],
          rel: float = 0.01) -> list[str]:
    """Where the race time goes, for one seed: per method, every trial of a target row (a row
    whose final metric reaches the target): when it started, how many epochs it trained, how
    long it trained and how long it waited paused, and the scheduler's non-CONTINUE decisions."""
    target = table.target(rel)
    good = {i for i, v in enumerate(table.final()) if table.reaches(float(v), target)}
    out = [f"trace W = {workers}, seed {seed}: target rows {sorted(good)}"]
    for name, make in methods.items():
        sched, searcher = make(table, seed)
        r = simulate(table, sched, workers=workers, seed=seed, searcher=searcher, target=target)
        t_hit = r.time_to(table, target)
        out.append(f"  {name}: target at {_fmt(t_hit)} s, {len(r.rows)} trials, "
                   f"{r.epochs_by(t_hit)} epochs")
        order = list(r.rows)
        for tid in order:
            row = r.rows[tid]
            if row not in good:
                continue
            ev = [(t, e, d) for t, i, e, _, d in r.events if i == tid]
            if not ev:
                out.append(f"    row {row}: trial #{order.index(tid)} never ran")
                continue
            times = table.epoch_time[row, :len(ev)]
            start = ev[0][0] - float(times[0])
            waited = ev[-1][0] - start - float(times.sum())
            stops = ", ".join(f"{d}@{e} ({t:.1f} s)" for t, e, d in ev if d != "CONTINUE")
            out.append(f"    row {row}: trial #{order.index(tid)} started {start:.1f} s, "
                       f"{len(ev)} epochs trained in {times.sum():.1f} s, waited "
                       f"{waited:.1f} s; {stops or 'no pause/stop'}")
    return out


def speedup_plot(results: dict[tuple[str, int], dict[str, Cell]], path: Path) -> str:
    """Bars: each method's median time to target relative to FIFO's, per number of workers."""
    plt = pyplot()
    races = sorted((w, cells) for (kind, w), cells in results.items() if kind == "race")
    fig, axes = plt.subplots(1, len(races), figsize=(4.2 * len(races), 3.6), sharey=True,
                             squeeze=False)
    for ax, (w, cells) in zip(axes[0], races):
        fifo = _med(cells["FIFO random"].values["time"])
        names = list(cells)
        speed = [fifo / float(np.median(cells[n].values["time"])) for n in names]
        ax.barh(range(len(names)), speed, color=["#888" if n in ("FIFO random", ORACLE) else
                                                 "#37a" for n in names])
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("speed-up vs FIFO (median time to target)", fontsize=8)
        ax.set_title(f"W = {w}", fontsize=9)
    fig.tight_layout()
    text = Report.save_plot(fig, path)
    plt.close(fig)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, W=4, no file")
    p.add_argument("--seeds", type=int, default=60)
    p.add_argument("--table", default=DEFAULT_TABLE)
    p.add_argument("--methods", nargs="*", default=None, help="subset of method names")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--write", action="store_true", help="write RESULTS.md even with --quick")
    p.add_argument("--results", default=str(RESULTS), help="the results page to write")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for the simulations")
    p.add_argument("--eta", type=int, default=3,
                   help="reduction factor of every successive-halving method (default 3)")
    p.add_argument("--trace", type=int, nargs=2, metavar=("W", "SEED"), default=None,
                   help="only print where the race time goes for W workers and one seed")
    args = p.parse_args(argv)
    if args.eta < 2:
        p.error(f"--eta: a reduction factor must be >= 2, got {args.eta}")
    global ETA
    ETA = args.eta
    table = LCTable.load(args.table)
    methods = available_methods()
    if args.methods:
        methods = {k: v for k, v in methods.items()
                   if k in args.methods or k in ("FIFO random", ORACLE)}
    if args.trace:
        print("\n".join(trace(table, args.trace[0], args.trace[1], methods)))
        return 0
    if args.quick:
        settings: list[Any] = [Race(workers=4, seeds=2), Savings(workers=4, seeds=2, n_trials=30)]
    else:
        settings = [Race(workers=w, seeds=args.seeds) for w in (4, 16)]
        settings += [Savings(workers=w, seeds=args.seeds) for w in (4, 16)]
    report = Report(SECTION, argv, quick=args.quick, full_command=FULL_COMMAND)
    pool = None
    if args.jobs > 1:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(
            args.jobs, initializer=_init_worker, initargs=(args.table, ETA))
    results: dict[tuple[str, int], dict[str, Cell]] = {}
    for s in settings:
        t0 = time.perf_counter()
        cells = results[(s.name, s.workers)] = run_setting(table, s, methods, pool)
        if isinstance(s, Race):
            lines = race_table(table, s, cells)
        else:
            lines = savings_table(table, s, cells)
        report.sample_load()
        print("\n".join(lines), f"\n({time.perf_counter() - t0:.1f} s wall)\n", flush=True)
    if pool is not None:
        pool.close()
        pool.join()
    blocks = ["\n".join(page_table(table, [s for s in settings if isinstance(s, Race)],
                                   [s for s in settings if isinstance(s, Savings)], results))]
    verdicts = targets(results, table, max(s.workers for s in settings))
    print("\n".join(verdicts))
    blocks.append("\n".join(verdicts))
    results_path = Path(args.results)
    if args.no_write or (args.quick and not args.write) or not report.can_write(results_path):
        return 0
    blocks.append(speedup_plot(results, report.plot_path(results_path)))
    meta = table.meta
    header = report.header() + [
        (f"Table `{os.path.relpath(args.table, Path(__file__).resolve().parent)}`: {table.n} "
         f"configurations x {table.epochs} epochs, really trained by `{meta.get('command')}`; "
         f"metric `{table.metric}` ({table.mode}); per-epoch times: {_clock_text(meta)}. "
         f"Simulated clock (`benchmarks/_simulator.py`: real scheduler objects through Tune's "
         f"scheduler interface); rungs {_rungs(table.epochs)}, eta {ETA} for every "
         "successive-halving method; the oracle row is a bound, not a method."),
        "",
    ]
    report.write("\n".join(header) + "\n" + "\n".join(f"{b}\n" for b in blocks), results_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
