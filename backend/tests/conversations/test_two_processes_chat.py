"""With Redis, a reply started on one process is followed, resumed and stopped from another."""

from __future__ import annotations

import time

import httpx
import pytest

from app.devtools.mock_upstream import MockServer
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME
from tests.conversations.conftest import MODEL, PROFILE, behave
from tests.conversations.sse import Event, events, text_of

pytestmark = pytest.mark.slow


def _sign_in(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    login = client.post("/api/auth/login", json={"username": username, "password": password})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def test_a_reply_on_one_process_is_resumed_and_stopped_on_the_other(
    two_processes: tuple[httpx.Client, httpx.Client], mock_upstream: MockServer
) -> None:
    a, b = two_processes
    admin = _sign_in(a, ADMIN_USERNAME, ADMIN_PASSWORD)
    channel = a.post(
        "/api/admin/channels",
        json={
            "name": "mock",
            "base_url": mock_upstream.base_url(PROFILE),
            "api_key": "sk-upstream-two-processes",
            "models": [MODEL],
        },
        headers=admin,
    )
    assert channel.status_code == 201, channel.text
    a.post("/api/auth/register", json={"username": "carol", "password": "correct horse battery"})
    user = _sign_in(a, "carol", "correct horse battery")
    behave(mock_upstream, chunks=200, interval=0.03, text=" ".join(f"w{i}" for i in range(200)))
    conversation = a.post("/api/conversations", json={}, headers=user).json()
    path = f"/api/conversations/{conversation['id']}"

    deadline = time.monotonic() + 5  # the channel reaches b through the change bus
    while MODEL not in b.get("/api/chat/models", headers=user).json()["items"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    first: list[Event] = []
    with a.stream("POST", f"{path}/messages", json={"content": "go"}, headers=user) as response:
        for event in events(response):
            first.append(event)
            if sum(e.name == "delta" for e in first) == 5:
                break  # the page reloads, and comes back through the other process

    busy = b.post(f"{path}/messages", json={"content": "meanwhile"}, headers=user)
    assert busy.status_code == 409, "the conversation is held across processes"
    assert b.get(path, headers=user).json()["running_reply"] == first[0].id.rsplit(".", 1)[0]

    rest: list[Event] = []
    stop = None
    with b.stream(
        "GET", f"{path}/stream", headers={**user, "Last-Event-ID": first[-1].id}
    ) as response:
        for event in events(response):
            rest.append(event)
            if stop is None and sum(e.name == "delta" for e in rest) == 5:
                stop = b.post(f"{path}/stop", headers=user)
    assert stop is not None
    assert stop.status_code == 200
    assert stop.json()["stopped"] is True
    assert stop.json()["status"] == "stopped"

    ids = [e.id for e in first + rest]
    assert len(ids) == len(set(ids))
    assert [int(i.rsplit(".", 1)[1]) for i in ids] == list(range(1, len(ids) + 1))
    assert rest[-1].name == "done"
    assert rest[-1].data["status"] == "stopped"
    stored = rest[-1].data["message"]
    assert stored["content"] == text_of(first + rest)
    assert 10 <= len(stored["content"].split()) < 200

    record = mock_upstream.state.chat_requests()[-1]
    deadline = time.monotonic() + 5
    while not record.finished and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.client_closed, "the upstream call on process a was closed"

    detail = b.get(path, headers=user).json()
    assert detail["running_reply"] is None
    assert [m["status"] for m in detail["messages"]] == ["complete", "stopped"]
    behave(mock_upstream, chunks=2, text="next one")
    with b.stream("POST", f"{path}/messages", json={"content": "again"}, headers=user) as response:
        again = list(events(response))
    assert again[-1].data["status"] == "complete", "the conversation was released"
