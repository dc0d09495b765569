"""The Engineer: materialises a candidate, checks it, and runs the task's cascade in a sandbox.

The cascade is the task's stages in order (usually `quick` then `full`). Every seed of a
stage is one sandbox job; a stage passes when every job is `ok` and the mean score clears the
stage's threshold. Only a candidate that passes every stage gets a score: a quick score is
never compared with a full one.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cognition.records import Candidate, Evaluation, new_id
from orchestrator.sandbox.base import Limits, Sandbox, SandboxJob, SandboxResult
from orchestrator.task import Stage, Task

#: Seeds of a stage are offset by the run seed so two runs with different seeds differ.
RUN_SEED_STRIDE = 1000

SlotFactory = Callable[[], Any]  # an async context manager factory limiting concurrent jobs


@dataclass(frozen=True)
class EngineeringResult:
    status: str  # the candidate's final status: ok, error, timeout, oom, invalid, lost, cancelled
    score: float | None  # mean score of the last stage, only when every stage passed
    stage_reached: str | None
    passed_all: bool
    evaluations: list[Evaluation]
    metrics: dict[str, Any] = field(default_factory=dict)
    feedback: str = ""
    features: dict[str, float] = field(default_factory=dict)
    gpu_seconds: float = 0.0
    cost_usd: float = 0.0  # sandbox spend (e.g. Modal GPU time), counted against the USD budget
    #: (stdout tail, stderr tail) per evaluation, same order; the loop stores them as blobs.
    tails: list[tuple[str, str]] = field(default_factory=list)


def compile_error(code: str, filename: str = "program.py") -> str | None:
    """A syntax error as text, or None. Non-Python programs are not checked here."""
    if not filename.endswith(".py"):
        return None
    try:
        compile(code, filename, "exec")
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    except ValueError as exc:  # e.g. null bytes
        return f"ValueError: {exc}"
    return None


def mean_metrics(results: list[SandboxResult]) -> dict[str, Any]:
    """Average numeric metrics over seeds; keep the first value of anything else."""
    merged: dict[str, Any] = {}
    keys: list[str] = []
    for r in results:
        for k in r.metrics:
            if k not in keys:
                keys.append(k)
    for k in keys:
        values = [r.metrics[k] for r in results if k in r.metrics]
        numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numeric and len(numeric) == len(values) and all(math.isfinite(v) for v in numeric):
            merged[k] = statistics.fmean(numeric)
        else:
            merged[k] = values[0]
    return merged


class Engineer:
    def __init__(
        self,
        sandbox: Sandbox,
        task: Task,
        *,
        run_id: str,
        run_seed: int = 0,
        slot: SlotFactory | None = None,
        env: dict[str, str] | None = None,
    ):
        self.sandbox = sandbox
        self.task = task
        self.run_id = run_id
        self.run_seed = run_seed
        self.slot = slot
        self.env = dict(env or {})

    def limits_for(self, stage: Stage) -> Limits:
        r = self.task.resources
        return Limits(
            cpus=r.cpus,
            memory_mb=r.memory_mb,
            pids=r.pids,
            timeout_s=stage.timeout_s,
            scratch_mb=r.scratch_mb,
            output_kb=r.output_kb,
            gpu=r.gpu,
            gpu_type=r.gpu_type,
        )

    def job_seed(self, stage_seed: int) -> int:
        return self.run_seed * RUN_SEED_STRIDE + stage_seed

    def job(self, candidate: Candidate, stage: Stage, seed: int) -> SandboxJob:
        program = self.task.program_name
        files = dict(candidate.files)
        files[program] = candidate.code
        return SandboxJob(
            image=self.task.spec.image,
            task_dir=self.task.folder,
            files=files,
            program=program,
            stage=stage.name,
            seed=seed,
            limits=self.limits_for(stage),
            scale=self.task.scale,
            env=self.env,
            run_id=self.run_id,
            candidate_id=candidate.id,
            format=self.task.spec.format,
        )

    async def _run_job(self, job: SandboxJob) -> SandboxResult:
        if self.slot is None:
            return await self.sandbox.run(job)
        async with self.slot():
            return await self.sandbox.run(job)

    async def _run_seeds(self, candidate: Candidate, stage: Stage) -> list[tuple[int, SandboxResult]]:
        """Every seed of a stage as its own job, concurrently (each waits for a sandbox slot).
        The first failure cancels the seeds still running: they would only cost time. Results
        come back in seed order; cancelled seeds are left out."""
        seeds = [self.job_seed(s) for s in stage.seeds]
        tasks = [asyncio.create_task(self._run_job(self.job(candidate, stage, seed))) for seed in seeds]
        got: dict[int, SandboxResult] = {}
        pending = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    got[tasks.index(task)] = task.result()
                if any(r.status != "ok" for r in got.values()):
                    break
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        return [(seeds[i], got[i]) for i in sorted(got)]

    async def evaluate(self, candidate: Candidate) -> EngineeringResult:
        evaluations: list[Evaluation] = []
        error = compile_error(candidate.code, self.task.program_name)
        if error is not None:
            stage = self.task.stages[0]
            evaluations.append(
                Evaluation(
                    id=new_id("ev"),
                    candidate_id=candidate.id,
                    run_id=self.run_id,
                    stage=stage.name,
                    seed=self.job_seed(stage.seeds[0]),
                    status="error",
                    error=error,
                    feedback=f"the program does not compile: {error}",
                    backend="precheck",
                )
            )
            return EngineeringResult("error", None, None, False, evaluations, feedback=error)

        last_metrics: dict[str, Any] = {}
        stage_reached: str | None = None
        gpu_seconds = 0.0
        cost_usd = 0.0
        score: float | None = None
        feedback = ""
        tails: list[tuple[str, str]] = []
        for stage in self.task.stages:
            stage_reached = stage.name
            results: list[SandboxResult] = []
            for seed, result in await self._run_seeds(candidate, stage):
                results.append(result)
                gpu_seconds += result.gpu_seconds or result.runtime_s * self.task.resources.gpu
                cost_usd += result.cost_usd
                evaluations.append(_evaluation(candidate, self.run_id, stage.name, seed, result))
                tails.append((result.stdout_tail, result.stderr_tail))
            failed = next((r for r in results if r.status != "ok"), None)
            if failed is not None:
                feedback = failed.feedback or failed.error or failed.stderr_tail[-1500:]
                return EngineeringResult(
                    failed.status,
                    None,
                    stage.name,
                    False,
                    evaluations,
                    metrics=failed.metrics,
                    feedback=feedback,
                    gpu_seconds=gpu_seconds, cost_usd=cost_usd,
                    tails=tails,
                )
            scores = [r.score for r in results if r.score is not None]
            if len(scores) != len(results):
                return EngineeringResult(
                    "invalid",
                    None,
                    stage.name,
                    False,
                    evaluations,
                    feedback="the evaluator returned no score",
                    gpu_seconds=gpu_seconds, cost_usd=cost_usd,
                    tails=tails,
                )
            stage_mean = statistics.fmean(scores)
            last_metrics = mean_metrics(results)
            last_metrics["score_mean"] = stage_mean
            last_metrics["score_std"] = statistics.pstdev(scores) if len(scores) > 1 else 0.0
            feedback = "\n".join(r.feedback for r in results if r.feedback)[:2000]
            if not self.task.passes(stage, stage_mean):
                return EngineeringResult(
                    "ok",
                    None,
                    stage.name,
                    False,
                    evaluations,
                    metrics=last_metrics,
                    feedback=(
                        f"stage {stage.name} scored {stage_mean:.6g}, below its threshold "
                        f"{stage.threshold}: not evaluated further. {feedback}"
                    ),
                    gpu_seconds=gpu_seconds, cost_usd=cost_usd,
                    tails=tails,
                )
            score = stage_mean
        features = {
            k: float(last_metrics[k])
            for k in self.task.spec.features
            if isinstance(last_metrics.get(k), int | float)
        }
        return EngineeringResult(
            "ok",
            score,
            stage_reached,
            True,
            evaluations,
            metrics=last_metrics,
            feedback=feedback,
            features=features,
            gpu_seconds=gpu_seconds, cost_usd=cost_usd,
            tails=tails,
        )


def _evaluation(
    candidate: Candidate, run_id: str, stage: str, seed: int, r: SandboxResult
) -> Evaluation:
    return Evaluation(
        id=new_id("ev"),
        candidate_id=candidate.id,
        run_id=run_id,
        stage=stage,
        seed=seed,
        status=r.status,
        score=r.score,
        metrics=r.metrics,
        feedback=r.feedback,
        error=r.error,
        runtime_s=r.runtime_s,
        backend=r.backend,
        image_id=r.image_id,
        exit_code=r.exit_code,
    )
