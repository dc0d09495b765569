"""The sandbox contract: one job in, one validated result out, whatever the backend.

Every backend (docker, process, modal) satisfies `Sandbox` and passes the shared contract
suite in `tests/sandbox_contract.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

Status = Literal["ok", "error", "timeout", "oom", "invalid", "cancelled", "lost"]

#: Bound on stdout/stderr tails kept per evaluation.
TAIL_CHARS = 4000


@dataclass(frozen=True)
class Limits:
    cpus: float = 2.0
    memory_mb: int = 2048
    pids: int = 256
    timeout_s: float = 60.0
    scratch_mb: int = 256
    output_kb: int = 256
    gpu: int = 0
    gpu_type: str | None = None


@dataclass(frozen=True)
class SandboxJob:
    """What to run: the task folder is mounted read-only, `files` are the candidate's files
    (name -> text), materialised read-only next to each other."""

    image: str  # logical image name from task.yaml ("cpu"), resolved by the backend
    task_dir: Path
    files: dict[str, str]
    program: str  # which of `files` is the program handed to the evaluator
    stage: str
    seed: int
    limits: Limits = Limits()
    scale: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    run_id: str = "adhoc"
    candidate_id: str = "adhoc"
    #: Task folder format ("evoforge", "openevolve", "shinka"); the runner's `--format`.
    format: str = "evoforge"


class SandboxResult(BaseModel):
    """A result as the host accepts it. Anything that fails validation becomes `invalid`."""

    model_config = ConfigDict(extra="forbid")

    status: Status
    score: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    feedback: str = ""
    error: str = ""
    stdout_tail: str = ""
    stderr_tail: str = ""
    runtime_s: float = 0.0
    image_id: str = ""
    backend: str = ""
    exit_code: int | None = None
    #: Filled by GPU backends (modal); 0 / "" elsewhere. The loop charges them to the budget.
    gpu_type: str = ""
    gpu_seconds: float = Field(default=0.0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)

    @field_validator("score")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("score must be a finite number")
        return v

    @field_validator("stdout_tail", "stderr_tail", "feedback", "error")
    @classmethod
    def _bounded(cls, v: str) -> str:
        return v[-TAIL_CHARS:] if len(v) > TAIL_CHARS else v


@runtime_checkable
class Sandbox(Protocol):
    """A place to run candidate evaluations. `run` never raises for a candidate's fault:
    every failure of the candidate is a status. It raises `SandboxError` only when the
    backend itself cannot work (and then the loop stops or waits, with a clear message)."""

    name: str

    async def run(self, job: SandboxJob) -> SandboxResult: ...

    async def close(self) -> None: ...
