"""Task storage: one interface, two implementations.

* ``MemoryTaskStore``  - used when DATABASE_URL is unset (tests, local dev).
* ``PostgresTaskStore`` - used when DATABASE_URL is set; psycopg 3, one short
  connection per operation (no pool to go stale while the database restarts),
  table created on first successful connection.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from datetime import datetime, timezone
from typing import Protocol

from pydantic import BaseModel

log = logging.getLogger("todo.storage")


class Task(BaseModel):
    id: int
    user_id: str
    title: str
    completed: bool = False
    created_at: datetime


class StorageUnavailable(RuntimeError):
    """The backing store cannot be reached. Never carries connection secrets."""


class TaskStore(Protocol):
    kind: str

    def list_tasks(self, user_id: str) -> list[Task]: ...

    def create_task(self, user_id: str, title: str) -> Task: ...

    def get_task(self, user_id: str, task_id: int) -> Task | None: ...

    def update_task(
        self,
        user_id: str,
        task_id: int,
        *,
        title: str | None = None,
        completed: bool | None = None,
    ) -> Task | None: ...

    def delete_task(self, user_id: str, task_id: int) -> bool: ...

    def ping(self) -> bool:
        """True when the store can serve requests right now."""
        ...


class MemoryTaskStore:
    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[int, Task] = {}
        self._next_id = 1

    def list_tasks(self, user_id: str) -> list[Task]:
        with self._lock:
            return [t.model_copy() for t in self._tasks.values() if t.user_id == user_id]

    def create_task(self, user_id: str, title: str) -> Task:
        with self._lock:
            task = Task(
                id=self._next_id,
                user_id=user_id,
                title=title,
                completed=False,
                created_at=datetime.now(timezone.utc),
            )
            self._tasks[task.id] = task
            self._next_id += 1
            return task.model_copy()

    def get_task(self, user_id: str, task_id: int) -> Task | None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.user_id != user_id:
                return None
            return task.model_copy()

    def update_task(
        self,
        user_id: str,
        task_id: int,
        *,
        title: str | None = None,
        completed: bool | None = None,
    ) -> Task | None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.user_id != user_id:
                return None
            if title is not None:
                task.title = title
            if completed is not None:
                task.completed = completed
            return task.model_copy()

    def delete_task(self, user_id: str, task_id: int) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.user_id != user_id:
                return False
            del self._tasks[task_id]
            return True

    def ping(self) -> bool:
        return True


_SCHEMA_LOCK_KEY = 0x7D0D0  # arbitrary constant for pg_advisory_xact_lock
_SCHEMA_SQL = (
    """
    CREATE TABLE IF NOT EXISTS tasks (
        id          BIGSERIAL PRIMARY KEY,
        user_id     TEXT        NOT NULL,
        title       TEXT        NOT NULL,
        completed   BOOLEAN     NOT NULL DEFAULT FALSE,
        created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX IF NOT EXISTS tasks_user_id_idx ON tasks (user_id)",
)
_COLUMNS = "id, user_id, title, completed, created_at"


def normalize_database_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs (postgresql+asyncpg://...) as libpq URLs."""
    return re.sub(r"^(postgres(?:ql)?)\+[a-z0-9_]+://", r"\1://", url.strip(), flags=re.I)


class PostgresTaskStore:
    kind = "postgres"

    def __init__(self, database_url: str, connect_timeout: float = 2.0) -> None:
        # Imported here so the in-memory mode does not need libpq at all.
        import psycopg  # noqa: F401

        self._url = normalize_database_url(database_url)
        # libpq takes whole seconds; psycopg enforces the same value itself.
        self._connect_timeout = max(1, math.ceil(connect_timeout))
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    def _connect(self):
        import psycopg
        from psycopg.rows import dict_row

        try:
            conn = psycopg.connect(
                self._url,
                connect_timeout=self._connect_timeout,
                row_factory=dict_row,
                application_name="todo-backend",
            )
        except psycopg.Error as exc:
            # Only the exception class: libpq messages can echo host/user details.
            raise StorageUnavailable(f"database connection failed ({type(exc).__name__})") from None
        if not self._schema_ready:
            try:
                self._ensure_schema(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    def _ensure_schema(self, conn) -> None:
        with self._schema_lock:
            if self._schema_ready:
                return
            with conn.transaction():
                # Serialise concurrent replicas creating the table at the same time.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
                for stmt in _SCHEMA_SQL:
                    conn.execute(stmt)
            self._schema_ready = True
            log.info("postgres schema ready (table tasks)")

    def _run(self, sql: str, params: tuple = (), *, fetch: str = "all"):
        import psycopg

        try:
            conn = self._connect()
            with conn:
                cur = conn.execute(sql, params)
                if fetch == "all":
                    return cur.fetchall()
                if fetch == "one":
                    return cur.fetchone()
                return cur.rowcount
        except StorageUnavailable:
            raise
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(f"database error ({type(exc).__name__})") from None

    def list_tasks(self, user_id: str) -> list[Task]:
        rows = self._run(
            f"SELECT {_COLUMNS} FROM tasks WHERE user_id = %s ORDER BY id", (user_id,)
        )
        return [Task(**row) for row in rows]

    def create_task(self, user_id: str, title: str) -> Task:
        row = self._run(
            f"INSERT INTO tasks (user_id, title) VALUES (%s, %s) RETURNING {_COLUMNS}",
            (user_id, title),
            fetch="one",
        )
        return Task(**row)

    def get_task(self, user_id: str, task_id: int) -> Task | None:
        row = self._run(
            f"SELECT {_COLUMNS} FROM tasks WHERE id = %s AND user_id = %s",
            (task_id, user_id),
            fetch="one",
        )
        return Task(**row) if row else None

    def update_task(
        self,
        user_id: str,
        task_id: int,
        *,
        title: str | None = None,
        completed: bool | None = None,
    ) -> Task | None:
        row = self._run(
            f"""
            UPDATE tasks
               SET title = COALESCE(%s, title),
                   completed = COALESCE(%s, completed)
             WHERE id = %s AND user_id = %s
         RETURNING {_COLUMNS}
            """,
            (title, completed, task_id, user_id),
            fetch="one",
        )
        return Task(**row) if row else None

    def delete_task(self, user_id: str, task_id: int) -> bool:
        count = self._run(
            "DELETE FROM tasks WHERE id = %s AND user_id = %s", (task_id, user_id), fetch="count"
        )
        return count > 0

    def ping(self) -> bool:
        try:
            self._run("SELECT 1", fetch="one")
            return True
        except StorageUnavailable:
            return False


def make_store(database_url: str | None, connect_timeout: float = 2.0) -> TaskStore:
    if database_url:
        return PostgresTaskStore(database_url, connect_timeout=connect_timeout)
    return MemoryTaskStore()
