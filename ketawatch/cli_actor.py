"""Who the audit trail names for a command-line action: the `--as` name, else `cli:<OS user>`.

Every command that writes or exports records its actor through this one function, so an
auditor reading the trail sees the same kind of name whichever command was run.
"""

from __future__ import annotations

import os

#: Longest actor name the audit trail stores.
ACTOR_MAX = 64


def cli_actor(name: str | None = None) -> str:
    """The given name, or `cli:` and the operating-system account that ran the command."""
    if name:
        return name[:ACTOR_MAX]
    return f"cli:{os_account()}"[:ACTOR_MAX]


def os_account() -> str:
    """The account the process runs as, from its user id, not from LOGNAME or USER, which anyone can set (IT review:
    `LOGNAME=dr-ahmed` made the trail name dr-ahmed); with SUDO_USER beside it, named as what it is.

    SUDO_USER is how sudo says who ran it, and also an environment variable whoever runs the command as that account
    could set (code review): so it is written as SUDO_USER's word ("SUDO_USER=alice"), beside the account, which is
    read from the user id and cannot be."""
    try:
        import pwd

        who = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):  # no password database entry (a container's bare uid): still audit something
        who = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    by = os.environ.get("SUDO_USER")  # set by sudo; `sudo -u ketawatch` otherwise names every admin `ketawatch`
    return f"{who} (SUDO_USER={by})" if by and by != who else who


def acting_account(engine, name: str | None, *, roles: tuple[str, ...], doing: str) -> tuple[str, str, str | None]:
    """(username, role, display name) a command acts as, so the audit trail never names an account that is not there.

    With `--as`, the account must exist, be enabled and hold one of `roles` (as it would to do the
    same in the dashboard). Without it, `cli:<OS user>` with the admin role: whoever runs the
    command on the server already has the database.
    """
    from ketawatch.accounts import get_user
    from ketawatch.cli import fail

    if name is None:
        return cli_actor(), "admin", None
    user = get_user(engine, name)
    if user is None:
        fail(f"--as {name}: no such KetaWatch account; leave --as out to be recorded as {cli_actor()}")
    if user.disabled:
        fail(f"--as {name}: the account is disabled")
    if user.role not in roles:
        fail(f"--as {name}: a {user.role} account cannot {doing}")
    return user.username, user.role, user.display_name
