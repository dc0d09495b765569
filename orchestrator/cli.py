"""Placeholder entry point; replaced by the real CLI."""


def main() -> None:
    raise SystemExit("evolve: CLI not built yet")
