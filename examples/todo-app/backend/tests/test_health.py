import time
from datetime import datetime, timezone

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.storage import MemoryTaskStore

SECRET_URL = "postgresql://todo:sup3r-s3cret-pw@127.0.0.1:1/todo"


def _parse_ts(value: str) -> datetime:
    assert value.endswith("Z")
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert ts.tzinfo is not None and ts.utcoffset().total_seconds() == 0
    return ts


def test_health_without_database(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    assert "database" not in body
    ts = _parse_ts(body["timestamp"])
    assert abs((datetime.now(timezone.utc) - ts).total_seconds()) < 60


def test_liveness(client):
    r = client.get("/api/health/live")
    assert r.status_code == 200
    assert r.json()["status"] == "healthy"
    _parse_ts(r.json()["timestamp"])


class _PingStore(MemoryTaskStore):
    kind = "postgres"

    def __init__(self, reachable: bool):
        super().__init__()
        self.reachable = reachable

    def ping(self) -> bool:
        return self.reachable


def test_health_database_reachable():
    settings = Settings(database_url="postgresql://x@db/x")
    app = create_app(settings=settings, store=_PingStore(True))
    with TestClient(app) as c:
        r = c.get("/api/health")
    assert r.status_code == 200
    assert r.json()["database"] == "reachable"
    assert r.json()["status"] == "healthy"


def test_health_database_unreachable_real_driver(app_log):
    """A real psycopg connection to a closed port: 503, quickly, secret not leaked."""
    settings = Settings(database_url=SECRET_URL, db_connect_timeout=1)
    app = create_app(settings=settings)  # real PostgresTaskStore
    with TestClient(app) as c:
        start = time.monotonic()
        r = c.get("/api/health")
        elapsed = time.monotonic() - start
        # Liveness does not depend on the database.
        assert c.get("/api/health/live").status_code == 200
        # Task routes report the outage as 503, not 500.
        tasks = c.get("/api/tasks")
    assert r.status_code == 503
    body = r.json()
    assert body["database"] == "unreachable"
    assert body["status"] == "unhealthy"
    _parse_ts(body["timestamp"])
    assert elapsed < 5, f"health took {elapsed:.1f}s"
    assert tasks.status_code == 503
    assert "sup3r-s3cret-pw" not in tasks.text
    assert "sup3r-s3cret-pw" not in app_log.getvalue()
    assert "storage unavailable" in app_log.getvalue()


def test_settings_never_expose_secrets(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", SECRET_URL)
    monkeypatch.setenv("BETTER_AUTH_SECRET", "auth-secret-value")
    monkeypatch.setenv("COHERE_API_KEY", "cohere-key-value")
    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.setenv("apiUrl", "http://todo.local/api")
    s = Settings.from_env()
    assert s.environment == "staging"
    assert s.api_url == "http://todo.local/api"
    assert s.database_url == SECRET_URL
    text = repr(s) + str(s.describe())
    for secret in ("sup3r-s3cret-pw", "auth-secret-value", "cohere-key-value"):
        assert secret not in text
    assert s.describe()["cohere_api_key"] == "set"
    assert s.describe()["storage"] == "postgres"


def test_settings_defaults_treat_empty_as_unset(monkeypatch):
    for name in ("DATABASE_URL", "COHERE_API_KEY", "BETTER_AUTH_SECRET", "apiUrl", "API_URL"):
        monkeypatch.setenv(name, "")
    s = Settings.from_env()
    assert s.database_url is None
    assert s.cohere_api_key is None
    assert s.describe()["storage"] == "memory"
    assert s.describe()["chat_engine"] == "rules"
