"""Local accounts: argon2 password hashes, roles, lockout after failed sign-ins, each change in the audit trail.

No Streamlit (it reads and writes the accounts and their audit lines in the database), so the
dashboard, the `ketawatch users` commands and the tests share one set of rules. Roles: `admin`
(accounts, audit, everything), `clinician` (read and write clinical records, every export),
`reviewer` (read-only, de-identified exports only).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from store.app_settings import database_secret, get_value, is_demo, set_value
from store.audit import record_event
from store.db import for_writing
from store.models import User
from store.settings import get_settings
from store.vocabulary import ROLES

#: The demo accounts of CONTRACT section 1; they may exist only in a demo database.
DEMO_ACCOUNTS = (
    ("demo-admin", "Demo Admin", "admin"),
    ("demo-clinician", "Demo Clinician", "clinician"),
    ("demo-reviewer", "Demo Reviewer", "reviewer"),
)
DEMO_USERNAMES = tuple(name for name, _, _ in DEMO_ACCOUNTS)
DEMO_PASSWORD = "demo-password"

#: Roles that may add, amend and void clinical records.
WRITER_ROLES = ("admin", "clinician")

MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,63}$")
#: The one answer to a wrong password and to a username with no account alike.
_WRONG = "The username or password is not right. Check them and try again."
_ENTITY = "user"

_hasher = PasswordHasher()
# Verifying against this when the account does not exist keeps the answer time the same either way.
_DUMMY_HASH = _hasher.hash("no such account: timing filler")


class AccountRefused(Exception):
    """An account change was refused (bad name, short password, last admin...); nothing was written."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SignInRefused(Exception):
    """A sign-in was refused; `message` is safe to show (it never says whether an account exists)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Identity:
    """The parts of a `User` other code needs after sign-in (never the password hash)."""

    username: str
    display_name: str
    role: str


def _utcnow(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


def _public(user: User) -> dict:
    """What the audit trail may show of an account: never the password hash."""
    return {"username": user.username, "display_name": user.display_name, "role": user.role, "disabled": user.disabled}


def hash_password(password: str) -> str:
    """An argon2id hash of `password`, the only form in which a password is ever stored."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`; a damaged hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def normalise_username(username: str) -> str:
    """Usernames are compared without case or surrounding spaces, so 'Ann' and 'ann ' are one account."""
    return (username or "").strip().lower()


def check_username(username: str) -> str:
    """The normalised username, or AccountRefused saying what a username may contain."""
    name = normalise_username(username)
    if not _USERNAME.match(name):
        raise AccountRefused(
            "A username is 1-64 characters: letters, digits and . _ @ + - (an email address works), "
            "starting with a letter or digit"
        )
    return name


#: zxcvbn estimates from at most this many characters (its own limit); a longer password is judged by its start.
_STRENGTH_CHARACTERS = 72
_WEAK = {
    0: "is among the first guesses an attacker would try",
    1: "would be guessed quickly",
    2: "could be guessed by an attacker who had the stored hashes",
}


def check_password(password: str, *, min_length: int | None = None, min_strength: int | None = None,
                   known_words: Iterable[str] = (), demo_accounts: bool = False) -> str:
    """The password, or AccountRefused when it is too short, too easy to guess, or the demo's published one.

    The demo accounts' password is in the README, so it is refused for every account but theirs
    (`demo_accounts`), whatever the clinic sets as the least strength (IT review: at strength 2 or
    below it was let through).

    Easy to guess is zxcvbn's estimate (common passwords, names, dates, keyboard runs, and the
    account's own `known_words` such as its username), as NIST SP 800-63B asks a verifier to check
    new passwords against values known to be commonly used or expected.
    """
    settings = get_settings()
    min_length = min_length or settings.min_password_length
    min_strength = settings.min_password_strength if min_strength is None else min_strength
    if password is None or len(password) < min_length:
        raise AccountRefused(f"A password needs at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountRefused(f"A password may have at most {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise AccountRefused("A password cannot be only spaces")
    if not demo_accounts and password.strip().lower() == DEMO_PASSWORD:
        raise AccountRefused(f"{DEMO_PASSWORD} is the demo accounts' published password; choose another")
    if min_strength:
        from zxcvbn import zxcvbn  # loads its word lists; only when a password is being set

        words = {w.lower() for w in known_words if w}
        words |= {part for w in words for part in re.split(r"[^a-z0-9]+", w) if len(part) >= 3}  # 'ann.lee' -> 'lee'
        guess = zxcvbn(password[:_STRENGTH_CHARACTERS], user_inputs=sorted(words), max_length=_STRENGTH_CHARACTERS)
        if guess["score"] < min_strength:
            hint = " ".join(filter(None, [guess["feedback"].get("warning"), *guess["feedback"].get("suggestions", [])]))
            raise AccountRefused(
                f"This password {_WEAK.get(guess['score'], 'is too easy to guess')}. "
                + (hint + " " if hint else "")
                + "A few unrelated words together make a strong password that is easy to remember."
            )
    return password


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountRefused(f"Role {role!r} is not one of {', '.join(ROLES)}")
    return role


def _check_display_name(display_name: str, username: str) -> str:
    """The full name as colleagues see it beside every review and change: no control or hidden direction characters."""
    from store.validation import LINE_BREAKS, control_character_problem

    name = (display_name or "").strip() or username
    if len(name) > 200:
        raise AccountRefused("A display name may have at most 200 characters")
    if any(c in name for c in LINE_BREAKS):  # a name is one line: a line break split `users list` and every byline
        raise AccountRefused("A display name is one line: remove the line break or tab")
    problem = control_character_problem("The display name", name)
    if problem:
        raise AccountRefused(problem)
    return name


def can_write(role: str | None) -> bool:
    """Whether this role may add, amend or void clinical records."""
    return role in WRITER_ROLES


def idle_expired(last_activity: float | None, now: float, timeout_minutes: int) -> bool:
    """True when the last activity (epoch seconds) is more than `timeout_minutes` before `now`, or unknown."""
    if last_activity is None:
        return True
    return now - float(last_activity) > timeout_minutes * 60


def has_accounts(engine: Engine) -> bool:
    """Whether any account exists; with none, the dashboard offers to create the first admin."""
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(User)).scalar_one() > 0


def get_user(engine: Engine, username: str) -> User | None:
    """The account called `username` (any case), or None."""
    with Session(engine, expire_on_commit=False) as db:
        return db.get(User, normalise_username(username))


def list_users(engine: Engine) -> list[User]:
    """Every account, by username."""
    with Session(engine, expire_on_commit=False) as db:
        return list(db.exec(select(User).order_by(User.username)).scalars())


def staff_names(engine: Engine) -> dict[str, str]:
    """Username -> full name of every account, to show staff as colleagues know them."""
    return {u.username: u.display_name for u in list_users(engine)}


def staff_label(username, names: dict[str, str]) -> str:
    """A username as colleagues know it: 'Ann Lee (ann.lee)'; a name of no account ('cli:root', 'demo-setup') as it is."""
    if not isinstance(username, str):
        return ""
    name = names.get(username)
    return f"{name} ({username})" if name and name != username else username


def _enabled_admins(db: Session) -> int:
    q = select(func.count()).select_from(User).where(User.role == "admin", User.disabled.is_(False))
    return db.execute(q).scalar_one()


def _insert(db: Session, *, username: str, display_name: str, role: str, password: str, actor: str,
            now: datetime) -> User:
    user = User(
        username=username, display_name=display_name, role=role, password_hash=hash_password(password),
        disabled=False, failed_attempts=0, locked_until=None, created_at=now,
    )
    db.add(user)
    db.flush()
    record_event(db, actor=actor, action="user_create", entity=_ENTITY, entity_key=username, after=_public(user), at=now)
    return user


def create_user(
    engine: Engine,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    actor: str,
    allow_demo_names: bool = False,
    now: datetime | None = None,
) -> User:
    """Add a local account; demo account names are refused unless asked for AND this is a demo database."""
    name = check_username(username)
    if name in DEMO_USERNAMES and not (allow_demo_names and is_demo(engine)):
        raise AccountRefused(f"{name} is a demo account name; demo accounts exist only in a demo database")
    display = _check_display_name(display_name, name)
    _check_role(role)
    check_password(password, known_words=(name, display), min_strength=0 if allow_demo_names else None,
                   demo_accounts=allow_demo_names)
    now = _utcnow(now)
    try:
        with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
            return _insert(db, username=name, display_name=display, role=role, password=password, actor=actor, now=now)
    except IntegrityError:
        raise AccountRefused(f"There is already an account called {name}") from None


#: app_setting key of the hashed one-time code that lets the browser create the first admin.
SETUP_CODE_KEY = "first_admin_setup_code"
NO_SETUP_CODE = ("The set-up code is not right. `ketawatch serve` prints it when it starts on a database with no "
                 "accounts (each start prints a new one); or create the first administrator on the server with "
                 "ketawatch users add NAME --role admin, run with the same database (--db, or the same .env)")


def new_setup_code(engine: Engine) -> str | None:
    """A fresh one-time code for creating the first admin in the browser (only its hash is kept), or None once the
    database has accounts.

    Without it, whoever reached an empty installation first, a mistyped database path or an address open to the
    network, would make themselves its administrator. `ketawatch serve` prints the code on the server's console,
    where only the person installing it sees it; a new code replaces the one before.
    """
    if has_accounts(engine):
        return None
    code = "-".join(secrets.token_hex(3).upper() for _ in range(3))  # 72 bits, typed from a console: ABC123-...
    set_value(engine, SETUP_CODE_KEY, hash_password(code))
    return code


def create_first_admin(
    engine: Engine, *, username: str, display_name: str, password: str, setup_code: str,
    now: datetime | None = None,
) -> User:
    """Create the very first account, an admin, given the set-up code `ketawatch serve` printed; refused once any
    account exists (first-run set-up only)."""
    stored = get_value(engine, SETUP_CODE_KEY)
    typed = re.sub(r"[^0-9A-F-]", "", (setup_code or "").upper())  # a space or comma copied with it is no part of it
    if not stored or not verify_password(stored, typed):
        raise AccountRefused(NO_SETUP_CODE)
    name = check_username(username)
    if name in DEMO_USERNAMES:
        raise AccountRefused(f"{name} is a demo account name; choose your own username")
    display = _check_display_name(display_name, name)
    check_password(password, known_words=(name, display))
    now = _utcnow(now)
    try:
        with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
            if db.get_bind().dialect.name == "postgresql":
                db.execute(text("LOCK TABLE app_user IN SHARE ROW EXCLUSIVE MODE"))
            if db.execute(select(func.count()).select_from(User)).scalar_one() > 0:
                raise AccountRefused("KetaWatch already has accounts; ask an admin to add yours")
            admin = _insert(db, username=name, display_name=display, role="admin", password=password,
                            actor=name, now=now)
    except IntegrityError:
        raise AccountRefused("KetaWatch already has accounts; ask an admin to add yours") from None
    set_value(engine, SETUP_CODE_KEY, "")  # used: no second first admin from the same code
    return admin


def create_demo_accounts(engine: Engine, *, now: datetime | None = None) -> list[User]:
    """The three demo accounts (password `demo-password`), only in a demo database; existing ones are kept."""
    if not is_demo(engine):
        raise AccountRefused("Demo accounts can only be created in a demo database")
    made = []
    for username, display_name, role in DEMO_ACCOUNTS:
        if get_user(engine, username) is None:
            made.append(create_user(engine, username=username, display_name=display_name, role=role,
                                    password=DEMO_PASSWORD, actor="demo-setup", allow_demo_names=True, now=now))
    return made


def _change(engine: Engine, username: str, *, actor: str, action: str, now: datetime | None, apply) -> User:
    """Load an account, apply a change, and write the audit line with the values before and after."""
    now = _utcnow(now)
    with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
        user = db.get(User, normalise_username(username))
        if user is None:
            raise AccountRefused(f"There is no account called {normalise_username(username)}")
        before = _public(user)
        detail = apply(db, user) or {}
        db.add(user)
        db.flush()
        record_event(db, actor=actor, action=action, entity=_ENTITY, entity_key=user.username,
                     before=before, after=_public(user), at=now, **detail)
        return user


def _keep_an_admin(db: Session, user: User) -> None:
    if user.role == "admin" and not user.disabled and _enabled_admins(db) <= 1:
        raise AccountRefused(f"{user.username} is the only active admin; make another admin first")


def set_role(engine: Engine, username: str, role: str, *, actor: str, now: datetime | None = None) -> User:
    """Change an account's role; the last active admin cannot be demoted."""
    _check_role(role)

    def apply(db: Session, user: User) -> None:
        if user.role == role:  # refused, so the audit trail never holds a change from reviewer to reviewer
            raise AccountRefused(f"{user.username} is already {role}; nothing changed")
        if role != "admin":
            _keep_an_admin(db, user)
        user.role = role

    return _change(engine, username, actor=actor, action="role_change", now=now, apply=apply)


def reset_password(engine: Engine, username: str, password: str, *, actor: str, now: datetime | None = None) -> User:
    """Give an account a new password and lift any lockout; the dashboard then ends its signed-in sessions.

    Not one's own: that is `change_own_password`, which asks for the current one, so that a screen left signed in
    cannot be turned into a takeover (security review: the Users page reset an admin's own without it).
    """
    if normalise_username(actor) == normalise_username(username):
        raise AccountRefused("Change your own password on My account, which asks for your current one")

    def apply(_db: Session, user: User) -> None:
        check_password(password, known_words=(user.username, user.display_name))
        user.password_hash = hash_password(password)
        user.password_changed_at = _utcnow(now)
        user.failed_attempts = 0
        user.locked_until = None

    return _change(engine, username, actor=actor, action="password_reset", now=now, apply=apply)


def change_own_password(engine: Engine, username: str, current: str, new: str, *, now: datetime | None = None) -> User:
    """A signed-in user replaces their own password, after giving the current one again.

    The current password is asked for so that a screen left signed in cannot be turned into a
    takeover of the account; a wrong one is audited and counts toward the lockout like a failed sign-in.
    """
    now = _utcnow(now)
    name = normalise_username(username)
    settings = get_settings()
    # Counted first and checked outside any transaction, as a sign-in is (`authenticate`): two argon2 runs held the
    # write lock, and parallel guesses from an open screen could outrun the lock.
    refused: AccountRefused | None = None
    with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
        user = db.get(User, name, with_for_update=True)
        if user is None or user.disabled:
            raise AccountRefused("This account is no longer active; nothing changed")
        taken = _take_attempt(user, now, settings)  # no guessing past the lock from an open screen
        if not taken:
            refused = AccountRefused(_locked_message(user.locked_until, now) + " Nothing changed.")
        checked = user.password_hash
        db.add(user)
    if refused is not None:
        raise refused
    right = verify_password(checked, current or "")
    unusable: AccountRefused | None = None
    new_hash = None
    if right:
        try:
            if new == current:
                raise AccountRefused("The new password is the same as the current one; nothing changed")
            check_password(new, known_words=(user.username, user.display_name))
            new_hash = hash_password(new)
        except AccountRefused as exc:
            unusable = exc
    with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
        user = db.get(User, name, with_for_update=True)
        if user is None or user.disabled:
            refused = AccountRefused("This account is no longer active; nothing changed")
        elif user.password_hash != checked:
            refused = AccountRefused("The password was changed meanwhile (reset by an admin or in another window); "
                                     "nothing changed")
        elif not right:
            _failed_try(user, taken, now, settings)  # as a failed sign-in is
            db.add(user)
            record_event(db, actor=name, action="password_change_refused", entity=_ENTITY, entity_key=name, at=now,
                         reason="wrong_current_password", failed_attempts=taken)
            refused = AccountRefused("The current password is not right; nothing changed")
        elif unusable is not None:  # the right current password
            _give_back_try(user)
            db.add(user)
            refused = unusable
        else:
            user.password_hash = new_hash
            user.password_changed_at = now
            user.failed_attempts = 0
            user.locked_until = None
            db.add(user)
            record_event(db, actor=name, action="password_change", entity=_ENTITY, entity_key=name, at=now)
    if refused is not None:
        raise refused  # raised after the block, so the failure count and its audit line are committed
    return user


def set_disabled(engine: Engine, username: str, disabled: bool, *, actor: str, now: datetime | None = None) -> User:
    """Disable an account (it can no longer sign in, and open sessions end) or enable it again."""

    def apply(db: Session, user: User) -> None:
        locked = bool(user.failed_attempts or user.locked_until)
        if user.disabled == disabled and (disabled or not locked):  # enabling a locked account still unlocks it
            raise AccountRefused(f"{user.username} is already {'disabled' if disabled else 'enabled'}; nothing changed")
        if disabled:
            _keep_an_admin(db, user)
        was_enabled = not user.disabled
        failures = int(user.failed_attempts or 0)
        held = user.locked_until is not None and _utcnow(now) < user.locked_until  # a lock still in force
        user.disabled = disabled
        if not disabled:
            user.failed_attempts = 0
            user.locked_until = None
            # Said in the line: its before and after were the same when only a lockout was lifted (IT review); a
            # failed sign-in or an expired lock is no lockout (code review).
            said = {"lockout_lifted": True} if held else ({"failed_sign_ins_cleared": failures} if failures else {})
            return {**said, **({"already_enabled": True} if was_enabled and said else {})}
        return None

    return _change(engine, username, actor=actor, action="user_disable" if disabled else "user_enable", now=now,
                   apply=apply)


def _refuse(db: Session, *, actor: str, username: str, reason: str, message: str, now: datetime, **detail) -> None:
    detail = {k: v for k, v in detail.items() if v is not None}  # no 'address: None' where it is not known
    record_event(db, actor=actor, action="sign_in_failed", entity=_ENTITY, entity_key=username[:64] or None,
                 at=now, reason=reason, **detail)
    raise SignInRefused(message)


def _locked_message(locked_until: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((locked_until - now).total_seconds() / 60))
    return (f"This account is locked after too many failed sign-ins. Try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}, or ask an admin to reset the password.")


#: The key, kept in the database, of what the audit trail keeps of a username with no account.
_UNKNOWN_NAME_KEY = "unknown_username_key"


def unknown_name_mark(engine: Engine, name: str) -> str:
    """What the audit trail keeps of a username with no account: a keyed fingerprint ("unknown:..."), not the text.

    Such a name is often a password typed into the wrong box. The same name always gives the same
    mark in one database, so its failures still count toward its lock and an admin can see repeats.
    """
    key = database_secret(engine, _UNKNOWN_NAME_KEY).encode("utf-8")
    return "unknown:" + hmac.new(key, name.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def _unknown_name_failures(db: Session, name: str, now: datetime, mark: str | None = None) -> tuple[int, datetime | None]:
    """Failures in a row and the end of any lock of a username with no account, as an account would have them.

    Replays every `unknown_account` refusal of the name in the audit trail under the same rule as
    an account's lockout: the set number of failures in a row locks it for the set time, refusals
    during a lock do not count, and the first failure after a lock starts the count again. (An
    account's count lasts until a successful sign-in, which a name with no account never has.)
    Lines are found by the name's `mark` and, for lines written before marks, by the name itself.
    """
    from store.models import AuditEvent

    settings = get_settings()
    lock = timedelta(minutes=settings.lockout_minutes)
    rows = db.execute(
        select(AuditEvent.at, AuditEvent.detail)
        .where(AuditEvent.action == "sign_in_failed", AuditEvent.entity_key.in_([name, mark or name]),
               AuditEvent.at <= now)
        .order_by(AuditEvent.at)
    ).all()
    count, until = 0, None
    for at in (at for at, detail in rows if (detail or {}).get("reason") == "unknown_account"):
        if until is not None and at < until:
            continue
        count = 1 if until is not None else count + 1
        until = at + lock if count >= settings.lockout_attempts else None
    return count, until


def _take_attempt(user: User, now: datetime, settings) -> int:
    """Count this attempt against `user` before its password is checked: its number in the count, or 0 when the account
    is (now) locked.

    Counted first, in its own short write, so that guesses sent in parallel cannot all be checked
    while the count still reads low (security review: 30 at once got 18 checks past a lock of 5),
    and so that the slow password check holds no write lock: on SQLite it had stopped every save
    for as long as someone kept the sign-in page busy. An attempt that finds every try already taken
    by attempts still being checked locks the account there and then. A failed attempt is answered by its own
    number, not by the count when it ends: read then, it includes the attempts still being checked, and a burst of
    guesses at a real account all said "locked" where an unknown name's said "not right" four times (code review).
    """
    if user.locked_until is not None and now < user.locked_until:
        return 0
    count = 1 if user.locked_until is not None else (user.failed_attempts or 0) + 1  # an ended lock starts again
    if count > settings.lockout_attempts:
        user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
        return 0
    user.failed_attempts, user.locked_until = count, None
    return count


def _failed_try(user: User, taken: int, now: datetime, settings) -> bool:
    """A wrong password on try number `taken` (from `_take_attempt`): the last allowed try locks the account, unless a lock
    is already in force. Whether the account is locked now."""
    if taken < settings.lockout_attempts:
        return False
    if user.locked_until is None or user.locked_until <= now:
        user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
    return True


def _give_back_try(user: User) -> None:
    """The right password, refused for another reason (a disabled account, an unusable new password): its try is not a
    failure, so the count goes back down."""
    user.failed_attempts = max((user.failed_attempts or 0) - 1, 0)


def authenticate(engine: Engine, username: str, password: str, *, now: datetime | None = None,
                 address: str | None = None) -> User:
    """Check a username and password, counting failures toward a lockout kept in the database.

    Raises SignInRefused; its message is the same for an unknown account and a wrong password,
    and says plainly when the account is locked or disabled. Every attempt is audited, with the
    network `address` it came from when the dashboard knows it. (The tablet's staff exit uses
    `confirm_at_tablet`, which does not lock.) Three steps: the attempt is counted in a short write,
    the password is checked outside any transaction, and the outcome is written in a second short write.
    """
    settings = get_settings()
    now = _utcnow(now)
    name = normalise_username(username)[:64]
    mark = unknown_name_mark(engine, name)  # worked out for every name, so that it takes no longer for some
    with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
        user = db.get(User, name, with_for_update=True) if name else None
        known = user is not None
        taken = _take_attempt(user, now, settings) if known else 0
        checked_hash = user.password_hash if taken else None
        locked_until = user.locked_until if known else None
        if known:
            db.add(user)
    # Every answer takes one password check, so neither the words nor their timing tell a visitor which usernames
    # exist or are locked.
    right = verify_password(checked_hash or _DUMMY_HASH, password or "")
    right = right and bool(checked_hash)  # the stand-in hash's own words open nothing, nor does a damaged hash (code review)
    rehashed = hash_password(password) if right and _hasher.check_needs_rehash(checked_hash) else None
    refused: SignInRefused | None = None
    with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
        user = db.get(User, name, with_for_update=True) if known else None
        try:
            if user is None:
                # Refused as a real account would be, lock included.
                count, until = _unknown_name_failures(db, name, now, mark)
                if until is not None and now < until:
                    _refuse(db, address=address, actor="(unknown)", username=mark, reason="locked", now=now,
                            message=_locked_message(until, now))
                count = 1 if until is not None else count + 1
                locks = count >= settings.lockout_attempts
                _refuse(db, address=address, actor="(unknown)", username=mark, reason="unknown_account", now=now,
                        message=_locked_message(now + timedelta(minutes=settings.lockout_minutes), now) if locks
                        else _WRONG)
            if not taken:
                _refuse(db, address=address, actor=name, username=name, reason="locked", now=now,
                        message=_locked_message(locked_until, now))
            if user.password_hash != checked_hash:  # reset or changed while being checked: that password is gone
                right = False
            if not right:
                # Counted and locked for a disabled account too, so that an account that never locks is not
                # known to be a disabled one. The attempt was counted before the check, as number `taken`.
                if _failed_try(user, taken, now, settings):
                    db.add(user)
                    _refuse(db, address=address, actor=name, username=name, reason="wrong_password",
                            failed_attempts=taken, locked_until=user.locked_until, now=now,
                            message=_locked_message(user.locked_until, now))
                _refuse(db, address=address, actor=name, username=name, reason="wrong_password",
                        failed_attempts=taken, message=_WRONG, now=now)
            if user.disabled:
                # Only someone who knows the password learns that the account exists and is disabled; the right
                # password gives back the try it was counted as.
                _give_back_try(user)
                db.add(user)
                _refuse(db, address=address, actor=name, username=name, reason="disabled", now=now,
                        message="This account is disabled. Ask an admin if you need access.")
        except SignInRefused as exc:
            refused = exc  # leave the block normally so the failure count and audit line commit
        else:
            if rehashed:
                user.password_hash = rehashed
            user.failed_attempts = 0
            user.locked_until = None
            user.last_sign_in_at = now
            db.add(user)
            record_event(db, actor=name, action="sign_in", entity=_ENTITY, entity_key=name, at=now, method="password",
                         **({"address": address} if address else {}))
    if refused is not None:
        raise refused
    return user


def confirm_at_tablet(engine: Engine, username: str, password: str, *, address: str | None = None,
                      now: datetime | None = None) -> bool:
    """Whether `password` is the signed-in clinician's own, to take a tablet back from patient mode; audited, but a
    wrong one does not count toward the account's lock.

    Wrong passwords at the tablet are most often the patient's: counted, a patient could lock their clinician
    out of every screen for the lock's time. The dashboard limits tries instead (it signs the tablet out after
    the set number), so further guessing happens at the sign-in page, where it counts. A clinician whose
    account was locked by guessing elsewhere can still take back the tablet their session holds.
    """
    now = _utcnow(now)
    name = normalise_username(username)[:64]
    # Read, then check outside any transaction (as signing in does): an argon2 check inside the write held up every
    # other save on SQLite for its 0.1 s.
    with Session(engine, expire_on_commit=False) as db:
        user = db.get(User, name)
    checked_hash = user.password_hash if user is not None else None
    right = user is not None and not user.disabled and verify_password(checked_hash, password or "")
    with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
        now_stored = db.get(User, name)  # disabled, or given a new password, while the check ran: refused (code review)
        right = right and now_stored is not None and not now_stored.disabled and now_stored.password_hash == checked_hash
        if right:
            record_event(db, actor=name, action="sign_in", entity=_ENTITY, entity_key=name, at=now, method="password",
                         purpose="leave_patient_mode", **({"address": address} if address else {}))
        else:
            record_event(db, actor=name, action="sign_in_failed", entity=_ENTITY, entity_key=name, at=now,
                         reason="wrong_password", purpose="leave_patient_mode", counted_toward_lock=False,
                         **({"address": address} if address else {}))
    return right


def sign_in_sso(engine: Engine, identities: Iterable[str | None], *, now: datetime | None = None,
                address: str | None = None) -> User:
    """Map a single-sign-on identity (email or preferred username) to an enabled local account, or refuse; audited
    with the network `address` it came from when the dashboard knows it, as a password sign-in is."""
    now = _utcnow(now)
    names = [normalise_username(i) for i in identities if i]
    refused: SignInRefused | None = None
    with Session(for_writing(engine), expire_on_commit=False) as db, db.begin():
        # An identity longer than any username matches none: cut to 64 characters, "<64-character admin>.evil.example"
        # signed in as that admin (security review).
        user = next((u for u in (db.get(User, n) for n in names if len(n) <= 64) if u is not None), None)
        try:
            if user is None:
                _refuse(db, actor="(unknown)", username=names[0][:64] if names else "", reason="sso_unknown_identity",
                        now=now, method="sso", address=address,
                        message="Your single sign-on identity is not linked to a KetaWatch account. "
                                "Ask an admin to add an account whose username is your email address.")
            if user.disabled:
                _refuse(db, actor=user.username, username=user.username, reason="disabled", now=now, method="sso",
                        address=address, message="This account is disabled. Ask an admin if you need access.")
        except SignInRefused as exc:
            refused = exc
        else:
            user.last_sign_in_at = now
            db.add(user)
            record_event(db, actor=user.username, action="sign_in", entity=_ENTITY, entity_key=user.username,
                         at=now, method="sso", **({"address": address} if address else {}))
    if refused is not None:
        raise refused
    return user


def record_sign_out(engine: Engine, username: str, *, reason: str, now: datetime | None = None) -> None:
    """Audit a sign-out: chosen by the user, after the idle time, or because the account was disabled or its password changed."""
    now = _utcnow(now)
    with Session(for_writing(engine)) as db, db.begin():
        record_event(db, actor=normalise_username(username)[:64], action="sign_out", entity=_ENTITY,
                     entity_key=normalise_username(username)[:64], at=now, reason=reason)
