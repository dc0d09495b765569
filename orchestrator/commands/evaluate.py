"""`evolve eval TASK_OR_DIR PROGRAM`: one sandbox job, the validated result JSON on stdout."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orchestrator.errors import TaskError
from orchestrator.sandbox import make_sandbox
from orchestrator.sandbox.base import Limits, SandboxJob, SandboxResult
from orchestrator.task import Task, load_task


def job_for(task: Task, code: str, stage: str | None = None, seed: int = 0) -> SandboxJob:
    """The sandbox job that evaluates `code` on one stage (default: the first) of `task`."""
    stages = {s.name: s for s in task.stages}
    chosen = stages.get(stage) if stage else task.stages[0]
    if chosen is None:
        raise TaskError(f"task {task.name} has no stage {stage!r} (stages: {', '.join(stages)})")
    res = task.resources
    limits = Limits(cpus=res.cpus, memory_mb=res.memory_mb, pids=res.pids, timeout_s=chosen.timeout_s,
                    scratch_mb=res.scratch_mb, output_kb=res.output_kb, gpu=res.gpu, gpu_type=res.gpu_type)
    return SandboxJob(image=task.spec.image, task_dir=task.folder, files={task.program_name: code},
                      program=task.program_name, stage=chosen.name, seed=seed, limits=limits, scale=task.scale,
                      format=task.spec.format)


async def evaluate_once(task: Task, code: str, stage: str | None, seed: int, sandbox: str) -> SandboxResult:
    backend = make_sandbox(sandbox)
    try:
        return await backend.run(job_for(task, code, stage, seed))
    finally:
        await backend.close()


def eval_command(task_or_dir: str, program: Path, stage: str | None = None, seed: int = 0,
                 sandbox: str = "docker", scale: str | None = None) -> SandboxResult:
    """Load the task, run ONE job of `program`, print the validated result JSON, return it."""
    task = load_task(task_or_dir, scale=scale)
    path = Path(program)
    if not path.is_file():
        raise TaskError(f"program {path} is not a file: pass the path of a Python program")
    result = asyncio.run(evaluate_once(task, path.read_text(), stage, seed, sandbox))
    print(result.model_dump_json(indent=2))
    return result
