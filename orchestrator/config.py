"""Effective configuration: defaults < `evoforge.yaml` < environment < CLI flags.

Every value remembers where it came from, so `evolve config show` can say why it is what it is.
Unknown keys and wrong types are errors that name the key and the source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from orchestrator.errors import ConfigError

DEFAULT_CONFIG_FILE = "evoforge.yaml"
ENV_PREFIX = "EVOFORGE_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Section):
    name: str
    weight: float = Field(default=1.0, gt=0)
    temperature: float = Field(default=0.7, ge=0)
    max_tokens: int = Field(default=4096, gt=0)
    price_in_per_mtok: float | None = None
    price_out_per_mtok: float | None = None


class LLMConfig(_Section):
    mode: str = "offline"  # "offline", a model name, or "replay:RUN"
    base_url: str | None = None
    api_key: SecretStr | None = None
    models: list[ModelConfig] = Field(default_factory=list)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    proposal_concurrency: int = Field(default=2, ge=1)
    repair_attempts: int = Field(default=1, ge=0)


class SandboxConfig(_Section):
    backend: Literal["docker", "process", "modal"] = "docker"
    concurrency: int = Field(default=2, ge=1)
    candidate_images: Literal["all", "improving", "best", "none"] = "best"
    modal_gpu: str = "H100"


class BudgetConfig(_Section):
    iterations: int | None = Field(default=None, ge=1)
    wall_s: float | None = Field(default=None, gt=0)
    tokens: int | None = Field(default=None, ge=1)
    usd: float | None = Field(default=None, ge=0)
    gpu_s: float | None = Field(default=None, ge=0)


class SearchConfig(_Section):
    sampler: Literal["ucb1", "greedy", "random", "islands", "map_elites"] = "islands"
    num_islands: int = Field(default=3, ge=1)
    num_inspirations: int = Field(default=2, ge=0)
    insights_k: int = Field(default=5, ge=0)
    novelty_threshold: float = Field(default=0.995, gt=0, le=1)


class Settings(_Section):
    store: Path = Path(".evoforge/cognition.lmdb")
    run_dir: Path = Path(".evoforge/runs")
    seed: int = 0
    scale: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    llm: LLMConfig = LLMConfig()
    sandbox: SandboxConfig = SandboxConfig()
    budget: BudgetConfig = BudgetConfig()
    search: SearchConfig = SearchConfig()


#: Environment variables outside our prefix that users already set for OpenAI-compatible clients.
_WELL_KNOWN_ENV = {
    "OPENAI_API_KEY": "llm.api_key",
    "OPENAI_BASE_URL": "llm.base_url",
}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = nested
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _known_keys() -> set[str]:
    keys: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
            else:
                keys.add(f"{prefix}{name}")

    walk(Settings, "")
    return keys


def _check_keys(flat: dict[str, Any], source: str) -> None:
    known = _known_keys()
    for key in flat:
        if key not in known:
            close = sorted(k for k in known if k.split(".")[-1] == key.split(".")[-1])
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown configuration key {key!r} in {source}{hint}")


def _env_values(environ: dict[str, str]) -> dict[str, tuple[Any, str]]:
    """EVOFORGE_SANDBOX__BACKEND=process -> sandbox.backend; EVOFORGE_SEED=3 -> seed."""
    found: dict[str, tuple[Any, str]] = {}
    for name, value in environ.items():
        if name in _WELL_KNOWN_ENV and value:
            found[_WELL_KNOWN_ENV[name]] = (value, f"env {name}")
        elif name.startswith(ENV_PREFIX) and name not in _IGNORED_ENV:
            key = name[len(ENV_PREFIX):].lower().replace("__", ".")
            found[key] = (_parse_env(value), f"env {name}")
    return found


# Variables with our prefix that are not settings (test switches, paths for helpers).
_IGNORED_ENV = {
    "EVOFORGE_CONFIG", "EVOFORGE_SKIP_DOCKER", "EVOFORGE_EMBEDDER", "EVOFORGE_OFFLINE",
    "EVOFORGE_NONCE", "EVOFORGE_CHILD_PYTHONPATH", "EVOFORGE_HOME", "EVOFORGE_STORE_MAP_SIZE",
}


def _parse_env(value: str) -> Any:
    """Environment values are YAML scalars or flow collections (`[a, b]`, `{k: v}`)."""
    try:
        return yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        return value


class EffectiveConfig:
    """Validated settings plus where each dotted key came from."""

    def __init__(self, settings: Settings, sources: dict[str, str]):
        self.settings = settings
        self.sources = sources

    def rows(self) -> list[tuple[str, Any, str]]:
        flat = _flatten(self.settings.model_dump(mode="json"))
        rows = []
        for key in sorted(flat):
            value = flat[key]
            if key == "llm.api_key" and value is not None:
                value = "********"
            rows.append((key, value, self.sources.get(key, "default")))
        return rows


def load_config(
    cli: dict[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    task_defaults: dict[str, Any] | None = None,
    task_source: str = "task config",
) -> EffectiveConfig:
    """Merge the sources. `cli` holds dotted keys set by flags (None values are ignored).
    `task_defaults` (dotted keys a task folder asks for, e.g. an OpenEvolve config.yaml) sit
    just above the defaults: the file, the environment and flags override them."""
    environ = dict(os.environ if environ is None else environ)
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in (task_defaults or {}).items():
        _check_keys({key: value}, task_source)
        merged[key] = value
        sources[key] = task_source

    path = config_file or Path(environ.get("EVOFORGE_CONFIG", DEFAULT_CONFIG_FILE))
    if path.is_file():
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must be a mapping of settings, got {type(raw).__name__}")
        flat = _flatten(raw)
        _check_keys(flat, str(path))
        merged.update(flat)
        sources.update({k: f"file {path}" for k in flat})
    elif config_file is not None:
        raise ConfigError(f"config file {config_file} does not exist: create it or drop --config")

    env = _env_values(environ)
    for key, (value, source) in env.items():
        _check_keys({key: value}, source)
        merged[key] = value
        sources[key] = source

    for key, value in (cli or {}).items():
        if value is None:
            continue
        _check_keys({key: value}, "command-line flags")
        merged[key] = value
        sources[key] = "flag"

    try:
        settings = Settings.model_validate(_unflatten(merged))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"{key} ({sources.get(key, 'default')}): {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
    return EffectiveConfig(settings, sources)
