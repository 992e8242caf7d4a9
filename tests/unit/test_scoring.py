"""The assessment table and the score (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from callcenter.scoring import (
    BASE_POINTS,
    DEFAULT_TABLE,
    ScoringError,
    deduction_for,
    make_table,
    points_left,
    score,
)
from callcenter.store.duty import VIOLATION_KINDS


@dataclass
class Row:
    kind: str
    deduction: float | None = None


@pytest.mark.parametrize(
    ("kind", "points"),
    [
        # unmanned duty or leaving the post: −0.5 each
        ("unmanned", 0.5),
        ("phone_offline", 0.5),
        ("unanswered", 0.5),
        ("forwarded", 0.5),
        ("spot_check_failed", 0.5),
        ("forward_set", 0.5),
        ("dnd_set", 0.5),
        # a warning only
        ("slow_answer", 0.0),
        # wrong, late or missed report: −1; false or concealed: −2; serious impact: −5
        ("late_report", 1.0),
        ("wrong_report", 1.0),
        ("missed_report", 1.0),
        ("false_report", 2.0),
        ("concealed_report", 2.0),
        ("serious_impact", 5.0),
    ],
)
def test_default_table_follows_the_regulations(kind: str, points: float) -> None:
    assert deduction_for(kind) == points


def test_every_stored_kind_is_in_the_table() -> None:
    assert set(VIOLATION_KINDS) <= set(DEFAULT_TABLE)


def test_unknown_kind_costs_nothing() -> None:
    assert deduction_for("something_new") == 0.0


def test_score_starts_at_ten_and_takes_each_confirmed_violation() -> None:
    assert BASE_POINTS == 10.0
    assert score([]) == 10.0
    assert score(["unanswered", "unmanned", "late_report"]) == 8.0
    assert score(["false_report", "serious_impact"]) == 3.0


def test_stored_deduction_wins_over_the_table() -> None:
    # the inspector's decision fixed the points; a later table change does not rewrite it
    rows = [Row("unanswered", 0.5), Row("unanswered", 0.25), Row("forwarded", None)]
    assert score(rows) == 8.75
    assert score(rows, table=make_table({"forwarded": 2.0})) == 7.25


def test_score_never_below_floor_and_no_float_dust() -> None:
    assert score(["serious_impact"] * 3) == 0.0
    assert score(["serious_impact"] * 3, floor=-100) == -5.0
    assert score([Row("unanswered", 0.1)] * 3) == 9.7  # not 9.700000000000001
    assert points_left(0.3, base=10) == 9.7
    assert score(["unanswered"], base=100) == 99.5


def test_make_table_applies_overrides() -> None:
    table = make_table({"slow_answer": 0.2, "unanswered": 1})
    assert deduction_for("slow_answer", table) == 0.2
    assert deduction_for("unanswered", table) == 1.0
    assert deduction_for("unmanned", table) == 0.5
    assert DEFAULT_TABLE["slow_answer"] == 0.0  # the defaults are untouched


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({"unanswerd": 0.5}, "unanswerd"),  # a typo fails loudly
        ({"unanswered": -0.5}, "unanswered"),
        ({"unanswered": "half"}, "unanswered"),
        ({"unanswered": True}, "unanswered"),
        ({"unanswered": float("nan")}, "unanswered"),
    ],
)
def test_make_table_refuses_bad_entries(overrides: dict[str, object], kind: str) -> None:
    with pytest.raises(ScoringError) as caught:
        make_table(overrides)  # type: ignore[arg-type]
    assert caught.value.kind == kind


def test_default_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        DEFAULT_TABLE["unanswered"] = 3.0  # type: ignore[index]
