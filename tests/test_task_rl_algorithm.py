"""The shipped rl_algorithm task: a real warm start + RL run in a child, scored in the parent.

Quick stage only, to keep the file short on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from orchestrator.task import load_task

TASK = load_task("rl_algorithm")
sys.path.insert(0, str(TASK.folder.parents[1] / "sandbox_images" / "runner"))
from evoforge_runner.child import CandidateError  # noqa: E402


def _load(path: Path, name: str) -> ModuleType:
    """A trusted task module by path, under a name unique to this test file."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


EVAL = _load(TASK.folder / "evaluate.py", "rl_evaluate")


def _program(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict, Path]]:
    runs = []
    for i in range(2):
        work = tmp_path_factory.mktemp(f"rl_seed{i}")
        runs.append((EVAL.evaluate(str(TASK.seed_path), stage="quick", seed=0, workdir=str(work)), work))
    return runs


def test_task_spec_loads_with_quick_full_and_gpu_scale() -> None:
    assert [s.name for s in TASK.stages] == ["quick", "full"]
    assert load_task("rl_algorithm", scale="gpu").resources.gpu == 1
    code = TASK.seed_code()
    assert "EVOLVE-BLOCK-START" in code and "# evolve: choices" in code


def test_seed_quick_scores_in_range_and_is_deterministic(seed_runs: list[tuple[dict, Path]]) -> None:
    (first, _), (second, _) = seed_runs
    assert 0.0 <= first["score"] <= 1.0
    assert first["score"] == second["score"]
    assert first["metrics"]["train_reward_last"] == second["metrics"]["train_reward_last"]
    assert set(TASK.spec.features) <= set(first["metrics"])
    assert "held-out greedy accuracy" in first["feedback"]
    assert TASK.passes(TASK.stages[0], first["score"])


def test_child_never_receives_held_out_prompts(seed_runs: list[tuple[dict, Path]]) -> None:
    _, work = seed_runs[0]
    assert {p.name for p in (work / "out").iterdir()} == {"policy.npz", "info.json"}
    info = json.loads((work / "out" / "info.json").read_text())
    assert not {"ids", "prompts", "answers", "num_eval"} & set(info["config"])
    # the child's whole view of the job: its argv config and the folders it was given
    child_files = {p.name for p in (work / "child").iterdir()}
    assert child_files <= {".child.stdout", ".child.stderr"}
    train_ids, held = EVAL.split()
    assert np.intersect1d(train_ids, held).size == 0
    assert set(EVAL.held_out_ids(EVAL.setting_for("quick", None), 0).tolist()) <= set(held.tolist())


def test_crashing_loss_raises_a_clear_error(tmp_path: Path) -> None:
    program = _program(tmp_path, "crash.py", "def compute_loss(logprobs, old_logprobs, ref_logprobs, rewards, mask, group_size, **hp):\n"
                       "    raise ValueError('no loss today')\n")
    with pytest.raises(CandidateError, match="compute_loss raised.*no loss today"):
        EVAL.evaluate(program, stage="quick", seed=0, workdir=str(tmp_path / "w"))


def test_non_scalar_loss_is_rejected(tmp_path: Path) -> None:
    program = _program(tmp_path, "vector.py", "def compute_loss(logprobs, old_logprobs, ref_logprobs, rewards, mask, group_size, **hp):\n"
                       "    return -(logprobs * mask).sum(dim=1)\n")
    with pytest.raises(CandidateError, match="scalar"):
        EVAL.evaluate(program, stage="quick", seed=0, workdir=str(tmp_path / "w"))


def test_missing_function_is_an_interface_error(tmp_path: Path) -> None:
    program = _program(tmp_path, "none.py", "HPARAMS = {}\n")
    with pytest.raises(CandidateError, match="must define `def compute_loss"):
        EVAL.evaluate(program, stage="quick", seed=0, workdir=str(tmp_path / "w"))


def test_policy_weights_are_validated_before_decoding(tmp_path: Path) -> None:
    np.savez(tmp_path / "policy.npz", bogus=np.zeros(3))
    setting = EVAL.setting_for("quick", None)
    with pytest.raises(CandidateError, match="unusable policy weights"):
        EVAL.greedy_accuracy(tmp_path / "policy.npz", setting.driver, np.arange(5), 1)


def test_every_declared_alternative_of_the_seed_gives_a_finite_scalar_loss(tmp_path: Path) -> None:
    import re  # noqa: PLC0415

    train_child = _load(TASK.folder / "train_child.py", "rl_train_child")

    code = TASK.seed_code()
    cfg = train_child.TrainConfig()
    count = 0
    for line in code.splitlines():
        m = re.match(r'^(\w+) = "(\w+)"  # evolve: choices (\[.*\])$', line)
        if not m:
            continue
        for choice in json.loads(m.group(3)):
            path = tmp_path / f"{m.group(1)}_{choice}.py"
            path.write_text(code.replace(line, f'{m.group(1)} = "{choice}"  # evolve: choices {m.group(3)}'))
            fn, hparams = train_child.load_candidate(path)
            train_child.preflight(fn, hparams, cfg)  # raises CandidateFault on a bad loss
            count += 1
    assert count >= 9
