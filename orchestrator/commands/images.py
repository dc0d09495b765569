"""`evolve images build [IMAGE] [--force]` and `evolve images list`: the sandbox images."""

from __future__ import annotations

import typer

from orchestrator.errors import ImageError

app = typer.Typer(help="Build and list the sandbox images (content-hashed, built offline).",
                  no_args_is_help=True)


@app.command("build")
def build(
    image: str | None = typer.Argument(None, help="base | cpu | cuda (default: all)"),
    force: bool = typer.Option(False, "--force", help="rebuild even when the tag exists"),
) -> None:
    """Build what changed; print one line per image (built, skipped or unavailable)."""
    from orchestrator.sandbox.images import build_images  # noqa: PLC0415

    try:
        reports = build_images([image] if image else None, force=force)
    except ImageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for report in reports:
        typer.echo(report.line())


@app.command("list")
def list_() -> None:
    """Local evoforge images; `*` marks the current tag of each logical image."""
    from orchestrator.sandbox.images import list_images  # noqa: PLC0415

    try:
        rows = list_images()
    except ImageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not rows:
        typer.echo("no evoforge images: run `evolve images build`")
    for tag, short, size, current in rows:
        typer.echo(f"{'*' if current else ' '} {tag:<34} {short}  {size / 1e6:7.0f} MB")
