"""Two-digit addition as a token task with an exact, verifiable reward.

Prompt: `a1 a0 + b1 b0 =` (six tokens, operands zero-padded). Answer: the decimal digits of
a + b without leading zeros, then EOS; at most `ANSWER_LEN` tokens are generated. The reward
of a sampled answer is 1.0 when the tokens up to the first EOS spell a + b exactly, else 0.0.

A fixed fifth of all 10,000 problems (chosen by `SPLIT_SEED`, independent of any job seed) is
held out: the training driver never trains on it, the evaluator draws test prompts from it.
Trusted code shared by the evaluator (parent) and the training driver (child).
"""

from __future__ import annotations

import numpy as np

PLUS, EQUALS, EOS = 10, 11, 12
VOCAB = 13
PROMPT_LEN = 6
ANSWER_LEN = 4
NUM_PROBLEMS = 100 * 100
HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 20240205


def split() -> tuple[np.ndarray, np.ndarray]:
    """(train problem ids, held-out problem ids); a problem id is 100 * a + b."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(NUM_PROBLEMS)
    cut = int(NUM_PROBLEMS * HELD_OUT_FRACTION)
    return np.sort(perm[cut:]), np.sort(perm[:cut])


def prompts(ids: np.ndarray) -> np.ndarray:
    """int64 [n, PROMPT_LEN] prompt tokens for problem ids."""
    a, b = ids // 100, ids % 100
    return np.stack([a // 10, a % 10, np.full_like(a, PLUS), b // 10, b % 10, np.full_like(a, EQUALS)], axis=1).astype(np.int64)


def answers(ids: np.ndarray) -> np.ndarray:
    """int64 [n, ANSWER_LEN] target answer tokens (digits, EOS, then EOS padding)."""
    out = np.full((len(ids), ANSWER_LEN), EOS, dtype=np.int64)
    for row, total in enumerate((ids // 100 + ids % 100).tolist()):
        digits = [int(c) for c in str(total)]
        out[row, : len(digits)] = digits
    return out


def answer_mask(tokens: np.ndarray) -> np.ndarray:
    """1.0 for generated tokens up to and including the first EOS, 0.0 after it."""
    is_eos = tokens == EOS
    before = np.cumsum(is_eos, axis=1) - is_eos  # number of EOS strictly before each position
    return (before == 0).astype(np.float32)


def rewards(tokens: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """float32 [n]: 1.0 where the answer up to the first EOS is exactly a + b."""
    target = answers(ids)
    mask = answer_mask(target).astype(bool)
    valid = answer_mask(tokens).astype(bool)
    same = np.where(mask, tokens == target, True).all(axis=1)
    # the generated answer must also stop where the target stops (an EOS present)
    return (same & (valid == mask).all(axis=1)).astype(np.float32)
