"""Loop benchmark: how busy the evaluation slots stay, and what the orchestrator itself costs.

    python bench/loop.py [--iterations 24] [--delay 0.5] [--slots 2] [--proposal-concurrency 1,2,4]
                         [--sandbox docker]

A loopback OpenAI-compatible server answers every request after a fixed delay (the Researcher
gets a SEARCH/REPLACE diff, the Analyzer a JSON insight); the candidate takes about one second
to evaluate (tests/fixtures/fault_tasks/slow_task). For each proposal concurrency it prints:
the busy fraction of the evaluation slots between the seed's evaluation and the last commit
(target >= 0.9 at 2 slots), proposals per minute, and the orchestrator's own CPU time per
iteration (this process only: sandboxes run elsewhere). One JSON object on stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from openai_stub import OpenAIStub  # noqa: E402

from orchestrator.config import load_config  # noqa: E402
from orchestrator.log import configure  # noqa: E402
from orchestrator.runs import execute_run  # noqa: E402

TASK = REPO / "tests" / "fixtures" / "fault_tasks" / "slow_task"


def make_handler():
    counter = itertools.count(1)

    def handler(body: dict) -> str:
        system = body["messages"][0]["content"]
        if "analyse the results" in system:
            return '{"summary": "ok", "insights": []}'
        user = body["messages"][-1]["content"]
        match = re.search(r"^Y = ([-0-9.e]+)$", user, re.M)
        if match is None:
            return "no Y found"
        # A distinct value every time, so no proposal is a duplicate.
        new = -1.0 + 1.0 / (1 + next(counter))
        return f"<<<<<<< SEARCH\n{match.group(0)}\n=======\nY = {new!r}\n>>>>>>> REPLACE\n"

    return handler


def one(iterations: int, delay: float, slots: int, proposal_concurrency: int, sandbox: str) -> dict:
    events: list[tuple[float, dict]] = []
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp, \
            OpenAIStub(handler=make_handler(), delay_s=delay) as stub:
        settings = load_config({
            "store": Path(tmp) / "store.lmdb", "run_dir": Path(tmp) / "runs",
            "sandbox.backend": sandbox, "sandbox.concurrency": slots,
            "sandbox.candidate_images": "none", "llm.mode": "bench-model",
            "llm.base_url": stub.base_url, "llm.proposal_concurrency": proposal_concurrency,
            "budget.iterations": iterations, "search.sampler": "greedy",
        }, environ={}).settings
        cpu0 = time.process_time()
        run = execute_run(settings, str(TASK), on_progress=lambda info: events.append((time.monotonic(), info)))
        cpu = time.process_time() - cpu0
        researcher_calls = sum(1 for r in stub.requests if "analyse the results" not in r["messages"][0]["content"])
    seed_t, seed_info = next((t, i) for t, i in events if i["iteration"] == 0)
    end_t, end_info = events[-1]
    window = end_t - seed_t
    busy = end_info["slot_busy_s"] - seed_info["slot_busy_s"]
    return {
        "proposal_concurrency": proposal_concurrency,
        "iterations": run.iterations_done,
        "status": run.status,
        "busy_fraction": round(busy / (slots * window), 3) if window > 0 else None,
        "proposals_per_min": round(researcher_calls / (window / 60), 1) if window > 0 else None,
        "iterations_per_min": round(run.iterations_done / (window / 60), 1) if window > 0 else None,
        "orchestrator_cpu_ms_per_iteration": round(1000 * cpu / max(1, run.iterations_done + 1), 1),
        "window_s": round(window, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=24)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds the model takes per answer")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--proposal-concurrency", default="1,2,4")
    parser.add_argument("--sandbox", default="docker")
    args = parser.parse_args()
    os.environ.setdefault("EVOFORGE_EMBEDDER", "lexical")
    warnings.simplefilter("ignore")
    configure("error")
    rows = [one(args.iterations, args.delay, args.slots, int(k), args.sandbox)
            for k in args.proposal_concurrency.split(",")]
    print(json.dumps({
        "benchmark": "loop", "sandbox": args.sandbox, "slots": args.slots, "llm_delay_s": args.delay,
        "candidate": "slow_task (about 1 s per evaluation)", "target_busy_fraction": 0.9, "runs": rows,
    }, indent=2))


if __name__ == "__main__":
    main()
