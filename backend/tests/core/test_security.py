from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import argon2.exceptions
import bcrypt
import pwdlib.exceptions
import pytest
from cryptography.fernet import Fernet
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from app.core.config import AuthSettings
from app.core.security import (
    InvalidTokenError,
    PasswordHasher,
    SecretBox,
    TokenCodec,
    UndecryptableError,
    generate_api_key,
    hash_api_key,
    mask_secret,
)

KEY = "unit-test-signing-key-0123456789abcdefXYZ"
AUTH = AuthSettings(
    _env_file=None, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1
)


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(AUTH)


async def test_argon2id_is_used_and_long_passwords_are_not_truncated(
    hasher: PasswordHasher,
) -> None:
    password = "p" * 72 + "-the-rest-matters"
    stored = await hasher.hash(password)
    assert stored.startswith("$argon2id$")
    assert (await hasher.verify(password, stored))[0]
    assert not (await hasher.verify("p" * 72, stored))[0]
    assert not (await hasher.verify("p" * 72 + "-the-rest-differs", stored))[0]


async def test_cjk_password_over_72_bytes_round_trips(hasher: PasswordHasher) -> None:
    password = "我的密码是一个很长的中文句子用来测试多字节字符的处理情况吧"
    assert len(password.encode()) > 72
    stored = await hasher.hash(password)
    assert (await hasher.verify(password, stored)) == (True, None)


async def test_legacy_bcrypt_hash_verifies_and_is_upgraded(hasher: PasswordHasher) -> None:
    legacy = bcrypt.hashpw(b"old-system-password", bcrypt.gensalt(rounds=4)).decode()
    ok, upgraded = await hasher.verify("old-system-password", legacy)
    assert ok
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$")
    assert (await hasher.verify("old-system-password", upgraded))[0]
    assert (await hasher.verify("wrong", legacy)) == (False, None)


def _every_subclass(cls: type[BaseException]) -> list[type[BaseException]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _every_subclass(sub)
    return found


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of an exception class whatever its constructor asks for."""
    for args in ((), ("x",), ("x", "y")):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls}")


# Every exception type a password hasher of this stack can raise while verifying: all of pwdlib's
# (found from its base class, so one added by a later release is covered too), all of argon2-cffi's,
# and the builtins bcrypt raises (it has no exception classes of its own).
HASHER_FAILURES = [
    *_every_subclass(pwdlib.exceptions.PwdlibError),
    *_every_subclass(argon2.exceptions.Argon2Error),
    ValueError,
    TypeError,
    UnicodeEncodeError,
    OverflowError,
]


@pytest.mark.parametrize("failure", HASHER_FAILURES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("hasher_class", [Argon2Hasher, BcryptHasher], ids=["argon2", "bcrypt"])
async def test_any_failure_a_hasher_raises_is_a_wrong_password(
    hasher: PasswordHasher,
    monkeypatch: pytest.MonkeyPatch,
    hasher_class: type,
    failure: type[BaseException],
) -> None:
    stored = (
        await hasher.hash("pw-0123456789")
        if hasher_class is Argon2Hasher
        else bcrypt.hashpw(b"pw-0123456789", bcrypt.gensalt(rounds=4)).decode()
    )

    def raising(self: object, password: str | bytes, hash: str | bytes) -> bool:
        raise _instance(failure)

    monkeypatch.setattr(hasher_class, "verify", raising)
    assert (await hasher.verify("pw-0123456789", stored)) == (False, None)


async def test_a_failed_upgrade_still_signs_in_with_the_old_hash(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy = bcrypt.hashpw(b"old-system-password", bcrypt.gensalt(rounds=4)).decode()

    def failing_hash(self: object, password: str | bytes, *, salt: bytes | None = None) -> str:
        raise pwdlib.exceptions.HashGenerationError()

    monkeypatch.setattr(Argon2Hasher, "hash", failing_hash)
    assert (await hasher.verify("old-system-password", legacy)) == (True, None)


@pytest.mark.parametrize(
    "password",
    ["x" * 73, "x" * 1000, "密" * 25, "with\x00nul", "\ud800 lone surrogate"],
    ids=["73-bytes", "1000-bytes", "cjk-75-bytes", "nul", "lone-surrogate"],
)
async def test_passwords_bcrypt_cannot_take_are_a_plain_failure(
    hasher: PasswordHasher, password: str
) -> None:
    legacy = bcrypt.hashpw(b"x" * 10, bcrypt.gensalt(rounds=4)).decode()
    assert (await hasher.verify(password, legacy)) == (False, None)


@pytest.mark.parametrize(
    "stored",
    [
        "plaintext-in-db",
        "",
        "$2b$12$short",
        "$2b$04$" + "!" * 53,
        "$2b$99$" + "a" * 53,
        "$2x$04$" + "a" * 53,
        "$argon2id$",
        "$argon2id$v=19$m=8192,t=1,p=1$bad$bad",
        "$argon2id$v=19$m=0,t=0,p=0$c2FsdHNhbHQ$aGFzaGhhc2g",
        "$argon2id$v=99$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "$argon2i$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "$2b$04$" + "é" * 53,
        "\x00",
    ],
)
async def test_malformed_stored_hashes_are_a_plain_failure(
    hasher: PasswordHasher, stored: str
) -> None:
    assert (await hasher.verify("anything-at-all", stored)) == (False, None)
    assert (await hasher.verify("x" * 200, stored)) == (False, None)


async def test_missing_account_fails_quietly(hasher: PasswordHasher) -> None:
    assert (await hasher.verify("anything", None)) == (False, None)


def _forge(payload: dict[str, object], alg: str, key: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    if alg == "none":
        return f"{header}.{body}."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(key, f"{header}.{body}".encode(), digest).digest()
    return f"{header}.{body}.{b64(signature)}"


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "1",
        "sid": "abc",
        "jti": "j1",
        "typ": "access",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_issued_token_round_trips() -> None:
    codec = TokenCodec(KEY, AUTH)
    token, claims = codec.issue("access", 42, "sess")
    decoded = codec.decode(token, "access")
    assert (decoded.user_id, decoded.session_id, decoded.jti) == (42, "sess", claims.jti)


@pytest.mark.parametrize(
    "token",
    [
        _forge(_claims(), "none", b""),
        _forge(_claims(), "HS512", KEY.encode()),
        _forge(_claims(), "HS256", b"another-key-entirely-0123456789abcdef"),
        _forge(_claims(exp=int(time.time()) - 5), "HS256", KEY.encode()),
        _forge(_claims(exp=None), "HS256", KEY.encode()),
        _forge(_claims(sub=None), "HS256", KEY.encode()),
        _forge(_claims(jti=None), "HS256", KEY.encode()),
        _forge(_claims(typ="refresh"), "HS256", KEY.encode()),
        _forge(_claims(typ=None), "HS256", KEY.encode()),
        _forge(_claims(sub="not-a-number"), "HS256", KEY.encode()),
        _forge(_claims(sid=""), "HS256", KEY.encode()),
        "",
        "garbage",
        "a.b.c",
    ],
    ids=[
        "alg-none",
        "alg-hs512",
        "wrong-key",
        "expired",
        "no-exp",
        "no-sub",
        "no-jti",
        "wrong-type",
        "no-type",
        "bad-sub",
        "empty-sid",
        "empty",
        "garbage",
        "three-garbage-parts",
    ],
)
def test_bad_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidTokenError):
        TokenCodec(KEY, AUTH).decode(token, "access")


def test_tampered_payload_is_rejected() -> None:
    codec = TokenCodec(KEY, AUTH)
    token, _ = codec.issue("access", 1, "s")
    header, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    payload["sub"] = "2"
    forged_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidTokenError):
        codec.decode(f"{header}.{forged_body}.{signature}", "access")


def test_api_keys_are_random_and_hash_deterministically() -> None:
    keys = {generate_api_key() for _ in range(100)}
    assert len(keys) == 100
    key = keys.pop()
    assert key.startswith("sk-")
    assert len(key) == 51
    assert key[3:].isalnum()
    assert hash_api_key(key) == hashlib.sha256(key.encode()).hexdigest()


def test_secret_box_rotation_and_foreign_values() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = SecretBox((old,)).encrypt("sk-upstream-secret")
    rotated_box = SecretBox((new, old))
    assert rotated_box.decrypt(token) == "sk-upstream-secret"
    rotated = rotated_box.rotate(token)
    assert SecretBox((new,)).decrypt(rotated) == "sk-upstream-secret"
    with pytest.raises(UndecryptableError):
        SecretBox((Fernet.generate_key(),)).decrypt(token)


def test_mask_secret_shows_only_the_tail() -> None:
    assert mask_secret("sk-abcdefghijklmnop1234") == "sk-…1234"
    assert mask_secret("short") == "…"
    assert "abcdef" not in mask_secret("abcdefghijkl")
