"""My account (every signed-in user): who you are signed in as, and a change of your own password."""

from __future__ import annotations

import streamlit as st

from dashboard import data, ui
from dashboard.auth import password_changed_here, require_user
from ketawatch import accounts

user = require_user()  # again here: a page run directly (by URL, before the app's navigation ran) must not skip sign-in
st.title("My account", anchor=False)
notice = st.session_state.pop("account_notice", None)
if notice:
    st.success(notice)
st.write(f"Signed in as **{ui.md_escape(user.display_name)}** ({ui.md_escape(user.username)}), role {user.role}.")

st.subheader("Change my password")
st.caption("Give your current password again, so that nobody can change it at a screen you left signed in. "
           "Admins reset other people's passwords on the Users page. Changing it signs you out everywhere else.")
with st.form("account_password", clear_on_submit=True):
    current = st.text_input("Current password", type="password", autocomplete="current-password")
    new, repeat = ui.new_password_inputs("New password", repeat_label="Repeat the new password", key="account_password")
    submitted = st.form_submit_button("Change my password", type="primary")
if submitted and ui.passwords_match(new, repeat):
    try:
        changed = accounts.change_own_password(data.engine(), user.username, current, new)
    except accounts.AccountRefused as exc:
        st.error(exc.message)
    else:
        password_changed_here(changed)
        st.session_state["account_notice"] = ("Your password was changed. Use the new one next time you sign in; "
                                              "any other window or device signed in as you is signed out.")
        st.rerun()
