"""The host side of the runner protocol, shared by every backend.

- `new_nonce()` makes the per-job secret the runner must echo on its result line;
- `write_inputs()` materialises candidate files (validated names, 0755/0644) for a read-only mount;
- `parse_result()` finds the last `EVOFORGE-RESULT <nonce> <json>` line and turns it into a
  validated `SandboxResult`. Anything malformed, huge, NaN or missing becomes `invalid`; this
  function never raises for what a candidate or evaluator printed.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from orchestrator.sandbox.base import SandboxJob, SandboxResult, Status

RESULT_PREFIX = "EVOFORGE-RESULT"
#: Keys the runner may report; the host sets backend, image_id and exit_code itself.
RUNNER_KEYS = {"status", "score", "metrics", "feedback", "error", "stdout_tail", "stderr_tail", "runtime_s"}
RUNNER_STATUSES = {"ok", "error", "timeout", "oom", "invalid"}


class BadInput(ValueError):
    """A candidate file name that cannot be materialised safely."""


def new_nonce() -> str:
    return secrets.token_hex(16)


def runner_args(job: SandboxJob, task_dir: str, program: str) -> list[str]:
    args = ["--task-dir", task_dir, "--program", program, "--stage", job.stage, "--seed", str(job.seed),
            "--timeout", f"{job.limits.timeout_s:g}", "--max-result-bytes", str(job.limits.output_kb * 1024)]
    if job.scale:
        args += ["--scale", job.scale]
    if job.format != "evoforge":
        args += ["--format", job.format]
    return args


def safe_relpath(name: str) -> PurePosixPath:
    """A candidate file name: relative, no `..`, no empty or hidden-control parts."""
    path = PurePosixPath(name)
    if not name or "\x00" in name or path.is_absolute() or any(p in ("..", "") for p in path.parts) \
            or "\\" in name or name != str(path):
        raise BadInput(f"candidate file name {name!r} is not a plain relative path")
    return path


def write_inputs(files: dict[str, str], program: str, parent: Path | None = None) -> Path:
    """Write candidate files into a fresh folder (0755 folders, 0644 files) and return it."""
    if program not in files:
        raise BadInput(f"program {program!r} is not among the candidate files {sorted(files)}")
    folder = Path(tempfile.mkdtemp(prefix="evoforge-input-", dir=parent))
    folder.chmod(0o755)
    for name, text in files.items():
        rel = safe_relpath(name)
        target = folder.joinpath(*rel.parts)
        for d in reversed(target.parents):
            if d != folder and folder in d.parents and not d.exists():
                d.mkdir(mode=0o755)
                d.chmod(0o755)
        target.write_text(text)
        target.chmod(0o644)
    return folder


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in the result")


def failure(status: Status, error: str, **host: Any) -> SandboxResult:
    return SandboxResult(status=status, error=error, **host)


def parse_result(stdout: str, nonce: str, max_bytes: int, **host: Any) -> SandboxResult:
    """The last result line carrying `nonce`, validated; `host` adds backend, image_id,
    exit_code, runtime_s and tails (host values win over the runner's for those keys)."""
    prefix = f"{RESULT_PREFIX} {nonce} "
    body = None
    for line in reversed(stdout.splitlines()):
        if line.startswith(prefix):
            body = line[len(prefix):]
            break
    if body is None:
        return failure("invalid", "the runner wrote no result line (it crashed or was killed)", **host)
    if len(body.encode()) > max_bytes:
        return failure("invalid", f"result line is {len(body.encode())} bytes, over the {max_bytes}-byte limit", **host)
    try:
        record = json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        return failure("invalid", f"result line is not valid JSON: {exc}", **host)
    if not isinstance(record, dict):
        return failure("invalid", f"result is a {type(record).__name__}, not an object", **host)
    unknown = set(record) - RUNNER_KEYS
    if unknown:
        return failure("invalid", f"result has unknown keys {sorted(unknown)}", **host)
    if record.get("status") not in RUNNER_STATUSES:
        return failure("invalid", f"result status {record.get('status')!r} is not one of {sorted(RUNNER_STATUSES)}", **host)
    merged = {**record, **{k: v for k, v in host.items() if v is not None or k == "exit_code"}}
    try:
        return SandboxResult.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return failure("invalid", f"result failed validation: {problems}", **host)
