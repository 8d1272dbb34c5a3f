"""Figures from an experiment directory (matplotlib; the CLI uses the Agg backend).

Each function takes an :class:`~rafiki_ray.experiment_data.ExperimentData` (or a path) and
returns a ``matplotlib.figure.Figure``, so it shows inline in a notebook:

* :func:`learning_curves`: the metric against progress, one line per trial, or per run for
  config-driven runs (a run's resumed segments joined on the ``chunks_done`` clock);
* :func:`rungs`: the rungs of SHA / ASHA / Hyperband (Jamieson & Talwalkar 2016; Li et al.
  2018, 2020): each trial's metric at each milestone it reached, one vertical line per
  milestone, with the number of trials there;
* :func:`pbt_lineage`: PBT (Jaderberg et al. 2017): which member copied which, when, and the
  hyperparameter schedules the exploit/explore steps produced;
* :func:`parallel_coordinates`: numeric and categorical hyperparameters against the metric;
* :func:`regret`: the best metric so far over finished trials (the searcher's regret, given
  the optimum).

:func:`plot_experiment` writes every figure that applies as PNG files; ``plot DIR`` is the CLI.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

from rafiki_ray._errors import invalid
from rafiki_ray.experiment_data import ExperimentData, load_experiment

__all__ = ["add_parser", "learning_curves", "parallel_coordinates", "pbt_lineage",
           "plot_experiment", "regret", "rungs"]


def _data(data: ExperimentData | str) -> ExperimentData:
    return data if isinstance(data, ExperimentData) else load_experiment(data)


def _figure(nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=kw.pop("figsize", (7, 4.5)), layout="constrained")
    axes = fig.subplots(nrows, ncols, **kw)
    return fig, axes


def _check_metric(data: ExperimentData, metric: str) -> None:
    if metric not in data.metrics():
        raise invalid("metric", f"is not reported in {data.path}; reported: "
                      f"{sorted(data.metrics())}", metric)


def _flat(config: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in config.items():
        if str(k).startswith("__"):
            continue
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def learning_curves(data: ExperimentData | str, metric: str, *, by: str = "auto") -> Any:
    """One line per trial (``by="trial"``) or per run (``by="run"``; the default when the
    experiment has run ids)."""
    data = _data(data)
    _check_metric(data, metric)
    if by not in ("auto", "trial", "run"):
        raise invalid("by", "must be 'auto', 'trial' or 'run'", by)
    if by == "auto":
        by = "run" if data.runs else "trial"
    fig, ax = _figure()
    if by == "run":
        for rid in sorted(data.runs):
            xs, ys = [], []
            for tid in data.runs[rid]:
                x, y = data.trials[tid].series(metric, "chunks_done")
                xs += x
                ys += y
            ax.plot(xs, ys, marker=".", label=rid)
        ax.set_xlabel("chunks_done")
    else:
        for tid in sorted(data.trials):
            x, y = data.trials[tid].series(metric)
            ax.plot(x, y, marker=".", label=tid)
        ax.set_xlabel("training_iteration")
    ax.set_ylabel(metric)
    ax.set_title(f"learning curves ({len(ax.lines)} {by}s)")
    if len(ax.lines) <= 12:
        ax.legend(fontsize="small")
    return fig


def _milestones(data: ExperimentData) -> tuple[list[float], str]:
    st = data.scheduler_state
    if not st or "sub" not in st:
        raise invalid("experiment_dir", "has no rafiki scheduler state (SHA/ASHA/Hyperband "
                      "write rafiki_scheduler_state.pkl)", data.path)
    sub = st["sub"]
    if "brackets" in sub:
        ms = [m for b in sub["brackets"] for m in b["milestones"]]
    elif "milestones" in sub:
        ms = [m for b in sub["milestones"] for m in (b if isinstance(b, list) else [b])]
    else:
        raise invalid("experiment_dir", f"the scheduler {st.get('class')} has no rungs",
                      data.path)
    return sorted(set(ms)), st.get("time_attr", "training_iteration")


def rungs(data: ExperimentData | str, metric: str | None = None) -> Any:
    """Each trial's metric at every milestone it reached; text ``n=`` per rung."""
    data = _data(data)
    milestones, time_attr = _milestones(data)
    metric = metric or data.scheduler_state.get("metric")
    _check_metric(data, metric)
    fig, ax = _figure()
    counts = dict.fromkeys(milestones, 0)
    for tid in sorted(data.trials):
        x, y = data.trials[tid].series(metric, time_attr)
        at = {xi: yi for xi, yi in zip(x, y) if xi in counts}
        if not at:
            continue
        for m in at:
            counts[m] += 1
        ax.plot(list(at), list(at.values()), marker="o", linewidth=0.8, color="0.5",
                label="_trial")
    for m in milestones:
        ax.axvline(m, color="tab:blue", linestyle=":", label="_rung")
        ax.annotate(f"n={counts[m]}", (m, 1.0), xycoords=("data", "axes fraction"),
                    ha="center", va="bottom", fontsize="small")
    ax.set_xlabel(time_attr)
    ax.set_ylabel(metric)
    ax.set_title(f"{data.scheduler_state.get('class')} rungs", pad=14)
    return fig


def pbt_lineage(data: ExperimentData | str, params: list[str] | None = None) -> Any:
    """Top: members over steps with an arrow per exploit (source -> member). Bottom: the
    hyperparameter schedules (one step line per member and parameter)."""
    data = _data(data)
    st = data.scheduler_state
    lineage = (st or {}).get("sub", {}).get("lineage")
    if lineage is None:
        raise invalid("experiment_dir", "has no PBT lineage (run with rafiki_ray's PBT)",
                      data.path)
    members = sorted({row["trial_id"] for row in lineage})
    row_of = {tid: i for i, tid in enumerate(members)}
    flat = [_flat(r["config"]) for r in lineage]
    if params is None:
        keys = {k for f in flat for k, v in f.items() if isinstance(v, (int, float))}
        params = sorted(k for k in keys if len({f.get(k) for f in flat}) > 1)
    fig, axes = _figure(1 + len(params), 1, sharex=True, squeeze=False,
                        figsize=(7, 3 + 2 * len(params)))
    ax = axes[0][0]
    end = max([r["step"] for r in lineage] + [1.0])
    for tid in members:
        ax.hlines(row_of[tid], 0, end, color="0.85")
    n_exploits = 0
    for r in lineage:
        if r["event"] == "exploit" and r.get("source") in row_of:
            ax.annotate("", (r["step"], row_of[r["trial_id"]]),
                        (r["step"], row_of[r["source"]]),
                        arrowprops={"arrowstyle": "->", "color": "tab:red"})
            n_exploits += 1
    ax.set_yticks(range(len(members)), members, fontsize="small")
    ax.set_title(f"PBT lineage: {len(members)} members, {n_exploits} exploits")
    for i, p in enumerate(params):
        a = axes[i + 1][0]
        for tid in members:
            pts = [(r["step"], f.get(p)) for r, f in zip(lineage, flat)
                   if r["trial_id"] == tid and isinstance(f.get(p), (int, float))]
            if pts:
                pts.append((end, pts[-1][1]))
                a.step([q[0] for q in pts], [q[1] for q in pts], where="post", label=tid)
        a.set_ylabel(p)
    axes[-1][0].set_xlabel(st.get("time_attr", "step"))
    return fig


def parallel_coordinates(data: ExperimentData | str, metric: str, *,
                         mode: str = "min") -> Any:
    """One polyline per trial over its varying hyperparameters and its final metric (last
    axis), coloured by the metric (best brightest)."""
    from matplotlib import colormaps

    data = _data(data)
    _check_metric(data, metric)
    rows = []
    for tid, t in sorted(data.trials.items()):
        _, ys = t.series(metric)
        if ys:
            rows.append((tid, _flat(t.config), ys[-1]))
    keys = sorted({k for _, f, _ in rows for k in f})
    keys = [k for k in keys if len({repr(f.get(k)) for _, f, _ in rows}) > 1]
    fig, ax = _figure()
    if not rows:
        raise invalid("metric", f"no trial in {data.path} reported it", metric)
    cols: list[list[float]] = []
    labels = []
    for k in keys:
        vals = [f.get(k) for _, f, _ in rows]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            num = [float(v) for v in vals]
            if min(num) > 0 and max(num) / min(num) > 100:
                num = [math.log10(v) for v in num]
                k = f"log10 {k}"
        else:
            cats = sorted({repr(v) for v in vals})
            num = [float(cats.index(repr(v))) for v in vals]
        cols.append(num)
        labels.append(k)
    cols.append([m for _, _, m in rows])
    labels.append(metric)
    norm = []
    for c in cols:
        lo, hi = min(c), max(c)
        norm.append([0.5 if hi == lo else (v - lo) / (hi - lo) for v in c])
    score = norm[-1] if mode == "max" else [1 - v for v in norm[-1]]
    cmap = colormaps["viridis"]
    for i in range(len(rows)):
        ax.plot(range(len(cols)), [c[i] for c in norm], color=cmap(score[i]), alpha=0.8)
    ax.set_xticks(range(len(cols)), labels, rotation=30, ha="right", fontsize="small")
    ax.set_yticks([])
    ax.set_title(f"{len(rows)} trials: hyperparameters vs {metric}")
    return fig


def regret(data: ExperimentData | str, metric: str, *, mode: str = "min",
           optimum: float | None = None) -> Any:
    """Best-so-far of ``metric`` (each trial's last value) over trials in finishing order;
    with ``optimum``, the simple regret ``|best - optimum|`` on a log axis."""
    data = _data(data)
    _check_metric(data, metric)
    if mode not in ("min", "max"):
        raise invalid("mode", "must be 'min' or 'max'", mode)
    ends = []
    for t in data.trials.values():
        pts = [r for r in t.results if isinstance(r.get(metric), (int, float))]
        if pts:
            ends.append((pts[-1].get("timestamp", 0), pts[-1][metric]))
    ends.sort()
    best, ys = None, []
    for _, v in ends:
        best = v if best is None else (min(best, v) if mode == "min" else max(best, v))
        ys.append(best if optimum is None else abs(best - optimum))
    fig, ax = _figure()
    ax.plot(range(1, len(ys) + 1), ys, drawstyle="steps-post", marker=".")
    ax.set_xlabel("trials finished")
    ax.set_ylabel(f"best {metric}" if optimum is None else f"regret |best - {optimum}|")
    if optimum is not None and all(y > 0 for y in ys):
        ax.set_yscale("log")
    ax.set_title(f"{'searcher regret' if optimum is not None else 'best so far'} "
                 f"({mode} {metric})")
    return fig


def plot_experiment(path: str, out_dir: str | None = None, *, metric: str | None = None,
                    mode: str | None = None) -> dict[str, str]:
    """Write every figure that applies to ``out_dir`` (default ``<path>/plots``)."""
    data = load_experiment(path)
    st = data.scheduler_state or {}
    metric = metric or st.get("metric") or ("loss" if "loss" in data.metrics() else None)
    if metric is None:
        raise invalid("metric", "cannot be guessed; pass --metric", None)
    mode = mode or st.get("mode") or "min"
    out_dir = out_dir or os.path.join(data.path, "plots")
    os.makedirs(out_dir, exist_ok=True)
    figs = {"learning_curves": lambda: learning_curves(data, metric),
            "parallel_coordinates": lambda: parallel_coordinates(data, metric, mode=mode),
            "best_so_far": lambda: regret(data, metric, mode=mode)}
    sub = st.get("sub", {})
    if "brackets" in sub or "milestones" in sub:
        figs["rungs"] = lambda: rungs(data, metric)
    if "lineage" in sub:
        figs["pbt_lineage"] = lambda: pbt_lineage(data)
    written = {}
    for name, make in figs.items():
        fig = make()
        written[name] = os.path.join(out_dir, f"{name}.png")
        fig.savefig(written[name], dpi=80)
    return written


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``plot DIR [--metric M] [--mode min|max] [--out DIR]``."""
    p = subparsers.add_parser("plot", help="figures from an experiment directory")
    p.add_argument("dir")
    p.add_argument("--metric")
    p.add_argument("--mode", choices=["min", "max"])
    p.add_argument("--out", help="output folder (default DIR/plots)")
    p.set_defaults(func=_main)
    return p


def _main(args: argparse.Namespace) -> int:
    try:
        written = plot_experiment(args.dir, args.out, metric=args.metric, mode=args.mode)
    except (ValueError, TypeError) as exc:
        print(str(exc))
        return 1
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0
