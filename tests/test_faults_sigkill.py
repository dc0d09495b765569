"""The driver SIGKILLed at random points, five times in a row, each time resumed: nothing paid
for is lost and nothing is done twice. The result equals a run that was never killed.

The kill points are drawn from a seeded rng (printed on failure; set EVOFORGE_FAULT_SEED to
replay one): some land while iterations commit, some while a resumed driver is still starting.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from loop_support import (
    LOOP_TASK,
    assert_each_evaluated_once,
    cli_run,
    done_count,
    first_run_id,
    run_summary,
)

ITERATIONS = "24"
KILLS = 5


def test_five_random_sigkills_then_resume_equal_a_clean_run(tmp_path: Path) -> None:
    fault_seed = int(os.environ.get("EVOFORGE_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(fault_seed)
    where = f"(EVOFORGE_FAULT_SEED={fault_seed})"

    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref = cli_run(ref_dir, str(LOOP_TASK), "--iterations", ITERATIONS, "--seed", "11")

    kill_dir = tmp_path / "kill"
    kill_dir.mkdir()
    store_path = kill_dir / "store.lmdb"
    proc = cli_run(kill_dir, str(LOOP_TASK), "--iterations", ITERATIONS, "--seed", "11")
    run_id: str | None = None
    kills: list[tuple[int, int, float]] = []
    for k in range(KILLS):
        # The first kill must find a run in the store to resume; later ones may land anywhere,
        # even before the resumed driver has committed anything.
        start_done = done_count(store_path, run_id)
        target = start_done + (max(1, rng.randint(0, 3)) if k == 0 else rng.randint(0, 3))
        pause = rng.uniform(0.0, 0.4)
        deadline = time.monotonic() + 240
        while done_count(store_path, run_id) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(pause)
        assert proc.poll() is None, f"the run finished before kill {k + 1} {where}:\n{proc.communicate()[0][-3000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills.append((k + 1, target, round(pause, 3)))
        run_id = run_id or first_run_id(store_path)
        assert run_id is not None, f"no run stored before kill {k + 1} {where}"
        proc = cli_run(kill_dir, "--resume", run_id)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{where} kills={kills}\n{out[-3000:]}"

    ref_out, _ = ref.communicate(timeout=600)
    assert ref.returncode == 0, ref_out[-3000:]
    ref_id = first_run_id(ref_dir / "store.lmdb")
    assert ref_id is not None

    got, got_run = run_summary(store_path, run_id)
    want, ref_run = run_summary(ref_dir / "store.lmdb", ref_id)
    assert len(got) == int(ITERATIONS) + 1, f"{where} kills={kills}: {len(got)} candidates"
    assert got == want, f"the killed run differs from the clean one {where} kills={kills}"
    assert got_run.status == ref_run.status == "finished"
    assert got_run.iterations_done == ref_run.iterations_done == int(ITERATIONS)
    assert (got_run.best_score, got_run.seed_score) == (ref_run.best_score, ref_run.seed_score)
    n_evals = assert_each_evaluated_once(store_path, run_id)
    assert n_evals == assert_each_evaluated_once(ref_dir / "store.lmdb", ref_id)
