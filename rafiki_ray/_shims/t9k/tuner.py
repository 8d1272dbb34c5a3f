"""``t9k.tuner`` shim: T9k's AutoTune trial API served by :mod:`rafiki_ray.trial`."""

from rafiki_ray.trial import (  # noqa: F401
    get_experiment_id,
    get_next_parameter,
    get_trial_id,
    report_final_result,
    report_intermediate_result,
)
