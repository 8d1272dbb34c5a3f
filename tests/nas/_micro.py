"""Loads ``examples/nas/micro_digits.py`` (not a package) for the NAS tests and benchmark, and
registers it to be pickled by value so Ray workers need not import it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_micro() -> ModuleType:
    name = "rafiki_examples_micro_digits"
    if name in sys.modules:
        return sys.modules[name]
    import cloudpickle

    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "nas" / "micro_digits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    return module


def tiny(config: dict, **over: object) -> dict:
    """Quick settings for tests on 2 busy cores (the knobs are plain config entries)."""
    out = dict(config, search_channels=4, channels=8, trial_epochs=1, epochs=2,
               batch_size=64, quick_eval_size=100)
    out.update(over)
    return out
