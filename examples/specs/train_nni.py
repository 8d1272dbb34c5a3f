"""An NNI trial script, unmodified NNI API: ``nni.get_next_parameter()``, one intermediate
result per epoch, the test accuracy as the final result."""

import nni
from digits_model import train

params = nni.get_next_parameter()
params.setdefault("epochs", params.get("TRIAL_BUDGET", 3))
accuracy = train(params, lambda epoch, acc, loss: nni.report_intermediate_result(acc))
nni.report_final_result(accuracy)
