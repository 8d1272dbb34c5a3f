"""Quick settings of the digits micro space for the NAS tests."""

from __future__ import annotations

from types import ModuleType


def load_micro() -> ModuleType:
    from rafiki_ray.nas import micro

    return micro


def tiny(config: dict, **over: object) -> dict:
    """Quick settings for tests on 2 busy cores (the knobs are plain config entries)."""
    out = dict(config, search_channels=4, channels=8, trial_epochs=1, epochs=2,
               batch_size=64, quick_eval_size=100)
    out.update(over)
    return out
