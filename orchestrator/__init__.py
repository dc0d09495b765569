"""evoforge orchestrator: the async evolution loop, configuration, CLI, sandboxes and images."""

from pathlib import Path

#: The repository root (this package lives one level below it in an editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = REPO_ROOT / "tasks"
SANDBOX_IMAGES_DIR = REPO_ROOT / "sandbox_images"
