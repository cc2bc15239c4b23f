"""AI Chat Gateway: an OpenAI-compatible LLM gateway and a team chat application in one service."""

__version__ = "0.1.0"
