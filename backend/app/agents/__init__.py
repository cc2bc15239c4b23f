"""Agents (chat presets): the context, greetings and starters a new conversation begins with."""
