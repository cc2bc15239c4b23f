"""Two-factor sign-in: enrolling with a QR code, codes that work once, recovery codes, resets."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import httpx
import pyotp

from tests.auth.conftest import PASSWORD, sign_up
from tests.conftest import Account, Harness, HarnessFactory


def code_for(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or `steps_ahead` 30-second steps later)."""
    return pyotp.TOTP(secret).generate_otp(int(time.time() // 30) + steps_ahead)


ENROLLED_WITH: dict[str, int] = {}  # secret → the time step of the code that switched it on


async def _enrol(harness: Harness, account: Account) -> tuple[str, list[str]]:
    setup = await harness.client.post(
        "/api/auth/2fa/setup", json={"password": PASSWORD}, headers=account.headers
    )
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    step = int(time.time() // 30)
    ENROLLED_WITH[secret] = step
    enabled = await harness.client.post(
        "/api/auth/2fa/enable",
        json={"code": pyotp.TOTP(secret).generate_otp(step)},
        headers=account.headers,
    )
    assert enabled.status_code == 200, enabled.text
    return secret, enabled.json()["codes"]


async def _password_step(harness: Harness, username: str) -> dict[str, Any]:
    answer = await harness.client.post(
        "/api/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def _second_step(harness: Harness, challenge: str, **factor: str) -> httpx.Response:
    return await harness.client.post(
        "/api/auth/login/2fa", json={"challenge_token": challenge, **factor}
    )


async def test_enrolling_shows_a_qr_code_and_needs_the_password_and_a_right_code(
    harness: Harness,
) -> None:
    account = await sign_up(harness, "alice", "alice@example.com")
    wrong_password = await harness.client.post(
        "/api/auth/2fa/setup", json={"password": "not it"}, headers=account.headers
    )
    assert wrong_password.status_code == 422
    assert wrong_password.json()["code"] == "wrong_password"

    setup = await harness.client.post(
        "/api/auth/2fa/setup", json={"password": PASSWORD}, headers=account.headers
    )
    body = setup.json()
    uri = urllib.parse.urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert urllib.parse.parse_qs(uri.query)["secret"] == [body["secret"]]
    assert "alice%40example.com" in body["otpauth_uri"]
    assert body["qr_svg_data_uri"].startswith("data:image/svg+xml")

    # Not in force until confirmed: signing in still needs only the password.
    assert "access_token" in await _password_step(harness, "alice")
    wrong = await harness.client.post(
        "/api/auth/2fa/enable",
        json={"code": code_for(body["secret"], steps_ahead=5)},
        headers=account.headers,
    )
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "invalid_code"
    enabled = await harness.client.post(
        "/api/auth/2fa/enable", json={"code": code_for(body["secret"])}, headers=account.headers
    )
    codes = enabled.json()["codes"]
    assert len(codes) == len(set(codes)) == 10
    status = await harness.client.get("/api/auth/2fa", headers=account.headers)
    assert status.json() == {"enabled": True, "recovery_codes_left": 10}
    me = await harness.client.get("/api/auth/me", headers=account.headers)
    assert me.json()["two_factor_enabled"] is True


async def test_signing_in_asks_for_a_code_and_a_code_works_once(harness: Harness) -> None:
    account = await sign_up(harness, "bob")
    secret, _ = await _enrol(harness, account)

    first = await _password_step(harness, "bob")
    assert first["two_factor_required"] is True
    assert "access_token" not in first
    challenge = first["challenge_token"]

    wrong = await _second_step(harness, challenge, code="000000")
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_code"
    # The code used to enrol is spent, and so is anything older.
    enrolled = ENROLLED_WITH[secret]
    for step in (enrolled, enrolled - 1):
        spent = pyotp.TOTP(secret).generate_otp(step)
        assert (await _second_step(harness, challenge, code=spent)).status_code == 401

    fresh = code_for(secret, steps_ahead=1)  # the next step (clock drift is allowed)
    signed_in = await _second_step(harness, challenge, code=fresh)
    assert signed_in.status_code == 200, signed_in.text
    me = await harness.client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    )
    assert me.json()["username"] == "bob"

    replayed = await _second_step(
        harness, (await _password_step(harness, "bob"))["challenge_token"], code=fresh
    )
    assert replayed.status_code == 401

    # Neither a forged challenge nor a session token stands in for the password step.
    forged = await _second_step(harness, "not-a-token", code=code_for(secret, 2))
    assert forged.status_code == 401
    assert forged.json()["code"] == "challenge_expired"
    as_access = await _second_step(
        harness, signed_in.json()["access_token"], code=code_for(secret, 2)
    )
    assert as_access.status_code == 401


async def test_a_recovery_code_works_once_and_new_ones_replace_the_old(harness: Harness) -> None:
    account = await sign_up(harness, "carol")
    secret, codes = await _enrol(harness, account)

    used = await _second_step(
        harness,
        (await _password_step(harness, "carol"))["challenge_token"],
        recovery_code=codes[0].upper(),
    )
    assert used.status_code == 200, used.text
    again = await _second_step(
        harness, (await _password_step(harness, "carol"))["challenge_token"], recovery_code=codes[0]
    )
    assert again.status_code == 401
    status = await harness.client.get("/api/auth/2fa", headers=account.headers)
    assert status.json()["recovery_codes_left"] == 9

    renewed = await harness.client.post(
        "/api/auth/2fa/recovery-codes", json={"code": code_for(secret, 1)}, headers=account.headers
    )
    assert renewed.status_code == 200
    new_codes = renewed.json()["codes"]
    assert not set(new_codes) & set(codes)
    old = await _second_step(
        harness, (await _password_step(harness, "carol"))["challenge_token"], recovery_code=codes[1]
    )
    assert old.status_code == 401
    new = await _second_step(
        harness,
        (await _password_step(harness, "carol"))["challenge_token"],
        recovery_code=new_codes[1],
    )
    assert new.status_code == 200


async def test_wrong_codes_count_as_failed_sign_ins(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(runtime={"login_max_failures_per_account_ip": 3})
    account = await sign_up(harness, "dave")
    secret, _ = await _enrol(harness, account)
    challenge = (await _password_step(harness, "dave"))["challenge_token"]
    for _ in range(3):
        assert (await _second_step(harness, challenge, code="123456")).status_code == 401
    throttled = await _second_step(harness, challenge, code=code_for(secret, 1))
    assert throttled.status_code == 429


async def test_turning_it_off_needs_the_password_and_a_code(harness: Harness) -> None:
    account = await sign_up(harness, "erin")
    secret, _ = await _enrol(harness, account)
    no_code = await harness.client.post(
        "/api/auth/2fa/disable",
        json={"password": PASSWORD, "code": "000000"},
        headers=account.headers,
    )
    assert no_code.status_code == 422
    wrong_password = await harness.client.post(
        "/api/auth/2fa/disable",
        json={"password": "nope", "code": code_for(secret, 1)},
        headers=account.headers,
    )
    assert wrong_password.status_code == 422
    off = await harness.client.post(
        "/api/auth/2fa/disable",
        json={"password": PASSWORD, "code": code_for(secret, 1)},
        headers=account.headers,
    )
    assert off.status_code == 204
    assert "access_token" in await _password_step(harness, "erin")


async def test_an_admin_can_reset_a_users_two_factor_sign_in(harness: Harness) -> None:
    account = await sign_up(harness, "frank")
    await _enrol(harness, account)
    assert (await _password_step(harness, "frank"))["two_factor_required"] is True
    reset = await harness.client.delete(
        f"/api/admin/users/{account.id}/2fa", headers=await harness.admin_headers()
    )
    assert reset.status_code == 204
    assert "access_token" in await _password_step(harness, "frank")
    forbidden = await harness.client.delete(
        f"/api/admin/users/{account.id}/2fa", headers=account.headers
    )
    assert forbidden.status_code in (401, 403)


async def test_the_oauth2_form_refuses_two_factor_accounts(harness: Harness) -> None:
    account = await sign_up(harness, "grace")
    await _enrol(harness, account)
    form = await harness.client.post(
        "/api/auth/token", data={"username": "grace", "password": PASSWORD}
    )
    assert form.status_code == 401
    assert form.json()["code"] == "two_factor_required"
    assert "access_token" not in form.text


async def test_bad_second_step_bodies_are_refused(harness: Harness) -> None:
    account = await sign_up(harness, "heidi")
    secret, codes = await _enrol(harness, account)
    challenge = (await _password_step(harness, "heidi"))["challenge_token"]
    for body in (
        {"challenge_token": challenge},
        {"challenge_token": challenge, "code": code_for(secret, 1), "recovery_code": codes[0]},
        {"challenge_token": challenge, "code": "1" * 100},
        {"challenge_token": challenge, "code": 123456},
    ):
        refused = await harness.client.post("/api/auth/login/2fa", json=body)
        assert refused.status_code == 422, (body, refused.text)
