"""Trusted training driver for the linear_attention task; runs in a child process.

    python train_child.py --program CANDIDATE.py --io DIR --config '{"steps": 300, ...}'

It imports the candidate's `Mixer`, checks it (output shape, causality, no mixing across the
batch), builds a small language model around it, trains it on MQAR batches drawn from the job
seed, and writes greedy next-token predictions for `DIR/eval_inputs.npz` to
`DIR/predictions.npz`, plus `DIR/info.json` (training loss, timings, declared state size).
It never sees the evaluation targets: the parent scores the predictions.

A fault of the candidate is written to `DIR/error.json` as {"kind", "message"} and the
process exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mqar import IGNORE, MQARConfig, make_batch  # noqa: E402

EXIT_CANDIDATE_FAULT = 2
CAUSALITY_ATOL = 1e-4


@dataclass(frozen=True)
class TrainConfig:
    vocab: int = 64
    seq_len: int = 64
    num_kv: int = 8
    dim: int = 64
    num_heads: int = 2
    state_size: int = 512
    num_layers: int = 2
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup_steps: int = 20
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    eval_batch: int = 256

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown driver config keys {unknown}; known: {sorted(known)}")
        return cls(**raw)


class CandidateFault(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Block(nn.Module):
    def __init__(self, mixer: nn.Module, dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.mixer = mixer
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RecallModel(nn.Module):
    def __init__(self, mixer_cls: type, cfg: TrainConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab, cfg.dim)
        self.blocks = nn.ModuleList(
            Block(mixer_cls(cfg.dim, cfg.num_heads, cfg.state_size), cfg.dim)
            for _ in range(cfg.num_layers)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def load_mixer_class(program: Path) -> type:
    spec = importlib.util.spec_from_file_location("candidate_program", program)
    if spec is None or spec.loader is None:
        raise CandidateFault("import", f"cannot import candidate program {program}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["candidate_program"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise CandidateFault("import", f"importing the candidate failed: {exc!r}\n{traceback.format_exc(limit=4)}") from exc
    mixer_cls = getattr(module, "Mixer", None)
    if not (isinstance(mixer_cls, type) and issubclass(mixer_cls, nn.Module)):
        raise CandidateFault("interface", "the candidate must define `class Mixer(torch.nn.Module)`")
    return mixer_cls


def check_mixer(mixer_cls: type, cfg: TrainConfig, device: torch.device) -> dict[str, object]:
    """Shape, finiteness, causality and batch independence of one freshly built Mixer."""
    try:
        mixer = mixer_cls(cfg.dim, cfg.num_heads, cfg.state_size).to(device)
    except Exception as exc:
        raise CandidateFault("interface", f"Mixer({cfg.dim}, {cfg.num_heads}, {cfg.state_size}) failed: {exc!r}") from exc
    mixer.eval()
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(3, cfg.seq_len, cfg.dim, generator=gen).to(device)
    with torch.no_grad():
        try:
            y = mixer(x)
        except Exception as exc:
            raise CandidateFault("forward", f"Mixer.forward failed on input [3, {cfg.seq_len}, {cfg.dim}]: {exc!r}\n{traceback.format_exc(limit=4)}") from exc
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape):
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise CandidateFault("interface", f"Mixer.forward must return [batch, seq, dim] = {tuple(x.shape)}, got {shape}")
        if not torch.isfinite(y).all():
            raise CandidateFault("forward", "Mixer.forward returned NaN or inf on a random input")
        worst = 0.0
        for t in sorted({0, 1, cfg.seq_len // 3, cfg.seq_len // 2, cfg.seq_len - 2}):
            x2 = x.clone()
            x2[:, t + 1 :] = torch.randn(x2[:, t + 1 :].shape, generator=gen).to(device)
            y2 = mixer(x2)
            diff = (y2[:, : t + 1] - y[:, : t + 1]).abs().max().item()
            worst = max(worst, diff)
            if diff > CAUSALITY_ATOL:
                raise CandidateFault(
                    "causality",
                    f"Mixer is not causal: changing tokens after position {t} changed the output at "
                    f"positions <= {t} by up to {diff:.3g} (allowed {CAUSALITY_ATOL:g}); "
                    "every output may depend only on current and earlier tokens",
                )
        x3 = x.clone()
        x3[1:] = torch.randn(x3[1:].shape, generator=gen).to(device)
        leak = (mixer(x3)[0] - y[0]).abs().max().item()
        if leak > CAUSALITY_ATOL:
            raise CandidateFault("batch_mixing", f"Mixer mixes information across the batch (change {leak:.3g}); sequences must be independent")
    declared = getattr(mixer, "state_numel", None)
    try:
        declared_value = int(declared()) if callable(declared) else None
    except Exception as exc:
        raise CandidateFault("interface", f"Mixer.state_numel() must return an int: {exc!r}") from exc
    return {"causality_max_diff": worst, "declared_state_numel": declared_value}


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def train(model: RecallModel, cfg: TrainConfig, device: torch.device) -> dict[str, float]:
    rng = np.random.default_rng([cfg.seed, 7])
    data_cfg = MQARConfig(cfg.vocab, cfg.seq_len, cfg.num_kv)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.98),
    )
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    model.train()
    losses: list[float] = []
    for step in range(cfg.steps):
        inputs, labels = make_batch(data_cfg, cfg.batch_size, rng)
        x = torch.from_numpy(inputs).to(device)
        y = torch.from_numpy(labels).to(device)
        logits = model(x)
        loss = loss_fn(logits.reshape(-1, cfg.vocab), y.reshape(-1))
        if not torch.isfinite(loss):
            raise CandidateFault("diverged", f"training loss became {loss.item()} at step {step}")
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
    tail = losses[-max(1, cfg.steps // 10) :]
    return {"train_loss_final": float(np.mean(tail)), "train_loss_first": float(losses[0])}


@torch.no_grad()
def predict(model: RecallModel, inputs: np.ndarray, cfg: TrainConfig, device: torch.device) -> np.ndarray:
    model.eval()
    out = []
    for start in range(0, len(inputs), cfg.eval_batch):
        x = torch.from_numpy(inputs[start : start + cfg.eval_batch]).to(device)
        out.append(model(x).argmax(-1).cpu().numpy().astype(np.int64))
    return np.concatenate(out)


def run(program: Path, io_dir: Path, cfg: TrainConfig) -> None:
    t0 = time.monotonic()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device if cfg.device != "cuda" or torch.cuda.is_available() else "cpu")
    # On CUDA a few kernels lack a deterministic variant: warn rather than crash there.
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    with np.load(io_dir / "eval_inputs.npz", allow_pickle=False) as npz:
        eval_inputs = npz["inputs"]
    mixer_cls = load_mixer_class(program)
    checks = check_mixer(mixer_cls, cfg, device)
    torch.manual_seed(cfg.seed)
    try:
        model = RecallModel(mixer_cls, cfg).to(device)
    except CandidateFault:
        raise
    except Exception as exc:
        raise CandidateFault("interface", f"building the model around Mixer failed: {exc!r}") from exc
    num_params = sum(p.numel() for p in model.parameters())
    mixer_params = sum(p.numel() for b in model.blocks for p in b.mixer.parameters())
    t_train = time.monotonic()
    try:
        stats = train(model, cfg, device)
        t_pred = time.monotonic()
        preds = predict(model, eval_inputs, cfg, device)
    except CandidateFault:
        raise
    except Exception as exc:
        raise CandidateFault("forward", f"training failed: {exc!r}\n{traceback.format_exc(limit=6)}") from exc
    np.savez(io_dir / "predictions.npz", predictions=preds)
    info = {
        **checks,
        **stats,
        "num_params": num_params,
        "mixer_params": mixer_params,
        "device": str(device),
        "setup_s": t_train - t0,
        "train_s": t_pred - t_train,
        "predict_s": time.monotonic() - t_pred,
        "config": asdict(cfg),
    }
    (io_dir / "info.json").write_text(json.dumps(info))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", required=True, type=Path)
    parser.add_argument("--io", required=True, type=Path)
    parser.add_argument("--config", required=True, help="JSON object of TrainConfig fields")
    args = parser.parse_args(argv)
    cfg = TrainConfig.from_json(args.config)
    try:
        run(args.program.resolve(), args.io, cfg)
    except CandidateFault as fault:
        (args.io / "error.json").write_text(json.dumps({"kind": fault.kind, "message": str(fault)}))
        sys.stderr.write(f"candidate fault ({fault.kind}): {fault}\n")
        return EXIT_CANDIDATE_FAULT
    return 0


if __name__ == "__main__":
    sys.exit(main())
