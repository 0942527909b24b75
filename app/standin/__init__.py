"""The local stand-in provider: the Anthropic, chat and Responses APIs with their real rules,
no API keys (server.py serves them, rules.py decides what a real provider would answer)."""
