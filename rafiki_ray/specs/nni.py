"""NNI experiment configs and T9k ``AutoTuneExperiment`` files -> :class:`Experiment`.

Both use NNI's search space, tuners, assessors and advisors (:mod:`._mapping`); they differ in
layout and in two rules (formats.md sections 2 and 5):

==========================  =========================================  ====================
                            NNI                                        T9k
==========================  =========================================  ====================
tuner and advisor both set  error                                      the tuner wins (noted)
assessor without a tuner    error                                      ignored (noted)
limits                      ``maxTrialNumber`` (v1 ``maxTrialNum``),   ``maxTrialNum``,
                            ``maxExperimentDuration`` (v1              ``maxExecSeconds``
                            ``maxExecDuration``: ``"1h"``, ``"30m"``)
concurrency                 ``trialConcurrency``                       ``trialConcurrency``
trial                       ``trialCommand`` in ``trialCodeDirectory``  the first container's
                            (v1 ``trial.command`` / ``trial.codeDir``)  command + args in its
                                                                       ``workingDir``
class arguments             a mapping                                  a JSON string (or a
                                                                       mapping)
==========================  =========================================  ====================

Relative directories are relative to the spec file. The search space is read by
:func:`rafiki_ray.spaces.load_space` (the adapters), never here. Keys NNI accepts that have no
meaning on Ray (``trainingService``, ``logLevel``, ``debug``, ...) are accepted and noted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rafiki_ray._errors import invalid, invalid_type
from rafiki_ray.spaces import SearchSpace
from rafiki_ray.specs._command import CommandTrial
from rafiki_ray.specs._common import Errors, check_keys, duration, json_or_dict, positive_int
from rafiki_ray.specs._mapping import Plan, map_advisor, map_assessor, map_tuner

__all__ = ["assemble", "parse_nni", "parse_t9k", "safe_name"]

logger = logging.getLogger(__name__)

_NNI_KEYS = {
    "experimentName", "searchSpace", "searchSpaceFile", "search_space", "search_space_file",
    "searchSpacePath", "trialCommand", "trialCodeDirectory", "trialConcurrency",
    "trialGpuNumber", "maxExperimentDuration", "maxTrialNumber", "maxTrialDuration", "tuner",
    "assessor", "advisor", "trial", "maxTrialNum", "maxExecDuration", "experimentWorkingDirectory",
}
_NNI_IGNORED = {
    "trainingService", "trainingServicePlatform", "logLevel", "debug", "nniManagerIp",
    "useAnnotation", "authorName", "logDir", "tunerGpuIndices", "experimentType",
    "localConfig", "multiThread", "versionCheck", "description", "useActiveGpu",
}
_T9K_SPEC_KEYS = {"maxExecSeconds", "maxTrialNum", "trialConcurrency", "searchSpace",
                  "trainingConfig", "tuner", "assessor", "advisor"}
_T9K_SPEC_IGNORED = {"storage", "aistore"}


def safe_name(name: Any, default: str) -> str:
    text = name if isinstance(name, str) and name.strip() else default
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()) or "experiment"


def _component(section: Any, path: str, name_keys: tuple[str, ...], errors: Errors
               ) -> tuple[str | None, dict[str, Any]]:
    """(name, classArgs) of a tuner / assessor / advisor section, or (None, {})."""
    if section is None:
        return None, {}
    if not isinstance(section, Mapping):
        errors.add(invalid_type(path, "must be a mapping", section))
        return None, {}
    allowed = set(name_keys) | {"classArgs", "className", "codeDirectory", "codeDir",
                                "gpuIndices", "gpuNum", "includeIntermediateResults"}
    check_keys(section, path, allowed, errors)
    if section.get("className") or section.get("codeDirectory") or section.get("codeDir"):
        errors.add(invalid(f"{path}.className", "customized NNI algorithms are not supported; "
                           f"use a builtin name ({' / '.join(name_keys)})",
                           section.get("className")))
        return None, {}
    names = [k for k in name_keys if section.get(k) is not None]
    if not names:
        errors.add(invalid(path, f"needs {name_keys[0]}", dict(section)))
        return None, {}
    args = errors.run(json_or_dict, section.get("classArgs"), f"{path}.classArgs", default={})
    return section[names[0]], args


def assemble(space: SearchSpace | None, tuner: tuple[str | None, dict[str, Any]],
             assessor: tuple[str | None, dict[str, Any]],
             advisor: tuple[str | None, dict[str, Any]], *, rules: str, paths: dict[str, str],
             seed: int | None, errors: Errors) -> tuple[Plan | None, Any, list[str]]:
    """Combine tuner / assessor / advisor by ``rules`` ("nni" or "t9k").

    Returns (plan, assessor component or None, notes)."""
    notes: list[str] = []
    t_name, t_args = tuner
    s_name, s_args = assessor
    a_name, a_args = advisor
    if t_name is not None and a_name is not None:
        if rules == "nni":
            errors.add(invalid(paths["advisor"], "NNI takes a tuner or an advisor, not both "
                               f"(tuner {t_name!r} is set)", a_name))
        else:
            notes.append(f"{paths['advisor']}: ignored, the tuner {t_name!r} wins (T9k rule)")
        a_name = None
    if s_name is not None and t_name is None:
        if rules == "nni":
            errors.add(invalid(paths["assessor"], "an assessor needs a tuner (NNI); "
                               + ("an advisor schedules trials itself" if a_name else
                                  "set tuner"), s_name))
        else:
            notes.append(f"{paths['assessor']}: ignored without a tuner (T9k rule)")
        s_name = None
    if t_name is None and a_name is None:
        errors.add(invalid(paths["tuner"], "a tuner or an advisor is required", None))
        return None, None, notes
    if t_name is not None:
        plan = errors.run(map_tuner, t_name, t_args, space, paths["tuner"], seed)
    else:
        plan = errors.run(map_advisor, a_name, a_args, space, paths["advisor"], seed)
    component = None
    if s_name is not None:
        component = errors.run(map_assessor, s_name, s_args, paths["assessor"], seed)
        if plan is not None and plan.scheduler is not None and component is not None:
            errors.add(invalid(paths["assessor"], f"the tuner {t_name!r} schedules trials "
                               "itself and takes no assessor", s_name))
            component = None
    if plan is not None and plan.note:
        notes.append(plan.note)
    return plan, component, notes


def _space(spec_file: Path, errors: Errors) -> SearchSpace | None:
    from rafiki_ray.spaces import load_space

    return errors.run(load_space, spec_file)


# ------------------------------------------------------------------------------------- NNI


def parse_nni(data: Mapping[str, Any], spec_file: Path, errors: Errors) -> dict[str, Any]:
    """Fields of an :class:`Experiment` from an NNI config (v2 names, v1 names accepted)."""
    check_keys(data, "", _NNI_KEYS, errors, _NNI_IGNORED)
    notes = [f"{k}: has no meaning on Ray, ignored" for k in sorted(_NNI_IGNORED & set(data))
             if k not in ("description",)]
    if data.get("useAnnotation"):
        errors.add(invalid("useAnnotation", "NNI annotations are not supported; use "
                           "searchSpace and the trial API", True))
    space = _space(spec_file, errors)
    trial = data.get("trial") if isinstance(data.get("trial"), Mapping) else {}
    if data.get("trial") is not None and not isinstance(data.get("trial"), Mapping):
        errors.add(invalid_type("trial", "must be a mapping (NNI v1)", data.get("trial")))
    if trial:
        check_keys(trial, "trial", {"command", "codeDir", "gpuNum"}, errors)
    command = data.get("trialCommand", trial.get("command"))
    code_dir = data.get("trialCodeDirectory", trial.get("codeDir", "."))
    gpus = data.get("trialGpuNumber", trial.get("gpuNum", 0))
    out: dict[str, Any] = {
        "name": safe_name(data.get("experimentName"), spec_file.stem),
        "space": space, "source": "nni", "notes": notes,
    }
    out["max_concurrent"] = errors.run(
        positive_int, data.get("trialConcurrency", 1), "trialConcurrency", default=1)
    n_key = "maxTrialNumber" if "maxTrialNumber" in data else "maxTrialNum"
    if data.get(n_key) is not None:
        out["num_samples"] = errors.run(positive_int, data[n_key], n_key, default=1)
    d_key = "maxExperimentDuration" if "maxExperimentDuration" in data else "maxExecDuration"
    if data.get(d_key) is not None:
        out["time_budget_s"] = errors.run(duration, data[d_key], d_key)
    if data.get("maxTrialDuration") is not None:
        out["max_trial_duration_s"] = errors.run(duration, data["maxTrialDuration"],
                                                 "maxTrialDuration")
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        errors.add(invalid("trialGpuNumber", "must be an integer >= 0", gpus))
        gpus = 0
    out["resources"] = {"cpu": 1, "gpu": gpus}
    out["trial"] = _command_trial(command, code_dir, spec_file, "trialCommand", errors,
                                  name=out["name"])
    tuner_keys = ("name", "builtinTunerName")
    plan_parts = (
        _component(data.get("tuner"), "tuner", tuner_keys, errors),
        _component(data.get("assessor"), "assessor", ("name", "builtinAssessorName"), errors),
        _component(data.get("advisor"), "advisor", ("name", "builtinAdvisorName"), errors),
    )
    _apply_plan(out, space, plan_parts, "nni",
                {"tuner": "tuner", "assessor": "assessor", "advisor": "advisor"}, errors)
    return out


def _command_trial(command: Any, code_dir: Any, spec_file: Path, path: str, errors: Errors,
                   *, name: str, env: Mapping[str, str] | None = None) -> CommandTrial | None:
    if command is None:
        return None  # load_experiment reports it unless a Python trial is given
    if isinstance(command, (list, tuple)):
        if not command or not all(isinstance(c, str) for c in command):
            errors.add(invalid(path, "must be a command line or a list of strings", command))
            return None
        command = tuple(command)
    elif not isinstance(command, str) or not command.strip():
        errors.add(invalid(path, "must be a non-empty command line", command))
        return None
    if not isinstance(code_dir, str):
        errors.add(invalid_type(f"{path} directory", "must be a path", code_dir))
        return None
    directory = (spec_file.parent / code_dir).resolve()
    if not directory.is_dir():
        errors.add(invalid(f"{path} directory", "is not a directory on this machine "
                           f"({directory})", code_dir))
        return None
    return CommandTrial(command=command, code_dir=str(directory), env=dict(env or {}),
                        experiment_id=name)


def _apply_plan(out: dict[str, Any], space: SearchSpace | None, parts: tuple, rules: str,
                paths: dict[str, str], errors: Errors) -> None:
    plan, assessor, notes = assemble(space, *parts, rules=rules, paths=paths, seed=None,
                                     errors=errors)
    out["notes"] = [*out.get("notes", []), *notes]
    if plan is None:
        return
    out["mode"] = plan.mode
    out["searcher"] = plan.searcher
    out["scheduler"] = plan.scheduler or assessor
    out["configs"] = plan.configs
    if plan.budget is not None and "num_samples" not in out:
        from rafiki_ray.schedulers.hyperband import bracket_table

        try:
            table = bracket_table(plan.budget["max_iter"], plan.budget["eta"])
            out["num_samples"] = sum(b["n"] for b in table)
        except (TypeError, ValueError, OverflowError):
            pass  # the scheduler reports its own error when built
    if plan.pbt_population is not None:
        n = out.get("num_samples")
        generations = max(1, n // plan.pbt_population) if n else 1
        out["num_samples"] = plan.pbt_population
        out["pbt_generations"] = generations
        out["notes"].append(f"PBTTuner: population {plan.pbt_population}, {generations} "
                            "generation(s) of one command run each")
    if out.get("num_samples") is None and plan.configs is None:
        out["num_samples"] = -1


# ------------------------------------------------------------------------------------- T9k


def parse_t9k(data: Mapping[str, Any], spec_file: Path, errors: Errors) -> dict[str, Any]:
    """Fields of an :class:`Experiment` from a T9k ``AutoTuneExperiment``."""
    check_keys(data, "", {"apiVersion", "kind", "metadata", "spec"}, errors, {"status"})
    if data.get("kind", "AutoTuneExperiment") != "AutoTuneExperiment":
        errors.add(invalid("kind", "must be AutoTuneExperiment", data.get("kind")))
    api = data.get("apiVersion", "tensorstack.dev/v1beta1")
    if not (isinstance(api, str) and api.startswith("tensorstack.dev/")):
        errors.add(invalid("apiVersion", "must be tensorstack.dev/v1beta1", api))
    spec = data.get("spec")
    if not isinstance(spec, Mapping):
        errors.add(invalid_type("spec", "must be a mapping", spec))
        return {"name": "experiment", "space": None}
    check_keys(spec, "spec", _T9K_SPEC_KEYS, errors, _T9K_SPEC_IGNORED)
    meta = data.get("metadata") if isinstance(data.get("metadata"), Mapping) else {}
    out: dict[str, Any] = {"name": safe_name(meta.get("name"), spec_file.stem),
                           "space": _space(spec_file, errors), "source": "t9k", "notes": []}
    out["notes"] += [f"spec.{k}: not used on Ray" for k in sorted(_T9K_SPEC_IGNORED & set(spec))]
    out["max_concurrent"] = errors.run(positive_int, spec.get("trialConcurrency", 1),
                                       "spec.trialConcurrency", default=1)
    if spec.get("maxTrialNum") is not None:
        out["num_samples"] = errors.run(positive_int, spec["maxTrialNum"], "spec.maxTrialNum",
                                        default=1)
    if spec.get("maxExecSeconds") is not None:
        out["time_budget_s"] = errors.run(duration, spec["maxExecSeconds"],
                                          "spec.maxExecSeconds")
    trial, resources = _t9k_trial(spec.get("trainingConfig"), spec_file, errors, out["name"])
    out["trial"], out["resources"] = trial, resources
    parts = (
        _component(spec.get("tuner"), "spec.tuner", ("builtinTunerName",), errors),
        _component(spec.get("assessor"), "spec.assessor", ("builtinAssessorName",), errors),
        _component(spec.get("advisor"), "spec.advisor", ("builtinAdvisorName",), errors),
    )
    _apply_plan(out, out["space"], parts, "t9k",
                {"tuner": "spec.tuner", "assessor": "spec.assessor", "advisor": "spec.advisor"},
                errors)
    return out


def _t9k_trial(config: Any, spec_file: Path, errors: Errors, name: str
               ) -> tuple[CommandTrial | None, dict[str, float]]:
    path = "spec.trainingConfig"
    resources: dict[str, float] = {"cpu": 1}
    if config is None:
        return None, resources
    if not isinstance(config, Mapping):
        errors.add(invalid_type(path, "must be a mapping", config))
        return None, resources
    check_keys(config, path, {"type", "tasks"}, errors)
    if config.get("type") not in ("tensorflow", "pytorch", "xgboost"):
        errors.add(invalid(f"{path}.type", "must be tensorflow, pytorch or xgboost",
                           config.get("type")))
    tasks = config.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        errors.add(invalid(f"{path}.tasks", "must be a non-empty list of tasks", tasks))
        return None, resources
    if len(tasks) > 1 or not isinstance(tasks[0], Mapping) or tasks[0].get("replicas", 1) != 1:
        errors.add(invalid(f"{path}.tasks", "one task with replicas: 1 is supported (each "
                           "trial is one process on Ray)", tasks))
        return None, resources
    tpath = f"{path}.tasks[0].template.spec.containers"
    template = tasks[0].get("template")
    pod = template.get("spec") if isinstance(template, Mapping) else None
    containers = pod.get("containers") if isinstance(pod, Mapping) else None
    if not isinstance(containers, list) or not containers or not isinstance(containers[0],
                                                                             Mapping):
        errors.add(invalid(tpath, "must be a non-empty list of containers", containers))
        return None, resources
    c = containers[0]
    cpath = f"{tpath}[0]"
    command, args = c.get("command") or [], c.get("args") or []
    if not isinstance(command, list) or not isinstance(args, list):
        errors.add(invalid(f"{cpath}.command", "command and args must be lists of strings",
                           [command, args]))
        return None, resources
    argv = [*command, *args]
    if not argv or not all(isinstance(a, str) for a in argv):
        errors.add(invalid(f"{cpath}.command", "must be a non-empty list of strings",
                           c.get("command")))
        return None, resources
    env = {}
    env_list = c.get("env") or []
    if not isinstance(env_list, list):
        errors.add(invalid_type(f"{cpath}.env", "must be a list of {name, value}", env_list))
        env_list = []
    for i, item in enumerate(env_list):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            errors.add(invalid(f"{cpath}.env[{i}]", "must be {name, value}", item))
            continue
        env[item["name"]] = str(item.get("value", ""))
    res = c.get("resources")
    limits: dict[str, Any] = {}
    for part in ("requests", "limits"):
        section = res.get(part) if isinstance(res, Mapping) else None
        if section is not None and not isinstance(section, Mapping):
            errors.add(invalid_type(f"{cpath}.resources.{part}", "must be a mapping", section))
        elif section:
            limits.update(section)
    if "cpu" in limits:
        resources["cpu"] = _cpu(limits["cpu"], f"{cpath}.resources.cpu", errors)
    if "nvidia.com/gpu" in limits:
        resources["gpu"] = _cpu(limits["nvidia.com/gpu"], f"{cpath}.resources.nvidia.com/gpu",
                                errors)
    trial = _command_trial(tuple(argv), c.get("workingDir", "."), spec_file,
                           f"{cpath}.workingDir", errors, name=name, env=env)
    return trial, resources


def _cpu(value: Any, path: str, errors: Errors) -> float:
    text = str(value)
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        errors.add(invalid(path, "must be a number of CPUs / GPUs ('2', '500m')", value))
        return 1.0
