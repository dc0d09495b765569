"""Baseline: GRPO (Shao et al. 2024, DeepSeekMath), as published.

Group-relative advantage A_i = (r_i - mean(r_group)) / (std(r_group) + eps) shared by every
token of answer i; PPO clipped ratio surrogate (eps 0.2) against the sampling policy; k3 KL
estimator to the reference policy with coefficient 0.04; per-sequence mean over tokens,
then mean over sequences.
"""

import torch

HPARAMS = {"clip_eps": 0.2, "kl_coef": 0.04, "adv_eps": 1e-4}


def compute_loss(logprobs, old_logprobs, ref_logprobs, rewards, mask, group_size, **hparams):
    r = rewards.view(-1, group_size)
    adv = ((r - r.mean(dim=1, keepdim=True)) / (r.std(dim=1, keepdim=True) + hparams["adv_eps"])).reshape(-1, 1)
    ratio = torch.exp(logprobs - old_logprobs)
    eps = hparams["clip_eps"]
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)
    log_r = ref_logprobs - logprobs
    kl = torch.exp(log_r) - log_r - 1.0
    per_token = -(surrogate - hparams["kl_coef"] * kl) * mask
    return (per_token.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()
