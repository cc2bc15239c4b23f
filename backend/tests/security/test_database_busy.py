"""A write that cannot get SQLite's lock in time is a 503 with Retry-After, never a 500, and
changes nothing; one that gets it within the busy timeout just waits."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app.devtools.mock_upstream import MockServer
from tests.conversations.conftest import MODEL, PROFILE, behave, sign_up
from tests.live import GatewayFactory, LiveGateway


def test_a_locked_sqlite_database_is_a_503_with_retry_after(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory()  # the default busy timeout: 5 s
    engine = gateway.ctx.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    assert engine.url.database
    holder = sqlite3.connect(engine.url.database, timeout=0)
    admin = gateway.admin
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        response = gateway.http.post("/api/keys", json={"name": "k"}, headers=admin)
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_busy"
    assert response.headers["retry-after"] == "1"
    created = gateway.http.post("/api/keys", json={"name": "k"}, headers=admin)
    assert created.status_code == 201


def _chat_gateway(gateway_factory: GatewayFactory, mock: MockServer) -> LiveGateway:
    """A gateway whose SQLite busy timeout is short, with the mock upstream as its chat channel."""
    gateway = gateway_factory(database={"sqlite_busy_timeout_ms": 1000})
    if gateway.ctx.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    behave(mock)
    gateway.create_channel(base_url=mock.base_url(PROFILE), models=[MODEL])
    return gateway


@contextmanager
def _write_lock(gateway: LiveGateway) -> Iterator[sqlite3.Connection]:
    path = gateway.ctx.engine.url.database
    assert path
    holder = sqlite3.connect(path, timeout=0, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield holder
    finally:
        holder.rollback()
        holder.close()


def test_a_chat_message_waits_for_another_writer_within_the_busy_timeout(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = _chat_gateway(gateway_factory, mock_upstream)
    user = sign_up(gateway)
    conversation = user.create(model=MODEL)
    with _write_lock(gateway) as holder:
        threading.Timer(0.2, holder.rollback).start()  # within the 1 s busy timeout
        events = user.send(conversation["id"], "hello")
    assert events[-1].name == "done", events
    detail = user.get(conversation["id"])
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["message_count"] == 2


def test_a_chat_message_refused_as_busy_leaves_the_conversation_free(
    gateway_factory: GatewayFactory, mock_upstream: MockServer
) -> None:
    gateway = _chat_gateway(gateway_factory, mock_upstream)
    user = sign_up(gateway)
    conversation = user.create(model=MODEL)
    path = f"/api/conversations/{conversation['id']}/messages"
    with _write_lock(gateway):  # held past every retry
        refused = user.http.post(path, json={"content": "hello"}, headers=user.headers)
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "database_busy"
    assert user.get(conversation["id"])["message_count"] == 0
    # Not left claimed: the next message starts a reply.
    assert user.send(conversation["id"], "again")[-1].name == "done"
