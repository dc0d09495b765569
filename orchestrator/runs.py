"""Starting and resuming a run: build every part from the settings, then hand them to the loop.

This is the only place that knows how the pieces fit together; the loop itself receives
finished objects (a store, a sandbox, agents, a sampler) and never reads configuration.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from agents.analyzer import make_analyzer
from agents.researcher import make_researcher
from cognition.records import Run
from cognition.store import CognitionStore
from orchestrator.budget import Budget
from orchestrator.config import Settings
from orchestrator.errors import ConfigError, EvoforgeError
from orchestrator.log import get_logger, open_run_log
from orchestrator.loop import EvolutionLoop, LoopOptions
from orchestrator.runlock import RunLock
from orchestrator.sampling import make_sampler
from orchestrator.task import Task, load_task

log = get_logger("evoforge.runs")


def open_store(settings: Settings, *, readonly: bool = False) -> CognitionStore:
    return CognitionStore.open(Path(settings.store), readonly=readonly)


def new_run_id(task_name: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    import secrets  # noqa: PLC0415

    return f"{task_name}-{stamp}-{secrets.token_hex(2)}"


def build_llm_client(settings: Settings, store: CognitionStore, run_id: str) -> Any:
    """None for the offline researcher; a ReplayClient for `replay:RUN`; else an LLMClient."""
    mode = settings.llm.mode
    if mode == "offline":
        return None
    if mode.startswith("replay:"):
        from agents.llm import ReplayClient  # noqa: PLC0415

        source = mode.split(":", 1)[1]
        calls = store.llm_calls_of(source)
        if not calls:
            raise ConfigError(
                f"--llm {mode}: run {source!r} has no recorded LLM calls in {store.path}; "
                "`evolve runs` lists the runs"
            )
        # Prompts name candidate ids, which differ between runs: answers are matched by role and order.
        return ReplayClient(calls, check_prompts=False)
    from agents.llm import LLMBudget, LLMClient, ModelSpec  # noqa: PLC0415

    models = [
        ModelSpec(
            name=m.name, weight=m.weight, temperature=m.temperature, max_tokens=m.max_tokens,
            price_in_per_mtok=m.price_in_per_mtok or 0.0, price_out_per_mtok=m.price_out_per_mtok or 0.0,
        )
        for m in settings.llm.models
    ] or [ModelSpec(name=mode)]
    api_key = settings.llm.api_key.get_secret_value() if settings.llm.api_key else None
    if api_key is None and settings.llm.base_url is None:
        raise ConfigError(
            f"--llm {mode} needs an endpoint: set OPENAI_API_KEY (for OpenAI) or OPENAI_BASE_URL "
            "(vLLM, sglang, Ollama, llama.cpp), or run offline with --llm offline"
        )
    return LLMClient(
        base_url=settings.llm.base_url, api_key=api_key or "not-needed", models=models,
        timeout_s=settings.llm.timeout_s, max_retries=settings.llm.max_retries,
        budget=LLMBudget(max_tokens=settings.budget.tokens, max_usd=settings.budget.usd),
        seed=settings.seed,
    )


def _make_sandbox(settings: Settings, task: Task) -> Any:
    from orchestrator.sandbox import make_sandbox  # noqa: PLC0415

    if task.resources.gpu and settings.sandbox.backend == "docker":
        if not docker_host_has_gpu():
            raise ConfigError(
                f"task {task.name} asks for {task.resources.gpu} GPU(s) but this Docker host has none: "
                "run it with --sandbox modal, or on a CUDA machine with --sandbox process"
            )
    if task.resources.gpu and settings.sandbox.backend == "process" and not process_host_has_gpu():
        raise ConfigError(
            f"task {task.name} asks for {task.resources.gpu} GPU(s) but this machine has none "
            "(no nvidia-smi): run it with --sandbox modal, or pick a CPU scale of the task"
        )
    return make_sandbox(settings.sandbox.backend, settings=settings)


def _check_image(sandbox: Any, task: Task) -> None:
    """The task's sandbox image must exist before anything is spent (docker resolves tags)."""
    image_tag = getattr(sandbox, "image_tag", None)
    if image_tag is None:
        return
    from orchestrator.errors import ImageError  # noqa: PLC0415

    try:
        image_tag(task.spec.image)
    except ImageError as exc:
        raise ConfigError(f"task {task.name} ({task.folder / 'task.yaml'}): {exc}") from exc


def process_host_has_gpu() -> bool:
    """True when this machine shows an NVIDIA GPU (what the process sandbox would use)."""
    import shutil  # noqa: PLC0415

    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()


def docker_host_has_gpu() -> bool:
    """True when the Docker engine offers the nvidia runtime (GPUs via device requests)."""
    try:
        import docker  # noqa: PLC0415

        info = docker.from_env(timeout=10).info()
    except Exception:
        return False
    return "nvidia" in (info.get("Runtimes") or {})


def _image_builder(settings: Settings, task: Task) -> Any:
    if settings.sandbox.backend != "docker" or settings.sandbox.candidate_images == "none":
        return None
    from orchestrator.sandbox.candidate_image import build_candidate_image  # noqa: PLC0415
    from orchestrator.sandbox.images import resolve_image  # noqa: PLC0415

    def build(cand: Any, result: Any) -> str | None:
        last = result.evaluations[-1]
        return build_candidate_image(
            task_dir=task.folder, task_name=task.name, candidate_id=cand.id,
            files={**cand.files, task.program_name: cand.code}, program=task.program_name,
            stage=last.stage, seed=last.seed, scale=task.scale, metrics=last.metrics | {"score": last.score},
            parent_id=cand.parent_id, base_image=resolve_image(task.spec.image),
        )

    return build


def _novelty(settings: Settings) -> Any:
    from agents.novelty import NoveltyFilter  # noqa: PLC0415
    from cognition.embeddings import get_embedder  # noqa: PLC0415

    return NoveltyFilter(get_embedder(), threshold=settings.search.novelty_threshold)


def prepare_run(settings: Settings, task_or_dir: str | None, *, resume: str | None,
                store: CognitionStore) -> tuple[Run, Task]:
    if resume:
        run = store.get_run(resume)
        if run is None:
            raise EvoforgeError(f"no run {resume!r} in {store.path}: `evolve runs` lists the runs")
        task = load_task(run.task_dir, scale=run.config.get("scale"))
        return run, task
    if task_or_dir is None:
        raise EvoforgeError("give a task (a shipped name or a folder) or --resume RUN")
    task = load_task(task_or_dir, scale=settings.scale)
    task.seed_code()  # a missing or empty seed fails here, before anything is spent
    run = Run(
        id=new_run_id(task.name), task=task.name, task_dir=str(task.folder), seed=settings.seed,
        config={
            "scale": settings.scale,
            "iterations": settings.budget.iterations or task.spec.iterations,
            "sampler": settings.search.sampler,
            "num_islands": settings.search.num_islands,
            "lag": LoopOptions(eval_concurrency=settings.sandbox.concurrency,
                               proposal_concurrency=settings.llm.proposal_concurrency).lag,
            "llm": settings.llm.mode,
            "sandbox": settings.sandbox.backend,
        },
    )
    return run, task


def execute_run(settings: Settings, task_or_dir: str | None, *, resume: str | None = None,
                on_progress: Any = None) -> Run:
    """Run (or resume) an evolution to its budget. Ctrl-C once: stop proposing and let the
    in-flight evaluations commit; twice: cancel them (they are re-queued on resume)."""
    store = open_store(settings)
    run, task = prepare_run(settings, task_or_dir, resume=resume, store=store)
    with RunLock(Path(settings.run_dir), run.id):
        # Everything that can refuse the run (sandbox, image, GPU, LLM endpoint settings) is
        # checked before the run is recorded: a refused run leaves nothing behind.
        sandbox = _make_sandbox(settings, task)
        try:
            _check_image(sandbox, task)
            client = build_llm_client(settings, store, run.id)
        except BaseException:
            asyncio.run(sandbox.close())
            raise
        if resume is None:
            with store.write() as w:
                w.put_run(run)
        else:
            run = run.model_copy(update={"status": "running", "stop_reason": ""})
        open_run_log(Path(settings.run_dir) / run.id / "log.jsonl")
        _import_priors(store, task)
        iterations = settings.budget.iterations or int(run.config.get("iterations") or task.spec.iterations)
        budget = Budget(
            iterations=iterations, wall_s=settings.budget.wall_s, tokens=settings.budget.tokens,
            usd=settings.budget.usd, gpu_s=settings.budget.gpu_s,
        )
        researcher = make_researcher(settings.llm.mode if client else "offline", client=client, seed=run.seed)
        analyzer = make_analyzer(settings.llm.mode if client else "offline", client=client)
        sampler = make_sampler(
            str(run.config.get("sampler", settings.search.sampler)),
            direction=task.spec.metric.direction,
            num_islands=int(run.config.get("num_islands", settings.search.num_islands)),
            features=task.spec.features or None,
            num_inspirations=settings.search.num_inspirations,
        )
        options = LoopOptions(
            eval_concurrency=settings.sandbox.concurrency,
            proposal_concurrency=settings.llm.proposal_concurrency,
            num_inspirations=settings.search.num_inspirations,
            insights_k=settings.search.insights_k,
            repair_attempts=settings.llm.repair_attempts,
            candidate_images=settings.sandbox.candidate_images,
        )
        loop = EvolutionLoop(
            store=store, task=task, run=run, sandbox=sandbox, researcher=researcher,
            analyzer=analyzer, sampler=sampler, budget=budget, options=options,
            novelty=_novelty(settings), image_builder=_image_builder(settings, task),
            on_progress=on_progress,
        )
        log.info("run", run=run.id, task=task.name, resume=bool(resume), iterations=iterations,
                 sandbox=settings.sandbox.backend, researcher="offline (no LLM)" if client is None else settings.llm.mode)
        try:
            return asyncio.run(_drive(loop, sandbox, client))
        finally:
            from orchestrator.log import close_run_log  # noqa: PLC0415

            close_run_log()


async def _drive(loop: EvolutionLoop, sandbox: Any, client: Any) -> Run:
    aloop = asyncio.get_running_loop()
    main = asyncio.current_task()
    presses = {"n": 0}

    def on_sigint() -> None:
        presses["n"] += 1
        if presses["n"] == 1:
            loop.request_stop("interrupted (Ctrl-C): finishing in-flight evaluations; Ctrl-C again to cancel them")
        elif main is not None:
            main.cancel()

    try:
        aloop.add_signal_handler(signal.SIGINT, on_sigint)
        aloop.add_signal_handler(signal.SIGTERM, on_sigint)
    except (NotImplementedError, RuntimeError):
        pass
    try:
        return await loop.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                aloop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        await sandbox.close()
        if client is not None and hasattr(client, "close"):
            await client.close()


def _import_priors(store: CognitionStore, task: Task) -> None:
    path = task.priors_path()
    if path is None:
        return
    from cognition.priors import import_priors  # noqa: PLC0415

    added = import_priors(store, task.name, path)
    if added:
        log.info("priors imported", task=task.name, added=added)
