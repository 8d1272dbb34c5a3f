"""``nni`` shim: NNI's trial API served by :mod:`rafiki_ray.trial`."""

from rafiki_ray.trial import (  # noqa: F401
    get_current_parameter,
    get_experiment_id,
    get_next_parameter,
    get_sequence_id,
    get_trial_id,
    report_final_result,
    report_intermediate_result,
)

__version__ = "rafiki-ray-shim"
