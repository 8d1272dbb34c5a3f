"""``t9k`` shim: only ``t9k.tuner`` (the AutoTune trial API), served by :mod:`rafiki_ray.trial`."""

from t9k import tuner  # noqa: F401
