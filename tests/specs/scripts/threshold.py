"""A Polyaxon-style trial (command-line parameter, metrics through polyaxon_client): reports
``accuracy = --value`` at once, or, for values below 0.5, keeps training (and reporting) for
a minute, so that early stopping has a running trial to stop."""

import argparse
import os
import time

from polyaxon_client.tracking import Experiment

parser = argparse.ArgumentParser()
parser.add_argument("--value", type=float)
parser.add_argument("--batch-size", type=int)
args = parser.parse_args()
with open("pid", "w") as fh:
    fh.write(str(os.getpid()))
exp = Experiment()
if args.value >= 0.5:
    exp.log_metrics(accuracy=args.value, batch=args.batch_size)
else:
    for step in range(600):
        exp.log_metrics(accuracy=args.value, step=step)
        time.sleep(0.1)
