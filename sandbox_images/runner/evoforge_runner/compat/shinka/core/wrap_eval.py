"""`run_shinka_eval` with ShinkaEvolve's signature and outputs (`metrics.json`, `correct.json`).

Runs `experiment_fn_name` of the program `num_runs` times (kwargs from
`get_experiment_kwargs(run_index)`, else `{"seed": run_index + 1}`), validates each result
with `validate_fn`, aggregates with `aggregate_metrics_fn`, adds `execution_time_mean/std`
(and the validation counts), and writes both JSON files. Differences from the real one:
runs are sequential (`run_workers` is accepted and ignored), early stopping and plotting
arguments are accepted and ignored, and `extra_data` is dropped instead of pickled.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

DEFAULT_METRICS_ON_ERROR: dict[str, Any] = {
    "combined_score": 0.0,
    "execution_time_mean": 0.0,
    "execution_time_std": 0.0,
    "num_successful_runs": 0,
    "num_valid_runs": 0,
    "num_invalid_runs": 0,
    "all_validation_errors": [],
}


def load_program(program_path: str) -> Any:
    """Import the program file as a module named `program`."""
    spec = importlib.util.spec_from_file_location("program", program_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Could not load spec for module at {program_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_json_results(results_dir: str, metrics: dict[str, Any], correct: bool, error: str | None = None) -> None:
    """Write `correct.json` ({"correct", "error"}) and `metrics.json` into `results_dir`."""
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "correct.json"), "w") as fh:
        json.dump({"correct": correct, "error": error}, fh, indent=4)
    with open(os.path.join(results_dir, "metrics.json"), "w") as fh:
        json.dump(metrics, fh, indent=4)


def run_shinka_eval(
    program_path: str,
    results_dir: str,
    experiment_fn_name: str,
    num_runs: int,
    get_experiment_kwargs: Callable[[int], dict[str, Any]] | None = None,
    aggregate_metrics_fn: Callable[[list[Any]], dict[str, Any]] | None = None,
    validate_fn: Callable[[Any], tuple[bool, str | None]] | None = None,
    plotting_fn: Callable[[Any], list[Any]] | None = None,
    default_metrics_on_error: dict[str, Any] | None = None,
    early_stop_method: Any = None,
    early_stop_threshold: float | None = None,
    early_stop_score_fn: Callable[[Any], float] | None = None,
    early_stop_kwargs: dict[str, Any] | None = None,
    run_workers: int = 1,
    max_workers_cap: int | None = None,
) -> tuple[dict[str, Any], bool, str | None]:
    """Returns (metrics, all runs correct, first error message) and writes the JSON files."""
    defaults = dict(default_metrics_on_error or DEFAULT_METRICS_ON_ERROR)
    correct = True
    first_error: str | None = None
    validation_errors: list[str] = []
    num_valid = num_invalid = 0
    results: list[Any] = []
    times: list[float] = []
    try:
        module = load_program(program_path)
        if not hasattr(module, experiment_fn_name):
            raise AttributeError(f"Experiment function '{experiment_fn_name}' not found in {program_path}")
        experiment = getattr(module, experiment_fn_name)
        for i in range(num_runs):
            kwargs = get_experiment_kwargs(i) if get_experiment_kwargs else {"seed": i + 1}
            started = time.perf_counter()
            result = experiment(**kwargs)
            times.append(time.perf_counter() - started)
            results.append(result)
            if validate_fn is not None:
                ok, message = validate_fn(result)
                if ok:
                    num_valid += 1
                else:
                    num_invalid += 1
                    correct = False
                    if message:
                        first_error = first_error or f"Validation failed: {message}"
                        if message not in validation_errors:
                            validation_errors.append(message)
        if aggregate_metrics_fn is not None:
            metrics = aggregate_metrics_fn(results)
        else:
            metrics = {"num_successful_runs": len(results),
                       "first_run_result_type": str(type(results[0])) if results else "N/A",
                       "raw_results_preview": str(results[:2]) if results else "N/A"}
        metrics["execution_time_mean"] = statistics.fmean(times) if times else 0.0
        metrics["execution_time_std"] = statistics.pstdev(times) if times else 0.0
        if validate_fn is not None:
            metrics["num_valid_runs"] = num_valid
            metrics["num_invalid_runs"] = num_invalid
            metrics["all_validation_errors"] = validation_errors
    except Exception as exc:  # noqa: BLE001 - Shinka records the error and writes the files
        print(f"Evaluation error: {exc}")
        metrics = {key: defaults.get(key, value) for key, value in DEFAULT_METRICS_ON_ERROR.items()}
        first_error = str(exc)
        correct = False
    metrics.pop("extra_data", None)
    save_json_results(results_dir, metrics, correct, first_error)
    return metrics, correct, first_error
