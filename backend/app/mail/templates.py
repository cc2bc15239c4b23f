"""The mails the site sends, in zh-CN and English, each as plain text and HTML.

A mail names the site and carries at most one secret: the one-time link it exists for.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

Language = Literal["zh-CN", "en"]
Kind = Literal["verify_email", "reset_password", "test", "spend_alert"]


def preferred_language(accept_language: str | None) -> Language:
    """zh-CN when the caller's first language is Chinese (the SPA sends its UI language)."""
    first = (accept_language or "").split(",")[0].strip().lower()
    return "zh-CN" if first.startswith("zh") else "en"


@dataclass(frozen=True)
class _Text:
    subject: str
    greeting: str
    body: str
    button: str
    expiry: str
    ignore: str


_TEXTS: dict[Kind, dict[Language, _Text]] = {
    "verify_email": {
        "en": _Text(
            subject="Confirm your e-mail address for {site}",
            greeting="Hello {name},",
            body="Please confirm that {email} is your e-mail address on {site}.",
            button="Confirm my address",
            expiry="The link works once, for {validity}.",
            ignore="If you did not ask for this, you can ignore this mail.",
        ),
        "zh-CN": _Text(
            subject="请确认您在 {site} 的邮箱地址",
            greeting="{name}，您好：",
            body="请确认 {email} 是您在 {site} 使用的邮箱地址。",
            button="确认邮箱地址",
            expiry="该链接只能使用一次，{validity}内有效。",
            ignore="如果这不是您本人的操作，请忽略此邮件。",
        ),
    },
    "reset_password": {
        "en": _Text(
            subject="Reset your {site} password",
            greeting="Hello {name},",
            body="Someone asked to reset the password of your account on {site}. Choose a new "
            "password with the link below; it signs out every device signed in to your account.",
            button="Choose a new password",
            expiry="The link works once, for {validity}.",
            ignore="If you did not ask for this, ignore this mail: your password stays as it is.",
        ),
        "zh-CN": _Text(
            subject="重置您在 {site} 的密码",
            greeting="{name}，您好：",
            body="有人请求重置您在 {site} 的账户密码。请通过下面的链接设置新密码；设置后，"
            "所有已登录的设备都会退出登录。",
            button="设置新密码",
            expiry="该链接只能使用一次，{validity}内有效。",
            ignore="如果这不是您本人的操作，请忽略此邮件，您的密码不会改变。",
        ),
    },
    "spend_alert": {
        "en": _Text(
            subject="{site}: {detail_subject}",
            greeting="Hello {name},",
            body="{detail}",
            button="",
            expiry="",
            ignore="",
        ),
        "zh-CN": _Text(
            subject="{site}：{detail_subject}",
            greeting="{name}，您好：",
            body="{detail}",
            button="",
            expiry="",
            ignore="",
        ),
    },
    "test": {
        "en": _Text(
            subject="Test mail from {site}",
            greeting="Hello,",
            body="This is a test mail from {site}: outgoing mail works.",
            button="",
            expiry="",
            ignore="",
        ),
        "zh-CN": _Text(
            subject="来自 {site} 的测试邮件",
            greeting="您好：",
            body="这是一封来自 {site} 的测试邮件：邮件发送设置可以正常工作。",
            button="",
            expiry="",
            ignore="",
        ),
    },
}


def validity(minutes: int, language: Language) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} 小时" if language == "zh-CN" else f"{hours} hour{'s' * (hours != 1)}"
    return f"{minutes} 分钟" if language == "zh-CN" else f"{minutes} minutes"


@dataclass(frozen=True)
class Sender:
    address: str
    name: str


def compose(
    kind: Kind,
    language: Language,
    *,
    site: str,
    sender: Sender,
    to: str,
    name: str = "",
    link: str | None = None,
    valid_minutes: int = 0,
    detail: str = "",
    detail_subject: str = "",
) -> EmailMessage:
    text = _TEXTS[kind][language]
    values = {
        "site": site,
        "name": name,
        "email": to,
        "validity": validity(valid_minutes, language) if valid_minutes else "",
        "detail": detail,
        "detail_subject": detail_subject,
    }
    lines = [text.greeting.format(**values), "", text.body.format(**values)]
    if link:
        lines += ["", link, "", text.expiry.format(**values)]
    if text.ignore:
        lines += ["", text.ignore]
    lines += ["", "— " + site]

    message = EmailMessage()
    message["Subject"] = text.subject.format(**values)
    message["From"] = Address(display_name=sender.name or site, addr_spec=sender.address)
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    domain = sender.address.rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content("\n".join(lines))
    message.add_alternative(_html(text, values, link, language), subtype="html")
    return message


def _html(text: _Text, values: dict[str, str], link: str | None, language: Language) -> str:
    esc = {key: html.escape(value) for key, value in values.items()}
    parts = [
        f"<p>{text.greeting.format(**esc)}</p>",
        f"<p>{text.body.format(**esc)}</p>",
    ]
    if link:
        href = html.escape(link, quote=True)
        parts += [
            '<p style="margin:24px 0">'
            f'<a href="{href}" style="background:#2563eb;color:#ffffff;padding:10px 18px;'
            f'border-radius:8px;text-decoration:none;display:inline-block">{html.escape(text.button)}</a></p>',
            f'<p style="font-size:13px;color:#475569">{html.escape(text.expiry.format(**values))}<br>'
            f'<a href="{href}" style="color:#2563eb;word-break:break-all">{href}</a></p>',
        ]
    if text.ignore:
        parts.append(f'<p style="font-size:13px;color:#475569">{html.escape(text.ignore)}</p>')
    parts.append(f'<p style="font-size:13px;color:#94a3b8">— {esc["site"]}</p>')
    lang = "zh-CN" if language == "zh-CN" else "en"
    return (
        f'<!doctype html><html lang="{lang}"><body style="font-family:-apple-system,'
        "'Segoe UI','PingFang SC','Microsoft YaHei',sans-serif;color:#0f172a;"
        'max-width:560px;margin:0 auto;padding:24px;line-height:1.6">'
        + "".join(parts)
        + "</body></html>"
    )
