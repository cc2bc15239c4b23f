"""Incremental Server-Sent Events decoding, per the HTML spec's rules for the parts we need.

Lines may end in LF, CRLF or CR (a CR at the end of one read is held until the next, in case an LF
follows). Comment lines (`:` …) are skipped; `data:` lines are joined with LF; an empty line ends an
event. Only the data is returned — upstream `event:`/`id:` fields carry nothing we use.
"""

from __future__ import annotations


class SSEDecoder:
    __slots__ = ("_buffer", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop() + held
        events: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data = self._data = []
                continue
            if line.startswith(b"data"):
                value = line[4:]
                if value.startswith(b":"):
                    value = value[1:]
                    if value.startswith(b" "):
                        value = value[1:]
                    data.append(value)
                elif not value:
                    data.append(b"")
            # comments (":…") and other fields (event, id, retry) are ignored
        return events

    def finish(self) -> list[bytes]:
        """Events still pending at end of stream (some servers omit the final blank line)."""
        events = self.feed(b"\n\n") if (self._buffer or self._data) else []
        self._buffer = b""
        return events
