"""The built wheel installs web/ and workers/ under the callcenter namespace only."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_maps_web_and_workers_under_callcenter(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("callcenter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "callcenter/web/__init__.py" in names
    assert "callcenter/workers/jobs.py" in names
    assert "callcenter/store/migrations/script.py.mako" in names
    assert "callcenter/web/templates/base.html" in names  # the console renders when installed
    assert any(n.endswith("LC_MESSAGES/messages.mo") for n in names)
    assert any(n.startswith("callcenter/store/migrations/versions/0001") for n in names)
    top_level = {n.split("/", 1)[0] for n in names if "/" in n and ".dist-info" not in n}
    assert top_level == {"callcenter"}, top_level
