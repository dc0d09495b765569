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

# Fixed helpers (shapes and masks); the mixer design is evolvable below.


def short_conv(dim: int, kernel: int) -> nn.Conv1d:
    """Depthwise causal convolution over time (use with `apply_conv`)."""
    return nn.Conv1d(dim, dim, kernel, groups=dim, padding=kernel - 1)


def apply_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """[b, t, d] -> [b, t, d]; trims the right padding so that the conv stays causal."""
    return conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[b, t, heads * d] -> [b, heads, t, d]."""
    b, t, _ = x.shape
    return x.view(b, t, heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[b, heads, t, d] -> [b, t, heads * d]."""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


def causal_mask(t: int, device: torch.device) -> torch.Tensor:
    """Boolean [t, t], True where key position <= query position."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def head_dims(state_size: int, num_heads: int, v_ratio: float) -> tuple[int, int]:
    """(d_k, d_v) with num_heads * d_k * d_v <= state_size; d_v ~ v_ratio * sqrt(state per head)."""
    d_v = max(1, int(math.isqrt(state_size // num_heads) * v_ratio))
    return max(1, state_size // (num_heads * d_v)), d_v


def causal_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """[b, h, t, t] q_t . k_s for s <= t, zero above the diagonal."""
    scores = q @ k.transpose(-1, -2)
    return scores.masked_fill(~causal_mask(q.shape[-2], q.device), 0)


def row_sum(scores: torch.Tensor) -> torch.Tensor:
    return scores.sum(dim=-1, keepdim=True)


def rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(dim=-1, keepdim=True).sqrt()



# EVOLVE-BLOCK-START
FEATURE_MAP = "elu"  # evolve: choices ["elu", "relu", "identity", "softmax"]
CONV_SIZE = 4  # evolve: choices [1, 2, 3, 4]
NORMALIZE = "denominator"  # evolve: choices ["denominator", "rmsnorm", "none"]
QK_SCALE = 1.0
EPS = 1e-4
V_DIM_RATIO = 1.0  # evolve: choices [0.5, 1.0, 2.0]
ELU_SHIFT = 1.0  # phi(x) = elu(x) + ELU_SHIFT keeps features positive


def feature_map(x: torch.Tensor) -> torch.Tensor:
    if FEATURE_MAP == "elu":
        return F.elu(x) + ELU_SHIFT
    if FEATURE_MAP == "relu":
        return F.relu(x)
    if FEATURE_MAP == "softmax":
        return torch.softmax(x, dim=-1)
    return x


class Mixer(nn.Module):
    def __init__(self, dim: int, num_heads: int, state_size: int):
        super().__init__()
        self.num_heads = num_heads
        self.d_k, self.d_v = head_dims(state_size, num_heads, V_DIM_RATIO)
        self.conv = short_conv(dim, CONV_SIZE)
        self.q = nn.Linear(dim, num_heads * self.d_k, bias=False)
        self.k = nn.Linear(dim, num_heads * self.d_k, bias=False)
        self.v = nn.Linear(dim, num_heads * self.d_v, bias=False)
        self.out = nn.Linear(num_heads * self.d_v, dim, bias=False)

    def state_numel(self) -> int:
        return self.num_heads * self.d_k * self.d_v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = apply_conv(self.conv, x)
        q = feature_map(split_heads(self.q(x), self.num_heads) * QK_SCALE)
        k = feature_map(split_heads(self.k(x), self.num_heads))
        v = split_heads(self.v(x), self.num_heads)
        scores = causal_scores(q, k)
        o = scores @ v
        if NORMALIZE == "denominator":
            o = o / (row_sum(scores) + EPS)
        elif NORMALIZE == "rmsnorm":
            o = o / (rms(o) + EPS)
        return self.out(merge_heads(o))
# EVOLVE-BLOCK-END
