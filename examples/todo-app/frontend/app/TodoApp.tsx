"use client";

import { FormEvent, useCallback, useEffect, useRef, useState } from "react";
import { api, API_BASE, Task } from "@/lib/api";

interface ChatLine {
  id: number;
  from: "you" | "assistant";
  text: string;
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export default function TodoApp() {
  const [tasks, setTasks] = useState<Task[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [newTitle, setNewTitle] = useState("");
  const [message, setMessage] = useState("");
  const [chat, setChat] = useState<ChatLine[]>([]);
  const [sending, setSending] = useState(false);
  const nextLine = useRef(1);
  const chatEnd = useRef<HTMLDivElement>(null);

  const refresh = useCallback(async () => {
    try {
      setTasks(await api.listTasks());
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, []);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  useEffect(() => {
    chatEnd.current?.scrollIntoView({ block: "nearest" });
  }, [chat]);

  const run = async (action: () => Promise<unknown>) => {
    try {
      await action();
      await refresh();
    } catch (e) {
      setError(errorText(e));
    }
  };

  const addTask = async (e: FormEvent) => {
    e.preventDefault();
    const title = newTitle.trim();
    if (!title) return;
    await run(() => api.createTask(title));
    setNewTitle("");
  };

  const say = (from: ChatLine["from"], text: string) =>
    setChat((lines) => [...lines, { id: nextLine.current++, from, text }]);

  const sendChat = async (e: FormEvent) => {
    e.preventDefault();
    const text = message.trim();
    if (!text || sending) return;
    setMessage("");
    say("you", text);
    setSending(true);
    try {
      const result = await api.chat(text);
      say("assistant", result.reply);
      await refresh();
    } catch (err) {
      say("assistant", `Sorry, that failed: ${errorText(err)}`);
    } finally {
      setSending(false);
    }
  };

  const open = tasks?.filter((t) => !t.completed).length ?? 0;

  return (
    <div className="grid">
      <section className="card" aria-labelledby="tasks-heading">
        <h2 id="tasks-heading">
          Tasks {tasks && <span className="muted">({open} open)</span>}
        </h2>
        {error && (
          <p className="error" role="alert">
            {error} <span className="muted">(API: {API_BASE})</span>
          </p>
        )}
        <form onSubmit={addTask} className="row">
          <input
            value={newTitle}
            onChange={(e) => setNewTitle(e.target.value)}
            placeholder="New task"
            aria-label="New task title"
            maxLength={500}
          />
          <button type="submit" disabled={!newTitle.trim()}>
            Add
          </button>
        </form>
        {tasks === null && !error && <p className="muted">Loading tasks…</p>}
        {tasks?.length === 0 && <p className="muted">No tasks yet.</p>}
        <ul className="tasks">
          {tasks?.map((t) => (
            <li key={t.id} className={t.completed ? "done" : undefined}>
              <label>
                <input
                  type="checkbox"
                  checked={t.completed}
                  onChange={() => run(() => api.setCompleted(t.id, !t.completed))}
                />
                <span className="id">#{t.id}</span> {t.title}
              </label>
              <button
                className="link"
                onClick={() => run(() => api.deleteTask(t.id))}
                aria-label={`Delete task ${t.id}`}
              >
                Delete
              </button>
            </li>
          ))}
        </ul>
      </section>

      <section className="card" aria-labelledby="chat-heading">
        <h2 id="chat-heading">Assistant</h2>
        <div className="chat" aria-live="polite">
          {chat.length === 0 && (
            <p className="muted">
              Try &ldquo;add buy milk&rdquo;, &ldquo;list&rdquo;, &ldquo;complete 1&rdquo; or
              &ldquo;delete 1&rdquo;.
            </p>
          )}
          {chat.map((line) => (
            <p key={line.id} className={`bubble ${line.from}`}>
              {line.text}
            </p>
          ))}
          <div ref={chatEnd} />
        </div>
        <form onSubmit={sendChat} className="row">
          <input
            value={message}
            onChange={(e) => setMessage(e.target.value)}
            placeholder="Tell me what to do"
            aria-label="Message to the assistant"
            maxLength={2000}
          />
          <button type="submit" disabled={sending || !message.trim()}>
            {sending ? "…" : "Send"}
          </button>
        </form>
      </section>
    </div>
  );
}
