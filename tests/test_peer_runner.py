"""The runner's peer adapters (evoforge_runner.peers) through the real runner in the process
sandbox: OpenEvolve dict / EvaluationResult / cascade / fallback score / artifacts / failures,
ShinkaEvolve metrics.json + correct.json. The Docker path is in test_peer_docker.py."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from orchestrator import SANDBOX_IMAGES_DIR
from orchestrator.commands.evaluate import job_for
from orchestrator.sandbox.base import SandboxResult
from orchestrator.sandbox.process import ProcessSandbox
from orchestrator.task import load_task

PEER = Path(__file__).resolve().parent / "fixtures" / "peer"
sys.path.insert(0, str(SANDBOX_IMAGES_DIR / "runner"))

from evoforge_runner.peers import artifacts_feedback, openevolve_score, shinka_metrics  # noqa: E402


def _eval(folder: Path, stage: str | None = None, code: str | None = None) -> SandboxResult:
    task = load_task(folder)
    job = job_for(task, code if code is not None else task.seed_code(), stage)
    return asyncio.run(ProcessSandbox().run(job))


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(PEER / name, dst)
    return dst


def test_openevolve_dict_result_scores_combined_score():
    r = _eval(PEER / "openevolve_plain")
    assert r.status == "ok", r.error
    assert r.score == pytest.approx(1 / (1 + 3.25))
    assert r.metrics["distance"] == pytest.approx(3.25)


def test_openevolve_cascade_stages_call_their_functions():
    one = _eval(PEER / "openevolve_cascade", "stage1")
    two = _eval(PEER / "openevolve_cascade", "stage2")
    assert (one.status, two.status) == ("ok", "ok")
    assert one.metrics["points"] == 8 and two.metrics["points"] == 200
    assert one.feedback == "stage: stage1"  # EvaluationResult artifacts of stage 1


def test_openevolve_artifacts_become_feedback_and_score_falls_back_to_the_mean():
    r = _eval(PEER / "openevolve_artifacts")
    assert r.status == "ok", r.error
    assert r.score == pytest.approx((5 / 6 + 1.0) / 2)  # error excluded, no combined_score
    assert "misclassified: 0.2" in r.feedback
    assert "raw_bytes: binary" in r.feedback


def test_openevolve_failing_evaluator_is_an_error_with_its_traceback():
    r = _eval(PEER / "openevolve_failing")
    assert r.status == "error"
    assert r.score is None
    assert "evaluator bug: reference data missing" in r.feedback


def test_openevolve_wrong_return_type_and_failed_marker(tmp_path):
    folder = _copy("openevolve_failing", tmp_path)
    (folder / "evaluator.py").write_text("def evaluate(program_path):\n    return 0.5\n")
    r = _eval(folder)
    assert r.status == "invalid" and "float" in r.error
    (folder / "evaluator.py").write_text(
        "def evaluate(program_path):\n    return {'combined_score': 0.0, '__evaluation_failed__': True}\n")
    assert _eval(folder).status == "error"


def test_shinka_run_shinka_eval_writes_what_we_read():
    r = _eval(PEER / "shinka_plain")
    assert r.status == "ok", r.error
    assert r.metrics["runs"] == 3
    assert r.metrics["num_valid_runs"] == 3
    assert r.metrics["private"]["best_distance"] <= r.metrics["mean_distance"]
    assert r.score == pytest.approx(1 / (1 + r.metrics["mean_distance"]))
    assert r.feedback.startswith("mean squared distance")


def test_shinka_handwritten_json_and_text_feedback():
    r = _eval(PEER / "shinka_feedback")
    assert r.status == "ok", r.error
    assert r.score == pytest.approx(2.0)
    assert r.metrics["perimeter"] == pytest.approx(6.0)
    assert "a square is best" in r.feedback


def test_shinka_incorrect_and_failing_are_errors():
    incorrect = _eval(PEER / "shinka_incorrect")
    assert incorrect.status == "error"
    assert "negative" in incorrect.error
    assert incorrect.metrics["num_invalid_runs"] == 2
    failing = _eval(PEER / "shinka_failing")
    assert failing.status == "error"
    assert "reference data missing" in failing.error


def test_shinka_missing_correct_json_counts_as_not_correct(tmp_path):
    folder = _copy("shinka_failing", tmp_path)
    (folder / "evaluate.py").write_text(
        "import argparse, json, os\n"
        "p = argparse.ArgumentParser(); p.add_argument('--program_path'); p.add_argument('--results_dir')\n"
        "a = p.parse_args(); os.makedirs(a.results_dir, exist_ok=True)\n"
        "json.dump({'combined_score': 1.0}, open(os.path.join(a.results_dir, 'metrics.json'), 'w'))\n")
    r = _eval(folder)
    assert r.status == "error" and "correct.json" in r.error


def test_pure_helpers():
    assert openevolve_score({"combined_score": 2, "a": 9}) == 2.0
    assert openevolve_score({"a": 1, "b": 3, "error": 100, "flag": True, "s": "x"}) == 2.0
    assert openevolve_score({"s": "x"}) is None
    assert shinka_metrics({"combined_score": float("nan"), "public": {"a": 1}, "text_feedback": "t"}) == \
        {"a": 1, "combined_score": None}
    assert artifacts_feedback({"k": "v", "long": "x\ny"}) == "k: v\nlong:\nx\ny"
