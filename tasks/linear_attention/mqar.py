"""Multi-query associative recall (MQAR) data, as in Zoology (Arora et al. 2023).

A sequence opens with `num_kv` key-value pairs `k1 v1 k2 v2 ...`; the rest is filler (token 0)
in which every key is queried once, at a random even offset `p`: the input holds the key at
`p` and the model must predict its value there (next-token prediction). Unlike Zoology, the
value is not repeated at `p + 1` (filler stays there), so the answers never appear in the
inputs after the context. Keys come from `[1, vocab/2)`, values from `[vocab/2, vocab)`; keys are distinct
within a sequence. Labels are -100 everywhere except at query positions.

Trusted code, shared by the evaluator (held-out inputs + targets, built in the parent) and
the training driver (training batches, built in the child from a seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE = -100


@dataclass(frozen=True)
class MQARConfig:
    vocab: int = 64
    seq_len: int = 64
    num_kv: int = 8


def make_batch(cfg: MQARConfig, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n` sequences: (inputs int64 [n, seq_len], labels int64 [n, seq_len])."""
    half = cfg.vocab // 2
    context = 2 * cfg.num_kv
    query_slots = (cfg.seq_len - context) // 2
    if cfg.num_kv > half - 1 or cfg.num_kv > query_slots:
        raise ValueError(
            f"MQAR config {cfg} cannot fit {cfg.num_kv} distinct keys and queries: "
            "raise vocab/seq_len or lower num_kv"
        )
    inputs = np.zeros((n, cfg.seq_len), dtype=np.int64)
    labels = np.full((n, cfg.seq_len), IGNORE, dtype=np.int64)
    rows = np.arange(n)[:, None]
    keys = np.argsort(rng.random((n, half - 1)), axis=1)[:, : cfg.num_kv] + 1
    values = rng.integers(half, cfg.vocab, size=(n, cfg.num_kv))
    inputs[:, 0:context:2] = keys
    inputs[:, 1:context:2] = values
    # Queries sit on even offsets of the filler so that a query and its value never overlap.
    slots = np.argsort(rng.random((n, query_slots)), axis=1)[:, : cfg.num_kv]
    pos = context + 2 * slots
    order = np.argsort(rng.random((n, cfg.num_kv)), axis=1)
    q_keys = np.take_along_axis(keys, order, axis=1)
    q_vals = np.take_along_axis(values, order, axis=1)
    inputs[rows, pos] = q_keys
    labels[rows, pos] = q_vals
    return inputs, labels
