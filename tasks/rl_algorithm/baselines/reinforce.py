"""Baseline: plain REINFORCE (Williams 1992) with NO baseline.

loss = -mean_i( r_i * sum_t mask_it * logprob_it ): the sequence log-likelihood of each
sampled answer weighted by its raw 0/1 reward. No advantage normalisation, no ratio
clipping, no KL penalty; `old_logprobs`, `ref_logprobs` and `group_size` are unused.
"""

HPARAMS: dict = {}


def compute_loss(logprobs, old_logprobs, ref_logprobs, rewards, mask, group_size, **hparams):
    return -(rewards.unsqueeze(1) * logprobs * mask).sum(dim=1).mean()
