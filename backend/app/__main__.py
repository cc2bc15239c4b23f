"""Command line: `python -m app [serve|migrate|bootstrap|rebuild-stats|rotate-keys|reset-password]`.

serve            run the server (HOST/PORT and everything else from the environment / .env)
migrate          apply database migrations and exit
bootstrap        migrate, create the first admin if there is none, and exit
rebuild-stats    recompute the daily statistics from the call logs (--reprice: costs too)
rotate-keys      re-encrypt the stored secrets with the first key in ENCRYPTION_KEYS
reset-password   set a new password for an account (generated and printed unless given on stdin)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from pydantic import ValidationError

from app.billing.reprice import reprice as billing_reprice
from app.channels import encryption
from app.composition import AppContext
from app.core import migrate
from app.core.app_secrets import ConfigError, load_app_secrets
from app.core.config import Settings
from app.core.db import commit
from app.devtools import demo
from app.devtools.mock_upstream import MockServer
from app.serving import server
from app.stats import rollup
from app.users import bootstrap
from app.users import service as user_service


@contextlib.asynccontextmanager
async def _database(settings: Settings, *, prepare: bool) -> AsyncIterator[AppContext]:
    """The app's context with its database open for a command, closed afterwards. `prepare`:
    migrate first, and check (or remember) the encryption keys, as the server does at start."""
    ctx = AppContext.build(settings, load_app_secrets(settings))
    engine = ctx.open_database()
    try:
        if prepare:
            await migrate.upgrade(engine)
            await encryption.ensure(engine, ctx.secret_box)
        yield ctx
    finally:
        await ctx.close()


async def _verify_encryption(settings: Settings) -> None:
    """Before any process starts serving: keys that cannot open the stored data stop the start
    here, with the configuration error's own message (not a traceback per worker)."""
    async with _database(settings, prepare=False) as ctx:
        await encryption.verify_before_start(ctx.engine, ctx.secret_box)


def serve(settings: Settings, banner: str = "") -> None:
    asyncio.run(_verify_encryption(settings))
    server.run(settings, banner)


async def _with_context(settings: Settings, bootstrap_admin: bool) -> None:
    async with _database(settings, prepare=True) as ctx:
        if bootstrap_admin:
            first_admin = await bootstrap.ensure_first_admin(
                ctx.sessionmaker, ctx.hasher, settings.admin
            )
            if first_admin is not None:
                bootstrap.announce(first_admin)
            else:
                print("An admin account already exists; nothing to create.")


async def _reset_password(
    settings: Settings, username: str, from_stdin: bool, revoke_keys: bool
) -> int:
    password = sys.stdin.readline().rstrip("\n") if from_stdin else None
    async with _database(settings, prepare=False) as ctx, ctx.sessionmaker() as db:
        user = await user_service.find_for_login(db, username)
        if user is None:
            print(f"No account named '{username}'.", file=sys.stderr)
            return 1
        generated, revoked = await user_service.admin_reset_password(
            db, ctx.hasher, user, password, revoke_api_keys=revoke_keys
        )
        await commit(db)  # revoked keys are announced to running servers (with Redis)
    print(f"Password for '{user.username}' changed; their sessions were signed out.")
    if revoke_keys:
        print(f"{revoked} API key(s) revoked.")
    if generated:
        print(f"New password (shown once): {generated}")
    return 0


async def _rotate_keys(settings: Settings) -> int:
    async with _database(settings, prepare=True) as ctx:
        result = await encryption.rotate(ctx.engine, ctx.secret_box)
    print(
        f"Re-encrypted {result.rotated} stored secrets (channel keys, two-factor secrets, the SMTP "
        "password) with the first key in ENCRYPTION_KEYS."
    )
    if result.undecryptable:
        print(
            f"Could not decrypt {', '.join(result.undecryptable)} with any configured key: enter "
            "it again (a channel stays switched off until then; a user's two-factor sign-in can be "
            "reset by an admin).",
            file=sys.stderr,
        )
        return 1
    print("The other keys in ENCRYPTION_KEYS can now be removed.")
    return 0


async def _rebuild_stats(settings: Settings, reprice: bool) -> None:
    async with _database(settings, prepare=True) as ctx, migrate.exclusive(ctx.engine):
        if reprice:
            changed = await billing_reprice(ctx.engine)
            print(f"Costs set again from the price table: {changed} call-log rows changed.")
        rows = await rollup.rebuild(ctx.engine, settings.server.timezone)
    print(f"Daily statistics rebuilt from {rows} call-log rows ({settings.server.site_timezone}).")


def run_demo(settings: Settings, mock_port: int) -> None:
    mock = MockServer(port=mock_port).start()
    try:
        api_key = asyncio.run(demo.seed(settings, mock.base_url()))
        serve(settings, banner=demo.instructions("{url}", api_key))
    finally:
        mock.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the server")
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("bootstrap", help="migrate and create the first admin")
    demo_parser = commands.add_parser("demo", help="serve with the mock upstream as a channel")
    demo_parser.add_argument("--mock-port", type=int, default=9100)
    rebuild = commands.add_parser(
        "rebuild-stats", help="recompute the daily statistics from the call logs"
    )
    rebuild.add_argument(
        "--reprice",
        action="store_true",
        help="first set every call's cost again from the price table (after adding or "
        "correcting prices for past dates)",
    )
    commands.add_parser(
        "rotate-keys", help="re-encrypt stored channel keys with the first ENCRYPTION_KEYS key"
    )
    reset = commands.add_parser("reset-password", help="set a new password for an account")
    reset.add_argument("username")
    reset.add_argument(
        "--revoke-keys", action="store_true", help="also revoke every API key of the account"
    )
    reset.add_argument(
        "--stdin", action="store_true", help="read the new password from standard input"
    )
    args = parser.parse_args(argv)

    try:
        settings = Settings()
        if args.command in (None, "serve"):
            serve(settings)
        elif args.command == "migrate":
            asyncio.run(_with_context(settings, bootstrap_admin=False))
            print("Database is up to date.")
        elif args.command == "bootstrap":
            asyncio.run(_with_context(settings, bootstrap_admin=True))
        elif args.command == "rebuild-stats":
            asyncio.run(_rebuild_stats(settings, args.reprice))
        elif args.command == "demo":
            run_demo(settings, args.mock_port)
        elif args.command == "rotate-keys":
            return asyncio.run(_rotate_keys(settings))
        elif args.command == "reset-password":
            return asyncio.run(
                _reset_password(settings, args.username, args.stdin, args.revoke_keys)
            )
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        # Name the setting and the rule, never the value (it may be a secret).
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            print(f"Configuration error: {name}: {error['msg']}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
