"""Adapters that run OpenEvolve and ShinkaEvolve evaluators unchanged, inside the sandbox.

Selected by the runner flag `--format openevolve|shinka` (the host sets it from the task).

- OpenEvolve: `evaluator.py` defines `evaluate(program_path)` and optionally
  `evaluate_stage1/2/3(program_path)`; each returns a dict of metrics or an `EvaluationResult`
  (metrics + artifacts). Our stage `evaluate` calls `evaluate`; stage `stageN` calls
  `evaluate_stageN`. The score is `combined_score` when it is a number, otherwise the mean
  of the numeric metrics (bools and `error` left out), as OpenEvolve's `get_fitness_score`
  and cascade threshold check do. Artifacts become the Researcher's feedback text.
- ShinkaEvolve: `python evaluate.py --program_path P --results_dir R`, then `R/metrics.json`
  (`combined_score`, `public`, `private`, `text_feedback`, anything else) and `R/correct.json`
  (`{"correct": bool, "error": str|null}`; missing counts as not correct, as in Shinka).

Both evaluators import the candidate into their own process (that is their contract), so
the evaluator runs in a CHILD process of the runner (`child.run_child`): the runner's private
result channel and nonce stay out of the candidate's reach. The child's `sys.path` ends with
`compat/`, minimal stand-ins for `openevolve.evaluation_result` and `shinka.core`; a real
package installed in the image (a folder's requirements.txt) comes first and wins.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from evoforge_runner.child import oom_kill_count, run_child
from evoforge_runner.result import TEXT_LIMIT, _plain, failure, invalid

PEER_FORMATS = ("openevolve", "shinka")
COMPAT_DIR = Path(__file__).resolve().parent / "compat"
#: OpenEvolve's marker for a failed evaluation (newer versions put it in the metrics).
EVALUATION_FAILED_METRIC = "__evaluation_failed__"
#: Bytes of one artifact shown in the feedback.
ARTIFACT_CHARS = 1500

_OPENEVOLVE_DRIVER = r"""
import importlib.util, json, sys
compat, task_dir, function, program, out = sys.argv[1:6]
sys.path.insert(0, task_dir)
sys.path.append(compat)
spec = importlib.util.spec_from_file_location("evaluation_module", task_dir + "/evaluator.py")
module = importlib.util.module_from_spec(spec)
sys.modules["evaluation_module"] = module
spec.loader.exec_module(module)
fn = getattr(module, function, None)
if not callable(fn):
    raise SystemExit(f"evaluator.py defines no function {function}(program_path)")
returned = fn(program)
if isinstance(returned, dict):
    metrics, artifacts = returned, {}
elif hasattr(returned, "metrics"):
    metrics, artifacts = returned.metrics, getattr(returned, "artifacts", None) or {}
else:
    metrics, artifacts = None, {}

def text(value):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes of binary data>"
    return value if isinstance(value, str) else repr(value)

def plain(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):
        return plain(value.item())
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    return repr(value)

record = {"returned_type": type(returned).__name__,
          "metrics": plain(metrics) if isinstance(metrics, dict) else None,
          "artifacts": {str(k): text(v) for k, v in dict(artifacts).items()}}
with open(out, "w") as fh:
    json.dump(record, fh)
"""

_SHINKA_DRIVER = r"""
import runpy, sys
compat, task_dir, program, results = sys.argv[1:5]
sys.argv = [task_dir + "/evaluate.py", "--program_path", program, "--results_dir", results]
sys.path.insert(0, task_dir)
sys.path.append(compat)
runpy.run_path(task_dir + "/evaluate.py", run_name="__main__")
"""


def _clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text[-limit:] if len(text) > limit else text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def openevolve_score(metrics: dict[str, Any]) -> float | None:
    """`combined_score` when numeric, else the mean of numeric metrics except `error` (None
    when there is none): OpenEvolve's documented fallback."""
    combined = _number(metrics.get("combined_score"))
    if combined is not None:
        return combined
    numbers = (_number(v) for k, v in metrics.items() if k != "error")
    values = [v for v in numbers if v is not None]
    return sum(values) / len(values) if values else None


def artifacts_feedback(artifacts: dict[str, str]) -> str:
    """Artifacts as text the Researcher reads: one `key:` block each, long ones clipped."""
    blocks = []
    for key, value in artifacts.items():
        value = value if len(value) <= ARTIFACT_CHARS else value[:ARTIFACT_CHARS] + " [...]"
        blocks.append(f"{key}:\n{value}" if "\n" in value else f"{key}: {value}")
    return "\n".join(blocks)


def _child_failure(what: str, result: Any, ooms_before: int, timeout_s: float) -> dict[str, Any]:
    if result.timed_out:
        return failure("timeout", f"{what} did not finish within {timeout_s:g} s",
                       result.stderr_tail[-1500:])
    status = "oom" if oom_kill_count() > ooms_before else "error"
    detail = result.stderr_tail.strip() or result.stdout_tail.strip() or "(no output)"
    return failure(status, f"{what} exited with code {result.returncode}:\n{detail}",
                   f"{what} failed:\n{detail[-2000:]}")


def _timeout(timeout_s: float) -> float:
    return timeout_s if timeout_s > 0 else 24 * 3600.0


def run_openevolve(task_dir: Path, program: Path, stage: str, workdir: Path, timeout_s: float) -> dict[str, Any]:
    function = "evaluate" if stage == "evaluate" else f"evaluate_{stage}"
    if not (task_dir / "evaluator.py").is_file():
        return failure("error", f"{task_dir}/evaluator.py is missing: an OpenEvolve folder needs it")
    out = workdir / "openevolve_result.json"
    out.unlink(missing_ok=True)
    ooms_before = oom_kill_count()
    result = run_child([sys.executable, "-I", "-c", _OPENEVOLVE_DRIVER, str(COMPAT_DIR), str(task_dir),
                        function, str(program), str(out)], workdir=workdir, timeout_s=_timeout(timeout_s))
    if result.timed_out or result.returncode != 0:
        return _child_failure(f"evaluator.py {function}()", result, ooms_before, timeout_s)
    try:
        record = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        return invalid(f"evaluator.py {function}() left no readable result: {exc}")
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        return invalid(f"evaluator.py {function}() returned {record.get('returned_type')}: "
                       "it must return a dict of metrics or an EvaluationResult")
    feedback = artifacts_feedback(record.get("artifacts") or {})
    if metrics.get(EVALUATION_FAILED_METRIC):
        return {**failure("error", f"evaluator.py {function}() reported a failed evaluation", feedback),
                "metrics": _plain(metrics)}
    score = openevolve_score(metrics)
    if score is None:
        return invalid(f"evaluator.py {function}() returned no numeric metric (metrics: {sorted(metrics)}): "
                       "return combined_score")
    return {"status": "ok", "score": score, "metrics": _plain(metrics), "feedback": _clip(feedback), "error": ""}


def _read_json(path: Path) -> Any:
    # Shinka writes with json.dump, which emits NaN/Infinity; _plain turns them into None.
    return json.loads(path.read_text())


def shinka_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    """Flatten metrics.json: `public` entries at the top, `private` kept under `private`,
    other top-level values (execution_time_mean, ...) as they are; text_feedback left out."""
    metrics: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("public", "text_feedback", "combined_score"):
            continue
        metrics[key] = value
    public = raw.get("public")
    if isinstance(public, dict):
        metrics.update(public)
    metrics["combined_score"] = raw.get("combined_score")
    return _plain(metrics)


def run_shinka(task_dir: Path, program: Path, workdir: Path, timeout_s: float) -> dict[str, Any]:
    if not (task_dir / "evaluate.py").is_file():
        return failure("error", f"{task_dir}/evaluate.py is missing: a ShinkaEvolve folder needs it")
    results = workdir / "results"
    for name in ("metrics.json", "correct.json"):
        (results / name).unlink(missing_ok=True)
    ooms_before = oom_kill_count()
    result = run_child([sys.executable, "-I", "-c", _SHINKA_DRIVER, str(COMPAT_DIR), str(task_dir),
                        str(program), str(results)], workdir=workdir, timeout_s=_timeout(timeout_s))
    if result.timed_out or result.returncode != 0:
        return _child_failure("evaluate.py", result, ooms_before, timeout_s)
    try:
        raw = _read_json(results / "metrics.json")
    except (OSError, ValueError) as exc:
        return invalid(f"evaluate.py wrote no readable {results}/metrics.json: {exc}")
    if not isinstance(raw, dict):
        return invalid(f"metrics.json holds a {type(raw).__name__}, not an object")
    try:
        correct = _read_json(results / "correct.json")
    except (OSError, ValueError):
        correct = {"correct": False, "error": "evaluate.py wrote no readable correct.json"}
    if not isinstance(correct, dict):
        correct = {"correct": False, "error": f"correct.json holds a {type(correct).__name__}, not an object"}
    metrics = shinka_metrics(raw)
    feedback = str(raw.get("text_feedback") or "")
    if correct.get("correct") is not True:
        reason = str(correct.get("error") or "the program is not correct (correct.json)")
        text = f"{reason}\n{feedback}".strip()
        return {**failure("error", reason, text), "metrics": metrics}
    score = _number(raw.get("combined_score"))
    if score is None:
        return invalid(f"metrics.json has no finite numeric combined_score (got {raw.get('combined_score')!r})")
    return {"status": "ok", "score": score, "metrics": metrics, "feedback": _clip(feedback), "error": ""}


def evaluate_peer(fmt: str, task_dir: Path, program: Path, stage: str, workdir: Path,
                  timeout_s: float) -> dict[str, Any]:
    """One evaluation of a peer-format folder as a runner record; never raises."""
    try:
        if fmt == "openevolve":
            return run_openevolve(task_dir, program, stage, workdir, timeout_s)
        if fmt == "shinka":
            return run_shinka(task_dir, program, workdir, timeout_s)
        return failure("error", f"unknown task format {fmt!r}: expected one of {PEER_FORMATS}")
    except Exception as exc:  # noqa: BLE001 - the runner reports, never raises
        return failure("error", f"the {fmt} adapter failed: {exc!r}")
