"""Raw AMI archive: every event as received, in daily gzip JSON Lines (the fixture format).

``callcenter replay`` reads the files back. One folder per PBX, and a new file each time
the archive opens one (a listener run, a new UTC day, a retry after a write error), named
after the UTC day and the time it was opened::

    <folder>/<pbx>/<YYYY-MM-DD>.<HHMMSS>.jsonl.gz        (+ ``-<n>`` if that name is taken)

so the files of a day sort in the order they were written (``replay <day>.*.jsonl.gz``).
Each line is the event's headers plus ``_recv``. A file is never appended to: a crash can
only cut off the end of its own file (what was flushed reads back, with a warning), never
damage what a later run writes.
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

_MAX_SAME_NAME = 1000  # files opened in one second (restart loops) before giving up
RETRY_SECONDS = 10.0  # after a write error, events are not archived for this long


class RawArchive:
    def __init__(self, folder: Path, pbx: str, *, flush_every: float = 1.0) -> None:
        self.folder = folder / pbx
        self.flush_every = flush_every
        self._day: str | None = None
        self._fp: IO[str] | None = None
        self.path: Path | None = None  # the file being written
        self._last_flush = 0.0
        self._failed = False
        self._retry_at = 0.0
        self.dropped = 0  # events not archived because of write errors

    def write(self, event: Mapping[str, object], received: float) -> None:
        when = datetime.fromtimestamp(received, UTC)
        day = when.strftime("%Y-%m-%d")
        if self._failed and time.monotonic() < self._retry_at:
            self.dropped += 1  # not one new file per event on a full or read-only disk
            return
        try:
            fp = self._fp if day == self._day and self._fp is not None else self._open(when)
            write_jsonl_event(fp, {**event, "_recv": received})
            now = time.monotonic()
            if now - self._last_flush >= self.flush_every:
                fp.flush()
                self._last_flush = now
            if self._failed:
                logger.warning(
                    "raw AMI archive in %s writable again; %d event(s) were not archived",
                    self.folder,
                    self.dropped,
                )
            self._failed = False
        except OSError as exc:
            self.dropped += 1
            if not self._failed:  # one line per failure spell, not one per event
                logger.error(
                    "cannot write the raw AMI archive in %s: %s; events are not archived "
                    "until it works again (retried every %.0f s)",
                    self.folder,
                    exc,
                    RETRY_SECONDS,
                )
            self._failed = True
            self._retry_at = time.monotonic() + RETRY_SECONDS
            self.close()

    def _open(self, when: datetime) -> IO[str]:
        self.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        day, stem = when.strftime("%Y-%m-%d"), when.strftime("%Y-%m-%d.%H%M%S")
        for n in range(_MAX_SAME_NAME):
            path = self.folder / (f"{stem}.jsonl.gz" if n == 0 else f"{stem}-{n}.jsonl.gz")
            try:  # "x": a new file, never one another run (or listener) is writing
                fp: IO[str] = gzip.open(path, "xt", encoding="utf-8")  # noqa: SIM115
            except FileExistsError:
                continue
            self._fp, self._day, self.path = fp, day, path
            logger.info("raw AMI archive: writing %s", path)
            return fp
        raise FileExistsError(f"{self.folder / stem}.*.jsonl.gz: {_MAX_SAME_NAME} files exist")

    def close(self) -> None:
        if self._fp is not None:
            fp, self._fp = self._fp, None
            try:
                fp.close()
            except OSError as exc:
                logger.error("cannot close the raw AMI archive %s: %s", self.path, exc)
