"""Single sign-on settings checked when the dashboard starts, so a broken `[auth]` stops `serve` with one line.

Streamlit reads `[auth]` from `.streamlit/secrets.toml` in the home folder and in the folder it is started from (the
second's `[auth]`, when it has one, replaces the first's whole). A file it cannot read only logged "Failed to load secrets" and the single sign-on button vanished, and an
`[auth]` missing a key said nothing until a clinician clicked it (IT review). The keys are those Streamlit's `st.login`
asks for: `redirect_uri` and `cookie_secret`, and for each provider (a sub-section such as `[auth.microsoft]`, or
`[auth]` itself when it has none) `client_id`, `client_secret` and `server_metadata_url`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

#: Where Streamlit looks for secrets, in the order it reads them (a later file's sections replace an earlier one's).
SECRETS_FILES = (Path("~/.streamlit/secrets.toml"), Path(".streamlit/secrets.toml"))
SHARED_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
#: Shorter, and the cookie that keeps a clinician signed in rests on a guessable secret.
MIN_COOKIE_SECRET = 32


def sso_setup_problems(files: tuple[Path, ...] = SECRETS_FILES) -> list[str]:
    """One line per problem with the single sign-on settings; none when they are complete or there are none."""
    problems: list[str] = []
    auth: dict = {}
    where = ""
    for file in files:
        path = file.expanduser()
        try:
            path.stat()  # a folder on the way that may not be read (a service's home hidden) is said, not skipped
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            problems.append(f"single sign-on: {path.absolute()} cannot be read: {exc}")
            continue
        try:
            secrets = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"single sign-on: {path.absolute()} cannot be read: {exc}")
            continue
        section = secrets.get("auth")
        if section is not None and not isinstance(section, dict):
            problems.append(f"single sign-on: {path.absolute()}: 'auth' must be an [auth] section")
        elif section:
            # Streamlit takes a later file's [auth] whole, not key by key: a provider-only [auth] in the working
            # folder hid the home file's redirect_uri and cookie_secret (code review)
            auth, where = dict(section), str(path.absolute())
    if problems or not auth:
        return problems
    problems += [f"single sign-on: [auth] in {where} has no {key}" for key in SHARED_KEYS if not auth.get(key)]
    secret = auth.get("cookie_secret")
    if secret and len(str(secret)) < MIN_COOKIE_SECRET:
        problems.append(f"single sign-on: [auth] cookie_secret is shorter than {MIN_COOKIE_SECRET} characters; use a "
                        "random one, e.g. python3 -c 'import secrets; print(secrets.token_hex(32))'")
    providers = {name: value for name, value in auth.items() if isinstance(value, dict)}
    for name, section in (providers or {"": auth}).items():
        title = f"[auth.{name}]" if name else "[auth]"
        if "_" in name:
            problems.append(f"single sign-on: {title}: a provider's name may not contain '_' (Streamlit refuses it)")
        missing = [key for key in PROVIDER_KEYS if not section.get(key)]
        if missing:
            problems.append(f"single sign-on: {title} has no {', '.join(missing)}")
    return problems
