"""`evolve reproduce CANDIDATE`: re-run a candidate from its own image and compare.

The image (`evoforge/cand-<task>:<id>`) is built after evaluation when the run's policy asks
for it; otherwise it is built here from the stored record, the task folder and the runtime
image. The comparison uses the evaluation the image records (its stage and seed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.commands.views import _store, resolve_candidate
from orchestrator.config import Settings
from orchestrator.errors import EvoforgeError
from orchestrator.task import load_task

#: Default tolerance when a task does not state one (`extra: {reproduce_tolerance: ...}`).
DEFAULT_TOLERANCE = 1e-9


def _image_present(tag: str) -> bool:
    import docker  # noqa: PLC0415

    try:
        docker.from_env(timeout=30).images.get(tag)
        return True
    except Exception:
        return False


def ensure_candidate_image(store: Any, cand: Any) -> str:
    from orchestrator.sandbox.candidate_image import build_candidate_image  # noqa: PLC0415
    from orchestrator.sandbox.images import resolve_image  # noqa: PLC0415

    if cand.image and _image_present(cand.image):
        return cand.image
    run = store.get_run(cand.run_id)
    if run is None:
        raise EvoforgeError(f"candidate {cand.id} belongs to run {cand.run_id}, which is not in the store")
    task = load_task(run.task_dir, scale=run.config.get("scale"))
    evals = [e for e in store.evaluations_of(cand.id) if e.status == "ok"]
    if not evals:
        raise EvoforgeError(f"candidate {cand.id} has no successful evaluation to reproduce")
    last = evals[-1]
    return build_candidate_image(
        task_dir=task.folder, task_name=task.name, candidate_id=cand.id,
        files={**cand.files, task.program_name: cand.code}, program=task.program_name,
        stage=last.stage, seed=last.seed, scale=task.scale,
        metrics={**last.metrics, "score": last.score}, parent_id=cand.parent_id,
        base_image=resolve_image(task.spec.image),
    )


def compare(recorded: dict[str, Any], reproduced: dict[str, Any], tolerance: float) -> list[tuple[str, Any, Any, bool]]:
    rows = []
    for key in sorted(set(recorded) | set(reproduced)):
        a, b = recorded.get(key), reproduced.get(key)
        if isinstance(a, int | float) and isinstance(b, int | float):
            same = math.isclose(float(a), float(b), rel_tol=tolerance, abs_tol=tolerance)
        else:
            same = a == b
        rows.append((key, a, b, same))
    return rows


def reproduce_command(settings: Settings, cid: str, timeout_s: float, console: Console) -> int:
    from orchestrator.sandbox.candidate_image import reproduce_from_image  # noqa: PLC0415

    store = _store(settings)
    cand = resolve_candidate(store, cid)
    run = store.get_run(cand.run_id)
    tolerance = DEFAULT_TOLERANCE
    if run is not None and Path(run.task_dir).is_dir():
        tolerance = float(load_task(run.task_dir).spec.extra.get("reproduce_tolerance", DEFAULT_TOLERANCE))
    tag = ensure_candidate_image(store, cand)
    console.print(f"reproducing {cand.id} from image {tag}")
    recorded, reproduced = reproduce_from_image(tag, timeout_s=timeout_s)
    if reproduced.status != "ok":
        console.print(f"[red]reproduction failed[/]: status {reproduced.status}: {reproduced.error or reproduced.stderr_tail[-500:]}")
        return 1
    rec = dict(recorded.get("metrics") or {})
    rec.setdefault("score", recorded.get("score"))
    rep = {"score": reproduced.score, **reproduced.metrics}
    rows = compare(rec, rep, tolerance)
    table = Table(title=f"recorded vs reproduced (tolerance {tolerance:g})")
    for col in ("metric", "recorded", "reproduced", "match"):
        table.add_column(col)
    for key, a, b, same in rows:
        table.add_row(key, str(a), str(b), "[green]yes[/]" if same else "[red]NO[/]")
    console.print(table)
    score_row = next(r for r in rows if r[0] == "score")
    if not score_row[3]:
        console.print("[red]the reproduced score differs from the recorded one[/]")
        return 1
    console.print("[green]reproduced[/]")
    return 0
