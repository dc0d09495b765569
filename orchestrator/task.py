"""A task folder: `task.yaml` validated into `TaskSpec`, plus its seed program and priors.

The folder contract lives in DESIGN.md. This module only reads and validates; it never runs
the evaluator (that happens inside a sandbox, through the trusted runner).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator import TASKS_DIR
from orchestrator.errors import TaskError

EVOLVE_START = "# EVOLVE-BLOCK-START"
EVOLVE_END = "# EVOLVE-BLOCK-END"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metric(_Strict):
    key: str = "score"
    direction: Literal["maximize", "minimize"] = "maximize"


class Stage(_Strict):
    """One step of the cascade: every seed is one sandbox job; the stage passes when the
    mean score clears `threshold` (direction-aware); None means any `ok` result passes."""

    name: str
    timeout_s: float = Field(gt=0)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    threshold: float | None = None


class Resources(_Strict):
    cpus: float = Field(default=2.0, gt=0)
    memory_mb: int = Field(default=2048, ge=64)
    pids: int = Field(default=256, ge=16)
    gpu: int = Field(default=0, ge=0)
    gpu_type: str | None = None
    scratch_mb: int = Field(default=256, ge=16)
    output_kb: int = Field(default=256, ge=1)


class Scale(_Strict):
    """A named override (e.g. `gpu`): the evaluator receives `scale=<name>`."""

    resources: Resources | None = None
    stages: list[Stage] | None = None


class TaskSpec(_Strict):
    name: str
    description: str
    image: str = "cpu"
    program: str = "seed.py"
    metric: Metric = Metric()
    stages: list[Stage] = Field(min_length=1)
    resources: Resources = Resources()
    edit_mode: Literal["diff", "full"] = "diff"
    priors: str | None = "priors.md"
    features: list[str] = Field(default_factory=list)
    scales: dict[str, Scale] = Field(default_factory=dict)
    iterations: int = Field(default=30, ge=1)
    format: Literal["evoforge", "openevolve", "shinka"] = "evoforge"
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("stages")
    @classmethod
    def _unique_stage_names(cls, stages: list[Stage]) -> list[Stage]:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        return stages


class Task:
    """A loaded task folder. `scale` picks an entry of `scales` (e.g. "gpu")."""

    def __init__(self, folder: Path, spec: TaskSpec, scale: str | None = None):
        self.folder = folder
        self.spec = spec
        self.scale = scale
        if scale is not None and scale not in spec.scales:
            known = ", ".join(sorted(spec.scales)) or "none"
            raise TaskError(
                f"task {spec.name!r} has no scale {scale!r} (known: {known}); "
                f"add it under `scales:` in {folder / 'task.yaml'} or drop --scale"
            )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def resources(self) -> Resources:
        if self.scale and self.spec.scales[self.scale].resources is not None:
            return self.spec.scales[self.scale].resources  # type: ignore[return-value]
        return self.spec.resources

    @property
    def stages(self) -> list[Stage]:
        if self.scale and self.spec.scales[self.scale].stages is not None:
            return self.spec.scales[self.scale].stages  # type: ignore[return-value]
        return self.spec.stages

    @property
    def seed_path(self) -> Path:
        return self.folder / self.spec.program

    def seed_code(self) -> str:
        path = self.seed_path
        if not path.is_file():
            raise TaskError(f"seed program {path} is missing: create it or fix `program:` in task.yaml")
        code = path.read_text()
        if not code.strip():
            raise TaskError(f"seed program {path} is empty: put the initial program there")
        return code

    @property
    def program_name(self) -> str:
        """The file name a candidate is materialised as inside the sandbox."""
        return "program" + Path(self.spec.program).suffix

    def priors_path(self) -> Path | None:
        if not self.spec.priors:
            return None
        path = self.folder / self.spec.priors
        return path if path.is_file() else None

    def better(self, a: float, b: float) -> bool:
        """True when score `a` is strictly better than `b` under the task's direction."""
        return a > b if self.spec.metric.direction == "maximize" else a < b

    def passes(self, stage: Stage, score: float) -> bool:
        if stage.threshold is None:
            return True
        if self.spec.metric.direction == "maximize":
            return score >= stage.threshold
        return score <= stage.threshold


def resolve_task_dir(task_or_dir: str | Path) -> Path:
    """A shipped task name (`data_curation`) or a path to a task folder."""
    candidate = Path(task_or_dir)
    if candidate.is_dir():
        return candidate.resolve()
    shipped = TASKS_DIR / str(task_or_dir)
    if shipped.is_dir():
        return shipped.resolve()
    known = sorted(p.name for p in TASKS_DIR.iterdir() if (p / "task.yaml").is_file()) if TASKS_DIR.is_dir() else []
    raise TaskError(
        f"no task {str(task_or_dir)!r}: not a folder and not a shipped task "
        f"(shipped: {', '.join(known) or 'none'})"
    )


def load_task(task_or_dir: str | Path, scale: str | None = None) -> Task:
    """Load and validate a task folder. Peer formats (OpenEvolve, ShinkaEvolve) are detected
    by `orchestrator.peer_formats` when that module is present."""
    folder = resolve_task_dir(task_or_dir)
    spec_path = folder / "task.yaml"
    if not spec_path.is_file():
        try:
            from orchestrator.peer_formats import detect_peer_task  # noqa: PLC0415
        except ImportError:
            detect_peer_task = None  # type: ignore[assignment]
        if detect_peer_task is not None:
            spec = detect_peer_task(folder)
            if spec is not None:
                return Task(folder, spec, scale)
        raise TaskError(f"{folder} has no task.yaml: see DESIGN.md for the task-folder contract")
    try:
        raw = yaml.safe_load(spec_path.read_text())
    except yaml.YAMLError as exc:
        raise TaskError(f"{spec_path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TaskError(f"{spec_path} must be a mapping of keys, got {type(raw).__name__}")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise TaskError(f"{spec_path} is invalid: {problems}") from exc
    task = Task(folder, spec, scale)
    if not (folder / "evaluate.py").is_file() and spec.format == "evoforge":
        raise TaskError(f"{folder} has no evaluate.py: the trusted evaluator is required")
    return task
