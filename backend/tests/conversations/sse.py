"""Reading the chat API's event streams in tests: real HTTP, parsed as a browser would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    id: str | None
    name: str
    data: Any


def parse(lines: Iterator[str]) -> Iterator[Event]:
    """SSE events from text lines (comments skipped); stops at the end of the stream."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield Event(
                    fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
    if "data" in fields:
        yield Event(fields.get("id"), fields.get("event", "message"), json.loads(fields["data"]))


def events(response: httpx.Response) -> Iterator[Event]:
    assert response.status_code == 200, response.read().decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse(response.iter_lines())


def text_of(events: list[Event], name: str = "delta") -> str:
    return "".join(e.data["content"] for e in events if e.name == name)
