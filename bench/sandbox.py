"""Sandbox benchmark: per-evaluation overhead of DockerSandbox vs a raw `docker run`, and
throughput with a 1-second candidate at concurrency 1, 2, 4. Prints one JSON object.

    python bench/sandbox.py [--repeats 10] [--jobs-per-slot 3]

overhead: wall time of a job whose evaluator returns at once (runner start, evaluator import,
create/start/wait/logs/remove) vs `docker run --rm --network none <cpu image> python3 -c pass`.
throughput: evaluations per minute of a candidate that sleeps 1 s in its child process, vs the
target slots * 60 / (1 s + raw overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.sandbox.base import Limits, SandboxJob  # noqa: E402
from orchestrator.sandbox.docker import DockerSandbox  # noqa: E402
from orchestrator.sandbox.images import resolve_image  # noqa: E402

TASK = REPO / "tests" / "fixtures" / "tasks" / "sandbox_probe"
LIMITS = Limits(cpus=1, memory_mb=512, pids=64, timeout_s=60, scratch_mb=32, output_kb=64)
ONE_SECOND = "import time\n\ndef main(seed=0):\n    time.sleep(1.0)\n    return 1.0\n"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 4)


def _job(mode: str, code: str = "def main(seed=0):\n    return 1.0\n") -> SandboxJob:
    return SandboxJob(image="cpu", task_dir=TASK, files={"program.py": code}, program="program.py",
                      stage="quick", seed=0, limits=LIMITS, env={"PROBE_MODE": mode, "PROBE_SLEEP": "0"},
                      run_id="bench", candidate_id="bench")


def raw_overhead(image: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", "--network", "none", image, "python3", "-c", "pass"],
                       check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


async def sandbox_overhead(sandbox: DockerSandbox, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = await sandbox.run(_job("busy"))
        times.append(time.perf_counter() - start)
        if result.status != "ok":
            raise SystemExit(f"benchmark job failed: {result}")
    return times


async def throughput(sandbox: DockerSandbox, slots: int, jobs: int) -> float:
    semaphore = asyncio.Semaphore(slots)

    async def one() -> None:
        async with semaphore:
            result = await sandbox.run(_job("call", ONE_SECOND))
            if result.status != "ok":
                raise SystemExit(f"benchmark job failed: {result}")

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(jobs)))
    return jobs * 60.0 / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--jobs-per-slot", type=int, default=3)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sandbox = DockerSandbox()
    image = resolve_image("cpu")
    raw_overhead(image, 2)  # warm the page cache
    await sandbox_overhead(sandbox, 2)
    raw = raw_overhead(image, args.repeats)
    ours = await sandbox_overhead(sandbox, args.repeats)
    raw_p50 = _pct(raw, 0.5)
    report = {
        "image": image,
        "repeats": args.repeats,
        "raw_docker_run_s": {"p50": raw_p50, "p95": _pct(raw, 0.95), "mean": round(statistics.mean(raw), 4)},
        "docker_sandbox_s": {"p50": _pct(ours, 0.5), "p95": _pct(ours, 0.95), "mean": round(statistics.mean(ours), 4)},
        "overhead_ratio_p50": round(_pct(ours, 0.5) / raw_p50, 3),
        "throughput_1s_candidate": {},
    }
    for slots in (1, 2, 4):
        rate = await throughput(sandbox, slots, slots * args.jobs_per_slot)
        target = slots * 60.0 / (1.0 + raw_p50)
        report["throughput_1s_candidate"][str(slots)] = {
            "evals_per_min": round(rate, 2), "target_per_min": round(target, 2), "ratio": round(rate / target, 3)}
    await sandbox.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
