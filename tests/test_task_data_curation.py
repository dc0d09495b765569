"""The shipped data_curation task: its spec loads, its evaluator scores the seed
deterministically, rejects broken or invalid curations with a message naming the field, and
never lets the candidate see the held-out data."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from orchestrator import REPO_ROOT
from orchestrator.task import load_task

TASK_DIR = REPO_ROOT / "tasks" / "data_curation"
RUNNER_DIR = REPO_ROOT / "sandbox_images" / "runner"


@pytest.fixture(scope="module")
def evaluator() -> ModuleType:
    if str(RUNNER_DIR) not in sys.path:
        sys.path.insert(0, str(RUNNER_DIR))
    spec = importlib.util.spec_from_file_location("data_curation_evaluate", TASK_DIR / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _program(tmp_path: Path, body: str) -> str:
    path = tmp_path / "program.py"
    path.write_text("import numpy as np\n\n" + body)
    return str(path)


def test_task_spec_loads_with_gpu_scale() -> None:
    task = load_task("data_curation")
    assert [s.name for s in task.stages] == ["quick", "full"]
    assert task.stages[1].seeds == [0, 1, 2]
    assert task.spec.features == ["kept_fraction", "extra_fraction"]
    code = task.seed_code()
    assert code.index("# EVOLVE-BLOCK-START") < code.index("# evolve: choices") < code.index("# EVOLVE-BLOCK-END")
    priors = task.priors_path().read_text().splitlines()
    assert 8 <= sum(line.startswith("- ") for line in priors) <= 20
    assert load_task("data_curation", scale="gpu").resources.gpu == 1


def test_seed_scores_in_range_and_deterministically(evaluator: ModuleType, tmp_path: Path) -> None:
    seed = str(TASK_DIR / "seed.py")
    first = evaluator.evaluate(seed, stage="quick", seed=0, workdir=str(tmp_path / "a"))
    second = evaluator.evaluate(seed, stage="quick", seed=0, workdir=str(tmp_path / "b"))
    assert 0.5 < first["score"] < 1.0
    assert first["score"] == second["score"]
    assert {k: v for k, v in first["metrics"].items() if k != "curate_s"} == {
        k: v for k, v in second["metrics"].items() if k != "curate_s"
    }
    m = first["metrics"]
    assert first["score"] == pytest.approx((m["acc_clean"] + m["acc_shifted"] + m["acc_rare"]) / 3)
    # The seed filters: it keeps less corruption than the pool holds (about 38%).
    assert m["noise_in_kept"] < 0.3 and 0.3 < m["kept_fraction"] < 1.0
    assert "acc_shifted" in first["feedback"]


def test_crashing_candidate_raises_with_its_error(evaluator: ModuleType, tmp_path: Path) -> None:
    prog = _program(tmp_path, "def curate(X, y, seed):\n    raise KeyError('no curation today')\n")
    with pytest.raises(Exception, match="exited with code") as info:
        evaluator.evaluate(prog, stage="quick", seed=0, workdir=str(tmp_path / "w"))
    assert "no curation today" in info.value.feedback


def test_out_of_range_indices_are_rejected_through_evaluate(evaluator: ModuleType, tmp_path: Path) -> None:
    prog = _program(tmp_path, "def curate(X, y, seed):\n    return {'keep': np.arange(len(y) + 3)}\n")
    with pytest.raises(ValueError, match=r"keep holds indices outside \[0, \d+\)"):
        evaluator.evaluate(prog, stage="quick", seed=0, workdir=str(tmp_path / "w"))


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ({"keep": [1, 2, 2, 3] * 10}, "repeats indices"),
        ({"keep": np.ones(99, dtype=bool)}, "boolean keep mask must have length 100"),
        ({"keep": np.arange(50.0)}, "must hold integers"),
        ({"keep": np.arange(5)}, "at least 20 examples"),
        ({"keep": np.arange(50), "weights": np.ones(49)}, "one entry per kept example"),
        ({"keep": np.arange(50), "weights": np.full(50, np.nan)}, "NaN or inf"),
        ({"keep": np.arange(50), "weights": -np.ones(50)}, "must be >= 0"),
        ({"keep": np.arange(50), "X_extra": np.zeros((51, 64)), "y_extra": np.zeros(51, dtype=int)}, "at most 50 extra"),
        ({"keep": np.arange(50), "X_extra": np.full((5, 64), 17.0), "y_extra": np.zeros(5, dtype=int)}, r"lie in \[0, 16\]"),
        ({"keep": np.arange(50), "X_extra": np.zeros((5, 64)), "y_extra": np.full(5, 10)}, r"labels must lie in \[0, 10\)"),
        ({"keep": np.arange(50), "X_extra": np.zeros((5, 64))}, "go together"),
        ({"keep": np.arange(50), "X_extra": np.zeros((5, 63)), "y_extra": np.zeros(5, dtype=int)}, r"shape \[m, 64\]"),
        ({"keep": np.arange(50), "weight": np.ones(50)}, "unknown keys"),
    ],
)
def test_invalid_curations_name_the_field(evaluator: ModuleType, out: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluator.parse_curation(out, n=100)


def test_valid_curation_parses_mask_and_extras(evaluator: ModuleType) -> None:
    mask = np.zeros(100, dtype=bool)
    mask[::2] = True
    cur = evaluator.parse_curation(
        {"keep": mask, "weights": np.arange(50.0), "X_extra": np.ones((3, 64)), "y_extra": [1, 2, 3]}, n=100
    )
    assert cur["keep"].tolist() == list(range(0, 100, 2))
    assert cur["y_extra"].tolist() == [1, 2, 3] and cur["weights_extra"].tolist() == [1.0, 1.0, 1.0]


def test_candidate_sees_only_the_pool(evaluator: ModuleType, tmp_path: Path) -> None:
    body = (
        "import json\n"
        "def curate(X, y, seed, **rest):\n"
        "    np.save('pool_X.npy', X)\n"
        "    with open('seen.json', 'w') as fh:\n"
        "        json.dump({'args': sorted(['X', 'y', 'seed'] + list(rest)), 'n': len(y)}, fh)\n"
        "    return {'keep': np.arange(len(y))}\n"
    )
    workdir = tmp_path / "w"
    result = evaluator.evaluate(_program(tmp_path, body), stage="quick", seed=0, workdir=str(workdir))
    seen = json.loads((workdir / "seen.json").read_text())
    assert seen["args"] == ["X", "seed", "y"]
    with np.load(workdir / "io" / "inputs.npz") as npz:
        assert sorted(npz.files) == ["X", "y"]
    pool, bench = evaluator._sibling("pool").build(0)
    pool_X = np.load(workdir / "pool_X.npy")
    assert np.array_equal(pool_X, pool.X) and seen["n"] == len(pool.y)
    # No held-out image (clean or shifted) is among the rows the candidate received.
    dist = ((pool_X[:, None, :] - bench.X_clean[None, :, :]) ** 2).sum(-1)
    assert dist.min() > 0.5
    assert 0.0 < result["score"] < 1.0 and result["metrics"]["kept_fraction"] == 1.0


def test_program_that_loads_the_raw_dataset_is_refused(evaluator: ModuleType, tmp_path: Path) -> None:
    body = (
        "from sklearn.datasets import load_digits\n"
        "def curate(X, y, seed):\n"
        "    return {'keep': np.arange(len(y))}\n"
    )
    with pytest.raises(ValueError, match="load_digits"):
        evaluator.evaluate(_program(tmp_path, body), stage="quick", seed=0, workdir=str(tmp_path / "w"))


def test_unknown_stage_is_refused(evaluator: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no stage 'huge'"):
        evaluator.evaluate(str(TASK_DIR / "seed.py"), stage="huge", seed=0, workdir=str(tmp_path))
