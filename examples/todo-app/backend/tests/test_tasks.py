def test_empty_list(client):
    r = client.get("/api/tasks")
    assert r.status_code == 200
    assert r.json() == []


def test_create_list_complete_delete(client):
    r = client.post("/api/tasks", json={"title": "  buy milk  "})
    assert r.status_code == 201
    task = r.json()
    assert task["title"] == "buy milk"
    assert task["completed"] is False
    assert task["user_id"] == "default"
    tid = task["id"]

    assert [t["id"] for t in client.get("/api/tasks").json()] == [tid]
    assert client.get(f"/api/tasks/{tid}").json()["title"] == "buy milk"

    r = client.post(f"/api/tasks/{tid}/complete")
    assert r.status_code == 200
    assert r.json()["completed"] is True

    r = client.patch(f"/api/tasks/{tid}", json={"completed": False, "title": "buy oat milk"})
    assert r.status_code == 200
    assert r.json()["completed"] is False
    assert r.json()["title"] == "buy oat milk"

    r = client.delete(f"/api/tasks/{tid}")
    assert r.status_code == 204
    assert client.get("/api/tasks").json() == []
    assert client.delete(f"/api/tasks/{tid}").status_code == 404


def test_missing_task_is_404(client):
    assert client.get("/api/tasks/999").status_code == 404
    assert client.post("/api/tasks/999/complete").status_code == 404
    assert client.patch("/api/tasks/999", json={"completed": True}).status_code == 404
    assert client.delete("/api/tasks/999").status_code == 404


def test_validation(client):
    assert client.post("/api/tasks", json={}).status_code == 422
    assert client.post("/api/tasks", json={"title": ""}).status_code == 422
    assert client.post("/api/tasks", json={"title": "   "}).status_code == 422
    assert client.post("/api/tasks", json={"title": "x" * 501}).status_code == 422
    assert client.get("/api/tasks", params={"user_id": "bad user!"}).status_code == 422


def test_tasks_are_per_user(client):
    a = client.post("/api/tasks", params={"user_id": "alice"}, json={"title": "a"}).json()
    client.post("/api/tasks", params={"user_id": "bob"}, json={"title": "b"})
    titles = [t["title"] for t in client.get("/api/tasks", params={"user_id": "alice"}).json()]
    assert titles == ["a"]
    assert client.get("/api/tasks").json() == []
    # Bob cannot touch Alice's task.
    assert client.delete(f"/api/tasks/{a['id']}", params={"user_id": "bob"}).status_code == 404
    assert client.post(f"/api/tasks/{a['id']}/complete", params={"user_id": "bob"}).status_code == 404


def test_chat_and_task_api_share_storage(client):
    client.post("/api/default/chat", json={"message": "add water plants"})
    assert [t["title"] for t in client.get("/api/tasks").json()] == ["water plants"]


def test_docs_served_under_api(client):
    assert client.get("/api/openapi.json").status_code == 200
    assert client.get("/api/docs").status_code == 200
