"""Server-side conversations: messages, replies that outlive the browser, locks, titles, export."""
