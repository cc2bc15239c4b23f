"""`PriceBook`: the price table in memory, and what one call costs.

Looked up per call (by the call-log writer, off the request path): a channel's own price for the
model if it has one, else the model's; of those, the newest row in force when the call started.
Read again when a price changes here or in another process (`announce("prices")`).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import ModelPrice


@dataclass(frozen=True, slots=True)
class Price:
    """Micro-units of the currency per million tokens (per call for `call`)."""

    input: int
    cached_input: int
    output: int
    reasoning: int
    call: int

    @classmethod
    def of(cls, row: ModelPrice) -> Price:
        return cls(
            input=row.input_micro,
            cached_input=row.input_micro
            if row.cached_input_micro is None
            else row.cached_input_micro,
            output=row.output_micro,
            reasoning=row.output_micro if row.reasoning_micro is None else row.reasoning_micro,
            call=row.call_micro,
        )

    def cost(
        self, prompt: int, cached: int, completion: int, reasoning: int, answered: bool
    ) -> int:
        """Nano-units for these token counts (cached within prompt, reasoning within
        completion, as providers report them); the call fee only for a call that was answered."""
        cached = min(max(cached, 0), max(prompt, 0))
        reasoning = min(max(reasoning, 0), max(completion, 0))
        pico = (
            (max(prompt, 0) - cached) * self.input
            + cached * self.cached_input
            + (max(completion, 0) - reasoning) * self.output
            + reasoning * self.reasoning
        )
        return (pico + 500) // 1000 + (self.call * 1000 if answered else 0)


@dataclass(frozen=True, slots=True)
class _Versions:
    starts: list[float]  # effective_from as Unix time, ascending
    prices: list[Price]

    def at(self, when: float) -> Price | None:
        index = bisect.bisect_right(self.starts, when) - 1
        return self.prices[index] if index >= 0 else None


class PriceBook:
    def __init__(self) -> None:
        self._versions: dict[tuple[str, int | None], _Versions] = {}
        self._caps: dict[str, int] = {}

    async def reload(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with sessionmaker() as db:
            rows = (
                await db.scalars(
                    select(ModelPrice).order_by(ModelPrice.effective_from, ModelPrice.id)
                )
            ).all()
        grouped: dict[tuple[str, int | None], tuple[list[float], list[Price]]] = {}
        caps: dict[str, int] = {}
        for row in rows:
            if row.max_output_tokens:
                caps[row.model] = max(caps.get(row.model, 0), row.max_output_tokens)
            starts, prices = grouped.setdefault((row.model, row.channel_id), ([], []))
            starts.append(row.effective_from.timestamp())
            prices.append(Price.of(row))
        self._versions = {key: _Versions(*value) for key, value in grouped.items()}
        self._caps = caps

    def output_cap(self, model: str) -> int | None:
        """The most tokens an answer of `model` can have, if a price says."""
        return self._caps.get(model)

    def price(self, model: str, channel_id: int | None, at: datetime) -> Price | None:
        when = at.timestamp()
        if channel_id is not None:
            versions = self._versions.get((model, channel_id))
            if versions is not None:
                price = versions.at(when)
                if price is not None:
                    return price
        versions = self._versions.get((model, None))
        return versions.at(when) if versions is not None else None

    def priced_models(self) -> set[str]:
        return {model for model, _channel in self._versions}

    def cost_of(self, row: Mapping[str, Any]) -> int | None:
        """The cost of a call-log row in nano-units; None if its model has no price. A call that
        used no tokens and got no answer (refused, failed before any) costs nothing."""
        prompt = row.get("prompt_tokens") or 0
        completion = row.get("completion_tokens") or 0
        answered = row.get("end_reason") == "done"
        if not answered and prompt == 0 and completion == 0:
            return 0
        price = self.price(row["requested_model"], row.get("channel_id"), row["created_at"])
        if price is None:
            return None
        return price.cost(
            prompt,
            row.get("cached_tokens") or 0,
            completion,
            row.get("reasoning_tokens") or 0,
            answered,
        )
