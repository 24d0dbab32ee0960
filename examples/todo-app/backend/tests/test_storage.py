"""The same contract for every TaskStore implementation.

The PostgreSQL variant runs only when TEST_DATABASE_URL points at a database
the tests may write to (it creates the `tasks` table if missing), e.g.
    TEST_DATABASE_URL=postgresql://todo:todo@127.0.0.1:5432/todo python -m pytest -q
"""

import os
import uuid

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.storage import MemoryTaskStore, PostgresTaskStore, normalize_database_url

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture(params=["memory", "postgres"])
def any_store(request):
    if request.param == "memory":
        return MemoryTaskStore()
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL not set")
    return PostgresTaskStore(TEST_DATABASE_URL, connect_timeout=2)


@pytest.fixture
def user():
    return f"test-{uuid.uuid4().hex[:12]}"


def test_store_contract(any_store, user):
    assert any_store.ping() is True
    assert any_store.list_tasks(user) == []
    a = any_store.create_task(user, "first")
    b = any_store.create_task(user, "second")
    assert b.id > a.id
    assert a.user_id == user and a.completed is False and a.created_at.tzinfo is not None
    assert [t.title for t in any_store.list_tasks(user)] == ["first", "second"]

    done = any_store.update_task(user, a.id, completed=True)
    assert done is not None and done.completed is True and done.title == "first"
    renamed = any_store.update_task(user, a.id, title="first!")
    assert renamed.title == "first!" and renamed.completed is True
    assert any_store.get_task(user, a.id).title == "first!"

    other = user + "-other"
    assert any_store.get_task(other, a.id) is None
    assert any_store.update_task(other, a.id, completed=False) is None
    assert any_store.delete_task(other, a.id) is False

    assert any_store.delete_task(user, a.id) is True
    assert any_store.delete_task(user, a.id) is False
    assert [t.id for t in any_store.list_tasks(user)] == [b.id]
    any_store.delete_task(user, b.id)


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL not set")
def test_app_on_postgres(user):
    app = create_app(settings=Settings(database_url=TEST_DATABASE_URL))
    with TestClient(app) as c:
        health = c.get("/api/health")
        assert health.status_code == 200
        assert health.json()["database"] == "reachable"
        body = c.post(f"/api/{user}/chat", json={"message": "add buy milk"}).json()
        tid = body["task"]["id"]
        assert c.post(f"/api/tasks/{tid}/complete", params={"user_id": user}).json()["completed"]
        assert c.delete(f"/api/tasks/{tid}", params={"user_id": user}).status_code == 204


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u:p@h:5432/d", "postgresql://u:p@h:5432/d"),
        ("postgresql+asyncpg://u:p@h/d?sslmode=require", "postgresql://u:p@h/d?sslmode=require"),
        ("postgresql+psycopg://u@h/d", "postgresql://u@h/d"),
        ("postgres://u@h/d", "postgres://u@h/d"),
    ],
)
def test_normalize_database_url(url, expected):
    assert normalize_database_url(url) == expected
