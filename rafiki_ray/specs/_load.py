"""``load_experiment`` / ``validate_experiment``: recognise a spec file and build one
:class:`Experiment`, reporting every error at once, each with the file and its path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rafiki_ray._errors import invalid
from rafiki_ray.specs._command import CommandTrial, FunctionTrial
from rafiki_ray.specs._common import Errors, SpecError
from rafiki_ray.specs._experiment import Experiment

__all__ = ["load_experiment", "validate_experiment"]


def _read(file: Path) -> Any:
    from rafiki_ray.spaces.adapters.load import _read_data

    return _read_data(file)


def _parse(path: str | os.PathLike[str], trial: Any, storage_path: str | None,
           seed: int | None) -> tuple[Experiment | None, list[BaseException]]:
    from rafiki_ray.spaces.adapters.load import detect_format

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    errors = Errors()
    data = _read(file)
    kind = detect_format(data)
    if kind == "t9k":
        from rafiki_ray.specs.nni import parse_t9k

        fields = parse_t9k(data, file, errors)
    elif kind == "nni_experiment":
        from rafiki_ray.specs.nni import parse_nni

        fields = parse_nni(data, file, errors)
    elif kind == "polyaxon":
        from rafiki_ray.specs.polyaxon import parse_polyaxon

        fields = parse_polyaxon(data, file, errors)
    else:
        raise invalid(str(file), "is not an experiment spec; looked for a T9k "
                      "AutoTuneExperiment (spec.searchSpace), an NNI experiment config "
                      "(searchSpace / searchSpaceFile) or a Polyaxon file (hptuning)",
                      sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__)
    pbt_generations = fields.pop("pbt_generations", None)
    if trial is not None:
        fields["trial"] = trial if isinstance(trial, (CommandTrial, FunctionTrial)) else \
            FunctionTrial(trial, final="last" if kind == "polyaxon" else "explicit",
                          experiment_id=fields.get("name", "experiment"))
    elif fields.get("trial") is None and not any(
            str(e).split(":")[0].startswith(("trial", "spec.trainingConfig", "run"))
            for e in errors.items):
        where = {"t9k": "spec.trainingConfig", "nni_experiment": "trialCommand",
                 "polyaxon": "run.cmd"}[kind]
        errors.add(invalid(where, "is required (the trial command), unless a Python trial "
                           "function is given"))
    if pbt_generations and isinstance(fields.get("trial"), CommandTrial):
        import dataclasses

        fields["trial"] = dataclasses.replace(fields["trial"], pbt_generations=pbt_generations)
    elif pbt_generations and fields.get("trial") is not None:
        errors.add(invalid("tuner", "PBTTuner runs command trials (one run per generation)",
                           "PBTTuner"))
    if seed is not None:
        fields["seed"] = seed
    fields["spec_path"] = str(file.resolve())
    fields["storage_path"] = storage_path
    _check_components(fields, errors)
    experiment = None
    if not errors.items:
        fields["notes"] = tuple(fields.get("notes", ()))
        experiment = errors.run(Experiment, **fields)
    return experiment, [_with_file(e, file) for e in errors.items]


def _check_components(fields: dict[str, Any], errors: Errors) -> None:
    """Build the searcher and scheduler once, so that bad class arguments fail now."""
    space = fields.get("space")
    metric = fields.get("metric")
    for role in ("searcher", "scheduler"):
        component = fields.get(role)
        if component is None:
            continue
        extra: dict[str, Any] = {}
        if metric is not None and "metric" not in component.kwargs:
            extra["metric"] = metric
        if role == "searcher" and space is not None:
            extra["space"] = space
        errors.run(component.build, **extra)


def _with_file(exc: BaseException, file: Path) -> BaseException:
    text = str(exc)
    if text.startswith((str(file), str(file.resolve()))):
        return exc
    return type(exc)(f"{file}:{text}")


def load_experiment(path: str | os.PathLike[str], *, trial: Callable[..., Any] | None = None,
                    storage_path: str | None = None, seed: int | None = None) -> Experiment:
    """Read a T9k ``AutoTuneExperiment``, an NNI experiment config or a Polyaxon v0
    polyaxonfile and return the validated :class:`Experiment`.

    ``trial``: a Python function to run instead of the file's command (NNI style, calling
    ``rafiki_ray.trial.get_next_parameter()``, or taking the parameters as its argument).
    Raises ``ValueError`` / ``TypeError`` naming the file and the path of the problem; with
    several problems a :class:`SpecError` (a ``ValueError``) lists them all.
    """
    experiment, errors = _parse(path, trial, storage_path, seed)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecError([str(e) for e in errors])
    if experiment is None:  # pragma: no cover - no error means it was built
        raise invalid(str(path), "could not be built")
    return experiment


def validate_experiment(path: str | os.PathLike[str]) -> list[str]:
    """Every problem of the spec at ``path``, each message naming its path (empty: valid)."""
    try:
        _, errors = _parse(path, None, None, None)
    except (ValueError, TypeError) as exc:
        return [str(exc)]
    return [str(e) for e in errors]
