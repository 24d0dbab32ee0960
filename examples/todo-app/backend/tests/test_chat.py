import json

import httpx
import pytest
from fastapi.testclient import TestClient

from app.chat import parse_rules
from app.config import Settings
from app.main import create_app
from app.storage import MemoryTaskStore

# ----------------------------------------------------------------- rule parser


@pytest.mark.parametrize(
    "message, action, title, task_id",
    [
        ("add buy milk", "add_task", "buy milk", None),
        ("Add task: call mom", "add_task", "call mom", None),
        ("please add a new task to water the plants", "add_task", "water the plants", None),
        ("create \"pay rent\"", "add_task", "pay rent", None),
        ("remember to book flights", "add_task", "book flights", None),
        ("list", "list_tasks", None, None),
        ("show my tasks", "list_tasks", None, None),
        ("List all tasks.", "list_tasks", None, None),
        ("what are my tasks?", "list_tasks", None, None),
        ("complete 3", "complete_task", None, 3),
        ("done #4", "complete_task", None, 4),
        ("mark task 5 as done", "complete_task", None, 5),
        ("delete 2", "delete_task", None, 2),
        ("remove task #7", "delete_task", None, 7),
        ("hello there", "help", None, None),
        ("add", "help", None, None),
        ("address the letter", "help", None, None),
        ("complete the report", "help", None, None),
        ("   ", "help", None, None),
    ],
)
def test_parse_rules(message, action, title, task_id):
    intent = parse_rules(message)
    assert intent.action == action
    assert intent.title == title
    assert intent.task_id == task_id


# ------------------------------------------------------------ rule-based chat


def test_chat_rules_flow(client):
    url = "/api/alice/chat"
    r = client.post(url, json={"message": "add buy milk"})
    assert r.status_code == 200
    body = r.json()
    assert body["engine"] == "rules"
    assert body["user_id"] == "alice"
    assert body["action"] == {"type": "add_task", "ok": True, "task_id": 1, "title": "buy milk"}
    assert body["task"]["title"] == "buy milk"
    assert "buy milk" in body["reply"]

    client.post(url, json={"message": "add call mom"})
    body = client.post(url, json={"message": "list"}).json()
    assert body["action"]["type"] == "list_tasks"
    assert [t["title"] for t in body["tasks"]] == ["buy milk", "call mom"]
    assert "2 tasks" in body["reply"]

    body = client.post(url, json={"message": "complete 1"}).json()
    assert body["action"] == {"type": "complete_task", "ok": True, "task_id": 1, "title": "buy milk"}
    assert body["task"]["completed"] is True

    body = client.post(url, json={"message": "delete 2"}).json()
    assert body["action"]["type"] == "delete_task" and body["action"]["ok"] is True
    remaining = client.get("/api/tasks", params={"user_id": "alice"}).json()
    assert [(t["id"], t["completed"]) for t in remaining] == [(1, True)]


def test_chat_unknown_task_and_help(client):
    body = client.post("/api/bob/chat", json={"message": "complete 42"}).json()
    assert body["action"] == {"type": "complete_task", "ok": False, "task_id": 42, "title": None}
    assert "couldn't find" in body["reply"]

    body = client.post("/api/bob/chat", json={"message": "delete 42"}).json()
    assert body["action"]["ok"] is False

    body = client.post("/api/bob/chat", json={"message": "what's the weather?"}).json()
    assert body["action"]["type"] == "help"
    assert "add buy milk" in body["reply"]


def test_chat_is_per_user(client):
    client.post("/api/alice/chat", json={"message": "add alice's task"})
    body = client.post("/api/bob/chat", json={"message": "complete 1"}).json()
    assert body["action"]["ok"] is False
    assert client.post("/api/bob/chat", json={"message": "list"}).json()["tasks"] == []


def test_chat_validation(client):
    assert client.post("/api/alice/chat", json={}).status_code == 422
    assert client.post("/api/alice/chat", json={"message": ""}).status_code == 422
    assert client.post("/api/bad%20user/chat", json={"message": "list"}).status_code == 422


# -------------------------------------------------------------- cohere (mocked)

API_KEY = "test-cohere-key-123"


def _cohere_text(text: str) -> dict:
    return {
        "id": "resp-1",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
        "usage": {"tokens": {"input_tokens": 10, "output_tokens": 5}},
    }


class FakeCohere:
    """httpx transport standing in for Cohere's API: no network involved."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)


def _cohere_client(fake: FakeCohere, store=None):
    settings = Settings(cohere_api_key=API_KEY, cohere_model="command-test")
    app = create_app(
        settings=settings,
        store=store or MemoryTaskStore(),
        cohere_transport=httpx.MockTransport(fake),
    )
    return TestClient(app)


def test_chat_cohere_json_answer(app_log):
    fake = FakeCohere(
        _cohere_text(json.dumps(
            {"action": "add_task", "title": "buy milk", "task_id": None, "reply": "Sure!"}
        ))
    )
    with _cohere_client(fake) as c:
        r = c.post("/api/alice/chat", json={"message": "I need to get milk on the way home"})
    assert r.status_code == 200
    body = r.json()
    assert body["engine"] == "cohere"
    assert body["action"]["type"] == "add_task"
    assert body["task"]["title"] == "buy milk"

    (req,) = fake.requests
    assert req.method == "POST"
    assert str(req.url) == "https://api.cohere.com/v2/chat"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    sent = json.loads(req.content)
    assert sent["model"] == "command-test"
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][-1] == {"role": "user", "content": "I need to get milk on the way home"}
    assert API_KEY not in app_log.getvalue()


def test_chat_cohere_sees_tasks_and_completes(store):
    store.create_task("alice", "buy milk")
    store.create_task("alice", "walk the dog")
    fake = FakeCohere(
        _cohere_text('```json\n{"action": "complete_task", "task_id": "2", "reply": "Done"}\n```')
    )
    with _cohere_client(fake, store) as c:
        body = c.post("/api/alice/chat", json={"message": "I walked the dog"}).json()
    assert body["engine"] == "cohere"
    assert body["action"] == {"type": "complete_task", "ok": True, "task_id": 2, "title": "walk the dog"}
    system_prompt = json.loads(fake.requests[0].content)["messages"][0]["content"]
    assert "2, no, walk the dog" in system_prompt


def test_chat_cohere_tool_call_answer(store):
    store.create_task("alice", "old task")
    fake = FakeCohere({
        "id": "resp-2",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "tool_calls": [{
                "id": "call-1",
                "type": "function",
                "function": {"name": "delete_task", "arguments": "{\"task_id\": 1}"},
            }],
        },
    })
    with _cohere_client(fake, store) as c:
        body = c.post("/api/alice/chat", json={"message": "get rid of the old one"}).json()
    assert body["engine"] == "cohere"
    assert body["action"]["type"] == "delete_task" and body["action"]["ok"] is True
    assert store.list_tasks("alice") == []


def test_chat_cohere_help_uses_model_reply():
    fake = FakeCohere(_cohere_text('{"action": "help", "reply": "Hi! Tell me what to add."}'))
    with _cohere_client(fake) as c:
        body = c.post("/api/alice/chat", json={"message": "hi"}).json()
    assert body["action"]["type"] == "help"
    assert body["reply"] == "Hi! Tell me what to add."


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, json={"message": "internal error"}),
        httpx.Response(401, json={"message": "invalid api token"}),
        httpx.ConnectTimeout("timed out"),
        httpx.ConnectError("no route"),
        httpx.Response(200, text="not json at all"),
        _cohere_text("I think you want to add milk"),
        _cohere_text('{"action": "launch_rockets"}'),
        _cohere_text('{"action": "complete_task", "task_id": null}'),
        {"message": {"role": "assistant", "content": []}},
    ],
    ids=["http500", "http401", "timeout", "connect-error", "non-json", "prose",
         "unknown-action", "missing-id", "empty"],
)
def test_chat_cohere_failure_falls_back_to_rules(answer, app_log):
    fake = FakeCohere(answer)
    with _cohere_client(fake) as c:
        r = c.post("/api/alice/chat", json={"message": "add buy milk"})
    assert r.status_code == 200
    body = r.json()
    assert body["engine"] == "rules"
    assert body["action"]["type"] == "add_task"
    assert body["task"]["title"] == "buy milk"
    assert len(fake.requests) == 1
    logged = app_log.getvalue()
    assert "falling back" in logged or "rule-based" in logged
    assert API_KEY not in logged
