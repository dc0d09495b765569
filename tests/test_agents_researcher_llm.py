"""LLMResearcher end to end against the loopback OpenAI server: diffs applied, malformed
replies re-asked with the reason, full rewrites, repair, prompts, and replay."""

from __future__ import annotations

import pytest
from agents_support import SEED, make_candidate, make_evaluation, make_task
from openai_stub import OpenAIStub

from agents.errors import AgentError, ProposalError
from agents.llm import LLMClient, ModelSpec, ReplayClient
from agents.offline import OfflineResearcher
from agents.prompting import prompt_hash
from agents.researcher import LLMResearcher, ResearchContext, make_researcher, researcher_messages
from cognition.records import Insight

GOOD_DIFF = """SUMMARY: raise the threshold to cut false positives
<<<<<<< SEARCH
THRESHOLD = 0.3
=======
THRESHOLD = 0.45
>>>>>>> REPLACE
"""
BAD_DIFF = """SUMMARY: tune the rate
<<<<<<< SEARCH
LEARNING_RATE = 0.01
=======
LEARNING_RATE = 0.02
>>>>>>> REPLACE
"""
OUTSIDE_DIFF = """<<<<<<< SEARCH
HEADER = 3
=======
HEADER = 4
>>>>>>> REPLACE
"""


def context(**kw) -> ResearchContext:
    parent = make_candidate(SEED, score=0.61)
    failed = make_candidate(SEED.replace("STEPS = 100", "STEPS = 0"), summary="STEPS 100->0")
    defaults = dict(
        task=make_task(),
        run_id="run-llm",
        iteration=3,
        rng_seed=11,
        parent=parent,
        inspirations=[
            make_candidate(SEED.replace("LR = 0.01", "LR = 0.02"), score=0.58, summary="LR up")
        ],
        insights=[
            Insight(
                id="ins-1",
                text="thresholds above 0.4 helped",
                task="toy",
                source="prior",
                confidence=0.8,
            )
        ],
        failures=[
            (
                failed,
                make_evaluation(
                    failed, "error", None, error="Traceback...\nZeroDivisionError: division by zero"
                ),
            )
        ],
        parent_feedback="precision 0.7, recall 0.5",
    )
    defaults.update(kw)
    return ResearchContext(**defaults)


def llm(stub: OpenAIStub, **kw) -> LLMResearcher:
    client = LLMClient(
        base_url=stub.base_url, api_key=None, models=[ModelSpec("stub-coder")], timeout_s=5
    )
    return LLMResearcher(client, **kw)


def test_prompt_shows_parent_insights_inspirations_failures() -> None:
    msgs = researcher_messages(context(), "diff")
    system, user = msgs[0]["content"], msgs[1]["content"]
    assert "toy" in system and "maximize" in system and "EVOLVE-BLOCK-START" in system
    assert "score 0.61" in user and "precision 0.7, recall 0.5" in user
    assert "THRESHOLD = 0.3" in user  # the parent code
    assert "[prior, confidence 0.80] thresholds above 0.4 helped" in user
    assert "LR = 0.02" in user and "score 0.58" in user  # the inspiration's block excerpt
    assert "ZeroDivisionError: division by zero" in user and "STEPS 100->0" in user
    assert "<<<<<<< SEARCH" in user
    full = researcher_messages(context(), "full")[1]["content"]
    assert "<<<<<<< SEARCH" not in full and "complete new program" in full


async def test_diff_reply_is_applied() -> None:
    ctx = context()
    with OpenAIStub(script=[GOOD_DIFF]) as stub:
        researcher = llm(stub)
        proposal = await researcher.propose(ctx)
        await researcher.client.close()
    assert proposal.code == SEED.replace("THRESHOLD = 0.3", "THRESHOLD = 0.45")
    assert proposal.origin == "model:stub-coder"
    assert proposal.summary == "raise the threshold to cut false positives"
    assert proposal.parent_id == ctx.parent.id
    assert proposal.inspiration_ids == [ctx.inspirations[0].id]
    assert proposal.prompt_hash == prompt_hash(stub.requests[0]["messages"])
    assert [c.response for c in proposal.llm_calls] == [GOOD_DIFF]


async def test_malformed_reply_is_reasked_with_reason() -> None:
    with OpenAIStub(
        script=["I would tune the threshold.", BAD_DIFF, OUTSIDE_DIFF, GOOD_DIFF]
    ) as stub:
        researcher = llm(stub, max_diff_retries=3)
        proposal = await researcher.propose(context())
        await researcher.client.close()
    assert "THRESHOLD = 0.45" in proposal.code and len(proposal.llm_calls) == 4
    second, third, fourth = (r["messages"] for r in stub.requests[1:])
    assert second[-2] == {"role": "assistant", "content": "I would tune the threshold."}
    assert "neither SEARCH/REPLACE blocks nor a fenced code block" in second[-1]["content"]
    assert (
        "block 1 of 1 does not apply" in third[-1]["content"]
        and "LR = 0.01" in third[-1]["content"]
    )
    assert "outside the EVOLVE blocks" in fourth[-1]["content"]
    # the hash names the first prompt, not the re-asks
    assert proposal.prompt_hash == prompt_hash(stub.requests[0]["messages"])


async def test_retries_are_bounded_and_calls_kept() -> None:
    with OpenAIStub(script=[BAD_DIFF] * 5) as stub:
        researcher = llm(stub, max_diff_retries=2)
        with pytest.raises(ProposalError) as err:
            await researcher.propose(context())
        await researcher.client.close()
    assert len(stub.requests) == 3 and len(err.value.llm_calls) == 3
    assert "after 3 replies" in str(err.value) and "not found" in str(err.value)


async def test_unchanged_and_uncompilable_programs_are_reasked() -> None:
    same = "<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.01\n>>>>>>> REPLACE\n"
    broken = "<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = (0.01\n>>>>>>> REPLACE\n"
    with OpenAIStub(script=[same, broken, GOOD_DIFF]) as stub:
        researcher = llm(stub)
        await researcher.propose(context())
        await researcher.client.close()
    assert "unchanged" in stub.requests[1]["messages"][-1]["content"]
    assert "does not compile" in stub.requests[2]["messages"][-1]["content"]


async def test_full_rewrite_reply() -> None:
    new_block = 'THRESHOLD = 0.5\nLR = 0.03\nSTEPS = 80\nMODE = "margin"\n'
    reply = f"SUMMARY: simplify\n```python\n{new_block}```\n"
    with OpenAIStub(script=[reply]) as stub:
        researcher = llm(stub, edit_mode="full")
        proposal = await researcher.propose(context())
        await researcher.client.close()
    assert "complete new program" in stub.requests[0]["messages"][1]["content"]
    assert "# EVOLVE-BLOCK-START\n" + new_block + "# EVOLVE-BLOCK-END" in proposal.code
    assert proposal.code.endswith(SEED.split("# EVOLVE-BLOCK-END")[1])


async def test_task_edit_mode_is_followed() -> None:
    with OpenAIStub(script=[GOOD_DIFF]) as stub:
        researcher = llm(stub, edit_mode="task")
        await researcher.propose(context(task=make_task(edit_mode="full")))
        await researcher.client.close()
    assert "complete new program" in stub.requests[0]["messages"][1]["content"]


async def test_repair_fixes_the_failing_code() -> None:
    failing = SEED.replace("STEPS = 100", "STEPS = 0")
    fix = "SUMMARY: avoid zero steps\n<<<<<<< SEARCH\nSTEPS = 0\n=======\nSTEPS = 10\n>>>>>>> REPLACE\n"
    with OpenAIStub(script=[fix]) as stub:
        researcher = llm(stub)
        proposal = await researcher.repair(
            context(), failing, "Traceback\nZeroDivisionError: division by zero"
        )
        await researcher.client.close()
    assert proposal is not None and "STEPS = 10\n" in proposal.code
    assert proposal.summary == "repair: avoid zero steps"
    user = stub.requests[0]["messages"][1]["content"]
    assert "STEPS = 0" in user and "ZeroDivisionError" in user
    assert await OfflineResearcher(0).repair(context(), failing, "err") is None


async def test_replay_reproduces_proposals_without_server() -> None:
    script = [
        "no idea",
        GOOD_DIFF,
        BAD_DIFF.replace("LEARNING_RATE", "LR"),
    ]
    ctxs = [context(iteration=1), context(iteration=2)]
    with OpenAIStub(script=script) as stub:
        researcher = llm(stub)
        live = [await researcher.propose(c) for c in ctxs]
        await researcher.client.close()
    calls = [call for p in live for call in p.llm_calls]
    replayed_researcher = LLMResearcher(ReplayClient(calls))
    replayed = [await replayed_researcher.propose(c) for c in ctxs]
    assert [p.code for p in replayed] == [p.code for p in live]
    assert [p.summary for p in replayed] == [p.summary for p in live]
    assert [p.prompt_hash for p in replayed] == [p.prompt_hash for p in live]
    assert live[1].code != live[0].code


def test_make_researcher(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        offline = make_researcher("offline", seed=3)
    assert offline.offline and isinstance(offline, OfflineResearcher)
    assert "WITHOUT an LLM" in caplog.text
    with pytest.raises(AgentError, match="needs an LLM client"):
        make_researcher("gpt-4o")
    replay = make_researcher("gpt-4o", client=ReplayClient([]))
    assert not replay.offline
