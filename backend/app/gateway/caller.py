"""Who a model call is for, and what they may do: the user, the API key and their limits."""

from __future__ import annotations

from dataclasses import dataclass

from app.billing.budgets import Spender
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

    @property
    def spender(self) -> Spender:
        limits = self.limits
        return Spender(
            user_id=self.user_id,
            key_id=self.key_id,
            user_budget=limits.user_budget,
            key_budget=limits.key_budget,
            balance=limits.balance,
        )
