"""The calls running now, as the call-log writer records them (`calls_in_flight`).

A call's log row is written when the call ends, so a server killed outright (`kill -9`, a crash, a
lost machine) used to leave no trace of the calls it was running. Now a call that has run for
`JOURNAL_AFTER_SECONDS` is written to `calls_in_flight` by the writer's next flush, and removed in
the flush that writes its log row; a chat reply's partial message is written again every
`CHECKPOINT_SECONDS`. The next server turns what a dead one left there into log rows ended
`interrupted` and assistant messages marked `interrupted` with the text they had
(`logs.recovery`). A call quicker than `JOURNAL_AFTER_SECONDS` costs nothing here: its start and
end meet in memory.

All of it is in memory until the writer's flush, which does the database work in its own
transaction; if that fails, what it took is given back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

JOURNAL_AFTER_SECONDS = 1.0
CHECKPOINT_SECONDS = 2.0
ReplyState = Callable[[], dict[str, Any]]


class JournaledCall(Protocol):
    """A call as the journal needs it (the gateway's `CallRecord`)."""

    @property
    def journal_id(self) -> str: ...

    def to_row(self) -> dict[str, Any]: ...


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """JSON types only (times as ISO text), as the JSON column stores them."""
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(value))
    return loaded


@dataclass
class Entry:
    call: JournaledCall
    reply: ReplyState | None
    began: float = field(default_factory=time.monotonic)
    written: bool = False
    checkpointed: float = 0.0


@dataclass
class JournalWork:
    """What one flush writes: new entries, refreshed replies, and entries whose call ended."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    _taken: list[tuple[str, Entry, bool]] = field(default_factory=list, repr=False)

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates or self.deletes)


class Journal:
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self._entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def begin(self, call: JournaledCall, reply: ReplyState | None = None) -> None:
        self._entries[call.journal_id] = Entry(call, reply)

    def due(self, now: float | None = None) -> bool:
        """Whether a flush has something to write even with no log rows queued."""
        now = time.monotonic() if now is None else now
        return any(self._work_for(entry, now) for entry in self._entries.values())

    @staticmethod
    def _work_for(entry: Entry, now: float) -> bool:
        if not entry.written:
            return now - entry.began >= JOURNAL_AFTER_SECONDS
        return entry.reply is not None and now - entry.checkpointed >= CHECKPOINT_SECONDS

    def take(self, ended: list[str], now: float | None = None) -> JournalWork:
        """The work of one flush. `ended`: journal ids of the log rows it writes."""
        now = time.monotonic() if now is None else now
        work = JournalWork()
        for journal_id in ended:
            entry = self._entries.pop(journal_id, None)
            if entry is not None:
                work._taken.append((journal_id, entry, True))
                if entry.written:
                    work.deletes.append(journal_id)
        for journal_id, entry in self._entries.items():
            if not self._work_for(entry, now):
                continue
            record: dict[str, Any] = {
                "id": journal_id,
                "row": _plain(entry.call.to_row()),
                "reply": _plain(entry.reply()) if entry.reply is not None else None,
            }
            work._taken.append((journal_id, entry, False))
            if entry.written:
                work.updates.append(record)
            else:
                work.inserts.append({**record, "instance_id": self.instance_id})
            entry.written, entry.checkpointed = True, now
        return work

    def give_back(self, work: JournalWork) -> None:
        """The flush failed: what it took is pending again."""
        inserted = {record["id"] for record in work.inserts}
        for journal_id, entry, ended in work._taken:
            if journal_id in inserted:
                entry.written = False
            if ended:
                self._entries[journal_id] = entry
