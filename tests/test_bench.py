"""`reasoning-panel bench --quick --json`: runs end to end and reports every figure.

Figures are printed, not asserted against targets (shared, noisy machines); what is asserted
is what must hold whatever the speed: every key is there, every follower record arrived, and
no request went to the old model after a state write returned.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from app.local_stack import cli_command

KEYS = {"hook_us_p50", "hook_us_p99", "event_ms_p50", "event_ms_p95", "reload_ms_p50",
        "reload_ms_p95", "reload_stale_requests", "rps_without", "rps_with", "p50_ms_without",
        "p95_ms_without", "p50_ms_with", "p95_ms_with", "overhead_ratio",
        "estimate_us_p50", "estimate_us_p99", "estimate_err_o200k_p50", "fallback_added_ms_p50",
        "responses_hook_us_p50", "responses_hook_us_p99", "main_thread_ms_per_request_with",
        "other_threads_ms_per_request_with", "main_thread_ms_per_request_without",
        "reload_write_ms_p50", "reload_write_ms_p95", "reload_next_hook_ms_p50",
        "reload_next_hook_ms_p95", "reload_to_hook_ms_p50", "reload_to_hook_ms_p95",
        "reload_saturated_ms_p95", "reload_saturated_stale_requests",
        "reload_saturated_to_hook_ms_p50", "stops_per_s", "stopped_share",
        "fixed_loop_us_p50", "fixed_loop_us_p99", "hook_cold_cpu_us_p50", "hook_cold_cpu_us_p99",
        "functions_callback", "functions_with", "functions_without", "functions_callback_pct",
        "functions_callback_per_request", "functions_with_per_request",
        "functions_without_per_request", "functions_callback_per_request_pct",
        "hook_loaded_pre_call_us", "hook_loaded_deployment_us", "hook_loaded_success_us",
        "hook_loaded_us", "hook_loaded_pct", "loop_loaded_ms_per_request"}


@pytest.mark.timeout(300)
def test_bench_quick_json_reports_every_figure() -> None:
    out = subprocess.run([*cli_command(), "bench", "--quick", "--json"], capture_output=True,
                         text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert KEYS <= set(figures)
    assert all(isinstance(figures[k], int | float) for k in KEYS)
    assert figures["reload_stale_requests"] == 0
    assert figures["reload_saturated_stale_requests"] == 0
    assert 0 < figures["reload_to_hook_ms_p50"] <= figures["reload_to_hook_ms_p95"]
    assert 0 < figures["reload_write_ms_p50"] <= figures["reload_write_ms_p95"]
    assert 0 <= figures["reload_next_hook_ms_p50"] <= figures["reload_next_hook_ms_p95"]
    assert figures["event_records_seen"] == 300  # 100 req/s for 3 s, every record followed
    assert figures["rps_with"] > 0 and figures["rps_without"] > 0
    # the split of the proxy's CPU: the event loop's thread does most of the work; the
    # callback's writer thread is among the other threads of the proxy with it. /proc counts a
    # thread's CPU in clock ticks (10 ms): the writers' share of a quick run's short rounds can
    # round down to none, so the other threads are only known not to outweigh the loop
    assert figures["main_thread_ms_per_request_with"] > figures["other_threads_ms_per_request_with"] >= 0
    assert 0 < figures["hook_us_p50"] <= figures["hook_us_p99"]
    assert 0 < figures["hook_cold_cpu_us_p50"] <= figures["hook_cold_cpu_us_p99"]
    # the functions a request runs: the callback's are counted only in the proxy with it, and
    # LiteLLM runs its own either way (the probe counts the same window in both)
    assert 0 < figures["functions_callback"] < figures["functions_with"]
    assert figures["functions_litellm_with"] > 10 * figures["functions_callback"]
    assert figures["functions_without"] > 0 and 0 < figures["functions_callback_pct"] < 100
    # a request runs no more functions than the span of requests all together
    assert 0 < figures["functions_callback_per_request"] <= figures["functions_callback"]
    assert 0 < figures["functions_without_per_request"] <= figures["functions_without"]
    # the hooks timed inside the loaded proxy: each ran, and all of them take part of the
    # event loop's time a request
    assert min(figures[f"hook_loaded_{hook}_us"] for hook in ("pre_call", "deployment",
                                                                "success")) > 0
    assert 0 < figures["hook_loaded_us"] < figures["loop_loaded_ms_per_request"] * 1000
    assert 0 < figures["hook_loaded_pct"] < 100
    assert figures["stops_per_s"] >= 0 and 0 <= figures["stopped_share"] < 1
    assert figures["responses_items"] == 201 and figures["responses_reasoning_items"] == 50
    assert figures["fallback_served"] == 40  # every request to the rate-limited tier fell back
    if len(os.sched_getaffinity(0)) >= 2:  # both proxies at once on one CPU: both served
        for key in ("pinned_overhead_ratio", "pinned_cpu_ratio", "pinned_overhead_ratio_long",
                    "pinned_cpu_ratio_long"):
            assert 0 < figures[key] < 10, (key, figures[key])
            # enough rounds for the median's interval, and it holds the median
            assert figures[key + "_ci_low"] <= figures[key] <= figures[key + "_ci_high"], key
            # spread over two pairs of proxy processes: each pair's median within the rounds'
            assert figures[key + "_min"] <= figures[key + "_pair_min"] \
                <= figures[key + "_pair_max"] <= figures[key + "_max"], key
        assert figures["side_pairs"] == 2
        assert figures["side_rounds"] == 2 * (3 * 3 // 2)  # three times the rounds, two pairs
    # the alternating rounds are spread over the pairs too: 3 asked, over 2 pairs, 2 each
    assert figures["rounds"] == 4


def test_ratio_figures_give_the_medians_interval_from_five_rounds() -> None:
    from app.bench.main import ratio_figures

    assert "r_ci_low" not in ratio_figures("r", [1.0] * 4, [1.0] * 4)
    figures = ratio_figures("r", [0.9, 1.0, 1.0, 0.95, 0.97, 0.2, 0.99], [1.0] * 7)
    assert figures["r"] == 0.97
    # the outlier round (0.2) moves neither the median nor its interval's low end that far
    assert 0.9 <= figures["r_ci_low"] <= 0.97 <= figures["r_ci_high"] <= 1.0
    assert figures == ratio_figures("r", [0.9, 1.0, 1.0, 0.95, 0.97, 0.2, 0.99], [1.0] * 7)
