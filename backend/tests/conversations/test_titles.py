"""Conversation titles: generated after the first reply, the first words when that fails."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.conversations import titles
from app.devtools.mock_upstream import MockServer
from tests.conversations.conftest import ChatUser, behave
from tests.live import LiveGateway


def _title_after(user: ChatUser, conversation_id: int, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        detail = user.get(conversation_id)
        if detail["title"] or time.monotonic() > deadline:
            return detail
        time.sleep(0.05)


def test_the_first_reply_names_the_conversation(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    behave(mock_upstream, chunks=3, text="Planning a trip")
    conversation = alice.create()
    assert conversation["title"] == ""
    alice.send(conversation["id"], "I want to visit Kyoto in spring, what should I plan?")
    detail = _title_after(alice, conversation["id"])
    assert detail["title"] == "Planning a trip"
    title_calls = [r for r in mock_upstream.state.chat_requests() if not r.body.get("stream")]
    assert len(title_calls) == 1
    assert "Kyoto" in title_calls[0].body["messages"][1]["content"]
    rows = chat_gateway.wait_for_logs(2)
    assert sorted(r.request_id.endswith("-title") for r in rows) == [False, True]

    behave(mock_upstream, chunks=2, text="Something else")
    alice.send(conversation["id"], "And in autumn?")
    time.sleep(0.3)
    assert alice.get(conversation["id"])["title"] == "Planning a trip", "named once"


def test_a_failing_title_model_falls_back_to_the_first_words(
    gateway_factory: Any, mock_upstream: MockServer
) -> None:
    from tests.conversations.conftest import MODEL, PROFILE, sign_up

    gateway = gateway_factory(runtime={"chat_title_model": "no-such-model"})
    gateway.mock = mock_upstream
    behave(mock_upstream)
    gateway.create_channel(base_url=mock_upstream.base_url(PROFILE), models=[MODEL])
    user = sign_up(gateway)
    conversation = user.create()
    user.send(
        conversation["id"],
        "如何在周末学会做一道简单又好吃的红烧肉，需要准备哪些材料和调料，火候怎么掌握",
    )
    detail = _title_after(user, conversation["id"])
    assert detail["title"].startswith("如何在周末学会做一道简单又好吃的红烧肉")
    assert detail["title"].endswith("…")


def test_a_title_the_user_set_is_never_replaced(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    conversation = alice.create(title="My own title")
    assert conversation["title_source"] == "user"
    alice.send(conversation["id"], "hello")
    time.sleep(0.3)
    assert alice.get(conversation["id"])["title"] == "My own title"
    assert all(r.body.get("stream") for r in mock_upstream.state.chat_requests())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"Trip to Kyoto."', "Trip to Kyoto"),
        ("Title: Spring in Kyoto\nMore text", "Spring in Kyoto"),
        ("标题：京都春季旅行。", "京都春季旅行"),
        ("<think>user wants a title</think>**Kyoto plans**", "Kyoto plans"),
        ("   ", ""),
        ("Here is **bold** and `code`", "Here is bold and code"),
        ("## snake_case helpers", "snake_case helpers"),
    ],
)
def test_titles_are_cleaned(raw: str, expected: str) -> None:
    assert titles.clean(raw) == expected


def test_the_fallback_cuts_long_questions_at_a_word() -> None:
    assert titles.fallback("short question") == "short question"
    long = titles.fallback("How do I configure a reverse proxy for server-sent events correctly")
    assert long.endswith("…")
    assert len(long) <= titles.FALLBACK_CHARS + 1
    assert not long[:-1].endswith(" ")
    assert titles.fallback("   ") == "New chat"
