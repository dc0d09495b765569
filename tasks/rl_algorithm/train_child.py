"""Trusted training driver of the rl_algorithm task; runs in a child process.

    python train_child.py --program CANDIDATE.py --out DIR --config '{"rl_steps": 120, ...}'

1. Warm start (fixed, not the candidate's): a short supervised run of the policy on training
   problems, so that a tiny policy gets some reward from the start.
2. RL: for `rl_steps` updates, draw `num_groups` training prompts, sample `group_size` answers
   each at temperature 1, compute exact rewards, then for `epochs_per_batch` passes call the
   candidate's `compute_loss(...)` and take the optimizer step itself (Adam, clipped).
3. Write the final policy weights to `DIR/policy.npz` (plain arrays) and `DIR/info.json`.

The held-out prompts never reach this process: the parent decodes them with the weights.
A fault of the candidate is written to `DIR/error.json` as {"kind", "message"}, exit status 2.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import inspect
import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arith import answer_mask as mask_of  # noqa: E402
from arith import answers, prompts, rewards, split  # noqa: E402
from policy import Policy, PolicyConfig, state_arrays  # noqa: E402

EXIT_CANDIDATE_FAULT = 2
RESERVED_HPARAMS = ("step", "num_steps")


@dataclass(frozen=True)
class TrainConfig:
    dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    sft_steps: int = 150
    sft_batch: int = 64
    sft_lr: float = 3e-3
    sft_problems: int = 500
    rl_steps: int = 100
    num_groups: int = 16
    group_size: int = 8
    epochs_per_batch: int = 2
    rl_lr: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 2
    device: str = "cpu"

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown driver config keys {unknown}; known: {sorted(known)}")
        return cls(**raw)

    @property
    def policy(self) -> PolicyConfig:
        return PolicyConfig(dim=self.dim, num_layers=self.num_layers, num_heads=self.num_heads)


class CandidateFault(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def load_candidate(program: Path) -> tuple[object, dict[str, object]]:
    spec = importlib.util.spec_from_file_location("candidate_program", program)
    if spec is None or spec.loader is None:
        raise CandidateFault("import", f"cannot import candidate program {program}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["candidate_program"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise CandidateFault("import", f"importing the candidate failed: {exc!r}\n{traceback.format_exc(limit=4)}") from exc
    fn = getattr(module, "compute_loss", None)
    if not callable(fn):
        raise CandidateFault("interface", "the candidate must define `def compute_loss(logprobs, old_logprobs, ref_logprobs, rewards, mask, group_size, **hparams)`")
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        raise CandidateFault("interface", "compute_loss must accept **hparams (the driver passes step, num_steps and HPARAMS)")
    hparams = getattr(module, "HPARAMS", {})
    if not isinstance(hparams, dict) or not all(isinstance(k, str) for k in hparams):
        raise CandidateFault("interface", "HPARAMS must be a dict with string keys")
    clash = sorted(set(hparams) & set(RESERVED_HPARAMS))
    if clash:
        raise CandidateFault("interface", f"HPARAMS may not use the driver's keyword names {clash}")
    return fn, dict(hparams)


def preflight(fn, hparams: dict[str, object], cfg: TrainConfig) -> None:
    """Call compute_loss once on a synthetic batch, so a broken candidate fails in a second."""
    n, t = cfg.num_groups * cfg.group_size, 4
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(n, t, generator=gen).requires_grad_(True)
    batch = {
        "logprobs": torch.nn.functional.logsigmoid(logits),
        "old_logprobs": torch.nn.functional.logsigmoid(logits.detach()),
        "ref_logprobs": torch.nn.functional.logsigmoid(logits.detach() + 0.1),
        "rewards": (torch.rand(n, generator=gen) < 0.3).float(),
        "mask": torch.ones(n, t),
    }
    call_loss(fn, hparams, batch, cfg.group_size, 0, cfg.rl_steps).backward()


def warm_start(policy: Policy, cfg: TrainConfig, train_ids: np.ndarray, rng: np.random.Generator, device: torch.device) -> float:
    """Supervised next-token training on a small fixed subset of training problems."""
    subset = rng.choice(train_ids, size=min(cfg.sft_problems, len(train_ids)), replace=False)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.sft_lr, weight_decay=0.0)
    loss = torch.zeros(())
    for _ in range(cfg.sft_steps):
        ids = rng.choice(subset, size=cfg.sft_batch)
        p = torch.from_numpy(prompts(ids)).to(device)
        a_np = answers(ids)
        a = torch.from_numpy(a_np).to(device)
        m = torch.from_numpy(mask_of(a_np)).to(device)
        loss = -(policy.answer_logprobs(p, a) * m).sum() / m.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.item())


def call_loss(fn, hparams: dict[str, object], batch: dict[str, torch.Tensor], group_size: int, step: int, num_steps: int) -> torch.Tensor:
    try:
        loss = fn(
            batch["logprobs"], batch["old_logprobs"], batch["ref_logprobs"], batch["rewards"],
            batch["mask"], group_size, step=step, num_steps=num_steps, **hparams,
        )
    except Exception as exc:
        raise CandidateFault("crash", f"compute_loss raised {exc!r}\n{traceback.format_exc(limit=4)}") from exc
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise CandidateFault("interface", f"compute_loss must return a scalar (0-dim) tensor, got {shape}")
    if loss.grad_fn is None:
        raise CandidateFault("interface", "compute_loss returned a tensor with no gradient: it must depend on `logprobs`")
    if not torch.isfinite(loss):
        raise CandidateFault("diverged", f"compute_loss returned {loss.item()} at RL step {step}")
    return loss


def rl_train(policy: Policy, fn, hparams: dict[str, object], cfg: TrainConfig, train_ids: np.ndarray,
             rng: np.random.Generator, gen: torch.Generator, device: torch.device) -> dict[str, float]:
    reference = copy.deepcopy(policy).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.rl_lr)
    mean_rewards: list[float] = []
    kls: list[float] = []
    for step in range(cfg.rl_steps):
        ids = np.repeat(rng.choice(train_ids, size=cfg.num_groups, replace=False), cfg.group_size)
        prompt = torch.from_numpy(prompts(ids)).to(device)
        policy.eval()
        sampled = policy.generate(prompt, gen)
        tokens = sampled.cpu().numpy()
        with torch.no_grad():
            old = policy.answer_logprobs(prompt, sampled)
            ref = reference.answer_logprobs(prompt, sampled)
        batch = {
            "old_logprobs": old,
            "ref_logprobs": ref,
            "rewards": torch.from_numpy(rewards(tokens, ids)).to(device),
            "mask": torch.from_numpy(mask_of(tokens)).to(device),
        }
        mean_rewards.append(float(batch["rewards"].mean()))
        policy.train()
        for _ in range(cfg.epochs_per_batch):
            batch["logprobs"] = policy.answer_logprobs(prompt, sampled)
            loss = call_loss(fn, hparams, batch, cfg.group_size, step, cfg.rl_steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
            opt.step()
        with torch.no_grad():
            m = batch["mask"]
            kls.append(float(((batch["logprobs"] - ref) * m).sum() / m.sum()))
    tenth = max(1, cfg.rl_steps // 10)
    return {
        "train_reward_first": float(np.mean(mean_rewards[:tenth])),
        "train_reward_last": float(np.mean(mean_rewards[-tenth:])),
        "kl_to_ref_last": float(np.mean(kls[-tenth:])),
    }


def run(program: Path, out_dir: Path, cfg: TrainConfig) -> None:
    t0 = time.monotonic()
    torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device if cfg.device != "cuda" or torch.cuda.is_available() else "cpu")
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, 3])
    gen = torch.Generator().manual_seed(cfg.seed)
    fn, hparams = load_candidate(program)
    train_ids, _ = split()
    preflight(fn, hparams, cfg)
    torch.manual_seed(cfg.seed)
    policy = Policy(cfg.policy).to(device)
    sft_loss = warm_start(policy, cfg, train_ids, rng, device)
    t_rl = time.monotonic()
    stats = rl_train(policy, fn, hparams, cfg, train_ids, rng, gen, device)
    for name, arr in state_arrays(policy).items():
        if not np.isfinite(arr).all():
            raise CandidateFault("diverged", f"policy weight {name} became NaN/inf during RL")
    np.savez(out_dir / "policy.npz", **state_arrays(policy))
    info = {
        **stats,
        "sft_loss": sft_loss,
        "device": str(device),
        "sft_s": t_rl - t0,
        "rl_s": time.monotonic() - t_rl,
        "hparams": {k: v for k, v in hparams.items() if isinstance(v, int | float | str | bool)},
        "config": asdict(cfg),
    }
    (out_dir / "info.json").write_text(json.dumps(info))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--config", required=True, help="JSON object of TrainConfig fields")
    args = parser.parse_args(argv)
    cfg = TrainConfig.from_json(args.config)
    try:
        run(args.program.resolve(), args.out, cfg)
    except CandidateFault as fault:
        (args.out / "error.json").write_text(json.dumps({"kind": fault.kind, "message": str(fault)}))
        sys.stderr.write(f"candidate fault ({fault.kind}): {fault}\n")
        return EXIT_CANDIDATE_FAULT
    return 0


if __name__ == "__main__":
    sys.exit(main())
