"""Schema-versioned records of the Cognition Store, validated by pydantic at the edge.

Every record carries `v` (its schema version). Values are stored as msgpack of
`model_dump(mode="json")`; readers validate with `model_validate`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

EvalStatus = Literal["ok", "error", "timeout", "oom", "invalid", "cancelled", "lost"]
CandidateState = Literal["proposed", "evaluating", "done", "rejected"]
InsightSource = Literal["prior", "analyzer", "person"]


def new_id(prefix: str) -> str:
    """Sortable, unique ids: time prefix so key order in LMDB follows creation order."""
    return f"{prefix}-{int(time.time() * 1000):013x}-{uuid.uuid4().hex[:8]}"


def now() -> float:
    return time.time()


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    v: int = SCHEMA_VERSION


class Run(Record):
    id: str
    task: str
    task_dir: str
    seed: int = 0
    config: dict[str, Any] = Field(default_factory=dict)
    status: Literal["running", "stopped", "finished", "failed"] = "running"
    stop_reason: str = ""
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)
    iterations_done: int = 0
    best_candidate_id: str | None = None
    best_score: float | None = None
    seed_score: float | None = None
    tokens_used: int = 0
    cost_usd: float = 0.0
    gpu_seconds: float = 0.0
    sampler_state: dict[str, Any] = Field(default_factory=dict)


class Candidate(Record):
    id: str
    run_id: str
    task: str
    iteration: int
    code: str
    files: dict[str, str] = Field(default_factory=dict)  # extra files beside the program
    parent_id: str | None = None
    inspiration_ids: list[str] = Field(default_factory=list)
    island: int = 0
    origin: str = "seed"  # "seed", "model:<name>", "offline:<operator>", "replay:<run>"
    prompt_hash: str | None = None
    summary: str = ""  # what the Researcher says it changed
    diff: str = ""  # unified diff against the parent
    state: CandidateState = "proposed"
    score: float | None = None  # the final (last passed stage) mean score
    status: EvalStatus | None = None
    stage_reached: str | None = None
    features: dict[str, float] = Field(default_factory=dict)
    image: str | None = None  # per-candidate reproduction image tag
    created_at: float = Field(default_factory=now)


class Evaluation(Record):
    id: str
    candidate_id: str
    run_id: str
    stage: str
    seed: int
    status: EvalStatus
    score: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    feedback: str = ""
    error: str = ""
    runtime_s: float = 0.0
    backend: str = ""
    image_id: str = ""
    exit_code: int | None = None
    stdout_blob: str | None = None  # content hash in the blob store
    stderr_blob: str | None = None
    gpu_seconds: float = 0.0
    cost_usd: float = 0.0
    gpu_type: str = ""  # GPU the evaluation ran on (modal backend), for reproduction
    created_at: float = Field(default_factory=now)


class Insight(Record):
    id: str
    text: str
    task: str
    source: InsightSource
    evidence: list[str] = Field(default_factory=list)  # candidate ids
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    run_id: str | None = None  # provenance: the run that learned it
    claim: str = ""
    tags: list[str] = Field(default_factory=list)
    created_at: float = Field(default_factory=now)


class LLMCall(Record):
    id: str
    run_id: str
    role: Literal["researcher", "analyzer", "engineer"]
    model: str
    prompt: list[dict[str, Any]]
    response: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    error: str = ""
    seq: int = 0  # order of the call within its run, used by replay
    candidate_id: str | None = None
    created_at: float = Field(default_factory=now)


class Event(Record):
    id: str
    run_id: str
    kind: str
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: float = Field(default_factory=now)
