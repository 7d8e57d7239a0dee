"""Who may use the portal: partner users, invitations, passwords, sessions, and the slowed-down login.

Every function takes the caller's session and flushes; the portal's route (or the CLI command)
commits. Times come from the app's clock, so a test moves the clock instead of sleeping.

Passwords are argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommended profile).
Tokens (session cookie, invitation link) are 256 random bits; the database keeps their SHA-256,
so a copy of it lets nobody in.

Failed logins are counted per user and per client address. A key may fail a few times freely;
after that it waits before its next try, twice as long with each further failure, up to
``MAX_WAIT``; a quiet ``FORGET_AFTER`` wipes its count. A success resets the user's count, not
the address's (one valid account must not reset the guessing of others from the same place).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.errors import InputError
from caturactl.fulfilment.dropship import terms
from caturactl.portal.models import LoginThrottle, PartnerUser, PortalSession

MIN_PASSWORD = 12
MAX_PASSWORD = 200  # argon2 takes any length; a megabyte "password" would only cost us time


@dataclass(frozen=True)
class ThrottleRule:
    """``free`` failures pass unslowed; the next waits ``first_wait``, doubling per failure."""
    free: int
    first_wait: timedelta


USER_RULE = ThrottleRule(free=3, first_wait=timedelta(seconds=5))
ADDRESS_RULE = ThrottleRule(free=10, first_wait=timedelta(seconds=5))  # many users behind one NAT
MAX_WAIT = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so that a wrong address takes as long as a wrong
# password and the answer tells nobody which addresses exist.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class LoginRefused(InputError):
    """Wrong e-mail or password (the message never says which), or an inactive user."""


class LoginDelayed(InputError):
    """Too many failed logins: the next try is allowed in ``wait_seconds``."""

    def __init__(self, wait_seconds: int):
        super().__init__(f"too many failed logins; try again in {wait_seconds} s", where="login")
        self.wait_seconds = wait_seconds


def token_hash(token: str) -> str:
    """The SHA-256 hex under which a session or invitation token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``; InputError when it is too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters", where="password")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"a password has at most {MAX_PASSWORD} characters", where="password")
    return _hasher.hash(password)


def _password_matches(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password[:MAX_PASSWORD]) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- users and invitations ------------------------------------------------------------------------


def invite(session: Session, cfg: Config, partner: str, email: str) -> str:
    """Creates the user ``email`` of ``partner`` (or renews its invitation) and returns the new
    invitation token; the link is ``invitation_url(cfg, token)``. A user's password stays valid
    until the invitation is used. InputError for an unknown partner or a malformed e-mail, or
    an e-mail that belongs to another partner."""
    if not terms.is_partner(cfg, partner):
        known = ", ".join(terms.partners(cfg)) or "none"
        raise InputError(f"no dropshipper {partner!r} in [locations] (known: {known})", where="partner")
    email = _email(email)
    user = session.scalar(select(PartnerUser).where(PartnerUser.email == email))
    if user is None:
        user = PartnerUser(partner=partner, email=email, active=True)
        session.add(user)
    elif user.partner != partner:
        raise InputError(f"{email} is a user of partner {user.partner}", where="email")
    token = secrets.token_urlsafe(32)
    user.invite_hash = token_hash(token)
    user.invite_expires_at = clock.now() + timedelta(hours=cfg.portal.invitation_hours)
    session.flush()
    return token


def invitation_url(cfg: Config, token: str) -> str:
    """The link a partner opens to set its password."""
    base = cfg.portal.public_url.rstrip("/") or f"http://{cfg.portal.host}:{cfg.portal.port}"
    return f"{base}/invite/{token}"


def invited_user(session: Session, token: str) -> PartnerUser | None:
    """The user whose unexpired invitation ``token`` is, else None."""
    user = session.scalar(select(PartnerUser).where(PartnerUser.invite_hash == token_hash(token)))
    if user is None or not user.active or user.invite_expires_at is None or user.invite_expires_at <= clock.now():
        return None
    return user


def accept_invitation(session: Session, token: str, password: str) -> PartnerUser:
    """Sets the password of the invited user and uses the invitation up (a link works once);
    ends the user's other sessions. InputError for an unknown or expired link or a weak password."""
    user = invited_user(session, token)
    if user is None:
        raise InputError("this invitation link is unknown or has expired", where="invitation")
    user.password_hash = hash_password(password)
    user.invite_hash, user.invite_expires_at = None, None
    session.execute(delete(PortalSession).where(PortalSession.user_id == user.id))
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == _user_key(user.email)))
    session.flush()
    return user


def _email(value: str) -> str:
    email = value.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in email) or len(email) > 200:
        raise InputError(f"not an e-mail address: {value!r}", where="email")
    return email


# --- login and its throttle ------------------------------------------------------------------------


def _user_key(email: str) -> str:
    return f"user:{email.strip().lower()[:200]}"


def _address_key(address: str) -> str:
    return f"ip:{address[:200]}"


def wait_for(rule: ThrottleRule, failures: int) -> timedelta:
    """How long a key with ``failures`` recent failures waits before its next try."""
    if failures < rule.free:
        return timedelta(0)
    return min(MAX_WAIT, rule.first_wait * 2 ** min(failures - rule.free, 20))


def login(session: Session, email: str, password: str, address: str) -> PartnerUser:
    """The active user with this e-mail and password. Raises LoginDelayed while the user or the
    client ``address`` must wait (the password is not even checked), LoginRefused for a wrong
    e-mail or password (and counts the failure: the caller commits it, even though it refuses).
    Attempts for one user or one address run one after the other (their throttle rows are held
    until the caller commits), so parallel guesses are each counted before the next is checked."""
    now = clock.now()
    keys = ((_user_key(email), USER_RULE), (_address_key(address), ADDRESS_RULE))
    rows = [(_hold(session, key, now), rule) for key, rule in keys]  # always user first: no deadlock
    blocked = [row.blocked_until for row, _ in rows if row.blocked_until and row.blocked_until > now]
    if blocked:
        raise LoginDelayed(max(1, int((max(blocked) - now).total_seconds() + 0.999)))
    user = session.scalar(select(PartnerUser).where(PartnerUser.email == email.strip().lower()))
    if user is None or not user.active or not _password_matches(user.password_hash, password):
        for row, rule in rows:
            _count_failure(row, rule, now)
        session.flush()
        raise LoginRefused("wrong e-mail or password", where="login")
    for i, (row, _) in enumerate(rows):
        if i == 0 or row.failures == 0:  # the user's count goes; the address keeps what it failed
            session.delete(row)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now
    session.flush()
    return user


def _hold(session: Session, key: str, now: datetime) -> LoginThrottle:
    """The throttle row of ``key``, made when missing, held until the caller's transaction ends
    (PostgreSQL: FOR UPDATE; SQLite has one writer, and the INSERT made this one it)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(LoginThrottle).values(key=key, failures=0, last_failure_at=now)
                    .on_conflict_do_nothing(index_elements=[LoginThrottle.key]))
    return session.scalars(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
                           .execution_options(populate_existing=True)).one()


def _count_failure(row: LoginThrottle, rule: ThrottleRule, now: datetime) -> None:
    if now - row.last_failure_at > FORGET_AFTER:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    wait = wait_for(rule, row.failures)
    row.blocked_until = now + wait if wait else None


# --- sessions ----------------------------------------------------------------------------------------


def start_session(session: Session, cfg: Config, user: PartnerUser) -> str:
    """A new session of ``user``; returns the token for the cookie. Expired sessions of anyone
    are removed on the way."""
    now = clock.now()
    session.execute(delete(PortalSession).where(PortalSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(PortalSession(id=token_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                              created_at=now, expires_at=now + timedelta(hours=cfg.portal.session_hours)))
    session.flush()
    return token


def session_for(session: Session, token: str | None) -> PortalSession | None:
    """The unexpired session of an active user that ``token`` belongs to, else None."""
    if not token or len(token) > 100:
        return None
    row = session.get(PortalSession, token_hash(token))
    if row is None or row.expires_at <= clock.now() or not row.user.active:
        return None
    return row


def end_session(session: Session, token: str | None) -> None:
    """Logs the session of ``token`` out (nothing when there is none)."""
    if token:
        session.execute(delete(PortalSession).where(PortalSession.id == token_hash(token)))
        session.flush()
