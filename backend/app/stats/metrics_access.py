"""Who may read `/metrics`: listed addresses (loopback by default), the metrics token, or an admin."""

from __future__ import annotations

import hmac
import ipaddress

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import authenticate
from app.core.client_ip import parse_ip, parse_networks
from app.core.config import MetricsSettings
from app.core.errors import AppError, ForbiddenError, UnauthorizedError
from app.core.security import TokenCodec, bearer_token


class MetricsAccess:
    def __init__(self, settings: MetricsSettings) -> None:
        self._networks = parse_networks(settings.allow)
        self._token = settings.token.get_secret_value() if settings.token else None

    def _listed(self, client_ip: str) -> bool:
        address = parse_ip(client_ip)
        if address is None:
            return False
        return any(
            isinstance(address, ipaddress.IPv4Address) == isinstance(net, ipaddress.IPv4Network)
            and address in net
            for net in self._networks
        )

    async def check(
        self, client_ip: str, authorization: str | None, db: AsyncSession, tokens: TokenCodec
    ) -> None:
        """Returns if allowed; raises 401 (no credentials from elsewhere) or 403."""
        if self._listed(client_ip):
            return
        token = bearer_token(authorization)
        if token is None:
            raise UnauthorizedError(
                "Metrics need a token from this address", code="metrics_token_required"
            )
        if self._token is not None and hmac.compare_digest(token.encode(), self._token.encode()):
            return
        try:
            principal = await authenticate(db, tokens, token)
        except AppError:
            raise ForbiddenError("Not allowed to read metrics", code="metrics_forbidden") from None
        if not principal.user.is_admin:
            raise ForbiddenError("Not allowed to read metrics", code="metrics_forbidden")
