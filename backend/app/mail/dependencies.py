from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from app.mail.templates import Language, preferred_language


async def get_mail_language(accept_language: Annotated[str | None, Header()] = None) -> Language:
    """The language of mails sent for this request (the SPA sends its UI language)."""
    return preferred_language(accept_language)


MailLanguage = Annotated[Language, Depends(get_mail_language)]
