"""Rules that say whose fault an upstream's error is, from its status and its words.

An upstream error is the caller's (relayed as is, never held against the channel), the channel's
key (`auth`: the channel is disabled), its money (`quota`: disabled too) or a passing fault
(`retryable`: the next channel is tried and the breaker counts it). Status alone misleads: a proxy
such as LiteLLM answers 400 for a wrong key, a provider 400 for "model not found" — which would
break a model for everyone and never fail over. The rules are the runtime setting
`upstream_error_rules`, one per line, the first that matches wins:

    <status> <verdict> <words>

`status` is a code (`400`), a class (`4xx`) or `*`; `verdict` is caller, auth, quota or retryable;
`words` are alternatives separated by `|`, matched case-insensitively anywhere in the error's
message, code and type (none: any error with that status). `#` starts a comment. Errors no rule
matches fall back to status: 400/413/422 caller, 401/403 auth, 402 quota, anything else retryable.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal, cast

Verdict = Literal["caller", "auth", "quota", "retryable"]
VERDICTS: tuple[Verdict, ...] = ("caller", "auth", "quota", "retryable")
MAX_RULES = 200

DEFAULT_RULES = """\
# A wrong or missing key, whatever the status (LiteLLM and others answer 400).
4xx auth invalid api key|incorrect api key|invalid_api_key|invalid x-api-key|api key not valid|authentication_error|authenticationerror|no api key|missing api key|unauthorized|令牌无效|无效的令牌
# Money: the account behind the channel's key is empty.
4xx quota insufficient_quota|insufficient balance|exceeded your current quota|credit balance is too low|billing|余额不足|额度不足
# The channel does not serve this model, or the proxy in front of it is broken: try another.
400 retryable model_not_found|no such model|does not exist or you do not have access|no deployments available|no connected db|unsupported model|model is not supported
# Overloaded, whatever the status (Anthropic 529, some proxies 400).
* retryable overloaded|server is busy|try again later|负载已饱和
"""

_LINE = re.compile(r"^(?P<status>\*|[1-5]xx|[1-5]\d\d)\s+(?P<verdict>[a-z]+)(?:\s+(?P<words>.*))?$")


@dataclass(frozen=True, slots=True)
class Rule:
    low: int
    high: int
    verdict: Verdict
    words: tuple[str, ...]

    def matches(self, status: int, text: str) -> bool:
        if not self.low <= status <= self.high:
            return False
        return not self.words or any(word in text for word in self.words)


@functools.lru_cache(maxsize=8)
def parse_rules(text: str) -> tuple[Rule, ...]:
    """The rules in `text`; raises ValueError naming the line that is wrong."""
    rules: list[Rule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        found = _LINE.match(line)
        if found is None:
            raise ValueError(
                f"line {number}: write '<status> <verdict> <words>', e.g. '400 auth invalid api key'"
            )
        verdict = found["verdict"]
        if verdict not in VERDICTS:
            raise ValueError(f"line {number}: the verdict must be one of {', '.join(VERDICTS)}")
        status = found["status"]
        if status == "*":
            low, high = 100, 599
        elif status.endswith("xx"):
            low = int(status[0]) * 100
            high = low + 99
        else:
            low = high = int(status)
        words = tuple(
            word.strip().lower() for word in (found["words"] or "").split("|") if word.strip()
        )
        rules.append(Rule(low, high, cast(Verdict, verdict), words))
        if len(rules) > MAX_RULES:
            raise ValueError(f"at most {MAX_RULES} rules")
    return tuple(rules)


def by_status(status: int | None, markers: str) -> Verdict:
    """The verdict when no rule matches."""
    if status in (400, 413, 422):
        return "caller"
    if status in (401, 403):
        return "auth"
    if status == 402 or "insufficient_quota" in markers or "quota_exceeded" in markers:
        return "quota"
    return "retryable"


def classify(rules: tuple[Rule, ...], status: int | None, text: str) -> Verdict:
    """Whose fault an error with this status and text (message, code, type) is."""
    lowered = text.lower()
    if status is not None:
        for rule in rules:
            if rule.matches(status, lowered):
                return rule.verdict
    return by_status(status, lowered)
