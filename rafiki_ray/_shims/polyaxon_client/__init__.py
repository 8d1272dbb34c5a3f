"""``polyaxon_client`` shim: only ``tracking.Experiment`` (``get_params``, ``log_metrics``)."""
