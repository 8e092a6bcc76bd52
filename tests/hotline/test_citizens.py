"""Citizens' one-time codes and sessions (hotline.citizens)."""

import datetime as dt

import pytest
import sqlalchemy as sa

from hotline import citizens
from hotline.errors import TooManyRequests, ValidationFailed
from hotline.models import VerificationCode
from tests.helpers import texted_code

NOW = dt.datetime(2026, 6, 3, 2, 0, tzinfo=dt.UTC)
PHONE = "13912345678"


@pytest.mark.parametrize(
    "text,phone",
    [
        ("139 1234 5678", PHONE),
        ("+86 139-1234-5678", PHONE),
        ("008613912345678", PHONE),
        ("１３９１２３４５６７８", PHONE),  # full-width, as a Chinese keyboard types them
    ],
)
def test_phone_numbers_are_normalised(text, phone):
    assert citizens.normalise_phone(text) == phone


@pytest.mark.parametrize(
    "text",
    ["", "12912345678", "1391234567", "0536-1234567", "abc", "1391234567٨"],  # Arabic-Indic 8
)
def test_bad_phone_numbers_are_refused(text):
    with pytest.raises(ValidationFailed) as caught:
        citizens.normalise_phone(text)
    assert caught.value.code == "PHONE_INVALID"


def test_a_code_is_texted_hashed_and_accepted_once(app, db):
    citizens.send_code(db, PHONE, purpose="submit", client_ip="10.0.0.1", now=NOW)
    code = texted_code(db, PHONE)
    row = db.scalars(sa.select(VerificationCode)).one()
    assert len(code) == 6 and code.isdigit()
    assert code not in row.code_hash
    citizens.check_code(db, PHONE, code, purpose="submit", now=NOW + dt.timedelta(minutes=4))
    with pytest.raises(ValidationFailed) as caught:
        citizens.check_code(db, PHONE, code, purpose="submit", now=NOW + dt.timedelta(minutes=4))
    assert caught.value.code == "CODE_INVALID"


def test_a_code_expires_and_serves_only_its_purpose(app, db):
    citizens.send_code(db, PHONE, purpose="submit", now=NOW)
    code = texted_code(db, PHONE)
    with pytest.raises(ValidationFailed):
        citizens.check_code(db, PHONE, code, purpose="track", now=NOW)
    with pytest.raises(ValidationFailed) as caught:
        citizens.check_code(db, PHONE, code, purpose="submit", now=NOW + dt.timedelta(minutes=6))
    assert caught.value.code == "CODE_INVALID"


def test_five_wrong_tries_use_a_code_up(app, db):
    citizens.send_code(db, PHONE, purpose="track", now=NOW)
    code = texted_code(db, PHONE)
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    for _ in range(citizens.MAX_TRIES):
        with pytest.raises(ValidationFailed) as caught:
            citizens.check_code(db, PHONE, wrong, purpose="track", now=NOW)
        assert caught.value.code == "CODE_INVALID"
    db.rollback()  # what a refused request does: the tries were committed before
    with pytest.raises(ValidationFailed) as caught:
        citizens.check_code(db, PHONE, code, purpose="track", now=NOW)
    assert caught.value.code == "CODE_TOO_MANY_TRIES"


def test_a_phone_without_any_code_reads_like_a_wrong_code(app, db):
    with pytest.raises(ValidationFailed) as caught:
        citizens.check_code(db, "13700000000", "123456", purpose="track", now=NOW)
    assert caught.value.code == "CODE_INVALID"


def test_resend_waits_a_minute_and_daily_limits_hold(app, db):
    citizens.send_code(db, PHONE, purpose="submit", client_ip="10.0.0.2", now=NOW)
    with pytest.raises(TooManyRequests) as caught:
        citizens.send_code(
            db, PHONE, purpose="submit", client_ip="10.0.0.2", now=NOW + dt.timedelta(seconds=20)
        )
    assert caught.value.code == "CODE_RESEND_TOO_SOON"
    assert caught.value.retry_after == 40
    assert "40 秒" in caught.value.message
    moment = NOW
    for _ in range(9):
        moment += dt.timedelta(seconds=61)
        citizens.send_code(db, PHONE, purpose="submit", client_ip="10.0.0.2", now=moment)
    with pytest.raises(TooManyRequests) as caught:
        citizens.send_code(db, PHONE, purpose="submit", now=moment + dt.timedelta(seconds=61))
    assert caught.value.code == "CODE_DAILY_LIMIT"
    # The next local day (Asia/Shanghai midnight is 16:00 UTC) the phone may ask again.
    citizens.send_code(
        db, PHONE, purpose="submit", now=dt.datetime(2026, 6, 3, 16, 1, tzinfo=dt.UTC)
    )


def test_the_daily_limit_per_address(app, db):
    moment = NOW
    for index in range(30):
        citizens.send_code(
            db, f"1390000{index:04d}", purpose="submit", client_ip="10.9.9.9", now=moment
        )
    with pytest.raises(TooManyRequests) as caught:
        citizens.send_code(db, "13800000000", purpose="submit", client_ip="10.9.9.9", now=moment)
    assert caught.value.code == "CODE_ADDRESS_DAILY_LIMIT"


def test_sessions_show_their_phone_until_ended_expired_or_revoked(app, db, user):
    token = citizens.open_session(db, PHONE, now=NOW)
    db.flush()
    assert citizens.session_phone(db, token, now=NOW) == PHONE
    assert citizens.session_phone(db, token + "x", now=NOW) is None
    assert citizens.session_phone(db, token, now=NOW + dt.timedelta(days=8)) is None
    citizens.end_session(db, token, now=NOW)
    assert citizens.session_phone(db, token, now=NOW) is None
    other = citizens.open_session(db, PHONE, now=NOW)
    db.flush()
    assert citizens.revoke_phone(db, user("admin"), PHONE, now=NOW) == 1
    assert citizens.session_phone(db, other, now=NOW) is None


def test_concurrent_tries_of_one_code_cannot_share_a_slot(committed_app):
    """Eight requests verifying at once (the right code among wrong ones): one may use the
    code, and the tries counted are the tries made."""
    import threading

    factory = committed_app.extensions["hotline.db"]
    with committed_app.app_context():
        with factory() as session:
            citizens.send_code(session, PHONE, purpose="track", now=NOW)
            session.commit()
            code = texted_code(session, PHONE)
    guesses = [code] * 3 + [f"{(int(code) + n) % 1000000:06d}" for n in range(1, 5)]
    outcomes = []
    barrier = threading.Barrier(len(guesses))

    def verify(guess):
        with committed_app.app_context(), factory() as session:
            barrier.wait()
            try:
                citizens.check_code(session, PHONE, guess, purpose="track", now=NOW)
                session.commit()
                outcomes.append("ok")
            except ValidationFailed as exc:
                session.rollback()
                outcomes.append(exc.code)

    threads = [threading.Thread(target=verify, args=(g,)) for g in guesses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 1
    with factory() as session:
        row = session.scalars(sa.select(VerificationCode)).one()
        assert row.used_at is not None and row.tries <= citizens.MAX_TRIES
