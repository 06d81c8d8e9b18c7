"""Deployment settings read from the environment, so a clinic configures KetaWatch without editing code."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///ketawatch.db"
#: Font files the PDF writer (fpdf2) can embed.
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
#: Left at this value, de-identified exports use a random key made once per database instead.
DEFAULT_PSEUDONYM_SECRET = "change-me-in-production"
#: The shortest pseudonym key accepted.
MIN_PSEUDONYM_SECRET = 16


class Settings(BaseSettings):
    """Every setting can be given as an environment variable `KETAWATCH_<NAME>` or in a `.env` file."""

    model_config = SettingsConfigDict(env_prefix="KETAWATCH_", env_file=".env", extra="ignore")

    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the database.")
    clinic_timezone: str = Field("Europe/London", description="IANA zone in which times are entered and shown.")
    pseudonym_secret: str = Field(
        DEFAULT_PSEUDONYM_SECRET,
        description="Key for the keyed hash that makes stable pseudonyms in de-identified exports "
        "(unset: a random key kept in the database).",
    )
    rules_file: str | None = Field(
        None,
        description="A clinic's own copy of seed_data/rules.toml (e.g. its SDS threshold); default: the shipped file.",
    )
    pdf_fallback_fonts: str = Field(
        "",
        description="Font files (TrueType/OpenType, paths separated by ':') used in PDFs for characters DejaVu Sans "
        "lacks, e.g. Chinese, Japanese or Korean names.",
    )
    seeds_dir: str | None = Field(
        None,
        description="Folder of the seed documents the warning-sign quotations come from (default: shared/seeds beside "
        "the checkout); with it, a citation also gives the document's title.",
    )
    review_again_days: int = Field(
        28, ge=1, le=365,
        description="An amber or red alert acknowledged this many days ago comes back for review while the patient "
        "is still amber or red, even with the same reasons: a red level that lasts months is looked at again.",
    )
    idle_timeout_minutes: int = Field(30, ge=1, le=24 * 60, description="Sign out after this long idle.")
    min_password_length: int = Field(12, ge=8, le=128)
    min_password_strength: int = Field(
        3, ge=0, le=4,
        description="Least zxcvbn score (0-4) a new password needs: 3 refuses common passwords, names, dates and "
        "keyboard runs that an attacker with the hashes would try first; 0 checks the length only.",
    )
    lockout_attempts: int = Field(5, ge=1, le=100, description="Failed sign-ins before an account locks.")
    lockout_minutes: int = Field(15, ge=1, le=24 * 60, description="How long a locked account stays locked.")

    @field_validator("clinic_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/London") from exc
        return value

    @field_validator("rules_file")
    @classmethod
    def _rules_file_exists(cls, value: str | None) -> str | None:
        if value and not Path(value).is_file():
            raise ValueError(f"no rules file at {value}; copy seed_data/rules.toml and give the full path of the copy")
        return value or None

    @field_validator("pseudonym_secret")
    @classmethod
    def _long_secret(cls, value: str) -> str:
        # A short key can be found by trying keys against one pseudonym whose patient is known (IT review).
        if value != DEFAULT_PSEUDONYM_SECRET and len(value) < MIN_PSEUDONYM_SECRET:
            raise ValueError(f"{len(value)} character{'' if len(value) == 1 else 's'} is too short to keep pseudonyms from being reversed; give at "
                             f"least {MIN_PSEUDONYM_SECRET} random characters (for example from `openssl rand -hex 32`), "
                             "or leave it unset for a random key kept in the database")
        return value

    @field_validator("seeds_dir")
    @classmethod
    def _seeds_folder(cls, value: str | None) -> str | None:
        if value and not Path(value).expanduser().is_dir():  # said at the start, not at the first citation (IT review)
            raise ValueError(f"no folder at {value}; give the folder that holds the seed documents")
        return value or None

    @field_validator("pdf_fallback_fonts")
    @classmethod
    def _readable_fonts(cls, value: str) -> str:
        for path in (part.strip() for part in value.split(os.pathsep)):
            if not path:
                continue
            if not Path(path).is_file():
                raise ValueError(f"no font file at {path}; give the full path of a .ttf, .otf or .ttc file")
            if Path(path).suffix.lower() not in FONT_SUFFIXES:
                raise ValueError(f"{path} is not a TrueType or OpenType font; give a .ttf, .otf or .ttc file")
            from fontTools.ttLib import TTFont  # only when a fallback font is set

            try:
                TTFont(path, lazy=True, fontNumber=0).close()
            except Exception as exc:  # noqa: BLE001 - fontTools raises several kinds for a file that is not a font
                raise ValueError(f"{path} cannot be read as a font ({type(exc).__name__})") from None
        return value

    @property
    def fallback_font_files(self) -> list[Path]:
        """The fallback font files in the order given."""
        return [Path(part.strip()) for part in self.pdf_fallback_fonts.split(os.pathsep) if part.strip()]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)


class SettingsInvalid(Exception):
    """A setting in the environment or `.env` is wrong; `lines` names each one in the administrator's terms."""

    def __init__(self, lines: list[str]):
        super().__init__("; ".join(lines))
        self.lines = lines


def _problem_lines(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        name = "KETAWATCH_" + "_".join(str(part) for part in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"setting {name}: {message}")
    return lines


#: KETAWATCH_ names that are not settings of this class but are read elsewhere (the test suite).
OTHER_NAMES = ("KETAWATCH_TEST_DATABASE_URL",)


def _unknown_names() -> list[str]:
    """One line per KETAWATCH_ name in the environment or `.env` that is no setting: a misspelt one is not ignored.

    Ignored, `KETAWATCH_DATABSE_URL` would leave the default SQLite file in use: a new, empty
    database, and the first-run page offering an admin account to whoever comes first.
    """
    from difflib import get_close_matches

    from dotenv import dotenv_values

    known = {f"KETAWATCH_{name.upper()}" for name in Settings.model_fields} | set(OTHER_NAMES)
    given = {name.upper() for name in os.environ if name.upper().startswith("KETAWATCH_")}
    env_file = Path(".env")
    lines = []
    if env_file.is_file():
        lines += _env_file_lines_systemd_reads_otherwise(env_file)
        if lines:  # said in KetaWatch's words, before python-dotenv warns of the same lines in its own
            return lines
        given |= {name.upper() for name in dotenv_values(env_file) if name.upper().startswith("KETAWATCH_")}
    for name in sorted(given - known):
        near = get_close_matches(name, sorted(known), n=1)
        lines.append(f"setting {name}: no such setting" + (f"; did you mean {near[0]}?" if near else ""))
    return lines


def _env_file_lines_systemd_reads_otherwise(env_file: Path) -> list[str]:
    """One line per `.env` line that the command line and systemd's EnvironmentFile= would read differently.

    python-dotenv drops a comment after a value and skips a line it cannot read, with a warning only; systemd keeps
    the comment as part of the value. So `KETAWATCH_CLINIC_TIMEZONE=Europe/London # UK` passed the README's check with
    `ketawatch users list` and the service then would not start (IT review).
    """
    from dotenv.parser import parse_stream

    lines = []
    with env_file.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            number = binding.original.line
            if binding.error:
                lines.append(f"setting file .env, line {number}: not a NAME=value line; remove it, or put # before "
                             "it to keep it as a comment")
            elif (binding.key or "").upper().startswith("KETAWATCH_") and _comment_after_value(binding):
                lines.append(f"setting {binding.key.upper()}: .env line {number} has a comment after its value, which "
                             "systemd would read as part of the value; put the comment on a line of its own")
    return lines


def _comment_after_value(binding) -> bool:
    """Whether python-dotenv took less of an unquoted value than its line holds: what it dropped is a comment, which
    systemd keeps (a regular expression missed `NAME=pa#ss # note` and `NAME= # note`; code review)."""
    written = binding.original.string.split("=", 1)[1].strip()
    return not written.startswith(("'", '"')) and written != (binding.value or "")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache with `get_settings.cache_clear()`."""
    unknown = _unknown_names()
    if unknown:
        raise SettingsInvalid(unknown)
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsInvalid(_problem_lines(exc)) from None
