"""The tiny causal transformer policy of the rl_algorithm task, and its decoding helpers.

Trusted code: the training driver (child) trains it; the evaluator (parent) rebuilds it from
the weights the child wrote (plain arrays, `allow_pickle=False`) and decodes held-out prompts
greedily itself, so the candidate's process never sees the test prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from arith import ANSWER_LEN, PROMPT_LEN, VOCAB
from torch import nn


@dataclass(frozen=True)
class PolicyConfig:
    dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 2


class Policy(nn.Module):
    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(VOCAB, cfg.dim)
        self.pos = nn.Embedding(PROMPT_LEN + ANSWER_LEN, cfg.dim)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                cfg.dim, cfg.num_heads, cfg.mlp_ratio * cfg.dim, dropout=0.0,
                batch_first=True, norm_first=True,
            )
            for _ in range(cfg.num_layers)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [n, t] -> next-token logits [n, t, VOCAB] (causal)."""
        t = tokens.shape[1]
        x = self.tok(tokens) + self.pos(torch.arange(t, device=tokens.device))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=tokens.device)
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=True)
        return self.head(self.norm(x))

    def answer_logprobs(self, prompt: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
        """Log-probability of each answer token given the prompt and earlier answer tokens: [n, ANSWER_LEN]."""
        seq = torch.cat([prompt, answer], dim=1)
        logits = self(seq[:, :-1])[:, PROMPT_LEN - 1 :]
        return torch.log_softmax(logits.float(), dim=-1).gather(-1, answer.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, generator: torch.Generator | None, greedy: bool = False) -> torch.Tensor:
        """Answer tokens [n, ANSWER_LEN], sampled at temperature 1 (or greedy)."""
        seq = prompt
        for _ in range(ANSWER_LEN):
            logits = self(seq)[:, -1].float()
            if greedy:
                nxt = logits.argmax(-1)
            else:
                probs = torch.softmax(logits, dim=-1)
                nxt = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(prompt.device)
            seq = torch.cat([seq, nxt.unsqueeze(-1)], dim=1)
        return seq[:, PROMPT_LEN:]


def state_arrays(policy: Policy) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in policy.state_dict().items()}


def load_state_arrays(policy: Policy, arrays: dict[str, np.ndarray]) -> None:
    """Load weights written by the driver; names and shapes must match the trusted model."""
    expected = policy.state_dict()
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ValueError(f"policy weights do not match the model: missing {missing[:5]}, unexpected {extra[:5]}")
    tensors = {}
    for name, ref in expected.items():
        arr = arrays[name]
        if tuple(arr.shape) != tuple(ref.shape):
            raise ValueError(f"policy weight {name} has shape {arr.shape}, expected {tuple(ref.shape)}")
        if not np.isfinite(arr).all():
            raise ValueError(f"policy weight {name} holds NaN or inf")
        tensors[name] = torch.from_numpy(np.ascontiguousarray(arr)).to(ref.dtype)
    policy.load_state_dict(tensors)
