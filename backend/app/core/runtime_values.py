"""Every option an admin can change while the app runs: type, default, bounds, description.

`RuntimeValues` is the registry: one typed field per option, validated by pydantic (so a bad update
is a 422 naming the field and the rule). `RuntimeDefaults` reads the same fields from the environment
(the option's name in upper case, e.g. `IP_RPM=0`), which sets the *default*; a value saved by an
admin wins over it until the admin resets the option.

Field metadata: `group` (for the admin page) and `public` (readable by anyone through
`/api/settings/public`, for the SPA).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.cors import parse_origins
from app.core.protocol_text import single_line
from app.core.upstream_rules import DEFAULT_RULES, parse_rules


def _meta(group: str, *, public: bool = False) -> dict[str, Any]:
    return {"group": group, "public": public}


class RuntimeValues(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Site
    site_name: str = Field(
        default="AI Chat Gateway",
        min_length=1,
        max_length=64,
        description="Name shown in the browser title, the header and e-mails.",
        json_schema_extra=_meta("site", public=True),
    )
    announcement: str = Field(
        default="",
        max_length=2000,
        description="A notice shown to every signed-in user (Markdown). Empty: none.",
        json_schema_extra=_meta("site", public=True),
    )
    registration_enabled: bool = Field(
        default=True,
        description="Whether anyone may create an account. Admins can always create users.",
        json_schema_extra=_meta("site", public=True),
    )
    public_url: str = Field(
        default="",
        max_length=512,
        description=(
            "The address people open this site at (https://chat.example.com). Links in e-mails "
            "point here. Empty: no e-mails with links (password reset, address confirmation)."
        ),
        json_schema_extra=_meta("site", public=True),
    )
    currency: str = Field(
        default="USD",
        pattern=r"^[A-Z]{3}$",
        description=(
            "The currency prices, costs, budgets and balances are in (an ISO 4217 code: USD, "
            "CNY, EUR …). Changing it converts nothing: the amounts stay as they are."
        ),
        json_schema_extra=_meta("site", public=True),
    )
    default_user_budget: str = Field(
        default="",
        max_length=24,
        pattern=r"^(\d+(\.\d{1,6})?)?$",
        description=(
            "The spending budget new accounts get, in the site's currency (e.g. 20). Empty: "
            "none. Existing accounts keep theirs."
        ),
        json_schema_extra=_meta("limits"),
    )
    default_user_budget_period: str = Field(
        default="month",
        pattern=r"^(day|week|month|total)$",
        description="The period of the budget new accounts get: day, week, month or total.",
        json_schema_extra=_meta("limits"),
    )
    budget_output_tokens: int = Field(
        default=8192,
        ge=1,
        le=10_000_000,
        description=(
            "Tokens reserved against a budget for an answer whose request sets no max_tokens and "
            "whose model's price gives no output cap. A streamed answer longer than what was "
            "reserved is cut."
        ),
        json_schema_extra=_meta("limits"),
    )
    user_agents_enabled: bool = Field(
        default=False,
        description=(
            "Whether users may create private agents (system prompt, model, greeting, suggested "
            "questions) that only they see."
        ),
        json_schema_extra=_meta("chat", public=True),
    )
    default_model: str = Field(
        default="",
        max_length=128,
        description="The model new chats start with. Empty: the first model the user may use.",
        json_schema_extra=_meta("chat", public=True),
    )
    chat_context_tokens: int = Field(
        default=16_000,
        ge=256,
        le=2_000_000,
        description="How many tokens of conversation history the web chat sends with each turn.",
        json_schema_extra=_meta("chat"),
    )

    chat_auto_title: bool = Field(
        default=True,
        description="Name new conversations with a short model call after the first reply.",
        json_schema_extra=_meta("chat"),
    )
    chat_title_model: str = Field(
        default="",
        max_length=128,
        description="The model that writes conversation titles. Empty: the conversation's own.",
        json_schema_extra=_meta("chat"),
    )

    # Accounts
    email_verification: bool = Field(
        default=False,
        description=(
            "Mail a link to confirm the address when someone registers with an e-mail address "
            "or changes it (needs outgoing mail and public_url)."
        ),
        json_schema_extra=_meta("accounts", public=True),
    )
    require_verified_email: bool = Field(
        default=False,
        description=(
            "Users must confirm their e-mail address before they chat or call models through the "
            "API. Admins are not held back."
        ),
        json_schema_extra=_meta("accounts", public=True),
    )
    mail_max_per_address_per_hour: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Password-reset and confirmation mails per e-mail address per hour.",
        json_schema_extra=_meta("accounts"),
    )
    mail_max_per_ip_per_hour: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Password-reset and confirmation mails asked for per client address per hour.",
        json_schema_extra=_meta("accounts"),
    )

    # Rate limits (0 = no limit)
    default_user_rpm: int = Field(
        default=120,
        ge=0,
        le=1_000_000,
        description="Model calls per minute per user, unless the user has an override. 0: no limit.",
        json_schema_extra=_meta("limits"),
    )
    default_user_concurrent_streams: int = Field(
        default=10,
        ge=0,
        le=10_000,
        description=(
            "Model calls one user may have running at once (streamed or not), unless the user "
            "has an override. 0: no limit."
        ),
        json_schema_extra=_meta("limits"),
    )
    ip_rpm: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description=(
            "Requests per minute per client address to /v1, the chat API and sign-in/registration. "
            "0: no limit."
        ),
        json_schema_extra=_meta("limits"),
    )
    login_window_seconds: int = Field(
        default=900,
        ge=1,
        le=86_400,
        description="The window in which failed sign-ins are counted.",
        json_schema_extra=_meta("limits"),
    )
    login_max_failures_per_ip: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Failed sign-ins allowed per client address (all accounts) in the window.",
        json_schema_extra=_meta("limits"),
    )
    login_max_failures_per_account_ip: int = Field(
        default=5,
        ge=1,
        le=100_000,
        description="Failed sign-ins allowed per account from one client address in the window.",
        json_schema_extra=_meta("limits"),
    )
    register_max_per_ip_per_hour: int = Field(
        default=10,
        ge=1,
        le=100_000,
        description="Accounts that may be created per client address per hour.",
        json_schema_extra=_meta("limits"),
    )

    # Gateway
    llm_concurrency: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description=(
            "Model calls running upstream at once (all users, per process). More wait up to the "
            "queue timeout, then get 503."
        ),
        json_schema_extra=_meta("gateway"),
    )
    queue_timeout_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="How long a call waits for a free slot before it gets 503.",
        json_schema_extra=_meta("gateway"),
    )
    send_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description=(
            "A response whose client has read nothing for this long is dropped: its upstream "
            "call ends and it is logged as client_gone. 0 waits for ever."
        ),
        json_schema_extra=_meta("gateway"),
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Channels tried per call (the first try included) before giving up.",
        json_schema_extra=_meta("gateway"),
    )
    failover_deadline_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="No new channel is tried after this long.",
        json_schema_extra=_meta("gateway"),
    )
    breaker_consecutive_failures: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Failures in a row that open a channel's circuit breaker (per model).",
        json_schema_extra=_meta("gateway"),
    )
    breaker_window: int = Field(
        default=20,
        ge=2,
        le=1000,
        description="Recent calls over which the breaker's failure rate is measured.",
        json_schema_extra=_meta("gateway"),
    )
    breaker_window_min_calls: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Calls needed in the window before the failure rate can open the breaker.",
        json_schema_extra=_meta("gateway"),
    )
    breaker_window_failure_rate: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Failure rate (0 to 1) over the window that opens the breaker.",
        json_schema_extra=_meta("gateway"),
    )
    breaker_cooldown_seconds: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="How long an open breaker skips the channel before one probe call is let in.",
        json_schema_extra=_meta("gateway"),
    )
    breaker_max_cooldown_seconds: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="The cooldown doubles after each failed probe, up to this.",
        json_schema_extra=_meta("gateway"),
    )
    allow_private_upstreams: bool = Field(
        default=True,
        description=(
            "Allow channels on loopback and private networks (self-hosted Ollama, vLLM). "
            "Cloud metadata addresses are always refused."
        ),
        json_schema_extra=_meta("gateway"),
    )

    cors_allowed_origins: str = Field(
        default="",
        max_length=2000,
        description=(
            "Web pages allowed to call /v1 from a browser (CORS), separated by spaces or commas: "
            "https://app.example.com, or * for any. Empty: none. Never with cookies — callers "
            "send their API key."
        ),
        json_schema_extra=_meta("gateway"),
    )
    upstream_error_rules: str = Field(
        default=DEFAULT_RULES,
        max_length=20_000,
        description=(
            "Whose fault an upstream's error is, one rule per line: '<status> <verdict> <words>'. "
            "Status: a code (400), a class (4xx) or *; verdict: caller (relayed, the channel is "
            "not blamed), auth or quota (the channel is disabled) or retryable (the next channel "
            "is tried); words: alternatives separated by |, found anywhere in the error's "
            "message, code or type (none: any error with that status). The first match wins; "
            "without one, 400/413/422 are the caller's, 401/403 the key's, 402 quota, the rest "
            "retryable."
        ),
        json_schema_extra=_meta("gateway"),
    )

    # Logs
    log_retention_days: int = Field(
        default=90,
        ge=0,
        le=36_500,
        description="Call-log rows older than this are deleted. 0: keep forever.",
        json_schema_extra=_meta("logs"),
    )
    response_retention_days: int = Field(
        default=30,
        ge=0,
        le=36_500,
        description=(
            "Responses kept by /v1/responses (for previous_response_id and GET) are deleted "
            "after this many days. 0: keep forever."
        ),
        json_schema_extra=_meta("logs"),
    )

    @field_validator("site_name", "public_url", "default_model", "chat_title_model")
    @classmethod
    def _one_line(cls, value: str) -> str:
        """These reach mail headers, links and request bodies: one line each."""
        return single_line(value)

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        return " ".join(parse_origins(value))

    @field_validator("upstream_error_rules")
    @classmethod
    def _rules(cls, value: str) -> str:
        parse_rules(value)  # raises with the line that is wrong
        return value

    @field_validator("public_url")
    @classmethod
    def _site_address(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// address, e.g. https://chat.example.com"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must be a plain site address (no query, fragment or user name)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RuntimeValues:
        if self.breaker_max_cooldown_seconds < self.breaker_cooldown_seconds:
            raise ValueError(
                "breaker_max_cooldown_seconds must be at least breaker_cooldown_seconds"
            )
        if self.breaker_window_min_calls > self.breaker_window:
            raise ValueError("breaker_window_min_calls must not exceed breaker_window")
        return self


class RuntimeDefaults(BaseSettings, RuntimeValues):
    """The defaults, each overridable by an environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(
        env_prefix="",
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    def values(self) -> RuntimeValues:
        return RuntimeValues.model_validate(self.model_dump())


def field_info(key: str) -> dict[str, Any]:
    """Type, bounds, description and metadata of one option, for the admin page."""
    field = RuntimeValues.model_fields[key]
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    info: dict[str, Any] = {
        "type": {bool: "boolean", int: "integer", float: "number", str: "string"}[
            field.annotation  # type: ignore[index]
        ],
        "description": field.description or "",
        "group": extra.get("group", "other"),
        "public": bool(extra.get("public", False)),
    }
    for constraint in field.metadata:
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            value = getattr(constraint, name, None)
            if value is not None:
                info[name] = value
    return info


PUBLIC_KEYS = tuple(key for key in RuntimeValues.model_fields if field_info(key)["public"])
