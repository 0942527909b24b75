"""Headroom without a proxy: reading providers' rate-limit headers in every shape LiteLLM hands
them over, a tier's ``min_remaining``, where a request goes while its model is low, and the
figures shared between workers through the state folder."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from callbacks.core.headroom import (
    Quota,
    Remaining,
    Threshold,
    call_headers,
    duration_s,
    headroom_route,
    quota_from_headers,
    quota_of_call,
    quota_of_failure,
)
from callbacks.core.state import State, StateError, parse_state, state_to_dict
from callbacks.stores.quotas import QUOTAS_NAME, FileQuotas, QuotaBook

NOW = 1_800_000_000.0


def test_openai_headers() -> None:
    quota = quota_from_headers({
        "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "7",
        "x-ratelimit-reset-requests": "1m0s", "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149000", "x-ratelimit-reset-tokens": "120ms",
    }, "d1", "g", NOW)
    assert quota == Quota("d1", "g", NOW, Remaining(7, 60, NOW + 60), Remaining(149000, 150000,
                                                                                NOW + 0.12))


def test_anthropic_headers_through_litellms_prefix_win_over_its_openai_copies() -> None:
    quota = quota_from_headers({
        "x-ratelimit-remaining-requests": "9",  # LiteLLM's copy, without a reset
        "llm_provider-anthropic-ratelimit-requests-limit": "50",
        "llm_provider-anthropic-ratelimit-requests-remaining": "3",
        "llm_provider-anthropic-ratelimit-requests-reset": "2027-01-15T08:00:30Z",
    }, "d1", "g", NOW)
    reset = datetime.datetime(2027, 1, 15, 8, 0, 30, tzinfo=datetime.UTC).timestamp()
    assert quota is not None and quota.tokens is None
    assert quota.requests == Remaining(3, 50, reset)
    assert quota_from_headers({"content-type": "application/json"}, "d", "g", NOW) is None


@pytest.mark.parametrize(("text", "seconds"), [
    ("59s", 59), ("1m0s", 60), ("6m0s", 360), ("1h2m3s", 3723), ("120ms", 0.12), ("7", 7),
    ("1.5s", 1.5), ("soon", None), ("5x", None)])
def test_durations(text: str, seconds: float | None) -> None:
    assert duration_s(text) == seconds


def test_where_litellm_puts_the_headers() -> None:
    class Response:
        _hidden_params = {"additional_headers": {
            "llm_provider-anthropic-ratelimit-requests-remaining": "4"}}

    kwargs: dict[str, Any] = {
        "standard_logging_object": {"model_id": "standin-low", "model_group": "low-reasoning"},
        "litellm_params": {"metadata": {"hidden_params": {"additional_headers": {
            "llm_provider-anthropic-ratelimit-requests-limit": "10"}}}},
    }
    quota = quota_of_call(kwargs, Response(), NOW)
    assert quota is not None and quota.requests == Remaining(4, 10, None)
    assert quota.deployment == "standin-low" and quota.group == "low-reasoning"
    streamed = {"response_headers": {"anthropic-ratelimit-requests-remaining": "2"}}
    assert call_headers(streamed, None) == {"anthropic-ratelimit-requests-remaining": "2"}
    assert quota_of_call({}, Response(), NOW) is None  # no deployment to file it under


def test_min_remaining_in_the_state_file() -> None:
    data = {"version": 1, "tiers": {"low": {"model": "a", "fallbacks": ["b"],
                                            "min_remaining": {"tokens": "5%", "requests": 2}}}}
    state = parse_state(data)
    assert state.tiers["low"].min_remaining == {"requests": Threshold(2, False),
                                                "tokens": Threshold(5, True)}
    assert parse_state(state_to_dict(state)) == state
    assert state_to_dict(state)["tiers"]["low"]["min_remaining"] == {"requests": 2, "tokens": "5%"}
    for bad, says in [({"tokens": "0%"}, "tiers.low.min_remaining.tokens"),
                      ({"requests": -1}, "tiers.low.min_remaining.requests"),
                      ({"seconds": 3}, "unknown key")]:
        data["tiers"]["low"]["min_remaining"] = bad  # type: ignore[index]
        with pytest.raises(StateError, match=says):
            parse_state(data)
    assert State().with_tier_headroom("low", {"requests": Threshold(1, False)}) \
        .tiers["low"].min_remaining == {"requests": Threshold(1, False)}


def quota(deployment: str, group: str, remaining: int, limit: int = 10,
          reset: float = NOW + 30) -> Quota:
    return Quota(deployment, group, NOW - 1, Remaining(remaining, limit, reset))


def figures(*quotas: Quota) -> Any:
    return lambda group: [q for q in quotas if q.group == group]


TWO = {"requests": Threshold(2, False)}
SHARE = {"requests": Threshold(25, True)}


def test_a_low_model_sends_the_tier_to_its_first_fallback_with_room() -> None:
    low = figures(quota("d-a", "a", 2), quota("d-b", "b", 1), quota("d-c", "c", 9))
    move = headroom_route("a", TWO, "a", ["b", "c"], low, NOW, loop=False)
    assert move is not None and (move.target, move.chain) == ("c", ["b", "a"])
    assert move.record == {"from": "a", "to": "c", "deployment": "d-a", "until": NOW + 30,
                           "requests": {"remaining": 2, "limit": 10, "min": "2",
                                        "reset": NOW + 30}}
    # a share of the limit
    assert headroom_route("a", SHARE, "a", ["c"], figures(quota("d-a", "a", 3)), NOW,
                          loop=False) is None
    moved = headroom_route("a", SHARE, "a", ["c"], figures(quota("d-a", "a", 2)), NOW, loop=False)
    assert moved is not None and moved.target == "c"


def test_no_move_with_room_after_the_reset_or_elsewhere() -> None:
    assert headroom_route("a", TWO, "a", ["b"], figures(quota("d-a", "a", 3)), NOW,
                          loop=False) is None
    reset = figures(quota("d-a", "a", 0, reset=NOW - 0.5))  # a new window began
    assert headroom_route("a", TWO, "a", ["b"], reset, NOW, loop=False) is None
    low = figures(quota("d-a", "a", 0))
    assert headroom_route("a", {}, "a", ["b"], low, NOW, loop=False) is None  # no headroom set
    assert headroom_route("a", TWO, "x", ["b"], low, NOW, loop=False) is None  # not its model
    # one of the group's deployments still has room: the router can pick it
    two = figures(quota("d-a", "a", 0), quota("d-a2", "a", 8))
    assert headroom_route("a", TWO, "a", ["b"], two, NOW, loop=False) is None


def test_what_stays_put_says_why() -> None:
    low = figures(quota("d-a", "a", 1), quota("d-b", "b", 0))
    loop = headroom_route("a", TWO, "a", ["c"], low, NOW, loop=True)
    assert loop is not None and loop.target == "a" and loop.record["kept"].startswith("tool loop")
    stuck = headroom_route("a", TWO, "a", ["b"], low, NOW, loop=False)
    assert stuck is not None and stuck.target == "a" and "every fallback" in stuck.record["kept"]
    alone = headroom_route("a", TWO, "a", [], low, NOW, loop=False)
    assert alone is not None and alone.record["kept"] == "no fallback chain"


def test_workers_share_figures_through_the_state_folder(tmp_path: Path) -> None:
    one = QuotaBook(FileQuotas(tmp_path), background=False)
    two = QuotaBook(FileQuotas(tmp_path), background=False)
    one.record(quota("d-a", "a", 3))
    two.record(quota("d-b", "b", 5))
    one.sync_once()
    two.sync_once()
    one.sync_once()
    assert {q.deployment for q in one.of_group("a") + one.of_group("b")} == {"d-a", "d-b"}
    assert [q.requests.remaining for q in two.of_group("a")] == [3]  # type: ignore[union-attr]
    newer = Quota("d-a", "a", NOW, Remaining(1, 10, NOW + 30))
    two.record(newer)
    two.sync_once()
    one.sync_once()
    assert one.of_group("a") == [newer]  # the newest figures win
    saved = json.loads((tmp_path / QUOTAS_NAME).read_text())
    assert set(saved) == {"d-a", "d-b"} and oct((tmp_path / QUOTAS_NAME).stat().st_mode)[-3:] == "600"


def test_set_headroom_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main
    from callbacks.stores.statefile import StateFile

    def run(*args: str) -> int:
        return main(["--home", str(tmp_path), *args])

    assert run("set-headroom", "low", "tokens=5%", "requests=2") == 0
    assert "low keeps requests=2 tokens=5% in reserve" in capsys.readouterr().out
    assert StateFile.in_home(tmp_path).read().tiers["low"].min_remaining == {
        "requests": Threshold(2, False), "tokens": Threshold(5, True)}
    assert run("show") == 0
    assert "(headroom: requests=2 tokens=5%)" in capsys.readouterr().out
    assert run("set-headroom", "low", "tokens=150%") == 1  # refused, said, nothing written
    assert "tokens: '150%' is not valid" in capsys.readouterr().err
    assert run("set-headroom", "low", "tokens") == 2
    assert StateFile.in_home(tmp_path).read().tiers["low"].min_remaining["tokens"] == \
        Threshold(5, True)
    assert run("set-headroom", "low", "off") == 0
    assert StateFile.in_home(tmp_path).read().tiers["low"].min_remaining == {}


def test_the_background_writer_shares_figures_between_processes_books(tmp_path: Path) -> None:
    from .redis_server import poll

    writer, reader = QuotaBook(FileQuotas(tmp_path)), QuotaBook(FileQuotas(tmp_path))
    reader.latest()  # starts its reading thread
    writer.record(quota("d-a", "a", 3))
    poll(lambda: [q.deployment for q in reader.of_group("a")] == ["d-a"], 10,
         what="the other book sees the figures")


def test_fleet_instances_share_figures_through_redis(tmp_path: Path) -> None:
    from callbacks.stores.redis_store import RedisStore

    from .redis_server import RedisServer, poll

    server = RedisServer(tmp_path / "redis").start()
    try:
        one = RedisStore(server.url, tmp_path / "one", {}).quotas()
        two = RedisStore(server.url, tmp_path / "two", {}).quotas()
        two.latest()
        one.record(quota("d-a", "a", 3))
        poll(lambda: [q.requests.remaining for q in two.of_group("a")  # type: ignore[union-attr]
                      ] == [3], 10, what="the other instance sees the figures")
        assert json.loads(server.client().hget("rp:{fleet}:quotas", "d-a") or "{}")[
            "requests"]["remaining"] == 3
        server.kill()  # Redis gone: recording goes on locally, nothing raises
        one.record(quota("d-a", "a", 1))
        assert [q.requests.remaining for q in one.of_group("a")] == [1]  # type: ignore[union-attr]
    finally:
        server.stop()


def test_a_429_leaves_no_headroom_whatever_the_threshold_names() -> None:
    class RateLimited(Exception):
        status_code = 429

    refused = quota_of_failure(RateLimited(), "d-a", "a", NOW, wait=5)
    assert refused == Quota("d-a", "a", NOW, Remaining(0, None, NOW + 5))
    tokens_only = {"tokens": Threshold(5, True)}
    move = headroom_route("a", tokens_only, "a", ["b"], figures(refused), NOW, loop=False)
    assert move is not None and move.target == "b"
    assert move.record["requests"] == {"remaining": 0, "limit": None, "min": "0",
                                       "reset": NOW + 5}
    assert headroom_route("a", tokens_only, "a", ["b"], figures(refused), NOW + 5,
                          loop=False) is None  # its retry-after passed

    class WithHeaders(Exception):
        status_code = 429
        litellm_response_headers = {"x-ratelimit-remaining-requests": "0",
                                    "x-ratelimit-limit-requests": "6",
                                    "x-ratelimit-reset-requests": "12s"}

    assert quota_of_failure(WithHeaders(), "d-a", "a", NOW, wait=1) == Quota(
        "d-a", "a", NOW, Remaining(0, 6, NOW + 12))
    assert quota_of_failure(RateLimited(), None, "a", NOW, wait=5) is None
