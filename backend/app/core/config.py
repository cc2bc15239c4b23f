"""Process settings, read from the environment and `.env`.

Each group is a pydantic-settings class with its own prefix so the documented variable names stay flat
(`PORT`, `DATABASE_URL`, `ADMIN_PASSWORD` …) while code reads `settings.database.url`. `Settings` bundles
the groups; `create_app(settings)` takes an instance so tests build their own.

These are *process* settings (fixed for the life of the process). Options an admin edits at run time
live in the database (`app.runtime_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.runtime_values import RuntimeDefaults

ENV_FILE = ".env"


def _config(prefix: str) -> SettingsConfigDict:
    # env_ignore_empty: `DATABASE_URL=` (as in .env.example) means "not set", not "empty string".
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
    )


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ServerSettings(BaseSettings):
    model_config = _config("")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Peers whose X-Forwarded-For is believed (addresses or CIDR ranges), e.g. your reverse proxy.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # What one connection can make the server hold (app/serving/protocol.py): a request head's
    # size and field count, the time to send the head and then the body, how long a quiet
    # keep-alive connection stays open, and how many connections may be open at once.
    max_header_bytes: int = Field(default=64 * 1024, ge=4096, le=1024 * 1024)
    max_headers: int = Field(default=100, ge=16, le=1000)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    body_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    keepalive_timeout_seconds: int = Field(default=5, ge=1, le=600)
    max_connections: int = Field(default=4096, ge=16)
    # One log line per HTTP request. Off by default: every model call is in the call logs, and a
    # reverse proxy usually logs HTTP already; the line costs measurable CPU on the hot path.
    access_log: bool = False
    # Worker processes sharing the port. More than 1 needs REDIS_URL (see the README, scale-out).
    workers: int = Field(default=1, ge=1, le=64)
    # On SIGTERM: readiness answers 503 for this long while the server still serves, so a load
    # balancer stops sending new requests first; then it stops accepting connections.
    shutdown_delay_seconds: float = Field(default=0.0, ge=0, le=300)
    # Then running calls get this long to finish; streams still running after it end with a final
    # event (an error frame, or the chat reply stored as stopped).
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)
    # The time zone of "today" in statistics and of times in exports (an IANA name).
    site_timezone: str = "Asia/Shanghai"

    _split_proxies = field_validator("trusted_proxies", mode="before")(_split_csv)

    @field_validator("site_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{value}' (use an IANA name such as Asia/Shanghai)"
            ) from None
        return value

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.site_timezone)


class DatabaseSettings(BaseSettings):
    model_config = _config("DATABASE_")

    # Unset: SQLite at <DATA_DIR>/app.db. PostgreSQL: postgresql+asyncpg://user:pass@host/db
    url: SecretStr | None = None
    # PostgreSQL only: the schema to use (search_path). Unset: the server's default (public).
    pg_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    echo: bool = False
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=20, ge=0)
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    auto_migrate: bool = True


class RedisSettings(BaseSettings):
    model_config = _config("REDIS_")

    # Unset: limits and locks live in this process's memory (one process only).
    url: SecretStr | None = None
    # Prefix for every key this app writes, so several deployments can share one Redis.
    key_prefix: str = Field(default="acgw", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    # Connections this process may open to Redis; a call needing one while all are busy waits
    # up to `pool_timeout_seconds` for one (it is not refused at once).
    max_connections: int = Field(default=512, ge=8, le=100_000)
    pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)


class SecuritySettings(BaseSettings):
    model_config = _config("")

    # Signs tokens. At least 32 bytes. Unset in development: generated once into <DATA_DIR>/secret_key.
    secret_key: SecretStr | None = None
    # Comma-separated Fernet keys; the first encrypts, all decrypt (rotation). Unset in development:
    # generated once into <DATA_DIR>/encryption_keys.
    encryption_keys: SecretStr | None = None


class AuthSettings(BaseSettings):
    model_config = _config("AUTH_")

    access_token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    # Two tabs refreshing at once with the same refresh token: within this many seconds of the
    # first, the same token gets the same new pair; after it, a reused token ends the session.
    refresh_grace_seconds: int = Field(default=30, ge=0, le=300)
    # Argon2id cost. The defaults follow RFC 9106's second recommended option.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    argon2_parallelism: int = Field(default=4, ge=1)
    # How long the links mailed to confirm an address and to reset a password work.
    verify_email_link_hours: int = Field(default=48, ge=1, le=24 * 30)
    password_reset_link_minutes: int = Field(default=60, ge=5, le=24 * 60)


class MailSettings(BaseSettings):
    """Outgoing mail until an admin saves the mail settings in the admin console (then those)."""

    model_config = _config("SMTP_")

    # Unset: no mail (password reset by e-mail and address confirmation are unavailable).
    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    # starttls: upgrade a plain connection (port 587); tls: TLS from the start (465); none.
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: SecretStr | None = None
    from_address: str = ""
    from_name: str = ""
    # Each attempt to hand a message to the server gives up after this long.
    timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # A message the server could not take (unreachable, a temporary refusal) is tried this many
    # times in all, waiting retry_seconds, then six times longer after each failure (5 s, 30 s,
    # 3 min).
    attempts: int = Field(default=4, ge=1, le=10)
    retry_seconds: float = Field(default=5.0, gt=0, le=3600)
    # Messages waiting to be sent; beyond this new ones are dropped (and logged).
    queue_size: int = Field(default=1000, ge=10)
    # How often budgets and balances are checked for the 80 % and 100 % mails.
    spend_alert_interval_seconds: float = Field(default=60.0, gt=0, le=86_400)


class GatewaySettings(BaseSettings):
    model_config = _config("GATEWAY_")

    # How often automatically disabled channels are probed (and re-enabled when they work again).
    health_probe_interval_seconds: float = Field(default=60.0, gt=0)
    # How long an API-key lookup is reused before the database is asked again.
    key_cache_seconds: float = Field(default=10.0, ge=0)
    # How often the channel list is reloaded from the database (changes made here apply at once).
    channel_refresh_seconds: float = Field(default=30.0, gt=0)
    max_response_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_choices: int = Field(default=8, ge=1, le=128)
    # Default timeouts (seconds) for new channels.
    connect_timeout: float = Field(default=10.0, gt=0)
    first_byte_timeout: float = Field(default=60.0, gt=0)
    idle_timeout: float = Field(default=60.0, gt=0)
    total_timeout: float = Field(default=900.0, gt=0)


class CallLogSettings(BaseSettings):
    model_config = _config("CALL_LOG_")

    flush_interval_seconds: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=500, ge=1)
    # Rows held in memory while the database is unavailable; beyond this the oldest are dropped
    # (and counted in the log).
    max_pending: int = Field(default=200_000, ge=1000)
    # How often old rows are deleted (log_retention_days, a runtime setting, says which), and how
    # many per transaction (writers wait at most for one batch).
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    retention_batch_size: int = Field(default=5000, ge=100)
    # On SQLite, how long a batch waits for another process's write (several WORKERS share one
    # file) before it is queued again: far longer than other writes wait, since rows may wait but
    # must not be lost.
    sqlite_wait_seconds: float = Field(default=60.0, gt=0)


class ChatSettings(BaseSettings):
    model_config = _config("CHAT_")

    # Events of one reply kept for re-attaching (a reload, another tab, another process).
    replay_max_events: int = Field(default=20_000, ge=100)
    # How long a finished reply can still be re-attached to.
    replay_keep_seconds: float = Field(default=300.0, gt=0)
    # A running reply holds its conversation for this long, renewed while it runs (Redis: a reply
    # whose process died frees its conversation within this time).
    lock_lease_seconds: float = Field(default=30.0, ge=3)
    # A comment line is sent on an idle event stream this often (keeps proxies from closing it).
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    # At most this many recent messages are read to build a reply's context (then trimmed to
    # the chat_context_tokens budget).
    history_messages: int = Field(default=500, ge=2)
    title_timeout_seconds: float = Field(default=20.0, gt=0)


class MetricsSettings(BaseSettings):
    model_config = _config("METRICS_")

    # `GET /metrics` answers these addresses (comma-separated addresses or CIDR ranges) …
    allow: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    # … and anyone sending `Authorization: Bearer <token>` (or an admin's sign-in token).
    token: SecretStr | None = None

    _split_allow = field_validator("allow", mode="before")(_split_csv)


class AdminSettings(BaseSettings):
    model_config = _config("ADMIN_")

    # The first admin. Unset password: one is generated and printed once at first start.
    username: str = "admin"
    password: SecretStr | None = None
    email: str | None = None


class Settings(BaseModel):
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    call_log: CallLogSettings = Field(default_factory=CallLogSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    # Defaults of the admin-editable runtime settings (env: the option's name in upper case).
    runtime: RuntimeDefaults = Field(default_factory=RuntimeDefaults)
    admin: AdminSettings = Field(default_factory=AdminSettings)

    @property
    def is_production(self) -> bool:
        return self.server.environment == "production"
