"""Password hashing (werkzeug's scrypt) and the password rules."""

from __future__ import annotations

from flask_babel import gettext as _
from werkzeug.security import check_password_hash, generate_password_hash

__all__ = ["MIN_PASSWORD_LENGTH", "hash_password", "password_problems", "verify_password"]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

# Checked when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password", method="scrypt")


def hash_password(password: str) -> str:
    """A salted scrypt hash (``scrypt:32768:8:1$salt$hash``)."""
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash, spends the same time and says no."""
    if not password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return False
    try:
        return check_password_hash(password_hash, password)
    except ValueError:  # an unknown or broken hash in the database: never a match
        return False


def password_problems(password: str, *, username: str = "") -> list[str]:
    """What is wrong with a new password, in the request's language (English outside one)."""
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(_("at least %(n)d characters", n=MIN_PASSWORD_LENGTH))
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(_("at most %(n)d characters", n=MAX_PASSWORD_LENGTH))
    if password.strip() != password or not password.strip():
        problems.append(_("no spaces at the start or end"))
    if username and password.lower() == username.lower():
        problems.append(_("not the same as the username"))
    return problems
