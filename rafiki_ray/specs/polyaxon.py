"""Polyaxon v0.x polyaxonfiles (``kind: group`` with ``hptuning``) -> :class:`Experiment`.

The ``hptuning`` section is parsed by :func:`rafiki_ray.spaces.from_polyaxon` (the adapter);
here it becomes trials (formats.md section 3):

* ``grid_search`` / ``random_search``: the adapter's concrete list of configurations, run in
  order (``n_experiments`` included, random search seeded by ``hptuning.seed``);
* ``hyperband``: the :class:`~rafiki_ray.schedulers.Hyperband` scheduler with Polyaxon's
  brackets (``max_iter``, ``eta``, ``resource`` injected as a parameter, ``metric``,
  ``resume``) over random configurations; one Hyperband iteration of trials;
* ``bo``: :class:`~rafiki_ray.searchers.GPSearch` from the ``bo`` section,
  ``n_initial_trials + n_iterations`` trials;
* ``concurrency``; ``early_stopping``: the whole experiment stops once a trial reaches a
  rule's value (running trials stop, nothing new starts).

``run.cmd`` is rendered per trial with jinja2 (``{{ name }}``, undefined names render as "")
from the parameters merged with ``declarations`` (``params`` in 0.6), which are also exported
as ``POLYAXON_DECLARATIONS``. A trial's result is its last reported metrics (Polyaxon keeps the
last value; report with ``polyaxon_client.tracking.Experiment().log_metrics(...)`` through the
shim, or with :mod:`rafiki_ray.trial`). Resources: ``environment.resources.{cpu,gpu}``
(``requests`` / ``limits``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.specs._command import CommandTrial
from rafiki_ray.specs._common import Errors, check_keys
from rafiki_ray.specs._mapping import Component
from rafiki_ray.specs.nni import safe_name

__all__ = ["parse_polyaxon"]

_KEYS = {"version", "kind", "name", "declarations", "params", "hptuning", "environment", "run"}
_IGNORED = {"project", "tags", "description", "build", "logging", "settings", "framework"}
_MODES = {"maximize": "max", "minimize": "min"}


def parse_polyaxon(data: Mapping[str, Any], spec_file: Path, errors: Errors) -> dict[str, Any]:
    """Fields of an :class:`Experiment` from a polyaxonfile."""
    from rafiki_ray.spaces import from_polyaxon

    check_keys(data, "", _KEYS, errors, _IGNORED)
    if data.get("version", 1) != 1:
        errors.add(invalid("version", "must be 1 (Polyaxon v0.x polyaxonfiles)",
                           data.get("version")))
    if data.get("kind", "group") not in ("group", "experiment"):
        errors.add(invalid("kind", "must be group", data.get("kind")))
    out: dict[str, Any] = {"name": safe_name(data.get("name"), spec_file.stem),
                           "source": "polyaxon", "notes": []}
    out["notes"] += [f"{k}: not used on Ray" for k in sorted(set(data) & {"build"})]
    matrix = errors.run(from_polyaxon, dict(data), path="hptuning")
    out["space"] = None if matrix is None else matrix.space
    declarations = dict(matrix.declarations) if matrix is not None else {}
    out["trial"] = _trial(data.get("run"), spec_file, declarations, errors, out["name"])
    out["resources"] = _resources(data.get("environment"), errors)
    if matrix is None:
        return out
    out["max_concurrent"] = matrix.concurrency
    out["early_stopping"] = tuple(matrix.early_stopping)
    out["seed"] = matrix.seed
    metric = matrix.metric or (matrix.early_stopping[0]["metric"] if matrix.early_stopping
                               else None)
    mode = matrix.mode or (_MODES[matrix.early_stopping[0]["optimization"]]
                           if matrix.early_stopping else "max")
    out["metric"], out["mode"] = metric, mode
    algo, settings = matrix.algorithm, matrix.settings
    at = f"hptuning.{algo}"
    if algo in ("grid_search", "random_search"):
        configs = errors.run(matrix.configs)
        if configs is not None:
            out["configs"] = tuple(configs)
    elif algo == "hyperband":
        from rafiki_ray.schedulers.hyperband import bracket_table

        out["scheduler"] = Component(
            "rafiki_ray.schedulers.hyperband:Hyperband", {},
            {"max_iter": settings["max_iter"], "eta": settings["eta"],
             "resource": dict(settings["resource"]), "resume": settings["resume"],
             "metric": metric, "mode": mode, "seed": matrix.seed}, from_args=False, path=at)
        out["searcher"] = Component("rafiki_ray.searchers.tpe:TPESearch", {"algo": "random"},
                                    {"mode": mode, "seed": matrix.seed}, path=at)
        out["num_samples"] = sum(b["n"] for b in bracket_table(settings["max_iter"],
                                                                settings["eta"]))
    elif algo == "bo":
        args = _drop_none(settings)
        gp = args.get("utility_function", {}).get("gaussian_process", {})
        if gp.get("kernel") == "rbf":
            gp.pop("nu", None)  # sklearn's RBF has no nu
        elif "nu" in gp and gp["nu"] not in (0.5, 1.5, 2.5):
            nu = min((0.5, 1.5, 2.5), key=lambda v: abs(v - gp["nu"]))
            out["notes"].append(f"{at}.utility_function.gaussian_process.nu: {gp['nu']} -> "
                                f"{nu} (GPSearch's Matern kernels have nu 0.5, 1.5, 2.5)")
            gp["nu"] = nu
        out["searcher"] = Component("rafiki_ray.searchers.gp:GPSearch", args,
                                    {"seed": matrix.seed}, path=at)
        out["num_samples"] = matrix.num_samples
    return out


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            v = _drop_none(v)
        if v is not None:
            out[k] = v
    return out


def _trial(run: Any, spec_file: Path, declarations: Mapping[str, Any], errors: Errors,
           name: str) -> CommandTrial | None:
    if run is None:
        return None
    if not isinstance(run, Mapping):
        errors.add(invalid_type("run", "must be a mapping with cmd", run))
        return None
    check_keys(run, "run", {"cmd"}, errors, {"image", "build_steps"})
    cmd = run.get("cmd")
    if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
        cmd = " && ".join(cmd)  # Polyaxon v0 runs a list of commands one after the other
    if not isinstance(cmd, str) or not cmd.strip():
        errors.add(invalid("run.cmd", "must be a non-empty command line", cmd))
        return None
    try:
        import jinja2

        jinja2.Environment().parse(cmd)
    except jinja2.TemplateSyntaxError as exc:
        errors.add(invalid("run.cmd", f"is not a valid jinja2 template ({exc.message})", cmd))
        return None
    return CommandTrial(command=cmd, code_dir=str(spec_file.parent.resolve()), template=True,
                        declarations=dict(declarations), final="last", experiment_id=name)


def _resources(env: Any, errors: Errors) -> dict[str, float]:
    out: dict[str, float] = {"cpu": 1}
    if env is None:
        return out
    if not isinstance(env, Mapping):
        errors.add(invalid_type("environment", "must be a mapping", env))
        return out
    res = env.get("resources")
    if res is None:
        return out
    if not isinstance(res, Mapping):
        errors.add(invalid_type("environment.resources", "must be a mapping", res))
        return out
    for kind in ("cpu", "gpu"):
        spec = res.get(kind)
        if spec is None:
            continue
        at = f"environment.resources.{kind}"
        if not isinstance(spec, Mapping):
            errors.add(invalid_type(at, "must be {requests, limits}", spec))
            continue
        value = spec.get("requests", spec.get("limits"))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            errors.add(invalid(f"{at}.requests", "must be a number >= 0", value))
            continue
        out[kind] = float(value)
    return out
