"""``reasoning-panel bench --redis URL``: what fleet mode costs, measured on that Redis.

- hook cost: the real pre-call hook in this process, with the files backend, with Redis, and
  with a Redis that cannot be reached, in interleaved blocks (p50/p99 microseconds);
- remap -> applied: two real proxies with two workers each on the Redis; for each change, the
  time from the write starting to the last worker announcing it applied it (p50/p95 ms);
- event lag: from the hook firing to ``reasoning-panel tail -f --redis`` (another process)
  reading the record from the stream, at 100 requests a second (p50/p95 ms).

Everything runs under a fleet name of its own (``bench-XXXXXX``), so a Redis that serves a
real fleet is not touched; its keys are deleted at the end.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from app.bench.main import event_lag, percentile, time_hooks
from app.local_stack import Service, cli_command, free_port, start_proxy
from callbacks.core.state import State
from callbacks.stores.base import REDIS_URL_ENV, StoreError
from callbacks.stores.files import FileStore
from callbacks.stores.redis_conn import FLEET_ENV
from callbacks.stores.redis_store import RedisStore


def measure_hook(url: str, env: dict[str, str], folder: Path, n: int) -> dict[str, float]:
    from callbacks.model_route_callback import ReasoningRouter

    logging.getLogger("reasoning_panel").setLevel(logging.ERROR)  # "unreachable", on purpose
    stores: dict[str, Any] = {
        "files": FileStore(folder / "files"),
        "redis": RedisStore(url, folder / "redis", env),
        "redis_down": RedisStore(f"redis://127.0.0.1:{free_port()}/0", folder / "down", env),
    }
    stores["files"].file.write(State())
    routers = {name: ReasoningRouter(store=store) for name, store in stores.items()}
    samples = time_hooks(routers, n)
    for router in routers.values():
        if router.events is not None:
            router.events.flush(2.0)
    logging.getLogger("reasoning_panel").setLevel(logging.NOTSET)
    return {
        "fleet_hook_us_p50": percentile(samples["redis"], 50),
        "fleet_hook_us_p99": percentile(samples["redis"], 99),
        "fleet_hook_us_p99_redis_down": percentile(samples["redis_down"], 99),
        "files_hook_us_p50": percentile(samples["files"], 50),
        "files_hook_us_p99": percentile(samples["files"], 99),
    }


def measure_events(url: str, env: dict[str, str], folder: Path, rate: int, seconds: float
                   ) -> dict[str, float]:
    from callbacks.model_route_callback import ReasoningRouter

    router = ReasoningRouter(store=RedisStore(url, folder / "events", env))
    delays = event_lag(
        router, [*cli_command(), "--home", str(folder / "tail"), "tail", "-f", "--json", "-n", "0"],
        rate, seconds, env)
    return {"fleet_event_ms_p50": percentile(delays, 50),
            "fleet_event_ms_p95": percentile(delays, 95),
            "fleet_event_records_seen": float(len(delays))}


def measure_remap(store: RedisStore, env: dict[str, str], folder: Path, changes: int,
                  progress: Any) -> dict[str, float]:
    """Start two proxies with two workers each; time each change until every worker applied it."""
    services: dict[int, Service] = {}
    failed: list[str] = []
    finished = threading.Event()

    def keep(n: int) -> None:
        # the proxy gets SIGTERM when the thread that started it ends: this one waits
        try:
            services[n] = start_proxy(folder / f"proxy-{n}", num_workers=2, env=env,
                                      log_path=folder / f"proxy-{n}.log", timeout=300)
        except Exception as exc:  # noqa: BLE001 - reported by the waiting thread
            failed.append(f"proxy {n}: {exc}")
        finally:
            finished.wait()
            if n in services:
                services[n].stop()

    keepers = [threading.Thread(target=keep, args=(n,)) for n in range(2)]
    for keeper in keepers:
        keeper.start()
    try:
        while len(services) < 2:
            if failed:
                raise RuntimeError("; ".join(failed))
            time.sleep(0.2)

        def workers() -> set[str]:  # the proxies' (this process's own hooks aside)
            return {i.id for i in store.status().instances if i.pid != os.getpid()}

        while len(workers()) < 4:
            time.sleep(0.1)
        progress(f"4 workers up; {changes} remaps ...")
        client: Any = store.config.client()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(store.keys.applied)
        expected = workers()
        delays: list[float] = []
        for n in range(changes):
            change = partial(State.with_tier_model, tier="medium",
                             model=("fast-coder", "medium-reasoning")[n % 2])
            start = time.perf_counter()
            version = store.update(change).version
            pending = set(expected)
            while pending and time.perf_counter() - start < 5:
                message = pubsub.get_message(timeout=0.5)
                if message and message.get("type") == "message":
                    ack = json.loads(message["data"])
                    if ack.get("version") == version:
                        pending.discard(ack.get("id"))
            if not pending:
                delays.append((time.perf_counter() - start) * 1000)
            time.sleep(0.05)
        pubsub.close()
    finally:
        finished.set()
        for keeper in keepers:
            keeper.join(60)
    return {"remap_applied_ms_p50": percentile(delays, 50),
            "remap_applied_ms_p95": percentile(delays, 95),
            "remap_changes_applied_everywhere": float(len(delays)),
            "remap_changes": float(changes), "workers": 4.0}


def run_fleet_bench(url: str, quick: bool, as_json: bool) -> int:
    def progress(message: str) -> None:
        if not as_json:
            print(f"  {message}", file=sys.stderr, flush=True)

    fleet = f"bench-{secrets.token_hex(3)}"
    env = {**os.environ, REDIS_URL_ENV: url, FLEET_ENV: fleet}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            store = RedisStore(url, folder / "cli", env)
            store.ensure()
        except StoreError as exc:
            print(f"reasoning-panel: {exc}", file=sys.stderr)
            return 2
        try:
            progress(f"fleet {store.where}")
            progress("measuring the hook in-process (files, Redis, Redis unreachable) ...")
            results = measure_hook(url, env, folder, 3_000 if quick else 20_000)
            progress("measuring event lag (hook -> `tail -f --redis`) at 100 requests/s ...")
            results.update(measure_events(url, env, folder, 100, 3 if quick else 15))
            progress("starting two proxies with two workers each ...")
            results.update(measure_remap(store, env, folder, 10 if quick else 50, progress))
        finally:
            client: Any = store.config.client()
            for key in list(client.scan_iter(match=store.keys.prefix + "*", count=1000)):
                client.delete(key)
    if as_json:
        print(json.dumps({k: round(v, 3) for k, v in results.items()}))
        return 0
    rows = [
        ("hook cost p50 / p99, fleet mode",
         f"{results['fleet_hook_us_p50']:.1f} / {results['fleet_hook_us_p99']:.1f} us",
         "target p99 <= 100 us"),
        ("hook cost p50 / p99, files (same run)",
         f"{results['files_hook_us_p50']:.1f} / {results['files_hook_us_p99']:.1f} us", ""),
        ("hook cost p99, Redis unreachable", f"{results['fleet_hook_us_p99_redis_down']:.1f} us",
         "no request waits on Redis"),
        ("remap -> applied by all 4 workers p50 / p95",
         f"{results['remap_applied_ms_p50']:.1f} / {results['remap_applied_ms_p95']:.1f} ms"
         f" ({results['remap_changes_applied_everywhere']:.0f}/{results['remap_changes']:.0f})",
         "target p95 <= 50 ms"),
        ("event lag hook -> tail -f p50 / p95 (100 req/s)",
         f"{results['fleet_event_ms_p50']:.1f} / {results['fleet_event_ms_p95']:.1f} ms",
         "target p95 <= 100 ms"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<34} {target}")
    return 0
