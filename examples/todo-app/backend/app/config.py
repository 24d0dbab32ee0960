"""Configuration read from the environment.

Secrets (never logged): DATABASE_URL, BETTER_AUTH_SECRET, COHERE_API_KEY.
Plain config: ENVIRONMENT, apiUrl (or API_URL), and a few optional tuning knobs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str | None = None) -> str | None:
    """Return the variable, treating an empty string as unset."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    api_url: str | None = None
    # Secrets: repr=False so they never show up in a printed/logged Settings.
    database_url: str | None = field(default=None, repr=False)
    better_auth_secret: str | None = field(default=None, repr=False)
    cohere_api_key: str | None = field(default=None, repr=False)
    cohere_model: str = "command-a-03-2025"
    cohere_api_url: str = "https://api.cohere.com/v2/chat"
    cohere_timeout: float = 10.0
    db_connect_timeout: float = 2.0
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> "Settings":
        cors = _env("CORS_ORIGINS", "") or ""
        return cls(
            environment=_env("ENVIRONMENT", "development") or "development",
            # The deployment's ConfigMap key is `apiUrl`; API_URL is accepted too.
            api_url=_env("apiUrl") or _env("API_URL"),
            database_url=_env("DATABASE_URL"),
            better_auth_secret=_env("BETTER_AUTH_SECRET"),
            cohere_api_key=_env("COHERE_API_KEY"),
            cohere_model=_env("COHERE_MODEL", cls.cohere_model) or cls.cohere_model,
            cohere_api_url=_env("COHERE_API_URL", cls.cohere_api_url) or cls.cohere_api_url,
            cohere_timeout=_env_float("COHERE_TIMEOUT_SECONDS", cls.cohere_timeout),
            db_connect_timeout=_env_float("DB_CONNECT_TIMEOUT_SECONDS", cls.db_connect_timeout),
            cors_origins=tuple(o.strip() for o in cors.split(",") if o.strip()),
        )

    def describe(self) -> dict[str, object]:
        """A log-safe summary: secrets are reported as set/unset only."""
        return {
            "environment": self.environment,
            "api_url": self.api_url,
            "storage": "postgres" if self.database_url else "memory",
            "database_url": "set" if self.database_url else "unset",
            "better_auth_secret": "set" if self.better_auth_secret else "unset",
            "cohere_api_key": "set" if self.cohere_api_key else "unset",
            "chat_engine": "cohere" if self.cohere_api_key else "rules",
            "cohere_model": self.cohere_model if self.cohere_api_key else None,
        }
