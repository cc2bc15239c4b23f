"""Who a model call is for, and what they may do: the user, the API key and their limits."""

from __future__ import annotations

from dataclasses import dataclass

from app.ratelimit.admission import CallerLimits

NO_OVERRIDES = CallerLimits()


@dataclass(frozen=True)
class Caller:
    user_id: int
    key_id: int | None = None
    # None: every model. Otherwise the public model names this key may use.
    key_models: frozenset[str] | None = None
    limits: CallerLimits = NO_OVERRIDES
    # An admin, or an account whose e-mail address is confirmed (see require_verified_email).
    confirmed: bool = True

    def may_use(self, model: str) -> bool:
        return self.key_models is None or model in self.key_models
