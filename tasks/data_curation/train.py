"""The fixed model and training budget of data_curation (trusted; the candidate cannot change it).

A small MLP (64 -> hidden -> hidden -> 10) trained with Adam (cosine learning-rate decay) for a
fixed number of steps on minibatches drawn from the curated set, with a per-example weighted
cross-entropy. The number of steps does not depend on how many examples are kept, so curation is judged on what it keeps,
not on how much compute it buys. Deterministic for a seed: one CPU thread, seeded generators,
`torch.use_deterministic_algorithms(True)`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

# cuBLAS needs this before CUDA initialises to run deterministically.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402


@dataclass(frozen=True)
class Budget:
    steps: int
    batch: int
    hidden: int
    lr: float
    weight_decay: float
    models: int  # independently initialised models whose accuracies are averaged


#: Training budgets per (scale, stage). The gpu scale trains wider models for longer.
BUDGETS = {
    (None, "quick"): Budget(steps=200, batch=64, hidden=128, lr=2e-3, weight_decay=1e-4, models=1),
    (None, "full"): Budget(steps=1000, batch=64, hidden=128, lr=2e-3, weight_decay=1e-4, models=3),
    ("gpu", "quick"): Budget(steps=400, batch=128, hidden=512, lr=1e-3, weight_decay=1e-4, models=2),
    ("gpu", "full"): Budget(steps=2000, batch=128, hidden=512, lr=1e-3, weight_decay=1e-4, models=5),
}


def _device(scale: str | None) -> torch.device:
    if scale == "gpu" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _model(hidden: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )


def train_and_predict(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    tests: list[np.ndarray],
    *,
    budget: Budget,
    seed: int,
    scale: str | None = None,
) -> list[np.ndarray]:
    """Train `budget.models` models on (X, y, weights) and return, per test array, the
    predicted class probabilities averaged over the models. Inputs are pixels in [0, 16]."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    device = _device(scale)
    xt = torch.as_tensor(X / 16.0, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.int64, device=device)
    wt = torch.as_tensor(weights / weights.mean(), dtype=torch.float32, device=device)
    test_t = [torch.as_tensor(t / 16.0, dtype=torch.float32, device=device) for t in tests]
    probs = [torch.zeros(len(t), 10, device=device) for t in tests]
    for m in range(budget.models):
        gen = torch.Generator().manual_seed(seed * 1000 + m)
        torch.manual_seed(seed * 1000 + m)
        model = _model(budget.hidden).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=budget.lr, weight_decay=budget.weight_decay)
        batches = torch.randint(0, len(y), (budget.steps, budget.batch), generator=gen).to(device)
        model.train()
        for step in range(budget.steps):
            # Cosine decay to zero: the last steps average out minibatch noise, so that small
            # changes of the curated set do not move the score by chance.
            for group in opt.param_groups:
                group["lr"] = budget.lr * 0.5 * (1.0 + math.cos(math.pi * step / budget.steps))
            idx = batches[step]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx], reduction="none")
            loss = (loss * wt[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for k, t in enumerate(test_t):
                probs[k] += torch.softmax(model(t), dim=1)
    return [(p / budget.models).cpu().numpy() for p in probs]
