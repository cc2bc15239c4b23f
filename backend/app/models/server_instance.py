from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class ServerInstance(Base):
    """A running server process, so another can tell when it died (and finish what it left).

    A process on the same host is known dead when its lock file (`lock_path`, held locked while it
    runs) can be locked; one elsewhere when it has not been seen for a while (`seen_at`).
    """

    __tablename__ = "server_instances"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    lock_path: Mapped[str] = mapped_column(String(1024))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
