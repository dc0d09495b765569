"""The LLM endpoint goes down for a while (503s, or answers slower than the client timeout):
the loop backs off and asks again, keeps evaluating what is queued, resumes proposing once the
endpoint answers, and the budget counts only the calls that were billed.

The endpoint is the real loopback OpenAI server (`tests/openai_stub.py`), the client the real
`openai` one with a short timeout and no retries of its own.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from loop_support import FAULT_TASKS, assert_each_evaluated_once, test_settings
from openai_stub import OpenAIStub, Reply

import orchestrator.loop as loop_module
from cognition.store import CognitionStore
from orchestrator.runs import execute_run

SLOW_TASK = FAULT_TASKS / "slow_task"
ITERATIONS = 8
USAGE = (40, 10)  # tokens billed per answered call (prompt, completion)
PRICE_IN, PRICE_OUT = 1000.0, 2000.0  # USD per million tokens: one answered call = $0.06
OUTAGE_AFTER = 3  # answered Researcher calls before the endpoint goes down
OUTAGE_MIN_FAILURES = 3  # the outage lasts until this many calls failed and an evaluation
OUTAGE_MAX_S = 30.0  # committed meanwhile, or this long (then the test fails)


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch):
    monkeypatch.setenv("EVOFORGE_EMBEDDER", "lexical")
    monkeypatch.setattr(loop_module, "LLM_OUTAGE_DELAYS", (0.3,) * 60)


class FlakyModel:
    """Answers like a model until the OUTAGE_AFTER-th Researcher answer, then fails every call
    (503 or a hang) until OUTAGE_MIN_FAILURES calls failed and an evaluation committed during
    the outage (at most OUTAGE_MAX_S), then answers again. Counts what it billed."""

    def __init__(self, failure: str):
        self.failure = failure
        self.lock = threading.Lock()
        self.billed = 0
        self.failed = 0
        self.researcher_ok = 0
        self.down_from: float | None = None
        self.down_until: float | None = None
        self.commits_while_down = 0

    def committed(self, info: dict) -> None:
        with self.lock:
            if self.down_from is not None and self.down_until is None:
                self.commits_while_down += 1

    def __call__(self, body: dict) -> str | Reply:
        now = time.monotonic()
        with self.lock:
            if self.down_from is not None and self.down_until is None:
                over = self.failed >= OUTAGE_MIN_FAILURES and self.commits_while_down > 0
                if over or now - self.down_from > OUTAGE_MAX_S:
                    self.down_until = now
            if self.down_from is not None and self.down_until is None:
                self.failed += 1
                return Reply(status=503) if self.failure == "503" else Reply(content="late", delay_s=1.5, usage=USAGE)
            analyzer = "analyse the results" in body["messages"][0]["content"]
            content = self._answer(body, analyzer)
            self.billed += 1
            if not analyzer:
                self.researcher_ok += 1
                if self.researcher_ok == OUTAGE_AFTER and self.down_from is None:
                    self.down_from = now
            return Reply(content=content, usage=USAGE)

    def _answer(self, body: dict, analyzer: bool) -> str:
        if analyzer:
            return '{"summary": "moved X", "insights": [{"claim": "X matters", "evidence": "score", "confidence": 0.6}]}'
        user = body["messages"][-1]["content"]
        match = re.search(r"^X = ([-0-9.e]+)$", user, re.M)
        if match is None:
            return "I cannot find X."
        new_x = round(float(match.group(1)) + 0.1 + 0.001 * self.researcher_ok, 6)  # never a duplicate
        return f"Nudge X.\n<<<<<<< SEARCH\n{match.group(0)}\n=======\nX = {new_x}\n>>>>>>> REPLACE\n"


@pytest.mark.parametrize("failure", ["503", "hang"])
def test_llm_outage_backs_off_keeps_evaluating_and_bills_only_answers(tmp_path: Path, failure: str) -> None:
    model = FlakyModel(failure)
    commits: list[tuple[float, int]] = []

    def on_progress(info: dict) -> None:
        model.committed(info)
        commits.append((time.monotonic(), info["iteration"]))

    with OpenAIStub(handler=model) as stub:
        settings = test_settings(tmp_path, **{
            "llm.mode": "stub-model", "llm.base_url": stub.base_url, "llm.timeout_s": 0.5,
            "llm.max_retries": 0, "llm.repair_attempts": 0,
            "llm.models": [{"name": "stub-model", "price_in_per_mtok": PRICE_IN, "price_out_per_mtok": PRICE_OUT}],
            "budget.iterations": ITERATIONS, "sandbox.concurrency": 2, "llm.proposal_concurrency": 2,
        })
        run = execute_run(settings, str(SLOW_TASK),
                          on_progress=on_progress)
    assert model.down_from is not None and model.down_until is not None, "the outage never started or ended"
    assert model.failed >= 3, f"only {model.failed} calls met the outage: no backing off was exercised"
    assert run.status == "finished", run.stop_reason
    assert run.iterations_done == ITERATIONS

    store = CognitionStore.open(settings.store, readonly=True)
    cands = store.candidates_of_run(run.id)
    assert [c.iteration for c in cands] == list(range(ITERATIONS + 1))
    # Backing off, not giving up: no iteration was lost to the outage.
    assert all(c.state == "done" for c in cands), [(c.iteration, c.summary) for c in cands if c.state != "done"]
    assert all(c.origin.startswith("model:") for c in cands[1:])
    outages = [e for e in store.events_of(run.id) if e.kind == "llm_outage"]
    assert outages, "no llm_outage event was recorded"
    # The evaluators went on while the endpoint was down ...
    assert model.commits_while_down > 0, f"nothing was evaluated during the outage: {commits}"
    # ... and proposing resumed after it: iterations proposed after the outage were evaluated.
    after = [i for t, i in commits if t > model.down_until]
    assert max(after) == ITERATIONS

    # Only answered calls are billed; every call, failed ones included, is recorded.
    calls = store.llm_calls_of(run.id)
    answered = [c for c in calls if not c.error]
    failed = [c for c in calls if c.error]
    assert len(answered) == model.billed
    assert failed and all(c.prompt_tokens == c.completion_tokens == 0 and c.cost_usd == 0 for c in failed)
    per_call = (USAGE[0] * PRICE_IN + USAGE[1] * PRICE_OUT) / 1e6
    assert run.tokens_used == model.billed * sum(USAGE)
    assert run.cost_usd == pytest.approx(model.billed * per_call)
    assert len(stub.requests) == model.billed + model.failed
    assert_each_evaluated_once(settings.store, run.id)
