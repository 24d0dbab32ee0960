"""Turn a chat message into a task action.

Two interpreters produce the same ``Intent``:

* ``parse_rules``      - a small deterministic parser ("add buy milk", "list",
                         "complete 3", "delete 2", anything else -> help).
* ``CohereInterpreter``- asks Cohere's Chat API (v2, plain HTTP via httpx) for a
                         JSON object describing the action. Any failure (timeout,
                         HTTP error, unparseable answer) falls back to the rules.

``execute`` then applies the intent to a ``TaskStore`` and writes the reply.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import BaseModel

from .storage import Task, TaskStore

log = logging.getLogger("todo.chat")

ActionType = Literal["add_task", "list_tasks", "complete_task", "delete_task", "help"]
ACTIONS: tuple[str, ...] = ("add_task", "list_tasks", "complete_task", "delete_task", "help")

HELP_TEXT = (
    "I can manage your tasks. Try: \"add buy milk\", \"list\", "
    "\"complete 3\" or \"delete 2\"."
)
MAX_TITLE_LEN = 500


@dataclass
class Intent:
    action: ActionType
    title: str | None = None
    task_id: int | None = None
    reply: str | None = None  # free text from the model, used for "help"


class ChatAction(BaseModel):
    type: ActionType
    ok: bool
    task_id: int | None = None
    title: str | None = None


class ChatResult(BaseModel):
    user_id: str
    reply: str
    action: ChatAction
    engine: Literal["rules", "cohere"]
    task: Task | None = None
    tasks: list[Task] | None = None


# --------------------------------------------------------------------------- rules

_ADD = re.compile(
    r"^(?:please\s+)?(?:add|create|new|todo|remember(?:\s+to)?)\b[\s:,-]*"
    r"(?:(?:a\s+)?(?:new\s+)?(?:task|todo)\b[\s:,-]*(?:to\s+)?)?(?P<title>.+)$",
    re.I | re.S,
)
_LIST = re.compile(
    r"^(?:please\s+)?(?:list|ls|show|view|display)\b(?:\s+(?:me\s+)?(?:all\s+)?(?:my\s+)?"
    r"(?:tasks?|todos?|list)?)?\s*[.!?]*$|^what(?:'s|\s+is|\s+are)\s+(?:on\s+)?my\s+(?:tasks?|todos?|list)\s*\??$",
    re.I,
)
_COMPLETE = re.compile(
    r"^(?:please\s+)?(?:complete|completed|done|finish|finished|check|tick|mark)\b\s*"
    r"(?:task\s*)?#?(?P<id>\d+)\b(?:\s+as\s+(?:done|complete[d]?|finished))?\s*[.!]*$",
    re.I,
)
_DELETE = re.compile(
    r"^(?:please\s+)?(?:delete|remove|del|rm|drop)\b\s*(?:task\s*)?#?(?P<id>\d+)\s*[.!]*$",
    re.I,
)


def parse_rules(message: str) -> Intent:
    text = " ".join(message.strip().split())
    if not text:
        return Intent("help")
    if m := _COMPLETE.match(text):
        return Intent("complete_task", task_id=int(m.group("id")))
    if m := _DELETE.match(text):
        return Intent("delete_task", task_id=int(m.group("id")))
    if _LIST.match(text):
        return Intent("list_tasks")
    if m := _ADD.match(text):
        title = m.group("title").strip().strip("\"'").strip()
        if title:
            return Intent("add_task", title=title[:MAX_TITLE_LEN])
    return Intent("help")


# -------------------------------------------------------------------------- cohere

_SYSTEM_PROMPT = """You turn a user's message into exactly one action on their to-do list.
Answer with a single JSON object and nothing else:
{"action": "add_task" | "list_tasks" | "complete_task" | "delete_task" | "help",
 "title": string or null,      // the task text, for add_task
 "task_id": integer or null,   // the task id, for complete_task and delete_task
 "reply": string}              // one short friendly sentence for the user
Use "help" when the message asks for none of the other actions.
Pick task ids only from the user's current tasks below.
Current tasks (id, done, title):
"""


class CohereError(RuntimeError):
    pass


class CohereInterpreter:
    def __init__(
        self,
        api_key: str,
        *,
        model: str,
        url: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._model = model
        self._url = url
        self._timeout = timeout
        self._transport = transport

    def interpret(self, message: str, tasks: list[Task]) -> Intent:
        listing = "\n".join(
            f"{t.id}, {'yes' if t.completed else 'no'}, {t.title}" for t in tasks[:50]
        ) or "(none)"
        body = {
            "model": self._model,
            "messages": [
                {"role": "system", "content": _SYSTEM_PROMPT + listing},
                {"role": "user", "content": message},
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        }
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Client-Name": "todo-app-backend",
        }
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
                resp = client.post(self._url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CohereError(f"request failed ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise CohereError(f"HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            raise CohereError("response is not JSON") from None
        return parse_cohere_response(data)


def _first_json_object(text: str) -> dict:
    text = text.strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise CohereError("no JSON object in answer") from None
        try:
            value = json.loads(text[start : end + 1])
        except ValueError:
            raise CohereError("no JSON object in answer") from None
    if not isinstance(value, dict):
        raise CohereError("answer is not a JSON object")
    return value


def _intent_from_fields(fields: dict) -> Intent:
    action = str(fields.get("action") or fields.get("type") or "").strip().lower()
    aliases = {
        "add": "add_task", "create": "add_task", "list": "list_tasks",
        "complete": "complete_task", "done": "complete_task",
        "delete": "delete_task", "remove": "delete_task",
    }
    action = aliases.get(action, action)
    if action not in ACTIONS:
        raise CohereError("unknown action in answer")
    title = fields.get("title")
    title = str(title).strip()[:MAX_TITLE_LEN] if title not in (None, "") else None
    task_id = fields.get("task_id", fields.get("id"))
    try:
        task_id = int(task_id) if task_id not in (None, "") else None
    except (TypeError, ValueError):
        task_id = None
    reply = fields.get("reply")
    reply = str(reply).strip() if reply else None
    if action == "add_task" and not title:
        raise CohereError("add_task without a title")
    if action in ("complete_task", "delete_task") and task_id is None:
        raise CohereError(f"{action} without a task_id")
    return Intent(action, title=title, task_id=task_id, reply=reply)  # type: ignore[arg-type]


def parse_cohere_response(data: dict) -> Intent:
    """Read a Cohere v2 chat response: a tool call if present, else JSON text."""
    message = data.get("message") or {}
    tool_calls = message.get("tool_calls") or []
    if tool_calls:
        fn = (tool_calls[0] or {}).get("function") or {}
        args = fn.get("arguments") or "{}"
        try:
            fields = json.loads(args) if isinstance(args, str) else dict(args)
        except ValueError:
            raise CohereError("tool call arguments are not JSON") from None
        fields.setdefault("action", fn.get("name"))
        return _intent_from_fields(fields)

    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(
            part.get("text", "") for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text"
        )
    else:
        text = ""
    if not text.strip():
        raise CohereError("empty answer")
    return _intent_from_fields(_first_json_object(text))


# ------------------------------------------------------------------------- execute

def _format_list(tasks: list[Task]) -> str:
    if not tasks:
        return "You have no tasks yet. Try \"add buy milk\"."
    lines = [f"#{t.id} [{'x' if t.completed else ' '}] {t.title}" for t in tasks]
    return f"You have {len(tasks)} task{'s' if len(tasks) != 1 else ''}:\n" + "\n".join(lines)


def execute(store: TaskStore, user_id: str, intent: Intent, engine: str) -> ChatResult:
    task: Task | None = None
    tasks: list[Task] | None = None
    ok = True
    if intent.action == "add_task":
        task = store.create_task(user_id, intent.title or "")
        reply = f"Added task #{task.id}: {task.title}"
    elif intent.action == "list_tasks":
        tasks = store.list_tasks(user_id)
        reply = _format_list(tasks)
    elif intent.action == "complete_task":
        task = store.update_task(user_id, intent.task_id or 0, completed=True)
        ok = task is not None
        reply = (
            f"Marked task #{task.id} as done: {task.title}" if task
            else f"I couldn't find task #{intent.task_id}."
        )
    elif intent.action == "delete_task":
        existing = store.get_task(user_id, intent.task_id or 0)
        ok = existing is not None and store.delete_task(user_id, existing.id)
        task = existing if ok else None
        reply = (
            f"Deleted task #{existing.id}: {existing.title}" if ok and existing
            else f"I couldn't find task #{intent.task_id}."
        )
    else:
        reply = intent.reply or HELP_TEXT
    return ChatResult(
        user_id=user_id,
        reply=reply,
        action=ChatAction(
            type=intent.action,
            ok=ok,
            task_id=task.id if task else intent.task_id,
            title=task.title if task else intent.title,
        ),
        engine=engine,  # type: ignore[arg-type]
        task=task,
        tasks=tasks,
    )
