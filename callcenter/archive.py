"""Raw AMI archive: every event as received, in daily gzip JSON Lines (the fixture format).

``callcenter replay`` reads the files back. One file per PBX and UTC day:
``<folder>/<pbx>/<YYYY-MM-DD>.jsonl.gz``; each line is the event's headers plus ``_recv``.
Each listener run appends a gzip member, so a file written in several runs, or one cut off
by a crash, still reads back (a truncated last member loses only its unflushed tail).
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from callcenter.ami.transcripts import write_jsonl_event

logger = logging.getLogger(__name__)


class RawArchive:
    def __init__(self, folder: Path, pbx: str, *, flush_every: float = 1.0) -> None:
        self.folder = folder / pbx
        self.flush_every = flush_every
        self._day: str | None = None
        self._fp: IO[str] | None = None
        self._last_flush = 0.0
        self._failed = False

    def path_for(self, day: str) -> Path:
        return self.folder / f"{day}.jsonl.gz"

    def write(self, event: Mapping[str, object], received: float) -> None:
        day = datetime.fromtimestamp(received, UTC).strftime("%Y-%m-%d")
        try:
            fp = self._fp if day == self._day and self._fp is not None else self._open(day)
            write_jsonl_event(fp, {**event, "_recv": received})
            now = time.monotonic()
            if now - self._last_flush >= self.flush_every:
                fp.flush()
                self._last_flush = now
            self._failed = False
        except OSError as exc:
            if not self._failed:  # one line per failure spell, not one per event
                logger.error("cannot write the raw AMI archive in %s: %s", self.folder, exc)
            self._failed = True
            self._fp = None

    def _open(self, day: str) -> IO[str]:
        self.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        fp: IO[str] = gzip.open(self.path_for(day), "at", encoding="utf-8")  # noqa: SIM115
        self._fp, self._day = fp, day
        return fp

    def close(self) -> None:
        if self._fp is not None:
            try:
                self._fp.close()
            except OSError as exc:
                logger.error("cannot close the raw AMI archive: %s", exc)
            self._fp = None
