"""An NNI-style trial that reports, then sleeps past a short ``maxTrialDuration`` (``hang``),
or finishes quickly (``quick``)."""

import os
import time

import nni

params = nni.get_next_parameter()
with open("pid", "w") as fh:
    fh.write(str(os.getpid()))
nni.report_intermediate_result(0.5)
if params["mode"] == "hang":
    time.sleep(60)
    nni.report_final_result(0.9)  # never reached: the trial is stopped at its limit
else:
    nni.report_final_result(0.25)
