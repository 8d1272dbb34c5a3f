"""An NNI-style trial script whose behaviour is a parameter (``mode``), for failure tests."""

import json
import os
import sys
import time

import nni

params = nni.get_next_parameter()
mode = params["mode"]
with open("pid", "w") as fh:
    fh.write(str(os.getpid()))
if mode == "ok":
    assert nni.get_next_parameter() is None  # NNI / T9k: the parameters come once
    for step in range(2):
        nni.report_intermediate_result(0.25 * (step + 1))
    nni.report_final_result({"default": 0.75, "loss": 0.5})
elif mode == "exit":
    sys.stderr.write("boom: the data file is missing\n")
    sys.exit(3)
elif mode == "silent":
    print("trained, but forgot to report")
elif mode == "api_bad":
    nni.report_final_result("not a number")
elif mode == "raw_bad":  # bypasses the API's own check: the trial's reader must catch it
    with open(os.environ["RAFIKI_REPORT_FILE"], "a") as fh:
        fh.write(json.dumps({"kind": "final", "metric": {"default": "abc"}}) + "\n")
    time.sleep(30)
elif mode == "slow":
    for step in range(300):
        nni.report_intermediate_result(0.1)
        time.sleep(0.2)
    nni.report_final_result(0.1)
