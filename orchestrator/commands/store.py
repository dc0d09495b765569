"""`evolve store ...`: statistics, backups and migration of the Cognition Store.

`store_path_option()` is the shared `--store PATH` option (default: $EVOFORGE_STORE, else
`.evoforge/cognition.lmdb`); other commands reuse it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from cognition.errors import CognitionError
from cognition.store import STORE_ENV, CognitionStore, default_store_path

app = typer.Typer(help="Inspect, back up and migrate the Cognition Store.", no_args_is_help=True)


def store_path_option() -> Any:
    return typer.Option(
        None,
        "--store",
        envvar=STORE_ENV,
        help="Cognition Store folder (default: $EVOFORGE_STORE or .evoforge/cognition.lmdb).",
        show_default=False,
    )


def resolve_store_path(value: Path | None) -> Path:
    return Path(value) if value is not None else default_store_path()


def open_store(value: Path | None, *, readonly: bool) -> CognitionStore:
    """Open the store named by a `--store` value; a store error exits 1 with its message."""
    try:
        return CognitionStore.open(resolve_store_path(value), readonly=readonly)
    except CognitionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("stats")
def stats(store: Path | None = store_path_option()) -> None:
    """Entries per database, bytes on disk, map size (JSON)."""
    s = open_store(store, readonly=True)
    try:
        typer.echo(json.dumps(s.stats(), indent=2))
    finally:
        s.close()


@app.command("backup")
def backup(
    dest: Path = typer.Argument(..., help="New folder for the compacted copy."),
    store: Path | None = store_path_option(),
) -> None:
    """A compacted, consistent copy of the store (safe while a run writes)."""
    s = open_store(store, readonly=True)
    try:
        s.backup(dest)
    except CognitionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        s.close()
    typer.echo(f"backed up {s.path} -> {dest}")


@app.command("migrate")
def migrate(store: Path | None = store_path_option()) -> None:
    """Open the store read-write once, which migrates an older layout to this version."""
    s = open_store(store, readonly=False)
    try:
        typer.echo(f"{s.path}: schema v{s.stats()['schema_version']}")
    finally:
        s.close()
