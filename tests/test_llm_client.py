"""The real `openai` client against a real loopback server: retries, timeouts, budgets,
accounting, recording, and replay without a server."""

from __future__ import annotations

import pytest
from openai_stub import OpenAIStub, Reply

from agents.errors import LLMBudgetExceeded, LLMError
from agents.llm import LLMBudget, LLMClient, ModelSpec, ReplayClient, price_table

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say hello to me"}]


def client_for(stub: OpenAIStub, **kw) -> LLMClient:
    kw.setdefault("models", [ModelSpec("gpt-4o-mini")])
    kw.setdefault("timeout_s", 5)
    return LLMClient(base_url=stub.base_url, api_key=None, **kw)


async def test_call_is_recorded_with_usage_and_cost() -> None:
    with OpenAIStub(script=[Reply("hello there", usage=(1000, 500))]) as stub:
        client = client_for(stub)
        text, call = await client.chat(MSGS, role="researcher", run_id="r1", candidate_id="c1")
        await client.close()
    assert text == "hello there"
    assert stub.requests[0]["model"] == "gpt-4o-mini"
    assert stub.requests[0]["messages"] == MSGS
    assert (call.prompt_tokens, call.completion_tokens) == (1000, 500)
    p_in, p_out = price_table()["gpt-4o-mini"]
    assert call.cost_usd == pytest.approx((1000 * p_in + 500 * p_out) / 1e6)
    assert client.tokens_used == 1500 and client.calls == 1
    assert client.cost_usd == pytest.approx(call.cost_usd)
    assert call.seq == 1 and call.run_id == "r1" and call.candidate_id == "c1"
    assert call.prompt == MSGS and call.error == "" and call.latency_s > 0


async def test_429_retry_after_is_honoured() -> None:
    # Retry-After 1.2 s is longer than the client's own first backoff (<= 0.5 s).
    script = [Reply(status=429, headers={"Retry-After": "1.2"}), "after the wait"]
    with OpenAIStub(script=script) as stub:
        client = client_for(stub)
        text, call = await client.chat(MSGS, role="researcher", run_id="r")
        await client.close()
    assert text == "after the wait" and call.error == ""
    assert len(stub.requests) == 2
    assert stub.request_times[1] - stub.request_times[0] >= 1.1


async def test_500_is_retried_then_succeeds() -> None:
    with OpenAIStub(script=[Reply(status=500), Reply(status=503), "ok now"]) as stub:
        client = client_for(stub)
        text, _ = await client.chat(MSGS, role="analyzer", run_id="r")
        await client.close()
    assert text == "ok now" and len(stub.requests) == 3 and client.calls == 1


async def test_timeout_then_success() -> None:
    with OpenAIStub(script=[Reply("too late", delay_s=1.5), "in time"]) as stub:
        client = client_for(stub, timeout_s=0.3, max_retries=2)
        text, _ = await client.chat(MSGS, role="researcher", run_id="r")
        await client.close()
    assert text == "in time" and len(stub.requests) == 2


async def test_failure_after_retries_raises_and_records() -> None:
    with OpenAIStub(script=[Reply(status=500)] * 2) as stub:
        client = client_for(stub, max_retries=1)
        with pytest.raises(LLMError) as err:
            await client.chat(MSGS, role="researcher", run_id="r")
        await client.close()
    assert len(stub.requests) == 2
    assert "HTTP 500" in str(err.value)
    [call] = err.value.llm_calls
    assert call.response == "" and "500" in call.error and call.seq == 1
    assert client.calls_log == [call]


async def test_non_retryable_status_fails_at_once() -> None:
    with OpenAIStub(script=[Reply(status=401), "never"]) as stub:
        client = client_for(stub, max_retries=3)
        with pytest.raises(LLMError, match="401"):
            await client.chat(MSGS, role="researcher", run_id="r")
        await client.close()
    assert len(stub.requests) == 1


async def test_token_budget_stops_calls_before_they_are_made() -> None:
    with OpenAIStub(
        script=[Reply("one", usage=(900, 60)), Reply("two", usage=(20, 15)), "three"]
    ) as stub:
        # 960 used + ~14 for the next prompt fits under 1000; the third call would not.
        client = client_for(stub, budget=LLMBudget(max_tokens=1000))
        await client.chat(MSGS, role="researcher", run_id="r")
        await client.chat(MSGS, role="researcher", run_id="r")
        with pytest.raises(LLMBudgetExceeded, match="token budget"):
            await client.chat(MSGS, role="researcher", run_id="r")
        await client.close()
    assert len(stub.requests) == 2 and client.calls == 2 and client.tokens_used == 995


async def test_dollar_budget_uses_model_spec_prices() -> None:
    expensive = ModelSpec("local-model", price_in_per_mtok=1000.0, price_out_per_mtok=1000.0)
    with OpenAIStub(script=[Reply("one", usage=(100, 100)), "two"]) as stub:
        client = client_for(stub, models=[expensive], budget=LLMBudget(max_usd=0.15))
        _, call = await client.chat(MSGS, role="researcher", run_id="r")
        assert call.cost_usd == pytest.approx(0.2)
        with pytest.raises(LLMBudgetExceeded, match="dollar budget"):
            await client.chat(MSGS, role="researcher", run_id="r")
        await client.close()
    assert len(stub.requests) == 1


async def test_weighted_models_are_picked_by_seeded_rng() -> None:
    models = [ModelSpec("big", weight=1.0), ModelSpec("small", weight=4.0)]

    async def picks(seed: int) -> list[str]:
        with OpenAIStub(handler=lambda body: f"from {body['model']}") as stub:
            client = client_for(stub, models=models, seed=seed)
            out = [
                (await client.chat(MSGS, role="researcher", run_id="r"))[1].model for _ in range(40)
            ]
            await client.close()
            assert [r["model"] for r in stub.requests] == out
        return out

    first, again = await picks(7), await picks(7)
    assert first == again
    assert set(first) == {"big", "small"} and first.count("small") > first.count("big")
    with OpenAIStub(handler=lambda body: body["model"]) as stub:
        client = client_for(stub, models=models)
        text, call = await client.chat(MSGS, role="researcher", run_id="r", model="big")
        await client.close()
    assert text == "big" and call.model == "big"


async def test_replay_reproduces_calls_without_a_server() -> None:
    other = [{"role": "user", "content": "analyse"}]
    with OpenAIStub(handler=lambda body: "reply to " + body["messages"][-1]["content"]) as stub:
        client = client_for(stub)
        live = [
            await client.chat(MSGS, role="researcher", run_id="r"),
            await client.chat(other, role="analyzer", run_id="r"),
            await client.chat(MSGS, role="researcher", run_id="r"),
        ]
        await client.close()
    recorded = [call for _, call in live]
    assert [c.seq for c in recorded] == [1, 2, 3]

    replay = ReplayClient(list(reversed(recorded)))  # order comes from seq, not list order
    a = await replay.chat(other, role="analyzer", run_id="r2")
    r1 = await replay.chat(MSGS, role="researcher", run_id="r2")
    r2 = await replay.chat(MSGS, role="researcher", run_id="r2")
    assert [a[0], r1[0], r2[0]] == [live[1][0], live[0][0], live[2][0]]
    assert r1[1].run_id == "r2" and r1[1].cost_usd == 0.0
    with pytest.raises(LLMError, match="ran out of recorded researcher calls"):
        await replay.chat(MSGS, role="researcher", run_id="r2")

    strict = ReplayClient(recorded)
    changed = [MSGS[0], {"role": "user", "content": "say goodbye to me"}]
    with pytest.raises(LLMError) as err:
        await strict.chat(changed, role="researcher", run_id="r2")
    assert "message 1 (user) differs at char 4" in str(err.value)


async def test_replay_replays_recorded_failures() -> None:
    with OpenAIStub(script=[Reply(status=500)]) as stub:
        client = client_for(stub, max_retries=0)
        with pytest.raises(LLMError) as err:
            await client.chat(MSGS, role="researcher", run_id="r")
        await client.close()
    replay = ReplayClient(err.value.llm_calls)
    with pytest.raises(LLMError, match="replayed failure"):
        await replay.chat(MSGS, role="researcher", run_id="r2")


def test_price_table_and_prefix_lookup() -> None:
    table = price_table()
    assert table["gpt-4o"][0] > table["gpt-4o-mini"][0] > 0
    assert ModelSpec("gpt-4o-mini-2024-07-18").prices() == table["gpt-4o-mini"]
    assert ModelSpec("openai/gpt-4.1").prices() == table["gpt-4.1"]
    assert ModelSpec("my-local-llama").prices() == (0.0, 0.0)
    assert ModelSpec("x", price_in_per_mtok=1, price_out_per_mtok=2).prices() == (1, 2)


def test_no_models_is_an_error() -> None:
    with pytest.raises(LLMError, match="no models"):
        LLMClient(base_url="http://127.0.0.1:1/v1", api_key=None, models=[])
