"""`modal run modal_app.py ...` end to end on this machine: the local entrypoint drives a whole
evolution (orchestrator and Cognition Store local) and every evaluation goes through the Modal
function's body via `Function.local()`. Only the trip to Modal's cloud is replaced, by an object
with the two methods the backend calls on a hydrated Function: `with_options` and `remote.aio`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cognition.store import CognitionStore
from orchestrator.sandbox.modal import _load_modal_app

LOOP_TASK = Path(__file__).parent / "fixtures" / "loop_task"


class _Remote:
    def __init__(self, fn: Any, calls: list[dict[str, Any]]):
        self._fn = fn
        self._calls = calls

    async def aio(self, bundle: dict[str, Any]) -> dict[str, Any]:
        self._calls.append(bundle)
        return await asyncio.to_thread(self._fn.local, bundle)


class LocalModalFunction:
    """Stands in for the hydrated `evaluate` Function that `modal run` attaches."""

    def __init__(self, fn: Any):
        self.options: list[dict[str, Any]] = []
        self.bundles: list[dict[str, Any]] = []
        self.remote = _Remote(fn, self.bundles)

    def with_options(self, **options: Any) -> LocalModalFunction:
        self.options.append(options)
        return self


def test_entrypoint_runs_an_evolution_with_modal_evaluations(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # run folder and evoforge.yaml lookup stay in tmp
    monkeypatch.setenv("EVOFORGE_EMBEDDER", "lexical")
    for key in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"):
        monkeypatch.delenv(key, raising=False)
    app = _load_modal_app()
    remote = LocalModalFunction(app.evaluate)
    monkeypatch.setattr(app, "evaluate", remote)

    app.main(task=str(LOOP_TASK), iterations=2, concurrency=2, store=str(tmp_path / "store.lmdb"), seed=1)

    out = capsys.readouterr().out
    assert "GPU H100" in out and "2 iterations" in out
    assert remote.bundles, "no evaluation went to the Modal function"
    assert {o["gpu"] for o in remote.options} == {"H100"}
    assert all(o["timeout"] > 30 for o in remote.options)
    store = CognitionStore.open(tmp_path / "store.lmdb", readonly=True)
    (run,) = store.list_runs()
    assert run.status == "finished" and run.iterations_done == 2
    assert run.config["sandbox"] == "modal"
    evaluations = [e for c in store.candidates_of_run(run.id) for e in store.evaluations_of(c.id)]
    assert evaluations and all(e.backend in ("modal", "precheck") for e in evaluations)
    assert any(e.status == "ok" and e.image_id == "local" for e in evaluations)


def test_entrypoint_refuses_a_bad_gpu_before_anything_runs(tmp_path, monkeypatch):
    from orchestrator.errors import ConfigError  # noqa: PLC0415

    monkeypatch.chdir(tmp_path)
    app = _load_modal_app()
    with pytest.raises(ConfigError, match="--gpu"):
        app.main(task=str(LOOP_TASK), iterations=1, gpu="TPU")
    assert not (tmp_path / ".evoforge").exists()
