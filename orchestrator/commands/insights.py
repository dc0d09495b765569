"""`evolve insights ...`: list, search, add, export and import Cognition Store insights."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError

from cognition.errors import CognitionError
from cognition.records import Insight, new_id
from orchestrator.commands.store import open_store, store_path_option

app = typer.Typer(
    help="Read and curate insights (priors, analyzer lessons, your notes).", no_args_is_help=True
)


def _line(i: Insight, score: float | None = None) -> str:
    head = f"{score:.3f}  " if score is not None else ""
    origin = f" run={i.run_id}" if i.run_id else ""
    return f"{head}{i.id}  [{i.task}/{i.source} c={i.confidence:.2f}{origin}]  {i.text}"


@app.command("list")
def list_insights(
    task: str | None = typer.Option(None, "--task", help="Only this task."),
    source: str | None = typer.Option(None, "--source", help="prior, analyzer or person."),
    store: Path | None = store_path_option(),
) -> None:
    s = open_store(store, readonly=True)
    try:
        for i in s.insights(task=task, source=source):
            typer.echo(_line(i))
    finally:
        s.close()


@app.command("search")
def search(
    query: str = typer.Argument(...),
    task: str | None = typer.Option(None, "--task"),
    k: int = typer.Option(5, "-k", "--k", min=1),
    store: Path | None = store_path_option(),
) -> None:
    """Nearest insights by meaning (all-MiniLM-L6-v2, or lexical when it is unavailable)."""
    s = open_store(store, readonly=True)
    try:
        for i, score in s.search_insights(query, k, task=task):
            typer.echo(_line(i, score))
    finally:
        s.close()


@app.command("add")
def add(
    text: str = typer.Argument(...),
    task: str = typer.Option(..., "--task"),
    confidence: float = typer.Option(0.8, "--confidence", min=0.0, max=1.0),
    store: Path | None = store_path_option(),
) -> None:
    """Add a person's insight; a near-duplicate of an existing one is merged into it."""
    s = open_store(store, readonly=False)
    try:
        insight = Insight(
            id=new_id("ins"), text=text, task=task, source="person", confidence=confidence
        )
        with s.write() as w:
            stored = w.put_insight(insight)
    finally:
        s.close()
    typer.echo(stored.id if stored else "near-duplicate of an existing insight: merged into it")


@app.command("export")
def export(
    path: Path = typer.Argument(..., help="JSONL file to write."),
    task: str | None = typer.Option(None, "--task"),
    store: Path | None = store_path_option(),
) -> None:
    s = open_store(store, readonly=True)
    try:
        found = s.insights(task=task)
    finally:
        s.close()
    with path.open("w", encoding="utf-8") as fh:
        for i in found:
            fh.write(json.dumps(i.model_dump(mode="json"), sort_keys=True) + "\n")
    typer.echo(f"exported {len(found)} insights to {path}")


def _read_jsonl(path: Path) -> list[Insight]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(Insight.model_validate_json(line))
        except ValidationError as exc:
            raise CognitionError(f"{path}:{n} is not a valid insight: {exc}") from exc
    return out


@app.command("import")
def import_(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL from `export`."),
    store: Path | None = store_path_option(),
) -> None:
    """Import insights; every line is validated first, then all commit in one transaction.
    Ids already present are skipped and near-duplicates merged, so importing twice is a no-op."""
    try:
        items = _read_jsonl(path)
    except CognitionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    s = open_store(store, readonly=False)
    added = merged = skipped = 0
    try:
        with s.write() as w:
            for i in items:
                if s.get_insight(i.id) is not None:
                    skipped += 1
                elif w.put_insight(i) is None:
                    merged += 1
                else:
                    added += 1
    finally:
        s.close()
    typer.echo(f"imported {added}, merged {merged} near-duplicates, skipped {skipped} present")
