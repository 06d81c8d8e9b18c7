"""Who is using the dashboard: sign-in, first-run admin set-up, idle sign-out and optional single sign-on.

The app calls `require_user()` before it builds any navigation, so nobody sees a page (or a
patient) before signing in. The signed-in user lives in `st.session_state["user"]` as a dict
{"username", "display_name", "role"} and the time of the last run in
`st.session_state["last_activity"]` (epoch seconds); the account is re-read on every run, so a
disabled account, a changed role or a changed password applies at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

import streamlit as st

from dashboard import data
from dashboard.ui import md_escape, new_password_inputs, passwords_match
from ketawatch import accounts
from store.app_settings import is_demo
from store.settings import get_settings

USER_KEY = "user"
ACTIVITY_KEY = "last_activity"
_NOTICE_KEY = "auth_notice"
_RETURN_KEY = "auth_requested_page"
_SSO_KEY = "auth_via_sso"
_SSO_REFUSED_KEY = "auth_sso_refused"
_PASSWORD_KEY = "auth_password_changed_at"
#: How old a single sign-on identity token may be when a new browser session takes it up: Streamlit keeps the identity
#: in a cookie for 30 days, so a tab opened on a shared computer after the last clinician closed theirs was signed in
#: as them without a click (security review, 2026-12-01). A sign-in just made comes back from the identity provider
#: within seconds; a minute's leeway for the two clocks.
SSO_FRESH_SECONDS = 300
SSO_CLOCK_LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class SignedInUser:
    """The person behind this browser session, as the pages need them: name and role."""

    username: str
    display_name: str
    role: str


def current_user() -> SignedInUser | None:
    """The signed-in user of this session, or None (the small seam that tests sign in through)."""
    data = st.session_state.get(USER_KEY)
    if not data:
        return None
    return SignedInUser(username=data["username"], display_name=data["display_name"], role=data["role"])


def can_write(user: SignedInUser | None) -> bool:
    """Whether this user may add, amend or void clinical records (admins and clinicians)."""
    return user is not None and accounts.can_write(user.role)


def may_still_write(user: SignedInUser | None) -> bool:
    """Whether this session may still write, the account read afresh; for button callbacks, which run before the page's sign-in check.

    Without it, a save clicked by a clinician disabled or made a reviewer a moment ago, whose
    password was reset, or who had been idle past the time-out (a laptop asleep, a tab in the
    background) was written before the page run that signs them out. When it says no, a toast says
    why and nothing is saved; the page run that follows signs the session out, or shows a demoted
    user the read-only view.
    """
    account = accounts.get_user(_engine(), user.username) if user is not None else None
    ended = _why_session_ends(account)
    if ended is None and accounts.can_write(account.role):
        return True
    why = ended[2] if ended is not None else \
        f"the account's role is now {account.role}, which cannot add or change records"
    st.toast(f"Nothing was saved: {why}.", icon=":material/block:")
    return False


def is_admin(user: SignedInUser | None) -> bool:
    """Whether this user may manage accounts and read the audit trail."""
    return user is not None and user.role == "admin"


def _engine():
    return data.engine()


def _password_stamp(account: Any) -> str | None:
    changed = getattr(account, "password_changed_at", None)
    return changed.isoformat() if changed is not None else None


def account_check_for_later(user: SignedInUser) -> Callable[[], str | None]:
    """A check to run outside any script run (a download handed over on its click): why this session's account may no
    longer take the file, or None.

    The click starts no run, so the page's own sign-in check never saw it: a file prepared before the account was
    disabled, demoted or its password reset could still be downloaded after (security review), or after the idle
    time-out (code review). Session state is out of reach then, so the password stamp and the last activity are taken
    now; the account is read afresh on the click.
    """
    stamp, engine = st.session_state.get(_PASSWORD_KEY), _engine()
    active, minutes = st.session_state.get(ACTIVITY_KEY), get_settings().idle_timeout_minutes

    def check() -> str | None:
        if accounts.idle_expired(active, time.time(), minutes):  # a laptop woken from sleep with the button still shown
            return f"you were signed out after {minutes} minute{'s' if minutes != 1 else ''} without activity"
        account = accounts.get_user(engine, user.username)
        if account is None or account.disabled:
            return "the account is no longer active"
        if _password_stamp(account) != stamp:
            return "the account's password was changed after you signed in here"
        if account.role != user.role:
            return f"the account's role is now {account.role}"
        return None

    return check


def client_address() -> str | None:
    """The browser's network address for the audit trail, as Streamlit sees it (None on localhost; a proxy's own
    address unless the proxy forwards the client's)."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - outside a browser session (a script)
        return None
    return address if isinstance(address, str) else None  # under AppTest it is a stand-in object, not an address


def _start_session(account: Any, *, via_sso: bool = False, signing_in: bool = False) -> SignedInUser:
    """Keep the account in this browser session; on signing in, also note which password it signed in under."""
    user = SignedInUser(account.username, account.display_name, account.role)
    st.session_state[USER_KEY] = asdict(user)
    st.session_state[ACTIVITY_KEY] = time.time()
    st.session_state[_SSO_KEY] = via_sso
    if signing_in:
        st.session_state[_PASSWORD_KEY] = _password_stamp(account)
    return user


def password_changed_here(account: Any) -> None:
    """Keep this session signed in after its own user set a new password; their other sessions still end."""
    st.session_state[_PASSWORD_KEY] = _password_stamp(account)


def _end_session(reason: str, notice: str | None = None) -> None:
    """Forget the signed-in user (and audit why); with single sign-on, also drop the identity cookie.

    Everything this browser session held goes with them: the patient in view (and its `?patient=` link), forms
    half filled in, which patients' views are already in the audit trail. On a shared clinic computer the next
    person to sign in must not find a colleague's unsaved note, ready to be saved under their own name, nor open
    a record without the trail saying so.
    """
    data = st.session_state.get(USER_KEY)
    via_sso = bool(st.session_state.get(_SSO_KEY))
    if data:
        accounts.record_sign_out(_engine(), data["username"], reason=reason)
    refused_sso = st.session_state.get(_SSO_REFUSED_KEY)
    st.session_state.clear()
    st.query_params.clear()
    if refused_sso is not None:  # a refused single sign-on identity is audited once, not again after the sign-out
        st.session_state[_SSO_REFUSED_KEY] = refused_sso
    if notice:
        st.session_state[_NOTICE_KEY] = notice
    if via_sso and _sso_logged_in():
        st.logout()


def sign_out() -> None:
    """Sign the current user out (audited); the next run shows the sign-in page."""
    _end_session("signed_out", "You are signed out.")


def sign_out_tablet(tries: int) -> None:
    """End a tablet's session after `tries` wrong passwords at its staff exit (audited), so that further guessing
    of the clinician's password happens at the sign-in page, where it counts toward the account's lock."""
    _end_session("tablet_wrong_passwords", f"KetaWatch signed out after {tries} wrong passwords at the tablet's "
                                           "staff exit. Answers the patient sent are saved. Sign in to continue.")


def _sso_providers() -> list[str | None] | None:
    """The OIDC providers configured in secrets ([auth]), or None when single sign-on is not set up."""
    try:
        section = st.secrets.get("auth") if "auth" in st.secrets else None
    except Exception:  # noqa: BLE001 - no secrets file at all means no single sign-on
        return None
    if not section:
        return None
    named = [key for key, value in section.items() if hasattr(value, "keys")]
    return named or [None]


def _sso_logged_in() -> bool:
    try:
        return bool(st.user.get("is_logged_in"))
    except Exception:  # noqa: BLE001 - st.user unavailable outside a session
        return False


def sso_sign_in_is_fresh(issued_at: object, now: float) -> bool:
    """Whether an identity token issued at `issued_at` (its `iat` claim, seconds since 1970) is a sign-in just made,
    not one kept from an earlier window; a token without one (OpenID Connect requires it) is not taken as fresh."""
    try:
        age = now - float(issued_at)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return -SSO_CLOCK_LEEWAY_SECONDS <= age <= SSO_FRESH_SECONDS


def _sso_user(engine, hide_pages: Callable[[], object]) -> SignedInUser | None:
    """Map an OIDC identity to a local account; an unknown identity gets no access at all (nor the page list)."""
    if _sso_providers() is None or not _sso_logged_in():
        return None
    if not sso_sign_in_is_fresh(st.user.get("iat"), time.time()):
        hide_pages()
        st.title("KetaWatch", anchor=False)
        st.info("A single sign-on sign-in is not taken up again in a new window, a new tab or after a reload: "
                "sign in again.", icon=":material/lock:")
        if st.button("Sign in again", type="primary"):
            st.logout()  # the identity cookie goes; the sign-in page then offers single sign-on afresh
        st.stop()
    identities = [st.user.get("email"), st.user.get("preferred_username")]
    if st.session_state.get(_SSO_REFUSED_KEY) != identities:
        try:
            account = accounts.sign_in_sso(engine, identities, address=client_address())
            return _start_session(account, via_sso=True, signing_in=True)
        except accounts.SignInRefused as exc:
            st.session_state[_SSO_REFUSED_KEY] = identities  # audit the refusal once, not on every rerun
            st.session_state[_NOTICE_KEY] = exc.message
    hide_pages()
    st.title("KetaWatch", anchor=False)
    st.error(st.session_state.get(_NOTICE_KEY) or "No access.")
    if st.button("Sign out of single sign-on"):
        st.session_state.pop(_SSO_REFUSED_KEY, None)
        st.logout()
    st.stop()


def _idle_watch(timeout_minutes: int) -> None:
    """Re-run the app once the idle time has passed, so patient data leaves the screen without a click."""

    @st.fragment(run_every=min(60, timeout_minutes * 60))
    def watch() -> None:
        if accounts.idle_expired(st.session_state.get(ACTIVITY_KEY), time.time(), timeout_minutes):
            st.rerun(scope="app")

    watch()


def _why_session_ends(account: Any) -> tuple[str, str, str] | None:
    """Why this browser session must end now, as (audit reason, notice for the sign-in page, words for a refused save).

    None while it may go on. The one rule for the page run (`require_user`) and for a save button's
    callback (`may_still_write`): idle past the time-out; the account gone or disabled; or the
    password changed in another window, or reset by an admin, since this session signed in.
    """
    minutes = get_settings().idle_timeout_minutes
    if accounts.idle_expired(st.session_state.get(ACTIVITY_KEY), time.time(), minutes):
        idle = f"{minutes} minute{'s' if minutes != 1 else ''} without activity"
        return ("idle", f"You were signed out after {idle}. Sign in again to continue.",
                f"you were signed out after {idle}")
    if account is None or account.disabled:
        return ("account_disabled", "Your account is no longer active. Ask an admin if you need access.",
                "the account is no longer active")
    if _password_stamp(account) != st.session_state.get(_PASSWORD_KEY):
        return ("password_changed", "Your password was changed after you signed in here. "
                                    "Sign in again with the new password.",
                "the account's password was changed after you signed in here")
    return None


def require_user(hide_pages: Callable[[], object] | None = None) -> SignedInUser:
    """The signed-in user; otherwise show the sign-in (or first-run) page and stop the run here.

    `hide_pages` (the app's) declares the page list hidden before a sign-in page is shown: a run that declares none
    left the last user's page list in the sidebar after signing out.
    """
    engine = _engine()
    settings = get_settings()
    data = st.session_state.get(USER_KEY)
    if data:
        account = accounts.get_user(engine, data["username"])
        ended = _why_session_ends(account)
        if ended is not None:
            _end_session(ended[0], ended[1])
        else:
            user = _start_session(account, via_sso=bool(st.session_state.get(_SSO_KEY)))
            _idle_watch(settings.idle_timeout_minutes)
            return user
    hide = hide_pages or (lambda: None)
    if not accounts.has_accounts(engine):
        hide()
        _first_run_page(engine)
        st.stop()
    user = _sso_user(engine, hide)
    if user is not None:
        _idle_watch(settings.idle_timeout_minutes)
        return user
    hide()
    _sign_in_page(engine)
    st.stop()


def _sign_in_page(engine) -> None:
    """The only thing an anonymous visitor sees: a sign-in form (and the demo accounts, in a demo only)."""
    st.title("KetaWatch", anchor=False)
    st.caption("Early warning of psychological dependence in ketamine treatment. Sign in to continue.")
    notice = st.session_state.pop(_NOTICE_KEY, None)
    if notice:
        st.info(notice)
    if is_demo(engine):
        st.warning(
            "This is a demo database with invented patients. Demo accounts (password `demo-password`): "
            "`demo-admin`, `demo-clinician`, `demo-reviewer`."
        )
    providers = _sso_providers()
    if providers is not None:
        for provider in providers:
            label = "Sign in with single sign-on" + (f" ({provider})" if provider else "")
            if st.button(label, key=f"sso_{provider or 'default'}"):
                try:
                    st.login(provider) if provider else st.login()
                except Exception as exc:  # noqa: BLE001 - e.g. Authlib missing or [auth] incomplete
                    st.error(f"Single sign-on cannot start ({type(exc).__name__}); ask the administrator to check "
                             "the [auth] settings. You can still sign in with a KetaWatch account.")
        st.caption("Or sign in with a KetaWatch account:")
    with st.form("sign_in"):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            account = accounts.authenticate(engine, username, password, address=client_address())
        except accounts.SignInRefused as exc:
            st.error(exc.message)
        else:
            _remember_requested_page()
            _start_session(account, signing_in=True)
            st.rerun()


def _remember_requested_page() -> None:
    """Keep the page a signed-out visitor asked for (a bookmark, a link to /patient?patient=...) for after sign-in."""
    path = urlparse(st.context.url or "").path.rstrip("/").rsplit("/", 1)[-1]
    if path:
        st.session_state[_RETURN_KEY] = (path, {k: st.query_params[k] for k in st.query_params})


def requested_page() -> tuple[str, dict[str, str]] | None:
    """The (url path, query) asked for before signing in, once; None when the visitor came to the front page."""
    return st.session_state.pop(_RETURN_KEY, None)


def _first_run_page(engine) -> None:
    """Shown only while the database has no accounts at all: create the first admin."""
    st.title("Set up KetaWatch", anchor=False)
    st.write(
        "This database has no accounts yet. Create the first administrator; they can then add "
        "clinicians and reviewers on the Users page. The set-up code is printed on the server's console by "
        "`ketawatch serve` when it starts (or create the administrator there: `ketawatch users add NAME --role admin`, "
        "with the same `--db` or in the folder whose `.env` names this database)."
    )
    with st.form("first_admin"):
        setup_code = st.text_input("Set-up code", type="password", autocomplete="off")
        username = st.text_input("Username", autocomplete="username")
        display_name = st.text_input("Full name")
        password, repeat = new_password_inputs()
        submitted = st.form_submit_button("Create administrator", type="primary")
    if submitted:
        if not passwords_match(password, repeat):
            return
        try:
            accounts.create_first_admin(engine, username=username, display_name=display_name, password=password,
                                        setup_code=setup_code)
            account = accounts.authenticate(engine, username, password, address=client_address())
        except (accounts.AccountRefused, accounts.SignInRefused) as exc:
            st.error(exc.message)
        else:
            _start_session(account, signing_in=True)
            st.rerun()


def account_menu(user: SignedInUser) -> None:
    """Who is signed in, with a sign-out button, for the sidebar of every page."""
    with st.sidebar:
        st.caption(f"Signed in as {md_escape(user.display_name)} ({md_escape(user.username)}, {user.role})")
        if st.button("Sign out", key="auth_sign_out"):
            sign_out()
            st.rerun()
