import io
import logging

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.storage import MemoryTaskStore


@pytest.fixture
def store():
    return MemoryTaskStore()


@pytest.fixture
def client(store):
    app = create_app(settings=Settings(), store=store)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def app_log():
    """Collect what the app logs (its logger writes to stdout, not propagating)."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    logger = logging.getLogger("todo")
    logger.addHandler(handler)
    try:
        yield buf
    finally:
        logger.removeHandler(handler)
