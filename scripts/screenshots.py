#!/usr/bin/env python3
"""Take the README screenshots from a real ``callcenter demo``.

Starts the demo on free ports in a temporary instance folder at ``--speed`` (so missed and
forwarded calls exist after a few minutes of demo time), waits until enough calls are
stored, signs in with the demo accounts it prints (officer: live board, call list, call
detail; inspector: missed-call report) in Chromium driven by Playwright, saves PNGs in
``docs/screenshots/`` and stops the demo with SIGINT (Ctrl-C), checking it exits 0.

    python scripts/screenshots.py [--out docs/screenshots] [--speed 60] [--calls 60]

Needs Debian's ``/usr/bin/chromium`` (never ``playwright install``) and ``redis-server``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import Page, ViewportSize, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's tests/
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # the browser tests' own

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
ACCOUNT_RE = re.compile(r"^\s*login (\S+)\s+password (\S+)\s*$")
#: Lines of the officer's unit (示范县人民政府办公室) in the demo.
OFFICER_LINES = ("12345", "12346")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Demo:
    def __init__(self, instance: Path, speed: float) -> None:
        self.instance = instance
        self.web_port, self.ami_port = free_port(), free_port()
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "callcenter.cli", "demo", "--instance", str(instance)),
                *("--web-port", str(self.web_port), "--ami-port", str(self.ami_port)),
                *("--speed", str(speed)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            print(line, end="", file=sys.stderr)
            if "Ctrl-C to stop" in line:
                self.ready.set()
        self.ready.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def accounts(self) -> dict[str, str]:
        return {m[1]: m[2] for line in self.lines if (m := ACCOUNT_RE.match(line))}

    def query(self, sql: str) -> list[tuple[object, ...]]:
        database = self.instance / "callcenter.db"
        if not database.exists():
            return []
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            connection.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


def wait_for_calls(demo: Demo, wanted: int, timeout: float) -> None:
    lines = ",".join(f"'{n}'" for n in OFFICER_LINES)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if demo.process.poll() is not None:
            raise SystemExit("the demo exited:\n" + "\n".join(demo.lines))
        rows = demo.query(
            "SELECT count(*), sum(outcome != 'answered'), sum(forwarded_to IS NOT NULL) "
            f"FROM calls WHERE line IN ({lines})"
        )
        total, missed, forwarded = (int(str(v or 0)) for v in (rows[0] if rows else (0, 0, 0)))
        print(f"calls stored: {total} (missed {missed}, forwarded {forwarded})", file=sys.stderr)
        if total >= wanted and missed > 0 and forwarded > 0:
            return
        time.sleep(5)
    raise SystemExit(f"not enough calls after {timeout:.0f} s")


def interesting_call(demo: Demo) -> int:
    """A forwarded or missed call of the officer's unit with the most legs."""
    lines = ",".join(f"'{n}'" for n in OFFICER_LINES)
    rows = demo.query(
        "SELECT c.id FROM calls c JOIN call_legs l ON l.call_id = c.id "
        f"WHERE c.line IN ({lines}) AND (c.forwarded_to IS NOT NULL OR c.outcome != 'answered') "
        "GROUP BY c.id ORDER BY c.forwarded_to IS NOT NULL DESC, count(l.id) DESC, c.id DESC "
        "LIMIT 1"
    )
    if not rows:
        raise SystemExit("no missed or forwarded call stored")
    return int(rows[0][0])  # type: ignore[call-overload]


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    if page.url.rstrip("/").endswith("/login"):
        raise SystemExit(f"sign-in as {username} refused")


def shoot(page: Page, url: str, path: Path) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    print(f"saved {path} ({path.stat().st_size // 1024} KB)", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--calls", type=int, default=60, help="calls to wait for")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="callcenter-shots-") as tmp:
        demo = Demo(Path(tmp) / "instance-demo", args.speed)
        try:
            if not demo.ready.wait(120) or demo.process.poll() is not None:
                raise SystemExit("the demo did not become ready")
            accounts = demo.accounts()
            wait_for_calls(demo, args.calls, args.timeout)
            call_id = interesting_call(demo)
            # Playwright refuses --user-data-dir in launch(args=...) and makes a fresh
            # temporary profile itself, in its driver's TMPDIR: point that at a folder of ours
            with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
                os.environ["TMPDIR"] = profile
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(
                        executable_path=CHROMIUM, args=CHROMIUM_ARGS
                    )
                    try:
                        for username, shots in (
                            ("officer", (("", "board"), ("/calls", "calls"),
                                         (f"/calls/{call_id}", "call-detail"))),
                            ("inspector", (("/reports/missed", "missed-report"),)),
                        ):  # fmt: skip
                            context = browser.new_context(
                                viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai"
                            )
                            page = context.new_page()
                            sign_in(page, demo.url, username, accounts[username])
                            for route, name in shots:
                                shoot(page, f"{demo.url}{route or '/'}", args.out / f"{name}.png")
                            context.close()
                    finally:
                        browser.close()
        finally:
            code = demo.stop()
    if code != 0:
        print(f"the demo exited with {code}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
