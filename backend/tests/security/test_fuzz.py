"""Generated input for every documented operation (schemathesis, from the app's own OpenAPI).

Each `/api` and `/v1` operation gets requests built from its schema — valid ones and, as
schemathesis does, ones that break it — sent as an admin to a live server whose one channel is the
mock upstream. No answer may be a 5xx, and every documented answer must match its schema. One live
server takes every operation, with a fresh app (and the database as a first start leaves it) for
each: one operation's writes — a settings change that turns rate limits on, an IP rule, the
admin's own password reset — would otherwise hide what every later operation does.

Outgoing mail goes to a real SMTP server on loopback (password-reset and confirmation mails for
generated addresses land there).

Left out: the three operations that end or lock the signed-in session the run uses (logout, ending
a session, changing the password with wrong current passwords), and those that connect to whatever
host the generated data names (a channel's test and fetch-models, the mail settings and their test
mail); their input handling is tested directly (tests/auth, tests/mail,
tests/gateway/test_channels_api.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.devtools.mock_upstream import MockServer
from app.main import create_app
from tests.conftest import DatabaseTarget, make_settings
from tests.live import GatewayFactory, LiveGateway
from tests.mail_server import PUBLIC_URL, SmtpServer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
LEFT_OUT = (
    "POST /api/auth/logout",
    "DELETE /api/auth/sessions/{session_id}",
    "POST /api/auth/me/password",
    "POST /api/admin/channels/{channel_id}/test",
    "POST /api/admin/channels/{channel_id}/fetch-models",
    "POST /api/admin/channels/fetch-models",
    "PUT /api/admin/mail",
    "POST /api/admin/mail/test",
)


def _openapi() -> dict[str, Any]:
    """The document the app serves at /openapi.json (built without starting the app)."""
    data_dir = Path(tempfile.mkdtemp(prefix="acgw-openapi-"))
    try:
        app = create_app(
            make_settings(data_dir, DatabaseTarget(f"sqlite+aiosqlite:///{data_dir}/x.db"))
        )
        return app.openapi()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


schema = schemathesis.openapi.from_dict(_openapi())
for operation in LEFT_OUT:
    schema = schema.exclude(name=operation)


@pytest.fixture
def live(
    gateway_factory: GatewayFactory, mock_upstream: MockServer, smtp_server: SmtpServer
) -> LiveGateway:
    gateway = gateway_factory(mail=smtp_server.env_settings(), runtime={"public_url": PUBLIC_URL})
    gateway.create_channel(base_url=mock_upstream.base_url())
    return gateway


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_generated_input_never_gets_a_5xx_and_answers_match_the_schema(
    case: schemathesis.Case, live: LiveGateway
) -> None:
    case.call_and_validate(
        base_url=live.url,
        headers=live.admin,
        checks=[not_a_server_error, response_schema_conformance],
        timeout=20,
    )
