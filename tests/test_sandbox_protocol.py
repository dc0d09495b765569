"""The host side of the runner protocol: only a well-formed line with the job's nonce counts."""

from __future__ import annotations

import json

import pytest

from orchestrator.sandbox import protocol

NONCE = "a" * 32
GOOD = {"status": "ok", "score": 1.5, "metrics": {"m": 1}, "feedback": "", "error": "",
        "stdout_tail": "", "stderr_tail": "", "runtime_s": 0.1}


def line(record: object, nonce: str = NONCE) -> str:
    body = record if isinstance(record, str) else json.dumps(record)
    return f"{protocol.RESULT_PREFIX} {nonce} {body}"


def parse(text: str, max_bytes: int = 4096):
    return protocol.parse_result(text, NONCE, max_bytes, backend="test", exit_code=0)


def test_the_last_line_with_the_nonce_wins():
    forged = line({**GOOD, "score": 1e9}, nonce="b" * 32)
    text = "\n".join([line({**GOOD, "score": 0.5}), "noise", line(GOOD), forged, "more noise"])
    result = parse(text)
    assert result.status == "ok" and result.score == 1.5 and result.backend == "test"


@pytest.mark.parametrize("text, reason", [
    ("", "no result line"),
    (line(GOOD, nonce="b" * 32), "no result line"),
    (line("{not json"), "not valid JSON"),
    (line('{"status": "ok", "score": NaN, "metrics": {}}'), "not valid JSON"),
    (line('{"status": "ok", "score": Infinity}'), "not valid JSON"),
    (line([1, 2]), "not an object"),
    (line({**GOOD, "score": "high"}), "failed validation"),
    (line({**GOOD, "metrics": [1]}), "failed validation"),
    (line({**GOOD, "backend": "forged"}), "unknown keys"),
    (line({**GOOD, "status": "lost"}), "status"),
    (line({**GOOD, "feedback": "x" * 10_000}), "over the"),
])
def test_malformed_results_are_invalid_never_raise(text, reason):
    result = parse(text)
    assert result.status == "invalid"
    assert reason in result.error
    assert result.score is None


@pytest.mark.parametrize("name", ["../a.py", "/etc/passwd", "a/../../b", "", "a\\b.py", "a//b.py", "./a.py"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(protocol.BadInput):
        protocol.safe_relpath(name)


def test_inputs_are_world_readable_and_nested(tmp_path):
    folder = protocol.write_inputs({"program.py": "x = 1\n", "pkg/util.py": "y = 2\n"}, "program.py", tmp_path)
    assert (folder / "pkg" / "util.py").read_text() == "y = 2\n"
    assert oct(folder.stat().st_mode & 0o777) == "0o755"
    assert oct((folder / "pkg").stat().st_mode & 0o777) == "0o755"
    assert oct((folder / "program.py").stat().st_mode & 0o777) == "0o644"
