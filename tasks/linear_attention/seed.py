"""Seed token mixer for the linear_attention task: kernelised linear attention.

Linear attention (Katharopoulos et al. 2020) with a feature map phi: the recurrent state of a
head is S_t = sum_{i<=t} phi(k_i)^T v_i ([d_k, d_v]) plus a normaliser z_t = sum phi(k_i),
and o_t = phi(q_t) S_t / (phi(q_t) . z_t). Computed here in its parallel (masked quadratic)
form, which is exact for the recurrence. A short causal depthwise convolution on the input
gives each position a view of its neighbours (H3 / Based / DeltaNet use the same trick).

State size: num_heads * d_k * d_v <= state_size (the normaliser and the conv buffer are not
counted). `state_numel()` reports it to the driver.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

# EVOLVE-BLOCK-START
FEATURE_MAP = "elu"  # evolve: choices ["elu", "relu", "identity", "softmax"]
CONV_SIZE = 4  # evolve: choices [1, 2, 3, 4]
NORMALIZE = "denominator"  # evolve: choices ["denominator", "rmsnorm", "none"]
QK_SCALE = 1.0
EPS = 1e-4
V_DIM_RATIO = 1.0  # evolve: choices [0.5, 1.0, 2.0]


def feature_map(x: torch.Tensor) -> torch.Tensor:
    if FEATURE_MAP == "elu":
        return F.elu(x) + 1.0
    if FEATURE_MAP == "relu":
        return F.relu(x)
    if FEATURE_MAP == "softmax":
        return torch.softmax(x, dim=-1)
    return x


class Mixer(nn.Module):
    def __init__(self, dim: int, num_heads: int, state_size: int):
        super().__init__()
        self.num_heads = num_heads
        self.d_v = max(1, int(math.isqrt(state_size // num_heads) * V_DIM_RATIO))
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
        q = self.q(x).view(b, t, self.num_heads, self.d_k).transpose(1, 2)
        k = self.k(x).view(b, t, self.num_heads, self.d_k).transpose(1, 2)
        v = self.v(x).view(b, t, self.num_heads, self.d_v).transpose(1, 2)
        q, k = feature_map(q * QK_SCALE), feature_map(k)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        scores = (q @ k.transpose(-1, -2)).masked_fill(~mask, 0.0)
        o = scores @ v
        if NORMALIZE == "denominator":
            o = o / (scores.sum(-1, keepdim=True) + EPS)
        elif NORMALIZE == "rmsnorm":
            o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + EPS)
        return self.out(o.transpose(1, 2).reshape(b, t, -1))
# EVOLVE-BLOCK-END
