"""The shipped circle_packing task: its spec loads, its evaluator scores the seed
deterministically and rejects broken or invalid candidates with a message naming the problem."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from orchestrator import REPO_ROOT
from orchestrator.task import load_task

TASK_DIR = REPO_ROOT / "tasks" / "circle_packing"
RUNNER_DIR = REPO_ROOT / "sandbox_images" / "runner"


@pytest.fixture(scope="module")
def evaluator() -> ModuleType:
    if str(RUNNER_DIR) not in sys.path:
        sys.path.insert(0, str(RUNNER_DIR))
    spec = importlib.util.spec_from_file_location("circle_packing_evaluate", TASK_DIR / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _program(tmp_path: Path, body: str, name: str = "program.py") -> str:
    path = tmp_path / name
    path.write_text("import numpy as np\n\n" + body)
    return str(path)


def test_task_spec_loads_and_names_the_stages() -> None:
    task = load_task("circle_packing")
    assert task.name == "circle_packing"
    assert [s.name for s in task.stages] == ["quick", "full"]
    assert task.stages[1].seeds == [0, 1, 2]
    assert "# EVOLVE-BLOCK-START" in task.seed_code()
    assert "# evolve: choices" in task.seed_code()
    priors = task.priors_path().read_text().splitlines()
    assert 8 <= sum(line.startswith("- ") for line in priors) <= 20
    assert set(task.spec.features) <= {"radius_cv", "boundary_fraction", "min_radius", "contacts"}


def test_seed_scores_in_range_and_deterministically(evaluator: ModuleType, tmp_path: Path) -> None:
    seed = str(TASK_DIR / "seed.py")
    first = evaluator.evaluate(seed, stage="quick", seed=0, workdir=str(tmp_path / "a"))
    second = evaluator.evaluate(seed, stage="quick", seed=0, workdir=str(tmp_path / "b"))
    assert 2.3 < first["score"] < 2.6359
    assert first["score"] == second["score"]
    assert first["metrics"] == second["metrics"]
    assert first["metrics"]["ratio_to_sota"] == pytest.approx(first["score"] / 2.635)
    assert "sum of radii" in first["feedback"]


def test_naive_grid_baseline_scores_exactly(evaluator: ModuleType, tmp_path: Path) -> None:
    result = evaluator.evaluate(str(TASK_DIR / "baselines" / "naive_grid.py"), stage="quick",
                                seed=0, workdir=str(tmp_path))
    assert result["score"] == pytest.approx(26 / 12)


def test_crashing_candidate_raises_with_its_error(evaluator: ModuleType, tmp_path: Path) -> None:
    prog = _program(tmp_path, "def pack(n, seed, budget_s):\n    raise RuntimeError('boom in pack')\n")
    with pytest.raises(Exception, match="exited with code") as info:
        evaluator.evaluate(prog, stage="quick", seed=0, workdir=str(tmp_path / "w"))
    assert "boom in pack" in info.value.feedback


def test_missing_function_is_named(evaluator: ModuleType, tmp_path: Path) -> None:
    prog = _program(tmp_path, "def packing(n, seed, budget_s):\n    return None\n")
    with pytest.raises(Exception) as info:
        evaluator.evaluate(prog, stage="quick", seed=0, workdir=str(tmp_path / "w"))
    assert "no function 'pack'" in info.value.feedback


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Circles of radius 0.1 on a vertical line, 0.032 apart.
        ("c = np.full((n, 2), 0.5)\n    c[:, 1] = np.linspace(0.1, 0.9, n)\n"
         "    return {'centers': c, 'radii': np.full(n, 0.1)}", "overlap"),
        ("c = np.tile([[0.05, 0.5]], (n, 1))\n    c[:, 1] = np.linspace(0, 1, n)\n"
         "    return {'centers': c, 'radii': np.full(n, 0.0)}", None),
        ("return {'centers': np.full((n, 2), 0.01), 'radii': np.full(n, 0.05)}", "wall"),
        ("return {'centers': np.zeros((n - 1, 2)), 'radii': np.zeros(n - 1)}", "shape"),
        ("return {'centers': np.full((n, 2), np.nan), 'radii': np.zeros(n)}", "finite"),
        ("return {'centers': np.full((n, 2), 0.5), 'radii': -np.ones(n)}", "negative"),
        ("return {'middle': np.zeros((n, 2))}", "must return"),
    ],
)
def test_invalid_packings_are_rejected(evaluator: ModuleType, tmp_path: Path, body: str,
                                       message: str | None) -> None:
    prog = _program(tmp_path, f"def pack(n, seed, budget_s):\n    {body}\n")
    if message is None:  # zero radii on a line are valid (and worthless)
        result = evaluator.evaluate(prog, stage="quick", seed=0, workdir=str(tmp_path / "w"))
        assert result["score"] == 0.0
        return
    with pytest.raises(ValueError, match=message):
        evaluator.evaluate(prog, stage="quick", seed=0, workdir=str(tmp_path / "w"))


def test_candidate_cannot_write_its_own_score(evaluator: ModuleType, tmp_path: Path) -> None:
    body = (
        "import json\n"
        "def pack(n, seed, budget_s, **rest):\n"
        "    with open('seen.json', 'w') as fh:\n"
        "        json.dump({'args': sorted(['n', 'seed', 'budget_s'] + list(rest))}, fh)\n"
        "    side = 6\n"
        "    t = (np.arange(side) + 0.5) / side\n"
        "    c = np.array([(x, y) for y in t for x in t])[:n]\n"
        "    return {'centers': c, 'radii': np.full(n, 1 / 12), 'score': 99.0, 'sum_radii': 99.0}\n"
    )
    prog = _program(tmp_path, body)
    workdir = tmp_path / "w"
    result = evaluator.evaluate(prog, stage="quick", seed=0, workdir=str(workdir))
    assert result["score"] == pytest.approx(26 / 12)
    seen = json.loads((workdir / "seen.json").read_text())
    assert seen["args"] == ["budget_s", "n", "seed"]


def test_unknown_stage_is_refused(evaluator: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no stage 'huge'"):
        evaluator.evaluate(str(TASK_DIR / "seed.py"), stage="huge", seed=0, workdir=str(tmp_path))
