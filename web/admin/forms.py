"""Forms of the admin pages (choices are filled in per request, by what the actor may do)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, Form, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp, ValidationError

from callcenter.web.auth.passwords import MAX_PASSWORD_LENGTH
from callcenter.web.forms import choices

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$"


def _optional_int(value: object) -> int | None:
    if value in (None, "", "None"):
        return None
    return int(str(value))


class UserForm(FlaskForm):
    """Create a user (with a password) or edit one (without)."""

    username = StringField(
        _l("Username"),
        validators=[
            DataRequired(),
            Regexp(
                USERNAME_PATTERN,
                message=_l("2–64 letters, digits and . _ @ -, starting with a letter or digit"),
            ),
        ],
    )
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=64)])
    role = SelectField(_l("Role"), validators=[DataRequired()])
    unit_id = SelectField(_l("Unit"), coerce=_optional_int, validate_choice=True)
    language = SelectField(
        _l("Language"),
        choices=choices([("", _l("As the browser")), ("zh_CN", "中文"), ("en", "English")]),
    )
    password = PasswordField(_l("Password"), validators=[Length(max=MAX_PASSWORD_LENGTH)])
    confirm = PasswordField(
        _l("Password again"), validators=[EqualTo("password", message=_l("The passwords differ."))]
    )


class PasswordResetForm(FlaskForm):
    password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


def _valid_zone(_form: Form, field: Field) -> None:
    try:
        ZoneInfo(str(field.data))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(_l("Unknown time zone (e.g. Asia/Shanghai).")) from exc


class UnitForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=255)])
    parent_id = SelectField(_l("Parent unit"), coerce=_optional_int, validate_choice=True)
    timezone = StringField(
        _l("Time zone"), default="Asia/Shanghai", validators=[DataRequired(), _valid_zone]
    )
