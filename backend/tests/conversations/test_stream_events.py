"""Real chat streams carry what the OpenAPI document says they do (`ChatStreamEvent`)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.conversations.stream_events import EVENTS
from app.devtools.mock_upstream import MockServer
from tests.conversations.conftest import ChatUser, behave
from tests.conversations.sse import Event
from tests.live import LiveGateway


def _check(events: list[Event]) -> list[str]:
    for event in events:
        EVENTS.validate_python({"event": event.name, "data": event.data})
        assert event.id is not None
        assert "." in event.id
    return [event.name for event in events]


def test_a_complete_reply_with_reasoning_matches_the_description(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    behave(mock_upstream, chunks=4, reasoning=2, text="one two three four")
    conversation = alice.create()
    names = _check(alice.send(conversation["id"], "go"))
    assert names[0] == "message"
    assert {"reasoning", "delta"} <= set(names)
    assert names[-2:] == ["usage", "done"]


def test_a_failed_and_a_refused_reply_match_the_description(
    chat_gateway: LiveGateway, alice: ChatUser, mock_upstream: MockServer
) -> None:
    behave(mock_upstream, chunks=10, drop_after=4, text="a b c d e f g h i j")
    conversation = alice.create()
    assert _check(alice.send(conversation["id"], "go"))[-3:] == ["error", "usage", "done"]
    behave(mock_upstream, status=503)  # no channel answers: refused before anything is said
    refused = alice.send(conversation["id"], "again")
    names = _check(refused)
    assert names[-3:] == ["error", "usage", "done"]
    assert refused[-3].data["status"] == 503  # the provider's 503, passed on


def test_the_description_refuses_what_a_stream_never_carries() -> None:
    with pytest.raises(ValidationError):
        EVENTS.validate_python({"event": "delta", "data": {"text": "wrong field"}})
    with pytest.raises(ValidationError):
        EVENTS.validate_python({"event": "finished", "data": {}})
