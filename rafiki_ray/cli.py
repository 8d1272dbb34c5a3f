"""``rafiki-ray``: run T9k / NNI / Polyaxon experiment files on Ray from the shell.

Sub-commands::

    rafiki-ray run FILE [--address ADDR] [--storage DIR] [--name NAME] [--quiet]
    rafiki-ray status DIR [--json]
    rafiki-ray results DIR [--format table|csv|json]
    rafiki-ray resume DIR [--address ADDR]
    rafiki-ray validate FILE

Exit status: 0 success (``run``/``resume``: the experiment ended DONE or TIMEOUT), 1 the
experiment ended in ERROR or ``validate`` found problems, 2 bad usage or an invalid / missing
file, 130 interrupted (Ctrl-C; ``resume DIR`` continues). Only this module prints.

Other sub-commands register in one line each: append ``add_parser(subparsers)`` functions to
:data:`COMMANDS` (each sets ``func`` with ``set_defaults``; ``func(args) -> int``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_PHASE_EXIT = {"DONE": EXIT_OK, "TIMEOUT": EXIT_OK, "ERROR": EXIT_FAILED,
               "INTERRUPTED": EXIT_INTERRUPTED}


def _err(msg: str) -> None:
    print(f"rafiki-ray: {msg}", file=sys.stderr)


# ------------------------------------------------------------------------------ ray


def _init_ray(address: str | None, num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    else:  # embedded: a new local instance, never a cluster someone else started
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)


def _progress_factory(quiet: bool, interval: float) -> Callable[[Any], Any] | None:
    if quiet:
        return None
    from rafiki_ray.progress import ProgressCallback

    def make(tracker: Any) -> Any:  # the tracker knows the experiment's metric and limits
        total = tracker.data.get("expected_trials")
        return ProgressCallback(
            metric=tracker.metric, mode=tracker.mode, final_only=tracker.final_only,
            total_trials=total if isinstance(total, int) and total > 0 else None,
            time_budget_s=tracker.data.get("time_budget_s"), interval_s=interval,
            file=sys.stderr, prefix="")

    return make


def _report_outcome(outcome: Any) -> int:
    print(f"phase: {outcome.phase}")
    print(f"directory: {outcome.path}")
    if outcome.best is not None:
        print(f"best: {outcome.best['value']:.6g} {json.dumps(outcome.best['config'])}")
    if outcome.early_stopped:
        es = outcome.early_stopped
        print(f"early stopping: {es['metric']} reached {es['reached']:.6g} "
              f"(rule {es['optimization']} {es['value']:g})")
    if outcome.phase == "INTERRUPTED":
        print(f"resume with: rafiki-ray resume {outcome.path}")
    return _PHASE_EXIT.get(outcome.phase, EXIT_FAILED)


# ------------------------------------------------------------------------------ run


def _cmd_run(args: argparse.Namespace) -> int:
    from rafiki_ray.specs import load_experiment

    experiment = load_experiment(args.file, storage_path=args.storage)
    name = args.name or experiment.name
    exp_dir = experiment.experiment_dir(args.storage, name)
    if exp_dir.exists():
        name = f"{name}_{time.strftime('%Y%m%d-%H%M%S')}"
    for note in experiment.notes:
        _err(f"note: {note}")
    print(f"experiment: {experiment.experiment_dir(args.storage, name)}", flush=True)
    _init_ray(args.address, args.num_cpus)
    outcome = experiment.run(storage_path=args.storage, name=name,
                             progress=_progress_factory(args.quiet, args.interval))
    return _report_outcome(outcome)


def _add_run(sub: Any) -> None:
    p = sub.add_parser("run", help="run an experiment file (T9k, NNI or Polyaxon)",
                       description="Run an experiment file on Ray (embedded by default).")
    p.add_argument("file", help="a T9k AutoTuneExperiment, NNI config or Polyaxon file")
    p.add_argument("--address", help="Ray cluster address (default: start Ray here)")
    p.add_argument("--storage", default=None,
                   help="parent directory of the experiment directory (default ~/ray_results)")
    p.add_argument("--name", help="experiment directory name (default: the spec's name)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the embedded Ray")
    p.add_argument("--quiet", action="store_true", help="no live progress line")
    p.add_argument("--interval", type=float, default=2.0, help="progress refresh, seconds")
    p.set_defaults(func=_cmd_run)


# ------------------------------------------------------------------------------ resume


def _experiment_info(directory: str) -> dict[str, Any]:
    from rafiki_ray.specs._experiment import EXPERIMENT_FILE

    path = Path(directory) / EXPERIMENT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: not a rafiki-ray experiment directory "
                                f"(no {EXPERIMENT_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))


def _cmd_resume(args: argparse.Namespace) -> int:
    from rafiki_ray.specs import Experiment, load_experiment

    info = _experiment_info(args.dir)
    if not info.get("spec_path"):
        raise ValueError(f"{args.dir}: the experiment was not started from a file; resume it "
                         "from Python with Experiment.resume")
    experiment = load_experiment(info["spec_path"], storage_path=info.get("storage_path"))
    _init_ray(args.address, args.num_cpus)
    outcome = Experiment.resume(args.dir, experiment)
    return _report_outcome(outcome)


def _add_resume(sub: Any) -> None:
    p = sub.add_parser("resume", help="continue an interrupted experiment",
                       description="Continue an experiment after Ctrl-C or a crash: finished "
                                   "trials are kept, unfinished ones run again.")
    p.add_argument("dir", help="the experiment directory")
    p.add_argument("--address", help="Ray cluster address (default: start Ray here)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the embedded Ray")
    p.set_defaults(func=_cmd_resume)


# ------------------------------------------------------------------------------ status


def _cmd_status(args: argparse.Namespace) -> int:
    from rafiki_ray.progress import format_status
    from rafiki_ray.specs._status import read_status

    status = read_status(args.dir)
    if args.json:
        print(json.dumps(status, indent=1, default=str))
        return EXIT_OK
    print(f"name: {status.get('name')}")
    print(f"phase: {status.get('phase')}")
    print(f"source: {status.get('source')} ({status.get('spec_path')})")
    counts: dict[str, int] = {}
    for state in status.get("trials", {}).values():
        counts[state] = counts.get(state, 0) + 1
    total = status.get("expected_trials")
    print(f"trials: {sum(counts.values())}" + (f" of {total}" if total else "") + " "
          + json.dumps(dict(sorted(counts.items()))))
    best = status.get("best")
    if best:
        print(f"best {status.get('metric')}: {best['value']:.6g} (trial {best['trial_id']}) "
              f"{json.dumps(best['config'])}")
    if status.get("early_stopped"):
        print(f"early stopped: {json.dumps(status['early_stopped'])}")
    print(format_status(status, now=status.get("ended") or time.time()))
    return EXIT_OK


def _add_status(sub: Any) -> None:
    p = sub.add_parser("status", help="phase, trials by state and best result",
                       description="Show an experiment's phase (PENDING, RUNNING, DONE, "
                                   "TIMEOUT, ERROR, INTERRUPTED), trials and best result.")
    p.add_argument("dir", help="the experiment directory")
    p.add_argument("--json", action="store_true", help="print the raw status as JSON")
    p.set_defaults(func=_cmd_status)


# ------------------------------------------------------------------------------ results


def trial_rows(directory: str) -> list[dict[str, Any]]:
    """One row per trial of the experiment in ``directory``: id, state, parameters, last
    metrics, error (read from Tune's per-trial files ``params.json`` / ``result.json``)."""
    from rafiki_ray.spaces.adapters._configlist import INDEX_KEY
    from rafiki_ray.specs._status import read_status

    status = read_status(directory)
    states = status.get("trials", {})
    metric = status.get("metric")
    rows = []
    for trial_dir in sorted(Path(directory).iterdir()):
        params_file = trial_dir / "params.json"
        if not trial_dir.is_dir() or not params_file.is_file():
            continue
        params = json.loads(params_file.read_text(encoding="utf-8") or "{}")
        params.pop(INDEX_KEY, None)
        params.update(params.pop("__parameters__", None) or {})
        last: dict[str, Any] = {}
        result_file = trial_dir / "result.json"
        if result_file.is_file():
            lines = [ln for ln in result_file.read_text(encoding="utf-8").splitlines()
                     if ln.strip()]
            if lines:
                last = json.loads(lines[-1])
        trial_id = last.get("trial_id") or next(
            (t for t in states if t in trial_dir.name), trial_dir.name)
        error = ""
        error_file = trial_dir / "error.txt"
        if error_file.is_file():
            text = error_file.read_text(encoding="utf-8", errors="replace").strip()
            error = next((ln for ln in reversed(text.splitlines())
                          if "Error" in ln or "error" in ln), text[-200:])
        rows.append({
            "trial_id": trial_id,
            "state": states.get(trial_id, "UNKNOWN"),
            **({metric: last.get(metric)} if metric else {}),
            "iterations": last.get("training_iteration"),
            **{f"param.{k}": v for k, v in params.items()},
            "error": error,
        })
    if metric:
        sign = -1 if status.get("mode", "max") == "max" else 1
        rows.sort(key=lambda r: (r.get(metric) is None,
                                 sign * (r.get(metric) or 0)))
    return rows


def _cmd_results(args: argparse.Namespace) -> int:
    rows = trial_rows(args.dir)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    if args.format == "json":
        print(json.dumps(rows, indent=1, default=str))
    elif args.format == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        print(buf.getvalue(), end="")
    else:
        table = [[_cell(r.get(c)) for c in columns] for r in rows]
        widths = [max([len(c)] + [len(t[i]) for t in table]) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
        for t in table:
            print("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip())
    return EXIT_OK


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _add_results(sub: Any) -> None:
    p = sub.add_parser("results", help="every trial's parameters and metrics",
                       description="Print every trial, best first.")
    p.add_argument("dir", help="the experiment directory")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=_cmd_results)


# ------------------------------------------------------------------------------ validate


def _cmd_validate(args: argparse.Namespace) -> int:
    from rafiki_ray.specs import validate_experiment

    if not Path(args.file).is_file():
        raise FileNotFoundError(f"{args.file}: no such file")
    errors = validate_experiment(args.file)
    if errors:
        for e in errors:
            print(e)
        print(f"{args.file}: {len(errors)} error(s)", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.file}: valid")
    return EXIT_OK


def _add_validate(sub: Any) -> None:
    p = sub.add_parser("validate", help="check an experiment file, every error at once",
                       description="Check an experiment file; print every error with its "
                                   "path. Exit 0 when valid, 1 otherwise.")
    p.add_argument("file")
    p.set_defaults(func=_cmd_validate)


# ------------------------------------------------------------------------------ main

#: Sub-command registrars, ``f(subparsers)``; other modules append theirs (one line each).
def _add_ctl(sub: Any) -> None:
    from rafiki_ray.control.cli import add_parser

    add_parser(sub)


def _add_plot(sub: Any) -> None:
    from rafiki_ray.plot import add_parser

    add_parser(sub)


COMMANDS: list[Callable[[Any], None]] = [_add_run, _add_status, _add_results, _add_resume,
                                         _add_validate, _add_ctl, _add_plot]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rafiki-ray",
        description="Run T9k, NNI and Polyaxon experiment files on Ray Tune; steer and plot "
                    "experiments.",
        epilog="Exit status: 0 ok, 1 experiment error or invalid file (validate), "
               "2 usage error, 130 interrupted.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rafiki-ray`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return int(exc.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except FileNotFoundError as exc:
        _err(str(exc).strip("'\""))
        return EXIT_USAGE
    except (ValueError, TypeError) as exc:
        _err(str(exc))
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
