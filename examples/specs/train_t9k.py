"""A T9k AutoTune trial script, unmodified T9k API (``from t9k import tuner``)."""

from digits_model import train
from t9k import tuner

params = tuner.get_next_parameter()
accuracy = train(params, lambda epoch, acc, loss: tuner.report_intermediate_result(acc, step=epoch))
tuner.report_final_result(accuracy)
