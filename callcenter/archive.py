"""Raw AMI archive: every event as received, in daily gzip JSON Lines (the fixture format).

``callcenter replay`` reads the files back. One folder per PBX, and a new file each time
the archive opens one (a listener run, a new UTC day, a retry after a write error), named
after the UTC day and the time it was opened::

    <folder>/<pbx>/<YYYY-MM-DD>.<HHMMSS>.jsonl.gz        (+ ``-<n>`` if that name is taken)

so the files of a day sort in the order they were written (``replay <day>.*.jsonl.gz``).
Each line is the event's headers plus ``_recv``. A file is never appended to: a crash can
only cut off the end of its own file (what was flushed reads back, with a warning), never
damage what a later run writes.

Writing is off the event loop: :meth:`RawArchive.write` only puts the event on a bounded
queue (an event that finds it full is counted in ``dropped``, the loop never waits), and a
thread of the archive's own turns events into JSON and compresses them (gzip level
:data:`COMPRESS_LEVEL`). :meth:`RawArchive.close` writes everything queued before it
returns.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from callcenter.ami.transcripts import write_jsonl_event

logger = logging.getLogger(__name__)

_MAX_SAME_NAME = 1000  # files opened in one second (restart loops) before giving up
RETRY_SECONDS = 10.0  # after a write error, events are not archived for this long
MAX_QUEUED = 50_000  # events waiting for the writer (~6 s at 100 calls/s); more are dropped
# zlib's default: on the AMI mix, 8.6 us of CPU and 60 bytes per event against level 9's
# 26 us and 56 bytes (level 3: 3.7 us, 78 bytes). Compressing runs without the GIL.
COMPRESS_LEVEL = 6
# The writer wakes this often and writes all that waits: the event loop only appends to a
# deque (no lock, no wake-up per event), and the writer takes the GIL in a few long turns
# a second, not thousands of short ones (each one a wait for the loop, busy reading).
DRAIN_SECONDS = 0.05


class RawArchive:
    def __init__(
        self,
        folder: Path,
        pbx: str,
        *,
        flush_every: float = 1.0,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.folder = folder / pbx
        self.flush_every = flush_every
        self.max_queued = max_queued
        self.path: Path | None = None  # the file being written (set by the writer)
        self._queue: deque[tuple[float, dict[str, object]]] = deque()
        self._flushes: deque[threading.Event] = deque()  # flush() calls waiting
        self._wake = threading.Event()  # flush() or close(): do not wait for the next turn
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._full = 0  # events dropped because the queue was full (event loop)
        self._queue_full = False  # dropping since the last event that was queued
        self._failed_writes = 0  # events dropped because of write errors (writer)
        # the writer's own state
        self._day: int | None = None  # UTC day number of the open file
        self._fp: IO[str] | None = None
        self._last_flush = 0.0
        self._unflushed = False
        self._failed = False
        self._retry_at = 0.0

    @property
    def dropped(self) -> int:
        """Events not archived: the queue was full, or the disk refused them."""
        return self._full + self._failed_writes

    def write(self, event: Mapping[str, object], received: float) -> None:
        """Queue ``event`` (received at ``received``, epoch seconds) for the writer; never
        waits. The event is copied here, so the caller may reuse it."""
        if self._thread is None or not self._thread.is_alive():
            self._start()  # the first event, or a writer that died (logged): a new one
        if len(self._queue) >= self.max_queued:
            if not self._queue_full:  # one line per spell, not one per event
                logger.error(
                    "raw AMI archive in %s: %d events wait to be written; "
                    "events are not archived until the writer catches up",
                    self.folder,
                    self.max_queued,
                )
                self._queue_full = True
            self._full += 1
            return
        self._queue.append((received, {**event, "_recv": received}))
        if self._queue_full:
            self._queue_full = False
            logger.warning(
                "raw AMI archive in %s: the writer caught up; %d event(s) were not archived",
                self.folder,
                self._full,
            )

    def flush(self) -> None:
        """Wait until every event queued so far is written and flushed to the file."""
        if self._thread is None:
            return
        thread = self._thread
        done = threading.Event()
        self._flushes.append(done)
        self._wake.set()
        while not done.wait(0.5):
            if not thread.is_alive():  # died (logged): never wait for it forever
                return

    def close(self) -> None:
        """Write every queued event, close the file and stop the writer. A later
        :meth:`write` opens a new file."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join()
            self._stopping = False

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"raw archive {self.folder.name}", daemon=True
        )
        self._thread.start()

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._drain()
        except Exception:  # kept queued; the next write() starts a new writer
            logger.exception("raw AMI archive writer in %s failed", self.folder)
            self._close_file()

    def _drain(self) -> None:
        while True:
            self._wake.wait(DRAIN_SECONDS)
            self._wake.clear()
            stopping = self._stopping  # read first: what was queued before is drained
            flushes = [self._flushes.popleft() for _ in range(len(self._flushes))]
            while self._queue:
                self._write(*self._queue.popleft())
            if flushes or stopping or time.monotonic() - self._last_flush >= self.flush_every:
                self._flush()
            for done in flushes:
                done.set()
            if stopping:
                self._close_file()
                return

    def _write(self, received: float, event: dict[str, object]) -> None:
        if self._failed and time.monotonic() < self._retry_at:
            self._failed_writes += 1  # not one new file per event on a full or read-only disk
            return
        day = int(received // 86_400)  # UTC days are 86,400 s of epoch time
        try:
            fp = self._fp if day == self._day and self._fp is not None else self._open(received)
            write_jsonl_event(fp, event)
            self._unflushed = True
            if self._failed:
                logger.warning(
                    "raw AMI archive in %s writable again; %d event(s) were not archived",
                    self.folder,
                    self.dropped,
                )
            self._failed = False
        except OSError as exc:
            self._write_failed(exc)
        except (TypeError, ValueError) as exc:  # a value JSON cannot hold: this event only
            self._failed_writes += 1
            logger.error("raw AMI archive in %s: event not archived: %s", self.folder, exc)

    def _write_failed(self, exc: OSError) -> None:
        self._failed_writes += 1
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
        self._close_file()

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._unflushed or self._fp is None:
            return  # an empty flush still adds a few bytes to the file
        self._unflushed = False
        try:
            self._fp.flush()
        except OSError as exc:
            self._write_failed(exc)

    def _open(self, received: float) -> IO[str]:
        self._close_file()
        self.folder.mkdir(parents=True, exist_ok=True)
        when = datetime.fromtimestamp(received, UTC)
        stem = when.strftime("%Y-%m-%d.%H%M%S")
        for n in range(_MAX_SAME_NAME):
            path = self.folder / (f"{stem}.jsonl.gz" if n == 0 else f"{stem}-{n}.jsonl.gz")
            try:  # "x": a new file, never one another run (or listener) is writing
                fp: IO[str] = gzip.open(  # noqa: SIM115 - closed by _close_file
                    path, "xt", compresslevel=COMPRESS_LEVEL, encoding="utf-8"
                )
            except FileExistsError:
                continue
            self._fp, self._day, self.path = fp, int(received // 86_400), path
            logger.info("raw AMI archive: writing %s", path)
            return fp
        raise FileExistsError(f"{self.folder / stem}.*.jsonl.gz: {_MAX_SAME_NAME} files exist")

    def _close_file(self) -> None:
        if self._fp is not None:
            fp, self._fp = self._fp, None
            try:
                fp.close()
            except OSError as exc:
                logger.error("cannot close the raw AMI archive %s: %s", self.path, exc)
