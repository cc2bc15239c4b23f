"""Replies over real HTTP against the live server and the mock upstream."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.devtools.mock_upstream import MockServer
from app.models import CallLog, Message
from tests.conftest import DatabaseTarget
from tests.conversations.conftest import MODEL, ChatUser, behave, reply_requests
from tests.conversations.sse import text_of
from tests.live import LiveGateway


def _wait(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_a_full_streaming_reply_is_streamed_stored_and_logged(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    behave(mock_upstream, chunks=6, text="One two three four five six")
    conversation = alice.create()
    events = alice.send(conversation["id"], "Say something")

    names = [e.name for e in events]
    assert names[0] == "message"
    assert names[-2:] == ["usage", "done"]
    assert set(names[1:-2]) == {"delta"}
    assert events[0].data["role"] == "user"
    assert events[0].data["content"] == "Say something"
    ids = [e.id for e in events]
    reply_id = ids[0].rsplit(".", 1)[0]
    assert ids == [f"{reply_id}.{n}" for n in range(1, len(events) + 1)]
    streamed = text_of(events)
    assert streamed == "One two three four five six"

    done = events[-1].data
    assert done["status"] == "complete"
    stored = done["message"]
    assert stored["role"] == "assistant"
    assert stored["content"] == streamed
    assert stored["model"] == MODEL
    assert stored["status"] == "complete"
    assert events[-2].data["completion_tokens"] == stored["completion_tokens"] > 0

    detail = alice.get(conversation["id"])
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][1]["content"] == streamed
    assert detail["message_count"] == 2
    assert detail["running_reply"] is None
    assert detail["total_tokens"] == stored["total_tokens"]

    rows = [r for r in chat_gateway.wait_for_logs(1) if not r.request_id.endswith("-title")]
    assert len(rows) == 1
    assert (rows[0].source, rows[0].end_reason, rows[0].user_id) == ("chat", "done", alice.id)
    assert chat_gateway.ctx.gate.in_use == 0


def _agent(gateway: LiveGateway, **fields: object) -> dict[str, object]:
    body = {
        "name": "Translator",
        "system_prompt": "You translate into French.",
        "preset_messages": [
            {"role": "user", "content": "Translate: cat"},
            {"role": "assistant", "content": "chat"},
        ],
        "greetings": ["Bonjour! GREETING-MARKER"],
        "suggested_questions": ["Translate: dog", "Translate: bird"],
        "params": {"temperature": 0.2, "max_tokens": 300},
        **fields,
    }
    response = gateway.http.post("/api/admin/agents", json=body, headers=gateway.admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_the_agent_preset_and_history_are_sent_and_greetings_never_are(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    agent = _agent(chat_gateway)
    conversation = alice.create(agent_id=agent["id"])
    detail = alice.get(conversation["id"])
    assert detail["agent"]["greetings"] == ["Bonjour! GREETING-MARKER"]
    assert detail["agent"]["suggested_questions"] == ["Translate: dog", "Translate: bird"]
    assert detail["messages"] == []

    alice.send(conversation["id"], "Translate: dog")
    alice.send(conversation["id"], "Translate: bird")

    last = reply_requests(mock_upstream)[-1]
    assert [m["role"] for m in last["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert last["messages"][0]["content"] == "You translate into French."
    assert last["messages"][3]["content"] == "Translate: dog"
    assert last["messages"][-1]["content"] == "Translate: bird"
    assert last["temperature"] == 0.2
    assert last["max_tokens"] == 300
    assert last["stream_options"] == {"include_usage": True}
    for recorded in mock_upstream.state.chat_requests():
        assert "GREETING-MARKER" not in str(recorded.body)


def test_the_context_is_trimmed_to_the_token_budget(
    gateway_factory: object, mock_upstream: MockServer
) -> None:
    from tests.conversations.conftest import PROFILE, sign_up

    gateway = gateway_factory(runtime={"chat_context_tokens": 300, "chat_auto_title": False})  # type: ignore[operator]
    gateway.mock = mock_upstream
    behave(mock_upstream)
    gateway.create_channel(base_url=mock_upstream.base_url(PROFILE), models=[MODEL])
    user = sign_up(gateway)
    conversation = user.create()
    for index in range(8):
        user.send(conversation["id"], f"question {index} " + "word " * 40)
    sent = reply_requests(mock_upstream)[-1]["messages"]
    assert sent[0]["role"] == "system"  # the default agent's prompt is always kept
    sent = sent[1:]
    assert sent[-1]["content"].startswith("question 7")
    assert len(sent) < 16, "older messages were dropped to fit the budget"
    assert sent[0]["role"] == "user", "the trimmed history still starts with a question"


def _slow(mock: MockServer, chunks: int = 60) -> None:
    behave(mock, chunks=chunks, interval=0.03, text=" ".join(f"w{i}" for i in range(chunks)))


def test_stop_mid_stream_keeps_the_partial_answer_as_stopped(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    _slow(mock_upstream)
    conversation = alice.create()
    path = f"/api/conversations/{conversation['id']}"
    seen = []
    stopped = None
    with alice.stream("POST", f"{path}/messages", json={"content": "go"}) as stream:
        for event in stream:
            seen.append(event)
            if stopped is None and sum(e.name == "delta" for e in seen) == 5:
                stopped = alice.http.post(f"{path}/stop", headers=alice.headers)
    assert stopped is not None
    assert stopped.status_code == 200
    assert stopped.json()["stopped"] is True
    assert stopped.json()["status"] == "stopped"
    assert seen[-1].name == "done"
    assert seen[-1].data["status"] == "stopped"
    stored = seen[-1].data["message"]
    assert stored["status"] == "stopped"
    assert stored["content"] == text_of(seen)
    assert 0 < len(stored["content"].split()) < 60

    record = mock_upstream.state.chat_requests()[-1]
    _wait(lambda: record.finished)
    assert record.client_closed, "stopping closed the upstream call"
    assert alice.get(conversation["id"])["messages"][-1]["status"] == "stopped"
    (row,) = [r for r in chat_gateway.wait_for_logs(1) if not r.request_id.endswith("-title")]
    assert row.end_reason == "client_gone"
    assert chat_gateway.ctx.gate.in_use == 0

    again = alice.http.post(f"{path}/stop", headers=alice.headers)
    assert again.json() == {"stopped": False, "reply_id": None, "status": None}


def test_a_reload_mid_stream_resumes_with_last_event_id_and_misses_nothing(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    _slow(mock_upstream, chunks=40)
    conversation = alice.create()
    path = f"/api/conversations/{conversation['id']}"
    first = []
    with alice.stream("POST", f"{path}/messages", json={"content": "go"}) as stream:
        for event in stream:
            first.append(event)
            if sum(e.name == "delta" for e in first) == 7:
                break  # the browser reloads: the connection is gone
    running = alice.get(conversation["id"])["running_reply"]
    assert running == first[0].id.rsplit(".", 1)[0]

    with alice.stream("GET", f"{path}/stream", headers={"Last-Event-ID": first[-1].id}) as stream:
        rest = list(stream)
    ids = [e.id for e in first + rest]
    assert len(ids) == len(set(ids)), "no event twice"
    numbers = [int(i.rsplit(".", 1)[1]) for i in ids]
    assert numbers == list(range(1, len(numbers) + 1)), "no event missed"
    assert rest[-1].name == "done"
    stored = rest[-1].data["message"]
    assert stored["content"] == text_of(first + rest) == " ".join(f"w{i}" for i in range(40))

    # Another tab attaching later, with no id, gets the whole reply from the start.
    with alice.stream("GET", f"{path}/stream") as stream:
        replay = list(stream)
    assert [e.id for e in replay] == ids
    # And one that has seen everything gets just the end.
    with alice.stream("GET", f"{path}/stream", headers={"Last-Event-ID": ids[-1]}) as stream:
        assert list(stream) == []


def test_resume_with_nothing_to_attach_to_is_204(
    chat_gateway: LiveGateway, alice: ChatUser
) -> None:
    conversation = alice.create()
    response = alice.http.get(
        f"/api/conversations/{conversation['id']}/stream", headers=alice.headers
    )
    assert response.status_code == 204


def test_the_reply_keeps_running_when_the_client_goes_away(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    _slow(mock_upstream, chunks=20)
    conversation = alice.create()
    with alice.stream(
        "POST", f"/api/conversations/{conversation['id']}/messages", json={"content": "go"}
    ) as stream:
        next(stream)  # the user message; then the tab is closed
    _wait(lambda: alice.get(conversation["id"])["message_count"] == 2)
    answer = alice.get(conversation["id"])["messages"][-1]
    assert answer["status"] == "complete"
    assert answer["content"] == " ".join(f"w{i}" for i in range(20))


def test_concurrent_sends_to_one_conversation_admit_one_and_refuse_the_rest(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    import threading

    import httpx

    _slow(mock_upstream, chunks=20)
    conversation = alice.create()
    path = f"/api/conversations/{conversation['id']}/messages"
    statuses: list[int] = []
    codes: list[str] = []
    barrier = threading.Barrier(5)

    def send(index: int) -> None:
        with httpx.Client(base_url=chat_gateway.url, timeout=30) as client:
            barrier.wait()
            with client.stream(
                "POST", path, json={"content": f"question {index}"}, headers=alice.headers
            ) as response:
                response.read()
                statuses.append(response.status_code)
                if response.status_code == 409:
                    codes.append(response.json()["code"])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [200, 409, 409, 409, 409]
    assert codes == ["reply_running"] * 4
    messages = alice.get(conversation["id"])["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"], "history never interleaved"
    assert chat_gateway.ctx.gate.in_use == 0


def test_an_upstream_failure_mid_reply_is_an_error_event_and_the_next_send_works(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    behave(mock_upstream, chunks=10, drop_after=4, text="a b c d e f g h i j")
    conversation = alice.create()
    events = alice.send(conversation["id"], "go")
    names = [e.name for e in events]
    assert names[-3:] == ["error", "usage", "done"]
    error = events[-3].data
    assert error["code"] == "upstream_error"
    assert "sk-upstream" not in str(error)
    stored = events[-1].data["message"]
    assert events[-1].data["status"] == "error" == stored["status"]
    assert stored["content"] == text_of(events) == "a b c d "
    assert stored["error_code"] == "upstream_error"

    behave(mock_upstream, chunks=3, text="all good now")
    again = alice.send(conversation["id"], "again")
    assert again[-1].data["status"] == "complete"
    assert [m["status"] for m in alice.get(conversation["id"])["messages"]] == [
        "complete",
        "error",
        "complete",
        "complete",
    ]
    assert chat_gateway.ctx.gate.in_use == 0


def test_a_refused_reply_says_why_and_when_to_retry(
    gateway_factory: object, mock_upstream: MockServer
) -> None:
    from tests.conversations.conftest import PROFILE, sign_up

    gateway = gateway_factory(runtime={"default_user_rpm": 2, "chat_auto_title": False})  # type: ignore[operator]
    gateway.mock = mock_upstream
    behave(mock_upstream)
    gateway.create_channel(base_url=mock_upstream.base_url(PROFILE), models=[MODEL])
    user = sign_up(gateway)
    conversation = user.create()
    assert user.send(conversation["id"], "one")[-1].data["status"] == "complete"
    assert user.send(conversation["id"], "two")[-1].data["status"] == "complete"
    events = user.send(conversation["id"], "three")
    error = next(e.data for e in events if e.name == "error")
    assert error["code"] == "user_rate_limited"
    assert error["status"] == 429
    assert isinstance(error["retry_after"], int)
    assert error["retry_after"] >= 1
    assert events[-1].data["message"]["status"] == "error"
    assert len(mock_upstream.state.chat_requests()) == 2, "the refused reply never went upstream"
    assert gateway.ctx.gate.in_use == 0


def test_regenerate_replaces_the_last_answer(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    behave(mock_upstream, chunks=2, text="first answer")
    conversation = alice.create()
    alice.send(conversation["id"], "question")
    behave(mock_upstream, chunks=2, text="second answer")
    with alice.stream(
        "POST", f"/api/conversations/{conversation['id']}/regenerate", json={}
    ) as stream:
        events = list(stream)
    assert events[0].name == "delta", "no new user message"
    assert text_of(events) == "second answer"
    messages = alice.get(conversation["id"])["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "question"),
        ("assistant", "second answer"),
    ]
    sent = reply_requests(mock_upstream)[-1]["messages"]
    assert sent[-1] == {"role": "user", "content": "question"}


def test_editing_a_message_drops_what_followed_and_continues_from_there(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    behave(mock_upstream, chunks=2, text="an answer")
    conversation = alice.create()
    alice.send(conversation["id"], "first question")
    alice.send(conversation["id"], "second question")
    first = alice.get(conversation["id"])["messages"][0]
    with alice.stream(
        "POST",
        f"/api/conversations/{conversation['id']}/messages/{first['id']}/edit",
        json={"content": "a better first question"},
    ) as stream:
        events = list(stream)
    assert events[0].name == "message"
    assert events[0].data["content"] == "a better first question"
    detail = alice.get(conversation["id"])
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("user", "a better first question"),
        ("assistant", "an answer"),
    ]
    assert detail["message_count"] == 2
    sent = reply_requests(mock_upstream)[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["a better first question"]

    answer = detail["messages"][1]
    response = alice.http.post(
        f"/api/conversations/{conversation['id']}/messages/{answer['id']}/edit",
        json={"content": "x"},
        headers=alice.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "not_a_user_message"


def test_reasoning_streams_as_its_own_events_and_is_stored(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    behave(mock_upstream, reasoning=3, chunks=2, text="The answer")
    conversation = alice.create()
    events = alice.send(conversation["id"], "think")
    names = [e.name for e in events]
    assert names.index("reasoning") < names.index("delta")
    stored = events[-1].data["message"]
    assert stored["reasoning"] == text_of(events, "reasoning") != ""
    assert stored["content"] == "The answer"
    assert stored["reasoning_ms"] is not None


def test_inline_think_is_split_for_a_channel_that_asks(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    channel = chat_gateway.channels_in_db()[0]
    chat_gateway.http.patch(
        f"/api/admin/channels/{channel.id}", json={"split_think": True}, headers=chat_gateway.admin
    ).raise_for_status()
    behave(mock_upstream, think=1, chunks=2, text="Visible answer")
    conversation = alice.create()
    events = alice.send(conversation["id"], "think inline")
    stored = events[-1].data["message"]
    assert "<think>" not in stored["content"]
    assert stored["content"].strip() == "Visible answer"
    assert stored["reasoning"]


def test_a_shutdown_stores_running_replies_as_stopped(
    gateway_factory: Any, mock_upstream: MockServer, database: DatabaseTarget
) -> None:
    from tests.conversations.conftest import PROFILE, sign_up

    gateway = gateway_factory(runtime={"chat_auto_title": False})
    gateway.mock = mock_upstream
    _slow(mock_upstream, chunks=400)
    gateway.create_channel(base_url=mock_upstream.base_url(PROFILE), models=[MODEL])
    user = sign_up(gateway)
    conversation = user.create()
    with user.stream(
        "POST", f"/api/conversations/{conversation['id']}/messages", json={"content": "go"}
    ) as stream:
        for event in stream:
            if event.name == "delta":
                break
    gateway.stop()

    async def read() -> tuple[list[Message], list[CallLog]]:
        connect_args = (
            {"server_settings": {"search_path": database.pg_schema}} if database.pg_schema else {}
        )
        engine = create_async_engine(database.url, connect_args=connect_args)
        try:
            async with AsyncSession(engine) as db:
                messages = (await db.scalars(select(Message).order_by(Message.id))).all()
                logs = (await db.scalars(select(CallLog))).all()
                return list(messages), list(logs)
        finally:
            await engine.dispose()

    messages, logs = asyncio.run(read())
    assert [(m.role, m.status) for m in messages] == [
        ("user", "complete"),
        ("assistant", "stopped"),
    ]
    assert messages[1].error_code == "server_restart"
    assert messages[1].content.startswith("w0")
    assert [(row.source, row.end_reason) for row in logs] == [("chat", "client_gone")]


def test_a_failing_channel_is_skipped_before_the_reply_starts(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    mock_upstream.set_profile("broken", status=503)
    chat_gateway.create_channel(
        name="broken first",
        base_url=mock_upstream.base_url("broken"),
        models=[MODEL],
        priority=10,
    )
    behave(mock_upstream, chunks=4, text="from the healthy one")
    conversation = alice.create(title="t")
    events = alice.send(conversation["id"], "hello")
    assert events[-1].data["status"] == "complete"
    assert text_of(events) == "from the healthy one"
    (row,) = chat_gateway.wait_for_logs(1)
    assert len(row.channels_tried) == 2
