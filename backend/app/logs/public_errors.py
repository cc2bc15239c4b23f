"""What a caller is shown of a call's error in their own usage (list and CSV).

The call log keeps everything about a failure — upstream addresses, the HTTP client's messages,
the channel's mapped model name — for admins. A caller sees the gateway's own words for a call it
refused (a limit, no channel, bad input: already meant for them) and a plain sentence for a
provider's failure.
"""

from __future__ import annotations

PROVIDER_FAILED = "The model provider failed ({status})"
PROVIDER_REFUSED = "The model provider refused the request ({status})"
PROVIDER_TIMEOUT = "The model provider did not answer in time"


def public_error(end_reason: str, status_code: int, error_message: str | None) -> str | None:
    if error_message is None or end_reason in ("done", "rejected", "client_gone"):
        return error_message
    if end_reason == "timeout":
        return PROVIDER_TIMEOUT
    if 400 <= status_code < 500:
        return PROVIDER_REFUSED.format(status=status_code)
    return PROVIDER_FAILED.format(status=status_code)
