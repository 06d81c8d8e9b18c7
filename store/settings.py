"""Deployment settings read from the environment, so a clinic configures KetaWatch without editing code."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///ketawatch.db"
#: Left at this value, de-identified exports use a random key made once per database instead.
DEFAULT_PSEUDONYM_SECRET = "change-me-in-production"


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
    idle_timeout_minutes: int = Field(30, ge=1, le=24 * 60, description="Sign out after this long idle.")
    min_password_length: int = Field(12, ge=8, le=128)
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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache with `get_settings.cache_clear()`."""
    return Settings()
