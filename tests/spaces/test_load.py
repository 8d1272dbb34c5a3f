"""``load_space``: format detection by content, for every supported file kind."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rafiki_ray.knobs import CategoricalKnob, FloatKnob, IntegerKnob
from rafiki_ray.spaces import SearchSpace, from_knobs, from_nni, load_space
from rafiki_ray.spaces.adapters.load import detect_format

NNI_SPACE = {
    "lr": {"_type": "loguniform", "_value": [1e-4, 0.1]},
    "batch": {"_type": "choice", "_value": [16, 32]},
    "layers": {"_type": "randint", "_value": [1, 4]},
}

T9K_YAML = """\
apiVersion: tensorstack.dev/v1beta1
kind: AutoTuneExperiment
metadata:
  name: experiment-sample
spec:
  maxExecSeconds: 7200
  maxTrialNum: 50
  trialConcurrency: 3
  searchSpace: |-
    {
      "batch_size": {"_type": "choice", "_value": [512, 1024, 2048, 4096, 8092]},
      "learning_rate": {"_type": "{LR_TYPE}", "_value": [{LR_VALUE}]}
    }
  tuner:
    builtinTunerName: TPE
    classArgs: |-
      {"optimize_mode": "minimize", "constant_liar_type": "min"}
"""

NNI_EXPERIMENT_YAML = """\
experimentName: mnist
trialCommand: python3 mnist.py
trialConcurrency: 2
maxTrialNumber: 10
{SPACE}
tuner:
  name: TPE
  classArgs:
    optimize_mode: maximize
trainingService:
  platform: local
"""

POLYAXON_FILE = """\
version: 1
kind: group
declarations:
  batch_size: 128
hptuning:
  concurrency: 2
  random_search:
    n_experiments: 5
  matrix:
    lr:
      logspace: '0.01:0.1:5'
    dropout:
      values: [0.25, 0.5]
run:
  cmd: python3 train.py --lr={{ lr }}
"""

RAPIDFIRE_PY = """\
from rafiki_ray.spaces import List, Range

config = {
    "optimizer": List(["adam", "sgd"]),
    "lr": Range(1e-4, 1e-1, log=True),
    "model": {"units": Range(16, 64, step=16)},
}
"""

RAFIKI_PY = """\
from rafiki_ray.knobs import CategoricalKnob, FloatKnob, IntegerKnob


class Base:
    pass


class SkSvm(Base):
    @staticmethod
    def get_knob_config():
        return {
            "C": FloatKnob(1e-4, 1e4, is_exp=True),
            "kernel": CategoricalKnob(["rbf", "linear"]),
            "degree": IntegerKnob(2, 5),
        }
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _t9k(lr_type: str = "loguniform", lr_value: str = "1e-4, 0.1") -> str:
    return T9K_YAML.replace("{LR_TYPE}", lr_type).replace("{LR_VALUE}", lr_value)


@pytest.mark.parametrize("name", ["space.json", "space.yaml", "space.yml", "space"])
def test_nni_search_space_files(tmp_path, name):
    text = json.dumps(NNI_SPACE)  # JSON is valid YAML too
    assert load_space(_write(tmp_path, name, text)) == from_nni(NNI_SPACE)


def test_t9k_autotune_experiment(tmp_path):
    space = load_space(_write(tmp_path, "exp.yaml", _t9k()))
    assert set(space) == {"batch_size", "learning_rate"}
    assert space == from_nni(json.dumps({
        "batch_size": {"_type": "choice", "_value": [512, 1024, 2048, 4096, 8092]},
        "learning_rate": {"_type": "loguniform", "_value": [1e-4, 0.1]},
    }))


@pytest.mark.parametrize(
    "space_yaml",
    [
        "searchSpace:\n  lr:\n    _type: loguniform\n    _value: [0.0001, 0.1]",
        "search_space:\n  lr:\n    _type: loguniform\n    _value: [0.0001, 0.1]",
        'searchSpace: \'{"lr": {"_type": "loguniform", "_value": [0.0001, 0.1]}}\'',
        "searchSpaceFile: sub/space.json",
    ],
    ids=["camel", "snake", "json-string", "file"],
)
def test_nni_experiment_configs(tmp_path, space_yaml):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", "space.json", json.dumps({"lr": {"_type": "loguniform", "_value": [1e-4, 0.1]}}))
    cfg = _write(tmp_path, "config.yml", NNI_EXPERIMENT_YAML.replace("{SPACE}", space_yaml))
    assert load_space(cfg) == from_nni({"lr": {"_type": "loguniform", "_value": [1e-4, 0.1]}})


def test_nni_v1_search_space_path_json(tmp_path):
    _write(tmp_path, "search_space.json", json.dumps(NNI_SPACE))
    cfg = _write(tmp_path, "config.json", json.dumps({"authorName": "x", "searchSpacePath": "search_space.json"}))
    assert load_space(cfg) == from_nni(NNI_SPACE)


def test_polyaxon_file_section_and_bare_matrix(tmp_path):
    from rafiki_ray.spaces import from_polyaxon

    whole = load_space(_write(tmp_path, "polyaxonfile.yml", POLYAXON_FILE))
    assert whole["batch_size"].value == 128  # declarations become constants
    assert set(whole) == {"batch_size", "lr", "dropout"}
    matrix = {"lr": {"logspace": "0.01:0.1:5"}, "dropout": {"values": [0.25, 0.5]}}
    section = load_space(_write(tmp_path, "hptuning.json", json.dumps({"matrix": matrix})))
    bare = load_space(_write(tmp_path, "matrix.yaml", json.dumps(matrix)))
    expected = getattr(from_polyaxon({"matrix": matrix}), "space", None)
    assert section == bare == expected
    assert bare.grid_size() == 10  # a logspace of 5 points x 2 values


def test_polyaxon_unquoted_yaml_range_gets_a_hint(tmp_path):
    f = _write(tmp_path, "matrix.yaml", "lr:\n  range: 1:10:2\n")
    with pytest.raises(ValueError, match="quote"):
        load_space(f)


def test_rapidfire_python_file(tmp_path):
    space = load_space(_write(tmp_path, "rf_config.py", RAPIDFIRE_PY))
    assert set(space) == {"optimizer", "lr", "model"}
    for cfg in space.samples(20, seed=0):
        assert cfg["optimizer"] in ("adam", "sgd") and 1e-4 <= cfg["lr"] <= 1e-1
        assert cfg["model"]["units"] in (16, 32, 48, 64)


def test_rafiki_model_file(tmp_path):
    space = load_space(_write(tmp_path, "sk_svm.py", RAFIKI_PY))
    assert space == from_knobs({
        "C": FloatKnob(1e-4, 1e4, is_exp=True),
        "kernel": CategoricalKnob(["rbf", "linear"]),
        "degree": IntegerKnob(2, 5),
    })


def test_serialized_space(tmp_path):
    space = from_nni({**NNI_SPACE, "m": {"_type": "choice", "_value": [{"_name": "a"}, {"_name": "b"}]}})
    assert load_space(_write(tmp_path, "space.json", space.to_json())) == space
    assert detect_format(space.to_dict()) == "space_dict"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("unknown.json", '{"lr": [0.1, 0.2]}', "looked for a serialized SearchSpace"),
        ("list.yaml", "- 1\n- 2\n", "looked for"),
        ("empty.json", "{}", "looked for"),
        ("broken.json", '{"lr": ', "is not valid JSON"),
        ("broken.yaml", "a: [1, 2\n", "is not valid YAML"),
        ("nothing.py", "x = 1\n", "looked for a Rafiki model"),
        ("both.py", RAFIKI_PY + "\nconfig = {'a': 1}\n", "ambiguous"),
        ("two.py", RAFIKI_PY + "\n\nclass Other(SkSvm):\n    pass\n", "defines several Rafiki models"),
        ("two_configs.py", "config = {'a': 1}\nparam_config = {'b': 2}\n", "keep one"),
        ("bad_t9k.yaml", _t9k("loguniform", "0, 0.1"),
         "bad_t9k.yaml:spec.searchSpace.learning_rate._value: loguniform needs 0 < low < high, got [0, 0.1]"),
        ("bad_ref.yml", "searchSpaceFile: missing.json\n", "bad_ref.yml:searchSpaceFile: names no file"),
    ],
)
def test_errors_name_the_file(tmp_path, name, text, expected):
    f = _write(tmp_path, name, text)
    with pytest.raises(ValueError) as info:
        load_space(f)
    assert str(f) in str(info.value) and expected in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_space(tmp_path / "nope.json")


def test_detect_format():
    assert detect_format(NNI_SPACE) == "nni"
    assert detect_format({"spec": {"searchSpace": "{}"}}) == "t9k"
    assert detect_format({"search_space": {}}) == "nni_experiment"
    assert detect_format({"hptuning": {}}) == "polyaxon"
    assert detect_format({"x": {"values": [1]}}) == "polyaxon"
    assert detect_format({"x": 1}) is None
    assert detect_format([]) is None
    assert isinstance(load_space, object) and SearchSpace


def test_python_file_leaves_no_module_behind(tmp_path):
    import sys

    before = set(sys.modules)
    load_space(_write(tmp_path, "m.py", textwrap.dedent(RAFIKI_PY)))
    assert not {m for m in set(sys.modules) - before if m.startswith("_rafiki_ray_loaded_")}
