"""Baseline: DeltaNet, linear attention with the delta rule (Schlag et al. 2021; chunked
parallel training form of Yang et al. 2024, "Parallelizing Linear Transformers with the
Delta Rule over Sequence Length").

Per head, with L2-normalised keys and queries and a learned write strength beta_t in (0, 1):
    S_t = S_{t-1} + beta_t k_t^T (v_t - k_t S_{t-1}),    o_t = q_t S_t        (S: [d_k, d_v])
i.e. the memory replaces the value stored under k_t instead of adding to it. Training uses the
chunkwise form: within a chunk the WY/UT transform T = (I + tril(diag(beta) K K^T, -1))^-1
turns the sequential updates into matrix products; the state is carried across chunks.
Short causal convolution (kernel 4), SiLU on v, L2-normalised linear q/k, per-head RMS output
norm, close to the flash-linear-attention DeltaNet layer (which also applies SiLU to q/k; here
that learned slower). The beta gate's bias starts at 2 (beta ~ 0.88). State: num_heads * d_k * d_v = state_size.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

CONV_SIZE = 4
CHUNK = 16
BETA_BIAS = 2.0  # sigmoid(2) ~ 0.88: start close to a full overwrite (learns faster at this scale)
EPS = 1e-6


def delta_rule_chunked(q, k, v, beta, chunk: int):
    """q, k: [B, H, T, d_k] (L2-normalised), v: [B, H, T, d_v], beta: [B, H, T] -> [B, H, T, d_v]."""
    b, h, t, d_k = k.shape
    d_v = v.shape[-1]
    state = k.new_zeros(b, h, d_k, d_v)
    outs = []
    for s in range(0, t, chunk):
        qc, kc, vc, bc = q[:, :, s : s + chunk], k[:, :, s : s + chunk], v[:, :, s : s + chunk], beta[:, :, s : s + chunk]
        c = kc.shape[2]
        eye = torch.eye(c, dtype=k.dtype, device=k.device)
        strict = torch.ones(c, c, dtype=torch.bool, device=k.device).tril(-1)
        a = (bc.unsqueeze(-1) * (kc @ kc.transpose(-1, -2))).masked_fill(~strict, 0.0)
        rhs = bc.unsqueeze(-1) * (vc - kc @ state)
        u = torch.linalg.solve_triangular(eye + a, rhs, upper=False, unitriangular=True)
        causal = torch.ones(c, c, dtype=torch.bool, device=k.device).tril()
        outs.append(qc @ state + (qc @ kc.transpose(-1, -2)).masked_fill(~causal, 0.0) @ u)
        state = state + kc.transpose(-1, -2) @ u
    return torch.cat(outs, dim=2)


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
        self.beta = nn.Linear(dim, num_heads, bias=True)
        nn.init.constant_(self.beta.bias, BETA_BIAS)
        self.out_norm = nn.RMSNorm(self.d_v, eps=EPS)
        self.out = nn.Linear(num_heads * self.d_v, dim, bias=False)

    def state_numel(self) -> int:
        return self.num_heads * self.d_k * self.d_v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        x = self.conv(x.transpose(1, 2))[..., :t].transpose(1, 2)
        q = self.q(x).view(b, t, self.num_heads, self.d_k).transpose(1, 2)
        k = self.k(x).view(b, t, self.num_heads, self.d_k).transpose(1, 2)
        v = F.silu(self.v(x)).view(b, t, self.num_heads, self.d_v).transpose(1, 2)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        beta = torch.sigmoid(self.beta(x)).transpose(1, 2)
        o = self.out_norm(delta_rule_chunked(q, k, v, beta, CHUNK))
        return self.out(o.transpose(1, 2).reshape(b, t, -1))
