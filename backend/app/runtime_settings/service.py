"""Runtime settings in the database: seeding, reading, validated updates, resets and history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import UnprocessableError
from app.core.events import announce
from app.core.pagination import PageParams, paginate
from app.core.runtime_values import RuntimeValues
from app.models.base import utcnow
from app.models.runtime_setting import RuntimeSetting, RuntimeSettingChange
from app.models.user import User

KEYS = tuple(RuntimeValues.model_fields)


async def seed(sessionmaker: async_sessionmaker[AsyncSession], defaults: RuntimeValues) -> None:
    """Give every option a row; rows that follow the default take the current default.

    Runs at every start, so a new option appears and a default changed in the environment applies,
    while what an admin chose stays. Concurrent starts are harmless: the last writer writes the same.
    """
    wanted = defaults.model_dump()
    async with sessionmaker() as db:
        stored = await rows(db)
        for key, value in wanted.items():
            row = stored.get(key)
            if row is None:
                db.add(RuntimeSetting(key=key, value=value, overridden=False))
            elif not row.overridden and row.value != value:
                row.value = value
        try:
            await db.commit()
        except Exception:  # another process seeded the same rows first
            await db.rollback()


async def load(db: AsyncSession, defaults: RuntimeValues) -> RuntimeValues:
    """The values in force: an admin's choice where there is one, else the default.

    A stored value that no longer validates (e.g. a bound was tightened) falls back to the default
    rather than stopping the app.
    """
    chosen = {
        row.key: row.value
        for row in (await db.scalars(select(RuntimeSetting).where(RuntimeSetting.overridden))).all()
        if row.key in RuntimeValues.model_fields
    }
    merged = {**defaults.model_dump(), **chosen}
    try:
        return RuntimeValues.model_validate(merged)
    except ValidationError:
        good = dict(defaults.model_dump())
        for key, value in chosen.items():
            try:
                good = RuntimeValues.model_validate({**good, key: value}).model_dump()
            except ValidationError:
                continue
        return RuntimeValues.model_validate(good)


def _validation_failure(exc: ValidationError, changes: dict[str, Any]) -> UnprocessableError:
    error = exc.errors()[0]
    loc = [str(part) for part in error.get("loc", ())]
    # A rule across fields has no location: name the field being changed.
    key = loc[0] if loc else next(iter(changes), None)
    message = str(error.get("msg", "Invalid value")).removeprefix("Value error, ")
    return UnprocessableError(f"{key}: {message}" if key else message, param=key)


def validate_update(current: RuntimeValues, changes: dict[str, Any]) -> RuntimeValues:
    unknown = [key for key in changes if key not in RuntimeValues.model_fields]
    if unknown:
        raise UnprocessableError(f"{unknown[0]}: no such setting", param=unknown[0])
    try:
        return RuntimeValues.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        raise _validation_failure(exc, changes) from None


def _write(
    db: AsyncSession,
    row: RuntimeSetting | None,
    key: str,
    old_value: Any,
    new_value: Any,
    *,
    overridden: bool,
    action: str,
    actor: User,
) -> None:
    """Store one option and record the change in the history — unless nothing changes."""
    if row is None:
        row = RuntimeSetting(key=key, overridden=False)
        db.add(row)
    elif row.overridden == overridden and row.value == new_value:
        return
    now = utcnow()
    row.value, row.overridden = new_value, overridden
    row.updated_at, row.updated_by_id, row.updated_by = now, actor.id, actor.username
    db.add(
        RuntimeSettingChange(
            key=key,
            old_value=old_value,
            new_value=new_value,
            action=action,
            changed_by_id=actor.id,
            changed_by=actor.username,
            changed_at=now,
        )
    )


async def update(
    db: AsyncSession,
    current: RuntimeValues,
    changes: dict[str, Any],
    actor: User,
) -> RuntimeValues:
    """Validate `changes` against everything else in force, store them and record the history."""
    new = validate_update(current, changes)
    old_values, new_values = current.model_dump(), new.model_dump()
    stored = await rows(db, keys=list(changes))
    for key in changes:
        _write(
            db,
            stored.get(key),
            key,
            old_values[key],
            new_values[key],
            overridden=True,
            action="update",
            actor=actor,
        )
    await db.flush()
    announce(db, "settings")
    return new


async def reset(
    db: AsyncSession,
    current: RuntimeValues,
    defaults: RuntimeValues,
    key: str,
    actor: User,
) -> RuntimeValues:
    """Make `key` follow its default again."""
    if key not in RuntimeValues.model_fields:
        raise UnprocessableError(f"{key}: no such setting", param=key)
    default = defaults.model_dump()[key]
    new = validate_update(current, {key: default})
    row = await db.get(RuntimeSetting, key)
    old_value = current.model_dump()[key]
    _write(db, row, key, old_value, default, overridden=False, action="reset", actor=actor)
    await db.flush()
    announce(db, "settings")
    return new


async def rows(db: AsyncSession, keys: list[str] | None = None) -> dict[str, RuntimeSetting]:
    """The stored rows by key (all, or those of `keys`)."""
    query = select(RuntimeSetting)
    if keys is not None:
        query = query.where(RuntimeSetting.key.in_(keys))
    return {row.key: row for row in (await db.scalars(query)).all()}


async def history(
    db: AsyncSession, page: PageParams, *, key: str | None
) -> tuple[Sequence[RuntimeSettingChange], int]:
    query = select(RuntimeSettingChange).order_by(RuntimeSettingChange.id.desc())
    if key:
        query = query.where(RuntimeSettingChange.key == key)
    return await paginate(db, query, page)
