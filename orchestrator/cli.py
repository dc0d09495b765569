"""The `evolve` command line. Each command is a thin shell over a module that does the work."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.config import EffectiveConfig, load_config
from orchestrator.errors import EvoforgeError
from orchestrator.log import configure

app = typer.Typer(
    name="evolve",
    help="evoforge: evolve programs by experiment, in isolated sandboxes, with a memory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
console = Console()
err_console = Console(stderr=True)


def _settings(cli: dict[str, Any] | None = None, config_file: Path | None = None,
              task: str | None = None) -> EffectiveConfig:
    defaults: dict[str, Any] = {}
    source = "task config"
    if task is not None:
        from orchestrator.peer_formats import peer_settings  # noqa: PLC0415
        from orchestrator.task import load_task  # noqa: PLC0415

        spec = load_task(task).spec
        defaults = peer_settings(spec)
        source = f"{spec.format} config of {task}"
    eff = load_config(cli, config_file=config_file, task_defaults=defaults, task_source=source)
    configure(eff.settings.log_level)
    return eff


def _register_subapps() -> None:
    """Sub-apps live beside their subject; a missing one must not break the others."""
    import importlib  # noqa: PLC0415

    for module, name in (
        ("orchestrator.commands.insights", "insights"),
        ("orchestrator.commands.store", "store"),
        ("orchestrator.commands.images", "images"),
        ("orchestrator.commands.sandbox", "sandbox"),
    ):
        try:
            sub = importlib.import_module(module)
        except ImportError as exc:  # pragma: no cover - only while a part is being built
            print(f"evolve: {name} commands unavailable: {exc}", file=sys.stderr)
            continue
        app.add_typer(sub.app, name=name)


@app.command()
def run(
    task: str = typer.Argument(None, help="a shipped task name or a task folder"),
    iterations: int = typer.Option(None, "--iterations", "-n", help="iterations budget"),
    sandbox: str = typer.Option(None, "--sandbox", help="docker | process | modal"),
    llm: str = typer.Option(None, "--llm", help="offline | MODEL | replay:RUN"),
    concurrency: int = typer.Option(None, "--concurrency", help="evaluation slots"),
    proposal_concurrency: int = typer.Option(None, "--proposal-concurrency"),
    budget_usd: float = typer.Option(None, "--budget-usd"),
    budget_tokens: int = typer.Option(None, "--budget-tokens"),
    wall_time: float = typer.Option(None, "--wall-time", help="seconds"),
    seed: int = typer.Option(None, "--seed"),
    sampler: str = typer.Option(None, "--sampler", help="ucb1 | greedy | random | islands | map_elites"),
    scale: str = typer.Option(None, "--scale", help="a scale of the task, e.g. gpu"),
    resume: str = typer.Option(None, "--resume", help="continue run RUN"),
    store: Path = typer.Option(None, "--store"),
    config: Path = typer.Option(None, "--config", help="a YAML settings file (default ./evoforge.yaml)"),
) -> None:
    """Run an evolution of TASK (or continue one with --resume RUN)."""
    from orchestrator.progress import Progress  # noqa: PLC0415
    from orchestrator.runs import execute_run  # noqa: PLC0415

    eff = _settings({
        "budget.iterations": iterations, "sandbox.backend": sandbox, "llm.mode": llm,
        "sandbox.concurrency": concurrency, "llm.proposal_concurrency": proposal_concurrency,
        "budget.usd": budget_usd, "budget.tokens": budget_tokens, "budget.wall_s": wall_time,
        "seed": seed, "search.sampler": sampler, "scale": scale, "store": store,
    }, config, task=task if resume is None else None)
    if task is None and resume is None:
        raise EvoforgeError("give a task (e.g. `evolve run data_curation`) or --resume RUN")
    if eff.settings.llm.mode == "offline":
        err_console.print("[bold yellow]evoforge runs WITHOUT an LLM[/]: the offline Researcher mutates "
                          "numeric literals and declared alternatives inside EVOLVE blocks "
                          "(use --llm MODEL with OPENAI_API_KEY / OPENAI_BASE_URL for a model).")
    progress = Progress(console=err_console)
    with progress:
        final = execute_run(eff.settings, task, resume=resume, on_progress=progress.update)
    _print_run_summary(final)


def _print_run_summary(run: Any) -> None:
    gain = ""
    if run.best_score is not None and run.seed_score is not None:
        gain = f" (seed {run.seed_score:.6g}, gain {run.best_score - run.seed_score:+.6g})"
    best = f"{run.best_score:.6g}" if run.best_score is not None else "none"
    console.print(f"run [bold]{run.id}[/] {run.status}: {run.iterations_done} iterations, best {best}{gain}"
                  f" -> {run.best_candidate_id}")
    if run.stop_reason:
        console.print(f"  stopped: {run.stop_reason}")
    console.print(f"  next: `evolve status {run.id}`, `evolve show {run.best_candidate_id}`, "
                  f"`evolve report {run.id}`")


@app.command("eval")
def eval_(
    task: str = typer.Argument(..., help="a shipped task name or a task folder"),
    program: Path = typer.Argument(..., help="the program to evaluate"),
    stage: str = typer.Option(None, "--stage"),
    seed: int = typer.Option(0, "--seed"),
    sandbox: str = typer.Option(None, "--sandbox", help="docker | process | modal"),
    scale: str = typer.Option(None, "--scale"),
) -> None:
    """Evaluate PROGRAM on TASK once in a sandbox; print the validated result JSON."""
    from orchestrator.commands.evaluate import eval_command  # noqa: PLC0415

    eff = _settings({"sandbox.backend": sandbox})
    eval_command(task, program, stage=stage, seed=seed, sandbox=eff.settings.sandbox.backend, scale=scale)


@app.command()
def runs(task: str = typer.Option(None, "--task"), store: Path = typer.Option(None, "--store")) -> None:
    """List the runs in the store."""
    from orchestrator.commands.views import runs_table  # noqa: PLC0415

    runs_table(_settings({"store": store}).settings, task, console)


@app.command()
def status(run_id: str = typer.Argument(None, help="default: the newest run"),
           store: Path = typer.Option(None, "--store")) -> None:
    """A run's progress: iterations, best, failures by status, spend."""
    from orchestrator.commands.views import status_view  # noqa: PLC0415

    status_view(_settings({"store": store}).settings, run_id, console)


@app.command()
def best(run_id: str = typer.Argument(None, help="default: the newest run"),
         k: int = typer.Option(5, "-k"), store: Path = typer.Option(None, "--store")) -> None:
    """The best candidates of a run."""
    from orchestrator.commands.views import best_view  # noqa: PLC0415

    best_view(_settings({"store": store}).settings, run_id, k, console)


@app.command()
def show(candidate: str = typer.Argument(...), store: Path = typer.Option(None, "--store")) -> None:
    """A candidate: code, diff against its parent, metrics per stage and seed, lineage, reproduce command."""
    from orchestrator.commands.views import show_view  # noqa: PLC0415

    show_view(_settings({"store": store}).settings, candidate, console)


@app.command()
def reproduce(candidate: str = typer.Argument(...), store: Path = typer.Option(None, "--store"),
              timeout: float = typer.Option(600, "--timeout")) -> None:
    """Re-run a candidate from its own image; compare recorded and reproduced metrics."""
    from orchestrator.commands.reproduce import reproduce_command  # noqa: PLC0415

    code = reproduce_command(_settings({"store": store}).settings, candidate, timeout, console)
    raise typer.Exit(code)


@app.command()
def report(run_id: str = typer.Argument(None), out: Path = typer.Option(None, "--out"),
           store: Path = typer.Option(None, "--store")) -> None:
    """Write a self-contained HTML report of a run."""
    from orchestrator.report import write_report  # noqa: PLC0415

    path = write_report(_settings({"store": store}).settings, run_id, out)
    console.print(f"report written: {path}")


@app.command()
def doctor(sandbox: str = typer.Option(None, "--sandbox")) -> None:
    """Check the Docker daemon, images, store, LLM and Modal; print each problem with its fix."""
    from orchestrator.doctor import run_checks  # noqa: PLC0415

    eff = _settings({"sandbox.backend": sandbox})
    checks = run_checks(eff.settings)
    table = Table(title="evoforge doctor")
    for col in ("check", "status", "found", "fix"):
        table.add_column(col, overflow="fold")
    colors = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in checks:
        table.add_row(c.name, f"[{colors[c.status]}]{c.status}[/]", c.found, c.fix)
    console.print(table)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


@config_app.command("show")
def config_show(as_json: bool = typer.Option(False, "--json"),
                config: Path = typer.Option(None, "--config"),
                task: str = typer.Option(None, "--task", help="include what this task folder asks for")) -> None:
    """The effective configuration and where each value came from."""
    eff = _settings(config_file=config, task=task)
    if as_json:
        print(json.dumps([{"key": k, "value": v, "source": s} for k, v, s in eff.rows()], indent=2))
        return
    table = Table(title="effective configuration")
    for col in ("key", "value", "source"):
        table.add_column(col)
    for key, value, source in eff.rows():
        table.add_row(key, json.dumps(value), source)
    console.print(table)


_register_subapps()


def main() -> None:
    try:
        app()
    except EvoforgeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
    except Exception as exc:
        # Errors of the other packages (store, agents) carry their own fix in the message.
        if exc.__class__.__module__.split(".")[0] in ("cognition", "agents", "orchestrator"):
            err_console.print(f"[bold red]error:[/] {exc}")
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
