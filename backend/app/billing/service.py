"""The price table: versions of a model's price, and import / export as JSON.

Import takes this gateway's own export (`{"currency": …, "prices": [...]}`) or LiteLLM's
`model_prices_and_context_window.json` (model names as keys, costs per token as floats, read as
printed). A price equal to the one in force is skipped; any other becomes a new version.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.billing.money import decimal_of, micro_text
from app.billing.schemas import ImportResult, PriceCreate, PriceList, PriceRead
from app.core.db import get_or_404
from app.core.errors import BadRequestError
from app.core.events import announce
from app.models import Channel, ModelPrice
from app.models.base import utcnow

MAX_ERRORS = 50
# LiteLLM's per-token cost fields, and ours they become.
LITELLM_FIELDS = {
    "input_cost_per_token": "input",
    "cache_read_input_token_cost": "cached_input",
    "output_cost_per_token": "output",
    "output_cost_per_reasoning_token": "reasoning",
}
PER_MILLION_MICRO = Decimal(10**12)  # a cost per token × 10¹² = micro-units per million tokens


def _key(row: ModelPrice) -> tuple[str, int | None]:
    return row.model, row.channel_id


def in_force(rows: list[ModelPrice], now: datetime) -> dict[tuple[str, int | None], ModelPrice]:
    """The version in force now of each (model, channel) price."""
    current: dict[tuple[str, int | None], ModelPrice] = {}
    for row in rows:
        if row.effective_from <= now:
            held = current.get(_key(row))
            if held is None or (row.effective_from, row.id) > (held.effective_from, held.id):
                current[_key(row)] = row
    return current


async def _channel_names(db: AsyncSession) -> dict[int, str]:
    return dict((await db.execute(select(Channel.id, Channel.name))).all())


async def served_models(db: AsyncSession) -> set[str]:
    served: set[str] = set()
    for models, mapping in (await db.execute(select(Channel.models, Channel.model_mapping))).all():
        served.update(models or ())
        served.update(mapping or {})
    return served


def _read(row: ModelPrice, names: dict[int, str], current: bool) -> PriceRead:
    return PriceRead(
        id=row.id,
        model=row.model,
        channel_id=row.channel_id,
        channel_name=names.get(row.channel_id) if row.channel_id is not None else None,
        input=micro_text(row.input_micro),
        cached_input=None if row.cached_input_micro is None else micro_text(row.cached_input_micro),
        output=micro_text(row.output_micro),
        reasoning=None if row.reasoning_micro is None else micro_text(row.reasoning_micro),
        per_call=micro_text(row.call_micro),
        max_output_tokens=row.max_output_tokens,
        effective_from=row.effective_from,
        in_force=current,
        created_at=row.created_at,
    )


async def list_prices(db: AsyncSession, currency: str) -> PriceList:
    """Every version, newest first (the ones in force marked), and the served models without
    any price."""
    rows = list(
        (
            await db.scalars(
                select(ModelPrice).order_by(
                    ModelPrice.model, ModelPrice.effective_from.desc(), ModelPrice.id.desc()
                )
            )
        ).all()
    )
    current = {row.id for row in in_force(rows, utcnow()).values()}
    names = await _channel_names(db)
    priced = {row.model for row in rows if row.channel_id is None}
    return PriceList(
        currency=currency,
        items=[_read(row, names, row.id in current) for row in rows],
        unpriced_models=sorted(await served_models(db) - priced),
    )


async def create(db: AsyncSession, body: PriceCreate, admin_id: int | None) -> PriceRead:
    if body.channel_id is not None and await db.get(Channel, body.channel_id) is None:
        raise BadRequestError(
            f"No channel with id {body.channel_id}", code="channel_not_found", param="channel_id"
        )
    row = _row(body, admin_id)
    db.add(row)
    await db.flush()
    announce(db, "prices")
    names = await _channel_names(db)
    return _read(row, names, row.effective_from <= utcnow())


def _row(body: PriceCreate, admin_id: int | None) -> ModelPrice:
    return ModelPrice(
        model=body.model,
        channel_id=body.channel_id,
        effective_from=body.effective_from or utcnow(),
        input_micro=body.input,
        cached_input_micro=body.cached_input,
        output_micro=body.output,
        reasoning_micro=body.reasoning,
        call_micro=body.per_call,
        max_output_tokens=body.max_output_tokens,
        created_by_id=admin_id,
    )


async def delete(db: AsyncSession, price_id: int) -> None:
    """Remove one version (calls already made keep their cost)."""
    row = await get_or_404(db, ModelPrice, price_id, "Price")
    await db.delete(row)
    await db.flush()
    announce(db, "prices")


async def export(db: AsyncSession, currency: str) -> dict[str, Any]:
    """The prices in force now, in the shape `import_prices` reads (channels by name)."""
    rows = list((await db.scalars(select(ModelPrice).order_by(ModelPrice.model))).all())
    names = await _channel_names(db)
    prices = []
    for row in sorted(
        in_force(rows, utcnow()).values(), key=lambda r: (r.model, r.channel_id or 0)
    ):
        entry: dict[str, Any] = {"model": row.model}
        if row.channel_id is not None:
            entry["channel"] = names.get(row.channel_id)
        entry["input"] = micro_text(row.input_micro)
        if row.cached_input_micro is not None:
            entry["cached_input"] = micro_text(row.cached_input_micro)
        entry["output"] = micro_text(row.output_micro)
        if row.reasoning_micro is not None:
            entry["reasoning"] = micro_text(row.reasoning_micro)
        if row.call_micro:
            entry["per_call"] = micro_text(row.call_micro)
        if row.max_output_tokens:
            entry["max_output_tokens"] = row.max_output_tokens
        prices.append(entry)
    return {"currency": currency, "unit": "per 1M tokens", "prices": prices}


def _per_million(cost_per_token: Any) -> str:
    micro = (decimal_of(cost_per_token) * PER_MILLION_MICRO).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    return micro_text(int(micro))


def _litellm_entries(
    data: dict[str, Any], served: set[str] | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """LiteLLM's entries with token costs, as our import entries (named as a channel serves
    them: "openai/gpt-4o" is "gpt-4o" when that is what is served), and why the ones whose
    costs are not amounts were left out."""
    entries: dict[str, dict[str, Any]] = {}
    refused: list[str] = []
    for name, spec in data.items():
        if not isinstance(spec, dict) or name == "sample_spec":
            continue
        costs = {ours: spec[theirs] for theirs, ours in LITELLM_FIELDS.items() if theirs in spec}
        if "input" not in costs and "output" not in costs:
            continue
        model = name
        if served is not None and name not in served:
            short = name.rsplit("/", 1)[-1]
            if short not in served or short in entries:
                continue
            model = short
        entry: dict[str, Any] = {"model": model}
        try:
            for field in ("input", "cached_input", "output", "reasoning"):
                if field in costs:
                    entry[field] = _per_million(costs[field])
        except ValueError as exc:
            refused.append(f"{name[:128]}: {exc}")
            continue
        entry.setdefault("input", "0")
        entry.setdefault("output", "0")
        cap = spec.get("max_output_tokens") or spec.get("max_tokens")
        if isinstance(cap, int) and not isinstance(cap, bool) and 0 < cap <= 10_000_000:
            entry["max_output_tokens"] = cap
        entries[model] = entry
    return list(entries.values()), refused


async def import_prices(
    db: AsyncSession, data: dict[str, Any], admin_id: int | None, *, only_served: bool
) -> ImportResult:
    """Add the prices in `data` (see the module's description); `only_served`: of LiteLLM's
    file, only the models a channel serves."""
    names = {name: channel_id for channel_id, name in (await _channel_names(db)).items()}
    errors: list[str] = []
    if isinstance(data.get("prices"), list):
        entries = list(data["prices"])
    else:
        served = await served_models(db) if only_served else None
        entries, errors = _litellm_entries(data, served)
    rows = list((await db.scalars(select(ModelPrice))).all())
    current = in_force(rows, utcnow())
    imported, skipped = 0, len(errors)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            skipped += 1
            errors.append(f"prices[{index}]: not an object")
            continue
        entry = dict(entry)
        channel = entry.pop("channel", None)
        if channel is not None:
            if channel not in names:
                skipped += 1
                errors.append(f"prices[{index}]: no channel named {str(channel)[:64]!r}")
                continue
            entry["channel_id"] = names[channel]
        try:
            body = PriceCreate.model_validate(entry)
        except ValidationError as exc:
            skipped += 1
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            errors.append(f"prices[{index}].{where}: {first['msg']}"[:300])
            continue
        if body.channel_id is not None and body.channel_id not in names.values():
            skipped += 1
            errors.append(f"prices[{index}]: no channel with id {body.channel_id}")
            continue
        held = current.get((body.model, body.channel_id))
        if held is not None and _same(held, body):
            skipped += 1
            continue
        row = _row(body, admin_id)
        db.add(row)
        current[(body.model, body.channel_id)] = row
        imported += 1
    if imported:
        await db.flush()
        announce(db, "prices")
    return ImportResult(imported=imported, skipped=skipped, errors=errors[:MAX_ERRORS])


def _same(row: ModelPrice, body: PriceCreate) -> bool:
    return (
        row.input_micro,
        row.cached_input_micro,
        row.output_micro,
        row.reasoning_micro,
        row.call_micro,
        row.max_output_tokens,
    ) == (
        body.input,
        body.cached_input,
        body.output,
        body.reasoning,
        body.per_call,
        body.max_output_tokens,
    )
