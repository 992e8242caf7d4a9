"""The live board: ``/`` (the page), ``/board/state.json`` (polling), ``/board/events`` (SSE).

The page is rendered complete on the server (it works without JavaScript); ``board.js``
then keeps it current: it listens to ``/board/events`` (server-sent events relayed from the
listener's Redis channel) and re-reads ``/board/state.json`` whenever something changed,
and polls that JSON every few seconds when the event stream is not available.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Response, current_app, jsonify, render_template, url_for
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from callcenter.store.org import DutyLine
from callcenter.web.board import bp
from callcenter.web.board.live import LiveUnavailableError, live_state
from callcenter.web.board.state import board_state, parse_iso
from callcenter.web.extensions import db
from callcenter.web.i18n import localtime
from callcenter.web.security import visible_unit_ids

log = logging.getLogger(__name__)

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
}
# Events that concern one line: relayed only to users who may see that line.
_LINE_EVENTS = frozenset({"line", "call"})
_RELAYED = frozenset({"ringing", "line", "call", "status", "reset", "unavailable"})


def _now() -> datetime:
    return datetime.now(UTC)


def _state() -> dict[str, Any]:
    try:
        live = live_state()
    except LiveUnavailableError:
        live = None
    config = current_app.config["CALLCENTER"]
    return board_state(
        db(),
        visible_unit_ids(),
        live,
        _now(),
        default_zone=config.timezone,
        call_url=lambda call_id: url_for("calls.detail", call_id=call_id),
        callback_url=lambda callback_id: url_for("log.record_callback", callback_id=callback_id),
    )


def _labels() -> dict[str, str]:
    """The words board.js writes into the page, in the user's language."""
    return {
        "idle": _("idle"),
        "ringing": _("ringing"),
        "in_call": _("in call"),
        "phone_offline": _("desk phone offline"),
        "unknown": _("unknown"),
        "unknown_caller": _("unknown caller"),
        "seconds": _("s"),
        "open_call": _("Open call"),
        "main": _("main"),
        "backup": _("backup"),
        "leader": _("leader on duty"),
        "no_shift": _("no shift on the roster now"),
        "no_lines": _("No duty lines to show."),
        "no_callbacks": _("None: every missed call of today has been called back."),
        "live": _("live"),
        "polling": _("polling"),
        "outcome_answered": _("answered"),
        "outcome_no_answer": _("no answer"),
        "outcome_abandoned": _("abandoned"),
        "outcome_busy": _("busy"),
        "outcome_failed": _("failed"),
    }


@bp.get("/")
@login_required
def index() -> str:
    board = _state()
    for callback in board["callbacks"]:
        callback["started_at_local"] = localtime(parse_iso(callback["started_at"]), "%H:%M:%S")
        callback["due_at_local"] = localtime(parse_iso(callback["due_at"]), "%H:%M")
    board["now_local"] = localtime(parse_iso(board["now"]), "%H:%M:%S")
    return render_template(
        "board/index.html", board=board, labels=_labels(), board_tz=str(get_timezone())
    )


@bp.get("/board/state.json")
@login_required
def state_json() -> Response:
    response = jsonify(_state())
    response.headers["Cache-Control"] = "no-store"
    return response


def _sse(event: str, data: dict[str, Any]) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"


@bp.get("/board/events")
@login_required
def events() -> Response:
    """Server-sent events: the live events the user may see, with keep-alive comments.

    The stream ends after ``BOARD_SSE_MAX_SECONDS`` (default 300 s) and the browser
    reconnects by itself (``retry``), so a worker thread is never held by a client that
    vanished silently, and a redeploy drains.
    """
    keepalive = float(current_app.config.get("BOARD_SSE_KEEPALIVE", 15.0))
    max_seconds = float(current_app.config.get("BOARD_SSE_MAX_SECONDS", 300.0))
    retry_ms = int(current_app.config.get("BOARD_SSE_RETRY_MS", 3000))
    numbers = set(
        db().scalars(
            select(DutyLine.number).where(DutyLine.unit_id.in_(sorted(visible_unit_ids())))
        )
    )
    db().close()  # the stream may last minutes: give the connection back now

    stack = contextlib.ExitStack()
    try:
        subscription = stack.enter_context(live_state().subscribe(timeout=keepalive))
    except (LiveUnavailableError, redis.exceptions.RedisError) as exc:
        stack.close()
        log.warning("board events: live state unavailable (%s)", exc)
        body = f"retry: {retry_ms * 10}\n\n" + _sse("unavailable", {"type": "unavailable"})
        return Response(body, mimetype="text/event-stream", headers=SSE_HEADERS)

    def stream() -> Iterator[str]:
        started = datetime.now(UTC)
        try:
            yield f"retry: {retry_ms}\n: connected\n\n"
            for event in subscription:
                kind = str(event.get("type") or "")
                if kind == "keepalive":
                    yield ": keepalive\n\n"
                elif kind in _RELAYED:
                    if kind in _LINE_EVENTS and event.get("line") not in numbers:
                        continue
                    message = {k: v for k, v in event.items() if k in ("type", "pbx", "line")}
                    if kind in ("line", "call"):
                        message.update({k: event[k] for k in ("state", "outcome") if k in event})
                    if kind == "status":
                        message["connected"] = bool(event.get("connected"))
                    yield _sse(kind, message)
                if (datetime.now(UTC) - started).total_seconds() >= max_seconds:
                    return
        finally:
            stack.close()

    response = Response(stream(), mimetype="text/event-stream", headers=SSE_HEADERS)
    response.call_on_close(stack.close)
    return response
