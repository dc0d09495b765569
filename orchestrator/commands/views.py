"""Read-only views of the store: `evolve runs`, `status`, `best`, `show`.

They open the store read-only, so they work from a second terminal while a run writes.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from orchestrator.config import Settings
from orchestrator.errors import EvoforgeError


def _store(settings: Settings) -> Any:
    from cognition.store import CognitionStore  # noqa: PLC0415

    path = Path(settings.store)
    if not path.exists():
        raise EvoforgeError(f"no cognition store at {path}: start a run first (`make evolve`)")
    return CognitionStore.open(path, readonly=True)


def resolve_run(store: Any, run_id: str | None) -> Any:
    runs = store.list_runs()
    if not runs:
        raise EvoforgeError(f"the store at {store.path} has no runs yet: start one with `evolve run TASK`")
    if run_id is None:
        return runs[0]
    matches = [r for r in runs if r.id == run_id] or [r for r in runs if r.id.startswith(run_id)]
    if len(matches) != 1:
        known = ", ".join(r.id for r in runs[:5])
        raise EvoforgeError(f"no single run matches {run_id!r} (newest: {known}); `evolve runs` lists them")
    return matches[0]


def resolve_candidate(store: Any, cid: str) -> Any:
    cand = store.get_candidate(cid)
    if cand is None:
        raise EvoforgeError(f"no candidate {cid!r} in {store.path}: `evolve best RUN` lists the best ones")
    return cand


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def runs_table(settings: Settings, task: str | None, console: Console) -> None:
    store = _store(settings)
    table = Table(title=f"runs in {store.path}")
    for col in ("run", "task", "status", "iterations", "best", "seed score", "started", "llm"):
        table.add_column(col)
    for r in store.list_runs(task):
        table.add_row(r.id, r.task, r.status, str(r.iterations_done), _fmt(r.best_score), _fmt(r.seed_score),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)), str(r.config.get("llm", "")))
    console.print(table)


def status_view(settings: Settings, run_id: str | None, console: Console) -> None:
    store = _store(settings)
    run = resolve_run(store, run_id)
    cands = store.candidates_of_run(run.id)
    states = Counter(c.state for c in cands)
    statuses = Counter(c.status for c in cands if c.status)
    table = Table(title=f"run {run.id} ({run.task})", show_header=False)
    table.add_column("k", style="bold")
    table.add_column("v")
    total = run.config.get("iterations")
    table.add_row("status", f"{run.status}{' — ' + run.stop_reason if run.stop_reason else ''}")
    table.add_row("iterations", f"{run.iterations_done}{f' of {total}' if total else ''}")
    table.add_row("in flight", str(states.get("proposed", 0) + states.get("evaluating", 0)))
    gain = ""
    if run.best_score is not None and run.seed_score is not None:
        gain = f" (seed {_fmt(run.seed_score)}, gain {run.best_score - run.seed_score:+.6g})"
    table.add_row("best", f"{_fmt(run.best_score)}{gain} {run.best_candidate_id or ''}")
    table.add_row("by status", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "-")
    table.add_row("rejected", str(states.get("rejected", 0)))
    table.add_row("spent", f"{run.tokens_used} tokens, ${run.cost_usd:.4f}, {run.gpu_seconds:.0f} GPU-s")
    table.add_row("wall time", f"{float(run.config.get('wall_s_used', 0.0)):.0f}s")
    table.add_row("settings", ", ".join(f"{k}={v}" for k, v in sorted(run.config.items()) if k != "wall_s_used"))
    console.print(table)


def best_view(settings: Settings, run_id: str | None, k: int, console: Console) -> None:
    store = _store(settings)
    run = resolve_run(store, run_id)
    direction = "maximize"
    try:
        from orchestrator.task import load_task  # noqa: PLC0415

        direction = load_task(run.task_dir).spec.metric.direction
    except Exception:
        pass
    top = store.top_candidates(run.id, k, direction=direction)
    table = Table(title=f"best of {run.id}")
    for col in ("candidate", "score", "iteration", "origin", "parent", "summary"):
        table.add_column(col, overflow="fold")
    for c in top:
        table.add_row(c.id, _fmt(c.score), str(c.iteration), c.origin, c.parent_id or "-", c.summary[:80])
    console.print(table)


def lineage(store: Any, cand: Any, limit: int = 50) -> list[Any]:
    chain = [cand]
    while chain[-1].parent_id and len(chain) < limit:
        parent = store.get_candidate(chain[-1].parent_id)
        if parent is None:
            break
        chain.append(parent)
    return chain


def show_view(settings: Settings, cid: str, console: Console) -> None:
    store = _store(settings)
    cand = resolve_candidate(store, cid)
    console.rule(f"candidate {cand.id}")
    console.print(f"run {cand.run_id}, task {cand.task}, iteration {cand.iteration}, origin {cand.origin}, "
                  f"island {cand.island}")
    console.print(f"state {cand.state}, status {cand.status}, score {_fmt(cand.score)}, stage reached "
                  f"{cand.stage_reached}")
    if cand.summary:
        console.print(f"analysis: {cand.summary}")
    console.rule("evaluations")
    table = Table()
    for col in ("stage", "seed", "status", "score", "runtime", "backend", "metrics / error"):
        table.add_column(col, overflow="fold")
    for e in store.evaluations_of(cand.id):
        detail = e.error or ", ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in list(e.metrics.items())[:8])
        table.add_row(e.stage, str(e.seed), e.status, _fmt(e.score), f"{e.runtime_s:.1f}s", e.backend, detail)
    console.print(table)
    console.rule("lineage")
    console.print(" <- ".join(f"{c.id} ({_fmt(c.score)})" for c in lineage(store, cand)))
    if cand.diff:
        console.rule("diff against parent")
        console.print(Syntax(cand.diff, "diff", word_wrap=True))
    console.rule("code")
    console.print(Syntax(cand.code, "python", line_numbers=True, word_wrap=True))
    console.rule("reproduce")
    if cand.image:
        console.print(f"evolve reproduce {cand.id}    # or: docker run --rm --network none {cand.image}")
    else:
        console.print(f"evolve reproduce {cand.id}    # builds its image first")
