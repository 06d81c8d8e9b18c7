"""Who the audit trail names for a command-line action: the `--as` name, else `cli:<OS user>`.

Every command that writes or exports records its actor through this one function, so an
auditor reading the trail sees the same kind of name whichever command was run.
"""

from __future__ import annotations

import getpass

#: Longest actor name the audit trail stores.
ACTOR_MAX = 64


def cli_actor(name: str | None = None) -> str:
    """The given name, or `cli:` and the login name of whoever ran the command."""
    if name:
        return name[:ACTOR_MAX]
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (e.g. in a container): still audit something
        who = "unknown"
    return f"cli:{who}"[:ACTOR_MAX]
