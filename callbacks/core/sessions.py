"""Who sent a request: its session, subagent and client program (pure).

Claude Code sends ``x-claude-code-session-id`` on every request and the same id inside
``metadata.user_id``, a JSON-encoded string; subagent requests add ``x-claude-code-agent-id``
and ``cc_is_subagent=true`` in the text of ``system[0]`` (shared/domain/claude-code-requests.md).
LiteLLM hands the hook the request's logging-safe headers at
``data["proxy_server_request"]["headers"]``; header names may arrive in any case.
The Codex CLI sends ``session-id`` / ``thread-id`` and ``x-codex-turn-metadata`` (its subagent's
``agent_name``); other OpenAI-format clients carry at most a ``user`` field or a generic session
header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

SESSION_HEADER: Final = "x-claude-code-session-id"
AGENT_HEADER: Final = "x-claude-code-agent-id"
# Session headers of other clients (LiteLLM's own, opencode's), after Claude Code's.
OTHER_SESSION_HEADERS: Final = ("x-litellm-session-id", "x-session-id")
# The Codex CLI: ``session-id`` / ``thread-id`` headers (the same uuid), ``x-codex-turn-metadata``
# (a JSON string whose ``agent_name`` names a subagent; the main agent is ``/root``), and in the
# body ``client_metadata.session_id`` and ``prompt_cache_key`` (shared/domain/responses-clients.md).
CODEX_SESSION_HEADERS: Final = ("session-id", "thread-id")
CODEX_TURN_HEADER: Final = "x-codex-turn-metadata"
CODEX_MAIN_AGENT: Final = "/root"
SUBAGENT_MARK: Final = "cc_is_subagent=true"
MAX_CHARS: Final = 100  # ids and client names are short; anything longer is cut


def _short(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_CHARS]


_parsed: tuple[Any, dict[str, str]] = (None, {})  # the last headers mapping seen, lowercased


def request_headers(data: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers as LiteLLM passed them to the hook, names lowercased (read-only:
    the same request's headers are parsed once, however many questions are asked of them)."""
    global _parsed
    server = data.get("proxy_server_request")
    headers = server.get("headers") if isinstance(server, dict) else None
    if not isinstance(headers, dict):
        return {}
    seen, parsed = _parsed
    if seen is headers:
        return parsed
    parsed = {}
    for name, value in headers.items():
        if isinstance(value, str):
            parsed[str(name).lower()] = value
    _parsed = (headers, parsed)
    return parsed


def _client_body(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The body as the client sent it (LiteLLM keeps a copy), else the request data."""
    server = data.get("proxy_server_request")
    body = server.get("body") if isinstance(server, dict) else None
    return body if isinstance(body, dict) else data


def _sources(data: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The request data, then the body as the client sent it when LiteLLM kept another."""
    body = _client_body(data)
    return (data,) if body is data else (data, body)


def _user_id_session(sources: tuple[Mapping[str, Any], ...]) -> str | None:
    """``session_id`` inside the JSON string ``metadata.user_id`` (Claude Code)."""
    for source in sources:
        metadata = source.get("metadata")
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        if not isinstance(user_id, str) or not user_id.startswith("{"):
            continue
        try:
            parsed = json.loads(user_id)
        except ValueError:
            continue
        if isinstance(parsed, dict) and _short(parsed.get("session_id")):
            return _short(parsed["session_id"])
    return None


def _codex_body_session(sources: tuple[Mapping[str, Any], ...]) -> str | None:
    for source in sources:
        metadata = source.get("client_metadata")
        session = _short(metadata.get("session_id")) if isinstance(metadata, dict) else None
        if session := session or _short(source.get("prompt_cache_key")):
            return session
    return None


def _codex_agent(headers: Mapping[str, str]) -> str | None:
    """A Codex subagent's name from ``x-codex-turn-metadata``; None for the main agent."""
    raw = headers.get(CODEX_TURN_HEADER)
    if not raw or not raw.startswith("{"):
        return None
    try:
        name = json.loads(raw).get("agent_name")
    except (ValueError, AttributeError):
        return None
    return None if name in (None, "", CODEX_MAIN_AGENT) else _short(name)


def _header_session(headers: Mapping[str, str]) -> str | None:
    """A generic or Codex session header."""
    for name in OTHER_SESSION_HEADERS + CODEX_SESSION_HEADERS:
        if session := _short(headers.get(name)):
            return session
    return None


def who_sent(data: Mapping[str, Any]) -> dict[str, str | None]:
    """``{"session", "agent", "client"}`` of a request; each None when the request does not say.

    The session is Claude Code's session header, else the session id in ``metadata.user_id``,
    else a generic session header, else an OpenAI-format ``user``. Never raises.
    """
    try:
        headers = request_headers(data)
        session = _short(headers.get(SESSION_HEADER))
        if session is None:
            sources = _sources(data)
            session = (_user_id_session(sources) or _header_session(headers)
                       or _codex_body_session(sources)
                       or _short(sources[-1].get("user")) or _short(data.get("user")))
        return {"session": session,
                "agent": _short(headers.get(AGENT_HEADER)) or _codex_agent(headers),
                # ``claude-cli/2.1.328 (external, cli)`` -> ``claude-cli/2.1.328``
                "client": _short((headers.get("user-agent") or "").split(" (", 1)[0])}
    except Exception:  # noqa: BLE001 - a malformed request is simply anonymous
        return {"session": None, "agent": None, "client": None}


def is_subagent(data: Mapping[str, Any], who: Mapping[str, str | None] | None = None) -> bool:
    """A subagent's request: an agent named in its headers (Claude Code's agent id, a Codex
    subagent), or ``cc_is_subagent=true`` in ``system[0]``. ``who``: the request's
    :func:`who_sent`, when the caller has it."""
    try:
        if (who or who_sent(data))["agent"] is not None:
            return True
        system = data.get("system")  # a string, or blocks: the mark is in the first one's text
        if isinstance(system, list):
            system = system[0].get("text") if system and isinstance(system[0], dict) else None
        return isinstance(system, str) and SUBAGENT_MARK in system
    except Exception:  # noqa: BLE001 - never fail a request over its kind
        return False
