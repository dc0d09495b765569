"""Seed policy-optimisation step for the rl_algorithm task: GRPO (Shao et al. 2024).

compute_loss(logprobs, old_logprobs, ref_logprobs, rewards, mask, group_size, **hparams)
  logprobs      [N, T] float, log-probability of each sampled answer token under the current
                policy (carries gradient); N = num_groups * group_size, rows of one prompt's
                group are contiguous (rows g*group_size ... (g+1)*group_size - 1)
  old_logprobs  [N, T] the same under the policy that sampled the batch (no gradient)
  ref_logprobs  [N, T] the same under the frozen warm-started reference policy (no gradient)
  rewards       [N] float, 1.0 for an exactly correct answer, else 0.0
  mask          [N, T] float, 1.0 for real answer tokens (up to and including EOS), else 0.0
  group_size    int, answers sampled per prompt
  hparams       `step`, `num_steps` (the RL update index and count) plus this module's HPARAMS
Returns a scalar tensor to minimise; the driver does backward, clipping and the Adam step.
"""

import torch

# EVOLVE-BLOCK-START
HPARAMS = {
    "clip_eps": 0.2,
    "kl_coef": 0.04,
    "adv_eps": 1e-4,
}
ADV_NORM = "std"  # evolve: choices ["std", "none", "rank"]
LENGTH_NORM = "sequence"  # evolve: choices ["sequence", "token", "constant"]
KL_ESTIMATOR = "k3"  # evolve: choices ["k3", "k1", "none"]


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float) -> torch.Tensor:
    r = rewards.view(-1, group_size)
    centred = r - r.mean(dim=1, keepdim=True)
    if ADV_NORM == "std":
        centred = centred / (r.std(dim=1, keepdim=True) + eps)
    elif ADV_NORM == "rank":
        ranks = r.argsort(dim=1).argsort(dim=1).float()
        centred = (ranks - ranks.mean(dim=1, keepdim=True)) / max(1, group_size - 1)
    return centred.reshape(-1)


def compute_loss(logprobs, old_logprobs, ref_logprobs, rewards, mask, group_size, **hparams):
    clip_eps = hparams.get("clip_eps", 0.2)
    kl_coef = hparams.get("kl_coef", 0.04)
    adv = group_advantages(rewards, group_size, hparams.get("adv_eps", 1e-4)).unsqueeze(1)
    ratio = torch.exp(logprobs - old_logprobs)
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv)
    if KL_ESTIMATOR == "k3":
        log_r = ref_logprobs - logprobs
        kl = torch.exp(log_r) - log_r - 1.0
    elif KL_ESTIMATOR == "k1":
        kl = logprobs - ref_logprobs
    else:
        kl = torch.zeros_like(logprobs)
    per_token = -(surrogate - kl_coef * kl) * mask
    if LENGTH_NORM == "sequence":
        return (per_token.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()
    if LENGTH_NORM == "token":
        return per_token.sum() / mask.sum().clamp(min=1)
    return per_token.sum() / (mask.shape[0] * mask.shape[1])
# EVOLVE-BLOCK-END
