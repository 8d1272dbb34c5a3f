"""The ENAS controller (Pham et al. 2018, "Efficient Neural Architecture Search via Parameter
Sharing"; Rafiki's ``rafiki/advisor/tf.py``) in PyTorch.

A ``num_layers``-layer LSTM (default 2 x 32 units) visits the positions of a
:class:`~rafiki_ray.nas._plan.Plan` in order. At each position a per-position linear head
gives logits, squashed as ``tanh_constant * tanh(logits / temperature)`` (1.1, as ENAS); the
chosen value's embedding is the next input (a learned start embedding comes first).

Training is REINFORCE: for each scored architecture, in arrival order, the baseline moves as
``b <- b - (1 - baseline_decay) * (b - R)`` (decay 0.99) and the loss is
``-(R - b) * log p(arch) - entropy_weight * H(arch)`` (averaged over the batch), minimised by
Adam(lr 0.0035, betas (0, 0.999), eps 1e-3). ENAS adds the entropy bonus to the reward; here
it is a separate loss term, which has the same expected gradient direction and keeps the
reward scale-free. Weights start uniform in ``[-0.1, 0.1]`` (ENAS) from the controller's own
``torch.Generator``; sampling uses the same generator, never torch's global RNG.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from rafiki_ray._lazy import require

__all__ = ["Controller"]


def _torch() -> Any:
    return require("torch", "torch")


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run the controller's tiny ops on one intra-op thread (restored after): with torch's
    default thread pool each 32-unit step waits on thread hand-offs, 5x slower on 2 busy
    cores."""
    torch = _torch()
    n = torch.get_num_threads()
    if n != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n != 1:
            torch.set_num_threads(n)


class Controller:
    """An LSTM policy over the positions of a plan, trained with REINFORCE.

    Args:
        sizes: number of choices at each position.
        tokens: embedding id of each choice of each position (``n_tokens`` ids in all).
        n_tokens: number of distinct embeddings.
        seed: seeds the controller's ``torch.Generator`` (weights and sampling).
        hidden_size, num_layers, tanh_constant, temperature, lr, beta1, eps, entropy_weight,
        baseline_decay: as in the module docstring.
    """

    def __init__(
        self,
        *,
        tokens: list[tuple[int, ...]],
        n_tokens: int,
        seed: int,
        hidden_size: int = 32,
        num_layers: int = 2,
        tanh_constant: float | None = 1.1,
        temperature: float | None = None,
        lr: float = 0.0035,
        beta1: float = 0.0,
        eps: float = 1e-3,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.99,
        baseline: float | None = None,
    ) -> None:
        torch = _torch()
        self.tokens = [tuple(int(t) for t in ts) for ts in tokens]
        self.hidden_size, self.num_layers = int(hidden_size), int(num_layers)
        self.tanh_constant, self.temperature = tanh_constant, temperature
        self.entropy_weight, self.baseline_decay = float(entropy_weight), float(baseline_decay)
        self.baseline = baseline
        self.gen = torch.Generator().manual_seed(int(seed))
        nn = torch.nn
        self.embed = nn.Embedding(int(n_tokens) + 1, self.hidden_size)  # last: start token
        # a stack of cells (one step at a time; nn.LSTM's fused kernel is far slower here)
        self.lstm = nn.ModuleList(
            nn.LSTMCell(self.hidden_size, self.hidden_size) for _ in range(self.num_layers)
        )
        self.heads = nn.ModuleList(nn.Linear(self.hidden_size, len(ts)) for ts in self.tokens)
        self.module = nn.ModuleDict({"embed": self.embed, "lstm": self.lstm, "heads": self.heads})
        with torch.no_grad():
            for p in self.module.parameters():
                p.uniform_(-0.1, 0.1, generator=self.gen)
        self.start = int(n_tokens)
        self.optimizer = torch.optim.Adam(
            self.module.parameters(), lr=float(lr), betas=(float(beta1), 0.999), eps=float(eps)
        )
        self.n_updates = 0

    # ------------------------------------------------------------------ policy
    def _logits(self, h: Any, pos: int, mask: np.ndarray | None) -> Any:
        torch = _torch()
        logits = self.heads[pos](h.reshape(1, -1))[0]
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        if mask is not None:
            # a finite floor: exp gives exactly 0, and 0 * log p stays finite for the gradient
            logits = logits.masked_fill(~torch.as_tensor(mask), -1e9)
        return logits

    def _step(self, token: int, state: Any) -> tuple[Any, Any]:
        torch = _torch()
        h = self.embed(torch.tensor([token]))  # (batch 1, hidden)
        new = []
        for i, cell in enumerate(self.lstm):
            hc = cell(h) if state is None else cell(h, state[i])
            new.append(hc)
            h = hc[0]
        return h[0], new

    def sampler(self) -> Any:
        """A ``decide(position, mask) -> index`` callable drawing one architecture (no grad);
        make a fresh one per architecture."""
        torch = _torch()
        st: dict[str, Any] = {"token": self.start, "state": None}

        def decide(pos: int, mask: np.ndarray | None) -> int:
            with torch.no_grad(), _one_thread():
                h, st["state"] = self._step(st["token"], st["state"])
                probs = torch.softmax(self._logits(h, pos, mask), dim=-1)
                i = int(torch.multinomial(probs, 1, generator=self.gen)[0])
            st["token"] = self.tokens[pos][i]
            return i

        return decide

    def log_prob_entropy(
        self, decisions: list[tuple[int, int]], masks: list[np.ndarray | None]
    ) -> tuple[Any, Any]:
        """``log p`` of a decision sequence and the summed entropy of its steps (with grad)."""
        torch = _torch()
        token, state = self.start, None
        logp = torch.zeros(())
        ent = torch.zeros(())
        for (pos, i), mask in zip(decisions, masks):
            h, state = self._step(token, state)
            lp = torch.log_softmax(self._logits(h, pos, mask), dim=-1)
            logp = logp + lp[i]
            p = lp.exp()
            ent = ent - torch.sum(p * lp)
            token = self.tokens[pos][i]
        return logp, ent

    def probability(self, decisions: list[tuple[int, int]], masks: list[np.ndarray | None]) -> float:
        torch = _torch()
        with torch.no_grad(), _one_thread():
            return float(self.log_prob_entropy(decisions, masks)[0].exp())

    # ------------------------------------------------------------------ learning
    def update(self, batch: list[tuple[list[tuple[int, int]], list[np.ndarray | None], float]]) -> float:
        """One REINFORCE step on ``(decisions, masks, reward)`` items; returns the loss."""
        torch = _torch()
        if not batch:
            raise ValueError("update: needs at least one scored architecture")
        advantages = []
        for _, _, reward in batch:
            if self.baseline is None:
                self.baseline = float(reward)
            self.baseline -= (1.0 - self.baseline_decay) * (self.baseline - float(reward))
            advantages.append(float(reward) - self.baseline)
        with _one_thread():
            self.optimizer.zero_grad()
            loss = torch.zeros(())
            for (dec, masks, _), adv in zip(batch, advantages):
                logp, ent = self.log_prob_entropy(dec, masks)
                loss = loss - adv * logp - self.entropy_weight * ent
            loss = loss / len(batch)
            loss.backward()
            self.optimizer.step()
        self.n_updates += 1
        return float(loss.detach())

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """Plain data: weights and Adam moments as numpy arrays, generator state as bytes."""
        opt = self.optimizer.state_dict()
        return {
            "weights": {k: v.detach().numpy().copy() for k, v in self.module.state_dict().items()},
            "optimizer": {
                "state": {
                    int(k): {n: (t.numpy().copy() if hasattr(t, "numpy") else t) for n, t in s.items()}
                    for k, s in opt["state"].items()
                },
            },
            "generator": self.gen.get_state().numpy().copy(),
            "baseline": self.baseline,
            "n_updates": self.n_updates,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        torch = _torch()
        self.module.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in state["weights"].items()})
        opt = self.optimizer.state_dict()
        opt["state"] = {
            int(k): {n: torch.as_tensor(np.array(t)) for n, t in s.items()}
            for k, s in state["optimizer"]["state"].items()
        }
        self.optimizer.load_state_dict(opt)
        self.gen.set_state(torch.as_tensor(np.array(state["generator"]), dtype=torch.uint8))
        self.baseline = state["baseline"]
        self.n_updates = int(state["n_updates"])
