"""Forms of the roster pages: the file upload and one shift."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, DateField, DateTimeLocalField, StringField
from wtforms.validators import DataRequired, Length, Optional

from callcenter.roster import MAX_NAMES, MAX_PHONE, MAX_SHIFT_NAME

ROSTER_EXTENSIONS = ("csv", "txt", "xlsx", "xlsm")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"  # <input type="datetime-local">
ADD_OFFICERS = _l("Register names the unit does not know yet as its officers")


class UploadForm(FlaskForm):
    """A roster file (CSV or XLSX), imported all or nothing."""

    file = FileField(
        _l("Roster file (CSV or XLSX)"),
        validators=[
            FileRequired(_l("Choose a file.")),
            FileAllowed(ROSTER_EXTENSIONS, _l("Upload a .csv or .xlsx file.")),
        ],
    )
    replace = BooleanField(_l("Replace the stored shifts of the days in the file"))
    add_officers = BooleanField(ADD_OFFICERS)


class ShiftForm(FlaskForm):
    """One shift. Without start and end, the times come from the 班次 (白班, 夜班, 全天 or a
    span like 08:00-20:00) on the date; with them, they are the unit's local time."""

    day = DateField(_l("Date"), validators=[DataRequired(_l("Give the date."))])
    name = StringField(
        _l("Shift"),
        validators=[DataRequired(_l("Name the shift.")), Length(max=MAX_SHIFT_NAME)],
    )
    starts_at = DateTimeLocalField(
        _l("Starts (local time)"), format=LOCAL_FORMAT, validators=[Optional()]
    )
    ends_at = DateTimeLocalField(
        _l("Ends (local time)"), format=LOCAL_FORMAT, validators=[Optional()]
    )
    main_officer = StringField(
        _l("Main officer"),
        validators=[DataRequired(_l("Name the main officer.")), Length(max=MAX_NAMES)],
    )
    backup_officer = StringField(_l("Backup officer"), validators=[Length(max=MAX_NAMES)])
    leader = StringField(_l("Leader on duty"), validators=[Length(max=MAX_NAMES)])
    phone = StringField(_l("Phone"), validators=[Length(max=MAX_PHONE)])
    add_officers = BooleanField(ADD_OFFICERS)
