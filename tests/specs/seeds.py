"""The example specs of the seed documents, as written there, and the fixes each needs.

Seed 001 (T9k AutoTuneExperiment docs) and seed 004 (Polyaxon v0 "Hyperparams Search" docs).
Each ``fixed_*`` function returns the seed's spec with its documented typos fixed; every fix
is listed in ``FIXES`` (the tests assert that the unfixed spec fails where a fix is needed).
"""

from __future__ import annotations

import json

#: Seed 001, "创建 AutoTuneExperiment": the basic example, verbatim.
T9K_BASIC = """\
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
      "learning_rate": {"_type": "choice", "_value": [0.0001, 0.001, 0.01, 0.1]}
    }
  trainingConfig:
    type: tensorflow
    tasks:
      - type: worker
        replicas: 1
        template:
          spec:
            securityContext:
              runAsUser: 1000
            containers:
              - command:
                  - python3
                  - dist_mnist.py
                workingDir: /mnt/mnist-distributed
                imagePullPolicy: IfNotPresent
                image: t9kpublic/tensorflow-1.15.2:tuner-2.23
                name: tensorflow
  tuner:
    builtinTunerName: TPE
    classArgs: |-
      {
        "optimize_mode": "minimize", 
        "constant_liar_type": "min"
      }
"""

#: Seed 001's algorithm sections (each a ``spec`` fragment in the docs), verbatim JSON.
T9K_SECTIONS = {
    "anneal_medianstop": {
        "tuner": {"builtinTunerName": "Anneal", "classArgs":
                  '{"optimize_mode": "minimize", "constant_liar_type": "min"}'},
        "assessor": {"builtinAssessorName": "Medianstop", "classArgs":
                     '{"optimize_mode": "maximize", "start_step": 0}'},
    },
    "evolution": {"tuner": {"builtinTunerName": "Evolution", "classArgs":
                            '{"optimize_mode": "minimize", "population_size": 32}'}},
    "batch": {"tuner": {"builtinTunerName": "Batch", "classArgs":
                        '{"optimize_mode": "minimize", "population_size": 32}'},
              "searchSpace": '{"learning_rate": {"_type": "choice", '
                             '"_value": [0.0001, 0.001, 0.01, 0.1]}}'},
    "grid": {"tuner": {"builtinTunerName": "GridSearch"}},
    "metis": {"tuner": {"builtinTunerName": "MetisTuner", "classArgs": json.dumps({
        "optimize_mode": "maximize", "no_resampling": True, "no_candidates": False,
        "selection_num_starting_points": 600, "cold_start_num": 10,
        "exploration_probability": 0.9})}},
    "gp": {"tuner": {"builtinTunerName": "GPTuner", "classArgs": json.dumps({
        "optimize_mode": "maximize", "utility": "ei", "kappa": 5, "xi": 0, "nu": 2.5,
        "alpha": 1e-6, "cold_start_num": 10, "selection_num_warm_up": 100000,
        "selection_num_starting_points": 250})}},
    "ppo": {"tuner": {"builtinTunerName": "PPOTuner", "classArgs": json.dumps({
        "optimize_mode": "maximize", "trials_per_update": 20, "epochs_per_update": 4,
        "minibatch_size": 4, "ent_coef": 0.0, "lr": 3e-4, "vf_coef": 0.5,
        "max_grad_norm": 0.5, "gamma": 0.99, "lam": 0.95, "cliprange": 0.2})},
        "searchSpace": json.dumps({
            "first_conv": {"_type": "layer_choice", "_value": ["conv5x5", "conv3x3"]},
            "mid_conv": {"_type": "layer_choice", "_value": ["0", "1"]},
            "skip": {"_type": "input_choice",
                     "_value": {"candidates": ["", ""], "n_chosen": 1}}})},
    "pbt": {"tuner": {"builtinTunerName": "PBTTuner", "classArgs": json.dumps({
        "optimize_mode": "maximize", "population_size": 10, "factor": 0.2,
        "resample_probability": 0.25, "fraction": 0.2})}},
    "curvefitting": {"tuner": {"builtinTunerName": "TPE"},
                     "assessor": {"builtinAssessorName": "Curvefitting", "classArgs": json.dumps(
                         {"optimize_mode": "minimize", "epoch_num": 20, "start_step": 6,
                          "threshold": 0.95, "gap": 1})}},
}

#: Documented typos of the seeds and what the tests change (test-size changes are separate).
FIXES = {
    "t9k.workingDir": "/mnt/mnist-distributed (a path in the docs' container image) -> the "
                      "test's code directory, whose dist_mnist.py is the PyTorch digits script",
    "t9k.8092": "batch_size 8092 -> 8192 (the powers of two 512..4096 continue with 8192)",
    "t9k.batch.classArgs": "Batch: the example passes optimize_mode / population_size although "
                           "the text says Batch takes no arguments (NNI's BatchTuner has none) "
                           "-> classArgs removed",
    "t9k.curvefitting.optimize_mode": "Curvefitting: optimize_mode 'minimize' -> removed "
                                      "(NNI's Curvefitting assessor maximizes only and has no "
                                      "optimize_mode argument)",
    "t9k.ppo.candidates": "PPOTuner: input_choice candidates [\"\", \"\"] (the names were "
                          "lost from the page) -> [\"first_conv\", \"mid_conv\"]; duplicates "
                          "are refused by the space adapter",
    "polyaxon.cmd.backslash": "run.cmd: the backslash line continuations inside a plain YAML "
                              "scalar fold into ' \\\\ ', which a shell reads as escaped spaces "
                              "(arguments ' --lr=...') -> backslashes removed",
    "polyaxon.bo.pvalues": "bo example 1 uses pvalues, which bo refuses (only values, range, "
                           "linspace, logspace, geomspace, uniform) -> values",
    "polyaxon.partial": "the hyperband and bo examples elide the rest of the file ('...') -> "
                        "the run section of the first example (with the resource) is added",
}


def t9k_spec(section: str | None = None, *, working_dir: str, trials: int = 50,
             fix: bool = True) -> str:
    """Seed 001's basic example, with ``section``'s tuner/assessor (and space) replaced in."""
    import yaml

    data = yaml.safe_load(T9K_BASIC)
    spec = data["spec"]
    if fix:
        spec["searchSpace"] = spec["searchSpace"].replace("8092", "8192")
        container = spec["trainingConfig"]["tasks"][0]["template"]["spec"]["containers"][0]
        container["workingDir"] = working_dir
    spec["maxTrialNum"] = trials
    if section is not None:
        spec.pop("tuner", None)
        part = json.loads(json.dumps(T9K_SECTIONS[section]))
        if fix and section == "batch":
            part["tuner"].pop("classArgs")
        if fix and section == "ppo":
            part["searchSpace"] = part["searchSpace"].replace(
                '"candidates": ["", ""]', '"candidates": ["first_conv", "mid_conv"]')
        if fix and section == "curvefitting":
            args = json.loads(part["assessor"]["classArgs"])
            args.pop("optimize_mode")
            part["assessor"]["classArgs"] = json.dumps(args)
        spec.update(part)
    return yaml.safe_dump(data, sort_keys=False)


#: Seed 004's examples, verbatim (the hyperband / bo ones complete only up to "...").
POLYAXON_GRID = """\
---
version: 1

kind: group

declarations:
  batch_size: 128

hptuning:
  matrix:
    lr:
      logspace: 0.01:0.1:5
    dropout:
      values: [0.2, 0.5]

build:
  image: tensorflow/tensorflow:1.4.1-py3
  build_steps:
    - pip install scikit-learn

run:
  cmd: python3 train.py --batch-size={{ batch_size }} --lr={{ lr }} --dropout={{ dropout }}
"""

POLYAXON_GRID_N = POLYAXON_GRID.replace(
    "hptuning:\n", "hptuning:\n  grid_search:\n    n_experiments: 4\n\n")

POLYAXON_RANDOM = """\
---
version: 1

kind: group

declarations:
  batch_size: 128

hptuning:
  concurrency: 2

  random_search:
    n_experiments: 40

  matrix:
    lr:
      logspace: 0.01:0.1:5
    dropout:
      values: [0.2, 0.5]
    activation:
      pvalues: [[elu, 0.1], [relu, 0.2], [sigmoid, 0.7]]
    param1:
      uniform: [0, 1]

  early_stopping:
  - metric: accuracy
    value: 0.9
    optimization: maximize
  - metric: loss
    value: 0.05
    optimization: minimize

build:
  image: tensorflow/tensorflow:1.4.1-py3
  build_steps:
    - pip install scikit-learn

run:
  cmd: python3 train.py --batch-size={{ batch_size }} \\
                        --lr={{ lr }} \\
                        --dropout={{ dropout }} \\
                        --activation={{ activation }} \\
                        --param1={{ param1 }}
"""

_RUN = """
run:
  cmd: python3 train.py --lr={{ learning_rate }} --dropout={{ dropout }} --activation={{ activation }} --epochs={{ num_steps }}
"""

POLYAXON_HYPERBAND = """\
hptuning:
  concurrency: 2

  hyperband:
    max_iter: 81
    eta: 3
    resource:
      name: num_steps
      type: int
    metric:
      name: loss
      optimization: minimize
    resume: False

  matrix:
    learning_rate:
      uniform: [0, 0.9]
    dropout:
      values: [0.25, 0.3]
    activation:
      pvalues: [[relu, 0.1], [sigmoid, 0.8]]
"""

POLYAXON_HYPERBAND_ES = POLYAXON_HYPERBAND + """
  early_stopping:
    - metric: accuracy
      value: 0.9
      optimization: maximize
    - metric: loss
      value: 0.05
      optimization: minimize
"""

POLYAXON_BO = """\
hptuning:
  concurrency: 2
  bo:
    n_iterations: 15
    n_initial_trials: 30
    metric:
      name: loss
      optimization: minimize
    utility_function:
      acquisition_function: ucb
      kappa: 1.2
      gaussian_process:
        kernel: matern
        length_scale: 1.0
        nu: 1.9
        n_restarts_optimizer: 0

  matrix:
    learning_rate:
      uniform: [0, 0.9]
    dropout:
      values: [0.25, 0.3]
    activation:
      pvalues: [[relu, 0.1], [sigmoid, 0.8]]
"""

POLYAXON_BO_ES = """\
hptuning:
  concurrency: 2
  bo:
    n_iterations: 15
    n_initial_trials: 30
    metric:
      name: loss
      optimization: minimize
    utility_function:
      acquisition_function: ei
      eps: 1.2
      gaussian_process:
        kernel: rbf
        length_scale: 1.0
        nu: 1.9
        n_restarts_optimizer: 0

  matrix:
    learning_rate:
      uniform: [0.001, 0.09]
    dropout:
      values: [0.25, 0.3]
    activation:
      values: [relu, sigmoid]

  early_stopping:
    - metric: accuracy
      value: 0.9
      optimization: maximize
    - metric: loss
      value: 0.05
      optimization: minimize
"""


def polyaxon_spec(text: str, fix: bool = True) -> str:
    """A seed 004 example made whole (``run`` added where elided) and, with ``fix``, fixed."""
    if "run:" not in text:
        text = "version: 1\nkind: group\n" + text + _RUN
    if fix:
        text = text.replace(" \\\n", "\n")
        if "bo:" in text:
            text = text.replace("pvalues: [[relu, 0.1], [sigmoid, 0.8]]",
                                "values: [relu, sigmoid]")
    return text
