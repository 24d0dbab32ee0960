// Small typed client for the backend API.
//
// API_BASE is NEXT_PUBLIC_API_URL when it was set at *build* time (Next.js
// inlines NEXT_PUBLIC_* into the browser bundle), otherwise the relative "/api":
// the browser then calls the same origin that served the page, and the Ingress
// (host todo.local) routes /api to the backend. One image works on any host.

export const API_BASE = (process.env.NEXT_PUBLIC_API_URL || "/api").replace(/\/+$/, "");

// The plain task API and the chat use the same user, so both see the same tasks.
export const USER_ID = "default";

export interface Task {
  id: number;
  user_id: string;
  title: string;
  completed: boolean;
  created_at: string;
}

export interface ChatResult {
  user_id: string;
  reply: string;
  action: {
    type: "add_task" | "list_tasks" | "complete_task" | "delete_task" | "help";
    ok: boolean;
    task_id: number | null;
    title: string | null;
  };
  engine: "rules" | "cohere";
  task: Task | null;
  tasks: Task[] | null;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${API_BASE}${path}`, {
      ...init,
      headers: { "Content-Type": "application/json", ...(init?.headers ?? {}) },
      cache: "no-store",
    });
  } catch {
    throw new ApiError("The backend cannot be reached.", 0);
  }
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (typeof body?.detail === "string") detail = body.detail;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(detail, res.status);
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

const user = `user_id=${encodeURIComponent(USER_ID)}`;

export const api = {
  listTasks: () => request<Task[]>(`/tasks?${user}`),
  createTask: (title: string) =>
    request<Task>(`/tasks?${user}`, { method: "POST", body: JSON.stringify({ title }) }),
  setCompleted: (id: number, completed: boolean) =>
    completed
      ? request<Task>(`/tasks/${id}/complete?${user}`, { method: "POST" })
      : request<Task>(`/tasks/${id}?${user}`, {
          method: "PATCH",
          body: JSON.stringify({ completed }),
        }),
  deleteTask: (id: number) => request<void>(`/tasks/${id}?${user}`, { method: "DELETE" }),
  chat: (message: string) =>
    request<ChatResult>(`/${encodeURIComponent(USER_ID)}/chat`, {
      method: "POST",
      body: JSON.stringify({ message }),
    }),
};
