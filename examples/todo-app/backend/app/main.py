"""FastAPI application: health, tasks and chat under /api."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import httpx
from fastapi import FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from . import __version__
from .chat import ChatResult, CohereError, CohereInterpreter, execute, parse_rules
from .config import Settings
from .storage import StorageUnavailable, Task, TaskStore, make_store

DEFAULT_USER = "default"
USER_ID_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"

log = logging.getLogger("todo")


def _setup_logging() -> None:
    """Log to stdout (one line per record) without touching uvicorn's loggers."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------ schemas

class TaskCreate(BaseModel):
    title: str = Field(min_length=1, max_length=500)

    @field_validator("title")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("title must not be blank")
        return v


class TaskUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    completed: bool | None = None

    @field_validator("title")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip()
        if not v:
            raise ValueError("title must not be blank")
        return v


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=2000)


# -------------------------------------------------------------------------- app

def create_app(
    settings: Settings | None = None,
    store: TaskStore | None = None,
    cohere_transport: httpx.BaseTransport | None = None,
) -> FastAPI:
    """Build the app. Tests pass their own settings, store and HTTP transport."""
    _setup_logging()
    settings = settings or Settings.from_env()
    store = store or make_store(settings.database_url, settings.db_connect_timeout)
    cohere = (
        CohereInterpreter(
            settings.cohere_api_key,
            model=settings.cohere_model,
            url=settings.cohere_api_url,
            timeout=settings.cohere_timeout,
            transport=cohere_transport,
        )
        if settings.cohere_api_key
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # describe() reports secrets as "set"/"unset", never their values.
        log.info("starting todo backend %s config=%s", __version__, settings.describe())
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="Todo AI Chatbot API",
        version=__version__,
        # Under /api so the docs are reachable through the Ingress too.
        docs_url="/api/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url="/api/docs/oauth2-redirect",
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.store = store

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        start = time.perf_counter()
        status_code = 500
        try:
            response = await call_next(request)
            status_code = response.status_code
            return response
        finally:
            # Path only: no query string, headers or bodies in the log.
            log.info(
                "%s %s %d %.1fms",
                request.method,
                request.url.path,
                status_code,
                (time.perf_counter() - start) * 1000,
            )

    @app.exception_handler(StorageUnavailable)
    async def storage_unavailable(_request: Request, exc: StorageUnavailable):
        log.warning("storage unavailable: %s", exc)
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": "storage unavailable, try again later"},
        )

    # ---------------------------------------------------------------- health

    @app.get("/api/health")
    def health(response: Response) -> dict:
        """Readiness: 200 when the service can serve requests, 503 otherwise.

        With DATABASE_URL set, an unreachable database makes the service
        unusable, so the answer is 503 with ``"database": "unreachable"``.
        """
        body: dict[str, str] = {"status": "healthy", "timestamp": utc_now_iso()}
        if settings.database_url:
            reachable = store.ping()
            body["database"] = "reachable" if reachable else "unreachable"
            if not reachable:
                body["status"] = "unhealthy"
                response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return body

    @app.get("/api/health/live")
    def liveness() -> dict:
        """Liveness: the process answers. Never checks the database."""
        return {"status": "healthy", "timestamp": utc_now_iso()}

    # ----------------------------------------------------------------- tasks

    @app.get("/api/tasks", response_model=list[Task])
    def list_tasks(user_id: str = Query(DEFAULT_USER, pattern=USER_ID_PATTERN)):
        return store.list_tasks(user_id)

    @app.post("/api/tasks", response_model=Task, status_code=status.HTTP_201_CREATED)
    def create_task(
        payload: TaskCreate, user_id: str = Query(DEFAULT_USER, pattern=USER_ID_PATTERN)
    ):
        return store.create_task(user_id, payload.title)

    def _found(task: Task | None, task_id: int) -> Task:
        if task is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")
        return task

    @app.get("/api/tasks/{task_id}", response_model=Task)
    def get_task(task_id: int, user_id: str = Query(DEFAULT_USER, pattern=USER_ID_PATTERN)):
        return _found(store.get_task(user_id, task_id), task_id)

    @app.patch("/api/tasks/{task_id}", response_model=Task)
    def update_task(
        task_id: int,
        payload: TaskUpdate,
        user_id: str = Query(DEFAULT_USER, pattern=USER_ID_PATTERN),
    ):
        return _found(
            store.update_task(
                user_id, task_id, title=payload.title, completed=payload.completed
            ),
            task_id,
        )

    @app.post("/api/tasks/{task_id}/complete", response_model=Task)
    def complete_task(
        task_id: int, user_id: str = Query(DEFAULT_USER, pattern=USER_ID_PATTERN)
    ):
        return _found(store.update_task(user_id, task_id, completed=True), task_id)

    @app.delete("/api/tasks/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
    def delete_task(task_id: int, user_id: str = Query(DEFAULT_USER, pattern=USER_ID_PATTERN)):
        if not store.delete_task(user_id, task_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    # ------------------------------------------------------------------ chat

    @app.post("/api/{user_id}/chat", response_model=ChatResult)
    def chat(payload: ChatRequest, user_id: str = Path(pattern=USER_ID_PATTERN)):
        intent = None
        engine = "rules"
        if cohere is not None:
            try:
                intent = cohere.interpret(payload.message, store.list_tasks(user_id))
                engine = "cohere"
            except CohereError as exc:
                log.warning("cohere unavailable, using rule-based parser: %s", exc)
        if intent is None:
            intent = parse_rules(payload.message)
        result = execute(store, user_id, intent, engine)
        log.info("chat user=%s engine=%s action=%s ok=%s", user_id, engine,
                 result.action.type, result.action.ok)
        return result

    return app


app = create_app()
