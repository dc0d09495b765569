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

# Fixed helpers (group views and masked averages); the loss design is evolvable below.


def by_group(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """[N] -> [num_groups, group_size]."""
    return x.view(-1, group_size)


def group_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1, keepdim=True)


def group_std(x: torch.Tensor) -> torch.Tensor:
    return x.std(dim=1, keepdim=True)


def group_ranks(x: torch.Tensor) -> torch.Tensor:
    """Within-group ranks of [num_groups, group_size] scores, centred and scaled to [-0.5, 0.5]."""
    ranks = x.argsort(dim=1).argsort(dim=1).float()
    return (ranks - group_mean(ranks)) / max(1, x.shape[1] - 1)


def per_token(a: torch.Tensor) -> torch.Tensor:
    """[N] per-answer values broadcast over the answer's tokens: [N, 1]."""
    return a.reshape(-1, 1)


def sequence_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each answer's tokens, then over answers."""
    return ((x * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()


def token_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over all answer tokens of the batch."""
    return (x * mask).sum() / mask.sum().clamp(min=1)


def constant_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over tokens divided by a constant (N * T), as in Dr. GRPO."""
    return (x * mask).sum() / mask.numel()


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, eps_low: float, eps_high: float) -> torch.Tensor:
    """PPO's pessimistic objective min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)."""
    return torch.min(ratio * adv, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv)


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Unbiased non-negative KL(pi || ref) estimate per token (Schulman 2020)."""
    log_r = ref_logprobs - logprobs
    return torch.exp(log_r) - log_r - 1



# EVOLVE-BLOCK-START
HPARAMS = {
    "clip_low": 0.2,
    "clip_high": 0.2,
    "kl_coef": 0.04,
    "adv_eps": 1e-4,
}
ADV_NORM = "std"  # evolve: choices ["std", "none", "rank"]
LENGTH_NORM = "sequence"  # evolve: choices ["sequence", "token", "constant"]
KL_ESTIMATOR = "k3"  # evolve: choices ["k3", "k1", "none"]


def advantages(rewards: torch.Tensor, group_size: int, eps: float) -> torch.Tensor:
    r = by_group(rewards, group_size)
    if ADV_NORM == "rank":
        return per_token(group_ranks(r))
    centred = r - group_mean(r)
    if ADV_NORM == "std":
        centred = centred / (group_std(r) + eps)
    return per_token(centred)


def compute_loss(logprobs, old_logprobs, ref_logprobs, rewards, mask, group_size, **hparams):
    adv = advantages(rewards, group_size, hparams["adv_eps"])
    ratio = torch.exp(logprobs - old_logprobs)
    surrogate = clipped_surrogate(ratio, adv, hparams["clip_low"], hparams["clip_high"])
    if KL_ESTIMATOR == "k3":
        kl = kl_k3(logprobs, ref_logprobs)
    elif KL_ESTIMATOR == "k1":
        kl = logprobs - ref_logprobs
    else:
        kl = torch.zeros_like(logprobs)
    objective = surrogate - hparams["kl_coef"] * kl
    if LENGTH_NORM == "sequence":
        return -sequence_mean(objective, mask)
    if LENGTH_NORM == "token":
        return -token_mean(objective, mask)
    return -constant_mean(objective, mask)
# EVOLVE-BLOCK-END
