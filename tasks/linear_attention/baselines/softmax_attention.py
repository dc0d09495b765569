"""Reference ceiling: causal softmax attention (Vaswani et al. 2017).

Its "state" is the whole key-value cache, 2 * seq_len * dim numbers, which grows with the
sequence and breaks the task's state bound: the driver scores it anyway and the evaluator
flags it (`state_within_budget = 0`). Same short causal convolution (kernel 4) as the other
baselines; it gives the model a view of the previous token, as no positional encoding is used.
"""

import torch
import torch.nn.functional as F
from torch import nn

CONV_SIZE = 4


class Mixer(nn.Module):
    def __init__(self, dim: int, num_heads: int, state_size: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.conv = nn.Conv1d(dim, dim, CONV_SIZE, groups=dim, padding=CONV_SIZE - 1)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        self.last_seq_len = 0

    def state_numel(self) -> int:
        return 2 * self.last_seq_len * self.num_heads * self.head_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        self.last_seq_len = t
        x = self.conv(x.transpose(1, 2))[..., :t].transpose(1, 2)
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(o.transpose(1, 2).reshape(b, t, d))
