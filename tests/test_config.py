"""Configuration layering: defaults < file < environment < flags, with provenance and clear errors."""

from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "evoforge.yaml"
    path.write_text(text)
    return path


def test_sources_override_in_order(tmp_path):
    cfg = _write(tmp_path, "seed: 1\nsandbox:\n  concurrency: 3\n  backend: process\n")
    eff = load_config(
        {"sandbox.backend": "docker", "llm.mode": None},
        config_file=cfg,
        environ={"EVOFORGE_SEED": "7", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
    )
    s = eff.settings
    assert s.seed == 7 and eff.sources["seed"] == "env EVOFORGE_SEED"
    assert s.sandbox.concurrency == 3 and eff.sources["sandbox.concurrency"].startswith("file ")
    assert s.sandbox.backend == "docker" and eff.sources["sandbox.backend"] == "flag"
    assert s.llm.base_url == "http://127.0.0.1:9/v1"
    assert s.llm.mode == "offline" and "llm.mode" not in eff.sources


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    cfg = _write(tmp_path, "sandbox:\n  concurency: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(config_file=cfg, environ={})
    assert "sandbox.concurency" in str(err.value) and str(cfg) in str(err.value)


def test_wrong_type_names_key_and_source(tmp_path):
    cfg = _write(tmp_path, "sandbox:\n  concurrency: many\n")
    with pytest.raises(ConfigError) as err:
        load_config(config_file=cfg, environ={})
    assert "sandbox.concurrency" in str(err.value) and "file" in str(err.value)


def test_unknown_env_key_is_an_error():
    with pytest.raises(ConfigError, match="EVOFORGE_SANDBOX__BAKEND"):
        load_config(environ={"EVOFORGE_SANDBOX__BAKEND": "docker"})


def test_api_key_is_masked_in_rows():
    eff = load_config(environ={"OPENAI_API_KEY": "sk-secret"})
    rows = {k: (v, src) for k, v, src in eff.rows()}
    assert rows["llm.api_key"] == ("********", "env OPENAI_API_KEY")
    assert eff.settings.llm.api_key.get_secret_value() == "sk-secret"


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_file=tmp_path / "nope.yaml", environ={})
