"""Shared form helpers for every console feature.

WTForms 3.3 deprecates ``(value, label)`` tuples as ``SelectField`` choices (a
``DeprecationWarning``, an error under our pytest settings); :func:`choices` builds
``SelectChoice`` objects where WTForms has them and tuples on older versions::

    form.unit.choices = choices((u.id, u.name) for u in units)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

try:
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - WTForms < 3.3
    SelectChoice = None

__all__ = ["choices"]


def choices(pairs: Iterable[tuple[Any, Any]]) -> list[Any]:
    """``SelectField`` choices from ``(value, label)`` pairs (labels may be lazy strings)."""
    if SelectChoice is None:  # pragma: no cover
        return list(pairs)
    return [SelectChoice(value, label) for value, label in pairs]
