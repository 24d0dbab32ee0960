import TodoApp from "./TodoApp";

// Statically prerendered shell: GET / (the Kubernetes probe path) is served
// from the build output without calling the backend. Data loads in the browser.
export default function Home() {
  return (
    <main className="container">
      <header>
        <h1>Todo AI Chatbot</h1>
        <p className="muted">Add, complete and delete tasks, or just tell the assistant.</p>
      </header>
      <TodoApp />
    </main>
  );
}
