"""``reasoning-panel bench --redis URL``: what fleet mode costs (filled in below)."""

from __future__ import annotations


def run_fleet_bench(url: str, quick: bool, as_json: bool) -> int:
    raise NotImplementedError
