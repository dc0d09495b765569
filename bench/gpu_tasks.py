"""Benchmark: the seed and baselines of the torch tasks, run through the process sandbox.

    python bench/gpu_tasks.py --scale gpu               # on a CUDA machine: full stage, seed 0
    python bench/gpu_tasks.py --scale cpu --stage quick # smoke check on CPU
    python bench/gpu_tasks.py --scale gpu --programs seed,deltanet,linear_attention,grpo,reinforce

Every (task, program, seed) is one `ProcessSandbox` job: the trusted runner starts the task's
evaluator, which trains in a child process exactly as in an evolution run. Prints one JSON
object: per job the status, score, key metrics and wall time, plus the device seen by torch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.sandbox.base import Limits, SandboxJob  # noqa: E402
from orchestrator.sandbox.process import ProcessSandbox  # noqa: E402
from orchestrator.task import Task, load_task  # noqa: E402

TASKS = ("linear_attention", "rl_algorithm")
KEPT_METRICS = ("recall_accuracy", "state_within_budget", "train_loss_final", "train_s",
                "heldout_accuracy", "train_reward_first", "train_reward_last", "rl_s", "child_runtime_s")


def programs(task: Task, only: set[str] | None) -> list[Path]:
    """The seed and every baseline, or those whose file stem is in `only`."""
    found = [task.seed_path, *sorted((task.folder / "baselines").glob("*.py"))]
    return [p for p in found if only is None or p.stem in only]


def job_for(task: Task, program: Path, stage: str, seed: int) -> SandboxJob:
    spec_stage = next((s for s in task.stages if s.name == stage), None)
    if spec_stage is None:
        raise SystemExit(f"task {task.name} has no stage {stage!r}: use one of {[s.name for s in task.stages]}")
    res = task.resources
    limits = Limits(cpus=res.cpus, memory_mb=res.memory_mb, pids=res.pids, timeout_s=spec_stage.timeout_s,
                    scratch_mb=res.scratch_mb, output_kb=res.output_kb, gpu=res.gpu, gpu_type=res.gpu_type)
    return SandboxJob(image=task.spec.image, task_dir=task.folder, files={task.program_name: program.read_text()},
                      program=task.program_name, stage=stage, seed=seed, limits=limits, scale=task.scale,
                      run_id="bench-gpu-tasks", candidate_id=program.stem)


def torch_device() -> str:
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return "torch not importable"
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu ({torch.get_num_threads()} threads)"


async def bench(scale: str, stage: str, seeds: list[int], names: list[str],
                only: set[str] | None) -> dict[str, object]:
    sandbox = ProcessSandbox()
    rows = []
    try:
        for name in names:
            task = load_task(name, scale=None if scale == "cpu" else scale)
            for program in programs(task, only):
                for seed in seeds:
                    started = time.monotonic()
                    result = await sandbox.run(job_for(task, program, stage, seed))
                    rows.append({
                        "task": name, "program": program.stem, "seed": seed, "status": result.status,
                        "score": result.score, "wall_s": round(time.monotonic() - started, 2),
                        "metrics": {k: result.metrics[k] for k in KEPT_METRICS if k in result.metrics},
                        "error": result.error[-400:],
                    })
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        await sandbox.close()
    return {"bench": "gpu_tasks", "scale": scale, "stage": stage, "seeds": seeds,
            "device": torch_device(), "host": platform.node(), "jobs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--stage", default=None, help="default: full for gpu, quick for cpu")
    parser.add_argument("--seeds", default="0", help="comma-separated job seeds")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--programs", default="", help="comma-separated file stems (seed,deltanet,grpo,...); default all")
    args = parser.parse_args()
    stage = args.stage or ("full" if args.scale == "gpu" else "quick")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    warnings.simplefilter("ignore", RuntimeWarning)  # ProcessSandbox's no-isolation notice
    only = {p for p in args.programs.split(",") if p} or None
    report = asyncio.run(bench(args.scale, stage, seeds, args.tasks.split(","), only))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
