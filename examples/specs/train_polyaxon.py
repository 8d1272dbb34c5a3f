"""A Polyaxon v0 trial script: parameters on the command line (rendered from ``run.cmd``),
metrics through ``polyaxon_client.tracking.Experiment().log_metrics``."""

import argparse

from digits_model import train
from polyaxon_client.tracking import Experiment

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--dropout", type=float, default=0.0)
parser.add_argument("--activation", default="relu")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--param1", type=float, default=0.0)  # seed 004 passes it; unused
args = parser.parse_args()

experiment = Experiment()
params = {"learning_rate": args.lr, "batch_size": args.batch_size, "dropout": args.dropout,
          "activation": args.activation, "epochs": args.epochs}
train(params, lambda epoch, acc, loss: experiment.log_metrics(accuracy=acc, loss=loss,
                                                              step=epoch))
