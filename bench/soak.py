"""Soak benchmark: a long offline run of a fast task on the Docker sandbox. Prints one JSON object.

    python bench/soak.py [--iterations 500] [--concurrency 2] [--sandbox docker] [--warmup 50]

Figures: iterations per minute; the orchestrator's resident memory (this process: the loop,
the store, the sandbox client) at the start, after warm-up and at the end, and the end's drift
from the warm-up figure; containers of the run left behind (must be 0); the store's size.
The embedder is the lexical one unless EVOFORGE_EMBEDDER says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.config import load_config  # noqa: E402
from orchestrator.log import configure  # noqa: E402
from orchestrator.runs import execute_run  # noqa: E402

TASK = REPO / "tests" / "fixtures" / "fault_tasks" / "fast_task"


def rss_mb() -> float:
    """This process's resident set size, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def containers_left(run_id: str) -> int:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=evoforge.managed=1", "--filter", f"label=evoforge.run={run_id}"],
        capture_output=True, text=True, timeout=60,
    )
    return len(out.stdout.split())


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--sandbox", default="docker", choices=["docker", "process"])
    ap.add_argument("--warmup", type=int, default=50, help="iterations before the reference memory figure")
    ap.add_argument("--workdir", type=Path, default=None, help="store and run folder (default: a temp dir)")
    args = ap.parse_args()
    os.environ.setdefault("EVOFORGE_EMBEDDER", "lexical")
    warnings.simplefilter("ignore")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="evoforge-soak-"))
    settings = load_config({
        "store": work / "store.lmdb", "run_dir": work / "runs", "sandbox.backend": args.sandbox,
        "sandbox.concurrency": args.concurrency, "sandbox.candidate_images": "none",
        "budget.iterations": args.iterations, "log_level": "warning",
    }).settings
    configure(settings.log_level)

    samples: dict[str, float] = {"start": rss_mb()}
    t0 = time.monotonic()
    warm: dict[str, float] = {}

    def on_progress(info: dict) -> None:
        if "warm" not in samples and info["done"] >= args.warmup:
            samples["warm"] = rss_mb()
            warm["t"], warm["done"] = time.monotonic(), info["done"]

    run = execute_run(settings, str(TASK), on_progress=on_progress)
    elapsed = time.monotonic() - t0
    samples["end"] = rss_mb()
    from cognition.store import CognitionStore  # noqa: PLC0415

    stats = CognitionStore.open(settings.store, readonly=True).stats()
    steady = None
    if warm:
        steady = round((run.iterations_done - warm["done"]) / max(1e-9, (time.monotonic() - warm["t"]) / 60), 2)
    ref = samples.get("warm", samples["start"])
    print(json.dumps({
        "run": run.id, "status": run.status, "sandbox": args.sandbox, "concurrency": args.concurrency,
        "iterations": run.iterations_done, "wall_s": round(elapsed, 1),
        "iterations_per_min": round(run.iterations_done / (elapsed / 60), 2),
        "iterations_per_min_after_warmup": steady,
        "rss_mb": {"start": samples["start"], "after_warmup": samples.get("warm"), "end": samples["end"]},
        "rss_end_vs_warmup_pct": round(100 * (samples["end"] - ref) / ref, 1),
        "containers_left": containers_left(run.id) if args.sandbox == "docker" else 0,
        "store_bytes": {"data": stats["data_bytes"], "blobs": stats["blob_bytes"], "dir": dir_bytes(settings.store)},
        "store_entries": stats["entries"], "best_score": run.best_score, "seed_score": run.seed_score,
    }, indent=2))


if __name__ == "__main__":
    main()
