"""The coding agents' side: the Claude Code and Codex launchers, the proxy they share, the
input window they are given, and Claude Code's status line."""
