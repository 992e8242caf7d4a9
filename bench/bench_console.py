"""Console performance with 1,000,000 stored calls, on SQLite and PostgreSQL. Prints figures.

Not a test: it builds its own data set (outside CI, once; later runs reuse it) and prints
p50 / p95 / max per measurement with the target beside it:

- the call list (first page, and a page deep in the list by its keyset token), a filtered
  list (one line, missed calls, one month) and the call detail: p95 < 100 ms;
- the month's missed-call report for 50 lines: < 500 ms.

Each is measured twice: the query functions alone (``callcenter.queries.calls.call_page`` /
``call_detail``, ``callcenter.reports.missed_call_report``), and the whole page through the
Flask test client on ``create_app`` (routing, login session, scoping, queries, template),
signed in as the city's inspector, who sees all 50 lines.

Data set (seeded, so every build is the same): a city with 25 counties of 2 duty lines each;
``--calls`` calls over the 365 days before the build (busier by day), 90 % inbound, outcomes
about 88 % answered, 6 % no answer, 3 % abandoned, 2 % busy, 1 % failed; two legs per call;
a callback for every missed inbound call; an ``unanswered`` violation for each one that rang
15 s or more and a ``slow_answer`` for late answers (ruled on in past months, flagged in the
current one). Rows go in with ``executemany`` in large transactions (SQLite) and ``COPY``
(PostgreSQL), then ``ANALYZE``.

    python bench/bench_console.py                       # SQLite, and PostgreSQL if a URL is set
    python bench/bench_console.py --calls 50000 --rebuild   # a quick run on a small set
    python bench/bench_console.py --postgres postgresql+psycopg://u:p@host/db --no-sqlite

PostgreSQL: ``--postgres URL`` or ``CALLCENTER_BENCH_POSTGRES_URL`` (else
``CALLCENTER_TEST_POSTGRES_URL``); the data go into the schema ``--pg-schema``
(``bench_console``), which ``--rebuild`` drops first.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, make_url, select, text

from callcenter.store.db import make_engine
from callcenter.store.migrate import upgrade

ZONE = ZoneInfo("Asia/Shanghai")
UNITS = 25
LINES_PER_UNIT = 2
CHUNK = 50_000
PASSWORD = secrets.token_urlsafe(12)  # per run; set on the stored users before signing in
OUTCOME_WEIGHTS = (
    ("answered", 0.88),
    ("no_answer", 0.06),
    ("abandoned", 0.03),
    ("busy", 0.02),
    ("failed", 0.01),
)
# relative call volume by local hour (duty rooms are busiest in office hours)
HOUR_WEIGHT = [0.25] * 7 + [0.7, 1.0, 1.0, 1.0, 0.9, 0.7, 0.8, 1.0, 1.0, 1.0, 0.9, 0.6] + [0.4] * 5

CALL_COLUMNS = (
    "id", "pbx", "linkedid", "caller", "caller_name", "dialed", "line", "direction",
    "started_at", "answered_at", "ended_at", "ring_seconds", "talk_seconds", "outcome",
    "answered_by", "forwarded_to", "transferred_to", "hangup_cause", "closed_by",
    "originated", "times_estimated", "evaluated_at", "created_at",
)  # fmt: skip
LEG_COLUMNS = (
    "id", "call_id", "uniqueid", "channel", "endpoint", "role", "created_at", "ringing_at",
    "answered_at", "ended_at", "hangup_cause", "dial_status",
)  # fmt: skip
CALLBACK_COLUMNS = (
    "id", "call_id", "line_id", "caller", "state", "due_at", "closed_at", "closed_by_call_id",
    "reason", "created_at",
)  # fmt: skip
VIOLATION_COLUMNS = (
    "id", "dedupe_key", "kind", "state", "unit_id", "line_id", "line_number", "endpoint", "at",
    "ended_at", "duration_seconds", "detail", "call_id", "shift_id", "officer", "deduction",
    "decided_by_id", "decided_at", "decision_reason", "unit_explanation", "created_at",
)  # fmt: skip
VIOLATION_CALL_COLUMNS = ("violation_id", "call_id")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the data set


@dataclass(frozen=True)
class Org:
    unit_ids: list[int]  # the counties
    city_id: int
    lines: list[tuple[int, str, int]]  # (line id, number, unit id)


def build_org(engine: Engine) -> Org:
    from werkzeug.security import generate_password_hash

    from callcenter.store.accounts import User
    from callcenter.store.db import make_session_factory, session_scope
    from callcenter.store.org import DeskPhone, DutyLine, Unit

    with session_scope(make_session_factory(engine)) as session:
        city = Unit(name="市政府 City")
        session.add(city)
        session.flush()
        units, lines = [], []
        for u in range(UNITS):
            unit = Unit(name=f"县{u + 1:02d} County {u + 1:02d}", parent_id=city.id)
            session.add(unit)
            session.flush()
            units.append(unit.id)
            for n in range(LINES_PER_UNIT):
                number = f"88{u + 1:02d}{n}"
                line = DutyLine(number=number, name=f"值班室{n + 1}", unit_id=unit.id)
                line.desk_phones = [DeskPhone(endpoint=f"PJSIP/{number}1")]
                session.add(line)
                session.flush()
                lines.append((line.id, number, unit.id))
        hashed = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
        session.add_all(
            [
                User(username="inspector", password_hash=hashed, role="inspector", unit_id=city.id),
                User(username="officer", password_hash=hashed, role="officer", unit_id=units[0]),
            ]
        )
        return Org(units, city.id, lines)


def call_times(count: int, end: datetime, rng: random.Random) -> list[float]:
    """``count`` sorted POSIX times in the 365 days before ``end``, busier by day."""
    start = (end - timedelta(days=365)).timestamp()
    span = end.timestamp() - start
    offset = 8 * 3600  # Asia/Shanghai has no daylight saving
    times: list[float] = []
    while len(times) < count:
        t = start + rng.random() * span
        if rng.random() < HOUR_WEIGHT[int(((t + offset) % 86400) // 3600)]:
            times.append(t)
    times.sort()
    return times


@dataclass
class Rows:
    calls: list[tuple[Any, ...]]
    legs: list[tuple[Any, ...]]
    callbacks: list[tuple[Any, ...]]
    violations: list[tuple[Any, ...]]
    violation_calls: list[tuple[Any, ...]]


def generate(org: Org, count: int, end: datetime, seed: int = 20261120) -> Iterator[Rows]:
    """The rows, in chunks of :data:`CHUNK` calls (ids from 1, in time order)."""
    rng = random.Random(seed)
    times = call_times(count, end, rng)
    month_start = end.astimezone(ZONE).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    outcomes = [o for o, _ in OUTCOME_WEIGHTS]
    weights = [w for _, w in OUTCOME_WEIGHTS]
    callers = [f"13{rng.randrange(10**9):09d}" for _ in range(50_000)]
    leg_id = callback_id = violation_id = 0
    utc = UTC
    for first in range(0, count, CHUNK):
        rows = Rows([], [], [], [], [])
        for index in range(first, min(first + CHUNK, count)):
            call_id = index + 1
            line_id, number, unit_id = org.lines[rng.randrange(len(org.lines))]
            started = datetime.fromtimestamp(times[index], utc)
            inbound = rng.random() < 0.9
            outcome = rng.choices(outcomes, weights)[0]
            if outcome == "answered":
                ring = round(rng.uniform(1, 12) if rng.random() < 0.9 else rng.uniform(12, 40), 1)
                talk = round(rng.uniform(20, 400), 1)
                answered = started + timedelta(seconds=ring)
                ended = answered + timedelta(seconds=talk)
            else:
                ring = round(
                    rng.uniform(3, 25) if outcome == "abandoned" else rng.uniform(15, 45), 1
                )
                if outcome in ("busy", "failed"):
                    ring = 0.0
                talk = None
                answered = None
                ended = started + timedelta(seconds=ring + 1)
            caller = callers[rng.randrange(len(callers))]
            desk = f"PJSIP/{number}1"
            forwarded = "13900000000" if answered and rng.random() < 0.01 else None
            rows.calls.append(
                (
                    call_id, "default", f"{int(times[index])}.{call_id}",
                    caller if inbound else number, None,
                    number if inbound else caller, number,
                    "inbound" if inbound else "outbound",
                    started, answered, ended, ring, talk, outcome,
                    desk if answered else None, forwarded, None, 16, "hangup",
                    False, False, ended, ended,
                )
            )  # fmt: skip
            for role, endpoint in (("caller", "PJSIP/trunk"), ("callee", desk)):
                leg_id += 1
                rows.legs.append(
                    (
                        leg_id, call_id, f"{times[index]:.3f}.{leg_id}",
                        f"{endpoint}-{leg_id:08x}", endpoint, role, started,
                        started if role == "callee" else None, answered, ended, 16,
                        "ANSWER" if answered else "NOANSWER",
                    )
                )  # fmt: skip
            if not inbound:
                continue
            current = started >= month_start
            if answered is None:
                callback_id += 1
                age = end - started
                if age < timedelta(hours=30) or rng.random() < 0.05:
                    state, closed = "open", None
                else:
                    state = rng.choice(("called_back", "reached", "excused"))
                    closed = started + timedelta(minutes=rng.uniform(2, 120))
                rows.callbacks.append(
                    (
                        callback_id, call_id, line_id, caller, state, None, closed, None,
                        "", started,
                    )
                )  # fmt: skip
            kind = None
            if answered is None and outcome in ("no_answer", "abandoned") and ring >= 15:
                kind, detail = "unanswered", f"rang {ring:.1f} s, nobody answered"
            elif answered is not None and ring > 15:
                kind, detail = "slow_answer", f"answered after {ring:.1f} s (limit 15 s)"
            if kind is None:
                continue
            violation_id += 1
            if current:
                state, deduction, decided = "flagged", None, None
            elif rng.random() < 0.6:
                state = "confirmed"
                deduction = 0.5 if kind == "unanswered" else 0.0
                decided = started + timedelta(days=3)
            else:
                state, deduction, decided = "dismissed", None, started + timedelta(days=3)
            rows.violations.append(
                (
                    violation_id, f"{kind}:call:{call_id}", kind, state, unit_id, line_id,
                    number, desk, started, None, None, detail, call_id, None, "值班员",
                    deduction, None, decided, "verified" if decided else "", "", started,
                )
            )  # fmt: skip
            rows.violation_calls.append((violation_id, call_id))
        yield rows


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


TABLES = (
    ("calls", CALL_COLUMNS, "calls"),
    ("call_legs", LEG_COLUMNS, "legs"),
    ("callbacks", CALLBACK_COLUMNS, "callbacks"),
    ("violations", VIOLATION_COLUMNS, "violations"),
    ("violation_calls", VIOLATION_CALL_COLUMNS, "violation_calls"),
)


def load_sqlite(engine: Engine, chunks: Iterator[Rows]) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.execute("BEGIN")
        for done, rows in enumerate(chunks, start=1):
            for table, columns, attr in TABLES:
                marks = ", ".join("?" * len(columns))
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    [tuple(_sqlite_value(v) for v in row) for row in getattr(rows, attr)],
                )
            if done % 4 == 0:
                cursor.execute("COMMIT")
                cursor.execute("BEGIN")
                log(f"  sqlite: {done * CHUNK:,} calls")
        cursor.execute("COMMIT")
        cursor.execute("ANALYZE")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        raw.close()


def load_postgres(engine: Engine, chunks: Iterator[Rows]) -> None:
    raw = engine.raw_connection()
    try:
        connection: Any = raw.driver_connection
        if connection is None:
            raise RuntimeError("no PostgreSQL connection")
        with connection.cursor() as cursor:
            for done, rows in enumerate(chunks, start=1):
                for table, columns, attr in TABLES:
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in getattr(rows, attr):
                            copy.write_row(row)
                if done % 4 == 0:
                    connection.commit()
                    log(f"  postgres: {done * CHUNK:,} calls")
            for table in ("calls", "call_legs", "callbacks", "violations"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
        connection.commit()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        connection.autocommit = False
    finally:
        raw.close()


def stored_calls(engine: Engine) -> int:
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM calls")).scalar_one())
    except Exception:
        return -1


def ensure_dataset(url: str, engine_name: str, calls: int, rebuild: bool) -> None:
    engine = make_engine(url)
    try:
        have = stored_calls(engine)
        if have == calls and not rebuild:
            log(f"{engine_name}: reusing the data set ({have:,} calls)")
            return
        if have > 0 and not rebuild:
            raise SystemExit(
                f"{engine_name}: the bench database holds {have:,} calls, not {calls:,}; "
                "add --rebuild"
            )
        log(f"{engine_name}: building {calls:,} calls")
        started = time.perf_counter()
        upgrade(url)
        org = build_org(engine)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        chunks = generate(org, calls, end)
        if engine.dialect.name == "sqlite":
            load_sqlite(engine, chunks)
        else:
            load_postgres(engine, chunks)
        log(f"{engine_name}: built in {time.perf_counter() - started:.0f} s")
    finally:
        engine.dispose()


def sqlite_url(path: Path, rebuild: bool) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path.as_posix()}"


def postgres_url(base: str, schema: str, rebuild: bool) -> str:
    engine = make_engine(base)
    try:
        with engine.begin() as connection:
            if rebuild:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


# --------------------------------------------------------------------------- measuring


@dataclass
class Figure:
    engine: str
    name: str
    samples: list[float]
    target_ms: float
    note: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1000

    @property
    def worst(self) -> float:
        return max(self.samples) * 1000

    @property
    def ok(self) -> bool:
        return self.p95 < self.target_ms


def timed(run: Callable[[int], Any], repeat: int, warmup: int = 3) -> list[float]:
    for i in range(warmup):
        run(i)
    samples = []
    for i in range(repeat):
        started = time.perf_counter()
        run(i)
        samples.append(time.perf_counter() - started)
    return samples


@dataclass(frozen=True)
class Context:
    now: datetime  # the newest call
    month_first: datetime  # the last full month, local dates
    line_numbers: list[str]
    line_unit: dict[str, int]
    unit_ids: list[int]
    call_ids: list[int]
    deep_cursor: Any  # a keyset position half-way down the list


def context(engine: Engine, repeat: int) -> Context:
    from callcenter.queries.calls import Cursor
    from callcenter.store.models import Call
    from callcenter.store.org import DutyLine, Unit

    with engine.connect() as connection:
        newest = connection.execute(select(func.max(Call.started_at))).scalar_one()
        if newest is None:
            raise RuntimeError("the bench database holds no calls")
        now: datetime = newest
        count = connection.execute(select(func.max(Call.id))).scalar_one()
        lines = connection.execute(select(DutyLine.number, DutyLine.unit_id)).all()
        units = [
            row.id for row in connection.execute(select(Unit.id).where(Unit.parent_id.is_not(None)))
        ]
        middle = connection.execute(
            select(Call.started_at, Call.id).where(Call.id == count // 2)
        ).one()
    if now.tzinfo is None:  # raw SQLite text through the Core: mark UTC
        now = now.replace(tzinfo=UTC)
    local_now = now.astimezone(ZONE)
    this_month = local_now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    rng = random.Random(7)
    at = middle.started_at if middle.started_at.tzinfo else middle.started_at.replace(tzinfo=UTC)
    return Context(
        now=now,
        month_first=last_month,
        line_numbers=[row.number for row in lines],
        line_unit={row.number: row.unit_id for row in lines},
        unit_ids=units,
        call_ids=[rng.randrange(1, count + 1) for _ in range(repeat + 10)],
        deep_cursor=Cursor(at, middle.id),
    )


def measure_queries(
    engine_name: str, url: str, ctx: Context, repeat: int, report_repeat: int
) -> list[Figure]:
    from callcenter.queries.calls import MISSED_OUTCOMES, CallFilters, call_detail, call_page
    from callcenter.reports import Period, missed_call_report
    from callcenter.store.db import make_session_factory

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    figures = []
    month = Period.month(ctx.month_first.year, ctx.month_first.month)
    start, end = month.bounds(ZONE)
    scope = ctx.unit_ids

    def with_session(body: Callable[[Any, int], Any]) -> Callable[[int], Any]:
        def run(i: int) -> Any:
            with sessions() as session:
                return body(session, i)

        return run

    def list_first(session: Any, _i: int) -> Any:
        return call_page(session, CallFilters(unit_ids=scope))

    def list_deep(session: Any, _i: int) -> Any:
        return call_page(session, CallFilters(unit_ids=scope), after=ctx.deep_cursor)

    def filtered(session: Any, i: int) -> Any:
        number = ctx.line_numbers[i % len(ctx.line_numbers)]
        filters = CallFilters(
            unit_ids=scope, line=number, outcomes=MISSED_OUTCOMES, start=start, end=end
        )
        return call_page(session, filters)

    def by_unit(session: Any, i: int) -> Any:
        unit = scope[i % len(scope)]
        return call_page(session, CallFilters(unit_ids=scope, unit_id=unit, start=start, end=end))

    def with_violation(session: Any, _i: int) -> Any:
        return call_page(session, CallFilters(unit_ids=scope, has_violation=True))

    def caller_search(session: Any, i: int) -> Any:
        return call_page(session, CallFilters(unit_ids=scope, caller=f"{1300 + i % 90}"))

    def detail(session: Any, i: int) -> Any:
        found = call_detail(session, ctx.call_ids[i], unit_ids=scope)
        if found is None:
            raise RuntimeError(f"call {ctx.call_ids[i]} not found")
        return found

    def report(session: Any, _i: int) -> Any:
        result = missed_call_report(session, set(scope), month, now=ctx.now)
        if sum(len(u.lines) for u in result.units) != len(ctx.line_numbers):
            raise RuntimeError("the report does not hold every line")
        return result

    try:
        for name, body, target, times in (
            ("call list, first page", list_first, 100, repeat),
            ("call list, page half-way down (keyset)", list_deep, 100, repeat),
            ("filtered: line + missed + month", filtered, 100, repeat),
            ("filtered: unit + month", by_unit, 100, repeat),
            ("filtered: has violation", with_violation, 100, max(10, repeat // 5)),
            ("filtered: caller contains", caller_search, 100, max(10, repeat // 5)),
            ("call detail", detail, 100, repeat),
            (f"missed-call report {month.label}, 50 lines", report, 500, report_repeat),
        ):
            samples = timed(with_session(body), times)
            figures.append(Figure(engine_name, f"query  {name}", samples, target))
            log(f"  {figures[-1].name}: p95 {figures[-1].p95:.1f} ms")
    finally:
        engine.dispose()
    return figures


def measure_pages(
    engine_name: str, url: str, ctx: Context, repeat: int, report_repeat: int
) -> list[Figure]:
    from callcenter.config import load_config
    from callcenter.reports import Period
    from callcenter.web import create_app

    month = ctx.month_first
    period = Period.month(month.year, month.month)
    first, last_day = period.first.isoformat(), period.last
    with tempfile.TemporaryDirectory(prefix="bench-console-") as instance:
        config = load_config(
            None,
            env={},
            overrides={
                "database.url": url,
                "instance_path": instance,
                "web.secret_key": secrets.token_hex(32),
            },
        )
        app = create_app(
            config,
            test_config={
                "TESTING": True,
                "WTF_CSRF_ENABLED": False,
                "RATELIMIT_STORAGE_URI": "memory://",
                "CLOCK": lambda: ctx.now,
            },
        )
        with app.app_context():  # a data set built by an earlier run has its password
            from werkzeug.security import generate_password_hash

            from callcenter.store.accounts import User
            from callcenter.web.extensions import db

            session = db()
            for user in session.scalars(select(User)):
                user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
            session.commit()
        client = app.test_client()
        response = client.post("/login", data={"username": "inspector", "password": PASSWORD})
        if response.status_code not in (302, 303):
            raise RuntimeError(f"login failed: {response.status_code}")

        def get(path: Callable[[int], str]) -> Callable[[int], Any]:
            def run(i: int) -> Any:
                response = client.get(path(i))
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path(i)}: {response.status_code}")
                return response

            return run

        deep = ctx.deep_cursor.encode()
        pages: Sequence[tuple[str, Callable[[int], str], float, int]] = (
            ("GET /calls", lambda i: "/calls", 100, repeat),
            ("GET /calls?after=<half-way>", lambda i: f"/calls?after={deep}", 100, repeat),
            (
                "GET /calls?line&outcome=missed&from&to",
                lambda i: (
                    f"/calls?line={ctx.line_numbers[i % len(ctx.line_numbers)]}"
                    f"&outcome=missed&from={first}&to={last_day.isoformat()}"
                ),
                100,
                repeat,
            ),
            ("GET /calls/<id>", lambda i: f"/calls/{ctx.call_ids[i]}", 100, repeat),
            (
                "GET /reports/missed (50 lines, a month)",
                lambda i: f"/reports/missed?month={month:%Y-%m}",
                500,
                report_repeat,
            ),
            (
                "GET /reports/missed.xlsx",
                lambda i: f"/reports/missed.xlsx?month={month:%Y-%m}",
                500,
                max(5, report_repeat // 2),
            ),
        )
        figures = []
        try:
            for name, path, target, times in pages:
                samples = timed(get(path), times)
                figures.append(Figure(engine_name, f"page   {name}", samples, target))
                log(f"  {figures[-1].name}: p95 {figures[-1].p95:.1f} ms")
        finally:
            app.extensions["callcenter.engine"].dispose()
    return figures


def print_figures(figures: list[Figure], calls: int, load: tuple[float, ...]) -> None:
    print(f"\nconsole benchmark: {calls:,} stored calls, 50 duty lines (times in ms)")
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end (other work on the machine inflates p95)"
    )
    header = f"{'engine':<9} {'measurement':<52} {'n':>4} {'p50':>8} {'p95':>8} {'max':>8}"
    print(header + f" {'target':>8}  verdict")
    print("-" * (len(header) + 18))
    for f in figures:
        verdict = "ok" if f.ok else "SLOW"
        print(
            f"{f.engine:<9} {f.name:<52} {len(f.samples):>4} {f.p50:>8.1f} {f.p95:>8.1f} "
            f"{f.worst:>8.1f} {'<' + format(f.target_ms, 'g'):>8}  {verdict} {f.note}"
        )
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument(
        "--sqlite-path",
        type=Path,
        default=Path(tempfile.gettempdir()) / "callcenter-bench" / "console.db",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CALLCENTER_BENCH_POSTGRES_URL")
        or os.environ.get("CALLCENTER_TEST_POSTGRES_URL", ""),
    )
    parser.add_argument("--pg-schema", default="bench_console")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="build the data set afresh")
    parser.add_argument("--repeat", type=int, default=200, help="samples per list/detail figure")
    parser.add_argument("--report-repeat", type=int, default=20, help="samples per report")
    parser.add_argument("--no-pages", action="store_true", help="query functions only")
    args = parser.parse_args(argv)

    targets: list[tuple[str, str]] = []
    if not args.no_sqlite:
        targets.append(("sqlite", sqlite_url(args.sqlite_path, args.rebuild)))
    if not args.no_postgres:
        if args.postgres:
            targets.append(("postgres", postgres_url(args.postgres, args.pg_schema, args.rebuild)))
        else:
            log("postgres: no URL (--postgres or CALLCENTER_BENCH_POSTGRES_URL): skipped")

    figures: list[Figure] = []
    load = os.getloadavg()
    for name, url in targets:
        ensure_dataset(url, name, args.calls, args.rebuild)
        engine = make_engine(url)
        try:
            ctx = context(engine, args.repeat)
        finally:
            engine.dispose()
        log(f"{name}: measuring queries")
        figures += measure_queries(name, url, ctx, args.repeat, args.report_repeat)
        if not args.no_pages:
            log(f"{name}: measuring pages")
            figures += measure_pages(name, url, ctx, args.repeat, args.report_repeat)
    print_figures(figures, args.calls, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
