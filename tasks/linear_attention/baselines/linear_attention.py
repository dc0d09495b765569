"""Baseline: plain linear attention (Katharopoulos et al. 2020, "Transformers are RNNs").

phi(x) = elu(x) + 1; S_t = sum phi(k_i)^T v_i, o_t = phi(q_t) S_t / (phi(q_t) . z_t), computed
in the exact parallel (masked quadratic) form. Same short causal depthwise convolution
(kernel 4) as the other baselines, so that the comparison isolates the memory update rule.
State: num_heads * d_k * d_v = state_size.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

CONV_SIZE = 4
EPS = 1e-4


class Mixer(nn.Module):
    def __init__(self, dim: int, num_heads: int, state_size: int):
        super().__init__()
        self.num_heads = num_heads
        self.d_v = max(1, math.isqrt(state_size // num_heads))
        self.d_k = max(1, state_size // (num_heads * self.d_v))
        self.conv = nn.Conv1d(dim, dim, CONV_SIZE, groups=dim, padding=CONV_SIZE - 1)
        self.q = nn.Linear(dim, num_heads * self.d_k, bias=False)
        self.k = nn.Linear(dim, num_heads * self.d_k, bias=False)
        self.v = nn.Linear(dim, num_heads * self.d_v, bias=False)
        self.out = nn.Linear(num_heads * self.d_v, dim, bias=False)

    def state_numel(self) -> int:
        return self.num_heads * self.d_k * self.d_v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        x = self.conv(x.transpose(1, 2))[..., :t].transpose(1, 2)
        q = F.elu(self.q(x).view(b, t, self.num_heads, self.d_k).transpose(1, 2)) + 1.0
        k = F.elu(self.k(x).view(b, t, self.num_heads, self.d_k).transpose(1, 2)) + 1.0
        v = self.v(x).view(b, t, self.num_heads, self.d_v).transpose(1, 2)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        scores = (q @ k.transpose(-1, -2)).masked_fill(~mask, 0.0)
        o = (scores @ v) / (scores.sum(-1, keepdim=True) + EPS)
        return self.out(o.transpose(1, 2).reshape(b, t, -1))
