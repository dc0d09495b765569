"""Trusted evaluator of the rl_algorithm task: held-out accuracy of a policy trained by RL
with the candidate's `compute_loss`.

A child process runs the trusted driver `train_child.py`, which imports the candidate, warm
starts a tiny transformer on two-digit addition, runs GRPO-style RL with the candidate's loss
and writes the final weights as plain arrays. This process (which never imports the
candidate) rebuilds the trusted policy from those arrays and decodes held-out prompts
greedily; the test prompts and their answers never leave it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from arith import prompts, rewards, split  # noqa: E402

try:
    from evoforge_runner.child import CandidateError, run_child
except ImportError:  # outside the sandbox image: use the runner from the repository
    sys.path.insert(0, str(HERE.parents[1] / "sandbox_images" / "runner"))
    from evoforge_runner.child import CandidateError, run_child

DRIVER = HERE / "train_child.py"
EVAL_STREAM = 5


@dataclass(frozen=True)
class Setting:
    driver: dict[str, object]
    num_eval: int
    timeout_s: float


_CPU = {"dim": 64, "num_layers": 2, "num_heads": 4, "sft_steps": 300, "sft_problems": 8000,
        "num_groups": 16, "group_size": 8, "rl_lr": 5e-4, "threads": 1, "device": "cpu"}
_GPU = {"dim": 128, "num_layers": 3, "num_heads": 4, "sft_steps": 300, "sft_problems": 8000,
        "num_groups": 64, "group_size": 16, "rl_lr": 3e-4, "threads": 4, "device": "cuda"}

SETTINGS: dict[tuple[str, str], Setting] = {
    ("cpu", "quick"): Setting({**_CPU, "rl_steps": 20}, num_eval=500, timeout_s=120),
    ("cpu", "full"): Setting({**_CPU, "rl_steps": 120}, num_eval=1000, timeout_s=300),
    ("gpu", "quick"): Setting({**_GPU, "rl_steps": 50}, num_eval=2000, timeout_s=300),
    ("gpu", "full"): Setting({**_GPU, "rl_steps": 600}, num_eval=2000, timeout_s=900),
}


def setting_for(stage: str, scale: str | None) -> Setting:
    key = (scale or "cpu", stage)
    if key not in SETTINGS:
        known = ", ".join(f"{sc}/{st}" for sc, st in SETTINGS)
        raise ValueError(f"rl_algorithm has no setting for scale/stage {key[0]}/{key[1]} (known: {known})")
    return SETTINGS[key]


def held_out_ids(setting: Setting, seed: int) -> np.ndarray:
    _, held = split()
    return np.random.default_rng([seed, EVAL_STREAM]).choice(held, size=setting.num_eval, replace=False)


def _candidate_fault(out_dir: Path) -> str | None:
    path = out_dir / "error.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text()[:20000])
        return f"{raw.get('kind', 'fault')}: {raw.get('message', '')}"
    except (ValueError, AttributeError):
        return "the driver reported a candidate fault but its error.json is unreadable"


def _read_info(out_dir: Path) -> dict[str, object]:
    try:
        info = json.loads((out_dir / "info.json").read_text()[:100000])
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else float("nan")


def greedy_accuracy(weights: Path, driver_cfg: dict[str, object], ids: np.ndarray, threads: int) -> float:
    """Rebuild the trusted policy from plain arrays and decode `ids` greedily, here."""
    import torch  # noqa: PLC0415 - only the scoring step needs torch in the parent
    from policy import Policy, PolicyConfig, load_state_arrays  # noqa: PLC0415

    torch.set_num_threads(threads)
    cfg = PolicyConfig(dim=int(driver_cfg["dim"]), num_layers=int(driver_cfg["num_layers"]),  # type: ignore[call-overload]
                       num_heads=int(driver_cfg["num_heads"]))  # type: ignore[call-overload]
    policy = Policy(cfg)
    try:
        with np.load(weights, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        load_state_arrays(policy, arrays)
    except (OSError, ValueError, KeyError) as exc:
        raise CandidateError(f"the driver wrote unusable policy weights: {exc}", kind="bad_output") from exc
    policy.eval()
    out = []
    for start in range(0, len(ids), 500):
        chunk = torch.from_numpy(prompts(ids[start : start + 500]))
        out.append(policy.generate(chunk, None, greedy=True).numpy())
    return float(rewards(np.concatenate(out), ids).mean())


def evaluate(program_path: str, *, stage: str, seed: int, workdir: str, scale: str | None = None) -> dict:
    """RL-train the policy with the candidate's loss; score = greedy held-out accuracy."""
    setting = setting_for(stage, scale)
    work = Path(workdir)
    out_dir = work / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("policy.npz", "info.json", "error.json"):
        (out_dir / stale).unlink(missing_ok=True)
    config = {**setting.driver, "seed": int(seed)}
    threads = int(config["threads"])  # type: ignore[call-overload]
    result = run_child(
        [sys.executable, str(DRIVER), "--program", str(Path(program_path).resolve()),
         "--out", str(out_dir.resolve()), "--config", json.dumps(config)],
        workdir=work / "child",
        timeout_s=setting.timeout_s,
        threads=threads,
    )
    if result.timed_out:
        raise CandidateError(
            f"RL training did not finish within {setting.timeout_s:g} s ({stage} stage): make compute_loss cheaper",
            kind="timeout", stdout_tail=result.stdout_tail, stderr_tail=result.stderr_tail,
        )
    fault = _candidate_fault(out_dir)
    if fault is not None:
        raise CandidateError(f"candidate rejected: {fault}", kind="crash",
                             stdout_tail=result.stdout_tail, stderr_tail=result.stderr_tail)
    if result.returncode != 0:
        raise CandidateError(f"the training driver exited with code {result.returncode}", kind="crash",
                             stdout_tail=result.stdout_tail, stderr_tail=result.stderr_tail)
    ids = held_out_ids(setting, seed)
    accuracy = greedy_accuracy(out_dir / "policy.npz", setting.driver, ids, threads)
    info = _read_info(out_dir)
    metrics = {
        "heldout_accuracy": accuracy,
        "train_reward_first": _num(info.get("train_reward_first")),
        "train_reward_last": _num(info.get("train_reward_last")),
        "kl_to_ref_last": _num(info.get("kl_to_ref_last")),
        "sft_loss": _num(info.get("sft_loss")),
        "rl_s": _num(info.get("rl_s")),
        "child_runtime_s": result.runtime_s,
    }
    d = setting.driver
    feedback = (
        f"held-out greedy accuracy {accuracy:.3f} on {setting.num_eval} unseen two-digit additions after "
        f"{d['rl_steps']} RL updates ({d['num_groups']} prompts x {d['group_size']} samples each); "
        f"train reward {metrics['train_reward_first']:.3f} -> {metrics['train_reward_last']:.3f}; "
        f"KL to reference {metrics['kl_to_ref_last']:.4f}; RL took {metrics['rl_s']:.1f} s."
    )
    return {"score": accuracy, "metrics": metrics, "feedback": feedback}
