"""Property tests of the spec parsers: generated valid NNI / T9k / Polyaxon specs build an
Experiment whose fields are the spec's; a spec with any field replaced by junk either builds
or raises only ValueError / TypeError (never another exception)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rafiki_ray.specs import load_experiment, validate_experiment

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@st.composite
def nni_params(draw):
    kind = draw(st.sampled_from(["choice", "uniform", "loguniform", "randint", "quniform"]))
    if kind == "choice":
        return {"_type": "choice", "_value": draw(st.lists(
            st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "c"])), min_size=1,
            max_size=4, unique=True))}
    lo = draw(st.integers(1, 50))
    hi = lo + draw(st.integers(1, 50))
    if kind == "quniform":
        return {"_type": kind, "_value": [lo, hi, draw(st.sampled_from([1, 2, 0.5]))]}
    return {"_type": kind, "_value": [lo, hi]}


SPACES = st.dictionaries(NAMES, nni_params(), min_size=1, max_size=4)
TUNERS = st.sampled_from(["TPE", "Random", "Anneal", "Evolution"])
MODES = st.sampled_from(["maximize", "minimize"])
DURATIONS = st.one_of(st.integers(1, 10**6),
                      st.builds(lambda n, u: f"{n}{u}", st.integers(1, 99),
                                st.sampled_from("smhd")))
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(d):
    return float(d) if isinstance(d, int) else float(d[:-1]) * _UNIT[d[-1]]


@st.composite
def nni_configs(draw):
    cfg = {
        "experimentName": draw(NAMES),
        "searchSpace": draw(SPACES),
        "trialCommand": "python train.py",
        "trialConcurrency": draw(st.integers(1, 4)),
        "maxTrialNumber": draw(st.integers(1, 50)),
        "maxExperimentDuration": draw(DURATIONS),
        "tuner": {"name": draw(TUNERS), "classArgs": {"optimize_mode": draw(MODES)}},
    }
    if draw(st.booleans()):
        cfg["assessor"] = {"name": "Medianstop",
                           "classArgs": {"optimize_mode": draw(MODES),
                                         "start_step": draw(st.integers(0, 5))}}
    return cfg


def _t9k(cfg):
    spec = {"maxExecSeconds": _seconds(cfg["maxExperimentDuration"]),
            "maxTrialNum": cfg["maxTrialNumber"], "trialConcurrency": cfg["trialConcurrency"],
            "searchSpace": json.dumps(cfg["searchSpace"]),
            "trainingConfig": {"type": "pytorch", "tasks": [{"type": "worker", "replicas": 1,
                "template": {"spec": {"containers": [{"command": ["python", "train.py"],
                                                      "name": "c"}]}}}]},
            "tuner": {"builtinTunerName": cfg["tuner"]["name"],
                      "classArgs": json.dumps(cfg["tuner"]["classArgs"])}}
    if "assessor" in cfg:
        spec["assessor"] = {"builtinAssessorName": "Medianstop",
                            "classArgs": json.dumps(cfg["assessor"]["classArgs"])}
    return {"apiVersion": "tensorstack.dev/v1beta1", "kind": "AutoTuneExperiment",
            "metadata": {"name": cfg["experimentName"]}, "spec": spec}


@st.composite
def polyaxon_files(draw):
    matrix = {}
    for name in draw(st.lists(NAMES, min_size=1, max_size=3, unique=True)):
        matrix[name] = draw(st.one_of(
            st.builds(lambda v: {"values": v}, st.lists(st.integers(0, 9), min_size=1,
                                                         max_size=3, unique=True)),
            st.builds(lambda a, n: {"range": [a, a + n, 1]}, st.integers(0, 5),
                      st.integers(1, 4)),
            st.builds(lambda a: {"linspace": f"{a}:{a + 1}:3"}, st.integers(0, 5)),
        ))
    algo = draw(st.sampled_from(["grid_search", "random_search"]))
    n = draw(st.integers(1, 5))
    return {"version": 1, "kind": "group",
            "declarations": {"batch": draw(st.integers(1, 64))},
            "hptuning": {"concurrency": draw(st.integers(1, 3)), "seed": 0,
                         algo: {"n_experiments": n}, "matrix": matrix},
            "run": {"cmd": "python train.py " + " ".join(f"--{k}={{{{ {k} }}}}"
                                                         for k in matrix)}}


def _load(data, name="spec.yml"):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return load_experiment(path), validate_experiment(path)


_SETTINGS = settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(nni_configs())
def test_valid_nni_configs_build(cfg):
    exp, errors = _load(cfg)
    assert errors == []
    assert exp.source == "nni" and exp.name == cfg["experimentName"]
    assert exp.num_samples == cfg["maxTrialNumber"]
    assert exp.max_concurrent == cfg["trialConcurrency"]
    assert exp.time_budget_s == _seconds(cfg["maxExperimentDuration"])
    assert set(exp.space) == set(cfg["searchSpace"])
    assert exp.mode == {"maximize": "max", "minimize": "min"}[
        cfg["tuner"]["classArgs"]["optimize_mode"]]
    assert (exp.scheduler is not None) == ("assessor" in cfg)


@_SETTINGS
@given(nni_configs())
def test_valid_t9k_specs_build(cfg):
    exp, errors = _load(_t9k(cfg))
    assert errors == [] and exp.source == "t9k"
    assert exp.num_samples == cfg["maxTrialNumber"]
    assert exp.trial.command == ("python", "train.py")
    assert set(exp.space) == set(cfg["searchSpace"])


@_SETTINGS
@given(polyaxon_files())
def test_valid_polyaxon_files_build(data):
    exp, errors = _load(data)
    assert errors == [] and exp.source == "polyaxon"
    assert exp.max_concurrent == data["hptuning"]["concurrency"]
    assert 1 <= len(exp.configs) <= 5
    rendered = exp.trial.render(dict(exp.configs[0]))
    for key in data["hptuning"]["matrix"]:
        assert f"--{key}={exp.configs[0][key]}" in rendered


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                 st.text(max_size=8), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _paths(data, prefix=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


@st.composite
def broken(draw):
    kind = draw(st.sampled_from(["nni", "t9k", "polyaxon"]))
    data = draw(polyaxon_files()) if kind == "polyaxon" else draw(nni_configs())
    if kind == "t9k":
        data = _t9k(data)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))))  # again: a parent may be junk now
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = draw(JUNK)
    return data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken())
def test_bad_specs_raise_only_value_or_type_errors(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        errors = validate_experiment(path)  # never raises
        try:
            load_experiment(path)
        except (ValueError, TypeError) as exc:
            assert errors and str(path) in str(exc)
        else:
            assert errors == []
