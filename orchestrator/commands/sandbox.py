"""`evolve sandbox gc [--run RUN]`: remove leftover sandbox containers."""

from __future__ import annotations

import typer

from orchestrator.errors import SandboxError

app = typer.Typer(help="Sandbox housekeeping.", no_args_is_help=True)


@app.command("gc")
def gc(run: str | None = typer.Option(None, "--run", help="only this run's containers (any state)")) -> None:
    """Remove stopped evoforge containers (or every container of RUN, running or not)."""
    from orchestrator.sandbox.docker import DockerSandbox  # noqa: PLC0415

    try:
        removed = DockerSandbox(gc_on_start=False).gc(run)
    except SandboxError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    scope = f"of run {run}" if run else "stopped"
    typer.echo(f"removed {removed} {scope} sandbox container(s)")
