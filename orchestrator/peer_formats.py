"""OpenEvolve and ShinkaEvolve task folders, read as they are into a `TaskSpec`.

    OpenEvolve   initial_program.<ext> + evaluator.py (evaluate, optional evaluate_stage1/2/3)
                 + optional config.yaml
    ShinkaEvolve initial.<ext> + evaluate.py (run as `--program_path P --results_dir R`)

`detect_peer_task(folder)` is called by `orchestrator.task.load_task` for a folder without
`task.yaml`. Nothing of the folder is executed here: the evaluator's cascade functions are
found by parsing its source. The run itself goes through the trusted runner with
`--format openevolve|shinka` (`sandbox_images/runner/evoforge_runner/peers.py`).

OpenEvolve's `config.yaml` maps onto our task where keys correspond (iterations, diff mode,
timeouts, cascade, resources, MAP-Elites features, task description) and onto our run
settings (models, temperatures, seed, islands, concurrency) as dotted keys in
`spec.extra["peer"]["settings"]`; every other key is listed in
`spec.extra["peer"]["unmapped_keys"]` and logged, never silently dropped.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import TaskError
from orchestrator.log import get_logger
from orchestrator.task import Metric, Resources, Stage, TaskSpec

log = get_logger("evoforge.peer_formats")

#: OpenEvolve's defaults (openevolve/config.py) where its config.yaml is silent.
OPENEVOLVE_TIMEOUT_S = 300.0
OPENEVOLVE_CASCADE_THRESHOLDS = (0.5, 0.75, 0.9)
#: ShinkaEvolve evaluations have no per-folder timeout; one generous stage.
SHINKA_TIMEOUT_S = 600.0
OPENEVOLVE_CONFIG = "config.yaml"
REQUIREMENTS = "requirements.txt"
#: `TaskSpec.image` prefix that `images.resolve_image` turns into a derived image.
DERIVED_IMAGE_PREFIX = "requirements:"
#: MAP-Elites dimensions OpenEvolve computes itself (not metrics of the evaluator).
_BUILTIN_FEATURES = {"complexity", "diversity", "score"}
#: Folders whose unmapped keys were already logged (a folder is loaded several times per run).
_warned: set[str] = set()


@dataclass
class ConfigMapping:
    """What an OpenEvolve config.yaml says, in our terms."""

    task: dict[str, Any] = field(default_factory=dict)  # TaskSpec fields
    settings: dict[str, Any] = field(default_factory=dict)  # dotted keys of orchestrator.config.Settings
    timeout_s: float = OPENEVOLVE_TIMEOUT_S
    cascade: bool = True
    thresholds: tuple[float, ...] = OPENEVOLVE_CASCADE_THRESHOLDS
    unmapped: list[str] = field(default_factory=list)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TaskError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TaskError(f"{path} must be a mapping of keys, got {type(raw).__name__}")
    return raw


def _section(raw: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise TaskError(f"{path}: `{key}` must be a mapping, got {type(value).__name__}")
    return value


def _models(llm: dict[str, Any]) -> list[dict[str, Any]]:
    """llm.models / primary_model + secondary_model, shared temperature and max_tokens applied."""
    shared = {k: llm[k] for k in ("temperature", "max_tokens") if llm.get(k) is not None}
    models = []
    for entry in llm.get("models") or []:
        if isinstance(entry, dict) and entry.get("name"):
            model = {"name": str(entry["name"]), "weight": float(entry.get("weight") or 1.0), **shared}
            model.update({k: entry[k] for k in ("temperature", "max_tokens") if entry.get(k) is not None})
            models.append(model)
    if llm.get("primary_model"):
        models.append({"name": str(llm["primary_model"]), "weight": float(llm.get("primary_model_weight") or 1.0),
                       **shared})
    secondary_weight = llm.get("secondary_model_weight")
    if llm.get("secondary_model") and (secondary_weight is None or secondary_weight > 0):
        models.append({"name": str(llm["secondary_model"]),
                       "weight": float(0.2 if secondary_weight is None else secondary_weight), **shared})
    return models


def map_openevolve_config(raw: dict[str, Any], path: Path = Path(OPENEVOLVE_CONFIG)) -> ConfigMapping:
    """Map an OpenEvolve config onto our task fields and settings; list what has no counterpart."""
    out = ConfigMapping()
    consumed: set[str] = set()

    def take(dotted: str) -> Any:
        consumed.add(dotted)
        node: Any = raw
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    if (v := take("max_iterations")) is not None:
        out.task["iterations"] = int(v)
    if (v := take("diff_based_evolution")) is not None:
        out.task["edit_mode"] = "diff" if v else "full"
    if (v := take("random_seed")) is not None:
        out.settings["seed"] = int(v)
    take("language")
    take("file_suffix")  # both used to find the initial program

    llm = _section(raw, "llm", path)
    models = _models(llm)
    for key in ("models", "primary_model", "primary_model_weight", "secondary_model",
                "secondary_model_weight", "temperature", "max_tokens"):
        take(f"llm.{key}")
    if models:
        out.settings["llm.models"] = models
    if (v := take("llm.api_base")) is not None:
        out.settings["llm.base_url"] = str(v)
    if (v := take("llm.timeout")) is not None:
        out.settings["llm.timeout_s"] = float(v)
    if (v := take("llm.retries")) is not None:
        out.settings["llm.max_retries"] = int(v)

    _section(raw, "evaluator", path)
    if (v := take("evaluator.timeout")) is not None:
        out.timeout_s = float(v)
    if (v := take("evaluator.cascade_evaluation")) is not None:
        out.cascade = bool(v)
    if (v := take("evaluator.cascade_thresholds")) is not None:
        out.thresholds = tuple(float(t) for t in v)
    resources: dict[str, Any] = {}
    if (v := take("evaluator.memory_limit_mb")) is not None:
        resources["memory_mb"] = int(v)
    if (v := take("evaluator.cpu_limit")) is not None:
        resources["cpus"] = float(v)
    if resources:
        out.task["resources"] = Resources(**resources)
    if (v := take("evaluator.parallel_evaluations")) is not None:
        out.settings["sandbox.concurrency"] = int(v)

    _section(raw, "database", path)
    if (v := take("database.num_islands")) is not None:
        out.settings["search.num_islands"] = int(v)
    if (v := take("database.feature_dimensions")) is not None:
        custom = [str(d) for d in v if str(d) not in _BUILTIN_FEATURES]
        if custom:
            out.task["features"] = custom
    if (v := take("database.random_seed")) is not None and "seed" not in out.settings:
        out.settings["seed"] = int(v)

    _section(raw, "prompt", path)
    if isinstance(v := take("prompt.system_message"), str) and v.strip():
        out.task["description"] = v.strip()

    out.unmapped = _leaves(raw, consumed)
    return out


def _leaves(raw: dict[str, Any], consumed: set[str]) -> list[str]:
    """Dotted keys of `raw` (two levels deep) that no mapping consumed."""
    keys = []
    for key, value in raw.items():
        if isinstance(value, dict) and value:
            keys += [f"{key}.{sub}" for sub in value if f"{key}.{sub}" not in consumed]
        elif key not in consumed:
            keys.append(str(key))
    return sorted(keys)


def _top_level_functions(source_path: Path) -> set[str]:
    try:
        tree = ast.parse(source_path.read_text(), filename=str(source_path))
    except SyntaxError as exc:
        raise TaskError(f"{source_path} does not parse: {exc.msg} (line {exc.lineno}): fix the evaluator") from exc
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def _initial_program(folder: Path, stem: str, suffix: str | None = None) -> Path | None:
    if suffix:
        named = folder / f"{stem}{suffix if suffix.startswith('.') else '.' + suffix}"
        if named.is_file():
            return named
    found = sorted(p for p in folder.glob(f"{stem}.*") if p.is_file() and p.suffix not in (".pyc", ".orig"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise TaskError(f"{folder} holds several initial programs ({names}): keep one, or name it with "
                        "`file_suffix:` in config.yaml")
    return found[0] if found else None


def _image(folder: Path) -> str:
    requirements = folder / REQUIREMENTS
    return f"{DERIVED_IMAGE_PREFIX}{requirements}" if requirements.is_file() else "cpu"


def _openevolve_stages(functions: set[str], mapping: ConfigMapping) -> list[Stage]:
    cascade = [f"stage{i}" for i in (1, 2, 3) if f"evaluate_stage{i}" in functions]
    # OpenEvolve stops at the first missing stage function (stage2 without stage1 never runs).
    cascade = [name for i, name in enumerate(cascade, 1) if name == f"stage{i}"]
    if not mapping.cascade or not cascade:
        return [Stage(name="evaluate", timeout_s=mapping.timeout_s)]
    stages = []
    for i, name in enumerate(cascade):
        last = i == len(cascade) - 1
        threshold = None if last or i >= len(mapping.thresholds) else mapping.thresholds[i]
        stages.append(Stage(name=name, timeout_s=mapping.timeout_s, threshold=threshold))
    return stages


def openevolve_spec(folder: Path) -> TaskSpec | None:
    evaluator = folder / "evaluator.py"
    config_path = folder / OPENEVOLVE_CONFIG
    raw = _read_yaml(config_path) if config_path.is_file() else {}
    initial = _initial_program(folder, "initial_program", raw.get("file_suffix"))
    if initial is None or not evaluator.is_file():
        return None
    functions = _top_level_functions(evaluator)
    if "evaluate" not in functions:
        raise TaskError(f"{evaluator} defines no top-level evaluate(program_path): OpenEvolve requires it")
    mapping = map_openevolve_config(raw, config_path)
    if mapping.unmapped and str(folder) not in _warned:
        _warned.add(str(folder))
        log.warning("openevolve config keys with no evoforge counterpart (ignored)",
                    folder=str(folder), keys=mapping.unmapped)
    fields: dict[str, Any] = {
        "name": folder.name,
        "description": f"OpenEvolve task folder {folder.name}",
        "image": _image(folder),
        "program": initial.name,
        "metric": Metric(key="combined_score", direction="maximize"),
        "stages": _openevolve_stages(functions, mapping),
        "priors": None,
        "format": "openevolve",
        "extra": {"peer": {"format": "openevolve", "evaluator": evaluator.name,
                           "config": config_path.name if config_path.is_file() else None,
                           "settings": mapping.settings, "unmapped_keys": mapping.unmapped}},
    }
    fields.update(mapping.task)
    return TaskSpec(**fields)


def shinka_spec(folder: Path) -> TaskSpec | None:
    evaluate = folder / "evaluate.py"
    initial = _initial_program(folder, "initial")
    if initial is None or not evaluate.is_file():
        return None
    _top_level_functions(evaluate)  # a syntax error is reported now, not per candidate
    return TaskSpec(
        name=folder.name,
        description=f"ShinkaEvolve task folder {folder.name}",
        image=_image(folder),
        program=initial.name,
        metric=Metric(key="combined_score", direction="maximize"),
        stages=[Stage(name="evaluate", timeout_s=SHINKA_TIMEOUT_S)],
        priors=None,
        format="shinka",
        extra={"peer": {"format": "shinka", "evaluator": evaluate.name, "settings": {}, "unmapped_keys": []}},
    )


def detect_peer_task(folder: Path) -> TaskSpec | None:
    """The spec of an OpenEvolve or ShinkaEvolve folder, None when it is neither. Raises
    `TaskError` for a folder that is recognisably one of them but broken."""
    folder = Path(folder)
    return openevolve_spec(folder) or shinka_spec(folder)


def peer_settings(spec: TaskSpec) -> dict[str, Any]:
    """Run settings a peer config asks for, as dotted keys of `orchestrator.config.Settings`
    (lowest precedence: evoforge.yaml, environment and flags override them)."""
    peer = spec.extra.get("peer") or {}
    return dict(peer.get("settings") or {})
