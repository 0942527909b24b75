"""Fault suite: what can go wrong around the callback, and the promise that holds each time.

Every test's docstring names the promise it checks; docs/reliability.md lists them.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.bench.main import config_without_callback
from app.local_stack import start_proxy
from app.panel.app import ReasoningPanel
from callbacks.core.state import State
from callbacks.stores.eventlog import EVENTS_NAME
from callbacks.stores.statefile import StateFile, parse_state_text, render_state

from .conftest import Proxy, StandIn
from .test_eventlog import all_records
from .test_events_proxy import records_for
from .test_panel import wait_for

pytestmark = pytest.mark.timeout(300)
ADAPTIVE = {"type": "adaptive"}
MEDIUM = {"thinking": ADAPTIVE, "output_config": {"effort": "medium"}}


def send(proxy: Proxy, body: dict[str, Any], path: str = "/v1/messages") -> httpx.Response:
    body = {"model": "claude-opus-4-8", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(proxy.url + path, json=body, timeout=60,
                      headers={"x-api-key": proxy.key, "authorization": f"Bearer {proxy.key}"})


def group(proxy: Proxy, body: dict[str, Any] | None = None) -> str:
    response = send(proxy, body or MEDIUM)
    assert response.status_code == 200, response.text
    return response.headers["x-litellm-model-group"]


def records(proxy: Proxy) -> list[dict[str, Any]]:
    time.sleep(0.3)  # the event log's writer thread
    return all_records(proxy.home / EVENTS_NAME)


@pytest.fixture(autouse=True)
def _fresh(standin: StandIn) -> None:
    standin.clear()


# --- the state file ---------------------------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from callbacks.core.state import State
from callbacks.stores.statefile import StateFile
sf = StateFile(Path(sys.argv[1]))
states = [State(), State().with_tier_model("low", "x" * 5000)]  # big: a write takes a while
i = 0
while True:
    sf.write(states[i % 2])
    i += 1
"""


def test_a_writer_killed_mid_save_never_leaves_a_torn_file(tmp_path: Path) -> None:
    """Promise: a state file save is atomic. A writer SIGKILLed at any point leaves the old or
    the new valid state on disk, never a torn or empty file."""
    path = tmp_path / "state.yaml"
    StateFile(path).write(State())
    valid = {render_state(State()), render_state(State().with_tier_model("low", "x" * 5000))}
    rng = random.Random(7)
    root = Path(__file__).resolve().parent.parent
    for _ in range(40):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=root)
        time.sleep(0.15 + rng.random() * 0.1)  # past start-up, somewhere inside a save
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        text = path.read_text()
        assert text in valid
        parse_state_text(text)
        assert (tmp_path / "state.yaml.saved").read_text() in valid  # the save's copy too
    leftovers = [p.name for p in tmp_path.iterdir()
                 if p.name not in ("state.yaml", "state.yaml.saved", "state.yaml.stamp")]
    assert all(name.startswith(".state.yaml.") for name in leftovers)  # only temp files


@pytest.mark.parametrize("fault", ["deleted", "directory", "not utf-8", "other program's yaml",
                                   "empty"])
def test_state_file_faults_keep_the_last_good_state(proxy: Proxy, fault: str) -> None:
    """Promise: whatever happens to the state file while the proxy runs (deleted, replaced by a
    directory, unreadable bytes, another program's YAML, emptied), routing goes on with the last
    good state, the problem is reported once, and a later valid write is picked up."""
    sf = proxy.state_file
    sf.write(State().with_tier_model("medium", "fast-coder"))
    assert group(proxy) == "fast-coder"
    before = len([r for r in records(proxy) if r.get("event") == "refused"])
    if fault == "deleted":
        sf.path.unlink()
    elif fault == "directory":
        sf.path.unlink()
        sf.path.mkdir()
    elif fault == "not utf-8":
        sf.path.write_bytes(b"version: 1\npin: \xff\xfe\n")
    elif fault == "other program's yaml":
        sf.path.write_text("services:\n  web:\n    image: nginx\n    ports: ['80:80']\n")
    else:
        sf.path.write_text("")
    try:
        for _ in range(4):
            assert group(proxy) == "fast-coder"
        # a change no command made (no stamp) is seen at the next look, within CHECK_S, by a
        # request: requests go on until the report is in the log (the writer may lag too)
        deadline = time.monotonic() + 10
        refused: list[dict[str, Any]] = []
        while not refused and time.monotonic() < deadline:
            assert group(proxy) == "fast-coder"
            refused = [r for r in records(proxy) if r.get("event") == "refused"][before:]
        assert group(proxy) == "fast-coder"
        assert len([r for r in records(proxy) if r.get("event") == "refused"][before:]) == 1
    finally:  # the next case starts from a good file, whatever happened here
        if sf.path.is_dir():
            sf.path.rmdir()
        sf.write(State())
    assert group(proxy) == "medium-reasoning"


# --- request bodies -----------------------------------------------------------------------------

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
EFFORTS = st.sampled_from(["low", "medium", "high", "xhigh", "max", "minimal", "none", "LOW",
                           "très", "🧠", ""]) | JUNK
THINKING = st.one_of(
    JUNK,
    st.fixed_dictionaries({"type": st.sampled_from(["enabled", "disabled", "adaptive", "??"]) |
                           JUNK},
                          optional={"budget_tokens": st.integers(-10, 10**12) | JUNK,
                                    "display": JUNK}),
)
BODIES = st.fixed_dictionaries({}, optional={
    "thinking": THINKING,
    "output_config": JUNK | st.fixed_dictionaries({}, optional={"effort": EFFORTS}),
    "reasoning_effort": EFFORTS,
    "reasoning": JUNK | st.fixed_dictionaries({}, optional={"effort": EFFORTS}),
    "context_management": JUNK,
})


@pytest.fixture(scope="module")
def bare_proxy(tmp_path_factory: pytest.TempPathFactory, standin: StandIn) -> Iterator[Proxy]:
    """The same proxy and config without the callback: what LiteLLM does on its own."""
    home = tmp_path_factory.mktemp("bare")
    service = start_proxy(home, config_without_callback(home), standin_url=standin.url,
                          log_path=home / "proxy.log")
    yield Proxy(service, home)
    service.stop()


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=BODIES, chat=st.booleans())
def test_generated_bodies_never_get_a_5xx_from_the_callback(proxy: Proxy, bare_proxy: Proxy,
                                                             body: dict[str, Any], chat: bool) -> None:
    """Promise: no request body, however malformed its reasoning fields (wrong types, missing
    fields, huge budgets, unicode, nested nonsense), makes the callback fail a request: each
    is routed or passed through, with its reason in the event log."""
    path = "/v1/chat/completions" if chat else "/v1/messages"
    response = send(proxy, body, path)
    call_id = response.headers.get("x-litellm-call-id")
    assert call_id
    deadline = time.monotonic() + 5
    while True:
        routed = [r for r in all_records(proxy.home / EVENTS_NAME)
                  if r.get("call_id") == call_id and r["type"] == "routed"]
        if routed or time.monotonic() > deadline:
            break
        time.sleep(0.005)  # the writer's window is 50 ms: a coarser poll would add up to that
    assert len(routed) == 1
    assert routed[0]["reason"] in ("routed", "pinned", "same_model")
    assert routed[0]["strength"] in ("none", "low", "medium", "high")
    if response.status_code == 200:
        assert response.headers["x-litellm-model-group"] == routed[0]["target"]
    else:
        # LiteLLM itself refuses some nonsense after the hook (400, or 500 for e.g.
        # ``context_management: []``): the same body, sent straight to the routed model on the
        # proxy without the callback, must fail there the same way, or the failure is ours.
        bare = send(bare_proxy, {**body, "model": routed[0]["target"]}, path)
        assert bare.status_code // 100 == response.status_code // 100, (response.text, bare.text)
    assert "routing failed" not in proxy.service.log_text()



# --- the event log ------------------------------------------------------------------------------


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Any:
    """A tiny tmpfs, filled up (needs the right to mount, as CI has: root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        (mount / EVENTS_NAME).touch()
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _put_in_place_of(log: Path, make: Callable[[Path], None]) -> None:
    """Replace the event log (and its rotated files) with ``make``'s thing. The proxy's writer
    may still be appending a late record of an earlier test and re-create the file between the
    unlink and ``make``: try again then."""
    for _ in range(100):
        for old in log.parent.glob(EVENTS_NAME + "*"):
            if old.is_dir() and not old.is_symlink():
                old.rmdir()
            else:
                old.unlink(missing_ok=True)
        try:
            make(log)
            return
        except FileExistsError:
            time.sleep(0.05)
    raise AssertionError(f"{log} kept coming back")


@pytest.mark.parametrize("fault", ["/dev/full", "full tmpfs", "not writable"])
def test_event_log_failures_never_fail_a_request(proxy: Proxy, fault: str,
                                                  request: pytest.FixtureRequest) -> None:
    """Promise: when the event log cannot be written (disk full: the log is /dev/full, or a
    file on a full tiny tmpfs; or its path is not writable), requests still succeed and are
    routed, the problem is reported once in the proxy log, and logging resumes once the log is
    writable again."""
    log = proxy.home / EVENTS_NAME
    # counted before the fault: a late record of an earlier test may be the first to fail
    reported = proxy.service.log_text().count("cannot write the event log")
    if fault == "/dev/full":
        _put_in_place_of(log, lambda path: path.symlink_to("/dev/full"))
    elif fault == "full tmpfs":
        target = request.getfixturevalue("full_tmpfs") / EVENTS_NAME
        _put_in_place_of(log, lambda path: path.symlink_to(target))
    else:
        _put_in_place_of(log, lambda path: path.mkdir())
    try:
        for effort, tier in (("low", "low"), ("high", "high"), ("medium", "medium")):
            assert group(proxy, {"thinking": ADAPTIVE, "output_config": {"effort": effort}}) \
                == f"{tier}-reasoning"
        deadline = time.monotonic() + 10
        while (proxy.service.log_text().count("cannot write the event log") <= reported
               and time.monotonic() < deadline):
            time.sleep(0.05)
        time.sleep(0.3)  # a second report would come with the next writes
        text = proxy.service.log_text()
        assert text.count("cannot write the event log") == reported + 1
        assert ("Is a directory" if fault == "not writable" else "No space left on device") in text
    finally:
        if log.is_dir() and not log.is_symlink():
            log.rmdir()
        else:
            log.unlink()
    response = send(proxy, MEDIUM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (log.exists() and response.headers[
            "x-litellm-call-id"] in log.read_text()):
        time.sleep(0.05)
    assert response.headers["x-litellm-call-id"] in log.read_text()


# --- the upstream provider ------------------------------------------------------------------


def test_provider_down_gives_failure_records_and_the_panel_shows_them(proxy: Proxy) -> None:
    """Promise: a provider that is down fails its requests quickly with a failure record (no
    hang), and the dashboard shows them as errors."""
    proxy.state_file.write(State().with_tier_model("high", "offline"))
    responses = [send(proxy, {"thinking": ADAPTIVE, "output_config": {"effort": "high"}})
                 for _ in range(2)]
    assert all(r.status_code >= 500 for r in responses)
    ids = {r.headers["x-litellm-call-id"] for r in responses}
    failed = [r for r in records_for(proxy, ids) if r["type"] == "failed"]
    assert len(failed) == 2
    assert all(r["model_group"] == "offline" and r["error_class"] for r in failed)

    async def panel() -> None:
        app = ReasoningPanel(proxy.home, live=False)
        async with app.run_test(size=(160, 40)):
            for call_id in ids:
                assert app.model.requests[call_id].status == "error"
                assert str(app.query_one("#requests").get_cell(  # type: ignore[attr-defined]
                    call_id, "status")).startswith("error")

    asyncio.run(panel())


def test_a_slow_provider_holds_only_its_own_requests(proxy: Proxy, standin: StandIn) -> None:
    """Promise: a slow provider delays only the requests sent to it; others routed elsewhere
    go through meanwhile, and the slow one still ends with an outcome record."""
    standin.fault("standin-low", delay_ms=3000)
    try:
        with ThreadPoolExecutor(2) as pool:
            slow = pool.submit(send, proxy, {"thinking": ADAPTIVE,
                                             "output_config": {"effort": "low"}})
            time.sleep(0.3)
            fast = send(proxy, {"thinking": ADAPTIVE, "output_config": {"effort": "high"}})
            assert fast.status_code == 200 and not slow.done()  # not held behind the slow one
            slow_response = slow.result(timeout=60)
    finally:
        standin.fault("standin-low", status=None)
    assert slow_response.headers["x-litellm-model-group"] == "low-reasoning"
    call_id = slow_response.headers["x-litellm-call-id"]
    done = [r for r in records_for(proxy, {call_id}) if r["type"] == "done"]
    assert len(done) == 1 and done[0]["latency_ms"] >= 3000


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_a_slow_provider_shows_as_slow(proxy: Proxy, standin: StandIn, stream: bool) -> None:
    """Promise: latency and time to first token are what the client waited, streams included
    (LiteLLM's own start time for a stream comes after the provider's headers)."""
    standin.fault("standin-low", delay_ms=1500)
    try:
        response = send(proxy, {"thinking": ADAPTIVE, "output_config": {"effort": "low"},
                                "stream": stream})
    finally:
        standin.fault("standin-low", status=None)
    assert response.status_code == 200
    call_id = response.headers["x-litellm-call-id"]
    [done] = [r for r in records_for(proxy, {call_id}) if r["type"] == "done"]
    assert done["latency_ms"] >= 1500
    if stream:
        assert done["ttft_ms"] >= 1500


# --- the proxy ----------------------------------------------------------------------------------


async def test_dashboard_follows_a_proxy_restart(tmp_path: Path, standin: StandIn) -> None:
    """Promise: the dashboard shows the proxy down while it is restarting, then up again,
    without being restarted itself."""
    from app.local_stack import free_port

    port = free_port()
    service = start_proxy(tmp_path, port=port, standin_url=standin.url,
                          log_path=tmp_path / "proxy-1.log")
    try:
        app = ReasoningPanel(tmp_path, poll_s=0.2)
        async with app.run_test(size=(160, 40)):
            await wait_for(lambda: app.proxy_up is True, 10)
            service.stop()
            await wait_for(lambda: app.proxy_up is False, 10)
            assert "down" in str(app.query_one("#status").render())  # type: ignore[attr-defined]
            service = start_proxy(tmp_path, port=port, standin_url=standin.url,
                                  log_path=tmp_path / "proxy-2.log")
            await wait_for(lambda: app.proxy_up is True, 15)
            assert "● up" in str(app.query_one("#status").render())  # type: ignore
    finally:
        service.stop()



# --- the processes we start ------------------------------------------------------------------


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux's")
def test_children_never_outlive_a_killed_parent() -> None:
    """Promise: a test run, demo or bench killed with SIGKILL (no chance to clean up) leaves
    no stand-in or proxy running behind it."""
    code = ("import time; from app.local_stack import start_standin; "
            "s = start_standin(); print(s.proc.pid, flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert _running(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(child)
    finally:
        if _running(child):
            os.kill(child, signal.SIGKILL)
