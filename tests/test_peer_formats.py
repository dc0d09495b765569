"""Peer task folders (OpenEvolve, ShinkaEvolve) read into a TaskSpec: detection, cascade,
config mapping, unmapped keys and the errors of a broken folder. No sandbox needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import TaskError
from orchestrator.peer_formats import detect_peer_task, map_openevolve_config, peer_settings
from orchestrator.task import load_task

PEER = Path(__file__).resolve().parent / "fixtures" / "peer"


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(PEER / name, dst)
    return dst


def test_openevolve_plain_folder_maps_its_config():
    task = load_task(PEER / "openevolve_plain")
    spec = task.spec
    assert spec.format == "openevolve"
    assert spec.program == "initial_program.py"
    assert task.program_name == "program.py"
    assert [s.name for s in spec.stages] == ["evaluate"]  # cascade_evaluation: false
    assert spec.stages[0].timeout_s == 60
    assert spec.iterations == 25
    assert spec.edit_mode == "diff"
    assert spec.description.startswith("Move the search point")
    assert spec.metric.key == "combined_score" and spec.metric.direction == "maximize"
    settings = peer_settings(spec)
    assert settings["seed"] == 7
    assert settings["search.num_islands"] == 4
    assert settings["sandbox.concurrency"] == 2
    assert settings["llm.base_url"] == "http://127.0.0.1:8000/v1"
    assert settings["llm.models"] == [
        {"name": "gpt-4o-mini", "weight": 0.8, "temperature": 0.6, "max_tokens": 2048},
        {"name": "gpt-4o", "weight": 0.2, "temperature": 0.6, "max_tokens": 2048},
    ]
    unmapped = spec.extra["peer"]["unmapped_keys"]
    assert unmapped == ["checkpoint_interval", "database.population_size", "log_level", "prompt.num_top_programs"]


def test_openevolve_cascade_becomes_our_stages_with_its_thresholds():
    spec = load_task(PEER / "openevolve_cascade").spec
    assert [(s.name, s.threshold, s.timeout_s) for s in spec.stages] == [("stage1", 0.05, 45), ("stage2", None, 45)]
    assert spec.resources.memory_mb == 1024
    assert spec.iterations == 10


def test_cascade_off_in_config_runs_evaluate_only(tmp_path):
    folder = _copy("openevolve_cascade", tmp_path)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["evaluator"]["cascade_evaluation"] = False
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    assert [s.name for s in load_task(folder).stages] == ["evaluate"]


def test_cascade_defaults_follow_openevolve_without_config(tmp_path):
    folder = _copy("openevolve_cascade", tmp_path)
    (folder / "config.yaml").unlink()
    stages = load_task(folder).stages
    assert [(s.name, s.threshold, s.timeout_s) for s in stages] == [("stage1", 0.5, 300), ("stage2", None, 300)]


def test_shinka_folders_are_detected():
    for name in ("shinka_plain", "shinka_feedback", "shinka_failing", "shinka_incorrect"):
        spec = load_task(PEER / name).spec
        assert spec.format == "shinka", name
        assert spec.program == "initial.py"
        assert [s.name for s in spec.stages] == ["evaluate"]
        assert spec.image == "cpu"


def test_requirements_select_a_derived_image(tmp_path):
    folder = _copy("shinka_plain", tmp_path)
    (folder / "requirements.txt").write_text("tomli==2.0.1\n")
    spec = load_task(folder).spec
    assert spec.image == f"requirements:{folder / 'requirements.txt'}"


def test_a_folder_of_no_known_format_is_an_error(tmp_path):
    (tmp_path / "solution.py").write_text("X = 1\n")
    assert detect_peer_task(tmp_path) is None
    with pytest.raises(TaskError, match="no task.yaml"):
        load_task(tmp_path)


def test_evaluator_without_evaluate_is_named(tmp_path):
    folder = _copy("openevolve_plain", tmp_path)
    (folder / "evaluator.py").write_text("def score(path):\n    return {}\n")
    with pytest.raises(TaskError, match="evaluate"):
        load_task(folder)


def test_evaluator_that_does_not_parse_is_named(tmp_path):
    folder = _copy("shinka_plain", tmp_path)
    (folder / "evaluate.py").write_text("def main(:\n")
    with pytest.raises(TaskError, match="does not parse"):
        load_task(folder)


def test_file_suffix_picks_the_initial_program(tmp_path):
    folder = _copy("openevolve_plain", tmp_path)
    (folder / "initial_program.txt").write_text("notes\n")
    with pytest.raises(TaskError, match="several initial programs"):
        load_task(folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["file_suffix"] = ".py"
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    assert load_task(folder).spec.program == "initial_program.py"


def test_config_mapping_lists_every_key_it_cannot_use():
    raw = {"max_iterations": 3, "llm": {"models": [{"name": "m", "weight": 2}], "top_p": 0.9},
           "evaluator": {"timeout": 5, "use_llm_feedback": True, "cascade_thresholds": [0.1]},
           "database": {"feature_dimensions": ["complexity", "accuracy"]},
           "evolution_trace": {"enabled": True}, "early_stopping_patience": 4}
    mapping = map_openevolve_config(raw)
    assert mapping.task["iterations"] == 3
    assert mapping.task["features"] == ["accuracy"]
    assert mapping.timeout_s == 5 and mapping.thresholds == (0.1,)
    assert mapping.settings["llm.models"] == [{"name": "m", "weight": 2.0}]
    assert mapping.unmapped == ["early_stopping_patience", "evaluator.use_llm_feedback",
                                "evolution_trace.enabled", "llm.top_p"]
