"""The line-policy form: every value checked before anything is stored."""

from __future__ import annotations

import math

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, FloatField, Form, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from callcenter.config import ENDPOINT_RE  # the config's own endpoint check
from callcenter.rules.schedule import ScheduleError, parse_schedule

MAX_ENDPOINT = 64  # DeskPhone.endpoint
MAX_DESK_PHONES = 50


def endpoints(text: str | None) -> list[str]:
    """The desk phones of the textarea: one per line (commas too), blanks and repeats dropped."""
    found: list[str] = []
    for part in (text or "").replace(",", "\n").splitlines():
        endpoint = part.strip()
        if endpoint and endpoint not in found:
            found.append(endpoint)
    return found


def _valid_endpoints(_form: Form, field: Field) -> None:
    wanted = endpoints(field.data)
    bad = [e for e in wanted if not ENDPOINT_RE.match(e) or len(e) > MAX_ENDPOINT]
    if bad:
        raise ValidationError(
            _l(
                "Not an endpoint: %(bad)s (write one per line, like PJSIP/8001 or SIP/duty1).",
                bad=", ".join(bad),
            )
        )
    if len(wanted) > MAX_DESK_PHONES:
        raise ValidationError(_l("At most %(n)d desk phones.", n=MAX_DESK_PHONES))


def _finite(_form: Form, field: Field) -> None:
    if field.data is not None and not math.isfinite(field.data):
        raise ValidationError(_l("Give a number."))


def _valid_schedule(_form: Form, field: Field) -> None:
    try:
        parse_schedule(str(field.data or "").strip())
    except ScheduleError as exc:
        raise ValidationError(
            _l(
                "Not a schedule (%(problem)s). Write 24h, 08:00-18:00, or e.g. "
                "Mon-Fri 18:00-08:30, Sat-Sun 24h.",
                problem=exc.problem,
            )
        ) from exc


class LinePolicyForm(FlaskForm):
    name = StringField(_l("Line name"), validators=[Length(max=255)])
    desk_phones = TextAreaField(_l("Desk phones"), validators=[_valid_endpoints])
    answer_within_seconds = FloatField(
        _l("Answer within (seconds)"),
        validators=[
            InputRequired(_l("Give a number.")),
            _finite,
            NumberRange(min=1, max=600, message=_l("Between 1 and 600 seconds.")),
        ],
    )
    offline_grace_minutes = FloatField(
        _l("Offline grace (minutes)"),
        validators=[
            InputRequired(_l("Give a number.")),
            _finite,
            NumberRange(min=0, max=1440, message=_l("Between 0 and 1440 minutes.")),
        ],
    )
    unmanned_count = IntegerField(
        _l("Unanswered calls in a row that mean unmanned"),
        validators=[
            InputRequired(_l("Give a whole number.")),
            NumberRange(min=1, max=100, message=_l("Between 1 and 100.")),
        ],
    )
    unmanned_window_minutes = FloatField(
        _l("... within (minutes)"),
        validators=[
            InputRequired(_l("Give a number.")),
            _finite,
            NumberRange(min=1, max=1440, message=_l("Between 1 and 1440 minutes.")),
        ],
    )
    schedule = StringField(
        _l("Monitored"),
        validators=[DataRequired(_l("Give a schedule.")), Length(max=255), _valid_schedule],
    )
    active = BooleanField(_l("Active (judged)"))
