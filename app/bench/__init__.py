"""The benchmarks behind ``reasoning-panel bench``: the proxy with and without the callback
(main), the context guard, Codex histories, fleet mode, the dashboard and the status line."""
