"""Small shared helpers for the unit tests (fixture discovery and loading)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"


def all_fixtures() -> list[Path]:
    """Every AMI transcript in the repository's fixture folder."""
    found = [*FIXTURES.rglob("*.jsonl"), *FIXTURES.rglob("*.json")]
    return sorted(found)


def fixture_id(path: Path) -> str:
    return str(path.relative_to(FIXTURES))


def load_events(path: Path) -> list[dict[str, Any]]:
    """The fixture's AMI events (objects with an ``Event`` key), as recorded."""
    if path.suffix == ".jsonl":
        items = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    else:
        items = json.loads(path.read_text("utf-8"))
    return [item for item in items if "Event" in item]
