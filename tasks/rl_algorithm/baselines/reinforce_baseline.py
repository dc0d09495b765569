"""Baseline: REINFORCE with a batch-mean baseline (Williams 1992).

loss = -mean_i( (r_i - mean_j r_j) * sum_t mask_it * logprob_it ): the baseline is the mean
reward of the whole batch (all prompts), not of the prompt's own group, and there is no
std normalisation, ratio clipping or KL term. Between `reinforce.py` (no baseline) and GRPO.
"""

HPARAMS: dict = {}


def compute_loss(logprobs, old_logprobs, ref_logprobs, rewards, mask, group_size, **hparams):
    advantage = (rewards - rewards.mean()).unsqueeze(1)
    return -(advantage * logprobs * mask).sum(dim=1).mean()
