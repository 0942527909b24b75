"""Fleet mode end to end: two real ``reasoning-panel proxy`` instances with two workers each on
one real Redis, driven by the CLI and the official SDK; Redis killed, restarted and paused under
load. Skipped (with the reason) only where ``redis-server`` is not installed."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import pytest

from app.local_stack import Service, cli_command, start_proxy
from callbacks.launcher import saved_master_key
from callbacks.stores.base import FleetStatus
from callbacks.stores.redis_store import RedisStore

from .conftest import StandIn
from .redis_server import RedisServer, poll
from .test_conversations import Conversation

pytestmark = pytest.mark.timeout(400)
FLEET = "itest"
ADAPTIVE = {"type": "adaptive"}
USER = [{"role": "user", "content": "Refactor the parser, please."}]


@dataclass
class Instance:
    service: Service
    home: Path

    @property
    def url(self) -> str:
        return self.service.url

    def client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=saved_master_key(self.home),
                                   max_retries=0, timeout=60)

    def worker_pids(self) -> set[int]:
        """The proxy's worker processes (children of the process we started)."""
        pids = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == self.service.proc.pid and "spawn_main" in \
                        (entry / "cmdline").read_text(errors="replace"):
                    pids.add(int(entry.name))
        return pids


@dataclass
class Fleet:
    redis: RedisServer
    instances: list[Instance]
    folder: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "REASONING_PANEL_REDIS_URL": self.redis.url,
                "REASONING_PANEL_FLEET": FLEET}

    def store(self) -> RedisStore:
        return RedisStore(self.redis.url, self.folder / "reader", self.env)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli_command(), "--home", str(self.folder / "cli"), *args],
                              env=self.env, capture_output=True, text=True, timeout=60)

    def show(self) -> dict[str, Any]:
        """What ``reasoning-panel show --json`` prints."""
        done = self.cli("show", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def status(self) -> FleetStatus:
        """The same figures read in-process (quicker to poll)."""
        return self.store().status()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, standin: StandIn) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("fleet")
    redis_server = RedisServer(folder / "redis").start()
    env = {**os.environ, "REASONING_PANEL_REDIS_URL": redis_server.url,
           "REASONING_PANEL_FLEET": FLEET}

    started: dict[int, Instance] = {}
    failed: list[str] = []
    done = threading.Event()

    def run(n: int) -> None:
        """Start an instance and stay: the proxy gets SIGTERM when the thread that started it
        ends (parent-death signal), so both start at once from threads that live on."""
        home = folder / f"instance-{n}"
        try:
            started[n] = Instance(start_proxy(home, standin_url=standin.url, num_workers=2,
                                              env=env, log_path=folder / f"proxy-{n}.log",
                                              timeout=300), home)
        except Exception as exc:  # noqa: BLE001 - reported by the fixture below
            failed.append(f"instance {n}: {exc}")
        finally:
            done.wait()
            if n in started:
                started[n].service.stop()

    keepers = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for keeper in keepers:
        keeper.start()
    try:
        poll(lambda: len(started) == 2 or failed, 330, 0.2, "both proxies up")
        assert not failed, failed
        made = Fleet(redis_server, [started[0], started[1]], folder)
        poll(lambda: len(made.status().instances) == 4, 60, 0.2, "four workers heard from")
        yield made
    finally:
        done.set()
        for keeper in keepers:
            keeper.join(60)
        redis_server.stop()


def send(instance: Instance) -> tuple[str, str]:
    """One Claude-Code-shaped request at effort medium; (call id, model group that served)."""
    raw = instance.client().messages.with_raw_response.create(
        model="claude-opus-4-8", max_tokens=16, thinking=ADAPTIVE,
        output_config={"effort": "medium"}, messages=USER)
    return raw.headers["x-litellm-call-id"], raw.headers["x-litellm-model-group"]


@dataclass
class Load:
    """Clients sending requests to every instance until stopped."""

    instances: list[Instance]
    clients: int = 4
    ok: list[tuple[float, str, str]] = field(default_factory=list)  # (sent, call id, group)
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for n in range(self.clients):
            thread = threading.Thread(target=self._run, args=(self.instances[n % 2],))
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, instance: Instance) -> None:
        while not self._stop.is_set():
            sent = time.time()
            try:
                call_id, group = send(instance)
                self.ok.append((sent, call_id, group))
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                self.failed.append(repr(exc))

    def done_after(self, moment: float) -> int:
        return sum(1 for sent, _, _ in list(self.ok) if sent > moment)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)


def stream_counts(fleet: Fleet) -> Counter[tuple[str, str]]:
    """(type, call id) -> how many times it is in the fleet's stream."""
    records, _ = fleet.store().read_events(limit=1 << 30)
    return Counter((r["type"], r.get("call_id", "")) for r in records)


def assert_each_once(fleet: Fleet, call_ids: set[str]) -> None:
    def complete() -> bool:
        counts = stream_counts(fleet)
        return all(counts[("routed", c)] and counts[("done", c)] for c in call_ids)

    poll(complete, 60, 0.2, f"the records of {len(call_ids)} requests in the stream")
    counts = stream_counts(fleet)
    twice = {c: (counts[("routed", c)], counts[("done", c)]) for c in call_ids
             if (counts[("routed", c)], counts[("done", c)]) != (1, 1)}
    assert not twice


def applied_everywhere(fleet: Fleet) -> bool:
    status = fleet.status()
    return len(status.instances) == 4 and not status.laggards()


# --- the tests -------------------------------------------------------------------------------


def test_a_cli_remap_applies_to_the_next_request_on_every_instance(fleet: Fleet) -> None:
    before = fleet.status().version
    assert isinstance(before, int)
    done = fleet.cli("set", "medium", "fast-coder")
    assert done.returncode == 0, done.stderr
    assert f"v{before + 1} applied by 4/4" in done.stdout
    shown = fleet.show()
    assert shown["version"] == before + 1
    assert {i["applied_version"] for i in shown["instances"]} == {before + 1}
    assert {i["id"].split(":")[1] for i in shown["instances"]} == {
        str(p) for instance in fleet.instances for p in instance.worker_pids()}
    served = [send(instance)[1] for instance in fleet.instances for _ in range(6)]
    assert served == ["fast-coder"] * 12
    assert fleet.cli("set", "medium", "medium-reasoning").returncode == 0
    assert {send(instance)[1] for instance in fleet.instances} == {"medium-reasoning"}


def test_a_tool_loop_that_hops_between_instances_stays_held(fleet: Fleet,
                                                           standin: StandIn) -> None:
    """Each step of a tool loop lands on the other instance, and the mapping changes under it:
    every continuation still goes to the model that made its tool_use (the other instance
    learnt it through the fleet's memory), which the strict stand-in accepts."""
    first = fleet.instances[0]
    talk = Conversation(first.url, saved_master_key(first.home))

    def hop(step: int) -> None:
        there = fleet.instances[(step + 1) % 2]
        talk.url, talk.key = there.url, saved_master_key(there.home)
        if step == 0:
            assert fleet.cli("set", "high", "fast-coder").returncode == 0

    standin.clear()
    try:
        calls = talk.turn("fix the parser", "high", steps=3, between=hop)
    finally:
        fleet.cli("set", "high", "high-reasoning")
    assert [c.group for c in calls] == ["high-reasoning"] * 4
    assert [r for r in standin.requests() if r["rejected"]] == []
    held = {c.call_id for c in calls[1:]}
    poll(lambda: held <= {r["call_id"] for r in fleet.store().read_events()[0]
                          if r.get("reason") == "held"}, 30, 0.1, "the continuations held")


def test_records_from_both_instances_reach_one_tail_once_each(fleet: Fleet) -> None:
    tail = subprocess.Popen([*cli_command(), "--home", str(fleet.folder / "tail"), "tail", "-f",
                             "--json", "-n", "0"], env=fleet.env, stdout=subprocess.PIPE,
                            text=True)
    seen: list[dict[str, Any]] = []

    def read() -> None:
        for line in tail.stdout or []:
            seen.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        markers: set[str] = set()
        while not markers & {r.get("call_id") for r in list(seen)}:  # until tail is reading
            markers.add(send(fleet.instances[0])[0])
            time.sleep(0.1)
        with ThreadPoolExecutor(8) as pool:
            sent = list(pool.map(lambda n: send(fleet.instances[n % 2]), range(160)))
        call_ids = {call_id for call_id, _ in sent}

        def counts() -> Counter[tuple[str, str]]:
            return Counter((r["type"], r.get("call_id", "")) for r in list(seen))

        poll(lambda: all(counts()[("done", c)] for c in call_ids), 60, 0.1,
             "every request's outcome in tail")
        final = counts()
        assert all(final[("routed", c)] == 1 and final[("done", c)] == 1 for c in call_ids)
        writers = {r["instance"] for r in list(seen) if r.get("call_id") in call_ids}
        pids = {int(w.split(":")[1]) for w in writers}
        assert all(pids & instance.worker_pids() for instance in fleet.instances)
    finally:
        tail.terminate()
        tail.wait(10)


def test_redis_killed_and_restarted_under_load(fleet: Fleet) -> None:
    version = fleet.status().version
    assert isinstance(version, int)
    with Load(fleet.instances) as load:
        poll(lambda: len(load.ok) >= 20, what="load running")
        fleet.redis.kill()
        killed = time.time()
        poll(lambda: load.done_after(killed) >= 40, what="requests served while Redis is gone")
        down = fleet.cli("show")
        assert down.returncode == 1 and "cannot reach Redis" in down.stderr
        fleet.redis.start()  # empty: no persistence
        restarted = time.time()
        poll(lambda: load.done_after(restarted) >= 20, what="requests after the restart")
    assert load.failed == []
    poll(lambda: applied_everywhere(fleet), 30, 0.2, "every worker back and acknowledging")
    assert fleet.status().version == version  # the workers put their state back
    assert_each_once(fleet, {c for sent, c, _ in load.ok if sent > killed + 0.5})
    recovered = [r for r in fleet.store().read_events()[0] if r["type"] == "fleet"]
    assert len({r["instance"] for r in recovered}) == 4 and all(
        r["dropped"] == 0 for r in recovered)
    done = fleet.cli("pin", "high")
    assert done.returncode == 0 and f"v{version + 1} applied by 4/4" in done.stdout
    assert {send(instance)[1] for instance in fleet.instances} == {"high-reasoning"}
    assert fleet.cli("pin", "off").returncode == 0


def test_redis_paused_for_a_while_under_load(fleet: Fleet) -> None:
    start = time.time()
    with Load(fleet.instances) as load:
        poll(lambda: len(load.ok) >= 20, what="load running")
        fleet.redis.pause()
        try:
            paused = time.time()
            poll(lambda: load.done_after(paused) >= 60,
                 what="requests served while Redis is stopped")
            shown = fleet.cli("show", "--json")
            assert shown.returncode == 1 and json.loads(shown.stdout)["down"] is True
        finally:
            fleet.redis.resume()
        resumed = time.time()
        poll(lambda: load.done_after(resumed) >= 20, what="requests after it resumed")
    assert load.failed == []
    assert_each_once(fleet, {c for sent, c, _ in load.ok if sent > start})
    poll(lambda: applied_everywhere(fleet), 30, 0.2, "every worker acknowledging")


def test_two_writers_racing_one_wins_the_other_is_told(fleet: Fleet) -> None:
    version = fleet.status().version
    with ThreadPoolExecutor(2) as pool:
        low, pin = pool.map(lambda args: fleet.cli(*args, "--if-version", str(version)),
                            [("set", "low", "fast-coder"), ("pin", "medium")])
    assert sorted((low.returncode, pin.returncode)) == [0, 3]
    loser = low if low.returncode == 3 else pin
    assert "not changed: the state changed since it was read" in loser.stderr
    shown = fleet.show()
    state = shown["state"]
    assert (state["tiers"]["low"] == "fast-coder") != (state["pin"] == "medium")
    assert shown["version"] == version + 1
    fleet.cli("set", "low", "low-reasoning")
    fleet.cli("pin", "off")


def test_a_bad_url_or_password_is_a_clear_error_at_start_up(fleet: Fleet, tmp_path: Path) -> None:
    def proxy(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli_command(), "--home", str(tmp_path), "proxy", "--config",
                               "configs/demo.yaml", "--redis", url], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "LITELLM_MASTER_KEY": ""})

    bad = proxy("redis//127.0.0.1:6379")
    assert bad.returncode == 2 and "bad Redis URL 'redis//127.0.0.1:6379'" in bad.stderr
    locked = RedisServer(tmp_path / "locked", password="the-right-one").start()
    try:
        refused = proxy(f"redis://:not-it@127.0.0.1:{locked.port}/0")
    finally:
        locked.stop()
    assert refused.returncode == 2 and "refused the credentials" in refused.stderr
    for done in (bad, refused):
        assert "Traceback" not in done.stderr and "not-it" not in done.stderr
