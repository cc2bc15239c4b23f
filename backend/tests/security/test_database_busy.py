"""A write that cannot get SQLite's lock in time is a 503 with Retry-After, never a 500."""

from __future__ import annotations

import sqlite3

import pytest

from tests.live import GatewayFactory


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
