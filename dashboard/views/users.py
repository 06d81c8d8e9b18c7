"""Users (admins only): add accounts, change roles, reset passwords, disable and enable; every change is audited."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.auth import is_admin, require_user
from ketawatch import accounts
from store.app_settings import is_demo
from store.vocabulary import ROLES

ROLE_WORDS = {
    "admin": "Admin: accounts, audit trail and everything else",
    "clinician": "Clinician: read and write clinical records, every export",
    "reviewer": "Reviewer: read only, de-identified exports only",
}

user = require_user()  # again here: a page run directly (by URL, before the app's navigation ran) must not skip sign-in
st.title("Users", anchor=False)
if not is_admin(user):
    st.error("Account management is for admins only.", icon=":material/lock:")
    st.stop()

engine = data.engine()
notice = st.session_state.pop("users_notice", None)
if notice:
    st.success(notice)
if is_demo(engine):
    st.info("This is a demo database: the demo accounts exist only here.")


def _attempt(change, describe) -> None:
    """Make one account change; show its refusal in words, or reload the page with what was done."""
    try:
        changed = change()
    except accounts.AccountRefused as exc:
        st.error(exc.message)
    else:
        st.session_state["users_notice"] = describe(changed)
        st.rerun()


people = accounts.list_users(engine)
st.dataframe(
    pd.DataFrame({
        "Username": [u.username for u in people],
        "Name": [u.display_name for u in people],
        "Role": [u.role for u in people],
        "Status": ["disabled" if u.disabled else "active" for u in people],
        "Locked until": [ui.fmt_datetime(u.locked_until) for u in people],
        "Failed sign-ins": [u.failed_attempts for u in people],
        "Last sign-in": [ui.fmt_datetime(u.last_sign_in_at) for u in people],
    }),
    hide_index=True, width="stretch",
)
names = [u.username for u in people]
# Only then does an admin's change to their own account need a second click: the last admin is refused anyway.
another_admin = any(u.role == "admin" and not u.disabled and u.username != user.username for u in people)
# Keyed, so the tab an admin was working in stays open after each change reloads the page.
add, role_tab, password_tab, access_tab = st.tabs(
    ["Add an account", "Change role", "Reset password", "Disable or enable"], key="users_tab", on_change="rerun")
_OWN_KEY = "users_own_change"
_OWN_WORDS = {
    "role": "You are about to make your own account {value}. The Users and Audit trail pages close for you at "
            "once, and only another admin can give them back.",
    "disable": "You are about to disable your own account. You will be signed out at once, and only another "
               "admin can enable it again.",
}


def _own_change(kind: str, value) -> None:
    """An admin's change that takes away their own access waits for a second, deliberate click."""
    st.session_state[_OWN_KEY] = (kind, value)


def _confirm_own_change(kind: str) -> None:
    """The question asked before an admin demotes or disables themselves, under the form that asked for it."""
    pending = st.session_state.get(_OWN_KEY)
    if not pending or pending[0] != kind:
        return
    value = pending[1]
    st.warning(_OWN_WORDS[kind].format(value=value), icon=":material/warning:")
    yes, no = st.columns(2)
    if no.button("Cancel", key=f"users_own_cancel_{kind}"):
        st.session_state.pop(_OWN_KEY, None)
        st.rerun()
    if yes.button("Yes, change my own account", type="primary", key=f"users_own_yes_{kind}"):
        st.session_state.pop(_OWN_KEY, None)
        if kind == "role":
            _attempt(lambda: accounts.set_role(engine, user.username, value, actor=user.username),
                     lambda changed: f"{changed.username} is now {changed.role}.")
        else:
            _attempt(lambda: accounts.set_disabled(engine, user.username, True, actor=user.username),
                     lambda changed: f"{changed.username} is now disabled.")


with add:
    with st.form("users_add", clear_on_submit=False):
        username = st.text_input("Username (an email address works, and links single sign-on)")
        display_name = st.text_input("Full name")
        role = st.selectbox("Role", ROLES, index=ROLES.index("clinician"), format_func=ROLE_WORDS.get)
        password, repeat = ui.new_password_inputs()
        submitted = st.form_submit_button("Add account", type="primary")
    if submitted and ui.passwords_match(password, repeat):
        _attempt(lambda: accounts.create_user(engine, username=username, display_name=display_name, role=role,
                                                  password=password, actor=user.username),
                     lambda made: f"Account {made.username} added as {made.role}.")

with role_tab:
    with st.form("users_role"):
        who = st.selectbox("Account", names, key="users_role_who")
        new_role = st.selectbox("New role", ROLES, format_func=ROLE_WORDS.get, key="users_role_new")
        submitted = st.form_submit_button("Change role", type="primary")
    if submitted and who == user.username and new_role != "admin" and another_admin:
        _own_change("role", new_role)
    elif submitted and who:
        _attempt(lambda: accounts.set_role(engine, who, new_role, actor=user.username),
                 lambda changed: f"{changed.username} is now {changed.role}.")
    _confirm_own_change("role")

with password_tab:
    with st.form("users_password"):
        who = st.selectbox("Account", names, key="users_password_who")
        password, repeat = ui.new_password_inputs("New password", repeat_label="Repeat the new password",
                                                  key="users_password")
        submitted = st.form_submit_button("Reset password", type="primary")
    if submitted and who and ui.passwords_match(password, repeat):  # not one's own: accounts.reset_password refuses it
        def reset(changed) -> str:
            return (f"The password of {changed.username} was reset and any lockout lifted. "
                    "Anyone signed in as them is signed out at their next click.")
        _attempt(lambda: accounts.reset_password(engine, who, password, actor=user.username), reset)

with access_tab:
    with st.form("users_access"):
        who = st.selectbox("Account", names, key="users_access_who")
        disable = st.radio("Access", [True, False], format_func=lambda d: "Disable (cannot sign in)" if d else "Enable",
                           horizontal=True, key="users_access_disable")
        submitted = st.form_submit_button("Apply", type="primary")
    if submitted and who == user.username and disable and another_admin:
        _own_change("disable", True)
    elif submitted and who:
        _attempt(lambda: accounts.set_disabled(engine, who, disable, actor=user.username),
                 lambda changed: f"{changed.username} is now {'disabled' if changed.disabled else 'enabled'}.")
    _confirm_own_change("disable")
