"""Turn what an evaluator returned (or raised) into the one result record the runner reports.

Only the standard library: this runs inside the sandbox image. The host validates the record
again with pydantic (`orchestrator.sandbox.base.SandboxResult`); this module makes the common
mistakes of an evaluator readable (`invalid` with a reason) instead of a parse failure.
"""

from __future__ import annotations

import json
import math
from typing import Any

RESULT_PREFIX = "EVOFORGE-RESULT"
STATUSES = ("ok", "error", "timeout", "oom", "invalid")
TEXT_LIMIT = 4000


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-safe copy: numpy scalars/arrays via item()/tolist(), non-finite floats -> None."""
    if depth > 20:
        return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist(), depth + 1)
    if hasattr(value, "item"):
        return _plain(value.item(), depth + 1)
    return str(value)


def _clip(text: str) -> str:
    return text[-TEXT_LIMIT:] if len(text) > TEXT_LIMIT else text


def from_evaluation(returned: Any) -> dict[str, Any]:
    """Validate the evaluator's dict: finite numeric `score`, dict `metrics`, text `feedback`."""
    if not isinstance(returned, dict):
        return invalid(f"evaluate() must return a dict with score and metrics, got {type(returned).__name__}")
    score = returned.get("score")
    if hasattr(score, "item") and not isinstance(score, int | float):
        score = score.item()
    if isinstance(score, bool) or not isinstance(score, int | float):
        return invalid(f"evaluate() returned score={score!r}: it must be a number")
    if not math.isfinite(score):
        return invalid(f"evaluate() returned a non-finite score ({score!r})")
    metrics = returned.get("metrics", {})
    if not isinstance(metrics, dict):
        return invalid(f"evaluate() returned metrics of type {type(metrics).__name__}: it must be a dict")
    feedback = returned.get("feedback", "")
    return {
        "status": "ok",
        "score": float(score),
        "metrics": _plain(metrics),
        "feedback": _clip(str(feedback or "")),
        "error": "",
    }


def invalid(reason: str) -> dict[str, Any]:
    return {"status": "invalid", "score": None, "metrics": {}, "feedback": "", "error": _clip(reason)}


def failure(status: str, error: str, feedback: str = "") -> dict[str, Any]:
    return {"status": status, "score": None, "metrics": {}, "feedback": _clip(feedback), "error": _clip(error)}


def encode(record: dict[str, Any], max_bytes: int) -> str:
    """The record as one JSON line (no NaN). Too large -> an `invalid` record that fits."""
    try:
        text = json.dumps(record, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        return encode(invalid(f"result is not JSON-serialisable: {exc}"), max_bytes)
    if len(text.encode()) > max_bytes:
        small = invalid(f"result is {len(text.encode())} bytes, over the {max_bytes}-byte limit: "
                        "return fewer or smaller metrics")
        small["runtime_s"] = record.get("runtime_s", 0.0)
        return json.dumps(small, separators=(",", ":"))
    return text
