"""Ruling on a violation (confirm / dismiss with a reason) and the unit's explanation.

The web views check who may do what (:func:`callcenter.web.security.can_rule_on`,
``can_edit_unit``); this module changes the row, records the audit entry in the same
transaction and leaves the commit to the caller. Decisions may be changed later (a unit's
explanation can lead an inspector to dismiss what was confirmed); every change is audited
with the row's state before and after, and the form carries the state the inspector saw, so
two inspectors ruling at once cannot overwrite each other unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from flask import current_app
from flask_babel import lazy_gettext as _l

from callcenter.scoring import deduction_for, make_table
from callcenter.store.duty import Violation
from callcenter.web.audit import audit, model_snapshot

__all__ = [
    "AUDITED_FIELDS",
    "CONFIRM_REASONS",
    "DISMISS_REASONS",
    "MAX_TEXT",
    "Decision",
    "DecisionError",
    "StaleDecisionError",
    "apply_decision",
    "assessment_table",
    "explain",
    "now",
    "parse_decision",
    "reason_label",
    "split_reason",
]

MAX_TEXT = 2000
Verdict = Literal["confirm", "dismiss"]

# Reasons an inspector picks from; "other" needs a note.
DISMISS_REASONS: Mapping[str, Any] = {
    "line_fault": _l("Line fault (线路故障)"),
    "drill": _l("Drill (演练)"),
    "wrong_detection": _l("Wrong detection (误判)"),
    "duplicate": _l("Counted in another violation (重复)"),
    "other": _l("Other"),
}
CONFIRM_REASONS: Mapping[str, Any] = {
    "verified": _l("Verified (经核实)"),
    "no_valid_explanation": _l("No valid explanation (无正当理由)"),
    "other": _l("Other"),
}
AUDITED_FIELDS = (
    "state",
    "deduction",
    "decision_reason",
    "decided_by_id",
    "decided_at",
    "unit_explanation",
)


class DecisionError(ValueError):
    """A decision or explanation that cannot be taken as sent (shown to the user)."""

    def __init__(self, message: Any, field: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


class StaleDecisionError(DecisionError):
    """Someone ruled on the violation since the form was shown."""


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str
    note: str
    expected_state: str | None

    @property
    def reason_text(self) -> str:
        """What is stored in ``decision_reason``: ``code`` or ``code: note``."""
        return f"{self.reason}: {self.note}" if self.note else self.reason


def parse_decision(form: Mapping[str, str]) -> Decision:
    """The decision in a submitted form, or :class:`DecisionError`."""
    verdict = (form.get("decision") or "").strip()
    if verdict not in ("confirm", "dismiss"):
        raise DecisionError(_l("Choose to confirm or to dismiss."), "decision")
    reasons = CONFIRM_REASONS if verdict == "confirm" else DISMISS_REASONS
    reason = (form.get("reason") or "").strip()
    if reason not in reasons:
        raise DecisionError(_l("Choose a reason."), "reason")
    note = (form.get("note") or "").strip()
    if reason == "other" and not note:
        raise DecisionError(_l("Say why in the note when the reason is “other”."), "note")
    if len(note) > MAX_TEXT:
        raise DecisionError(_l("The note is too long."), "note")
    expected = (form.get("expected_state") or "").strip() or None
    return Decision(verdict, reason, note, expected)  # type: ignore[arg-type]


def split_reason(stored: str) -> tuple[str | None, str]:
    """``(code, note)`` of a stored ``decision_reason`` (code None when it has none)."""
    code, sep, note = stored.partition(": ")
    if code in DISMISS_REASONS or code in CONFIRM_REASONS:
        return code, note if sep else ""
    return None, stored


def reason_label(stored: str) -> str:
    """A stored ``decision_reason`` for people: the reason's label and the note."""
    code, note = split_reason(stored)
    if code is None:
        return note
    label = str(DISMISS_REASONS.get(code) or CONFIRM_REASONS.get(code) or code)
    return f"{label}: {note}" if note else label


def assessment_table() -> Mapping[str, float]:
    """The assessment table: defaults with ``ASSESSMENT_TABLE`` overrides from the app
    config (``{kind: points}``), checked once per app."""
    cached: Mapping[str, float] | None = current_app.extensions.get("callcenter.assessment")
    if cached is None:
        overrides = current_app.config.get("ASSESSMENT_TABLE")
        if overrides is None:
            section = getattr(current_app.config.get("CALLCENTER"), "assessment", None)
            overrides = getattr(section, "deductions", None)
        cached = make_table(overrides)
        current_app.extensions["callcenter.assessment"] = cached
    return cached


def now() -> datetime:
    """The current time, aware UTC; tests may set ``CLOCK`` (a callable) in the app config."""
    clock = current_app.config.get("CLOCK")
    moment: datetime = clock() if clock is not None else datetime.now(UTC)
    return moment.astimezone(UTC)


def apply_decision(
    violation: Violation,
    decision: Decision,
    *,
    user_id: int,
    now: datetime,
    table: Mapping[str, float],
) -> None:
    """Confirm or dismiss ``violation`` and add the audit entry (the caller commits)."""
    if decision.expected_state is not None and decision.expected_state != violation.state:
        raise StaleDecisionError(
            _l("Someone ruled on this violation meanwhile; look at it again."), "decision"
        )
    before = model_snapshot(violation, AUDITED_FIELDS)
    if decision.verdict == "confirm":
        violation.state = "confirmed"
        violation.deduction = deduction_for(violation.kind, table)
    else:
        violation.state = "dismissed"
        violation.deduction = None
    violation.decided_by_id = user_id
    violation.decided_at = now
    violation.decision_reason = decision.reason_text
    audit(decision.verdict, "violation", violation.id, before, _snapshot(violation))


def explain(violation: Violation, text: str) -> None:
    """Set the unit's explanation and add the audit entry (the caller commits)."""
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise DecisionError(_l("The explanation is too long."), "explanation")
    if text == (violation.unit_explanation or ""):
        return
    before = model_snapshot(violation, AUDITED_FIELDS)
    violation.unit_explanation = text
    audit("explain", "violation", violation.id, before, _snapshot(violation))


def _snapshot(violation: Violation) -> dict[str, Any]:
    return model_snapshot(violation, AUDITED_FIELDS)
