"""Trusted evaluator of the linear_attention task: MQAR recall of a model built on the candidate.

The parent (this module) draws held-out MQAR sequences from the job seed and keeps their
targets. Only the inputs go to a child process, which runs the trusted driver
`train_child.py`: it imports the candidate's `Mixer`, checks causality, trains the model and
writes greedy predictions. The parent scores those predictions at the query positions.
Candidate code never runs in this process.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from mqar import IGNORE, MQARConfig, make_batch  # noqa: E402

try:
    from evoforge_runner.child import CandidateError, run_child
except ImportError:  # outside the sandbox image: use the runner from the repository
    sys.path.insert(0, str(HERE.parents[1] / "sandbox_images" / "runner"))
    from evoforge_runner.child import CandidateError, run_child

DRIVER = HERE / "train_child.py"
EVAL_STREAM = 99  # keeps held-out sequences apart from the driver's training stream


@dataclass(frozen=True)
class Setting:
    """One (scale, stage) cell: what the driver trains and how the parent scores."""

    driver: dict[str, object]
    num_eval: int
    timeout_s: float


_CPU = {"vocab": 64, "seq_len": 32, "num_kv": 8, "dim": 64, "num_heads": 2, "state_size": 128,
        "batch_size": 16, "lr": 3e-3, "threads": 1, "device": "cpu"}
_GPU = {"vocab": 128, "seq_len": 128, "num_kv": 24, "dim": 128, "num_heads": 4, "state_size": 1024,
        "batch_size": 64, "lr": 3e-3, "threads": 4, "device": "cuda"}

SETTINGS: dict[tuple[str, str], Setting] = {
    ("cpu", "quick"): Setting({**_CPU, "steps": 300}, num_eval=256, timeout_s=120),
    ("cpu", "full"): Setting({**_CPU, "steps": 1400}, num_eval=512, timeout_s=300),
    ("gpu", "quick"): Setting({**_GPU, "steps": 300}, num_eval=512, timeout_s=300),
    ("gpu", "full"): Setting({**_GPU, "steps": 3000}, num_eval=2048, timeout_s=900),
}


def setting_for(stage: str, scale: str | None) -> Setting:
    key = (scale or "cpu", stage)
    if key not in SETTINGS:
        known = ", ".join(f"{sc}/{st}" for sc, st in SETTINGS)
        raise ValueError(f"linear_attention has no setting for scale/stage {key[0]}/{key[1]} (known: {known})")
    return SETTINGS[key]


def held_out(setting: Setting, seed: int) -> tuple[np.ndarray, np.ndarray]:
    d = setting.driver
    cfg = MQARConfig(int(d["vocab"]), int(d["seq_len"]), int(d["num_kv"]))  # type: ignore[call-overload]
    return make_batch(cfg, setting.num_eval, np.random.default_rng([seed, EVAL_STREAM]))


def _candidate_fault(io_dir: Path) -> str | None:
    path = io_dir / "error.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text()[:20000])
        return f"{raw.get('kind', 'fault')}: {raw.get('message', '')}"
    except (ValueError, AttributeError):
        return "the driver reported a candidate fault but its error.json is unreadable"


def _read_predictions(io_dir: Path, expected: tuple[int, ...]) -> np.ndarray:
    try:
        with np.load(io_dir / "predictions.npz", allow_pickle=False) as npz:
            preds = npz["predictions"]
    except (OSError, KeyError, ValueError) as exc:
        raise CandidateError(f"the driver wrote no readable predictions.npz: {exc}", kind="bad_output") from exc
    if preds.shape != expected or not np.issubdtype(preds.dtype, np.integer):
        raise CandidateError(
            f"predictions must be an integer array of shape {expected}, got {preds.dtype} {preds.shape}",
            kind="bad_output",
        )
    return preds


def _read_info(io_dir: Path) -> dict[str, object]:
    try:
        info = json.loads((io_dir / "info.json").read_text()[:100000])
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _num(value: object, default: float = float("nan")) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def evaluate(program_path: str, *, stage: str, seed: int, workdir: str, scale: str | None = None) -> dict:
    """Train a 2-layer model around the candidate Mixer; score = held-out MQAR recall accuracy."""
    setting = setting_for(stage, scale)
    inputs, labels = held_out(setting, seed)
    work = Path(workdir)
    io_dir = work / "io"
    io_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("predictions.npz", "info.json", "error.json"):
        (io_dir / stale).unlink(missing_ok=True)
    np.savez(io_dir / "eval_inputs.npz", inputs=inputs)
    config = {**setting.driver, "seed": int(seed)}
    threads = int(config["threads"])  # type: ignore[call-overload]
    result = run_child(
        [sys.executable, str(DRIVER), "--program", str(Path(program_path).resolve()),
         "--io", str(io_dir.resolve()), "--config", json.dumps(config)],
        workdir=work / "child",
        timeout_s=setting.timeout_s,
        threads=threads,
    )
    if result.timed_out:
        raise CandidateError(
            f"training did not finish within {setting.timeout_s:g} s ({stage} stage): make the Mixer cheaper",
            kind="timeout", stdout_tail=result.stdout_tail, stderr_tail=result.stderr_tail,
        )
    fault = _candidate_fault(io_dir)
    if fault is not None:
        raise CandidateError(f"candidate rejected: {fault}", kind="crash",
                             stdout_tail=result.stdout_tail, stderr_tail=result.stderr_tail)
    if result.returncode != 0:
        raise CandidateError(f"the training driver exited with code {result.returncode}", kind="crash",
                             stdout_tail=result.stdout_tail, stderr_tail=result.stderr_tail)
    preds = _read_predictions(io_dir, labels.shape)
    info = _read_info(io_dir)
    query = labels != IGNORE
    accuracy = float((preds[query] == labels[query]).mean())
    budget = int(setting.driver["state_size"])  # type: ignore[call-overload]
    declared = info.get("declared_state_numel")
    within = 1.0 if isinstance(declared, int) and declared <= budget else 0.0
    metrics = {
        "recall_accuracy": accuracy,
        "sequence_accuracy": float(((preds == labels) | ~query).all(axis=1).mean()),
        "train_loss_final": _num(info.get("train_loss_final")),
        "num_params": _num(info.get("num_params")),
        "mixer_params": _num(info.get("mixer_params")),
        "declared_state_numel": _num(declared, -1.0),
        "state_budget": float(budget),
        "state_within_budget": within,
        "train_s": _num(info.get("train_s")),
        "child_runtime_s": result.runtime_s,
    }
    d = setting.driver
    note = "" if within else (
        f" WARNING: declared state {declared} exceeds the budget {budget} (or state_numel() is missing);"
        " the score is flagged, not comparable with bounded-state mixers."
    )
    feedback = (
        f"MQAR recall accuracy {accuracy:.3f} on {setting.num_eval} held-out sequences "
        f"(vocab {d['vocab']}, seq {d['seq_len']}, {d['num_kv']} key-value pairs, dim {d['dim']}, "
        f"{d['num_heads']} heads, state budget {budget}, {d['steps']} steps); "
        f"final train loss {metrics['train_loss_final']:.3f}; mixer params {metrics['mixer_params']:.0f}; "
        f"training took {metrics['train_s']:.1f} s.{note}"
    )
    return {"score": accuracy, "metrics": metrics, "feedback": feedback}
