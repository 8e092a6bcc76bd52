"""The SQL ranking (``dashboards.ranking.compute``) against the independent pandas
implementation (``ranking_reference``, which ``bench/rank.py`` runs on a big month), on a small
month made by the benchmark's generator (``bench/ranking_data.py``).

The generator's own city runs in a scratch SQLite file (it brings its own areas and units);
a second month is generated for the seeded city inside the ``db`` fixture's transaction, so
the comparison also runs on PostgreSQL when the suite does. Every count, rate, score, place
and list mark must agree; and the month must be one that tells apart the readings of the
docstring it settles (``ranking_reference.ALTERNATIVE_READINGS``).
"""

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench import ranking_data
from dashboards.ranking import COUNTS
from hotline.db import make_engine
from tests.dashboards import ranking_reference as reference


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """A city of 3 districts and 14 streets and 4,000 tickets, ranked by SQL; pandas' frames."""
    path = tmp_path_factory.mktemp("rank") / "rank.sqlite"
    city = ranking_data.build_city(districts=3, streets=14, departments=9, utilities=5, seed=7)
    data = ranking_data.generate(city, 4000, seed=7)
    url, _ = ranking_data.load_sqlite(str(path), city, data)
    engine = make_engine(url)
    with Session(engine) as session:
        sql = reference.sql_rows(reference.sql_ranking(session))
    with engine.connect() as conn:
        frames = reference.pandas_load(conn)
    engine.dispose()
    return sql, frames, data.stats


def test_pandas_agrees_with_sql(month):
    sql, frames, _ = month
    assert reference.compare(sql, reference.pandas_compute(frames)) == []


@pytest.mark.parametrize("reading", sorted(reference.ALTERNATIVE_READINGS))
def test_the_month_tells_the_readings_apart(month, reading):
    """Read otherwise on one point, pandas no longer agrees: the data reaches that point."""
    sql, frames, _ = month
    overrides = reference.ALTERNATIVE_READINGS[reading]
    assert reference.compare(sql, reference.pandas_compute(frames, reading=overrides))


def test_the_month_has_every_case(month):
    sql, _, stats = month
    rows = sql.values()
    for name in COUNTS:
        assert sum(r["counts"][name] for r in rows) > 0, name
    assert stats["deadline_at_as_of"] == {"sign_edge": 3, "contact_edge": 3, "finish_edge": 3}
    by_code = {code: r for (_, code), r in sql.items()}
    tiny = [code for code, r in by_code.items() if 0 < r["counts"]["dispatched"] < 10]
    assert tiny and all(by_code[code]["rank"] is None for code in tiny)
    assert any(r["counts"]["dispatched"] == 10 and r["rank"] is not None for r in rows)
    assert any(r["counts"]["dispatched"] == 0 and r["rank"] is None for r in rows)
    assert any(r["counts"]["rated"] == 0 and r["counts"]["dispatched"] >= 10 for r in rows)
    assert any(
        r["rates"]["response_rate"] is None and r["counts"]["dispatched"] >= 10 for r in rows
    )
    for cls in ("district", "street", "department", "utility"):
        marks = [r["list"] for (c, _), r in sql.items() if c == cls]
        assert "red" in marks and "black" in marks, cls
    places = [(c, r["rank"]) for (c, _), r in sql.items() if r["rank"] is not None]
    assert len(places) > len(set(places))  # twins: equal scores share a place


def test_sql_and_pandas_agree_on_the_seeded_city(db):
    """The seeded units, in the test's own transaction (SQLite or PostgreSQL)."""
    conn = db.connection()
    city = ranking_data.city_from_database(conn)
    first_id = (conn.execute(sa.text("SELECT max(id) FROM tickets")).scalar() or 0) + 1
    user_id = conn.execute(sa.text("SELECT min(id) FROM users")).scalar()
    data = ranking_data.generate(city, 2500, seed=11, first_id=first_id, user_id=user_id)
    ranking_data.load_rows(conn, data)
    sql = reference.sql_rows(reference.sql_ranking(db))
    frames = reference.pandas_load(conn)
    assert len(sql) > 60
    assert reference.compare(sql, reference.pandas_compute(frames)) == []
