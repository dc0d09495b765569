"""Analyzers: offline statistics over the run's history, and tolerant parsing of a model's JSON."""

from __future__ import annotations

import json

from agents_support import SEED, make_candidate, make_evaluation, make_task
from openai_stub import OpenAIStub

from agents.analyzer import (
    AnalysisContext,
    LLMAnalyzer,
    OfflineAnalyzer,
    make_analyzer,
    parse_analysis,
)
from agents.llm import LLMClient, ModelSpec


def child_of(parent, threshold: float, score: float | None, status: str = "ok"):
    code = parent.code.replace("THRESHOLD = 0.3", f"THRESHOLD = {threshold}")
    return make_candidate(code, score=score, parent_id=parent.id, iteration=1, status=status)


def ctx(task, cand, parent, history, evaluations=None) -> AnalysisContext:
    evaluations = evaluations or [make_evaluation(cand, score=cand.score)]
    best = max((c for c in history if c.score is not None), key=lambda c: c.score, default=None)
    return AnalysisContext(
        task=task,
        run_id="run-an",
        candidate=cand,
        evaluations=evaluations,
        parent=parent,
        best=best,
        history=history,
    )


def test_consistent_edit_effect_becomes_one_insight() -> None:
    task, analyzer = make_task(), OfflineAnalyzer()
    seed = make_candidate(SEED, score=0.50)
    scores = [(0.35, 0.52), (0.4, 0.53), (0.45, 0.51), (0.5, 0.49), (0.55, 0.54), (0.6, 0.56)]
    kids = [child_of(seed, t, s) for t, s in scores]

    early = analyzer.analyze_sync(ctx(task, kids[1], seed, [seed, kids[0]]))
    assert early.insights == []  # two children are not evidence
    assert (
        "scored 0.53" in early.summary
        and "+0.03" in early.summary
        and "THRESHOLD 0.3->0.4" in early.summary
    )

    out = analyzer.analyze_sync(ctx(task, kids[5], seed, [seed, *kids[:5]]))
    [ins] = out.insights
    assert "raising THRESHOLD (to 0.35..0.6) improved the score in 5 of 6 children" in ins.text
    assert ins.source == "analyzer" and ins.task == "toy" and ins.run_id == "run-an"
    assert set(ins.evidence) == {k.id for k in kids} and ins.id.startswith("ins-")
    assert ins.confidence == 0.75  # (5 + 1) / (6 + 2)
    assert "mean +0.0" in ins.text

    again = analyzer.analyze_sync(ctx(task, kids[5], seed, [seed, *kids[:5]]))
    assert again.insights == []  # said already; only grown evidence is worth repeating


def test_mixed_effects_give_no_insight_and_direction_is_respected() -> None:
    seed = make_candidate(SEED, score=0.50)
    mixed = [child_of(seed, t, s) for t, s in [(0.4, 0.6), (0.5, 0.4), (0.45, 0.61), (0.42, 0.39)]]
    assert (
        OfflineAnalyzer()
        .analyze_sync(ctx(make_task(), mixed[-1], seed, [seed, *mixed[:-1]]))
        .insights
        == []
    )

    # minimize: lower scores are better, so these raises "worsened" the score... until read right
    kids = [child_of(seed, t, s) for t, s in [(0.4, 0.45), (0.5, 0.44), (0.6, 0.40)]]
    out = OfflineAnalyzer().analyze_sync(
        ctx(make_task("minimize"), kids[-1], seed, [seed, *kids[:-1]])
    )
    [ins] = out.insights
    assert "improved the score in 3 of 3" in ins.text and "minimize" in ins.text
    out = OfflineAnalyzer().analyze_sync(
        ctx(make_task("maximize"), kids[-1], seed, [seed, *kids[:-1]])
    )
    assert "worsened the score in 3 of 3" in out.insights[0].text


def test_choice_edits_are_grouped_by_value() -> None:
    seed = make_candidate(SEED, score=0.50)
    kids = [
        make_candidate(
            SEED.replace('"loss"', '"margin"').replace("STEPS = 100", f"STEPS = {s}"),
            score=sc,
            parent_id=seed.id,
        )
        for s, sc in [(100, 0.6), (101, 0.62), (99, 0.58)]
    ]
    out = OfflineAnalyzer().analyze_sync(ctx(make_task(), kids[-1], seed, [seed, *kids[:-1]]))
    assert any(
        "setting MODE to 'margin' improved the score in 3 of 3" in i.text for i in out.insights
    )


def test_recurring_failures_are_reported_once_with_evidence() -> None:
    task, analyzer = make_task(), OfflineAnalyzer()
    seed = make_candidate(SEED, score=0.5)
    err = 'Traceback (most recent call last):\n  File "/x/program.py", line 9, in f\nZeroDivisionError: division by zero'
    failed = [child_of(seed, t, None, status="error") for t in (0.0, 0.01, 0.02)]
    outs = [
        analyzer.analyze_sync(
            ctx(task, f, seed, [seed], [make_evaluation(f, "error", None, error=err)])
        )
        for f in failed
    ]
    assert outs[0].insights == []
    assert "failed (error): ZeroDivisionError: division by zero" in outs[0].summary
    [ins] = outs[1].insights
    assert "'ZeroDivisionError: division by zero' recurred in 2 candidates" in ins.text
    assert "after editing THRESHOLD" in ins.text
    assert ins.evidence == [failed[0].id, failed[1].id] and ins.tags == ["offline", "failure"]
    assert outs[2].insights == []  # 3 is not enough growth over 2 to say it again


def test_parse_analysis_is_tolerant() -> None:
    reply = {
        "summary": "threshold helps",
        "insights": [{"claim": "raise it", "evidence": ["a", "b"], "confidence": 80}],
    }
    summary, items, problem = parse_analysis(
        "Here you go:\n```json\n" + json.dumps(reply) + "\n```\nthanks"
    )
    assert (summary, problem) == ("threshold helps", "")
    assert (
        items[0].claim == "raise it" and items[0].evidence == "a; b" and items[0].confidence == 0.8
    )
    summary, items, problem = parse_analysis(
        'Sure! {"summary": "s", "insights": ["plain text claim"]} done'
    )
    assert items[0].claim == "plain text claim" and problem == ""
    assert parse_analysis("{not json at all")[2] == "the reply was not a JSON object"
    assert parse_analysis('{"summary": "s", "insights": [{"no_claim": 1}]}')[2].startswith(
        "the JSON did not"
    )
    _, items, _ = parse_analysis(
        '{"summary": "s", "insights": [{"claim": "c", "confidence": "high"}]}'
    )
    assert items[0].confidence == 0.5


async def test_llm_analyzer_against_the_stub() -> None:
    seed = make_candidate(SEED, score=0.5)
    kid = child_of(seed, 0.45, 0.55)
    reply = json.dumps(
        {
            "summary": "raising the threshold helped",
            "insights": [
                {
                    "claim": "thresholds near 0.45 beat 0.3",
                    "evidence": f"{kid.id} vs {seed.id}",
                    "confidence": 0.7,
                }
            ],
        }
    )
    with OpenAIStub(script=[reply, "I cannot answer in JSON, sorry."]) as stub:
        client = LLMClient(
            base_url=stub.base_url, api_key=None, models=[ModelSpec("stub")], timeout_s=5
        )
        analyzer = make_analyzer("stub", client)
        assert isinstance(analyzer, LLMAnalyzer)
        out = await analyzer.analyze(ctx(make_task(), kid, seed, [seed]))
        bad = await analyzer.analyze(ctx(make_task(), kid, seed, [seed]))
        await client.close()
    [ins] = out.insights
    assert out.summary == "raising the threshold helped"
    assert ins.claim == "thresholds near 0.45 beat 0.3" and ins.confidence == 0.7
    assert ins.evidence == [kid.id, seed.id] and ins.source == "analyzer" and ins.task == "toy"
    assert out.llm_calls[0].role == "analyzer" and out.llm_calls[0].candidate_id == kid.id
    prompt = stub.requests[0]["messages"][1]["content"]
    assert (
        "+THRESHOLD = 0.45" in prompt
        and "-THRESHOLD = 0.3" in prompt
        and "Parent score: 0.5" in prompt
    )
    assert bad.insights == [] and "not a JSON object" in bad.summary and len(bad.llm_calls) == 1


def test_make_analyzer_offline() -> None:
    assert isinstance(make_analyzer("offline"), OfflineAnalyzer)
