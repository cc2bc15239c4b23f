"""Saved prompts: inserted into the chat composer with `/`."""
