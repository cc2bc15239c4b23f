"""Who is calling an `/api` route: the signed-in session behind an access token.

Below every domain that has routes (they all ask "who is this, and are they an admin?"); the
sign-in flows that create sessions live above, in `app.auth`.
"""
