"""Whose fault an upstream's error is: the rules (a runtime setting) and their defaults."""

from __future__ import annotations

import pytest

from app.core.upstream_rules import DEFAULT_RULES, classify, parse_rules
from app.gateway.upstream import UpstreamError, error_details

DEFAULTS = parse_rules(DEFAULT_RULES)


def _verdict(status: int, body: bytes, rules: str = DEFAULT_RULES) -> str:
    """As the gateway reads a real error body (see `upstream._status_error`)."""
    message, code, error_type = error_details(body)
    structured = body.startswith(b"{")
    error = UpstreamError(
        "status",
        f"upstream returned {status}: {message}",
        status=status,
        code=code,
        error_type=error_type,
        provider_message=message if structured else None,
    )
    return error.verdict(parse_rules(rules))


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        # LiteLLM's proxy without a database, and others, answer 400 for a wrong key.
        (
            400,
            b'{"error": {"message": "Authentication Error, Invalid API key", "type": "auth_error"}}',
            "auth",
        ),
        (
            400,
            b'{"error": {"message": "API key not valid. Please pass a valid API key.", "code": 400}}',
            "auth",
        ),
        (400, b"Invalid API Key provided", "auth"),
        (403, b'{"error": {"message": "Forbidden"}}', "auth"),
        (
            429,
            b'{"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota"}}',
            "quota",
        ),
        (
            400,
            b'{"error": {"message": "Your credit balance is too low to access the API"}}',
            "quota",
        ),
        (
            403,
            b'{"error": {"message": "\xe4\xbd\x99\xe9\xa2\x9d\xe4\xb8\x8d\xe8\xb6\xb3"}}',
            "quota",
        ),
        # The channel does not serve the model: another one may.
        (400, b'{"error": {"message": "model_not_found: gpt-x"}}', "retryable"),
        (400, b'{"error": {"message": "No connected db."}}', "retryable"),
        (
            404,
            b'{"error": {"message": "The model `gpt-x` does not exist or you do not have access to it."}}',
            "retryable",
        ),
        # The caller's own mistakes stay the caller's.
        (
            400,
            b'{"error": {"message": "This model\'s maximum context length is 8192 tokens", "code": "context_length_exceeded"}}',
            "caller",
        ),
        (422, b'{"detail": "messages: field required"}', "caller"),
        (413, b"Request Entity Too Large", "caller"),
        # Overloaded, whatever the status.
        (
            529,
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
            "retryable",
        ),
        (400, b'{"error": {"message": "The server is busy, try again later"}}', "retryable"),
        (500, b"oops", "retryable"),
    ],
)
def test_the_default_rules(status: int, body: bytes, verdict: str) -> None:
    assert _verdict(status, body) == verdict


def test_custom_rules_come_first_and_fall_back_to_status() -> None:
    rules = """
    # our proxy says 400 when its upstream is down
    400 retryable upstream connect error
    5xx caller                      # every 5xx is the caller's (a strange rule, but ours)
    *   quota  账户已欠费
    """
    assert _verdict(400, b'{"error": {"message": "upstream connect error"}}', rules) == "retryable"
    assert _verdict(503, b"down", rules) == "caller"
    assert _verdict(401, "账户已欠费".encode(), rules) == "quota"
    assert _verdict(400, b'{"error": {"message": "bad"}}', rules) == "caller"  # no match: status
    assert _verdict(401, b"nope", rules) == "auth"
    assert classify((), None, "anything") == "retryable"  # no status (in-band, timeout)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("400 auth ok\n40 auth short", "line 2"),
        ("400 blame nobody", "line 1"),
        ("# fine\n\n6xx auth x", "line 3"),
        ("auth 400 reversed", "line 1"),
    ],
)
def test_a_rule_that_cannot_be_read_names_its_line(text: str, line: str) -> None:
    with pytest.raises(ValueError, match=line):
        parse_rules(text)


def test_the_defaults_parse() -> None:
    assert {rule.verdict for rule in DEFAULTS} == {"auth", "quota", "retryable"}
    assert parse_rules("") == ()
