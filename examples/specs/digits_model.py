"""The small model every example spec tunes: a one-hidden-layer PyTorch MLP on scikit-learn's
8x8 digits (1,797 images; 70/30 split, seeded). ``train(params, report)`` trains for
``params["epochs"]`` epochs and calls ``report(epoch, accuracy, loss)`` after each one."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ACTIVATIONS = {"relu": torch.nn.ReLU, "elu": torch.nn.ELU, "sigmoid": torch.nn.Sigmoid,
               "tanh": torch.nn.Tanh}


def train(params, report):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x / 16.0, y, test_size=0.3, random_state=0)
    xtr, xte = torch.tensor(xtr, dtype=torch.float32), torch.tensor(xte, dtype=torch.float32)
    ytr, yte = torch.tensor(ytr), torch.tensor(yte)
    hidden = int(params.get("hidden", 32))
    act = ACTIVATIONS[params.get("activation", "relu")]
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), act(),
                                torch.nn.Dropout(float(params.get("dropout", 0.0))),
                                torch.nn.Linear(hidden, 10))
    opt = torch.optim.Adam(model.parameters(), lr=float(params.get("learning_rate", 1e-2)))
    batch = int(params.get("batch_size", 64))
    g = torch.Generator().manual_seed(0)
    for epoch in range(1, int(params.get("epochs", 3)) + 1):
        model.train()
        for idx in torch.randperm(len(xtr), generator=g).split(batch):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out = model(xte)
            acc = (out.argmax(1) == yte).float().mean().item()
            loss = torch.nn.functional.cross_entropy(out, yte).item()
        report(epoch, acc, loss)
    return acc
