"""`evolve insights ...` and `evolve store ...` against a real store in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cognition import embeddings
from cognition.store import CognitionStore
from orchestrator.commands.insights import app as insights_app
from orchestrator.commands.store import app as store_app

runner = CliRunner()


@pytest.fixture(autouse=True)
def lexical(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVOFORGE_EMBEDDER", "lexical")
    monkeypatch.setenv("EVOFORGE_STORE", str(tmp_path / "env-store.lmdb"))
    embeddings.reset_embedder()


def ok(app, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_add_list_search_export_import(tmp_path: Path) -> None:
    store = str(tmp_path / "s.lmdb")
    first = ok(
        insights_app,
        "add",
        "Vectorise the pairwise distance loop",
        "--task",
        "circles",
        "--store",
        store,
    ).strip()
    assert first.startswith("ins-")
    ok(
        insights_app,
        "add",
        "Anneal the radii with a cooling schedule",
        "--task",
        "circles",
        "--confidence",
        "0.6",
        "--store",
        store,
    )
    ok(insights_app, "add", "Prune mislabeled examples", "--task", "noisy", "--store", store)
    dup = ok(
        insights_app,
        "add",
        "vectorise the pairwise distance loop",
        "--task",
        "circles",
        "--store",
        store,
    )
    assert "near-duplicate" in dup
    listed = ok(insights_app, "list", "--task", "circles", "--store", store)
    assert len(listed.strip().splitlines()) == 2 and "c=0.60" in listed
    assert ok(insights_app, "list", "--source", "prior", "--store", store).strip() == ""
    found = ok(insights_app, "search", "distance loop", "-k", "1", "--store", store)
    assert first in found and len(found.strip().splitlines()) == 1

    out = tmp_path / "ins.jsonl"
    ok(insights_app, "export", str(out), "--task", "circles", "--store", store)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["task"] for r in rows} == {"circles"} and len(rows) == 2

    other = str(tmp_path / "other.lmdb")
    assert "imported 2" in ok(insights_app, "import", str(out), "--store", other)
    assert "imported 0" in ok(insights_app, "import", str(out), "--store", other)
    s = CognitionStore.open(other, readonly=True)
    try:
        assert sorted(i.id for i in s.insights()) == sorted(r["id"] for r in rows)
    finally:
        s.close()


def test_import_rejects_an_invalid_line_and_imports_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {"id": "i-1", "text": "t", "task": "x", "source": "person"}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "i-2", "confidence": 3}))
    store = str(tmp_path / "s.lmdb")
    result = runner.invoke(insights_app, ["import", str(bad), "--store", store])
    assert result.exit_code == 1
    assert "bad.jsonl:2" in result.output
    assert not (tmp_path / "s.lmdb").exists()


def test_store_path_comes_from_env(tmp_path: Path) -> None:
    ok(insights_app, "add", "from the env", "--task", "t")
    assert (tmp_path / "env-store.lmdb" / "data.mdb").exists()


def test_store_stats_backup_and_missing_store(tmp_path: Path) -> None:
    store = str(tmp_path / "s.lmdb")
    ok(insights_app, "add", "one", "--task", "t", "--store", store)
    stats = json.loads(ok(store_app, "stats", "--store", store))
    assert stats["entries"]["insights"] == 1 and stats["schema_version"] == 1
    ok(store_app, "backup", str(tmp_path / "bk"), "--store", store)
    assert (
        json.loads(ok(store_app, "stats", "--store", str(tmp_path / "bk")))["entries"]["insights"]
        == 1
    )
    again = runner.invoke(store_app, ["backup", str(tmp_path / "bk"), "--store", store])
    assert again.exit_code == 1 and "already holds" in again.output
    missing = runner.invoke(store_app, ["stats", "--store", str(tmp_path / "none.lmdb")])
    assert missing.exit_code == 1 and "evolve run" in missing.output
