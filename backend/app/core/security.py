"""Password hashing, tokens, API-key hashing and encryption at rest.

Passwords: pwdlib with Argon2id for every new hash; bcrypt hashes (imported from other systems) still
verify and are upgraded to Argon2id at the next successful login. Nothing is truncated at 72 bytes.
Hashing is CPU-bound, so it runs in worker threads, bounded so a burst of logins cannot starve the loop.

Tokens: JWT via python-jose, HS256 only, with `exp`, `sub`, `sid` and `typ` required.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import anyio
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from jose import JWTError, jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from app.core.config import AuthSettings
from app.models.base import utcnow

logger = logging.getLogger(__name__)

JWT_ALGORITHM = "HS256"
# two_factor: proof that the password was right, exchanged for a session with a second factor.
TokenType = Literal["access", "refresh", "two_factor"]
TWO_FACTOR_MINUTES = 5


class PasswordHasher:
    def __init__(self, settings: AuthSettings, max_concurrent: int = 4) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.argon2_time_cost,
                    memory_cost=settings.argon2_memory_kib,
                    parallelism=settings.argon2_parallelism,
                ),
                BcryptHasher(),
            )
        )
        self._limiter = anyio.CapacityLimiter(max_concurrent)
        # Verified against when the account does not exist, so both cases cost the same time.
        self._dummy_hash = self._hash.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password, limiter=self._limiter)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Check a password. Returns (ok, new_hash); new_hash is set when the stored hash is outdated.

        `password_hash=None` (no such account) verifies against a dummy hash and fails.
        """
        target = password_hash if password_hash is not None else self._dummy_hash
        ok, new_hash = await anyio.to_thread.run_sync(
            self._verify_sync, password, target, limiter=self._limiter
        )
        if password_hash is None:
            return False, None
        return ok, new_hash

    def _verify_sync(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        # Whatever a hasher raises while checking — pwdlib's own errors (their set and their
        # wrapping change between releases: 0.3 let bcrypt's ValueError through, 0.4 wraps it in
        # HashVerificationError), bcrypt's or argon2's, a malformed or truncated stored hash, a
        # password bcrypt cannot take (over 72 bytes) — the password was not proven right. That is
        # wrong credentials, never a server error; the type is logged (never the password or hash).
        try:
            ok = self._hash.verify(password, password_hash)
        except Exception as exc:
            logger.warning("password check failed with %s; treated as a wrong password", _name(exc))
            return False, None
        if not ok:
            return False, None
        return True, self._upgraded(password, password_hash)

    def _upgraded(self, password: str, password_hash: str) -> str | None:
        """A new Argon2id hash when the stored one is of another kind or older parameters."""
        current = self._hash.current_hasher
        try:
            if current.identify(password_hash) and not current.check_needs_rehash(password_hash):
                return None
            return current.hash(password)
        except Exception as exc:
            # The password was right; keeping the old hash until the next sign-in is harmless.
            logger.warning("password hash upgrade failed with %s; kept the old hash", _name(exc))
            return None


def _name(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    session_id: str
    jti: str
    token_type: TokenType
    expires_at: datetime


class InvalidTokenError(Exception):
    """Any token problem. Callers answer all of them the same way."""


class TokenCodec:
    def __init__(self, signing_key: str, settings: AuthSettings) -> None:
        self._key = signing_key
        self.refresh_grace = timedelta(seconds=settings.refresh_grace_seconds)
        self._ttl: dict[TokenType, timedelta] = {
            "access": timedelta(minutes=settings.access_token_minutes),
            "refresh": timedelta(days=settings.refresh_token_days),
            "two_factor": timedelta(minutes=TWO_FACTOR_MINUTES),
        }

    def ttl(self, token_type: TokenType) -> timedelta:
        return self._ttl[token_type]

    def issue(
        self,
        token_type: TokenType,
        user_id: int,
        session_id: str,
        jti: str | None = None,
        issued_at: datetime | None = None,
    ) -> tuple[str, TokenClaims]:
        """A signed token; the same arguments (`jti` and `issued_at` given) give the same token."""
        now = (issued_at or utcnow()).replace(microsecond=0)
        claims = TokenClaims(
            user_id=user_id,
            session_id=session_id,
            jti=jti or new_id(),
            token_type=token_type,
            expires_at=now + self._ttl[token_type],
        )
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "sid": session_id,
            "jti": claims.jti,
            "typ": token_type,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        return jwt.encode(payload, self._key, algorithm=JWT_ALGORITHM), claims

    def decode(self, token: str, expected_type: TokenType) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[JWT_ALGORITHM],
                options={"require_exp": True, "require_sub": True, "require_jti": True},
            )
        except (JWTError, ValueError, TypeError) as exc:
            raise InvalidTokenError from exc
        if payload.get("typ") != expected_type:
            raise InvalidTokenError
        sub, sid, jti, exp = payload.get("sub"), payload.get("sid"), payload["jti"], payload["exp"]
        if not (isinstance(sub, str) and sub.isdigit() and isinstance(sid, str) and sid):
            raise InvalidTokenError
        if not isinstance(jti, str) or not isinstance(exp, int | float):
            raise InvalidTokenError
        return TokenClaims(
            user_id=int(sub),
            session_id=sid,
            jti=jti,
            token_type=expected_type,
            expires_at=datetime.fromtimestamp(exp, tz=utcnow().tzinfo),
        )


def new_id() -> str:
    return uuid.uuid4().hex


API_KEY_PREFIX = "sk-"
_API_KEY_ALPHABET = string.ascii_letters + string.digits
_API_KEY_BODY_LENGTH = 48  # ~285 bits


def generate_api_key() -> str:
    return API_KEY_PREFIX + "".join(
        secrets.choice(_API_KEY_ALPHABET) for _ in range(_API_KEY_BODY_LENGTH)
    )


def hash_api_key(key: str) -> str:
    """SHA-256 is enough: the key is random and long, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


class SecretBox:
    """Encrypts short secrets (upstream API keys, SMTP passwords) with MultiFernet.

    The first key encrypts; every key decrypts, so keys can be rotated by prepending a new one.
    """

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Raises `UndecryptableError` when no configured key opens the value."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise UndecryptableError from exc

    def rotate(self, token: str) -> str:
        """The value re-encrypted with the first key. Raises `UndecryptableError` like decrypt."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise UndecryptableError from exc


class UndecryptableError(Exception):
    """The value was encrypted with a key this process does not have."""


def mask_secret(secret: str) -> str:
    """`sk-…abcd`: enough to recognise a key, never enough to use it."""
    if len(secret) <= 8:
        return "…"
    head = secret[:3] if secret.startswith(("sk-", "pk-")) else ""
    return f"{head}…{secret[-4:]}"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
