"""The terminal dashboard (Textual): the tiers, the request stream, sessions, settings."""
