"""The shipped linear_attention task: its evaluator trains a real model in a real child process.

Quick stage only (a few seconds of training per call) to keep the file short on 2 cores.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from orchestrator.task import load_task

TASK = load_task("linear_attention")
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


EVAL = _load(TASK.folder / "evaluate.py", "la_evaluate")


def _program(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict, Path]]:
    runs = []
    for i in range(2):
        work = tmp_path_factory.mktemp(f"la_seed{i}")
        runs.append((EVAL.evaluate(str(TASK.seed_path), stage="quick", seed=0, workdir=str(work)), work))
    return runs


def test_task_spec_loads_with_quick_full_and_gpu_scale() -> None:
    assert [s.name for s in TASK.stages] == ["quick", "full"]
    assert TASK.spec.metric.direction == "maximize"
    gpu = load_task("linear_attention", scale="gpu")
    assert gpu.resources.gpu == 1
    assert "EVOLVE-BLOCK-START" in TASK.seed_code()
    assert '# evolve: choices ["elu", "relu", "identity", "softmax"]' in TASK.seed_code()


def test_seed_quick_scores_in_range_and_is_deterministic(seed_runs: list[tuple[dict, Path]]) -> None:
    (first, _), (second, _) = seed_runs
    assert 0.0 <= first["score"] <= 1.0
    assert first["score"] == second["score"]
    assert first["metrics"]["train_loss_final"] == second["metrics"]["train_loss_final"]
    assert first["metrics"]["state_within_budget"] == 1.0
    assert set(TASK.spec.features) <= set(first["metrics"])
    assert "MQAR recall accuracy" in first["feedback"]


def test_seed_quick_clears_its_threshold(seed_runs: list[tuple[dict, Path]]) -> None:
    quick = TASK.stages[0]
    assert TASK.passes(quick, seed_runs[0][0]["score"])


def test_child_never_receives_held_out_targets(seed_runs: list[tuple[dict, Path]]) -> None:
    _, work = seed_runs[0]
    with np.load(work / "io" / "eval_inputs.npz", allow_pickle=False) as npz:
        assert npz.files == ["inputs"]
        inputs = npz["inputs"]
    setting = EVAL.setting_for("quick", None)
    expected_inputs, labels = EVAL.held_out(setting, 0)
    np.testing.assert_array_equal(inputs, expected_inputs)
    # after the key-value context, no query's answer token appears anywhere in its sequence
    context = 2 * int(setting.driver["num_kv"])
    for row in range(len(inputs)):
        answers = set(labels[row][labels[row] >= 0].tolist())
        assert answers.isdisjoint(inputs[row, context:].tolist())
    names = {p.name for p in (work / "io").iterdir()}
    assert names <= {"eval_inputs.npz", "predictions.npz", "info.json"}


def test_broken_candidate_raises_a_clear_error(tmp_path: Path) -> None:
    program = _program(tmp_path, "broken.py", "import torch\nclass Mixer(torch.nn.Module):\n"
                       "    def __init__(self, dim, num_heads, state_size):\n        super().__init__()\n"
                       "    def forward(self, x):\n        raise RuntimeError('boom')\n")
    with pytest.raises(CandidateError, match="Mixer.forward failed.*boom"):
        EVAL.evaluate(program, stage="quick", seed=0, workdir=str(tmp_path / "w"))


def test_missing_mixer_is_an_interface_error(tmp_path: Path) -> None:
    program = _program(tmp_path, "empty.py", "X = 1\n")
    with pytest.raises(CandidateError, match="must define `class Mixer"):
        EVAL.evaluate(program, stage="quick", seed=0, workdir=str(tmp_path / "w"))


def test_non_causal_mixer_is_rejected(tmp_path: Path) -> None:
    # a reverse cumulative mean: position t sees every later token
    program = _program(tmp_path, "peek.py", "import torch\nclass Mixer(torch.nn.Module):\n"
                       "    def __init__(self, dim, num_heads, state_size):\n        super().__init__()\n"
                       "        self.lin = torch.nn.Linear(dim, dim)\n"
                       "    def state_numel(self):\n        return 1\n"
                       "    def forward(self, x):\n"
                       "        return self.lin(x.flip(1).cumsum(1).flip(1))\n")
    with pytest.raises(CandidateError, match="not causal"):
        EVAL.evaluate(program, stage="quick", seed=0, workdir=str(tmp_path / "w"))


def test_unknown_stage_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no setting for scale/stage cpu/nope"):
        EVAL.evaluate(str(TASK.seed_path), stage="nope", seed=0, workdir=str(tmp_path))


def _choice_variants(code: str) -> list[tuple[str, str]]:
    """(label, program) for every single swap of a `# evolve: choices [...]` literal."""
    import ast  # noqa: PLC0415
    import re  # noqa: PLC0415

    out = []
    for line in code.splitlines():
        m = re.match(r"^(\w+) = (.+?)  # evolve: choices (\[.*\])$", line)
        if not m:
            continue
        for choice in ast.literal_eval(m.group(3)):
            if repr(choice) != m.group(2) and json_repr(choice) != m.group(2):
                new = f"{m.group(1)} = {json_repr(choice)}  # evolve: choices {m.group(3)}"
                out.append((f"{m.group(1)}={choice}", code.replace(line, new)))
    return out


def json_repr(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_every_declared_alternative_of_the_seed_builds_a_causal_mixer(tmp_path: Path) -> None:
    import torch  # noqa: PLC0415

    train_child = _load(TASK.folder / "train_child.py", "la_train_child")

    cfg = train_child.TrainConfig(**{k: v for k, v in EVAL.setting_for("quick", None).driver.items()
                                     if k in ("vocab", "seq_len", "num_kv", "dim", "num_heads", "state_size")})
    variants = _choice_variants(TASK.seed_code())
    assert len(variants) >= 8
    for label, code in variants:
        path = tmp_path / f"{label.replace('=', '_').replace('.', '_')}.py"
        path.write_text(code)
        mixer_cls = train_child.load_mixer_class(path)
        checks = train_child.check_mixer(mixer_cls, cfg, torch.device("cpu"))
        assert checks["declared_state_numel"] <= cfg.state_size, label
