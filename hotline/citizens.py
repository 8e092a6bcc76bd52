"""Citizens who prove a phone: one-time codes by SMS (短信验证码) and the sessions they open.

A citizen types their mobile number, receives a 6-digit code (through ``hotline.outbox``:
delivered after commit, retried, recorded), types it back, and is then known by that phone:
they may submit a request that can be called back and see the requests filed with that phone,
and nothing else. The rules:

- a code is valid for ``CODE_MINUTES`` minutes, for ``MAX_TRIES`` tries, once; only its HMAC
  (keyed with the application's secret) is stored, and it is compared in constant time;
- a new code for the same phone only ``RESEND_SECONDS`` after the last one; at most
  ``citizen.codes_per_phone_daily`` codes per phone and ``citizen.codes_per_address_daily``
  per network address per local day (settings);
- answers never tell whether a phone has requests (a code is sent to any valid mobile);
- a session lasts ``SESSION_DAYS`` days, is revocable (退出, or an administrator), and only
  the SHA-256 of its token is stored.

The functions do not commit, except ``check_code`` for a wrong code (the failed try must
count even though the request is refused).
"""

import datetime as dt
import hashlib
import hmac
import re
import secrets
import unicodedata

import sqlalchemy as sa
from flask import current_app

from hotline import outbox, settings
from hotline.audit import audit
from hotline.config import DEFAULTS
from hotline.db import day_bounds, utcnow
from hotline.errors import TooManyRequests, ValidationFailed
from hotline.models import CitizenSession, VerificationCode

CODE_DIGITS = 6
CODE_MINUTES = 5
MAX_TRIES = 5
RESEND_SECONDS = 60
SESSION_DAYS = 7
#: What a code may be used for: a new request, or looking at one's requests.
PURPOSES = ("submit", "track")

#: A mainland mobile number (what an SMS can reach), after spaces, dashes and +86 are removed.
_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)
PHONE_INVALID = "请填写正确的 11 位手机号码"
CODE_INVALID = "验证码错误或已失效，请重新输入或重新获取"


def normalise_phone(text, field="phone"):
    """``text`` as an 11-digit mobile number, or a refusal (``PHONE_INVALID``). Full-width
    digits (a Chinese keyboard) become ASCII; any other digit is refused, so one phone has
    one spelling and one set of limits."""
    digits = re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", text or ""))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _MOBILE.fullmatch(digits):
        raise ValidationFailed(PHONE_INVALID, code="PHONE_INVALID", details={field: PHONE_INVALID})
    return digits


def _timezone():
    return current_app.config["TIMEZONE"] if current_app else DEFAULTS["TIMEZONE"]


def _digest(phone, purpose, code):
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{phone}:{purpose}:{code}".encode(), hashlib.sha256).hexdigest()


def send_code(session, phone, *, purpose, client_ip=None, now=None):
    """Text a new code for ``purpose`` to ``phone`` (already ``normalise_phone``d). Refused
    (429, with the wait) when one was sent less than ``RESEND_SECONDS`` ago or a daily limit
    is reached. Returns the seconds until another may be asked for."""
    now = now or utcnow()
    _check_purpose(purpose)
    _lock_phone(session, phone)
    _, today, tomorrow = day_bounds(now, _timezone())
    until_tomorrow = (tomorrow - now).total_seconds()
    # The phone's last code and today's count in one look (the index on phone, created_at).
    last, sent_to_phone = session.execute(
        sa.select(
            sa.func.max(VerificationCode.created_at),
            sa.func.count().filter(VerificationCode.created_at >= today),
        ).where(VerificationCode.phone == phone)
    ).one()
    if last is not None:
        wait = RESEND_SECONDS - (now - last).total_seconds()
        if wait > 0:
            seconds = int(wait) + (wait % 1 > 0)
            raise TooManyRequests(
                f"验证码已发送，请 {seconds} 秒后再重新获取",
                code="CODE_RESEND_TOO_SOON",
                retry_after=seconds,
            )
    sent_today = sa.select(sa.func.count()).where(VerificationCode.created_at >= today)
    if sent_to_phone >= settings.get(session, "citizen.codes_per_phone_daily"):
        raise TooManyRequests(
            "该手机号今日获取验证码的次数已达上限，请明天再试，或拨打 12345 热线反映",
            code="CODE_DAILY_LIMIT",
            retry_after=until_tomorrow,
        )
    if client_ip and session.scalar(
        sent_today.where(VerificationCode.client_ip == client_ip)
    ) >= settings.get(session, "citizen.codes_per_address_daily"):
        raise TooManyRequests(
            "您所在网络今日获取验证码的次数已达上限，请明天再试，或拨打 12345 热线反映",
            code="CODE_ADDRESS_DAILY_LIMIT",
            retry_after=until_tomorrow,
        )
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = VerificationCode(
        phone=phone,
        purpose=purpose,
        code_hash=_digest(phone, purpose, code),
        created_at=now,
        expires_at=now + dt.timedelta(minutes=CODE_MINUTES),
        tries=0,
        client_ip=client_ip,
    )
    session.add(row)
    session.flush()
    outbox.tell_citizen(
        session,
        kind="citizen_code",
        phone=phone,
        fields={"code": code, "minutes": CODE_MINUTES},
        delivery_key=f"code:{row.id}",
        now=now,
    )
    return RESEND_SECONDS


def check_code(session, phone, code, *, purpose, now=None):
    """Accept ``code`` for ``phone`` and ``purpose`` (the latest code sent, unexpired, unused,
    fewer than ``MAX_TRIES`` tries) and use it up. Every try takes one of the code's
    ``MAX_TRIES`` slots before it is compared, in one conditional UPDATE, so concurrent
    guesses cannot share a slot; a wrong code's try is committed before the refusal. Every
    refusal reads the same (``CODE_INVALID``) except the one that says the tries are used up.
    """
    now = now or utcnow()
    _check_purpose(purpose)
    code = (code or "").strip()
    row = session.execute(
        sa.select(VerificationCode.id, VerificationCode.code_hash, VerificationCode.tries)
        .where(
            VerificationCode.phone == phone,
            VerificationCode.purpose == purpose,
            VerificationCode.used_at.is_(None),
            VerificationCode.expires_at > now,
        )
        .order_by(VerificationCode.created_at.desc(), VerificationCode.id.desc())
        .limit(1)
    ).first()
    # Always compute a digest, so a phone without a code answers in the same time.
    given = _digest(phone, purpose, code)
    if row is None:
        raise _invalid()
    unused = sa.and_(VerificationCode.id == row.id, VerificationCode.used_at.is_(None))
    took_slot = session.execute(
        sa.update(VerificationCode)
        .where(unused, VerificationCode.tries < MAX_TRIES)
        .values(tries=VerificationCode.tries + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not took_slot:
        raise ValidationFailed(
            "验证码输错次数过多，请重新获取验证码",
            code="CODE_TOO_MANY_TRIES",
            details={"code": "请重新获取验证码"},
        )
    if hmac.compare_digest(given, row.code_hash):
        used = session.execute(
            sa.update(VerificationCode)
            .where(unused)
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if used:
            return
    session.commit()
    raise _invalid()


def _invalid():
    return ValidationFailed(CODE_INVALID, code="CODE_INVALID", details={"code": CODE_INVALID})


def _lock_phone(session, phone):
    """Serialise the code requests of one phone (their limits are read, then a code is
    written): on PostgreSQL a transaction-scoped advisory lock; SQLite has one writer."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(phone))))


def _check_purpose(purpose):
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}: {purpose!r}")


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session, phone, *, client_ip=None, now=None):
    """A session for the citizen who just proved ``phone``; returns its token (kept by the
    browser in a cookie, by an app in its storage)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        CitizenSession(
            token_hash=_token_hash(token),
            phone=phone,
            created_at=now,
            expires_at=now + dt.timedelta(days=SESSION_DAYS),
            last_seen_at=now,
            client_ip=client_ip,
        )
    )
    return token


def session_phone(session, token, now=None):
    """The phone of the live session ``token``, or None (unknown, expired, revoked)."""
    if not token:
        return None
    now = now or utcnow()
    row = session.scalars(
        sa.select(CitizenSession).where(CitizenSession.token_hash == _token_hash(token))
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return row.phone


def end_session(session, token, now=None):
    """退出: the session ``token`` no longer shows anything."""
    if not token:
        return
    session.execute(
        sa.update(CitizenSession)
        .where(CitizenSession.token_hash == _token_hash(token), CitizenSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )


def revoke_phone(session, actor, phone, now=None):
    """An administrator ends every live session of ``phone`` (a lost phone, a complaint of
    someone else reading one's requests). Audited; returns how many were ended."""
    now = now or utcnow()
    ended = session.execute(
        sa.update(CitizenSession)
        .where(
            CitizenSession.phone == phone,
            CitizenSession.revoked_at.is_(None),
            CitizenSession.expires_at > now,
        )
        .values(revoked_at=now)
    ).rowcount
    audit(session, actor, "citizen.sessions_revoked", target=phone, payload={"ended": ended})
    return ended
